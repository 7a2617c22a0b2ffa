/*
 * journal.c - the journaled-operation protocol: struct cat_op and one
 * function per transition (begin, stage, publish, ready, fail, finish,
 * end), the compare-and-set every row state change goes through, the
 * per-operation journal locks (run/jN.lock, flock; on PostgreSQL a
 * session advisory lock per row, which any host sees and which dies with
 * its session), and recovery of the
 * operations whose owner died (cat_journal_wait, cat_recover_all, and
 * cat_finish_journal, which rolls a journal row's rows forward or back).
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog-internal.h"
#include "journal.h"
#include "vmclone-seal.h"
#include "../virt/virt.h"

/* ------------------------------------------------------------ locks */

/* lock_fd of a journal lock held as a PostgreSQL advisory lock */
#define JOURNAL_LOCK_SESSION (-2)

static char *
journal_lock_path(struct vmc_catalog *cat, int64_t jid)
{
    char *p = NULL;

    if (asprintf(&p, "%s/j%" PRId64 ".lock", cat->run_dir, jid) < 0) {
        return NULL;
    }
    return p;
}

static int
journal_start(struct vmc_catalog *cat, const char *op,
                  const char *target, int64_t *jid, int *lock_fd,
                  struct vmc_error *err)
{
    char *lp;
    int fd, r;

    r = cat_exec(cat, err, "INSERT INTO journal(op, target, state, pid, "
                 "host_id, started) VALUES (?, ?, ?, ?, ?, ?)", "sssisd", op,
                 target, CAT_J_RUNNING, (int)getpid(), cat->host_id,
                 cat_now());
    if (r < 0) {
        return r;
    }
    *jid = cat_last_id(cat);
    if (cat_sql_is_pg(cat)) {
        r = cat_lock_key(cat, CAT_LOCK_JOURNAL(*jid), CAT_LOCK_TRY, err);
        if (r == 0) {
            r = vmc_error_set(err, -EBUSY, "journal row %" PRId64 " is "
                              "locked by another session", *jid);
        }
        *lock_fd = r > 0 ? JOURNAL_LOCK_SESSION : -1;
        return r < 0 ? r : 0;
    }
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

static void
journal_unlock(struct vmc_catalog *cat, int64_t jid, int lock_fd)
{
    char *lp;

    if (lock_fd == JOURNAL_LOCK_SESSION) {
        cat_unlock_key(cat, CAT_LOCK_JOURNAL(jid), false);
        return;
    }
    lp = journal_lock_path(cat, jid);

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
    if (!strcmp(state, CAT_J_RUNNING)) {
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
    char *lp;
    int fd, r;

    *fd_out = -1;
    if (cat_sql_is_pg(cat)) {
        r = cat_lock_key(cat, CAT_LOCK_JOURNAL(jid),
                         wait ? CAT_LOCK_WAIT : CAT_LOCK_TRY, err);
        *fd_out = r > 0 ? JOURNAL_LOCK_SESSION : -1;
        return r;
    }
    lp = journal_lock_path(cat, jid);
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
    journal_unlock(cat, jid, fd);
    return r;
}

/* The running rows recovery looks at, found by the partial indexes
 * journal_host_running and journal_running (state written as a literal:
 * SQLite uses a partial index only then): this host's own rows (and rows
 * of versions without a host, which any host may finish) except this
 * process's, or (fsck --reap) the other hosts' rows. An SQLite store has
 * one host whatever its name was when a row was written: all its rows. */
#define CAT_RECOVER_SQLITE 2
static const char *const pending_sql[] = {
    [CAT_RECOVER_SQLITE] =
        "SELECT id, coalesce(host_id, '') FROM journal "
        "WHERE state = 'running' AND ?1 IS NOT NULL AND pid != ?2 "
        "ORDER BY id",
    [CAT_RECOVER_OWN] =
        "SELECT id, coalesce(host_id, '') FROM journal "
        "WHERE state = 'running' AND (host_id = ?1 OR host_id IS NULL) "
        "AND NOT (pid = ?2 AND coalesce(host_id, ?1) = ?1) ORDER BY id",
    [CAT_RECOVER_OTHERS] =
        "SELECT id, coalesce(host_id, '') FROM journal "
        "WHERE state = 'running' AND host_id != ?1 AND ?2 >= 0 ORDER BY id",
};

/* The ids (and hosts) of the running rows of @scope. */
static int
pending_rows(struct vmc_catalog *cat, enum cat_recover_scope scope,
             int64_t **ids, struct cat_strv *hosts, size_t *n,
             struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r;

    r = cat_prepare(cat, &st, err, pending_sql[cat_sql_is_pg(cat) ? scope
                    : CAT_RECOVER_SQLITE], "si", cat->host_id, (int)getpid());
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        int64_t *nids = realloc(*ids, (*n + 1) * sizeof(**ids));

        if (nids) {
            *ids = nids;
        }
        if (!nids || cat_strv_push(hosts, cat_col(st, 1)) < 0) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        (*ids)[(*n)++] = cat_col_i64(st, 0);
        r = 0;
    }
    cat_finalize(st);
    return r;
}

int
cat_recover_report(struct vmc_catalog *cat, enum cat_recover_scope scope,
                   unsigned *count, cat_recovered_fn fn, void *opaque,
                   struct vmc_error *err)
{
    struct cat_strv hosts = { 0 };
    int64_t *ids = NULL;
    size_t n = 0, i;
    int r;

    r = pending_rows(cat, scope, &ids, &hosts, &n, err);
    /* one row that cannot be finished must not stop the others, nor the
     * command that opened the store: it is reported and stays running
     * for the next attempt (issue 9 finding 1) */
    for (i = 0; r == 0 && i < n; i++) {
        struct vmc_error e1 = { 0 };
        bool did = false;
        int fd, q;

        q = journal_lock_try(cat, ids[i], false, &fd, &e1);
        if (q <= 0) {
            continue;       /* its owner is alive */
        }
        q = cat_journal_local_check(cat, ids[i], &e1);
        if (q == 0) {
            q = recover_locked(cat, ids[i], &did, &e1);
        }
        journal_unlock(cat, ids[i], fd);
        cat_rollback(cat);
        if (fn && (q < 0 || did)) {
            fn(ids[i], hosts.v[i], q < 0 ? (e1.msg[0] ? e1.msg
                                                      : strerror(-q))
                                         : NULL, opaque);
        }
        if (did && count) {
            (*count)++;
        }
    }
    cat_strv_release(&hosts);
    free(ids);
    return r < 0 ? r : 0;
}

int
cat_recover_all(struct vmc_catalog *cat, unsigned *count,
                struct vmc_error *err)
{
    return cat_recover_report(cat, CAT_RECOVER_OWN, count, NULL, NULL, err);
}

/* ------------------------------------------------------ host-local pools
 *
 * A pool whose host_id is set holds files only that host reaches (a
 * local directory); NULL is shared (and every pool of an SQLite store).
 * An operation whose rows name a volume in another host's local pool (a
 * new or deleted volume, the parent of a new one, the template a new
 * copy is made from, the pool of a new VM) is refused before its files
 * are touched. */
int
cat_pool_local_check(struct vmc_catalog *cat, int64_t pool_id,
                     struct vmc_error *err)
{
    char *name = NULL, *host = NULL;
    int r;

    if (!cat_sql_is_pg(cat)) {
        return 0;
    }
    r = cat_get_str(cat, &host, err, "SELECT host_id FROM pools WHERE id = ? "
                    "AND host_id IS NOT NULL AND host_id != ?", "Is",
                    pool_id, cat->host_id);
    if (r == -ENOENT) {
        return 0;
    }
    if (r == 0) {
        r = cat_get_str(cat, &name, err, "SELECT name FROM pools WHERE "
                        "id = ?", "I", pool_id);
    }
    if (r == 0) {
        r = vmc_error_set(err, -EREMOTE, "pool '%s' is local to host '%s' "
                          "(this is host '%s'): its files are only touched "
                          "there; run this on host '%s'", name, host,
                          cat->host_id, host);
    }
    free(name);
    free(host);
    return r;
}

int
cat_collect_host(struct vmc_catalog *cat, struct cat_strv *out,
                 struct vmc_error *err, const char *sql)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, sql, "s", cat->host_id);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        r = cat_strv_push(out, cat_col(st, 0)) < 0
            ? vmc_error_set(err, -ENOMEM, "out of memory") : 0;
    }
    cat_finalize(st);
    if (r < 0) {
        cat_strv_release(out);
    }
    return r;
}

int
vmc_catalog_pool_share(struct vmc_catalog *cat, const char *name,
                       struct vmc_error *err)
{
    int r = cat_exec(cat, err, "UPDATE pools SET host_id = NULL WHERE "
                     "name = ?", "s", name);

    if (r == 0 && cat_changes(cat) == 0) {
        r = vmc_error_set(err, -ENOENT, "no pool named '%s'", name);
    }
    return r;
}

int
cat_journal_local_check(struct vmc_catalog *cat, int64_t jid,
                        struct vmc_error *err)
{
    int64_t pool = 0;
    int r;

    if (!cat_sql_is_pg(cat)) {
        return 0;
    }
    r = cat_get_i64(cat, &pool, err, "SELECT p.id FROM pools p WHERE "
                    "p.host_id IS NOT NULL AND p.host_id != ?1 AND p.id IN ("
                    "SELECT v.pool_id FROM volumes v WHERE v.journal_id = ?2 "
                    "UNION SELECT pv.pool_id FROM volumes v JOIN volumes pv "
                    "ON pv.id = v.parent_id WHERE v.journal_id = ?2 "
                    "UNION SELECT tv.pool_id FROM template_copies c JOIN "
                    "volumes tv ON tv.template_id = c.template_id WHERE "
                    "c.journal_id = ?2 AND c.source_copy_id IS NULL "
                    "UNION SELECT sv.pool_id FROM template_copies c JOIN "
                    "volumes sv ON sv.copy_id = c.source_copy_id WHERE "
                    "c.journal_id = ?2 "
                    "UNION SELECT m.pool_id FROM vms m WHERE "
                    "m.journal_id = ?2) ORDER BY p.id LIMIT 1", "sI",
                    cat->host_id, jid);
    if (r == -ENOENT) {
        return 0;
    }
    return r < 0 ? r : cat_pool_local_check(cat, pool, err);
}

/* ----------------------------------------------------------- cat_op */

void
cat_op_init(struct cat_op *op, struct vmc_catalog *cat, const char *name)
{
    op->cat = cat;
    op->name = name;
    op->jid = 0;
    op->lock_fd = -1;
    op->state = CAT_OP_IDLE;
}

int
cat_op_begin(struct cat_op *op, const char *target, struct vmc_error *err)
{
    assert(op->state == CAT_OP_IDLE);
    op->state = CAT_OP_RUNNING;
    return journal_start(op->cat, op->name, target, &op->jid,
                             &op->lock_fd, err);
}

int
cat_op_stage(struct cat_op *op, int r, struct vmc_error *err)
{
    assert(op->state == CAT_OP_IDLE || op->state == CAT_OP_RUNNING);
    if (r == 0 && op->state == CAT_OP_RUNNING) {
        /* no file of another host's local pool is ever touched */
        r = cat_journal_local_check(op->cat, op->jid, err);
    }
    if (r == 0 && op->state == CAT_OP_RUNNING) {
        r = cat_commit(op->cat, err);   /* rolls back on failure */
    } else {
        cat_rollback(op->cat);
    }
    op->state = r == 0 ? CAT_OP_STAGED : CAT_OP_FAILED;
    return r;
}

int
cat_op_publish(struct cat_op *op, struct vmc_error *err)
{
    int r;

    assert(op->state == CAT_OP_STAGED);
    r = cat_begin(op->cat, err);
    if (r == 0) {
        op->state = CAT_OP_PUBLISHING;
    }
    return r;
}

int
cat_op_ready(struct cat_op *op, struct vmc_error *err)
{
    int r;

    assert(op->state == CAT_OP_PUBLISHING);
    r = cat_journal_finish(op->cat, op->jid, CAT_J_DONE, err);
    if (r == 0) {
        r = cat_commit(op->cat, err);
    } else {
        cat_rollback(op->cat);
    }
    op->state = r == 0 ? CAT_OP_DONE : CAT_OP_STAGED;
    return r;
}

void
cat_op_fail(struct cat_op *op)
{
    assert(op->state == CAT_OP_STAGED || op->state == CAT_OP_PUBLISHING);
    if (op->state == CAT_OP_PUBLISHING) {
        cat_rollback(op->cat);
    }
    cat_finish_journal(op->cat, op->jid, NULL);
    op->state = CAT_OP_FAILED;
}

int
cat_op_finish(struct cat_op *op, struct vmc_error *err)
{
    int r;

    assert(op->state == CAT_OP_STAGED);
    r = cat_finish_journal(op->cat, op->jid, err);
    op->state = r == 0 ? CAT_OP_DONE : CAT_OP_FAILED;
    return r;
}

bool
cat_op_pending(const struct cat_op *op)
{
    return op->state == CAT_OP_STAGED || op->state == CAT_OP_PUBLISHING;
}

void
cat_op_end(struct cat_op *op)
{
    assert(op->state == CAT_OP_IDLE || op->state == CAT_OP_DONE ||
           op->state == CAT_OP_FAILED);
    if (op->lock_fd != -1) {
        journal_unlock(op->cat, op->jid, op->lock_fd);
    }
    op->lock_fd = -1;
    op->state = CAT_OP_ENDED;
}

int
cat_op_cas(struct cat_op *op, int expect, const char *what,
           struct vmc_error *err, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int r;

    assert(op->state == CAT_OP_RUNNING || op->state == CAT_OP_PUBLISHING);
    va_start(ap, fmt);
    r = cat_vexec(op->cat, err, sql, fmt, ap);
    va_end(ap);
    if (r == 0 && cat_changes(op->cat) != expect) {
        r = vmc_error_set(err, -EBUSY, "%s changed state during this %s "
                          "(it is being removed or changed by another "
                          "operation)", what, op->name);
    }
    return r;
}

int
cat_op_volumes_ready(struct cat_op *op, int expect, struct vmc_error *err)
{
    return cat_op_cas(op, expect, "a volume", err, "UPDATE volumes SET "
                      "state = ? WHERE journal_id = ? AND state = ?", "sIs",
                      CAT_READY, op->jid, CAT_CREATING);
}

int
cat_op_settle(struct cat_op *op, int q, int r, struct vmc_error *err)
{
    assert(op->state == CAT_OP_PUBLISHING);
    if (q == 0) {
        q = cat_journal_finish(op->cat, op->jid,
                               r < 0 ? CAT_J_FAILED : CAT_J_DONE, NULL);
    }
    if (q == 0) {
        q = cat_commit(op->cat, err);
    } else {
        cat_rollback(op->cat);
    }
    op->state = r == 0 && q == 0 ? CAT_OP_DONE : CAT_OP_FAILED;
    return q;
}

void
cat_op_abandon(struct cat_op *op)
{
    assert(op->state == CAT_OP_STAGED);
    op->state = CAT_OP_FAILED;
}

int
cat_op_restage(struct cat_op *op, struct vmc_error *err)
{
    int r;

    assert(op->state == CAT_OP_PUBLISHING);
    r = cat_commit(op->cat, err);
    op->state = CAT_OP_STAGED;
    return r;
}

/* ---------------------------------------------------------- recovery
 *
 * cat_finish_journal() is the recovery transition table of schema.c:
 *   ready + journal J      -> parent_id re-read from the file's header
 *   creating + journal J   -> files unlinked, rows deleted (roll back)
 *   deleting + journal J   -> files unlinked, rows deleted (roll forward),
 *                             or back to ready if a child still uses one
 * The same code finishes a delete in the normal path and after a crash.
 */

/* Remove our temporary files for @path ('.FILE.vmc-*', '.FILE.tmp-*'). */
static void
unlink_temps_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : NULL;
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    struct dirent *de;
    DIR *d;

    if (!dir) {
        return;
    }
    d = opendir(dir);
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' && !strncmp(de->d_name + 1, base, bl) &&
            (!strncmp(de->d_name + 1 + bl, ".vmc-", 5) ||
             !strncmp(de->d_name + 1 + bl, ".tmp-", 5))) {
            unlinkat(dirfd(d), de->d_name, 0);
        }
    }
    if (d) {
        closedir(d);
    }
    free(dir);
}

/* ------------------------------------------------------------ finish */

static int
unlink_state(struct vmc_catalog *cat, int64_t jid, const char *state,
             bool temps, struct vmc_error *err)
{
    struct cat_strv paths = { 0 };
    size_t i;
    int r;

    r = cat_collect(cat, &paths, err, state[0] == 'c'
                    ? "SELECT p.path || '/' || v.file FROM volumes v JOIN "
                      "pools p ON p.id = v.pool_id WHERE v.journal_id = ? "
                      "AND v.state = 'creating' ORDER BY v.id DESC"
                    : "SELECT p.path || '/' || v.file FROM volumes v JOIN "
                      "pools p ON p.id = v.pool_id WHERE v.journal_id = ? "
                      "AND v.state = 'deleting' ORDER BY v.id DESC", jid);
    for (i = 0; r == 0 && i < paths.n; i++) {
        cat_mode_writable(paths.v[i]);
        r = cat_unlink_volume_file(paths.v[i], err);
        if (temps) {
            unlink_temps_of(paths.v[i]);
        }
    }
    for (i = 0; r == 0 && i < paths.n; i++) {
        cat_fsync_dir_of(paths.v[i]);
    }
    cat_strv_release(&paths);
    return r;
}

static const char *const delete_rows_sql[] = {
    "DELETE FROM volumes WHERE journal_id = ?1 AND state = ?2",
    "DELETE FROM snapshots WHERE journal_id = ?1 AND state = ?2",
    "DELETE FROM vms WHERE journal_id = ?1 AND state = ?2",
    "DELETE FROM template_copies WHERE journal_id = ?1 AND state = ?2",
    "DELETE FROM templates WHERE journal_id = ?1 AND state = ?2",
    NULL,
};

static const char *const ready_rows_sql[] = {
    "UPDATE volumes SET state = 'ready' WHERE journal_id = ?1 AND state = ?2",
    "UPDATE snapshots SET state = 'ready' WHERE journal_id = ?1 AND state = ?2",
    "UPDATE vms SET state = 'ready' WHERE journal_id = ?1 AND state = ?2",
    "UPDATE template_copies SET state = 'ready' WHERE journal_id = ?1 AND "
    "state = ?2",
    "UPDATE templates SET state = 'ready' WHERE journal_id = ?1 AND "
    "state = ?2",
    NULL,
};

static int
rows_do(struct vmc_catalog *cat, const char *const *sqls, int64_t jid,
        const char *state, struct vmc_error *err)
{
    int r = 0;
    unsigned i;

    for (i = 0; r == 0 && sqls[i]; i++) {
        r = cat_exec(cat, err, sqls[i], "Is", jid, state);
    }
    return r;
}

int
cat_finish_journal(struct vmc_catalog *cat, int64_t jid,
                   struct vmc_error *err)
{
    int64_t ncreating = 0, ndeleting = 0, nchildren = 0;
    char *op = NULL, *target = NULL;
    int r;

    r = cat_get_str(cat, &op, err, "SELECT op FROM journal WHERE id = ?",
                    "I", jid);
    if (r == 0) {
        r = cat_get_str(cat, &target, err, "SELECT coalesce(target, '') "
                        "FROM journal WHERE id = ?", "I", jid);
    }
    if (r < 0) {
        goto out;
    }
    /* 1. in-place rewrites: believe the files */
    r = cat_begin(cat, err);
    if (r == 0) {
        r = cat_reconcile_journal(cat, jid, NULL, err);
        if (r < 0) {
            /* a missing file is for fsck to report; keep going */
            r = 0;
        }
        r = cat_commit(cat, err);
    }
    if (r < 0) {
        goto out;
    }
    /* 2. roll back what was being created (and its libvirt domains) */
    cat_virt_rollback(cat, jid);
    r = cat_get_i64(cat, &ncreating, err, "SELECT count(*) FROM volumes "
                    "WHERE journal_id = ? AND state = 'creating'", "I", jid);
    if (r == 0) {
        r = unlink_state(cat, jid, "creating", true, err);
    }
    if (r == 0 && (!strcmp(op, "snapshot") || !strcmp(op, "freeze"))) {
        /* the frozen parents become the VM's writable disks again (a
         * freeze sealed them: unsealed first, freeze.c) */
        struct cat_strv paths = { 0 };
        size_t i;

        r = cat_collect(cat, &paths, err, "SELECT o.path FROM volume_owners "
                        "o JOIN volumes v ON v.id = o.id JOIN vms m ON "
                        "m.id = v.vm_id JOIN journal j ON j.target = m.name "
                        "WHERE j.id = ? AND v.top = 1 AND v.state = 'ready'",
                        jid);
        for (i = 0; r == 0 && i < paths.n; i++) {
            struct vmc_error ignored = { 0 };

            if (!strcmp(op, "freeze")) {
                vmc_image_unseal(paths.v[i], &ignored);
            }
            cat_mode_writable(paths.v[i]);
        }
        cat_strv_release(&paths);
    }
    if (r < 0) {
        goto out;
    }
    r = cat_begin(cat, err);
    if (r == 0) {
        r = rows_do(cat, delete_rows_sql, jid, "creating", err);
    }
    /* 3. roll forward what was being deleted, unless still in use */
    if (r == 0) {
        r = cat_get_i64(cat, &nchildren, err, "SELECT count(*) FROM volumes "
                        "c WHERE c.parent_id IN (SELECT id FROM volumes "
                        "WHERE journal_id = ?1 AND state = 'deleting') AND "
                        "NOT (c.journal_id IS NOT DISTINCT FROM ?1 AND "
                        "c.state = 'deleting')",
                        "I", jid);
    }
    if (r == 0 && nchildren > 0) {
        r = rows_do(cat, ready_rows_sql, jid, "deleting", err);
    }
    if (r == 0) {
        r = cat_get_i64(cat, &ndeleting, err, "SELECT count(*) FROM volumes "
                        "WHERE journal_id = ? AND state = 'deleting'", "I",
                        jid);
    }
    if (r == 0) {
        r = cat_commit(cat, err);
    } else {
        cat_rollback(cat);
    }
    if (r == 0) {
        r = unlink_state(cat, jid, "deleting", false, err);
    }
    if (r == 0) {       /* an instant template's RAM and state files */
        r = cat_instant_unlink_deleting(cat, jid, err);
    }
    if (r < 0) {
        goto out;
    }
    r = cat_begin(cat, err);
    if (r == 0) {
        r = rows_do(cat, delete_rows_sql, jid, "deleting", err);
    }
    if (r == 0) {
        r = cat_journal_finish(cat, jid, ncreating || nchildren
                               ? "rolled-back" : "done", err);
    }
    if (r == 0) {
        r = cat_commit(cat, err);
    } else {
        cat_rollback(cat);
    }
    if (r == 0 && ndeleting) {
        r = cat->free_retired(cat, err);
    }
out:
    free(op);
    free(target);
    return r;
}
