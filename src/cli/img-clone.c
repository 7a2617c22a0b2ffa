/*
 * img-clone.c - "img clone": linked clones (--linked BASE NEW, many at
 * once with --count N and a %d in NEW) and full clones (--full SRC NEW),
 * the latter by the fastest correct method, which is reported.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

static const char clone_usage[] =
    "usage: " CLI_NAME " img clone --linked [-F base_fmt] [-o options] "
    "[--no-extended-l2]\n"
    "           [--count N] [--absolute] [--force] [-q] [--json] BASE NEW\n"
    "       " CLI_NAME " img clone --full [-f fmt] [-O qcow2|raw] "
    "[-o options] [--thick]\n"
    "           [--no-offload] [-m threads] [--force] [-p] [-q] [--json] "
    "SRC NEW\n"
    "\n"
    "--linked: NEW becomes a qcow2 overlay of BASE (one small write and one\n"
    "  sync; durable when the command returns). Defaults: qcow2 v3 with\n"
    "  extended_l2=on and cluster_size=128k (4 KiB subclusters).\n"
    "  The backing name stored is BASE relative to NEW's directory when\n"
    "  both are on the same filesystem under a common directory other than\n"
    "  /, else BASE's absolute path (always with --absolute); the backing\n"
    "  format is always recorded.\n"
    "  --count N       make N clones; NEW must contain one %d (or %03d...),\n"
    "                  numbered 1..N\n"
    "  --no-extended-l2  plain 64 KiB clusters (readable by QEMU < 5.2)\n"
    "--full: NEW becomes a standalone copy of SRC's guest view: a reflink\n"
    "  when SRC is one file of the output format on a reflink filesystem,\n"
    "  else copy_file_range of its data extents, else a parallel sparse copy.\n"
    "  -O fmt          output format (default: SRC's format)\n"
    "  --thick         preallocate the clone (never ENOSPC later)\n"
    "  --no-offload    always copy the guest view\n"
    "  -m threads      copy threads (default 2 to 4)\n"
    "--force replaces an existing NEW.\n";

enum {
    OPT_LINKED = 0x200,
    OPT_FULL,
    OPT_COUNT,
    OPT_FORCE,
    OPT_ABSOLUTE,
    OPT_NO_EXTL2,
    OPT_THICK,
    OPT_NO_OFFLOAD,
    OPT_JSON,
};

struct clone_args {
    bool linked, full, force, absolute, no_extl2, thick, no_offload;
    bool json, quiet, progress, force_share;
    unsigned long count;
    unsigned workers;
    const char *fmt, *out_fmt, *base_fmt;
    struct cli_create_opts co;
};

static bool
has_option(const struct cli_create_opts *co, const char *key)
{
    unsigned i;

    for (i = 0; i < co->nbufs; i++) {
        if (strstr(co->bufs[i], key)) {
            return true;
        }
    }
    return false;
}

static int
run_linked(struct clone_args *a, const char *base, const char *new_name)
{
    struct vmc_clone_opts o;
    struct vmc_error err = { 0 };
    char **names = NULL;
    char *stored = NULL;
    unsigned long n = a->count ? a->count : 1, i;
    int r;

    vmc_clone_opts_init(&o);
    o.create = a->co.c;
    o.force = a->force;
    o.absolute = a->absolute;
    if (a->base_fmt && cli_parse_format(a->base_fmt, &o.base_format)) {
        return CLI_EXIT_FAIL;
    }
    /* Defaults unless -o says otherwise: extended L2, 128 KiB clusters
     * (64 KiB without extended L2, as QEMU). */
    if (!has_option(&a->co, "extended_l2")) {
        o.create.extended_l2 = !a->no_extl2 && o.create.compat != 2 &&
                               (!has_option(&a->co, "cluster_size") ||
                                o.create.cluster_size >= 16384);
    }
    if (!has_option(&a->co, "cluster_size")) {
        o.create.cluster_size = o.create.extended_l2 ? 131072 : 65536;
    }
    if (a->no_extl2 && o.create.extended_l2) {
        return cli_error("--no-extended-l2 contradicts -o extended_l2=on");
    }
    if (a->co.backing_file || a->co.backing_fmt) {
        return cli_error("the backing file of a linked clone is BASE; "
                         "-o backing_file/backing_fmt are not accepted");
    }
    if (a->count) {
        r = vmc_clone_names(new_name, n, &names, &err);
        if (r < 0) {
            return cli_error_lib(&err, r);
        }
    } else {
        names = calloc(1, sizeof(*names));
        if (!names || !(names[0] = strdup(new_name))) {
            free(names);
            return cli_error("out of memory");
        }
    }
    r = vmc_clone_linked(base, (const char *const *)names, n, &o, &err);
    if (r < 0) {
        vmc_clone_names_free(names, n);
        return cli_error_lib(&err, r);
    }
    if (vmc_clone_backing_name(base, names[0], o.absolute, &stored,
                               NULL) < 0) {
        stored = NULL;
    }
    if (a->json) {
        struct json_object *obj = json_object_new_object();
        struct json_object *arr = json_object_new_array();

        for (i = 0; arr && i < n; i++) {
            json_object_array_add(arr, json_object_new_string(names[i]));
        }
        cli_json_add_str(obj, "base", base);
        cli_json_add_str(obj, "backing-filename", stored ? stored : base);
        cli_json_add_bool(obj, "extended-l2", o.create.extended_l2);
        cli_json_add_u64(obj, "cluster-size", o.create.cluster_size);
        cli_json_add_obj(obj, "clones", arr);
        cli_json_print(stdout, obj);
        json_object_put(obj);
    } else if (!a->quiet) {
        if (n == 1) {
            printf("Linked clone '%s' of '%s' (backing file '%s')\n",
                   names[0], base, stored ? stored : base);
        } else {
            printf("Created %lu linked clones of '%s': '%s' .. '%s'\n", n,
                   base, names[0], names[n - 1]);
        }
    }
    free(stored);
    vmc_clone_names_free(names, n);
    return CLI_EXIT_OK;
}

static int
run_full(struct clone_args *a, const char *src, const char *dst)
{
    struct vmc_full_clone_opts o;
    struct vmc_full_clone_result res;
    struct cli_open open_opts = { .format = a->fmt,
                                  .force_share = a->force_share };
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    int r;

    vmc_full_clone_opts_init(&o);
    if (a->out_fmt && cli_parse_format(a->out_fmt, &o.format)) {
        return CLI_EXIT_FAIL;
    }
    if (a->co.nbufs) {
        if (o.format == VMC_FMT_RAW) {
            return cli_error("-o options are not supported for raw output");
        }
        if (a->co.backing_file || a->co.backing_fmt) {
            return cli_error("a full clone has no backing file");
        }
        o.create = a->co.c;
        o.custom_create = true;
    }
    o.thick = a->thick;
    o.force = a->force;
    o.no_offload = a->no_offload;
    o.workers = a->workers;
    r = cli_open_image(&img, src, &open_opts, 0);
    if (r) {
        return r;
    }
    if (!o.format) {
        o.format = vmc_image_format(img);
    }
    if (o.format == VMC_FMT_QCOW2 && !a->co.nbufs) {
        /* Keep the source's cluster size for a guest-view copy. */
        uint64_t cs = vmc_image_cluster_size(img);

        if (vmc_image_format(img) == VMC_FMT_QCOW2 && cs >= 512 &&
            cs <= 2 * 1024 * 1024) {
            o.create.cluster_size = (unsigned)cs;
        }
    }
    cli_progress_start(&progress, a->progress && !a->quiet && !a->json);
    o.progress = cli_progress_cb;
    o.opaque = &progress;
    r = vmc_clone_full(img, dst, &o, &res, &err);
    cli_progress_end(&progress);
    vmc_image_close(img);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    if (a->json) {
        struct json_object *obj = json_object_new_object();

        cli_json_add_str(obj, "source", src);
        cli_json_add_str(obj, "target", dst);
        cli_json_add_str(obj, "format", vmc_format_name(o.format));
        cli_json_add_str(obj, "method", vmc_clone_method_name(res.method));
        cli_json_add_u64(obj, "bytes-copied", res.bytes_copied);
        cli_json_add_bool(obj, "thick", a->thick);
        cli_json_print(stdout, obj);
        json_object_put(obj);
    } else if (!a->quiet) {
        printf("Full clone '%s' of '%s' (%s, %" PRIu64 " bytes copied)\n",
               dst, src, vmc_clone_method_name(res.method), res.bytes_copied);
    }
    return CLI_EXIT_OK;
}

static int
opt_count(const char *arg, void *dest)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(arg, &end, 10);
    if (errno || *end || end == arg || arg[0] == '-' || v == 0 ||
        v > 1000000) {
        return cli_error("invalid --count '%s' (1 to 1000000)", arg);
    }
    *(unsigned long *)dest = v;
    return 0;
}

static int
opt_workers(const char *arg, void *dest)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(arg, &end, 10);
    if (errno || *end || end == arg || v == 0 || v > 8) {
        return cli_error("invalid thread count '%s' (1 to 8)", arg);
    }
    *(unsigned *)dest = (unsigned)v;
    return 0;
}

int
cmd_img_clone(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img clone",
                                        .synopsis = clone_usage };
    struct clone_args a = { 0 };
    const struct cli_opt opts[] = {
        CLI_OPT_FLAG(0, "linked", &a.linked, "qcow2 overlays on the source"),
        CLI_OPT_FLAG(0, "full", &a.full, "standalone copies"),
        CLI_OPT_CALL(0, "count", "N", &a.count, opt_count, "make N clones "
                     "(NEW has one %d)"),
        CLI_OPT_FLAG(0, "force", &a.force, "replace existing files"),
        CLI_OPT_FLAG(0, "absolute", &a.absolute, "store the backing file "
                     "as an absolute path"),
        CLI_OPT_FLAG(0, "no-extended-l2", &a.no_extl2, "without "
                     "subclusters"),
        CLI_OPT_FLAG(0, "thick", &a.thick, "preallocate full clones"),
        CLI_OPT_FLAG(0, "no-offload", &a.no_offload, "copy through the "
                     "engine, not reflink or copy_file_range"),
        CLI_OPTS_OUTPUT(&a.json),
        CLI_OPT_CALL('m', NULL, "N", &a.workers, opt_workers, "copy "
                     "threads of a full clone (1 to 8)"),
        CLI_OPT_STRING('f', NULL, "fmt", &a.fmt, "format of the source"),
        CLI_OPT_STRING('F', NULL, "fmt", &a.base_fmt, "format of the "
                       "source as a backing file"),
        CLI_OPT_STRING('O', NULL, "fmt", &a.out_fmt, "format of full "
                       "clones"),
        CLI_OPT_CALL('o', NULL, "options", &a.co, cli_opt_create_options,
                     "creation options"),
        CLI_OPTS_PROGRESS(&a.progress, &a.quiet),
        CLI_OPT_FLAG('U', NULL, &a.force_share, "open a source another "
                     "process writes"),
        CLI_OPT_END,
    };
    int r;

    vmc_create_opts_init(&a.co.c);
    r = cli_parse_options(opts, &u, argc, argv);
    if (r) {
        cli_create_opts_release(&a.co);
        return CLI_PARSE_EXIT(r);
    }
    if (a.linked == a.full) {
        r = cli_usage_error(u.verb, "specify exactly one of --linked and "
                            "--full");
        goto out;
    }
    if (argc - optind != 2) {
        r = cli_usage_error(u.verb, argc - optind < 2 ? "expecting a source "
                            "and a new image name" : "too many arguments");
        goto out;
    }
    if (a.linked && (a.thick || a.no_offload || a.out_fmt || a.workers ||
                     a.fmt)) {
        r = cli_usage_error(u.verb, "--thick, --no-offload, -O, -f and -m "
                            "only apply to --full");
        goto out;
    }
    if (a.full && (a.count || a.no_extl2 || a.absolute || a.base_fmt)) {
        r = cli_usage_error(u.verb, "--count, --no-extended-l2, --absolute "
                            "and -F only apply to --linked");
        goto out;
    }
    r = a.linked ? run_linked(&a, argv[optind], argv[optind + 1]) :
                   run_full(&a, argv[optind], argv[optind + 1]);
out:
    cli_create_opts_release(&a.co);
    return r;
}
