/*
 * test-header.c - include/vmclone.h compiles on its own as strict C99
 * (built with -std=c99 -pedantic-errors, see tests/meson.build) and its
 * basic promises hold.
 */
#include "vmclone.h"

#include <stdio.h>
#include <string.h>

#include "harness.h"

int
main(void)
{
    struct vmc_create_opts o;
    struct vmc_error err = { 0 };

    memset(&o, 0xff, sizeof(o));
    vmc_create_opts_init(&o);
    CHECK_EQ(o.format, VMC_FMT_QCOW2);
    CHECK(o.backing_file == NULL);
    CHECK(!o.extended_l2);
    CHECK_EQ(o.prealloc, VMC_PREALLOC_OFF);
    CHECK_EQ(vmc_format_from_name("qcow2"), VMC_FMT_QCOW2);
    CHECK_EQ(vmc_format_from_name("raw"), VMC_FMT_RAW);
    CHECK_EQ(vmc_format_from_name("vmdk"), VMC_FMT_VMDK);
    CHECK_EQ(vmc_format_from_name("qed"), VMC_FMT_AUTO);
    CHECK(strcmp(vmc_format_name(VMC_FMT_QCOW2), "qcow2") == 0);
    CHECK_EQ(vmc_error_set(&err, -5, "x %d", 1), -5);
    CHECK_EQ(err.code, -5);
    CHECK(strcmp(err.msg, "x 1") == 0);
    vmc_error_prepend(&err, "ctx");
    CHECK_MSG(strcmp(err.msg, "ctx: x 1") == 0,
              "vmc_error_prepend gave '%s'", err.msg);
    CHECK(vmc_version() && *vmc_version());
    return harness_exit("header");
}
