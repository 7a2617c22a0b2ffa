/*
 * img-bench.c - "img bench": qemu-img bench on the engine's own I/O path.
 * Same flags, same access pattern (COUNT requests of SIZE bytes starting
 * at OFFSET and advancing by STEP, wrapping before the end of the image)
 * and the same two output lines. The queue depth is served by threads
 * issuing synchronous requests (the engine is thread-safe per image).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"

#define BENCH_MAX_THREADS 64

enum {
    OPT_PATTERN = 0x200,
    OPT_FLUSH_INTERVAL,
    OPT_NO_DRAIN,
    OPT_THREADS,
};

static const char bench_usage[] =
    "usage: " CLI_NAME " img bench [-c count] [-d depth] [-f fmt] "
    "[--flush-interval=N]\n"
    "           [--no-drain] [-i aio] [-n] [-o offset] [--pattern=byte] "
    "[-q]\n"
    "           [-s buffer_size] [-S step] [-t cache] [-w] [-U] "
    "[--threads N] filename\n"
    "\n"
    "Like qemu-img bench: COUNT (75000) requests of buffer_size (4 KiB),\n"
    "DEPTH (64) in flight, from offset, advancing by step (default the\n"
    "buffer size), reads or (-w) writes of the pattern byte (0). The depth\n"
    "is served by up to 16 threads (--threads overrides). -t, -i and -n\n"
    "are accepted for compatibility.\n";

struct bench {
    struct vmc_image *img;
    bool write;
    uint64_t size;          /* request size */
    uint64_t step;
    uint64_t image_size;
    uint64_t flush_interval;
    int pattern;
    pthread_mutex_t lock;
    uint64_t issued;        /* requests handed out */
    uint64_t count;
    uint64_t offset;        /* offset of the next request */
    uint64_t completed;
    int error;
    uint64_t error_off;
};

static bool
next_request(struct bench *b, uint64_t *off, uint64_t *len)
{
    bool ok;

    pthread_mutex_lock(&b->lock);
    ok = !b->error && b->issued < b->count;
    if (ok) {
        b->issued++;
        *off = b->offset;
        *len = b->size;
        if (*off + *len > b->image_size) {
            *len = b->image_size > *off ? b->image_size - *off : 0;
        }
        /* qemu-img bench's wrap rule. */
        b->offset += b->step;
        if (b->image_size <= b->size) {
            b->offset = 0;
        } else {
            b->offset %= b->image_size - b->size;
        }
    }
    pthread_mutex_unlock(&b->lock);
    return ok;
}

static void *
bench_thread(void *arg)
{
    struct bench *b = arg;
    uint64_t off, len, done;
    uint8_t *buf;
    int r;

    buf = malloc(b->size ? b->size : 1);
    if (!buf) {
        pthread_mutex_lock(&b->lock);
        b->error = b->error ? b->error : -ENOMEM;
        pthread_mutex_unlock(&b->lock);
        return NULL;
    }
    memset(buf, b->pattern, b->size);
    while (next_request(b, &off, &len)) {
        r = 0;
        if (len > 0) {
            r = b->write ? vmc_image_write(b->img, buf, off, len, 0)
                         : vmc_image_read(b->img, buf, off, len);
        }
        pthread_mutex_lock(&b->lock);
        done = ++b->completed;
        if (r < 0 && !b->error) {
            b->error = r;
            b->error_off = off;
        }
        pthread_mutex_unlock(&b->lock);
        if (r == 0 && b->flush_interval && done % b->flush_interval == 0) {
            r = vmc_image_flush(b->img);
            if (r < 0) {
                pthread_mutex_lock(&b->lock);
                b->error = b->error ? b->error : r;
                pthread_mutex_unlock(&b->lock);
            }
        }
    }
    free(buf);
    return NULL;
}

static int
parse_u64(const char *s, const char *what, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 0);
    if (errno || *end || end == s || s[0] == '-') {
        return cli_error("invalid %s '%s'", what, s);
    }
    return 0;
}

/* Option values of bench: each checks its range, as qemu-img bench does. */
static int
opt_count(const char *arg, void *dest)
{
    uint64_t *v = dest;

    if (parse_u64(arg, "request count", v) || *v > INT32_MAX) {
        return cli_error("invalid request count specified");
    }
    return 0;
}

static int
opt_depth(const char *arg, void *dest)
{
    uint64_t *v = dest;

    if (parse_u64(arg, "queue depth", v) || *v == 0 || *v > INT32_MAX) {
        return cli_error("invalid queue depth specified");
    }
    return 0;
}

static int
opt_aio(const char *arg, void *dest)
{
    if (strcmp(arg, "threads") && strcmp(arg, "native") &&
        strcmp(arg, "io_uring")) {
        return cli_error("invalid aio option: %s", arg);
    }
    return 0;
}

static int
opt_offset(const char *arg, void *dest)
{
    return cli_parse_size(arg, dest, "offset") ? CLI_EXIT_FAIL : 0;
}

static int
opt_buffer_size(const char *arg, void *dest)
{
    uint64_t *v = dest;

    if (cli_parse_size(arg, v, "buffer size") || *v == 0 ||
        *v > INT32_MAX) {
        return cli_error("invalid buffer size specified");
    }
    return 0;
}

static int
opt_step(const char *arg, void *dest)
{
    uint64_t *v = dest;

    if (cli_parse_size(arg, v, "step size") || *v > INT32_MAX) {
        return cli_error("invalid step size specified");
    }
    return 0;
}

static int
opt_pattern(const char *arg, void *dest)
{
    uint64_t v;

    if (parse_u64(arg, "pattern byte", &v) || v > 0xff) {
        return cli_error("invalid pattern byte specified");
    }
    *(int *)dest = (int)v;
    return 0;
}

static int
opt_flush_interval(const char *arg, void *dest)
{
    uint64_t *v = dest;

    if (parse_u64(arg, "flush interval", v) || *v > INT32_MAX) {
        return cli_error("invalid flush interval specified");
    }
    return 0;
}

static int
opt_threads(const char *arg, void *dest)
{
    uint64_t *v = dest;

    if (parse_u64(arg, "thread count", v) || !*v ||
        *v > BENCH_MAX_THREADS) {
        return cli_error("invalid thread count (1 to %d)",
                         BENCH_MAX_THREADS);
    }
    return 0;
}

int
cmd_img_bench(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img bench",
                                        .synopsis = bench_usage };
    struct bench b = { .count = 75000, .size = 4096 };
    struct cli_open open_opts = { 0 };
    pthread_t tids[BENCH_MAX_THREADS];
    struct timespec t0, t1;
    uint64_t depth = 64, threads = 0, start_off = 0;
    unsigned started = 0, i;
    bool quiet = false, ignored = false;
    const struct cli_opt opts[] = {
        CLI_OPT_CALL('c', NULL, "count", &b.count, opt_count,
                     "requests to issue (default 75000)"),
        CLI_OPT_CALL('d', NULL, "depth", &depth, opt_depth,
                     "requests in flight (default 64)"),
        CLI_OPT_STRING('f', NULL, "fmt", &open_opts.format, "format of the "
                       "image (default: probe)"),
        CLI_OPT_CALL('i', NULL, "aio", NULL, opt_aio, "threads, native or "
                     "io_uring (accepted for compatibility)"),
        CLI_OPT_FLAG('n', NULL, &ignored, "no host cache (no-op)"),
        CLI_OPT_CALL('o', NULL, "offset", &start_off, opt_offset,
                     "first offset"),
        CLI_OPT_FLAG('q', NULL, &quiet, "quiet"),
        CLI_OPT_CALL('s', NULL, "buffer_size", &b.size, opt_buffer_size,
                     "bytes per request (default 4096)"),
        CLI_OPT_CALL('S', NULL, "step_size", &b.step, opt_step,
                     "bytes between requests (default: the buffer size)"),
        CLI_OPT_CACHE,
        CLI_OPT_FLAG('w', NULL, &b.write, "write instead of read"),
        CLI_OPT_FLAG('U', NULL, &open_opts.force_share, "open an image "
                     "another process writes"),
        CLI_OPT_CALL(0, "pattern", "byte", &b.pattern, opt_pattern,
                     "byte to write"),
        CLI_OPT_CALL(0, "flush-interval", "N", &b.flush_interval,
                     opt_flush_interval, "flush after every N writes"),
        CLI_OPT_FLAG(0, "no-drain", &ignored, "(no-op)"),
        CLI_OPT_CALL(0, "threads", "N", &threads, opt_threads,
                     "worker threads"),
        CLI_OPT_FLAG(0, "image-opts", &ignored, "(accepted for "
                     "compatibility)"),
        CLI_OPT_END,
    };
    int r, r2;

    r = cli_parse_image_verb(opts, &u, argc, argv, 1);
    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (b.flush_interval && !b.write) {
        return cli_error("--flush-interval is only available in write "
                         "tests");
    }
    if (!b.step) {
        b.step = b.size;
    }
    r = cli_open_image(&b.img, argv[optind], &open_opts,
                       b.write ? VMC_OPEN_RDWR : 0);
    if (r) {
        return r;
    }
    b.image_size = vmc_image_size(b.img);
    b.offset = start_off;
    if (!threads) {
        threads = depth < 16 ? depth : 16;
    }
    if (threads > depth) {
        threads = depth;
    }
    if (!quiet) {
        printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, "
               "%" PRIu64 " in parallel (starting at offset %" PRIu64 ", "
               "step size %" PRIu64 ")\n", b.count,
               b.write ? "write" : "read", b.size, depth, start_off, b.step);
        if (b.flush_interval) {
            printf("Sending flush every %" PRIu64 " requests\n",
                   b.flush_interval);
        }
        fflush(stdout);
    }
    pthread_mutex_init(&b.lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 1; i < threads; i++) {
        if (pthread_create(&tids[started], NULL, bench_thread, &b) != 0) {
            break;
        }
        started++;
    }
    bench_thread(&b);
    for (i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_mutex_destroy(&b.lock);
    if (!b.error) {
        printf("Run completed in %3.3f seconds.\n",
               (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    r2 = vmc_image_close(b.img);
    if (b.error) {
        return cli_error("%s failed at offset %" PRIu64 ": %s",
                         b.write ? "write" : "read", b.error_off,
                         strerror(-b.error));
    }
    if (r2 < 0) {
        return cli_error("error while closing '%s': %s", argv[optind],
                         strerror(-r2));
    }
    return CLI_EXIT_OK;
}
