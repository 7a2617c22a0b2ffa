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
#include "vm-qemu.h"

bool
eph_wanted(struct json_object *vm, bool asked)
{
    return asked || json_object_get_boolean(json_object_object_get(
                        vm, "ephemeral"));
}

/* --dry-run: the names the overlays would have. */
static int
name_overlays(struct json_object *disks, size_t n, const char *base)
{
    char *ov = NULL;
    size_t i;

    for (i = 0; i < n; i++) {
        if (asprintf(&ov, "%s/ephemeral.XXXXXX/overlay-%zu.qcow2", base,
                     i) < 0) {
            return cli_error("out of memory");
        }
        json_object_object_add(json_object_array_get_idx(disks, i), "path",
                               json_object_new_string(ov));
        free(ov);
    }
    return 0;
}

int
eph_overlays(struct json_object *vm, const char *home, bool dry_run,
             struct vmc_scratch **out)
{
    struct json_object *disks = NULL;
    struct vmc_error err = { 0 };
    char base[PATH_MAX];
    size_t i, n;
    int r;

    snprintf(base, sizeof(base), "%s/" EPH_SCRATCH, home);
    json_object_object_get_ex(vm, "disks", &disks);
    n = disks ? json_object_array_length(disks) : 0;
    *out = NULL;
    if (dry_run) {
        return name_overlays(disks, n, base);
    }
    r = vmc_scratch_new(out, base, &err);
    for (i = 0; r == 0 && i < n; i++) {
        struct json_object *d = json_object_array_get_idx(disks, i);
        char *ov = NULL;

        r = vmc_scratch_overlay(*out, json_object_get_string(
                                    json_object_object_get(d, "path")),
                                VMC_FMT_QCOW2, &ov, &err);
        if (r == 0) {
            json_object_object_add(d, "path", json_object_new_string(ov));
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

int
eph_seed_drive(struct json_object *vm, struct vmq_argv *qa)
{
    const char *seed = json_object_get_string(json_object_object_get(
                           vm, "seed"));
    char *drive = NULL;
    int r;

    if (!seed) {
        return 0;
    }
    if (asprintf(&drive, "file=%s,format=raw,media=cdrom,readonly=on",
                 seed) < 0) {
        return -ENOMEM;
    }
    r = vmq_push(qa, "-drive");
    if (r == 0) {
        r = vmq_push(qa, drive);
    }
    free(drive);
    return r;
}
