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
 * Give every disk of @vm (catcli_vm_json()) a new overlay in a scratch
 * directory of store @home and point the disk's "path" at it, so that
 * QEMU writes there and only reads the VM's own files. *@out holds the
 * overlays (and their lock) until vmc_scratch_free(). With @dry_run the
 * paths only name what would be made (*@out stays NULL). Prints the error
 * and returns an exit status on failure.
 */
int eph_overlays(struct json_object *vm, const char *home, bool dry_run,
                 struct vmc_scratch **out);
/* The VM's cloud-init seed (its "seed" member) as a read-only CD-ROM
 * drive on QEMU's command line @qa, if it has one. @return 0 or
 * -ENOMEM. */
struct vmq_argv;
int eph_seed_drive(struct json_object *vm, struct vmq_argv *qa);
/* Remove what dead ephemeral runs left in store @home (silent). */
void eph_sweep(const char *home);

#endif /* VMC_CLI_EPHEMERAL_H */
