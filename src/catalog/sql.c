/*
 * sql.c - the catalog's SQL helpers: prepare with printf-like binding,
 * step, exec, one-value queries, columns, transactions (BEGIN IMMEDIATE
 * with a busy handler) and SQLite result codes as -errno. A leaf: it
 * calls nothing else in src/catalog. Feature files reach SQLite only
 * through these functions, so a second backend plugs in here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "catalog-internal.h"

double
cat_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *
cat_col(cat_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

int64_t
cat_col_i64(cat_stmt *st, int i)
{
    return sqlite3_column_int64(st, i);
}

int
cat_col_int(cat_stmt *st, int i)
{
    return sqlite3_column_int(st, i);
}

void
cat_finalize(cat_stmt *st)
{
    sqlite3_finalize(st);
}

int
cat_changes(struct vmc_catalog *cat)
{
    return sqlite3_changes(cat->db);
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
        return vmc_error_set(err, -EBUSY, "catalog: %s refused: an object "
                             "this operation uses was removed or changed by "
                             "another operation meanwhile (try again)",
                             what);
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return vmc_error_set(err, -EEXIST, "catalog: %s refused: an object "
                             "of that name or key already exists", what);
    default:
        return vmc_error_set(err, -EINVAL, "catalog: %s refused: a value "
                             "breaks the catalog's rules", what);
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
        return vmc_error_set(err, -EBUSY, "catalog: %s: the catalog stayed "
                             "locked by other processes for too long (try "
                             "again)", what);
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
bind_args(cat_stmt *st, const char *fmt, va_list ap)
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

static int
vprepare(struct vmc_catalog *cat, cat_stmt **out, struct vmc_error *err,
         const char *sql, const char *fmt, va_list ap)
{
    cat_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        rc = bind_args(st, fmt, ap);
    }
    if (rc != SQLITE_OK) {
        int r = cat_sql_error(cat, rc, err, "prepare");

        sqlite3_finalize(st);
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
cat_step(struct vmc_catalog *cat, cat_stmt *st, struct vmc_error *err)
{
    int rc = sqlite3_step(st);

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
    sqlite3_finalize(st);
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
        sqlite3_finalize(*st);
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
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
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
        sqlite3_finalize(st);
    }
    return r;
}

int64_t
cat_last_id(struct vmc_catalog *cat)
{
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
    int rc = sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL);

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
    if (cat->in_txn || !sqlite3_get_autocommit(cat->db)) {
        sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
    }
    cat->in_txn = false;
}

void
cat_sql_set_busy_handler(struct vmc_catalog *cat)
{
    cat->busy_seed = (unsigned)getpid() ^ (unsigned)now_ns();
    sqlite3_busy_handler(cat->db, busy_wait, cat);
}
