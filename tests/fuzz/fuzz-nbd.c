/*
 * fuzz-nbd.c - libFuzzer target: the input bytes are everything an NBD
 * client sends to the server (client flags, options, requests, payloads).
 *
 * A server with two exports is set up once, in a private temporary
 * directory: "clone" (a qcow2 linked clone, 512-byte clusters, of a qcow2
 * template holding data) and "ro" (the template, read-only). Each input
 * runs one whole connection - handshake, transmission, teardown - in the
 * calling thread, through an in-memory transport (src/nbd/conn.c) whose
 * writes are checked byte by byte and discarded. Every path must return
 * cleanly; sanitizers catch the rest.
 *
 * Build (see tests/fuzz/build-fuzzer.sh):
 *   clang-14 -fsanitize=fuzzer,address,undefined ... src/... this file
 * Replay a corpus without libFuzzer: tests/fuzz/standalone.c.
 * Seeds: tests/fuzz/make-nbd-corpus.py.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"
#include "vmclone-nbd.h"
#include "nbd/nbd-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vmc_nbd_server *srv;
static char dir[256], base[300], clone_path[300];

/* Remove the scratch directory when the fuzzer (or the replayer) exits. */
static void
teardown(void)
{
    vmc_nbd_server_free(srv);
    srv = NULL;
    unlink(clone_path);
    unlink(base);
    rmdir(dir);
}

static void
die(const char *what, const struct vmc_error *err)
{
    fprintf(stderr, "fuzz-nbd setup: %s: %s\n", what, err->msg);
    abort();
}

static void
setup(void)
{
    struct vmc_create_opts co;
    struct vmc_nbd_server_opts so = { 0 };
    struct vmc_nbd_export_opts eo = { 0 };
    struct vmc_image *img = NULL;
    struct vmc_error err = { 0 };
    static uint8_t buf[8192];

    snprintf(dir, sizeof(dir), "%s/vmc-fuzz-nbd.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        abort();
    }
    atexit(teardown);
    snprintf(base, sizeof(base), "%s/base.qcow2", dir);
    snprintf(clone_path, sizeof(clone_path), "%s/clone.qcow2", dir);

    vmc_create_opts_init(&co);
    co.size = 256 * 1024;
    co.cluster_size = 512;
    if (vmc_image_create(base, &co, &err) < 0) {
        die("create base", &err);
    }
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_RDWR };
    if (vmc_image_open(&img, base, &oo, &err) < 0) {
        die("open base", &err);
    }
    memset(buf, 0xb0, sizeof(buf));
    if (vmc_image_write(img, buf, 0, sizeof(buf), 0) < 0 ||
        vmc_image_write(img, buf, 65536, 4096, 0) < 0 ||
        vmc_image_close(img) < 0) {
        abort();
    }
    co.backing_file = "base.qcow2";
    co.backing_format = VMC_FMT_QCOW2;
    co.size = 0;
    if (vmc_image_create(clone_path, &co, &err) < 0) {
        die("create clone", &err);
    }

    so.workers = 1;
    if (vmc_nbd_server_new(&srv, &so, &err) < 0) {
        die("server", &err);
    }
    srv->workers = 0;           /* serve requests inline: deterministic */
    eo.name = "clone";
    eo.path = clone_path;
    eo.is_default = true;
    eo.description = "fuzz clone";
    eo.open.format = VMC_FMT_QCOW2;
    if (vmc_nbd_server_add_export(srv, &eo, &err) < 0) {
        die("export clone", &err);
    }
    /* the template is locked as the clone's backing file: export it
     * read-only, without locks */
    memset(&eo, 0, sizeof(eo));
    eo.name = "ro";
    eo.path = base;
    eo.readonly = true;
    eo.open.format = VMC_FMT_QCOW2;
    eo.open.flags = VMC_OPEN_FORCE_SHARE;
    if (vmc_nbd_server_add_export(srv, &eo, &err) < 0) {
        die("export ro", &err);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nbd_io *io;
    struct nbd_conn *c;

    if (!srv) {
        setup();
    }
    io = nbd_io_memory_new(data, size);
    c = io ? nbd_conn_new(srv, io) : NULL;
    if (!c) {
        abort();
    }
    nbd_conn_run(c);
    nbd_conn_free(c);
    return 0;
}
