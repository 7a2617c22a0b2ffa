/*
 * transmit.c - the transmission phase: read → validate → dispatch → reply.
 *
 * The connection thread reads each 28-byte request, validates it against
 * what this connection negotiated (validate(), in the order of NBD
 * proto.md "Request message" and "Error values"), reads a WRITE payload
 * (always, even for a request that is refused, so the stream stays in
 * sync) and queues it; a worker executes it (nbd_request_serve()).
 *
 * Replies: simple replies without structured replies (SR); with SR a
 * READ is answered with OFFSET_DATA / OFFSET_HOLE chunks (holes found by
 * block status are not sent as bytes; with DF one data chunk) and
 * BLOCK_STATUS with one chunk per selected context; errors of READ and
 * BLOCK_STATUS are ERROR chunks, other replies stay simple. All data is
 * read before the first byte of a reply is sent, so a reply is never
 * cut by an I/O error. Every error reply is also one line of the
 * server's log naming the command and why (log_error_reply()).
 *
 * Semantics on a copy-on-write chain: TRIM and WRITE_ZEROES always make
 * the range read as zeros (the engine never lets backing data show
 * through); TRIM is a write-zeroes that may free clusters.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <time.h>

#include "nbd-internal.h"
#include "vmclone-ops.h"

/* Per-connection bounds on work held in memory. */
#define NBD_MAX_INFLIGHT        64
#define NBD_MAX_INFLIGHT_BYTES  (64u << 20)
/* A sparse READ reply has at most this many chunks... */
#define READ_MAX_SEGMENTS       NBD_READ_MAX_SEGMENTS
/* ...and does not send holes smaller than this as holes. */
#define READ_MIN_HOLE           4096
/* CACHE prefetches at most this much per request. */
#define CACHE_MAX               (64u << 20)
/* A connection whose client has not read any of its reply for this long
 * gets no new request read (back-pressure; see also nbd_budget_take()). */
#define STALL_PAUSE_MS          100

uint32_t
nbd_errno(int err, uint16_t cmd_flags)
{
    switch (-err) {
    case 0: return 0;
    case EPERM:
    case EROFS:
        return NBD_EPERM;
    case EIO:
    case EUCLEAN:
    case ENXIO:
    case EBADMSG:
    case ESTALE:
    case ENODATA:
    case ELOOP:
        return NBD_EIO;
    case ENOMEM:
        return NBD_ENOMEM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return (cmd_flags & NBD_CMD_FLAG_DF) ? NBD_EOVERFLOW : NBD_EINVAL;
    case ENOTSUP:
        return (cmd_flags & NBD_CMD_FLAG_FAST_ZERO) ? NBD_ENOTSUP
                                                    : NBD_EINVAL;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EINVAL;
    }
}

/* ---------------------------------------------------------------- replies */

static int
send_simple(struct nbd_conn *c, uint64_t cookie, uint32_t error,
            void *data, size_t len)
{
    uint8_t h[NBD_SIMPLE_REPLY_SIZE];
    struct iovec iov[2] = {
        { .iov_base = h, .iov_len = sizeof(h) },
        { .iov_base = data, .iov_len = len },
    };

    be32_store(h, NBD_SIMPLE_REPLY_MAGIC);
    be32_store(h + 4, error);
    be64_store(h + 8, cookie);
    return nbd_conn_send(c, iov, len ? 2 : 1);
}

void
nbd_chunk_header(uint8_t *h, uint16_t flags, uint16_t type, uint64_t cookie,
             uint32_t len)
{
    be32_store(h, NBD_STRUCTURED_REPLY_MAGIC);
    be16_store(h + 4, flags);
    be16_store(h + 6, type);
    be64_store(h + 8, cookie);
    be32_store(h + 16, len);
}

size_t
nbd_read_chunk_header(uint8_t *h, const struct nbd_read_seg *seg, bool last,
                      uint64_t cookie)
{
    uint16_t fl = last ? NBD_REPLY_FLAG_DONE : 0;

    be64_store(h + NBD_CHUNK_HEADER_SIZE, seg->off);
    if (seg->hole) {
        nbd_chunk_header(h, fl, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, 12);
        be32_store(h + NBD_CHUNK_HEADER_SIZE + 8, (uint32_t)seg->len);
        return NBD_CHUNK_HEADER_SIZE + 12;
    }
    nbd_chunk_header(h, fl, NBD_REPLY_TYPE_OFFSET_DATA, cookie,
                     (uint32_t)(8 + seg->len));
    return NBD_CHUNK_HEADER_SIZE + 8;
}

/* An error for @type, in the form the client expects for it. */
static int
send_error(struct nbd_conn *c, uint16_t type, uint64_t cookie,
           uint32_t error)
{
    uint8_t b[NBD_CHUNK_HEADER_SIZE + 6];
    struct iovec iov = { .iov_base = b, .iov_len = sizeof(b) };

    if (!c->sr || (type != NBD_CMD_READ && type != NBD_CMD_BLOCK_STATUS)) {
        return send_simple(c, cookie, error, NULL, 0);
    }
    nbd_chunk_header(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, 6);
    be32_store(b + NBD_CHUNK_HEADER_SIZE, error);
    be16_store(b + NBD_CHUNK_HEADER_SIZE + 4, 0);   /* no message */
    return nbd_conn_send(c, &iov, 1);
}

/*
 * Every error reply of the transmission phase is one line of the server's
 * log naming the command, its range, the NBD error and @why: a request
 * refused by validate() ("refused"), or one the image could not serve
 * ("failed", with the engine's errno as the reason).
 */
static void
log_error_reply(struct nbd_conn *c, const struct nbd_req *req,
                const char *verdict, uint32_t error, const char *why)
{
    nbd_log(c->srv, "connection %u: %s (%u) at %" PRIu64 "+%" PRIu32
            " %s: %s: %s", c->id, nbd_cmd_name(req->type), req->type,
            req->offset, req->len, verdict, nbd_err_name(error), why);
}

/* Refuses @req with NBD error @error because of @why. */
static int
refuse(struct nbd_conn *c, const struct nbd_req *req, uint32_t error,
       const char *why)
{
    log_error_reply(c, req, "refused", error, why);
    return send_error(c, req->type, req->cookie, error);
}

/* Answers @req with the NBD error for the engine's failure @r (< 0). */
static int
send_failure(struct nbd_conn *c, const struct nbd_req *req, int r)
{
    uint32_t error = nbd_errno(r, req->flags);
    char buf[128];

    log_error_reply(c, req, "failed", error, strerror_r(-r, buf, sizeof(buf)));
    return send_error(c, req->type, req->cookie, error);
}

/* ------------------------------------------------------------------- READ */

/* The iovec of a structured READ reply: one chunk per segment of @seg,
 * its header in @hdrs[i], then (for data) its bytes from @buf, which
 * holds the request's range from req->offset on. Returns the count. */
static int
read_reply_iov(struct iovec *iov, uint8_t (*hdrs)[NBD_CHUNK_HEADER_SIZE + 12],
               const struct nbd_read_seg *seg, unsigned nseg, uint8_t *buf,
               const struct nbd_req *req)
{
    unsigned i;
    int iovcnt = 0;

    for (i = 0; i < nseg; i++) {
        iov[iovcnt].iov_base = hdrs[i];
        iov[iovcnt++].iov_len = nbd_read_chunk_header(hdrs[i], &seg[i],
                                                      i == nseg - 1,
                                                      req->cookie);
        if (!seg[i].hole) {
            iov[iovcnt].iov_base = buf + (seg[i].off - req->offset);
            iov[iovcnt++].iov_len = seg[i].len;
        }
    }
    return iovcnt;
}

/* Split [off, off+len) into data and hole segments by block status. */
static int
read_segments(struct vmc_image *img, uint64_t off, uint64_t len,
              struct nbd_read_seg *seg, unsigned *nseg)
{
    uint64_t pos = off, end = off + len;
    unsigned n = 0;

    while (pos < end) {
        struct vmc_block_status bs;
        bool hole;
        uint64_t run;
        int r;

        if (n == READ_MAX_SEGMENTS - 1) {
            run = end - pos;
            hole = false;       /* the rest is read as data */
        } else {
            r = vmc_image_block_status(img, pos, end - pos, true, &bs);
            if (r < 0) {
                return r;
            }
            run = MIN(bs.length, end - pos);
            hole = (bs.flags & VMC_BS_ZERO) != 0;
        }
        if (n && seg[n - 1].hole == hole) {
            seg[n - 1].len += run;
        } else {
            seg[n].off = pos;
            seg[n].len = run;
            seg[n].hole = hole;
            n++;
        }
        pos += run;
    }
    /* small holes travel as data: fewer chunks, same bytes */
    unsigned i, m = 0;
    for (i = 0; i < n; i++) {
        if (seg[i].hole && seg[i].len < READ_MIN_HOLE) {
            seg[i].hole = false;
        }
        if (m && seg[m - 1].hole == seg[i].hole) {
            seg[m - 1].len += seg[i].len;
        } else {
            seg[m++] = seg[i];
        }
    }
    *nseg = m;
    return 0;
}

static void
serve_read(struct nbd_conn *c, struct nbd_req *req)
{
    struct vmc_image *img = c->exp->img;
    struct nbd_read_seg seg[READ_MAX_SEGMENTS];
    uint8_t hdrs[READ_MAX_SEGMENTS][NBD_CHUNK_HEADER_SIZE + 12];
    struct iovec iov[2 * READ_MAX_SEGMENTS];
    uint8_t *buf = NULL;
    unsigned nseg = 1, i;
    int r = 0;

    seg[0].off = req->offset;
    seg[0].len = req->len;
    seg[0].hole = false;
    if (c->sr && !(req->flags & NBD_CMD_FLAG_DF)) {
        r = read_segments(img, req->offset, req->len, seg, &nseg);
    }
    /* data of read-only layers goes from the page cache to the socket
     * without a copy (zerocopy.c); anything else is read below */
    if (r == 0 && c->sr && req->len >= ZC_MIN_BYTES && !c->exp->sealed &&
        c->io->send_spliced && nbd_conn_in_worker() &&
        nbd_read_zero_copy(c, req, seg, nseg) == 0) {
        return;
    }
    for (i = 0; r == 0 && i < nseg; i++) {
        if (seg[i].hole) {
            continue;
        }
        if (!buf) {
            buf = malloc(req->len);
            if (!buf) {
                r = -ENOMEM;
                break;
            }
        }
        r = vmc_image_read(img, buf + (seg[i].off - req->offset),
                           seg[i].off, seg[i].len);
    }
    if (r < 0) {
        send_failure(c, req, r);
        goto out;
    }
    if (!c->sr) {
        send_simple(c, req->cookie, 0, buf, req->len);
        goto out;
    }
    nbd_conn_send(c, iov, read_reply_iov(iov, hdrs, seg, nseg, buf, req));
out:
    free(buf);
}

/* Is @fd on tmpfs/ramfs (reads never wait for a device; such files do
 * not take RWF_NOWAIT)? Remembered per connection for a few files. */
static bool
in_memory_fs(struct nbd_conn *c, int fd)
{
    struct statfs st;
    unsigned i;
    bool mem;

    for (i = 0; i < NBD_FS_CACHE; i++) {
        if (c->fs_cache[i].fd == fd + 1) {
            return c->fs_cache[i].mem;
        }
    }
    mem = fstatfs(fd, &st) == 0 &&
          (st.f_type == TMPFS_MAGIC || st.f_type == RAMFS_MAGIC);
    c->fs_cache[c->fs_next].fd = fd + 1;
    c->fs_cache[c->fs_next].mem = mem;
    c->fs_next = (c->fs_next + 1) % NBD_FS_CACHE;
    return mem;
}

/*
 * Small READs served by the connection thread itself, without a hand-off
 * to a worker (the thread switches cost more than the read). Only when
 * nothing can block it: every data byte is plain data of a read-only
 * layer (as in zerocopy.c), already in the page cache (preadv2
 * RWF_NOWAIT), and the reply goes out with one non-blocking write while
 * no worker holds the write lock. Otherwise the request is queued as
 * usual. Returns 0 if the request was answered (or the connection died),
 * 1 if it must be queued.
 */
static int
read_inline(struct nbd_conn *c, const struct nbd_req *req)
{
    struct vmc_image *img = c->exp->img;
    struct nbd_read_seg seg[READ_MAX_SEGMENTS];
    uint8_t hdrs[READ_MAX_SEGMENTS][NBD_CHUNK_HEADER_SIZE + 12];
    uint8_t sh[NBD_SIMPLE_REPLY_SIZE];
    struct iovec iov[2 * READ_MAX_SEGMENTS];
    unsigned nseg = 1, i, j;
    int iovcnt = 0, r;

    if (req->len > NBD_INLINE_MAX || c->exp->sealed ||
        !c->io->try_writev) {
        return 1;
    }
    if (!c->inline_buf && !(c->inline_buf = malloc(NBD_INLINE_MAX))) {
        return 1;
    }
    seg[0].off = req->offset;
    seg[0].len = req->len;
    seg[0].hole = false;
    if (c->sr && !(req->flags & NBD_CMD_FLAG_DF) &&
        read_segments(img, req->offset, req->len, seg, &nseg) < 0) {
        return 1;
    }
    for (i = 0; i < nseg; i++) {
        struct nbd_zc_piece pc[8];
        uint8_t *dst = c->inline_buf + (seg[i].off - req->offset);
        unsigned npc = 0;

        if (seg[i].hole) {
            continue;
        }
        if (!nbd_zc_collect(img, seg[i].off, seg[i].len, pc, &npc, 8)) {
            return 1;
        }
        for (j = 0; j < npc; j++) {
            struct iovec d = { .iov_base = dst, .iov_len = pc[j].len };
            ssize_t n = in_memory_fs(c, pc[j].fd)
                        ? preadv(pc[j].fd, &d, 1, (off_t)pc[j].host)
                        : preadv2(pc[j].fd, &d, 1, (off_t)pc[j].host,
                                  RWF_NOWAIT);

            if (n < 0 || (uint64_t)n != pc[j].len) {
                return 1;       /* not cached, short (EOF), or an error */
            }
            dst += pc[j].len;
        }
    }
    if (!c->sr) {
        be32_store(sh, NBD_SIMPLE_REPLY_MAGIC);
        be32_store(sh + 4, 0);
        be64_store(sh + 8, req->cookie);
        iov[0].iov_base = sh;
        iov[0].iov_len = sizeof(sh);
        iov[1].iov_base = c->inline_buf;
        iov[1].iov_len = req->len;
        iovcnt = 2;
    } else {
        iovcnt = read_reply_iov(iov, hdrs, seg, nseg, c->inline_buf, req);
    }
    r = nbd_conn_try_send(c, iov, iovcnt);
    return r == 1 ? 1 : 0;
}

/* --------------------------------------------------------- BLOCK_STATUS */

struct extents {
    uint8_t *buf;            /* 4-byte context id, then 8-byte extents */
    uint32_t n;
    uint32_t cap;
};

static int
extent_add(struct extents *e, uint32_t len, uint32_t flags)
{
    uint8_t *last = e->buf ? e->buf + 4 + 8 * (e->n - 1) : NULL;

    if (e->n && be32_load(last + 4) == flags) {
        be32_store(last, be32_load(last) + len);
        return 0;
    }
    if (e->n == e->cap) {
        uint32_t cap = e->cap ? e->cap * 2 : 16;
        uint8_t *b = realloc(e->buf, 4 + 8 * (size_t)cap);

        if (!b) {
            return -ENOMEM;
        }
        e->buf = b;
        e->cap = cap;
    }
    be32_store(e->buf + 4 + 8 * e->n, len);
    be32_store(e->buf + 4 + 8 * e->n + 4, flags);
    e->n++;
    return 0;
}

/* Appends the BLOCK_STATUS chunk of context @id (header in @h, then the
 * context id and the extents of @e) to @iov; returns the new count. */
static int
add_status_chunk(struct iovec *iov, int iovcnt, uint8_t *h,
                 struct extents *e, uint32_t id, bool last, uint64_t cookie)
{
    be32_store(e->buf, id);
    nbd_chunk_header(h, last ? NBD_REPLY_FLAG_DONE : 0,
                     NBD_REPLY_TYPE_BLOCK_STATUS, cookie, 4 + 8 * e->n);
    iov[iovcnt].iov_base = h;
    iov[iovcnt++].iov_len = NBD_CHUNK_HEADER_SIZE;
    iov[iovcnt].iov_base = e->buf;
    iov[iovcnt++].iov_len = 4 + 8 * (size_t)e->n;
    return iovcnt;
}

static void
serve_block_status(struct nbd_conn *c, struct nbd_req *req)
{
    struct extents base = { 0 }, depth = { 0 };
    uint8_t h[2][NBD_CHUNK_HEADER_SIZE];
    struct iovec iov[4];
    uint64_t pos = req->offset, end = req->offset + req->len;
    int iovcnt = 0, r = 0;

    while (pos < end) {
        struct vmc_map_extent e;
        uint32_t run;

        r = vmc_map_status(c->exp->img, pos, end - pos, &e);
        if (r < 0) {
            break;
        }
        run = (uint32_t)MIN(e.length, end - pos);
        if (c->meta_base) {
            r = extent_add(&base, run, (e.data ? 0 : NBD_STATE_HOLE) |
                                       (e.zero ? NBD_STATE_ZERO : 0));
        }
        if (!r && c->meta_depth) {
            r = extent_add(&depth, run, e.present ? e.depth + 1 : 0);
        }
        if (r < 0) {
            break;
        }
        pos += run;
        if ((req->flags & NBD_CMD_FLAG_REQ_ONE) ||
            base.n >= NBD_MAX_EXTENTS || depth.n >= NBD_MAX_EXTENTS) {
            break;
        }
    }
    if (r < 0) {
        send_failure(c, req, r);
        goto out;
    }
    if (c->meta_base) {
        iovcnt = add_status_chunk(iov, iovcnt, h[0], &base,
                                  NBD_CTX_BASE_ALLOCATION, !c->meta_depth,
                                  req->cookie);
    }
    if (c->meta_depth) {
        iovcnt = add_status_chunk(iov, iovcnt, h[1], &depth,
                                  NBD_CTX_ALLOCATION_DEPTH, true,
                                  req->cookie);
    }
    nbd_conn_send(c, iov, iovcnt);
out:
    free(base.buf);
    free(depth.buf);
}

/* ------------------------------------------------------------ zeroing */

/* Does [off, off+len) read as zeros already? */
static bool
range_is_zero(struct vmc_image *img, uint64_t off, uint64_t len)
{
    while (len) {
        struct vmc_block_status bs;

        if (vmc_image_block_status(img, off, len, true, &bs) < 0 ||
            !(bs.flags & VMC_BS_ZERO)) {
            return false;
        }
        bs.length = MIN(bs.length, len);
        off += bs.length;
        len -= bs.length;
    }
    return true;
}

/*
 * FAST_ZERO (proto.md NBD_CMD_FLAG_FAST_ZERO): only whole clusters are
 * zeroed by metadata alone; a partial cluster at either end would need a
 * data write, unless it reads as zeros already. Fail with ENOTSUP before
 * changing anything.
 */
static int
fast_zero_ok(struct nbd_export *exp, uint64_t off, uint64_t len)
{
    uint64_t cs = exp->cluster, end = off + len;
    uint64_t head_end = MIN(align_up(off, cs), end);
    uint64_t tail = MAX(align_down(end, cs), head_end);

    if (!exp->fast_zero) {
        return -ENOTSUP;
    }
    if (off < head_end && (off % cs) &&
        !range_is_zero(exp->img, off, head_end - off)) {
        return -ENOTSUP;
    }
    if (tail < end && end != exp->size &&
        !range_is_zero(exp->img, tail, end - tail)) {
        return -ENOTSUP;
    }
    return 0;
}

/* ----------------------------------------------------------------- serve */

static uint64_t
req_bytes(const struct nbd_req *req)
{
    return req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE
           ? req->len : 0;
}

static void
release(struct nbd_conn *c, uint64_t bytes)
{
    struct vmc_nbd_server *srv = c->srv;

    atomic_store(&c->active_ms, nbd_now_ms());
    pthread_mutex_lock(&c->qlock);
    c->queued--;
    c->queued_bytes -= bytes;
    pthread_cond_signal(&c->qspace);
    pthread_mutex_unlock(&c->qlock);
    nbd_budget_put(srv, bytes);
}

void
nbd_request_serve(struct nbd_conn *c, struct nbd_req *req)
{
    struct vmc_image *img = c->exp->img;
    unsigned wflags = (req->flags & NBD_CMD_FLAG_FUA) ? VMC_WRITE_FUA : 0;
    uint64_t bytes = req_bytes(req);
    int r = 0;

    switch (req->type) {
    case NBD_CMD_READ:
        serve_read(c, req);
        goto done;
    case NBD_CMD_BLOCK_STATUS:
        serve_block_status(c, req);
        goto done;
    case NBD_CMD_WRITE:
        r = vmc_image_write(img, req->payload, req->offset, req->len, wflags);
        break;
    case NBD_CMD_FLUSH:
        r = vmc_image_flush(img);
        break;
    case NBD_CMD_TRIM:
        /* reads back as zeros, never as backing data */
        r = vmc_image_write_zeroes(img, req->offset, req->len,
                                   wflags | VMC_WRITE_MAY_UNMAP);
        break;
    case NBD_CMD_WRITE_ZEROES:
        if (req->flags & NBD_CMD_FLAG_FAST_ZERO) {
            r = fast_zero_ok(c->exp, req->offset, req->len);
        }
        if (!r) {
            r = vmc_image_write_zeroes(img, req->offset, req->len,
                                       wflags |
                                       ((req->flags & NBD_CMD_FLAG_NO_HOLE)
                                        ? 0 : VMC_WRITE_MAY_UNMAP));
        }
        break;
    case NBD_CMD_CACHE: {
        /* prefetch into the host page cache; never changes data */
        uint64_t pos = req->offset, end = req->offset +
                                          MIN(req->len, CACHE_MAX);
        uint8_t *tmp = malloc(1 << 20);

        while (tmp && pos < end && r == 0) {
            size_t n = (size_t)MIN(end - pos, (uint64_t)(1 << 20));

            r = vmc_image_read(img, tmp, pos, n);
            pos += n;
        }
        free(tmp);
        break;
    }
    default:
        r = -EINVAL;            /* validate() lets no other type through */
        break;
    }
    if (r) {
        send_failure(c, req, r);
    } else {
        send_simple(c, req->cookie, 0, NULL, 0);
    }
done:
    free(req->payload);
    free(req);
    release(c, bytes);
}

/* ------------------------------------------------------------- validate */

/* NBD error for a request, 0 if it may be executed; @why says what is
 * wrong with it (proto.md "Request message", "Error values"). */
static uint32_t
validate(struct nbd_conn *c, const struct nbd_req *req, const char **why)
{
    const struct nbd_export *exp = c->exp;
    uint16_t allowed = 0;
    bool writes = false;

    switch (req->type) {
    case NBD_CMD_READ:
        allowed = NBD_CMD_FLAG_DF;
        break;
    case NBD_CMD_WRITE:
    case NBD_CMD_TRIM:
        writes = true;
        break;
    case NBD_CMD_WRITE_ZEROES:
        writes = true;
        allowed = NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
        break;
    case NBD_CMD_FLUSH:
    case NBD_CMD_CACHE:
        break;
    case NBD_CMD_BLOCK_STATUS:
        allowed = NBD_CMD_FLAG_REQ_ONE;
        break;
    default:
        *why = "command not supported";     /* incl. RESIZE */
        return NBD_EINVAL;
    }
    if (writes && exp->readonly) {
        *why = "the export is read-only";
        return NBD_EPERM;
    }
    /* flags: known, on the right command, and advertised here */
    if (c->eflags & NBD_FLAG_SEND_FUA) {
        allowed |= NBD_CMD_FLAG_FUA;
    }
    if (!(c->eflags & NBD_FLAG_SEND_DF)) {
        allowed &= (uint16_t)~NBD_CMD_FLAG_DF;
    }
    if (!(c->eflags & NBD_FLAG_SEND_FAST_ZERO)) {
        allowed &= (uint16_t)~NBD_CMD_FLAG_FAST_ZERO;
    }
    if (req->flags & ~allowed) {
        *why = "flags not allowed on this command or not negotiated";
        return NBD_EINVAL;
    }
    if (req->type == NBD_CMD_FLUSH) {
        if (req->offset || req->len) {
            *why = "offset and length of a flush must be 0";
            return NBD_EINVAL;
        }
        return 0;
    }
    /* overflow-safe range check */
    if (req->len == 0 || req->offset > exp->size ||
        req->len > exp->size - req->offset) {
        *why = req->len ? "range beyond the end of the export"
                        : "zero length";
        return req->type == NBD_CMD_WRITE ||
               req->type == NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL;
    }
    if ((req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) &&
        req->len > NBD_MAX_PAYLOAD) {
        *why = "payload larger than 32 MiB";
        return NBD_EINVAL;
    }
    if (req->type == NBD_CMD_BLOCK_STATUS &&
        (!c->sr || !(c->meta_base || c->meta_depth))) {
        *why = "no metadata context was negotiated";
        return NBD_EINVAL;
    }
    return 0;
}

/* Read and drop @len payload bytes. */
static int
skip_payload(struct nbd_conn *c, uint64_t len)
{
    uint8_t tmp[16384];
    int r = 0;

    while (len && r == 0) {
        size_t n = (size_t)MIN(len, sizeof(tmp));

        r = c->io->read(c->io, tmp, n);
        len -= n;
    }
    return r;
}

/* Wait for room for one more request holding @bytes, in this
 * connection's bounds and then in the server's budget; -ESHUTDOWN if the
 * connection ends meanwhile (nothing is then held). */
static int
reserve(struct nbd_conn *c, uint64_t bytes)
{
    bool fresh;

    pthread_mutex_lock(&c->qlock);
    while (c->queued && (c->queued >= NBD_MAX_INFLIGHT ||
                         c->queued_bytes + bytes > NBD_MAX_INFLIGHT_BYTES)) {
        pthread_cond_wait(&c->qspace, &c->qlock);
    }
    fresh = c->queued_bytes == 0;
    c->queued++;
    c->queued_bytes += bytes;
    pthread_mutex_unlock(&c->qlock);
    if (nbd_budget_take(c, bytes, fresh) < 0) {
        pthread_mutex_lock(&c->qlock);
        c->queued--;
        c->queued_bytes -= bytes;
        pthread_mutex_unlock(&c->qlock);
        return -ESHUTDOWN;
    }
    return 0;
}

/*
 * Wait for the first byte of the next request. No request is read while
 * the client leaves a reply unread (back-pressure: its requests cannot
 * make the server hold more). -ETIMEDOUT when the client stayed idle
 * (nothing in flight) for idle_ms, another -errno if the connection
 * ended.
 */
static int
wait_request(struct nbd_conn *c)
{
    unsigned idle_ms = c->srv->idle_ms;

    if (!c->io->wait_readable) {
        return 0;
    }
    for (;;) {
        int64_t now = nbd_now_ms(), stall;
        unsigned queued;
        int r;

        if (atomic_load(&c->wfailed) || atomic_load(&c->srv->stopping)) {
            return -EPIPE;
        }
        stall = atomic_load(&c->io->stall_since);
        if (stall && now - stall >= STALL_PAUSE_MS) {
            struct timespec ts = { .tv_nsec = 20 * 1000000L };

            nanosleep(&ts, NULL);
            continue;
        }
        r = c->io->wait_readable(c->io, 100);
        if (r != 0) {
            return r < 0 ? r : 0;
        }
        pthread_mutex_lock(&c->qlock);
        queued = c->queued;
        pthread_mutex_unlock(&c->qlock);
        if (idle_ms && !queued &&
            nbd_now_ms() - atomic_load(&c->active_ms) >= (int64_t)idle_ms) {
            return -ETIMEDOUT;
        }
    }
}

static void
dispatch(struct nbd_conn *c, struct nbd_req *req)
{
    if (!c->nworkers) {
        nbd_request_serve(c, req);
        return;
    }
    pthread_mutex_lock(&c->qlock);
    if (c->qtail) {
        c->qtail->next = req;
    } else {
        c->qhead = req;
    }
    c->qtail = req;
    pthread_cond_signal(&c->qcond);
    pthread_mutex_unlock(&c->qlock);
}

void
nbd_transmit(struct nbd_conn *c)
{
    uint8_t h[NBD_REQUEST_SIZE];

    c->eflags = nbd_export_flags(c->exp, c->sr);
    while (!atomic_load(&c->wfailed)) {
        struct nbd_req hdr, *req;
        const char *why = NULL;
        uint32_t error;
        int r;

        r = wait_request(c);
        if (r == -ETIMEDOUT) {
            nbd_log(c->srv, "connection %u: idle for %u ms, dropped",
                    c->id, c->srv->idle_ms);
            break;
        }
        /* the whole request (header and payload) must arrive in time */
        c->io->rdeadline_ms = nbd_now_ms() + (int64_t)c->srv->request_ms;
        r = r < 0 ? r : c->io->read(c->io, h, sizeof(h));
        if (r == -ETIMEDOUT) {
            nbd_log(c->srv, "connection %u: request not received whole "
                    "in %u ms, dropped", c->id, c->srv->request_ms);
        }
        if (r < 0) {
            break;              /* EOF, reset, or shut down by stop() */
        }
        atomic_store(&c->active_ms, nbd_now_ms());
        if (be32_load(h) != NBD_REQUEST_MAGIC) {
            nbd_log(c->srv, "connection %u: bad request magic 0x%08x",
                    c->id, be32_load(h));
            break;              /* cannot resynchronise */
        }
        memset(&hdr, 0, sizeof(hdr));
        hdr.flags = be16_load(h + 4);
        hdr.type = be16_load(h + 6);
        hdr.cookie = be64_load(h + 8);
        hdr.offset = be64_load(h + 16);
        hdr.len = be32_load(h + 24);
        if (hdr.type == NBD_CMD_DISC) {
            break;              /* queued requests are still answered */
        }
        error = validate(c, &hdr, &why);
        if (hdr.type == NBD_CMD_WRITE && error) {
            /* keep the stream in sync: the payload follows regardless,
             * and the reply waits until it has been received; a length
             * far beyond any sane payload ends the session */
            if (hdr.len > 2 * (uint64_t)NBD_MAX_PAYLOAD) {
                refuse(c, &hdr, error, "payload too large to skip; closing");
                break;
            }
            if (skip_payload(c, hdr.len) < 0) {
                break;
            }
            refuse(c, &hdr, error, why);
            continue;
        }
        if (error) {
            refuse(c, &hdr, error, why);
            continue;
        }
        if (hdr.type == NBD_CMD_READ && read_inline(c, &hdr) == 0) {
            continue;
        }
        if (reserve(c, req_bytes(&hdr)) < 0) {
            break;
        }
        /* waiting for room is the server's time, not the client's */
        c->io->rdeadline_ms = nbd_now_ms() + (int64_t)c->srv->request_ms;
        req = malloc(sizeof(*req));
        if (req) {
            *req = hdr;
        }
        if (req && hdr.type == NBD_CMD_WRITE) {
            req->payload = malloc(hdr.len);
            if (!req->payload) {
                free(req);
                req = NULL;
            }
        }
        if (!req) {
            release(c, req_bytes(&hdr));
            if (hdr.type == NBD_CMD_WRITE && skip_payload(c, hdr.len) < 0) {
                break;
            }
            send_failure(c, &hdr, -ENOMEM);
            continue;
        }
        if (hdr.type == NBD_CMD_WRITE &&
            c->io->read(c->io, req->payload, hdr.len) < 0) {
            free(req->payload);
            free(req);
            release(c, req_bytes(&hdr));
            break;              /* disconnected mid-payload */
        }
        dispatch(c, req);
    }
    c->io->rdeadline_ms = 0;
}
