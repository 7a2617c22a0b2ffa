/*
 * cmd-clone.c - "clone SOURCE --name NAME ...", and the seed's short form
 * "vm-clone --linked|--full --name NAME [--template T]" that clones the
 * configured default template. The output states the clone type
 * requested and the type and mechanism actually used.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cat-cli.h"
#include "customize.h"
#include "vm-qemu.h"
#include "vmclone-virt.h"

static const char clone_usage[] =
    "usage: " CLI_NAME " clone SOURCE|VM@SNAP --name NAME [--linked | "
    "--full]\n"
    "           [--snapshot SNAP] [--pool POOL] [--thick | --thin] "
    "[--count N]\n"
    "           [--label KEY=VALUE]... [--ttl DURATION] [--request-id ID] "
    "[--json]\n"
    "           [--define [--connect URI]]\n"
    "           [--hostname NAME] [--ssh-key FILE] [--user-data FILE]\n"
    "           [--network-config FILE] [--ephemeral] [--instant]\n"
    "           [--start [--wait-console TEXT [--wait-timeout SECONDS]]]\n"
    "       " CLI_NAME " --linked|--full --name NAME [--template T] "
    "[options as above]\n\n"
    "SOURCE is a template or a VM; VM@SNAP (or VM --snapshot SNAP) is a "
    "snapshot of\nthe VM.\n"
    "--linked (default for templates and snapshots): qcow2 overlays on the "
    "template's\n"
    "  copy in the pool (made once, on first use) or on the snapshot.\n"
    "--full (default for a VM's current state): standalone disks, by "
    "reflink,\n"
    "  copy_file_range or a guest-view copy; --thick preallocates them.\n"
    "--count N makes N VMs; NAME must contain one %d (numbered from 1).\n"
    "--ttl 2h: the VM expires ('vm-clone gc' removes it); s, m, h, d, w.\n"
    "--request-id ID: a retried call returns the VMs of the first one; "
    "another call\n"
    "  with the same ID (other name, source, type, count or pool) is "
    "refused.\n"
    "--define: each VM's libvirt domain is defined (on --connect URI) "
    "with the clone,\n  all or nothing.\n"
    "--hostname, --ssh-key, --user-data, --network-config: a cloud-init "
    "NoCloud seed\n"
    "  (ISO 'cidata', a CD-ROM of the VM); the hostname defaults to the "
    "VM's name.\n"
    "--ephemeral: every start of the VM writes to throwaway overlays.\n"
    "--instant: clones of an instant template ('template freeze'); "
    "'start' resumes\n  the frozen guest instead of booting it.\n"
    "--start: then 'vm-clone start VM --detach' of every new VM, all at "
    "once (with\n"
    "  --wait-console TEXT: each returns once TEXT is on its console); "
    "consoles in\n"
    "  STORE/run/console/VM.log. The clones stay when a start fails (its "
    "status).\n"
    "The short form uses --template or 'config set default-template'.\n";

/* What the options of clone fill in. */
struct clone_args {
    struct vmc_catalog_clone_opts o;
    struct vmc_label labels[64];
    struct cust_args cust;
};

static int
opt_count(const char *arg, void *dest)
{
    struct clone_args *a = dest;
    unsigned long n;
    char *end;

    errno = 0;
    n = strtoul(arg, &end, 10);
    if (errno || *end || n < 1 || n > 10000 || arg[0] == '-') {
        return cli_usage_error("clone", "--count must be 1 to 10000");
    }
    a->o.count = (unsigned)n;
    return 0;
}

static int
opt_label(const char *arg, void *dest)
{
    struct clone_args *a = dest;
    char *eq = strchr(arg, '=');

    if (!eq || eq == arg || a->o.nlabels >= 64) {
        return cli_usage_error("clone", "--label needs KEY=VALUE");
    }
    *eq = '\0';
    a->labels[a->o.nlabels].key = arg;
    a->labels[a->o.nlabels++].value = eq + 1;
    return 0;
}

static int
opt_ttl(const char *arg, void *dest)
{
    struct clone_args *a = dest;

    if (catcli_parse_duration(arg, &a->o.ttl_seconds) < 0 ||
        a->o.ttl_seconds == 0) {
        return cli_usage_error("clone", "invalid --ttl '%s' (e.g. 90s, 30m, "
                               "2h, 7d; at most 100 years)", arg);
    }
    return 0;
}

/* The result of a clone as JSON on stdout (docs/schema/clone.json). */
static void
report_json(const char *source, const char *snapshot,
            const struct vmc_catalog_clone_result *res)
{
    struct json_object *obj = json_object_new_object();
    struct json_object *vms = json_object_new_array();
    struct json_object *cp = json_object_new_object();
    struct json_object *src = json_object_new_object();
    size_t i;

    for (i = 0; i < res->count; i++) {
        json_object_array_add(vms, json_object_new_string(res->names[i]));
    }
    cli_json_add_str(src, "kind", snapshot ? "snapshot" : res->source_kind);
    cli_json_add_str(src, "name", source);
    json_object_object_add(src, "snapshot", snapshot
                           ? json_object_new_string(snapshot) : NULL);
    cli_json_add_obj(obj, "source", src);
    cli_json_add_str(obj, "requested", vmc_clone_kind_name(res->requested));
    cli_json_add_str(obj, "type", vmc_clone_kind_name(res->actual));
    cli_json_add_str(obj, "mechanism", res->mechanism);
    cli_json_add_str(obj, "pool", res->pool);
    cli_json_add_obj(obj, "vms", vms);
    cli_json_add_u64(obj, "disk_count", res->disks);
    json_object_object_add(obj, "seconds",
                           json_object_new_double(res->seconds));
    cli_json_add_u64(obj, "bytes_written", res->bytes_written);
    cli_json_add_bool(obj, "existing", res->existing);
    cli_json_add_bool(cp, "made", res->template_copied);
    json_object_object_add(cp, "mechanism", res->template_copied
                           ? json_object_new_string(res->copy_mechanism)
                           : NULL);
    cli_json_add_u64(cp, "bytes_copied", res->template_copied
                                         ? res->copy_bytes : 0);
    cli_json_add_obj(obj, "template_copy", cp);
    cli_json_print(stdout, obj);
    json_object_put(obj);
}

/* The result of a clone as text: the template copy if one was made, the
 * VMs, and the type and mechanism requested and used. */
static void
report_text(struct catcli *c, const char *source, const char *request_id,
            const struct vmc_catalog_clone_result *res)
{
    char sz[32], cb[32];

    catcli_size(c, res->bytes_written, sz, sizeof(sz));
    if (res->template_copied) {
        catcli_size(c, res->copy_bytes, cb, sizeof(cb));
        printf("Copied template '%s' to pool '%s' (first use there; %s, "
               "%s copied)\n", source, res->pool, res->copy_mechanism, cb);
    }
    if (res->existing) {
        fputs("Request '", stdout);
        cli_put_escaped(stdout, request_id);
        fputs("' already served: ", stdout);
    }
    if (res->count == 1) {
        printf("%s %s clone '%s' of %s '%s' in pool '%s'\n",
               res->existing ? "existing" : "Created",
               vmc_clone_kind_name(res->actual), res->names[0],
               res->source_kind, source, res->pool[0] ? res->pool : "-");
    } else {
        printf("%s %zu %s clones of %s '%s' in pool '%s': '%s' .. "
               "'%s'\n", res->existing ? "existing" : "Created",
               res->count, vmc_clone_kind_name(res->actual),
               res->source_kind, source, res->pool[0] ? res->pool : "-",
               res->names[0], res->names[res->count - 1]);
    }
    printf("  requested %s, got %s (%s); %u disk%s per VM, %.3f s, "
           "%s written\n", vmc_clone_kind_name(res->requested),
           vmc_clone_kind_name(res->actual),
           res->mechanism ? res->mechanism : "-", res->disks,
           res->disks == 1 ? "" : "s", res->seconds, sz);
}

/* clone --define with a seed: define each new VM's domain again, now
 * that it has its CD-ROM (the clone defined them before the seed was
 * made). @return 0, or the exit status after printing the error. */
static int
redefine_with_seed(struct catcli *c, const struct vmc_catalog_clone_result *res,
                   const char *connect)
{
    const struct vmq_opts ho = { 0 };
    struct vmc_error err = { 0 };
    size_t i;
    int r = 0;

    for (i = 0; r == 0 && i < res->count; i++) {
        struct vmc_hw *hw = NULL;

        r = vmq_load(c, res->names[i], &ho, &hw);
        if (r == 0 && (r = vmc_virt_define(c->cat, hw, connect, &err)) < 0) {
            r = catcli_fail(&err, r);
        }
        vmc_hw_free(hw);
    }
    return r;
}

/* --instant: @source must be an instant template (else exit 4). */
static int
instant_source(struct catcli *c, const char *source)
{
    struct vmc_error err = { 0 };
    struct vmc_instant in;
    int r = vmc_catalog_instant_get(c->cat, source, &in, &err);

    vmc_instant_release(&in);
    if (r == -ENOENT) {
        return catcli_error(CLI_EXIT_CONFLICT, "'%s' is not an instant "
                            "template (make one with 'vm-clone template "
                            "freeze')", source);
    }
    return r < 0 ? catcli_fail(&err, r) : 0;
}

/* What --start passes to each "start". */
struct start_args {
    bool on;
    const char *text, *timeout;
};

/* --start [--wait-console TEXT [--wait-timeout SECONDS]], into @s */
#define START_OPTS(s) \
    CLI_OPT_FLAG(0, "start", &(s)->on, "then start each new VM in the " \
                 "background ('start --detach')"), \
    CLI_OPT_STRING(0, "wait-console", "TEXT", &(s)->text, "with --start: " \
                   "each start returns once TEXT is on its console"), \
    CLI_OPT_STRING(0, "wait-timeout", "SECONDS", &(s)->timeout, "with " \
                   "--wait-console (default 300)")

/* Whether the --start options hang together (else the usage status). */
static int
start_usage(const struct start_args *s)
{
    if ((s->text && !s->on) || (s->timeout && !s->text)) {
        return cli_usage_error("clone", s->text ? "--wait-console goes with "
                               "--start" : "--wait-timeout goes with "
                               "--wait-console");
    }
    return 0;
}

/* --start: "vm-clone start NAME --detach" of every VM of @res at once
 * (store @home), then wait for all; 0 or the first failed one's status. */
static int
start_all(const struct catcli *c, const char *home,
          const struct vmc_catalog_clone_result *res,
          const struct start_args *s)
{
    char self[PATH_MAX];
    pid_t *pids = calloc(res->count, sizeof(*pids));
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    size_t i;
    int rc = 0;

    if (!pids || len < 0) {
        free(pids);
        return cli_error("cannot start the clones: %s", strerror(errno));
    }
    self[len] = '\0';
    fflush(stdout);
    fflush(stderr);
    for (i = 0; i < res->count; i++) {
        const char *av[16];
        int n = 0;

        av[n++] = self;
        av[n++] = "start";
        av[n++] = "--home";
        av[n++] = home;
        av[n++] = "--detach";
        if (s->text) {
            av[n++] = "--wait-console";
            av[n++] = s->text;
        }
        if (s->timeout) {
            av[n++] = "--wait-timeout";
            av[n++] = s->timeout;
        }
        if (c->quiet || c->json) {
            av[n++] = "-q";
        }
        av[n++] = res->names[i];     /* after "--": QEMU's arguments */
        av[n] = NULL;
        pids[i] = fork();
        if (pids[i] == 0) {
            int null = open("/dev/null", O_RDONLY);

            if (null >= 0) {
                dup2(null, STDIN_FILENO);
            }
            execv(self, (char *const *)av);
            _exit(127);
        }
        if (pids[i] < 0) {
            rc = rc ? rc : cli_error("cannot start VM '%s': %s",
                                     res->names[i], strerror(errno));
        }
    }
    for (i = 0; i < res->count; i++) {
        int st = 0;

        while (pids[i] > 0 && waitpid(pids[i], &st, 0) < 0 && errno == EINTR) {
        }
        st = pids[i] <= 0 ? 0 : WIFEXITED(st) ? WEXITSTATUS(st)
                              : CLI_EXIT_FAIL;
        if (st && !rc) {
            rc = st;
            cli_error("the start of VM '%s' failed (exit status %d); the "
                      "clones stay", res->names[i], st);
        }
    }
    free(pids);
    return rc;
}

/* Close the store of @c (not held while VMs start) and, when the clone
 * went well (@r 0), --start: start_all(). The status. */
static int
close_and_start(struct catcli *c, int r,
                const struct vmc_catalog_clone_result *res,
                const struct start_args *st)
{
    char home[PATH_MAX];

    if (!realpath(vmc_catalog_dir(c->cat), home)) {
        snprintf(home, sizeof(home), "%s", vmc_catalog_dir(c->cat));
    }
    catcli_close(c);
    return !r && st->on ? start_all(c, home, res, st) : r;
}

/* --instant: mark the new VMs instant clones. */
static int
instant_mark(struct catcli *c, const struct vmc_catalog_clone_result *res)
{
    struct vmc_error err = { 0 };
    size_t i;
    int r;

    for (i = 0; i < res->count; i++) {
        r = vmc_catalog_instant_mark(c->cat, res->names[i], &err);
        if (r < 0) {
            return catcli_fail(&err, r);
        }
    }
    return 0;
}

static int
run_clone(int argc, char **argv, bool short_form)
{
    struct catcli c = { .verb = "clone", .usage = clone_usage };
    struct clone_args a = { .o = { 0 } };
    struct vmc_catalog_clone_opts o;
    struct vmc_catalog_clone_result res;
    struct vmc_label *labels = a.labels;
    struct vmc_error err = { 0 };
    const char *name = NULL, *tmpl = NULL, *snap;
    char *source = NULL;
    const char *connect = NULL;
    bool linked = false, full = false, thin = false, define = false;
    bool instant = false;
    struct start_args st = { 0 };
    const struct cli_opt opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_STRING(0, "name", "NAME", &name, "name of the new VM "
                       "(with --count, one %d)"),
        CLI_OPT_FLAG(0, "linked", &linked, "qcow2 overlays on the source"),
        CLI_OPT_FLAG(0, "full", &full, "standalone disks"),
        CLI_OPT_STRING(0, "snapshot", "SNAP", &a.o.snapshot, "clone this "
                       "snapshot of the source VM"),
        CLI_OPT_STRING(0, "pool", "POOL", &a.o.pool, "the primary pool of "
                       "the new disks"),
        CLI_OPT_FLAG(0, "thick", &a.o.thick, "preallocate full clones"),
        CLI_OPT_FLAG(0, "thin", &thin, "do not preallocate (default)"),
        CLI_OPT_CALL(0, "count", "N", &a, opt_count, "make N VMs "
                     "(1 to 10000)"),
        CLI_OPT_CALL(0, "label", "KEY=VALUE", &a, opt_label, "label the "
                     "VMs (repeatable)"),
        CLI_OPT_CALL(0, "ttl", "DURATION", &a, opt_ttl, "the VMs expire "
                     "after this (s, m, h, d, w)"),
        CLI_OPT_STRING(0, "request-id", "ID", &a.o.request_id, "a retried "
                       "call returns the VMs of the first one"),
        CLI_OPT_STRING(0, "template", "T", &tmpl, "the template of the "
                       "short form"),
        CLI_OPT_FLAG(0, "define", &define, "define a libvirt domain for "
                     "each VM (all or nothing with the clone)"),
        CLI_OPT_STRING(0, "connect", "URI", &connect, "with --define: the "
                       "libvirt connection (default: libvirt's)"),
        CLI_OPT_FLAG(0, "instant", &instant, "clones of an instant "
                     "template: start resumes them instead of booting"),
        START_OPTS(&st),
        CUST_OPTS(&a.cust),
        CLI_OPT_END,
    };
    int r;

    r = catcli_parse(&c, opts, argc, argv);
    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    o = a.o;
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
    if (connect && !define) {
        return cli_usage_error(c.verb, "--connect goes with --define");
    }
    if ((r = start_usage(&st)) != 0) {
        return r;
    }
    o.define_uri = define ? (connect ? connect : "") : NULL;
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
        r = catcli_snapref(c.verb, argv[optind], o.snapshot, &snap);
        if (r) {
            return r;
        }
        o.snapshot = snap ? snap : o.snapshot;
    }
    o.kind = linked ? VMC_CLONE_KIND_LINKED
                    : full ? VMC_CLONE_KIND_FULL : VMC_CLONE_KIND_DEFAULT;
    if (instant && (full || o.snapshot)) {
        return cli_usage_error(c.verb, "--instant makes linked clones of an "
                               "instant template");
    }
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
    if (instant && (r = instant_source(&c, source)) != 0) {
        free(source);
        catcli_close(&c);
        return r;
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
    r = instant && !res.existing ? instant_mark(&c, &res) : 0;
    if (!r && !res.existing && cust_given(&a.cust)) {
        /* all or nothing: a VM whose seed failed is removed again */
        r = cust_apply(&c, &a.cust, res.names, res.count, true);
        /* the domains were defined with the clone, before the seed */
        r = r || !define ? r : redefine_with_seed(&c, &res, connect);
    }
    if (!r && c.json) {
        report_json(source, o.snapshot, &res);
    } else if (!r && !c.quiet) {
        report_text(&c, source, o.request_id, &res);
    }
    r = close_and_start(&c, r, &res, &st);
    vmc_catalog_clone_result_release(&res);
    free(source);
    return r ? r : CLI_EXIT_OK;
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
