/*
 * sql.h - the catalog's SQL helpers (sql.c), the one place feature files
 * reach the database through. Statements are opaque cat_stmt handles.
 */
#ifndef VMC_CATALOG_SQL_H
#define VMC_CATALOG_SQL_H

#include <stdarg.h>
#include <stdint.h>

#include "vmclone.h"

struct vmc_catalog;
struct sqlite3_stmt;
typedef struct sqlite3_stmt cat_stmt;

/*
 * Binding formats for the helpers: one letter per '?' in order:
 *   s  const char *  (NULL binds SQL NULL)
 *   i  int
 *   I  int64_t
 *   d  double
 */
int cat_prepare(struct vmc_catalog *cat, cat_stmt **out,
                struct vmc_error *err, const char *sql, const char *fmt, ...);
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
/* Install the busy handler on a newly opened database (at open). */
void cat_sql_set_busy_handler(struct vmc_catalog *cat);

#endif /* VMC_CATALOG_SQL_H */
