/*
 * freeze.c - an instant template made in place from a frozen VM (issue
 * 16), and the rule for templates that live in a primary pool.
 *
 * A freeze does not copy the VM's disks. Its top layers, which hold the
 * disk state that goes with the frozen RAM, become the template's own
 * disks where they are: sealed (mode 0444, a digest per chunk of the
 * guest view) and owned by the template row, still on the layers below
 * them (the VM's template copy, or its snapshots). The VM gets new empty
 * overlays on them, as a snapshot would give it, and stays a VM of its
 * own. So the time and space of a freeze do not grow with the disk.
 *
 * A template whose home is a primary pool (templates.pool_id of kind
 * primary: only frozen templates) is used in place: linked clones into
 * that pool are overlays of its disks (no base copy, no hot copies), and
 * a copy into another pool is a flattened, sealed copy like any other
 * (template-copy.c). Its layers depend on the layers below them through
 * volumes.parent_id like any child: the template they came from cannot be
 * removed or freed while the frozen one exists.
 *
 * The operation is journaled as "freeze" with the VM as target: rows
 * first (template, the VM's new overlays, creating), then the files
 * (read-only, seal, overlays), then one commit that moves the top layers
 * to the template and makes the rest ready. A crash before that commit
 * rolls back like a snapshot: the overlays go, and the VM's layers are
 * unsealed and writable again (journal.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-ops.h"
#include "vmclone-seal.h"

int
cat_template_home(struct vmc_catalog *cat, int64_t tid, int64_t *pool_id,
                  struct vmc_error *err)
{
    return cat_get_i64(cat, pool_id, err, "SELECT CASE WHEN p.kind = "
                       "'primary' THEN t.pool_id ELSE 0 END FROM templates t "
                       "JOIN pools p ON p.id = t.pool_id WHERE t.id = ?", "I",
                       tid);
}

/* The frozen VM, as the template's settings start from it. */
struct frozen_vm {
    int64_t id, pool_id, cpus, memory_mb, nics;
    char *firmware;
};

/* A VM with snapshots has its top layers on them: a template there would
 * pin the VM (its snapshots' layers under the template's) for good. */
static int
refuse_snapshots(struct vmc_catalog *cat, const char *vm, int64_t id,
                 struct vmc_error *err)
{
    char *snap = NULL;
    int r = cat_get_str(cat, &snap, err, "SELECT name FROM snapshots WHERE "
                        "vm_id = ? ORDER BY id LIMIT 1", "I", id);

    if (r == 0) {
        r = vmc_error_set(err, -ENOTEMPTY, "VM '%s' has snapshots ('%s'): "
                          "its disks sit on them and a frozen template "
                          "would too; remove them first ('vm-clone snapshot "
                          "rm %s %s')", vm, snap, vm, snap);
    } else if (r == -ENOENT) {
        r = 0;
    }
    free(snap);
    return r;
}

/* In the open transaction: VM @vm (ready) and its top layers in @tops,
 * which may take one more layer. */
static int
frozen_vm_lookup(struct vmc_catalog *cat, const char *vm,
                 struct frozen_vm *f, struct cat_disks *tops,
                 struct vmc_error *err)
{
    cat_stmt *st = NULL;
    unsigned depth = 0;
    int r;

    r = cat_prepare(cat, &st, err, "SELECT m.id, m.pool_id, m.cpus, "
                    "m.memory_mb, (SELECT count(*) FROM nics n WHERE "
                    "n.vm_id = m.id), (SELECT t.firmware FROM templates t "
                    "WHERE t.id = m.template_id), m.state FROM vms m WHERE "
                    "m.name = ?", "s", vm);
    if (r == 0 && (r = cat_step(cat, st, err)) == 0) {
        r = vmc_error_set(err, -ENOENT, "no VM named '%s'", vm);
    } else if (r > 0 && strcmp(cat_col(st, 6), CAT_READY)) {
        r = vmc_error_set(err, -EBUSY, "VM '%s' is being %s", vm,
                          !strcmp(cat_col(st, 6), CAT_CREATING)
                          ? "created" : "removed");
    } else if (r > 0) {
        f->id = cat_col_i64(st, 0);
        f->pool_id = cat_col_i64(st, 1);
        f->cpus = cat_col_i64(st, 2);
        f->memory_mb = cat_col_i64(st, 3);
        f->nics = cat_col_i64(st, 4);
        f->firmware = cat_col(st, 5) ? strdup(cat_col(st, 5)) : NULL;
        r = 0;
    }
    cat_finalize(st);
    if (r == 0) {
        r = refuse_snapshots(cat, vm, f->id, err);
    }
    if (r == 0) {
        r = cat_disks_of(cat, tops, CAT_DISKS_VM_TOP, f->id, err);
    }
    if (r == 0 && tops->n == 0) {
        r = vmc_error_set(err, -ENOENT, "VM '%s' has no disks", vm);
    }
    if (r == 0) {
        r = cat_volume_depth(cat, tops->d[0].vid, &depth, err);
    }
    if (r == 0 && depth + 2 > cat_max_depth(cat)) {
        r = vmc_error_set(err, -ELOOP, "freezing VM '%s' would make its "
                          "disks %u layers deep, more than max-chain-depth "
                          "%u: run 'vm-clone consolidate %s' first", vm,
                          depth + 2, cat_max_depth(cat), vm);
    }
    return r;
}

/* The rows, creating: template @name and VM @f's new overlays (*@nv). */
static int
freeze_stage(struct cat_op *op, const char *name, const char *vm,
             const struct frozen_vm *f, const struct cat_disks *tops,
             int64_t *tid, int64_t *nv, struct vmc_error *err)
{
    struct vmc_catalog *cat = op->cat;
    char *origin = NULL;
    size_t i;
    int r;

    if (asprintf(&origin, "vm %s", vm) < 0) {
        cat_rollback(cat);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_op_begin(op, vm, err);
    if (r == 0) {
        r = cat_exec(cat, err, "INSERT INTO templates(name, state, cpus, "
                     "memory_mb, nics, pool_id, origin, journal_id, created, "
                     "firmware) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     "ssIIIIsIds", name, CAT_CREATING, f->cpus, f->memory_mb,
                     f->nics, f->pool_id, origin, op->jid, cat_now(),
                     f->firmware);
        if (r == -EEXIST) {
            r = vmc_error_set(err, r, "a template named '%s' already "
                              "exists", name);
        }
    }
    if (r == 0) {
        *tid = cat_last_id(cat);
    }
    for (i = 0; r == 0 && i < tops->n; i++) {
        r = cat_volume_insert(cat, f->pool_id, vm, tops->d[i].disk,
                              tops->d[i].virtual_size, tops->d[i].vid,
                              "vm_id", f->id, 1, op->jid, &nv[i], err);
    }
    free(origin);
    return cat_op_stage(op, r, err);
}

/* The files: each top layer read-only and sealed (its root in @roots),
 * then the VM's new overlays (@paths) on them. */
static int
freeze_files(struct vmc_catalog *cat, const struct cat_disks *tops,
             const int64_t *nv, char **paths, char (*roots)[65],
             struct vmc_error *err)
{
    size_t i;
    int r = 0;

    for (i = 0; r == 0 && i < tops->n; i++) {
        struct vmc_open_opts so = { .format = VMC_FMT_QCOW2 };
        struct vmc_seal_info si = { 0 };

        if (cat_mode_readonly(tops->d[i].path) < 0) {
            r = vmc_error_set(err, -errno, "chmod '%s': %s",
                              tops->d[i].path, strerror(errno));
            break;
        }
        cat_crashpoint("freeze.before-seal");
        r = vmc_image_seal(tops->d[i].path, 0, 2, &so, &si, err);
        if (r == 0) {
            snprintf(roots[i], 65, "%s", si.root_hex);
            r = cat_volume_path(cat, nv[i], &paths[i], err);
        }
    }
    return r == 0 ? cat_overlays(tops, paths, err) : r;
}

/* One commit: the top layers become the template's, the rest ready. */
static int
freeze_publish(struct cat_op *op, const struct frozen_vm *f, int64_t tid,
               const struct cat_disks *tops, char (*roots)[65],
               const struct vmc_instant *in, struct vmc_error *err)
{
    size_t i;
    int r = cat_op_publish(op, err);

    for (i = 0; r == 0 && i < tops->n; i++) {
        r = cat_op_cas(op, 1, "a disk of the VM", err, "UPDATE volumes SET "
                       "vm_id = NULL, template_id = ?, top = 0, seal = ? "
                       "WHERE id = ? AND vm_id = ? AND top = 1 AND state = "
                       "'ready'", "IsII", tid, roots[i], tops->d[i].vid,
                       f->id);
    }
    if (r == 0) {
        r = cat_instant_insert(op->cat, tid, in, err);
    }
    return r == 0 ? cat_template_ready(op, tops->n, tid, err) : r;
}

/* What a freeze can be refused for, before it runs. */
static int
freeze_refusals(struct vmc_catalog *cat, const char *name, const char *vm,
                struct vmc_error *err)
{
    int r = cat_check_name("template", name, err);

    if (r == 0 && cat_rbd_vm(cat, vm, false)) {   /* refused: no connect */
        r = vmc_error_set(err, -ENOTSUP, "VM '%s' has its disks in an rbd "
                          "pool: freezing is not supported on rbd pools", vm);
    }
    if (r == 0 && cat_get_i64(cat, &(int64_t){ 0 }, NULL, "SELECT id FROM "
                              "templates WHERE name = ?", "s", name) == 0) {
        r = vmc_error_set(err, -EEXIST, "a template named '%s' already "
                          "exists", name);
    }
    return r;
}

int
vmc_catalog_template_freeze_check(struct vmc_catalog *cat, const char *name,
                                  const char *vm, struct vmc_error *err)
{
    struct frozen_vm f = { 0 };
    struct cat_disks tops = { 0 };
    int r = freeze_refusals(cat, name, vm, err);

    if (r == 0) {
        r = cat_begin(cat, err);
    }
    if (r == 0) {
        r = frozen_vm_lookup(cat, vm, &f, &tops, err);
        cat_rollback(cat);
    }
    free(f.firmware);
    cat_disks_release(&tops);
    return r;
}

int
vmc_catalog_template_freeze(struct vmc_catalog *cat, const char *name,
                            const char *vm, const struct vmc_instant *in,
                            char ***layers, size_t *n, struct vmc_error *err)
{
    struct frozen_vm f = { 0 };
    struct cat_disks tops = { 0 };
    struct cat_strv out = { 0 };
    char **paths = NULL, (*roots)[65] = NULL;
    int64_t tid = 0, *nv = NULL;
    struct cat_op op;
    size_t i;
    int r;

    *layers = NULL;
    *n = 0;
    cat_op_init(&op, cat, "freeze");
    r = freeze_refusals(cat, name, vm, err);
    if (r == 0) {
        r = cat_begin(cat, err);
    }
    if (r < 0) {
        return r;
    }
    r = frozen_vm_lookup(cat, vm, &f, &tops, err);
    paths = calloc(tops.n + 1, sizeof(*paths));
    roots = calloc(tops.n + 1, sizeof(*roots));
    nv = calloc(tops.n + 1, sizeof(*nv));
    if (r == 0 && (!paths || !roots || !nv)) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r < 0) {
        cat_rollback(cat);
        goto out;
    }
    r = freeze_stage(&op, name, vm, &f, &tops, &tid, nv, err);
    if (r < 0) {
        goto out;
    }
    r = freeze_files(cat, &tops, nv, paths, roots, err);
    cat_crashpoint("freeze.before-commit");
    if (r == 0) {
        r = freeze_publish(&op, &f, tid, &tops, roots, in, err);
    }
    if (r < 0) {
        cat_op_fail(&op);
        goto out;
    }
    for (i = 0; r == 0 && i < tops.n; i++) {
        r = cat_strv_push(&out, tops.d[i].path);
    }
    if (r < 0) {
        cat_strv_release(&out);
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    } else {
        *layers = out.v;
        *n = out.n;
    }
out:
    cat_op_end(&op);
    for (i = 0; paths && i < tops.n; i++) {
        free(paths[i]);
    }
    free(paths);
    free(roots);
    free(nv);
    free(f.firmware);
    cat_disks_release(&tops);
    return r;
}
