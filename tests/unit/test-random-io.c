/*
 * test-random-io.c - differential random test of the data path.
 *
 * A base image (random data in parts, some explicit zeros) and a linked
 * qcow2 clone of it are created through the public API.  Thousands of
 * random writes, write-zeroes (with and without VMC_WRITE_MAY_UNMAP),
 * discards, flushes and reopens, unaligned and cross-cluster, go through
 * the engine on the clone and are mirrored into an in-memory shadow of
 * the guest view.  Random ranges are read back and compared as we go;
 * at the end the whole guest view, the block status and the base file
 * (byte for byte) are checked.
 *
 * Discard contract checked here (include/vmclone.h: afterwards the range
 * reads as zeros where the image can express it, never as backing data):
 *  - every whole cluster inside a discarded range must read as zeros;
 *  - the partial clusters at the edges may keep their data or read as
 *    zeros (QEMU ignores partial-cluster discards; with subclusters
 *    some of the edge may be zeroed).  Each edge byte must be either its
 *    previous value or zero, and the shadow adopts what the engine reads.
 * Write-zeroes must always zero the exact byte range.
 *
 * Options:  --cluster-size N  --extended-l2  --ops N  --seed N
 *           --dir DIR (keep base.qcow2, clone.qcow2, shadow.raw there for
 *           tests/interop/random-io.sh, which runs qemu-img check/compare)
 *           --format raw (harness self-test: a raw image, no backing)
 * Env:      VMC_RANDOM_SEED, VMC_RANDOM_OPS override the defaults.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmclone.h"
#include "harness.h"

#define BASE_SIZE   (12u << 20)     /* backing shorter than the clone */
#define CLONE_SIZE  (16u << 20)
#define MAX_IO      (512u << 10)

static uint64_t rng_state;
static uint64_t
rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

static void
fill_random(uint8_t *p, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = rnd();
        memcpy(p + i, &v, 8);
    }
    for (; i < len; i++) {
        p[i] = (uint8_t)rnd();
    }
}

/* ring buffer of the last operations, printed on failure */
#define TRACE_LEN 24
static char trace[TRACE_LEN][96];
static unsigned long op_no;

static void
trace_op(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(trace[op_no % TRACE_LEN], sizeof(trace[0]), fmt, ap);
    va_end(ap);
}

static uint64_t seed;
static char dir[512];

/* FAIL's hook: how to replay the run, and the operations that led here. */
static void
print_replay(void)
{
    unsigned long i, first = op_no >= TRACE_LEN ? op_no - TRACE_LEN + 1 : 0;

    fprintf(stderr, "  (seed %" PRIu64 ", op #%lu; rerun with VMC_RANDOM_SEED=%"
            PRIu64 ")\n  last operations:\n", seed, op_no, seed);
    for (i = first; i <= op_no; i++) {
        if (trace[i % TRACE_LEN][0]) {
            fprintf(stderr, "    #%lu %s\n", i, trace[i % TRACE_LEN]);
        }
    }
}

static char *
in_dir(const char *name)
{
    static char buf[4][600];
    static int n;
    char *p = buf[n++ % 4];
    snprintf(p, 600, "%s/%s", dir, name);
    return p;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
    struct stat st;
    uint8_t *p;
    int fd = open(path, O_RDONLY);

    if (fd < 0 || fstat(fd, &st) < 0) {
        FAIL("cannot open %s", path);
    }
    p = malloc((size_t)st.st_size + 1);
    if (!p || pread(fd, p, (size_t)st.st_size, 0) != st.st_size) {
        FAIL("cannot read %s", path);
    }
    close(fd);
    *len = (size_t)st.st_size;
    return p;
}

static void
write_file(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || pwrite(fd, p, len, 0) != (ssize_t)len || close(fd) < 0) {
        FAIL("cannot write %s", path);
    }
}

/* ------------------------------------------------------------ state */

static struct vmc_image *img;
static uint8_t *shadow;          /* expected guest view of the clone */
static uint8_t *base_view;       /* expected guest view of the base */
static uint8_t *iobuf, *rdbuf;
static uint64_t cluster;
static bool raw_mode;
static enum vmc_format clone_fmt = VMC_FMT_QCOW2;

static void
open_clone(unsigned flags)
{
    struct vmc_open_opts o = { .format = clone_fmt, .flags = flags };
    struct vmc_error err = { 0 };
    int r = vmc_image_open(&img, in_dir(raw_mode ? "clone.raw" : "clone.qcow2"),
                           &o, &err);
    if (r < 0) {
        FAIL("open clone: %s (%d)", err.msg, r);
    }
}

static void
close_clone(void)
{
    int r = vmc_image_close(img);
    img = NULL;
    if (r < 0) {
        FAIL("close clone: %s", strerror(-r));
    }
}

static void
compare_range(uint64_t off, uint64_t len, const char *why)
{
    int r = vmc_image_read(img, rdbuf, off, len);
    if (r < 0) {
        FAIL("%s: read %" PRIu64 "+%" PRIu64 ": %s", why, off, len,
             strerror(-r));
    }
    if (memcmp(rdbuf, shadow + off, len)) {
        uint64_t i = 0;
        while (rdbuf[i] == shadow[off + i]) {
            i++;
        }
        FAIL("%s: content mismatch at offset %" PRIu64 " (read %" PRIu64
             "+%" PRIu64 "): got 0x%02x, expected 0x%02x%s", why, off + i,
             off, len, rdbuf[i], shadow[off + i],
             off + i < BASE_SIZE && rdbuf[i] == base_view[off + i] &&
             shadow[off + i] != base_view[off + i] ? " (base data came back)"
                                                    : "");
    }
}

static void
compare_all(const char *why)
{
    for (uint64_t off = 0; off < CLONE_SIZE; off += MAX_IO) {
        compare_range(off, MAX_IO, why);
    }
}

/* Random request: mostly unaligned, sometimes cluster aligned; lengths
 * from 1 byte to several clusters (cross-cluster). */
static void
pick_range(uint64_t *off, uint64_t *len)
{
    uint64_t max = MAX_IO < 4 * cluster ? MAX_IO : 4 * cluster;
    unsigned k = (unsigned)rnd_below(10);

    if (k < 3) {            /* tiny, byte granular */
        *len = 1 + rnd_below(600);
    } else if (k < 6) {     /* within about a cluster */
        *len = 1 + rnd_below(cluster + cluster / 2);
    } else if (k < 8) {     /* cross-cluster, large */
        *len = 1 + rnd_below(max);
    } else {                /* whole clusters */
        *len = cluster * (1 + rnd_below(max / cluster));
    }
    if (*len > MAX_IO) {
        *len = MAX_IO;
    }
    k = (unsigned)rnd_below(4);
    if (k == 0) {
        *off = rnd_below(CLONE_SIZE / cluster) * cluster;
    } else if (k == 1) {
        *off = rnd_below(CLONE_SIZE / 512) * 512;
    } else {
        *off = rnd_below(CLONE_SIZE);
    }
    /* near the end of the base (the backing is shorter) now and then */
    if (rnd_below(20) == 0) {
        *off = BASE_SIZE - rnd_below(2 * cluster + 1);
    }
    if (*off + *len > CLONE_SIZE) {
        *len = CLONE_SIZE - *off;
    }
    if (*len == 0) {
        *off = 0;
        *len = 1;
    }
}

static void
do_write(void)
{
    uint64_t off, len;
    unsigned flags = rnd_below(10) == 0 ? VMC_WRITE_FUA : 0;
    int r;

    pick_range(&off, &len);
    trace_op("write%s %" PRIu64 " %" PRIu64, flags ? " (fua)" : "", off, len);
    fill_random(iobuf, len);
    r = vmc_image_write(img, iobuf, off, len, flags);
    if (r < 0) {
        FAIL("write %" PRIu64 "+%" PRIu64 ": %s", off, len, strerror(-r));
    }
    memcpy(shadow + off, iobuf, len);
}

static void
do_zero(void)
{
    uint64_t off, len;
    unsigned flags = rnd_below(2) ? VMC_WRITE_MAY_UNMAP : 0;
    int r;

    pick_range(&off, &len);
    trace_op("write-zeroes%s %" PRIu64 " %" PRIu64,
             flags ? " (may unmap)" : "", off, len);
    r = vmc_image_write_zeroes(img, off, len, flags);
    if (r < 0) {
        FAIL("write-zeroes %" PRIu64 "+%" PRIu64 ": %s", off, len,
             strerror(-r));
    }
    memset(shadow + off, 0, len);
}

static void
do_discard(void)
{
    uint64_t off, len, a, b, i;
    int r;

    pick_range(&off, &len);
    trace_op("discard %" PRIu64 " %" PRIu64, off, len);
    r = vmc_image_discard(img, off, len);
    if (r < 0) {
        FAIL("discard %" PRIu64 "+%" PRIu64 ": %s", off, len, strerror(-r));
    }
    /* whole clusters inside the range: zeros (not in raw mode, where
     * discard is purely advisory) */
    a = (off + cluster - 1) / cluster * cluster;
    b = (off + len) / cluster * cluster;
    if (raw_mode || a >= b) {
        a = b = off + len;
    }
    if (a < b) {
        memset(shadow + a, 0, b - a);
        compare_range(a, b - a, "discarded whole clusters must read as zeros");
    }
    /* edges [off, a) and [b, off+len): old data or zeros */
    for (int edge = 0; edge < 2; edge++) {
        uint64_t s = edge ? b : off, e = edge ? off + len : a;
        if (s >= e) {
            continue;
        }
        r = vmc_image_read(img, rdbuf, s, e - s);
        if (r < 0) {
            FAIL("read after discard: %s", strerror(-r));
        }
        for (i = 0; i < e - s; i++) {
            if (rdbuf[i] != shadow[s + i] && rdbuf[i] != 0) {
                FAIL("discard edge byte at %" PRIu64 " reads 0x%02x: neither "
                     "its previous value 0x%02x nor zero", s + i, rdbuf[i],
                     shadow[s + i]);
            }
        }
        memcpy(shadow + s, rdbuf, e - s);
    }
}

static void
do_read(void)
{
    uint64_t off, len;

    pick_range(&off, &len);
    trace_op("read %" PRIu64 " %" PRIu64, off, len);
    compare_range(off, len, "random read");
}

static void
do_flush(void)
{
    int r;

    trace_op("flush");
    r = vmc_image_flush(img);
    if (r < 0) {
        FAIL("flush: %s", strerror(-r));
    }
}

static void
do_reopen(void)
{
    trace_op("close + reopen");
    close_clone();
    open_clone(VMC_OPEN_RDWR);
}

/* Block status agrees with the data: ZERO runs read as zeros, and runs
 * defined by the base equal the base's content. */
static void
check_block_status(void)
{
    struct vmc_block_status bs;
    uint64_t off = 0, i;

    while (off < CLONE_SIZE) {
        int r = vmc_image_block_status(img, off, CLONE_SIZE - off, true, &bs);
        if (r < 0) {
            FAIL("block_status at %" PRIu64 ": %s", off, strerror(-r));
        }
        if (bs.length == 0 || bs.length > CLONE_SIZE - off) {
            FAIL("block_status at %" PRIu64 ": bad length %" PRIu64, off,
                 bs.length);
        }
        if (bs.flags & VMC_BS_ZERO) {
            for (i = 0; i < bs.length; i++) {
                if (shadow[off + i]) {
                    FAIL("block_status says %" PRIu64 "+%" PRIu64 " is zero "
                         "but offset %" PRIu64 " holds 0x%02x", off,
                         bs.length, off + i, shadow[off + i]);
                }
            }
        }
        if (!raw_mode && (bs.flags & VMC_BS_ALLOCATED) && bs.depth == 1) {
            if (off + bs.length > BASE_SIZE) {
                FAIL("block_status: base defines %" PRIu64 "+%" PRIu64
                     " past its end", off, bs.length);
            }
            if (memcmp(shadow + off, base_view + off, bs.length)) {
                FAIL("block_status says %" PRIu64 "+%" PRIu64 " comes from "
                     "the base, but the guest view differs from the base there",
                     off, bs.length);
            }
        }
        off += bs.length;
    }
}

/* ------------------------------------------------------------ setup */

static void
make_base(const char *path)
{
    struct vmc_error err = { 0 };
    int r;

    base_view = calloc(1, BASE_SIZE);
    if (!base_view) {
        FAIL("out of memory");
    }
    /* random extents, leaving holes */
    for (int i = 0; i < 24; i++) {
        uint64_t len = 1 + rnd_below(256 << 10);
        uint64_t off = rnd_below(BASE_SIZE - len);
        fill_random(base_view + off, len);
    }
    if (raw_mode) {
        write_file(path, base_view, BASE_SIZE);
        return;
    }
    {
        struct vmc_create_opts co;
        struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                    .flags = VMC_OPEN_RDWR };
        struct vmc_image *b = NULL;
        uint64_t zoff = 5u << 20;

        vmc_create_opts_init(&co);
        co.size = BASE_SIZE;
        r = vmc_image_create(path, &co, &err);
        if (r < 0) {
            FAIL("create base: %s (%d)", err.msg, r);
        }
        r = vmc_image_open(&b, path, &oo, &err);
        if (r < 0) {
            FAIL("open base: %s", err.msg);
        }
        for (uint64_t off = 0; off < BASE_SIZE; off += 65536) {
            bool z = true;
            for (unsigned i = 0; i < 65536 && z; i++) {
                z = base_view[off + i] == 0;
            }
            if (!z && (r = vmc_image_write(b, base_view + off, off, 65536, 0))) {
                FAIL("write base: %s", strerror(-r));
            }
        }
        /* an explicit zero range over data in the base */
        memset(base_view + zoff, 0, 3 * 65536 + 1000);
        r = vmc_image_write_zeroes(b, zoff, 3 * 65536 + 1000, 0);
        if (r < 0 || (r = vmc_image_close(b)) < 0) {
            FAIL("base: %s", strerror(-r));
        }
    }
}

static void
make_clone(bool ext_l2)
{
    struct vmc_error err = { 0 };
    int r;

    if (raw_mode) {
        uint8_t *p = calloc(1, CLONE_SIZE);
        memcpy(p, base_view, BASE_SIZE);
        write_file(in_dir("clone.raw"), p, CLONE_SIZE);
        free(p);
        return;
    }
    struct vmc_create_opts co;
    vmc_create_opts_init(&co);
    co.size = CLONE_SIZE;
    co.backing_file = "base.qcow2";       /* relative to the clone */
    co.backing_format = VMC_FMT_QCOW2;
    co.cluster_size = (unsigned)cluster;
    co.extended_l2 = ext_l2;
    r = vmc_image_create(in_dir("clone.qcow2"), &co, &err);
    if (r < 0) {
        FAIL("create clone: %s (%d)", err.msg, r);
    }
}

static void
usage(void)
{
    fprintf(stderr, "usage: test-random-io [--cluster-size N] [--extended-l2] "
            "[--ops N] [--seed N] [--dir DIR] [--format raw]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    unsigned long ops = 4000;
    bool ext_l2 = false, keep = false;
    const char *e;
    size_t base_len = 0, base_len2 = 0;
    uint8_t *base_file, *base_file2;

    harness_on_fail(print_replay);
    cluster = 65536;
    seed = 20261122;
    if ((e = getenv("VMC_RANDOM_SEED")) && *e) {
        seed = strtoull(e, NULL, 0);
    }
    if ((e = getenv("VMC_RANDOM_OPS")) && *e) {
        ops = strtoul(e, NULL, 0);
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--extended-l2")) {
            ext_l2 = true;
        } else if (i + 1 < argc && !strcmp(argv[i], "--cluster-size")) {
            cluster = strtoull(argv[++i], NULL, 0);
        } else if (i + 1 < argc && !strcmp(argv[i], "--ops")) {
            ops = strtoul(argv[++i], NULL, 0);
        } else if (i + 1 < argc && !strcmp(argv[i], "--seed")) {
            seed = strtoull(argv[++i], NULL, 0);
        } else if (i + 1 < argc && !strcmp(argv[i], "--dir")) {
            snprintf(dir, sizeof(dir), "%s", argv[++i]);
            keep = true;
        } else if (i + 1 < argc && !strcmp(argv[i], "--format")) {
            raw_mode = !strcmp(argv[++i], "raw");
        } else {
            usage();
        }
    }
    if (cluster < 512 || (cluster & (cluster - 1)) || cluster > (2u << 20)) {
        usage();
    }
    if (raw_mode) {
        clone_fmt = VMC_FMT_RAW;
        cluster = 4096;
    }
    rng_state = seed;
    printf("# seed %" PRIu64 " (set VMC_RANDOM_SEED to change), %lu ops, "
           "cluster %" PRIu64 "%s%s\n", seed, ops, cluster,
           ext_l2 ? ", extended_l2" : "", raw_mode ? ", raw self-test" : "");

    if (!keep) {
        snprintf(dir, sizeof(dir), "%s/vmc-random-io.XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) {
            FAIL("mkdtemp");
        }
    }
    shadow = calloc(1, CLONE_SIZE);
    iobuf = malloc(MAX_IO);
    rdbuf = malloc(MAX_IO);
    if (!shadow || !iobuf || !rdbuf) {
        FAIL("out of memory");
    }

    make_base(in_dir(raw_mode ? "base.raw" : "base.qcow2"));
    base_file = read_file(in_dir(raw_mode ? "base.raw" : "base.qcow2"),
                          &base_len);
    make_clone(ext_l2);
    memcpy(shadow, base_view, BASE_SIZE);

    open_clone(VMC_OPEN_RDWR);
    if (vmc_image_size(img) != CLONE_SIZE) {
        FAIL("clone size %" PRIu64 ", expected %u", vmc_image_size(img),
             CLONE_SIZE);
    }
    compare_all("fresh clone must read as the base (zeros past its end)");

    for (op_no = 1; op_no <= ops; op_no++) {
        unsigned k = (unsigned)rnd_below(100);
        if (k < 42) {
            do_write();
        } else if (k < 57) {
            do_zero();
        } else if (k < 69) {
            do_discard();
        } else if (k < 92) {
            do_read();
        } else if (k < 99) {
            do_flush();
        } else {
            do_reopen();
        }
        if (op_no % 1000 == 0) {
            compare_all("periodic full comparison");
        }
    }
    trace_op("final checks");
    compare_all("final comparison");
    check_block_status();
    close_clone();

    /* the data survives a read-only reopen */
    open_clone(0);
    compare_all("after read-only reopen");
    close_clone();

    /* the base is byte-for-byte untouched */
    base_file2 = read_file(in_dir(raw_mode ? "base.raw" : "base.qcow2"),
                           &base_len2);
    if (base_len != base_len2 || memcmp(base_file, base_file2, base_len)) {
        FAIL("the base file changed (length %zu -> %zu)", base_len, base_len2);
    }

    if (keep) {
        write_file(in_dir("shadow.raw"), shadow, CLONE_SIZE);
    } else {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            printf("warning: could not remove %s\n", dir);
        }
    }
    free(base_file);
    free(base_file2);
    free(base_view);
    free(shadow);
    free(iobuf);
    free(rdbuf);
    printf("ok: %lu operations, content, block status and base verified\n",
           ops);
    return 0;
}
