/*
 * rbd-conn.c - the process's Ceph cluster connections (rbd-internal.h):
 * one per settings and kind (the writers', and the one of read-only opens
 * with one completion thread), made on first use or ahead of it by a
 * background prefetch, shut down by vmc_rbd_shutdown(). The image
 * operations on them are in rbd.c. Built only with librbd.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rbd-dl.h"

#include "vmclone-rbd.h"
#include "rbd-internal.h"

/* ------------------------------------------------------------- connect */

/*
 * One cluster connection per process and settings (client id, conf
 * file): a command that touches several images (a clone group, a
 * template copy and its clones, fsck) connects once. Connecting costs
 * more than most image calls (reading the conf, the monitor handshake,
 * the maps). A forked child never uses its parent's.
 *
 * The connections are shut down by vmc_rbd_shutdown(), which the program
 * calls before it exits, never from an atexit handler: exit() runs the
 * handlers interleaved with the C++ static destructors of librados,
 * libceph-common, boost and libstdc++ (registered when librados is loaded
 * and lazily afterwards, some after ours), while librados's own threads
 * (messenger workers, timers, finishers, the log) still run, and could
 * meet destroyed objects. Ceph's own tools shut librados down before
 * exit() (the rados tool) or leave with _exit() (the ceph CLI when it
 * cannot). (The "terminate called after throwing an instance of
 * 'std::system_error'" aborts once blamed on the exit were librbd's own
 * open/close race: see READ_ONLY_THREADS below.)
 */
#define CONN_CACHE 4

/*
 * Prefetch (vmc_rbd_prefetch()): a command that knows early which pool
 * it will use (a clone into an rbd pool, once the catalog has resolved
 * the pool) has a thread load the libraries and connect while it does
 * its catalog work; the first real call then waits for that connection
 * instead of making its own. A slot is FREE, CONNECTING (the thread
 * runs; it alone writes the slot's result, under conn_lock, and
 * broadcasts conn_cond), READY, or FAILED (the connect's status and
 * failing step, kept for the first real call to report with its own spec
 * as it would have reported its own connect; the slot is then FREE, and
 * the next call connects again, as after any failed connect). The
 * thread is joined by vmc_rbd_shutdown(), so a command that prefetched
 * and never used rbd still waits for its connect before it exits.
 */
enum conn_state { CONN_FREE, CONN_CONNECTING, CONN_READY, CONN_FAILED };

struct cached_cluster {
    char id[128];
    char conf[PATH_MAX];
    rados_t cluster;
    pid_t pid;
    enum conn_state state;
    int r;                      /* FAILED: the connect's status */
    const char *what;           /* ... and the step that failed */
    pthread_t thread;           /* the prefetch's, while joinable */
    bool joinable;
    bool read_only;             /* the connection of read-only opens */
};

static struct cached_cluster conn_cache[CONN_CACHE];
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conn_cond = PTHREAD_COND_INITIALIZER;

/* VMCLONE_TRACE_RBD=1: one line on stderr per connection event, with
 * the wall clock (seconds), for tests and timings. */
static void
trace(const char *fmt, ...)
{
    static int on = -1;
    struct timespec ts;
    char line[PATH_MAX + 256];
    va_list ap;

    if (__atomic_load_n(&on, __ATOMIC_RELAXED) < 0) {
        const char *v = getenv("VMCLONE_TRACE_RBD");

        __atomic_store_n(&on, v && v[0] && strcmp(v, "0"), __ATOMIC_RELAXED);
    }
    if (!__atomic_load_n(&on, __ATOMIC_RELAXED)) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "vm-clone: rbd trace %lld.%06ld %s\n",
            (long long)ts.tv_sec, ts.tv_nsec / 1000, line);
}

static double
elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

void
vmc_rbd_shutdown(void)
{
    pthread_t t;
    size_t i;
    bool found;

    do {    /* the prefetches first: they publish under conn_lock */
        found = false;
        pthread_mutex_lock(&conn_lock);
        for (i = 0; i < CONN_CACHE && !found; i++) {
            if (conn_cache[i].joinable && conn_cache[i].pid == getpid()) {
                conn_cache[i].joinable = false;
                t = conn_cache[i].thread;
                found = true;
            }
        }
        pthread_mutex_unlock(&conn_lock);
        if (found) {
            pthread_join(t, NULL);
        }
    } while (found);
    pthread_mutex_lock(&conn_lock);
    for (i = 0; i < CONN_CACHE; i++) {
        if (conn_cache[i].state == CONN_READY &&
            conn_cache[i].pid == getpid()) {
            rados_shutdown(conn_cache[i].cluster);
            trace("shutdown id=%s conf=%s", conn_cache[i].id,
                  conn_cache[i].conf);
        }
        conn_cache[i].state = CONN_FREE;
        conn_cache[i].joinable = false;
    }
    pthread_mutex_unlock(&conn_lock);
}

/*
 * Connecting under load: a monitor that many clients reach at once (a
 * burst of CI clones on many hosts) can miss the mount timeout, and a
 * fresh attempt after a pause then usually gets in. Only a timeout is
 * retried, never a refused authentication, a missing pool or conf:
 * CONNECT_ATTEMPTS in all, the pause doubling from CONNECT_BACKOFF_MS,
 * with jitter so that the clients that failed together do not come back
 * together. The mount timeout is the conf's client_mount_timeout when it
 * sets one, else MOUNT_TIMEOUT (Ceph's default, 300 s, is no time for a
 * command to wait).
 */
#define CONNECT_ATTEMPTS 3
#define CONNECT_BACKOFF_MS 250
#define MOUNT_TIMEOUT "15"
#define CEPH_DEFAULT_MOUNT_TIMEOUT 300.0

/*
 * Read-only connections (READ_ONLY_THREADS): librbd 16.2 races itself
 * at every open. The thread that completes an open wakes the caller of
 * rbd_open, then takes the image's state lock once more; the caller,
 * back in our code, can close the image meanwhile, the close finishing
 * on librados's other completion thread (librados_thread_count, 2 by
 * default), and free that lock first. Under CPU load (the completing
 * thread preempted between the two steps) a process now and then
 * aborted ("terminate called after throwing an instance of
 * 'std::system_error' what(): Invalid argument", or a failed assertion
 * in pthread_mutex_lock, or malloc's "invalid size"), or hung for good
 * in that lock. With one completion thread the close cannot finish
 * before the open's completion has returned. But librbd's writers need
 * two: some (rbd_snap_unprotect) wait, inside a completion, for another
 * completion, and with one thread wait forever. So the images opened
 * only to be read (fsck's parent, seal, children and data checks) go
 * through a connection of their own with one completion thread; the
 * rest keep librados's default, and the race.
 */
#define READ_ONLY_THREADS "1"

/* One attempt: a new handle with @s's settings, connected into *@out;
 * *@what says which step failed. */
static int
connect_once(const struct rbd_spec *s, bool read_only, rados_t *out,
             const char **what)
{
    rados_t c;
    char buf[64];
    int r = rados_create(&c, s->id[0] ? s->id : NULL);

    *what = "cannot create a client";
    if (r < 0) {
        return r;
    }
    *what = "cannot read the Ceph configuration";
    r = rados_conf_read_file(c, s->conf[0] ? s->conf : NULL);
    if (r == 0) {
        /* our output stays ours: librados logs to its log file only */
        rados_conf_set(c, "log_to_stderr", "false");
        rados_conf_set(c, "err_to_stderr", "false");
        if (read_only) {    /* one completion thread: see above */
            rados_conf_set(c, "librados_thread_count", READ_ONLY_THREADS);
        }
        if (rados_conf_get(c, "client_mount_timeout", buf, sizeof(buf)) < 0 ||
            strtod(buf, NULL) == CEPH_DEFAULT_MOUNT_TIMEOUT) {
            rados_conf_set(c, "client_mount_timeout", MOUNT_TIMEOUT);
        }
        *what = "cannot connect to the cluster";
        r = rados_connect(c);
    }
    if (r < 0) {
        rados_shutdown(c);
        return r;
    }
    *out = c;
    return 0;
}

/* A new connected cluster handle with @s's settings, retried on a
 * timeout (see above); *@what: the step that failed. */
static int
connect_attempts(const struct rbd_spec *s, bool read_only, rados_t *out,
                 const char **what, const char *how)
{
    struct timespec t0;
    unsigned attempt, pause = CONNECT_BACKOFF_MS;
    int r = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    trace("connect %s id=%s conf=%s", how, s->id, s->conf);
    for (attempt = 1; attempt <= CONNECT_ATTEMPTS; attempt++) {
        r = connect_once(s, read_only, out, what);
        if (r != -ETIMEDOUT || attempt == CONNECT_ATTEMPTS) {
            break;
        }
        usleep((pause + (unsigned)rand() % (pause / 2 + 1)) * 1000u);
        pause *= 2;
    }
    trace("connected %s status=%d in %.1f ms", how, r, elapsed_ms(&t0));
    return r;
}

/* The error of a connect that returned @r at step @what, for @spec. */
static int
connect_error(int r, const char *what, const char *spec,
              struct vmc_error *err)
{
    if (r == -ELIBACC) {
        return vmc_error_set(err, r, "rbd '%s': Ceph's client libraries "
                             "cannot be loaded (librbd1, librados2): %s",
                             spec, rbd_dl_error());
    }
    if (r == -ETIMEDOUT) {
        return vmc_error_set(err, r, "rbd '%s': %s: %s (%u attempts)", spec,
                             what, strerror(-r), CONNECT_ATTEMPTS);
    }
    if (r < 0) {
        return vmc_error_set(err, r, "rbd '%s': %s: %s", spec, what,
                             r == -ENOENT ? "not found" : strerror(-r));
    }
    return 0;
}

/* The prefetch thread: connect slot @arg's settings, publish the result. */
static void *
prefetch_main(void *arg)
{
    struct cached_cluster *e = arg;
    struct rbd_spec s;
    const char *what = NULL;
    rados_t c = NULL;
    int r;

    /* id and conf do not change while the slot is CONNECTING */
    memset(&s, 0, sizeof(s));
    snprintf(s.id, sizeof(s.id), "%s", e->id);
    snprintf(s.conf, sizeof(s.conf), "%s", e->conf);
    r = connect_attempts(&s, e->read_only, &c, &what, "in the background");
    pthread_mutex_lock(&conn_lock);
    e->r = r;
    e->what = what;
    e->cluster = c;
    e->state = r == 0 ? CONN_READY : CONN_FAILED;
    pthread_cond_broadcast(&conn_cond);
    pthread_mutex_unlock(&conn_lock);
    return NULL;
}

/* Slot @e is its parent's (before a fork): forget it. */
static void
drop_parents(struct cached_cluster *e)
{
    if (e->state != CONN_FREE && e->pid != getpid()) {
        e->state = CONN_FREE;
        e->joinable = false;    /* the parent's thread, not ours */
    }
}

void
vmc_rbd_prefetch(const char *spec, bool read_only)
{
    struct cached_cluster *e, *slot = NULL;
    struct rbd_spec s;
    size_t i;

    if (!vmc_rbd_is_spec(spec) ||
        (rbd_spec_parse(spec, false, &s, NULL) < 0 &&
         rbd_spec_parse(spec, true, &s, NULL) < 0)) {
        return;     /* the real call reports what is wrong */
    }
    pthread_mutex_lock(&conn_lock);
    for (i = 0; i < CONN_CACHE; i++) {
        e = &conn_cache[i];
        drop_parents(e);
        if (e->state != CONN_FREE && e->read_only == read_only &&
            !strcmp(e->id, s.id) && !strcmp(e->conf, s.conf)) {
            slot = NULL;    /* connected, connecting, or a failure to tell */
            break;
        }
        if (e->state == CONN_FREE && !e->joinable && !slot) {
            slot = e;
        }
    }
    if (slot) {
        slot->read_only = read_only;
        snprintf(slot->id, sizeof(slot->id), "%s", s.id);
        snprintf(slot->conf, sizeof(slot->conf), "%s", s.conf);
        slot->pid = getpid();
        slot->state = CONN_CONNECTING;
        trace("prefetch %s", spec);
        if (pthread_create(&slot->thread, NULL, prefetch_main, slot) == 0) {
            slot->joinable = true;
        } else {
            slot->state = CONN_FREE;    /* the real call connects */
        }
    }
    pthread_mutex_unlock(&conn_lock);
}

/* Under conn_lock: the result of slot @e, which has @s's settings: wait
 * while its prefetch connects; a failure is taken (the slot freed, its
 * thread joined: it has published, it only returns) into *@r, *@what. */
static void
take_prefetched(struct cached_cluster *e, rados_t *out, int *r,
                const char **what)
{
    struct timespec t0;

    if (e->state == CONN_CONNECTING) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (e->state == CONN_CONNECTING) {
            pthread_cond_wait(&conn_cond, &conn_lock);
        }
        trace("waited %.1f ms for the background connect", elapsed_ms(&t0));
    }
    if (e->state == CONN_READY) {
        *out = e->cluster;
        *r = 0;
        return;
    }
    *r = e->r;
    *what = e->what;
    e->state = CONN_FREE;
    if (e->joinable) {
        pthread_join(e->thread, NULL);
        e->joinable = false;
    }
}

/* The process's connection with @s's settings (@read_only: the one for
 * read-only opens), made on first use (or by a prefetch). */
static int
cluster_get(const struct rbd_spec *s, bool read_only, rados_t *out,
            const char *spec, struct vmc_error *err)
{
    struct cached_cluster *e, *slot = NULL;
    const char *what = NULL;
    size_t i;
    int r = 0;

    pthread_mutex_lock(&conn_lock);
    for (i = 0; i < CONN_CACHE; i++) {
        e = &conn_cache[i];
        drop_parents(e);
        if (e->state != CONN_FREE && e->read_only == read_only &&
            !strcmp(e->id, s->id) && !strcmp(e->conf, s->conf)) {
            take_prefetched(e, out, &r, &what);
            pthread_mutex_unlock(&conn_lock);
            return connect_error(r, what, spec, err);
        }
        if (e->state == CONN_FREE && !e->joinable && !slot) {
            slot = e;
        }
    }
    r = connect_attempts(s, read_only, out, &what, "now");
    if (r == 0 && slot) {
        slot->read_only = read_only;
        snprintf(slot->id, sizeof(slot->id), "%s", s->id);
        snprintf(slot->conf, sizeof(slot->conf), "%s", s->conf);
        slot->cluster = *out;
        slot->pid = getpid();
        slot->state = CONN_READY;
    }
    pthread_mutex_unlock(&conn_lock);
    if (r < 0) {
        return connect_error(r, what, spec, err);
    }
    return !slot ? 1 : 0;       /* 1: not cached, the caller's */
}

/* rbd_conn_open() on the read-only connection when @read_only. */
static int
conn_open(struct rbd_conn *c, const struct rbd_spec *s, bool read_only,
          const char *spec, struct vmc_error *err)
{
    int r;

    memset(c, 0, sizeof(*c));
    r = cluster_get(s, read_only, &c->cluster, spec, err);
    if (r < 0) {
        return r;
    }
    c->own_cluster = r == 1;
    r = rados_ioctx_create(c->cluster, s->pool, &c->io);
    if (r < 0) {
        rbd_conn_close(c);
        return vmc_error_set(err, r, "rbd '%s': cannot open the pool: %s",
                             spec, r == -ENOENT ? "not found"
                                                : strerror(-r));
    }
    c->have_io = true;
    rados_ioctx_set_namespace(c->io, s->ns[0] ? s->ns : NULL);
    return 0;
}

int
rbd_conn_open(struct rbd_conn *c, const struct rbd_spec *s,
              const char *spec, struct vmc_error *err)
{
    return conn_open(c, s, false, spec, err);
}

void
rbd_conn_close(struct rbd_conn *c)
{
    if (c->have_io) {
        rados_ioctx_destroy(c->io);
    }
    if (c->own_cluster) {
        rados_shutdown(c->cluster);
    }
    memset(c, 0, sizeof(*c));
}

int
rbd_open_spec(const char *spec, struct rbd_spec *s, struct rbd_conn *c,
              struct vmc_error *err)
{
    int r = rbd_spec_parse(spec, true, s, err);

    return r < 0 ? r : conn_open(c, s, false, spec, err);
}

int
rbd_open_spec_ro(const char *spec, struct rbd_spec *s, struct rbd_conn *c,
                 struct vmc_error *err)
{
    int r = rbd_spec_parse(spec, true, s, err);

    return r < 0 ? r : conn_open(c, s, true, spec, err);
}
