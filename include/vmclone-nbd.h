/*
 * vmclone-nbd.h - an NBD server for opened image chains.
 *
 * One server serves many exports to many clients. An export is one image
 * file opened with its backing chain when it is added; every connection
 * to that export shares the one open chain (so a FLUSH on any connection
 * covers the writes of all of them, and multi-conn is advertised).
 * Clients speak fixed-newstyle NBD with structured replies; see
 * docs/nbd-server.md for what is supported and which errors are sent.
 *
 * Typical use (the CLI's "serve"):
 *   vmc_nbd_server_new(&srv, &opts, &err);
 *   vmc_nbd_server_add_export(srv, &exp_opts, &err);   (repeat)
 *   vmc_nbd_server_listen(srv, &err);
 *   vmc_nbd_server_run(srv, &err);     until vmc_nbd_server_stop()
 *   vmc_nbd_server_free(srv);          flushes and closes the exports
 *
 * Conventions are those of vmclone.h (0 / negative errno, err last).
 * Nothing here prints; messages go to the optional log callback.
 */
#ifndef VMCLONE_NBD_H
#define VMCLONE_NBD_H

#include <stdbool.h>
#include <stdint.h>

#include "vmclone.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default cap on simultaneous connections (handshaking or not). */
#define VMC_NBD_DEFAULT_MAX_CONNECTIONS 100
/** Default time a client has to finish the handshake, in ms. */
#define VMC_NBD_DEFAULT_HANDSHAKE_MS 10000
/** Default number of worker threads per connection. */
#define VMC_NBD_DEFAULT_WORKERS 4
/** Default time a started request may take to arrive whole, and a reply
 *  may wait for the client to read more of it, in ms. */
#define VMC_NBD_DEFAULT_REQUEST_MS 30000
/** Default server-wide budget for request and reply data held in
 *  memory (all connections together), in bytes. */
#define VMC_NBD_DEFAULT_REPLY_BUDGET (256ull << 20)

/** TLS on the server's connections (NBD_OPT_STARTTLS). */
enum vmc_nbd_tls {
    VMC_NBD_TLS_OFF = 0,        /**< STARTTLS is refused (POLICY) */
    VMC_NBD_TLS_ON,             /**< offered; a client may go on without */
    VMC_NBD_TLS_ONLY,           /**< required: every option before
                                     STARTTLS but ABORT gets TLS_REQD */
};

/** Receives one line (no newline) about connections and errors. */
typedef void (*vmc_nbd_log_fn)(const char *line, void *opaque);

struct vmc_nbd_server_opts {
    /** Unix socket to create (mode 0600); NULL for none. An existing
     *  socket nobody listens on is replaced; anything else is refused. */
    const char *socket_path;
    /** TCP "HOST:PORT" or "[V6ADDR]:PORT" to listen on; NULL for none.
     *  Port 0 picks a free port (see vmc_nbd_server_tcp_port()). */
    const char *listen_addr;
    /** 0 = VMC_NBD_DEFAULT_MAX_CONNECTIONS. At the cap a new client
     *  takes the place of the oldest handshaking client, else of the
     *  longest-idle one (idle at least 2 s); else it is refused. */
    unsigned max_connections;
    unsigned handshake_ms;      /**< 0 = VMC_NBD_DEFAULT_HANDSHAKE_MS */
    /** Drop a client that sends no request for this long while none
     *  is in flight; 0 = never. */
    unsigned idle_ms;
    /** A request must arrive whole within this time of its first byte,
     *  and a reply must not wait longer for the client to read it;
     *  0 = VMC_NBD_DEFAULT_REQUEST_MS. */
    unsigned request_ms;
    /** Bytes of request and reply data all connections may hold; when
     *  it is used up, requests wait, and clients that have not read
     *  their replies for 0.3 s are dropped.
     *  0 = VMC_NBD_DEFAULT_REPLY_BUDGET. */
    uint64_t reply_budget;
    unsigned workers;           /**< per connection; 0 = default */
    /** TLS mode; ON and ONLY need @tls_creds_dir or @tls_psk_file. */
    enum vmc_nbd_tls tls;
    /** X.509 directory (qemu's tls-creds-x509 layout): server-cert.pem,
     *  server-key.pem, and optionally ca-cert.pem, which makes client
     *  certificates signed by it required. NULL for none. */
    const char *tls_creds_dir;
    /** PSK file of psktool's "username:hexkey" lines; NULL for none. */
    const char *tls_psk_file;
    /** Allow TCP on an address other than loopback without TLS ONLY
     *  (otherwise vmc_nbd_server_listen() refuses with -EPERM). */
    bool insecure;
    vmc_nbd_log_fn log;         /**< may be NULL */
    void *log_opaque;
};

struct vmc_nbd_export_opts {
    const char *name;           /**< export name (<= 4096 bytes UTF-8) */
    const char *path;           /**< image file, or an rbd image spec
                                     "rbd:..." (vmclone-rbd.h); opened now */
    const char *description;    /**< NULL = none */
    bool readonly;              /**< open read-only, advertise READ_ONLY */
    bool is_default;            /**< also answer to the empty name "" */
    struct vmc_open_opts open;  /**< format, backing_format, max_depth;
                                     VMC_OPEN_RDWR is set from @readonly */
    const char *rbd_backing;    /**< @path is a throwaway overlay over this
                                     rbd image (vmc_scratch_overlay_rbd(),
                                     opened by vmc_scratch_open_rbd());
                                     NULL = none */
};

struct vmc_nbd_server;

/** Create a server (no socket yet). */
VMC_API int vmc_nbd_server_new(struct vmc_nbd_server **out,
                               const struct vmc_nbd_server_opts *opts,
                               struct vmc_error *err);

/**
 * Open @o->path with its chain and export it as @o->name.
 * @return 0, -EEXIST (name taken, or a second default export), -EBUSY
 *         (the file is already exported, or locked by a writer), -EINVAL
 *         (bad name), or the -errno of vmc_image_open().
 */
VMC_API int vmc_nbd_server_add_export(struct vmc_nbd_server *srv,
                                      const struct vmc_nbd_export_opts *o,
                                      struct vmc_error *err);

/** Create the listening sockets. @return 0, -EADDRINUSE, -errno. */
VMC_API int vmc_nbd_server_listen(struct vmc_nbd_server *srv,
                                  struct vmc_error *err);

/** The bound TCP port, or 0 if not listening on TCP. */
VMC_API unsigned vmc_nbd_server_tcp_port(const struct vmc_nbd_server *srv);

/**
 * Accept and serve clients until vmc_nbd_server_stop(). On stop, new
 * connections are refused, handshaking clients are dropped, requests
 * already received are completed and answered, then every connection is
 * closed and every export flushed.
 * @return 0, or the first flush error (data may not be durable).
 */
VMC_API int vmc_nbd_server_run(struct vmc_nbd_server *srv,
                               struct vmc_error *err);

/** Ask run() to return. Async-signal-safe; may be called at any time. */
VMC_API void vmc_nbd_server_stop(struct vmc_nbd_server *srv);

/**
 * Serve one already-connected socket (or socketpair end) in the calling
 * thread until the client leaves; takes ownership of @fd. For tests.
 */
VMC_API int vmc_nbd_server_serve_fd(struct vmc_nbd_server *srv, int fd);

/** Remove the socket file, flush and close every export; NULL is fine.
 *  @return the first flush error. */
VMC_API int vmc_nbd_server_free(struct vmc_nbd_server *srv);

#ifdef __cplusplus
}
#endif

#endif /* VMCLONE_NBD_H */
