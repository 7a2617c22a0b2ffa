/*
 * instant.c - instant templates (issue 16): what a frozen running VM left
 * beside its template's sealed disks, the guest RAM file and the device
 * state file, with the QEMU version, machine type, boot files and device
 * list its clones must repeat; and the VMs cloned with --instant.
 *
 * One row of `instant_templates` per instant template (migration 7),
 * deleted with the template (ON DELETE CASCADE). It is the one record of
 * the two files, which are not volumes: they live outside the pools (the
 * RAM file on a tmpfs by default); deps, tree, du, gc and fsck read them
 * from it. The template's journaled delete unlinks them before the rows
 * go (cat_finish_journal(), so a crash rolls it forward), each only while
 * it is the file the freeze recorded (same inode and mtime): a file put
 * in its place, or changed since, is not the catalog's to delete. A template with instant clones
 * is not deleted, whatever their disks' chain (deps.c counts them as its
 * dependents: a flattened clone still resumes these files). Each file is
 * recorded with its SHA-256 at freeze and its size, inode, mtime and
 * mode: vmc_instant_file_check() compares the cheap four at every start
 * and, asked to, the digest (fsck --verify); a file that changed is
 * never resumed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "catalog-internal.h"
#include "catalog-ops.h"

static char *
dup_col(cat_stmt *st, int i)
{
    const char *s = cat_col(st, i);

    return s ? strdup(s) : NULL;
}

int
vmc_instant_file_digest(const char *path, char hex[65], struct vmc_error *err)
{
    unsigned char buf[1 << 16], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;
    ssize_t n = 0;

    if (fd < 0 || !ctx) {
        r = vmc_error_set(err, fd < 0 ? -errno : -ENOMEM, "cannot read '%s': "
                          "%s", path, strerror(fd < 0 ? errno : ENOMEM));
        goto out;
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    }
    if (n < 0) {
        r = vmc_error_set(err, -errno, "cannot read '%s': %s", path,
                          strerror(errno));
        goto out;
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (i = 0; i < mdlen && i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
out:
    EVP_MD_CTX_free(ctx);
    if (fd >= 0) {
        close(fd);
    }
    return r;
}

int
vmc_instant_file_record(const char *path, struct vmc_instant_file *f,
                        struct vmc_error *err)
{
    struct stat st;
    char hex[65] = "";
    int r = vmc_instant_file_digest(path, hex, err);

    if (r == 0 && stat(path, &st) < 0) {
        r = vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    if (r < 0) {
        return r;
    }
    f->path = strdup(path);
    f->sha256 = strdup(hex);
    f->size = (int64_t)st.st_size;
    f->ino = (int64_t)st.st_ino;
    f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
                  st.st_mtim.tv_nsec;
    f->mode = (int)(st.st_mode & 07777);
    if (!f->path || !f->sha256) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

int
vmc_instant_file_check(const struct vmc_instant_file *f, bool digest,
                       char *why, size_t len)
{
    struct vmc_error e = { 0 };
    struct stat st;
    char hex[65] = "";

    if (stat(f->path, &st) < 0) {
        snprintf(why, len, "%s", strerror(errno));
        return -ENOENT;
    }
    if ((int64_t)st.st_size != f->size) {
        snprintf(why, len, "its size is %lld bytes, %" PRId64 " at freeze",
                 (long long)st.st_size, f->size);
        return -ESTALE;
    }
    if ((int64_t)st.st_ino != f->ino) {
        snprintf(why, len, "it is another file (inode %llu, %" PRId64
                 " at freeze)", (unsigned long long)st.st_ino, f->ino);
        return -ESTALE;
    }
    if ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec !=
        f->mtime_ns) {
        snprintf(why, len, "it was modified after the freeze");
        return -ESTALE;
    }
    if ((int)(st.st_mode & 07777) != f->mode) {
        snprintf(why, len, "its mode is %04o, %04o at freeze",
                 (unsigned)(st.st_mode & 07777), (unsigned)f->mode);
        return -ESTALE;
    }
    if (digest) {
        if (vmc_instant_file_digest(f->path, hex, &e) < 0) {
            snprintf(why, len, "%s", e.msg);
            return -EIO;
        }
        if (strcmp(hex, f->sha256)) {
            snprintf(why, len, "its SHA-256 is %.16s..., %.16s... at freeze",
                     hex, f->sha256);
            return -ESTALE;
        }
    }
    return 0;
}

int
cat_instant_insert(struct vmc_catalog *cat, int64_t tid,
                   const struct vmc_instant *in, struct vmc_error *err)
{
    return cat_exec(cat, err, "INSERT INTO instant_templates(template_id, "
                    "qemu_version, machine, devices, cpus, memory_mb, "
                    "kernel, initrd, append, ram_file, ram_sha256, "
                    "ram_size, ram_ino, ram_mtime, ram_mode, state_file, "
                    "state_sha256, state_size, state_ino, state_mtime, "
                    "state_mode, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    "Isssiisssss" "IIIi" "ss" "IIIid", tid,
                    in->qemu_version, in->machine, in->devices, in->cpus,
                    in->memory_mb, in->kernel, in->initrd, in->append,
                    in->ram.path, in->ram.sha256, in->ram.size, in->ram.ino,
                    in->ram.mtime_ns, in->ram.mode, in->state.path,
                    in->state.sha256, in->state.size, in->state.ino,
                    in->state.mtime_ns, in->state.mode, cat_now());
}

/* The row of template id @tid (by a subquery @where on ?). */
static int
instant_load(struct vmc_catalog *cat, const char *where, const char *name,
             struct vmc_instant *out, struct vmc_error *err)
{
    char sql[1024];
    cat_stmt *st = NULL;
    int r;

    memset(out, 0, sizeof(*out));
    snprintf(sql, sizeof(sql), "SELECT i.qemu_version, i.machine, i.devices, "
             "i.cpus, i.memory_mb, i.kernel, i.initrd, i.append, "
             "i.ram_file, i.ram_sha256, i.ram_size, i.ram_ino, i.ram_mtime, "
             "i.ram_mode, i.state_file, i.state_sha256, i.state_size, "
             "i.state_ino, i.state_mtime, i.state_mode, t.name FROM "
             "instant_templates i JOIN templates t ON t.id = i.template_id "
             "WHERE %s", where);
    r = cat_prepare(cat, &st, err, sql, "s", name);
    if (r == 0) {
        r = cat_step(cat, st, err);
    }
    if (r == 0) {
        r = -ENOENT;
    } else if (r > 0) {
        out->qemu_version = dup_col(st, 0);
        out->machine = dup_col(st, 1);
        out->devices = dup_col(st, 2);
        out->cpus = cat_col_int(st, 3);
        out->memory_mb = cat_col_int(st, 4);
        out->kernel = dup_col(st, 5);
        out->initrd = dup_col(st, 6);
        out->append = dup_col(st, 7);
        out->ram.path = dup_col(st, 8);
        out->ram.sha256 = dup_col(st, 9);
        out->ram.size = cat_col_i64(st, 10);
        out->ram.ino = cat_col_i64(st, 11);
        out->ram.mtime_ns = cat_col_i64(st, 12);
        out->ram.mode = cat_col_int(st, 13);
        out->state.path = dup_col(st, 14);
        out->state.sha256 = dup_col(st, 15);
        out->state.size = cat_col_i64(st, 16);
        out->state.ino = cat_col_i64(st, 17);
        out->state.mtime_ns = cat_col_i64(st, 18);
        out->state.mode = cat_col_int(st, 19);
        out->template_name = dup_col(st, 20);
        r = 0;
    }
    cat_finalize(st);
    return r;
}

int
vmc_catalog_instant_get(struct vmc_catalog *cat, const char *tmpl,
                        struct vmc_instant *out, struct vmc_error *err)
{
    return instant_load(cat, "t.name = ?", tmpl, out, err);
}

int
vmc_catalog_instant_of_vm(struct vmc_catalog *cat, const char *vm,
                          struct vmc_instant *out, struct vmc_error *err)
{
    return instant_load(cat, "t.id = (SELECT v.template_id FROM vms v "
                        "WHERE v.name = ? AND v.instant = 1)", vm, out, err);
}

int
vmc_catalog_instant_mark(struct vmc_catalog *cat, const char *vm,
                         struct vmc_error *err)
{
    int r = cat_exec(cat, err, "UPDATE vms SET instant = 1 WHERE name = ? "
                     "AND instant = 0 AND template_id IN (SELECT "
                     "template_id FROM instant_templates)", "s", vm);

    if (r == 0 && cat_changes(cat) != 1) {
        r = vmc_error_set(err, -EINVAL, "VM '%s' is not a clone of an "
                          "instant template", vm);
    }
    return r;
}

/* vms.instant: 0 no instant clone, 1 an instant clone never resumed (its
 * disk is the template's as frozen), 2 resumed once (its disk has moved
 * on: it no longer needs the template's RAM and state files). */
int
vmc_catalog_instant_resume(struct vmc_catalog *cat, const char *vm,
                           bool resumed, struct vmc_error *err)
{
    int64_t now = 0;
    int r = cat_exec(cat, err, "UPDATE vms SET instant = ? WHERE name = ? "
                     "AND instant = ?", "isi", resumed ? 2 : 1, vm,
                     resumed ? 1 : 2);

    if (r < 0 || cat_changes(cat) == 1) {
        return r;
    }
    r = cat_get_i64(cat, &now, err, "SELECT instant FROM vms WHERE name = "
                    "?", "s", vm);
    if (r == 0 && resumed && now == 2) {
        return vmc_error_set(err, -EBUSY, "VM '%s' was resumed from its "
                             "instant template by another start meanwhile",
                             vm);
    }
    return r < 0 && r != -ENOENT ? r : vmc_error_set(err, -ENOENT, "VM '%s' "
                                                     "is no instant clone "
                                                     "waiting to be "
                                                     "resumed", vm);
}

int
vmc_catalog_instant_was_resumed(struct vmc_catalog *cat, const char *vm,
                                struct vmc_error *err)
{
    int64_t v = 0;
    int r = cat_get_i64(cat, &v, err, "SELECT instant FROM vms WHERE name = "
                        "?", "s", vm);

    return r < 0 ? r : v == 2;
}

static void
file_release(struct vmc_instant_file *f)
{
    free(f->path);
    free(f->sha256);
}

void
vmc_instant_release(struct vmc_instant *in)
{
    if (!in) {
        return;
    }
    free(in->qemu_version);
    free(in->machine);
    free(in->devices);
    free(in->kernel);
    free(in->initrd);
    free(in->append);
    free(in->template_name);
    file_release(&in->ram);
    file_release(&in->state);
    memset(in, 0, sizeof(*in));
}

/* fsck: each instant template's RAM and state files, checked cheaply, or
 * (@verify) against their digests too; a changed one is a problem. */
int
cat_instant_fsck(struct vmc_catalog *cat, bool verify,
                 vmc_catalog_report_fn fn, void *opaque, unsigned *problems,
                 struct vmc_error *err)
{
    struct cat_strv names = { 0 };
    cat_stmt *st = NULL;
    size_t i;
    int r = cat_prepare(cat, &st, err, "SELECT t.name FROM "
                        "instant_templates i JOIN templates t ON t.id = "
                        "i.template_id ORDER BY t.name", NULL);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        r = cat_strv_push(&names, cat_col(st, 0)) < 0 ? -ENOMEM : 0;
    }
    cat_finalize(st);
    for (i = 0; r == 0 && i < names.n; i++) {
        struct vmc_instant in;
        struct vmc_instant_file *f[2];
        char subj[600], why[300];
        int k;

        r = vmc_catalog_instant_get(cat, names.v[i], &in, err);
        if (r < 0) {
            break;
        }
        f[0] = &in.ram;
        f[1] = &in.state;
        for (k = 0; k < 2; k++) {
            snprintf(subj, sizeof(subj), "instant template '%s' %s file %s",
                     names.v[i], k ? "state" : "RAM", f[k]->path);
            if (vmc_instant_file_check(f[k], verify, why, sizeof(why))) {
                cat_report(fn, opaque, "problem", subj, why);
                (*problems)++;
            }
        }
        vmc_instant_release(&in);
    }
    cat_strv_release(&names);
    return r;
}

/* The frozen files of the instant templates that journal @jid is
 * deleting: @fn(path, inode at freeze) for each. */
static int
deleting_files(struct vmc_catalog *cat, int64_t jid,
               void (*fn)(const char *path, int64_t ino, int64_t mtime,
                          void *opaque),
               void *opaque, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "SELECT i.ram_file, i.ram_ino, "
                        "i.ram_mtime, i.state_file, i.state_ino, "
                        "i.state_mtime FROM instant_templates i JOIN "
                        "templates t ON t.id = i.template_id WHERE "
                        "t.journal_id = ? AND t.state = 'deleting'", "I",
                        jid);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        fn(cat_col(st, 0), cat_col_i64(st, 1), cat_col_i64(st, 2), opaque);
        fn(cat_col(st, 3), cat_col_i64(st, 4), cat_col_i64(st, 5), opaque);
        r = 0;
    }
    cat_finalize(st);
    return r;
}

/* Whether @path is still the file the freeze recorded (its inode, and
 * its mtime: an inode number is reused at once by a file made after an
 * unlink): another file put in its place, or the file changed since, is
 * not the catalog's to delete. */
static bool
is_frozen_file(const char *path, int64_t ino, int64_t mtime, struct stat *st)
{
    return path && lstat(path, st) == 0 && S_ISREG(st->st_mode) &&
           (int64_t)st->st_ino == ino &&
           (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec ==
           mtime;
}

static void
add_bytes(const char *path, int64_t ino, int64_t mtime, void *opaque)
{
    struct stat st;

    if (is_frozen_file(path, ino, mtime, &st)) {
        *(uint64_t *)opaque += (uint64_t)st.st_blocks * 512;
    }
}

uint64_t
cat_instant_deleting_bytes(struct vmc_catalog *cat, int64_t jid)
{
    uint64_t bytes = 0;

    deleting_files(cat, jid, add_bytes, &bytes, NULL);
    return bytes;
}

static void
unlink_frozen(const char *path, int64_t ino, int64_t mtime, void *opaque)
{
    struct stat st;

    (void)opaque;
    if (is_frozen_file(path, ino, mtime, &st) && unlink(path) == 0) {
        cat_fsync_dir_of(path);
    }
}

int
cat_instant_unlink_deleting(struct vmc_catalog *cat, int64_t jid,
                            struct vmc_error *err)
{
    return deleting_files(cat, jid, unlink_frozen, NULL, err);
}

int
cat_instant_refuse_flatten(struct vmc_catalog *cat, int64_t tid,
                           const char *name, struct vmc_error *err)
{
    struct cat_strv names = { 0 };
    char list[512] = "";
    size_t len = 0, i;
    int r = cat_collect(cat, &names, err, "SELECT name FROM vms WHERE "
                        "template_id = ? AND instant = 1 ORDER BY name", tid);

    for (i = 0; r == 0 && i < names.n && i < 5; i++) {
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s'%s'",
                                i ? ", " : "", names.v[i]);
        if (len >= sizeof(list)) {
            break;
        }
    }
    if (r == 0 && names.n) {
        r = vmc_error_set(err, -ENOTEMPTY, "instant template '%s' has %zu "
                          "instant clone%s (%s%s): --flatten-dependents "
                          "cannot detach them, they resume its RAM and "
                          "state files whatever their disks; remove them "
                          "first ('vm-clone rm %s')", name, names.n,
                          names.n == 1 ? "" : "s", list,
                          names.n > 5 ? ", ..." : "", names.v[0]);
    }
    cat_strv_release(&names);
    return r;
}

int
cat_instant_scan(struct vmc_catalog *cat,
                 int (*fn)(const char *path, void *opaque), void *opaque,
                 struct vmc_error *err)
{
    struct cat_strv known = { 0 };
    char *dir = NULL;
    struct dirent *de;
    DIR *d;
    int r = cat_collect(cat, &known, err, "SELECT state_file FROM "
                        "instant_templates WHERE template_id > ?", 0);
    size_t i;

    if (r == 0 && asprintf(&dir, "%s/instant", cat->home) < 0) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (i = 0; r == 0 && i < known.n; i++) {
        char real[PATH_MAX];

        if (realpath(known.v[i], real)) {
            free(known.v[i]);
            known.v[i] = strdup(real);
            r = known.v[i] ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");
        }
    }
    d = r == 0 ? opendir(dir) : NULL;      /* none before the first freeze */
    while (d && r == 0 && (de = readdir(d))) {
        char *path = NULL, real[PATH_MAX];
        bool found = false;
        struct stat st;

        if (de->d_name[0] == '.' ||
            asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
            continue;
        }
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            realpath(path, real)) {
            for (i = 0; i < known.n && !found; i++) {
                found = known.v[i] && !strcmp(known.v[i], real);
            }
            r = found ? 0 : fn(path, opaque);
        }
        free(path);
    }
    if (d) {
        closedir(d);
    }
    free(dir);
    cat_strv_release(&known);
    return r;
}
