/*
 * options.c - the option tables of options.h turned into getopt_long
 * calls and --help text, the value parsers of the shared sets, and the
 * operand-count check every command makes. One place decides what a
 * usage error is and how it exits (cli_usage_error, CLI_EXIT_USAGE).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

/* Enough for the longest table (img convert) with room to grow. */
#define MAX_OPTS 64
/* getopt values of entries without a short letter: 0x400 + index. */
#define LONG_ONLY_BASE 0x400
#define HELP_VAL 0x3ff

static size_t
count_opts(const struct cli_opt *opts)
{
    size_t n = 0;

    while (opts[n].kind != CLI_OPT_KIND_END) {
        n++;
    }
    return n;
}

static bool
has_short(const struct cli_opt *opts, int c)
{
    for (; opts->kind != CLI_OPT_KIND_END; opts++) {
        if (opts->short_name == c) {
            return true;
        }
    }
    return false;
}

/* The getopt string and long options of @opts (plus -h/--help). */
static void
build_getopt(const struct cli_opt *opts, size_t n, char *shorts,
             struct option *longs)
{
    size_t i, s = 0, l = 0;

    shorts[s++] = ':';
    for (i = 0; i < n; i++) {
        if (opts[i].short_name) {
            shorts[s++] = (char)opts[i].short_name;
            if (opts[i].argname) {
                shorts[s++] = ':';
            }
        }
        if (opts[i].name) {
            longs[l].name = opts[i].name;
            longs[l].has_arg = opts[i].argname ? required_argument
                                               : no_argument;
            longs[l].flag = NULL;
            longs[l].val = opts[i].short_name ? opts[i].short_name
                                              : LONG_ONLY_BASE + (int)i;
            l++;
        }
    }
    if (!has_short(opts, 'h')) {
        shorts[s++] = 'h';
    }
    shorts[s] = '\0';
    longs[l++] = (struct option){ "help", no_argument, NULL, HELP_VAL };
    longs[l] = (struct option){ NULL, 0, NULL, 0 };
}

static const struct cli_opt *
find_val(const struct cli_opt *opts, size_t n, int val)
{
    size_t i;

    if (val >= LONG_ONLY_BASE && (size_t)(val - LONG_ONLY_BASE) < n) {
        return &opts[val - LONG_ONLY_BASE];
    }
    for (i = 0; i < n; i++) {
        if (opts[i].short_name && opts[i].short_name == val) {
            return &opts[i];
        }
    }
    return NULL;
}

static int
apply(const struct cli_opt *o, const char *arg)
{
    switch (o->kind) {
    case CLI_OPT_KIND_FLAG:
        *(bool *)o->dest = true;
        return 0;
    case CLI_OPT_KIND_STRING:
        *(const char **)o->dest = arg;
        return 0;
    case CLI_OPT_KIND_CALL:
        return o->fn(arg, o->dest);
    default:
        return CLI_EXIT_FAIL;
    }
}

int
cli_parse_options(const struct cli_opt *opts, const struct cli_usage *u,
                  int argc, char **argv)
{
    size_t n = count_opts(opts);
    char shorts[2 * MAX_OPTS + 4];
    struct option longs[MAX_OPTS + 2];
    const struct cli_opt *o;
    int c, r;

    if (n > MAX_OPTS) {
        return cli_error("internal error: too many options for %s", u->verb);
    }
    build_getopt(opts, n, shorts, longs);
    optind = 0;          /* full reset: each command parses afresh */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        if (c == HELP_VAL || (c == 'h' && !has_short(opts, 'h'))) {
            cli_print_help(stdout, opts, u);
            return CLI_HELP_SHOWN;
        }
        o = (c == '?' || c == ':') ? NULL : find_val(opts, n, c);
        if (!o) {
            return cli_getopt_error(u->verb, c, argv);
        }
        r = apply(o, optarg);
        if (r) {
            return r;
        }
    }
    return 0;
}

int
cli_check_operands(const struct cli_usage *u, int argc, char **argv,
                   int min, int max, const char *missing)
{
    int n = argc - optind;

    if (n < min) {
        return cli_usage_error(u->verb, "%s", missing ? missing
                               : "missing argument");
    }
    if (max >= 0 && n > max) {
        return cli_usage_error(u->verb, "too many arguments: '%s'",
                               argv[optind + max]);
    }
    return 0;
}

/* ----------------------------------------------------------------- help */

void
cli_print_options(FILE *f, const struct cli_opt *opts)
{
    char left[64];
    int len;

    fputs("options:\n", f);
    for (; opts->kind != CLI_OPT_KIND_END; opts++) {
        if (!opts->help) {
            continue;
        }
        if (opts->short_name && opts->name) {
            len = snprintf(left, sizeof(left), "-%c, --%s",
                           opts->short_name, opts->name);
        } else if (opts->short_name) {
            len = snprintf(left, sizeof(left), "-%c", opts->short_name);
        } else {
            len = snprintf(left, sizeof(left), "    --%s", opts->name);
        }
        if (opts->argname && len > 0 && (size_t)len < sizeof(left)) {
            snprintf(left + len, sizeof(left) - (size_t)len, " %s",
                     opts->argname);
        }
        if (strlen(left) > 24) {
            fprintf(f, "  %s\n  %-24s %s\n", left, "", opts->help);
        } else {
            fprintf(f, "  %-24s %s\n", left, opts->help);
        }
    }
    fprintf(f, "  %-24s %s\n", "-h, --help", "show this help and exit");
}

void
cli_print_help(FILE *f, const struct cli_opt *opts, const struct cli_usage *u)
{
    fputs(u->synopsis, f);
    if (u->text) {
        fprintf(f, "\n%s", u->text);
    }
    fputc('\n', f);
    cli_print_options(f, opts);
    if (u->footer) {
        fprintf(f, "\n%s", u->footer);
    }
}

const struct cli_opt *
cli_opt_lookup(const struct cli_opt *opts, const char *arg)
{
    size_t len;

    if (arg[0] != '-' || !arg[1]) {
        return NULL;
    }
    if (arg[1] == '-') {
        len = strcspn(arg + 2, "=");
        for (; opts->kind != CLI_OPT_KIND_END; opts++) {
            if (opts->name && strlen(opts->name) == len &&
                !strncmp(opts->name, arg + 2, len)) {
                return opts;
            }
        }
        return NULL;
    }
    for (; opts->kind != CLI_OPT_KIND_END; opts++) {
        if (opts->short_name == arg[1]) {
            return opts;
        }
    }
    return NULL;
}

bool
cli_opt_takes_next(const struct cli_opt *opts, const char *arg)
{
    const struct cli_opt *o;

    if (arg[0] != '-' || !arg[1]) {
        return false;
    }
    if (arg[1] == '-') {
        o = cli_opt_lookup(opts, arg);
        return o && o->argname && !strchr(arg, '=');
    }
    /* a cluster of short options: the last one may take the next word */
    for (arg++; *arg; arg++) {
        char one[3] = { '-', *arg, '\0' };

        o = cli_opt_lookup(opts, one);
        if (o && o->argname) {
            return arg[1] == '\0';
        }
    }
    return false;
}

/* ------------------------------------------------- shared value parsers */

int
cli_opt_format(const char *arg, void *dest)
{
    enum vmc_format f;

    if (cli_parse_format(arg, &f)) {
        return CLI_EXIT_FAIL;
    }
    *(const char **)dest = arg;
    return 0;
}

int
cli_opt_backing_fmt(const char *arg, void *dest)
{
    return cli_open_option(dest, OPT_BACKING_FMT, arg, NULL) ? CLI_EXIT_FAIL
                                                             : 0;
}

int
cli_opt_max_depth(const char *arg, void *dest)
{
    return cli_open_option(dest, OPT_MAX_DEPTH, arg, NULL) ? CLI_EXIT_FAIL
                                                           : 0;
}

int
cli_opt_output(const char *arg, void *dest)
{
    return cli_parse_output(arg, dest) ? CLI_EXIT_FAIL : 0;
}

int
cli_opt_create_options(const char *arg, void *dest)
{
    return cli_parse_create_options(dest, arg) ? CLI_EXIT_FAIL : 0;
}

int
cli_opt_list(const char *arg, void *dest)
{
    struct cli_list *l = dest;

    if (l->n >= l->cap) {
        return cli_error("too many values for one option");
    }
    l->v[l->n++] = arg;
    return 0;
}

int
cli_opt_cache(const char *arg, void *dest)
{
    (void)dest;
    return cli_check_cache_mode(arg) ? CLI_EXIT_FAIL : 0;
}

int
cli_parse_image_verb(const struct cli_opt *opts, const struct cli_usage *u,
                     int argc, char **argv, int nimages)
{
    int r = cli_parse_options(opts, u, argc, argv);

    if (r) {
        return r;
    }
    return cli_check_operands(u, argc, argv, nimages, nimages,
                              nimages == 1 ? "expecting image file name"
                                           : "expecting two image file names");
}
