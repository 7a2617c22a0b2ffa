/*
 * common.c - helpers shared by the vm-clone commands: command dispatch,
 * one-line error reporting, and parsing of the options several verbs
 * accept (formats, sizes, --output, open options, -o create options).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

/* The error document of --json (docs/cli-contract.md): the first error's
 * message and hint, printed by cli_json_errors_end() when the command
 * failed without printing a JSON document of its own. */
static struct {
    bool on;
    bool printed;
    char message[1024];
    char hint[512];
} json_err;

void
cli_json_errors(bool on)
{
    json_err.on = on;
}

void
cli_json_printed(void)
{
    json_err.printed = true;
}

void
cli_note_error(const char *message, const char *hint)
{
    if (json_err.message[0]) {
        return;
    }
    snprintf(json_err.message, sizeof(json_err.message), "%s", message);
    snprintf(json_err.hint, sizeof(json_err.hint), "%s", hint ? hint : "");
}

/* The name of exit status @rc in the error document. */
static const char *
exit_code_name(int rc)
{
    static const char *const names[] = {
        [CLI_EXIT_FAIL] = "failure", [CLI_EXIT_USAGE] = "usage",
        [CLI_EXIT_NOT_FOUND] = "not_found", [CLI_EXIT_CONFLICT] = "conflict",
        [CLI_EXIT_BUSY] = "busy", [CLI_EXIT_INTEGRITY] = "integrity",
    };

    return rc > 0 && rc <= CLI_EXIT_INTEGRITY ? names[rc] : "failure";
}

int
cli_json_errors_end(int rc)
{
    struct json_object *o, *e;

    if (!json_err.on || rc == CLI_EXIT_OK || json_err.printed) {
        return rc;
    }
    o = json_object_new_object();
    e = json_object_new_object();
    cli_json_add_str(e, "code", exit_code_name(rc));
    cli_json_add_str(e, "message", json_err.message[0] ? json_err.message
                                                       : "failed");
    json_object_object_add(e, "hint", json_err.hint[0]
                           ? json_object_new_string(json_err.hint) : NULL);
    cli_json_add_obj(o, "error", e);
    cli_json_print(stdout, o);
    json_object_put(o);
    return rc;
}

int
cli_message(bool warning, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (json_err.on && !json_err.message[0] && !warning) {
        char msg[1024];
        va_list aq;

        va_copy(aq, ap);
        vsnprintf(msg, sizeof(msg), fmt, aq);
        va_end(aq);
        cli_note_error(msg, NULL);
    }
    /* after what stdout holds so far */
    fflush(stdout);
    fputs(warning ? CLI_NAME ": warning: " : CLI_NAME ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_FAIL;
}

int
cli_error_lib(const struct vmc_error *err, int code)
{
    if (err && err->msg[0]) {
        return cli_error("%s", err->msg);
    }
    return cli_error("%s", strerror(code < 0 ? -code : code));
}

int
cli_usage_error(const char *verb, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    char hint[128];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(hint, sizeof(hint), CLI_NAME "%s%s --help", verb ? " " : "",
             verb ? verb : "");
    cli_note_error(msg, hint);
    cli_error("%s (try '%s')", msg, hint);
    return CLI_EXIT_USAGE;
}

int
cli_getopt_error(const char *verb, int c, char **argv)
{
    const char *opt = argv[optind - 1];

    if (c == ':') {
        return cli_usage_error(verb, "option '%s' requires an argument",
                               opt);
    }
    if (optopt && optopt < 0x100) {
        return cli_usage_error(verb, "unrecognized option '-%c'", optopt);
    }
    return cli_usage_error(verb, "unrecognized option '%s'", opt);
}

void
cli_print_table(FILE *f, const struct cli_cmd *cmds)
{
    for (; cmds->name; cmds++) {
        fprintf(f, "  %-10s %s\n", cmds->name, cmds->summary);
    }
}

int
cli_dispatch(const struct cli_cmd *cmds, const char *prefix, int argc,
             char **argv)
{
    const struct cli_cmd *c;

    if (argc < 1) {
        return cli_usage_error(prefix, "missing command");
    }
    for (c = cmds; c->name; c++) {
        if (!strcmp(c->name, argv[0])) {
            optind = 0;     /* full reset for the command's getopt */
            return c->fn(argc, argv);
        }
    }
    return cli_usage_error(prefix, "command not found: %s", argv[0]);
}

/* ----------------------------------------------------- clock, run files */

double
cli_mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
cli_run_dir(const char *home, const char *sub)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof(dir), "%s/run", home);

    if (n < 0 || (size_t)n >= sizeof(dir)) {
        return -ENAMETOOLONG;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        return -errno;
    }
    n = snprintf(dir, sizeof(dir), "%s/%s", home, sub);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        return -ENAMETOOLONG;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}

/* ------------------------------------------------------------- parsing */

int
cli_parse_format(const char *name, enum vmc_format *out)
{
    enum vmc_format f = vmc_format_from_name(name);

    if (f == VMC_FMT_AUTO) {
        return cli_error("unknown file format '%s'", name);
    }
    *out = f;
    return 0;
}

int
cli_parse_size(const char *s, uint64_t *out, const char *what)
{
    int r;

    if (s[0] == '-') {
        return cli_error("invalid %s '%s': must not be negative", what, s);
    }
    r = vmc_parse_size(s, out);
    if (r == -ERANGE) {
        return cli_error("invalid %s '%s': too large", what, s);
    }
    if (r < 0) {
        return cli_error("invalid %s '%s' (you may use k, M, G, T, P or E "
                         "suffixes)", what, s);
    }
    if (*out > INT64_MAX) {
        return cli_error("invalid %s '%s': too large", what, s);
    }
    return 0;
}

int
cli_check_cache_mode(const char *mode)
{
    static const char *const modes[] = {
        "none", "off", "writeback", "writethrough", "directsync", "unsafe",
    };
    size_t i;

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (!strcmp(mode, modes[i])) {
            return 0;
        }
    }
    return cli_error("invalid cache option '%s'", mode);
}

int
cli_parse_output(const char *s, bool *json)
{
    if (!strcmp(s, "json")) {
        *json = true;
    } else if (!strcmp(s, "human")) {
        *json = false;
    } else {
        return cli_error("--output must be used with human or json as "
                         "argument");
    }
    return 0;
}

int
cli_open_option(struct cli_open *o, int opt, const char *arg,
                const char *verb)
{
    char *end;
    unsigned long v;

    switch (opt) {
    case OPT_BACKING_FMT:
        if (vmc_format_from_name(arg) == VMC_FMT_AUTO) {
            return cli_error("unknown backing format '%s'", arg);
        }
        o->backing_fmt = arg;
        return 0;
    case OPT_MAX_DEPTH:
        errno = 0;
        v = strtoul(arg, &end, 10);
        if (errno || *end || end == arg || arg[0] == '-' || v == 0 ||
            v > 65536) {
            return cli_error("invalid --max-depth '%s' (1 to 65536)", arg);
        }
        o->max_depth = (unsigned)v;
        return 0;
    default:
        return cli_usage_error(verb, "unexpected option");
    }
}

int
cli_close_report(struct vmc_image *img, const char *path, int r,
                 const struct vmc_error *err)
{
    int r2 = vmc_image_close(img);

    if (r < 0) {
        return cli_error_lib(err, r);
    }
    if (r2 < 0) {
        return cli_error("error while closing '%s': %s", path,
                         strerror(-r2));
    }
    return CLI_EXIT_OK;
}

int
cli_run_on_image(const char *path, const struct cli_open *o, unsigned flags,
                 bool show, cli_image_fn *fn, void *ctx)
{
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    int r = cli_open_image(&img, path, o, flags);

    if (r) {
        return r;
    }
    cli_progress_start(&progress, show);
    r = fn(img, ctx, &progress, &err);
    cli_progress_end(&progress);
    return cli_close_report(img, path, r, &err);
}

int
cli_open_opts(const struct cli_open *o, unsigned flags,
              struct vmc_open_opts *out)
{
    memset(out, 0, sizeof(*out));
    out->format = VMC_FMT_AUTO;
    if (o->format && cli_parse_format(o->format, &out->format)) {
        return CLI_EXIT_FAIL;
    }
    out->flags = flags | (o->force_share ? VMC_OPEN_FORCE_SHARE : 0);
    out->backing_format = o->backing_fmt;
    out->max_depth = o->max_depth;
    return 0;
}

int
cli_open_image(struct vmc_image **out, const char *path,
               const struct cli_open *o, unsigned flags)
{
    struct vmc_open_opts oo;
    struct vmc_error err = { 0 };
    int r;

    if (cli_open_opts(o, flags, &oo)) {
        return CLI_EXIT_FAIL;
    }
    r = vmc_image_open(out, path, &oo, &err);
    if (r < 0) {
        if (!err.msg[0]) {
            return cli_error("could not open '%s': %s", path, strerror(-r));
        }
        return cli_error_lib(&err, r);
    }
    return 0;
}

/* ------------------------------------------------------ create options */

static int
parse_bool(const char *key, const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "false") ||
               !strcmp(v, "no")) {
        *out = false;
    } else {
        return cli_error("parameter '%s' expects 'on' or 'off'", key);
    }
    return 0;
}

static int
parse_prealloc(const char *v, enum vmc_prealloc *out)
{
    static const char *const names[] = {
        [VMC_PREALLOC_OFF] = "off",
        [VMC_PREALLOC_METADATA] = "metadata",
        [VMC_PREALLOC_FALLOC] = "falloc",
        [VMC_PREALLOC_FULL] = "full",
    };
    unsigned i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(v, names[i])) {
            *out = (enum vmc_prealloc)i;
            return 0;
        }
    }
    return cli_error("invalid preallocation mode '%s' (off, metadata, "
                     "falloc or full)", v);
}

static int
parse_u32_size(const char *key, const char *v, unsigned *out)
{
    uint64_t n;

    if (cli_parse_size(v, &n, key)) {
        return CLI_EXIT_FAIL;
    }
    if (n > UINT32_MAX) {
        return cli_error("parameter '%s' is too large", key);
    }
    *out = (unsigned)n;
    return 0;
}

static void
mark_qcow2_only(struct cli_create_opts *co, const char *key)
{
    co->set_qcow2_only = true;
    if (!co->qcow2_only_name) {
        co->qcow2_only_name = key;
    }
}

/* Apply one "key=value" (modified in place: the '=' becomes a NUL). */
static int
apply_create_option(struct cli_create_opts *co, char *kv)
{
    struct vmc_create_opts *c = &co->c;
    char *v = strchr(kv, '=');
    const char *k = kv;
    bool b;

    if (!v) {
        return cli_error("invalid option '%s': expected key=value", kv);
    }
    *v++ = '\0';
    if (!strcmp(k, "size")) {
        co->has_size = true;
        return cli_parse_size(v, &c->size, "image size");
    }
    if (!strcmp(k, "backing_file")) {
        co->backing_file = v;
        return 0;
    }
    if (!strcmp(k, "backing_fmt")) {
        co->backing_fmt = v;
        return 0;
    }
    if (!strcmp(k, "preallocation")) {
        co->set_prealloc = true;
        return parse_prealloc(v, &c->prealloc);
    }
    mark_qcow2_only(co, k);
    if (!strcmp(k, "cluster_size")) {
        return parse_u32_size(k, v, &c->cluster_size);
    }
    if (!strcmp(k, "refcount_bits")) {
        return parse_u32_size(k, v, &c->refcount_bits);
    }
    if (!strcmp(k, "extended_l2")) {
        return parse_bool(k, v, &c->extended_l2);
    }
    if (!strcmp(k, "lazy_refcounts")) {
        if (parse_bool(k, v, &b)) {
            return CLI_EXIT_FAIL;
        }
        return b ? cli_error("lazy_refcounts=on is not supported") : 0;
    }
    if (!strcmp(k, "compression_type")) {
        if (!strcmp(v, "zlib")) {
            c->compression = VMC_COMPRESSION_ZLIB;
        } else if (!strcmp(v, "zstd")) {
            c->compression = VMC_COMPRESSION_ZSTD;
        } else {
            return cli_error("invalid compression_type '%s' (zlib or "
                             "zstd)", v);
        }
        return 0;
    }
    if (!strcmp(k, "compat")) {
        co->set_compat = true;
        co->compat_text = v;
        if (!strcmp(v, "0.10") || !strcmp(v, "v2")) {
            c->compat = 2;
        } else if (!strcmp(v, "1.1") || !strcmp(v, "v3")) {
            c->compat = 3;
        } else {
            return cli_error("invalid compat value '%s' (0.10, 1.1, v2 or "
                             "v3)", v);
        }
        return 0;
    }
    return cli_error("invalid parameter '%s'", k);
}

int
cli_parse_create_options(struct cli_create_opts *co, const char *list)
{
    char *copy;
    char *p, *start, *out;
    int r = 0;

    if (co->nbufs == sizeof(co->bufs) / sizeof(co->bufs[0])) {
        return cli_error("too many -o options");
    }
    copy = strdup(list);
    if (!copy) {
        return cli_error("out of memory");
    }
    co->bufs[co->nbufs++] = copy;
    /* Split at single commas; ",," stands for a literal comma. The
     * options keep pointers into @copy, owned by @co. */
    start = out = p = copy;
    for (;;) {
        if (*p == ',' && p[1] == ',') {
            *out++ = ',';
            p += 2;
            continue;
        }
        if (*p == ',' || *p == '\0') {
            bool last = *p == '\0';

            *out = '\0';
            if (*start) {
                r = apply_create_option(co, start);
                if (r) {
                    return r;
                }
            }
            if (last) {
                break;
            }
            start = out = ++p;
            continue;
        }
        *out++ = *p++;
    }
    return 0;
}

void
cli_create_opts_release(struct cli_create_opts *co)
{
    while (co->nbufs > 0) {
        free(co->bufs[--co->nbufs]);
    }
}

int
cli_check_create_options(const struct cli_create_opts *co, const char *path)
{
    const struct vmc_create_opts *c = &co->c;

    if (c->format == VMC_FMT_RAW) {
        if (co->set_qcow2_only) {
            return cli_error("%s: invalid parameter '%s' for format 'raw'",
                             path, co->qcow2_only_name);
        }
        if (co->backing_file) {
            return cli_error("%s: backing file not supported for file "
                             "format 'raw'", path);
        }
        return 0;
    }
    if (c->cluster_size && (c->cluster_size < 512 ||
                            c->cluster_size > 2 * 1024 * 1024 ||
                            (c->cluster_size & (c->cluster_size - 1)))) {
        return cli_error("%s: cluster size must be a power of two between "
                         "512 and 2048k", path);
    }
    if (c->refcount_bits && (c->refcount_bits > 64 ||
                             (c->refcount_bits & (c->refcount_bits - 1)))) {
        return cli_error("%s: refcount width must be a power of two and may "
                         "not exceed 64 bits", path);
    }
    if (c->extended_l2 && c->cluster_size && c->cluster_size < 16384) {
        return cli_error("%s: extended L2 entries are only supported with "
                         "cluster sizes of at least 16384 bytes", path);
    }
    if (c->compat == 2 && (c->extended_l2 ||
                           c->compression == VMC_COMPRESSION_ZSTD ||
                           (c->refcount_bits && c->refcount_bits != 16))) {
        return cli_error("%s: compat=0.10 does not support extended_l2, "
                         "zstd compression or refcount_bits other than 16",
                         path);
    }
    return 0;
}

void
cli_put_escaped(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    for (; *p; p++) {
        if (*p == '\\') {
            fputs("\\\\", f);
        } else if (*p == '\n') {
            fputs("\\n", f);
        } else if (*p == '\t') {
            fputs("\\t", f);
        } else if (*p == '\r') {
            fputs("\\r", f);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\x%02x", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            /* a C1 control character (U+0080..U+009F) in UTF-8 */
            fprintf(f, "\\xc2\\x%02x", p[1]);
            p++;
        } else {
            fputc(*p, f);
        }
    }
}
