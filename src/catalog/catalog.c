/*
 * catalog.c - opening a store (directories, catalog.db, schema
 * migrations, default pools), SQL helpers, transactions, the journal and
 * its per-operation locks, and recovery of operations whose process died.
 *
 * SQLite settings: WAL (readers never block the writer), synchronous=FULL
 * (a commit is durable: the commit is the user-visible "done"),
 * foreign_keys=ON, a busy handler that polls every 0.2-2 ms for up to 10 s
 * (busy_wait() in sql.c), and every transaction that may write starts with
 * BEGIN IMMEDIATE, so that no reader has to upgrade to a writer (which
 * fails at once in WAL mode).
 * Nothing here opens catalog.db except through SQLite.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "catalog-internal.h"
#include "engine.h"

/* ------------------------------------------------------------ helpers */

#define CAT_PROGRESS_UNIT (1u << 20)

void
vmc_catalog_set_progress(struct vmc_catalog *cat, vmc_progress_fn fn,
                         void *opaque)
{
    cat->progress = fn;
    cat->progress_opaque = opaque;
}

void
cat_progress_init(struct cat_progress *p, struct vmc_catalog *cat,
                  vmc_progress_fn fn, void *opaque, uint64_t steps)
{
    p->fn = fn ? fn : cat->progress;
    p->opaque = fn ? opaque : cat->progress_opaque;
    p->step = 0;
    p->steps = steps ? steps : 1;
    p->last = 0;
}

static void
cat_progress_cb(uint64_t done, uint64_t total, void *opaque)
{
    struct cat_progress *p = opaque;
    uint64_t part = total ? (uint64_t)((double)CAT_PROGRESS_UNIT *
                                       (double)(done > total ? total : done) /
                                       (double)total)
                          : CAT_PROGRESS_UNIT;

    p->last = p->step * CAT_PROGRESS_UNIT + part;
    p->fn(p->last, p->steps * CAT_PROGRESS_UNIT, p->opaque);
}

vmc_progress_fn
cat_progress_fn(const struct cat_progress *p)
{
    return p->fn ? cat_progress_cb : NULL;
}

void
cat_progress_next(struct cat_progress *p)
{
    if (p->step < p->steps) {
        p->step++;
    }
    /* the last step done: 100 % even when the engine had nothing to do */
    if (p->fn && p->step == p->steps &&
        p->last < p->steps * CAT_PROGRESS_UNIT) {
        p->last = p->steps * CAT_PROGRESS_UNIT;
        p->fn(p->last, p->last, p->opaque);
    }
}

void
cat_crashpoint(const char *point)
{
    const char *want = getenv("VMCLONE_CRASH_AT");

    if (want && !strcmp(want, point)) {
        _exit(99);
    }
}

int
cat_check_name(const char *what, const char *name, struct vmc_error *err)
{
    size_t i, n = name ? strlen(name) : 0;

    if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-') {
        return vmc_error_set(err, -EINVAL, "invalid %s name '%s': 1 to 64 "
                             "characters, not starting with '.' or '-'",
                             what, name ? name : "");
    }
    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
            return vmc_error_set(err, -EINVAL, "invalid %s name '%s': only "
                                 "letters, digits, '.', '_' and '-'", what,
                                 name);
        }
    }
    return 0;
}

/* ------------------------------------------------------------- files */

int
cat_fsync_dir_of(const char *path)
{
    char *dup = malloc(strlen(path) + 2);
    char *slash;
    int r;

    if (dup) {
        memcpy(dup, path, strlen(path) + 1);
    }
    if (!dup) {
        return -ENOMEM;
    }
    slash = strrchr(dup, '/');
    if (slash == dup) {
        slash[1] = '\0';
    } else if (slash) {
        *slash = '\0';
    } else {
        dup[0] = '.';
        dup[1] = '\0';
    }
    r = engine_sync_dir(dup);
    free(dup);
    return r;
}

int
cat_unlink_volume_file(const char *path, struct vmc_error *err)
{
    char *seal = NULL;
    int r = 0;

    if (asprintf(&seal, "%s.seal", path) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        r = vmc_error_set(err, -errno, "cannot remove '%s': %s", path,
                          strerror(errno));
    }
    if (r == 0 && unlink(seal) < 0 && errno != ENOENT) {
        r = vmc_error_set(err, -errno, "cannot remove '%s': %s", seal,
                          strerror(errno));
    }
    free(seal);
    return r;
}

int
cat_volume_path(struct vmc_catalog *cat, int64_t vid, char **out,
                struct vmc_error *err)
{
    int r = cat_get_str(cat, out, err,
                        "SELECT p.path || '/' || v.file FROM volumes v "
                        "JOIN pools p ON p.id = v.pool_id WHERE v.id = ?",
                        "I", vid);

    if (r == -ENOENT) {
        return vmc_error_set(err, r, "catalog: no volume %" PRId64, vid);
    }
    return r;
}

static int
mkdir_p(const char *path, struct vmc_error *err)
{
    char *dup = strdup(path);
    char *p;
    int r = 0;

    if (!dup) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (p = dup + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;

            *p = '\0';
            if (mkdir(dup, 0755) < 0 && errno != EEXIST) {
                r = vmc_error_set(err, -errno, "cannot create directory "
                                  "'%s': %s", dup, strerror(errno));
                break;
            }
            *p = c;
            if (c == '\0') {
                break;
            }
        }
    }
    free(dup);
    return r;
}

int
cat_backing_volume(struct vmc_catalog *cat, const char *path, int64_t *vid,
                   char **backing, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_NO_BACKING |
                                         VMC_OPEN_FORCE_SHARE };
    struct vmc_image *img = NULL;
    struct vmc_image_info info;
    char *resolved = NULL, *real = NULL, *slash;
    int r;

    *vid = 0;
    if (backing) {
        *backing = NULL;
    }
    r = vmc_image_open(&img, path, &oo, err);
    if (r < 0) {
        return r;
    }
    vmc_image_get_info(img, &info);
    if (!info.backing_file || !*info.backing_file) {
        goto out;
    }
    if (backing) {
        *backing = strdup(info.backing_file);
    }
    r = vmc_backing_path_resolve(path, info.backing_file, &resolved);
    if (r < 0) {
        goto out;
    }
    real = realpath(resolved, NULL);
    if (!real) {
        r = vmc_error_set(err, -ENOENT, "'%s': backing file '%s' is missing",
                          path, info.backing_file);
        goto out;
    }
    slash = strrchr(real, '/');
    *slash = '\0';
    r = cat_get_i64(cat, vid, err,
                    "SELECT v.id FROM volumes v JOIN pools p "
                    "ON p.id = v.pool_id WHERE p.path = ? AND v.file = ?",
                    "ss", real, slash + 1);
    if (r == -ENOENT) {
        *slash = '/';
        r = vmc_error_set(err, -ENOENT, "'%s': backing file '%s' is not in "
                          "the catalog", path, real);
    }
out:
    free(real);
    free(resolved);
    vmc_image_close(img);
    return r;
}

int
cat_reconcile_journal(struct vmc_catalog *cat, int64_t jid, unsigned *fixed,
                      struct vmc_error *err)
{
    sqlite3_stmt *st = NULL;
    int64_t *ids = NULL, *parents = NULL;
    size_t n = 0, cap = 0, i;
    int r;

    r = cat_prepare(cat, &st, err,
                    "SELECT id, coalesce(parent_id, 0) FROM volumes "
                    "WHERE journal_id = ? AND state = 'ready'", "I", jid);
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            ids = realloc(ids, cap * sizeof(*ids));
            parents = realloc(parents, cap * sizeof(*parents));
            if (!ids || !parents) {
                r = vmc_error_set(err, -ENOMEM, "out of memory");
                break;
            }
        }
        ids[n] = sqlite3_column_int64(st, 0);
        parents[n++] = sqlite3_column_int64(st, 1);
        r = 0;
    }
    sqlite3_finalize(st);
    for (i = 0; r == 0 && i < n; i++) {
        char *path = NULL;
        int64_t actual = 0;

        r = cat_volume_path(cat, ids[i], &path, err);
        if (r == 0) {
            r = cat_backing_volume(cat, path, &actual, NULL, err);
        }
        free(path);
        if (r == 0 && actual != parents[i]) {
            r = cat_exec(cat, err, "UPDATE volumes SET parent_id = "
                         "nullif(?, 0) WHERE id = ?", "II", actual, ids[i]);
            if (r == 0 && fixed) {
                (*fixed)++;
            }
        }
    }
    free(ids);
    free(parents);
    return r;
}

/* ------------------------------------------------------------ journal */

static char *
journal_lock_path(struct vmc_catalog *cat, int64_t jid)
{
    char *p = NULL;

    if (asprintf(&p, "%s/j%" PRId64 ".lock", cat->run_dir, jid) < 0) {
        return NULL;
    }
    return p;
}

int
cat_journal_start(struct vmc_catalog *cat, const char *op,
                  const char *target, int64_t *jid, int *lock_fd,
                  struct vmc_error *err)
{
    char *lp;
    int fd, r;

    r = cat_exec(cat, err, "INSERT INTO journal(op, target, state, pid, "
                 "started) VALUES (?, ?, 'running', ?, ?)", "ssid", op,
                 target, (int)getpid(), cat_now());
    if (r < 0) {
        return r;
    }
    *jid = cat_last_id(cat);
    lp = journal_lock_path(cat, *jid);
    if (!lp) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        r = vmc_error_set(err, -errno, "cannot lock '%s': %s", lp,
                          strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        free(lp);
        return r;
    }
    free(lp);
    *lock_fd = fd;
    return 0;
}

int
cat_journal_finish(struct vmc_catalog *cat, int64_t jid, const char *state,
                   struct vmc_error *err)
{
    return cat_exec(cat, err, "UPDATE journal SET state = ?, finished = ? "
                    "WHERE id = ?", "sdI", state, cat_now(), jid);
}

void
cat_journal_unlock(struct vmc_catalog *cat, int64_t jid, int lock_fd)
{
    char *lp = journal_lock_path(cat, jid);

    if (lp) {
        unlink(lp);
        free(lp);
    }
    if (lock_fd >= 0) {
        close(lock_fd);
    }
}

/* With the lock of @jid held: finish the row if it is still running. */
static int
recover_locked(struct vmc_catalog *cat, int64_t jid, bool *did,
               struct vmc_error *err)
{
    char *state = NULL;
    int r;

    *did = false;
    r = cat_get_str(cat, &state, err, "SELECT state FROM journal WHERE "
                    "id = ?", "I", jid);
    if (r == -ENOENT) {
        return 0;
    }
    if (r < 0) {
        return r;
    }
    if (!strcmp(state, "running")) {
        r = cat_finish_journal(cat, jid, err);
        *did = r == 0;
    }
    free(state);
    return r;
}

static int
journal_lock_try(struct vmc_catalog *cat, int64_t jid, bool wait, int *fd_out,
                 struct vmc_error *err)
{
    char *lp = journal_lock_path(cat, jid);
    int fd;

    *fd_out = -1;
    if (!lp) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lp);
    if (fd < 0) {
        return vmc_error_set(err, -errno, "cannot open a journal lock: %s",
                             strerror(errno));
    }
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        if (errno == EINTR) {
            continue;
        }
        close(fd);
        return errno == EWOULDBLOCK ? 0 : -errno;
    }
    *fd_out = fd;
    return 1;
}

int
cat_journal_wait(struct vmc_catalog *cat, int64_t jid, struct vmc_error *err)
{
    bool did;
    int fd, r;

    r = journal_lock_try(cat, jid, true, &fd, err);
    if (r <= 0) {
        return r;
    }
    r = recover_locked(cat, jid, &did, err);
    cat_journal_unlock(cat, jid, fd);
    return r;
}

int
cat_recover_all(struct vmc_catalog *cat, unsigned *count,
                struct vmc_error *err)
{
    sqlite3_stmt *st = NULL;
    int64_t *ids = NULL;
    size_t n = 0, i;
    int r;

    r = cat_prepare(cat, &st, err, "SELECT id FROM journal WHERE "
                    "state = 'running' AND pid != ? ORDER BY id", "i",
                    (int)getpid());
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        int64_t *nids = realloc(ids, (n + 1) * sizeof(*ids));

        if (!nids) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        ids = nids;
        ids[n++] = sqlite3_column_int64(st, 0);
        r = 0;
    }
    sqlite3_finalize(st);
    for (i = 0; r == 0 && i < n; i++) {
        bool did = false;
        int fd;

        r = journal_lock_try(cat, ids[i], false, &fd, err);
        if (r <= 0) {
            continue;       /* its owner is alive */
        }
        r = recover_locked(cat, ids[i], &did, err);
        cat_journal_unlock(cat, ids[i], fd);
        if (did && count) {
            (*count)++;
        }
    }
    free(ids);
    return r < 0 ? r : 0;
}

/* --------------------------------------------------------------- open */

int
vmc_catalog_home(const char *home, char **out)
{
    const char *env = getenv("VMCLONE_HOME");
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *h = getenv("HOME");
    char *p = NULL;
    int n;

    if (home && *home) {
        n = asprintf(&p, "%s", home);
    } else if (env && *env) {
        n = asprintf(&p, "%s", env);
    } else if (xdg && *xdg) {
        n = asprintf(&p, "%s/vmclone", xdg);
    } else {
        n = asprintf(&p, "%s/.local/share/vmclone", h && *h ? h : ".");
    }
    if (n < 0) {
        return -ENOMEM;
    }
    *out = p;
    return 0;
}

static int
add_default_pool(struct vmc_catalog *cat, const char *name, const char *kind,
                 struct vmc_error *err)
{
    char *path = NULL, *real = NULL;
    int r;

    if (asprintf(&path, "%s/%s", cat->home, name) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = mkdir_p(path, err);
    if (r == 0 && !(real = realpath(path, NULL))) {
        r = vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    if (r == 0) {
        r = cat_exec(cat, err, "INSERT INTO pools(name, kind, path, created) "
                     "VALUES (?, ?, ?, ?)", "sssd", name, kind, real,
                     cat_now());
    }
    free(real);
    free(path);
    return r;
}

static int
migrate(struct vmc_catalog *cat, struct vmc_error *err)
{
    sqlite3_int64 version = 0;
    char *lp = NULL, *msg = NULL, pragma[64];
    int64_t v = 0;
    int fd = -1, r, rc;
    unsigned i;

    r = cat_get_i64(cat, &v, err, "PRAGMA user_version", NULL);
    if (r < 0) {
        return r;
    }
    if (v == (int64_t)cat_nmigrations) {
        return 0;
    }
    if (v > (int64_t)cat_nmigrations) {
        return vmc_error_set(err, -ENOTSUP, "catalog schema version %" PRId64
                             " is newer than this vm-clone (%u)", v,
                             cat_nmigrations);
    }
    /* First use: one process sets WAL and applies the migrations while
     * the others wait on the init lock. */
    if (asprintf(&lp, "%s/init.lock", cat->run_dir) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lp);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        r = vmc_error_set(err, -errno, "cannot lock the store: %s",
                          strerror(errno));
        goto out;
    }
    rc = sqlite3_exec(cat->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        r = cat_sql_error(cat, rc, err, "journal_mode=WAL");
        goto out;
    }
    r = cat_begin(cat, err);
    if (r < 0) {
        goto out;
    }
    r = cat_get_i64(cat, &v, err, "PRAGMA user_version", NULL);
    version = v;
    for (i = (unsigned)version; r == 0 && i < cat_nmigrations; i++) {
        rc = sqlite3_exec(cat->db, cat_migrations[i], NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            r = vmc_error_set(err, -EIO, "catalog migration %u: %s", i + 1,
                              msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
        }
    }
    if (r == 0 && version == 0) {
        r = add_default_pool(cat, "primary", "primary", err);
        if (r == 0) {
            r = add_default_pool(cat, "secondary", "secondary", err);
        }
    }
    if (r == 0 && version < cat_nmigrations) {
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %u",
                 cat_nmigrations);
        rc = sqlite3_exec(cat->db, pragma, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            r = cat_sql_error(cat, rc, err, "user_version");
        }
    }
    if (r == 0) {
        r = cat_commit(cat, err);
    } else {
        cat_rollback(cat);
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    return r;
}

int
vmc_catalog_open(struct vmc_catalog **out, const char *home, unsigned flags,
                 struct vmc_error *err)
{
    struct vmc_catalog *cat = calloc(1, sizeof(*cat));
    char *dir = NULL, *lp = NULL, *db = NULL;
    int r, rc;

    if (!cat) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    cat->maint_fd = -1;
    r = vmc_catalog_home(home, &dir);
    if (r < 0) {
        r = vmc_error_set(err, r, "out of memory");
        goto fail;
    }
    r = mkdir_p(dir, err);
    if (r < 0) {
        goto fail;
    }
    cat->home = realpath(dir, NULL);
    if (!cat->home) {
        r = vmc_error_set(err, -errno, "'%s': %s", dir, strerror(errno));
        goto fail;
    }
    if (asprintf(&cat->run_dir, "%s/run", cat->home) < 0 ||
        asprintf(&lp, "%s/maint.lock", cat->run_dir) < 0 ||
        asprintf(&db, "%s/catalog.db", cat->home) < 0) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    r = mkdir_p(cat->run_dir, err);
    if (r < 0) {
        goto fail;
    }
    cat->maint_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (cat->maint_fd < 0 ||
        flock(cat->maint_fd,
              (flags & VMC_CATALOG_EXCLUSIVE) ? LOCK_EX : LOCK_SH) < 0) {
        r = vmc_error_set(err, -errno, "cannot lock '%s': %s", lp,
                          strerror(errno));
        goto fail;
    }
    rc = sqlite3_open_v2(db, &cat->db, SQLITE_OPEN_READWRITE |
                         SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = vmc_error_set(err, rc == SQLITE_CANTOPEN ? -EACCES : -EIO,
                          "cannot open catalog '%s': %s", db,
                          cat->db ? sqlite3_errmsg(cat->db)
                                  : sqlite3_errstr(rc));
        goto fail;
    }
    cat_sql_set_busy_handler(cat);
    rc = sqlite3_exec(cat->db, "PRAGMA foreign_keys=ON; "
                      "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        r = cat_sql_error(cat, rc, err, "pragmas");
        goto fail;
    }
    r = migrate(cat, err);
    if (r < 0) {
        goto fail;
    }
    if (!(flags & VMC_CATALOG_NO_RECOVER)) {
        r = cat_recover_all(cat, NULL, err);
        if (r < 0) {
            goto fail;
        }
    }
    free(dir);
    free(lp);
    free(db);
    *out = cat;
    return 0;

fail:
    free(dir);
    free(lp);
    free(db);
    vmc_catalog_close(cat);
    return r;
}

void
vmc_catalog_close(struct vmc_catalog *cat)
{
    if (!cat) {
        return;
    }
    if (cat->db) {
        cat_rollback(cat);
        sqlite3_close(cat->db);
    }
    if (cat->maint_fd >= 0) {
        close(cat->maint_fd);
    }
    free(cat->run_dir);
    free(cat->home);
    free(cat);
}

const char *
vmc_catalog_dir(const struct vmc_catalog *cat)
{
    return cat->home;
}

/* -------------------------------------------------------------- query */

int
vmc_catalog_query(struct vmc_catalog *cat, const char *sql,
                  const char *const *params, size_t nparams,
                  vmc_catalog_row_fn fn, void *opaque, struct vmc_error *err)
{
    sqlite3_stmt *st = NULL;
    const char **vals = NULL, **names = NULL;
    size_t i;
    int rc, r = 0, ncols, c;

    rc = sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return cat_sql_error(cat, rc, err, "query");
    }
    if (!st || !sqlite3_stmt_readonly(st)) {
        sqlite3_finalize(st);
        return vmc_error_set(err, -EPERM, "catalog: only read-only queries "
                             "are allowed");
    }
    for (i = 0; i < nparams; i++) {
        sqlite3_bind_text(st, (int)i + 1, params[i], -1, SQLITE_TRANSIENT);
    }
    ncols = sqlite3_column_count(st);
    vals = calloc((size_t)ncols + 1, sizeof(*vals));
    names = calloc((size_t)ncols + 1, sizeof(*names));
    if (!vals || !names) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    for (c = 0; c < ncols; c++) {
        names[c] = sqlite3_column_name(st, c);
    }
    while ((r = cat_step(cat, st, err)) > 0) {
        for (c = 0; c < ncols; c++) {
            vals[c] = cat_col(st, c);
        }
        r = fn(ncols, names, vals, opaque);
        if (r) {
            break;
        }
    }
out:
    free(vals);
    free(names);
    sqlite3_finalize(st);
    return r;
}

/* ------------------------------------------------------------- config */

static bool
config_key_ok(const char *key)
{
    static const char *const keys[] = {
        "default-template", "default-pool", "max-chain-depth", NULL,
    };
    unsigned i;

    for (i = 0; keys[i]; i++) {
        if (!strcmp(keys[i], key)) {
            return true;
        }
    }
    return false;
}

int
vmc_catalog_config_get(struct vmc_catalog *cat, const char *key, char **out,
                       struct vmc_error *err)
{
    int r;

    if (!config_key_ok(key)) {
        return vmc_error_set(err, -EINVAL, "unknown configuration key '%s' "
                             "(default-template, default-pool, "
                             "max-chain-depth)", key);
    }
    r = cat_get_str(cat, out, err, "SELECT value FROM config WHERE key = ?",
                    "s", key);
    if (r == -ENOENT) {
        *out = NULL;
        r = 0;
    }
    return r;
}

int
vmc_catalog_config_set(struct vmc_catalog *cat, const char *key,
                       const char *value, struct vmc_error *err)
{
    int r;

    if (!config_key_ok(key)) {
        return vmc_error_set(err, -EINVAL, "unknown configuration key '%s' "
                             "(default-template, default-pool, "
                             "max-chain-depth)", key);
    }
    if (value && !strcmp(key, "max-chain-depth")) {
        char *end;
        long v = strtol(value, &end, 10);

        if (*end || v < 2 || v > 256) {
            return vmc_error_set(err, -EINVAL, "max-chain-depth must be a "
                                 "number from 2 to 256");
        }
    }
    r = cat_begin(cat, err);
    if (r < 0) {
        return r;
    }
    if (value) {
        r = cat_exec(cat, err, "INSERT INTO config(key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     "ss", key, value);
    } else {
        r = cat_exec(cat, err, "DELETE FROM config WHERE key = ?", "s", key);
    }
    if (r == 0) {
        return cat_commit(cat, err);
    }
    cat_rollback(cat);
    return r;
}

/* -------------------------------------------------------------- pools */

int
vmc_catalog_pool_add(struct vmc_catalog *cat, const char *name,
                     const char *path, const char *kind,
                     struct vmc_error *err)
{
    char *real = NULL;
    int r = cat_check_name("pool", name, err);

    if (r < 0) {
        return r;
    }
    if (strcmp(kind, "primary") && strcmp(kind, "secondary")) {
        return vmc_error_set(err, -EINVAL, "pool kind must be 'primary' or "
                             "'secondary', not '%s'", kind);
    }
    r = mkdir_p(path, err);
    if (r < 0) {
        return r;
    }
    real = realpath(path, NULL);
    if (!real) {
        return vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    r = cat_begin(cat, err);
    if (r == 0) {
        r = cat_exec(cat, err, "INSERT INTO pools(name, kind, path, created) "
                     "VALUES (?, ?, ?, ?)", "sssd", name, kind, real,
                     cat_now());
        if (r == -EEXIST) {
            r = vmc_error_set(err, r, "a pool named '%s' or at '%s' already "
                              "exists", name, real);
        }
        if (r == 0) {
            r = cat_commit(cat, err);
        } else {
            cat_rollback(cat);
        }
    }
    free(real);
    return r;
}

int
vmc_catalog_pool_rm(struct vmc_catalog *cat, const char *name,
                    struct vmc_error *err)
{
    int64_t pid = 0, n = 0;
    int r = cat_begin(cat, err);

    if (r < 0) {
        return r;
    }
    r = cat_get_i64(cat, &pid, err, "SELECT id FROM pools WHERE name = ?",
                    "s", name);
    if (r == -ENOENT) {
        r = vmc_error_set(err, r, "no pool named '%s'", name);
    }
    if (r == 0) {
        r = cat_get_i64(cat, &n, err, "SELECT (SELECT count(*) FROM volumes "
                        "WHERE pool_id = ?1) + (SELECT count(*) FROM vms "
                        "WHERE pool_id = ?1) + (SELECT count(*) FROM "
                        "templates WHERE pool_id = ?1) + (SELECT count(*) "
                        "FROM template_copies WHERE pool_id = ?1)", "I", pid);
    }
    if (r == 0 && n > 0) {
        r = vmc_error_set(err, -EBUSY, "pool '%s' is not empty (%" PRId64
                          " objects)", name, n);
    }
    if (r == 0) {
        r = cat_exec(cat, err, "DELETE FROM pools WHERE id = ?", "I", pid);
    }
    if (r == 0) {
        return cat_commit(cat, err);
    }
    cat_rollback(cat);
    return r;
}

void
vmc_catalog_strv_free(char **v, size_t n)
{
    size_t i;

    if (!v) {
        return;
    }
    for (i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}
