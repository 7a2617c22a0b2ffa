/*
 * gc.c - `vm-clone gc`: expired VMs, unreferenced template copies and
 * retired templates removed (each a journaled delete; an instant
 * template's RAM and state files with it, kept while an instant clone
 * exists), unknown files reported and never deleted.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog-internal.h"
#include "catalog-ops.h"

/* "1.5 MiB" */
static void
human_bytes(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double d = (double)v;
    unsigned u = 0;

    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(buf, len, "%" PRIu64 " B", v);
    } else {
        snprintf(buf, len, "%.3g %s", d, units[u]);
    }
}

struct gc_ctx {
    vmc_catalog_report_fn fn;
    void *opaque;
    struct vmc_gc_result *res;
};

/* Every set gc deletes, also templates freed because their last
 * dependent went: reported with the space it gave back. */
static void
gc_deleted(const char *what, const char *target, const char *op,
           uint64_t bytes, void *opaque)
{
    struct gc_ctx *g = opaque;
    char detail[160], sz[32];

    human_bytes(bytes, sz, sizeof(sz));
    snprintf(detail, sizeof(detail), "%s; %s freed",
             !strcmp(op, "rm") ? "expired VM"
             : !strcmp(op, "gc-copy") ? "unreferenced template copy"
             : !strcmp(op, "template-rm") ? "retired template without "
                                            "dependents" : what, sz);
    g->res->removed++;
    g->res->bytes_freed += bytes;
    cat_report(g->fn, g->opaque, "removed", target, detail);
}

int
vmc_catalog_gc(struct vmc_catalog *cat, bool dry_run,
               vmc_catalog_report_fn fn, void *opaque,
               struct vmc_gc_result *res, struct vmc_error *err)
{
    struct cat_strv names = { 0 };
    struct cat_report rep = { fn, opaque, "unknown", 0 };
    struct vmc_gc_result dummy;
    struct gc_ctx g = { fn, opaque, res ? res : &dummy };
    struct vmc_error e2;
    size_t i;
    int r;

    memset(g.res, 0, sizeof(*g.res));
    if (!dry_run) {
        cat->deleted = gc_deleted;
        cat->deleted_opaque = &g;
    }
    /* expired VMs */
    r = cat_collect(cat, &names, err, "SELECT name FROM vms WHERE state = "
                    "'ready' AND expires IS NOT NULL AND expires < ? "
                    "ORDER BY id DESC", (int64_t)cat_now());
    for (i = 0; r == 0 && i < names.n; i++) {
        int64_t vid = 0;
        char *line = NULL;
        size_t nd = 0;

        r = cat_get_i64(cat, &vid, err, "SELECT id FROM vms WHERE name = ?",
                        "s", names.v[i]);
        if (r == 0) {
            r = cat_dependents_line(cat, cat_owned_vm, vid, &line, &nd, err);
        }
        if (r == 0 && nd) {
            cat_report(fn, opaque, "kept", names.v[i], "expired, but has "
                   "dependents");
        } else if (r == 0 && dry_run) {
            cat_report(fn, opaque, "would-remove", names.v[i], "expired VM");
        } else if (r == 0) {
            memset(&e2, 0, sizeof(e2));
            if (vmc_catalog_vm_rm(cat, names.v[i], &e2) < 0) {
                cat_report(fn, opaque, "kept", names.v[i], e2.msg);
            }
        }
        free(line);
    }
    cat_strv_release(&names);
    /* template copies nothing uses */
    if (r == 0) {
        r = cat_collect(cat, &names, err, "SELECT c.id || ' ' || t.name || "
                        "'@' || p.name || CASE WHEN c.copy_no > 0 THEN '#' "
                        "|| CAST(c.copy_no AS TEXT) ELSE '' END FROM "
                        "template_copies c JOIN templates "
                        "t ON t.id = c.template_id JOIN pools p ON p.id = "
                        "c.pool_id WHERE c.state = 'ready' AND c.id > ? AND "
                        "NOT EXISTS (SELECT 1 FROM volumes x WHERE "
                        "x.parent_id IN (SELECT id FROM volumes WHERE "
                        "copy_id = c.id))", 0);
    }
    for (i = 0; r == 0 && i < names.n; i++) {
        int64_t cid = strtoll(names.v[i], NULL, 10);
        const char *label = strchr(names.v[i], ' ') + 1;
        static const struct cat_owner_rows copy_owners[] = {
            { "template_copies", "id = ?1" },
            { NULL, NULL },
        };

        if (dry_run) {
            cat_report(fn, opaque, "would-remove", label, "unreferenced "
                   "template copy");
            continue;
        }
        memset(&e2, 0, sizeof(e2));
        if (cat_delete_set(cat, "gc-copy", "template copy", label,
                           cat_owned_copy, copy_owners, cid, &e2) < 0) {
            cat_report(fn, opaque, "kept", label, e2.msg);
        }
    }
    cat_strv_release(&names);
    /* retired templates nothing uses */
    if (r == 0 && dry_run) {
        r = cat_collect(cat, &names, err, "SELECT t.name FROM templates t "
                        "WHERE t.retired = ? AND t.state = 'ready' AND NOT "
                        "EXISTS (SELECT 1 FROM volumes c WHERE c.parent_id "
                        "IN (SELECT id FROM volumes WHERE template_id = t.id "
                        "OR copy_id IN (SELECT id FROM template_copies WHERE "
                        "template_id = t.id))) AND NOT EXISTS (SELECT 1 FROM "
                        "vms m WHERE m.template_id = t.id AND m.instant = "
                        "1)", 1);
        for (i = 0; r == 0 && i < names.n; i++) {
            cat_report(fn, opaque, "would-remove", names.v[i], "retired "
                   "template without dependents");
        }
        cat_strv_release(&names);
    } else if (r == 0) {
        r = cat_free_retired(cat, err);
    }
    cat->deleted = NULL;
    cat->deleted_opaque = NULL;
    /* files nobody knows: reported, never deleted */
    if (r == 0) {
        r = cat_scan_pools(cat, false, cat_report_path, &rep, err);
    }
    if (r == 0) {       /* and state files no instant template records */
        r = cat_instant_scan(cat, cat_report_path, &rep, err);
    }
    return r;
}
