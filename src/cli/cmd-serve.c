/*
 * cmd-serve.c - "vm-clone serve": export image files over NBD.
 *
 * Each TARGET is an image file, exported under its basename (and, when
 * there is only one, also as the default export ""). The server runs in
 * the foreground until SIGINT or SIGTERM, then answers what it has
 * received, flushes every export and exits. Without --socket or
 * --listen it listens on a Unix socket in a fresh 0700 directory.
 * One URI per export is printed on stdout once the server listens.
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

#include "cli/cli.h"
#include "vmclone-nbd.h"

static const char serve_usage[] =
    "usage: " CLI_NAME " serve [--socket PATH] [--listen ADDR:PORT] "
    "[--readonly]\n"
    "                     [--export-name NAME] [--pid-file FILE] "
    "[--max-connections N]\n"
    "                     [--handshake-timeout SECS] [-f fmt] "
    "[--backing-fmt fmt] [-v]\n"
    "                     TARGET...\n"
    "\n"
    "Export image files (with their backing chains) over NBD until "
    "SIGINT/SIGTERM.\n"
    "\n"
    "  -k, --socket PATH        Unix socket to listen on (default: a new "
    "0700 directory)\n"
    "  -l, --listen ADDR:PORT   listen on TCP, on this address only\n"
    "  -r, --readonly           export read-only\n"
    "  -x, --export-name NAME   export name (one TARGET only; default: "
    "its basename)\n"
    "      --pid-file FILE      write the process id to FILE once "
    "listening\n"
    "  -e, --max-connections N  simultaneous clients (default 100)\n"
    "      --handshake-timeout SECS  time a client has to pick an export "
    "(default 10)\n"
    "  -f fmt                   format of the TARGETs (default: probe)\n"
    "      --backing-fmt fmt    format for backing files that do not "
    "record one\n"
    "  -v, --verbose            log connections on stderr\n";

enum {
    OPT_PID_FILE = 0x200,
    OPT_HANDSHAKE_TIMEOUT,
};

static struct vmc_nbd_server *volatile g_srv;

static void
on_signal(int sig)
{
    (void)sig;
    if (g_srv) {
        vmc_nbd_server_stop(g_srv);
    }
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

static int
parse_uint(const char *s, unsigned max, unsigned *out, const char *what)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || end == s || s[0] == '-' || v == 0 || v > max) {
        return cli_error("invalid %s '%s' (1 to %u)", what, s, max);
    }
    *out = (unsigned)v;
    return 0;
}

int
cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "socket", required_argument, NULL, 'k' },
        { "listen", required_argument, NULL, 'l' },
        { "readonly", no_argument, NULL, 'r' },
        { "read-only", no_argument, NULL, 'r' },
        { "export-name", required_argument, NULL, 'x' },
        { "pid-file", required_argument, NULL, OPT_PID_FILE },
        { "max-connections", required_argument, NULL, 'e' },
        { "handshake-timeout", required_argument, NULL,
          OPT_HANDSHAKE_TIMEOUT },
        { "backing-fmt", required_argument, NULL, OPT_BACKING_FMT },
        { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
        { "verbose", no_argument, NULL, 'v' },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "serve";
    struct vmc_nbd_server_opts so = { 0 };
    struct cli_open open_opts = { 0 };
    struct vmc_error err = { 0 };
    struct vmc_nbd_server *srv = NULL;
    struct sigaction sa;
    const char *export_name = NULL, *pid_file = NULL;
    char tmpdir[PATH_MAX] = "", sockpath[PATH_MAX];
    bool readonly = false, verbose = false, wrote_pid = false;
    unsigned secs;
    int c, i, r, rc = CLI_EXIT_FAIL;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:l:rx:e:f:vh", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'k': so.socket_path = optarg; break;
        case 'l': so.listen_addr = optarg; break;
        case 'r': readonly = true; break;
        case 'x': export_name = optarg; break;
        case 'f': open_opts.format = optarg; break;
        case 'v': verbose = true; break;
        case OPT_PID_FILE: pid_file = optarg; break;
        case 'e':
            if (parse_uint(optarg, 65536, &so.max_connections,
                           "--max-connections")) {
                return CLI_EXIT_FAIL;
            }
            break;
        case OPT_HANDSHAKE_TIMEOUT:
            if (parse_uint(optarg, 3600, &secs, "--handshake-timeout")) {
                return CLI_EXIT_FAIL;
            }
            so.handshake_ms = secs * 1000;
            break;
        case OPT_BACKING_FMT:
        case OPT_MAX_DEPTH:
            if (cli_open_option(&open_opts, c, optarg, verb)) {
                return CLI_EXIT_FAIL;
            }
            break;
        case 'h':
        case OPT_HELP:
            fputs(serve_usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_getopt_error(verb, c, argv);
        }
    }
    if (optind >= argc) {
        return cli_usage_error(verb, "expecting at least one TARGET");
    }
    if (export_name && argc - optind > 1) {
        return cli_usage_error(verb, "--export-name needs exactly one "
                               "TARGET");
    }
    if (verbose) {
        so.log = log_line;
    }
    if (!so.socket_path && !so.listen_addr) {
        const char *base = getenv("XDG_RUNTIME_DIR");

        if (!base || !*base) {
            base = getenv("TMPDIR");
        }
        if (!base || !*base) {
            base = "/tmp";
        }
        snprintf(tmpdir, sizeof(tmpdir), "%s/vm-clone-serve.XXXXXX", base);
        if (!mkdtemp(tmpdir)) {     /* mode 0700 */
            return cli_error("cannot create a directory for the socket: "
                             "%s", strerror(errno));
        }
        snprintf(sockpath, sizeof(sockpath), "%s/nbd.sock", tmpdir);
        so.socket_path = sockpath;
    }

    r = vmc_nbd_server_new(&srv, &so, &err);
    if (r < 0) {
        cli_error_lib(&err, r);
        goto out;
    }
    for (i = optind; i < argc; i++) {
        struct vmc_nbd_export_opts eo = { 0 };
        const char *slash = strrchr(argv[i], '/');

        eo.path = argv[i];
        eo.name = export_name ? export_name : (slash ? slash + 1 : argv[i]);
        eo.readonly = readonly;
        eo.is_default = argc - optind == 1;
        if (cli_open_opts(&open_opts, 0, &eo.open)) {
            goto out;
        }
        r = vmc_nbd_server_add_export(srv, &eo, &err);
        if (r < 0) {
            cli_error_lib(&err, r);
            goto out;
        }
    }
    r = vmc_nbd_server_listen(srv, &err);
    if (r < 0) {
        cli_error_lib(&err, r);
        goto out;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_srv = srv;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (i = optind; i < argc; i++) {
        const char *slash = strrchr(argv[i], '/');
        const char *name = export_name ? export_name
                                       : (slash ? slash + 1 : argv[i]);

        if (so.socket_path) {
            fputs("nbd+unix:///", stdout);
            print_uri_name(stdout, name);
            printf("?socket=%s\n", so.socket_path);
        }
        if (so.listen_addr) {
            const char *colon = strrchr(so.listen_addr, ':');

            printf("nbd://%.*s:%u/", (int)(colon - so.listen_addr),
                   so.listen_addr, vmc_nbd_server_tcp_port(srv));
            print_uri_name(stdout, name);
            putchar('\n');
        }
    }
    fflush(stdout);
    if (pid_file) {
        if (write_pid_file(pid_file)) {
            goto out;
        }
        wrote_pid = true;
    }

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
    return rc;
}
