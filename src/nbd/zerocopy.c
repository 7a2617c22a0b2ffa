/*
 * zerocopy.c - READ replies spliced from the page cache to the socket.
 *
 * Profiling `nbdcopy` against the server showed it spending most of its
 * CPU in two copies of every byte: pread() from the page cache into a
 * reply buffer (under the top layer's lock, so one at a time per export),
 * then sendmsg() from that buffer into the socket. For data that sits in
 * a read-only layer at a known host offset, splice(2) moves page
 * references instead: file -> pipe -> socket, no copy on the server.
 *
 * When it is used (everything else takes the copying path in transmit.c):
 *  - the transport can splice (a real socket) and the request is served
 *    by a worker thread (SIGPIPE blocked there);
 *  - structured replies, READ of at least ZC_MIN_BYTES of data;
 *  - no layer of the export's chain is sealed (sealed reads verify
 *    digests in the engine);
 *  - every data byte of the reply is, by whole-chain block status, plain
 *    (uncompressed, not zero) data of a layer this process has open
 *    read-only: such a layer never changes while it is open (the engine's
 *    OFD locks refuse writers in any process), so its host clusters are
 *    not reused under us and no engine lock is needed to read them;
 *  - all of it fits into one pooled pipe.
 * The whole payload is spliced into the pipe before the first byte of the
 * reply is sent, so as in the copying path a read error (or a short read
 * at the end of a truncated file) never cuts a reply: the pipe is thrown
 * away and the request is served again by the copying path, which gives
 * the engine's own answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "nbd-internal.h"

/* Pipes kept per server (each is two descriptors). */
#define ZC_POOL_MAX   32
/* Wanted pipe capacity; the kernel may give less (pipe-max-size). */
#define ZC_PIPE_BYTES (1u << 20)

struct nbd_pipe {
    int rd;
    int wr;
    size_t cap;
    struct nbd_pipe *next;
};

void
nbd_pipe_pool_init(struct vmc_nbd_server *srv)
{
    pthread_mutex_init(&srv->pipe_lock, NULL);
    srv->pipe_free = NULL;
    srv->npipes = 0;
}

static void
pipe_close(struct nbd_pipe *p)
{
    close(p->rd);
    close(p->wr);
    free(p);
}

void
nbd_pipe_pool_free(struct vmc_nbd_server *srv)
{
    while (srv->pipe_free) {
        struct nbd_pipe *p = srv->pipe_free;

        srv->pipe_free = p->next;
        pipe_close(p);
    }
    pthread_mutex_destroy(&srv->pipe_lock);
}

/* An empty pipe, or NULL (pool exhausted, no descriptors: copy instead). */
struct nbd_pipe *
nbd_pipe_get(struct vmc_nbd_server *srv)
{
    struct nbd_pipe *p;
    int fds[2], sz;

    pthread_mutex_lock(&srv->pipe_lock);
    p = srv->pipe_free;
    if (p) {
        srv->pipe_free = p->next;
    } else if (srv->npipes < ZC_POOL_MAX) {
        srv->npipes++;          /* reserved; undone below on failure */
    } else {
        pthread_mutex_unlock(&srv->pipe_lock);
        return NULL;
    }
    pthread_mutex_unlock(&srv->pipe_lock);
    if (p) {
        return p;
    }
    p = malloc(sizeof(*p));
    if (p && pipe2(fds, O_CLOEXEC) == 0) {
        p->rd = fds[0];
        p->wr = fds[1];
        p->next = NULL;
        if (fcntl(p->wr, F_SETPIPE_SZ, (int)ZC_PIPE_BYTES) < 0) {
            /* keep the default size */
        }
        sz = fcntl(p->wr, F_GETPIPE_SZ);
        p->cap = sz > 0 ? (size_t)sz : 0;
        return p;
    }
    free(p);
    pthread_mutex_lock(&srv->pipe_lock);
    srv->npipes--;
    pthread_mutex_unlock(&srv->pipe_lock);
    return NULL;
}

/* Return @p to the pool; a pipe that may still hold data is closed. */
void
nbd_pipe_put(struct vmc_nbd_server *srv, struct nbd_pipe *p, bool empty)
{
    if (!empty) {
        pipe_close(p);
        pthread_mutex_lock(&srv->pipe_lock);
        srv->npipes--;
        pthread_mutex_unlock(&srv->pipe_lock);
        return;
    }
    pthread_mutex_lock(&srv->pipe_lock);
    p->next = srv->pipe_free;
    srv->pipe_free = p;
    pthread_mutex_unlock(&srv->pipe_lock);
}

bool
nbd_export_chain_sealed(const struct vmc_image *img)
{
    return engine_chain_sealed(img);
}

/* Split [off, off+len) into runs of read-only layer files; false if any
 * byte is not plain data of such a layer or there are too many runs. */
bool
nbd_zc_collect(struct vmc_image *img, uint64_t off, uint64_t len,
               struct nbd_zc_piece *pc, unsigned *npc, unsigned max)
{
    const unsigned need = ENGINE_EXT_DATA | ENGINE_EXT_STABLE;
    unsigned n = *npc;

    while (len) {
        struct engine_extent ext;

        if (engine_host_extent(img, off, len, &ext) < 0 ||
            (ext.flags & need) != need) {
            return false;
        }
        if (n && pc[n - 1].fd == ext.fd &&
            pc[n - 1].host + pc[n - 1].len == ext.host_offset) {
            pc[n - 1].len += ext.length;
        } else {
            if (n == max) {
                return false;
            }
            pc[n].fd = ext.fd;
            pc[n].host = ext.host_offset;
            pc[n].len = ext.length;
            n++;
        }
        off += ext.length;
        len -= ext.length;
    }
    *npc = n;
    return true;
}

/* Pages a run touches: an upper bound of the pipe slots it fills. */
static uint64_t
pages_spanned(uint64_t host, uint64_t len)
{
    const uint64_t pg = 4096;

    return (host % pg + len + pg - 1) / pg;
}

int
nbd_read_zero_copy(struct nbd_conn *c, const struct nbd_req *req,
                   const struct nbd_read_seg *seg, unsigned nseg)
{
    struct vmc_image *img = c->exp->img;
    struct nbd_zc_piece pc[ZC_MAX_PIECES];
    uint8_t hdrs[NBD_READ_MAX_SEGMENTS][NBD_CHUNK_HEADER_SIZE + 12];
    struct iovec iov[NBD_READ_MAX_SEGMENTS];
    struct nbd_send_part part[NBD_READ_MAX_SEGMENTS];
    struct nbd_pipe *p;
    uint64_t data = 0, pages = 0;
    unsigned npc = 0, i;
    int r;

    if (nseg > NBD_READ_MAX_SEGMENTS) {
        return 1;
    }
    for (i = 0; i < nseg; i++) {
        if (seg[i].hole) {
            continue;
        }
        if (!nbd_zc_collect(img, seg[i].off, seg[i].len, pc, &npc,
                        ZC_MAX_PIECES)) {
            return 1;
        }
        data += seg[i].len;
    }
    if (data < ZC_MIN_BYTES) {
        return 1;
    }
    for (i = 0; i < npc; i++) {
        pages += pages_spanned(pc[i].host, pc[i].len);
    }
    p = nbd_pipe_get(c->srv);
    if (!p) {
        return 1;
    }
    if (data > p->cap || pages > p->cap / 4096) {
        nbd_pipe_put(c->srv, p, true);
        return 1;
    }
    /* capture every byte before the reply starts */
    for (i = 0; i < npc; i++) {
        loff_t o = (loff_t)pc[i].host;
        uint64_t left = pc[i].len;

        while (left) {
            ssize_t n = splice(pc[i].fd, &o, p->wr, NULL, (size_t)left,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                /* error, EOF (truncated file) or a full pipe: let the
                 * copying path give the engine's answer */
                nbd_pipe_put(c->srv, p, false);
                return 1;
            }
            left -= (uint64_t)n;
        }
    }
    for (i = 0; i < nseg; i++) {
        iov[i].iov_len = nbd_read_chunk_header(hdrs[i], &seg[i],
                                               i == nseg - 1, req->cookie);
        part[i].splice_len = seg[i].hole ? 0 : (size_t)seg[i].len;
        iov[i].iov_base = hdrs[i];
        part[i].iov = &iov[i];
        part[i].iovcnt = 1;
    }
    r = nbd_conn_send_parts(c, part, (int)nseg, p->rd);
    nbd_pipe_put(c->srv, p, r == 0);
    return 0;
}
