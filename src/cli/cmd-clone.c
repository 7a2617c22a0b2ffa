/*
 * cmd-clone.c - "clone SOURCE --name NAME ...", and the seed's short form
 * "vm-clone --linked|--full --name NAME [--template T]" that clones the
 * configured default template. The output states the clone type
 * requested and the type and mechanism actually used.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cat-cli.h"

static const char clone_usage[] =
    "usage: " CLI_NAME " clone SOURCE --name NAME [--linked | --full] "
    "[--snapshot SNAP]\n"
    "           [--pool POOL] [--thick | --thin] [--count N] "
    "[--label KEY=VALUE]...\n"
    "           [--ttl DURATION] [--request-id ID] [--json]\n"
    "       " CLI_NAME " --linked|--full --name NAME [--template T] "
    "[options as above]\n\n"
    "SOURCE is a template or a VM (with --snapshot, that snapshot of the "
    "VM).\n"
    "--linked (default for templates and snapshots): qcow2 overlays on the "
    "template's\n"
    "  copy in the pool (made once, on first use) or on the snapshot.\n"
    "--full (default for a VM's current state): standalone disks, by "
    "reflink,\n"
    "  copy_file_range or a guest-view copy; --thick preallocates them.\n"
    "--count N makes N VMs; NAME must contain one %d (numbered from 1).\n"
    "--ttl 2h: the VM expires ('vm-clone gc' removes it); s, m, h, d, w.\n"
    "--request-id ID: a retried call returns the VMs of the first one.\n"
    "The short form uses --template or 'config set default-template'.\n";

enum {
    OPT_NAME = 0x400,
    OPT_LINKED,
    OPT_FULL,
    OPT_SNAPSHOT,
    OPT_POOL,
    OPT_THICK,
    OPT_THIN,
    OPT_COUNT,
    OPT_LABEL,
    OPT_TTL,
    OPT_REQUEST_ID,
    OPT_TEMPLATE,
};

static int
run_clone(int argc, char **argv, bool short_form)
{
    static const struct option longopts[] = {
        CATCLI_LONGOPTS,
        { "name", required_argument, NULL, OPT_NAME },
        { "linked", no_argument, NULL, OPT_LINKED },
        { "full", no_argument, NULL, OPT_FULL },
        { "snapshot", required_argument, NULL, OPT_SNAPSHOT },
        { "pool", required_argument, NULL, OPT_POOL },
        { "thick", no_argument, NULL, OPT_THICK },
        { "thin", no_argument, NULL, OPT_THIN },
        { "count", required_argument, NULL, OPT_COUNT },
        { "label", required_argument, NULL, OPT_LABEL },
        { "ttl", required_argument, NULL, OPT_TTL },
        { "request-id", required_argument, NULL, OPT_REQUEST_ID },
        { "template", required_argument, NULL, OPT_TEMPLATE },
        { NULL, 0, NULL, 0 },
    };
    struct catcli c = { .verb = "clone", .usage = clone_usage };
    struct vmc_catalog_clone_opts o = { 0 };
    struct vmc_catalog_clone_result res;
    struct vmc_label labels[64];
    struct vmc_error err = { 0 };
    const char *name = NULL, *tmpl = NULL;
    char *source = NULL, *end;
    bool linked = false, full = false, thin = false;
    int opt, r;
    size_t i;

    while ((opt = getopt_long(argc, argv, ":hq", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_NAME:
            name = optarg;
            continue;
        case OPT_LINKED:
            linked = true;
            continue;
        case OPT_FULL:
            full = true;
            continue;
        case OPT_SNAPSHOT:
            o.snapshot = optarg;
            continue;
        case OPT_POOL:
            o.pool = optarg;
            continue;
        case OPT_THICK:
            o.thick = true;
            continue;
        case OPT_THIN:
            thin = true;
            continue;
        case OPT_COUNT: {
            unsigned long n;

            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (errno || *end || n < 1 || n > 10000 || optarg[0] == '-') {
                return cli_usage_error(c.verb, "--count must be 1 to 10000");
            }
            o.count = (unsigned)n;
            continue;
        }
        case OPT_LABEL: {
            char *eq = strchr(optarg, '=');

            if (!eq || eq == optarg || o.nlabels >= 64) {
                return cli_usage_error(c.verb, "--label needs KEY=VALUE");
            }
            *eq = '\0';
            labels[o.nlabels].key = optarg;
            labels[o.nlabels++].value = eq + 1;
            continue;
        }
        case OPT_TTL:
            if (catcli_parse_duration(optarg, &o.ttl_seconds) < 0 ||
                o.ttl_seconds == 0) {
                return cli_usage_error(c.verb, "invalid --ttl '%s' (e.g. "
                                       "90s, 30m, 2h, 7d)", optarg);
            }
            continue;
        case OPT_REQUEST_ID:
            o.request_id = optarg;
            continue;
        case OPT_TEMPLATE:
            tmpl = optarg;
            continue;
        default:
            r = catcli_opt(&c, opt, argv);
            if (r >= 1000) {
                return CATCLI_EXIT(r);
            }
        }
    }
    o.labels = labels;
    if (linked && full) {
        return cli_usage_error(c.verb, "--linked and --full exclude each "
                               "other");
    }
    if (o.thick && thin) {
        return cli_usage_error(c.verb, "--thick and --thin exclude each "
                               "other");
    }
    if (!name) {
        return cli_usage_error(c.verb, "--name NAME is required");
    }
    if (short_form) {
        if (optind != argc) {
            return cli_usage_error(c.verb, "unexpected argument '%s'",
                                   argv[optind]);
        }
    } else {
        if (argc - optind != 1) {
            return cli_usage_error(c.verb, argc - optind < 1
                                   ? "expecting a SOURCE (template or VM)"
                                   : "too many arguments");
        }
        if (tmpl) {
            return cli_usage_error(c.verb, "--template is for the short "
                                   "form; give the SOURCE instead");
        }
    }
    o.kind = linked ? VMC_CLONE_KIND_LINKED
                    : full ? VMC_CLONE_KIND_FULL : VMC_CLONE_KIND_DEFAULT;
    r = catcli_open(&c, 0);
    if (r) {
        return r;
    }
    if (short_form && !tmpl) {
        r = vmc_catalog_config_get(c.cat, "default-template", &source, &err);
        if (r == 0 && !source) {
            catcli_close(&c);
            return cli_error("no template given: use --template NAME or "
                             "'vm-clone config set default-template NAME'");
        }
    } else {
        source = strdup(short_form ? tmpl : argv[optind]);
        r = source ? 0 : vmc_error_set(&err, -ENOMEM, "out of memory");
    }
    if (r < 0) {
        catcli_close(&c);
        return catcli_fail(&err, r);
    }
    /* the template copy (first linked use in the pool) and full clones
     * show the store's progress bar on a TTY (catcli_open()) */
    r = vmc_catalog_clone(c.cat, source, name, &o, &res, &err);
    catcli_progress_end(&c);
    if (r < 0) {
        free(source);
        catcli_close(&c);
        return catcli_fail(&err, r);
    }
    if (c.json) {
        struct json_object *obj = json_object_new_object();
        struct json_object *vms = json_object_new_array();
        struct json_object *cp = json_object_new_object();

        for (i = 0; i < res.count; i++) {
            json_object_array_add(vms, json_object_new_string(res.names[i]));
        }
        cli_json_add_str(obj, "source", source);
        cli_json_add_str(obj, "source-kind", res.source_kind);
        cli_json_add_str(obj, "requested", vmc_clone_kind_name(res.requested));
        cli_json_add_str(obj, "type", vmc_clone_kind_name(res.actual));
        cli_json_add_str(obj, "mechanism", res.mechanism);
        cli_json_add_str(obj, "pool", res.pool);
        cli_json_add_obj(obj, "vms", vms);
        cli_json_add_u64(obj, "disks-per-vm", res.disks);
        json_object_object_add(obj, "seconds",
                               json_object_new_double(res.seconds));
        cli_json_add_u64(obj, "bytes-written", res.bytes_written);
        cli_json_add_bool(obj, "existing", res.existing);
        cli_json_add_bool(cp, "made", res.template_copied);
        if (res.template_copied) {
            cli_json_add_str(cp, "mechanism", res.copy_mechanism);
            cli_json_add_u64(cp, "bytes-copied", res.copy_bytes);
        }
        cli_json_add_obj(obj, "template-copy", cp);
        cli_json_print(stdout, obj);
        json_object_put(obj);
    } else if (!c.quiet) {
        char sz[32], cb[32];

        catcli_size(&c, res.bytes_written, sz, sizeof(sz));
        if (res.template_copied) {
            catcli_size(&c, res.copy_bytes, cb, sizeof(cb));
            printf("Copied template '%s' to pool '%s' (first use there; %s, "
                   "%s copied)\n", source, res.pool, res.copy_mechanism, cb);
        }
        if (res.existing) {
            printf("Request '%s' already served: ", o.request_id);
        }
        if (res.count == 1) {
            printf("%s %s clone '%s' of %s '%s' in pool '%s'\n",
                   res.existing ? "existing" : "Created",
                   vmc_clone_kind_name(res.actual), res.names[0],
                   res.source_kind, source, res.pool[0] ? res.pool : "-");
        } else {
            printf("%s %zu %s clones of %s '%s' in pool '%s': '%s' .. "
                   "'%s'\n", res.existing ? "existing" : "Created",
                   res.count, vmc_clone_kind_name(res.actual),
                   res.source_kind, source, res.pool[0] ? res.pool : "-",
                   res.names[0], res.names[res.count - 1]);
        }
        printf("  requested %s, got %s (%s); %u disk%s per VM, %.3f s, "
               "%s written\n", vmc_clone_kind_name(res.requested),
               vmc_clone_kind_name(res.actual),
               res.mechanism ? res.mechanism : "-", res.disks,
               res.disks == 1 ? "" : "s", res.seconds, sz);
    }
    vmc_catalog_clone_result_release(&res);
    free(source);
    catcli_close(&c);
    return CLI_EXIT_OK;
}

int
cmd_clone(int argc, char **argv)
{
    return run_clone(argc, argv, false);
}

int
cmd_clone_short(int argc, char **argv)
{
    return run_clone(argc, argv, true);
}
