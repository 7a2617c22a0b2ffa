/*
 * hold-open.c - open an image through libvmclone and keep it open until
 * stdin reaches EOF (used by tests/interop/locks.sh to hold our locks
 * while QEMU tries to open the same image).
 *
 * usage: hold-open [-w] [-f FMT] IMAGE
 *   -w  open read-write (default read-only)
 * Prints "ready" on stdout once the image (and its chain) is open.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"

int
main(int argc, char **argv)
{
    struct vmc_open_opts o = { .format = VMC_FMT_QCOW2 };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    char buf[64];
    int i, r;

    for (i = 1; i < argc - 1; i++) {
        if (!strcmp(argv[i], "-w")) {
            o.flags |= VMC_OPEN_RDWR;
        } else if (!strcmp(argv[i], "-f") && i + 1 < argc - 1) {
            o.format = vmc_format_from_name(argv[++i]);
        } else {
            break;
        }
    }
    if (i != argc - 1) {
        fprintf(stderr, "usage: hold-open [-w] [-f FMT] IMAGE\n");
        return 2;
    }
    r = vmc_image_open(&img, argv[i], &o, &err);
    if (r < 0) {
        fprintf(stderr, "hold-open: %s\n", err.msg);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (read(0, buf, sizeof(buf)) > 0) {
        /* wait for EOF */
    }
    return vmc_image_close(img) < 0 ? 1 : 0;
}
