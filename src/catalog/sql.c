/*
 * sql.c - the catalog's SQL helpers: prepare with printf-like binding,
 * step, exec, one-value queries, columns, transactions (BEGIN IMMEDIATE
 * with a busy handler) and SQLite result codes as -errno. A leaf: it
 * calls nothing else in src/catalog. Feature files reach the database
 * only through these functions; each one runs on SQLite here or hands
 * over to the PostgreSQL backend (sql-pg.c) when the store uses it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sql-backend.h"

double
cat_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool
cat_sql_is_pg(const struct vmc_catalog *cat)
{
    return cat->pg != NULL;
}

const char *
cat_col(cat_stmt *st, int i)
{
#ifdef VMC_HAVE_LIBPQ
    if (!st->lite) {
        return cat_pg_col(st, i);
    }
#endif
    return (const char *)sqlite3_column_text(st->lite, i);
}

int64_t
cat_col_i64(cat_stmt *st, int i)
{
    const char *s;

    if (st->lite) {
        return sqlite3_column_int64(st->lite, i);
    }
    s = cat_col(st, i);
    return s ? strtoll(s, NULL, 10) : 0;
}

int
cat_col_int(cat_stmt *st, int i)
{
    return (int)cat_col_i64(st, i);
}

int
cat_col_count(cat_stmt *st)
{
#ifdef VMC_HAVE_LIBPQ
    if (!st->lite) {
        return cat_pg_col_count(st);
    }
#endif
    return sqlite3_column_count(st->lite);
}

const char *
cat_col_name(cat_stmt *st, int i)
{
#ifdef VMC_HAVE_LIBPQ
    if (!st->lite) {
        return cat_pg_col_name(st, i);
    }
#endif
    return sqlite3_column_name(st->lite, i);
}

void
cat_finalize(cat_stmt *st)
{
    if (!st) {
        return;
    }
#ifdef VMC_HAVE_LIBPQ
    cat_pg_finalize(st);
#endif
    sqlite3_finalize(st->lite);
    free(st);
}

int
cat_changes(struct vmc_catalog *cat)
{
#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        return cat_pg_changes(cat);
    }
#endif
    return sqlite3_changes(cat->db);
}

int
cat_refused(enum cat_refusal kind, struct vmc_error *err, const char *what)
{
    switch (kind) {
    case CAT_REFUSED_GONE:
        return vmc_error_set(err, -EBUSY, "catalog: %s refused: an object "
                             "this operation uses was removed or changed by "
                             "another operation meanwhile (try again)",
                             what);
    case CAT_REFUSED_EXISTS:
        return vmc_error_set(err, -EEXIST, "catalog: %s refused: an object "
                             "of that name or key already exists", what);
    default:
        return vmc_error_set(err, -EINVAL, "catalog: %s refused: a value "
                             "breaks the catalog's rules", what);
    }
}

int
cat_busy_error(struct vmc_error *err, const char *what)
{
    return vmc_error_set(err, -EBUSY, "catalog: %s: the catalog stayed "
                         "locked by other processes for too long (try "
                         "again)", what);
}

/* A constraint the database enforced, said in the catalog's words: under
 * concurrency a foreign key fails when another operation removed a row
 * this one refers to (issue 9 finding 1), which is a conflict to retry,
 * not an SQL error to show. */
static int
constraint_error(int xrc, struct vmc_error *err, const char *what)
{
    switch (xrc) {
    case SQLITE_CONSTRAINT_FOREIGNKEY:
    case SQLITE_CONSTRAINT_TRIGGER:
        return cat_refused(CAT_REFUSED_GONE, err, what);
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return cat_refused(CAT_REFUSED_EXISTS, err, what);
    default:
        return cat_refused(CAT_REFUSED_RULE, err, what);
    }
}

int
cat_sql_error(struct vmc_catalog *cat, int rc, struct vmc_error *err,
              const char *what)
{
    int code = -EIO;

    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return cat_busy_error(err, what);
    case SQLITE_CONSTRAINT:
        return constraint_error(cat && cat->db
                                ? sqlite3_extended_errcode(cat->db) : rc,
                                err, what);
    case SQLITE_NOMEM:
        code = -ENOMEM;
        break;
    case SQLITE_FULL:
        code = -ENOSPC;
        break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
        code = -EACCES;
        break;
    default:
        break;
    }
    return vmc_error_set(err, code, "catalog: %s: %s", what,
                         cat && cat->db ? sqlite3_errmsg(cat->db)
                                        : sqlite3_errstr(rc));
}

static int
bind_args(struct sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int i, rc = SQLITE_OK;

    for (i = 0; fmt && fmt[i] && rc == SQLITE_OK; i++) {
        switch (fmt[i]) {
        case 's': {
            const char *s = va_arg(ap, const char *);

            rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st, i + 1);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int));
            break;
        case 'I':
            rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
            break;
        case 'd':
            rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double));
            break;
        default:
            return SQLITE_MISUSE;
        }
    }
    return rc;
}

/* Length of @sql without a final " FOR UPDATE" or " FOR SHARE" (row
 * locks SQLite has no syntax for; its BEGIN IMMEDIATE covers them). */
static int
sqlite_length(const char *sql)
{
    static const char *const tails[] = { " FOR UPDATE", " FOR SHARE" };
    size_t n = strlen(sql), i, t;

    for (i = 0; i < 2; i++) {
        t = strlen(tails[i]);
        if (n > t && !strcmp(sql + n - t, tails[i])) {
            return (int)(n - t);
        }
    }
    return (int)n;
}

static int
vprepare(struct vmc_catalog *cat, cat_stmt **out, struct vmc_error *err,
         const char *sql, const char *fmt, va_list ap)
{
    cat_stmt *st = calloc(1, sizeof(*st));
    int rc;

    if (!st) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    st->cat = cat;
#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        int r = cat_pg_prepare(cat, st, sql, fmt, ap, err);

        if (r < 0) {
            cat_finalize(st);
            return r;
        }
        *out = st;
        return 0;
    }
#endif
    rc = sqlite3_prepare_v2(cat->db, sql, sqlite_length(sql), &st->lite,
                            NULL);
    if (rc == SQLITE_OK) {
        rc = bind_args(st->lite, fmt, ap);
    }
    if (rc != SQLITE_OK) {
        int r = cat_sql_error(cat, rc, err, "prepare");

        cat_finalize(st);
        return r;
    }
    *out = st;
    return 0;
}

int
cat_prepare(struct vmc_catalog *cat, cat_stmt **out,
            struct vmc_error *err, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vprepare(cat, out, err, sql, fmt, ap);
    va_end(ap);
    return r;
}

int
cat_prepare_texts(struct vmc_catalog *cat, cat_stmt **out,
                  struct vmc_error *err, const char *sql,
                  const char *const *params, size_t n)
{
    int r = cat_prepare(cat, out, err, sql, NULL);
    size_t i;

    for (i = 0; r == 0 && i < n; i++) {
#ifdef VMC_HAVE_LIBPQ
        if (!(*out)->lite) {
            r = cat_pg_bind_text(*out, (int)i, params[i]);
            continue;
        }
#endif
        r = sqlite3_bind_text((*out)->lite, (int)i + 1, params[i], -1,
                              SQLITE_TRANSIENT) == SQLITE_OK ? 0 : -EINVAL;
    }
    if (r < 0) {
        cat_finalize(*out);
        *out = NULL;
        return vmc_error_set(err, r, "catalog: cannot bind %zu values", n);
    }
    return 0;
}

int
cat_step(struct vmc_catalog *cat, cat_stmt *st, struct vmc_error *err)
{
    int rc;

#ifdef VMC_HAVE_LIBPQ
    if (!st->lite) {
        return cat_pg_step(st, err);
    }
#endif
    rc = sqlite3_step(st->lite);

    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return cat_sql_error(cat, rc, err, "statement");
}

int
cat_vexec(struct vmc_catalog *cat, struct vmc_error *err, const char *sql,
          const char *fmt, va_list ap)
{
    cat_stmt *st = NULL;
    int r = vprepare(cat, &st, err, sql, fmt, ap);

    if (r < 0) {
        return r;
    }
    while ((r = cat_step(cat, st, err)) > 0) {
    }
    cat_finalize(st);
    return r;
}

int
cat_exec(struct vmc_catalog *cat, struct vmc_error *err, const char *sql,
         const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = cat_vexec(cat, err, sql, fmt, ap);
    va_end(ap);
    return r;
}

/* Prepare @sql and step to its first row: 0 with the statement on that
 * row, -ENOENT without a row (the statement is then released). */
static int
first_row(struct vmc_catalog *cat, cat_stmt **st, struct vmc_error *err,
          const char *sql, const char *fmt, va_list ap)
{
    int r = vprepare(cat, st, err, sql, fmt, ap);

    if (r < 0) {
        return r;
    }
    r = cat_step(cat, *st, err);
    if (r <= 0) {
        cat_finalize(*st);
        *st = NULL;
        return r == 0 ? -ENOENT : r;
    }
    return 0;
}

int
cat_get_i64(struct vmc_catalog *cat, int64_t *out, struct vmc_error *err,
            const char *sql, const char *fmt, ...)
{
    cat_stmt *st = NULL;
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = first_row(cat, &st, err, sql, fmt, ap);
    va_end(ap);
    if (r < 0) {
        return r;
    }
    *out = cat_col_i64(st, 0);
    cat_finalize(st);
    return 0;
}

int
cat_get_str(struct vmc_catalog *cat, char **out, struct vmc_error *err,
            const char *sql, const char *fmt, ...)
{
    cat_stmt *st = NULL;
    const char *s;
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = first_row(cat, &st, err, sql, fmt, ap);
    va_end(ap);
    if (r == 0) {
        s = cat_col(st, 0);
        *out = s ? strdup(s) : NULL;
        r = (s && !*out) ? -ENOMEM : 0;
        cat_finalize(st);
    }
    return r;
}

int64_t
cat_last_id(struct vmc_catalog *cat)
{
#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        return cat_pg_last_id(cat);
    }
#endif
    return sqlite3_last_insert_rowid(cat->db);
}

/*
 * Wait for a lock held by another process. SQLite's own busy_timeout
 * handler sleeps 1, 2, 5, 10 ... 100 ms between tries, so a writer that
 * queues behind 50 others idles far longer than the others hold the lock
 * (a clone's transaction takes well under a millisecond). This one polls
 * every 0.2-2 ms, with jitter so that waiters do not wake in lock step,
 * and gives up after BUSY_LIMIT_NS.
 */
#define BUSY_LIMIT_NS (10ll * 1000000000)

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
busy_wait(void *arg, int count)
{
    struct vmc_catalog *cat = arg;
    struct timespec ts = { 0 };
    long us;

    if (count == 0) {
        cat->busy_since = now_ns();
    } else if (now_ns() - cat->busy_since > BUSY_LIMIT_NS) {
        return 0;
    }
    us = 200L << (count < 3 ? count : 3);             /* 0.2 .. 1.6 ms */
    us += (long)(((unsigned)rand_r(&cat->busy_seed)) % 400);
    ts.tv_nsec = us * 1000;
    nanosleep(&ts, NULL);
    return 1;
}

int
cat_begin(struct vmc_catalog *cat, struct vmc_error *err)
{
    int rc, tries;

#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        /* READ COMMITTED: each statement sees what others committed
         * before it, which the row locks of the callers rely on */
        rc = cat_pg_simple(cat, "BEGIN", err);
        cat->in_txn = rc == 0;
        return rc;
    }
#endif

    /* busy_wait covers the wait for the write lock; retry a few times
     * more in case a storm of writers outlasts it. */
    for (tries = 0; tries < 6; tries++) {
        rc = sqlite3_exec(cat->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_BUSY) {
            break;
        }
    }
    if (rc != SQLITE_OK) {
        return cat_sql_error(cat, rc, err, "begin");
    }
    cat->in_txn = true;
    return 0;
}

int
cat_commit(struct vmc_catalog *cat, struct vmc_error *err)
{
    int rc;

#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        rc = cat_pg_simple(cat, "COMMIT", err);
        if (rc < 0) {
            cat_rollback(cat);
        }
        cat->in_txn = false;
        return rc;
    }
#endif
    rc = sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL);

    if (rc != SQLITE_OK) {
        int r = cat_sql_error(cat, rc, err, "commit");

        cat_rollback(cat);
        return r;
    }
    cat->in_txn = false;
    return 0;
}

void
cat_rollback(struct vmc_catalog *cat)
{
#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        if (cat->in_txn || cat_pg_in_txn(cat)) {
            cat_pg_simple(cat, "ROLLBACK", NULL);
        }
        cat->in_txn = false;
        return;
    }
#endif
    if (cat->in_txn || !sqlite3_get_autocommit(cat->db)) {
        sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
    }
    cat->in_txn = false;
}

/* ----------------------------------------------------------- backends */

/* SQLite settings (see open.c): foreign keys on, durable commits, and
 * the busy handler above. */
static int
sqlite_open(struct vmc_catalog *cat, const char *path, struct vmc_error *err)
{
    int rc = sqlite3_open_v2(path, &cat->db, SQLITE_OPEN_READWRITE |
                             SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK) {
        return vmc_error_set(err, rc == SQLITE_CANTOPEN ? -EACCES : -EIO,
                             "cannot open catalog '%s': %s", path,
                             cat->db ? sqlite3_errmsg(cat->db)
                                     : sqlite3_errstr(rc));
    }
    cat->busy_seed = (unsigned)getpid() ^ (unsigned)now_ns();
    sqlite3_busy_handler(cat->db, busy_wait, cat);
    rc = sqlite3_exec(cat->db, "PRAGMA foreign_keys=ON; "
                      "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : cat_sql_error(cat, rc, err, "pragmas");
}

int
cat_sql_open(struct vmc_catalog *cat, const char *path, const char *conninfo,
             struct vmc_error *err)
{
    if (!conninfo) {
        return sqlite_open(cat, path, err);
    }
#ifdef VMC_HAVE_LIBPQ
    return cat_pg_connect(cat, conninfo, err);
#else
    return vmc_error_set(err, -ENOTSUP, "this vm-clone was built without "
                         "PostgreSQL support (libpq)");
#endif
}

void
cat_sql_close(struct vmc_catalog *cat)
{
#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        cat_pg_close(cat);
        return;
    }
#endif
    if (cat->db) {
        sqlite3_close(cat->db);
        cat->db = NULL;
    }
}

int
cat_sql_script(struct vmc_catalog *cat, const char *script,
               struct vmc_error *err)
{
    char *msg = NULL;
    int rc;

#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        return cat_pg_simple(cat, script, err);
    }
#endif
    rc = sqlite3_exec(cat->db, script, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        rc = vmc_error_set(err, -EIO, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int
cat_sql_first_use(struct vmc_catalog *cat, struct vmc_error *err)
{
    int rc;

    if (cat->pg) {
        return 0;
    }
    rc = sqlite3_exec(cat->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0
                           : cat_sql_error(cat, rc, err, "journal_mode=WAL");
}

int
cat_schema_version(struct vmc_catalog *cat, int64_t *v, struct vmc_error *err)
{
#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        return cat_pg_schema_version(cat, v, err);
    }
#endif
    return cat_get_i64(cat, v, err, "PRAGMA user_version", NULL);
}

int
cat_set_schema_version(struct vmc_catalog *cat, unsigned v,
                       struct vmc_error *err)
{
    char pragma[64];

#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        return cat_pg_set_schema_version(cat, v, err);
    }
#endif
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %u", v);
    return cat_sql_script(cat, pragma, err);
}

int
cat_lock_key(struct vmc_catalog *cat, int64_t key, enum cat_lock_mode mode,
             struct vmc_error *err)
{
#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        return cat_pg_lock(cat, key, mode, err);
    }
#endif
    (void)key;
    (void)mode;
    return vmc_error_set(err, -ENOTSUP, "catalog: session locks need "
                         "PostgreSQL");
}

void
cat_unlock_key(struct vmc_catalog *cat, int64_t key, bool shared)
{
#ifdef VMC_HAVE_LIBPQ
    if (cat->pg) {
        cat_pg_unlock(cat, key, shared);
    }
#endif
    (void)cat;
    (void)key;
    (void)shared;
}
