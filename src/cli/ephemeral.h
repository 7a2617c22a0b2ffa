/*
 * ephemeral.h - ephemeral runs of a VM ("start --ephemeral", and VMs
 * cloned with --ephemeral): throwaway overlays in the store's
 * run/scratch, and the sweep of what killed runs left there
 * (ephemeral.c; the overlays themselves: src/ops/scratch.c).
 */
#ifndef VMC_CLI_EPHEMERAL_H
#define VMC_CLI_EPHEMERAL_H

#include <stdbool.h>

#include <json-c/json.h>

#include "vmclone-ops.h"

/* The store's directory for throwaway overlays: HOME/run/scratch. */
#define EPH_SCRATCH "run/scratch"

/* Whether a run of @vm is ephemeral: @asked (--ephemeral), or the VM
 * was cloned with --ephemeral (its "ephemeral" member). */
bool eph_wanted(struct json_object *vm, bool asked);
/*
 * Put a new overlay, in a scratch directory of store @home, on top of
 * every disk of model @hw (vmclone-virt.h), so that QEMU writes there and
 * only reads the VM's own files. *@out holds the overlays (and their
 * lock) until vmc_scratch_free(). With @dry_run the overlays only name
 * what would be made (*@out stays NULL). Prints the error and returns an
 * exit status on failure.
 */
struct vmc_hw;
int eph_overlays(struct vmc_hw *hw, const char *home, bool dry_run,
                 struct vmc_scratch **out);
/* Remove what dead ephemeral runs left in store @home (silent). */
void eph_sweep(const char *home);

#endif /* VMC_CLI_EPHEMERAL_H */
