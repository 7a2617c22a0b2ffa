/*
 * vm.c - operations on one VM: snapshots (create, revert, delete by
 * merging into the VM's own layers), delete, flatten, relink and
 * consolidate, each journaled (see schema.c for what a crash leaves).
 *
 * A snapshot freezes the VM's current top volumes (mode 0444, owned by
 * the snapshot row from then on) and gives the VM new overlays on them.
 * In-place rewrites (flatten, relink, consolidate, the merge of a deleted
 * snapshot) go through the engine's crash-safe operations, which keep
 * each file's guest view unchanged at every instant; the catalog takes
 * each file's parent from its header afterwards, after a crash as well.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog-ops.h"
#include "engine.h"
#include "../virt/virt.h"

/* Every volume of a VM and of its snapshots (cat_owned_vm's ids, by
 * primary key: cat_owned_fixed()). */
static const char all_vols_sql[] =
    "SELECT o.id, coalesce(o.parent_id, 0), o.disk, o.virtual_size, o.path "
    "FROM volume_owners o WHERE ?1 IS NOT NULL AND o.id IN ";

static int
vm_lookup(struct vmc_catalog *cat, const char *name, int64_t *id,
          struct vmc_error *err)
{
    char *state = NULL;
    int r = cat_get_str(cat, &state, err, "SELECT state FROM vms WHERE "
                        "name = ?", "s", name);

    if (r == -ENOENT) {
        return vmc_error_set(err, r, "no VM named '%s'", name);
    }
    if (r == 0 && strcmp(state, "ready")) {
        r = vmc_error_set(err, -EBUSY, "VM '%s' is being %s by another "
                          "operation", name, !strcmp(state, CAT_CREATING)
                          ? "created" : "removed");
    }
    free(state);
    if (r == 0) {
        r = cat_get_i64(cat, id, err, "SELECT id FROM vms WHERE name = ?",
                        "s", name);
    }
    /* every caller rewrites the VM's layers: refuse in catalog terms
     * rather than with the lock failure of an image file */
    if (r == 0) {
        r = cat_vm_refuse_running(cat, name, *id, err);
    }
    return r;
}

static int
snap_lookup(struct vmc_catalog *cat, int64_t vm, const char *vm_name,
            const char *name, int64_t *id, struct vmc_error *err)
{
    int r = cat_get_i64(cat, id, err, "SELECT id FROM snapshots WHERE "
                        "vm_id = ? AND name = ? AND state = 'ready'", "Is",
                        vm, name);

    if (r == -ENOENT) {
        return vmc_error_set(err, r, "VM '%s' has no snapshot '%s'", vm_name,
                             name);
    }
    return r;
}

/* The ids of VM @vm and of its snapshot @name. */
static int
vm_snap_lookup(struct vmc_catalog *cat, const char *vm, const char *name,
               int64_t *vid, int64_t *sid, struct vmc_error *err)
{
    int r = vm_lookup(cat, vm, vid, err);

    return r < 0 ? r : snap_lookup(cat, *vid, vm, name, sid, err);
}

/* The final transaction of a creation: the optional @extra statement
 * (bound to @extra_arg, the journal id; a compare-and-set changing
 * @extra_rows rows), then the op's @nvols creating
 * volumes and its @nsnaps creating snapshots become ready, each a
 * compare-and-set. With @finish the journal is done (cat_op_ready);
 * without, the rows are committed and the journal stays running for
 * cat_op_finish() to roll the deleting marks forward. */
static int
commit_ready(struct cat_op *op, const char *extra, int64_t extra_arg,
             int extra_rows, int nvols, int nsnaps, bool finish,
             struct vmc_error *err)
{
    int r = cat_op_publish(op, err);

    if (r == 0 && extra) {
        r = cat_op_cas(op, extra_rows, "a disk of the VM", err, extra, "II",
                       extra_arg, op->jid);
    }
    if (r == 0) {
        r = cat_op_volumes_ready(op, nvols, err);
    }
    if (r == 0) {
        r = cat_op_cas(op, nsnaps, "the snapshot", err, "UPDATE snapshots "
                       "SET state = ? WHERE journal_id = ? AND state = ?",
                       "sIs", CAT_READY, op->jid, CAT_CREATING);
    }
    if (r == 0) {
        r = finish ? cat_op_ready(op, err) : cat_op_restage(op, err);
    }
    return r;
}

/* ------------------------------------------------------------ snapshot */

int
vmc_catalog_snapshot_create(struct vmc_catalog *cat, const char *vm,
                            const char *name, struct vmc_error *err)
{
    struct cat_disks tops = { 0 };
    char **paths = NULL;
    int64_t vid = 0, sid = 0, pool_id = 0, *nv = NULL;
    unsigned depth = 0;
    struct cat_op op;
    bool rbd;
    int r;
    size_t i;

    cat_op_init(&op, cat, "snapshot");
    r = cat_check_name("snapshot", name, err);
    /* rbd: an RBD snapshot of each disk's image, no new layer */
    rbd = r == 0 && cat_rbd_vm(cat, vm, true);
    if (r == 0) {
        r = cat_begin(cat, err);
    }
    if (r < 0) {
        return r;
    }
    r = vm_lookup(cat, vm, &vid, err);
    if (r == 0) {
        r = cat_disks_of(cat, &tops, CAT_DISKS_VM_TOP, vid, err);
    }
    if (r == 0) {
        r = cat_get_i64(cat, &pool_id, err, "SELECT pool_id FROM vms WHERE "
                        "id = ?", "I", vid);
    }
    if (r == 0 && tops.n && !rbd) {
        r = cat_volume_depth(cat, tops.d[0].vid, &depth, err);
        if (r == 0 && depth + 2 > cat_max_depth(cat)) {
            r = vmc_error_set(err, -ELOOP, "a snapshot would make VM '%s' "
                              "%u layers deep, more than max-chain-depth %u: "
                              "run 'vm-clone consolidate %s' first", vm,
                              depth + 2, cat_max_depth(cat), vm);
        }
    }
    paths = calloc(tops.n + 1, sizeof(*paths));
    nv = calloc(tops.n + 1, sizeof(*nv));
    if (r == 0 && (!paths || !nv)) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0) {
        r = cat_op_begin(&op, vm, err);
    }
    if (r == 0) {
        r = cat_exec(cat, err, "INSERT INTO snapshots(vm_id, name, state, "
                     "journal_id, created) VALUES (?, ?, ?, ?, ?)",
                     "IssId", vid, name, CAT_CREATING, op.jid, cat_now());
        if (r == -EEXIST) {
            r = vmc_error_set(err, r, "VM '%s' already has a snapshot '%s'",
                              vm, name);
        }
        sid = cat_last_id(cat);
    }
    for (i = 0; r == 0 && i < tops.n; i++) {
        r = cat_volume_insert(cat, pool_id, vm, tops.d[i].disk,
                              tops.d[i].virtual_size, tops.d[i].vid,
                              rbd ? "snapshot_id" : "vm_id", rbd ? sid : vid,
                              !rbd, op.jid, &nv[i], err);
        if (r == 0 && rbd) {
            r = cat_rbd_snapshot_volume(cat, nv[i], tops.d[i].vid, name, err);
        }
    }
    r = cat_op_stage(&op, r, err);
    if (r < 0) {
        goto out;
    }
    for (i = 0; r == 0 && i < tops.n; i++) {
        r = cat_volume_path(cat, nv[i], &paths[i], err);
        if (r == 0 && rbd) {
            r = cat_rbd_snapshot_take(paths[i], err);
        } else if (r == 0 && cat_mode_readonly(tops.d[i].path) < 0) {
            r = vmc_error_set(err, -errno, "chmod '%s': %s", tops.d[i].path,
                              strerror(errno));
        }
    }
    if (r == 0 && !rbd) {
        r = cat_overlays(&tops, paths, err);
    }
    cat_crashpoint("snapshot.before-commit");
    if (r == 0 && rbd) {
        r = commit_ready(&op, NULL, 0, 0, (int)tops.n, 1, true, err);
    } else if (r == 0) {
        /* the old tops now belong to the snapshot */
        r = commit_ready(&op, "UPDATE volumes SET vm_id = NULL, "
                         "snapshot_id = ?1, top = 0 WHERE vm_id = (SELECT "
                         "vm_id FROM snapshots WHERE id = ?1) AND top = 1 "
                         "AND state = 'ready' AND (journal_id IS NULL OR "
                         "journal_id != ?2)", sid, (int)tops.n, (int)tops.n, 1,
                         true, err);
    }
    if (r < 0) {
        cat_op_fail(&op);
    }
out:
    cat_op_end(&op);
    for (i = 0; paths && i < tops.n; i++) {
        free(paths[i]);
    }
    free(paths);
    free(nv);
    cat_disks_release(&tops);
    return r;
}

/* A revert's start: the transaction, snapshot @name of VM @vm (its VM id
 * in *@vid), its disks in @sv and the VM's current ones in @tops. A
 * failure to begin returns at once (nothing to roll back); later ones
 * leave the transaction for the caller to end. */
static int
revert_begin(struct vmc_catalog *cat, const char *vm, const char *name,
             int64_t *vid, struct cat_disks *sv, struct cat_disks *tops,
             bool *begun, struct vmc_error *err)
{
    int64_t sid = 0;
    int r = cat_begin(cat, err);

    *begun = r == 0;
    if (r == 0) {
        r = vm_snap_lookup(cat, vm, name, vid, &sid, err);
    }
    if (r == 0) {
        r = cat_disks_of(cat, sv, CAT_DISKS_SNAPSHOT, sid, err);
    }
    if (r == 0) {
        r = cat_disks_of(cat, tops, CAT_DISKS_VM_TOP, *vid, err);
    }
    return r;
}

/*
 * Revert of a VM in an rbd pool: each disk's image is rolled back in
 * place to the snapshot's RBD snapshot (IMAGE@vmclone-snap-NAME), so no
 * volume row changes; the journal row records the operation. Refused
 * while a disk has dependents or another client has an image open (the
 * VM runs). The snapshot, and clones made of it or of other snapshots,
 * are untouched (they read RADOS snapshots, not the head). A revert that
 * dies during a rollback leaves that image partly rolled back: its
 * journal row ends 'failed' and running revert again completes it.
 */
static int
revert_rbd(struct vmc_catalog *cat, const char *vm, const char *name,
           struct vmc_error *err)
{
    struct cat_disks sv = { 0 }, tops = { 0 };
    int64_t vid = 0, kids = 0;
    struct cat_op op;
    bool begun;
    size_t i;
    int r;

    cat_op_init(&op, cat, "revert");
    r = revert_begin(cat, vm, name, &vid, &sv, &tops, &begun, err);
    if (!begun) {
        return r;
    }
    for (i = 0; r == 0 && i < sv.n; i++) {
        size_t len = i < tops.n ? strlen(tops.d[i].path) : 0;

        if (!len || sv.d[i].disk != tops.d[i].disk ||
            strncmp(sv.d[i].path, tops.d[i].path, len) ||
            sv.d[i].path[len] != '@') {
            r = vmc_error_set(err, -EUCLEAN, "snapshot '%s' of VM '%s': "
                              "disk %d is not an RBD snapshot of the VM's "
                              "image", name, vm, sv.d[i].disk);
        }
    }
    if (r == 0 && sv.n != tops.n) {
        r = vmc_error_set(err, -EUCLEAN, "snapshot '%s' of VM '%s' has %zu "
                          "disks, the VM %zu", name, vm, sv.n, tops.n);
    }
    if (r == 0) {
        r = cat_get_i64(cat, &kids, err, "SELECT count(*) FROM volumes "
                        "WHERE parent_id IN (SELECT id FROM volumes WHERE "
                        "vm_id = ? AND top = 1)", "I", vid);
        if (r == 0 && kids) {
            r = vmc_error_set(err, -ENOTEMPTY, "the current disks of VM "
                              "'%s' have dependents", vm);
        }
    }
    for (i = 0; r == 0 && i < tops.n; i++) {
        r = cat_rbd_refuse_watched(vm, tops.d[i].path, err);
    }
    if (r == 0) {
        r = cat_op_begin(&op, vm, err);
    }
    r = cat_op_stage(&op, r, err);
    for (i = 0; r == 0 && i < sv.n; i++) {
        r = cat_rbd_snapshot_rollback(sv.d[i].path, err);
        cat_crashpoint("revert.rbd-after-disk");
    }
    if (r == 0) {
        r = cat_op_finish(&op, err);
    } else if (cat_op_pending(&op)) {
        cat_op_fail(&op);
    }
    cat_op_end(&op);
    cat_disks_release(&sv);
    cat_disks_release(&tops);
    return r;
}

int
vmc_catalog_snapshot_revert(struct vmc_catalog *cat, const char *vm,
                            const char *name, struct vmc_error *err)
{
    struct cat_disks sv = { 0 }, tops = { 0 };
    char **paths = NULL;
    int64_t vid = 0, pool_id = 0, nv = 0, kids = 0;
    struct cat_op op;
    bool begun;
    int r;
    size_t i;

    if (cat_rbd_vm(cat, vm, true)) {
        return revert_rbd(cat, vm, name, err);
    }
    cat_op_init(&op, cat, "revert");
    r = revert_begin(cat, vm, name, &vid, &sv, &tops, &begun, err);
    if (!begun) {
        return r;
    }
    if (r == 0) {
        r = cat_get_i64(cat, &pool_id, err, "SELECT pool_id FROM vms WHERE "
                        "id = ?", "I", vid);
    }
    if (r == 0) {
        r = cat_get_i64(cat, &kids, err, "SELECT count(*) FROM volumes "
                        "WHERE parent_id IN (SELECT id FROM volumes WHERE "
                        "vm_id = ? AND top = 1)", "I", vid);
        if (r == 0 && kids) {
            r = vmc_error_set(err, -ENOTEMPTY, "the current disks of VM "
                              "'%s' have dependents", vm);
        }
    }
    paths = calloc(sv.n + 1, sizeof(*paths));
    if (r == 0 && !paths) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0) {
        r = cat_op_begin(&op, vm, err);
    }
    for (i = 0; r == 0 && i < sv.n; i++) {
        r = cat_volume_insert(cat, pool_id, vm, sv.d[i].disk,
                              sv.d[i].virtual_size, sv.d[i].vid, "vm_id",
                              vid, 1, op.jid, &nv, err);
        if (r == 0) {
            r = cat_volume_path(cat, nv, &paths[i], err);
        }
    }
    r = cat_op_stage(&op, r, err);
    if (r < 0) {
        goto out;
    }
    r = cat_overlays(&sv, paths, err);
    cat_crashpoint("revert.before-commit");
    if (r == 0) {
        /* one commit: the new overlays become the disks, the old ones are
         * deleted (rolled forward from here on) */
        r = commit_ready(&op, "UPDATE volumes SET state = '" CAT_DELETING
                         "', top = 0, journal_id = ?2 WHERE vm_id = ?1 AND "
                         "top = 1 AND state = '" CAT_READY "'", vid,
                         (int)tops.n, (int)sv.n, 0, false, err);
    }
    if (r == 0) {
        r = cat_op_finish(&op, err);
    } else {
        cat_op_fail(&op);
    }
out:
    cat_op_end(&op);
    for (i = 0; paths && i < sv.n; i++) {
        free(paths[i]);
    }
    free(paths);
    cat_disks_release(&sv);
    cat_disks_release(&tops);
    return r;
}

/* chmod u+w for the duration of a rewrite; returns whether to restore. */
static bool
make_writable(const char *path)
{
    struct stat st;

    if (stat(path, &st) == 0 && !(st.st_mode & S_IWUSR)) {
        chmod(path, (st.st_mode & 07777) | S_IWUSR);
        return true;
    }
    return false;
}

int
vmc_catalog_snapshot_rm(struct vmc_catalog *cat, const char *vm,
                        const char *name, struct vmc_error *err)
{
    struct cat_disks sv = { 0 }, kids = { 0 };
    char label[200];
    int64_t vid = 0, sid = 0;
    size_t i, k;
    struct cat_op op;
    int r;

    snprintf(label, sizeof(label), "%s@%s", vm, name);
    cat_op_init(&op, cat, "snapshot-rm");
    r = cat_begin(cat, err);
    if (r < 0) {
        return r;
    }
    r = vm_snap_lookup(cat, vm, name, &vid, &sid, err);
    /* dependents other than the VM's own layers refuse the delete */
    if (r == 0) {
        r = cat_refuse_dependents(cat, cat_owned_snapshot,
                                  "SELECT id FROM volumes WHERE vm_id = "
                                  "(SELECT vm_id FROM snapshots WHERE id = "
                                  "?1) UNION ALL SELECT v.id FROM volumes "
                                  "v JOIN snapshots s ON s.id = "
                                  "v.snapshot_id JOIN snapshots o ON "
                                  "o.vm_id = s.vm_id WHERE o.id = ?1", sid,
                                  "snapshot", label, err);
    }
    if (r == 0) {
        r = cat_disks_of(cat, &sv, CAT_DISKS_SNAPSHOT, sid, err);
    }
    if (r == 0) {
        r = cat_disks_load(cat, &kids, "SELECT o.id, coalesce(o.parent_id, "
                           "0), o.disk, o.virtual_size, o.path FROM "
                           "volume_owners o WHERE o.parent_id IN (SELECT id "
                           "FROM volumes WHERE snapshot_id = ?) ORDER BY "
                           "o.id", sid, err);
    }
    if (r == 0) {
        r = cat_op_begin(&op, label, err);
    }
    if (r == 0) {
        r = cat_op_cas(&op, (int)sv.n, "a volume of the snapshot", err,
                       "UPDATE volumes SET state = ?3, journal_id = ?2 WHERE "
                       "snapshot_id = ?1 AND state = ?4", "IIss", sid, op.jid,
                       CAT_DELETING, CAT_READY);
    }
    if (r == 0) {
        r = cat_op_cas(&op, 1, "the snapshot", err, "UPDATE snapshots SET "
                       "state = ?3, journal_id = ?2 WHERE id = ?1 AND "
                       "state = ?4", "IIss", sid, op.jid, CAT_DELETING,
                       CAT_READY);
    }
    for (k = 0; r == 0 && k < kids.n; k++) {
        r = cat_op_cas(&op, 1, "a layer on the snapshot", err, "UPDATE "
                       "volumes SET journal_id = ? WHERE id = ? AND state = "
                       "?", "IIs", op.jid, kids.d[k].vid, CAT_READY);
    }
    r = cat_op_stage(&op, r, err);
    if (r < 0) {
        goto out;
    }
    /* merge: each child takes the snapshot's data and its parent */
    for (k = 0; r == 0 && k < kids.n; k++) {
        struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                    .flags = VMC_OPEN_RDWR };
        struct vmc_image *img = NULL;
        const struct cat_disk *s = NULL;
        char *pp = NULL, *bn = NULL;
        bool ro = make_writable(kids.d[k].path);

        for (i = 0; i < sv.n; i++) {
            if (sv.d[i].vid == kids.d[k].parent) {
                s = &sv.d[i];
            }
        }
        if (s && s->parent) {
            r = cat_volume_path(cat, s->parent, &pp, err);
            if (r == 0) {
                r = cat_backing_name(pp, kids.d[k].path, &bn, err);
            }
        }
        if (r == 0) {
            r = vmc_image_open(&img, kids.d[k].path, &oo, err);
        }
        if (r == 0) {
            r = bn ? vmc_rebase(img, bn, "qcow2", NULL, err)
                   : vmc_flatten(img, NULL, NULL, err);
        }
        if (vmc_image_close(img) < 0 && r == 0) {
            r = vmc_error_set(err, -EIO, "cannot flush '%s'",
                              kids.d[k].path);
        }
        if (ro) {
            cat_mode_readonly(kids.d[k].path);
        }
        free(pp);
        free(bn);
    }
    cat_crashpoint("snapshot-rm.before-finish");
    /* parents from the headers; the snapshot goes if nothing uses it */
    {
        int q = cat_op_finish(&op, r < 0 ? NULL : err);

        if (r == 0) {
            r = q;
        }
    }
    if (r == 0 && cat_get_i64(cat, &sid, NULL, "SELECT id FROM snapshots "
                              "WHERE id = ?", "I", sid) == 0) {
        r = vmc_error_set(err, -EIO, "snapshot '%s' could not be merged",
                          label);
    }
out:
    cat_op_end(&op);
    cat_disks_release(&sv);
    cat_disks_release(&kids);
    return r;
}

/* ----------------------------------------------------------------- VM */

static const struct cat_owner_rows vm_owners[] = {
    { "vms", "id = ?1" },
    { "snapshots", "vm_id = ?1" },
    { NULL, NULL },
};

/*
 * Refuse to remove the disks of a VM that something has open: QEMU (a
 * running VM), vm-clone serve or start, qemu-img. They all hold the
 * QEMU-style OFD locks, so asking whether anyone holds any permission
 * byte of each file is enough (engine_file_in_use()). (Best effort: a
 * user that opens a disk after this check races with the removal.)
 */
static int
vm_check_unused(struct vmc_catalog *cat, const char *name, int64_t vid,
                struct vmc_error *err)
{
    struct cat_disks vols = { 0 };
    char *sql = NULL;
    size_t i;
    int r = cat_owned_fixed(cat, cat_owned_vm, all_vols_sql, vid, &sql, err);

    if (r == 0) {
        r = cat_disks_load(cat, &vols, sql, vid, err);
    }
    free(sql);

    /* a missing file is fsck's business, not rm's */
    for (i = 0; r == 0 && i < vols.n; i++) {
        if (engine_file_in_use(vols.d[i].path)) {
            r = cat_vm_in_use_error(name, vols.d[i].path, "stop it, then "
                                    "retry 'vm-clone rm'", err);
        }
    }
    cat_disks_release(&vols);
    return r;
}

int
vmc_catalog_vm_rm(struct vmc_catalog *cat, const char *name,
                  struct vmc_error *err)
{
    int64_t vid = 0;
    char *dom_uri = NULL, *dom_uuid = NULL;
    /* a running libvirt domain refuses (naming it, before the lock check
     * names QEMU's pid); a defined one goes after the VM */
    int r = cat_virt_rm_check(cat, name, &dom_uri, &dom_uuid, err);

    if (r == 0) {
        r = vm_lookup(cat, name, &vid, err);
    }
    if (r == 0) {
        r = vm_check_unused(cat, name, vid, err);
    }
    if (r == 0) {
        r = cat_delete_set(cat, "rm", "VM", name, cat_owned_vm, vm_owners,
                           vid, err);
    }
    if (r == 0 && dom_uri) {
        cat_virt_rm_done(dom_uri, dom_uuid);
    }
    free(dom_uri);
    free(dom_uuid);
    return r;
}

/* Journal an in-place rewrite of the VM's top volumes. */
static int
rewrite_begin(struct vmc_catalog *cat, struct cat_op *op, const char *opname,
              const char *name, int64_t *vid, struct cat_disks *tops,
              struct vmc_error *err)
{
    int r;

    cat_op_init(op, cat, opname);
    r = cat_begin(cat, err);
    if (r < 0) {
        return r;
    }
    r = vm_lookup(cat, name, vid, err);
    if (r == 0) {
        r = cat_disks_of(cat, tops, CAT_DISKS_VM_TOP, *vid, err);
    }
    if (r == 0) {
        r = cat_op_begin(op, name, err);
    }
    if (r == 0) {
        r = cat_op_cas(op, (int)tops->n, "a disk of the VM", err,
                       "UPDATE volumes SET journal_id = ?2 WHERE vm_id = ?1 "
                       "AND top = 1 AND state = ?3", "IIs", *vid, op->jid,
                       CAT_READY);
    }
    r = cat_op_stage(op, r, err);
    if (r < 0) {
        cat_op_end(op);
        cat_disks_release(tops);
    }
    return r;
}

/* Parents from the headers, an optional update, journal done. */
static int
rewrite_end(struct cat_op *op, int rc, const char *update, int64_t vid,
            struct vmc_error *err)
{
    struct vmc_catalog *cat = op->cat;
    int r = cat_op_publish(op, rc < 0 ? NULL : err);

    if (r == 0) {
        int q = cat_reconcile_journal(cat, op->jid, NULL,
                                      rc < 0 ? NULL : err);

        if (q == 0 && rc == 0 && update) {
            q = cat_exec(cat, err, update, "I", vid);
        }
        r = cat_op_settle(op, q, rc, rc < 0 ? NULL : err);
    } else {
        cat_op_abandon(op);
    }
    cat_op_end(op);
    if (rc == 0 && r == 0) {
        /* the VM may have been the last user of a retired template; if
         * freeing it fails here, gc (or the next delete) does it */
        cat_free_retired(cat, NULL);
    }
    return rc < 0 ? rc : r;
}

/* Open @path read-write, run @fn on it, close (a failed flush is an
 * error): one rewrite of one layer. */
static int
rewrite_layer(const char *path,
              int (*fn)(struct vmc_image *img, void *opaque,
                        struct vmc_error *err),
              void *opaque, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_RDWR };
    struct vmc_image *img = NULL;
    int r = vmc_image_open(&img, path, &oo, err);

    if (r == 0) {
        r = fn(img, opaque, err);
    }
    if (vmc_image_close(img) < 0 && r == 0) {
        r = vmc_error_set(err, -EIO, "cannot flush '%s'", path);
    }
    return r;
}

static int
flatten_layer(struct vmc_image *img, void *opaque, struct vmc_error *err)
{
    struct cat_progress *prog = opaque;

    return vmc_flatten(img, cat_progress_fn(prog), prog, err);
}

/* One disk of a VM rewritten in place (flatten, consolidate): @d is one of
 * the VM's top volumes; the caller counts progress when it returns 0. */
typedef int (*disk_rewrite_fn)(struct cat_op *op, const struct cat_disk *d,
                               struct cat_progress *prog, void *ctx,
                               struct vmc_error *err);

/* Journal an in-place rewrite of every top disk of VM @name, run @fn on
 * each, then settle the journal, applying @update (the VM's row, "?" its
 * id; NULL = none) when every disk succeeded. */
static int
rewrite_vm_disks(struct vmc_catalog *cat, const char *opname, const char *name,
                 disk_rewrite_fn fn, void *ctx, vmc_progress_fn progress,
                 void *opaque, const char *update, struct vmc_error *err)
{
    struct cat_disks tops = { 0 };
    struct cat_progress prog;
    char point[64];
    int64_t vid = 0;
    struct cat_op op;
    int r;
    size_t i;

    r = rewrite_begin(cat, &op, opname, name, &vid, &tops, err);
    if (r < 0) {
        return r;
    }
    cat_progress_init(&prog, cat, progress, opaque, tops.n);
    for (i = 0; r == 0 && i < tops.n; i++) {
        r = fn(&op, &tops.d[i], &prog, ctx, err);
        if (r == 0) {
            cat_progress_next(&prog);
        }
    }
    snprintf(point, sizeof(point), "%s.before-commit", opname);
    cat_crashpoint(point);
    r = rewrite_end(&op, r, update, vid, err);
    cat_disks_release(&tops);
    return r;
}

static int
flatten_disk(struct cat_op *op, const struct cat_disk *d,
             struct cat_progress *prog, void *ctx, struct vmc_error *err)
{
    (void)op;
    (void)ctx;
    if (cat_path_is_rbd(d->path)) {
        return cat_rbd_flatten(d->path, err);
    }
    return rewrite_layer(d->path, flatten_layer, prog, err);
}

int
vmc_catalog_vm_flatten(struct vmc_catalog *cat, const char *name,
                       vmc_progress_fn progress, void *opaque,
                       struct vmc_error *err)
{
    return rewrite_vm_disks(cat, "flatten", name, flatten_disk, NULL,
                            progress, opaque, "UPDATE vms SET clone_type = "
                            "'full', mechanism = 'flatten' WHERE id = ?", err);
}

int
vmc_catalog_vm_relink(struct vmc_catalog *cat, const char *name,
                      const char *tmpl, uint64_t *saved,
                      struct vmc_error *err)
{
    struct cat_disks tops = { 0 }, copy = { 0 };
    int64_t vid = 0, tid = 0, pool_id = 0, cid = 0, retired = 0;
    const char *mech = NULL;
    struct cat_progress prog;
    uint64_t bytes = 0;
    bool copied = false;
    struct cat_op op;
    int r;
    size_t i;
    char *upd = NULL;

    *saved = 0;
    r = cat_rbd_refuse_vm(cat, name, "relink", err);
    if (r == 0) {
        r = cat_get_i64(cat, &tid, err, "SELECT id FROM templates WHERE "
                        "name = ? AND state = 'ready'", "s", tmpl);
    }
    if (r == -ENOENT) {
        return vmc_error_set(err, r, "no template named '%s'", tmpl);
    }
    if (r == 0) {
        r = cat_get_i64(cat, &retired, err, "SELECT retired FROM templates "
                        "WHERE id = ?", "I", tid);
    }
    if (r == 0 && retired) {
        return vmc_error_set(err, -EINVAL, "template '%s' is retired", tmpl);
    }
    if (r == 0) {
        r = cat_get_i64(cat, &pool_id, err, "SELECT pool_id FROM vms WHERE "
                        "name = ?", "s", name);
        if (r == -ENOENT) {
            r = vmc_error_set(err, r, "no VM named '%s'", name);
        }
    }
    if (r == 0) {
        r = cat_ensure_copy(cat, tid, pool_id, 1, &cid, &copied, &mech,
                            &bytes, err);
    }
    if (r == 0) {
        r = cat_disks_load(cat, &copy, "SELECT o.id, 0, o.disk, "
                           "o.virtual_size, o.path FROM volume_owners o JOIN "
                           "volumes v ON v.id = o.id WHERE v.copy_id = ? "
                           "ORDER BY v.disk", cid, err);
    }
    if (r < 0) {
        return r;
    }
    r = rewrite_begin(cat, &op, "relink", name, &vid, &tops, err);
    if (r < 0) {
        cat_disks_release(&copy);
        return r;
    }
    if (tops.n != copy.n) {
        r = vmc_error_set(err, -EINVAL, "VM '%s' has %zu disks, template "
                          "'%s' %zu", name, tops.n, tmpl, copy.n);
    }
    cat_progress_init(&prog, cat, NULL, NULL, tops.n);
    for (i = 0; r == 0 && i < tops.n; i++) {
        struct vmc_relink_opts ro;
        struct vmc_relink_result rr = { 0 };
        char *bn = NULL;

        r = cat_backing_name(copy.d[i].path, tops.d[i].path, &bn, err);
        if (r == 0) {
            vmc_relink_opts_init(&ro);
            ro.progress = cat_progress_fn(&prog);
            ro.opaque = &prog;
            r = vmc_relink(tops.d[i].path, bn, "qcow2", &ro, &rr, err);
            if (r == 0) {
                cat_progress_next(&prog);
            }
        }
        if (r == 0 && rr.bytes_before > rr.bytes_after) {
            *saved += rr.bytes_before - rr.bytes_after;
        }
        free(bn);
    }
    cat_crashpoint("relink.before-commit");
    if (asprintf(&upd, "UPDATE vms SET clone_type = 'linked', mechanism = "
                 "'relink', template_id = %" PRId64 " WHERE id = ?",
                 tid) < 0) {
        upd = NULL;
    }
    r = rewrite_end(&op, r, upd, vid, err);
    free(upd);
    cat_disks_release(&tops);
    cat_disks_release(&copy);
    return r;
}

struct pull_ctx {
    struct vmc_consolidate_opts co;
    unsigned *merged;
};

/* Pull the layers under @img into it (consolidate). */
static int
pull_layer(struct vmc_image *img, void *opaque, struct vmc_error *err)
{
    struct pull_ctx *pc = opaque;
    struct vmc_consolidate_result cr;
    int r = vmc_consolidate(img, &pc->co, &cr, err);

    if (r == 0) {
        *pc->merged += cr.layers_merged;
    }
    return r;
}

/* Pull the snapshots between one top disk and its base into it. */
static int
consolidate_disk(struct cat_op *op, const struct cat_disk *d,
                 struct cat_progress *prog, void *ctx, struct vmc_error *err)
{
    struct vmc_catalog *cat = op->cat;
    unsigned *merged = ctx;
    struct cat_strv users = { 0 }, chain = { 0 };
    size_t c;
    int r;

    /* the layers of the chain (the VM's snapshots above the bottom)
     * and every other image that uses one of them */
    r = cat_collect(cat, &chain, err, "WITH RECURSIVE c(id) AS (SELECT "
                    "parent_id FROM volumes WHERE id = ? UNION ALL "
                    "SELECT v.parent_id FROM volumes v JOIN c ON v.id = "
                    "c.id WHERE v.parent_id IS NOT NULL) SELECT o.path "
                    "FROM volume_owners o JOIN c ON o.id = c.id WHERE "
                    "o.parent_id IS NOT NULL", d->vid);
    if (r == 0) {
        r = cat_collect(cat, &users, err, "WITH RECURSIVE c(id) AS "
                        "(SELECT parent_id FROM volumes WHERE id = ?1 "
                        "UNION ALL SELECT v.parent_id FROM volumes v "
                        "JOIN c ON v.id = c.id WHERE v.parent_id IS NOT "
                        "NULL) SELECT o.path FROM volume_owners o WHERE "
                        "o.parent_id IN (SELECT id FROM c) AND o.id != ?1 "
                        "AND o.id NOT IN (SELECT id FROM c)", d->vid);
    }
    if (r == 0 && chain.n < 2) {
        cat_strv_release(&chain);
        cat_strv_release(&users);
        return 0;       /* nothing between the disk and its base */
    }
    /* the layer pulled into changes its parent: reconcile it too */
    if (r == 0) {
        r = cat_exec(cat, err, "UPDATE volumes SET journal_id = ? WHERE "
                     "id IN (WITH RECURSIVE c(id) AS (SELECT parent_id "
                     "FROM volumes WHERE id = ? UNION ALL SELECT "
                     "v.parent_id FROM volumes v JOIN c ON v.id = c.id "
                     "WHERE v.parent_id IS NOT NULL) SELECT id FROM c) "
                     "AND snapshot_id IS NOT NULL AND state = 'ready'",
                     "II", op->jid, d->vid);
    }
    for (c = 0; r == 0 && c < chain.n; c++) {
        make_writable(chain.v[c]);
    }
    if (r == 0) {
        struct pull_ctx pc = { .merged = merged };

        pc.co.method = VMC_CONSOLIDATE_PULL;
        pc.co.users = (const char *const *)users.v;
        pc.co.nusers = users.n;
        pc.co.no_scan = true;
        pc.co.progress = cat_progress_fn(prog);
        pc.co.opaque = prog;
        r = rewrite_layer(d->path, pull_layer, &pc, err);
    }
    for (c = 0; c < chain.n; c++) {
        cat_mode_readonly(chain.v[c]);
    }
    cat_strv_release(&chain);
    cat_strv_release(&users);
    return r;
}

int
vmc_catalog_vm_consolidate(struct vmc_catalog *cat, const char *name,
                           unsigned *merged, struct vmc_error *err)
{
    int r = cat_rbd_refuse_vm(cat, name, "consolidate", err);

    *merged = 0;
    return r < 0 ? r : rewrite_vm_disks(cat, "consolidate", name,
                                        consolidate_disk, merged, NULL, NULL,
                                        NULL, err);
}
