/*
 * cat-cli.h - the management commands of vm-clone (the catalog layer:
 * init, pool, config, template, clone, snapshot, list, info, tree, deps,
 * rm, du, gc, fsck, flatten, relink, consolidate, vm) and the helpers
 * they share: --home/--json/--bytes/-q handling, opening the store,
 * sizes, and the catalog's reports turned into JSON.
 */
#ifndef VMC_CAT_CLI_H
#define VMC_CAT_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cli.h"
#include "options.h"
#include "vmclone-catalog.h"

/* The options every management command accepts, into struct catcli *c. */
#define CATCLI_OPTS(c) \
    CLI_OPT_STRING(0, "home", "DIR", &(c)->home, \
                   "the store (default $VMCLONE_HOME or " \
                   "~/.local/share/vmclone)"), \
    CLI_OPT_FLAG(0, "json", &(c)->json, "print the result as JSON"), \
    CLI_OPT_FLAG(0, "bytes", &(c)->bytes, "exact sizes in bytes"), \
    CLI_OPT_FLAG('q', "quiet", &(c)->quiet, "print nothing on success"), \
    CLI_OPT_STRING(0, "progress", "MODE", &(c)->progress, "auto (default), " \
                   "bar, plain (lines on stderr) or none")

#define CATCLI_COMMON_HELP \
    "common options: --home DIR (default $VMCLONE_HOME or " \
    "~/.local/share/vmclone),\n" \
    "  --json, --bytes (exact sizes), -q, --help\n"

struct catcli {
    const char *verb;
    const char *usage;
    const char *home;
    bool json, bytes, quiet;
    struct vmc_catalog *cat;
    /* the store's progress bar (a TTY, no --json, no -q): started on the
     * first report, its line ended at 100 % or by catcli_progress_end() */
    struct cli_progress prog;
    bool prog_shown;
    /* --progress MODE (NULL: auto) and the plain lines' state
     * (cat-progress.c) */
    const char *progress;
    struct {
        bool eager, started, printed, finished;
        double t0, last;
    } plain;
};

/* Parse argv against @opts (which include CATCLI_OPTS(c)), with --help
 * from c->usage; returns 0 (optind at the operands), CLI_HELP_SHOWN or
 * an exit status. @opts NULL: the common options only. */
int catcli_parse(struct catcli *c, const struct cli_opt *opts, int argc,
                 char **argv);

/* One subcommand of a group (pool add, template list...) or one
 * top-level management command (list, rm...): its own options, its
 * operand count, and whether the store is opened for it (CATCLI_STORE;
 * CATCLI_EXCLUSIVE: opened exclusively, without recovery, for fsck).
 * @fn gets the operands only (argv[0] is the first operand). */
enum { CATCLI_STORE = 1 << 0, CATCLI_EXCLUSIVE = 1 << 1 };
struct catcli_sub {
    const char *name;
    int (*fn)(struct catcli *c, void *ctx, int argc, char **argv);
    const struct cli_opt *opts;  /* include CATCLI_OPTS */
    int min_args, max_args;      /* max < 0: any number */
    const char *synopsis;        /* after "vm-clone GROUP NAME " */
    const char *missing;         /* message when operands are missing */
    unsigned flags;
};
/* Find the subcommand among argv[1..] (options may come before it),
 * parse its options, check its operands, open the store if it asks,
 * and run it. c->usage is the group's description: --help before a
 * subcommand prints a usage line per subcommand, then it. */
int catcli_run_group(struct catcli *c, const struct catcli_sub *subs,
                     void *ctx, int argc, char **argv);
/* A top-level management command: parse @cmd's options (NULL: the
 * common ones) with c->usage as --help, check its operands (@cmd->missing
 * when too few, or too many for one), open the store if it asks, run it
 * and close the store. */
int catcli_run(struct catcli *c, const struct catcli_sub *cmd, void *ctx,
               int argc, char **argv);
/* A top-level management command (list, rm, gc...): its entry, whose
 * opts are only its own options (the common ones are added), and its
 * --help text. */
struct catcli_cmd {
    struct catcli_sub sub;
    const char *usage;
};
/* The top-level management commands, NULL-terminated (cat-group.c). */
extern const struct catcli_cmd *const catcli_cmds[];
/* Run the top-level management command argv[0] of catcli_cmds: the
 * command table's entry point for each of them (main.c). */
int catcli_main(int argc, char **argv);
/* Open the store (@flags: VMC_CATALOG_*); prints the error, for a missing
 * store with the command that makes one. Returns 0 or an exit status. On
 * a TTY without --json and -q, long operations show a progress bar. */
int catcli_open(struct catcli *c, unsigned flags);
/* Report the store's long operations as --progress asks (cat-progress.c);
 * 0 or the usage error's exit status. */
int catcli_progress_setup(struct catcli *c);
/* The bar's vmc_progress_fn (@opaque: the struct catcli). */
void catcli_progress_cb(uint64_t done, uint64_t total, void *opaque);
/* End a progress line still open (before printing anything else). */
void catcli_progress_end(struct catcli *c);
void catcli_close(struct catcli *c);
/* Print @o (consumed) as the JSON result of an action. */
void catcli_json_done(struct json_object *o);
/* A size as text: human ("1.5 GiB") or exact with --bytes. */
void catcli_size(const struct catcli *c, uint64_t v, char *buf, size_t len);
/* Rows of catalog report @which (its @args) as a JSON array of objects
 * (numbers for numeric columns), in the catalog's values (epoch seconds,
 * 0/1, text). NULL on failure (printed). */
struct json_object *catcli_report_raw(struct catcli *c, enum vmc_report which,
                                      const char *const *args, size_t n);
/* The same, and under --json in the contract's types (times as ISO 8601,
 * booleans, counts as *_count, source objects, labels objects;
 * docs/cli-contract.md): what a command prints. */
struct json_object *catcli_report(struct catcli *c, enum vmc_report which,
                                  const char *const *args, size_t n);
/* Whether VM @name is in the catalog. */
bool catcli_vm_exists(struct catcli *c, const char *name);
/* A source or origin sentence ("template T", "vm A", "vm A@S") as
 * {"kind", "name", "snapshot"}; NULL for none. */
struct json_object *catcli_source_json(const char *sentence);
/* A dependent ("vm A", "snapshot A@S") as {"kind", "name"}. */
struct json_object *catcli_dep_json(const char *kind_name);
/* An array of such strings as an array of {"kind", "name"}. */
struct json_object *catcli_deps_json(struct json_object *kind_names);
/* The names of the templates of @before (a VMC_REPORT_RETIRED_TEMPLATES
 * result) that are gone now, as a JSON array of strings. */
struct json_object *catcli_gone(struct catcli *c, struct json_object *before);
/* The exit status of a management command that failed with @r (a
 * negative errno) and @err: the one map from the catalog's errors to
 * CLI_EXIT_* (docs/cli-contract.md). */
int catcli_exit_code(int r, const struct vmc_error *err);
/* Print a library error, one line; returns catcli_exit_code(). */
int catcli_fail(const struct vmc_error *err, int r);
/* Print an error the command found itself, one line; returns @code. */
int catcli_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The longest duration catcli_parse_duration() takes: 100 years. */
#define CATCLI_DURATION_MAX (100ULL * 365 * 86400)
/* Parse "30s", "15m", "2h", "3d", "1w" or seconds: digits only (no sign),
 * at most CATCLI_DURATION_MAX; -EINVAL or -ERANGE otherwise. */
int catcli_parse_duration(const char *s, uint64_t *out);

/* A snapshot reference "VM@SNAP" (docs/cli-contract.md): split @arg in
 * place at its '@' and point *snap after it (NULL when @arg has no '@';
 * catalog names cannot contain one). @other is a snapshot named another
 * way (--snapshot, a second operand) or NULL: giving both, or an empty VM
 * or SNAP, is a usage error of @verb. Returns 0 or CLI_EXIT_USAGE. */
int catcli_snapref(const char *verb, char *arg, const char *other,
                   const char **snap);

/* --label KEY=VALUE filters (repeatable): (key, value) pairs for the
 * VMC_REPORT_VMS report; @verb names the command in a usage error. */
struct catcli_labels {
    const char *verb;
    const char *params[64];
    size_t np;
};
int catcli_opt_label(const char *arg, void *dest);  /* catcli_labels */

/* The first column of report @which, whose one argument is @param, as
 * a JSON array of strings (empty when the report fails). */
struct json_object *catcli_report_strings(struct catcli *c,
                                          enum vmc_report which,
                                          const char *param);

/* Small JSON accessors of report rows ("" / 0 when absent). */
const char *catcli_jstr(struct json_object *o, const char *k);
int64_t catcli_jint(struct json_object *o, const char *k);
/* A timestamp (seconds) as ISO 8601 UTC, "-" when unset. */
void catcli_fmt_time(double t, char *buf, size_t len);
/* Rows of @arr as JSON (--json) or as columns @cols (NULL-terminated). */
int catcli_print_rows(struct catcli *c, struct json_object *arr,
                      const char *const *cols);
/* One row of a text table, from one element of a report. */
typedef void catcli_row_fn(struct catcli *c, struct json_object *row);
/* A report's rows @arr (NULL: the report failed, already said) as JSON
 * with --json, else @header (unless quiet or no rows) and @row for each;
 * releases @arr and returns the exit status. */
int catcli_print_table(struct catcli *c, struct json_object *arr,
                       const char *header, catcli_row_fn *row);
/* Report @which (no arguments) printed by catcli_print_rows(); returns
 * the exit status. */
int catcli_print_report(struct catcli *c, enum vmc_report which,
                        const char *const *cols);

/* cmd-init.c, cmd-pool.c, cmd-config.c, cmd-list.c, cmd-deps.c,
 * cmd-tree.c, cmd-du.c, cmd-gc.c (helpers: cat-common.c) */
extern const struct catcli_cmd catcli_init, catcli_list, catcli_info,
    catcli_rm, catcli_deps, catcli_tree, catcli_du, catcli_gc, catcli_fsck,
    catcli_flatten, catcli_consolidate, catcli_export;
int cmd_pool(int argc, char **argv);
int cmd_config(int argc, char **argv);
/* Everything about VM @name as one JSON object (NULL if none). */
struct json_object *catcli_vm_json(struct catcli *c, const char *name);
/* Open the store and load VM @name into *vm (catcli_vm_json()); on failure
 * the store is closed, the error printed, and the exit code returned. */
int catcli_open_vm(struct catcli *c, const char *name,
                   struct json_object **vm);
/* cmd-template.c */
int cmd_template(int argc, char **argv);
/* cmd-template-copy.c: "template copy" (its options include CATCLI_OPTS) */
const struct cli_opt *catcli_tmpl_copy_opts(struct catcli *c);
int catcli_tmpl_copy(struct catcli *c, void *ctx, int argc, char **argv);
/* cmd-clone.c */
int cmd_clone(int argc, char **argv);
/* The seed's form: vm-clone --linked|--full --name X [--template T]. */
int cmd_clone_short(int argc, char **argv);
/* cmd-vm.c */
int cmd_snapshot(int argc, char **argv);
int cmd_relink(int argc, char **argv);
int cmd_vm(int argc, char **argv);
/* cmd-vm-set.c: "vm set" (its options include CATCLI_OPTS(c)) */
const struct cli_opt *catcli_vm_set_opts(struct catcli *c);
int catcli_vm_set(struct catcli *c, void *ctx, int argc, char **argv);

#endif /* VMC_CAT_CLI_H */
