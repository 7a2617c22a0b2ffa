/*
 * catalog-ops.h - internal declarations shared by the catalog's
 * files above the journal (delete.c, template.c, clone.c, vm.c, fsck.c,
 * gc.c, open.c) and the volume helpers below it (volumes.c).
 */
#ifndef VMC_CATALOG_OPS_H
#define VMC_CATALOG_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog-internal.h"

/* One disk of an object: its volume row and file. */
struct cat_disk {
    int64_t vid;
    int64_t parent;         /* 0 = none */
    int disk;
    uint64_t virtual_size;
    char *path;
};

struct cat_disks {
    struct cat_disk *d;
    size_t n;
};

/* volumes.c */
/* Disks (ready volumes) selected by @sql bound to @id, ordered by disk. */
int cat_disks_load(struct vmc_catalog *cat, struct cat_disks *out,
                   const char *sql, int64_t id, struct vmc_error *err);
void cat_disks_release(struct cat_disks *d);
/* The ready disks of a template, a template copy, a snapshot or a VM's
 * top layers. */
enum cat_disks_owner {
    CAT_DISKS_TEMPLATE,
    CAT_DISKS_COPY,
    CAT_DISKS_SNAPSHOT,
    CAT_DISKS_VM_TOP,
};
int cat_disks_of(struct vmc_catalog *cat, struct cat_disks *out,
                 enum cat_disks_owner owner, int64_t id,
                 struct vmc_error *err);
/* Insert a volume row (state creating) and name its file
 * "<label>-disk<N>-<id>.qcow2". */
int cat_volume_insert(struct vmc_catalog *cat, int64_t pool_id,
                      const char *label, int disk, uint64_t vsize,
                      int64_t parent, const char *owner_col, int64_t owner,
                      int top, int64_t jid, int64_t *vid,
                      struct vmc_error *err);
/* Pool id of pool @name of @kind (NULL name: the config default or the
 * default pool of that kind). */
int cat_pool_lookup(struct vmc_catalog *cat, const char *name,
                    const char *kind, int64_t *id, char **path_out,
                    struct vmc_error *err);
/* Relative (same tree) or absolute backing name of @base for @path. */
int cat_backing_name(const char *base, const char *path, char **out,
                     struct vmc_error *err);
/* template.c: a template's publish ends: its @n creating volumes and
 * template @tid become ready, and the op is done. */
int cat_template_ready(struct cat_op *op, size_t n, int64_t tid,
                       struct vmc_error *err);
/* freeze.c: the pool template @tid lives in when that is a primary pool
 * (a frozen template, used in place there), else 0. */
int cat_template_home(struct vmc_catalog *cat, int64_t tid, int64_t *pool_id,
                      struct vmc_error *err);
/* Make overlays @paths[i] of @bases[i] (one linked clone each). */
int cat_overlays(const struct cat_disks *bases, char **paths,
                 struct vmc_error *err);
/* Configured max-chain-depth. */
unsigned cat_max_depth(struct vmc_catalog *cat);
/* Layers under volume @vid (0 when it has no parent). */
int cat_volume_depth(struct vmc_catalog *cat, int64_t vid, unsigned *depth,
                     struct vmc_error *err);

/* The one definition of "dependents" (issue 13 point 5): the VMs,
 * snapshots and copies whose volumes read one of the volumes @OWN selects
 * (SQL text), directly or through other layers, leaving out the volumes
 * @EXCL selects (the object's own; for a VM, its own snapshots' layers).
 * Yields DISTINCT (kind, name) rows. template list and info, deps and the
 * refusals of rm all count with it. */
#define CAT_DEPENDENTS_SQL(OWN, EXCL) \
    "WITH RECURSIVE own(id) AS (" OWN "), d(id) AS (SELECT v.id FROM " \
    "volumes v WHERE v.parent_id IN (SELECT id FROM own) AND v.id NOT " \
    "IN (" EXCL ") UNION SELECT v.id FROM volumes v JOIN d ON " \
    "v.parent_id = d.id) SELECT DISTINCT kind, name FROM volume_owners " \
    "WHERE id IN (SELECT id FROM d)"

/* deps.c: the dependents walk, by index (level by level from C). */
struct cat_ids {
    int64_t *v;
    size_t n, cap;
};
int cat_ids_push(struct cat_ids *s, int64_t id);
void cat_ids_release(struct cat_ids *s);
/* Append the first column of every row of @sql (one int64 '?' = @arg). */
int cat_ids_select(struct vmc_catalog *cat, struct cat_ids *out,
                   const char *sql, int64_t arg, struct vmc_error *err);
/* "@head(id1,id2,...)@tail" (malloc'd; NULL when out of memory). */
char *cat_ids_sql(const char *head, const int64_t *ids, size_t n,
                  const char *tail);
/* The set @owned_sql selects (one '?' = @arg), read now, as the literal
 * ids of "@head(1,2,...)" (default: "SELECT id FROM volumes WHERE ?1 IS
 * NOT NULL AND id IN "), bound the same way: PostgreSQL plans "id IN
 * (subquery)" by its statistics, which on a table without snapshots
 * guess a million rows and scan every volume; by literal ids it is the
 * primary key. */
int cat_owned_fixed(struct vmc_catalog *cat, const char *owned_sql,
                    const char *head, int64_t arg, char **out,
                    struct vmc_error *err);
/* The ids of the volumes @owned_sql selects (one '?' = @arg) in @own,
 * and in @deps those of every volume under them, directly or through
 * other layers, leaving out the first level's volumes @exclude_sql
 * selects (same '?'). */
int cat_dependent_ids(struct vmc_catalog *cat, const char *owned_sql,
                      const char *exclude_sql, int64_t arg,
                      struct cat_ids *own, struct cat_ids *deps,
                      struct vmc_error *err);
/* The owners of those dependents (kind as volume_owners says it: 'vm',
 * 'snapshot', 'copy', 'template'; name), one entry each, sorted by kind
 * then name (strcmp). The one definition of "dependents" (issue 13
 * point 5): deps, the refusals of rm and template rm, gc count with it. */
struct cat_dep {
    char *kind, *name;
};
int cat_dependents_named(struct vmc_catalog *cat, const char *owned_sql,
                         const char *exclude_sql, int64_t arg,
                         struct cat_dep **out, size_t *n,
                         struct vmc_error *err);
void cat_deps_release(struct cat_dep *d, size_t n);

/* delete.c */
/* Refuse (-ENOTEMPTY) when anything depends on the volumes @owned_sql
 * selects (@exclude_sql left out; one '?' = @arg), naming the first few
 * and their number, and the commands that would help (deps, flatten,
 * rm; template rm --flatten-dependents for @what "template"). */
int cat_refuse_dependents(struct vmc_catalog *cat, const char *owned_sql,
                          const char *exclude_sql, int64_t arg,
                          const char *what, const char *target,
                          struct vmc_error *err);
/* Owner rows of a set: @table's rows selected by @where (?1 = the id). */
struct cat_owner_rows {
    const char *table;
    const char *where;
};
/* Check for dependents, mark the set deleting, unlink, delete rows. */
int cat_delete_set(struct vmc_catalog *cat, const char *op, const char *what,
                   const char *target, const char *owned_sql,
                   const struct cat_owner_rows *owners, int64_t id,
                   struct vmc_error *err);
int cat_template_delete(struct vmc_catalog *cat, int64_t tid,
                        const char *name, struct vmc_error *err);
/* Resolve NAME / VM@SNAP to the SQL selecting its volumes and its id. */
int cat_resolve_entity(struct vmc_catalog *cat, const char *kind,
                       const char *name, const char **owned_sql, int64_t *id,
                       const char **kind_out, struct vmc_error *err);
extern const char cat_owned_template[];
extern const char cat_owned_copy[];
extern const char cat_owned_vm[];
extern const char cat_owned_snapshot[];

/* template.c */
/* Open live disk @path of VM @vm for a copy, under QEMU's shared lock
 * (-EBUSY "VM is in use" while another process has it open for writing). */
int cat_open_live_disk(const char *vm, const char *path,
                       struct vmc_image **out, struct vmc_error *err);
/* template-copy.c */
/* A base copy of template @tid in pool @pool_id with room for @need more
 * children (the fewest-used), made now if none has room (once per
 * number, whatever the concurrency). *copied tells whether this call
 * made it. */
int cat_ensure_copy(struct vmc_catalog *cat, int64_t tid, int64_t pool_id,
                    int64_t need, int64_t *copy_id, bool *copied,
                    const char **mechanism, uint64_t *bytes,
                    struct vmc_error *err);
/* Inside a write transaction: lock copy @copy_id (ready, else -EAGAIN)
 * and tell whether it has room for @need more children. */
int cat_copy_has_room(struct vmc_catalog *cat, int64_t copy_id, int64_t need,
                      bool *room, struct vmc_error *err);
/* Pool row @p's limit of children per base copy, as SQL (0: none; not
 * set: none for 'dir', 200 for 'rbd', docs/design/scale-out.md). */
#define CAT_POOL_MAX_CLONES_SQL(p) \
    "coalesce(" p ".max_clones_per_base, CASE WHEN " p ".type = 'rbd' " \
    "THEN 200 ELSE 0 END)"
/* Pool @pool_id's limit of children per base copy (0: none). */
int cat_pool_max_clones(struct vmc_catalog *cat, int64_t pool_id,
                        int64_t *max, struct vmc_error *err);

/* fsck.c (shared with gc.c) */
/* A report callback with its counter for one kind of finding. */
struct cat_report {
    vmc_catalog_report_fn fn;
    void *opaque;
    const char *what;
    unsigned count;
};
/* Files in pools that no volume row names; @temps selects our temporary
 * files instead. Calls @fn(path). */
int cat_scan_pools(struct vmc_catalog *cat, bool temps,
                   int (*fn)(const char *path, void *opaque), void *opaque,
                   struct vmc_error *err);
/* @fn of cat_scan_pools(): count @path and report it (@opaque a struct
 * cat_report). */
int cat_report_path(const char *path, void *opaque);
/* @fn(what, subject, detail) when @fn is set. */
void cat_report(vmc_catalog_report_fn fn, void *opaque, const char *what,
                const char *subject, const char *detail);

/* clone.c */
/* Give VM @vm NICs @first..@n-1, each with a new unique MAC. */
int cat_add_nics(struct vmc_catalog *cat, int64_t vm, unsigned first,
                 unsigned n, struct vmc_error *err);

/* status.c */
/* A process that has the file at @path open (a /proc scan: same user
 * only), 0 when none is found. */
int cat_file_holder(const char *path);
/* fsck --verify marks a sealed volume whose data does not match its seal
 * with a file "<path>.damaged" holding the finding; fsck --repair removes
 * it. Is @path so marked? @detail gets "'PATH' is damaged (FINDING)". */
#define CAT_DAMAGED_SUFFIX ".damaged"
bool cat_volume_damaged(const char *path, char *detail, size_t len);
/* Mark @path damaged with @finding (fsck --verify), or unmark it. */
int cat_volume_mark_damaged(const char *path, const char *finding);
void cat_volume_unmark_damaged(const char *path);
/* Refuse (-EUCLEAN) a clone of @source whose layers @base include a file
 * known to be damaged, naming 'vm-clone fsck --repair'. */
int cat_refuse_damaged(const struct cat_disks *base, const char *source,
                       struct vmc_error *err);
/* -EBUSY naming VM @vm as running (a process holds @path's write lock)
 * or in use (it has @path open), with the holder's pid when found, then
 * @next (what to do). */
int cat_vm_in_use_error(const char *vm, const char *path, const char *next,
                        struct vmc_error *err);
/* Refuse (cat_vm_in_use_error()) when a process has a current disk of VM
 * @vm (@vid) open: before an operation that rewrites its layers. */
int cat_vm_refuse_running(struct vmc_catalog *cat, const char *vm,
                          int64_t vid, struct vmc_error *err);

/* pool-rbd.c: the pool backend seam (type 'rbd' pools) */
/* Is @path (a pool's or a volume's) in an rbd pool? */
bool cat_path_is_rbd(const char *path);
/* -ENOTSUP "@what is not supported on rbd pools" when @path is in one. */
int cat_rbd_refuse(const char *path, const char *what,
                   struct vmc_error *err);
/* When pool @pool_id is an rbd pool, start connecting to it in the
 * background (vmc_rbd_prefetch()): the command will use it. */
void cat_rbd_prefetch_pool(struct vmc_catalog *cat, int64_t pool_id);
/* Flatten rbd volume @path: it reads no parent any more. */
int cat_rbd_flatten(const char *path, struct vmc_error *err);
/* Remove rbd volume @path (its snapshots first); absent is done. */
int cat_rbd_unlink(const char *path, struct vmc_error *err);
/* The template copy's disk @dst (rbd) from template volume @src_vid at
 * @src: imported (or copied in the cluster) and frozen, with the
 * template's seal in the image's metadata. */
int cat_rbd_copy_volume(struct vmc_catalog *cat, int64_t src_vid,
                        const char *src, const char *dst, uint64_t *bytes,
                        struct vmc_error *err);
/* The files of a clone group when its pool or its base is rbd: disk d of
 * VM i is @paths[i * base->n + d]; linked: RBD clones of the frozen
 * bases; full: rbd_copy3, an export to a file, or an import. */
int cat_rbd_clone_group(const struct cat_disks *base, char *const *paths,
                        size_t count, bool linked, uint64_t *bytes,
                        struct vmc_error *err);
/* cat_backing_volume() of rbd volume @path: its parent image's volume. */
int cat_rbd_backing_volume(struct vmc_catalog *cat, const char *path,
                           int64_t *vid, char **backing,
                           struct vmc_error *err);
/* Is VM @vm's pool an rbd pool? If so, with @connect, start connecting
 * to it in the background (vmc_rbd_prefetch()) for the caller's next
 * calls: a snapshot reads the image's parent, then writes. */
bool cat_rbd_vm(struct vmc_catalog *cat, const char *vm, bool connect);
/* VM snapshot @name on rbd: volume @vid (a new snapshot layer of the VM's
 * disk volume @top) is named IMAGE@vmclone-snap-NAME, an RBD snapshot of
 * @top's image, and reads @top's parent. */
int cat_rbd_snapshot_volume(struct vmc_catalog *cat, int64_t vid,
                            int64_t top, const char *name,
                            struct vmc_error *err);
/* fsck: the rbd children (rbd_list_children3) of every rbd volume that
 * clones are made from against the catalog's clones of it; a child the
 * catalog does not know is reported, never removed. */
int cat_rbd_fsck_children(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
                          void *opaque, unsigned *problems,
                          struct vmc_error *err);
/* Take the RBD snapshot rbd volume @path (IMAGE@SNAP) names, protected. */
int cat_rbd_snapshot_take(const char *path, struct vmc_error *err);
/* Roll the image of snapshot volume @path (IMAGE@SNAP) back to SNAP. */
int cat_rbd_snapshot_rollback(const char *path, struct vmc_error *err);
/* -ENOTSUP "@what is not supported on rbd pools" when VM @vm is in one. */
int cat_rbd_refuse_vm(struct vmc_catalog *cat, const char *vm,
                      const char *what, struct vmc_error *err);
/* fsck: is rbd volume @path's image missing? Is the seal in its
 * metadata @want (the catalog's)? Else @detail says why. */
bool cat_rbd_missing(const char *path);
bool cat_rbd_verify_seal(const char *path, const char *want, char *detail,
                         size_t len);
/* -EBUSY naming VM @vm when clients have its rbd volume @path open. */
int cat_rbd_refuse_watched(const char *vm, const char *path,
                           struct vmc_error *err);

#endif /* VMC_CATALOG_OPS_H */
