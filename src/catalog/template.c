/*
 * template.c - templates: import (copy into a secondary pool as
 * standalone qcow2, seal), creation from a VM, retire, delete (optionally
 * detaching dependents first). The per-pool template copies are made in
 * template-copy.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "catalog-ops.h"
#include "engine.h"
#include "vmclone-seal.h"

/* ------------------------------------------------------------ helpers */

void
vmc_import_opts_init(struct vmc_import_opts *o)
{
    memset(o, 0, sizeof(*o));
}

/* ------------------------------------------------------------- import */

/* Open a VM's live disk to copy it: under the shared lock QEMU takes
 * (read, no writer allowed) and held until the copy is done, so that a
 * running VM or a writable serve (whose acknowledged writes may not be in
 * the file yet) refuses the copy instead of making it stale (issue 9
 * finding 3). */
int
cat_open_live_disk(const char *vm, const char *path, struct vmc_image **out,
                   struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2 };
    int r = vmc_image_open(out, path, &oo, err);

    if (r == -EBUSY) {
        r = cat_vm_in_use_error(vm, path, "a copy would miss its unflushed "
                                "writes: stop it, or copy a snapshot "
                                "(VM@SNAP)", err);
    }
    return r;
}

/* Whether real path @real is @root or under it. */
static bool
path_within(const char *real, const char *root)
{
    size_t n = strlen(root);

    if (n == 1 && root[0] == '/') {
        return true;
    }
    return !strncmp(real, root, n) && (real[n] == '\0' || real[n] == '/');
}

/* The directory holding @path, resolved (symlinks followed). */
static char *
real_dir_of(const char *path)
{
    char *real = realpath(path, NULL), *slash;

    if (real && (slash = strrchr(real, '/'))) {
        if (slash == real) {
            slash[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
    return real;
}

/*
 * Catalog imports take images from untrusted users, so the backing chain
 * of an image imported with --flatten is confined (issue 9 finding 7):
 * every backing file, symlinks resolved, must lie in the directory of the
 * imported image or under @allow (--allow-backing DIR); an absolute
 * backing name is refused unless @allow is given and it lies under it.
 * Otherwise a backing name such as '/etc/shadow' or '../../etc/passwd'
 * would turn a host file into a sealed template served to any client.
 */
static int
confine_chain(const char *path, const char *allow, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_AUTO,
                                .flags = VMC_OPEN_NO_BACKING |
                                         VMC_OPEN_FORCE_SHARE };
    char *root = real_dir_of(path), *aroot = NULL, *cur = strdup(path);
    unsigned depth;
    int r = 0;

    if (!root) {
        r = vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    } else if (!cur) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0 && allow && !(aroot = realpath(allow, NULL))) {
        r = vmc_error_set(err, -errno, "--allow-backing '%s': %s", allow,
                          strerror(errno));
    }
    for (depth = 0; r == 0 && depth < 256; depth++) {
        struct vmc_image *img = NULL;
        struct vmc_image_info info;
        char *bp = NULL, *real = NULL;

        r = vmc_image_open(&img, cur, &oo, err);
        if (r < 0) {
            break;
        }
        vmc_image_get_info(img, &info);
        if (!info.backing_file || !*info.backing_file) {
            vmc_image_close(img);
            break;
        }
        r = vmc_backing_path_resolve(cur, info.backing_file, &bp);
        if (r == 0 && !(real = realpath(bp, NULL))) {
            r = vmc_error_set(err, -errno, "'%s': backing file '%s': %s", cur,
                              info.backing_file, strerror(errno));
        }
        if (r == 0 && info.backing_file[0] == '/' && !aroot) {
            r = vmc_error_set(err, -EPERM, "'%s': backing file '%s' is an "
                              "absolute name: refused (an import follows "
                              "only backing files in the image's directory; "
                              "--allow-backing DIR allows another)", cur,
                              info.backing_file);
        }
        if (r == 0 && !path_within(real, root) &&
            !(aroot && path_within(real, aroot))) {
            r = vmc_error_set(err, -EPERM, "'%s': backing file '%s' "
                              "resolves to '%s', outside '%s': refused (an "
                              "import follows only backing files in the "
                              "image's directory; --allow-backing DIR allows "
                              "another)", cur, info.backing_file, real,
                              aroot ? aroot : root);
        }
        vmc_image_close(img);
        free(bp);
        free(cur);
        cur = real;
    }
    free(cur);
    free(root);
    free(aroot);
    return r;
}

/* Open an image to import: alone (its backing reference is only read),
 * or with its chain when flattening was asked for; a live disk of VM
 * @live_vm under the lock of cat_open_live_disk(). */
static int
open_import(const char *path, enum vmc_format fmt, bool flatten,
            bool is_ours, const char *live_vm, const char *allow_backing,
            struct vmc_image **out, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = fmt,
                                .flags = VMC_OPEN_NO_BACKING |
                                         VMC_OPEN_FORCE_SHARE };
    struct vmc_image_info info;
    struct vmc_image *img = NULL;
    struct stat stt;
    char *bp = NULL;
    int r;

    if (stat(path, &stt) < 0) {
        return vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    if (!S_ISREG(stt.st_mode)) {
        return vmc_error_set(err, -EINVAL, "'%s' is not a regular file",
                             path);
    }
    r = vmc_image_open(&img, path, &oo, err);
    if (r < 0) {
        return r;
    }
    vmc_image_get_info(img, &info);
    if (!info.backing_file || !*info.backing_file || is_ours) {
        vmc_image_close(img);
        if (live_vm) {
            return cat_open_live_disk(live_vm, path, out, err);
        }
        oo.flags &= ~(unsigned)VMC_OPEN_NO_BACKING;
        return vmc_image_open(out, path, &oo, err);
    }
    if (!flatten) {
        r = vmc_error_set(err, -EINVAL, "'%s' has a backing file ('%s'): "
                          "refused, a template must be standalone (use "
                          "--flatten to import its guest view)", path,
                          info.backing_file);
        vmc_image_close(img);
        return r;
    }
    r = vmc_backing_path_resolve(path, info.backing_file, &bp);
    if (r == 0 && (stat(bp, &stt) < 0 || !S_ISREG(stt.st_mode))) {
        r = vmc_error_set(err, -EINVAL, "'%s': backing file '%s' is not a "
                          "regular file: refused", path, info.backing_file);
    }
    free(bp);
    vmc_image_close(img);
    if (r == 0) {
        r = confine_chain(path, allow_backing, err);
    }
    if (r < 0) {
        return r;
    }
    oo.flags &= ~(unsigned)VMC_OPEN_NO_BACKING;
    return vmc_image_open(out, path, &oo, err);
}

/* A file declared raw whose bytes name a container (format confusion is
 * how hostile images get in) is refused unless @o->force_raw. */
static int
refuse_declared_raw(const char *path, struct vmc_image *img,
                    const struct vmc_import_opts *o, struct vmc_error *err)
{
    const char *name = vmc_image_content_format(img);

    if (o->format != VMC_FMT_RAW || o->force_raw || !name) {
        return 0;
    }
    return vmc_error_set(err, -EINVAL, "'%s' was named raw but is a %s "
                         "image: refused (import it as what it is without "
                         "--format raw, or pass --force-raw if its bytes "
                         "really are a raw disk)", path, name);
}

/* The template row and its volume rows, 'creating', in the op's
 * transaction. */
static int
import_stage_rows(struct cat_op *op, const char *name,
                  struct vmc_image *const *imgs, size_t n, int64_t pool_id,
                  const struct vmc_hw_spec *hw, const char *origin,
                  int64_t *tid, int64_t *vids, struct vmc_error *err)
{
    struct vmc_catalog *cat = op->cat;
    char label[96];
    size_t i;
    int r;

    r = cat_begin(cat, err);
    if (r < 0) {
        return r;
    }
    r = cat_op_begin(op, name, err);
    if (r == 0) {
        r = cat_exec(cat, err, "INSERT INTO templates(name, state, cpus, "
                     "memory_mb, nics, pool_id, origin, journal_id, created, "
                     "firmware) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     "ssIIIIsIds", name, CAT_CREATING,
                     (int64_t)(hw->cpus ? hw->cpus : 1),
                     (int64_t)(hw->memory_mb ? hw->memory_mb : 1024),
                     (int64_t)(hw->nics == VMC_HW_NO_NICS ? 0
                               : hw->nics ? hw->nics : 1),
                     pool_id, origin, op->jid, cat_now(),
                     hw->uefi ? "uefi" : NULL);
        if (r == -EEXIST) {
            r = vmc_error_set(err, r, "a template named '%s' already "
                              "exists", name);
        }
    }
    if (r == 0) {
        *tid = cat_last_id(cat);
    }
    snprintf(label, sizeof(label), "tmpl-%s", name);
    for (i = 0; r == 0 && i < n; i++) {
        r = cat_volume_insert(cat, pool_id, label, (int)i,
                              vmc_image_size(imgs[i]), 0, "template_id",
                              *tid, 0, op->jid, &vids[i], err);
    }
    return cat_op_stage(op, r, err);
}

/* One file: convert to a temporary name, sync, rename, sync the
 * directory; then seal under the final name and record the seal. */
static int
import_one_file(struct vmc_catalog *cat, struct vmc_image *img, int64_t vid,
                struct cat_progress *prog, struct vmc_error *err)
{
    struct vmc_convert_opts co;
    struct vmc_seal_info si;
    char *path = NULL, *tmp = NULL;
    int r;

    r = cat_volume_path(cat, vid, &path, err);
    if (r == 0) {
        const char *slash = strrchr(path, '/');

        if (asprintf(&tmp, "%.*s/.%s.tmp-%d", (int)(slash - path), path,
                     slash + 1, (int)getpid()) < 0) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
        }
    }
    if (r == 0) {
        vmc_convert_opts_init(&co);
        co.progress = cat_progress_fn(prog);
        co.opaque = prog;
        co.workers = 2;
        r = vmc_convert(img, tmp, &co, err);
        if (r == 0) {
            cat_progress_next(prog);
        }
    }
    if (r == 0) {
        cat_crashpoint("import.before-rename");
        r = engine_rename(tmp, path, true);
        if (r < 0) {
            vmc_error_set(err, r, "cannot rename '%s' to '%s': %s", tmp,
                          path, strerror(-r));
        } else {
            cat_fsync_dir_of(path);
        }
    }
    if (r == 0) {
        struct vmc_open_opts so = { .format = VMC_FMT_QCOW2 };

        r = vmc_image_seal(path, 0, 2, &so, &si, err);
    }
    if (r == 0 && (r = cat_mode_new_readonly(path)) < 0) {
        vmc_error_set(err, r, "chmod '%s': %s", path, strerror(-r));
    }
    if (r == 0) {
        r = cat_exec(cat, err, "UPDATE volumes SET seal = ? WHERE id = ?",
                     "sI", si.root_hex, vid);
    }
    if (r < 0 && tmp) {
        unlink(tmp);
    }
    free(tmp);
    free(path);
    return r;
}

/* The template and its @n volumes become ready in one commit; on any
 * failure the journal rolls them back. */
int
cat_template_ready(struct cat_op *op, size_t n, int64_t tid,
                   struct vmc_error *err)
{
    int r = cat_op_volumes_ready(op, (int)n, err);

    if (r == 0) {
        r = cat_op_cas(op, 1, "the template", err, "UPDATE templates SET "
                       "state = ? WHERE id = ? AND state = ?", "sIs",
                       CAT_READY, tid, CAT_CREATING);
    }
    return r == 0 ? cat_op_ready(op, err) : r;
}

static int
import_publish(struct cat_op *op, int r, size_t n, int64_t tid,
               struct vmc_error *err)
{
    if (r == 0) {
        r = cat_op_publish(op, err);
    }
    if (r == 0) {
        r = cat_template_ready(op, n, tid, err);
    }
    if (r < 0 && cat_op_pending(op)) {
        cat_op_fail(op);
    }
    return r;
}

/* Make template @name from @n source files: rows first, then files. */
static int
import_files(struct vmc_catalog *cat, const char *name,
             const char *const *srcs, size_t n, bool ours,
             const char *live_vm, const struct vmc_import_opts *o,
             const struct vmc_hw_spec *hw, const char *origin,
             struct vmc_error *err)
{
    struct vmc_image **imgs = calloc(n ? n : 1, sizeof(*imgs));
    int64_t *vids = calloc(n ? n : 1, sizeof(*vids));
    int64_t pool_id = 0, tid = 0;
    struct cat_op op;
    struct cat_progress prog;
    int r;
    size_t i;

    cat_op_init(&op, cat, origin ? "template-create" : "import");
    cat_progress_init(&prog, cat, o->progress, o->opaque, n);
    if (!imgs || !vids) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    r = cat_check_name("template", name, err);
    if (r == 0 && n == 0) {
        r = vmc_error_set(err, -EINVAL, "a template needs at least one "
                          "image");
    }
    for (i = 0; r == 0 && i < n; i++) {
        r = open_import(srcs[i], ours ? VMC_FMT_QCOW2 : o->format,
                        o->flatten, ours, live_vm, o->allow_backing,
                        &imgs[i], err);
        if (r == 0 && !ours) {
            r = refuse_declared_raw(srcs[i], imgs[i], o, err);
        }
    }
    if (r == 0) {
        r = cat_pool_lookup(cat, o->pool, "secondary", &pool_id, NULL, err);
    }
    if (r == 0) {
        r = import_stage_rows(&op, name, imgs, n, pool_id, hw, origin, &tid,
                              vids, err);
    }
    if (r < 0) {
        goto out;
    }
    for (i = 0; r == 0 && i < n; i++) {
        r = import_one_file(cat, imgs[i], vids[i], &prog, err);
    }
    cat_crashpoint("import.before-commit");
    r = import_publish(&op, r, n, tid, err);
out:
    cat_op_end(&op);
    for (i = 0; imgs && i < n; i++) {
        vmc_image_close(imgs[i]);
    }
    free(imgs);
    free(vids);
    return r;
}

int
vmc_catalog_template_import(struct vmc_catalog *cat, const char *name,
                            const char *const *images, size_t n,
                            const struct vmc_import_opts *o,
                            struct vmc_error *err)
{
    return import_files(cat, name, images, n, false, NULL, o, &o->hw, NULL,
                        err);
}

int
vmc_catalog_template_from_vm(struct vmc_catalog *cat, const char *name,
                             const char *vm, const char *snapshot,
                             const struct vmc_import_opts *o,
                             struct vmc_error *err)
{
    struct vmc_hw_spec hw = o->hw;
    struct cat_disks disks = { 0 };
    const char **paths = NULL;
    char *origin = NULL;
    int64_t vid = 0, sid = 0, v = 0;
    size_t i;
    int r;

    r = cat_get_i64(cat, &vid, err, "SELECT id FROM vms WHERE name = ? AND "
                    "state = 'ready'", "s", vm);
    if (r == -ENOENT) {
        return vmc_error_set(err, r, "no VM named '%s'", vm);
    }
    if (r < 0) {
        return r;
    }
    if (snapshot) {
        r = cat_get_i64(cat, &sid, err, "SELECT id FROM snapshots WHERE "
                        "vm_id = ? AND name = ? AND state = 'ready'", "Is",
                        vid, snapshot);
        if (r == -ENOENT) {
            return vmc_error_set(err, r, "VM '%s' has no snapshot '%s'", vm,
                                 snapshot);
        }
        r = cat_disks_of(cat, &disks, CAT_DISKS_SNAPSHOT, sid, err);
    } else {
        r = cat_disks_of(cat, &disks, CAT_DISKS_VM_TOP, vid, err);
    }
    if (r < 0) {
        return r;
    }
    if (!hw.cpus && cat_get_i64(cat, &v, NULL, "SELECT cpus FROM vms WHERE "
                                "id = ?", "I", vid) == 0) {
        hw.cpus = (unsigned)v;
    }
    if (!hw.memory_mb && cat_get_i64(cat, &v, NULL, "SELECT memory_mb FROM "
                                     "vms WHERE id = ?", "I", vid) == 0) {
        hw.memory_mb = (uint64_t)v;
    }
    if (!hw.nics && cat_get_i64(cat, &v, NULL, "SELECT count(*) FROM nics "
                                "WHERE vm_id = ?", "I", vid) == 0) {
        hw.nics = v ? (unsigned)v : VMC_HW_NO_NICS;
    }
    paths = calloc(disks.n ? disks.n : 1, sizeof(*paths));
    if (!paths || asprintf(&origin, "vm %s%s%s", vm, snapshot ? "@" : "",
                           snapshot ? snapshot : "") < 0) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (i = 0; r == 0 && i < disks.n; i++) {
        paths[i] = disks.d[i].path;
    }
    if (r == 0) {
        r = import_files(cat, name, paths, disks.n, true,
                         snapshot ? NULL : vm, o, &hw, origin, err);
    }
    free(origin);
    free(paths);
    cat_disks_release(&disks);
    return r;
}

/* ------------------------------------------------------ retire and rm */

static int detach_dependents(struct vmc_catalog *cat, const char *owned_sql,
                             int64_t id, struct vmc_error *err);

int
vmc_catalog_template_retire(struct vmc_catalog *cat, const char *name,
                            bool flatten_dependents, bool *freed,
                            struct vmc_error *err)
{
    int64_t tid = 0;
    int r;

    if (freed) {
        *freed = false;
    }
    r = cat_get_i64(cat, &tid, err, "SELECT id FROM templates WHERE name = ? "
                    "AND state = 'ready'", "s", name);
    if (r == -ENOENT) {
        return vmc_error_set(err, r, "no template named '%s'", name);
    }
    /* first the dependents (refused as a whole when space is short),
     * then the flag: a clone made meanwhile keeps the template until it
     * goes */
    if (r == 0 && flatten_dependents &&
        (r = cat_instant_refuse_flatten(cat, tid, name, err)) == 0) {
        r = detach_dependents(cat, cat_owned_template, tid, err);
    }
    if (r == 0) {
        r = cat_begin(cat, err);
    }
    if (r < 0) {
        return r;
    }
    r = cat_exec(cat, err, "UPDATE templates SET retired = 1 WHERE id = ? "
                 "AND state = 'ready'", "I", tid);
    if (r == 0 && cat_changes(cat) != 1) {
        r = vmc_error_set(err, -EBUSY, "template '%s' is being removed by "
                          "another operation", name);
    }
    if (r == 0) {
        r = cat_commit(cat, err);
    } else {
        cat_rollback(cat);
    }
    if (r == 0) {
        r = cat_free_retired(cat, err);
    }
    if (r == 0 && freed &&
        cat_get_i64(cat, &tid, NULL, "SELECT id FROM templates WHERE "
                    "name = ?", "s", name) == -ENOENT) {
        *freed = true;
    }
    return r;
}

/* What flattening the dependents adds, per filesystem. */
struct fs_need {
    dev_t dev;
    uint64_t need;
    const char *path;       /* one file on it (borrowed) */
};

/* Refuse with -ENOSPC unless each filesystem holding a dependent has the
 * bytes that flattening its dependents there adds (plus 1/16). */
static int
check_space(const struct cat_disks *deps, struct vmc_error *err)
{
    struct fs_need *fs = calloc(deps->n ? deps->n : 1, sizeof(*fs));
    size_t nfs = 0, i, k;
    int r = 0;

    if (!fs) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (i = 0; r == 0 && i < deps->n; i++) {
        struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                    .flags = VMC_OPEN_FORCE_SHARE };
        struct vmc_image *img = NULL;
        struct stat st;
        struct vmc_du du;

        if (stat(deps->d[i].path, &st) < 0) {
            r = vmc_error_set(err, -errno, "'%s': %s", deps->d[i].path,
                              strerror(errno));
            break;
        }
        r = vmc_image_open(&img, deps->d[i].path, &oo, err);
        if (r == 0) {
            r = vmc_du(img, &du, err);
        }
        vmc_image_close(img);
        for (k = 0; r == 0 && k < nfs && fs[k].dev != st.st_dev; k++) {
        }
        if (r == 0 && k == nfs) {
            fs[nfs].dev = st.st_dev;
            fs[nfs++].path = deps->d[i].path;
        }
        if (r == 0) {
            fs[k].need += du.flatten;
        }
    }
    for (k = 0; r == 0 && k < nfs; k++) {
        struct statvfs sv;
        uint64_t avail;
        const char *slash = strrchr(fs[k].path, '/');

        if (statvfs(fs[k].path, &sv) < 0) {
            r = vmc_error_set(err, -errno, "statvfs '%s': %s", fs[k].path,
                              strerror(errno));
            break;
        }
        avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        if (avail < fs[k].need + fs[k].need / 16) {
            r = vmc_error_set(err, -ENOSPC, "flattening the dependents "
                              "needs %" PRIu64 " bytes in '%.*s', which "
                              "has %" PRIu64 " free: nothing done",
                              fs[k].need,
                              slash ? (int)(slash - fs[k].path) : 1,
                              slash ? fs[k].path : ".", avail);
        }
    }
    free(fs);
    return r;
}

/* Make every volume that depends directly on @owned_sql(@id) standalone
 * (flatten in place; its guest view does not change), after checking
 * that every filesystem involved has the space. */
/* -ENOTEMPTY when a frozen template's layer sits on the volumes of
 * @owned_sql(@id) (freeze.c): it is a template, never flattened into a
 * VM; it goes first. */
static int
refuse_frozen_dependent(struct vmc_catalog *cat, const char *owned_sql,
                        int64_t id, struct vmc_error *err)
{
    char *sql = NULL, *name = NULL;
    int r;

    if (asprintf(&sql, "SELECT t.name FROM volumes v JOIN templates t ON "
                 "t.id = v.template_id WHERE v.parent_id IN (%s) AND v.id "
                 "NOT IN (%s) ORDER BY t.id LIMIT 1", owned_sql,
                 owned_sql) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_get_str(cat, &name, err, sql, "I", id);
    if (r == 0) {
        r = vmc_error_set(err, -ENOTEMPTY, "template '%s' (frozen) sits on "
                          "it: a template is not flattened; remove it first "
                          "('vm-clone template rm %s')", name, name);
    } else if (r == -ENOENT) {
        r = 0;
    }
    free(name);
    free(sql);
    return r;
}

static int
detach_dependents(struct vmc_catalog *cat, const char *owned_sql, int64_t id,
                  struct vmc_error *err)
{
    struct cat_disks deps = { 0 };
    struct cat_progress prog;
    char *sql = NULL;
    struct cat_op op;
    int r;
    size_t i;

    if (asprintf(&sql, "SELECT o.id, 0, o.disk, o.virtual_size, o.path FROM "
                 "volume_owners o WHERE o.parent_id IN (%s) AND o.id NOT IN "
                 "(%s) AND o.state = 'ready' ORDER BY o.id", owned_sql,
                 owned_sql) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_disks_load(cat, &deps, sql, id, err);
    free(sql);
    if (r == 0 && deps.n) {
        r = refuse_frozen_dependent(cat, owned_sql, id, err);
    }
    if (r < 0 || deps.n == 0) {
        cat_disks_release(&deps);
        return r;
    }
    r = check_space(&deps, err);
    if (r == 0) {
        r = cat_begin(cat, err);
    }
    if (r < 0) {
        cat_disks_release(&deps);
        return r;
    }
    cat_op_init(&op, cat, "detach");
    r = cat_op_begin(&op, NULL, err);
    for (i = 0; r == 0 && i < deps.n; i++) {
        r = cat_op_cas(&op, 1, "a dependent volume", err, "UPDATE volumes "
                       "SET journal_id = ? WHERE id = ? AND state = ?", "IIs",
                       op.jid, deps.d[i].vid, CAT_READY);
    }
    r = cat_op_stage(&op, r, err);
    if (r < 0) {
        cat_op_end(&op);
        cat_disks_release(&deps);
        return r;
    }
    cat_progress_init(&prog, cat, NULL, NULL, deps.n);
    for (i = 0; r == 0 && i < deps.n; i++) {
        struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                    .flags = VMC_OPEN_RDWR };
        struct vmc_image *img = NULL;
        struct stat stt;
        bool ro = stat(deps.d[i].path, &stt) == 0 &&
                  !(stt.st_mode & S_IWUSR);

        if (ro) {
            cat_mode_writable(deps.d[i].path);
        }
        r = vmc_image_open(&img, deps.d[i].path, &oo, err);
        if (r == 0) {
            r = vmc_flatten(img, cat_progress_fn(&prog), &prog, err);
            if (r == 0) {
                cat_progress_next(&prog);
            }
        }
        if (vmc_image_close(img) < 0 && r == 0) {
            r = vmc_error_set(err, -EIO, "cannot flush '%s'",
                              deps.d[i].path);
        }
        if (ro) {
            cat_mode_readonly(deps.d[i].path);
        }
    }
    cat_disks_release(&deps);
    /* the files decide: parent_id from each header */
    if (cat_op_publish(&op, NULL) == 0) {
        int q = cat_reconcile_journal(cat, op.jid, NULL, r < 0 ? NULL : err);

        if (q == 0) {
            q = cat_exec(cat, NULL, "UPDATE vms SET clone_type = 'full', "
                         "mechanism = 'flatten' WHERE id IN (SELECT vm_id "
                         "FROM volumes WHERE journal_id = ? AND parent_id IS "
                         "NULL)", "I", op.jid);
        }
        q = cat_op_settle(&op, q, r, err);
        if (r == 0) {
            r = q;
        }
    } else {
        cat_op_abandon(&op);
    }
    cat_op_end(&op);
    return r;
}

int
vmc_catalog_template_rm(struct vmc_catalog *cat, const char *name,
                        bool flatten_dependents, struct vmc_error *err)
{
    int64_t tid = 0;
    int r = cat_get_i64(cat, &tid, err, "SELECT id FROM templates WHERE "
                        "name = ? AND state = 'ready'", "s", name);

    if (r == -ENOENT) {
        return vmc_error_set(err, r, "no template named '%s'", name);
    }
    if (r == 0 && flatten_dependents &&
        (r = cat_instant_refuse_flatten(cat, tid, name, err)) == 0) {
        r = detach_dependents(cat, cat_owned_template, tid, err);
    }
    if (r == 0) {       /* an instant template's files go with it */
        r = cat_template_delete(cat, tid, name, err);
    }
    return r;
}
