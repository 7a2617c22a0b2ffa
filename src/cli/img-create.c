/*
 * img-create.c - "img create" (new image or linked clone) and
 * "img resize", with the options and messages of qemu-img.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

/* ------------------------------------------------------------- create */

static const char create_usage[] =
    "usage: " CLI_NAME " img create [-q] [-f fmt] [-b backing_file "
    "[-F backing_fmt]] [-u]\n"
    "                           [-o options] filename [size]\n"
    "\n"
    "Create a new image; with -b, a linked clone (overlay) of backing_file.\n"
    "  -f fmt          format of the new image: qcow2 or raw (default raw)\n"
    "  -b file         backing file, stored as given (relative to the new\n"
    "                  image's directory)\n"
    "  -F fmt          format of the backing file (required with -b)\n"
    "  -u              do not open the backing file (size then required)\n"
    "  -o options      cluster_size, preallocation=off|metadata|falloc|full,\n"
    "                  compression_type=zlib|zstd, extended_l2=on|off,\n"
    "                  compat=0.10|1.1, refcount_bits, backing_file,\n"
    "                  backing_fmt, size\n"
    "  -q              quiet\n"
    "size accepts the suffixes k, M, G, T, P and E (powers of 1024).\n";

static const char *
prealloc_name(enum vmc_prealloc p)
{
    switch (p) {
    case VMC_PREALLOC_METADATA: return "metadata";
    case VMC_PREALLOC_FALLOC: return "falloc";
    case VMC_PREALLOC_FULL: return "full";
    default: return "off";
    }
}

/* The "Formatting '...'" line qemu-img prints before creating. */
static void
print_formatting(const char *path, const struct cli_create_opts *co)
{
    const struct vmc_create_opts *c = &co->c;

    printf("Formatting '%s', fmt=%s ", path, vmc_format_name(c->format));
    if (c->format == VMC_FMT_RAW) {
        printf("size=%" PRIu64, c->size);
        if (co->set_prealloc) {
            printf(" preallocation=%s", prealloc_name(c->prealloc));
        }
        putchar('\n');
        return;
    }
    printf("cluster_size=%u extended_l2=%s ",
           c->cluster_size ? c->cluster_size : 65536,
           c->extended_l2 ? "on" : "off");
    if (co->set_prealloc) {
        printf("preallocation=%s ", prealloc_name(c->prealloc));
    }
    printf("compression_type=%s size=%" PRIu64,
           c->compression == VMC_COMPRESSION_ZSTD ? "zstd" : "zlib",
           c->size);
    if (co->set_compat) {
        printf(" compat=%s", co->compat_text);
    }
    if (c->backing_file) {
        printf(" backing_file=%s backing_fmt=%s", c->backing_file,
               vmc_format_name(c->backing_format));
    }
    printf(" lazy_refcounts=off refcount_bits=%u\n",
           c->refcount_bits ? c->refcount_bits : 16);
}

/* QEMU addresses images in 512-byte sectors: it rounds sizes up when it
 * creates an image and down when it opens a qcow2 one, so a qcow2 image
 * must have a whole number of sectors to look the same to both. (A raw
 * file keeps its exact size: QEMU only reads zeros past its end.) */
static uint64_t
round_to_sector(uint64_t size)
{
    return size > UINT64_MAX - 511 ? size : (size + 511) & ~(uint64_t)511;
}

/* Resolve the backing file, its format and the size. */
static int
create_backing(struct cli_create_opts *co, const char *path, bool unsafe)
{
    struct vmc_create_opts *c = &co->c;
    struct vmc_error err = { 0 };
    uint64_t size;
    int r;

    if (!co->backing_file || !co->backing_file[0]) {
        c->backing_file = NULL;
        return 0;
    }
    if (c->format == VMC_FMT_RAW) {
        return cli_error("%s: backing file not supported for file format "
                         "'raw'", path);
    }
    if (!co->backing_fmt) {
        return cli_error("%s: Backing file specified without backing "
                         "format", path);
    }
    if (cli_parse_format(co->backing_fmt, &c->backing_format)) {
        return CLI_EXIT_FAIL;
    }
    c->backing_file = co->backing_file;
    c->backing_unsafe = unsafe;
    if (c->prealloc != VMC_PREALLOC_OFF && !c->extended_l2) {
        return cli_error("%s: backing file and preallocation can only be "
                         "used at the same time if extended_l2 is on", path);
    }
    if (unsafe) {
        return 0;
    }
    r = vmc_backing_size(path, co->backing_file, co->backing_fmt, &size,
                         &err);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    if (!co->has_size) {
        c->size = round_to_sector(size);
        co->has_size = true;
    }
    return 0;
}

static int
create_main(struct cli_create_opts *co, int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img create",
                                        .synopsis = create_usage };
    struct vmc_error err = { 0 };
    const char *fmt = "raw", *path;
    bool quiet = false, unsafe = false;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING('f', NULL, "fmt", &fmt, "format (default raw)"),
        CLI_OPT_STRING('b', NULL, "backing_file", &co->backing_file,
                       "make a linked clone of this image"),
        CLI_OPT_STRING('F', NULL, "backing_fmt", &co->backing_fmt,
                       "its format"),
        CLI_OPT_FLAG('u', NULL, &unsafe, "do not open the backing file"),
        CLI_OPT_CALL('o', NULL, "options", co, cli_opt_create_options,
                     "creation options (-o help lists them)"),
        CLI_OPT_FLAG('q', NULL, &quiet, "quiet"),
        CLI_OPT_END,
    };
    int r = cli_parse_options(opts, &u, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    r = cli_check_operands(&u, argc, argv, 1, 2, "expecting image file name");
    if (r) {
        return r;
    }
    path = argv[optind];
    if (cli_parse_format(fmt, &co->c.format)) {
        return CLI_EXIT_FAIL;
    }
    if (optind + 1 < argc) {
        if (cli_parse_size(argv[optind + 1], &co->c.size, "image size")) {
            return CLI_EXIT_FAIL;
        }
        co->has_size = true;
    }
    r = cli_check_create_options(co, path);
    if (r == 0) {
        r = create_backing(co, path, unsafe);
    }
    if (r) {
        return r;
    }
    if (!co->has_size) {
        return cli_error("%s: image creation needs a size parameter", path);
    }
    if (!quiet) {
        print_formatting(path, co);
        fflush(stdout);
    }
    if (co->c.format == VMC_FMT_QCOW2) {
        co->c.size = round_to_sector(co->c.size);
    }
    r = vmc_image_create(path, &co->c, &err);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    return CLI_EXIT_OK;
}

int
cmd_img_create(int argc, char **argv)
{
    struct cli_create_opts co;
    int r;

    memset(&co, 0, sizeof(co));
    vmc_create_opts_init(&co.c);
    r = create_main(&co, argc, argv);
    cli_create_opts_release(&co);
    return r;
}

/* ------------------------------------------------------------- resize */

static const char resize_usage[] =
    "usage: " CLI_NAME " img resize [-q] [-f fmt] [--shrink] "
    "[--backing-fmt fmt] filename [+|-]size\n"
    "\n"
    "Change the virtual size of an image. A leading + or - makes the size\n"
    "relative to the current one; shrinking needs --shrink.\n";

/* Parse "[+|-]size" against @cur into *@out. */
static int
parse_new_size(const char *s, uint64_t cur, uint64_t *out)
{
    uint64_t v;
    int sign = 0;

    if (*s == '+' || *s == '-') {
        sign = *s == '+' ? 1 : -1;
        s++;
    }
    if (cli_parse_size(s, &v, "image size")) {
        return CLI_EXIT_FAIL;
    }
    if (sign > 0) {
        if (v > INT64_MAX - cur) {
            return cli_error("new image size is too large");
        }
        v += cur;
    } else if (sign < 0) {
        if (v >= cur) {
            return cli_error("new image size must be positive");
        }
        v = cur - v;
    }
    if (v == 0) {
        return cli_error("new image size must be positive");
    }
    *out = v;
    return 0;
}

int
cmd_img_resize(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img resize",
                                        .synopsis = resize_usage };
    struct cli_open open_opts = { 0 };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    bool quiet = false, shrink = false;
    const char *size_arg;
    uint64_t cur, size = 0;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPT_FLAG('q', NULL, &quiet, "quiet"),
        CLI_OPT_FLAG(0, "shrink", &shrink, "allow a smaller size (the data "
                     "beyond it is lost)"),
        CLI_OPT_END,
    };
    int r, i;

    /* The size is taken off the end first so that "-1G" is not parsed
     * as an option. */
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_help(stdout, opts, &u);
            return CLI_EXIT_OK;
        }
    }
    if (argc < 3) {
        return cli_usage_error(u.verb, "not enough arguments");
    }
    size_arg = argv[--argc];
    r = cli_parse_image_verb(opts, &u, argc, argv, 1);
    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    r = cli_open_image(&img, argv[optind], &open_opts, VMC_OPEN_RDWR);
    if (r) {
        return r;
    }
    cur = vmc_image_size(img);
    r = parse_new_size(size_arg, cur, &size);
    if (r) {
        goto out;
    }
    if (size < cur && !shrink) {
        r = cli_error("use the --shrink option to perform a shrink "
                      "operation (it deletes all data beyond the new end "
                      "of the image)");
        goto out;
    }
    r = vmc_image_resize(img, size, &err);
    if (r < 0) {
        r = cli_error_lib(&err, r);
        goto out;
    }
    r = vmc_image_close(img);
    img = NULL;
    if (r < 0) {
        r = cli_error("error while closing '%s': %s", argv[optind],
                      strerror(-r));
        goto out;
    }
    if (!quiet) {
        printf("Image resized.\n");
    }
out:
    vmc_image_close(img);
    return r;
}
