/*
 * cmd-vm-set.c - "vm set VM": change a VM after its clone (issue 13
 * point 5): --label K=V, --unlabel K, --ttl D, --cpus N, --memory M,
 * --nics N, through vmc_catalog_vm_set() (one compare-and-set); the
 * seed options and --ephemeral of clone (customize.c), which remake the
 * VM's cloud-init seed. An instant clone's hardware is its template's:
 * --cpus, --memory and --nics are refused for it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cat-cli.h"
#include "customize.h"
#include "vmclone-catalog-admin.h"

#define SET_MAX_LABELS 32

static struct {
    struct vmc_label labels[SET_MAX_LABELS];
    const char *unlabels[SET_MAX_LABELS];
    struct vmc_vm_changes ch;
    struct cust_args cust;
} set;

/* A whole number in [@min, @max], or a usage error naming --@opt. */
static int
parse_count(const char *opt, const char *arg, uint64_t min, uint64_t max,
            uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max) {
        return cli_usage_error("vm set", "invalid --%s '%s' (%" PRIu64
                               " to %" PRIu64 ")", opt, arg, min, max);
    }
    *out = v;
    return 0;
}

static int
opt_label(const char *arg, void *dest)
{
    char *eq = strchr(arg, '=');

    if (!eq || eq == arg || set.ch.nlabels == SET_MAX_LABELS) {
        return cli_usage_error("vm set", "--label needs KEY=VALUE (at most "
                               "%d)", SET_MAX_LABELS);
    }
    *eq = '\0';
    set.labels[set.ch.nlabels].key = arg;
    set.labels[set.ch.nlabels++].value = eq + 1;
    return 0;
}

static int
opt_unlabel(const char *arg, void *dest)
{
    if (!*arg || set.ch.nunlabels == SET_MAX_LABELS) {
        return cli_usage_error("vm set", "--unlabel needs a KEY (at most "
                               "%d)", SET_MAX_LABELS);
    }
    set.unlabels[set.ch.nunlabels++] = arg;
    return 0;
}

static int
opt_ttl(const char *arg, void *dest)
{
    set.ch.set_ttl = true;
    if (!strcmp(arg, "never")) {
        set.ch.ttl_seconds = 0;
        return 0;
    }
    if (catcli_parse_duration(arg, &set.ch.ttl_seconds) < 0) {
        return cli_usage_error("vm set", "invalid --ttl '%s' (e.g. 90s, "
                               "30m, 2h, 3d, 1w; 0 or never: no expiry)",
                               arg);
    }
    return 0;
}

static int
opt_cpus(const char *arg, void *dest)
{
    uint64_t v;
    int r = parse_count("cpus", arg, 1, 1024, &v);

    set.ch.cpus = (unsigned)v;
    return r;
}

static int
opt_memory(const char *arg, void *dest)
{
    uint64_t v = 0;

    /* a bare number is MiB; a size with a suffix is bytes */
    if (cli_parse_size(arg, &v, "memory size") == 0 &&
        strspn(arg, "0123456789") != strlen(arg)) {
        v >>= 20;
    }
    if (!v) {
        return cli_usage_error("vm set", "invalid --memory '%s' (MiB, or "
                               "a size such as 2G)", arg);
    }
    set.ch.memory_mb = v;
    return 0;
}

static int
opt_nics(const char *arg, void *dest)
{
    uint64_t v;
    int r = parse_count("nics", arg, 0, 32, &v);

    set.ch.set_nics = true;
    set.ch.nics = (unsigned)v;
    return r;
}

const struct cli_opt *
catcli_vm_set_opts(struct catcli *c)
{
    static struct cli_opt opts[17];
    const struct cli_opt mine[] = {
        CLI_OPT_CALL(0, "label", "KEY=VALUE", NULL, opt_label, "add or "
                     "change a label (repeatable)"),
        CLI_OPT_CALL(0, "unlabel", "KEY", NULL, opt_unlabel, "remove a "
                     "label (repeatable)"),
        CLI_OPT_CALL(0, "ttl", "DURATION", NULL, opt_ttl, "expire this "
                     "long from now (0 or never: no expiry)"),
        CLI_OPT_CALL(0, "cpus", "N", NULL, opt_cpus, "CPUs (next start)"),
        CLI_OPT_CALL(0, "memory", "MiB", NULL, opt_memory, "memory (next "
                     "start)"),
        CLI_OPT_CALL(0, "nics", "N", NULL, opt_nics, "network cards, 0 to "
                     "32 (new ones get new MACs)"),
        CUST_OPTS(&set.cust),
        CATCLI_OPTS(c),
        CLI_OPT_END,
    };

    memcpy(opts, mine, sizeof(mine));
    return opts;
}

int
catcli_vm_set(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    struct json_object *vm;
    bool hw = set.ch.nlabels || set.ch.nunlabels || set.ch.set_ttl ||
              set.ch.cpus || set.ch.memory_mb || set.ch.set_nics;
    int r = 0;

    if (!hw && !cust_given(&set.cust)) {
        return cli_usage_error("vm set", "nothing to change (--label, "
                               "--unlabel, --ttl, --cpus, --memory, --nics, "
                               "--hostname, --ssh-key, --user-data, "
                               "--network-config, --ephemeral)");
    }
    set.ch.labels = set.labels;
    set.ch.unlabels = set.unlabels;
    if (set.ch.cpus || set.ch.memory_mb || set.ch.set_nics) {
        struct vmc_instant in;

        if (vmc_catalog_instant_of_vm(c->cat, argv[0], &in, &err) == 0) {
            r = catcli_error(CLI_EXIT_CONFLICT, "VM '%s' is an instant "
                             "clone of '%s': it resumes with the CPUs, "
                             "memory and NIC slots that template was frozen "
                             "with; --cpus, --memory and --nics cannot "
                             "change them (a new template: freeze a VM set "
                             "up that way)", argv[0], in.template_name);
            vmc_instant_release(&in);
            return r;
        }
        memset(&err, 0, sizeof(err));
    }
    if (hw) {
        r = vmc_catalog_vm_set(c->cat, argv[0], &set.ch, &err);
    }
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    if (cust_given(&set.cust) &&
        (r = cust_apply(c, &set.cust, argv, 1, false))) {
        return r;
    }
    if (c->json && (vm = catcli_vm_json(c, argv[0]))) {
        cli_json_print(stdout, vm);
        json_object_put(vm);
    } else if (!c->quiet && !c->json) {
        printf("VM '%s' changed\n", argv[0]);
    }
    return CLI_EXIT_OK;
}
