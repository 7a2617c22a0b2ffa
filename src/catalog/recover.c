/*
 * recover.c - finishing journaled operations (the same code finishes a
 * delete in the normal path and after a crash), deleting sets of volumes
 * with their owners, dependents, gc and fsck.
 *
 * cat_finish_journal() is the recovery transition table of schema.c:
 *   ready + journal J      -> parent_id re-read from the file's header
 *   creating + journal J   -> files unlinked, rows deleted (roll back)
 *   deleting + journal J   -> files unlinked, rows deleted (roll forward),
 *                             or back to ready if a child still uses one
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

/* ------------------------------------------------------- string lists */

int
cat_strv_push(struct cat_strv *v, const char *s)
{
    char **n;

    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        n = realloc(v->v, v->cap * sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        v->v = n;
    }
    v->v[v->n] = strdup(s ? s : "");
    if (!v->v[v->n]) {
        return -ENOMEM;
    }
    v->n++;
    return 0;
}

void
cat_strv_release(struct cat_strv *v)
{
    vmc_catalog_strv_free(v->v, v->n);
    memset(v, 0, sizeof(*v));
}

/* Collect the first column of a query (bound with @fmt/@arg) as text. */
int
cat_collect(struct vmc_catalog *cat, struct cat_strv *out,
            struct vmc_error *err, const char *sql, int64_t arg)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, sql, "I", arg);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        r = cat_strv_push(out, cat_col(st, 0));
        if (r < 0) {
            r = vmc_error_set(err, r, "out of memory");
        }
    }
    cat_finalize(st);
    return r;
}

/* Remove our temporary files for @path ('.FILE.vmc-*', '.FILE.tmp-*'). */
static void
unlink_temps_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : NULL;
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    struct dirent *de;
    DIR *d;

    if (!dir) {
        return;
    }
    d = opendir(dir);
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' && !strncmp(de->d_name + 1, base, bl) &&
            (!strncmp(de->d_name + 1 + bl, ".vmc-", 5) ||
             !strncmp(de->d_name + 1 + bl, ".tmp-", 5))) {
            unlinkat(dirfd(d), de->d_name, 0);
        }
    }
    if (d) {
        closedir(d);
    }
    free(dir);
}

/* ------------------------------------------------------------ finish */

static int
unlink_state(struct vmc_catalog *cat, int64_t jid, const char *state,
             bool temps, struct vmc_error *err)
{
    struct cat_strv paths = { 0 };
    size_t i;
    int r;

    r = cat_collect(cat, &paths, err, state[0] == 'c'
                    ? "SELECT p.path || '/' || v.file FROM volumes v JOIN "
                      "pools p ON p.id = v.pool_id WHERE v.journal_id = ? "
                      "AND v.state = 'creating' ORDER BY v.id DESC"
                    : "SELECT p.path || '/' || v.file FROM volumes v JOIN "
                      "pools p ON p.id = v.pool_id WHERE v.journal_id = ? "
                      "AND v.state = 'deleting' ORDER BY v.id DESC", jid);
    for (i = 0; r == 0 && i < paths.n; i++) {
        chmod(paths.v[i], 0644);
        r = cat_unlink_volume_file(paths.v[i], err);
        if (temps) {
            unlink_temps_of(paths.v[i]);
        }
    }
    for (i = 0; r == 0 && i < paths.n; i++) {
        cat_fsync_dir_of(paths.v[i]);
    }
    cat_strv_release(&paths);
    return r;
}

static const char *const delete_rows_sql[] = {
    "DELETE FROM volumes WHERE journal_id = ?1 AND state = ?2",
    "DELETE FROM snapshots WHERE journal_id = ?1 AND state = ?2",
    "DELETE FROM vms WHERE journal_id = ?1 AND state = ?2",
    "DELETE FROM template_copies WHERE journal_id = ?1 AND state = ?2",
    "DELETE FROM templates WHERE journal_id = ?1 AND state = ?2",
    NULL,
};

static const char *const ready_rows_sql[] = {
    "UPDATE volumes SET state = 'ready' WHERE journal_id = ?1 AND state = ?2",
    "UPDATE snapshots SET state = 'ready' WHERE journal_id = ?1 AND state = ?2",
    "UPDATE vms SET state = 'ready' WHERE journal_id = ?1 AND state = ?2",
    "UPDATE template_copies SET state = 'ready' WHERE journal_id = ?1 AND "
    "state = ?2",
    "UPDATE templates SET state = 'ready' WHERE journal_id = ?1 AND "
    "state = ?2",
    NULL,
};

static int
rows_do(struct vmc_catalog *cat, const char *const *sqls, int64_t jid,
        const char *state, struct vmc_error *err)
{
    int r = 0;
    unsigned i;

    for (i = 0; r == 0 && sqls[i]; i++) {
        r = cat_exec(cat, err, sqls[i], "Is", jid, state);
    }
    return r;
}

int
cat_finish_journal(struct vmc_catalog *cat, int64_t jid,
                   struct vmc_error *err)
{
    int64_t ncreating = 0, ndeleting = 0, nchildren = 0;
    char *op = NULL, *target = NULL;
    int r;

    r = cat_get_str(cat, &op, err, "SELECT op FROM journal WHERE id = ?",
                    "I", jid);
    if (r == 0) {
        r = cat_get_str(cat, &target, err, "SELECT coalesce(target, '') "
                        "FROM journal WHERE id = ?", "I", jid);
    }
    if (r < 0) {
        goto out;
    }
    /* 1. in-place rewrites: believe the files */
    r = cat_begin(cat, err);
    if (r == 0) {
        r = cat_reconcile_journal(cat, jid, NULL, err);
        if (r < 0) {
            /* a missing file is for fsck to report; keep going */
            r = 0;
        }
        r = cat_commit(cat, err);
    }
    if (r < 0) {
        goto out;
    }
    /* 2. roll back what was being created */
    r = cat_get_i64(cat, &ncreating, err, "SELECT count(*) FROM volumes "
                    "WHERE journal_id = ? AND state = 'creating'", "I", jid);
    if (r == 0) {
        r = unlink_state(cat, jid, "creating", true, err);
    }
    if (r == 0 && !strcmp(op, "snapshot")) {
        /* the frozen parents become the VM's writable disks again */
        struct cat_strv paths = { 0 };
        size_t i;

        r = cat_collect(cat, &paths, err, "SELECT o.path FROM volume_owners "
                        "o JOIN volumes v ON v.id = o.id JOIN vms m ON "
                        "m.id = v.vm_id JOIN journal j ON j.target = m.name "
                        "WHERE j.id = ? AND v.top = 1 AND v.state = 'ready'",
                        jid);
        for (i = 0; r == 0 && i < paths.n; i++) {
            chmod(paths.v[i], 0644);
        }
        cat_strv_release(&paths);
    }
    if (r < 0) {
        goto out;
    }
    r = cat_begin(cat, err);
    if (r == 0) {
        r = rows_do(cat, delete_rows_sql, jid, "creating", err);
    }
    /* 3. roll forward what was being deleted, unless still in use */
    if (r == 0) {
        r = cat_get_i64(cat, &nchildren, err, "SELECT count(*) FROM volumes "
                        "c WHERE c.parent_id IN (SELECT id FROM volumes "
                        "WHERE journal_id = ?1 AND state = 'deleting') AND "
                        "NOT (c.journal_id IS ?1 AND c.state = 'deleting')",
                        "I", jid);
    }
    if (r == 0 && nchildren > 0) {
        r = rows_do(cat, ready_rows_sql, jid, "deleting", err);
    }
    if (r == 0) {
        r = cat_get_i64(cat, &ndeleting, err, "SELECT count(*) FROM volumes "
                        "WHERE journal_id = ? AND state = 'deleting'", "I",
                        jid);
    }
    if (r == 0) {
        r = cat_commit(cat, err);
    } else {
        cat_rollback(cat);
    }
    if (r == 0) {
        r = unlink_state(cat, jid, "deleting", false, err);
    }
    if (r < 0) {
        goto out;
    }
    r = cat_begin(cat, err);
    if (r == 0) {
        r = rows_do(cat, delete_rows_sql, jid, "deleting", err);
    }
    if (r == 0) {
        r = cat_journal_finish(cat, jid, ncreating || nchildren
                               ? "rolled-back" : "done", err);
    }
    if (r == 0) {
        r = cat_commit(cat, err);
    } else {
        cat_rollback(cat);
    }
    if (r == 0 && ndeleting) {
        r = cat_free_retired(cat, err);
    }
out:
    free(op);
    free(target);
    return r;
}

/* ------------------------------------------------------------ deletion */

int
cat_dependents_line(struct vmc_catalog *cat, const char *owned_sql,
                    int64_t arg, char **line, size_t *n,
                    struct vmc_error *err)
{
    return cat_dependents_line2(cat, owned_sql, owned_sql, arg, line, n,
                                err);
}

int
cat_dependents_line2(struct vmc_catalog *cat, const char *owned_sql,
                     const char *exclude_sql, int64_t arg, char **line,
                     size_t *n, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    char *sql = NULL, buf[768];
    size_t len = 0, shown = 0;
    int r;

    *line = NULL;
    *n = 0;
    buf[0] = '\0';
    if (asprintf(&sql, "SELECT DISTINCT kind, name FROM volume_owners WHERE "
                 "parent_id IN (%s) AND id NOT IN (%s) ORDER BY kind, name",
                 owned_sql, exclude_sql) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_prepare(cat, &st, err, sql, "I", arg);
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        const char *kind = cat_col(st, 0), *name = cat_col(st, 1);

        r = 0;
        (*n)++;
        if (len < sizeof(buf) - 200) {
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s '%s'",
                                    len ? ", " : "",
                                    !strcmp(kind, "copy") ? "template copy"
                                                          : kind,
                                    name ? name : "?");
            shown++;
        }
    }
    cat_finalize(st);
    free(sql);
    if (r == 0 && *n > shown) {
        snprintf(buf + len, sizeof(buf) - len, " and %zu more", *n - shown);
    }
    if (r == 0 && !(*line = strdup(buf))) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    return r;
}

/* Allocated bytes of the files (and seal sidecars) that journal @jid
 * is deleting. */
static uint64_t
set_bytes(struct vmc_catalog *cat, int64_t jid)
{
    struct cat_strv paths = { 0 };
    uint64_t t = 0;
    size_t i;

    cat_collect(cat, &paths, NULL, "SELECT p.path || '/' || v.file FROM "
                "volumes v JOIN pools p ON p.id = v.pool_id WHERE "
                "v.journal_id = ? AND v.state = 'deleting'", jid);
    for (i = 0; i < paths.n; i++) {
        struct stat st;
        char *seal = NULL;

        if (stat(paths.v[i], &st) == 0) {
            t += (uint64_t)st.st_blocks * 512;
        }
        if (asprintf(&seal, "%s.seal", paths.v[i]) >= 0 &&
            stat(seal, &st) == 0) {
            t += (uint64_t)st.st_blocks * 512;
        }
        free(seal);
    }
    cat_strv_release(&paths);
    return t;
}

/*
 * Delete the volumes selected by @owned_sql (bound to @id) and the owner
 * rows selected by @owners (UPDATE statements setting state and
 * journal_id, each bound to ?1 = @id, ?2 = the journal id), refusing
 * with -EBUSY when anything outside the set depends on it.
 */
int
cat_delete_set(struct vmc_catalog *cat, const char *op, const char *what,
               const char *target, const char *owned_sql,
               const char *const *owners, int64_t id, struct vmc_error *err)
{
    char *line = NULL, *sql = NULL, *state = NULL;
    size_t ndeps = 0;
    int64_t jid = 0;
    uint64_t bytes = 0;
    int lock_fd = -1, r;
    unsigned i;

    r = cat_begin(cat, err);
    if (r < 0) {
        return r;
    }
    r = cat_dependents_line(cat, owned_sql, id, &line, &ndeps, err);
    if (r == 0 && ndeps) {
        r = vmc_error_set(err, -EBUSY, "%s '%s' has %zu dependent%s: %s",
                          what, target, ndeps, ndeps == 1 ? "" : "s", line);
    }
    if (r == 0) {
        r = cat_journal_start(cat, op, target, &jid, &lock_fd, err);
    }
    if (r == 0 && asprintf(&sql, "UPDATE volumes SET state = 'deleting', "
                           "journal_id = ?2 WHERE id IN (%s)",
                           owned_sql) < 0) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0) {
        r = cat_exec(cat, err, sql, "II", id, jid);
    }
    for (i = 0; r == 0 && owners[i]; i++) {
        r = cat_exec(cat, err, owners[i], "II", id, jid);
    }
    free(sql);
    free(line);
    if (r == 0) {
        r = cat_commit(cat, err);
    } else {
        cat_rollback(cat);
        if (lock_fd >= 0) {
            cat_journal_unlock(cat, jid, lock_fd);
        }
        return r;
    }
    cat_crashpoint("delete.after-mark");
    if (cat->deleted) {
        bytes = set_bytes(cat, jid);
    }
    r = cat_finish_journal(cat, jid, err);
    cat_journal_unlock(cat, jid, lock_fd);
    if (r == 0 && cat->deleted &&
        cat_get_str(cat, &state, NULL, "SELECT state FROM journal WHERE "
                    "id = ?", "I", jid) == 0 && !strcmp(state, "done")) {
        cat->deleted(what, target, op, bytes, cat->deleted_opaque);
    }
    free(state);
    return r;
}

const char cat_owned_template[] =
    "SELECT id FROM volumes WHERE template_id = ?1 OR copy_id IN "
    "(SELECT id FROM template_copies WHERE template_id = ?1)";
const char cat_owned_copy[] =
    "SELECT id FROM volumes WHERE copy_id = ?1";
const char cat_owned_vm[] =
    "SELECT id FROM volumes WHERE vm_id = ?1 OR snapshot_id IN "
    "(SELECT id FROM snapshots WHERE vm_id = ?1)";
const char cat_owned_snapshot[] =
    "SELECT id FROM volumes WHERE snapshot_id = ?1";

static const char *const template_owners[] = {
    "UPDATE templates SET state = 'deleting', journal_id = ?2 WHERE id = ?1",
    "UPDATE template_copies SET state = 'deleting', journal_id = ?2 "
    "WHERE template_id = ?1",
    NULL,
};

int
cat_template_delete(struct vmc_catalog *cat, int64_t tid, const char *name,
                    struct vmc_error *err)
{
    return cat_delete_set(cat, "template-rm", "template", name,
                          cat_owned_template, template_owners, tid, err);
}

int
cat_free_retired(struct vmc_catalog *cat, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    struct cat_strv names = { 0 };
    int64_t *ids = NULL;
    size_t i, n = 0;
    int r;

    r = cat_prepare(cat, &st, err, "SELECT t.id, t.name FROM templates t "
                    "WHERE t.retired = 1 AND t.state = 'ready' AND NOT "
                    "EXISTS (SELECT 1 FROM volumes c WHERE c.parent_id IN "
                    "(SELECT id FROM volumes WHERE template_id = t.id OR "
                    "copy_id IN (SELECT id FROM template_copies WHERE "
                    "template_id = t.id)) AND c.template_id IS NULL AND "
                    "c.copy_id IS NULL)", NULL);
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        int64_t *nids = realloc(ids, (n + 1) * sizeof(*ids));

        r = nids ? cat_strv_push(&names, cat_col(st, 1)) : -ENOMEM;
        if (!nids || r < 0) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        ids = nids;
        ids[n++] = cat_col_i64(st, 0);
    }
    cat_finalize(st);
    for (i = 0; r == 0 && i < n; i++) {
        r = cat_template_delete(cat, ids[i], names.v[i], err);
        if (r == -EBUSY) {
            r = 0;      /* a clone appeared meanwhile */
        }
    }
    free(ids);
    cat_strv_release(&names);
    return r;
}

/* --------------------------------------------------------- dependents */

int
cat_resolve_entity(struct vmc_catalog *cat, const char *kind,
                   const char *name, const char **owned_sql, int64_t *id,
                   const char **kind_out, struct vmc_error *err)
{
    const char *at = strchr(name, '@');
    int r = -ENOENT;

    if (at && (!kind || !strcmp(kind, "snapshot"))) {
        char *vm = strndup(name, (size_t)(at - name));

        if (!vm) {
            return vmc_error_set(err, -ENOMEM, "out of memory");
        }
        r = cat_get_i64(cat, id, err, "SELECT s.id FROM snapshots s JOIN "
                        "vms m ON m.id = s.vm_id WHERE m.name = ? AND "
                        "s.name = ?", "ss", vm, at + 1);
        free(vm);
        *owned_sql = cat_owned_snapshot;
        *kind_out = "snapshot";
    }
    if (r == -ENOENT && !at && (!kind || !strcmp(kind, "template"))) {
        r = cat_get_i64(cat, id, err, "SELECT id FROM templates WHERE "
                        "name = ?", "s", name);
        *owned_sql = cat_owned_template;
        *kind_out = "template";
    }
    if (r == -ENOENT && !at && (!kind || !strcmp(kind, "vm"))) {
        r = cat_get_i64(cat, id, err, "SELECT id FROM vms WHERE name = ?",
                        "s", name);
        *owned_sql = cat_owned_vm;
        *kind_out = "vm";
    }
    if (r == -ENOENT) {
        return vmc_error_set(err, r, "no %s named '%s'",
                             kind ? kind : "template, VM or VM@SNAPSHOT",
                             name);
    }
    return r;
}

int
vmc_catalog_dependents(struct vmc_catalog *cat, const char *kind,
                       const char *name, char ***out, size_t *n,
                       struct vmc_error *err)
{
    struct cat_strv v = { 0 };
    const char *owned = NULL, *k = NULL;
    cat_stmt *st = NULL;
    char *sql = NULL;
    int64_t id = 0;
    int r;

    r = cat_resolve_entity(cat, kind, name, &owned, &id, &k, err);
    if (r < 0) {
        return r;
    }
    if (asprintf(&sql, "WITH RECURSIVE own(id) AS (%s), d(id) AS ("
                 "SELECT v.id FROM volumes v WHERE v.parent_id IN own AND "
                 "v.id NOT IN own UNION SELECT v.id FROM volumes v JOIN d "
                 "ON v.parent_id = d.id) SELECT DISTINCT kind, name FROM "
                 "volume_owners WHERE id IN d ORDER BY kind, name",
                 owned) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_prepare(cat, &st, err, sql, "I", id);
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        char *line = NULL;

        if (asprintf(&line, "%s %s", cat_col(st, 0), cat_col(st, 1)) < 0 ||
            cat_strv_push(&v, line) < 0) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
        } else {
            r = 0;
        }
        free(line);
    }
    cat_finalize(st);
    free(sql);
    if (r < 0) {
        cat_strv_release(&v);
        return r;
    }
    *out = v.v;
    *n = v.n;
    return 0;
}

/* ------------------------------------------------------------- scans */

static bool
is_temp_name(const char *n)
{
    size_t l = strlen(n);

    return (n[0] == '.' && (strstr(n, ".vmc-") || strstr(n, ".tmp-"))) ||
           (l > 9 && !strcmp(n + l - 9, ".seal.tmp"));
}

/* Files in pools that no volume row names; @temps selects our temporary
 * files instead. Calls @fn(path). */
static int
scan_pools(struct vmc_catalog *cat, bool temps,
           int (*fn)(const char *path, void *opaque), void *opaque,
           struct vmc_error *err)
{
    struct cat_strv pools = { 0 };
    size_t i;
    int r;

    r = cat_collect(cat, &pools, err, "SELECT path FROM pools WHERE "
                    "id > ? ORDER BY id", 0);
    for (i = 0; r == 0 && i < pools.n; i++) {
        DIR *d = opendir(pools.v[i]);
        struct dirent *de;

        while (r == 0 && d && (de = readdir(d))) {
            char *path = NULL, *base = NULL;
            int64_t n = 0;
            size_t l = strlen(de->d_name);
            struct stat stt;

            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
                continue;
            }
            if (is_temp_name(de->d_name) != temps) {
                continue;
            }
            if (asprintf(&path, "%s/%s", pools.v[i], de->d_name) < 0) {
                r = -ENOMEM;
                break;
            }
            if (lstat(path, &stt) == 0 && S_ISDIR(stt.st_mode) && !temps) {
                /* a directory: another pool, or the user's */
                int64_t np = 0;

                cat_get_i64(cat, &np, NULL, "SELECT count(*) FROM pools "
                            "WHERE path = ?", "s", path);
                if (np) {
                    free(path);
                    continue;
                }
            }
            if (!temps) {
                base = strdup(de->d_name);
                if (base && l > 5 && !strcmp(base + l - 5, ".seal")) {
                    base[l - 5] = '\0';
                }
                r = base ? cat_get_i64(cat, &n, err, "SELECT count(*) FROM "
                                       "volumes v JOIN pools p ON p.id = "
                                       "v.pool_id WHERE p.path = ? AND "
                                       "v.file = ?", "ss", pools.v[i], base)
                         : -ENOMEM;
                free(base);
            }
            if (r == 0 && n == 0) {
                r = fn(path, opaque);
            }
            free(path);
        }
        if (d) {
            closedir(d);
        }
    }
    cat_strv_release(&pools);
    return r;
}

/* ---------------------------------------------------------------- gc */

struct report {
    vmc_catalog_report_fn fn;
    void *opaque;
    const char *what;
    unsigned count;
};

static int
report_path(const char *path, void *opaque)
{
    struct report *rep = opaque;

    rep->count++;
    if (rep->fn) {
        rep->fn(rep->what, path, rep->what[0] == 'u'
                ? "not in the catalog (left in place)" : "temporary file",
                rep->opaque);
    }
    return 0;
}

static void
report(vmc_catalog_report_fn fn, void *opaque, const char *what,
       const char *subject, const char *detail)
{
    if (fn) {
        fn(what, subject, detail, opaque);
    }
}

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
    report(g->fn, g->opaque, "removed", target, detail);
}

int
vmc_catalog_gc(struct vmc_catalog *cat, bool dry_run,
               vmc_catalog_report_fn fn, void *opaque,
               struct vmc_gc_result *res, struct vmc_error *err)
{
    struct cat_strv names = { 0 };
    struct report rep = { fn, opaque, "unknown", 0 };
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
            report(fn, opaque, "kept", names.v[i], "expired, but has "
                   "dependents");
        } else if (r == 0 && dry_run) {
            report(fn, opaque, "would-remove", names.v[i], "expired VM");
        } else if (r == 0) {
            memset(&e2, 0, sizeof(e2));
            if (vmc_catalog_vm_rm(cat, names.v[i], &e2) < 0) {
                report(fn, opaque, "kept", names.v[i], e2.msg);
            }
        }
        free(line);
    }
    cat_strv_release(&names);
    /* template copies nothing uses */
    if (r == 0) {
        r = cat_collect(cat, &names, err, "SELECT c.id || ' ' || t.name || "
                        "'@' || p.name FROM template_copies c JOIN templates "
                        "t ON t.id = c.template_id JOIN pools p ON p.id = "
                        "c.pool_id WHERE c.state = 'ready' AND c.id > ? AND "
                        "NOT EXISTS (SELECT 1 FROM volumes x WHERE "
                        "x.parent_id IN (SELECT id FROM volumes WHERE "
                        "copy_id = c.id))", 0);
    }
    for (i = 0; r == 0 && i < names.n; i++) {
        int64_t cid = strtoll(names.v[i], NULL, 10);
        const char *label = strchr(names.v[i], ' ') + 1;
        static const char *const copy_owners[] = {
            "UPDATE template_copies SET state = 'deleting', journal_id = ?2 "
            "WHERE id = ?1",
            NULL,
        };

        if (dry_run) {
            report(fn, opaque, "would-remove", label, "unreferenced "
                   "template copy");
            continue;
        }
        memset(&e2, 0, sizeof(e2));
        if (cat_delete_set(cat, "gc-copy", "template copy", label,
                           cat_owned_copy, copy_owners, cid, &e2) < 0) {
            report(fn, opaque, "kept", label, e2.msg);
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
                        "template_id = t.id)) AND c.template_id IS NULL AND "
                        "c.copy_id IS NULL)", 1);
        for (i = 0; r == 0 && i < names.n; i++) {
            report(fn, opaque, "would-remove", names.v[i], "retired "
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
        r = scan_pools(cat, false, report_path, &rep, err);
    }
    return r;
}

/* -------------------------------------------------------------- fsck */

static int
remove_temp(const char *path, void *opaque)
{
    struct report *rep = opaque;

    if (unlink(path) == 0) {
        rep->count++;
        if (rep->fn) {
            rep->fn("removed", path, "temporary file of an interrupted "
                    "operation", rep->opaque);
        }
    }
    return 0;
}

/* Check a writable layer (a VM's or a snapshot's, never a template's)
 * with the engine and free the clusters a killed writer leaked.
 * Returns 1 when leaks were repaired, 0, or -errno (corruption). */
static int
check_leaks(struct vmc_catalog *cat, int64_t vid, const char *path,
            vmc_catalog_report_fn fn, void *opaque, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_CHECK | VMC_OPEN_RDWR |
                                         VMC_OPEN_NO_BACKING };
    struct vmc_check_result cr;
    struct vmc_image *img = NULL;
    struct stat st;
    int64_t sealed = 0;
    bool ro = false;
    int r;

    if (cat_get_i64(cat, &sealed, NULL, "SELECT template_id IS NOT NULL OR "
                    "copy_id IS NOT NULL FROM volumes WHERE id = ?", "I",
                    vid) < 0 || sealed) {
        return 0;
    }
    if (stat(path, &st) == 0 && !(st.st_mode & S_IWUSR)) {
        ro = true;
        chmod(path, (st.st_mode & 07777) | S_IWUSR);
    }
    r = vmc_image_open(&img, path, &oo, err);
    if (r == -EBUSY) {
        r = 0;      /* in use by a hypervisor: not ours to repair now */
        goto out;
    }
    if (r == 0) {
        memset(&cr, 0, sizeof(cr));
        r = vmc_image_check(img, VMC_REPAIR_LEAKS, &cr, NULL, NULL, err);
    }
    if (r == 0 && cr.corruptions) {
        r = vmc_error_set(err, -EUCLEAN, "%" PRIu64 " corruptions",
                          cr.corruptions);
    } else if (r == 0 && cr.leaks_fixed) {
        if (fn) {
            char d[96];

            snprintf(d, sizeof(d), "%" PRIu64 " leaked clusters freed (a "
                     "writer was killed)", cr.leaks_fixed);
            fn("fixed", path, d, opaque);
        }
        r = 1;
    }
out:
    if (vmc_image_close(img) < 0 && r >= 0) {
        r = vmc_error_set(err, -EIO, "cannot flush '%s'", path);
    }
    if (ro) {
        chmod(path, st.st_mode & 07777);
    }
    return r;
}

int
vmc_catalog_fsck(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
                 void *opaque, struct vmc_fsck_result *res,
                 struct vmc_error *err)
{
    struct report temps = { fn, opaque, "temporary", 0 };
    struct report unknown = { fn, opaque, "unknown", 0 };
    cat_stmt *st = NULL;
    int64_t *ids = NULL, *parents = NULL;
    size_t n = 0, i;
    char *ic = NULL;
    int r;

    memset(res, 0, sizeof(*res));
    r = cat_recover_all(cat, &res->recovered, err);
    if (r < 0) {
        return r;
    }
    if (res->recovered) {
        char buf[64];

        snprintf(buf, sizeof(buf), "%u interrupted operation%s",
                 res->recovered, res->recovered == 1 ? "" : "s");
        report(fn, opaque, "recovered", buf, "rolled forward or back");
    }
    r = scan_pools(cat, true, remove_temp, &temps, err);
    res->temp_removed = temps.count;
    /* every row in a transient state was just resolved */
    if (r == 0) {
        r = cat_prepare(cat, &st, err, "SELECT o.kind || ' ' || o.name || "
                        "' disk ' || o.disk || ': ' || o.path FROM "
                        "volume_owners o WHERE o.state != 'ready' AND "
                        "o.id > ?", "i", 0);
        while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
            report(fn, opaque, "problem", cat_col(st, 0), "left in a "
                   "transient state");
            res->problems++;
            r = 0;
        }
        cat_finalize(st);
    }
    /* every ready volume: the file exists, opens, and its backing
     * reference is its parent row */
    if (r == 0) {
        r = cat_prepare(cat, &st, err, "SELECT id, coalesce(parent_id, 0) "
                        "FROM volumes WHERE state = 'ready' ORDER BY id",
                        NULL);
    }
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        int64_t *a = realloc(ids, (n + 1) * sizeof(*ids));
        int64_t *b = a ? realloc(parents, (n + 1) * sizeof(*parents)) : NULL;

        if (a) {
            ids = a;
        }
        if (!a || !b) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        parents = b;
        ids[n] = cat_col_i64(st, 0);
        parents[n++] = cat_col_i64(st, 1);
        r = 0;
    }
    cat_finalize(st);
    for (i = 0; r == 0 && i < n; i++) {
        struct vmc_error e2 = { 0 };
        char *path = NULL;
        int64_t actual = 0;
        struct stat stt;
        bool backing_ok = false;
        int q;

        res->volumes++;
        r = cat_volume_path(cat, ids[i], &path, err);
        if (r < 0) {
            break;
        }
        if (stat(path, &stt) < 0) {
            report(fn, opaque, "problem", path, "file of a ready volume is "
                   "missing");
            res->problems++;
        } else if ((q = cat_backing_volume(cat, path, &actual, NULL,
                                           &e2)) < 0) {
            report(fn, opaque, "problem", path, e2.msg);
            res->problems++;
        } else if ((backing_ok = true) &&
                   (q = check_leaks(cat, ids[i], path, fn, opaque,
                                    &e2)) < 0) {
            report(fn, opaque, "problem", path, e2.msg);
            res->problems++;
        } else if (q > 0) {
            res->fixed++;
        }
        if (r == 0 && backing_ok && actual != parents[i]) {
            r = cat_exec(cat, err, "UPDATE volumes SET parent_id = "
                         "nullif(?, 0) WHERE id = ?", "II", actual, ids[i]);
            if (r == 0) {
                report(fn, opaque, "fixed", path, "parent set from the "
                       "file's backing reference");
                res->fixed++;
            } else {
                report(fn, opaque, "problem", path, err->msg);
                res->problems++;
                r = 0;
            }
        }
        free(path);
    }
    free(ids);
    free(parents);
    if (r == 0) {
        r = scan_pools(cat, false, report_path, &unknown, err);
        res->unknown = unknown.count;
    }
    if (r == 0) {
        r = cat_get_str(cat, &ic, err, "PRAGMA integrity_check", NULL);
        if (r == 0 && ic && strcmp(ic, "ok")) {
            report(fn, opaque, "problem", "catalog.db", ic);
            res->problems++;
        }
        free(ic);
    }
    if (r == 0) {
        r = cat_prepare(cat, &st, err, "PRAGMA foreign_key_check", NULL);
        while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
            report(fn, opaque, "problem", "catalog.db", "foreign key "
                   "violation");
            res->problems++;
            r = 0;
        }
        cat_finalize(st);
    }
    if (r == 0) {
        /* stale journal locks: no operation runs under the exclusive
         * maintenance lock */
        DIR *d = opendir(cat->run_dir);
        struct dirent *de;

        while (d && (de = readdir(d))) {
            if (de->d_name[0] == 'j' && strstr(de->d_name, ".lock")) {
                unlinkat(dirfd(d), de->d_name, 0);
            }
        }
        if (d) {
            closedir(d);
        }
    }
    return r;
}
