/*
 * img-convert.c - "img convert" (full clone, flatten, compress, export
 * as an overlay) and "img compare", with qemu-img's options, messages
 * and exit statuses.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

/* ------------------------------------------------------------ convert */

static const char convert_usage[] =
    "usage: " CLI_NAME " img convert [-q] [-p] [-n] [-c] [-f fmt] "
    "[-O output_fmt]\n"
    "           [-B backing_file [-F backing_fmt]] [-o options] "
    "[-S sparse_size] [-U]\n"
    "           [--backing-fmt fmt] [--max-depth N] filename "
    "output_filename\n"
    "\n"
    "Copy the guest view of filename (through its backing chain) into a new\n"
    "image (default format raw). With -B, the output is an overlay of\n"
    "backing_file and only what the source's top layer defines is copied.\n"
    "  -c              write compressed clusters (qcow2 output)\n"
    "  -S size         zero runs of at least size bytes are not written\n"
    "                  (default 4k; 0 writes everything)\n"
    "  -n              the output exists already: do not create it\n"
    "  -o options      as for create; for -O vpc|vdi|vhdx|vmdk:\n"
    "                  subformat=dynamic|fixed (vpc, vhdx),\n"
    "                  dynamic|static (vdi), monolithicSparse|\n"
    "                  streamOptimized (vmdk); block_size=N (vpc, vdi,\n"
    "                  vhdx); force_size=on (vpc: no CHS rounding);\n"
    "                  zlib_level=0-9 (vmdk streamOptimized)\n"
    "  -t/-T cache, -m N, -W, -C are accepted for qemu-img compatibility\n"
    "  and ignored.\n";

#define MAX_SPARSE (16u * 1024 * 1024)

/* -m N (parallel requests in qemu-img): checked, then ignored. */
static int
check_coroutines(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (end == s || *end || v < 1 || v > 16) {
        return cli_error("invalid number of coroutines '%s' (1 to 16)", s);
    }
    return 0;
}

#define MAX_OPTION_LISTS 16

struct convert_args {
    struct cli_open src_open;
    struct cli_create_opts co;
    const char *olist_v[MAX_OPTION_LISTS];
    struct cli_list olists;     /* every -o, applied once -O is known */
    const char *out_fmt;
    const char *backing;
    const char *backing_fmt;
    const char *sparse;
    bool compress;
    bool no_create;
    bool progress;
    bool quiet;
    bool ignored;           /* -W, -C */
};

static int
opt_coroutines(const char *arg, void *dest)
{
    return check_coroutines(arg) ? CLI_EXIT_FAIL : 0;
}

static int
convert_parse(struct convert_args *a, int argc, char **argv,
              const char *verb)
{
    const struct cli_usage u = { .verb = verb, .synopsis = convert_usage };
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&a->src_open),
        CLI_OPTS_SHARE(&a->src_open),
        CLI_OPT_STRING('O', NULL, "output_fmt", &a->out_fmt, "format of "
                       "the target (default raw)"),
        CLI_OPT_STRING('B', NULL, "backing_file", &a->backing, "make the "
                       "target an overlay of this image"),
        CLI_OPT_STRING('F', NULL, "backing_fmt", &a->backing_fmt,
                       "its format"),
        CLI_OPT_FLAG('c', NULL, &a->compress, "compress the target"),
        CLI_OPT_CALL('o', NULL, "options", &a->olists, cli_opt_list,
                     "creation options of the target"),
        CLI_OPT_STRING('S', NULL, "size", &a->sparse, "zero run that "
                       "becomes a hole"),
        CLI_OPT_FLAG('n', NULL, &a->no_create, "write into an existing "
                     "target"),
        CLI_OPTS_PROGRESS(&a->progress, &a->quiet),
        CLI_OPT_CACHE,
        CLI_OPT_SRC_CACHE,
        CLI_OPT_CALL('m', NULL, "N", NULL, opt_coroutines, "parallel "
                     "requests (accepted for compatibility)"),
        CLI_OPT_FLAG('W', NULL, &a->ignored, "out-of-order writes (no-op)"),
        CLI_OPT_FLAG('C', NULL, &a->ignored, "copy offloading (no-op)"),
        CLI_OPT_END,
    };
    int r = cli_parse_options(opts, &u, argc, argv);

    if (r) {
        return r;
    }
    if (argc - optind != 2) {
        return cli_usage_error(verb, argc - optind < 2 ? "expecting a "
                               "source and a target file name" :
                               "too many arguments (only one source is "
                               "supported)");
    }
    return 0;
}

/* Apply the -o lists: to the writer options of a vpc/vdi/vhdx/vmdk
 * target, to the creation options of a qcow2/raw one. */
static int
apply_option_lists(struct convert_args *a, struct vmc_convert_opts *o)
{
    struct vmc_error err = { 0 };
    const char *fmt = a->out_fmt ? a->out_fmt : "raw";
    size_t i;
    int r;

    if (cli_parse_format(fmt, &a->co.c.format)) {
        return CLI_EXIT_FAIL;
    }
    if (!vmc_format_has_writer(a->co.c.format)) {
        for (i = 0; i < a->olists.n; i++) {
            r = cli_parse_create_options(&a->co, a->olists.v[i]);
            if (r) {
                return r;
            }
        }
        return 0;
    }
    r = vmc_convert_opts_set_target(o, fmt, NULL, &err);
    for (i = 0; r == 0 && i < a->olists.n; i++) {
        r = vmc_writer_opts_parse(&o->writer, a->olists.v[i], &err);
    }
    return r < 0 ? cli_error_lib(&err, r) : 0;
}

/* Turn the parsed arguments into vmc_convert options. */
static int
convert_setup(struct convert_args *a, struct vmc_convert_opts *o,
              const char *dst)
{
    int r = apply_option_lists(a, o);

    if (r) {
        return r;
    }
    o->create = a->co.c;
    if (a->no_create && !a->out_fmt) {
        o->create.format = VMC_FMT_RAW;
    }
    if (!a->backing) {
        a->backing = a->co.backing_file;
    }
    if (!a->backing_fmt) {
        a->backing_fmt = a->co.backing_fmt;
    }
    a->co.backing_file = NULL;     /* handled through -B */
    if (!a->no_create && cli_check_create_options(&a->co, dst)) {
        return CLI_EXIT_FAIL;
    }
    if (a->backing && !a->backing_fmt) {
        return cli_error("Use of backing file requires explicit backing "
                         "format");
    }
    if (a->backing && cli_parse_format(a->backing_fmt,
                                       &o->create.backing_format)) {
        return CLI_EXIT_FAIL;
    }
    if (a->backing && a->no_create) {
        return cli_error("-B cannot be used with -n");
    }
    if (a->sparse) {
        if (cli_parse_size(a->sparse, &o->sparse_size, "sparse size")) {
            return CLI_EXIT_FAIL;
        }
        if (o->sparse_size % 512 || o->sparse_size > MAX_SPARSE) {
            return cli_error("invalid sparse size '%s': valid sizes are "
                             "multiples of 512 up to 16M, or 0 to write "
                             "everything", a->sparse);
        }
    }
    o->backing_file = a->backing;
    o->backing_format = a->backing_fmt;
    o->compress = a->compress;
    o->no_create = a->no_create;
    o->target_backing_format = a->src_open.backing_fmt;
    return 0;
}

static int
convert_main(struct convert_args *a, int argc, char **argv)
{
    static const char verb[] = "img convert";
    struct vmc_convert_opts o;
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    struct vmc_image *src = NULL;
    const char *dst;
    int r;

    r = convert_parse(a, argc, argv, verb);
    if (r) {
        return r < 0 ? CLI_EXIT_OK : r;
    }
    dst = argv[optind + 1];
    vmc_convert_opts_init(&o);
    r = convert_setup(a, &o, dst);
    if (r) {
        return r;
    }
    r = cli_open_image(&src, argv[optind], &a->src_open, 0);
    if (r) {
        return r;
    }
    cli_progress_start(&progress, a->progress && !a->quiet);
    o.progress = cli_progress_cb;
    o.opaque = &progress;
    r = vmc_convert(src, dst, &o, &err);
    cli_progress_end(&progress);
    if (r < 0) {
        r = cli_error_lib(&err, r);
    }
    vmc_image_close(src);
    return r;
}

int
cmd_img_convert(int argc, char **argv)
{
    struct convert_args a;
    int r;

    memset(&a, 0, sizeof(a));
    vmc_create_opts_init(&a.co.c);
    a.olists.v = a.olist_v;
    a.olists.cap = MAX_OPTION_LISTS;
    r = convert_main(&a, argc, argv);
    cli_create_opts_release(&a.co);
    return r;
}

/* ------------------------------------------------------------ compare */

static const char compare_usage[] =
    "usage: " CLI_NAME " img compare [-f fmt] [-F fmt] [-s] [-q] [-p] [-U]\n"
    "           [--backing-fmt fmt] [--max-depth N] filename1 filename2\n"
    "\n"
    "Compare the guest views of two images. -f is the format of the first\n"
    "image, -F of the second; -s (strict) also fails on size or allocation\n"
    "differences. Exit status: 0 identical, 1 different, 2 open error,\n"
    "3 allocation status error, 4 read error.\n";

static int
compare_report(const struct vmc_compare_result *res, bool quiet)
{
    if (quiet) {
        return res->status == VMC_COMPARE_IDENTICAL ? 0 : 1;
    }
    if (res->size_warning) {
        printf("Warning: Image size mismatch!\n");
    }
    switch (res->status) {
    case VMC_COMPARE_IDENTICAL:
        printf("Images are identical.\n");
        return 0;
    case VMC_COMPARE_CONTENT_MISMATCH:
        printf("Content mismatch at offset %" PRIu64 "!\n", res->offset);
        return 1;
    case VMC_COMPARE_SIZE_MISMATCH:
        printf("Strict mode: Image size mismatch!\n");
        return 1;
    case VMC_COMPARE_STATUS_MISMATCH:
        printf("Strict mode: Offset %" PRIu64 " block status mismatch!\n",
               res->offset);
        return 1;
    }
    return 1;
}

int
cmd_img_compare(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img compare",
                                        .synopsis = compare_usage };
    struct cli_open open1 = { 0 }, open2;
    struct vmc_compare_opts o = { 0 };
    struct vmc_compare_result res;
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    struct vmc_image *a = NULL, *b = NULL;
    const char *fmt2 = NULL;
    bool quiet = false, show_progress = false;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open1),
        CLI_OPTS_SHARE(&open1),
        CLI_OPT_STRING('F', NULL, "fmt", &fmt2, "format of the second "
                       "image"),
        CLI_OPT_FLAG('s', NULL, &o.strict, "strict: a size mismatch or "
                     "allocation difference counts"),
        CLI_OPTS_PROGRESS(&show_progress, &quiet),
        CLI_OPT_SRC_CACHE,
        CLI_OPT_END,
    };
    int r = cli_parse_image_verb(opts, &u, argc, argv, 2);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    open2 = open1;
    open2.format = fmt2;
    if (cli_open_image(&a, argv[optind], &open1, 0) ||
        cli_open_image(&b, argv[optind + 1], &open2, 0)) {
        r = 2;
        goto out;
    }
    cli_progress_start(&progress, show_progress && !quiet);
    o.progress = cli_progress_cb;
    o.opaque = &progress;
    r = vmc_compare(a, b, &o, &res, &err);
    if (r < 0) {
        cli_progress_end(&progress);
        cli_error_lib(&err, r);
        r = res.failure == VMC_COMPARE_FAIL_STATUS ? 3 : 4;
        goto out;
    }
    r = compare_report(&res, quiet);
    cli_progress_end(&progress);
out:
    vmc_image_close(a);
    vmc_image_close(b);
    return r;
}
