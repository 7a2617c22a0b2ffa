/*
 * fuzz-ops.c - libFuzzer target: random operations on a qcow2 linked
 * clone through the public API, compared after every step with an
 * in-memory shadow of the guest view (reliability.md §6 test 11).
 *
 * A raw template (1 MiB, a byte pattern) is made once; every input gets a
 * fresh qcow2 overlay on it (cluster size chosen by the first input byte,
 * 512 B..64 KiB). The rest of the input is a list of operations:
 *   op byte (low 3 bits: write, zero, zero+unmap, discard, flush, read,
 *   reopen), then offset (3 bytes) and length (2 bytes), scaled into the
 *   image. Every read, and a full read after the last step, must equal
 *   the shadow; any failing call or mismatch aborts (a finding).
 * Discard is advisory, so a discarded range reads as either the old
 * shadow or zeros; the shadow takes what the image returns on the next
 * read of that range (checked to be one of the two). After the last
 * close the clone must check clean: no corruption, no leak.
 *
 * Build: tests/fuzz/build-fuzzer.sh; replay: tests/fuzz/standalone.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmclone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IMG_SIZE (1u << 20)
#define MAX_LEN  (64u << 10)

static char dir[256], base_path[300], top_path[300];
static uint8_t shadow[IMG_SIZE], base[IMG_SIZE];
static uint8_t unsure[IMG_SIZE];   /* 1: discarded, old value or zero */
static uint8_t buf[MAX_LEN];

static void
die(const char *what, const struct vmc_error *err)
{
    fprintf(stderr, "fuzz-ops: %s%s%s\n", what, err ? ": " : "",
            err ? err->msg : "");
    abort();
}

static void
setup(void)
{
    /* tmpfs if there is one: this target flushes a lot */
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") :
                      access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    int fd;

    snprintf(dir, sizeof(dir), "%s/vmc-fuzz-ops.XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        abort();
    }
    snprintf(base_path, sizeof(base_path), "%s/base.raw", dir);
    snprintf(top_path, sizeof(top_path), "%s/top.qcow2", dir);
    for (size_t i = 0; i < IMG_SIZE; i++) {
        base[i] = (uint8_t)(i * 7 + (i >> 9));
    }
    fd = open(base_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, base, IMG_SIZE) != (ssize_t)IMG_SIZE) {
        abort();
    }
    close(fd);
}

static struct vmc_image *
open_top(void)
{
    struct vmc_open_opts o = { .format = VMC_FMT_QCOW2,
                               .flags = VMC_OPEN_RDWR };
    struct vmc_image *img = NULL;
    struct vmc_error err;

    if (vmc_image_open(&img, top_path, &o, &err) < 0) {
        die("open", &err);
    }
    return img;
}

/* Compare [off, off+len) of the image with the shadow; discarded bytes may
 * read as zero or as the old value, and settle to what was read. */
static void
check_range(struct vmc_image *img, uint64_t off, size_t len)
{
    if (vmc_image_read(img, buf, off, len) < 0) {
        die("read failed", NULL);
    }
    for (size_t i = 0; i < len; i++) {
        size_t p = off + i;

        if (buf[i] == shadow[p]) {
            unsure[p] = 0;
            continue;
        }
        if (unsure[p] && buf[i] == 0) {
            shadow[p] = 0;
            unsure[p] = 0;
            continue;
        }
        fprintf(stderr, "fuzz-ops: mismatch at %zu: image %02x shadow %02x\n",
                p, buf[i], shadow[p]);
        abort();
    }
}

static void
check_all(struct vmc_image *img)
{
    for (uint64_t off = 0; off < IMG_SIZE; off += MAX_LEN) {
        size_t len = IMG_SIZE - off < MAX_LEN ? IMG_SIZE - off : MAX_LEN;
        check_range(img, off, len);
    }
}

static void
fill(uint8_t *p, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void
run_op(struct vmc_image **imgp, const uint8_t *d, uint32_t step)
{
    struct vmc_image *img = *imgp;
    uint64_t off = ((uint64_t)d[1] << 16 | (uint64_t)d[2] << 8 | d[3]) %
                   IMG_SIZE;
    size_t len = 1 + ((size_t)d[4] << 8 | d[5]) % MAX_LEN;

    if (d[0] & 0x80) {           /* sector-aligned variant */
        off &= ~511ull;
        len = (len + 511) & ~(size_t)511;
    }
    if (len > IMG_SIZE - off) {
        len = IMG_SIZE - off;
    }
    switch (d[0] & 7) {
    case 0:
    case 7:
        fill(buf, len, step ^ (uint32_t)off);
        if (vmc_image_write(img, buf, off, len, d[0] & 0x40 ?
                            VMC_WRITE_FUA : 0) < 0) {
            die("write failed", NULL);
        }
        memcpy(shadow + off, buf, len);
        memset(unsure + off, 0, len);
        break;
    case 1:
    case 2:
        if (vmc_image_write_zeroes(img, off, len, (d[0] & 7) == 2 ?
                                   VMC_WRITE_MAY_UNMAP : 0) < 0) {
            die("write_zeroes failed", NULL);
        }
        memset(shadow + off, 0, len);
        memset(unsure + off, 0, len);
        break;
    case 3:
        if (vmc_image_discard(img, off, len) < 0) {
            die("discard failed", NULL);
        }
        memset(unsure + off, 1, len);
        break;
    case 4:
        if (vmc_image_flush(img) < 0) {
            die("flush failed", NULL);
        }
        break;
    case 5:
        check_range(img, off, len);
        break;
    case 6:
        if (vmc_image_close(img) < 0) {
            die("close failed", NULL);
        }
        *imgp = open_top();
        break;
    }
}

static void
report_line(const char *line, void *opaque)
{
    (void)opaque;
    fprintf(stderr, "fuzz-ops: check: %s\n", line);
}

static void
check_clean(void)
{
    struct vmc_open_opts o = { .format = VMC_FMT_QCOW2,
                               .flags = VMC_OPEN_NO_BACKING | VMC_OPEN_CHECK };
    struct vmc_image *img = NULL;
    struct vmc_check_result res;
    struct vmc_error err;

    if (vmc_image_open(&img, top_path, &o, &err) < 0) {
        die("open for check", &err);
    }
    if (vmc_image_check(img, VMC_REPAIR_NONE, &res, report_line, NULL,
                        &err) < 0) {
        die("check", &err);
    }
    vmc_image_close(img);
    if (res.corruptions || res.leaks || res.check_errors) {
        fprintf(stderr, "fuzz-ops: not clean: %llu corruptions, %llu leaks, "
                "%llu check errors\n", (unsigned long long)res.corruptions,
                (unsigned long long)res.leaks,
                (unsigned long long)res.check_errors);
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    struct vmc_create_opts co;
    struct vmc_image *img;
    struct vmc_error err;
    size_t i;

    if (!initialised) {
        setup();
        initialised = 1;
    }
    if (size < 1 || size > 6 * 256) {
        return 0;
    }
    vmc_create_opts_init(&co);
    co.format = VMC_FMT_QCOW2;
    co.size = IMG_SIZE;
    co.backing_file = "base.raw";
    co.backing_format = VMC_FMT_RAW;
    co.cluster_size = 512u << (data[0] % 8);
    if (vmc_image_create(top_path, &co, &err) < 0) {
        die("create", &err);
    }
    memcpy(shadow, base, IMG_SIZE);
    memset(unsure, 0, IMG_SIZE);
    img = open_top();
    for (i = 1; i + 6 <= size; i += 6) {
        run_op(&img, data + i, (uint32_t)i);
    }
    if (vmc_image_close(img) < 0) {
        die("final close failed", NULL);
    }
    img = open_top();
    check_all(img);
    vmc_image_close(img);
    check_clean();
    return 0;
}
