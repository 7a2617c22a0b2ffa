/*
 * options.h - option tables for the vm-clone commands. A command declares
 * its options once, as an array of struct cli_opt ending in CLI_OPT_END;
 * cli_parse_options() generates the getopt string and the long options
 * from it, stores each value where the entry points, and prints the
 * options part of --help. Shared sets (open, output, cache, progress,
 * the store's common options) are macros that expand to entries.
 *
 * Every usage error (unknown option, option of another subcommand,
 * missing or extra argument) goes through cli_usage_error() and exits
 * CLI_EXIT_USAGE (2), naming the option.
 */
#ifndef VMC_CLI_OPTIONS_H
#define VMC_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

enum cli_opt_kind {
    CLI_OPT_KIND_END = 0,
    CLI_OPT_KIND_FLAG,       /* bool *dest = true */
    CLI_OPT_KIND_STRING,     /* const char **dest = the argument */
    CLI_OPT_KIND_CALL,       /* fn(argument or NULL, dest) */
};

/* Returns 0, or an exit status (the message already printed). */
typedef int (*cli_opt_fn)(const char *arg, void *dest);

struct cli_opt {
    int short_name;          /* letter, or 0 */
    const char *name;        /* long name, or NULL */
    const char *argname;     /* "FMT"; NULL for an option without one */
    const char *help;        /* one line; NULL hides it from --help */
    enum cli_opt_kind kind;
    void *dest;
    cli_opt_fn fn;
};

#define CLI_OPT_FLAG(s, l, d, h) \
    { (s), (l), NULL, (h), CLI_OPT_KIND_FLAG, (d), NULL }
#define CLI_OPT_STRING(s, l, a, d, h) \
    { (s), (l), (a), (h), CLI_OPT_KIND_STRING, (d), NULL }
#define CLI_OPT_CALL(s, l, a, d, f, h) \
    { (s), (l), (a), (h), CLI_OPT_KIND_CALL, (d), (f) }
#define CLI_OPT_END { 0, NULL, NULL, NULL, CLI_OPT_KIND_END, NULL, NULL }

/* A repeatable option's values (-c CMD -c CMD...), in @v (room for @cap). */
struct cli_list {
    const char **v;
    size_t n, cap;
};
int cli_opt_list(const char *arg, void *dest);        /* struct cli_list */

/* ---------------------------------------------------------- shared sets */

/* Value parsers for the shared sets (dest types in brackets). */
int cli_opt_format(const char *arg, void *dest);      /* const char * */
int cli_opt_backing_fmt(const char *arg, void *dest); /* struct cli_open */
int cli_opt_max_depth(const char *arg, void *dest);   /* struct cli_open */
int cli_opt_output(const char *arg, void *dest);      /* bool (json) */
int cli_opt_cache(const char *arg, void *dest);       /* unused */
int cli_opt_create_options(const char *arg, void *dest); /* cli_create_opts */

/* -f/--backing-fmt/--max-depth of a struct cli_open *o (-U separately:
 * not every verb that opens an image may share it). */
#define CLI_OPTS_OPEN(o) \
    CLI_OPT_STRING('f', NULL, "fmt", &(o)->format, \
                   "format of the image (default: probe)"), \
    CLI_OPT_CALL(0, "backing-fmt", "fmt", (o), cli_opt_backing_fmt, \
                 "format of the backing files (default: probe)"), \
    CLI_OPT_CALL(0, "max-depth", "N", (o), cli_opt_max_depth, \
                 "longest backing chain to open (1 to 65536)")
#define CLI_OPTS_SHARE(o) \
    CLI_OPT_FLAG('U', "force-share", &(o)->force_share, \
                 "open read-only images even while another process " \
                 "writes them")
/* --output=human|json, and --json (its short form), into a bool *json. */
#define CLI_OPTS_OUTPUT(j) \
    CLI_OPT_CALL(0, "output", "fmt", (j), cli_opt_output, \
                 "human (default) or json"), \
    CLI_OPT_FLAG(0, "json", (j), "same as --output=json")
/* -t/-T: qemu-img cache modes, checked and otherwise ignored. */
#define CLI_OPT_CACHE \
    CLI_OPT_CALL('t', NULL, "cache", NULL, cli_opt_cache, \
                 "cache mode (accepted for compatibility)")
#define CLI_OPT_SRC_CACHE \
    CLI_OPT_CALL('T', NULL, "src_cache", NULL, cli_opt_cache, \
                 "source cache mode (accepted for compatibility)")
/* -p and -q into bool *p, bool *q. */
#define CLI_OPTS_PROGRESS(p, q) \
    CLI_OPT_FLAG('p', NULL, (p), "show progress"), \
    CLI_OPT_FLAG('q', NULL, (q), "quiet")

/* ---------------------------------------------------------------- parse */

/* What a command says about itself in --help. */
struct cli_usage {
    const char *verb;        /* "img commit", "pool add" */
    const char *synopsis;    /* "usage: ..." lines, each ending in \n */
    const char *text;        /* description after a blank line, or NULL */
    const char *footer;      /* printed after the options, or NULL */
};

/* Parse the options of argv[1..] (argv[0] is the command) against @opts;
 * -h and --help print the help and return CLI_HELP_SHOWN. Returns 0 with
 * optind at the first operand, CLI_HELP_SHOWN, or an exit status. */
#define CLI_HELP_SHOWN (-1)
int cli_parse_options(const struct cli_opt *opts, const struct cli_usage *u,
                      int argc, char **argv);
/* What a command returns for a non-zero cli_parse_options() result. */
#define CLI_PARSE_EXIT(r) ((r) == CLI_HELP_SHOWN ? 0 : (r))

/* Check the operand count (optind..argc) against @min..@max (max < 0:
 * any); returns 0 or a usage error naming the extra/missing operand. */
int cli_check_operands(const struct cli_usage *u, int argc, char **argv,
                       int min, int max, const char *missing);

/* The prologue of an img verb: parse, then exactly @nimages operands.
 * Returns 0 (operands from optind), CLI_HELP_SHOWN or an exit status. */
int cli_parse_image_verb(const struct cli_opt *opts,
                         const struct cli_usage *u, int argc, char **argv,
                         int nimages);

/* Print the whole --help of a command: synopsis, text, options, footer. */
void cli_print_help(FILE *f, const struct cli_opt *opts,
                    const struct cli_usage *u);
/* Print only the "options:" part. */
void cli_print_options(FILE *f, const struct cli_opt *opts);

/* True when @arg is an option of @opts that takes a separate argument
 * (used to find a subcommand among options). */
bool cli_opt_takes_next(const struct cli_opt *opts, const char *arg);

/* The entry of @opts that the word @arg ("--name", "--name=x", "-f...")
 * names exactly, or NULL. */
const struct cli_opt *cli_opt_lookup(const struct cli_opt *opts,
                                     const char *arg);

#endif /* VMC_CLI_OPTIONS_H */
