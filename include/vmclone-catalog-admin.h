/*
 * vmclone-catalog-admin.h - the operator's view of a catalog (issue 13):
 * a VM's honest state (running, expired, broken), changing a VM after
 * its clone (labels, TTL, hardware), pre-staging template copies per
 * pool, and the damaged copies fsck --verify found. Conventions are
 * those of vmclone-catalog.h.
 */
#ifndef VMCLONE_CATALOG_ADMIN_H
#define VMCLONE_CATALOG_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmclone-catalog.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a VM is, as an operator sees it. */
struct vmc_vm_status {
    /** "ready", "running" (a process holds a disk's write lock),
     *  "expired" (its TTL passed), "broken" (a disk or a layer under it
     *  is missing or damaged), or the row's "creating"/"deleting". */
    const char *state;
    /** running: a process that has the disk open (0 when not found,
     *  e.g. another user's). */
    int pid;
    /** running or broken: which file and why, one line. */
    char detail[512];
};

/**
 * The state of VM @name: broken wins over running, running over expired.
 * Reads the catalog and looks at the files (stat, lock probes); changes
 * nothing. @return 0, -ENOENT (no such VM).
 */
VMC_API int vmc_catalog_vm_status(struct vmc_catalog *cat, const char *name,
                                  struct vmc_vm_status *out,
                                  struct vmc_error *err);

/** What vmc_catalog_vm_set() changes; zero/NULL fields stay as they are. */
struct vmc_vm_changes {
    const struct vmc_label *labels;     /**< set (added or replaced) */
    size_t nlabels;
    const char *const *unlabels;        /**< keys removed (absent: fine) */
    size_t nunlabels;
    bool set_ttl;                       /**< change the expiry: */
    uint64_t ttl_seconds;               /**< from now; 0 = never expires */
    unsigned cpus;                      /**< 0 = unchanged */
    uint64_t memory_mb;                 /**< 0 = unchanged */
    bool set_nics;                      /**< change the NIC count: */
    unsigned nics;                      /**< new NICs get new MACs */
};

/**
 * Guest customization of a VM (cloud-init NoCloud) and its ephemeral
 * mark; NULL strings and a false set_ephemeral leave that as it is.
 */
struct vmc_vm_custom {
    const char *hostname;        /**< local-hostname (default: the VM's
                                  *   name): 1..63 of [A-Za-z0-9.-] */
    const char *ssh_key;         /**< one authorized key line: the
                                  *   user-data's ssh_authorized_keys
                                  *   when no user_data is given */
    const char *user_data;       /**< user-data as given */
    const char *network_config;  /**< network-config as given */
    bool set_ephemeral;
    bool ephemeral;              /**< every start of it is ephemeral */
};

/**
 * Customize VM @name: store @c's values and, once the VM has any seed
 * value, (re)make its seed: an ISO 9660 volume labelled "cidata" (Rock
 * Ridge and Joliet names) holding meta-data (instance-id: the VM's
 * uuid, local-hostname), user-data and network-config, built with
 * libisofs. The seed is a volume of the VM (kind 'seed', next to its
 * disks in its pool): removed with it, replaced whole (a new file
 * renamed over it) when remade. @return 0, -ENOENT, -EINVAL, -errno.
 */
VMC_API int vmc_catalog_vm_customize(struct vmc_catalog *cat,
                                     const char *name,
                                     const struct vmc_vm_custom *c,
                                     struct vmc_error *err);

/**
 * Change VM @name after its clone: labels, expiry, CPUs, memory, NICs
 * (hardware takes effect at its next start). One transaction whose
 * every update is a compare-and-set on the row as it was read: a VM
 * changed meanwhile by another command is -EAGAIN (retry) and nothing
 * changes. @return 0, -ENOENT, -EINVAL (bad label), -EAGAIN.
 */
VMC_API int vmc_catalog_vm_set(struct vmc_catalog *cat, const char *name,
                               const struct vmc_vm_changes *c,
                               struct vmc_error *err);

/**
 * The bytes done so far by the long operation whose progress
 * vmc_catalog_set_progress()'s callback is reporting (all its files):
 * with the callback's fraction, a rate and an ETA.
 */
VMC_API uint64_t vmc_catalog_progress_bytes(const struct vmc_catalog *cat);

/** What vmc_catalog_template_copy() did. */
struct vmc_template_copy_result {
    char *pool;                 /**< the pool's name (free()) */
    bool copied;                /**< made now; false: it was there */
    const char *mechanism;      /**< when copied: "reflink", "copy"... */
    uint64_t bytes;             /**< when copied: bytes written */
    bool in_place;              /**< a frozen template's own pool: no copy
                                 *   is made, its clones use it in place */
};

/**
 * Pre-stage the copy of template @name in primary pool @pool (NULL: the
 * default pool): the copy a first linked clone there would make, made now
 * (once, whatever the concurrency); idempotent.
 * @return 0, -ENOENT (no such template or pool), -EINVAL (retired), ...
 */
VMC_API int vmc_catalog_template_copy(struct vmc_catalog *cat,
                                      const char *name, const char *pool,
                                      struct vmc_template_copy_result *res,
                                      struct vmc_error *err);

#ifdef __cplusplus
}
#endif

#endif /* VMCLONE_CATALOG_ADMIN_H */
