/*
 * rbd-clone3.c - the floor for bench/bench-rbd.sh: N linked clones with
 * rbd_clone3 alone (one connection, then clone after clone, each timed),
 * and, with -c, the cost of one connection (rados_create .. ioctx) and
 * of its shutdown.
 *   rbd-clone3 CONF POOL PARENT SNAP PREFIX N   prints one ms per line
 *   rbd-clone3 -c CONF POOL                     prints connect and shutdown ms
 *   rbd-clone3 -r CONF POOL PREFIX N            removes PREFIX0..N-1
 * Clones are format 1 (protected parent snapshot), as vm-clone makes them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
connect_pool(const char *conf, const char *pool, rados_t *c,
             rados_ioctx_t *io)
{
    int r = rados_create(c, NULL);

    if (r == 0) {
        r = rados_conf_read_file(*c, conf);
    }
    if (r == 0) {
        rados_conf_set(*c, "log_to_stderr", "false");
        rados_conf_set(*c, "err_to_stderr", "false");
        r = rados_connect(*c);
    }
    if (r == 0) {
        r = rados_ioctx_create(*c, pool, io);
    }
    if (r < 0) {
        fprintf(stderr, "rbd-clone3: connect: %s\n", strerror(-r));
    }
    return r;
}

int
main(int argc, char **argv)
{
    rados_t c;
    rados_ioctx_t io;
    char name[256];
    double t0;
    int i, n, r;

    if (argc == 4 && !strcmp(argv[1], "-c")) {
        t0 = now_ms();
        if (connect_pool(argv[2], argv[3], &c, &io) < 0) {
            return 1;
        }
        printf("%.2f", now_ms() - t0);
        t0 = now_ms();
        rados_ioctx_destroy(io);
        rados_shutdown(c);
        printf(" %.2f\n", now_ms() - t0);
        return 0;
    }
    if (argc == 6 && !strcmp(argv[1], "-r")) {
        if (connect_pool(argv[2], argv[3], &c, &io) < 0) {
            return 1;
        }
        n = atoi(argv[5]);
        for (i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "%s%d", argv[4], i);
            rbd_remove(io, name);
        }
        rados_ioctx_destroy(io);
        rados_shutdown(c);
        return 0;
    }
    if (argc != 7) {
        fprintf(stderr, "usage: rbd-clone3 CONF POOL PARENT SNAP PREFIX N | "
                "-c CONF POOL | -r CONF POOL PREFIX N\n");
        return 2;
    }
    if (connect_pool(argv[1], argv[2], &c, &io) < 0) {
        return 1;
    }
    n = atoi(argv[6]);
    for (i = 0, r = 0; r == 0 && i < n; i++) {
        rbd_image_options_t o;

        snprintf(name, sizeof(name), "%s%d", argv[5], i);
        rbd_image_options_create(&o);
        rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FORMAT, 2);
        rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_CLONE_FORMAT, 1);
        t0 = now_ms();
        r = rbd_clone3(io, argv[3], argv[4], io, name, o);
        if (r == 0) {
            printf("%.2f\n", now_ms() - t0);
        } else {
            fprintf(stderr, "rbd-clone3: %s: %s\n", name, strerror(-r));
        }
        rbd_image_options_destroy(o);
    }
    rados_ioctx_destroy(io);
    rados_shutdown(c);
    return r == 0 ? 0 : 1;
}
