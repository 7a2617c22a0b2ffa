/*
 * open.c - opening and closing a store: the home directory, catalog.db
 * with its SQLite settings (see catalog.c), schema migrations, the
 * default pools, the maintenance lock, and recovery of the operations
 * whose process died. The top of the catalog's file stack: it alone may
 * reach every other file.
 *
 * Which database a store uses is in its catalog.conf (written by
 * vmc_catalog_create(), `vm-clone init --catalog`): "catalog=sqlite" (the
 * default, also when the file is missing) or "catalog=CONNINFO" for
 * PostgreSQL, and "host-id=NAME". On PostgreSQL the maintenance and init
 * locks are advisory locks in the database, held by this session.
 *
 * SQLite settings: WAL (readers never block the writer), synchronous=FULL
 * (a commit is durable: the commit is the user-visible "done"),
 * foreign_keys=ON, a busy handler that polls every 0.2-2 ms for up to 10 s
 * (busy_wait() in sql.c), and every transaction that may write starts with
 * BEGIN IMMEDIATE, so that no reader has to upgrade to a writer (which
 * fails at once in WAL mode). Both backends open in sql.c.
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
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* First use on SQLite: one process sets WAL and applies the migrations
 * while the others wait on the init lock (*@fd). On PostgreSQL the
 * migration transaction takes an advisory lock instead. */
static int
first_use_lock(struct vmc_catalog *cat, int *fd, struct vmc_error *err)
{
    char *lp = NULL;

    if (cat_sql_is_pg(cat)) {
        return 0;
    }
    if (asprintf(&lp, "%s/init.lock", cat->run_dir) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    *fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lp);
    if (*fd < 0 || flock(*fd, LOCK_EX) < 0) {
        return vmc_error_set(err, -errno, "cannot lock the store: %s",
                             strerror(errno));
    }
    return cat_sql_first_use(cat, err);
}

/* SQLite, after the migrations ran with foreign keys off: none broken. */
static int
migrate_fk_check(struct vmc_catalog *cat, struct vmc_error *err)
{
    int64_t n = 0;
    int r = cat_get_i64(cat, &n, err, "SELECT count(*) FROM "
                        "pragma_foreign_key_check", NULL);

    if (r == 0 && n) {
        r = vmc_error_set(err, -EIO, "catalog migration: %" PRId64 " rows "
                          "refer to rows that do not exist", n);
    }
    return r;
}

static int
migrate(struct vmc_catalog *cat, struct vmc_error *err)
{
    const char *const *migrations = cat_sql_is_pg(cat) ? cat_pg_migrations
                                                       : cat_migrations;
    int64_t v = 0, version;
    int fd = -1, r;
    unsigned i;

    r = cat_schema_version(cat, &v, err);
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
    r = first_use_lock(cat, &fd, err);
    if (r < 0) {
        goto out;
    }
    /* SQLite: a migration may rebuild a table others refer to (10), which
     * needs foreign keys off (a no-op inside a transaction); they are
     * checked before the commit and turned on again after it */
    if (!cat_sql_is_pg(cat) &&
        (r = cat_sql_script(cat, "PRAGMA foreign_keys = OFF;", err)) < 0) {
        goto out;
    }
    r = cat_begin(cat, err);
    if (r < 0) {
        goto out;
    }
    if (cat_sql_is_pg(cat)) {
        r = cat_lock_key(cat, CAT_LOCK_INIT, CAT_LOCK_XACT, err);
        r = r < 0 ? r : 0;
    }
    if (r == 0) {
        r = cat_schema_version(cat, &v, err);
    }
    version = v;
    for (i = (unsigned)version; r == 0 && i < cat_nmigrations; i++) {
        r = cat_sql_script(cat, migrations[i], err);
        if (r < 0) {
            r = vmc_error_set(err, r, "catalog migration %u: %s", i + 1,
                              err->msg);
        }
    }
    if (r == 0 && version == 0) {
        r = add_default_pool(cat, "primary", "primary", err);
        if (r == 0) {
            r = add_default_pool(cat, "secondary", "secondary", err);
        }
    }
    if (r == 0 && version < cat_nmigrations) {
        r = cat_set_schema_version(cat, cat_nmigrations, err);
    }
    if (r == 0 && !cat_sql_is_pg(cat)) {
        r = migrate_fk_check(cat, err);
    }
    if (r == 0) {
        r = cat_commit(cat, err);
    } else {
        cat_rollback(cat);
    }
out:
    if (!cat_sql_is_pg(cat)) {
        struct vmc_error e2 = { 0 };
        int q = cat_sql_script(cat, "PRAGMA foreign_keys = ON;", &e2);

        if (q < 0 && r == 0) {
            r = vmc_error_set(err, q, "%s", e2.msg);
        }
    }
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

    char fresh[9];
    uint32_t rnd = 0;

    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        rnd = (uint32_t)getpid() ^ (uint32_t)time(NULL);
    }
    snprintf(fresh, sizeof(fresh), "%08x", (unsigned)rnd);
    /* read first: a write at every start costs a commit for nothing */
    if (cat_get_str(cat, &id, &e, "SELECT value FROM config WHERE key = "
                    "'store-id'", NULL) == -ENOENT) {
        cat_exec(cat, &e, "INSERT INTO config(key, value) VALUES "
                 "('store-id', ?) ON CONFLICT (key) DO NOTHING", "s", fresh);
        cat_get_str(cat, &id, &e, "SELECT value FROM config WHERE key = "
                    "'store-id'", NULL);
    }
    if (id && strlen(id) < sizeof(cat->store_id)) {
        strcpy(cat->store_id, id);
    }
    free(id);
    /* another host's local pools are that host's to mark */
    if (cat_collect_host(cat, &dirs, &e, "SELECT path FROM pools WHERE "
                         "host_id IS NULL OR host_id = ?") == 0) {
        for (i = 0; i < dirs.n; i++) {
            cat_pool_claim(cat, dirs.v[i], &e);
        }
    }
    cat_strv_release(&dirs);
}

/* ------------------------------------------------------- catalog.conf */

/* A store's choice of database and its host id. */
struct store_conf {
    char *conninfo;         /* NULL: SQLite */
    char host_id[65];
};

static void
conf_release(struct store_conf *c)
{
    free(c->conninfo);
    c->conninfo = NULL;
}

static int
conf_path(const char *dir, const char *name, char **out,
          struct vmc_error *err)
{
    return asprintf(out, "%s/%s", dir, name) < 0
           ? vmc_error_set(err, -ENOMEM, "out of memory") : 0;
}

/* Fill @c from @dir/catalog.conf (SQLite and the hostname without it). */
static int
conf_read(const char *dir, struct store_conf *c, struct vmc_error *err)
{
    char *p = NULL, line[4096];
    FILE *f;
    int r = conf_path(dir, "catalog.conf", &p, err);

    memset(c, 0, sizeof(*c));
    if (gethostname(c->host_id, sizeof(c->host_id) - 1) < 0) {
        strcpy(c->host_id, "localhost");
    }
    if (r < 0) {
        return r;
    }
    f = fopen(p, "re");
    if (!f) {
        r = errno == ENOENT ? 0 : vmc_error_set(err, -errno, "'%s': %s", p,
                                                strerror(errno));
        free(p);
        return r;
    }
    while (r == 0 && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "catalog=", 8) && strcmp(line + 8, "sqlite")) {
            free(c->conninfo);
            c->conninfo = strdup(line + 8);
            r = c->conninfo ? 0 : vmc_error_set(err, -ENOMEM, "out of "
                                                "memory");
        } else if (!strncmp(line, "host-id=", 8)) {
            snprintf(c->host_id, sizeof(c->host_id), "%.64s", line + 8);
        }
    }
    fclose(f);
    free(p);
    return r;
}

/* Without VMC_CATALOG_CREATE, a store must be there already: a
 * mistyped home is "no store", never a new empty one. */
static int
store_exists(const char *dir, struct vmc_error *err)
{
    char *db = NULL, *conf = NULL;
    struct stat st;
    int r = 0;

    if (conf_path(dir, "catalog.db", &db, err) < 0 ||
        conf_path(dir, "catalog.conf", &conf, err) < 0) {
        free(db);
        return -ENOMEM;
    }
    if (stat(db, &st) < 0 && stat(conf, &st) < 0) {
        r = errno == ENOENT || errno == ENOTDIR
            ? vmc_error_set(err, -ENOENT, "no store at '%s'", dir)
            : vmc_error_set(err, -errno, "'%s': %s", db, strerror(errno));
    }
    free(conf);
    free(db);
    return r;
}

/* The maintenance lock: shared for commands, exclusive for fsck. An
 * flock on run/maint.lock for SQLite; an advisory lock of this session
 * on PostgreSQL, which every host sharing the catalog sees. */
static int
maint_lock(struct vmc_catalog *cat, unsigned flags, struct vmc_error *err)
{
    bool excl = flags & VMC_CATALOG_EXCLUSIVE;
    char *lp = NULL;
    int r;

    if (cat_sql_is_pg(cat)) {
        r = cat_lock_key(cat, CAT_LOCK_MAINT,
                         excl ? CAT_LOCK_WAIT : CAT_LOCK_SHARED, err);
        return r < 0 ? r : 0;
    }
    if (asprintf(&lp, "%s/maint.lock", cat->run_dir) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    cat->maint_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (cat->maint_fd < 0 ||
        flock(cat->maint_fd, excl ? LOCK_EX : LOCK_SH) < 0) {
        r = vmc_error_set(err, -errno, "cannot lock '%s': %s", lp,
                          strerror(errno));
        free(lp);
        return r;
    }
    free(lp);
    return 0;
}

/* PostgreSQL: the session's vmclone.host_id, which a new pool row takes
 * as its host (schema-pg.c, migration 3: pools are local to the host
 * that adds them unless made shared). */
static int
session_host(struct vmc_catalog *cat, struct vmc_error *err)
{
    char *v = NULL;
    int r = cat_get_str(cat, &v, err, "SELECT set_config('vmclone.host_id', "
                        "?, false)", "s", cat->host_id);

    free(v);
    return r;
}

/* Open the store at @dir (made already) with the choices of @conf. */
static int
open_with(struct vmc_catalog *cat, const char *dir,
          const struct store_conf *conf, unsigned flags,
          struct vmc_error *err)
{
    char *db = NULL;
    int r;

    cat->home = realpath(dir, NULL);
    if (!cat->home) {
        return vmc_error_set(err, -errno, "'%s': %s", dir, strerror(errno));
    }
    snprintf(cat->host_id, sizeof(cat->host_id), "%s", conf->host_id);
    if (asprintf(&cat->run_dir, "%s/run", cat->home) < 0 ||
        asprintf(&db, "%s/catalog.db", cat->home) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = cat_mkdir_p(cat->run_dir, err);
    if (r == 0 && !conf->conninfo) {
        r = maint_lock(cat, flags, err);
    }
    if (r == 0) {
        r = cat_sql_open(cat, db, conf->conninfo, err);
    }
    if (r == 0 && conf->conninfo) {
        r = maint_lock(cat, flags, err);
    }
    if (r == 0 && conf->conninfo) {
        r = session_host(cat, err);
    }
    free(db);
    if (r == 0) {
        r = migrate(cat, err);
    }
    if (r < 0) {
        return r;
    }
    load_store_id(cat);
    if (!(flags & VMC_CATALOG_NO_RECOVER)) {
        r = cat_recover_all(cat, NULL, err);
    }
    return r;
}

static struct vmc_catalog *
catalog_new(void)
{
    struct vmc_catalog *cat = calloc(1, sizeof(*cat));

    if (cat) {
        cat->maint_fd = -1;
        cat->free_retired = cat_free_retired;
    }
    return cat;
}

int
vmc_catalog_open(struct vmc_catalog **out, const char *home, unsigned flags,
                 struct vmc_error *err)
{
    struct vmc_catalog *cat = catalog_new();
    struct store_conf conf = { 0 };
    char *dir = NULL;
    int r;

    if (!cat) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = vmc_catalog_home(home, &dir);
    if (r < 0) {
        r = vmc_error_set(err, r, "out of memory");
        goto out;
    }
    r = (flags & VMC_CATALOG_CREATE) ? cat_mkdir_p(dir, err)
                                     : store_exists(dir, err);
    if (r == 0) {
        r = conf_read(dir, &conf, err);
    }
    if (r == 0) {
        r = open_with(cat, dir, &conf, flags, err);
    }
out:
    conf_release(&conf);
    free(dir);
    if (r < 0) {
        vmc_catalog_close(cat);
        return r;
    }
    *out = cat;
    return 0;
}

/* Write @dir/catalog.conf.tmp for @catalog (NULL or "sqlite": SQLite) and
 * @host_id (NULL: none recorded). */
static int
conf_write_tmp(const char *tmp, const char *catalog, const char *host_id,
               struct vmc_error *err)
{
    FILE *f = fopen(tmp, "we");
    int bad;

    if (!f) {
        return vmc_error_set(err, -errno, "'%s': %s", tmp, strerror(errno));
    }
    fprintf(f, "# vm-clone store settings (vm-clone init)\ncatalog=%s\n",
            catalog ? catalog : "sqlite");
    if (host_id) {
        fprintf(f, "host-id=%s\n", host_id);
    }
    bad = fflush(f) != 0 || fsync(fileno(f)) < 0;
    bad = (fclose(f) != 0) || bad;
    return bad ? vmc_error_set(err, -EIO, "'%s': cannot write", tmp) : 0;
}

static bool
conf_value_ok(const char *v)
{
    return !v || (*v && !strpbrk(v, "\n\r"));
}

/* Whether the store at @dir records @catalog and @host_id already. */
static int
conf_matches(const char *dir, const char *catalog, const char *host_id,
             struct vmc_error *err)
{
    struct store_conf c;
    bool pg = catalog && strcmp(catalog, "sqlite");
    int r = conf_read(dir, &c, err);

    if (r == 0 && ((pg != !!c.conninfo) ||
                   (pg && strcmp(catalog, c.conninfo)) ||
                   (host_id && strcmp(host_id, c.host_id)))) {
        r = vmc_error_set(err, -EEXIST, "the store at '%s' exists with "
                          "another catalog or host id (%s, host %s)", dir,
                          c.conninfo ? "postgresql" : "sqlite", c.host_id);
    }
    conf_release(&c);
    return r;
}

int
vmc_catalog_create(struct vmc_catalog **out, const char *home,
                   const char *catalog, const char *host_id,
                   struct vmc_error *err)
{
    struct vmc_catalog *cat = NULL;
    struct store_conf conf = { 0 };
    char *dir = NULL, *tmp = NULL, *path = NULL;
    int r;

    if (!conf_value_ok(catalog) || !conf_value_ok(host_id) ||
        (host_id && strlen(host_id) >= sizeof(conf.host_id))) {
        return vmc_error_set(err, -EINVAL, "catalog and host id: one line "
                             "each, the host id under 65 bytes");
    }
    if (!catalog && !host_id) {
        return vmc_catalog_open(out, home, VMC_CATALOG_CREATE, err);
    }
    r = vmc_catalog_home(home, &dir);
    if (r < 0) {
        return vmc_error_set(err, r, "out of memory");
    }
    if (store_exists(dir, NULL) == 0) {
        r = conf_matches(dir, catalog, host_id, err);
        free(dir);
        return r < 0 ? r : vmc_catalog_open(out, home, 0, err);
    }
    if (!strcmp(catalog ? catalog : "sqlite", "sqlite") && !host_id) {
        free(dir);
        return vmc_catalog_open(out, home, VMC_CATALOG_CREATE, err);
    }
    cat = catalog_new();
    r = cat ? cat_mkdir_p(dir, err) : vmc_error_set(err, -ENOMEM, "out of "
                                                    "memory");
    if (r == 0 && (conf_path(dir, "catalog.conf.tmp", &tmp, err) < 0 ||
                   conf_path(dir, "catalog.conf", &path, err) < 0)) {
        r = -ENOMEM;
    }
    if (r == 0) {
        r = conf_write_tmp(tmp, catalog, host_id, err);
    }
    if (r == 0) {
        r = conf_read(dir, &conf, err);   /* the defaults it leaves */
    }
    if (r == 0 && catalog && strcmp(catalog, "sqlite")) {
        free(conf.conninfo);
        conf.conninfo = strdup(catalog);
        r = conf.conninfo ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0 && host_id) {
        snprintf(conf.host_id, sizeof(conf.host_id), "%s", host_id);
    }
    if (r == 0) {
        r = open_with(cat, dir, &conf, 0, err);
    }
    if (r == 0 && rename(tmp, path) < 0) {
        r = vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    if (r == 0) {
        cat_fsync_dir_of(path);
    } else if (tmp) {
        unlink(tmp);
    }
    conf_release(&conf);
    free(tmp);
    free(path);
    free(dir);
    if (r < 0) {
        vmc_catalog_close(cat);
        return r;
    }
    *out = cat;
    return 0;
}

void
vmc_catalog_close(struct vmc_catalog *cat)
{
    if (!cat) {
        return;
    }
    if (cat->db || cat->pg) {
        cat_rollback(cat);
        cat_sql_close(cat);
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

const char *
vmc_catalog_host_id(const struct vmc_catalog *cat)
{
    return cat->host_id;
}
