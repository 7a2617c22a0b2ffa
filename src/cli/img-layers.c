/*
 * img-layers.c - the verbs that reshape a chain while keeping the guest
 * view: "img flatten" (linked -> full), "img relink" (full -> linked),
 * "img consolidate" (collapse intermediate layers), and "img du" (space
 * accounting per layer).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

static void
size_str(uint64_t v, char *buf, size_t len)
{
    cli_size_to_str(v, buf, len);
}

/* ------------------------------------------------------------ flatten */

static const char flatten_usage[] =
    "usage: " CLI_NAME " img flatten [-q] [-p] [-f fmt] [--backing-fmt fmt] "
    "IMG\n"
    "\n"
    "Copy into IMG everything its backing chain provides, then drop the\n"
    "backing link (linked clone -> full image). Crash-safe: IMG reads the\n"
    "same at every instant.\n";

static int
run_flatten(struct vmc_image *img, void *ctx, struct cli_progress *progress,
            struct vmc_error *err)
{
    return vmc_flatten(img, cli_progress_cb, progress, err);
}

int
cmd_img_flatten(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img flatten",
                                        .synopsis = flatten_usage };
    struct cli_open open_opts = { 0 };
    bool quiet = false, show = false;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPTS_PROGRESS(&show, &quiet),
        CLI_OPT_END,
    };
    int r = cli_parse_image_verb(opts, &u, argc, argv, 1);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    r = cli_run_on_image(argv[optind], &open_opts, VMC_OPEN_RDWR,
                         show && !quiet, run_flatten, NULL);
    if (r) {
        return r;
    }
    if (!quiet) {
        printf("Image '%s' flattened.\n", argv[optind]);
    }
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------- relink */

static const char relink_usage[] =
    "usage: " CLI_NAME " img relink [-q] [-p] [-f fmt] -b TEMPLATE "
    "[-F fmt] [-o options]\n"
    "           [--no-extended-l2] [--json] IMG\n"
    "\n"
    "Rewrite IMG as a linked clone of TEMPLATE that keeps only what differs\n"
    "(compared per 4 KiB subcluster; per cluster with --no-extended-l2).\n"
    "TEMPLATE is relative to IMG's directory, as with rebase -b; -F is its\n"
    "format (default: probed). The guest view is unchanged; the new image\n"
    "replaces IMG atomically. Reports the space before and after.\n";

int
cmd_img_relink(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img relink",
                                        .synopsis = relink_usage };
    struct vmc_relink_opts o;
    struct vmc_relink_result res;
    struct vmc_open_opts io = { 0 };
    struct cli_create_opts co = { 0 };
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    const char *tmpl = NULL, *tfmt = NULL, *fmt = NULL;
    bool quiet = false, show = false, json = false, no_extl2 = false;
    char before[32], after[32];
    const struct cli_opt opts[] = {
        CLI_OPT_STRING('f', NULL, "fmt", &fmt, "format of IMG (default: "
                       "probe)"),
        CLI_OPT_STRING('b', NULL, "TEMPLATE", &tmpl, "the template "
                       "(required)"),
        CLI_OPT_STRING('F', NULL, "fmt", &tfmt, "its format (default: "
                       "probe)"),
        CLI_OPT_CALL('o', NULL, "options", &co, cli_opt_create_options,
                     "creation options of the new image"),
        CLI_OPTS_PROGRESS(&show, &quiet),
        CLI_OPTS_OUTPUT(&json),
        CLI_OPT_FLAG(0, "no-extended-l2", &no_extl2, "64 KiB clusters "
                     "without subclusters"),
        CLI_OPT_END,
    };
    int r;

    vmc_relink_opts_init(&o);
    co.c = o.create;
    r = cli_parse_image_verb(opts, &u, argc, argv, 1);
    if (r) {
        r = CLI_PARSE_EXIT(r);
        goto out;
    }
    r = CLI_EXIT_FAIL;
    if (!tmpl || !*tmpl) {
        r = cli_usage_error(u.verb, "a template is required (-b "
                            "TEMPLATE)");
        goto out;
    }
    if (fmt && cli_parse_format(fmt, &io.format)) {
        goto out;
    }
    o.create = co.c;
    if (no_extl2) {
        o.create.extended_l2 = false;
        o.create.cluster_size = 65536;
    }
    if (!tfmt) {
        /* Probe the template (it is named by the user). */
        struct vmc_open_opts po = { .flags = VMC_OPEN_NO_BACKING |
                                    VMC_OPEN_FORCE_SHARE };
        struct vmc_image *t = NULL;
        char *path = NULL;

        if (vmc_backing_path_resolve(argv[optind], tmpl, &path) < 0) {
            cli_error("out of memory");
            goto out;
        }
        r = vmc_image_open(&t, path, &po, &err);
        free(path);
        if (r < 0) {
            r = cli_error_lib(&err, r);
            goto out;
        }
        tfmt = vmc_format_name(vmc_image_format(t));
        vmc_image_close(t);
    }
    o.img_open = &io;
    cli_progress_start(&progress, show && !quiet && !json);
    o.progress = cli_progress_cb;
    o.opaque = &progress;
    r = vmc_relink(argv[optind], tmpl, tfmt, &o, &res, &err);
    cli_progress_end(&progress);
    if (r < 0) {
        r = cli_error_lib(&err, r);
        goto out;
    }
    if (json) {
        struct json_object *obj = json_object_new_object();

        cli_json_add_str(obj, "image", argv[optind]);
        cli_json_add_str(obj, "template", tmpl);
        cli_json_add_u64(obj, "bytes-before", res.bytes_before);
        cli_json_add_u64(obj, "bytes-after", res.bytes_after);
        cli_json_add_u64(obj, "bytes-freed",
                         res.bytes_before > res.bytes_after ?
                         res.bytes_before - res.bytes_after : 0);
        cli_json_add_u64(obj, "bytes-kept", res.bytes_written);
        cli_json_print(stdout, obj);
        json_object_put(obj);
    } else if (!quiet) {
        size_str(res.bytes_before, before, sizeof(before));
        size_str(res.bytes_after, after, sizeof(after));
        printf("Image '%s' relinked to '%s': %s -> %s on disk "
               "(%" PRIu64 " bytes freed, %" PRIu64 " bytes differ)\n",
               argv[optind], tmpl, before, after,
               res.bytes_before > res.bytes_after ?
               res.bytes_before - res.bytes_after : 0, res.bytes_written);
    }
    r = CLI_EXIT_OK;
out:
    cli_create_opts_release(&co);
    return r;
}

/* -------------------------------------------------------- consolidate */

static const char consolidate_usage[] =
    "usage: " CLI_NAME " img consolidate [-q] [-p] [-f fmt] [--keep BASE]\n"
    "           [--method auto|commit|pull|new-layer] [--users FILE...]\n"
    "           [--no-scan] [--new-layer NAME] [--json] TOP\n"
    "\n"
    "Collapse the layers between TOP and BASE (default: the bottom layer)\n"
    "into one; TOP's guest view is unchanged. The method moving the fewest\n"
    "bytes is chosen among those allowed: a layer other images use is never\n"
    "written. Users are the files given with --users (list them before\n"
    "TOP, or end the list with --) and, unless --no-scan, the images in the\n"
    "chain's directories whose backing file is the layer.\n";

static int
parse_method(const char *s, enum vmc_consolidate_method *m)
{
    if (!strcmp(s, "auto")) {
        *m = VMC_CONSOLIDATE_NONE;
    } else if (!strcmp(s, "commit")) {
        *m = VMC_CONSOLIDATE_COMMIT;
    } else if (!strcmp(s, "pull")) {
        *m = VMC_CONSOLIDATE_PULL;
    } else if (!strcmp(s, "new-layer")) {
        *m = VMC_CONSOLIDATE_NEW_LAYER;
    } else {
        return cli_error("invalid --method '%s' (auto, commit, pull or "
                         "new-layer)", s);
    }
    return 0;
}

/* --users A B C ...: every following non-option word up to the last one
 * (TOP) or "--". */
struct users_list {
    const char **users;
    size_t n;
    int argc;
    char **argv;
};

static int
opt_users(const char *arg, void *dest)
{
    struct users_list *ul = dest;

    ul->users[ul->n++] = arg;
    while (optind < ul->argc - 1 && ul->argv[optind][0] != '-') {
        ul->users[ul->n++] = ul->argv[optind++];
    }
    if (optind < ul->argc - 1 && !strcmp(ul->argv[optind], "--")) {
        optind++;
    }
    return 0;
}

static int
opt_method(const char *arg, void *dest)
{
    return parse_method(arg, dest) ? CLI_EXIT_FAIL : 0;
}

/* What img consolidate hands to run_consolidate(). */
struct consolidate_run {
    struct vmc_consolidate_opts *opts;
    struct vmc_consolidate_result *res;
};

static int
run_consolidate(struct vmc_image *img, void *ctx,
                struct cli_progress *progress, struct vmc_error *err)
{
    struct consolidate_run *cr = ctx;

    cr->opts->progress = cli_progress_cb;
    cr->opts->opaque = progress;
    return vmc_consolidate(img, cr->opts, cr->res, err);
}

int
cmd_img_consolidate(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img consolidate",
                                        .synopsis = consolidate_usage };
    struct vmc_consolidate_opts o = { 0 };
    struct vmc_consolidate_result res;
    struct cli_open open_opts = { 0 };
    struct consolidate_run cr;
    struct users_list ul = { .argc = argc, .argv = argv };
    const char **users, *top = NULL;
    size_t nusers;
    bool quiet = false, show = false, json = false;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPTS_PROGRESS(&show, &quiet),
        CLI_OPTS_OUTPUT(&json),
        CLI_OPT_STRING(0, "keep", "LAYER", &o.keep, "keep this layer and "
                       "the ones below it"),
        CLI_OPT_CALL(0, "users", "IMG...", &ul, opt_users, "the images "
                     "that use the layers (up to TOP or --)"),
        CLI_OPT_FLAG(0, "no-scan", &o.no_scan, "do not look for other "
                     "users"),
        CLI_OPT_CALL(0, "method", "METHOD", &o.method, opt_method,
                     "how to collapse the layers"),
        CLI_OPT_STRING(0, "new-layer", "FILE", &o.new_layer, "write the "
                       "collapsed layer to FILE"),
        CLI_OPT_END,
    };
    int r;

    ul.users = calloc((size_t)argc, sizeof(*ul.users));
    if (!ul.users) {
        return cli_error("out of memory");
    }
    r = cli_parse_image_verb(opts, &u, argc, argv, 1);
    if (r) {
        free(ul.users);
        return CLI_PARSE_EXIT(r);
    }
    users = ul.users;
    nusers = ul.n;
    top = argv[optind];
    o.users = users;
    o.nusers = nusers;
    cr.opts = &o;
    cr.res = &res;
    r = cli_run_on_image(top, &open_opts, VMC_OPEN_RDWR,
                         show && !quiet && !json, run_consolidate, &cr);
    free(users);
    if (r) {
        return r;
    }
    if (json) {
        struct json_object *obj = json_object_new_object();

        cli_json_add_str(obj, "image", top);
        cli_json_add_str(obj, "method", vmc_consolidate_method_name(
                         res.method));
        cli_json_add_u64(obj, "layers-merged", res.layers_merged);
        cli_json_add_u64(obj, "bytes-commit", res.bytes_commit);
        cli_json_add_u64(obj, "bytes-pull", res.bytes_pull);
        cli_json_add_u64(obj, "bytes-moved", res.bytes_moved);
        cli_json_add_str(obj, "merged-layer", res.merged);
        cli_json_print(stdout, obj);
        json_object_put(obj);
    } else if (!quiet) {
        if (res.method == VMC_CONSOLIDATE_NONE) {
            printf("Nothing to consolidate in '%s'.\n", top);
        } else {
            printf("Consolidated %u layers of '%s' into '%s' by %s "
                   "(%" PRIu64 " bytes moved; commit %" PRIu64
                   ", pull %" PRIu64 ")\n", res.layers_merged, top,
                   res.merged, vmc_consolidate_method_name(res.method),
                   res.bytes_moved, res.bytes_commit, res.bytes_pull);
        }
    }
    return CLI_EXIT_OK;
}

/* ----------------------------------------------------------------- du */

static const char du_usage[] =
    "usage: " CLI_NAME " img du [-f fmt] [-U] [--json] IMG...\n"
    "\n"
    "Per image: virtual size, bytes allocated on the host, guest bytes\n"
    "whose data this layer holds (unique), guest bytes read from its chain\n"
    "(shared), and the bytes flattening would add (shared, in whole\n"
    "clusters).\n";

/* Append @filename's figures to the JSON array @arr. */
static bool
add_du_json(struct json_object *arr, const char *filename,
            const struct vmc_du *du)
{
    const struct cli_json_field fields[] = {
        CLI_JSON_FIELD_STR("filename", filename),
        CLI_JSON_FIELD_U64("virtual-size", du->virtual_size),
        CLI_JSON_FIELD_U64("disk-size", du->disk_size),
        CLI_JSON_FIELD_U64("unique", du->unique),
        CLI_JSON_FIELD_U64("zero", du->zero),
        CLI_JSON_FIELD_U64("shared", du->shared),
        CLI_JSON_FIELD_U64("flatten", du->flatten),
        CLI_JSON_FIELD_U64("depth", du->depth),
    };
    struct json_object *obj = json_object_new_object();

    if (!obj || !cli_json_add_table(obj, fields) ||
        json_object_array_add(arr, obj) < 0) {
        json_object_put(obj);
        return false;
    }
    return true;
}

/* One row of the text table. */
static void
print_du_row(const char *filename, const struct vmc_du *du)
{
    char v[32], d[32], u[32], s[32], f[32];

    size_str(du->virtual_size, v, sizeof(v));
    size_str(du->disk_size, d, sizeof(d));
    size_str(du->unique, u, sizeof(u));
    size_str(du->shared, s, sizeof(s));
    size_str(du->flatten, f, sizeof(f));
    printf("%-10s %-10s %-10s %-10s %-10s %5u  %s\n", v, d, u, s, f,
           du->depth, filename);
}

int
cmd_img_du(int argc, char **argv)
{
    static const struct cli_usage usage = { .verb = "img du",
                                        .synopsis = du_usage };
    struct cli_open open_opts = { 0 };
    struct json_object *arr = NULL;
    bool json = false;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPT_FLAG('U', NULL, &open_opts.force_share, "open images "
                     "another process writes"),
        CLI_OPTS_OUTPUT(&json),
        CLI_OPT_END,
    };
    int i, r, rc = CLI_EXIT_OK;

    r = cli_parse_options(opts, &usage, argc, argv);
    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    r = cli_check_operands(&usage, argc, argv, 1, -1, "expecting image file "
                           "names");
    if (r) {
        return r;
    }
    if (json) {
        arr = json_object_new_array();
        if (!arr) {
            return cli_error("out of memory");
        }
    } else {
        printf("%-10s %-10s %-10s %-10s %-10s %5s  %s\n", "virtual", "disk",
               "unique", "shared", "flatten", "depth", "image");
    }
    for (i = optind; i < argc; i++) {
        struct vmc_image *img = NULL;
        struct vmc_error err = { 0 };
        struct vmc_du du;

        r = cli_open_image(&img, argv[i], &open_opts, 0);
        if (r) {
            rc = r;
            continue;
        }
        r = vmc_du(img, &du, &err);
        vmc_image_close(img);
        if (r < 0) {
            rc = cli_error_lib(&err, r);
            continue;
        }
        if (json) {
            if (!add_du_json(arr, argv[i], &du)) {
                rc = cli_error("out of memory");
            }
        } else {
            print_du_row(argv[i], &du);
        }
    }
    if (json) {
        cli_json_print(stdout, arr);
        json_object_put(arr);
    }
    return rc;
}
