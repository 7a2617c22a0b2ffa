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

#ifdef __cplusplus
}
#endif

#endif /* VMCLONE_CATALOG_ADMIN_H */
