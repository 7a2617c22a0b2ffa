/*
 * qmp.c - a small client of QEMU's machine protocol (QMP) on a unix
 * socket: connect (waiting for QEMU to listen), leave the greeting's
 * negotiation with qmp_capabilities, run one command at a time and read
 * its answer, skipping the asynchronous events QEMU sends in between (the
 * last migration status they carried is kept, for
 * vmc_qmp_wait_migration()). A command can carry a file descriptor.
 * Used by "start --freezable", "template freeze" and instant clones
 * (include/vmclone-virt.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "vmclone-virt.h"

struct vmc_qmp {
    int fd;
    char buf[65536];
    size_t len;
    char migration[32];     /* the last MIGRATION event's status */
};

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One connection attempt; the fd or -errno. */
static int
qmp_dial(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = -errno;

        close(fd);
        return e;
    }
    return fd;
}

/* The next JSON line from QEMU (malloc'd object), waiting until @deadline. */
static int
qmp_read(struct vmc_qmp *q, double deadline, struct json_object **out)
{
    for (;;) {
        char *nl = memchr(q->buf, '\n', q->len);
        struct pollfd p = { .fd = q->fd, .events = POLLIN };
        double left;
        ssize_t n;

        if (nl) {
            *nl = '\0';
            *out = json_tokener_parse(q->buf);
            q->len -= (size_t)(nl + 1 - q->buf);
            memmove(q->buf, nl + 1, q->len);
            if (!*out) {
                return -EPROTO;
            }
            return 0;
        }
        if (q->len == sizeof(q->buf)) {
            return -EMSGSIZE;
        }
        left = deadline - now_s();
        if (left <= 0) {
            return -ETIMEDOUT;
        }
        if (poll(&p, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR) {
            return -errno;
        }
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) {
            continue;
        }
        n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
        if (n == 0) {
            return -ECONNRESET;
        }
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
            return -errno;
        }
        q->len += n > 0 ? (size_t)n : 0;
    }
}

/* Whether child @pid exited (not reaped). */
static bool
child_gone(int pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    return pid > 0 && waitid(P_PID, (id_t)pid, &si,
                             WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == pid;
}

int
vmc_qmp_open(const char *path, double timeout, int pid, struct vmc_qmp **out,
             struct vmc_error *err)
{
    double deadline = now_s() + timeout;
    struct json_object *greet = NULL, *reply = NULL;
    struct vmc_qmp *q;
    int fd, r;

    for (;;) {
        fd = qmp_dial(path);
        if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED) ||
            now_s() > deadline) {
            break;
        }
        if (child_gone(pid)) {
            return vmc_error_set(err, -ECHILD, "QEMU exited before it "
                                 "listened on its QMP socket %s", path);
        }
        usleep(2000);   /* QEMU takes 0.1 s or more to get there */
    }
    if (fd < 0) {
        return vmc_error_set(err, fd, "cannot connect to QEMU's QMP socket "
                             "%s: %s", path, strerror(-fd));
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        close(fd);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    q->fd = fd;
    r = qmp_read(q, deadline, &greet);
    if (r == 0 && !json_object_object_get_ex(greet, "QMP", NULL)) {
        r = -EPROTO;
    }
    json_object_put(greet);
    if (r == 0) {
        r = vmc_qmp_cmd(q, "qmp_capabilities", NULL, &reply, err);
        json_object_put(reply);
        if (r < 0) {
            vmc_qmp_close(q);
            return r;
        }
    }
    if (r < 0) {
        vmc_qmp_close(q);
        return vmc_error_set(err, r, "QEMU's QMP socket %s did not greet: "
                             "%s", path, strerror(-r));
    }
    *out = q;
    return 0;
}

/* Note what event @ev says about a migration. */
static void
note_event(struct vmc_qmp *q, struct json_object *ev)
{
    struct json_object *name = json_object_object_get(ev, "event");
    const char *st;

    if (name && !strcmp(json_object_get_string(name), "MIGRATION")) {
        st = json_object_get_string(json_object_object_get(
            json_object_object_get(ev, "data"), "status"));
        snprintf(q->migration, sizeof(q->migration), "%s", st ? st : "");
    }
}

/* Send @len bytes of @text, the first with @fd attached (-1: none). */
static int
qmp_send(struct vmc_qmp *q, const char *text, size_t len, int fd)
{
    size_t off = 0;

    while (off < len) {
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { .iov_base = (char *)text + off,
                             .iov_len = len - off };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if (fd >= 0 && off == 0) {
            struct cmsghdr *c;

            memset(cbuf, 0, sizeof(cbuf));
            m.msg_control = cbuf;
            m.msg_controllen = sizeof(cbuf);
            c = CMSG_FIRSTHDR(&m);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        n = sendmsg(q->fd, &m, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
        off += n > 0 ? (size_t)n : 0;
    }
    return 0;
}

static int
qmp_cmd(struct vmc_qmp *q, const char *cmd, struct json_object *args, int fd,
        struct json_object **ret, struct vmc_error *err)
{
    struct json_object *req = json_object_new_object(), *ans = NULL, *e;
    const char *text;
    double deadline = now_s() + 60;
    int r;

    *ret = NULL;
    json_object_object_add(req, "execute", json_object_new_string(cmd));
    if (args) {
        json_object_object_add(req, "arguments", json_object_get(args));
    }
    text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    r = qmp_send(q, text, strlen(text), fd);
    json_object_put(req);
    while (r == 0) {
        r = qmp_read(q, deadline, &ans);
        if (r == 0 && json_object_object_get_ex(ans, "event", NULL)) {
            note_event(q, ans);
            json_object_put(ans);       /* asynchronous: not our answer */
            ans = NULL;
            continue;
        }
        break;
    }
    if (r < 0) {
        return vmc_error_set(err, r == -ECONNRESET ? -EPIPE : r,
                             "QMP %s: %s", cmd, strerror(-r));
    }
    if (json_object_object_get_ex(ans, "error", &e)) {
        r = vmc_error_set(err, -EIO, "QEMU refused %s: %s", cmd,
                          json_object_get_string(json_object_object_get(
                              e, "desc")));
        json_object_put(ans);
        return r;
    }
    if (json_object_object_get_ex(ans, "return", &e)) {
        *ret = json_object_get(e);
    }
    json_object_put(ans);
    return 0;
}

int
vmc_qmp_cmd(struct vmc_qmp *q, const char *cmd, struct json_object *args,
            struct json_object **ret, struct vmc_error *err)
{
    return qmp_cmd(q, cmd, args, -1, ret, err);
}

int
vmc_qmp_cmd_fd(struct vmc_qmp *q, const char *cmd, struct json_object *args,
               int fd, struct json_object **ret, struct vmc_error *err)
{
    return qmp_cmd(q, cmd, args, fd, ret, err);
}

static bool
migration_ended(const char *st)
{
    return !strcmp(st, "completed") || !strcmp(st, "failed") ||
           !strcmp(st, "cancelled");
}

int
vmc_qmp_wait_migration(struct vmc_qmp *q, double timeout, char *buf,
                       size_t len, struct vmc_error *err)
{
    double deadline = now_s() + timeout;
    struct json_object *o = NULL;
    int r = 0;

    while (!migration_ended(q->migration)) {
        r = qmp_read(q, deadline, &o);
        if (r < 0) {
            return vmc_error_set(err, r == -ECONNRESET ? -EPIPE : r,
                                 "waiting for the migration's end: %s%s%s",
                                 strerror(-r), q->migration[0]
                                 ? "; last status " : "", q->migration);
        }
        note_event(q, o);
        json_object_put(o);
        o = NULL;
    }
    snprintf(buf, len, "%s", q->migration);
    return 0;
}

int
vmc_qmp_status(struct vmc_qmp *q, char *buf, size_t len,
               struct vmc_error *err)
{
    struct json_object *ret = NULL;
    int r = vmc_qmp_cmd(q, "query-status", NULL, &ret, err);

    if (r == 0) {
        snprintf(buf, len, "%s", json_object_get_string(
                     json_object_object_get(ret, "status")));
    }
    json_object_put(ret);
    return r;
}

int
vmc_qmp_wait_closed(struct vmc_qmp *q, double timeout)
{
    double deadline = now_s() + timeout;
    struct json_object *o = NULL;
    int r;

    while ((r = qmp_read(q, deadline, &o)) == 0) {
        json_object_put(o);
        o = NULL;
    }
    return r == -ECONNRESET ? 0 : r;
}

void
vmc_qmp_close(struct vmc_qmp *q)
{
    if (q) {
        close(q->fd);
        free(q);
    }
}
