/*
 * test-table-budget.c - issue 9 finding 6: the mapping tables of a whole
 * chain have a memory budget. A chain of layers with large L1 tables
 * (512-byte clusters: one L1 entry per 32 KiB of guest) opens while
 * their tables fit vmc_open_opts.max_table_memory and is refused with
 * -ENOMEM and a message naming the limit past it, before the L1 tables
 * are read; a second chain sharing the backing layers is counted too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"
#include "harness.h"

#define SIZE (4ull << 30)   /* 131072 L1 entries: 1 MiB of L1 */
#define LAYERS 3

static char dir[] = "/tmp/vmc-table-budget-XXXXXX";
static char paths[LAYERS][256];

static int
open_top(uint64_t budget, struct vmc_image **img, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .max_table_memory = budget };

    *img = NULL;
    return vmc_image_open(img, paths[LAYERS - 1], &oo, err);
}

int
main(void)
{
    struct vmc_error err = { 0 };
    struct vmc_image *img, *other;
    uint8_t buf[4096];
    int i;

    if (!mkdtemp(dir)) {
        FAIL("mkdtemp");
    }
    for (i = 0; i < LAYERS; i++) {
        struct vmc_create_opts o;

        snprintf(paths[i], sizeof(paths[i]), "%s/l%d.qcow2", dir, i);
        vmc_create_opts_init(&o);
        o.size = SIZE;
        o.cluster_size = 512;
        o.refcount_bits = 1;   /* one refcount block covers the L1 */
        if (i) {
            o.backing_file = paths[i - 1];
            o.backing_format = VMC_FMT_QCOW2;
        }
        if (vmc_image_create(paths[i], &o, &err) < 0) {
            FAIL("create %s: %s", paths[i], err.msg);
        }
    }
    /* Each layer takes 2 MiB (its L1 and the L2 cache index). */
    CHECK_EQ(open_top(6u << 20, &img, &err), 0);
    if (img) {
        CHECK_EQ(vmc_image_read(img, buf, SIZE - 4096, 4096), 0);
        vmc_image_close(img);
    }
    CHECK_EQ(open_top(5u << 20, &img, &err), -ENOMEM);
    CHECK_MSG(strstr(err.msg, "table memory limit"),
              "refusal '%s' does not name the limit", err.msg);
    if (img) {
        vmc_image_close(img);
    }
    /* The default budget takes this chain. */
    CHECK_EQ(open_top(0, &img, &err), 0);
    /* A second chain over the same (shared) backing layers: counted. */
    CHECK_EQ(open_top(5u << 20, &other, &err), -ENOMEM);
    CHECK_EQ(open_top(6u << 20, &other, &err), 0);
    if (other) {
        vmc_image_close(other);
    }
    if (img) {
        vmc_image_close(img);
    }
    for (i = 0; i < LAYERS; i++) {
        unlink(paths[i]);
    }
    rmdir(dir);
    return harness_exit("table-budget");
}
