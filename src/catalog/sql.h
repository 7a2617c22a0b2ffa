/*
 * sql.h - the catalog's SQL helpers (sql.c), the one place feature files
 * reach the database through. Statements are opaque cat_stmt handles.
 * Two backends sit behind them: SQLite (sql.c) and PostgreSQL (sql-pg.c,
 * built when libpq is found). Write SQL both accept; a statement that
 * ends in " FOR UPDATE" or " FOR SHARE" takes those row locks on
 * PostgreSQL and runs without the clause on SQLite, where BEGIN
 * IMMEDIATE already serialises every writer.
 */
#ifndef VMC_CATALOG_SQL_H
#define VMC_CATALOG_SQL_H

#include <stdarg.h>
#include <stdint.h>

#include "vmclone.h"

#include <stdbool.h>

struct vmc_catalog;
typedef struct cat_stmt cat_stmt;

/*
 * Binding formats for the helpers: one letter per '?' in order:
 *   s  const char *  (NULL binds SQL NULL)
 *   i  int
 *   I  int64_t
 *   d  double
 */
int cat_prepare(struct vmc_catalog *cat, cat_stmt **out,
                struct vmc_error *err, const char *sql, const char *fmt, ...);
/* Prepare @sql with ?1..?@n bound to the texts @params. */
int cat_prepare_texts(struct vmc_catalog *cat, cat_stmt **out,
                      struct vmc_error *err, const char *sql,
                      const char *const *params, size_t n);
/* Run a statement that returns no rows. */
int cat_exec(struct vmc_catalog *cat, struct vmc_error *err,
             const char *sql, const char *fmt, ...);
int cat_vexec(struct vmc_catalog *cat, struct vmc_error *err,
              const char *sql, const char *fmt, va_list ap);
/* First column of the first row; -ENOENT without a row. */
int cat_get_i64(struct vmc_catalog *cat, int64_t *out, struct vmc_error *err,
                const char *sql, const char *fmt, ...);
int cat_get_str(struct vmc_catalog *cat, char **out, struct vmc_error *err,
                const char *sql, const char *fmt, ...);
/* -errno for an SQLite result code, with a message. */
int cat_sql_error(struct vmc_catalog *cat, int rc, struct vmc_error *err,
                  const char *what);
/* Step to completion (SQLITE_DONE) or the next row: 1 = row, 0 = done. */
int cat_step(struct vmc_catalog *cat, cat_stmt *st,
             struct vmc_error *err);
int cat_begin(struct vmc_catalog *cat, struct vmc_error *err);
int cat_commit(struct vmc_catalog *cat, struct vmc_error *err);
void cat_rollback(struct vmc_catalog *cat);
int64_t cat_last_id(struct vmc_catalog *cat);
double cat_now(void);
const char *cat_col(cat_stmt *st, int i);

/* Columns of the current row (@i from 0). */
int64_t cat_col_i64(cat_stmt *st, int i);
int cat_col_int(cat_stmt *st, int i);
/* Release a statement (NULL is fine). */
void cat_finalize(cat_stmt *st);
/* Rows changed by the last INSERT, UPDATE or DELETE. */
int cat_changes(struct vmc_catalog *cat);
/* Columns of a statement's rows, and their names. */
int cat_col_count(cat_stmt *st);
const char *cat_col_name(cat_stmt *st, int i);

/* ------------------------------------------------- backends (open.c) */

/* Connect @cat to SQLite file @path, or with @conninfo (a libpq URI or
 * key=value string) to PostgreSQL. -ENOTSUP for PostgreSQL when built
 * without libpq. */
int cat_sql_open(struct vmc_catalog *cat, const char *path,
                 const char *conninfo, struct vmc_error *err);
void cat_sql_close(struct vmc_catalog *cat);
bool cat_sql_is_pg(const struct vmc_catalog *cat);
/* Run the statements of @script (a migration), inside no result. */
int cat_sql_script(struct vmc_catalog *cat, const char *script,
                   struct vmc_error *err);
/* Store-wide settings made once before the first migration (SQLite:
 * WAL mode). */
int cat_sql_first_use(struct vmc_catalog *cat, struct vmc_error *err);
/* How many migrations the catalog has had, and setting it (inside the
 * migration's transaction). */
int cat_schema_version(struct vmc_catalog *cat, int64_t *v,
                       struct vmc_error *err);
int cat_set_schema_version(struct vmc_catalog *cat, unsigned v,
                           struct vmc_error *err);

/* Locks that die with their owner, across hosts (PostgreSQL session
 * advisory locks; SQLite stores use flock files instead). The keys: */
#define CAT_LOCK_MAINT    0x766d6300000001ll   /* the maintenance lock */
#define CAT_LOCK_INIT     0x766d6300000002ll   /* first use (migrations) */
#define CAT_LOCK_JOURNAL(jid) (0x766d6400000000ll + (jid))
enum cat_lock_mode {
    CAT_LOCK_TRY,            /* exclusive, do not wait */
    CAT_LOCK_WAIT,           /* exclusive, wait */
    CAT_LOCK_SHARED,         /* shared, wait */
    CAT_LOCK_XACT,           /* exclusive until the transaction ends */
};
/* 1 taken, 0 held by another session (CAT_LOCK_TRY), -errno. */
int cat_lock_key(struct vmc_catalog *cat, int64_t key,
                 enum cat_lock_mode mode, struct vmc_error *err);
void cat_unlock_key(struct vmc_catalog *cat, int64_t key, bool shared);

#endif /* VMC_CATALOG_SQL_H */
