/*
 * handshake.c - fixed newstyle negotiation (NBD proto.md "Handshake").
 *
 * Only fixed newstyle is spoken (no oldstyle). Every option is read whole
 * into a bounded buffer (NBD_MAX_OPTION) and parsed from memory, so the
 * stream stays in sync whatever the option contains; an option longer
 * than the bound, a bad magic, unknown client flags, too many options or
 * the handshake deadline end the connection. Strings are never copied
 * into fixed buffers and are bounded by NBD_MAX_STRING before any
 * arithmetic. No image is opened here: exports are looked up by name
 * among those the server opened at start-up.
 *
 * Options: EXPORT_NAME, ABORT, LIST, INFO, GO, STRUCTURED_REPLY,
 * LIST_META_CONTEXT, SET_META_CONTEXT (base:allocation,
 * qemu:allocation-depth), STARTTLS (ERR_POLICY when the server has no
 * TLS); anything else ERR_UNSUP.
 *
 * TLS (proto.md "TLS support"): with TLS off the server is in NOTLS mode;
 * with TLS on, in SELECTIVETLS mode with no TLS-only export (the client
 * chooses); with TLS only, in FORCEDTLS mode: before STARTTLS every
 * option but ABORT gets ERR_TLS_REQD and EXPORT_NAME ends the session.
 * After STARTTLS nothing negotiated before it survives (structured
 * replies, meta contexts: CVE-2021-3716 was a server that kept them). Every refusal is one line of the server's log naming the
 * option as proto.md does (send_error(), nbd_opt_name()).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-internal.h"

static const char ctx_base[] = "base:allocation";
static const char ctx_depth[] = "qemu:allocation-depth";

static int
send_reply(struct nbd_conn *c, uint32_t opt, uint32_t type, const void *data,
           size_t len)
{
    uint8_t hdr[20];
    struct iovec iov[2] = {
        { .iov_base = hdr, .iov_len = sizeof(hdr) },
        { .iov_base = (void *)data, .iov_len = len },
    };

    be64_store(hdr, NBD_REP_MAGIC);
    be32_store(hdr + 8, opt);
    be32_store(hdr + 12, type);
    be32_store(hdr + 16, (uint32_t)len);
    return c->io->writev(c->io, iov, len ? 2 : 1);
}

static int
send_ack(struct nbd_conn *c, uint32_t opt)
{
    return send_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* The one log line of a refused option @opt: its proto.md name, its
 * number and why. Used alone where no error reply is possible (the
 * connection is dropped), else through send_error(). */
static void
log_refusal(struct nbd_conn *c, uint32_t opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
log_refusal(struct nbd_conn *c, uint32_t opt, const char *fmt, ...)
{
    char why[320];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(why, sizeof(why), fmt, ap) < 0) {
        why[0] = '\0';
    }
    va_end(ap);
    nbd_log(c->srv, "connection %u: %s (%u) refused: %s", c->id,
            nbd_opt_name(opt), opt, why);
}

/* Refuses option @opt: an error reply of @type with a short human-readable
 * message, and the same as one line of the server's log. */
static int
send_error(struct nbd_conn *c, uint32_t opt, uint32_t type,
           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
send_error(struct nbd_conn *c, uint32_t opt, uint32_t type,
           const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
        msg[0] = '\0';
    }
    log_refusal(c, opt, "%s: %s", nbd_rep_name(type), msg);
    return send_reply(c, opt, type, msg, MIN((size_t)n, sizeof(msg) - 1));
}

/* The "u32 namelen, name" that heads INFO, GO and the META_CONTEXT options,
 * followed by at least @tail more bytes: NULL with *namelen set when it
 * fits in the @len bytes of the option, else what is wrong with it. */
static const char *
export_name_error(const uint8_t *d, uint32_t len, uint32_t tail,
                  uint32_t *namelen)
{
    if (len < 4 + tail || (*namelen = be32_load(d)) > len - 4 - tail) {
        return "export name length exceeds the option";
    }
    if (*namelen > NBD_MAX_STRING) {
        return "export name is too long";
    }
    return NULL;
}

/* Refuses @opt for naming an export the server does not have. */
static int
send_no_export(struct nbd_conn *c, uint32_t opt, const uint8_t *name,
               uint32_t namelen)
{
    return send_error(c, opt, NBD_REP_ERR_UNKNOWN, "no export named '%.*s'",
                      (int)MIN(namelen, 64u), (const char *)name);
}

static int
send_info_export(struct nbd_conn *c, uint32_t opt, struct nbd_export *exp)
{
    uint8_t b[12];

    be16_store(b, NBD_INFO_EXPORT);
    be64_store(b + 2, exp->size);
    be16_store(b + 10, nbd_export_flags(exp, c->sr));
    return send_reply(c, opt, NBD_REP_INFO, b, sizeof(b));
}

static int
send_info_string(struct nbd_conn *c, uint32_t opt, uint16_t type,
                 const char *s)
{
    size_t len = strlen(s);
    uint8_t *b = malloc(2 + len);
    int r;

    if (!b) {
        return -ENOMEM;
    }
    be16_store(b, type);
    memcpy(b + 2, s, len);
    r = send_reply(c, opt, NBD_REP_INFO, b, 2 + len);
    free(b);
    return r;
}

static int
send_info_block_size(struct nbd_conn *c, uint32_t opt,
                     struct nbd_export *exp)
{
    uint8_t b[14];

    be16_store(b, NBD_INFO_BLOCK_SIZE);
    be32_store(b + 2, NBD_MIN_BLOCK);
    be32_store(b + 6, (uint32_t)exp->cluster);
    be32_store(b + 10, NBD_MAX_PAYLOAD);
    return send_reply(c, opt, NBD_REP_INFO, b, sizeof(b));
}

/* NBD_OPT_LIST: one REP_SERVER per named export, then ACK. */
static int
opt_list(struct nbd_conn *c, uint32_t opt, uint32_t len)
{
    size_t i;
    int r;

    if (len) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "NBD_OPT_LIST takes no data");
    }
    for (i = 0; i < c->srv->nexports; i++) {
        struct nbd_export *e = c->srv->exports[i];
        size_t dlen = e->description ? strlen(e->description) : 0;
        uint8_t *b = malloc(4 + e->name_len + dlen);

        if (!b) {
            return -ENOMEM;
        }
        be32_store(b, (uint32_t)e->name_len);
        memcpy(b + 4, e->name, e->name_len);
        if (dlen) {
            memcpy(b + 4 + e->name_len, e->description, dlen);
        }
        r = send_reply(c, opt, NBD_REP_SERVER, b, 4 + e->name_len + dlen);
        free(b);
        if (r < 0) {
            return r;
        }
    }
    return send_ack(c, opt);
}

/*
 * NBD_OPT_INFO / NBD_OPT_GO: u32 namelen, name, u16 n, n x u16 requests.
 * Returns 0 to go on haggling, 2 when GO succeeded, <0 to drop.
 */
static int
opt_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
    bool want_name = false, want_desc = false, want_bs = false;
    struct nbd_export *exp;
    const char *why;
    uint32_t namelen;
    uint16_t n, i;
    int r;

    why = export_name_error(d, len, 2, &namelen);
    if (why) {
        return send_error(c, opt, NBD_REP_ERR_INVALID, "%s", why);
    }
    n = be16_load(d + 4 + namelen);
    if ((uint64_t)len != 4ull + namelen + 2 + 2ull * n) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "option length does not match its content");
    }
    for (i = 0; i < n; i++) {
        switch (be16_load(d + 4 + namelen + 2 + 2 * i)) {
        case NBD_INFO_NAME: want_name = true; break;
        case NBD_INFO_DESCRIPTION: want_desc = true; break;
        case NBD_INFO_BLOCK_SIZE: want_bs = true; break;
        default: break;          /* unknown requests are ignored */
        }
    }
    exp = nbd_export_find(c->srv, (const char *)d + 4, namelen);
    if (!exp) {
        return send_no_export(c, opt, d + 4, namelen);
    }
    r = send_info_export(c, opt, exp);
    if (!r && want_name) {
        r = send_info_string(c, opt, NBD_INFO_NAME, exp->name);
    }
    if (!r && want_desc && exp->description) {
        r = send_info_string(c, opt, NBD_INFO_DESCRIPTION, exp->description);
    }
    if (!r && want_bs) {
        r = send_info_block_size(c, opt, exp);
    }
    if (!r) {
        r = send_ack(c, opt);
    }
    if (r < 0 || opt == NBD_OPT_INFO) {
        return r;
    }
    c->exp = exp;
    if (c->meta_exp != exp) {
        c->meta_base = c->meta_depth = false;
    }
    return 2;
}

/* NBD_OPT_EXPORT_NAME: no error reply is possible; drop on failure (and
 * say why in the log). */
static int
opt_export_name(struct nbd_conn *c, const uint8_t *d, uint32_t len)
{
    uint8_t b[8 + 2 + 124];
    struct iovec iov;
    struct nbd_export *exp;

    if (len > NBD_MAX_STRING) {
        log_refusal(c, NBD_OPT_EXPORT_NAME, "export name is too long");
        return -ENAMETOOLONG;
    }
    exp = nbd_export_find(c->srv, (const char *)d, len);
    if (!exp) {
        log_refusal(c, NBD_OPT_EXPORT_NAME, "no export named '%.*s'",
                    (int)MIN(len, 64u), (const char *)d);
        return -ENOENT;
    }
    memset(b, 0, sizeof(b));
    be64_store(b, exp->size);
    be16_store(b + 8, nbd_export_flags(exp, c->sr));
    iov.iov_base = b;
    iov.iov_len = c->no_zeroes ? 10 : sizeof(b);
    c->exp = exp;
    if (c->meta_exp != exp) {
        c->meta_base = c->meta_depth = false;
    }
    return c->io->writev(c->io, &iov, 1);
}

static int
send_context(struct nbd_conn *c, uint32_t opt, uint32_t id, const char *name)
{
    size_t len = strlen(name);
    uint8_t b[4 + 64];

    be32_store(b, id);
    memcpy(b + 4, name, len);
    return send_reply(c, opt, NBD_REP_META_CONTEXT, b, 4 + len);
}

static bool
query_is(const uint8_t *q, uint32_t qlen, const char *s)
{
    return qlen == strlen(s) && !memcmp(q, s, qlen);
}

/*
 * NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT:
 * u32 namelen, name, u32 nq, nq x (u32 len, query).
 */
static int
opt_meta_context(struct nbd_conn *c, uint32_t opt, const uint8_t *d,
                 uint32_t len)
{
    bool set = opt == NBD_OPT_SET_META_CONTEXT;
    bool base = false, depth = false;
    struct nbd_export *exp;
    const char *why;
    uint32_t namelen, nq, i, pos;
    int r = 0;

    if (set) {
        /* the selection is replaced, even if this option fails */
        c->meta_base = c->meta_depth = false;
        c->meta_exp = NULL;
        if (!c->sr) {
            return send_error(c, opt, NBD_REP_ERR_INVALID,
                              "structured replies were not negotiated");
        }
    }
    why = export_name_error(d, len, 4, &namelen);
    if (why) {
        return send_error(c, opt, NBD_REP_ERR_INVALID, "%s", why);
    }
    nq = be32_load(d + 4 + namelen);
    pos = 8 + namelen;
    /* validate the whole query list before answering anything */
    for (i = 0; i < nq; i++) {
        uint32_t qlen;

        if (len - pos < 4) {
            return send_error(c, opt, NBD_REP_ERR_INVALID,
                              "query list runs past the option");
        }
        qlen = be32_load(d + pos);
        if (qlen > NBD_MAX_STRING || qlen > len - pos - 4) {
            return send_error(c, opt, NBD_REP_ERR_INVALID,
                              "query length exceeds the option");
        }
        pos += 4 + qlen;
    }
    if (pos != len) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "option length does not match its content");
    }
    exp = nbd_export_find(c->srv, (const char *)d + 4, namelen);
    if (!exp) {
        return send_no_export(c, opt, d + 4, namelen);
    }
    if (nq == 0 && !set) {
        base = depth = true;
    }
    for (i = 0, pos = 8 + namelen; i < nq; i++) {
        uint32_t qlen = be32_load(d + pos);
        const uint8_t *q = d + pos + 4;

        if (query_is(q, qlen, ctx_base) || (!set && query_is(q, qlen, "base:"))) {
            base = true;
        }
        if (query_is(q, qlen, ctx_depth) || (!set && query_is(q, qlen, "qemu:"))) {
            depth = true;
        }
        pos += 4 + qlen;
    }
    if (base) {
        r = send_context(c, opt, set ? NBD_CTX_BASE_ALLOCATION : 0, ctx_base);
    }
    if (!r && depth) {
        r = send_context(c, opt, set ? NBD_CTX_ALLOCATION_DEPTH : 0,
                         ctx_depth);
    }
    if (!r) {
        r = send_ack(c, opt);
    }
    if (!r && set) {
        c->meta_base = base;
        c->meta_depth = depth;
        c->meta_exp = exp;
    }
    return r;
}

/* NBD_OPT_STARTTLS: ACK, the TLS handshake, then a fresh negotiation. */
static int
opt_starttls(struct nbd_conn *c, uint32_t opt, uint32_t len)
{
    int r;

    if (c->srv->tls_mode == VMC_NBD_TLS_OFF) {
        return send_error(c, opt, NBD_REP_ERR_POLICY,
                          "TLS is not supported by this server");
    }
    if (len) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "NBD_OPT_STARTTLS takes no data");
    }
    if (c->tls) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "TLS is already started");
    }
    r = send_ack(c, opt);
    if (r == 0) {
        r = nbd_tls_start(c);
    }
    /* forget everything negotiated in the clear */
    c->sr = false;
    c->meta_base = c->meta_depth = false;
    c->meta_exp = NULL;
    c->exp = NULL;
    return r;
}

/* FORCEDTLS before STARTTLS: every option but STARTTLS and ABORT is
 * refused; EXPORT_NAME, which cannot be, ends the session. 1 if @opt was
 * refused (*@r set), 0 to handle it. */
static int
tls_required(struct nbd_conn *c, uint32_t opt, int *r)
{
    if (c->srv->tls_mode != VMC_NBD_TLS_ONLY || c->tls ||
        opt == NBD_OPT_STARTTLS || opt == NBD_OPT_ABORT) {
        return 0;
    }
    if (opt == NBD_OPT_EXPORT_NAME) {
        log_refusal(c, opt, "TLS is required (NBD_OPT_STARTTLS first)");
        *r = -EACCES;
    } else {
        *r = send_error(c, opt, NBD_REP_ERR_TLS_REQD,
                        "TLS is required (NBD_OPT_STARTTLS first)");
    }
    return 1;
}

/* One option whose payload @d (@len bytes) has been read. */
static int
handle_option(struct nbd_conn *c, uint32_t opt, const uint8_t *d,
              uint32_t len)
{
    int r;

    if (opt == NBD_OPT_EXPORT_NAME && tls_required(c, opt, &r)) {
        return r;
    }
    if (!c->fixed && opt != NBD_OPT_EXPORT_NAME) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "only NBD_OPT_EXPORT_NAME without fixed newstyle");
    }
    if (tls_required(c, opt, &r)) {
        return r;
    }
    switch (opt) {
    case NBD_OPT_EXPORT_NAME:
        r = opt_export_name(c, d, len);
        return r < 0 ? r : 2;
    case NBD_OPT_ABORT:
        send_ack(c, opt);       /* the client may already be gone */
        return 1;
    case NBD_OPT_LIST:
        return opt_list(c, opt, len);
    case NBD_OPT_STARTTLS:
        return opt_starttls(c, opt, len);
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        return opt_info_go(c, opt, d, len);
    case NBD_OPT_STRUCTURED_REPLY:
        if (len) {
            return send_error(c, opt, NBD_REP_ERR_INVALID,
                              "NBD_OPT_STRUCTURED_REPLY takes no data");
        }
        if (c->sr) {
            return send_error(c, opt, NBD_REP_ERR_INVALID,
                              "structured replies already negotiated");
        }
        c->sr = true;
        return send_ack(c, opt);
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        return opt_meta_context(c, opt, d, len);
    default:
        return send_error(c, opt, NBD_REP_ERR_UNSUP,
                          "option %u is not supported", opt);
    }
}

int
nbd_handshake(struct nbd_conn *c)
{
    unsigned max_opts = 64 + 4 * (unsigned)c->srv->nexports;
    uint8_t greet[18], hdr[16];
    uint8_t *data = NULL;
    uint32_t cflags;
    struct iovec iov = { .iov_base = greet, .iov_len = sizeof(greet) };
    int r;

    be64_store(greet, NBD_MAGIC);
    be64_store(greet + 8, NBD_OPT_MAGIC);
    be16_store(greet + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    r = c->io->writev(c->io, &iov, 1);
    if (r == 0) {
        r = c->io->read(c->io, hdr, 4);
    }
    if (r < 0) {
        return r;
    }
    cflags = be32_load(hdr);
    if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE |
                             NBD_FLAG_C_NO_ZEROES)) {
        nbd_log(c->srv, "connection %u: unknown client flags 0x%x", c->id,
                cflags);
        return -EPROTO;         /* unknown client flags: MUST drop */
    }
    c->fixed = cflags & NBD_FLAG_C_FIXED_NEWSTYLE;
    c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

    for (;;) {
        uint32_t opt, len;

        r = c->io->read(c->io, hdr, sizeof(hdr));
        if (r < 0) {
            break;
        }
        if (be64_load(hdr) != NBD_OPT_MAGIC) {
            nbd_log(c->srv, "connection %u: bad option magic 0x%016llx",
                    c->id, (unsigned long long)be64_load(hdr));
            r = -EPROTO;
            break;
        }
        opt = be32_load(hdr + 8);
        len = be32_load(hdr + 12);
        if (len > NBD_MAX_OPTION) {
            if (opt != NBD_OPT_EXPORT_NAME) {
                send_error(c, opt, NBD_REP_ERR_TOO_BIG,
                           "option data is too large");
            } else {
                log_refusal(c, opt, "option data is too large");
            }
            r = -EMSGSIZE;
            break;
        }
        if (++c->nopts > max_opts) {
            log_refusal(c, opt, "more than %u options", max_opts);
            r = -EPROTO;
            break;
        }
        free(data);
        data = malloc(len ? len : 1);
        if (!data) {
            r = -ENOMEM;
            break;
        }
        r = c->io->read(c->io, data, len);
        if (r < 0) {
            break;
        }
        r = handle_option(c, opt, data, len);
        if (r != 0) {
            break;
        }
    }
    free(data);
    if (r == 2) {
        return 0;
    }
    return r;
}
