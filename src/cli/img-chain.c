/*
 * img-chain.c - "img commit" and "img rebase": the verbs that change how
 * the layers of a backing chain relate to each other.
 */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "options.h"

/* ------------------------------------------------------------- commit */

static const char commit_usage[] =
    "usage: " CLI_NAME " img commit [-q] [-p] [-f fmt] [-b base] [-d]\n"
    "           [--backing-fmt fmt] [--max-depth N] filename\n"
    "\n"
    "Copy what filename (and the layers between it and base) defines into\n"
    "base (default: its backing file), then empty filename.\n"
    "  -b base         commit into this layer of the chain (implies -d);\n"
    "                  the layers in between become invalid\n"
    "  -d              do not empty filename afterwards\n";

static int
opt_commit_base(const char *arg, void *dest)
{
    struct vmc_commit_opts *o = dest;

    o->base = arg;
    o->keep_top = true;
    return 0;
}

static int
run_commit(struct vmc_image *img, void *ctx, struct cli_progress *progress,
           struct vmc_error *err)
{
    struct vmc_commit_opts *o = ctx;

    o->progress = cli_progress_cb;
    o->opaque = progress;
    return vmc_commit(img, o, err);
}

int
cmd_img_commit(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img commit",
                                        .synopsis = commit_usage };
    struct cli_open open_opts = { 0 };
    struct vmc_commit_opts o = { 0 };
    bool quiet = false, show_progress = false;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPT_CALL('b', NULL, "base", &o, opt_commit_base,
                     "commit into this layer of the chain (implies -d)"),
        CLI_OPT_FLAG('d', NULL, &o.keep_top, "do not empty filename "
                     "afterwards"),
        CLI_OPTS_PROGRESS(&show_progress, &quiet),
        CLI_OPT_CACHE,
        CLI_OPT_END,
    };
    int r = cli_parse_image_verb(opts, &u, argc, argv, 1);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    r = cli_run_on_image(argv[optind], &open_opts,
                         o.keep_top ? 0 : VMC_OPEN_RDWR,
                         show_progress && !quiet, run_commit, &o);
    if (r) {
        return r;
    }
    if (!quiet) {
        printf("Image committed.\n");
    }
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------- rebase */

static const char rebase_usage[] =
    "usage: " CLI_NAME " img rebase [-q] [-p] [-f fmt] [-u] -b backing_file "
    "[-F backing_fmt]\n"
    "           [--backing-fmt fmt] [--max-depth N] filename\n"
    "\n"
    "Change the backing file of filename. Safe mode (default) copies into\n"
    "filename whatever would change in its guest view; -b \"\" flattens it.\n"
    "A relative backing_file is relative to filename's directory.\n"
    "  -u              unsafe: only rewrite the backing file reference\n";

/* What img rebase hands to run_rebase(). */
struct rebase_run {
    struct vmc_rebase_opts *opts;
    const char *backing, *backing_fmt;
};

static int
run_rebase(struct vmc_image *img, void *ctx, struct cli_progress *progress,
           struct vmc_error *err)
{
    struct rebase_run *rb = ctx;

    rb->opts->progress = cli_progress_cb;
    rb->opts->opaque = progress;
    return vmc_rebase(img, rb->backing, rb->backing_fmt, rb->opts, err);
}

int
cmd_img_rebase(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img rebase",
                                        .synopsis = rebase_usage };
    struct cli_open open_opts = { 0 };
    struct vmc_rebase_opts o = { 0 };
    struct vmc_open_opts backing_open;
    struct rebase_run rb;
    const char *backing = NULL, *backing_fmt = NULL;
    bool quiet = false, show_progress = false;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPT_STRING('b', NULL, "backing_file", &backing, "the new "
                       "backing file (\"\" flattens)"),
        CLI_OPT_STRING('F', NULL, "backing_fmt", &backing_fmt, "its "
                       "format"),
        CLI_OPT_FLAG('u', NULL, &o.unsafe, "unsafe: only rewrite the "
                     "backing file reference"),
        CLI_OPTS_PROGRESS(&show_progress, &quiet),
        CLI_OPT_CACHE,
        CLI_OPT_SRC_CACHE,
        CLI_OPT_END,
    };
    int r = cli_parse_image_verb(opts, &u, argc, argv, 1);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (!backing && !o.unsafe) {
        return cli_usage_error(u.verb, "must specify backing file (-b) or use "
                               "unsafe mode (-u)");
    }
    if (backing && *backing && !backing_fmt) {
        return cli_error("could not change the backing file to '%s': "
                         "backing format must be specified", backing);
    }
    if (cli_open_opts(&open_opts, 0, &backing_open)) {
        return CLI_EXIT_FAIL;
    }
    o.backing_open = &backing_open;
    rb.opts = &o;
    rb.backing = backing;
    rb.backing_fmt = backing_fmt;
    return cli_run_on_image(argv[optind], &open_opts, VMC_OPEN_RDWR |
                            (o.unsafe ? VMC_OPEN_NO_BACKING : 0),
                            show_progress && !quiet, run_rebase, &rb);
}
