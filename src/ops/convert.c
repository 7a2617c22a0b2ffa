/*
 * convert.c - the full clone: copy the guest view of a source chain into
 * a new (or existing) target image, like `qemu-img convert`.
 *
 * The source is walked in chunks of up to 2 MiB aligned to the target's
 * cluster size. Each chunk is split into runs by block status:
 *   SKIP  not allocated in the source's top layer while the target has a
 *         backing file (-B): left unallocated so the backing shows through;
 *   ZERO  reads as zeros: nothing to do in a fresh target without backing,
 *         write_zeroes otherwise, real zeros with sparse_size 0;
 *   DATA  read, and written except for zero runs of at least sparse_size
 *         bytes (trimmed to whole target clusters), which are handled as
 *         ZERO.
 * With compression every target cluster is written whole with
 * vmc_image_write_compressed(). Without it, @workers threads may copy
 * chunks in parallel (copy_parallel()); with one worker, a reader thread
 * reads the chunks ahead of the thread that writes them, in order
 * (copy_pipelined()).
 *
 * A target of another hypervisor's format (vpc, vdi, vhdx, vmdk) is not
 * an image opened read-write but a sequential writer (vmc_writer_*):
 * the same walk feeds it DATA runs in increasing offsets, in one thread;
 * ZERO runs are simply not written, so they stay unallocated.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ops-internal.h"

enum run_kind {
    RUN_SKIP,
    RUN_ZERO,
    RUN_DATA,
};

struct conv {
    struct vmc_image *src;
    struct vmc_image *dst;
    struct vmc_writer *w;   /* instead of @dst: a sequential writer */
    const struct vmc_convert_opts *o;
    struct vmc_error *err;
    const char *dst_name;
    uint64_t size;          /* bytes to copy: the source's size */
    uint64_t cluster;       /* target cluster size */
    uint64_t chunk;         /* walk unit, a multiple of @cluster */
    bool top_only;          /* -B: copy what the source's top defines */
    bool fresh_zero;        /* target reads as zeros, no backing */
    uint8_t *buf;           /* @chunk bytes */
    uint8_t *zbuf;          /* @chunk zero bytes (sparse_size 0) */
    /* Cached run from the last block status call. */
    uint64_t run_off;
    uint64_t run_len;
    enum run_kind run_kind;
    uint64_t unflushed;     /* data written since the last writeback hint */
    struct ops_progress progress;
};

/* Start the writeback of the target every WRITEBACK_EVERY bytes written,
 * so that the final flush finds little left to write. */
#define WRITEBACK_EVERY (16ull << 20)

void
vmc_convert_opts_init(struct vmc_convert_opts *o)
{
    memset(o, 0, sizeof(*o));
    vmc_create_opts_init(&o->create);
    vmc_writer_opts_init(&o->writer);
    o->sparse_size = 4096;
}

int
vmc_convert_opts_set_target(struct vmc_convert_opts *o, const char *format,
                            const char *options, struct vmc_error *err)
{
    enum vmc_format fmt = vmc_format_from_name(format);

    if (fmt == VMC_FMT_AUTO) {
        return vmc_error_set(err, -EINVAL, "unknown file format '%s'",
                             format);
    }
    o->create.format = fmt;
    o->writer.format = fmt;
    if (vmc_format_has_writer(fmt)) {
        return vmc_writer_opts_parse(&o->writer, options, err);
    }
    if (options && *options) {
        return vmc_error_set(err, -EINVAL, "options '%s' are for the vpc, "
                             "vdi, vhdx and vmdk writers; a %s target takes "
                             "its creation options", options, format);
    }
    return 0;
}

static int
src_error(struct conv *c, int r, const char *what, uint64_t off)
{
    return vmc_error_set(c->err, r, "error while %s '%s' at offset %llu: %s",
                         what, vmc_image_filename(c->src),
                         (unsigned long long)off, strerror(-r));
}

static int
dst_error(struct conv *c, int r, uint64_t off)
{
    return vmc_error_set(c->err, r, "error while writing '%s' at offset "
                         "%llu: %s", c->dst_name, (unsigned long long)off,
                         strerror(-r));
}

static uint64_t
backing_size(const struct vmc_image *img)
{
    const struct vmc_image *b = vmc_image_backing(img);

    return b ? vmc_image_size(b) : 0;
}

/*
 * The source's top layer does not define the run at @off (-B mode). Below
 * the end of the source's backing file, the target's backing supplies the
 * same data: skip. Past it the source reads zeros; the target must too,
 * which it does by itself past the end of its own backing file.
 */
static void
classify_undefined(struct conv *c, uint64_t off)
{
    uint64_t src_end = backing_size(c->src);
    uint64_t dst_end = backing_size(c->dst);

    if (off < src_end) {
        c->run_kind = RUN_SKIP;
        c->run_len = ops_min(c->run_len, src_end - off);
    } else if (off >= dst_end) {
        c->run_kind = RUN_SKIP;
    } else {
        c->run_kind = RUN_ZERO;
        c->run_len = ops_min(c->run_len, dst_end - off);
    }
}

/* Classify the source at @off (at most @len bytes) into c->run_*. */
static int
query_run(struct conv *c, uint64_t off, uint64_t len)
{
    struct vmc_block_status bs;
    int r;

    r = vmc_image_block_status(c->src, off, len, !c->top_only, &bs);
    if (r == 0 && (bs.length == 0 || bs.length > len)) {
        r = -EIO;
    }
    if (r < 0) {
        return src_error(c, r, "reading the metadata of", off);
    }
    c->run_off = off;
    c->run_len = bs.length;
    if (c->top_only && !(bs.flags & VMC_BS_ALLOCATED)) {
        classify_undefined(c, off);
    } else if (bs.flags & VMC_BS_ZERO) {
        c->run_kind = RUN_ZERO;
    } else {
        c->run_kind = RUN_DATA;
    }
    return 0;
}

/* The run covering @off, clipped to @end: sets *kind and *n. */
static int
next_run(struct conv *c, uint64_t off, uint64_t end, enum run_kind *kind,
         uint64_t *n)
{
    int r;

    if (off < c->run_off || off >= c->run_off + c->run_len) {
        r = query_run(c, off, c->size - off);
        if (r < 0) {
            return r;
        }
    }
    *kind = c->run_kind;
    *n = ops_min(end, c->run_off + c->run_len) - off;
    return 0;
}

static int
write_data(struct conv *c, const uint8_t *buf, uint64_t off, uint64_t n)
{
    int r;

    if (c->w) {
        r = vmc_writer_write(c->w, buf, off, n);
        return r < 0 ? dst_error(c, r, off) : 0;
    }
    r = vmc_image_write(c->dst, buf, off, n, 0);
    if (r < 0) {
        return dst_error(c, r, off);
    }
    c->unflushed += n;
    if (c->unflushed >= WRITEBACK_EVERY) {
        c->unflushed = 0;
        engine_image_start_writeback(c->dst);
    }
    return 0;
}

/* Make [off, off+n) of the target read as zeros. */
static int
write_zero_range(struct conv *c, uint64_t off, uint64_t n)
{
    int r;

    if (c->o->sparse_size == 0) {
        /* Fully allocated target: write real zeros. */
        while (n > 0) {
            uint64_t len = ops_min(n, c->chunk);

            r = write_data(c, c->zbuf, off, len);
            if (r < 0) {
                return r;
            }
            off += len;
            n -= len;
        }
        return 0;
    }
    if (c->fresh_zero) {
        return 0;
    }
    r = vmc_image_write_zeroes(c->dst, off, n, VMC_WRITE_MAY_UNMAP);
    return r < 0 ? dst_error(c, r, off) : 0;
}

/*
 * Write @n bytes of @buf at @off, handling zero runs of at least
 * sparse_size bytes (reduced to whole target clusters) as zero ranges.
 */
static int
write_sparse(struct conv *c, const uint8_t *buf, uint64_t off, uint64_t n)
{
    uint64_t pos = 0, data_start = 0;
    int r;

    if (c->o->sparse_size == 0) {
        return write_data(c, buf, off, n);
    }
    while (pos < n) {
        bool zero;
        uint64_t len = ops_sector_run(buf + pos, n - pos, &zero);
        uint64_t za = ops_align_up(off + pos, c->cluster) - off;
        uint64_t zb = ops_align_down(off + pos + len, c->cluster) - off;

        if (off + pos + len == c->size) {
            zb = pos + len;     /* the image end counts as aligned */
        }
        if (zero && len >= c->o->sparse_size && zb > za &&
            zb - za >= c->o->sparse_size) {
            if (za > data_start) {
                r = write_data(c, buf + data_start, off + data_start,
                               za - data_start);
                if (r < 0) {
                    return r;
                }
            }
            r = write_zero_range(c, off + za, zb - za);
            if (r < 0) {
                return r;
            }
            data_start = zb;
        }
        pos += len;
    }
    if (n > data_start) {
        return write_data(c, buf + data_start, off + data_start,
                          n - data_start);
    }
    return 0;
}

static int
read_src(struct conv *c, uint8_t *buf, uint64_t off, uint64_t n)
{
    int r = vmc_image_read(c->src, buf, off, n);

    return r < 0 ? src_error(c, r, "reading", off) : 0;
}

/* One run of a chunk as read_chunk() classified it. */
struct run {
    enum run_kind kind;
    uint64_t off;
    uint64_t len;
};

/*
 * A chunk [off, end) read from the source: its runs and, for DATA runs,
 * their bytes in @buf at (run.off - off). read_chunk() fills it from the
 * source only, write_chunk() writes it to the target only: the pipeline
 * (copy_pipelined()) runs the two in different threads.
 */
struct chunk {
    uint64_t off;
    uint64_t end;
    uint8_t *buf;           /* c->chunk bytes */
    struct run *runs;
    size_t nruns;
    size_t cap;
    int error;              /* read_chunk()'s failure */
    struct vmc_error err;   /* ... and its message */
};

static int
chunk_add_run(struct chunk *ch, enum run_kind kind, uint64_t off,
              uint64_t len)
{
    if (ch->nruns == ch->cap) {
        size_t cap = ch->cap ? ch->cap * 2 : 16;
        struct run *r = realloc(ch->runs, cap * sizeof(*r));

        if (!r) {
            return -ENOMEM;
        }
        ch->runs = r;
        ch->cap = cap;
    }
    ch->runs[ch->nruns++] = (struct run){ kind, off, len };
    return 0;
}

/* Classify [off, end) (within one chunk) and read its DATA runs. */
static int
read_chunk(struct conv *c, struct chunk *ch, uint64_t off, uint64_t end)
{
    enum run_kind kind;
    uint64_t n;
    int r;

    ch->off = off;
    ch->end = end;
    ch->nruns = 0;
    while (off < end) {
        r = next_run(c, off, end, &kind, &n);
        if (r < 0) {
            return r;
        }
        if (kind == RUN_DATA) {
            r = read_src(c, ch->buf + (off - ch->off), off, n);
            if (r < 0) {
                return r;
            }
        }
        r = chunk_add_run(ch, kind, off, n);
        if (r < 0) {
            return vmc_error_set(c->err, r, "out of memory");
        }
        off += n;
    }
    return 0;
}

/* Write what read_chunk() found to the target. */
static int
write_chunk(struct conv *c, const struct chunk *ch)
{
    size_t i;
    int r = 0;

    for (i = 0; i < ch->nruns && r == 0; i++) {
        const struct run *run = &ch->runs[i];

        if (run->kind == RUN_ZERO) {
            r = write_zero_range(c, run->off, run->len);
        } else if (run->kind == RUN_DATA) {
            r = write_sparse(c, ch->buf + (run->off - ch->off), run->off,
                             run->len);
        }
    }
    return r;
}

/* Copy [off, end) (within one chunk) without compression, in this
 * thread, through @ch (its buffer is @c->buf). */
static int
copy_plain(struct conv *c, struct chunk *ch, uint64_t off, uint64_t end)
{
    int r = read_chunk(c, ch, off, end);

    return r < 0 ? r : write_chunk(c, ch);
}

/* Copy the target cluster [off, end) compressed. */
static int
copy_cluster_compressed(struct conv *c, uint64_t off, uint64_t end)
{
    bool any_skip = false, any_data = false, all_skip = true;
    enum run_kind kind;
    uint64_t pos, n;
    int r;

    for (pos = off; pos < end; pos += n) {
        r = next_run(c, pos, end, &kind, &n);
        if (r < 0) {
            return r;
        }
        any_skip |= kind == RUN_SKIP;
        any_data |= kind == RUN_DATA;
        all_skip &= kind == RUN_SKIP;
    }
    if (all_skip) {
        return 0;
    }
    if (any_data || any_skip || c->o->sparse_size == 0) {
        r = read_src(c, c->buf, off, end - off);
        if (r < 0) {
            return r;
        }
        if (any_skip || c->o->sparse_size == 0 ||
            !buffer_is_zero(c->buf, end - off)) {
            r = vmc_image_write_compressed(c->dst, c->buf, off, end - off);
            return r < 0 ? dst_error(c, r, off) : 0;
        }
    }
    return write_zero_range(c, off, end - off);
}

/*
 * Parallel copy (o->workers > 1, no compression): the chunks are handed
 * out in order to the workers, each with its own buffer and block-status
 * cache; the calling thread is one of them and reports progress. The
 * engine is thread-safe per image, so reads of the source overlap with
 * writes of the target.
 */
#define CONV_MAX_WORKERS 8

struct par {
    struct conv *c;
    pthread_mutex_t lock;
    uint64_t next;          /* start of the next chunk to hand out */
    uint64_t done;          /* bytes completed */
    int error;              /* first failure */
    struct vmc_error err;
};

struct worker {
    struct par *par;
    struct conv c;          /* private copy of the shared state */
    struct chunk ch;        /* its buffer and runs */
    struct vmc_error err;
};

static bool
par_next(struct par *p, uint64_t *off, uint64_t *end)
{
    bool ok;

    pthread_mutex_lock(&p->lock);
    ok = !p->error && p->next < p->c->size;
    if (ok) {
        *off = p->next;
        *end = ops_min(p->c->size,
                       ops_align_down(*off, p->c->chunk) + p->c->chunk);
        p->next = *end;
    }
    pthread_mutex_unlock(&p->lock);
    return ok;
}

static void *
par_worker(void *arg)
{
    struct worker *w = arg;
    struct par *p = w->par;
    bool reporter = w->c.progress.fn != NULL;
    uint64_t off, end, done;
    int r;

    while (par_next(p, &off, &end)) {
        r = copy_plain(&w->c, &w->ch, off, end);
        pthread_mutex_lock(&p->lock);
        if (r < 0 && !p->error) {
            p->error = r;
            p->err = w->err;
        }
        if (r == 0) {
            p->done += end - off;
        }
        done = p->done;
        pthread_mutex_unlock(&p->lock);
        if (r < 0) {
            break;
        }
        if (reporter && done > w->c.progress.done) {
            ops_progress_add(&w->c.progress, done - w->c.progress.done);
        }
    }
    return NULL;
}

static int
copy_parallel(struct conv *c)
{
    unsigned n = ops_min(c->o->workers, CONV_MAX_WORKERS), i, started = 0;
    struct worker *w;
    pthread_t tids[CONV_MAX_WORKERS];
    struct par p = { .c = c };
    int r;

    w = calloc(n, sizeof(*w));
    if (!w) {
        return vmc_error_set(c->err, -ENOMEM, "out of memory");
    }
    pthread_mutex_init(&p.lock, NULL);
    for (i = 0; i < n; i++) {
        w[i].par = &p;
        w[i].c = *c;
        w[i].c.err = &w[i].err;
        w[i].c.run_off = w[i].c.run_len = 0;
        w[i].ch.buf = i == 0 ? c->buf : malloc(c->chunk);
        if (i > 0) {
            w[i].c.progress.fn = NULL;
        }
        if (!w[i].ch.buf) {
            break;
        }
    }
    n = i ? i : 1;
    for (i = 1; i < n; i++) {
        if (pthread_create(&tids[started], NULL, par_worker, &w[i]) != 0) {
            break;
        }
        started++;
    }
    par_worker(&w[0]);
    for (i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    c->progress = w[0].c.progress;
    r = p.error;
    if (r < 0) {
        if (c->err) {
            *c->err = p.err;
        }
    }
    for (i = 0; i < n; i++) {
        if (i > 0) {
            free(w[i].ch.buf);
        }
        free(w[i].ch.runs);
    }
    free(w);
    pthread_mutex_destroy(&p.lock);
    return r;
}

/*
 * The pipeline (no compression, one worker): a reader thread walks the
 * source chunk by chunk (block status, reads, a compressed grain's
 * inflate) into a ring of PIPE_SLOTS chunks while the calling thread
 * writes them to the target in the same order (zero detection, the
 * target's allocation and writes), so the two halves overlap and the
 * target sees exactly the writes of a one-thread copy. Only the reader
 * touches the source and only the writer the target and the progress.
 */
#define PIPE_SLOTS 4

struct pipe {
    struct conv rc;         /* the reader's copy: its block-status cache */
    pthread_mutex_t lock;
    pthread_cond_t filled;  /* a slot was read, or the reader ended */
    pthread_cond_t emptied; /* a slot was written, or the writer failed */
    struct chunk slots[PIPE_SLOTS];
    uint64_t produced;      /* chunks read (slot: count % PIPE_SLOTS) */
    uint64_t consumed;      /* chunks written */
    bool reader_done;
    bool stop;              /* the writer failed: stop reading */
};

static void *
pipe_reader(void *arg)
{
    struct pipe *p = arg;
    struct conv *c = &p->rc;
    uint64_t off, end;
    struct chunk *ch;
    bool stop;

    for (off = 0; off < c->size; off = end) {
        end = ops_min(c->size, ops_align_down(off, c->chunk) + c->chunk);
        pthread_mutex_lock(&p->lock);
        while (p->produced - p->consumed == PIPE_SLOTS && !p->stop) {
            pthread_cond_wait(&p->emptied, &p->lock);
        }
        stop = p->stop;
        ch = &p->slots[p->produced % PIPE_SLOTS];
        pthread_mutex_unlock(&p->lock);
        if (stop) {
            break;
        }
        c->err = &ch->err;
        ch->error = read_chunk(c, ch, off, end);
        pthread_mutex_lock(&p->lock);
        p->produced++;
        pthread_cond_signal(&p->filled);
        pthread_mutex_unlock(&p->lock);
        if (ch->error < 0) {
            break;
        }
    }
    pthread_mutex_lock(&p->lock);
    p->reader_done = true;
    pthread_cond_signal(&p->filled);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* The writer's half: the next chunk read, or NULL at the end. */
static struct chunk *
pipe_next(struct pipe *p)
{
    struct chunk *ch = NULL;

    pthread_mutex_lock(&p->lock);
    while (p->consumed == p->produced && !p->reader_done) {
        pthread_cond_wait(&p->filled, &p->lock);
    }
    if (p->consumed < p->produced) {
        ch = &p->slots[p->consumed % PIPE_SLOTS];
    }
    pthread_mutex_unlock(&p->lock);
    return ch;
}

static int
pipe_write_all(struct conv *c, struct pipe *p)
{
    struct chunk *ch;
    int r = 0;

    while (r == 0 && (ch = pipe_next(p)) != NULL) {
        r = ch->error;
        if (r < 0 && c->err) {
            *c->err = ch->err;
        }
        if (r == 0) {
            r = write_chunk(c, ch);
        }
        if (r == 0) {
            ops_progress_add(&c->progress, ch->end - ch->off);
        }
        pthread_mutex_lock(&p->lock);
        p->consumed++;
        p->stop = r < 0;
        pthread_cond_signal(&p->emptied);
        pthread_mutex_unlock(&p->lock);
    }
    return r;
}

/* Returns 1 if the pipeline could not start (no thread or memory): the
 * caller copies in one thread instead. */
static int
copy_pipelined(struct conv *c)
{
    struct pipe *p = calloc(1, sizeof(*p));
    pthread_t tid;
    unsigned i;
    int r = 1;

    if (!p) {
        return 1;
    }
    p->rc = *c;
    p->rc.run_off = p->rc.run_len = 0;
    for (i = 0; i < PIPE_SLOTS; i++) {
        p->slots[i].buf = i == 0 ? c->buf : malloc(c->chunk);
        if (!p->slots[i].buf) {
            goto out;
        }
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->filled, NULL);
    pthread_cond_init(&p->emptied, NULL);
    if (pthread_create(&tid, NULL, pipe_reader, p) == 0) {
        r = pipe_write_all(c, p);
        pthread_join(tid, NULL);
    }
    pthread_cond_destroy(&p->emptied);
    pthread_cond_destroy(&p->filled);
    pthread_mutex_destroy(&p->lock);
out:
    for (i = 0; i < PIPE_SLOTS; i++) {
        if (i > 0) {
            free(p->slots[i].buf);
        }
        free(p->slots[i].runs);
    }
    free(p);
    return r;
}

static int
copy_all(struct conv *c)
{
    struct chunk ch = { .buf = c->buf };
    uint64_t off, end, pos;
    int r = 0;

    if (c->o->workers > 1 && !c->o->compress && !c->w) {
        return copy_parallel(c);
    }
    if (!(c->o->compress && !c->w)) {
        r = copy_pipelined(c);
        if (r <= 0) {
            return r;
        }
        r = 0;
    }
    for (off = 0; off < c->size && r == 0; off = end) {
        end = ops_min(c->size, ops_align_down(off, c->chunk) + c->chunk);
        if (c->o->compress && !c->w) {
            for (pos = off; pos < end && r == 0; pos += c->cluster) {
                r = copy_cluster_compressed(c, pos,
                                            ops_min(end, pos + c->cluster));
            }
        } else {
            r = copy_plain(c, &ch, off, end);
        }
        if (r == 0) {
            ops_progress_add(&c->progress, end - off);
        }
    }
    free(ch.runs);
    return r;
}

/* Refuse a target that is the source or one of its backing files: it
 * would be truncated before the copy starts. */
static int
check_not_source(struct conv *c)
{
    const struct vmc_image *layer;
    struct stat dst_st, st;

    if (stat(c->dst_name, &dst_st) < 0) {
        return 0;
    }
    for (layer = c->src; layer; layer = vmc_image_backing(layer)) {
        if (stat(vmc_image_filename(layer), &st) == 0 &&
            st.st_dev == dst_st.st_dev && st.st_ino == dst_st.st_ino) {
            return vmc_error_set(c->err, -EINVAL, "target '%s' is the source "
                                 "image or one of its backing files",
                                 c->dst_name);
        }
    }
    return 0;
}

/* What a sequential writer's target cannot do. */
static int
check_writer_opts(struct conv *c)
{
    const struct vmc_convert_opts *o = c->o;
    const char *name = vmc_format_name(o->create.format);

    if (o->no_create) {
        return vmc_error_set(c->err, -ENOTSUP, "-n (an existing target) "
                             "needs a qcow2 or raw target, not '%s'", name);
    }
    if (o->backing_file) {
        return vmc_error_set(c->err, -ENOTSUP, "backing file not supported "
                             "for file format '%s'", name);
    }
    if (o->compress && (o->create.format != VMC_FMT_VMDK ||
                        strcmp(o->writer.subformat, "streamOptimized"))) {
        return vmc_error_set(c->err, -ENOTSUP, "compression not supported "
                             "for file format '%s'%s", name,
                             o->create.format == VMC_FMT_VMDK ? " (use -o "
                             "subformat=streamOptimized)" : "");
    }
    return 0;
}

static int
check_opts(struct conv *c)
{
    const struct vmc_convert_opts *o = c->o;

    if (o->sparse_size % OPS_SECTOR) {
        return vmc_error_set(c->err, -EINVAL, "sparse size %llu is not a "
                             "multiple of 512",
                             (unsigned long long)o->sparse_size);
    }
    if (o->backing_file && o->no_create) {
        return vmc_error_set(c->err, -EINVAL, "a backing file cannot be "
                             "set on an existing target");
    }
    if (vmc_format_has_writer(o->create.format)) {
        return check_writer_opts(c);
    }
    if (o->no_create) {
        return 0;
    }
    if (o->create.format == VMC_FMT_RAW && o->backing_file) {
        return vmc_error_set(c->err, -ENOTSUP, "backing file not supported "
                             "for file format 'raw'");
    }
    if (o->create.format == VMC_FMT_RAW && o->compress) {
        return vmc_error_set(c->err, -ENOTSUP, "compression not supported "
                             "for file format 'raw'");
    }
    if (o->backing_file &&
        vmc_format_from_name(o->backing_format) == VMC_FMT_AUTO) {
        return vmc_error_set(c->err, -EINVAL, "use of backing file requires "
                             "explicit backing format");
    }
    return 0;
}

/* Create (unless -n) and open the target read-write. */
static int
open_target(struct conv *c)
{
    const struct vmc_convert_opts *o = c->o;
    struct vmc_create_opts co = o->create;
    struct vmc_open_opts oo = {
        .format = o->create.format,
        .flags = VMC_OPEN_RDWR,
        .backing_format = o->target_backing_format,
    };
    struct vmc_writer_opts wo = o->writer;
    int r;

    if (!o->no_create && vmc_format_has_writer(o->create.format)) {
        wo.format = o->create.format;
        return vmc_writer_new(&c->w, c->dst_name, c->size, &wo, c->err);
    }
    if (!o->no_create) {
        /* A qcow2 target gets whole sectors, as QEMU creates them (QEMU
         * reads a qcow2 size rounded down to a sector, which would hide
         * the tail); a raw target keeps the exact size. */
        co.size = c->size;
        if (co.format == VMC_FMT_QCOW2) {
            co.size = ops_align_up(c->size, OPS_SECTOR);
        }
        co.backing_file = o->backing_file;
        co.backing_format = o->backing_file ?
                            vmc_format_from_name(o->backing_format) :
                            VMC_FMT_AUTO;
        co.backing_unsafe = false;
        r = vmc_image_create(c->dst_name, &co, c->err);
        if (r < 0) {
            return r;
        }
    }
    r = vmc_image_open(&c->dst, c->dst_name, &oo, c->err);
    if (r < 0) {
        return r;
    }
    if (o->no_create && vmc_image_size(c->dst) < c->size) {
        return vmc_error_set(c->err, -EINVAL, "output file '%s' is smaller "
                             "than input file", c->dst_name);
    }
    return 0;
}

static int
setup_buffers(struct conv *c)
{
    /* a writer allocates its own blocks: zero runs count from 4 KiB */
    uint64_t cs = c->w ? 4096 : vmc_image_cluster_size(c->dst);

    if (!ops_is_power_of_2(cs) || cs > 64u * 1024 * 1024) {
        cs = 4096;
    }
    c->cluster = cs;
    c->chunk = ops_max(cs, OPS_BUF_SIZE);
    c->buf = malloc(c->chunk);
    if (c->o->sparse_size == 0) {
        c->zbuf = calloc(1, c->chunk);
    }
    if (!c->buf || (c->o->sparse_size == 0 && !c->zbuf)) {
        return vmc_error_set(c->err, -ENOMEM, "out of memory");
    }
    return 0;
}

int
vmc_convert(struct vmc_image *src, const char *dst,
            const struct vmc_convert_opts *o, struct vmc_error *err)
{
    struct conv c = {
        .src = src,
        .o = o,
        .err = err,
        .dst_name = dst,
        .size = vmc_image_size(src),
        .top_only = o->backing_file != NULL,
        .fresh_zero = !o->no_create && !o->backing_file,
    };
    int r, r2;

    r = check_opts(&c);
    if (r == 0) {
        r = check_not_source(&c);
    }
    if (r == 0) {
        r = open_target(&c);
    }
    if (r == 0) {
        r = setup_buffers(&c);
    }
    if (r < 0) {
        goto out;
    }
    ops_progress_init(&c.progress, o->progress, o->opaque, c.size);
    r = copy_all(&c);
    if (r < 0) {
        goto out;
    }
    if (c.w) {
        r = vmc_writer_finish(c.w, err);
        c.w = NULL;
    } else {
        r = vmc_image_flush(c.dst);
        if (r < 0) {
            vmc_error_set(err, r, "cannot flush '%s': %s", dst,
                          strerror(-r));
        }
    }
    if (r < 0) {
        goto out;
    }
    ops_progress_finish(&c.progress);
out:
    vmc_writer_free(c.w);
    r2 = vmc_image_close(c.dst);
    if (r == 0 && r2 < 0) {
        r = vmc_error_set(err, r2, "cannot close '%s': %s", dst,
                          strerror(-r2));
    }
    free(c.buf);
    free(c.zbuf);
    return r;
}
