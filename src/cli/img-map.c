/*
 * img-map.c - "img map": the allocation map of an image through its
 * backing chain, as qemu-img map prints it (JSON lines or human table).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "options.h"

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
    const struct cli_json_field fields[] = {
        CLI_JSON_FIELD_U64("start", e->start),
        CLI_JSON_FIELD_U64("length", e->length),
        CLI_JSON_FIELD_U64("depth", e->depth),
        CLI_JSON_FIELD_BOOL("present", e->present),
        CLI_JSON_FIELD_BOOL("zero", e->zero),
        CLI_JSON_FIELD_BOOL("data", e->data),
    };
    struct json_object *o = json_object_new_object();
    bool ok = o && cli_json_add_table(o, fields);

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

static int
opt_start_offset(const char *arg, void *dest)
{
    return cli_parse_size(arg, dest, "start offset") ? CLI_EXIT_FAIL : 0;
}

static int
opt_max_length(const char *arg, void *dest)
{
    return cli_parse_size(arg, dest, "max length") ? CLI_EXIT_FAIL : 0;
}

int
cmd_img_map(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img map",
                                        .synopsis = map_usage };
    struct cli_open open_opts = { 0 };
    struct map_out m = { .first = true };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    uint64_t start = 0, len = UINT64_MAX;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPTS_SHARE(&open_opts),
        CLI_OPTS_OUTPUT(&m.json),
        CLI_OPT_CALL(0, "start-offset", "N", &start, opt_start_offset,
                     "first byte to map"),
        CLI_OPT_CALL(0, "max-length", "N", &len, opt_max_length,
                     "bytes to map at most"),
        CLI_OPT_END,
    };
    int r = cli_parse_image_verb(opts, &u, argc, argv, 1);

    if (r) {
        return CLI_PARSE_EXIT(r);
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
