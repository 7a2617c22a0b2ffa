/*
 * server.c - listeners, the accept loop, and orderly shutdown.
 *
 * The accept loop polls the listening sockets and a self-pipe. The pipe
 * carries 'q' (stop, written by vmc_nbd_server_stop(), async-signal-safe)
 * and 'r' (a connection thread finished: join it). Each accepted client
 * gets a thread running nbd_conn_run(). At max_connections a new client
 * takes the place of another (make_room()): the oldest one still in its
 * handshake after EVICT_HANDSHAKE_MS (at most half the handshake time),
 * else the one idle longest (at least EVICT_IDLE_MS); if there is none,
 * the new client is accepted and closed at once, so it sees EOF rather
 * than a hang. Clients that never finish their handshake, or finish it
 * and go idle, thus cannot lock out a client for long.
 *
 * The reply budget (nbd_budget_take()) bounds the request and reply data
 * all connections hold together; see the comment of budget_turn().
 *
 * Shutdown order (run() after 'q'):
 *  1. close the listeners (no new clients);
 *  2. handshaking connections: shut down both ways (they hold no image
 *     state); transmitting ones: shut down the read side, so each stops
 *     after the request it is reading and answers everything queued;
 *  3. after a grace period, shut down what is still open both ways (a
 *     client that stopped reading its replies cannot hold us);
 *  4. join every connection thread, then flush every export.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "nbd-internal.h"

#define SHUTDOWN_GRACE_MS 10000
/* An idle connection gives its place to a new client only after this... */
#define EVICT_IDLE_MS 2000
/* ...and a handshaking one after this (or half the handshake time). */
#define EVICT_HANDSHAKE_MS 500
/* While the reply budget is used up and a request waits for it, a client
 * that has read nothing of its replies for this long is dropped. */
#define STALL_DROP_MS 300

int64_t
nbd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line for the log callback. Lines quote what clients sent (export
 * names), so control characters become '?': a client cannot forge or
 * split lines of the log. */
void
nbd_log(struct vmc_nbd_server *srv, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    char *p;

    if (!srv->log) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    for (p = line; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    srv->log(line, srv->log_opaque);
}

int
vmc_nbd_server_new(struct vmc_nbd_server **out,
                   const struct vmc_nbd_server_opts *o,
                   struct vmc_error *err)
{
    struct vmc_nbd_server *srv = calloc(1, sizeof(*srv));

    if (!srv) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    srv->unix_fd = srv->tcp_fd = -1;
    srv->wake[0] = srv->wake[1] = -1;
    atomic_init(&srv->stopping, false);
    pthread_mutex_init(&srv->lock, NULL);
    pthread_mutex_init(&srv->budget_lock, NULL);
    pthread_cond_init(&srv->budget_cond, NULL);
    nbd_pipe_pool_init(srv);
    srv->max_connections = o && o->max_connections
                           ? o->max_connections
                           : VMC_NBD_DEFAULT_MAX_CONNECTIONS;
    srv->handshake_ms = o && o->handshake_ms ? o->handshake_ms
                                             : VMC_NBD_DEFAULT_HANDSHAKE_MS;
    srv->workers = o && o->workers ? o->workers : VMC_NBD_DEFAULT_WORKERS;
    srv->idle_ms = o ? o->idle_ms : 0;
    srv->request_ms = o && o->request_ms ? o->request_ms
                                         : VMC_NBD_DEFAULT_REQUEST_MS;
    srv->budget = o && o->reply_budget ? o->reply_budget
                                       : VMC_NBD_DEFAULT_REPLY_BUDGET;
    if (o && o->tls != VMC_NBD_TLS_OFF) {
        int r = nbd_tls_new(&srv->tls, o->tls_creds_dir, o->tls_psk_file,
                            err);

        if (r < 0) {
            vmc_nbd_server_free(srv);
            return r;
        }
        srv->tls_mode = o->tls;
    }
    if (o) {
        srv->insecure = o->insecure;
        srv->log = o->log;
        srv->log_opaque = o->log_opaque;
        srv->socket_path = o->socket_path ? strdup(o->socket_path) : NULL;
        srv->listen_addr = o->listen_addr ? strdup(o->listen_addr) : NULL;
        if ((o->socket_path && !srv->socket_path) ||
            (o->listen_addr && !srv->listen_addr)) {
            vmc_nbd_server_free(srv);
            return vmc_error_set(err, -ENOMEM, "out of memory");
        }
    }
    if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        int r = -errno;
        vmc_nbd_server_free(srv);
        return vmc_error_set(err, r, "cannot create a pipe: %s",
                             strerror(-r));
    }
    *out = srv;
    return 0;
}

/* --------------------------------------------------------------- listen */

static int
listen_unix(struct vmc_nbd_server *srv, struct vmc_error *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *path = srv->socket_path;
    struct stat st;
    mode_t old;
    int fd, r;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        return vmc_error_set(err, -ENAMETOOLONG, "socket path '%s' is too "
                             "long", path);
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        return vmc_error_set(err, r, "cannot create a socket: %s",
                             strerror(-r));
    }
    if (lstat(path, &st) == 0) {
        /* replace a stale socket nobody listens on; refuse anything
         * else (a live server, a regular file) */
        if (!S_ISSOCK(st.st_mode) ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
            errno != ECONNREFUSED) {
            close(fd);
            return vmc_error_set(err, -EADDRINUSE, "'%s' already exists%s",
                                 path, S_ISSOCK(st.st_mode)
                                 ? " and a server is listening on it" : "");
        }
        unlink(path);
    }
    old = umask(0177);          /* socket 0600: owner only */
    r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r < 0 || listen(fd, 128) < 0) {
        r = -errno;
        close(fd);
        return vmc_error_set(err, r, "cannot listen on '%s': %s", path,
                             strerror(-r));
    }
    srv->own_socket = true;
    srv->unix_fd = fd;
    return 0;
}

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: reachable from this host
 * only. */
static bool
is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

static int
listen_tcp(struct vmc_nbd_server *srv, struct vmc_error *err)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[256];
    const char *addr = srv->listen_addr, *colon, *port;
    size_t hlen;
    int fd = -1, one = 1, r;

    colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1]) {
        return vmc_error_set(err, -EINVAL, "listen address '%s' is not "
                             "HOST:PORT", addr);
    }
    port = colon + 1;
    hlen = (size_t)(colon - addr);
    if (addr[0] == '[' && colon[-1] == ']') {
        addr++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        return vmc_error_set(err, -EINVAL, "listen address is too long");
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    r = getaddrinfo(host, port, &hints, &ai);
    if (r != 0) {
        return vmc_error_set(err, -EINVAL, "listen address '%s': %s "
                             "(a numeric address and port are required)",
                             srv->listen_addr, gai_strerror(r));
    }
    if (srv->tls_mode != VMC_NBD_TLS_ONLY && !srv->insecure &&
        !is_loopback(ai->ai_addr)) {
        freeaddrinfo(ai);
        return vmc_error_set(err, -EPERM, "'%s' is not a loopback address: "
                             "NBD over TCP there needs TLS (or insecure)",
                             srv->listen_addr);
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        goto fail;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        r = -errno;
        goto fail;
    }
    srv->tcp_port = ntohs(ss.ss_family == AF_INET6
                          ? ((struct sockaddr_in6 *)&ss)->sin6_port
                          : ((struct sockaddr_in *)&ss)->sin_port);
    srv->tcp_fd = fd;
    freeaddrinfo(ai);
    return 0;

fail:
    if (fd >= 0) {
        close(fd);
    }
    freeaddrinfo(ai);
    return vmc_error_set(err, r, "cannot listen on '%s': %s",
                         srv->listen_addr, strerror(-r));
}

int
vmc_nbd_server_listen(struct vmc_nbd_server *srv, struct vmc_error *err)
{
    int r;

    if (!srv->socket_path && !srv->listen_addr) {
        return vmc_error_set(err, -EINVAL, "nothing to listen on");
    }
    if (srv->nexports == 0) {
        return vmc_error_set(err, -EINVAL, "no export");
    }
    if (srv->socket_path) {
        r = listen_unix(srv, err);
        if (r < 0) {
            return r;
        }
    }
    if (srv->listen_addr) {
        r = listen_tcp(srv, err);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

unsigned
vmc_nbd_server_tcp_port(const struct vmc_nbd_server *srv)
{
    return srv->tcp_port;
}

void
vmc_nbd_server_stop(struct vmc_nbd_server *srv)
{
    char q = 'q';
    ssize_t n;

    atomic_store(&srv->stopping, true);
    n = write(srv->wake[1], &q, 1);
    (void)n;
}

/* ------------------------------------------------------------- budget */

/* Shut down every connection whose client has not read its replies for
 * @stall_ms or more; returns how many. */
static unsigned
drop_stalled(struct vmc_nbd_server *srv, int64_t stall_ms)
{
    int64_t now = nbd_now_ms();
    struct nbd_conn *c;
    unsigned n = 0;

    pthread_mutex_lock(&srv->lock);
    for (c = srv->conns; c; c = c->next) {
        int64_t since = atomic_load(&c->io->stall_since);

        if (atomic_load(&c->finished) || c->evicted || !since ||
            now - since < stall_ms) {
            continue;
        }
        c->evicted = true;
        c->io->shutdown_all(c->io);
        nbd_log(srv, "connection %u: dropped: its replies are not read "
                "and the server's reply budget is used up", c->id);
        n++;
    }
    pthread_mutex_unlock(&srv->lock);
    return n;
}

/* A request waiting for the server-wide budget (on its reader's stack). */
struct budget_waiter {
    struct budget_waiter *next;
    uint64_t bytes;
};

static void
waiter_remove(struct budget_waiter **list, struct budget_waiter *w)
{
    while (*list != w) {
        list = &(*list)->next;
    }
    *list = w->next;
}

/* May the waiter @w of a @fresh connection take its bytes now
 * (budget_lock held)? Waiters of connections that hold none of the
 * budget yet (@fresh) go before the others, and among them the smallest
 * request first (then the oldest): a client that reads its replies is
 * not starved by clients that queue many big READs. */
static bool
budget_turn(struct vmc_nbd_server *srv, struct budget_waiter *w, bool fresh)
{
    struct budget_waiter *o;
    bool before = true;

    if (srv->budget_used && srv->budget_used + w->bytes > srv->budget) {
        return false;
    }
    if (!fresh) {
        return !srv->budget_wait[1] && srv->budget_wait[0] == w;
    }
    for (o = srv->budget_wait[1]; o; o = o->next) {
        if (o == w) {
            before = false;
        } else if (o->bytes < w->bytes || (o->bytes == w->bytes && before)) {
            return false;
        }
    }
    return true;
}

int
nbd_budget_take(struct nbd_conn *c, uint64_t bytes, bool fresh)
{
    struct vmc_nbd_server *srv = c->srv;
    struct budget_waiter w = { .bytes = bytes }, **tail;
    int r = 0;

    if (!bytes) {
        return 0;
    }
    pthread_mutex_lock(&srv->budget_lock);
    for (tail = &srv->budget_wait[fresh]; *tail; tail = &(*tail)->next) {
        continue;
    }
    *tail = &w;
    while (!budget_turn(srv, &w, fresh)) {
        struct timespec ts;

        if (atomic_load(&c->wfailed) || atomic_load(&srv->stopping)) {
            r = -ESHUTDOWN;
            break;
        }
        pthread_mutex_unlock(&srv->budget_lock);
        drop_stalled(srv, STALL_DROP_MS);
        pthread_mutex_lock(&srv->budget_lock);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->budget_cond, &srv->budget_lock, &ts);
    }
    waiter_remove(&srv->budget_wait[fresh], &w);
    if (r == 0) {
        srv->budget_used += bytes;
    }
    pthread_cond_broadcast(&srv->budget_cond);
    pthread_mutex_unlock(&srv->budget_lock);
    return r;
}

void
nbd_budget_put(struct vmc_nbd_server *srv, uint64_t bytes)
{
    if (bytes) {
        pthread_mutex_lock(&srv->budget_lock);
        srv->budget_used -= bytes;
        pthread_cond_broadcast(&srv->budget_cond);
        pthread_mutex_unlock(&srv->budget_lock);
    }
}

/* ---------------------------------------------------------------- serve */

static void *
conn_thread(void *opaque)
{
    struct nbd_conn *c = opaque;
    char r = 'r';
    ssize_t n;

    nbd_conn_run(c);
    atomic_store(&c->finished, true);
    n = write(c->srv->wake[1], &r, 1);
    (void)n;
    return NULL;
}

int
vmc_nbd_server_serve_fd(struct vmc_nbd_server *srv, int fd)
{
    struct nbd_io *io = nbd_io_socket_new(fd);
    struct nbd_conn *c;

    if (!io) {
        close(fd);
        return -ENOMEM;
    }
    c = nbd_conn_new(srv, io);
    if (!c) {
        io->close(io);
        return -ENOMEM;
    }
    nbd_conn_run(c);
    nbd_conn_free(c);
    return 0;
}

/* Join the connection threads that have finished. */
static void
reap(struct vmc_nbd_server *srv, bool all)
{
    struct nbd_conn **pp, *c;

    pthread_mutex_lock(&srv->lock);
    pp = &srv->conns;
    while ((c = *pp)) {
        if (!all && !atomic_load(&c->finished)) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        srv->nconns--;
        pthread_mutex_unlock(&srv->lock);
        pthread_join(c->thread, NULL);
        nbd_conn_free(c);
        pthread_mutex_lock(&srv->lock);
    }
    pthread_mutex_unlock(&srv->lock);
}

/* The connection to drop for a new client (srv->lock held): the oldest
 * handshaking one, else the longest-idle one; NULL if every connection
 * is busy or too recent. */
static struct nbd_conn *
pick_victim(struct vmc_nbd_server *srv)
{
    struct nbd_conn *c, *hs = NULL, *idle = NULL;
    int64_t now = nbd_now_ms(), idle_for = EVICT_IDLE_MS - 1;
    int64_t hs_age = MIN(EVICT_HANDSHAKE_MS, srv->handshake_ms / 2);

    for (c = srv->conns; c; c = c->next) {
        int state = atomic_load(&c->state);
        unsigned queued;

        if (atomic_load(&c->finished) || c->evicted) {
            continue;
        }
        if (state == NBD_CONN_HANDSHAKE) {
            if (now - c->born_ms >= hs_age &&
                (!hs || c->born_ms < hs->born_ms)) {
                hs = c;
            }
            continue;
        }
        if (state != NBD_CONN_TRANSMIT) {
            continue;
        }
        pthread_mutex_lock(&c->qlock);
        queued = c->queued;
        pthread_mutex_unlock(&c->qlock);
        if (!queued && now - atomic_load(&c->active_ms) > idle_for) {
            idle = c;
            idle_for = now - atomic_load(&c->active_ms);
        }
    }
    return hs ? hs : idle;
}

/* Is there a place for one more connection? Makes one at the cap by
 * dropping the connection pick_victim() names. */
static bool
make_room(struct vmc_nbd_server *srv)
{
    struct nbd_conn *c, *victim;
    unsigned live = 0;
    bool ok = true;

    pthread_mutex_lock(&srv->lock);
    for (c = srv->conns; c; c = c->next) {
        live += !atomic_load(&c->finished) && !c->evicted;
    }
    if (live >= srv->max_connections) {
        victim = pick_victim(srv);
        ok = victim != NULL;
        if (victim) {
            victim->evicted = true;
            victim->io->shutdown_all(victim->io);
            nbd_log(srv, "connection %u: dropped to make room (%s)",
                    victim->id, atomic_load(&victim->state) ==
                    NBD_CONN_HANDSHAKE ? "oldest handshake" : "longest idle");
        } else {
            nbd_log(srv, "connection refused: %u connections already, all "
                    "busy", live);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return ok;
}

static void
accept_one(struct vmc_nbd_server *srv, int lfd, bool tcp)
{
    struct nbd_conn *c;
    struct nbd_io *io;
    int fd, one = 1;

    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        return;
    }
    if (!make_room(srv)) {
        close(fd);
        return;
    }
    if (tcp) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    io = nbd_io_socket_new(fd);
    c = io ? nbd_conn_new(srv, io) : NULL;
    if (!c) {
        if (io) {
            io->close(io);
        } else {
            close(fd);
        }
        return;
    }
    c->id = ++srv->next_id;
    pthread_mutex_lock(&srv->lock);
    if (pthread_create(&c->thread, NULL, conn_thread, c) != 0) {
        pthread_mutex_unlock(&srv->lock);
        nbd_conn_free(c);
        return;
    }
    c->next = srv->conns;
    srv->conns = c;
    srv->nconns++;
    pthread_mutex_unlock(&srv->lock);
    nbd_log(srv, "connection %u: accepted", c->id);
}

/* Step 2/3 of the shutdown: @hard shuts every connection both ways. */
static void
shut_connections(struct vmc_nbd_server *srv, bool hard)
{
    struct nbd_conn *c;

    pthread_mutex_lock(&srv->lock);
    for (c = srv->conns; c; c = c->next) {
        if (atomic_load(&c->finished)) {
            continue;
        }
        if (hard || atomic_load(&c->state) == NBD_CONN_HANDSHAKE) {
            c->io->shutdown_all(c->io);
        } else {
            c->io->shutdown_read(c->io);
        }
    }
    pthread_mutex_unlock(&srv->lock);
}

static unsigned
live_connections(struct vmc_nbd_server *srv)
{
    struct nbd_conn *c;
    unsigned n = 0;

    pthread_mutex_lock(&srv->lock);
    for (c = srv->conns; c; c = c->next) {
        n += !atomic_load(&c->finished);
    }
    pthread_mutex_unlock(&srv->lock);
    return n;
}

static void
drain_pipe(struct vmc_nbd_server *srv)
{
    char b[64];

    while (read(srv->wake[0], b, sizeof(b)) > 0) {
        continue;
    }
}

int
vmc_nbd_server_run(struct vmc_nbd_server *srv, struct vmc_error *err)
{
    int64_t deadline;
    size_t i;
    int r = 0;

    while (!atomic_load(&srv->stopping)) {
        struct pollfd p[3];
        int n = 0;

        p[n++] = (struct pollfd){ .fd = srv->wake[0], .events = POLLIN };
        if (srv->unix_fd >= 0) {
            p[n++] = (struct pollfd){ .fd = srv->unix_fd, .events = POLLIN };
        }
        if (srv->tcp_fd >= 0) {
            p[n++] = (struct pollfd){ .fd = srv->tcp_fd, .events = POLLIN };
        }
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            r = vmc_error_set(err, -errno, "poll: %s", strerror(errno));
            vmc_nbd_server_stop(srv);
            break;
        }
        if (p[0].revents) {
            drain_pipe(srv);
            reap(srv, false);
        }
        for (i = 1; i < (size_t)n; i++) {
            if (p[i].revents & POLLIN) {
                accept_one(srv, p[i].fd, p[i].fd == srv->tcp_fd);
            }
        }
    }

    /* 1. no new clients */
    if (srv->unix_fd >= 0) {
        close(srv->unix_fd);
        srv->unix_fd = -1;
    }
    if (srv->tcp_fd >= 0) {
        close(srv->tcp_fd);
        srv->tcp_fd = -1;
    }
    /* 2. stop reading, let queued requests finish */
    shut_connections(srv, false);
    deadline = nbd_now_ms() + SHUTDOWN_GRACE_MS;
    while (live_connections(srv) && nbd_now_ms() < deadline) {
        struct pollfd p = { .fd = srv->wake[0], .events = POLLIN };

        poll(&p, 1, 100);
        drain_pipe(srv);
    }
    /* 3. whatever is left is cut off */
    shut_connections(srv, true);
    /* 4. join, then make everything durable */
    reap(srv, true);
    for (i = 0; i < srv->nexports; i++) {
        int r2 = vmc_image_flush(srv->exports[i]->img);

        if (r2 < 0 && r == 0) {
            r = vmc_error_set(err, r2, "cannot flush '%s': %s",
                              srv->exports[i]->path, strerror(-r2));
        }
    }
    return r;
}

int
vmc_nbd_server_free(struct vmc_nbd_server *srv)
{
    size_t i;
    int r = 0;

    if (!srv) {
        return 0;
    }
    reap(srv, true);
    if (srv->unix_fd >= 0) {
        close(srv->unix_fd);
    }
    if (srv->tcp_fd >= 0) {
        close(srv->tcp_fd);
    }
    if (srv->own_socket && srv->socket_path) {
        unlink(srv->socket_path);
    }
    for (i = 0; i < srv->nexports; i++) {
        int r2 = nbd_export_close(srv->exports[i]);

        if (!r) {
            r = r2;
        }
        nbd_export_free(srv->exports[i]);
    }
    free(srv->exports);
    if (srv->wake[0] >= 0) {
        close(srv->wake[0]);
        close(srv->wake[1]);
    }
    nbd_pipe_pool_free(srv);
    nbd_tls_free(srv->tls);
    pthread_mutex_destroy(&srv->lock);
    pthread_mutex_destroy(&srv->budget_lock);
    pthread_cond_destroy(&srv->budget_cond);
    free(srv->socket_path);
    free(srv->listen_addr);
    free(srv);
    return r;
}
