/*
 * sql-backend.h - what sql.c (the SQLite side and the dispatch) shares
 * with sql-pg.c (the PostgreSQL side): the statement handle and the
 * functions of the PostgreSQL backend. Only those two files include it.
 */
#ifndef VMC_CATALOG_SQL_BACKEND_H
#define VMC_CATALOG_SQL_BACKEND_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog-internal.h"

struct sqlite3_stmt;
struct pg_result;

/* One statement: an SQLite statement, or (PostgreSQL) the translated
 * text and bound values, run at the first step, with its result rows. */
struct cat_stmt {
    struct vmc_catalog *cat;
    struct sqlite3_stmt *lite;
    char *pg_sql;            /* '?' placeholders as $n */
    int nparams;
    char **values;           /* bound values as text (NULL = SQL NULL) */
    unsigned *types;         /* their type oids (0: let the server infer) */
    struct pg_result *res;   /* after the first step */
    int row, nrows;
};

/* How a refused write reads in the catalog's words (both backends). */
enum cat_refusal {
    CAT_REFUSED_GONE,        /* a row it refers to went away meanwhile */
    CAT_REFUSED_EXISTS,      /* a unique key is taken */
    CAT_REFUSED_RULE,        /* a CHECK or NOT NULL */
};
int cat_refused(enum cat_refusal kind, struct vmc_error *err,
                const char *what);
int cat_busy_error(struct vmc_error *err, const char *what);

#ifdef VMC_HAVE_LIBPQ
int cat_pg_connect(struct vmc_catalog *cat, const char *conninfo,
                   struct vmc_error *err);
void cat_pg_close(struct vmc_catalog *cat);
int cat_pg_prepare(struct vmc_catalog *cat, struct cat_stmt *st,
                   const char *sql, const char *fmt, va_list ap,
                   struct vmc_error *err);
/* Bind text @s (NULL: SQL NULL) to parameter @i (from 0). */
int cat_pg_bind_text(struct cat_stmt *st, int i, const char *s);
int cat_pg_step(struct cat_stmt *st, struct vmc_error *err);
void cat_pg_finalize(struct cat_stmt *st);
const char *cat_pg_col(struct cat_stmt *st, int i);
int cat_pg_col_count(struct cat_stmt *st);
const char *cat_pg_col_name(struct cat_stmt *st, int i);
int cat_pg_simple(struct vmc_catalog *cat, const char *sql,
                  struct vmc_error *err);
bool cat_pg_in_txn(struct vmc_catalog *cat);
int cat_pg_changes(struct vmc_catalog *cat);
int64_t cat_pg_last_id(struct vmc_catalog *cat);
int cat_pg_schema_version(struct vmc_catalog *cat, int64_t *v,
                          struct vmc_error *err);
int cat_pg_set_schema_version(struct vmc_catalog *cat, unsigned v,
                              struct vmc_error *err);
int cat_pg_lock(struct vmc_catalog *cat, int64_t key, enum cat_lock_mode m,
                struct vmc_error *err);
void cat_pg_unlock(struct vmc_catalog *cat, int64_t key, bool shared);
#endif

#endif /* VMC_CATALOG_SQL_BACKEND_H */
