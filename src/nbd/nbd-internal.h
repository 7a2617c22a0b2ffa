/*
 * nbd-internal.h - shared state of the NBD server modules.
 *
 * Objects:
 *  - struct nbd_export: one opened image chain, shared by all connections
 *    to it (export.c).
 *  - struct nbd_conn: one client. A connection thread runs the handshake
 *    (handshake.c), then reads requests and validates them (transmit.c);
 *    valid requests go to a small per-connection queue served by worker
 *    threads, which reply out of order. Replies are written whole under
 *    the connection's write lock (conn.c).
 *  - struct vmc_nbd_server: listeners, exports, the list of connections
 *    (server.c).
 *  - struct nbd_tls: the TLS credentials; after NBD_OPT_STARTTLS a
 *    connection's transport is a GnuTLS session (tls.c).
 *
 * The byte stream goes through struct nbd_io so that the fuzzer can feed
 * a connection from memory (conn.c has the socket and memory versions).
 */
#ifndef VMC_NBD_INTERNAL_H
#define VMC_NBD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vmclone.h"
#include "vmclone-nbd.h"
#include "engine.h"
#include "protocol.h"

struct nbd_export {
    char *name;
    size_t name_len;
    char *path;
    char *description;
    struct vmc_image *img;
    bool readonly;
    bool is_default;
    bool fast_zero;          /* zeroing whole clusters is metadata only */
    uint64_t size;
    uint64_t cluster;        /* preferred I/O unit */
    bool sealed;             /* a layer of the chain is sealed: no splice */
    dev_t dev;
    ino_t ino;
    bool rbd;                /* an rbd image (path is its spec) */
};

/* Transport: read exactly / write all; 0 or -errno (-ECONNRESET on EOF,
 * -ETIMEDOUT when the deadline passed). */
struct nbd_io {
    int fd;                  /* the socket; -1 for the memory transport */
    int (*read)(struct nbd_io *io, void *buf, size_t len);
    int (*writev)(struct nbd_io *io, struct iovec *iov, int iovcnt);
    /* stop further reads (wakes a blocked reader); may be NULL */
    void (*shutdown_read)(struct nbd_io *io);
    void (*shutdown_all)(struct nbd_io *io);
    void (*close)(struct nbd_io *io);
    /* Write @iov (may be empty), then move @len bytes from the pipe
     * @pipe_rd to the transport without copying them; @more: another
     * part of the same reply follows. NULL if the transport cannot. */
    int (*send_spliced)(struct nbd_io *io, struct iovec *iov, int iovcnt,
                        int pipe_rd, size_t len, bool more);
    /* One non-blocking write: bytes written (maybe fewer than asked),
     * -EAGAIN if none could be, or -errno. NULL if unsupported. */
    ssize_t (*try_writev)(struct nbd_io *io, struct iovec *iov, int iovcnt);
    /* Wait up to @timeout_ms for input (or EOF): 1 if some is ready, 0
     * if not, -errno. NULL: input is always ready. */
    int (*wait_readable)(struct nbd_io *io, int timeout_ms);
    int64_t deadline_ms;     /* reads and writes, CLOCK_MONOTONIC ms;
                                0 = none (the handshake's) */
    int64_t rdeadline_ms;    /* reads only, when deadline_ms is 0 */
    unsigned write_timeout_ms; /* a write making no progress this long
                                  fails with -ETIMEDOUT; 0 = none */
    _Atomic int64_t stall_since; /* a write waits for the client since
                                    (ms); 0 = none waits */
};

struct nbd_req {
    struct nbd_req *next;
    uint16_t flags;
    uint16_t type;
    uint64_t cookie;
    uint64_t offset;
    uint32_t len;
    void *payload;           /* WRITE data, owned */
};

#define NBD_FS_CACHE 4

enum nbd_conn_state {
    NBD_CONN_HANDSHAKE,
    NBD_CONN_TRANSMIT,
    NBD_CONN_DONE,
};

struct nbd_conn {
    struct vmc_nbd_server *srv;
    struct nbd_io *io;
    unsigned id;
    _Atomic int state;       /* enum nbd_conn_state */

    /* negotiation */
    bool tls;                /* STARTTLS done: c->io is a TLS session */
    bool fixed;
    bool no_zeroes;
    bool sr;                 /* structured replies */
    unsigned nopts;
    bool meta_base;          /* base:allocation selected */
    bool meta_depth;         /* qemu:allocation-depth selected */
    struct nbd_export *meta_exp; /* export the selection was made for */
    struct nbd_export *exp;
    uint16_t eflags;         /* transmission flags sent to this client */

    /* transmission */
    pthread_mutex_t wlock;   /* one reply at a time on the wire */
    atomic_bool wfailed;     /* a write failed: the connection is dead */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;    /* work queued, or draining */
    pthread_cond_t qspace;   /* room in the queue */
    struct nbd_req *qhead;
    struct nbd_req *qtail;
    unsigned queued;         /* in the queue or being served */
    uint64_t queued_bytes;   /* payload + reply buffers held */
    bool draining;
    pthread_t *workers;
    unsigned nworkers;
    uint8_t *inline_buf;     /* NBD_INLINE_MAX bytes for inline READs */
    struct {
        int fd;              /* descriptor + 1; 0 = empty */
        bool mem;            /* on tmpfs/ramfs */
    } fs_cache[NBD_FS_CACHE];
    unsigned fs_next;

    /* server bookkeeping */
    int64_t born_ms;         /* accepted at */
    _Atomic int64_t active_ms; /* last request read or reply sent */
    bool evicted;            /* shut down to make room (srv->lock) */
    struct nbd_conn *next;
    pthread_t thread;
    bool has_thread;
    _Atomic bool finished;
};

struct vmc_nbd_server {
    char *socket_path;
    char *listen_addr;
    unsigned max_connections;
    unsigned handshake_ms;
    unsigned idle_ms;
    unsigned request_ms;
    unsigned workers;
    enum vmc_nbd_tls tls_mode;
    struct nbd_tls *tls;     /* credentials; NULL when tls_mode is OFF */
    bool insecure;           /* plain TCP on any address */
    vmc_nbd_log_fn log;
    void *log_opaque;

    int unix_fd;
    int tcp_fd;
    unsigned tcp_port;
    bool own_socket;         /* we created socket_path: unlink it */
    int wake[2];             /* self-pipe: stop and reap requests */
    atomic_bool stopping;

    struct nbd_export **exports;
    size_t nexports;

    pthread_mutex_t lock;    /* conns, nconns */
    struct nbd_conn *conns;
    unsigned nconns;
    unsigned next_id;

    /* server.c: the reply budget, data held by all connections */
    pthread_mutex_t budget_lock;
    pthread_cond_t budget_cond;
    uint64_t budget;
    uint64_t budget_used;
    struct budget_waiter *budget_wait[2]; /* queues: [1] connections
                                             holding none of it */

    /* zerocopy.c: empty pipes for spliced READ replies */
    pthread_mutex_t pipe_lock;
    struct nbd_pipe *pipe_free;
    unsigned npipes;         /* created and not closed (free or in use) */
};

/* One segment of a READ reply: an OFFSET_DATA or OFFSET_HOLE chunk. */
struct nbd_read_seg {
    uint64_t off;
    uint64_t len;
    bool hole;
};

/* A sparse READ reply has at most this many chunks. */
#define NBD_READ_MAX_SEGMENTS 32
/* Spliced READ replies: at least this much data, in at most this many
 * contiguous file runs. */
#define ZC_MIN_BYTES  (64u << 10)
#define ZC_MAX_PIECES 64

/* READs up to this size may be served by the connection thread itself
 * (nbd_read_inline()). */
#define NBD_INLINE_MAX (64u << 10)

/* One part of a reply: bytes from @iov, then @splice_len bytes from the
 * pipe given to nbd_conn_send_parts(). */
struct nbd_send_part {
    struct iovec *iov;
    int iovcnt;
    size_t splice_len;
};

/* server.c */
void nbd_log(struct vmc_nbd_server *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int64_t nbd_now_ms(void);
/* Take @bytes of the server-wide reply budget for a request of @c
 * (@fresh: @c holds none of it yet), waiting for room; while waiting,
 * connections whose clients do not read their replies are dropped so
 * that they cannot hold the budget from everyone else. 0, or -ESHUTDOWN
 * if @c or the server stops meanwhile (nothing taken). */
int nbd_budget_take(struct nbd_conn *c, uint64_t bytes, bool fresh);
/* Give back what nbd_budget_take() took. */
void nbd_budget_put(struct vmc_nbd_server *srv, uint64_t bytes);

/* export.c */
/* Find an export by wire name (@name, @len bytes, not NUL-terminated);
 * the empty name finds the default export. NULL if none. */
struct nbd_export *nbd_export_find(struct vmc_nbd_server *srv,
                                   const char *name, size_t len);
/* Transmission flags for @exp as seen by a client with/without SR. */
uint16_t nbd_export_flags(const struct nbd_export *exp, bool sr);
void nbd_export_free(struct nbd_export *exp);
int nbd_export_close(struct nbd_export *exp);

/* conn.c */
struct nbd_io *nbd_io_socket_new(int fd);
/* Receive at most @len bytes (at least one) from io->fd into @buf under
 * the deadlines of @io; *@got is set. 0 or -errno (-ECONNRESET on EOF). */
int nbd_sock_recv(struct nbd_io *io, void *buf, size_t len, ssize_t *got);
/* Send all of @iov (changed) on io->fd under the deadline and write
 * timeout of @io, publishing its stall_since; 0 or -errno. */
int nbd_sock_sendv(struct nbd_io *io, struct iovec *iov, int iovcnt,
                   int flags);
/* The socket of a socket transport with nothing read ahead: the fd,
 * -EPROTO if bytes were read ahead, -ENOTSUP for another transport. */
int nbd_io_socket_fd(const struct nbd_io *io);
/* Free a socket transport whose fd now belongs to someone else. */
void nbd_io_socket_free_keep_fd(struct nbd_io *io);
/* shutdown() of io->fd: SHUT_RD / SHUT_RDWR (both socket transports). */
void nbd_sock_shutdown_read(struct nbd_io *io);
void nbd_sock_shutdown_all(struct nbd_io *io);
/* Wait up to @timeout_ms for input on @fd: 1 ready, 0 not (or EINTR),
 * -errno. */
int nbd_poll_in(int fd, int timeout_ms);
/* A transport reading @len bytes from @data (not copied; must outlive
 * the connection) and discarding everything written. */
struct nbd_io *nbd_io_memory_new(const uint8_t *data, size_t len);
struct nbd_conn *nbd_conn_new(struct vmc_nbd_server *srv, struct nbd_io *io);
/* Run the whole connection (handshake, transmission, teardown) in the
 * calling thread; frees nothing. */
void nbd_conn_run(struct nbd_conn *conn);
void nbd_conn_free(struct nbd_conn *conn);
/* Write one reply (all iovecs) atomically; 0 or -errno. */
int nbd_conn_send(struct nbd_conn *conn, struct iovec *iov, int iovcnt);
/* Write one reply made of @n parts atomically, spliced parts from
 * @pipe_rd; 0 or -errno. Only in a worker thread (SIGPIPE blocked). */
int nbd_conn_send_parts(struct nbd_conn *conn, const struct nbd_send_part *p,
                        int n, int pipe_rd);
/* Write one reply from the connection thread only if that cannot block
 * on the client: 1 if the socket (or the write lock) was busy and
 * nothing was written, else 0 or -errno as nbd_conn_send(). */
int nbd_conn_try_send(struct nbd_conn *conn, struct iovec *iov, int iovcnt);
/* True in a connection's worker threads. */
bool nbd_conn_in_worker(void);

/* zerocopy.c */
struct nbd_pipe;
void nbd_pipe_pool_init(struct vmc_nbd_server *srv);
void nbd_pipe_pool_free(struct vmc_nbd_server *srv);
struct nbd_pipe *nbd_pipe_get(struct vmc_nbd_server *srv);
void nbd_pipe_put(struct vmc_nbd_server *srv, struct nbd_pipe *p, bool empty);
bool nbd_export_chain_sealed(const struct vmc_image *img);
/* Runs of plain data of read-only layers covering [off, off+len), added
 * to @pc (at most @max in all); false if some byte is anything else. */
struct nbd_zc_piece {
    int fd;
    uint64_t host;
    uint64_t len;
};
bool nbd_zc_collect(struct vmc_image *img, uint64_t off, uint64_t len,
                    struct nbd_zc_piece *pc, unsigned *npc, unsigned max);
/* Send the reply to READ @req (segments @seg) with its data spliced from
 * the page cache: 0 if the reply was sent (or the connection died), 1 if
 * the request does not qualify and nothing was sent. */
int nbd_read_zero_copy(struct nbd_conn *c, const struct nbd_req *req,
                       const struct nbd_read_seg *seg, unsigned nseg);

/* tls.c */
struct nbd_tls;
/* Load the X.509 directory @creds_dir and/or the PSK file @psk_file
 * (NULL for none, not both). */
int nbd_tls_new(struct nbd_tls **out, const char *creds_dir,
                const char *psk_file, struct vmc_error *err);
void nbd_tls_free(struct nbd_tls *t);
/* After the ACK to NBD_OPT_STARTTLS: switch @c to a TLS transport and run
 * the TLS handshake. 0, or -errno (logged; the connection must end). */
int nbd_tls_start(struct nbd_conn *c);
/* The end of a TLS session, in the connection's thread: a close_notify
 * if the stream still works (within a second). Nothing without TLS. */
void nbd_tls_end(struct nbd_conn *c);

/* handshake.c */
/* 0: transmission starts with conn->exp set; 1: the client ended the
 * session cleanly; <0: drop the connection. */
int nbd_handshake(struct nbd_conn *conn);

/* transmit.c */
/* Read, validate and dispatch requests until DISC, EOF or an error. */
void nbd_transmit(struct nbd_conn *conn);
/* Execute one validated request and send its reply; frees @req. */
void nbd_request_serve(struct nbd_conn *conn, struct nbd_req *req);
/* Structured reply chunk header (NBD_CHUNK_HEADER_SIZE bytes). */
void nbd_chunk_header(uint8_t *h, uint16_t flags, uint16_t type,
                      uint64_t cookie, uint32_t len);
/* Header of the READ reply chunk for @seg, the last one when @last: an
 * OFFSET_HOLE chunk, or an OFFSET_DATA chunk whose seg->len data bytes
 * follow it. @h holds NBD_CHUNK_HEADER_SIZE + 12 bytes; returns the
 * header's length. */
size_t nbd_read_chunk_header(uint8_t *h, const struct nbd_read_seg *seg,
                             bool last, uint64_t cookie);
/* NBD error value for a negative errno. */
uint32_t nbd_errno(int err, uint16_t cmd_flags);

#endif /* VMC_NBD_INTERNAL_H */
