/*
 * fsck.c - `vm-clone fsck`: recover dead operations, remove our temporary
 * files, check every ready volume's file and parent, report files no row
 * names and the database's own checks. The pool scan and the report
 * helpers here are shared with gc.c.
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
#include "vmclone-seal.h"
#include "../virt/virt.h"

/* ------------------------------------------------------------- scans */

static bool
is_temp_name(const char *n)
{
    size_t l = strlen(n);

    return (n[0] == '.' && (strstr(n, ".vmc-") || strstr(n, ".tmp-"))) ||
           (l > 9 && !strcmp(n + l - 9, ".seal.tmp"));
}

int
cat_scan_pools(struct vmc_catalog *cat, bool temps,
           int (*fn)(const char *path, void *opaque), void *opaque,
           struct vmc_error *err)
{
    struct cat_strv pools = { 0 };
    size_t i;
    int r;

    /* another host's local pools are scanned by that host */
    r = cat_collect_host(cat, &pools, err, "SELECT path FROM pools WHERE "
                         "host_id IS NULL OR host_id = ? ORDER BY id");
    for (i = 0; r == 0 && i < pools.n; i++) {
        DIR *d = opendir(pools.v[i]);
        struct dirent *de;

        while (r == 0 && d && (de = readdir(d))) {
            char *path = NULL, *base = NULL;
            int64_t n = 0;
            size_t l = strlen(de->d_name);
            struct stat stt;

            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
                !strcmp(de->d_name, CAT_POOL_MARKER) ||
                !strcmp(de->d_name, CAT_QUARANTINE)) {
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
                /* fsck --verify's mark of a damaged volume */
                if (base && l > 8 && !strcmp(base + l - 8,
                                             CAT_DAMAGED_SUFFIX)) {
                    base[l - 8] = '\0';
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

/* ------------------------------------------------------------ reports */

int
cat_report_path(const char *path, void *opaque)
{
    struct cat_report *rep = opaque;

    rep->count++;
    if (rep->fn) {
        rep->fn(rep->what, path, rep->what[0] == 'u'
                ? "not in the catalog (left in place)" : "temporary file",
                rep->opaque);
    }
    return 0;
}

void
cat_report(vmc_catalog_report_fn fn, void *opaque, const char *what,
       const char *subject, const char *detail)
{
    if (fn) {
        fn(what, subject, detail, opaque);
    }
}

/* -------------------------------------------------------------- fsck */

static int
remove_temp(const char *path, void *opaque)
{
    struct cat_report *rep = opaque;

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

struct unrecovered {
    struct vmc_catalog *cat;
    struct cat_report *rep;
    struct vmc_fsck_result *res;
};

/* "journal row N (OP TARGET)" (and its host when not this one) */
static void
journal_subject(struct vmc_catalog *cat, int64_t jid, const char *host,
                char *subject, size_t len)
{
    char *op = NULL;

    cat_get_str(cat, &op, NULL, "SELECT op || ' ' || coalesce(target, "
                "'') FROM journal WHERE id = ?", "I", jid);
    if (host && *host && strcmp(host, cat->host_id)) {
        snprintf(subject, len, "journal row %" PRId64 " (%s) of host '%s'",
                 jid, op ? op : "?", host);
    } else {
        snprintf(subject, len, "journal row %" PRId64 " (%s)", jid,
                 op ? op : "?");
    }
    free(op);
}

/* cat_recover_report()'s callback: a journal row recovery could not
 * finish is a problem with its operation and target; one of another
 * host finished (fsck --reap) is reported naming that host. */
static void
report_unrecovered(int64_t jid, const char *host, const char *why,
                   void *opaque)
{
    struct unrecovered *u = opaque;
    char subject[320], detail[160];

    journal_subject(u->cat, jid, host, subject, sizeof(subject));
    if (!why) {
        snprintf(detail, sizeof(detail), "host '%s' died running it: "
                 "rolled forward or back here", host);
        cat_report(u->rep->fn, u->rep->opaque, "reaped", subject, detail);
        u->res->reaped++;
        return;
    }
    u->rep->count++;
    cat_report(u->rep->fn, u->rep->opaque, "problem", subject, why);
}

/* Without --reap: the running rows of other hosts, each a problem naming
 * its host (under fsck's exclusive lock no command runs on any host). */
static int
report_others(struct vmc_catalog *cat, struct unrecovered *u,
              struct vmc_error *err)
{
    struct cat_strv rows = { 0 };
    size_t i;
    int r = cat_collect_host(cat, &rows, err, "SELECT id || ' ' || host_id "
                             "FROM journal WHERE state = 'running' AND "
                             "host_id != ? ORDER BY id");

    for (i = 0; r == 0 && i < rows.n; i++) {
        char subject[320], *host = strchr(rows.v[i], ' ');

        journal_subject(cat, strtoll(rows.v[i], NULL, 10),
                        host ? host + 1 : "", subject, sizeof(subject));
        u->rep->count++;
        cat_report(u->rep->fn, u->rep->opaque, "problem", subject,
                   "interrupted on its host: finish it there (any "
                   "command) or here with 'vm-clone fsck --reap'");
    }
    cat_strv_release(&rows);
    return r;
}

/* Which host owns what: each pool local to a host (its files are
 * checked there only). */
static int
fsck_owners(struct vmc_catalog *cat, vmc_catalog_report_fn fn, void *opaque,
            struct vmc_error *err)
{
    struct cat_strv pools = { 0 };
    size_t i;
    int r = cat_collect(cat, &pools, err, "SELECT name || ' ' || host_id "
                        "FROM pools WHERE host_id IS NOT NULL AND id > ? "
                        "ORDER BY id", 0);

    for (i = 0; r == 0 && i < pools.n; i++) {
        char subject[160], detail[160], *host = strchr(pools.v[i], ' ');

        *host++ = '\0';
        snprintf(subject, sizeof(subject), "pool '%s'", pools.v[i]);
        snprintf(detail, sizeof(detail), "local to host '%s'%s", host,
                 strcmp(host, cat->host_id) ? ": its files are checked "
                 "there" : " (this host)");
        cat_report(fn, opaque, "owner", subject, detail);
    }
    cat_strv_release(&pools);
    return r;
}

/* SQLite's integrity check, before anything is written: > 0 (the number
 * of damage reports) when the catalog is damaged, each reported. */
static int
catalog_damaged(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
                void *opaque, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int n = 0;
    int r = cat_prepare(cat, &st, err, "PRAGMA integrity_check", NULL);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        if (strcmp(cat_col(st, 0), "ok")) {
            cat_report(fn, opaque, "problem", "catalog.db", cat_col(st, 0));
            n++;
        }
        r = 0;
    }
    cat_finalize(st);
    if (r < 0) {
        /* too damaged to finish the check */
        cat_report(fn, opaque, "problem", "catalog.db", err->msg);
        n++;
    }
    if (n) {
        cat_report(fn, opaque, "problem", "catalog.db", "the catalog is "
                   "damaged: fsck changed nothing (restore catalog.db from "
                   "a backup)");
    }
    return n;
}

/* Finish the operations whose owner died; report the ones that cannot
 * be finished (they stay for a later attempt) as problems. */
static int
fsck_recover(struct vmc_catalog *cat, bool reap, vmc_catalog_report_fn fn,
             void *opaque, struct vmc_fsck_result *res,
             struct vmc_error *err)
{
    struct cat_report unfinished = { fn, opaque, "problem", 0 };
    struct unrecovered ur = { cat, &unfinished, res };
    int r = cat_recover_report(cat, CAT_RECOVER_OWN, &res->recovered,
                               report_unrecovered, &ur, err);

    if (r == 0 && reap) {
        r = cat_recover_report(cat, CAT_RECOVER_OTHERS, NULL,
                               report_unrecovered, &ur, err);
    } else if (r == 0) {
        r = report_others(cat, &ur, err);
    }
    res->problems += unfinished.count;
    if (r == 0 && res->recovered) {
        char buf[64];

        snprintf(buf, sizeof(buf), "%u interrupted operation%s",
                 res->recovered, res->recovered == 1 ? "" : "s");
        cat_report(fn, opaque, "recovered", buf, "rolled forward or back");
    }
    return r;
}

/* Rows still in a transient state after recovery. */
static int
fsck_transient(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
               void *opaque, struct vmc_fsck_result *res,
               struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "SELECT o.kind || ' ' || o.name || "
                        "' disk ' || o.disk || ': ' || o.path FROM "
                        "volume_owners o WHERE o.state != 'ready' AND "
                        "o.id > ?", "i", 0);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        cat_report(fn, opaque, "problem", cat_col(st, 0), "left in a "
                   "transient state");
        res->problems++;
        r = 0;
    }
    cat_finalize(st);
    return r;
}

/* One ready volume: the file exists, opens, its backing reference is its
 * parent row (fixed from the file otherwise), and a writable layer's
 * leaked clusters are freed. */
static int
fsck_volume(struct vmc_catalog *cat, int64_t vid, int64_t parent,
            vmc_catalog_report_fn fn, void *opaque,
            struct vmc_fsck_result *res, struct vmc_error *err)
{
    struct vmc_error e2 = { 0 };
    char *path = NULL;
    int64_t actual = 0;
    struct stat stt;
    bool backing_ok = false;
    int q, r;

    res->volumes++;
    r = cat_volume_path(cat, vid, &path, err);
    if (r < 0) {
        return r;
    }
    if (cat_path_is_rbd(path) ? cat_rbd_missing(path)
                              : stat(path, &stt) < 0) {
        cat_report(fn, opaque, "problem", path, "file of a ready volume is "
                   "missing");
        res->problems++;
    } else if ((q = cat_backing_volume(cat, path, &actual, NULL, &e2)) < 0) {
        cat_report(fn, opaque, "problem", path, e2.msg);
        res->problems++;
    } else if ((backing_ok = true) && !cat_path_is_rbd(path) &&
               (q = check_leaks(cat, vid, path, fn, opaque, &e2)) < 0) {
        cat_report(fn, opaque, "problem", path, e2.msg);
        res->problems++;
    } else if (q > 0) {
        res->fixed++;
    }
    if (backing_ok && actual != parent) {
        r = cat_exec(cat, err, "UPDATE volumes SET parent_id = nullif(?, 0) "
                     "WHERE id = ?", "II", actual, vid);
        if (r == 0) {
            cat_report(fn, opaque, "fixed", path, "parent set from the "
                       "file's backing reference");
            res->fixed++;
        } else {
            cat_report(fn, opaque, "problem", path, err->msg);
            res->problems++;
            r = 0;
        }
    }
    free(path);
    return r;
}

/* Every ready volume, through fsck_volume(). */
static int
fsck_volumes(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
             void *opaque, struct vmc_fsck_result *res,
             struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int64_t *ids = NULL, *parents = NULL;
    size_t n = 0, i;
    /* disk images only: a seed is an ISO (seed.c) */
    int r = cat_prepare(cat, &st, err, "SELECT v.id, coalesce(v.parent_id, "
                        "0) FROM volumes v JOIN pools p ON p.id = v.pool_id "
                        "WHERE v.state = 'ready' AND v.kind = 'disk' AND (p.host_id IS NULL OR "
                        "p.host_id = ?) ORDER BY v.id", "s", cat->host_id);

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
        r = fsck_volume(cat, ids[i], parents[i], fn, opaque, res, err);
    }
    free(ids);
    free(parents);
    return r;
}

/* SQLite's foreign key check. */
static int
fsck_foreign_keys(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
                  void *opaque, struct vmc_fsck_result *res,
                  struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "PRAGMA foreign_key_check", NULL);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        cat_report(fn, opaque, "problem", "catalog.db", "foreign key "
                   "violation");
        res->problems++;
        r = 0;
    }
    cat_finalize(st);
    return r;
}

/* Stale journal locks: no operation runs under the exclusive maintenance
 * lock. */
static void
remove_stale_locks(struct vmc_catalog *cat)
{
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

/* ------------------------------------------------ --remove-unknown */

/* Whether @n is a name our naming scheme makes for a volume file or its
 * seal: "LABEL-diskN-ID.qcow2" or "LABEL-diskN-STOREID-ID.qcow2" (+
 * ".seal"), LABEL of [A-Za-z0-9._-], STOREID (when there) this store's. */
static bool
our_file_name(const char *n, const char *store_id)
{
    size_t l = strlen(n), i;
    const char *d, *p;

    if (l > 5 && !strcmp(n + l - 5, ".seal")) {
        l -= 5;
    }
    if (l < 7 || strncmp(n + l - 6, ".qcow2", 6) || n[0] == '.' ||
        n[0] == '-') {
        return false;
    }
    for (d = NULL, p = n; (p = strstr(p, "-disk")) && p < n + l; p++) {
        d = p;
    }
    if (!d || d == n) {
        return false;
    }
    for (i = 0; n + i < d; i++) {
        char c = n[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    p = d + 5;
    if (!(*p >= '0' && *p <= '9')) {
        return false;
    }
    p += strspn(p, "0123456789");
    if (*p++ != '-') {
        return false;
    }
    i = strspn(p, "0123456789abcdef");
    if (p[i] == '-') {
        /* a store id: must be this store's */
        if (!*store_id || i != strlen(store_id) || strncmp(p, store_id, i)) {
            return false;
        }
        p += i + 1;
    }
    i = strspn(p, "0123456789");
    return i > 0 && p + i == n + l - 6;
}

struct quarantine {
    struct cat_report *unknown;
    const char *store_id;
    const char *dir;        /* NULL: <pool>/.quarantine */
    struct vmc_fsck_result *res;
};

/* Move @path into directory @dir under its own name (or NAME.N), without
 * replacing anything there: link, then unlink. */
static int
move_into(const char *path, const char *dir, char **dst)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    unsigned n;

    *dst = NULL;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        return -errno;
    }
    for (n = 0; n < 1000; n++) {
        free(*dst);
        if ((n ? asprintf(dst, "%s/%s.%u", dir, base, n)
               : asprintf(dst, "%s/%s", dir, base)) < 0) {
            *dst = NULL;
            return -ENOMEM;
        }
        if (link(path, *dst) == 0) {
            if (unlink(path) < 0) {
                int e = -errno;

                unlink(*dst);
                return e;
            }
            cat_fsync_dir_of(path);
            cat_fsync_dir_of(*dst);
            return 0;
        }
        if (errno != EEXIST) {
            return -errno;
        }
    }
    return -EEXIST;
}

/* cat_scan_pools() callback of --remove-unknown: an unknown file our
 * naming scheme made goes to the quarantine; any other stays in place. */
static int
quarantine_path(const char *path, void *opaque)
{
    struct quarantine *q = opaque;
    const char *slash = strrchr(path, '/');
    char *qdir = NULL, *dst = NULL, detail[1200];
    struct stat st;
    int r;

    if (!slash || lstat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
        !our_file_name(slash + 1, q->store_id)) {
        return cat_report_path(path, q->unknown);
    }
    q->unknown->count++;
    if (q->dir) {
        qdir = strdup(q->dir);
    } else if (asprintf(&qdir, "%.*s/%s", (int)(slash - path), path,
                        CAT_QUARANTINE) < 0) {
        qdir = NULL;
    }
    r = qdir ? move_into(path, qdir, &dst) : -ENOMEM;
    if (r == 0) {
        q->res->quarantined++;
        snprintf(detail, sizeof(detail), "not in the catalog: moved to '%s'",
                 dst);
        cat_report(q->unknown->fn, q->unknown->opaque, "quarantined", path,
                   detail);
    } else {
        snprintf(detail, sizeof(detail), "not in the catalog; cannot move "
                 "it to '%s' (%s): left in place", qdir ? qdir : "?",
                 strerror(-r));
        cat_report(q->unknown->fn, q->unknown->opaque, "unknown", path,
                   detail);
    }
    free(qdir);
    free(dst);
    return 0;
}

/* ------------------------------------------------------------ --verify */

/* Verify one sealed volume: its seal's root is the catalog's, and every
 * chunk matches. Returns true when intact; else @detail says why. */
static bool
verify_volume(const char *path, const char *want, char *detail, size_t len)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_NO_BACKING |
                                         VMC_OPEN_FORCE_SHARE };
    struct vmc_verify_result vr = { 0 };
    struct vmc_seal_info si = { 0 };
    struct vmc_image *img = NULL;
    struct vmc_error e = { 0 };
    int r;

    if (cat_path_is_rbd(path)) {
        return cat_rbd_verify_seal(path, want, detail, len);
    }
    r = vmc_image_open(&img, path, &oo, &e);
    if (r == 0) {
        vmc_image_seal_info(img, &si);
        vmc_image_close(img);
        if (!si.sealed) {
            r = vmc_error_set(&e, -ENOTSUP, "not sealed any more");
        } else if (want && strcmp(si.root_hex, want)) {
            r = vmc_error_set(&e, -EIO, "its seal (%.16s...) is not the one "
                              "the catalog recorded (%.16s...)", si.root_hex,
                              want);
        }
    }
    if (r == 0) {
        r = vmc_image_verify(path, NULL, 2, &vr, NULL, NULL, &e);
    }
    if (r == 0 && !vr.corrupt) {
        return true;
    }
    if (r == 0) {
        snprintf(detail, len, "seal verification failed: %" PRIu64 " of %"
                 PRIu64 " chunks damaged", vr.corrupt, vr.chunks);
    } else {
        snprintf(detail, len, "seal verification failed: %s", e.msg);
    }
    return false;
}

/* fsck --repair: rewrite the damaged chunks of template copy volume @vid
 * (@path) from its template's disk, which must verify itself. Returns
 * true when the copy verifies after; @detail says what was done. */
static bool
repair_copy(struct vmc_catalog *cat, int64_t vid, const char *path,
            const char *want, char *detail, size_t len)
{
    struct vmc_verify_result vr = { 0 };
    struct vmc_error e = { 0 };
    char *from = NULL, why[600];
    int r = cat_get_str(cat, &from, NULL, "SELECT o.path FROM volumes c "
                        "JOIN template_copies x ON x.id = c.copy_id JOIN "
                        "volumes t ON t.template_id = x.template_id AND "
                        "t.disk = c.disk JOIN volume_owners o ON o.id = t.id "
                        "WHERE c.id = ?", "I", vid);

    if (r < 0) {
        return false;       /* not a copy: a template has no source */
    }
    if (!verify_volume(from, want, why, sizeof(why))) {
        snprintf(detail, len, "not repaired: its template '%s' is damaged "
                 "too (%s)", from, why);
        free(from);
        return false;
    }
    cat_mode_writable(path);
    r = vmc_image_verify(path, from, 2, &vr, NULL, NULL, &e);
    cat_mode_readonly(path);
    if (r == 0 && verify_volume(path, want, why, sizeof(why))) {
        snprintf(detail, len, "repaired from '%s': %" PRIu64 " chunks "
                 "rewritten", from, vr.repaired);
        free(from);
        return true;
    }
    snprintf(detail, len, "repair from '%s' failed: %s", from,
             r < 0 ? e.msg : why);
    free(from);
    return false;
}

/* Verify (and with @repair, repair) sealed volume @vid, reported by name
 * (kind and owner); a damaged one is marked (CAT_DAMAGED_SUFFIX) so that
 * clones refuse it, an intact or repaired one unmarked. */
static void
check_sealed(struct vmc_catalog *cat, int64_t vid, const char *path,
             const char *owner, const char *want, bool repair,
             vmc_catalog_report_fn fn, void *opaque,
             struct vmc_fsck_result *res)
{
    char subject[600], detail[1200], fixed[1200] = "";

    snprintf(subject, sizeof(subject), "%s: %s", owner, path);
    res->verified++;
    if (verify_volume(path, want, detail, sizeof(detail))) {
        cat_volume_unmark_damaged(path);
        return;
    }
    if (repair && repair_copy(cat, vid, path, want, fixed, sizeof(fixed))) {
        cat_volume_unmark_damaged(path);
        cat_report(fn, opaque, "fixed", subject, fixed);
        res->fixed++;
        return;
    }
    if (repair && *fixed) {
        snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail),
                 "; %s", fixed);
    }
    cat_volume_mark_damaged(path, detail);
    cat_report(fn, opaque, "problem", subject, detail);
    res->problems++;
}

/* Every ready sealed volume (templates, template copies), by name, with a
 * "verifying" report before each (N of TOTAL: the progress). */
static int
fsck_verify(struct vmc_catalog *cat, bool repair, vmc_catalog_report_fn fn,
            void *opaque, struct vmc_fsck_result *res, struct vmc_error *err)
{
    struct cat_strv ids = { 0 };
    size_t i;
    int r = cat_collect_host(cat, &ids, err, "SELECT v.id FROM volumes v "
                             "JOIN pools p ON p.id = v.pool_id WHERE v.seal "
                             "IS NOT NULL AND v.state = 'ready' AND "
                             "(p.host_id IS NULL OR p.host_id = ?) ORDER BY "
                             "v.id");

    for (i = 0; r == 0 && i < ids.n; i++) {
        int64_t vid = strtoll(ids.v[i], NULL, 10);
        char *path = NULL, *owner = NULL, *seal = NULL, step[64];

        r = cat_get_str(cat, &path, err, "SELECT path FROM volume_owners "
                        "WHERE id = ?", "I", vid);
        if (r == 0) {
            r = cat_get_str(cat, &owner, err, "SELECT CASE kind WHEN 'copy' "
                            "THEN 'template copy' ELSE kind END || ' ' || "
                            "'''' || name || ''' disk ' || disk FROM "
                            "volume_owners WHERE id = ?", "I", vid);
        }
        if (r == 0) {
            r = cat_get_str(cat, &seal, err, "SELECT seal FROM volumes WHERE "
                            "id = ?", "I", vid);
        }
        if (r == 0) {
            snprintf(step, sizeof(step), "%zu of %zu", i + 1, ids.n);
            cat_report(fn, opaque, "verifying", owner, step);
            check_sealed(cat, vid, path, owner, seal, repair, fn, opaque,
                         res);
        }
        free(path);
        free(owner);
        free(seal);
    }
    cat_strv_release(&ids);
    return r;
}

/* ------------------------------------------------------------- entry */

int
vmc_catalog_fsck(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
                 void *opaque, struct vmc_fsck_result *res,
                 struct vmc_error *err)
{
    return vmc_catalog_fsck_with(cat, NULL, fn, opaque, res, err);
}

int
vmc_catalog_fsck_with(struct vmc_catalog *cat, const struct vmc_fsck_opts *o,
                      vmc_catalog_report_fn fn, void *opaque,
                      struct vmc_fsck_result *res, struct vmc_error *err)
{
    struct cat_report temps = { fn, opaque, "temporary", 0 };
    struct cat_report unknown = { fn, opaque, "unknown", 0 };
    struct quarantine q = { &unknown, cat->store_id,
                            o ? o->quarantine : NULL, res };
    int r;

    memset(res, 0, sizeof(*res));
    /* a damaged catalog is reported and never written to */
    r = catalog_damaged(cat, fn, opaque, err);
    if (r != 0) {
        res->problems += r > 0 ? (unsigned)r : 0;
        return r > 0 ? 0 : r;
    }
    r = fsck_recover(cat, o && o->reap, fn, opaque, res, err);
    if (r == 0) {
        r = fsck_owners(cat, fn, opaque, err);
    }
    if (r == 0) {
        r = cat_scan_pools(cat, true, remove_temp, &temps, err);
        res->temp_removed = temps.count;
    }
    if (r == 0) {
        r = fsck_transient(cat, fn, opaque, res, err);
    }
    if (r == 0) {
        r = fsck_volumes(cat, fn, opaque, res, err);
    }
    if (r == 0) {
        r = cat_rbd_fsck_children(cat, fn, opaque, &res->problems, err);
    }
    if (r == 0 && o && (o->verify || o->repair)) {
        r = fsck_verify(cat, o->repair, fn, opaque, res, err);
    }
    if (r == 0) {
        r = cat_instant_fsck(cat, o && (o->verify || o->repair), fn, opaque,
                             &res->problems, err);
    }
    if (r == 0) {
        r = cat_scan_pools(cat, false, o && o->remove_unknown
                           ? quarantine_path : cat_report_path,
                           o && o->remove_unknown ? (void *)&q
                                                  : (void *)&unknown, err);
    }
    if (r == 0) {       /* reported, never removed nor quarantined */
        r = cat_instant_scan(cat, cat_report_path, &unknown, err);
        res->unknown = unknown.count;
    }
    if (r == 0) {
        r = fsck_foreign_keys(cat, fn, opaque, res, err);
    }
    if (r == 0) {
        r = cat_virt_fsck(cat, fn, opaque, &res->problems, err);
    }
    if (r == 0) {
        remove_stale_locks(cat);
    }
    return r;
}
