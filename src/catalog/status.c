/*
 * status.c - a VM's honest state for the operator (issue 13 point 5):
 * broken when a file of its chain is missing or known damaged, running
 * when a process holds its disk's write lock (QEMU's), expired when its
 * TTL passed, else the row's state. Also finds the process holding a
 * file, for refusals that name it ("pid N holds its disk").
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog-ops.h"
#include "engine.h"
#include "vmclone-catalog-admin.h"

/* Every volume a VM's current disks read: its top layers and everything
 * under them (its snapshots, a template copy, another VM's snapshot). */
static const char chain_vols_sql[] =
    "WITH RECURSIVE ch(id) AS (SELECT id FROM volumes WHERE vm_id = ?1 "
    "AND top = 1 UNION SELECT v.parent_id FROM volumes v JOIN ch ON v.id = "
    "ch.id WHERE v.parent_id IS NOT NULL) SELECT o.id, "
    "coalesce(o.parent_id, 0), o.disk, o.virtual_size, o.path FROM ch "
    "JOIN volume_owners o ON o.id = ch.id ORDER BY o.top DESC, o.disk";

/* Does open file @fd_link (a /proc/PID/fd entry) name @st's file? */
static bool
fd_is_file(const char *fd_link, const struct stat *st)
{
    struct stat fs;

    return stat(fd_link, &fs) == 0 && fs.st_dev == st->st_dev &&
           fs.st_ino == st->st_ino;
}

/* Does process @pid (a /proc entry name) have @st's file open? */
static bool
pid_has_file(const char *pid, const struct stat *st)
{
    char dir[300], link[600];
    struct dirent *e;
    bool found = false;
    DIR *d;

    snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
    d = opendir(dir);
    while (d && !found && (e = readdir(d))) {
        if (e->d_name[0] != '.') {
            snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
            found = fd_is_file(link, st);
        }
    }
    if (d) {
        closedir(d);
    }
    return found;
}

int
cat_file_holder(const char *path)
{
    struct dirent *e;
    struct stat st;
    int pid = 0, self = (int)getpid();
    DIR *d;

    if (stat(path, &st) < 0 || !(d = opendir("/proc"))) {
        return 0;
    }
    while (!pid && (e = readdir(d))) {
        int p = atoi(e->d_name);

        if (p > 0 && p != self && pid_has_file(e->d_name, &st)) {
            pid = p;
        }
    }
    closedir(d);
    return pid;
}

bool
cat_volume_damaged(const char *path, char *detail, size_t len)
{
    char mark[4096], line[256] = "";
    FILE *f;

    if (cat_path_is_rbd(path)) {
        return false;   /* no marker files beside rbd images */
    }
    snprintf(mark, sizeof(mark), "%s" CAT_DAMAGED_SUFFIX, path);
    f = fopen(mark, "r");
    if (!f) {
        return false;
    }
    if (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
    }
    fclose(f);
    snprintf(detail, len, "'%s' is damaged (%s)", path, line);
    return true;
}

int
cat_volume_mark_damaged(const char *path, const char *finding)
{
    char mark[4096];
    FILE *f;
    int r = 0;

    snprintf(mark, sizeof(mark), "%s" CAT_DAMAGED_SUFFIX, path);
    f = fopen(mark, "w");
    if (!f) {
        return -errno;
    }
    if (fprintf(f, "%s\n", finding) < 0) {
        r = -EIO;
    }
    if (fclose(f) != 0 && r == 0) {
        r = -errno;
    }
    return r;
}

void
cat_volume_unmark_damaged(const char *path)
{
    char mark[4096];

    snprintf(mark, sizeof(mark), "%s" CAT_DAMAGED_SUFFIX, path);
    unlink(mark);
}

int
cat_refuse_damaged(const struct cat_disks *base, const char *source,
                   struct vmc_error *err)
{
    char detail[512];
    size_t i;

    for (i = 0; i < base->n; i++) {
        if (cat_volume_damaged(base->d[i].path, detail, sizeof(detail))) {
            return vmc_error_set(err, -EUCLEAN, "cannot clone '%s': %s; "
                                 "repair it with 'vm-clone fsck --repair'",
                                 source, detail);
        }
    }
    return 0;
}

/* broken: the first file of @vols that is missing or known damaged. */
static bool
find_broken(const struct cat_disks *vols, struct vmc_vm_status *out)
{
    size_t i;

    for (i = 0; i < vols->n; i++) {
        const char *path = vols->d[i].path;

        if (access(path, F_OK) < 0) {
            snprintf(out->detail, sizeof(out->detail), "'%s' is missing",
                     path);
            return true;
        }
        if (cat_volume_damaged(path, out->detail, sizeof(out->detail))) {
            return true;
        }
    }
    return false;
}

/* running: a top layer whose write lock another process holds. */
static bool
find_running(const struct cat_disks *vols, struct vmc_vm_status *out)
{
    size_t i;

    for (i = 0; i < vols->n; i++) {
        if (engine_file_write_held(vols->d[i].path)) {
            out->pid = cat_file_holder(vols->d[i].path);
            snprintf(out->detail, sizeof(out->detail), "'%s' is open for "
                     "writing", vols->d[i].path);
            return true;
        }
    }
    return false;
}

int
vmc_catalog_vm_status(struct vmc_catalog *cat, const char *name,
                      struct vmc_vm_status *out, struct vmc_error *err)
{
    static const char *const row_states[] = { "ready", "creating",
                                              "deleting" };
    struct cat_disks vols = { 0 };
    cat_stmt *st = NULL;
    int64_t id = 0;
    double expires = 0;
    size_t k;
    int r;

    memset(out, 0, sizeof(*out));
    out->state = row_states[0];
    r = cat_prepare(cat, &st, err, "SELECT id, state, coalesce(expires, 0) "
                    "FROM vms WHERE name = ?", "s", name);
    if (r == 0 && (r = cat_step(cat, st, err)) == 0) {
        r = vmc_error_set(err, -ENOENT, "no VM named '%s'", name);
    }
    if (r > 0) {
        id = cat_col_i64(st, 0);
        for (k = 0; k < 3; k++) {
            if (!strcmp(cat_col(st, 1), row_states[k])) {
                out->state = row_states[k];
            }
        }
        expires = strtod(cat_col(st, 2), NULL);
        r = 0;
    }
    cat_finalize(st);
    if (r < 0 || out->state != row_states[0]) {
        return r;
    }
    r = cat_disks_load(cat, &vols, chain_vols_sql, id, err);
    if (r == 0 && find_broken(&vols, out)) {
        out->state = "broken";
    } else if (r == 0 && find_running(&vols, out)) {
        out->state = "running";
    } else if (r == 0 && expires > 0 && expires < cat_now()) {
        out->state = "expired";
    }
    cat_disks_release(&vols);
    return r;
}

int
cat_vm_in_use_error(const char *vm, const char *path, const char *next,
                    struct vmc_error *err)
{
    int pid = cat_file_holder(path);
    char who[64] = "a process";

    if (pid > 0) {
        snprintf(who, sizeof(who), "pid %d", pid);
    }
    if (engine_file_write_held(path)) {
        return vmc_error_set(err, -EBUSY, "VM '%s' is running (%s holds its "
                             "disk '%s' open for writing): %s", vm, who, path,
                             next);
    }
    return vmc_error_set(err, -EBUSY, "VM '%s' is in use (%s has its disk "
                         "'%s' open): %s", vm, who, path, next);
}

int
cat_vm_refuse_running(struct vmc_catalog *cat, const char *vm, int64_t vid,
                      struct vmc_error *err)
{
    struct cat_disks tops = { 0 };
    size_t i;
    int r = cat_disks_of(cat, &tops, CAT_DISKS_VM_TOP, vid, err);

    for (i = 0; r == 0 && i < tops.n; i++) {
        r = cat_rbd_refuse_watched(vm, tops.d[i].path, err);
        if (r == 0 && engine_file_in_use(tops.d[i].path)) {
            r = cat_vm_in_use_error(vm, tops.d[i].path, "stop it first, "
                                    "then retry", err);
        }
    }
    cat_disks_release(&tops);
    return r;
}
