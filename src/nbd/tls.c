/*
 * tls.c - NBD over TLS with GnuTLS: the server's credentials and the
 * transport a connection switches to after NBD_OPT_STARTTLS.
 *
 * Credentials (loaded once, shared read-only by every session):
 *  - X.509, a directory laid out as qemu-nbd's tls-creds-x509: the
 *    server's server-cert.pem and server-key.pem, and ca-cert.pem; when
 *    ca-cert.pem is there, a client must present a certificate it signed
 *    (qemu's verify-peer default), else any client may connect;
 *  - PSK, a file of psktool's "username:hexkey" lines.
 *
 * The TLS transport wraps the connection's socket: GnuTLS reads and
 * writes the socket through pull/push callbacks that keep the deadlines,
 * write timeout and stall bookkeeping of the plain socket transport
 * (nbd_sock_recv(), nbd_sock_sendv() of conn.c), so the handshake
 * deadline, request and idle timeouts and the reply budget's dropping of
 * stalled clients work the same over TLS. One thread reads (the
 * connection thread) while another writes (a worker holding the
 * connection's write lock), which GnuTLS allows; the socket itself is
 * written under push_lock, since a read may have to write too (an alert,
 * a TLS 1.3 key update). There is no splice and no partial non-blocking
 * write over TLS (send_spliced and try_writev stay NULL): READ replies
 * go through the ordinary copy path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd-internal.h"
#include "tls-dl.h"

/* GnuTLS's defaults, PSK key exchanges added when a PSK file is given;
 * our order of ciphers, not the client's: NORMAL puts first what this
 * CPU accelerates (AES-GCM with AES-NI). A TLS 1.3 external PSK is bound
 * to SHA-256, so PSK sessions skip AES-256-GCM-SHA384 and may pick
 * ChaCha20. */
#define PRIORITY "NORMAL:%SERVER_PRECEDENCE"
#define PRIORITY_PSK "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK:%SERVER_PRECEDENCE"

struct nbd_tls {
    gnutls_certificate_credentials_t x509;   /* NULL: none */
    bool verify_client;                      /* ca-cert.pem given */
    gnutls_psk_server_credentials_t psk;     /* NULL: none */
};

/* ----------------------------------------------------------- credentials */

static char *
path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p) {
        snprintf(p, n, "%s/%s", dir, name);
    }
    return p;
}

static int
load_x509(struct nbd_tls *t, const char *dir, struct vmc_error *err)
{
    char *cert = path_in(dir, "server-cert.pem");
    char *key = path_in(dir, "server-key.pem");
    char *ca = path_in(dir, "ca-cert.pem");
    int r = 0, g;

    if (!cert || !key || !ca) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (gnutls_certificate_allocate_credentials(&t->x509) < 0) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    g = gnutls_certificate_set_x509_key_file(t->x509, cert, key,
                                             GNUTLS_X509_FMT_PEM);
    if (g < 0) {
        r = vmc_error_set(err, -EINVAL, "TLS credentials '%s': cannot load "
                          "server-cert.pem and server-key.pem: %s", dir,
                          gnutls_strerror(g));
        goto out;
    }
    if (access(ca, F_OK) == 0) {
        g = gnutls_certificate_set_x509_trust_file(t->x509, ca,
                                                   GNUTLS_X509_FMT_PEM);
        if (g <= 0) {
            r = vmc_error_set(err, -EINVAL, "TLS credentials '%s': cannot "
                              "load ca-cert.pem: %s", dir,
                              g ? gnutls_strerror(g) : "no certificate");
            goto out;
        }
        t->verify_client = true;
    }
    gnutls_certificate_set_known_dh_params(t->x509, GNUTLS_SEC_PARAM_MEDIUM);
out:
    free(cert);
    free(key);
    free(ca);
    return r;
}

/* GnuTLS reads the PSK file at each handshake; check now that it is
 * readable and holds at least one "username:hexkey" line. */
static int
load_psk(struct nbd_tls *t, const char *file, struct vmc_error *err)
{
    char line[1024];
    bool found = false;
    FILE *f = fopen(file, "r");
    int g;

    if (!f) {
        int r = -errno;
        return vmc_error_set(err, r, "TLS PSK file '%s': %s", file,
                             strerror(-r));
    }
    while (!found && fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');

        found = colon && colon > line &&
                strspn(colon + 1, "0123456789abcdefABCDEF") >= 2;
    }
    fclose(f);
    if (!found) {
        return vmc_error_set(err, -EINVAL, "TLS PSK file '%s' has no "
                             "'username:hexkey' line (see psktool)", file);
    }
    if (gnutls_psk_allocate_server_credentials(&t->psk) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    g = gnutls_psk_set_server_credentials_file(t->psk, file);
    if (g < 0) {
        return vmc_error_set(err, -EINVAL, "TLS PSK file '%s': %s", file,
                             gnutls_strerror(g));
    }
    gnutls_psk_set_server_known_dh_params(t->psk, GNUTLS_SEC_PARAM_MEDIUM);
    return 0;
}

int
nbd_tls_new(struct nbd_tls **out, const char *creds_dir,
            const char *psk_file, struct vmc_error *err)
{
    struct nbd_tls *t;
    int r = 0;

    *out = NULL;
    if (!creds_dir && !psk_file) {
        return vmc_error_set(err, -EINVAL, "TLS needs X.509 credentials or "
                             "a PSK file");
    }
    if (tls_dl_error()) {
        return vmc_error_set(err, -ELIBACC, "TLS needs GnuTLS, which cannot "
                             "be loaded (%s): install libgnutls30",
                             tls_dl_error());
    }
    if (gnutls_check_version("3.6.0") == NULL) {
        return vmc_error_set(err, -ENOTSUP, "GnuTLS 3.6.0 or later is "
                             "needed");
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (creds_dir) {
        r = load_x509(t, creds_dir, err);
    }
    if (r == 0 && psk_file) {
        r = load_psk(t, psk_file, err);
    }
    if (r < 0) {
        nbd_tls_free(t);
        return r;
    }
    *out = t;
    return 0;
}

void
nbd_tls_free(struct nbd_tls *t)
{
    if (!t) {
        return;
    }
    if (t->x509) {
        gnutls_certificate_free_credentials(t->x509);
    }
    if (t->psk) {
        gnutls_psk_free_server_credentials(t->psk);
    }
    free(t);
}

/* ------------------------------------------------------------- transport */

struct io_tls {
    struct nbd_io io;
    gnutls_session_t sess;
    pthread_mutex_t push_lock;
    int rd_err;                 /* why the last pull failed (-errno) */
    int wr_err;                 /* why the last push failed (-errno) */
    bool failed;                /* no close_notify at close */
};

static ssize_t
tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    struct io_tls *t = p;
    ssize_t got = 0;
    int r = nbd_sock_recv(&t->io, buf, len, &got);

    if (r == -ECONNRESET) {
        return 0;               /* EOF */
    }
    if (r < 0) {
        t->rd_err = r;
        gnutls_transport_set_errno(t->sess, -r);
        return -1;
    }
    return got;
}

static int
tls_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
    struct io_tls *t = p;

    return nbd_poll_in(t->io.fd, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1
                                                              : (int)ms);
}

static ssize_t
tls_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
    struct io_tls *t = p;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    int r;

    pthread_mutex_lock(&t->push_lock);
    r = nbd_sock_sendv(&t->io, &iov, 1, 0);
    pthread_mutex_unlock(&t->push_lock);
    if (r < 0) {
        t->wr_err = r;
        gnutls_transport_set_errno(t->sess, -r);
        return -1;
    }
    return (ssize_t)len;
}

/* -errno for a fatal GnuTLS error @g of a read (@rd) or a write. */
static int
tls_errno(struct io_tls *t, int g, bool rd)
{
    int saved = rd ? t->rd_err : t->wr_err;

    t->failed = true;
    if ((g == GNUTLS_E_PULL_ERROR || g == GNUTLS_E_PUSH_ERROR) && saved) {
        return saved;
    }
    if (g == GNUTLS_E_PREMATURE_TERMINATION) {
        return -ECONNRESET;
    }
    return rd ? -EPROTO : -EPIPE;
}

static int
tls_read(struct nbd_io *io, void *buf, size_t len)
{
    struct io_tls *t = (struct io_tls *)io;
    uint8_t *b = buf;

    while (len) {
        ssize_t n = gnutls_record_recv(t->sess, b, len);

        if (n > 0) {
            b += n;
            len -= (size_t)n;
        } else if (n == 0) {
            return -ECONNRESET; /* close_notify */
        } else if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED) {
            /* a renegotiation request is refused like any fatal error */
            return tls_errno(t, (int)n, true);
        }
    }
    return 0;
}

/* Small pieces are gathered into whole records (cork); at most this much
 * is held before it goes out. */
#define CORK_MAX (64u << 10)

static int
tls_uncork(struct io_tls *t)
{
    ssize_t n;

    do {
        n = gnutls_record_uncork(t->sess, GNUTLS_RECORD_WAIT);
    } while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
    return n < 0 ? tls_errno(t, (int)n, false) : 0;
}

static int
tls_writev(struct nbd_io *io, struct iovec *iov, int iovcnt)
{
    struct io_tls *t = (struct io_tls *)io;
    size_t corked = 0;
    int i, r;

    gnutls_record_cork(t->sess);
    for (i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;

        while (len) {
            size_t part = MIN(len, CORK_MAX - corked);
            ssize_t n = gnutls_record_send(t->sess, p, part);

            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                continue;
            }
            if (n < 0) {
                r = tls_errno(t, (int)n, false);
                tls_uncork(t);
                return r;
            }
            p += n;
            len -= (size_t)n;
            corked += (size_t)n;
            if (corked >= CORK_MAX) {
                r = tls_uncork(t);
                if (r < 0) {
                    return r;
                }
                corked = 0;
                gnutls_record_cork(t->sess);
            }
        }
    }
    return tls_uncork(t);
}

static int
tls_wait_readable(struct nbd_io *io, int timeout_ms)
{
    struct io_tls *t = (struct io_tls *)io;

    if (gnutls_record_check_pending(t->sess) > 0) {
        return 1;
    }
    return nbd_poll_in(io->fd, timeout_ms);
}

void
nbd_tls_end(struct nbd_conn *c)
{
    struct io_tls *t = (struct io_tls *)c->io;

    if (c->tls && !t->failed && !atomic_load(&c->wfailed)) {
        t->io.deadline_ms = nbd_now_ms() + 1000;
        gnutls_bye(t->sess, GNUTLS_SHUT_WR);
        t->failed = true;
    }
}

static void
tls_close(struct nbd_io *io)
{
    struct io_tls *t = (struct io_tls *)io;

    gnutls_deinit(t->sess);
    pthread_mutex_destroy(&t->push_lock);
    close(t->io.fd);
    free(t);
}

/* A GnuTLS server session on @t for the server's credentials @cr. */
static int
session_new(struct io_tls *t, const struct nbd_tls *cr)
{
    int g = gnutls_init(&t->sess, GNUTLS_SERVER | GNUTLS_NO_SIGNAL);

    if (g < 0) {
        return g;
    }
    g = gnutls_priority_set_direct(t->sess, cr->psk ? PRIORITY_PSK
                                                    : PRIORITY, NULL);
    if (g == 0 && cr->x509) {
        g = gnutls_credentials_set(t->sess, GNUTLS_CRD_CERTIFICATE,
                                   cr->x509);
        if (g == 0 && cr->verify_client) {
            gnutls_certificate_server_set_request(t->sess,
                                                  GNUTLS_CERT_REQUIRE);
            gnutls_session_set_verify_cert(t->sess, NULL, 0);
        }
    }
    if (g == 0 && cr->psk) {
        g = gnutls_credentials_set(t->sess, GNUTLS_CRD_PSK, cr->psk);
    }
    if (g < 0) {
        gnutls_deinit(t->sess);
        return g;
    }
    gnutls_handshake_set_timeout(t->sess, 0);   /* our deadline rules */
    gnutls_transport_set_ptr(t->sess, t);
    gnutls_transport_set_pull_function(t->sess, tls_pull);
    gnutls_transport_set_pull_timeout_function(t->sess, tls_pull_timeout);
    gnutls_transport_set_push_function(t->sess, tls_push);
    return 0;
}

/* The TLS transport's methods (no splice, no partial writes). */
static const struct nbd_io tls_methods = {
    .read = tls_read,
    .writev = tls_writev,
    .wait_readable = tls_wait_readable,
    .shutdown_read = nbd_sock_shutdown_read,
    .shutdown_all = nbd_sock_shutdown_all,
    .close = tls_close,
};

static struct io_tls *
io_tls_new(int fd, const struct nbd_io *plain)
{
    struct io_tls *t = calloc(1, sizeof(*t));

    if (!t) {
        return NULL;
    }
    memcpy(&t->io, &tls_methods, sizeof(t->io));
    t->io.fd = fd;
    pthread_mutex_init(&t->push_lock, NULL);
    t->io.deadline_ms = plain->deadline_ms;     /* the handshake's */
    atomic_init(&t->io.stall_since, 0);
    return t;
}

/* Run the TLS handshake on @t; 0 or -errno, logged. */
static int
tls_handshake(struct nbd_conn *c, struct io_tls *t)
{
    int g;

    do {
        g = gnutls_handshake(t->sess);
    } while (g < 0 && !gnutls_error_is_fatal(g));
    if (g < 0) {
        int r = tls_errno(t, g, true);

        nbd_log(c->srv, "connection %u: TLS handshake failed: %s", c->id,
                g == GNUTLS_E_PULL_ERROR || g == GNUTLS_E_PUSH_ERROR
                ? strerror(-r) : gnutls_strerror(g));
        return r;
    }
    nbd_log(c->srv, "connection %u: TLS started (%s, %s%s%s)", c->id,
            gnutls_protocol_get_name(gnutls_protocol_get_version(t->sess)),
            gnutls_cipher_get_name(gnutls_cipher_get(t->sess)),
            gnutls_psk_server_get_username(t->sess) ? ", PSK user " : "",
            gnutls_psk_server_get_username(t->sess)
            ? gnutls_psk_server_get_username(t->sess) : "");
    return 0;
}

int
nbd_tls_start(struct nbd_conn *c)
{
    struct nbd_io *plain = c->io;
    struct io_tls *t;
    int fd = nbd_io_socket_fd(plain), g;

    if (fd == -EPROTO) {
        /* bytes sent before our ACK may not be read as TLS (the
         * STARTTLS command injection of other protocols) */
        nbd_log(c->srv, "connection %u: data after NBD_OPT_STARTTLS "
                "before the TLS handshake", c->id);
        return -EPROTO;
    }
    if (fd < 0) {
        return fd;
    }
    t = io_tls_new(fd, plain);
    if (!t) {
        return -ENOMEM;
    }
    g = session_new(t, c->srv->tls);
    if (g < 0) {
        nbd_log(c->srv, "connection %u: cannot start TLS: %s", c->id,
                gnutls_strerror(g));
        pthread_mutex_destroy(&t->push_lock);
        free(t);
        return -ENOMEM;
    }
    /* from here on the socket belongs to the TLS transport; the server
     * thread reaches c->io under srv->lock (shutdown, stall checks) */
    pthread_mutex_lock(&c->srv->lock);
    c->io = &t->io;
    pthread_mutex_unlock(&c->srv->lock);
    nbd_io_socket_free_keep_fd(plain);
    c->tls = true;
    return tls_handshake(c, t);
}
