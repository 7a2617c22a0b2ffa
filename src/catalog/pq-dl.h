/*
 * pq-dl.h - the libpq functions sql-pg.c calls, bound at first use
 * (pq-dl.c, on src/util/lazy-lib.c) instead of at program start: a store
 * on SQLite, the default, never loads libpq and the Kerberos, LDAP and
 * TLS libraries it brings (about 10 ms of every command's start here).
 * Include it instead of libpq-fe.h; a function newly used goes in the
 * list below, or the link fails.
 */
#ifndef VMC_PQ_DL_H
#define VMC_PQ_DL_H

#include <libpq-fe.h>

/* NULL once libpq is loaded; else why it could not be (loads it). */
const char *pq_dl_error(void);

/* F(return type, name, (parameters), (arguments), result without libpq) */
#define PQ_DL_FUNCTIONS(F) \
    F(char *, PQcmdTuples, (PGresult *res), (res), NULL) \
    F(PGconn *, PQconnectdbParams, (const char *const *keywords, \
      const char *const *values, int expand_dbname), \
      (keywords, values, expand_dbname), NULL) \
    F(char *, PQerrorMessage, (const PGconn *conn), (conn), NULL) \
    F(PGresult *, PQexec, (PGconn *conn, const char *query), (conn, query), NULL) \
    F(PGresult *, PQexecParams, (PGconn *conn, const char *command, int nParams, \
      const Oid *paramTypes, const char *const *paramValues, \
      const int *paramLengths, const int *paramFormats, int resultFormat), \
      (conn, command, nParams, paramTypes, paramValues, paramLengths, \
       paramFormats, resultFormat), NULL) \
    F(char *, PQfname, (const PGresult *res, int field_num), (res, field_num), NULL) \
    F(Oid, PQftype, (const PGresult *res, int field_num), (res, field_num), 0) \
    F(int, PQgetisnull, (const PGresult *res, int tup_num, int field_num), \
      (res, tup_num, field_num), 1) \
    F(char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num), \
      (res, tup_num, field_num), NULL) \
    F(int, PQnfields, (const PGresult *res), (res), 0) \
    F(int, PQntuples, (const PGresult *res), (res), 0) \
    F(char *, PQresultErrorField, (const PGresult *res, int fieldcode), \
      (res, fieldcode), NULL) \
    F(char *, PQresultErrorMessage, (const PGresult *res), (res), NULL) \
    F(ExecStatusType, PQresultStatus, (const PGresult *res), (res), \
      PGRES_FATAL_ERROR) \
    F(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn *conn, \
      PQnoticeProcessor proc, void *arg), (conn, proc, arg), NULL) \
    F(ConnStatusType, PQstatus, (const PGconn *conn), (conn), CONNECTION_BAD) \
    F(PGTransactionStatusType, PQtransactionStatus, (const PGconn *conn), \
      (conn), PQTRANS_UNKNOWN)

/* F(name, (parameters), (arguments)): no result; nothing without libpq */
#define PQ_DL_VOID_FUNCTIONS(F) \
    F(PQclear, (PGresult *res), (res)) \
    F(PQfinish, (PGconn *conn), (conn))

#define PQ_DL_DECLARE(ret, name, params, args, fail) ret pq_dl_##name params;
#define PQ_DL_DECLARE_VOID(name, params, args) void pq_dl_##name params;
PQ_DL_FUNCTIONS(PQ_DL_DECLARE)
PQ_DL_VOID_FUNCTIONS(PQ_DL_DECLARE_VOID)

#ifndef PQ_DL_IMPLEMENTATION
#define PQclear pq_dl_PQclear
#define PQcmdTuples pq_dl_PQcmdTuples
#define PQconnectdbParams pq_dl_PQconnectdbParams
#define PQerrorMessage pq_dl_PQerrorMessage
#define PQexec pq_dl_PQexec
#define PQexecParams pq_dl_PQexecParams
#define PQfinish pq_dl_PQfinish
#define PQfname pq_dl_PQfname
#define PQftype pq_dl_PQftype
#define PQgetisnull pq_dl_PQgetisnull
#define PQgetvalue pq_dl_PQgetvalue
#define PQnfields pq_dl_PQnfields
#define PQntuples pq_dl_PQntuples
#define PQresultErrorField pq_dl_PQresultErrorField
#define PQresultErrorMessage pq_dl_PQresultErrorMessage
#define PQresultStatus pq_dl_PQresultStatus
#define PQsetNoticeProcessor pq_dl_PQsetNoticeProcessor
#define PQstatus pq_dl_PQstatus
#define PQtransactionStatus pq_dl_PQtransactionStatus
#endif

#endif
