/*
 * vmclone-catalog.h - the catalog: templates, template copies per pool,
 * VMs (disks, NICs, labels, expiry), snapshots and an operations journal
 * in one SQLite database, and the operations that keep it and the image
 * files in pools in agreement (import, clone, snapshot, delete, flatten,
 * relink, consolidate, gc, fsck).
 *
 * A store is a directory ($VMCLONE_HOME, default ~/.local/share/vmclone)
 * holding catalog.db and the default pools "primary" (VM disks) and
 * "secondary" (templates). Only vmc_catalog_open() with
 * VMC_CATALOG_CREATE creates a store; without it a missing store is
 * -ENOENT ("no store at ...").
 *
 * Conventions are those of vmclone.h: 0 or a negative errno, and a
 * `struct vmc_error *err` last (may be NULL). Expected codes: -ENOENT (no
 * such object), -EEXIST (name taken), -ENOTEMPTY (it has dependents;
 * the message lists them), -EBUSY (a lock is held: a running VM, another
 * operation), -EINVAL (bad argument), -EROFS (a template).
 * Nothing here prints. One struct vmc_catalog must be used by one thread
 * at a time; any number of processes may use one store concurrently.
 * See docs/catalog.md for the model and the crash-recovery rules.
 */
#ifndef VMCLONE_CATALOG_H
#define VMCLONE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmclone.h"
#include "vmclone-ops.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vmc_catalog;

enum vmc_catalog_flags {
    /** Take the store's maintenance lock exclusively (fsck): waits for
     *  every other command on the store to finish. */
    VMC_CATALOG_EXCLUSIVE = 1 << 0,
    /** Do not recover interrupted operations at open. */
    VMC_CATALOG_NO_RECOVER = 1 << 1,
    /** Create the store when it is missing (vm-clone init); without it,
     *  a missing store is -ENOENT. */
    VMC_CATALOG_CREATE = 1 << 2,
};

/**
 * The store directory to use: @home if non-NULL, else $VMCLONE_HOME, else
 * $XDG_DATA_HOME/vmclone, else ~/.local/share/vmclone.
 * @param[out] out  newly allocated, freed with free().
 */
VMC_API int vmc_catalog_home(const char *home, char **out);

/**
 * Open the store at @home (see vmc_catalog_home()) and its catalog,
 * creating it first with VMC_CATALOG_CREATE, migrating the schema, and
 * roll forward or back the operations of processes that died (unless
 * VMC_CATALOG_NO_RECOVER).
 * @return 0, -ENOENT (no store there, without VMC_CATALOG_CREATE),
 * -EACCES, -EIO (SQLite), -ENOTSUP (catalog newer than us).
 */
VMC_API int vmc_catalog_open(struct vmc_catalog **out, const char *home,
                             unsigned flags, struct vmc_error *err);
/**
 * Create the store at @home (as vmc_catalog_open() with
 * VMC_CATALOG_CREATE) on the catalog database @catalog: NULL or "sqlite"
 * for catalog.db in the store, or a libpq connection string
 * ("postgresql://..." or "host=... dbname=...") for a PostgreSQL database
 * that several hosts may share. The choice and @host_id (NULL: the
 * hostname) are recorded in the store's catalog.conf, so later opens use
 * them. On a store that exists, opens it, or -EEXIST when it records
 * another choice. -ENOTSUP: PostgreSQL without libpq in this build.
 */
VMC_API int vmc_catalog_create(struct vmc_catalog **out, const char *home,
                               const char *catalog, const char *host_id,
                               struct vmc_error *err);
/** NULL is allowed. */
VMC_API void vmc_catalog_close(struct vmc_catalog *cat);
/** Borrowed: the store's directory. */
VMC_API const char *vmc_catalog_dir(const struct vmc_catalog *cat);
/** Borrowed: this host's id (catalog.conf's host-id, or the hostname). */
VMC_API const char *vmc_catalog_host_id(const struct vmc_catalog *cat);

/**
 * Report the progress of long operations on @cat through @fn when they
 * were given no callback of their own: template copies (first linked use
 * in a pool), imports, full clones, flatten, relink, consolidate and the
 * flattening of dependents (template rm/retire). Each operation is one
 * sequence from 0 to total over all its files. @fn NULL: none.
 */
VMC_API void vmc_catalog_set_progress(struct vmc_catalog *cat,
                                      vmc_progress_fn fn, void *opaque);

/**
 * Called with one row of a report: @ncols columns named @names with text
 * @values (NULL for SQL NULL). A non-zero return stops the report and is
 * returned by vmc_catalog_report_rows().
 */
typedef int (*vmc_catalog_row_fn)(int ncols, const char *const *names,
                                  const char *const *values, void *opaque);

/* --------------------------------------------------------------- reports */

/**
 * The named read-only reports of the catalog (the rows the command line
 * shows). Each takes its arguments as text, in the order given here, and
 * yields rows with the columns named here (NULL for SQL NULL).
 */
enum vmc_report {
    VMC_REPORT_CONFIG,             /**< (): key, value */
    VMC_REPORT_POOLS,              /**< (): name, kind, path */
    VMC_REPORT_POOL_LIST,          /**< (): name, kind, type, path, volumes,
                                    *  max_clones_per_base */
    VMC_REPORT_POOL,               /**< (pool): pool, kind, path */
    VMC_REPORT_POOL_VOLUMES,       /**< (pool): path, virtual_size */
    VMC_REPORT_TEMPLATE_EXISTS,    /**< (template): x (one row if it is) */
    VMC_REPORT_RETIRED_TEMPLATES,  /**< (): name */
    /** (): name, state, retired, cpus, memory_mb, nics, disks,
     *  virtual_size, copies_in, dependent_count (VMs and snapshots reading
     *  its files, directly or not, and an instant template's instant
     *  clones: as vmc_catalog_dependents()), origin, created */
    VMC_REPORT_TEMPLATES,
    /** (template): name, state, retired, cpus, memory_mb, nics, origin,
     *  created, pool */
    VMC_REPORT_TEMPLATE,
    VMC_REPORT_TEMPLATE_DISKS,     /**< (template): disk, path,
                                    *   virtual_size, seal */
    VMC_REPORT_TEMPLATE_COPIES,    /**< (template): pool, state, mechanism,
                                    *   created */
    VMC_REPORT_TEMPLATE_USERS,     /**< (template): kind, name of the VMs
                                    *   and snapshots on its disks */
    VMC_REPORT_TEMPLATE_EXPORT,    /**< (template): state, disk, path */
    /** (key, value, key, value...: labels that must all match): name,
     *  state, type, mechanism, requested, source, pool, cpus, memory_mb,
     *  disks, virtual_size, labels, created, expires, request_id, uuid */
    VMC_REPORT_VMS,
    VMC_REPORT_VM,                 /**< (vm): the columns of VMS */
    VMC_REPORT_VM_NICS,            /**< (vm): nic, mac */
    VMC_REPORT_VM_SNAPSHOTS,       /**< (vm): name, state, created */
    VMC_REPORT_VM_DISKS,           /**< (vm): id, disk, path, virtual_size */
    /** (vm): name, state, created, disks, dependents (volumes of other
     *  VMs on the snapshot) */
    VMC_REPORT_SNAPSHOTS,
    VMC_REPORT_VOLUME_CHAIN,       /**< (volume id): path, kind, name,
                                    *   depth (top first) */
    /** (): kind, name, path, virtual_size, pkind, pname of every ready
     *  volume (templates, copies, snapshots, then VMs) */
    VMC_REPORT_VOLUME_TREE,
    VMC_REPORT_FULL_VMS,           /**< (): name, source, mechanism */
    VMC_REPORT_READY_TEMPLATE,     /**< (template): name, if ready */
    /** (template): path of its disks and of its copies in every pool */
    VMC_REPORT_TEMPLATE_FILES,
    /** (vm): path of its disks and of its snapshots' layers */
    VMC_REPORT_VM_FILES,
    /** (vm): file, backing (NULL when standalone) of its disks */
    VMC_REPORT_VM_TOP_DISKS,
    /** (disk file): file of each snapshot layer under it, top first */
    VMC_REPORT_DISK_LAYERS,
    /** (vm, snapshot): disk, backing: the ready snapshot's layers */
    VMC_REPORT_SNAPSHOT_LAYERS,
    /** (vm): count of volumes whose parent is one of the VM's disks */
    VMC_REPORT_VM_TOPS_USED,
    /** (vm): key, value of each label, by key */
    VMC_REPORT_VM_LABELS,
    /** (vm): ephemeral (0/1), seed (its NoCloud ISO's path, or NULL) */
    VMC_REPORT_VM_CUSTOM,
    /** (template): the columns of VOLUME_TREE for the template's volumes,
     *  its copies' and every volume under them (-ENOENT: no such
     *  template) */
    VMC_REPORT_TEMPLATE_TREE,
    /** (): template, kind ('ram' or 'state'), path, size (bytes at
     *  freeze) of every instant template's frozen files, by template */
    VMC_REPORT_INSTANT_FILES,
};

/**
 * Run report @which with its @args and call @fn for each row; a
 * non-zero return of @fn stops and is returned. -EINVAL when @nargs does
 * not fit the report.
 */
VMC_API int vmc_catalog_report_rows(struct vmc_catalog *cat,
                                    enum vmc_report which,
                                    const char *const *args, size_t nargs,
                                    vmc_catalog_row_fn fn, void *opaque,
                                    struct vmc_error *err);

/* ---------------------------------------------------------------- config */

/** Keys: default-template, default-pool, max-chain-depth. */
VMC_API int vmc_catalog_config_get(struct vmc_catalog *cat, const char *key,
                                   char **out, struct vmc_error *err);
/** @value NULL removes the key. */
VMC_API int vmc_catalog_config_set(struct vmc_catalog *cat, const char *key,
                                   const char *value, struct vmc_error *err);

/* ----------------------------------------------------------------- pools */

/** Add pool @name at directory @path (created if missing) of @kind
 *  "primary" or "secondary". */
VMC_API int vmc_catalog_pool_add(struct vmc_catalog *cat, const char *name,
                                 const char *path, const char *kind,
                                 struct vmc_error *err);
/** Where an rbd pool's images live (vmc_catalog_pool_add_rbd()). */
struct vmc_rbd_pool_opts {
    const char *rbd_pool;   /**< the Ceph pool */
    const char *ns;         /**< its RBD namespace, or NULL */
    const char *conf;       /**< ceph.conf (absolute), or NULL: Ceph's own
                             *  search ($CEPH_CONF, /etc/ceph/ceph.conf) */
    const char *id;         /**< client id without "client.", or NULL:
                             *  admin; the keyring stays where Ceph keeps
                             *  it */
};
/** Add pool @name of @kind whose volumes are images of a Ceph RBD pool
 *  (checked by connecting; include/vmclone-rbd.h). */
VMC_API int vmc_catalog_pool_add_rbd(struct vmc_catalog *cat,
                                     const char *name, const char *kind,
                                     const struct vmc_rbd_pool_opts *o,
                                     struct vmc_error *err);
/** Remove an empty pool from the catalog (its directory is kept). */
VMC_API int vmc_catalog_pool_rm(struct vmc_catalog *cat, const char *name,
                                struct vmc_error *err);
/** Make pool @name shared: every host sharing the catalog may touch its
 *  files (a directory all of them mount at its path). On PostgreSQL a
 *  pool is otherwise local to the host that added it: another host's
 *  command that would touch its files is refused (-EREMOTE) naming that
 *  host. On SQLite (one host) every pool is shared already. */
VMC_API int vmc_catalog_pool_share(struct vmc_catalog *cat, const char *name,
                                   struct vmc_error *err);
/** Set primary pool @name's limit of linked clones per base copy of a
 *  template: @max children (0: no limit; -1: the default of its type,
 *  none for 'dir', 200 for 'rbd'). A linked clone uses the template's
 *  copy with room and the fewest children; when every copy is full, one
 *  more copy is made (once, whatever the concurrency).
 *  @return 0, -ENOENT (no such pool), -EINVAL (@max below -1, or a
 *  secondary pool) */
VMC_API int vmc_catalog_pool_set_max_clones(struct vmc_catalog *cat,
                                            const char *name, int64_t max,
                                            struct vmc_error *err);
/** Pool @name's limit of linked clones per base copy in *@max (0: none;
 *  the default of its type when not set). */
VMC_API int vmc_catalog_pool_max_clones(struct vmc_catalog *cat,
                                        const char *name, int64_t *max,
                                        struct vmc_error *err);

/* ------------------------------------------------------------- templates */

struct vmc_hw_spec {
    unsigned cpus;          /**< 0 = default (1) */
    uint64_t memory_mb;     /**< 0 = default (1024) */
    unsigned nics;          /**< 0 = default (1); VMC_HW_NO_NICS for none */
    bool uefi;              /**< boots through UEFI (OVMF), else BIOS */
};
#define VMC_HW_NO_NICS (~0u)

struct vmc_import_opts {
    struct vmc_hw_spec hw;
    /** Format of the images; VMC_FMT_AUTO probes. */
    enum vmc_format format;
    /** Copy the guest view of an image that has a backing file instead of
     *  refusing it (the chain must be regular files). */
    bool flatten;
    /** With @format VMC_FMT_RAW: import a file whose bytes name a known
     *  container (VMDK, VHDX...) as raw data anyway (refused otherwise). */
    bool force_raw;
    /** Secondary pool to store the template in; NULL = "secondary". */
    const char *pool;
    /** With @flatten: a directory besides the image's own whose files the
     *  backing chain may use (NULL: only the image's directory; absolute
     *  backing names, '..' escapes and symlinks out are refused). */
    const char *allow_backing;
    vmc_progress_fn progress;
    void *opaque;
};

VMC_API void vmc_import_opts_init(struct vmc_import_opts *o);

/**
 * Import @n images as the disks of template @name: each is copied into
 * the secondary pool as a standalone qcow2 image and sealed (mode 0444,
 * verified content). An image that has a backing file is refused unless
 * @o->flatten; its chain is never opened otherwise.
 * @return 0, -EEXIST, -EINVAL (backing file, bad name), -ENOSPC, ...
 */
VMC_API int vmc_catalog_template_import(struct vmc_catalog *cat,
                                        const char *name,
                                        const char *const *images, size_t n,
                                        const struct vmc_import_opts *o,
                                        struct vmc_error *err);

/** What vmc_catalog_template_import_appliance() read. */
struct vmc_appliance_report {
    size_t ndisks;
    struct vmc_hw_spec hw;      /**< the template's hardware */
    const char *manifest;       /**< digest checked ("SHA256"), or NULL:
                                     the appliance has no manifest */
    char formats[64];           /**< the disks' formats ("vmdk") */
};

/**
 * Import OVF appliance @path as template @name: an .ova (tar archive,
 * descriptor first) or an .ovf descriptor with its files beside it. The
 * descriptor's disks (in the order of its disk drives) become the
 * template's disks and its CPUs, memory and network cards its hardware
 * (an @o->hw value that is set wins). A manifest, when present, must
 * list every file used with a matching SHA-1/SHA-256/SHA-512 digest.
 * An archive is unpacked only into a private directory of the store,
 * removed afterwards.
 * @return 0; -EBADMSG (manifest entry missing or wrong, a disk missing
 *         from the appliance); -EINVAL (a DTD or entities in the
 *         descriptor, a file name that is a path, not an appliance);
 *         -EFBIG (descriptor over 4 MiB); -ENOTSUP; or what
 *         vmc_catalog_template_import() returns.
 */
VMC_API int vmc_catalog_template_import_appliance(
    struct vmc_catalog *cat, const char *name, const char *path,
    const struct vmc_import_opts *o, struct vmc_appliance_report *rep,
    struct vmc_error *err);

/** One disk of an appliance vmc_ova_write() makes. */
struct vmc_ova_disk {
    const char *file;           /**< a streamOptimized VMDK (its base name
                                     is its name in the archive) */
    uint64_t capacity;          /**< guest bytes */
};
/** What vmc_ova_write() describes. */
struct vmc_ova_spec {
    const char *name;           /**< the virtual system (file names too) */
    unsigned cpus;
    uint64_t memory_mb;
    unsigned nics;
    size_t ndisks;
    const struct vmc_ova_disk *disks;
};

/**
 * Write the OVF 1.0 appliance @s as a new tar archive @path (never one
 * that exists: -EEXIST): NAME.ovf (the descriptor: CPUs, memory, network
 * cards and disks), NAME.mf (SHA-256 of each file), then the disks; what
 * vmc_catalog_template_import_appliance() reads. A failure removes
 * @path. @return 0, -EEXIST, -EIO, -ENOMEM, or a file error.
 */
VMC_API int vmc_ova_write(const char *path, const struct vmc_ova_spec *s,
                          struct vmc_error *err);

/**
 * Make template @name from the current disks of VM @vm (or of its
 * snapshot @snapshot when non-NULL): a standalone sealed copy of each
 * disk's guest view; the VM is left as it is.
 */
VMC_API int vmc_catalog_template_from_vm(struct vmc_catalog *cat,
                                         const char *name, const char *vm,
                                         const char *snapshot,
                                         const struct vmc_import_opts *o,
                                         struct vmc_error *err);

/**
 * Hide template @name from new clones; it is deleted as soon as nothing
 * depends on it (now, if nothing does: *freed is then true). With
 * @flatten_dependents, the VMs and snapshots that use it are flattened
 * first (after checking that their filesystems have the space: -ENOSPC
 * and nothing done otherwise), so that it is freed now.
 */
VMC_API int vmc_catalog_template_retire(struct vmc_catalog *cat,
                                        const char *name,
                                        bool flatten_dependents, bool *freed,
                                        struct vmc_error *err);

/**
 * Delete template @name with its copies in primary pools. Refused with
 * -ENOTEMPTY (listing them) while VMs or snapshots depend on it, unless
 * @flatten_dependents: those VMs are flattened first (after checking
 * that each filesystem holding one has the space; -ENOSPC otherwise).
 */
VMC_API int vmc_catalog_template_rm(struct vmc_catalog *cat, const char *name,
                                    bool flatten_dependents,
                                    struct vmc_error *err);

/* ----------------------------------------------------------------- clone */

enum vmc_clone_kind {
    VMC_CLONE_KIND_DEFAULT = 0, /**< linked when possible */
    VMC_CLONE_KIND_LINKED,
    VMC_CLONE_KIND_FULL,
};

VMC_API const char *vmc_clone_kind_name(enum vmc_clone_kind k);

struct vmc_label {
    const char *key;
    const char *value;
};

struct vmc_catalog_clone_opts {
    enum vmc_clone_kind kind;
    const char *snapshot;       /**< clone this snapshot of a VM source */
    const char *pool;           /**< primary pool; NULL = default */
    bool thick;                 /**< full clones: preallocate */
    unsigned count;             /**< 0/1 = one; N needs a %d in the name */
    const struct vmc_label *labels;
    size_t nlabels;
    uint64_t ttl_seconds;       /**< 0 = never expires */
    /** A retried call with the same id returns the VM(s) made by the
     *  first call instead of making new ones; a call with the same id
     *  and another name, source, snapshot, kind, count or pool is
     *  refused with -EEXIST (naming the first call's VM). */
    const char *request_id;
    /** Define a libvirt domain for each VM on this connection URI ("" =
     *  libvirt's default), all or nothing with the clone. */
    const char *define_uri;
    vmc_progress_fn progress;
    void *opaque;
};

struct vmc_catalog_clone_result {
    size_t count;
    char **names;               /**< the VMs (owned, see _release) */
    bool existing;              /**< returned by --request-id, not made */
    enum vmc_clone_kind requested;
    enum vmc_clone_kind actual;
    /** "overlay", "reflink", "copy_file_range" or "copy". */
    const char *mechanism;
    unsigned disks;             /**< per VM */
    double seconds;
    uint64_t bytes_written;     /**< allocated bytes of the new files */
    /** The template was copied into the pool by this call. */
    bool template_copied;
    const char *copy_mechanism;
    uint64_t copy_bytes;
    char source_kind[16];       /**< "template" or "vm" */
    char pool[128];
};

/**
 * Clone @source (a template, or a VM; with @o->snapshot, that snapshot of
 * the VM) into @o->count new VMs named @name (with a %d, numbered from 1).
 * All disks of all the VMs appear together or not at all. A linked clone
 * of a template uses the template's copy in the pool, made on first use
 * (once, even under concurrent first uses). A linked clone of a VM needs
 * a snapshot.
 * @return 0 (see @res), -EEXIST, -ENOENT, -EINVAL, -ENOSPC, ...
 */
VMC_API int vmc_catalog_clone(struct vmc_catalog *cat, const char *source,
                              const char *name,
                              const struct vmc_catalog_clone_opts *o,
                              struct vmc_catalog_clone_result *res,
                              struct vmc_error *err);

VMC_API void vmc_catalog_clone_result_release(
    struct vmc_catalog_clone_result *res);

/* ------------------------------------------------------------- snapshots */

/** Freeze the current disks of @vm as snapshot @name (read-only parents)
 *  and give the VM new overlays on them. */
VMC_API int vmc_catalog_snapshot_create(struct vmc_catalog *cat, const char *vm,
                                        const char *name,
                                        struct vmc_error *err);
/** Discard the VM's current state and give it new overlays on @name. */
VMC_API int vmc_catalog_snapshot_revert(struct vmc_catalog *cat, const char *vm,
                                        const char *name,
                                        struct vmc_error *err);
/** Delete snapshot @name: its data is merged into the VM's own layers
 *  above it; refused (-ENOTEMPTY) when clones depend on it. */
VMC_API int vmc_catalog_snapshot_rm(struct vmc_catalog *cat, const char *vm,
                                    const char *name, struct vmc_error *err);

/* ------------------------------------------------------------------- VMs */

/** Delete VM @name with its disks and snapshots; -ENOTEMPTY (listing them)
 *  when clones depend on its snapshots. */
VMC_API int vmc_catalog_vm_rm(struct vmc_catalog *cat, const char *name,
                              struct vmc_error *err);
/** Make the VM's disks standalone (linked -> full). */
VMC_API int vmc_catalog_vm_flatten(struct vmc_catalog *cat, const char *name,
                                   vmc_progress_fn progress, void *opaque,
                                   struct vmc_error *err);
/** Make the VM's disks linked clones of @tmpl's copy in the VM's pool,
 *  keeping only what differs. *saved gets the bytes freed. */
VMC_API int vmc_catalog_vm_relink(struct vmc_catalog *cat, const char *name,
                                  const char *tmpl, uint64_t *saved,
                                  struct vmc_error *err);
/** Collapse the VM's snapshot chain under its current disks into one
 *  layer (snapshots stay valid). *merged gets the layers collapsed. */
VMC_API int vmc_catalog_vm_consolidate(struct vmc_catalog *cat,
                                       const char *name, unsigned *merged,
                                       struct vmc_error *err);

/**
 * Everything that depends on @name ("TEMPLATE", "VM" or "VM@SNAPSHOT";
 * @kind "template", "vm", "snapshot" or NULL to guess), directly or not,
 * as "kind name" strings.
 * @param[out] out  array of @n strings, freed with vmc_catalog_strv_free().
 */
VMC_API int vmc_catalog_dependents(struct vmc_catalog *cat, const char *kind,
                                   const char *name, char ***out, size_t *n,
                                   struct vmc_error *err);
VMC_API void vmc_catalog_strv_free(char **v, size_t n);

/* ----------------------------------------------------------- maintenance */

/** Called once per finding: @what "removed", "would-remove", "unknown",
 *  "fixed", "problem", "recovered" ...; @subject and @detail one line. */
typedef void (*vmc_catalog_report_fn)(const char *what, const char *subject,
                                      const char *detail, void *opaque);

struct vmc_gc_result {
    unsigned removed;           /**< VMs, template copies, templates */
    uint64_t bytes_freed;       /**< allocated bytes of their files */
};

/**
 * Remove expired VMs, unreferenced template copies and retired templates
 * that nothing depends on; report files in pools the catalog does not
 * know (never deleted). @dry_run reports without removing. Each object
 * removed (also a retired template freed because its last dependent
 * went) is reported as "removed" with the space it freed. @res may be
 * NULL.
 */
VMC_API int vmc_catalog_gc(struct vmc_catalog *cat, bool dry_run,
                           vmc_catalog_report_fn fn, void *opaque,
                           struct vmc_gc_result *res, struct vmc_error *err);

struct vmc_fsck_result {
    unsigned volumes;           /**< volume rows checked */
    unsigned recovered;         /**< interrupted operations finished */
    unsigned fixed;             /**< rows corrected from the files */
    unsigned temp_removed;      /**< leftover temporary files removed */
    unsigned unknown;           /**< files in pools without a row */
    unsigned problems;          /**< inconsistencies left */
    unsigned quarantined;       /**< unknown files moved (remove_unknown) */
    unsigned verified;          /**< sealed images verified (verify) */
    unsigned reaped;            /**< other hosts' operations finished (reap) */
};

/** What vmc_catalog_fsck_with() does besides the checks of
 *  vmc_catalog_fsck(). */
struct vmc_fsck_opts {
    /** Verify the seal of every sealed template and template copy (every
     *  chunk read and hashed, the root compared with the catalog's): a
     *  damaged one is a problem, named. */
    bool verify;
    /** Move the files in pools that the catalog does not know and whose
     *  names our naming scheme made ("NAME-diskN-[STOREID-]ID.qcow2" and
     *  its ".seal") to @quarantine; other unknown files stay in place.
     *  Nothing is ever deleted. */
    bool remove_unknown;
    /** Where remove_unknown moves files; NULL = "<pool>/.quarantine". */
    const char *quarantine;
    /** With verify: rewrite the damaged chunks of a template copy from its
     *  template (which must verify), counted in fixed. */
    bool repair;
    /** Also finish the interrupted operations of other hosts sharing
     *  the catalog (PostgreSQL): those whose session lock is free and
     *  whose files are in pools this host reaches. Without it they are
     *  problems naming their host. */
    bool reap;
};

/**
 * Reconcile the catalog and the files (the catalog must have been opened
 * with VMC_CATALOG_EXCLUSIVE): finish or undo interrupted operations,
 * remove our temporary files, correct a row's parent from the file's
 * backing reference, and report what cannot be reconciled (a missing or
 * unreadable file, a backing file outside the catalog) as problems.
 * Also runs SQLite's integrity and foreign key checks.
 */
VMC_API int vmc_catalog_fsck(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
                             void *opaque, struct vmc_fsck_result *res,
                             struct vmc_error *err);

/** vmc_catalog_fsck() with options (@o NULL: none). */
VMC_API int vmc_catalog_fsck_with(struct vmc_catalog *cat,
                                  const struct vmc_fsck_opts *o,
                                  vmc_catalog_report_fn fn, void *opaque,
                                  struct vmc_fsck_result *res,
                                  struct vmc_error *err);

/* ------------------------------------------- instant templates (instant.c) */

/** A file of an instant template, as recorded at freeze. */
struct vmc_instant_file {
    char *path;             /**< absolute */
    char *sha256;           /**< lower-case hex */
    int64_t size, ino, mtime_ns;
    int mode;               /**< permission bits */
};

/** What a frozen VM left and its clones must repeat. */
struct vmc_instant {
    char *template_name;
    char *qemu_version;     /**< QMP query-version, "7.2.22 (pkg)" */
    char *machine;          /**< the resolved machine type, "pc-q35-7.2" */
    char *devices;          /**< the -device list, one per line */
    int cpus, memory_mb;
    char *kernel, *initrd, *append;     /**< direct boot (NULL: none) */
    struct vmc_instant_file ram, state;
};

/** The SHA-256 of file @path as 64 hex digits. 0 or -errno. */
VMC_API int vmc_instant_file_digest(const char *path, char hex[65],
                                    struct vmc_error *err);
/** Record file @path in *@f (digest, size, inode, mtime, mode). */
VMC_API int vmc_instant_file_record(const char *path,
                                    struct vmc_instant_file *f,
                                    struct vmc_error *err);
/**
 * Whether @f is still as recorded: size, inode, mtime and mode, and with
 * @digest its SHA-256 too. 0, or -ESTALE (changed) / -ENOENT / -EIO with
 * the reason in @why.
 */
VMC_API int vmc_instant_file_check(const struct vmc_instant_file *f,
                                   bool digest, char *why, size_t len);
/**
 * Make instant template @name of VM @vm, whose QEMU was frozen into @in's
 * files (freeze.c). In place, whatever the disks' size: the VM's top
 * layers become the template's disks (sealed, mode 0444, in the VM's
 * pool, on the layers below them), the VM gets new empty overlays on
 * them, and linked clones of @name are made in that pool on those layers.
 * One journaled operation: a crash before its commit gives the VM its
 * writable layers back. The template's disk paths in *@layers (*@n; the
 * caller frees them). -EEXIST (name taken), -ENOTSUP (rbd pool), -ELOOP
 * (max-chain-depth), -ENOTEMPTY (the VM has snapshots), -EBUSY (the VM is
 * being changed), other -errno.
 */
VMC_API int vmc_catalog_template_freeze(struct vmc_catalog *cat,
                                        const char *name, const char *vm,
                                        const struct vmc_instant *in,
                                        char ***layers, size_t *n,
                                        struct vmc_error *err);
/** What vmc_catalog_template_freeze() would refuse before it changes
 *  anything (the name, the VM, its pool, snapshots, chain depth): checked
 *  before the VM's QEMU is stopped. 0 or its -errno. */
VMC_API int vmc_catalog_template_freeze_check(struct vmc_catalog *cat,
                                              const char *name,
                                              const char *vm,
                                              struct vmc_error *err);
/** The record of instant template @tmpl; -ENOENT when it is none. */
VMC_API int vmc_catalog_instant_get(struct vmc_catalog *cat,
                                    const char *tmpl, struct vmc_instant *out,
                                    struct vmc_error *err);
/** The record of the template of VM @vm cloned with --instant; -ENOENT
 *  when @vm is no instant clone. */
VMC_API int vmc_catalog_instant_of_vm(struct vmc_catalog *cat,
                                      const char *vm,
                                      struct vmc_instant *out,
                                      struct vmc_error *err);
/** Mark VM @vm (a clone of an instant template) an instant clone:
 *  "start" restores it. -EINVAL when its template is no instant one. */
VMC_API int vmc_catalog_instant_mark(struct vmc_catalog *cat, const char *vm,
                                     struct vmc_error *err);
/** An instant clone's disk is its own once a start has resumed it: the
 *  template's memory, resumed again, would not match it. @resumed true:
 *  record that VM @vm is being resumed (compare-and-set from "never
 *  resumed"; -EBUSY when another start did it first, -ENOENT when @vm is
 *  no instant clone or was resumed before); false: undo that record for
 *  a start that failed before the guest ran. Once resumed, "start" boots
 *  the VM from its disk like any other. */
VMC_API int vmc_catalog_instant_resume(struct vmc_catalog *cat,
                                       const char *vm, bool resumed,
                                       struct vmc_error *err);
/** 1 when VM @vm is an instant clone resumed before (it now boots from its
 *  disk), 0 when not, or a negative errno. */
VMC_API int vmc_catalog_instant_was_resumed(struct vmc_catalog *cat,
                                            const char *vm,
                                            struct vmc_error *err);
VMC_API void vmc_instant_release(struct vmc_instant *in);

#ifdef __cplusplus
}
#endif

#endif /* VMCLONE_CATALOG_H */
