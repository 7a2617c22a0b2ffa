/*
 * test-header.c - include/vmclone.h compiles on its own as strict C99
 * (built with -std=c99 -pedantic-errors, see tests/meson.build) and its
 * basic promises hold.
 */
#include "vmclone.h"

#include <stdio.h>
#include <string.h>

int
main(void)
{
    struct vmc_create_opts o;
    struct vmc_error err = { 0 };

    memset(&o, 0xff, sizeof(o));
    vmc_create_opts_init(&o);
    if (o.format != VMC_FMT_QCOW2 || o.backing_file != NULL ||
        o.extended_l2 || o.prealloc != VMC_PREALLOC_OFF) {
        printf("FAIL: vmc_create_opts_init left odd defaults\n");
        return 1;
    }
    if (vmc_format_from_name("qcow2") != VMC_FMT_QCOW2 ||
        vmc_format_from_name("raw") != VMC_FMT_RAW ||
        vmc_format_from_name("vmdk") != VMC_FMT_AUTO ||
        strcmp(vmc_format_name(VMC_FMT_QCOW2), "qcow2") != 0) {
        printf("FAIL: format names\n");
        return 1;
    }
    if (vmc_error_set(&err, -5, "x %d", 1) != -5 || err.code != -5 ||
        strcmp(err.msg, "x 1") != 0) {
        printf("FAIL: vmc_error_set\n");
        return 1;
    }
    vmc_error_prepend(&err, "ctx");
    if (strcmp(err.msg, "ctx: x 1") != 0) {
        printf("FAIL: vmc_error_prepend gave '%s'\n", err.msg);
        return 1;
    }
    if (!vmc_version() || !*vmc_version()) {
        printf("FAIL: vmc_version\n");
        return 1;
    }
    printf("ok\n");
    return 0;
}
