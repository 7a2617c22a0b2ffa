/*
 * conn.c - one client connection: its byte transport, its life cycle and
 * the worker threads that serve its requests.
 *
 * Life of a connection (nbd_conn_run):
 *   HANDSHAKE  options are read with a deadline (handshake_ms); no image
 *              is touched, only the already-open exports are looked up;
 *   TRANSMIT   the connection thread reads and validates requests
 *              (transmit.c) and queues valid ones; `workers` threads
 *              execute them and reply, possibly out of order;
 *   DONE       after DISC, EOF, a protocol violation or server stop: the
 *              queue is drained (every received request is answered if
 *              the socket still works), the workers are joined.
 *
 * Invariants:
 *  1. A reply is written whole under wlock; nothing else writes.
 *  2. At most NBD_MAX_INFLIGHT requests and NBD_MAX_INFLIGHT_BYTES of
 *     buffers are held per connection, and the server's reply budget
 *     for all of them; beyond that, and while the client leaves a reply
 *     unread, the reader stops reading the socket (back-pressure instead
 *     of memory growth).
 *  4. After the handshake, a request must arrive whole within request_ms
 *     of its first byte, a reply write may wait that long for progress,
 *     and a client idle (nothing in flight) for idle_ms is dropped.
 *  3. A failed write marks the connection dead and shuts its reading
 *     side, so the reader stops; workers then drop their replies.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd-internal.h"

/* ------------------------------------------------------ socket transport */

struct io_socket {
    struct nbd_io io;
    size_t pos;
    size_t len;
    uint8_t buf[16384];
};

/* Wait until @fd is ready for @events or the deadline passes. */
static int
wait_fd(int fd, short events, int64_t deadline_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    int r;

    for (;;) {
        int64_t left = deadline_ms - nbd_now_ms();

        if (left <= 0) {
            return -ETIMEDOUT;
        }
        r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r > 0) {
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return -errno;
        }
    }
}

int
nbd_sock_recv(struct nbd_io *io, void *buf, size_t len, ssize_t *got)
{
    int fd = io->fd;
    int64_t deadline = io->deadline_ms ? io->deadline_ms : io->rdeadline_ms;
    ssize_t n;
    int r;

    for (;;) {
        if (deadline) {
            r = wait_fd(fd, POLLIN, deadline);
            if (r < 0) {
                return r;
            }
        }
        n = recv(fd, buf, len, deadline ? MSG_DONTWAIT : 0);
        if (n > 0) {
            *got = n;
            return 0;
        }
        if (n == 0) {
            return -ECONNRESET;
        }
        if (errno != EINTR && errno != EAGAIN) {
            return -errno;
        }
    }
}

static int
sock_read(struct nbd_io *io, void *buf, size_t len)
{
    struct io_socket *s = (struct io_socket *)io;
    uint8_t *p = buf;
    ssize_t got;
    int r;

    while (len) {
        if (s->pos < s->len) {
            size_t n = MIN(len, s->len - s->pos);

            memcpy(p, s->buf + s->pos, n);
            s->pos += n;
            p += n;
            len -= n;
            continue;
        }
        if (len >= sizeof(s->buf)) {
            /* big payloads go straight to the caller's buffer */
            r = nbd_sock_recv(&s->io, p, len, &got);
            if (r < 0) {
                return r;
            }
            p += got;
            len -= (size_t)got;
            continue;
        }
        r = nbd_sock_recv(&s->io, s->buf, sizeof(s->buf), &got);
        if (r < 0) {
            return r;
        }
        s->pos = 0;
        s->len = (size_t)got;
    }
    return 0;
}

/* Writes do not block when a deadline or a write timeout applies. */
static bool
sock_nonblocking(const struct nbd_io *io)
{
    return io->deadline_ms || io->write_timeout_ms;
}

/* Wait until the client has room for more of a reply. Without the
 * handshake's deadline, the wait ends write_timeout_ms after the last
 * progress (*@stall, set here on the first wait and published in
 * stall_since so the server sees clients that do not read). */
static int
wait_writable(struct nbd_io *io, int64_t *stall)
{
    int fd = io->fd;

    if (io->deadline_ms) {
        return wait_fd(fd, POLLOUT, io->deadline_ms);
    }
    if (!*stall) {
        *stall = nbd_now_ms();
        atomic_store(&io->stall_since, *stall);
    }
    return wait_fd(fd, POLLOUT, *stall + io->write_timeout_ms);
}

static void
progress(struct nbd_io *io, int64_t *stall)
{
    if (*stall) {
        *stall = 0;
        atomic_store(&io->stall_since, 0);
    }
}

int
nbd_sock_sendv(struct nbd_io *io, struct iovec *iov, int iovcnt, int flags)
{
    int fd = io->fd;
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
    bool nb = sock_nonblocking(io);
    int64_t stall = 0;
    ssize_t n;
    int r = 0;

    while (m.msg_iovlen) {
        n = sendmsg(fd, &m, MSG_NOSIGNAL | flags | (nb ? MSG_DONTWAIT : 0));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN && nb) {
                r = wait_writable(io, &stall);
                if (r < 0) {
                    break;
                }
                continue;
            }
            r = -errno;
            break;
        }
        progress(io, &stall);
        while (m.msg_iovlen && (size_t)n >= m.msg_iov->iov_len) {
            n -= (ssize_t)m.msg_iov->iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (m.msg_iovlen) {
            m.msg_iov->iov_base = (uint8_t *)m.msg_iov->iov_base + n;
            m.msg_iov->iov_len -= (size_t)n;
        }
    }
    progress(io, &stall);
    return r;
}

static int
sock_writev(struct nbd_io *io, struct iovec *iov, int iovcnt)
{
    return nbd_sock_sendv(io, iov, iovcnt, 0);
}

static ssize_t
sock_try_writev(struct nbd_io *io, struct iovec *iov, int iovcnt)
{
    struct io_socket *s = (struct io_socket *)io;
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
    ssize_t n;

    do {
        n = sendmsg(s->io.fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    return n;
}

/* The caller has SIGPIPE blocked (splice has no MSG_NOSIGNAL). */
static int
sock_send_spliced(struct nbd_io *io, struct iovec *iov, int iovcnt,
                  int pipe_rd, size_t len, bool more)
{
    struct io_socket *s = (struct io_socket *)io;
    int64_t stall = 0;
    int r = 0;

    if (iovcnt) {
        r = nbd_sock_sendv(io, iov, iovcnt, len || more ? MSG_MORE : 0);
    }
    while (r == 0 && len) {
        bool nb = sock_nonblocking(io);
        ssize_t n;

        n = splice(pipe_rd, NULL, s->io.fd, NULL, len,
                   SPLICE_F_MOVE | (more ? SPLICE_F_MORE : 0) |
                   (nb ? SPLICE_F_NONBLOCK : 0));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN && nb) {
                r = wait_writable(io, &stall);
                continue;
            }
            r = -errno;
        } else if (n == 0) {
            r = -EIO;           /* the pipe ran dry: cannot happen */
        } else {
            progress(io, &stall);
            len -= (size_t)n;
        }
    }
    progress(io, &stall);
    return r;
}

int
nbd_poll_in(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, timeout_ms);

    if (r < 0) {
        return errno == EINTR ? 0 : -errno;
    }
    return r > 0;
}

static int
sock_wait_readable(struct nbd_io *io, int timeout_ms)
{
    struct io_socket *s = (struct io_socket *)io;

    return s->pos < s->len ? 1 : nbd_poll_in(io->fd, timeout_ms);
}

void
nbd_sock_shutdown_read(struct nbd_io *io)
{
    shutdown(io->fd, SHUT_RD);
}

void
nbd_sock_shutdown_all(struct nbd_io *io)
{
    shutdown(io->fd, SHUT_RDWR);
}

static void
sock_close(struct nbd_io *io)
{
    struct io_socket *s = (struct io_socket *)io;

    close(s->io.fd);
    free(s);
}

/* The plain socket transport's methods. */
static const struct nbd_io socket_methods = {
    .read = sock_read,
    .writev = sock_writev,
    .send_spliced = sock_send_spliced,
    .try_writev = sock_try_writev,
    .wait_readable = sock_wait_readable,
    .shutdown_read = nbd_sock_shutdown_read,
    .shutdown_all = nbd_sock_shutdown_all,
    .close = sock_close,
};

struct nbd_io *
nbd_io_socket_new(int fd)
{
    struct io_socket *s = calloc(1, sizeof(*s));

    if (!s) {
        return NULL;
    }
    memcpy(&s->io, &socket_methods, sizeof(s->io));
    s->io.fd = fd;
    return &s->io;
}

int
nbd_io_socket_fd(const struct nbd_io *io)
{
    const struct io_socket *s = (const struct io_socket *)io;

    if (io->close != sock_close) {
        return -ENOTSUP;
    }
    return s->pos < s->len ? -EPROTO : s->io.fd;
}

void
nbd_io_socket_free_keep_fd(struct nbd_io *io)
{
    free(io);
}

/* ------------------------------------------------------ memory transport */

struct io_memory {
    struct nbd_io io;
    const uint8_t *data;
    size_t len;
    size_t pos;
};

static int
mem_read(struct nbd_io *io, void *buf, size_t len)
{
    struct io_memory *m = (struct io_memory *)io;

    if (len > m->len - m->pos) {
        m->pos = m->len;
        return -ECONNRESET;
    }
    memcpy(buf, m->data + m->pos, len);
    m->pos += len;
    return 0;
}

static int
mem_writev(struct nbd_io *io, struct iovec *iov, int iovcnt)
{
    int i;

    /* touch every byte so sanitizers see uninitialised or freed data */
    for (i = 0; i < iovcnt; i++) {
        volatile uint8_t sink = 0;
        size_t j;

        for (j = 0; j < iov[i].iov_len; j++) {
            sink ^= ((const uint8_t *)iov[i].iov_base)[j];
        }
        (void)sink;
    }
    return 0;
}

static void
mem_close(struct nbd_io *io)
{
    free(io);
}

struct nbd_io *
nbd_io_memory_new(const uint8_t *data, size_t len)
{
    struct io_memory *m = calloc(1, sizeof(*m));

    if (!m) {
        return NULL;
    }
    m->io.fd = -1;
    m->data = data;
    m->len = len;
    m->io.read = mem_read;
    m->io.writev = mem_writev;
    m->io.close = mem_close;
    return &m->io;
}

/* ------------------------------------------------------------ connection */

struct nbd_conn *
nbd_conn_new(struct vmc_nbd_server *srv, struct nbd_io *io)
{
    struct nbd_conn *c = calloc(1, sizeof(*c));

    if (!c) {
        return NULL;
    }
    c->srv = srv;
    c->io = io;
    c->born_ms = nbd_now_ms();
    atomic_init(&c->active_ms, c->born_ms);
    atomic_init(&io->stall_since, 0);
    atomic_init(&c->state, NBD_CONN_HANDSHAKE);
    atomic_init(&c->finished, false);
    pthread_mutex_init(&c->wlock, NULL);
    pthread_mutex_init(&c->qlock, NULL);
    pthread_cond_init(&c->qcond, NULL);
    pthread_cond_init(&c->qspace, NULL);
    return c;
}

void
nbd_conn_free(struct nbd_conn *c)
{
    if (!c) {
        return;
    }
    if (c->io) {
        c->io->close(c->io);
    }
    pthread_mutex_destroy(&c->wlock);
    pthread_mutex_destroy(&c->qlock);
    pthread_cond_destroy(&c->qcond);
    pthread_cond_destroy(&c->qspace);
    free(c->workers);
    free(c->inline_buf);
    free(c);
}

/* A reply could not be sent (called with wlock held): the stream is
 * broken, so no later reply may be sent, and the reader stops. */
static void
conn_write_failed(struct nbd_conn *c)
{
    c->wfailed = true;
    if (c->io->shutdown_read) {
        c->io->shutdown_read(c->io);
    }
}

int
nbd_conn_send(struct nbd_conn *c, struct iovec *iov, int iovcnt)
{
    int r = -EPIPE;

    pthread_mutex_lock(&c->wlock);
    if (!c->wfailed) {
        r = c->io->writev(c->io, iov, iovcnt);
        if (r < 0) {
            conn_write_failed(c);
        }
    }
    pthread_mutex_unlock(&c->wlock);
    return r;
}

int
nbd_conn_send_parts(struct nbd_conn *c, const struct nbd_send_part *p,
                    int n, int pipe_rd)
{
    int r = -EPIPE, i;

    if (!c->io->send_spliced) {
        return -ENOTSUP;
    }
    pthread_mutex_lock(&c->wlock);
    if (!c->wfailed) {
        r = 0;
        for (i = 0; i < n && r == 0; i++) {
            r = c->io->send_spliced(c->io, p[i].iov, p[i].iovcnt, pipe_rd,
                                    p[i].splice_len, i < n - 1);
        }
        if (r < 0) {
            conn_write_failed(c);
        }
    }
    pthread_mutex_unlock(&c->wlock);
    return r;
}

int
nbd_conn_try_send(struct nbd_conn *c, struct iovec *iov, int iovcnt)
{
    ssize_t n;
    int r = 0;

    if (!c->io->try_writev || pthread_mutex_trylock(&c->wlock) != 0) {
        return 1;
    }
    if (c->wfailed) {
        pthread_mutex_unlock(&c->wlock);
        return -EPIPE;
    }
    n = c->io->try_writev(c->io, iov, iovcnt);
    if (n == -EAGAIN) {
        pthread_mutex_unlock(&c->wlock);
        return 1;
    }
    if (n >= 0) {
        /* a partial write must be finished: the rest of one small reply
         * (the socket had room for part of it, the client reads) */
        while (iovcnt && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
            r = c->io->writev(c->io, iov, iovcnt);
        }
    } else {
        r = (int)n;
    }
    if (r < 0) {
        conn_write_failed(c);
    }
    pthread_mutex_unlock(&c->wlock);
    return r;
}

static _Thread_local bool in_worker;

bool
nbd_conn_in_worker(void)
{
    return in_worker;
}

static void *
worker_main(void *opaque)
{
    struct nbd_conn *c = opaque;
    sigset_t pipe_set;

    /* splice() to a closed socket raises SIGPIPE in this thread: keep it
     * blocked here (pending at most, dropped when the thread exits) */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    in_worker = pthread_sigmask(SIG_BLOCK, &pipe_set, NULL) == 0;

    pthread_mutex_lock(&c->qlock);
    for (;;) {
        struct nbd_req *req = c->qhead;

        if (!req) {
            if (c->draining) {
                break;
            }
            pthread_cond_wait(&c->qcond, &c->qlock);
            continue;
        }
        c->qhead = req->next;
        if (!c->qhead) {
            c->qtail = NULL;
        }
        pthread_mutex_unlock(&c->qlock);
        nbd_request_serve(c, req);
        pthread_mutex_lock(&c->qlock);
    }
    pthread_mutex_unlock(&c->qlock);
    return NULL;
}

static void
start_workers(struct nbd_conn *c)
{
    unsigned n = c->srv->workers, i;

    c->workers = n ? calloc(n, sizeof(*c->workers)) : NULL;
    if (!c->workers) {
        return;                 /* serve inline */
    }
    for (i = 0; i < n; i++) {
        if (pthread_create(&c->workers[i], NULL, worker_main, c) != 0) {
            break;
        }
        c->nworkers++;
    }
}

static void
stop_workers(struct nbd_conn *c)
{
    unsigned i;

    pthread_mutex_lock(&c->qlock);
    c->draining = true;
    pthread_cond_broadcast(&c->qcond);
    pthread_mutex_unlock(&c->qlock);
    for (i = 0; i < c->nworkers; i++) {
        pthread_join(c->workers[i], NULL);
    }
    c->nworkers = 0;
}

void
nbd_conn_run(struct nbd_conn *c)
{
    int r;

    c->io->deadline_ms = nbd_now_ms() + (int64_t)c->srv->handshake_ms;
    r = nbd_handshake(c);
    c->io->deadline_ms = 0;
    if (r < 0) {
        nbd_log(c->srv, "connection %u: handshake failed: %s", c->id,
                strerror(-r));
    }
    if (r == 0 && !atomic_load(&c->srv->stopping)) {
        nbd_log(c->srv, "connection %u: serving export '%s'", c->id,
                c->exp->name);
        atomic_store(&c->active_ms, nbd_now_ms());
        c->io->write_timeout_ms = c->srv->request_ms;
        atomic_store(&c->state, NBD_CONN_TRANSMIT);
        /* a stop() that raced with the handshake must still wake us */
        if (atomic_load(&c->srv->stopping) && c->io->shutdown_read) {
            c->io->shutdown_read(c->io);
        }
        start_workers(c);
        nbd_transmit(c);
        stop_workers(c);
    }
    nbd_tls_end(c);
    atomic_store(&c->state, NBD_CONN_DONE);
    nbd_log(c->srv, "connection %u: closed", c->id);
}
