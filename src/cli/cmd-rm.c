/*
 * cmd-rm.c - "rm": delete VMs named, or chosen by --label / --expired,
 * with --missing-ok (a VM that is not there is not an error, for cleanup
 * steps that run whether the clone was made or not) and --dry-run (say
 * which VMs, files and retired templates would go, and which refusals
 * would stop it, changing nothing).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cat-cli.h"
#include "run-lock.h"
#include "start-detach.h"
#include "vmclone-virt.h"

struct rm_args {
    struct catcli_labels labels;
    bool expired, missing_ok, dry_run, force;
};

static struct rm_args rm_args = { .labels = { .verb = "rm" } };
static const struct cli_opt rm_opts[] = {
    CLI_OPT_CALL(0, "label", "KEY=VALUE", &rm_args.labels, catcli_opt_label,
                 "the VMs with this label (repeatable: all must match)"),
    CLI_OPT_FLAG(0, "expired", &rm_args.expired,
                 "the VMs whose --ttl has passed"),
    CLI_OPT_FLAG(0, "missing-ok", &rm_args.missing_ok,
                 "a VM that does not exist is not an error"),
    CLI_OPT_FLAG(0, "dry-run", &rm_args.dry_run,
                 "print what would be removed, remove nothing"),
    CLI_OPT_FLAG(0, "force", &rm_args.force,
                 "stop a VM's running libvirt domain first"),
    CLI_OPT_END,
};

/* What one rm call did (or would do), for the output. */
struct rm_out {
    struct json_object *removed, *missing, *plan;
    int rc;                     /* the first failure's exit status */
};

static void
rm_failed(struct rm_out *o, int code)
{
    if (!o->rc) {
        o->rc = code;
    }
}

/* The VMs chosen by --label (all must match) and --expired, by name. */
static struct json_object *
rm_selected(struct catcli *c, const struct rm_args *a)
{
    struct json_object *vms = catcli_report_raw(c, VMC_REPORT_VMS,
                                                a->labels.params,
                                                a->labels.np);
    struct json_object *names = json_object_new_array();
    double now = (double)time(NULL);
    size_t i;

    for (i = 0; vms && i < json_object_array_length(vms); i++) {
        struct json_object *vm = json_object_array_get_idx(vms, i);
        int64_t expires = catcli_jint(vm, "expires");

        if (a->expired && !(expires > 0 && (double)expires <= now)) {
            continue;
        }
        json_object_array_add(names, json_object_new_string(
                                  catcli_jstr(vm, "name")));
    }
    if (!vms) {
        json_object_put(names);
        names = NULL;
    }
    json_object_put(vms);
    return names;
}

/* The files of VM @name (its disks and its snapshots' layers). */
static struct json_object *
vm_files(struct catcli *c, const char *name)
{
    return catcli_report_strings(c, VMC_REPORT_VM_FILES, name);
}

/* --dry-run for VM @name: what rm would do, or the refusal it would
 * meet (printed, its exit status returned). */
static int
rm_plan_one(struct catcli *c, const char *name, struct rm_out *o)
{
    struct vmc_error err = { 0 };
    char **deps = NULL;
    size_t n = 0, i;
    int r = vmc_catalog_dependents(c->cat, "vm", name, &deps, &n, &err);
    struct json_object *vm, *files;

    if (r < 0) {
        return catcli_fail(&err, r);
    }
    if (n) {
        char line[1024] = "";
        size_t len = 0;

        for (i = 0; i < n && len < sizeof(line); i++) {
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s",
                                    i ? ", " : "", deps[i]);
        }
        vmc_catalog_strv_free(deps, n);
        return catcli_error(CLI_EXIT_CONFLICT, "rm would refuse: VM '%s' "
                            "has %zu dependent%s: %s", name, n,
                            n == 1 ? "" : "s", line);
    }
    files = vm_files(c, name);
    vm = json_object_new_object();
    cli_json_add_str(vm, "name", name);
    cli_json_add_obj(vm, "files", json_object_get(files));
    json_object_array_add(o->plan, vm);
    if (!c->json && !c->quiet) {
        printf("Would remove VM '%s' (%zu file%s)\n", name,
               json_object_array_length(files),
               json_object_array_length(files) == 1 ? "" : "s");
        for (i = 0; i < json_object_array_length(files); i++) {
            printf("  %s\n", json_object_get_string(
                       json_object_array_get_idx(files, i)));
        }
    }
    json_object_put(files);
    return 0;
}

static bool
is_template(struct catcli *c, const char *name)
{
    const char *params[1] = { name };
    struct json_object *t = catcli_report(c, VMC_REPORT_TEMPLATE_EXISTS,
                                          params, 1);
    bool yes = t && json_object_array_length(t) > 0;

    json_object_put(t);
    return yes;
}

/* Remove (or plan to remove) VM @name. */
static void
rm_one(struct catcli *c, const struct rm_args *a, const char *name,
       struct rm_out *o)
{
    struct vmc_error err = { 0 };
    int r;

    if (is_template(c, name)) {
        rm_failed(o, cli_error("'%s' is a template: use 'vm-clone template "
                               "rm %s'", name, name));
        return;
    }
    if (a->dry_run && !catcli_vm_exists(c, name)) {
        r = vmc_error_set(&err, -ENOENT, "no VM named '%s'", name);
    } else if (a->dry_run) {
        rm_failed(o, rm_plan_one(c, name, o));
        return;
    } else {
        r = a->force ? vmc_virt_undefine(c->cat, name, true, &err) : 0;
        /* a VM without a domain (or without the VM) is for rm to judge */
        r = r == -ENOENT ? 0 : r;
        r = r ? r : vmc_catalog_vm_rm(c->cat, name, &err);
    }
    if (r == -ENOENT && a->missing_ok && !catcli_vm_exists(c, name)) {
        json_object_array_add(o->missing, json_object_new_string(name));
        if (!c->quiet && !c->json) {
            printf("No VM '%s': nothing to remove\n", name);
        }
    } else if (r < 0) {
        rm_failed(o, catcli_fail(&err, r));
    } else {
        json_object_array_add(o->removed, json_object_new_string(name));
        sdet_forget(vmc_catalog_dir(c->cat), name);
        runlock_forget(vmc_catalog_dir(c->cat), name);
        if (!c->quiet && !c->json) {
            printf("Removed VM '%s'\n", name);
        }
    }
}

/* Would removing the VMs in @plan free retired template @tmpl (all that
 * depends on it goes with them)? */
static bool
frees_template(struct catcli *c, const char *tmpl, struct json_object *plan)
{
    char **deps = NULL;
    size_t n = 0, i, k;
    bool all = true;

    if (vmc_catalog_dependents(c->cat, "template", tmpl, &deps, &n,
                               NULL) < 0) {
        return false;
    }
    for (i = 0; all && i < n; i++) {
        const char *who = strchr(deps[i], ' ') + 1;
        size_t len = strcspn(who, "@");
        bool found = false;

        for (k = 0; !found && k < json_object_array_length(plan); k++) {
            const char *vm = catcli_jstr(json_object_array_get_idx(plan, k),
                                         "name");

            found = strlen(vm) == len && !strncmp(vm, who, len);
        }
        all = found;
    }
    vmc_catalog_strv_free(deps, n);
    return n > 0 && all;
}

/* The retired templates freed (or, with --dry-run, that would be). */
static struct json_object *
rm_freed(struct catcli *c, const struct rm_args *a, struct json_object *before,
         struct json_object *plan)
{
    struct json_object *freed;
    size_t i;

    if (!a->dry_run) {
        freed = catcli_gone(c, before);
    } else {
        freed = json_object_new_array();
        for (i = 0; before && i < json_object_array_length(before); i++) {
            const char *t = catcli_jstr(json_object_array_get_idx(before, i),
                                        "name");

            if (frees_template(c, t, plan)) {
                json_object_array_add(freed, json_object_new_string(t));
            }
        }
    }
    for (i = 0; !c->json && !c->quiet && i < json_object_array_length(freed);
         i++) {
        printf("%s retired template '%s' (its last dependent %s)\n",
               a->dry_run ? "Would remove" : "Removed",
               json_object_get_string(json_object_array_get_idx(freed, i)),
               a->dry_run ? "would go" : "went");
    }
    return freed;
}

static void
rm_print_json(const struct rm_args *a, struct rm_out *o,
              struct json_object *freed)
{
    struct json_object *j = json_object_new_object();

    cli_json_add_obj(j, "removed", o->removed);
    cli_json_add_obj(j, "templates_freed", freed);
    cli_json_add_obj(j, "missing", o->missing);
    cli_json_add_bool(j, "dry_run", a->dry_run);
    if (a->dry_run) {
        cli_json_add_obj(j, "would_remove", o->plan);
    } else {
        json_object_put(o->plan);
    }
    catcli_json_done(j);
}

static int
rm_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    const struct rm_args *a = &rm_args;
    struct rm_out o = { 0 };
    struct json_object *names = NULL, *retired, *freed;
    size_t i;

    (void)ctx;
    if (argc && (a->labels.np || a->expired)) {
        return cli_usage_error("rm", "give VM names or --label/--expired, "
                               "not both");
    }
    if (!argc && !a->labels.np && !a->expired) {
        return cli_usage_error("rm", "expecting a VM name, --label "
                               "KEY=VALUE or --expired");
    }
    if (!argc && !(names = rm_selected(c, a))) {
        return CLI_EXIT_FAIL;
    }
    o.removed = json_object_new_array();
    o.missing = json_object_new_array();
    o.plan = json_object_new_array();
    retired = catcli_report(c, VMC_REPORT_RETIRED_TEMPLATES, NULL, 0);
    for (i = 0; i < (names ? json_object_array_length(names)
                           : (size_t)argc); i++) {
        rm_one(c, a, names ? json_object_get_string(
                                 json_object_array_get_idx(names, i))
                           : argv[i], &o);
    }
    if (names && !json_object_array_length(names) && !c->quiet && !c->json) {
        printf("No VM matches: nothing to remove\n");
    }
    freed = rm_freed(c, a, retired, o.plan);
    /* with --json, a failure is the error document (main.c) */
    if (c->json && !o.rc) {
        rm_print_json(a, &o, freed);
    } else {
        json_object_put(o.removed);
        json_object_put(o.missing);
        json_object_put(o.plan);
        json_object_put(freed);
    }
    json_object_put(retired);
    json_object_put(names);
    return o.rc;
}

static const char rm_usage[] =
    "usage: " CLI_NAME " rm NAME... [--missing-ok] [--dry-run] [--force]\n"
    "       " CLI_NAME " rm --label KEY=VALUE... | --expired [--dry-run]\n\n"
    "Delete VMs with their own disks and snapshots: the VMs named, or all "
    "those with\nthe labels given, or all expired ones. Refused, with the "
    "list of dependents,\nwhen clones depend on one of its snapshots. "
    "Templates: 'template rm'.\n"
    "--missing-ok: a VM that does not exist is not an error (cleanup "
    "steps).\n"
    "--dry-run: print the VMs and files that would be removed, and the "
    "refusals\n  rm would meet (with their exit status); change "
    "nothing.\n"
    "A VM's libvirt domain is undefined with it; a running one refuses "
    "(exit 5)\n  unless --force, which stops it first.\n";

const struct catcli_cmd catcli_rm = {
    { "rm", rm_run, rm_opts, 0, -1, NULL, "expecting a VM name",
      CATCLI_STORE },
    rm_usage,
};
