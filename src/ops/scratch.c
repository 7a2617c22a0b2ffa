/*
 * scratch.c - throwaway qcow2 overlays for ephemeral runs ("start
 * --ephemeral", "serve --snapshot"): the guest's writes go to an overlay
 * on top of the real disk, which stays byte-identical.
 *
 * The record that lets a later command remove what a killed run left is
 * the overlays' directory itself: BASE/ephemeral.XXXXXX (mode 0700),
 * made under a hidden name, flock()ed, then renamed to its final name, so
 * a directory of that name is always locked while its owner lives. The
 * lock is on the open directory, so a child that inherits the descriptor
 * (QEMU) keeps it held until the child exits too. vmc_scratch_sweep()
 * removes the overlays of a directory whose lock it can take (the owner
 * and its children are gone), and the directory when that empties it;
 * it removes only names this file makes (overlay-N.qcow2), never
 * anything else.
 *
 * An overlay over an rbd image (serve --snapshot of a disk in an rbd
 * pool) is the same local qcow2 file: it records QEMU's name of the image
 * as its backing reference (which our chain refuses to open by name), and
 * vmc_scratch_open_rbd() attaches the image, opened read-only through
 * librbd, below it. Nothing is made in Ceph, so a killed run leaves
 * nothing there; its overlay goes with its directory, as any other.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ops-internal.h"
#include "engine.h"
#include "vmclone-rbd.h"

#define SCRATCH_PREFIX "ephemeral."
#define SCRATCH_HIDDEN ".ephemeral-new."
#define OVERLAY_PREFIX "overlay-"
/* a hidden directory (killed between mkdtemp and rename) older than
 * this is no one's */
#define HIDDEN_STALE_SECONDS 60

struct vmc_scratch {
    char *dir;
    int lock_fd;
    unsigned n;             /* overlays made: overlay-0 .. overlay-(n-1) */
};

int
vmc_scratch_new(struct vmc_scratch **out, const char *base,
                struct vmc_error *err)
{
    struct vmc_scratch *s;
    char tmp[PATH_MAX], fin[PATH_MAX];
    size_t bl = strlen(base);
    int r = 0;

    *out = NULL;
    if (bl + sizeof(SCRATCH_HIDDEN "XXXXXX") + 1 > sizeof(tmp)) {
        return vmc_error_set(err, -ENAMETOOLONG, "'%s': name too long",
                             base);
    }
    if (mkdir(base, 0700) < 0 && errno != EEXIST) {
        return vmc_error_set(err, -errno, "cannot create '%s': %s", base,
                             strerror(errno));
    }
    snprintf(tmp, sizeof(tmp), "%s/" SCRATCH_HIDDEN "XXXXXX", base);
    s = calloc(1, sizeof(*s));
    if (!s) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    s->lock_fd = -1;
    if (!mkdtemp(tmp)) {
        r = vmc_error_set(err, -errno, "cannot create a directory for "
                          "the overlays in '%s': %s", base, strerror(errno));
        free(s);
        return r;
    }
    snprintf(fin, sizeof(fin), "%s/" SCRATCH_PREFIX "%s", base,
             strrchr(tmp, '.') + 1);
    s->lock_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0 ||
        rename(tmp, fin) < 0) {
        r = vmc_error_set(err, -errno, "cannot set up '%s': %s", tmp,
                          strerror(errno));
        rmdir(tmp);
        vmc_scratch_free(s);
        return r;
    }
    s->dir = strdup(fin);
    if (!s->dir) {
        rmdir(fin);
        vmc_scratch_free(s);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

int
vmc_scratch_overlay(struct vmc_scratch *s, const char *backing,
                    enum vmc_format backing_format, char **path_out,
                    struct vmc_error *err)
{
    struct vmc_create_opts co;
    char abs[PATH_MAX], *path = NULL;
    int r;

    *path_out = NULL;
    if (!realpath(backing, abs)) {
        return vmc_error_set(err, -errno, "'%s': %s", backing,
                             strerror(errno));
    }
    if (asprintf(&path, "%s/" OVERLAY_PREFIX "%u.qcow2", s->dir, s->n) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    vmc_create_opts_init(&co);
    co.backing_file = abs;
    co.backing_format = backing_format;
    s->n++;                 /* counted before it exists: freed either way */
    r = vmc_image_create(path, &co, err);
    if (r < 0) {
        vmc_error_prepend(err, "throwaway overlay on '%s': ", backing);
        free(path);
        return r;
    }
    *path_out = path;
    return 0;
}

int
vmc_scratch_overlay_rbd(struct vmc_scratch *s, const char *spec,
                        char **path_out, struct vmc_error *err)
{
    struct vmc_create_opts co;
    struct vmc_image *img = NULL;
    char *path = NULL, *qemu = NULL;
    int r = vmc_rbd_image_open(&img, spec, 0, err);

    *path_out = NULL;
    if (r == 0) {
        r = vmc_rbd_qemu_filename(spec, &qemu, err);
    }
    if (r == 0 && asprintf(&path, "%s/" OVERLAY_PREFIX "%u.qcow2", s->dir,
                           s->n) < 0) {
        path = NULL;
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r == 0) {
        vmc_create_opts_init(&co);
        co.size = vmc_image_size(img);
        co.backing_file = qemu;
        co.backing_format = VMC_FMT_RAW;
        co.backing_unsafe = true;       /* an rbd image: sized above */
        s->n++;             /* counted before it exists: freed either way */
        r = vmc_image_create(path, &co, err);
    }
    vmc_image_close(img);
    free(qemu);
    if (r < 0) {
        vmc_error_prepend(err, "throwaway overlay on '%s': ", spec);
        free(path);
        return r;
    }
    *path_out = path;
    return 0;
}

int
vmc_scratch_open_rbd(struct vmc_image **out, const char *overlay,
                     const char *spec, unsigned flags, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2 };
    struct vmc_image_info info;
    struct vmc_image *top = NULL, *base = NULL;
    char *qemu = NULL;
    int r;

    *out = NULL;
    oo.flags = (flags & VMC_OPEN_RDWR) | VMC_OPEN_NO_BACKING;
    r = vmc_rbd_qemu_filename(spec, &qemu, err);
    if (r == 0) {
        r = vmc_image_open(&top, overlay, &oo, err);
    }
    if (r == 0) {
        vmc_image_get_info(top, &info);
        if (!info.backing_file || strcmp(info.backing_file, qemu)) {
            r = vmc_error_set(err, -EINVAL, "'%s' is not an overlay of rbd "
                              "image '%s'", overlay, spec);
        }
    }
    if (r == 0) {
        r = vmc_rbd_image_open(&base, spec, 0, err);
    }
    if (r == 0) {
        r = engine_image_attach_backing(top, base, err);
    }
    free(qemu);
    if (r < 0) {
        vmc_image_close(base);
        vmc_image_close(top);
        return r;
    }
    *out = top;
    return 0;
}

int
vmc_scratch_lock_fd(const struct vmc_scratch *s)
{
    return s->lock_fd;
}

/* Unlink overlay-0 .. overlay-(n-1) in @dirfd and remove @dir if that
 * empties it. */
static void
remove_overlays(int dirfd, const char *dir, unsigned n)
{
    char name[64];
    unsigned i;

    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), OVERLAY_PREFIX "%u.qcow2", i);
        unlinkat(dirfd, name, 0);
    }
    rmdir(dir);
}

void
vmc_scratch_free(struct vmc_scratch *s)
{
    if (!s) {
        return;
    }
    if (s->dir) {
        remove_overlays(s->lock_fd, s->dir, s->n);
    }
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
    }
    free(s->dir);
    free(s);
}

/* How many overlay-N.qcow2 names @dirfd holds past the last N seen:
 * the highest N + 1 (0 when none). Other names are not ours. */
static unsigned
overlay_count(int dirfd)
{
    DIR *d = fdopendir(dup(dirfd));
    struct dirent *de;
    unsigned n = 0;

    while (d && (de = readdir(d))) {
        const char *p = de->d_name;
        char *end;
        unsigned long i;

        if (strncmp(p, OVERLAY_PREFIX, strlen(OVERLAY_PREFIX))) {
            continue;
        }
        p += strlen(OVERLAY_PREFIX);
        i = strtoul(p, &end, 10);
        if (end != p && !strcmp(end, ".qcow2") && i < 65536 && i + 1 > n) {
            n = (unsigned)i + 1;
        }
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/* One entry of the base directory: 1 if it was a dead run's directory
 * and is now gone, else 0. */
static int
sweep_one(int basefd, const char *base, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    int fd, gone;

    if (snprintf(path, sizeof(path), "%s/%s", base, name) >=
        (int)sizeof(path)) {
        return 0;
    }
    if (!strncmp(name, SCRATCH_HIDDEN, strlen(SCRATCH_HIDDEN))) {
        /* killed before it was renamed: empty, or not ours */
        if (fstatat(basefd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode) &&
            st.st_mtime + HIDDEN_STALE_SECONDS < time(NULL)) {
            return rmdir(path) == 0;
        }
        return 0;
    }
    fd = openat(basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);              /* its owner (or QEMU) still runs */
        return 0;
    }
    remove_overlays(fd, path, overlay_count(fd));
    gone = access(path, F_OK) < 0;
    close(fd);
    return gone;
}

int
vmc_scratch_sweep(const char *base, unsigned *removed,
                  struct vmc_error *err)
{
    DIR *d = opendir(base);
    struct dirent *de;
    unsigned n = 0;

    if (removed) {
        *removed = 0;
    }
    if (!d) {
        if (errno == ENOENT) {
            return 0;
        }
        return vmc_error_set(err, -errno, "cannot read '%s': %s", base,
                             strerror(errno));
    }
    while ((de = readdir(d))) {
        if (!strncmp(de->d_name, SCRATCH_PREFIX, strlen(SCRATCH_PREFIX)) ||
            !strncmp(de->d_name, SCRATCH_HIDDEN, strlen(SCRATCH_HIDDEN))) {
            n += (unsigned)sweep_one(dirfd(d), base, de->d_name);
        }
    }
    closedir(d);
    if (removed) {
        *removed = n;
    }
    return 0;
}
