/*
 * open.c - opening and closing a store: the home directory, catalog.db
 * with its SQLite settings (see catalog.c), schema migrations, the
 * default pools, the maintenance lock, and recovery of the operations
 * whose process died. The top of the catalog's file stack: it alone may
 * reach every other file.
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
#include "catalog-ops.h"

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
    r = cat_mkdir_p(path, err);
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

/* The store id (config 'store-id', set once, 8 hex digits) and the
 * owner marker of each of its pools. Neither may stop a store from
 * opening: a read-only catalog or directory keeps the old names. */
static void
load_store_id(struct vmc_catalog *cat)
{
    struct vmc_error e = { 0 };
    struct cat_strv dirs = { 0 };
    char *id = NULL;
    size_t i;

    cat_exec(cat, &e, "INSERT OR IGNORE INTO config(key, value) VALUES "
             "('store-id', lower(hex(randomblob(4))))", NULL);
    if (cat_get_str(cat, &id, &e, "SELECT value FROM config WHERE key = "
                    "'store-id'", NULL) == 0 &&
        strlen(id) < sizeof(cat->store_id)) {
        strcpy(cat->store_id, id);
    }
    free(id);
    if (cat_collect(cat, &dirs, &e, "SELECT path FROM pools WHERE id > ?", 0) == 0) {
        for (i = 0; i < dirs.n; i++) {
            cat_pool_claim(cat, dirs.v[i], &e);
        }
    }
    cat_strv_release(&dirs);
}

/* Without VMC_CATALOG_CREATE, a store must be there already: a
 * mistyped home is "no store", never a new empty one. */
static int
store_exists(const char *dir, struct vmc_error *err)
{
    char *db = NULL;
    struct stat st;
    int r = 0;

    if (asprintf(&db, "%s/catalog.db", dir) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (stat(db, &st) < 0) {
        r = errno == ENOENT || errno == ENOTDIR
            ? vmc_error_set(err, -ENOENT, "no store at '%s'", dir)
            : vmc_error_set(err, -errno, "'%s': %s", db, strerror(errno));
    }
    free(db);
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
    cat->free_retired = cat_free_retired;
    r = vmc_catalog_home(home, &dir);
    if (r < 0) {
        r = vmc_error_set(err, r, "out of memory");
        goto fail;
    }
    r = (flags & VMC_CATALOG_CREATE) ? cat_mkdir_p(dir, err)
                                     : store_exists(dir, err);
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
    r = cat_mkdir_p(cat->run_dir, err);
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
    load_store_id(cat);
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
