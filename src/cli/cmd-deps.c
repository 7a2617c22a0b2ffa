/*
 * cmd-deps.c - "rm" (a VM, refused while something depends on it) and
 * "deps" (what depends on a template, VM or snapshot).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cat-cli.h"

/* ---------------------------------------------------------- rm, deps */

static int
rm_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    struct json_object *removed, *retired, *freed;
    int r, rc = CLI_EXIT_OK, i;
    size_t k;

    removed = json_object_new_array();
    retired = catcli_report(c, VMC_REPORT_RETIRED_TEMPLATES, NULL, 0);
    for (i = 0; i < argc; i++) {
        const char *params[1] = { argv[i] };
        struct json_object *t = catcli_report(c, VMC_REPORT_TEMPLATE_EXISTS,
                                              params, 1);

        if (t && json_object_array_length(t)) {
            rc = cli_error("'%s' is a template: use 'vm-clone template rm "
                           "%s'", argv[i], argv[i]);
        } else if ((r = vmc_catalog_vm_rm(c->cat, argv[i], &err)) < 0) {
            rc = catcli_fail(&err, r);
        } else {
            json_object_array_add(removed, json_object_new_string(argv[i]));
            if (!c->quiet && !c->json) {
                printf("Removed VM '%s'\n", argv[i]);
            }
        }
        json_object_put(t);
    }
    freed = catcli_gone(c, retired);
    if (!c->json && !c->quiet) {
        for (k = 0; k < json_object_array_length(freed); k++) {
            printf("Removed retired template '%s' (its last dependent "
                   "went)\n", json_object_get_string(
                       json_object_array_get_idx(freed, k)));
        }
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_obj(o, "removed", removed);
        cli_json_add_obj(o, "templates-freed", freed);
        catcli_json_done(o);
    } else {
        json_object_put(removed);
        json_object_put(freed);
    }
    json_object_put(retired);
    return rc;
}

static const char rm_usage[] =
    "usage: " CLI_NAME " rm NAME...\n\n"
    "Delete VMs with their own disks and snapshots. Refused, with the "
    "list of\ndependents, when clones depend on one of its snapshots. "
    "Templates:\n'template rm'.\n";

const struct catcli_cmd catcli_rm = {
    { "rm", rm_run, NULL, 1, -1, NULL, "expecting a VM name", CATCLI_STORE },
    rm_usage,
};

static int
deps_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    char **deps = NULL;
    size_t n = 0, i;
    int r;

    r = vmc_catalog_dependents(c->cat, NULL, argv[0], &deps, &n, &err);
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    if (c->json) {
        struct json_object *arr = json_object_new_array();

        for (i = 0; i < n; i++) {
            struct json_object *o = json_object_new_object();
            char *sp = strchr(deps[i], ' ');

            *sp = '\0';
            cli_json_add_str(o, "kind", deps[i]);
            cli_json_add_str(o, "name", sp + 1);
            json_object_array_add(arr, o);
        }
        cli_json_print(stdout, arr);
        json_object_put(arr);
    } else {
        if (n == 0 && !c->quiet) {
            printf("nothing depends on '%s'\n", argv[0]);
        }
        for (i = 0; i < n; i++) {
            printf("%s\n", deps[i]);
        }
    }
    vmc_catalog_strv_free(deps, n);
    return CLI_EXIT_OK;
}

static const char deps_usage[] =
    "usage: " CLI_NAME " deps NAME [--json]\n\n"
    "Everything that depends on NAME (a template, a VM, or VM@SNAPSHOT),"
    "\ndirectly or through other layers.\n";

const struct catcli_cmd catcli_deps = {
    { "deps", deps_run, NULL, 1, 1, NULL, "expecting one name", CATCLI_STORE },
    deps_usage,
};
