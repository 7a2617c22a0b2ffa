/*
 * fuzz-chain.c - libFuzzer target for the backing-chain resolver
 * (reliability.md §6 test 11).
 *
 * A valid chain is built once: base.raw <- l2.qcow2 <- l1.qcow2 <-
 * l0.qcow2 (512-byte clusters so every table sits in the first few KiB,
 * a little data written in each layer). Every input is a list of patch
 * records applied to fresh copies of the three qcow2 layers:
 *   byte 0   kind (bit 7: backing-name record) and layer (% 3)
 *   bytes 1-2  offset into the layer file (modulo its length)
 *   byte 3   length n (1..64), then n bytes
 * A backing-name record stores its n bytes as the layer's backing name
 * (name and its length in the header), so loops (l1 -> l0), self
 * references, escapes and long names are all reachable. The top is then
 * opened through the public API with its chain (read-only and
 * read-write), read, block-status walked, and checked. Every call must
 * return cleanly; sanitizers catch the rest.
 *
 * Build: tests/fuzz/build-fuzzer.sh; replay: tests/fuzz/standalone.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmclone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NLAYERS 3
#define IMG_SIZE (1u << 20)
#define MAX_FILE (64u << 10)

static char dir[256];
static uint8_t pristine[NLAYERS][MAX_FILE];
static size_t pristine_len[NLAYERS];
static uint8_t work[NLAYERS][MAX_FILE];
static size_t work_len[NLAYERS];
static uint8_t buf[65536];

static void
layer_path(char *out, size_t n, unsigned layer)
{
    snprintf(out, n, "%s/l%u.qcow2", dir, layer);
}

static void
write_file(const char *path, const uint8_t *d, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd < 0 || (len && write(fd, d, len) != (ssize_t)len)) {
        abort();
    }
    close(fd);
}

static void
build_layer(unsigned layer, const char *backing, enum vmc_format bfmt)
{
    struct vmc_create_opts co;
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_RDWR | VMC_OPEN_NO_BACKING };
    struct vmc_image *img = NULL;
    struct vmc_error err;
    char p[320];
    int fd;

    layer_path(p, sizeof(p), layer);
    vmc_create_opts_init(&co);
    co.format = VMC_FMT_QCOW2;
    co.size = IMG_SIZE;
    co.cluster_size = 512;
    co.backing_file = backing;
    co.backing_format = bfmt;
    co.backing_unsafe = true;
    if (vmc_image_create(p, &co, &err) < 0 ||
        vmc_image_open(&img, p, &oo, &err) < 0) {
        fprintf(stderr, "fuzz-chain setup: %s\n", err.msg);
        abort();
    }
    memset(buf, 0x10 + layer, 4096);
    if (vmc_image_write(img, buf, 4096 * (layer + 1), 4096, 0) < 0 ||
        vmc_image_write_zeroes(img, 65536 * (layer + 1), 1024, 0) < 0 ||
        vmc_image_close(img) < 0) {
        abort();
    }
    fd = open(p, O_RDONLY);
    if (fd < 0) {
        abort();
    }
    ssize_t n = read(fd, pristine[layer], MAX_FILE);
    if (n <= 0) {
        abort();
    }
    pristine_len[layer] = (size_t)n;
    close(fd);
}

static void
setup(void)
{
    char p[320];

    snprintf(dir, sizeof(dir), "%s/vmc-fuzz-chain.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        abort();
    }
    snprintf(p, sizeof(p), "%s/base.raw", dir);
    memset(buf, 0x5a, sizeof(buf));
    write_file(p, buf, sizeof(buf));
    build_layer(2, "base.raw", VMC_FMT_RAW);
    build_layer(1, "l2.qcow2", VMC_FMT_QCOW2);
    build_layer(0, "l1.qcow2", VMC_FMT_QCOW2);
}

static void
put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

/* Store @name as the backing name of @layer, right after the header
 * extensions area (offset 0x100 is inside the first cluster, past the
 * v3 header and its extensions in these small images). */
static void
set_backing_name(unsigned layer, const uint8_t *name, size_t n)
{
    uint8_t *w = work[layer];

    memcpy(w + 0x100, name, n);
    put_be(w + 8, 0x100, 8);
    put_be(w + 16, n, 4);
}

/* Names that could block (devices, FIFOs) or leave the sandbox are
 * skipped: the resolver's confinement is tested elsewhere. */
static int
name_is_unsafe(const uint8_t *name, size_t n)
{
    return memmem(name, n, "dev", 3) || memmem(name, n, "proc", 4) ||
           memmem(name, n, "sys", 3) || memmem(name, n, "..", 2) ||
           (n && name[0] == '/') || memmem(name, n, ":", 1);
}

static void
exercise(struct vmc_image *img)
{
    struct vmc_block_status bs;
    uint64_t vsize = vmc_image_size(img), off = 0;

    for (uint64_t o = 0; o < vsize && o < 5 * 65536; o += 32768) {
        size_t len = vsize - o < sizeof(buf) ? (size_t)(vsize - o) : 32768;
        (void)vmc_image_read(img, buf, o, len);
    }
    for (int i = 0; i < 64 && off < vsize; i++) {
        if (vmc_image_block_status(img, off, vsize - off, true, &bs) < 0 ||
            bs.length == 0) {
            break;
        }
        off += bs.length;
    }
}

/* A small write never grows a layer by more than a few clusters: a
 * damaged pointer that let the writer put a table or data cluster far
 * past the end (seed corpus/chain/known-bug-refblock-offset, where a
 * 4 KiB write grew the file to 10 TB) is a finding. */
static void
check_not_grown(const char *top)
{
    struct stat st;

    if (stat(top, &st) == 0 && st.st_size >= (64 << 20)) {
        fprintf(stderr, "fuzz-chain: a small write grew %s to %lld bytes\n",
                top, (long long)st.st_size);
        abort();
    }
}

static void
open_and_exercise(const char *top, unsigned flags)
{
    struct vmc_open_opts o = { .format = VMC_FMT_QCOW2, .flags = flags,
                               .max_depth = 8 };
    struct vmc_image *img = NULL;
    struct vmc_error err;
    struct vmc_check_result res;

    if (vmc_image_open(&img, top, &o, &err) < 0) {
        return;
    }
    exercise(img);
    if (flags & VMC_OPEN_RDWR) {
        memset(buf, 0x77, 4096);
        (void)vmc_image_write(img, buf, 1536, 4096, 0);
        (void)vmc_image_write_zeroes(img, 8192, 2048, 0);
        (void)vmc_image_flush(img);
        exercise(img);
    }
    vmc_image_close(img);
    check_not_grown(top);
    img = NULL;
    o.flags = VMC_OPEN_NO_BACKING | VMC_OPEN_FORCE_SHARE | VMC_OPEN_CHECK;
    if (vmc_image_open(&img, top, &o, &err) == 0) {
        (void)vmc_image_check(img, VMC_REPAIR_NONE, &res, NULL, NULL, &err);
        vmc_image_close(img);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    char p[320];
    size_t i = 0;

    if (!initialised) {
        setup();
        initialised = 1;
    }
    for (unsigned l = 0; l < NLAYERS; l++) {
        memcpy(work[l], pristine[l], pristine_len[l]);
        work_len[l] = pristine_len[l];
    }
    while (i + 4 <= size) {
        unsigned layer = (data[i] & 0x7f) % NLAYERS;
        size_t off = ((size_t)data[i + 1] << 8 | data[i + 2]) %
                     work_len[layer];
        size_t n = 1 + data[i + 3] % 64;

        i += 4;
        if (n > size - i) {
            n = size - i;
        }
        if (data[i - 4] & 0x80) {
            if (name_is_unsafe(data + i, n)) {
                return 0;
            }
            set_backing_name(layer, data + i, n);
        } else {
            if (n > work_len[layer] - off) {
                n = work_len[layer] - off;
            }
            memcpy(work[layer] + off, data + i, n);
        }
        i += n;
    }
    for (unsigned l = 0; l < NLAYERS; l++) {
        layer_path(p, sizeof(p), l);
        write_file(p, work[l], work_len[l]);
    }
    layer_path(p, sizeof(p), 0);
    open_and_exercise(p, VMC_OPEN_FORCE_SHARE);
    open_and_exercise(p, VMC_OPEN_RDWR);
    return 0;
}
