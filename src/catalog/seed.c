/*
 * seed.c - guest customization of a VM (vmc_catalog_vm_customize): its
 * ephemeral mark, and its cloud-init NoCloud seed, an ISO 9660 volume
 * labelled "cidata" built with libisofs (Rock Ridge and Joliet names)
 * holding meta-data, user-data and, when given, network-config.
 *
 * The values the seed is made from are rows of `seeds`; the ISO is a
 * volume of the VM of kind 'seed' in the VM's pool. Its first making is
 * a journaled operation ("seed": the row is 'creating' until the file is
 * durable, so a crash is rolled back by recovery); a remake writes a
 * hidden temporary file (".FILE.tmp-PID", which fsck removes after a
 * crash) and renames it over the old one inside the open transaction
 * that stores the new values, so the row and the file agree.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* we use struct burn_source without libburn */
#define LIBISOFS_WITHOUT_LIBBURN 1

#include "catalog-internal.h"
#include "catalog-ops.h"
#include "iso-dl.h"
#include "vmclone-catalog-admin.h"

/* The seed's files, NULL when absent. */
struct seed_files {
    char *meta_data, *user_data, *network_config;
};

static void
seed_files_release(struct seed_files *f)
{
    free(f->meta_data);
    free(f->user_data);
    free(f->network_config);
}

/* ----------------------------------------------------------- the ISO */

/* Add @text as file @name of @dir (libisofs takes a copy it frees). */
static int
iso_add_text(IsoDir *dir, const char *name, const char *text)
{
    size_t n = strlen(text);
    unsigned char *buf = malloc(n ? n : 1);
    IsoStream *stream = NULL;
    IsoFile *file = NULL;
    int r;

    if (!buf) {
        return ISO_OUT_OF_MEM;
    }
    memcpy(buf, text, n);
    r = iso_memory_stream_new(buf, n, &stream);
    if (r < 0) {
        free(buf);
        return r;
    }
    r = iso_tree_add_new_file(dir, name, stream, &file);
    if (r < 0) {
        iso_stream_unref(stream);   /* else the file took our reference */
        return r;
    }
    iso_node_set_permissions((IsoNode *)file, 0444);
    return r;
}

/* Write the image's bytes from libisofs's writer to @fd. */
static int
iso_drain(struct burn_source *src, int fd)
{
    unsigned char buf[2048];
    int n;

    while ((n = src->read_xt(src, buf, sizeof(buf))) > 0) {
        if (write(fd, buf, (size_t)n) != n) {
            return -EIO;
        }
    }
    return n < 0 ? -EIO : 0;
}

/* Write the "cidata" ISO of @f to @fd. */
static int
seed_iso_write(const struct seed_files *f, int fd, struct vmc_error *err)
{
    struct burn_source *src = NULL;
    IsoWriteOpts *opts = NULL;
    IsoImage *image = NULL;
    IsoDir *root;
    int r;

    if (iso_dl_error()) {
        return vmc_error_set(err, -ELIBACC, "a cloud-init seed needs "
                             "libisofs, which cannot be loaded (%s): install "
                             "libisofs6", iso_dl_error());
    }
    r = iso_init();
    if (r < 0) {
        return vmc_error_set(err, -EIO, "libisofs: cannot initialize");
    }
    r = iso_image_new("cidata", &image);
    if (r >= 0) {
        root = iso_image_get_root(image);
        r = iso_add_text(root, "meta-data", f->meta_data);
    }
    if (r >= 0) {
        r = iso_add_text(root, "user-data", f->user_data);
    }
    if (r >= 0 && f->network_config) {
        r = iso_add_text(root, "network-config", f->network_config);
    }
    if (r >= 0) {
        r = iso_write_opts_new(&opts, 0);
    }
    if (r >= 0) {
        iso_write_opts_set_rockridge(opts, 1);
        iso_write_opts_set_joliet(opts, 1);
        r = iso_image_create_burn_source(image, opts, &src);
    }
    if (r >= 0) {
        r = iso_drain(src, fd) < 0 ? ISO_WRITE_ERROR : 0;
        src->free_data(src);
        free(src);
    }
    iso_write_opts_free(opts);
    iso_image_unref(image);
    iso_finish();
    if (r < 0) {
        return vmc_error_set(err, -EIO, "cannot build the seed ISO "
                             "(libisofs error 0x%x)", (unsigned)r);
    }
    return 0;
}

/* Write @f as the ISO @path: a hidden temporary file, synced, renamed
 * over @path, directory synced. The ISO's size in *@size. */
static int
seed_file_write(const char *path, const struct seed_files *f,
                uint64_t *size, struct vmc_error *err)
{
    const char *slash = strrchr(path, '/');
    char *tmp = NULL;
    struct stat st;
    int fd, r;

    if (asprintf(&tmp, "%.*s/.%s.tmp-%ld", (int)(slash - path), path,
                 slash + 1, (long)getpid()) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
              cat_new_file_mode());
    if (fd < 0) {
        r = vmc_error_set(err, -errno, "cannot create '%s': %s", tmp,
                          strerror(errno));
        free(tmp);
        return r;
    }
    r = seed_iso_write(f, fd, err);
    if (r == 0 && (fsync(fd) < 0 || fstat(fd, &st) < 0)) {
        r = vmc_error_set(err, -errno, "cannot write '%s': %s", tmp,
                          strerror(errno));
    }
    close(fd);
    if (r == 0 && rename(tmp, path) < 0) {
        r = vmc_error_set(err, -errno, "cannot rename '%s': %s", tmp,
                          strerror(errno));
    }
    if (r < 0) {
        unlink(tmp);
    } else {
        *size = (uint64_t)st.st_size;
        cat_fsync_dir_of(path);
    }
    free(tmp);
    return r;
}

/* ------------------------------------------------------ the contents */

/* A hostname cloud-init and YAML take as is. */
static int
check_hostname(const char *h, struct vmc_error *err)
{
    size_t n = strlen(h);

    if (n == 0 || n > 63 || h[0] == '-' || h[0] == '.' ||
        strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789.-") != n) {
        return vmc_error_set(err, -EINVAL, "invalid hostname '%s' (1 to 63 "
                             "of A-Z, a-z, 0-9, '.', '-')", h);
    }
    return 0;
}

/* One line of printable text (an authorized key). */
static int
check_key(const char *k, struct vmc_error *err)
{
    const unsigned char *p;

    for (p = (const unsigned char *)k; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return vmc_error_set(err, -EINVAL, "the SSH key must be one "
                                 "line of printable text");
        }
    }
    return *k ? 0 : vmc_error_set(err, -EINVAL, "the SSH key is empty");
}

/* user-data from the stored values: as given, else a cloud-config with
 * the key (single-quoted, quotes doubled), else an empty cloud-config. */
static char *
make_user_data(const char *user_data, const char *key)
{
    char *out, *q;
    const char *p;

    if (user_data) {
        return strdup(user_data);
    }
    if (!key) {
        return strdup("#cloud-config\n");
    }
    out = malloc(strlen(key) * 2 + 64);
    if (!out) {
        return NULL;
    }
    q = out + sprintf(out, "#cloud-config\nssh_authorized_keys:\n  - '");
    for (p = key; *p; p++) {
        if (*p == '\'') {
            *q++ = '\'';
        }
        *q++ = *p;
    }
    strcpy(q, "'\n");
    return out;
}

/* The files of VM @vid's seed from its row (uuid, name, seeds). */
static int
seed_files_load(struct vmc_catalog *cat, int64_t vid, struct seed_files *f,
                struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "SELECT m.uuid, coalesce(s.hostname, "
                        "m.name), s.ssh_key, s.user_data, s.network_config "
                        "FROM vms m JOIN seeds s ON s.vm_id = m.id WHERE "
                        "m.id = ?", "I", vid);

    memset(f, 0, sizeof(*f));
    if (r == 0 && (r = cat_step(cat, st, err)) == 0) {
        r = vmc_error_set(err, -ENOENT, "the VM has no seed values");
    }
    if (r > 0) {
        r = 0;
        if (asprintf(&f->meta_data, "instance-id: %s\nlocal-hostname: %s\n",
                     cat_col(st, 0), cat_col(st, 1)) < 0) {
            f->meta_data = NULL;
        }
        f->user_data = make_user_data(cat_col(st, 3), cat_col(st, 2));
        f->network_config = cat_col(st, 4) ? strdup(cat_col(st, 4)) : NULL;
        if (!f->meta_data || !f->user_data ||
            (cat_col(st, 4) && !f->network_config)) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
        }
    }
    cat_finalize(st);
    if (r < 0) {
        seed_files_release(f);
    }
    return r;
}

/* ---------------------------------------------------------- the rows */

static int
check_custom(const struct vmc_vm_custom *c, struct vmc_error *err)
{
    int r = c->hostname ? check_hostname(c->hostname, err) : 0;

    if (r == 0 && c->ssh_key) {
        r = check_key(c->ssh_key, err);
    }
    return r;
}

/* Store @c's values for VM @vid (inside the transaction); *@has_seed
 * tells whether the VM now has seed values. */
static int
store_custom(struct vmc_catalog *cat, int64_t vid,
             const struct vmc_vm_custom *c, bool *has_seed,
             struct vmc_error *err)
{
    int64_t n = 0;
    int r = 0;

    if (c->set_ephemeral) {
        r = cat_exec(cat, err, "UPDATE vms SET ephemeral = ? WHERE id = ?",
                     "iI", (int)c->ephemeral, vid);
    }
    if (r == 0 && (c->hostname || c->ssh_key || c->user_data ||
                   c->network_config)) {
        r = cat_exec(cat, err, "INSERT INTO seeds(vm_id) VALUES (?) ON "
                     "CONFLICT (vm_id) DO NOTHING", "I", vid);
        if (r == 0) {
            r = cat_exec(cat, err, "UPDATE seeds SET hostname = coalesce(?, "
                         "hostname), ssh_key = coalesce(?, ssh_key), "
                         "user_data = coalesce(?, user_data), network_config "
                         "= coalesce(?, network_config) WHERE vm_id = ?",
                         "ssssI", c->hostname, c->ssh_key, c->user_data,
                         c->network_config, vid);
        }
    }
    if (r == 0) {
        r = cat_get_i64(cat, &n, err, "SELECT count(*) FROM seeds WHERE "
                        "vm_id = ?", "I", vid);
    }
    *has_seed = n > 0;
    return r;
}

/* A new 'creating' seed volume row of VM @vid (@name) in its pool,
 * under journal row @jid. */
static int
insert_seed_row(struct vmc_catalog *cat, int64_t vid, const char *name,
                int64_t jid, int64_t *sid, struct vmc_error *err)
{
    char *file = NULL;
    int r = cat_exec(cat, err, "INSERT INTO volumes(pool_id, file, format, "
                     "virtual_size, disk, state, vm_id, top, journal_id, "
                     "created, kind) SELECT pool_id, 'new-seed-' || ?, "
                     "'raw', 0, 0, ?, id, 0, ?, ?, 'seed' FROM vms WHERE "
                     "id = ?", "IsIdI", jid, CAT_CREATING, jid, cat_now(),
                     vid);

    if (r < 0) {
        return r;
    }
    *sid = cat_last_id(cat);
    if (asprintf(&file, "%s-seed-%s%s%" PRId64 ".iso", name, cat->store_id,
                 cat->store_id[0] ? "-" : "", *sid) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_exec(cat, err, "UPDATE volumes SET file = ? WHERE id = ?", "sI",
                 file, *sid);
    free(file);
    return r;
}

/* Write the seed of VM @vid to volume @sid's file and record its size. */
static int
write_seed(struct vmc_catalog *cat, int64_t vid, int64_t sid,
           struct vmc_error *err)
{
    struct seed_files f;
    uint64_t size = 0;
    char *path = NULL;
    int r = seed_files_load(cat, vid, &f, err);

    if (r == 0) {
        r = cat_volume_path(cat, sid, &path, err);
    }
    if (r == 0) {
        r = seed_file_write(path, &f, &size, err);
    }
    if (r == 0) {
        r = cat_exec(cat, err, "UPDATE volumes SET virtual_size = ? WHERE "
                     "id = ?", "II", (int64_t)size, sid);
    }
    free(path);
    seed_files_release(&f);
    return r;
}

/* The first seed of VM @vid: a journaled creation (begun inside the
 * caller's transaction, which the stage commits or rolls back). */
static int
create_seed(struct cat_op *op, int64_t vid, const char *name,
            struct vmc_error *err)
{
    int64_t sid = 0;
    int r = cat_op_begin(op, name, err);

    if (r == 0) {
        r = insert_seed_row(op->cat, vid, name, op->jid, &sid, err);
    }
    r = cat_op_stage(op, r, err);
    if (r < 0) {
        return r;
    }
    r = cat_op_publish(op, err);
    if (r == 0) {
        r = write_seed(op->cat, vid, sid, err);
    }
    if (r == 0) {
        r = cat_op_volumes_ready(op, 1, err);
    }
    if (r == 0) {
        r = cat_op_ready(op, err);
    }
    if (r < 0) {
        cat_op_fail(op);
    }
    return r;
}

int
vmc_catalog_vm_customize(struct vmc_catalog *cat, const char *name,
                         const struct vmc_vm_custom *c, struct vmc_error *err)
{
    struct cat_op op;
    int64_t vid = 0, sid = 0;
    bool has_seed = false;
    int r = check_custom(c, err);

    cat_op_init(&op, cat, "seed");
    if (r == 0) {
        r = cat_begin(cat, err);
    }
    if (r < 0) {
        return r;
    }
    r = cat_get_i64(cat, &vid, err, "SELECT id FROM vms WHERE name = ? AND "
                    "state = ?", "ss", name, CAT_READY);
    if (r == -ENOENT) {
        r = vmc_error_set(err, r, "no VM named '%s'", name);
    }
    if (r == 0) {
        r = store_custom(cat, vid, c, &has_seed, err);
    }
    if (r == 0 && has_seed) {
        r = cat_get_i64(cat, &sid, err, "SELECT id FROM volumes WHERE vm_id "
                        "= ? AND kind = 'seed' AND state = ?", "Is", vid,
                        CAT_READY);
        if (r == 0) {
            r = write_seed(cat, vid, sid, err);     /* a remake */
        } else if (r == -ENOENT) {
            /* staged with the values, in this transaction */
            r = create_seed(&op, vid, name, err);
            cat_op_end(&op);
            return r;
        }
    }
    if (r == 0) {
        r = cat_commit(cat, err);
    }
    if (r < 0) {
        cat_rollback(cat);
    }
    cat_op_end(&op);
    return r;
}
