/*
 * ephemeral.c - the throwaway overlays of an ephemeral run of a VM
 * (ephemeral.h). The record a later command finds after a kill -9 is
 * the locked scratch directory, made before QEMU starts (src/ops/
 * scratch.c); QEMU inherits its lock, so the directory is swept only
 * once both vm-clone and QEMU are gone.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cat-cli.h"
#include "ephemeral.h"
#include "vmclone-virt.h"

bool
eph_wanted(struct json_object *vm, bool asked)
{
    return asked || json_object_get_boolean(json_object_object_get(
                        vm, "ephemeral"));
}

int
eph_overlays(struct vmc_hw *hw, const char *home, bool dry_run,
             struct vmc_scratch **out)
{
    struct vmc_error err = { 0 };
    char base[PATH_MAX];
    size_t i, n = hw->ndisks;
    int r = 0;

    snprintf(base, sizeof(base), "%s/" EPH_SCRATCH, home);
    *out = NULL;
    if (!dry_run) {
        r = vmc_scratch_new(out, base, &err);
    }
    for (i = 0; r == 0 && i < n; i++) {
        char *ov = NULL;

        if (hw->disks[i].device != VMC_HW_DISK) {
            continue;                   /* the seed CD-ROM is read-only */
        }
        if (dry_run) {
            /* only the names of what would be made */
            r = asprintf(&ov, "%s/ephemeral.XXXXXX/overlay-%zu.qcow2", base,
                         i) < 0 ? vmc_error_set(&err, -ENOMEM,
                                                "out of memory") : 0;
        } else {
            r = vmc_scratch_overlay(*out, hw->disks[i].path, VMC_FMT_QCOW2,
                                    &ov, &err);
        }
        if (r == 0 && vmc_hw_push_overlay(hw, i, ov) < 0) {
            r = vmc_error_set(&err, -ENOMEM, "out of memory");
        }
        free(ov);
    }
    if (r < 0) {
        vmc_scratch_free(*out);
        *out = NULL;
        return cli_error_lib(&err, r);
    }
    return 0;
}

void
eph_sweep(const char *home)
{
    char base[PATH_MAX];

    if (home && snprintf(base, sizeof(base), "%s/" EPH_SCRATCH, home) <
        (int)sizeof(base)) {
        vmc_scratch_sweep(base, NULL, NULL);
    }
}
