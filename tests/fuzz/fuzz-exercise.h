/*
 * fuzz-exercise.h - what every opener's fuzz target does with an image
 * that opened: its info, reads at fixed and input-derived offsets, and a
 * bounded walk of its block status. Included by the targets' .c files.
 */
#ifndef VMC_FUZZ_EXERCISE_H
#define VMC_FUZZ_EXERCISE_H

#include <stdint.h>

#include "vmclone.h"

static uint8_t fuzz_read_buf[65536];

static void
fuzz_exercise(struct vmc_image *img, const uint8_t *data, size_t size)
{
    struct vmc_image_info info;
    struct vmc_block_status bs;
    uint64_t vsize = vmc_image_size(img);
    uint64_t off = 0, h = 1469598103934665603ULL;
    int i;

    vmc_image_get_info(img, &info);
    if (vsize == 0) {
        return;
    }
    /* fixed spots, then a few derived from the input */
    for (i = 0; i < (int)(size < 64 ? size : 64); i++) {
        h = (h ^ data[i]) * 1099511628211ULL;
    }
    for (i = 0; i < 8; i++) {
        uint64_t o;
        size_t len = (size_t)(1 + (h >> 7) % sizeof(fuzz_read_buf));

        switch (i) {
        case 0: o = 0; break;
        case 1: o = vsize / 2; break;
        case 2: o = vsize > 4096 ? vsize - 4096 : 0; break;
        default: o = h % vsize; h = h * 6364136223846793005ULL + 1; break;
        }
        if (len > vsize - o) {
            len = (size_t)(vsize - o);
        }
        (void)vmc_image_read(img, fuzz_read_buf, o, len);
    }
    /* walk block status, bounded */
    for (i = 0; i < 64 && off < vsize; i++) {
        if (vmc_image_block_status(img, off, vsize - off, i & 1, &bs) < 0 ||
            bs.length == 0) {
            break;
        }
        off += bs.length;
    }
}

#endif /* VMC_FUZZ_EXERCISE_H */
