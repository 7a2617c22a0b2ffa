/*
 * test-power-loss.c - reliability test 4: simulated power loss.
 *
 * A linked clone (16 MiB, of a qcow2 base with data) takes a random
 * workload through the public API: sector-aligned writes of 512 B..256 KiB,
 * a few discards, a flush about every 20 operations, and once a resize to
 * 24 MiB (L1 growth). The host I/O layer's write log (hio_set_write_log())
 * records every write, sync and truncate of the clone file. The replayer
 * then rebuilds the file as a power cut would leave it:
 *   - at every sync boundary (everything up to that fdatasync, nothing
 *     after);
 *   - at random cut points, everything up to the last sync before the cut
 *     plus the unflushed tail kept whole, kept or dropped per write at
 *     random, or torn per 512-byte sector at random (3 images per cut).
 * Every recovered image must open with its backing chain, check clean
 * with our check (leaks allowed) and `qemu-img check` (exit 0 or 3, on
 * every Nth image), and every sector must read as it was at the last
 * completed flush before the cut, or as a write issued after that flush
 * and before the cut.
 *
 * usage: test-power-loss [--full] [--cluster-size N] [--seed N]
 *   default (PR): 200 operations, 10 flushes, every sync boundary and
 *   20 random cuts; --full: 1,000 operations, 50 flushes, every sync
 *   boundary and 220 random cuts (tests/stress/power-loss.sh runs it for
 *   64 KiB and 512-byte clusters: >= 750 images each).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmclone.h"
#include "io/hostio.h"
#include "harness.h"

#define SECTOR 512u
#define SIZE (16u << 20)
#define GROWN (24u << 20)
#define NSECT (GROWN / SECTOR)

struct log_entry {
    enum hio_log_kind kind;
    uint64_t off, len;
    uint8_t *data;          /* NULL: zeros */
};

struct guest_write {
    size_t log_at;          /* log length when it was issued */
    uint64_t off, len;
    uint8_t v;              /* every sector filled with v (0: discard) */
};

static char dir[256], clone_path[300], rec_path[300], base_path[300];
static struct log_entry *wlog;
static size_t nlog, caplog;
static struct guest_write *writes;
static size_t nwrites;
static size_t *flush_done;       /* log length when flush i returned */
static uint8_t **snap;           /* guest view (per sector) at flush i */
static uint64_t *snap_size;
static size_t nflush;
static uint8_t view[NSECT];      /* the current guest view */
static uint8_t *init_file;       /* the clone file before the workload */
static uint64_t init_len;
static uint8_t *iobuf;
static unsigned qemu_every = 10;
static bool have_qemu_img;
static unsigned images, random_cuts;

static uint64_t rng_state;

static uint64_t
rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void
log_fn(enum hio_log_kind kind, const struct hio_file *f, uint64_t off,
       const void *data, uint64_t len)
{
    struct log_entry *e;

    if (!f->path || strcmp(f->path, clone_path)) {
        return;
    }
    if (nlog == caplog) {
        caplog = caplog ? caplog * 2 : 1024;
        wlog = realloc(wlog, caplog * sizeof(*wlog));
        if (!wlog) {
            FAIL("out of memory");
        }
    }
    e = &wlog[nlog++];
    *e = (struct log_entry){ .kind = kind, .off = off, .len = len };
    if (kind == HIO_LOG_WRITE && data) {
        e->data = malloc(len);
        if (!e->data) {
            FAIL("out of memory");
        }
        memcpy(e->data, data, len);
    }
}

static struct vmc_image *
open_image(const char *path, unsigned flags)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2, .flags = flags };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;

    if (vmc_image_open(&img, path, &oo, &err) < 0) {
        CHECK_MSG(false, "open %s: %s", path, err.msg);
        return NULL;
    }
    return img;
}

static void
take_snapshot(uint64_t size)
{
    snap = realloc(snap, (nflush + 1) * sizeof(*snap));
    snap_size = realloc(snap_size, (nflush + 1) * sizeof(*snap_size));
    flush_done = realloc(flush_done, (nflush + 1) * sizeof(*flush_done));
    if (!snap || !snap_size || !flush_done ||
        !(snap[nflush] = malloc(NSECT))) {
        FAIL("out of memory");
    }
    memcpy(snap[nflush], view, NSECT);
    snap_size[nflush] = size;
    flush_done[nflush] = nlog;
    nflush++;
}

/* Base (not logged) and an empty clone; the clone file's bytes are the
 * replay's starting point. */
static void
make_images(unsigned cluster_size)
{
    struct vmc_create_opts co;
    struct vmc_error err = { 0 };
    struct vmc_image *img;
    int fd;

    snprintf(base_path, sizeof(base_path), "%s/base.qcow2", dir);
    snprintf(clone_path, sizeof(clone_path), "%s/clone.qcow2", dir);
    snprintf(rec_path, sizeof(rec_path), "%s/rec.qcow2", dir);
    vmc_create_opts_init(&co);
    co.size = SIZE;
    if (vmc_image_create(base_path, &co, &err) < 0 ||
        !(img = open_image(base_path, VMC_OPEN_RDWR))) {
        FAIL("base: %s", err.msg);
    }
    for (uint64_t s = 0; s < SIZE / SECTOR; s += 64) {
        if ((s / 64) % 3 == 0) {       /* every third 32 KiB has data */
            uint8_t v = (uint8_t)(0xe0 | (s / 64) % 16);
            memset(iobuf, v, 32768);
            memset(view + s, v, 64);
            if (vmc_image_write(img, iobuf, s * SECTOR, 32768, 0) < 0) {
                FAIL("base write");
            }
        }
    }
    if (vmc_image_close(img) < 0) {
        FAIL("base close");
    }
    vmc_create_opts_init(&co);
    co.cluster_size = cluster_size;
    co.backing_file = "base.qcow2";
    co.backing_format = VMC_FMT_QCOW2;
    if (vmc_image_create(clone_path, &co, &err) < 0) {
        FAIL("clone: %s", err.msg);
    }
    fd = open(clone_path, O_RDONLY);
    init_len = (uint64_t)lseek(fd, 0, SEEK_END);
    init_file = malloc(init_len);
    if (fd < 0 || !init_file ||
        pread(fd, init_file, init_len, 0) != (ssize_t)init_len) {
        FAIL("read the clone");
    }
    close(fd);
}

static void
workload(unsigned ops, unsigned flushes)
{
    struct vmc_error err = { 0 };
    struct vmc_image *img;
    uint64_t size = SIZE;

    take_snapshot(SIZE);                 /* "flushed" at the start */
    hio_set_write_log(log_fn);
    img = open_image(clone_path, VMC_OPEN_RDWR);
    if (!img) {
        FAIL("open the clone");
    }
    writes = calloc(ops, sizeof(*writes));
    for (unsigned i = 0; i < ops; i++) {
        struct guest_write *w = &writes[nwrites];
        uint64_t r = rnd();

        if (i == ops / 2) {
            if (vmc_image_resize(img, GROWN, &err) < 0) {
                FAIL("resize: %s", err.msg);
            }
            size = GROWN;
        }
        if (r % ((ops + flushes - 1) / flushes) == 0) {
            if (vmc_image_flush(img) < 0) {
                FAIL("flush");
            }
            take_snapshot(size);
            continue;
        }
        w->log_at = nlog;
        w->len = (r >> 8) % 16 == 0 ? (1 + (r >> 12) % 512) * SECTOR
                                    : (1 + (r >> 12) % 128) * SECTOR;
        w->off = ((r >> 24) % ((SIZE - w->len) / SECTOR)) * SECTOR;
        w->v = (uint8_t)(1 + nwrites % 0xdf);
        if ((r >> 40) % 25 == 0) {
            uint64_t cs = vmc_image_cluster_size(img);

            w->v = 0;                    /* a discard of whole clusters */
            w->off -= w->off % cs;
            w->len = (w->len + cs - 1) / cs * cs;
            if (w->off + w->len > SIZE) {
                w->len = SIZE - w->off;
            }
            if (vmc_image_discard(img, w->off, w->len) < 0) {
                FAIL("discard");
            }
            memset(view + w->off / SECTOR, 0, w->len / SECTOR);
            nwrites++;
            continue;
        }
        memset(iobuf, w->v, w->len);
        if (vmc_image_write(img, iobuf, w->off, w->len, 0) < 0) {
            FAIL("write");
        }
        memset(view + w->off / SECTOR, w->v, w->len / SECTOR);
        nwrites++;
    }
    if (vmc_image_close(img) < 0) {
        FAIL("close");
    }
    take_snapshot(size);
    hio_set_write_log(NULL);
}

/* The file as the cut at log index @k leaves it, with @variant for the
 * tail after the last sync: 0 keep, 1 keep/drop per write, 2 torn. */
static void
build_image(size_t k, int variant)
{
    size_t j = 0, i;
    int fd = open(rec_path, O_RDWR | O_CREAT | O_TRUNC, 0644);

    if (fd < 0 || pwrite(fd, init_file, init_len, 0) != (ssize_t)init_len) {
        FAIL("write %s", rec_path);
    }
    for (i = 0; i < k; i++) {
        if (wlog[i].kind == HIO_LOG_SYNC) {
            j = i + 1;
        }
    }
    for (i = 0; i < k; i++) {
        const struct log_entry *e = &wlog[i];
        bool tail = i >= j;

        if (tail && variant == 1 && rnd() % 2) {
            continue;
        }
        if (e->kind == HIO_LOG_TRUNCATE) {
            if (ftruncate(fd, (off_t)e->off) < 0) {
                FAIL("ftruncate");
            }
        } else if (e->kind == HIO_LOG_WRITE) {
            for (uint64_t o = 0; o < e->len; o += SECTOR) {
                uint64_t n = e->len - o < SECTOR ? e->len - o : SECTOR;
                uint64_t at = e->off + o;

                if (tail && variant == 2 && rnd() % 2) {
                    continue;
                }
                if (e->data) {
                    if (pwrite(fd, e->data + o, n, (off_t)at) != (ssize_t)n) {
                        FAIL("pwrite");
                    }
                } else {
                    memset(iobuf, 0, n);
                    if (pwrite(fd, iobuf, n, (off_t)at) != (ssize_t)n) {
                        FAIL("pwrite");
                    }
                }
            }
        }
    }
    close(fd);
}

/* May sector @s read @v after the cut at @k (last flush @f)? */
static bool
value_ok(size_t f, size_t k, uint64_t s, uint8_t v)
{
    if (v == snap[f][s]) {
        return true;
    }
    for (size_t w = 0; w < nwrites; w++) {
        const struct guest_write *g = &writes[w];

        if (g->log_at >= flush_done[f] && g->log_at < k &&
            s >= g->off / SECTOR && s < (g->off + g->len) / SECTOR &&
            v == g->v) {
            return true;
        }
    }
    return false;
}

static void
verify_image(size_t k, const char *what)
{
    struct vmc_check_result res;
    struct vmc_error err = { 0 };
    struct vmc_image *img;
    size_t f = 0;
    uint64_t size;

    images++;
    while (f + 1 < nflush && flush_done[f + 1] <= k) {
        f++;
    }
    img = open_image(rec_path, VMC_OPEN_CHECK | VMC_OPEN_NO_BACKING);
    if (!img) {
        FAIL("%s (cut %zu): the image does not open for check", what, k);
    }
    if (vmc_image_check(img, VMC_REPAIR_NONE, &res, NULL, NULL, &err) < 0 ||
        res.corruptions) {
        FAIL("%s (cut %zu): check: %llu corruptions %s", what, k,
             (unsigned long long)res.corruptions, err.msg);
    }
    vmc_image_close(img);
    if (have_qemu_img && images % qemu_every == 0) {
        char cmd[600];
        int st;

        snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' >/dev/null 2>&1",
                 rec_path);
        st = system(cmd);
        if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3)) {
            FAIL("%s (cut %zu): qemu-img check exited %d", what, k,
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
    }
    img = open_image(rec_path, 0);
    if (!img) {
        FAIL("%s (cut %zu): the image does not open", what, k);
    }
    size = vmc_image_size(img);
    if (size != snap_size[f] && size != GROWN) {
        FAIL("%s (cut %zu): size %llu", what, k, (unsigned long long)size);
    }
    for (uint64_t off = 0; off < size; off += 65536) {
        if (vmc_image_read(img, iobuf, off, 65536) < 0) {
            FAIL("%s (cut %zu): read at %llu", what, k,
                 (unsigned long long)off);
        }
        for (unsigned i = 0; i < 65536; i += SECTOR) {
            uint64_t s = (off + i) / SECTOR;
            uint8_t v = iobuf[i];
            bool uniform = true;

            for (unsigned b = 1; b < SECTOR && uniform; b++) {
                uniform = iobuf[i + b] == v;
            }
            if (!uniform || !value_ok(f, k, s, v)) {
                FAIL("%s (cut %zu of %zu, flush %zu): sector %llu reads "
                     "0x%02x%s, flushed 0x%02x", what, k, nlog, f,
                     (unsigned long long)s, v, uniform ? "" : " (mixed)",
                     snap[f][s]);
            }
        }
    }
    vmc_image_close(img);
}

static int
cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    unsigned cluster_size = 65536, ops = 200, flushes = 10;
    unsigned long seed = 4;
    size_t *cuts, ncuts = 0;

    random_cuts = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full")) {
            ops = 1000;
            flushes = 50;
            random_cuts = 220;
            qemu_every = 25;
        } else if (!strcmp(argv[i], "--cluster-size") && i + 1 < argc) {
            cluster_size = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoul(argv[++i], NULL, 0);
        }
    }
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
    printf("seed %lu, cluster size %u\n", seed, cluster_size);
    snprintf(dir, sizeof(dir), "/tmp/vmc-power-loss-XXXXXX");
    if (!mkdtemp(dir) || !(iobuf = malloc(512 * SECTOR))) {
        FAIL("setup");
    }
    have_qemu_img = system("qemu-img --version >/dev/null 2>&1") == 0;
    make_images(cluster_size);
    workload(ops, flushes);
    printf("%zu guest writes, %zu flushes, %zu logged host operations\n",
           nwrites, nflush - 2, nlog);

    /* every sync boundary, then the random cuts (3 variants each) */
    cuts = calloc(nlog + 1, sizeof(*cuts));
    for (size_t i = 0; i < nlog; i++) {
        if (wlog[i].kind == HIO_LOG_SYNC) {
            cuts[ncuts++] = i + 1;
        }
    }
    for (size_t c = 0; c < ncuts; c++) {
        build_image(cuts[c], 0);
        verify_image(cuts[c], "sync boundary");
    }
    ncuts = 0;
    for (unsigned c = 0; c < random_cuts && nlog; c++) {
        cuts[ncuts++] = 1 + rnd() % nlog;
    }
    qsort(cuts, ncuts, sizeof(*cuts), cmp_size);
    for (size_t c = 0; c < ncuts; c++) {
        static const char *const names[] = {
            "tail kept", "tail kept/dropped", "tail torn",
        };
        for (int variant = 0; variant < 3; variant++) {
            build_image(cuts[c], variant);
            verify_image(cuts[c], names[variant]);
        }
    }
    printf("%u recovered images checked\n", images);
    free(cuts);
    for (size_t i = 0; i < nlog; i++) {
        free(wlog[i].data);
    }
    for (size_t i = 0; i < nflush; i++) {
        free(snap[i]);
    }
    free(wlog);
    free(snap);
    free(snap_size);
    free(flush_done);
    free(writes);
    free(init_file);
    free(iobuf);
    unlink(rec_path);
    unlink(clone_path);
    unlink(base_path);
    rmdir(dir);
    return harness_exit("power-loss");
}
