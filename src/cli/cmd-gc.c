/*
 * cmd-gc.c - "gc" (expired VMs, unused copies, retired templates) and
 * "fsck" (reconcile the catalog and the files).
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

/* ----------------------------------------------------------- gc, fsck */

struct findings {
    struct catcli *c;
    struct json_object *arr;
    struct json_object *removed;    /* gc: the subjects removed */
};

static void
finding(const char *what, const char *subject, const char *detail,
        void *opaque)
{
    struct findings *f = opaque;

    if (!strcmp(what, "verifying")) {
        /* fsck --verify's progress: on stderr, never in the findings */
        if (!f->c->quiet) {
            fprintf(stderr, "fsck: verifying %s (%s)\n", subject, detail);
        }
        return;
    }
    if (f->c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "action", what);
        cli_json_add_str(o, "subject", subject);
        cli_json_add_str(o, "detail", detail);
        json_object_array_add(f->arr, o);
        if (f->removed && (!strcmp(what, "removed") ||
                           !strcmp(what, "would-remove"))) {
            json_object_array_add(f->removed,
                                  json_object_new_string(subject));
        }
    } else if (!f->c->quiet || !strcmp(what, "problem")) {
        printf("%-12s %s: %s\n", what, subject, detail);
    }
}

static bool gc_dry;
static const struct cli_opt gc_opts[] = {
    CLI_OPT_FLAG('n', "dry-run", &gc_dry, "report what would go, remove "
                 "nothing"),
    CLI_OPT_END,
};

static int
gc_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    struct findings f = { c, NULL, NULL };
    struct vmc_gc_result res = { 0 };
    bool dry = gc_dry;
    int r;

    f.arr = json_object_new_array();
    f.removed = json_object_new_array();
    r = vmc_catalog_gc(c->cat, dry, finding, &f, &res, &err);
    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_bool(o, "dry_run", dry);
        cli_json_add_obj(o, "removed", json_object_get(f.removed));
        cli_json_add_u64(o, "removed_count", res.removed);
        cli_json_add_u64(o, "bytes_freed", res.bytes_freed);
        cli_json_add_obj(o, "findings", json_object_get(f.arr));
        catcli_json_done(o);
    } else if (r == 0 && !c->quiet && !dry) {
        char sz[32];

        /* the findings were printed as they came */
        catcli_size(c, res.bytes_freed, sz, sizeof(sz));
        printf("gc: %u object%s removed, %s freed\n", res.removed,
               res.removed == 1 ? "" : "s", sz);
    }
    json_object_put(f.arr);
    json_object_put(f.removed);
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static const char gc_usage[] =
    "usage: " CLI_NAME " gc [--dry-run] [--json]\n\n"
    "Remove expired VMs, template copies no VM uses and retired "
    "templates\nwithout dependents. Files in pools that the catalog "
    "does not know are\nreported, never deleted.\n";

const struct catcli_cmd catcli_gc = {
    { "gc", gc_run, gc_opts, 0, 0, NULL, NULL, CATCLI_STORE },
    gc_usage,
};

static struct vmc_fsck_opts fsck_o;
static const struct cli_opt fsck_opts[] = {
    CLI_OPT_FLAG(0, "verify", &fsck_o.verify, "verify the seal of every "
                 "template and template copy (reads them all)"),
    CLI_OPT_FLAG(0, "repair", &fsck_o.repair, "--verify, and rewrite "
                 "a damaged template copy from its template"),
    CLI_OPT_FLAG(0, "remove-unknown", &fsck_o.remove_unknown, "move unknown "
                 "files named by our naming scheme to a quarantine "
                 "directory (never deletes)"),
    CLI_OPT_STRING(0, "quarantine", "DIR", &fsck_o.quarantine, "the "
                   "quarantine directory (default: POOL/.quarantine)"),
    CLI_OPT_FLAG(0, "reap", &fsck_o.reap, "also finish or roll back the "
                 "interrupted operations of other hosts sharing the "
                 "catalog"),
    CLI_OPT_END,
};

static int
fsck_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    struct vmc_fsck_result res;
    struct findings f = { c, NULL, NULL };
    int r;

    if (fsck_o.quarantine && !fsck_o.remove_unknown) {
        return cli_usage_error("fsck", "--quarantine goes with "
                               "--remove-unknown");
    }
    fsck_o.verify |= fsck_o.repair;     /* a repair verifies first */
    f.arr = json_object_new_array();
    r = vmc_catalog_fsck_with(c->cat, &fsck_o, finding, &f, &res, &err);
    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_u64(o, "volumes", res.volumes);
        cli_json_add_u64(o, "recovered", res.recovered);
        cli_json_add_u64(o, "fixed", res.fixed);
        cli_json_add_u64(o, "temporary_removed", res.temp_removed);
        cli_json_add_u64(o, "unknown_files", res.unknown);
        cli_json_add_u64(o, "inconsistencies", res.problems);
        if (fsck_o.verify) {
            cli_json_add_u64(o, "verified", res.verified);
        }
        if (fsck_o.remove_unknown) {
            cli_json_add_u64(o, "quarantined", res.quarantined);
        }
        if (fsck_o.reap) {
            cli_json_add_u64(o, "reaped", res.reaped);
        }
        cli_json_add_str(o, "host", vmc_catalog_host_id(c->cat));
        cli_json_add_obj(o, "findings", json_object_get(f.arr));
        cli_json_print(stdout, o);
        json_object_put(o);
    } else if (r == 0 && (!c->quiet || res.problems)) {
        /* -q: nothing when clean */
        printf("fsck: %u volumes checked, %u operations recovered, %u rows "
               "fixed, %u temporary files removed, %u unknown files, %u "
               "inconsistencies\n", res.volumes, res.recovered, res.fixed,
               res.temp_removed, res.unknown, res.problems);
        if (fsck_o.verify || fsck_o.remove_unknown) {
            printf("fsck: %u sealed images verified, %u unknown files "
                   "quarantined\n", res.verified, res.quarantined);
        }
        if (fsck_o.reap) {
            printf("fsck: %u operations of other hosts reaped (this is "
                   "host '%s')\n", res.reaped, vmc_catalog_host_id(c->cat));
        }
    }
    json_object_put(f.arr);
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    return res.problems ? CLI_EXIT_INTEGRITY : CLI_EXIT_OK;
}

static const char fsck_usage[] =
    "usage: " CLI_NAME " fsck [--verify] [--repair] [--remove-unknown "
    "[--quarantine DIR]] [--reap]\n            [--json] [-q]\n\n"
    "Reconcile the catalog and the files after a crash: finish or undo "
    "the\noperations of dead processes, remove their temporary files, "
    "check that\nevery image exists and that its backing file is its "
    "parent in the\ncatalog, and run SQLite's integrity checks. Waits "
    "for running commands.\nExit status 6 (integrity) when "
    "inconsistencies remain; -q prints only those.\n--verify also "
    "verifies the seal of every template and template copy, by\nname "
    "with its progress on stderr, and marks a damaged one (clones of it "
    "are\nrefused); --repair (which verifies) rewrites a damaged template "
    "copy from\nits template; --remove-unknown moves unknown "
    "files that our naming scheme made to\nPOOL/.quarantine (or DIR), "
    "and never touches other files.\nOn a catalog several hosts share "
    "(PostgreSQL), fsck recovers this host's\noperations and checks "
    "the files of the pools this host reaches; --reap also\nfinishes "
    "the operations of other hosts that died (their session lock is "
    "free),\nnaming each one's host. The findings name the host each "
    "local pool belongs to.\n";

const struct catcli_cmd catcli_fsck = {
    { "fsck", fsck_run, fsck_opts, 0, 0, NULL, NULL, CATCLI_EXCLUSIVE },
    fsck_usage,
};
