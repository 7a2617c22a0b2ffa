/*
 * cli.h - shared pieces of the vm-clone command line: command tables,
 * error and usage reporting, option helpers, progress and JSON output.
 *
 * Only the CLI prints and exits. Every failure prints exactly one line
 * on stderr, "vm-clone: <message>", and leaves with a non-zero status.
 */
#ifndef VMC_CLI_H
#define VMC_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "vmclone.h"
#include "vmclone-ops.h"

#define CLI_NAME "vm-clone"

/* Exit statuses shared by all commands. A usage error (unknown option,
 * option of another subcommand, missing or extra operand) is 2 for every
 * command, the img verbs too (qemu-img says 1); img check and img verify
 * also use 2 for "corruptions found", as qemu-img check does. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,
    CLI_EXIT_USAGE = 2,
};

/* The management commands (the catalog) also say which kind of failure
 * it was (docs/cli-contract.md); the img verbs keep qemu-img's codes. */
enum {
    CLI_EXIT_NOT_FOUND = 3,     /* no such template, VM, snapshot, pool */
    CLI_EXIT_CONFLICT = 4,      /* exists, has dependents, reused id */
    CLI_EXIT_BUSY = 5,          /* a lock is held or an operation runs */
    CLI_EXIT_INTEGRITY = 6,     /* damaged template, missing disk */
};

/* One entry of a command table; @fn gets argv with argv[0] = the verb. */
struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

/* Look @argv[0] up in @cmds and run it; handles --help and errors.
 * @prefix names the table in messages ("img"). */
int cli_dispatch(const struct cli_cmd *cmds, const char *prefix, int argc,
                 char **argv);
void cli_print_table(FILE *f, const struct cli_cmd *cmds);

/* main.c / cmd-img.c */
int cmd_img(int argc, char **argv);
/* cmd-serve.c */
int cmd_serve(int argc, char **argv);

/* img-create.c */
int cmd_img_create(int argc, char **argv);
int cmd_img_resize(int argc, char **argv);
/* img-info.c */
int cmd_img_info(int argc, char **argv);
int cmd_img_check(int argc, char **argv);
/* img-map.c */
int cmd_img_map(int argc, char **argv);
/* img-convert.c */
int cmd_img_convert(int argc, char **argv);
int cmd_img_compare(int argc, char **argv);
/* img-chain.c */
int cmd_img_commit(int argc, char **argv);
int cmd_img_rebase(int argc, char **argv);
/* img-io.c */
int cmd_img_io(int argc, char **argv);
/* img-clone.c */
int cmd_img_clone(int argc, char **argv);
/* img-layers.c */
int cmd_img_flatten(int argc, char **argv);
int cmd_img_relink(int argc, char **argv);
int cmd_img_consolidate(int argc, char **argv);
int cmd_img_du(int argc, char **argv);
/* img-bench.c */
int cmd_img_bench(int argc, char **argv);
int cmd_img_seal(int argc, char **argv);
int cmd_img_unseal(int argc, char **argv);
int cmd_img_verify(int argc, char **argv);

/* ------------------------------------------------------------- errors */

/* Print one line on stderr: "vm-clone: <message>", or with @warning
 * "vm-clone: warning: <message>" (a warning is not noted for --json's
 * error document); returns CLI_EXIT_FAIL. */
int cli_message(bool warning, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print "vm-clone: <message>" on stderr; returns CLI_EXIT_FAIL. */
#define cli_error(...) cli_message(false, __VA_ARGS__)
/* Print the library error (or strerror(-@code) if it has no message). */
int cli_error_lib(const struct vmc_error *err, int code);
/* Seconds on the monotonic clock (durations, deadlines). */
double cli_mono_s(void);
/* The store's run directory HOME/run and its subdirectory HOME/@sub
 * ("run/console"...), 0700, made when missing; 0 or -errno. */
int cli_run_dir(const char *home, const char *sub);
/* Usage error for @verb: one line with a hint; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report the current getopt error (unknown option / missing argument). */
int cli_getopt_error(const char *verb, int optopt_char, char **argv);
/* Print a non-fatal warning on stderr. */
#define cli_warn(...) ((void)cli_message(true, __VA_ARGS__))

/* --json errors (docs/cli-contract.md). With cli_json_errors(true), the
 * first error (its message, and @hint: the command to run next, or NULL)
 * is kept, and cli_json_errors_end(@rc) prints it on stdout as
 * {"error": {"code", "message", "hint"}} when @rc is a failure and no
 * JSON document was printed (cli_json_print() on stdout marks one);
 * returns @rc. cli_error() and cli_usage_error() note their message. */
void cli_json_errors(bool on);
void cli_note_error(const char *message, const char *hint);
void cli_json_printed(void);
int cli_json_errors_end(int rc);

/* ------------------------------------------------------------- output */

/* Write @s to @f with what could forge a line or steer the terminal
 * escaped: control bytes (newline, ESC, DEL, the C1 range in UTF-8) as
 * \n, \t, \r or \xHH, a backslash as \\; other text (UTF-8
 * included) as is. For strings users chose (labels, request ids). */
void cli_put_escaped(FILE *f, const char *s);

/* ------------------------------------------------------------ options */

/* Options common to verbs that open images. */
struct cli_open {
    const char *format;          /* -f, NULL = probe */
    bool force_share;            /* -U */
    const char *backing_fmt;     /* --backing-fmt */
    unsigned max_depth;          /* --max-depth, 0 = default */
};

/* Long-option values shared by verbs (above the range of short ones). */
enum {
    OPT_HELP = 0x100,
    OPT_BACKING_FMT,
    OPT_MAX_DEPTH,
    OPT_OUTPUT,
    OPT_BACKING_CHAIN,
    OPT_START_OFFSET,
    OPT_MAX_LENGTH,
    OPT_SHRINK,
    OPT_OBJECT,
};

/* Handle --backing-fmt / --max-depth; returns 0, or an exit status. */
int cli_open_option(struct cli_open *o, int opt, const char *arg,
                    const char *verb);
/* Fill @out from @o with @flags; returns 0 or an exit status (bad -f). */
int cli_open_opts(const struct cli_open *o, unsigned flags,
                  struct vmc_open_opts *out);
/* Open @path; on failure prints the error and returns an exit status. */
int cli_open_image(struct vmc_image **out, const char *path,
                   const struct cli_open *o, unsigned flags);

/* The epilogue of a verb that ran on an image: close @img, then report
 * the run's error (@r < 0, @err) or the close's; returns the exit status. */
int cli_close_report(struct vmc_image *img, const char *path, int r,
                     const struct vmc_error *err);

struct cli_progress;

/* The library call of an img verb on its open image, its progress
 * reported to @progress; returns 0 or -errno with @err set. */
typedef int cli_image_fn(struct vmc_image *img, void *ctx,
                         struct cli_progress *progress,
                         struct vmc_error *err);
/* An img verb's run: open @path (@o, @flags), run @fn with progress shown
 * when @show, then cli_close_report(); returns the exit status. */
int cli_run_on_image(const char *path, const struct cli_open *o,
                     unsigned flags, bool show, cli_image_fn *fn, void *ctx);

/* Parse a format name given to -f/-O/-F (exit status on error). */
int cli_parse_format(const char *name, enum vmc_format *out);
/* Parse a byte count; @what names it in the message. */
int cli_parse_size(const char *s, uint64_t *out, const char *what);
/* Validate a qemu-img cache mode (-t/-T); accepted for compatibility
 * and otherwise ignored. */
int cli_check_cache_mode(const char *mode);
/* Parse --output=human|json into *json. */
int cli_parse_output(const char *s, bool *json);
/* Parse -o key=value[,key=value] into create options. */
struct cli_create_opts {
    struct vmc_create_opts c;
    bool has_size;
    const char *backing_file;
    const char *backing_fmt;
    const char *compat_text;     /* as given, for the Formatting line */
    bool set_prealloc;
    bool set_qcow2_only;         /* a qcow2-only option was given */
    const char *qcow2_only_name;
    bool set_compat;
    char *bufs[16];              /* owned copies of the -o lists */
    unsigned nbufs;
};
/* Parse one -o list; the strings it points to live in @co until
 * cli_create_opts_release(). */
int cli_parse_create_options(struct cli_create_opts *co, const char *list);
void cli_create_opts_release(struct cli_create_opts *co);
/* Check @co against its format (exit status on error). */
int cli_check_create_options(const struct cli_create_opts *co,
                             const char *path);

/* ----------------------------------------------------------- progress */

struct cli_progress {
    bool enabled;
    bool printed;
    double last;
};

void cli_progress_start(struct cli_progress *p, bool enabled);
/* A vmc_progress_fn; @opaque is a struct cli_progress. */
void cli_progress_cb(uint64_t done, uint64_t total, void *opaque);
void cli_progress_end(struct cli_progress *p);

/* ------------------------------------------------------------- output */

/* Print @o like qemu-img's JSON (4-space indent) plus a newline. */
void cli_json_print(FILE *f, struct json_object *o);
/* Print @o on one line in the style of qemu-img map entries. */
void cli_json_print_inline(FILE *f, struct json_object *o);
/* Add helpers that check allocation; return false on failure. */
bool cli_json_add_str(struct json_object *o, const char *k, const char *v);
bool cli_json_add_u64(struct json_object *o, const char *k, uint64_t v);
bool cli_json_add_bool(struct json_object *o, const char *k, bool v);
bool cli_json_add_obj(struct json_object *o, const char *k,
                      struct json_object *v);

/* One key of a JSON object described as data; a table of them is added in
 * order by cli_json_add_fields(). CLI_JSON_U64_SET is left out when 0
 * (qemu-img's optional counters). */
enum cli_json_kind {
    CLI_JSON_STR, CLI_JSON_U64, CLI_JSON_U64_SET, CLI_JSON_BOOL,
};
struct cli_json_field {
    const char *key;
    enum cli_json_kind kind;
    uint64_t num;       /* CLI_JSON_U64, CLI_JSON_U64_SET, CLI_JSON_BOOL */
    const char *str;    /* CLI_JSON_STR */
};
#define CLI_JSON_FIELD_STR(k, v)     { (k), CLI_JSON_STR, 0, (v) }
#define CLI_JSON_FIELD_U64(k, v)     { (k), CLI_JSON_U64, (v), NULL }
#define CLI_JSON_FIELD_U64_SET(k, v) { (k), CLI_JSON_U64_SET, (v), NULL }
#define CLI_JSON_FIELD_BOOL(k, v)    { (k), CLI_JSON_BOOL, (v), NULL }
/* Add @n fields to @o in table order; false on allocation failure. */
bool cli_json_add_fields(struct json_object *o,
                         const struct cli_json_field *fields, size_t n);
/* The same for a table (an array, not a pointer). */
#define cli_json_add_table(o, table) \
    cli_json_add_fields((o), (table), sizeof(table) / sizeof((table)[0]))

/* "64 MiB", "1.26 MiB" (3 significant digits, like qemu-img). */
void cli_size_to_str(uint64_t v, char *buf, size_t len);

#endif /* VMC_CLI_H */
