/*
 * catalog.c - the base of the catalog's file stack (see journal.h):
 * progress, crash and pause points, name checks, volume files and their
 * directories, backing references, the read-only query API, config,
 * pools and string lists. Calls only sql.c.
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


#include "catalog-internal.h"
#include "catalog-ops.h"
#include "vmclone-catalog-admin.h"
#include "engine.h"

/* ------------------------------------------------------------ helpers */

#define CAT_PROGRESS_UNIT (1u << 20)

void
vmc_catalog_set_progress(struct vmc_catalog *cat, vmc_progress_fn fn,
                         void *opaque)
{
    cat->progress = fn;
    cat->progress_opaque = opaque;
}

void
cat_progress_init(struct cat_progress *p, struct vmc_catalog *cat,
                  vmc_progress_fn fn, void *opaque, uint64_t steps)
{
    p->fn = fn ? fn : cat->progress;
    p->opaque = fn ? opaque : cat->progress_opaque;
    p->step = 0;
    p->steps = steps ? steps : 1;
    p->last = 0;
    p->cat = cat;
    p->base = 0;
    p->step_total = 0;
    cat->progress_bytes = 0;
}

uint64_t
vmc_catalog_progress_bytes(const struct vmc_catalog *cat)
{
    return cat->progress_bytes;
}

static void
cat_progress_cb(uint64_t done, uint64_t total, void *opaque)
{
    struct cat_progress *p = opaque;
    uint64_t part = total ? (uint64_t)((double)CAT_PROGRESS_UNIT *
                                       (double)(done > total ? total : done) /
                                       (double)total)
                          : CAT_PROGRESS_UNIT;

    p->last = p->step * CAT_PROGRESS_UNIT + part;
    p->step_total = total;
    p->cat->progress_bytes = p->base + (done > total ? total : done);
    p->fn(p->last, p->steps * CAT_PROGRESS_UNIT, p->opaque);
}

vmc_progress_fn
cat_progress_fn(const struct cat_progress *p)
{
    return p->fn ? cat_progress_cb : NULL;
}

void
cat_progress_next(struct cat_progress *p)
{
    if (p->step < p->steps) {
        p->step++;
    }
    p->base += p->step_total;
    p->step_total = 0;
    p->cat->progress_bytes = p->base;
    /* the last step done: 100 % even when the engine had nothing to do */
    if (p->fn && p->step == p->steps &&
        p->last < p->steps * CAT_PROGRESS_UNIT) {
        p->last = p->steps * CAT_PROGRESS_UNIT;
        p->fn(p->last, p->last, p->opaque);
    }
}

/* With $VMCLONE_PAUSE_AT = @point: create $VMCLONE_PAUSE_DIR/paused and
 * wait until $VMCLONE_PAUSE_DIR/go exists (race tests). */
static void
pause_point(const char *point)
{
    const char *want = getenv("VMCLONE_PAUSE_AT");
    const char *dir = getenv("VMCLONE_PAUSE_DIR");
    char *paused = NULL, *go = NULL;
    int fd;

    if (!want || !dir || strcmp(want, point) ||
        asprintf(&paused, "%s/paused", dir) < 0) {
        return;
    }
    if (asprintf(&go, "%s/go", dir) >= 0) {
        fd = open(paused, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            close(fd);
        }
        while (access(go, F_OK) < 0) {
            usleep(10000);
        }
    }
    free(paused);
    free(go);
}

void
cat_crashpoint(const char *point)
{
    const char *want = getenv("VMCLONE_CRASH_AT");

    if (want && !strcmp(want, point)) {
        _exit(99);
    }
    pause_point(point);
}

int
cat_check_name(const char *what, const char *name, struct vmc_error *err)
{
    size_t i, n = name ? strlen(name) : 0;

    if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-') {
        return vmc_error_set(err, -EINVAL, "invalid %s name '%s': 1 to 64 "
                             "characters, not starting with '.' or '-'",
                             what, name ? name : "");
    }
    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
            return vmc_error_set(err, -EINVAL, "invalid %s name '%s': only "
                                 "letters, digits, '.', '_' and '-'", what,
                                 name);
        }
    }
    return 0;
}

/* Length of the UTF-8 sequence at @s that encodes a printable character
 * (not a C0 or C1 control, not DEL), or 0. */
static size_t
printable_char(const unsigned char *s)
{
    size_t n, i;
    uint32_t c;

    if (s[0] >= 0x20 && s[0] < 0x7f) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3f);
    }
    /* overlong, surrogates, past U+10FFFF, C1 controls */
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff) || (c >= 0x80 && c <= 0x9f)) {
        return 0;
    }
    return n;
}

int
cat_check_label(const char *key, const char *value, struct vmc_error *err)
{
    size_t i, n, kl = key ? strlen(key) : 0, vl = value ? strlen(value) : 0;

    if (kl == 0 || kl > CAT_LABEL_KEY_MAX ||
        !((key[0] >= 'a' && key[0] <= 'z') ||
          (key[0] >= 'A' && key[0] <= 'Z') ||
          (key[0] >= '0' && key[0] <= '9'))) {
        return vmc_error_set(err, -EINVAL, "invalid label key: 1 to %d "
                             "characters, starting with a letter or digit",
                             CAT_LABEL_KEY_MAX);
    }
    for (i = 0; i < kl; i++) {
        char c = key[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
              c == '/')) {
            return vmc_error_set(err, -EINVAL, "invalid label key: only "
                                 "letters, digits, '.', '_', '-' and '/'");
        }
    }
    if (vl > CAT_LABEL_VALUE_MAX) {
        return vmc_error_set(err, -EINVAL, "label '%s': the value is longer "
                             "than %d bytes", key, CAT_LABEL_VALUE_MAX);
    }
    for (i = 0; i < vl; i += n) {
        n = printable_char((const unsigned char *)value + i);
        if (n == 0) {
            return vmc_error_set(err, -EINVAL, "label '%s': the value must "
                                 "be printable UTF-8 text (no control "
                                 "characters, byte %zu is not)", key, i);
        }
    }
    return 0;
}

/* ------------------------------------------------------------- files */

int
cat_fsync_dir_of(const char *path)
{
    char *dup = malloc(strlen(path) + 2);
    char *slash;
    int r;

    if (dup) {
        memcpy(dup, path, strlen(path) + 1);
    }
    if (!dup) {
        return -ENOMEM;
    }
    slash = strrchr(dup, '/');
    if (slash == dup) {
        slash[1] = '\0';
    } else if (slash) {
        *slash = '\0';
    } else {
        dup[0] = '.';
        dup[1] = '\0';
    }
    r = engine_sync_dir(dup);
    free(dup);
    return r;
}

mode_t
cat_new_file_mode(void)
{
    static mode_t mask = (mode_t)-1;

    if (mask == (mode_t)-1) {
        mask = umask(022);
        umask(mask);
    }
    return 0666 & ~mask;
}

/* chmod @path to its mode with @clear cleared and @set set. */
static int
chmod_bits(const char *path, mode_t clear, mode_t set)
{
    struct stat st;

    if (stat(path, &st) < 0 ||
        chmod(path, ((st.st_mode & 07777) & ~clear) | set) < 0) {
        return -errno;
    }
    return 0;
}

int
cat_mode_readonly(const char *path)
{
    return chmod_bits(path, 0222, 0);
}

int
cat_mode_new_readonly(const char *path)
{
    return chmod(path, cat_new_file_mode() & ~0222) < 0 ? -errno : 0;
}

int
cat_mode_writable(const char *path)
{
    return chmod_bits(path, 0, (cat_new_file_mode() & 0222) | S_IWUSR);
}

int
cat_unlink_volume_file(const char *path, struct vmc_error *err)
{
    char *seal = NULL;
    int r = 0;

    if (cat_path_is_rbd(path)) {
        return cat_rbd_unlink(path, err);
    }
    if (asprintf(&seal, "%s.seal", path) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        r = vmc_error_set(err, -errno, "cannot remove '%s': %s", path,
                          strerror(errno));
    }
    if (r == 0 && unlink(seal) < 0 && errno != ENOENT) {
        r = vmc_error_set(err, -errno, "cannot remove '%s': %s", seal,
                          strerror(errno));
    }
    if (r == 0) {
        cat_volume_unmark_damaged(path);
    }
    free(seal);
    return r;
}

int
cat_volume_path(struct vmc_catalog *cat, int64_t vid, char **out,
                struct vmc_error *err)
{
    int r = cat_get_str(cat, out, err,
                        "SELECT p.path || '/' || v.file FROM volumes v "
                        "JOIN pools p ON p.id = v.pool_id WHERE v.id = ?",
                        "I", vid);

    if (r == -ENOENT) {
        return vmc_error_set(err, r, "catalog: no volume %" PRId64, vid);
    }
    return r;
}

int
cat_mkdir_p(const char *path, struct vmc_error *err)
{
    char *dup = strdup(path);
    char *p;
    int r = 0;

    if (!dup) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (p = dup + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;

            *p = '\0';
            if (mkdir(dup, 0755) < 0 && errno != EEXIST) {
                r = vmc_error_set(err, -errno, "cannot create directory "
                                  "'%s': %s", dup, strerror(errno));
                break;
            }
            *p = c;
            if (c == '\0') {
                break;
            }
        }
    }
    free(dup);
    return r;
}

/* Read the store id in @dir's marker into @id ("" when there is none). */
static int
pool_marker_read(const char *marker, char *id, size_t size,
                 struct vmc_error *err)
{
    ssize_t n;
    int fd = open(marker, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    id[0] = '\0';
    if (fd < 0) {
        return errno == ENOENT ? 0 : vmc_error_set(err, -errno, "'%s': %s",
                                                   marker, strerror(errno));
    }
    n = read(fd, id, size - 1);
    close(fd);
    if (n < 0) {
        return vmc_error_set(err, -EIO, "cannot read '%s'", marker);
    }
    id[n] = '\0';
    id[strcspn(id, "\n")] = '\0';
    return 0;
}

int
cat_pool_claim(struct vmc_catalog *cat, const char *dir,
               struct vmc_error *err)
{
    char *marker = NULL, *tmp = NULL, owner[64];
    int fd, r;

    if (!cat->store_id[0] || cat_path_is_rbd(dir)) {
        return 0;       /* an rbd pool is no directory: nothing to claim */
    }
    if (asprintf(&marker, "%s/%s", dir, CAT_POOL_MARKER) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = pool_marker_read(marker, owner, sizeof(owner), err);
    if (r == 0 && owner[0] && strcmp(owner, cat->store_id)) {
        r = vmc_error_set(err, -EEXIST, "directory '%s' is a pool of another "
                          "store (store id %s, this store is %s)", dir,
                          owner, cat->store_id);
    }
    if (r < 0 || owner[0]) {
        free(marker);
        return r;
    }
    /* write a temporary marker, then link it in without replacing one
     * another store wrote meanwhile */
    if (asprintf(&tmp, "%s.tmp-%d", marker, (int)getpid()) < 0) {
        free(marker);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
    if (fd < 0 || dprintf(fd, "%s\n", cat->store_id) < 0 || fsync(fd) < 0) {
        r = vmc_error_set(err, -errno, "cannot write '%s': %s", tmp,
                          strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
    if (r == 0 && link(tmp, marker) < 0 && errno != EEXIST) {
        r = vmc_error_set(err, -errno, "cannot create '%s': %s", marker,
                          strerror(errno));
    }
    unlink(tmp);
    if (r == 0) {
        r = pool_marker_read(marker, owner, sizeof(owner), err);
    }
    if (r == 0 && strcmp(owner, cat->store_id)) {
        r = vmc_error_set(err, -EEXIST, "directory '%s' is a pool of another "
                          "store (store id %s, this store is %s)", dir,
                          owner, cat->store_id);
    }
    if (r == 0) {
        cat_fsync_dir_of(marker);
    }
    free(tmp);
    free(marker);
    return r;
}

int
cat_backing_volume(struct vmc_catalog *cat, const char *path, int64_t *vid,
                   char **backing, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_NO_BACKING |
                                         VMC_OPEN_FORCE_SHARE };
    struct vmc_image *img = NULL;
    struct vmc_image_info info;
    char *resolved = NULL, *real = NULL, *slash;
    int r;

    if (cat_path_is_rbd(path)) {
        return cat_rbd_backing_volume(cat, path, vid, backing, err);
    }
    *vid = 0;
    if (backing) {
        *backing = NULL;
    }
    r = vmc_image_open(&img, path, &oo, err);
    if (r < 0) {
        return r;
    }
    vmc_image_get_info(img, &info);
    if (!info.backing_file || !*info.backing_file) {
        goto out;
    }
    if (backing) {
        *backing = strdup(info.backing_file);
    }
    r = vmc_backing_path_resolve(path, info.backing_file, &resolved);
    if (r < 0) {
        goto out;
    }
    real = realpath(resolved, NULL);
    if (!real) {
        r = vmc_error_set(err, -ENOENT, "'%s': backing file '%s' is missing",
                          path, info.backing_file);
        goto out;
    }
    slash = strrchr(real, '/');
    *slash = '\0';
    r = cat_get_i64(cat, vid, err,
                    "SELECT v.id FROM volumes v JOIN pools p "
                    "ON p.id = v.pool_id WHERE p.path = ? AND v.file = ?",
                    "ss", real, slash + 1);
    if (r == -ENOENT) {
        *slash = '/';
        r = vmc_error_set(err, -ENOENT, "'%s': backing file '%s' is not in "
                          "the catalog", path, real);
    }
out:
    free(real);
    free(resolved);
    vmc_image_close(img);
    return r;
}

int
cat_reconcile_journal(struct vmc_catalog *cat, int64_t jid, unsigned *fixed,
                      struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int64_t *ids = NULL, *parents = NULL;
    size_t n = 0, cap = 0, i;
    int r;

    r = cat_prepare(cat, &st, err,
                    "SELECT id, coalesce(parent_id, 0) FROM volumes "
                    "WHERE journal_id = ? AND state = 'ready'", "I", jid);
    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            ids = realloc(ids, cap * sizeof(*ids));
            parents = realloc(parents, cap * sizeof(*parents));
            if (!ids || !parents) {
                r = vmc_error_set(err, -ENOMEM, "out of memory");
                break;
            }
        }
        ids[n] = cat_col_i64(st, 0);
        parents[n++] = cat_col_i64(st, 1);
        r = 0;
    }
    cat_finalize(st);
    for (i = 0; r == 0 && i < n; i++) {
        char *path = NULL;
        int64_t actual = 0;

        r = cat_volume_path(cat, ids[i], &path, err);
        if (r == 0) {
            r = cat_backing_volume(cat, path, &actual, NULL, err);
        }
        free(path);
        if (r == 0 && actual != parents[i]) {
            r = cat_exec(cat, err, "UPDATE volumes SET parent_id = "
                         "nullif(?, 0) WHERE id = ?", "II", actual, ids[i]);
            if (r == 0 && fixed) {
                (*fixed)++;
            }
        }
    }
    free(ids);
    free(parents);
    return r;
}

/* -------------------------------------------------------------- query */

int
cat_query_rows(struct vmc_catalog *cat, const char *sql,
               const char *const *params, size_t nparams,
               vmc_catalog_row_fn fn, void *opaque, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    const char **vals = NULL, **names = NULL;
    int r, ncols, c;

    r = cat_prepare_texts(cat, &st, err, sql, params, nparams);
    if (r < 0) {
        return r;
    }
    ncols = cat_col_count(st);
    vals = calloc((size_t)ncols + 1, sizeof(*vals));
    names = calloc((size_t)ncols + 1, sizeof(*names));
    if (!vals || !names) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    for (c = 0; c < ncols; c++) {
        names[c] = cat_col_name(st, c);
    }
    while ((r = cat_step(cat, st, err)) > 0) {
        for (c = 0; c < ncols; c++) {
            vals[c] = cat_col(st, c);
        }
        r = fn(ncols, names, vals, opaque);
        if (r) {
            break;
        }
    }
out:
    free(vals);
    free(names);
    cat_finalize(st);
    return r;
}

/* ------------------------------------------------------------- config */

static bool
config_key_ok(const char *key)
{
    static const char *const keys[] = {
        "default-template", "default-pool", "max-chain-depth", NULL,
    };
    unsigned i;

    for (i = 0; keys[i]; i++) {
        if (!strcmp(keys[i], key)) {
            return true;
        }
    }
    return false;
}

int
vmc_catalog_config_get(struct vmc_catalog *cat, const char *key, char **out,
                       struct vmc_error *err)
{
    int r;

    if (!config_key_ok(key)) {
        return vmc_error_set(err, -EINVAL, "unknown configuration key '%s' "
                             "(default-template, default-pool, "
                             "max-chain-depth)", key);
    }
    r = cat_get_str(cat, out, err, "SELECT value FROM config WHERE key = ?",
                    "s", key);
    if (r == -ENOENT) {
        *out = NULL;
        r = 0;
    }
    return r;
}

int
vmc_catalog_config_set(struct vmc_catalog *cat, const char *key,
                       const char *value, struct vmc_error *err)
{
    int r;

    if (!config_key_ok(key)) {
        return vmc_error_set(err, -EINVAL, "unknown configuration key '%s' "
                             "(default-template, default-pool, "
                             "max-chain-depth)", key);
    }
    if (value && !strcmp(key, "max-chain-depth")) {
        char *end;
        long v = strtol(value, &end, 10);

        if (*end || v < 2 || v > 256) {
            return vmc_error_set(err, -EINVAL, "max-chain-depth must be a "
                                 "number from 2 to 256");
        }
    }
    r = cat_begin(cat, err);
    if (r < 0) {
        return r;
    }
    if (value) {
        r = cat_exec(cat, err, "INSERT INTO config(key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     "ss", key, value);
    } else {
        r = cat_exec(cat, err, "DELETE FROM config WHERE key = ?", "s", key);
    }
    if (r == 0) {
        return cat_commit(cat, err);
    }
    cat_rollback(cat);
    return r;
}

/* -------------------------------------------------------------- pools */

int
vmc_catalog_pool_add(struct vmc_catalog *cat, const char *name,
                     const char *path, const char *kind,
                     struct vmc_error *err)
{
    char *real = NULL;
    int r = cat_check_name("pool", name, err);

    if (r < 0) {
        return r;
    }
    if (strcmp(kind, "primary") && strcmp(kind, "secondary")) {
        return vmc_error_set(err, -EINVAL, "pool kind must be 'primary' or "
                             "'secondary', not '%s'", kind);
    }
    r = cat_mkdir_p(path, err);
    if (r < 0) {
        return r;
    }
    real = realpath(path, NULL);
    if (!real) {
        return vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    r = cat_pool_claim(cat, real, err);
    if (r < 0) {
        free(real);
        return r;
    }
    r = cat_begin(cat, err);
    if (r == 0) {
        r = cat_exec(cat, err, "INSERT INTO pools(name, kind, path, created) "
                     "VALUES (?, ?, ?, ?)", "sssd", name, kind, real,
                     cat_now());
        if (r == -EEXIST) {
            r = vmc_error_set(err, r, "a pool named '%s' or at '%s' already "
                              "exists", name, real);
        }
        if (r == 0) {
            r = cat_commit(cat, err);
        } else {
            cat_rollback(cat);
        }
    }
    free(real);
    return r;
}

int
vmc_catalog_pool_rm(struct vmc_catalog *cat, const char *name,
                    struct vmc_error *err)
{
    int64_t pid = 0, n = 0;
    int r = cat_begin(cat, err);

    if (r < 0) {
        return r;
    }
    r = cat_get_i64(cat, &pid, err, "SELECT id FROM pools WHERE name = ?",
                    "s", name);
    if (r == -ENOENT) {
        r = vmc_error_set(err, r, "no pool named '%s'", name);
    }
    if (r == 0) {
        r = cat_get_i64(cat, &n, err, "SELECT (SELECT count(*) FROM volumes "
                        "WHERE pool_id = ?1) + (SELECT count(*) FROM vms "
                        "WHERE pool_id = ?1) + (SELECT count(*) FROM "
                        "templates WHERE pool_id = ?1) + (SELECT count(*) "
                        "FROM template_copies WHERE pool_id = ?1)", "I", pid);
    }
    if (r == 0 && n > 0) {
        r = vmc_error_set(err, -ENOTEMPTY, "pool '%s' is not empty (%" PRId64
                          " objects)", name, n);
    }
    if (r == 0) {
        r = cat_exec(cat, err, "DELETE FROM pools WHERE id = ?", "I", pid);
    }
    if (r == 0) {
        return cat_commit(cat, err);
    }
    cat_rollback(cat);
    return r;
}

void
vmc_catalog_strv_free(char **v, size_t n)
{
    size_t i;

    if (!v) {
        return;
    }
    for (i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

/* ------------------------------------------------------- string lists */

int
cat_strv_push(struct cat_strv *v, const char *s)
{
    char **n;

    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        n = realloc(v->v, v->cap * sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        v->v = n;
    }
    v->v[v->n] = strdup(s ? s : "");
    if (!v->v[v->n]) {
        return -ENOMEM;
    }
    v->n++;
    return 0;
}

void
cat_strv_release(struct cat_strv *v)
{
    vmc_catalog_strv_free(v->v, v->n);
    memset(v, 0, sizeof(*v));
}

/* Collect the first column of a query (bound with @fmt/@arg) as text. */
int
cat_collect(struct vmc_catalog *cat, struct cat_strv *out,
            struct vmc_error *err, const char *sql, int64_t arg)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, sql, "I", arg);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        r = cat_strv_push(out, cat_col(st, 0));
        if (r < 0) {
            r = vmc_error_set(err, r, "out of memory");
        }
    }
    cat_finalize(st);
    return r;
}
