/*
 * nth-script.c - the fixed script of the Nth-operation sweeps
 * (reliability.md §6 test 8; driven by tests/stress/nth-io.sh and
 * tests/stress/nth-malloc.sh).
 *
 * Script, through the public API: create a qcow2 template and write it,
 * create a linked clone on it, open the clone, write (aligned and
 * unaligned, over template data), flush, close, reopen read-only, read
 * everything back and compare with what must be there.
 *
 *   nth-script DIR io once|persistent N
 *       host I/O call N (every pread/pwrite/sync/... through the hostio
 *       fault hook, counted from 1) fails with EIO; "persistent": N and
 *       every later call fail
 *   nth-script DIR malloc N
 *       the script runs clean, then allocation N of the final open +
 *       read (malloc/calloc/realloc/strdup/strndup/asprintf of the whole
 *       process, wrapped at link time) fails
 *   nth-script DIR verify
 *       no fault: open the clone read-only and check its content
 *
 * Exit 0 only if every step succeeded and every byte read back is right;
 * any failure is reported as one line on stderr and exit 1. Stdout gets
 * "calls=K fired=0|1": how many operations were counted and whether the
 * fault was injected (a sweep ends at the first N that does not fire).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmclone.h"
#include "io/hostio.h"

#define SIZE (4u << 20)
#define CHECK_LEN (1u << 20)

static unsigned long nth, calls;
static bool persistent, fired, malloc_armed;

/* ---------------------------------------------------------------- faults */

static int
io_fault(enum hio_op op, const struct hio_file *f, uint64_t off, uint64_t len)
{
    (void)op; (void)f; (void)off; (void)len;
    calls++;
    if (calls == nth || (persistent && calls > nth)) {
        fired = true;
        return -EIO;
    }
    return 0;
}

static bool
malloc_fails(void)
{
    if (!malloc_armed) {
        return false;
    }
    calls++;
    if (calls == nth) {
        fired = true;
        return true;
    }
    return false;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_asprintf(char **out, const char *fmt, ...);

void *
__wrap_malloc(size_t n)
{
    return malloc_fails() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
    return malloc_fails() ? NULL : __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
    return malloc_fails() ? NULL : __real_realloc(p, n);
}

char *
__wrap_strdup(const char *s)
{
    return malloc_fails() ? NULL : __real_strdup(s);
}

char *
__wrap_strndup(const char *s, size_t n)
{
    return malloc_fails() ? NULL : __real_strndup(s, n);
}

int
__wrap_asprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (malloc_fails()) {
        *out = NULL;
        return -1;
    }
    va_start(ap, fmt);
    r = vasprintf(out, fmt, ap);
    va_end(ap);
    return r;
}

/* ---------------------------------------------------------------- script */

static char base_path[512], top_path[512];
static uint8_t expect[CHECK_LEN], got[CHECK_LEN], pat[CHECK_LEN];

static int
failed(const char *step, int r, const struct vmc_error *err)
{
    fprintf(stderr, "nth-script: %s failed: %s%s%s\n", step, strerror(-r),
            err && err->msg[0] ? ": " : "", err ? err->msg : "");
    return 1;
}

static int
create(const char *path, const char *backing)
{
    struct vmc_create_opts co;
    struct vmc_error err = { 0 };
    int r;

    vmc_create_opts_init(&co);
    co.format = VMC_FMT_QCOW2;
    co.size = SIZE;
    co.backing_file = backing;
    co.backing_format = VMC_FMT_QCOW2;
    r = vmc_image_create(path, &co, &err);
    return r < 0 ? failed(backing ? "create clone" : "create template", r,
                          &err) : 0;
}

/* Open @path read-write, apply the writes, flush, close (the content
 * they leave is in expected_content()). */
static int
write_phase(const char *path, int which)
{
    struct vmc_open_opts o = { .format = VMC_FMT_QCOW2,
                               .flags = VMC_OPEN_RDWR };
    struct vmc_image *img = NULL;
    struct vmc_error err = { 0 };
    static const struct { uint64_t off; size_t len; } w[2][3] = {
        { { 0, 256 << 10 }, { 512 << 10, 64 << 10 }, { 900000, 5000 } },
        { { 64 << 10, 128 << 10 }, { 300000, 1000 }, { 520000, 70000 } },
    };
    int r, i;

    r = vmc_image_open(&img, path, &o, &err);
    if (r < 0) {
        return failed("open for writing", r, &err);
    }
    for (i = 0; i < 3; i++) {
        memset(pat, 0x31 + which * 16 + i, w[which][i].len);
        r = vmc_image_write(img, pat, w[which][i].off, w[which][i].len, 0);
        if (r < 0) {
            vmc_image_close(img);
            return failed("write", r, NULL);
        }
    }
    r = vmc_image_flush(img);
    if (r < 0) {
        vmc_image_close(img);
        return failed("flush", r, NULL);
    }
    r = vmc_image_close(img);
    return r < 0 ? failed("close", r, NULL) : 0;
}

static int
read_phase(void)
{
    struct vmc_open_opts o = { .format = VMC_FMT_QCOW2 };
    struct vmc_image *img = NULL;
    struct vmc_error err = { 0 };
    int r;

    r = vmc_image_open(&img, top_path, &o, &err);
    if (r < 0) {
        return failed("reopen", r, &err);
    }
    r = vmc_image_read(img, got, 0, CHECK_LEN);
    vmc_image_close(img);
    if (r < 0) {
        return failed("read", r, NULL);
    }
    for (size_t i = 0; i < CHECK_LEN; i++) {
        if (got[i] != expect[i]) {
            fprintf(stderr, "nth-script: WRONG DATA at %zu: %02x, expected "
                    "%02x\n", i, got[i], expect[i]);
            return 2;
        }
    }
    return 0;
}

static void
expected_content(void)
{
    /* what write_phase(template) then write_phase(clone) leave */
    struct { uint64_t off; size_t len; uint8_t v; } w[] = {
        { 0, 256 << 10, 0x31 }, { 512 << 10, 64 << 10, 0x32 },
        { 900000, 5000, 0x33 }, { 64 << 10, 128 << 10, 0x41 },
        { 300000, 1000, 0x42 }, { 520000, 70000, 0x43 },
    };

    memset(expect, 0, sizeof(expect));
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        memset(expect + w[i].off, w[i].v, w[i].len);
    }
}

int
main(int argc, char **argv)
{
    const char *mode = argc > 2 ? argv[2] : "";
    int rc;

    if (argc < 3 || (strcmp(mode, "verify") && argc < 4)) {
        fprintf(stderr, "usage: nth-script DIR io once|persistent N | "
                "DIR malloc N | DIR verify\n");
        return 64;
    }
    snprintf(base_path, sizeof(base_path), "%s/base.qcow2", argv[1]);
    snprintf(top_path, sizeof(top_path), "%s/top.qcow2", argv[1]);
    if (!strcmp(mode, "verify")) {
        expected_content();
        return read_phase() ? 1 : 0;
    }
    nth = strtoul(argv[argc - 1], NULL, 10);
    if (!strcmp(mode, "io")) {
        persistent = !strcmp(argv[3], "persistent");
        hio_set_fault_hook(io_fault);
    }
    rc = create(base_path, NULL);
    rc = rc ? rc : write_phase(base_path, 0);
    rc = rc ? rc : create(top_path, "base.qcow2");
    rc = rc ? rc : write_phase(top_path, 1);
    if (!rc) {
        expected_content();      /* the mirror of both phases */
        malloc_armed = !strcmp(mode, "malloc");
        rc = read_phase();
        malloc_armed = false;
    }
    printf("calls=%lu fired=%d\n", calls, fired);
    return rc ? 1 : 0;
}
