/*
 * img-map.c - "img map": the allocation map of an image through its
 * backing chain, as qemu-img map prints it (JSON lines or human table).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "cli/cli.h"

static const char map_usage[] =
    "usage: " CLI_NAME " img map [-f fmt] [--output=human|json] "
    "[--start-offset=N]\n"
    "                        [--max-length=N] [-U] [--backing-fmt fmt] "
    "filename\n"
    "\n"
    "Show which layer of the chain defines each range of the image.\n";

struct map_out {
    bool json;
    bool first;
};

static int
print_json_extent(const struct vmc_map_extent *e, struct map_out *m)
{
    struct json_object *o = json_object_new_object();
    bool ok = o != NULL;

    ok = ok && cli_json_add_u64(o, "start", e->start);
    ok = ok && cli_json_add_u64(o, "length", e->length);
    ok = ok && cli_json_add_u64(o, "depth", e->depth);
    ok = ok && cli_json_add_bool(o, "present", e->present);
    ok = ok && cli_json_add_bool(o, "zero", e->zero);
    ok = ok && cli_json_add_bool(o, "data", e->data);
    if (e->has_offset) {
        ok = ok && cli_json_add_u64(o, "offset", e->offset);
    }
    if (!ok) {
        json_object_put(o);
        return -ENOMEM;
    }
    fputs(m->first ? "[" : ",\n", stdout);
    cli_json_print_inline(stdout, o);
    json_object_put(o);
    return 0;
}

static int
print_extent(const struct vmc_map_extent *e, void *opaque)
{
    struct map_out *m = opaque;
    int r = 0;

    if (m->json) {
        r = print_json_extent(e, m);
    } else if (e->data && !e->has_offset) {
        return -ENOTSUP;
    } else if (e->data && !e->zero) {
        printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
               e->start, e->length, e->offset,
               e->filename ? e->filename : "");
    }
    m->first = false;
    return r;
}

int
cmd_img_map(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "start-offset", required_argument, NULL, OPT_START_OFFSET },
        { "max-length", required_argument, NULL, OPT_MAX_LENGTH },
        { "force-share", no_argument, NULL, 'U' },
        { "backing-fmt", required_argument, NULL, OPT_BACKING_FMT },
        { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "img map";
    struct cli_open open_opts = { 0 };
    struct map_out m = { .first = true };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    uint64_t start = 0, len = UINT64_MAX;
    int c, r;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:Uh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': open_opts.format = optarg; break;
        case 'U': open_opts.force_share = true; break;
        case OPT_OUTPUT:
            if (cli_parse_output(optarg, &m.json)) {
                return CLI_EXIT_FAIL;
            }
            break;
        case OPT_START_OFFSET:
            if (cli_parse_size(optarg, &start, "start offset")) {
                return CLI_EXIT_FAIL;
            }
            break;
        case OPT_MAX_LENGTH:
            if (cli_parse_size(optarg, &len, "max length")) {
                return CLI_EXIT_FAIL;
            }
            break;
        case OPT_BACKING_FMT:
        case OPT_MAX_DEPTH:
            if (cli_open_option(&open_opts, c, optarg, verb)) {
                return CLI_EXIT_FAIL;
            }
            break;
        case 'h':
        case OPT_HELP:
            fputs(map_usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_getopt_error(verb, c, argv);
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(verb, optind >= argc ? "expecting one image "
                               "file name" : "too many arguments");
    }
    r = cli_open_image(&img, argv[optind], &open_opts, 0);
    if (r) {
        return r;
    }
    if (!m.json) {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
               "File");
    }
    r = vmc_map(img, start, len, m.json ? 0 : VMC_MAP_HUMAN, print_extent,
                &m, &err);
    if (m.json && !m.first) {
        fputs("]\n", stdout);
    }
    if (r == -ENOTSUP && !m.json) {
        r = cli_error("file contains external, encrypted or compressed "
                      "clusters");
    } else if (r == -ENOMEM && !err.msg[0]) {
        r = cli_error("out of memory");
    } else if (r < 0) {
        r = cli_error_lib(&err, r);
    }
    vmc_image_close(img);
    return r;
}
