/*
 * cmd-serve.c - "vm-clone serve": export image files over NBD.
 *
 * Each TARGET is an image file, exported under its basename, or the name
 * of a VM in the catalog: every disk of it, as VM/disk0, VM/disk1, ...
 * (a template's disks are exported read-only: templates are sealed).
 * When there is only one export it is also the default export "". A
 * TARGET that names an existing file is always that file. A disk in an rbd
 * pool (and a TARGET "rbd:POOL/.../IMAGE") is an rbd image, served through
 * librbd (vmc_rbd_image_open(): in use while served, refused while
 * another client has it open, a template's image only read-only).
 * The server runs in the foreground until SIGINT or SIGTERM, then
 * answers what it has received, flushes every export and exits. Without
 * --socket or --listen it listens on a Unix socket in a fresh 0700
 * directory.
 * One URI per export is printed on stdout once the server listens.
 * --tls-creds/--tls-psk make TLS required (--tls on: offered); plain TCP
 * on an address other than loopback needs --insecure.
 * --snapshot (like qemu-nbd -s): each writable export is a throwaway
 * qcow2 overlay over its file (src/ops/scratch.c), unlinked as soon as
 * the export has it open, so the writes vanish when the server exits,
 * even by kill -9; the file itself is only read. An rbd image gets the
 * same local overlay, with the image (opened read-only through librbd,
 * in use while served) as its backing layer: nothing is made in Ceph.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cat-cli.h"
#include "vmclone-nbd.h"
#include "vmclone-ops.h"
#include "vmclone-rbd.h"

static const char serve_usage[] =
    "usage: " CLI_NAME " serve [--socket PATH] [--listen ADDR:PORT] "
    "[--readonly]\n"
    "                     [--export-name NAME] [--pid-file FILE] "
    "[--max-connections N]\n"
    "                     [--handshake-timeout SECS] [--idle-timeout SECS]\n"
    "                     [--request-timeout SECS] [--reply-budget SIZE]\n"
    "                     [--tls-creds DIR] [--tls-psk FILE] "
    "[--tls off|on|only] [--insecure]\n"
    "                     [-f fmt] [--backing-fmt fmt] [--snapshot] [-v]\n"
    "                     [--home DIR] TARGET...\n"
    "\n"
    "Export image files (with their backing chains) over NBD until "
    "SIGINT/SIGTERM.\n"
    "A TARGET that is not a file but a VM in the catalog exports every "
    "disk of the\n"
    "VM as VM/disk0, VM/disk1, ...; a template's disks are exported "
    "read-only.\n"
    "A disk in an rbd pool, or a TARGET rbd:POOL/.../IMAGE, is served through "
    "librbd.\n"
    "\n"
    "  -k, --socket PATH        Unix socket to listen on (default: a new "
    "0700 directory)\n"
    "  -l, --listen ADDR:PORT   listen on TCP, on this address only "
    "(:PORT = 127.0.0.1)\n"
    "  -r, --readonly           export read-only\n"
    "  -x, --export-name NAME   export name (one TARGET only; default: "
    "its basename;\n"
    "                           for a VM: the prefix of its disks' "
    "names)\n"
    "      --pid-file FILE      write the process id to FILE once "
    "listening\n"
    "  -e, --max-connections N  simultaneous clients (default 100)\n"
    "      --handshake-timeout SECS  time a client has to pick an export "
    "(default 10)\n"
    "      --idle-timeout SECS  drop a client idle this long (default: "
    "never)\n"
    "      --request-timeout SECS  time a request may take to arrive, and "
    "a reply to\n"
    "                           be read (default 30)\n"
    "      --reply-budget SIZE  request/reply data all clients may hold "
    "(default 256M)\n"
    "      --tls-creds DIR      X.509 credentials: server-cert.pem, "
    "server-key.pem,\n"
    "                           ca-cert.pem (then clients need a "
    "certificate it signed)\n"
    "      --tls-psk FILE       pre-shared keys, psktool's "
    "username:hexkey lines\n"
    "      --tls MODE           only (default with credentials): TLS "
    "required; on:\n"
    "                           offered; off (default without)\n"
    "      --insecure           allow plain NBD on TCP to an address other "
    "than loopback\n"
    "  -f fmt                   format of the TARGETs (default: probe)\n"
    "      --backing-fmt fmt    format for backing files that do not "
    "record one\n"
    "  -s, --snapshot           writes go to a throwaway overlay, dropped "
    "when the\n"
    "                           server exits (the TARGETs are only read)\n"
    "  -v, --verbose            log connections on stderr\n"
    "      --home DIR           the catalog's store (default "
    "$VMCLONE_HOME)\n";

enum {
    OPT_PID_FILE = 0x200,
    OPT_HANDSHAKE_TIMEOUT,
};

static struct vmc_nbd_server *volatile g_srv;
static volatile sig_atomic_t g_stop;

/* Installed before anything is opened: a signal that comes before the
 * server exists is remembered in g_stop and honoured once it does. */
static void
on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_srv) {
        vmc_nbd_server_stop(g_srv);
    }
}

/* SIGINT and SIGTERM stop the server; SIGPIPE is ignored. */
static void
install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* One export: a file, or one disk of a catalogued VM or template. */
struct target {
    char *path;
    char *name;
    bool readonly;
    bool overlay;           /* path is a --snapshot overlay (qcow2) */
    char *rbd_backing;      /* the rbd image below that overlay, or NULL */
};

struct targets {
    struct target *v;
    size_t n, cap;
    struct catcli cat;      /* opened on the first name that is no file */
    bool cat_open;
    /* where --snapshot makes its overlays: a catalogued target's in its
     * store (where the next command finds what a killed server left),
     * a file's under runtime_base() */
    char scratch_base[PATH_MAX];
};

static int
add_target(struct targets *t, const char *path, const char *name,
           bool readonly)
{
    struct target *e;

    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct target *v = realloc(t->v, cap * sizeof(*v));

        if (!v) {
            return cli_error("out of memory");
        }
        t->v = v;
        t->cap = cap;
    }
    e = &t->v[t->n];
    e->path = strdup(path);
    e->name = strdup(name);
    e->readonly = readonly;
    e->overlay = false;
    e->rbd_backing = NULL;
    if (!e->path || !e->name) {
        free(e->path);
        free(e->name);
        return cli_error("out of memory");
    }
    t->n++;
    return 0;
}

static void
targets_free(struct targets *t)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        free(t->v[i].path);
        free(t->v[i].name);
        free(t->v[i].rbd_backing);
    }
    free(t->v);
    if (t->cat_open) {
        catcli_close(&t->cat);
    }
}

/* Open the catalog, but never create a store just because a TARGET was
 * mistyped: a missing store means "no such file". */
static int
open_catalog(struct targets *t, const char *home, const char *target)
{
    char *dir = NULL, *db;
    int r;

    if (t->cat_open) {
        return 0;
    }
    r = vmc_catalog_home(home, &dir);
    if (r < 0) {
        return cli_error("'%s': no such file (and no catalog: %s)", target,
                         strerror(-r));
    }
    db = malloc(strlen(dir) + sizeof("/catalog.db"));
    if (!db) {
        free(dir);
        return cli_error("out of memory");
    }
    sprintf(db, "%s/catalog.db", dir);
    r = access(db, F_OK);
    free(db);
    if (r < 0) {
        r = cli_error("'%s': no such file, and no catalog in %s", target,
                      dir);
        free(dir);
        return r;
    }
    free(dir);
    t->cat.verb = "serve";
    t->cat.home = home;
    if (catcli_open(&t->cat, 0)) {
        return CLI_EXIT_FAIL;
    }
    t->cat_open = true;
    return 0;
}

static const char *
jget(struct json_object *o, const char *key)
{
    const char *s = json_object_get_string(json_object_object_get(o, key));

    return s ? s : "";
}

/* Add the disks listed in @disks (objects with "disk" and "path") as
 * PREFIX/diskN. */
static int
add_disks(struct targets *t, struct json_object *disks, const char *prefix,
          bool readonly, const char *kind, const char *what)
{
    size_t i, n = disks ? json_object_array_length(disks) : 0;
    char *name;

    if (n == 0) {
        return cli_error("%s '%s' has no disks", kind, what);
    }
    name = malloc(strlen(prefix) + 32);
    if (!name) {
        return cli_error("out of memory");
    }
    for (i = 0; i < n; i++) {
        struct json_object *d = json_object_array_get_idx(disks, i);

        sprintf(name, "%s/disk%d", prefix,
                json_object_get_int(json_object_object_get(d, "disk")));
        if (add_target(t, jget(d, "path"), name, readonly)) {
            free(name);
            return CLI_EXIT_FAIL;
        }
    }
    free(name);
    return 0;
}

/* TARGET -> exports: an existing file (or a path with a '/') is a file;
 * else a VM of the catalog, else a template (read-only). */
static int
resolve_target(struct targets *t, const char *arg, const char *home,
               const char *export_name, bool readonly)
{
    const char *params[1] = { arg };
    struct json_object *vm, *arr, *disks;
    struct stat st;
    const char *slash = strrchr(arg, '/');
    int r;

    if (slash || stat(arg, &st) == 0 || errno != ENOENT) {
        return add_target(t, arg, export_name ? export_name
                                              : (slash ? slash + 1 : arg),
                          readonly);
    }
    r = open_catalog(t, home, arg);
    if (r) {
        return r;
    }
    vm = catcli_vm_json(&t->cat, arg);
    if (vm) {
        if (strcmp(jget(vm, "state"), "ready")) {
            r = cli_error("VM '%s' is %s, not ready", arg, jget(vm, "state"));
        } else {
            json_object_object_get_ex(vm, "disks", &disks);
            r = add_disks(t, disks, export_name ? export_name : arg,
                          readonly, "VM", arg);
        }
        json_object_put(vm);
        return r;
    }
    arr = catcli_report(&t->cat, VMC_REPORT_TEMPLATE_EXPORT, params, 1);
    if (!arr) {
        return CLI_EXIT_FAIL;
    }
    if (json_object_array_length(arr) == 0) {
        r = cli_error("'%s' is neither a file nor a VM or template in the "
                      "catalog (%s)", arg, vmc_catalog_dir(t->cat.cat));
    } else if (strcmp(jget(json_object_array_get_idx(arr, 0), "state"),
                      "ready")) {
        r = cli_error("template '%s' is %s, not ready", arg,
                      jget(json_object_array_get_idx(arr, 0), "state"));
    } else {
        if (!readonly) {
            fprintf(stderr, CLI_NAME ": template '%s' is sealed: its disks "
                    "are exported read-only\n", arg);
        }
        r = add_disks(t, arr, export_name ? export_name : arg, true,
                      "template", arg);
    }
    json_object_put(arr);
    return r;
}

/* $XDG_RUNTIME_DIR, $TMPDIR or /tmp. */
static const char *
runtime_base(void)
{
    const char *base = getenv("XDG_RUNTIME_DIR");

    if (!base || !*base) {
        base = getenv("TMPDIR");
    }
    return base && *base ? base : "/tmp";
}

/* Every TARGET of the command line; the catalog is closed afterwards. */
static int
resolve_targets(struct targets *tg, int n, char **args, const char *home,
                const char *export_name, bool readonly)
{
    int i;

    for (i = 0; i < n; i++) {
        if (resolve_target(tg, args[i], home, export_name, readonly)) {
            return CLI_EXIT_FAIL;
        }
    }
    snprintf(tg->scratch_base, sizeof(tg->scratch_base), "%s/%s",
             tg->cat_open ? vmc_catalog_dir(tg->cat.cat) : runtime_base(),
             tg->cat_open ? "run/scratch" : "vm-clone-scratch");
    if (tg->cat_open) {
        catcli_close(&tg->cat);
        tg->cat_open = false;
    }
    return 0;
}

/*
 * --snapshot: every writable target becomes a new overlay in a scratch
 * directory under tg->scratch_base (what dead servers left there is
 * removed first); the target's file is its backing file, in the format
 * it has.
 */
static int
snapshot_targets(struct targets *tg, const struct cli_open *oo,
                 struct vmc_scratch **out)
{
    const char *base = tg->scratch_base;
    struct vmc_error err = { 0 };
    struct vmc_image *img;
    enum vmc_format fmt;
    char *ov;
    size_t k;
    int r;

    vmc_scratch_sweep(base, NULL, NULL);
    r = vmc_scratch_new(out, base, &err);
    for (k = 0; r == 0 && k < tg->n; k++) {
        if (tg->v[k].readonly) {
            continue;
        }
        if (vmc_rbd_is_spec(tg->v[k].path)) {
            /* a local overlay whose backing layer is the image, read
             * through librbd: nothing is made in Ceph */
            r = vmc_scratch_overlay_rbd(*out, tg->v[k].path, &ov, &err);
            if (r == 0) {
                tg->v[k].rbd_backing = tg->v[k].path;
                tg->v[k].path = ov;
                tg->v[k].overlay = true;
            }
            continue;
        }
        if (cli_open_image(&img, tg->v[k].path, oo, 0)) {
            return CLI_EXIT_FAIL;
        }
        fmt = vmc_image_format(img);
        vmc_image_close(img);
        r = vmc_scratch_overlay(*out, tg->v[k].path, fmt, &ov, &err);
        if (r == 0) {
            free(tg->v[k].path);
            tg->v[k].path = ov;
            tg->v[k].overlay = true;
        }
    }
    return r < 0 ? cli_error_lib(&err, r) : 0;
}

static void
log_line(const char *line, void *opaque)
{
    (void)opaque;
    fprintf(stderr, CLI_NAME ": %s\n", line);
}

/* Percent-encode an export name for the path of an NBD URI. */
static void
print_uri_name(FILE *f, const char *name)
{
    const unsigned char *p;

    for (p = (const unsigned char *)name; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
            fputc(*p, f);
        } else {
            fprintf(f, "%%%02X", *p);
        }
    }
}

static int
write_pid_file(const char *path)
{
    char tmp[PATH_MAX];
    FILE *f;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        return cli_error("pid file name '%s' is too long", path);
    }
    f = fopen(tmp, "w");
    if (!f) {
        return cli_error("cannot write pid file '%s': %s", path,
                         strerror(errno));
    }
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return cli_error("cannot write pid file '%s': %s", path,
                         strerror(errno));
    }
    return 0;
}

/* A whole number from 1 to @max for the option @what, or a usage error
 * (exit 2) that names it. */
static int
parse_uint(const char *s, unsigned max, unsigned *out, const char *what)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || end == s || s[0] < '0' || s[0] > '9' || v == 0 ||
        v > max) {
        return cli_usage_error("serve", "invalid %s '%s' (1 to %u)", what, s,
                               max);
    }
    *out = (unsigned)v;
    return 0;
}

/* No --socket and no --listen: a socket in a private directory (mode
 * 0700) under runtime_base(). */
static int
make_socket_dir(char tmpdir[PATH_MAX], char sockpath[PATH_MAX])
{
    const char *base = runtime_base();

    snprintf(tmpdir, PATH_MAX, "%s/vm-clone-serve.XXXXXX", base);
    if (!mkdtemp(tmpdir)) {     /* mode 0700 */
        tmpdir[0] = '\0';
        return cli_error("cannot create a directory for the socket: %s",
                         strerror(errno));
    }
    snprintf(sockpath, PATH_MAX, "%s/nbd.sock", tmpdir);
    return 0;
}

/* One export per target; prints the error and returns non-zero on one. */
static int
add_exports(struct vmc_nbd_server *srv, const struct targets *tg,
            const struct cli_open *open_opts)
{
    struct vmc_error err = { 0 };
    size_t k;
    int r;

    for (k = 0; k < tg->n; k++) {
        struct vmc_nbd_export_opts eo = { 0 };

        eo.path = tg->v[k].path;
        eo.name = tg->v[k].name;
        eo.readonly = tg->v[k].readonly;
        eo.is_default = tg->n == 1;
        if (cli_open_opts(open_opts, 0, &eo.open)) {
            return CLI_EXIT_FAIL;
        }
        if (tg->v[k].overlay) {
            eo.open.format = VMC_FMT_QCOW2;
            eo.rbd_backing = tg->v[k].rbd_backing;
        }
        r = vmc_nbd_server_add_export(srv, &eo, &err);
        if (r < 0) {
            return cli_error_lib(&err, r);
        }
    }
    return 0;
}

/* The URI of every export, one a line, on stdout. */
static void
print_uris(struct vmc_nbd_server *srv, const struct vmc_nbd_server_opts *so,
           const struct targets *tg)
{
    size_t k;

    for (k = 0; k < tg->n; k++) {
        const char *name = tg->v[k].name;

        const char *s = so->tls != VMC_NBD_TLS_OFF ? "s" : "";

        if (so->socket_path) {
            printf("nbd%s+unix:///", s);
            print_uri_name(stdout, name);
            printf("?socket=%s\n", so->socket_path);
        }
        if (so->listen_addr) {
            const char *colon = strrchr(so->listen_addr, ':');

            printf("nbd%s://%.*s:%u/", s, (int)(colon - so->listen_addr),
                   so->listen_addr, vmc_nbd_server_tcp_port(srv));
            print_uri_name(stdout, name);
            putchar('\n');
        }
    }
    fflush(stdout);
}

static int
opt_max_connections(const char *arg, void *dest)
{
    return parse_uint(arg, 65536, dest, "--max-connections");
}

/* Seconds on the command line, milliseconds in the server options. */
static int
parse_secs_to_ms(const char *arg, unsigned max, void *dest, const char *what)
{
    unsigned secs;
    int r = parse_uint(arg, max, &secs, what);

    if (r == 0) {
        *(unsigned *)dest = secs * 1000;
    }
    return r;
}

static int
opt_handshake_timeout(const char *arg, void *dest)
{
    return parse_secs_to_ms(arg, 3600, dest, "--handshake-timeout");
}

static int
opt_idle_timeout(const char *arg, void *dest)
{
    return parse_secs_to_ms(arg, 86400, dest, "--idle-timeout");
}

static int
opt_request_timeout(const char *arg, void *dest)
{
    return parse_secs_to_ms(arg, 86400, dest, "--request-timeout");
}

static int
opt_size(const char *arg, void *dest)
{
    if (cli_parse_size(arg, dest, "--reply-budget")) {
        return cli_usage_error("serve", "invalid --reply-budget");
    }
    return 0;
}

/* --tls off|on|only, kept as 1 + enum vmc_nbd_tls (0: not given). */
static int
opt_tls(const char *arg, void *dest)
{
    static const char *const modes[] = { "off", "on", "only" };
    int i;

    for (i = 0; i < 3; i++) {
        if (strcmp(arg, modes[i]) == 0) {
            *(int *)dest = 1 + i;
            return 0;
        }
    }
    return cli_usage_error("serve", "invalid --tls '%s' (off, on or only)",
                           arg);
}

/* The TLS mode from --tls (@given: 1 + mode, 0 if absent) and the
 * credentials: TLS is required when credentials are given, and on/only
 * need them. */
static int
resolve_tls(struct vmc_nbd_server_opts *so, int given)
{
    bool creds = so->tls_creds_dir || so->tls_psk_file;

    if (!given) {
        so->tls = creds ? VMC_NBD_TLS_ONLY : VMC_NBD_TLS_OFF;
        return 0;
    }
    so->tls = (enum vmc_nbd_tls)(given - 1);
    if (so->tls != VMC_NBD_TLS_OFF && !creds) {
        return cli_usage_error("serve", "--tls %s needs --tls-creds or "
                               "--tls-psk", given == 2 ? "on" : "only");
    }
    if (so->tls == VMC_NBD_TLS_OFF && creds) {
        return cli_usage_error("serve", "--tls off contradicts --tls-creds "
                               "and --tls-psk");
    }
    return 0;
}

/* --listen ADDR:PORT: the port is 0 (any free one) to 65535; ":PORT" is loopback, and
 * every other address must be written out in full (a dotted quad, a
 * bracketed IPv6 address or a host name), so "0:PORT" cannot bind every
 * address by accident. Rewrites ":PORT" into @buf. */
static int
check_listen(const char **addr, char *buf, size_t size)
{
    const char *a = *addr, *colon = strrchr(a, ':');
    unsigned long port = 0;
    size_t hostlen, digits;

    digits = colon ? strspn(colon + 1, "0123456789") : 0;
    if (digits && digits <= 5 && !colon[1 + digits]) {
        port = strtoul(colon + 1, NULL, 10);
    }
    if (!digits || digits > 5 || colon[1 + digits] || port > 65535) {
        return cli_usage_error("serve", "invalid --listen '%s' (ADDR:PORT "
                               "or :PORT, port 0 to 65535, 0: any free "
                               "one)", a);
    }
    hostlen = (size_t)(colon - a);
    if (hostlen == 0) {
        /* ":PORT": loopback, never every address */
        snprintf(buf, size, "127.0.0.1%s", a);
        *addr = buf;
        return 0;
    }
    if (a[0] != '[' && strspn(a, "0123456789") == hostlen) {
        return cli_usage_error("serve", "invalid --listen '%s': write the "
                               "address in full (e.g. 0.0.0.0:%lu to listen "
                               "on every address)", a, port);
    }
    return 0;
}

int
cmd_serve(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "serve",
                                        .synopsis = serve_usage };
    struct vmc_nbd_server_opts so = { 0 };
    struct cli_open open_opts = { 0 };
    struct vmc_error err = { 0 };
    struct vmc_nbd_server *srv = NULL;
    struct vmc_scratch *scratch = NULL;
    struct targets tg = { 0 };
    const char *export_name = NULL, *pid_file = NULL, *home = NULL;
    char tmpdir[PATH_MAX] = "", sockpath[PATH_MAX], listen_buf[300];
    bool readonly = false, verbose = false, wrote_pid = false;
    bool snapshot = false;
    int tls_mode = 0;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING('k', "socket", "PATH", &so.socket_path, "listen on "
                       "this Unix socket"),
        CLI_OPT_STRING('l', "listen", "ADDR", &so.listen_addr, "listen on "
                       "this TCP address (\":PORT\": loopback)"),
        CLI_OPT_FLAG('r', "read-only", &readonly, "export read-only"),
        CLI_OPT_FLAG(0, "readonly", &readonly, NULL),
        CLI_OPT_STRING('x', "export-name", "NAME", &export_name, "name of "
                       "the export (one TARGET)"),
        CLI_OPT_STRING(0, "pid-file", "FILE", &pid_file, "write the pid "
                       "here once listening"),
        CLI_OPT_CALL('e', "max-connections", "N", &so.max_connections,
                     opt_max_connections, "clients at once (default 1)"),
        CLI_OPT_CALL(0, "handshake-timeout", "SECONDS", &so.handshake_ms,
                     opt_handshake_timeout, "drop a client that does not "
                     "finish the handshake in time"),
        CLI_OPT_CALL(0, "idle-timeout", "SECONDS", &so.idle_ms,
                     opt_idle_timeout,
                     "drop a client that sends no request for this long"),
        CLI_OPT_CALL(0, "request-timeout", "SECONDS", &so.request_ms,
                     opt_request_timeout, "drop a client that is this slow to send "
                     "a request or read a reply"),
        CLI_OPT_CALL(0, "reply-budget", "SIZE", &so.reply_budget, opt_size,
                     "request and reply data all clients may hold"),
        CLI_OPT_STRING(0, "tls-creds", "DIR", &so.tls_creds_dir, "X.509 "
                       "directory (server-cert.pem, server-key.pem, "
                       "ca-cert.pem)"),
        CLI_OPT_STRING(0, "tls-psk", "FILE", &so.tls_psk_file, "psktool's "
                       "username:hexkey file"),
        CLI_OPT_CALL(0, "tls", "MODE", &tls_mode, opt_tls, "off, on "
                     "(offered) or only (required; default with "
                     "credentials)"),
        CLI_OPT_FLAG(0, "insecure", &so.insecure, "allow plain TCP to an "
                     "address other than loopback"),
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPT_FLAG('s', "snapshot", &snapshot, "writes go to a "
                     "throwaway overlay, dropped at exit"),
        CLI_OPT_FLAG('v', "verbose", &verbose, "log connections and "
                     "requests on stderr"),
        CLI_OPT_STRING(0, "home", "DIR", &home, "the store that VM and "
                       "template TARGETs are looked up in"),
        CLI_OPT_END,
    };
    int r, rc = CLI_EXIT_FAIL;

    r = cli_parse_options(opts, &u, argc, argv);
    if (r == 0 && resolve_tls(&so, tls_mode)) {
        return CLI_EXIT_USAGE;
    }
    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (optind >= argc) {
        return cli_usage_error(u.verb, "expecting at least one TARGET");
    }
    if (export_name && argc - optind > 1) {
        return cli_usage_error(u.verb, "--export-name needs exactly one "
                               "TARGET");
    }
    so.log = verbose ? log_line : NULL;
    if (so.listen_addr &&
        check_listen(&so.listen_addr, listen_buf, sizeof(listen_buf))) {
        return CLI_EXIT_USAGE;
    }

    /* Before anything exists to clean up: a SIGTERM at any later point
     * ends in the normal shutdown (socket and pid file removed). */
    install_signals();

    if (resolve_targets(&tg, argc - optind, argv + optind, home,
                        export_name, readonly) ||
        (snapshot && !readonly &&
         snapshot_targets(&tg, &open_opts, &scratch))) {
        vmc_scratch_free(scratch);
        targets_free(&tg);
        return CLI_EXIT_FAIL;
    }
    if (!so.socket_path && !so.listen_addr) {
        if (make_socket_dir(tmpdir, sockpath)) {
            return CLI_EXIT_FAIL;
        }
        so.socket_path = sockpath;
    }

    r = vmc_nbd_server_new(&srv, &so, &err);
    if (r < 0) {
        cli_error_lib(&err, r);
        goto out;
    }
    g_srv = srv;
    if (g_stop) {
        vmc_nbd_server_stop(srv);
    }
    if (add_exports(srv, &tg, &open_opts)) {
        goto out;
    }
    /* the exports hold the overlays open: their names can go now */
    vmc_scratch_free(scratch);
    scratch = NULL;
    r = vmc_nbd_server_listen(srv, &err);
    if (r < 0) {
        cli_error_lib(&err, r);
        goto out;
    }

    print_uris(srv, &so, &tg);
    if (pid_file && write_pid_file(pid_file)) {
        goto out;
    }
    wrote_pid = pid_file != NULL;

    r = vmc_nbd_server_run(srv, &err);
    if (r < 0) {
        cli_error_lib(&err, r);
        goto out;
    }
    rc = CLI_EXIT_OK;

out:
    g_srv = NULL;
    r = vmc_nbd_server_free(srv);
    if (r < 0 && rc == CLI_EXIT_OK) {
        rc = cli_error("cannot flush the exports: %s", strerror(-r));
    }
    if (wrote_pid) {
        unlink(pid_file);
    }
    if (tmpdir[0]) {
        rmdir(tmpdir);
    }
    vmc_scratch_free(scratch);
    targets_free(&tg);
    return rc;
}
