/*
 * sql-pg.c - the catalog's PostgreSQL backend (libpq): the cat_* helpers
 * of sql.h for a store whose catalog.conf names a PostgreSQL database.
 * Statements keep the catalog's SQL: '?' and '?N' become $n, values are
 * sent as text with int8/float8 types, rows come back as text. SQLSTATEs
 * become the -errno and words SQLite's result codes give (sql.c), the
 * last inserted id is the session's lastval() (every id column is an
 * identity column), and locks that must die with their owner are
 * session advisory locks. Built only when libpq is found.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pq-dl.h"
#include "sql-backend.h"

#define OID_BOOL   16
#define OID_INT8   20
#define OID_FLOAT8 701

struct cat_pg {
    PGconn *conn;
    int changes;            /* rows of the last INSERT/UPDATE/DELETE */
};

/* Session settings: a client that dies mid-statement frees its locks
 * within a second; statements wait for row locks as SQLite waited for
 * its write lock (10 s), then give up with -EBUSY. */
static const char session_setup[] =
    "SET client_connection_check_interval = '1s'; "
    "SET lock_timeout = '10s'; SET client_min_messages = 'warning'";

/* --------------------------------------------------------------- errors */

static int
pg_error(struct vmc_catalog *cat, const PGresult *res, struct vmc_error *err,
         const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                            : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    char text[512];
    size_t n;

    if (!msg || !*msg) {
        msg = PQerrorMessage(cat->pg->conn);
    }
    snprintf(text, sizeof(text), "%s", msg ? msg : "unknown error");
    n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' ')) {
        text[--n] = '\0';
    }
    if (!state) {
        return vmc_error_set(err, -EIO, "catalog: %s: %s", what, text);
    }
    if (!strcmp(state, "23503")) {
        return cat_refused(CAT_REFUSED_GONE, err, what);
    }
    if (!strcmp(state, "23505")) {
        return cat_refused(CAT_REFUSED_EXISTS, err, what);
    }
    if (!strncmp(state, "23", 2)) {
        return cat_refused(CAT_REFUSED_RULE, err, what);
    }
    if (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
        !strcmp(state, "55P03") || !strcmp(state, "57014")) {
        return cat_busy_error(err, what);
    }
    if (!strcmp(state, "53100")) {
        return vmc_error_set(err, -ENOSPC, "catalog: %s: %s", what, text);
    }
    if (!strcmp(state, "53200")) {
        return vmc_error_set(err, -ENOMEM, "catalog: %s: %s", what, text);
    }
    if (!strcmp(state, "42501") || !strncmp(state, "28", 2)) {
        return vmc_error_set(err, -EACCES, "catalog: %s: %s", what, text);
    }
    return vmc_error_set(err, -EIO, "catalog: %s: %s", what, text);
}

/* ------------------------------------------------------------ connection */

/* The server's notices (a ROLLBACK outside a transaction...) are not
 * the user's business: errors come back as results. */
static void
pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int
cat_pg_connect(struct vmc_catalog *cat, const char *conninfo,
               struct vmc_error *err)
{
    /* keepalives first: the store's conninfo may override them */
    static const char *const keys[] = {
        "keepalives", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "connect_timeout",
        "application_name", "dbname", NULL,
    };
    const char *values[] = { "1", "5", "2", "3", "10000", "10", "vm-clone",
                             conninfo, NULL };
    const char *unloadable = pq_dl_error();
    PGresult *res;

    if (unloadable) {
        return vmc_error_set(err, -ELIBACC, "the catalog is a PostgreSQL "
                             "database, and PostgreSQL's client library "
                             "cannot be loaded (%s): install libpq5",
                             unloadable);
    }
    cat->pg = calloc(1, sizeof(*cat->pg));
    if (!cat->pg) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    cat->pg->conn = PQconnectdbParams(keys, values, 1);
    if (!cat->pg->conn || PQstatus(cat->pg->conn) != CONNECTION_OK) {
        const char *m = cat->pg->conn ? PQerrorMessage(cat->pg->conn)
                                      : "out of memory";
        int r = vmc_error_set(err, -EIO, "cannot connect to the catalog "
                              "database: %.*s", (int)strcspn(m, "\n"), m);

        cat_pg_close(cat);
        return r;
    }
    PQsetNoticeProcessor(cat->pg->conn, pg_quiet, NULL);
    res = PQexec(cat->pg->conn, session_setup);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        int r = pg_error(cat, res, err, "session settings");

        PQclear(res);
        cat_pg_close(cat);
        return r;
    }
    PQclear(res);
    return 0;
}

void
cat_pg_close(struct vmc_catalog *cat)
{
    if (cat->pg) {
        PQfinish(cat->pg->conn);
        free(cat->pg);
        cat->pg = NULL;
    }
}

/* ------------------------------------------------------------ statements */

/* Statements PostgreSQL has no form of: fsck's SQLite checks. Its
 * pages are checked by the server and its foreign keys always hold. */
static const char *
pg_equivalent(const char *sql)
{
    if (!strcmp(sql, "PRAGMA integrity_check")) {
        return "SELECT 'ok'";
    }
    if (!strcmp(sql, "PRAGMA foreign_key_check")) {
        return "SELECT 1 WHERE FALSE";
    }
    return sql;
}

/* @sql with '?' as $1, $2... in order and '?N' as $N (outside quoted
 * strings); *n the highest parameter number. NULL: out of memory. */
static char *
pg_placeholders(const char *sql, int *n)
{
    size_t len = strlen(sql);
    char *out = malloc(len * 4 + 1), *o = out;
    bool quoted = false;
    int seq = 0;

    if (!out) {
        return NULL;
    }
    *n = 0;
    while (*sql) {
        char c = *sql++;

        if (c == '\'') {
            quoted = !quoted;
        }
        if (c != '?' || quoted) {
            *o++ = c;
            continue;
        }
        if (*sql >= '0' && *sql <= '9') {
            int k = (int)strtol(sql, (char **)&sql, 10);

            seq = k;
        } else {
            seq++;
        }
        o += sprintf(o, "$%d", seq);
        *n = seq > *n ? seq : *n;
    }
    *o = '\0';
    return out;
}

/* The value of one binding letter (sql.h) as text, with its type. */
static int
pg_bind_one(struct cat_stmt *st, int i, char letter, va_list *ap)
{
    char buf[64];
    const char *s;

    switch (letter) {
    case 's':
        s = va_arg(*ap, const char *);
        st->types[i] = 0;
        if (!s) {
            return 0;
        }
        st->values[i] = strdup(s);
        return st->values[i] ? 0 : -ENOMEM;
    case 'i':
        snprintf(buf, sizeof(buf), "%d", va_arg(*ap, int));
        st->types[i] = OID_INT8;
        break;
    case 'I':
        snprintf(buf, sizeof(buf), "%" PRId64, va_arg(*ap, int64_t));
        st->types[i] = OID_INT8;
        break;
    case 'd':
        snprintf(buf, sizeof(buf), "%.17g", va_arg(*ap, double));
        st->types[i] = OID_FLOAT8;
        break;
    default:
        return -EINVAL;
    }
    st->values[i] = strdup(buf);
    return st->values[i] ? 0 : -ENOMEM;
}

int
cat_pg_prepare(struct vmc_catalog *cat, struct cat_stmt *st, const char *sql,
               const char *fmt, va_list ap, struct vmc_error *err)
{
    int nfmt = fmt ? (int)strlen(fmt) : 0, n = 0, i, r = 0;
    va_list aq;

    (void)cat;
    st->pg_sql = pg_placeholders(pg_equivalent(sql), &n);
    st->nparams = nfmt > n ? nfmt : n;
    st->values = calloc((size_t)st->nparams + 1, sizeof(*st->values));
    st->types = calloc((size_t)st->nparams + 1, sizeof(*st->types));
    if (!st->pg_sql || !st->values || !st->types) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    va_copy(aq, ap);
    for (i = 0; i < nfmt && r == 0; i++) {
        r = pg_bind_one(st, i, fmt[i], &aq);
    }
    va_end(aq);
    if (r < 0) {
        return vmc_error_set(err, r, "catalog: prepare: bad binding '%s'",
                             fmt);
    }
    return 0;
}

int
cat_pg_bind_text(struct cat_stmt *st, int i, const char *s)
{
    if (i >= st->nparams) {
        return -EINVAL;
    }
    free(st->values[i]);
    st->values[i] = s ? strdup(s) : NULL;
    st->types[i] = 0;
    return s && !st->values[i] ? -ENOMEM : 0;
}

int
cat_pg_step(struct cat_stmt *st, struct vmc_error *err)
{
    struct cat_pg *pg = st->cat->pg;
    ExecStatusType status;

    if (!st->res) {
        st->res = PQexecParams(pg->conn, st->pg_sql, st->nparams,
                               st->types, (const char *const *)st->values,
                               NULL, NULL, 0);
        status = PQresultStatus(st->res);
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
            return pg_error(st->cat, st->res, err, "statement");
        }
        pg->changes = atoi(PQcmdTuples(st->res));
        st->nrows = PQntuples(st->res);
        st->row = -1;
    }
    if (st->row + 1 < st->nrows) {
        st->row++;
        return 1;
    }
    st->row = st->nrows;
    return 0;
}

void
cat_pg_finalize(struct cat_stmt *st)
{
    int i;

    if (st->res) {      /* a SQLite statement: libpq is never loaded */
        PQclear(st->res);
    }
    for (i = 0; st->values && i < st->nparams; i++) {
        free(st->values[i]);
    }
    free(st->values);
    free(st->types);
    free(st->pg_sql);
}

const char *
cat_pg_col(struct cat_stmt *st, int i)
{
    if (!st->res || st->row < 0 || st->row >= st->nrows ||
        i >= PQnfields(st->res) || PQgetisnull(st->res, st->row, i)) {
        return NULL;
    }
    /* a condition's value reads as SQLite's: 1 or 0, not t or f */
    if (PQftype(st->res, i) == OID_BOOL) {
        return *PQgetvalue(st->res, st->row, i) == 't' ? "1" : "0";
    }
    return PQgetvalue(st->res, st->row, i);
}

int
cat_pg_col_count(struct cat_stmt *st)
{
    if (!st->res) {
        /* the names come with the result: run the statement now (a
         * failure is reported by the next cat_step(), which runs it
         * again) */
        if (cat_pg_step(st, NULL) < 0) {
            PQclear(st->res);
            st->res = NULL;
            return 0;
        }
        st->row = -1;
    }
    return PQnfields(st->res);
}

const char *
cat_pg_col_name(struct cat_stmt *st, int i)
{
    return st->res ? PQfname(st->res, i) : NULL;
}

/* ---------------------------------------------------------------- simple */

bool
cat_pg_in_txn(struct vmc_catalog *cat)
{
    return PQtransactionStatus(cat->pg->conn) != PQTRANS_IDLE;
}

int
cat_pg_simple(struct vmc_catalog *cat, const char *sql,
              struct vmc_error *err)
{
    PGresult *res = PQexec(cat->pg->conn, sql);
    ExecStatusType status = PQresultStatus(res);
    int r = 0;

    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        r = pg_error(cat, res, err, sql);
    }
    PQclear(res);
    return r;
}

int
cat_pg_changes(struct vmc_catalog *cat)
{
    return cat->pg->changes;
}

int64_t
cat_pg_last_id(struct vmc_catalog *cat)
{
    int64_t id = 0;

    if (cat_get_i64(cat, &id, NULL, "SELECT lastval()", NULL) < 0) {
        return 0;
    }
    return id;
}

/* The schema version lives in vmclone_schema (made by migration 1). */
int
cat_pg_schema_version(struct vmc_catalog *cat, int64_t *v,
                      struct vmc_error *err)
{
    int64_t there = 0;
    /* to_regclass looks the name up as the next statement will (the
     * search path) in one catalog lookup; the pg_tables view costs a
     * fresh backend several milliseconds of planning at every start */
    int r = cat_get_i64(cat, &there, err, "SELECT CASE WHEN "
                        "to_regclass('vmclone_schema') IS NULL THEN 0 "
                        "ELSE 1 END", NULL);

    if (r < 0 || !there) {
        *v = 0;
        return r;
    }
    r = cat_get_i64(cat, v, err, "SELECT version FROM vmclone_schema",
                    NULL);
    if (r == -ENOENT) {
        *v = 0;
        r = 0;
    }
    return r;
}

int
cat_pg_set_schema_version(struct vmc_catalog *cat, unsigned v,
                          struct vmc_error *err)
{
    int r = cat_exec(cat, err, "DELETE FROM vmclone_schema", NULL);

    return r < 0 ? r : cat_exec(cat, err, "INSERT INTO vmclone_schema("
                                "version) VALUES (?)", "i", (int)v);
}

/* ----------------------------------------------------------------- locks */

int
cat_pg_lock(struct vmc_catalog *cat, int64_t key, enum cat_lock_mode mode,
            struct vmc_error *err)
{
    static const char *const sql[] = {
        [CAT_LOCK_TRY] = "SELECT pg_try_advisory_lock(?)::int",
        [CAT_LOCK_WAIT] = "SELECT 1 FROM (SELECT pg_advisory_lock(?)) x",
        [CAT_LOCK_SHARED] = "SELECT 1 FROM (SELECT "
                            "pg_advisory_lock_shared(?)) x",
        [CAT_LOCK_XACT] = "SELECT 1 FROM (SELECT "
                          "pg_advisory_xact_lock(?)) x",
    };
    int64_t got = 0;
    int r;

    /* a session may wait for another's lock as long as it takes (a
     * template copy), not the lock_timeout of row locks */
    if (mode != CAT_LOCK_TRY) {
        r = cat_pg_simple(cat, "SET lock_timeout = 0", err);
        if (r < 0) {
            return r;
        }
    }
    r = cat_get_i64(cat, &got, err, sql[mode], "I", key);
    if (mode != CAT_LOCK_TRY) {
        cat_pg_simple(cat, "SET lock_timeout = '10s'", NULL);
    }
    return r < 0 ? r : got == 1;
}

void
cat_pg_unlock(struct vmc_catalog *cat, int64_t key, bool shared)
{
    cat_exec(cat, NULL, shared ? "SELECT pg_advisory_unlock_shared(?)"
                               : "SELECT pg_advisory_unlock(?)", "I", key);
}
