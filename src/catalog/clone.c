/*
 * clone.c - vmc_catalog_clone(): N VMs from a template, a VM or a VM's
 * snapshot, linked (qcow2 overlays of the template's copy in the pool, or
 * of the snapshot's layers) or full (standalone: reflink, copy_file_range
 * or a guest-view copy), all disks of all VMs as one group.
 *
 * Steps: (1) the template copy in the pool, if linked from a template
 * (template.c, once per pool); (2) one transaction inserts the VMs, NICs
 * (unique MACs), labels and volumes 'creating' with a running journal
 * row; (3) the files (temporary name, sync, rename, directory sync);
 * (4) one transaction turns everything 'ready'. A failure or a crash
 * before (4) rolls the whole group back (recover.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog-ops.h"
#include "engine.h"
#include "vmclone-seal.h"

const char *
vmc_clone_kind_name(enum vmc_clone_kind k)
{
    switch (k) {
    case VMC_CLONE_KIND_LINKED:
        return "linked";
    case VMC_CLONE_KIND_FULL:
        return "full";
    default:
        return "default";
    }
}

void
vmc_catalog_clone_result_release(struct vmc_catalog_clone_result *res)
{
    vmc_catalog_strv_free(res->names, res->count);
    res->names = NULL;
    res->count = 0;
}

static bool
pattern_ok(const char *p)
{
    unsigned convs = 0;

    for (; *p; p++) {
        if (*p != '%') {
            continue;
        }
        p++;
        if (*p == '%') {
            continue;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
        if (*p != 'd') {
            return false;
        }
        convs++;
    }
    return convs == 1;
}

static void
random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];
    size_t i;

    if (getrandom(b, nbytes, 0) != (ssize_t)nbytes) {
        for (i = 0; i < nbytes; i++) {
            b[i] = (unsigned char)rand();
        }
    }
    for (i = 0; i < nbytes; i++) {
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
}

static void
make_uuid(char out[37])
{
    char h[33];

    random_hex(h, 16);
    h[12] = '4';
    h[16] = "89ab"[h[16] % 4];
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16,
             h + 20);
}

static int
add_nics(struct vmc_catalog *cat, int64_t vm, unsigned n,
         struct vmc_error *err)
{
    unsigned i, tries;
    int r = 0;

    for (i = 0; r == 0 && i < n; i++) {
        for (tries = 0; tries < 16; tries++) {
            char h[7], mac[18];

            random_hex(h, 3);
            /* QEMU's locally administered prefix, as libvirt uses */
            snprintf(mac, sizeof(mac), "52:54:00:%.2s:%.2s:%.2s", h, h + 2,
                     h + 4);
            r = cat_exec(cat, err, "INSERT INTO nics(vm_id, idx, mac) "
                         "VALUES (?, ?, ?)", "Iis", vm, (int)i, mac);
            if (r != -EEXIST) {
                break;
            }
        }
    }
    return r;
}

static int
parse_ttl_expiry(uint64_t ttl, double *expires)
{
    *expires = ttl ? cat_now() + (double)ttl : 0;
    return 0;
}

/* Return the VMs of an earlier call with the same request id. */
static int
find_request(struct vmc_catalog *cat, const char *rid, size_t count,
             struct vmc_catalog_clone_result *res, bool *found,
             struct vmc_error *err)
{
    unsigned tries;
    int r = 0;

    *found = false;
    for (tries = 0; tries < 10; tries++) {
        cat_stmt *st = NULL;
        struct cat_strv names = { 0 };
        int64_t jid = 0;
        bool creating = false;

        r = cat_prepare(cat, &st, err, "SELECT m.name, m.state, coalesce("
                        "m.journal_id, 0), m.clone_requested, m.clone_type, "
                        "m.mechanism, p.name, m.source, (SELECT count(*) "
                        "FROM volumes v WHERE v.vm_id = m.id AND v.top = 1) "
                        "FROM vms m JOIN pools p ON p.id = m.pool_id WHERE "
                        "m.request_key = ?1 ORDER BY m.request_idx, m.id",
                        "s", rid);
        while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
            r = 0;
            if (strcmp(cat_col(st, 1), "ready")) {
                creating = true;
                jid = cat_col_i64(st, 2);
                continue;
            }
            if (cat_strv_push(&names, cat_col(st, 0)) < 0) {
                r = vmc_error_set(err, -ENOMEM, "out of memory");
            }
            res->requested = !strcmp(cat_col(st, 3), "linked")
                             ? VMC_CLONE_KIND_LINKED
                             : !strcmp(cat_col(st, 3), "full")
                             ? VMC_CLONE_KIND_FULL : VMC_CLONE_KIND_DEFAULT;
            res->actual = !strcmp(cat_col(st, 4), "linked")
                          ? VMC_CLONE_KIND_LINKED : VMC_CLONE_KIND_FULL;
            res->mechanism = !strcmp(cat_col(st, 5), "overlay") ? "overlay"
                             : !strcmp(cat_col(st, 5), "reflink") ? "reflink"
                             : !strcmp(cat_col(st, 5), "copy_file_range")
                             ? "copy_file_range" : "copy";
            snprintf(res->pool, sizeof(res->pool), "%s", cat_col(st, 6));
            snprintf(res->source_kind, sizeof(res->source_kind), "%s",
                     !strncmp(cat_col(st, 7), "template ", 9) ? "template"
                                                              : "vm");
            res->disks = (unsigned)cat_col_int(st, 8);
        }
        cat_finalize(st);
        if (r < 0) {
            cat_strv_release(&names);
            return r;
        }
        if (creating) {
            cat_strv_release(&names);
            r = cat_journal_wait(cat, jid, err);
            if (r < 0) {
                return r;
            }
            continue;
        }
        if (names.n == 0) {
            return 0;
        }
        if (names.n != count) {
            cat_strv_release(&names);
            return vmc_error_set(err, -EEXIST, "request id '%s' was used "
                                 "for a different number of VMs", rid);
        }
        res->names = names.v;
        res->count = names.n;
        res->existing = true;
        *found = true;
        return 0;
    }
    return vmc_error_set(err, -EBUSY, "request '%s' is still in progress",
                         rid);
}

/* Sum of the allocated bytes of @paths. */
static uint64_t
allocated(char *const *paths, size_t n)
{
    uint64_t t = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        struct stat st;

        if (stat(paths[i], &st) == 0) {
            t += (uint64_t)st.st_blocks * 512;
        }
    }
    return t;
}

/* One full clone of @src into @dst, standalone and writable. */
static int
full_one(const char *src, const char *dst, bool thick,
         struct cat_progress *prog, const char **mech, uint64_t *bytes,
         struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_FORCE_SHARE };
    struct vmc_full_clone_opts fo;
    struct vmc_full_clone_result fr = { 0 };
    struct vmc_image *img = NULL;
    char *tmp = NULL;
    const char *slash = strrchr(dst, '/');
    int r;

    if (asprintf(&tmp, "%.*s/.%s.tmp-%d", (int)(slash - dst), dst, slash + 1,
                 (int)getpid()) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = vmc_image_open(&img, src, &oo, err);
    if (r == 0) {
        vmc_full_clone_opts_init(&fo);
        fo.thick = thick;
        fo.force = true;
        fo.progress = cat_progress_fn(prog);
        fo.opaque = prog;
        r = vmc_clone_full(img, tmp, &fo, &fr, err);
        if (r == 0) {
            cat_progress_next(prog);
        }
    }
    vmc_image_close(img);
    if (r == 0 && fr.method != VMC_CLONE_COPY) {
        /* a file-level copy of a sealed template carries its seal */
        r = vmc_image_unseal(tmp, err);
        chmod(tmp, 0644);
    }
    cat_crashpoint("clone.full-before-rename");
    if (r == 0) {
        r = engine_rename(tmp, dst, false);
        if (r < 0) {
            vmc_error_set(err, r, "cannot rename '%s': %s", tmp,
                          strerror(-r));
        }
    }
    if (r == 0) {
        cat_fsync_dir_of(dst);
        *mech = vmc_clone_method_name(fr.method);
        *bytes += fr.bytes_copied;
    } else {
        unlink(tmp);
    }
    free(tmp);
    return r;
}

struct clone_src {
    bool is_template;
    int64_t id;             /* template or VM */
    int64_t snap;           /* snapshot, 0 = current disks */
    int64_t cpus, memory_mb, nics;
    int64_t template_id;    /* for vms.template_id */
    char desc[200];
};

static int
resolve_source(struct vmc_catalog *cat, const char *source,
               const struct vmc_catalog_clone_opts *o, struct clone_src *s,
               struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r;

    memset(s, 0, sizeof(*s));
    r = cat_prepare(cat, &st, err, "SELECT id, state, retired, cpus, "
                    "memory_mb, nics FROM templates WHERE name = ?", "s",
                    source);
    if (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        r = 0;
        s->is_template = true;
        s->id = cat_col_i64(st, 0);
        if (strcmp(cat_col(st, 1), "ready")) {
            r = vmc_error_set(err, -EBUSY, "template '%s' is %s", source,
                              cat_col(st, 1));
        } else if (cat_col_int(st, 2)) {
            r = vmc_error_set(err, -EINVAL, "template '%s' is retired: no "
                              "new clones", source);
        }
        s->cpus = cat_col_i64(st, 3);
        s->memory_mb = cat_col_i64(st, 4);
        s->nics = cat_col_i64(st, 5);
        s->template_id = s->id;
        snprintf(s->desc, sizeof(s->desc), "template %s", source);
    }
    cat_finalize(st);
    if (r < 0 || s->is_template) {
        if (r == 0 && o->snapshot) {
            r = vmc_error_set(err, -EINVAL, "'%s' is a template: --snapshot "
                              "applies to a VM source", source);
        }
        return r;
    }
    r = cat_prepare(cat, &st, err, "SELECT id, state, cpus, memory_mb, "
                    "(SELECT count(*) FROM nics WHERE vm_id = vms.id), "
                    "coalesce(template_id, 0) FROM vms WHERE name = ?", "s",
                    source);
    if (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        r = 0;
        s->id = cat_col_i64(st, 0);
        if (strcmp(cat_col(st, 1), "ready")) {
            r = vmc_error_set(err, -EBUSY, "VM '%s' is %s", source,
                              cat_col(st, 1));
        }
        s->cpus = cat_col_i64(st, 2);
        s->memory_mb = cat_col_i64(st, 3);
        s->nics = cat_col_i64(st, 4);
        s->template_id = cat_col_i64(st, 5);
    } else if (r == 0) {
        r = vmc_error_set(err, -ENOENT, "no template or VM named '%s'",
                          source);
    }
    cat_finalize(st);
    if (r == 0 && o->snapshot) {
        r = cat_get_i64(cat, &s->snap, err, "SELECT id FROM snapshots WHERE "
                        "vm_id = ? AND name = ? AND state = 'ready'", "Is",
                        s->id, o->snapshot);
        if (r == -ENOENT) {
            r = vmc_error_set(err, r, "VM '%s' has no snapshot '%s'", source,
                              o->snapshot);
        }
    }
    snprintf(s->desc, sizeof(s->desc), "vm %s%s%s", source,
             o->snapshot ? "@" : "", o->snapshot ? o->snapshot : "");
    return r;
}

/* One attempt; *raced when another call with the same request id
 * inserted its rows after our look-up (the caller looks again). */
static int
clone_once(struct vmc_catalog *cat, const char *source, const char *name,
           const struct vmc_catalog_clone_opts *o,
           struct vmc_catalog_clone_result *res, bool *raced,
           struct vmc_error *err)
{
    struct clone_src src;
    struct cat_strv names = { 0 };
    struct cat_disks base = { 0 };
    char **paths = NULL;        /* [vm * ndisks + disk] */
    int64_t *vids = NULL, *vmids = NULL, pool_id = 0, copy_id = 0, jid = 0;
    size_t count = o->count > 1 ? o->count : 1, nd = 0, i, d;
    const char *mech = "overlay";
    double t0 = cat_now(), expires = 0;
    bool linked, started = false;
    int lock_fd = -1, r;
    char *pool_name = NULL;

    memset(res, 0, sizeof(*res));
    res->requested = o->kind;
    if (count > 1 && !pattern_ok(name)) {
        return vmc_error_set(err, -EINVAL, "with a count, the name must "
                             "contain one %%d (got '%s')", name);
    }
    for (i = 0; i < count; i++) {
        char *n = NULL;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        if ((count > 1 ? asprintf(&n, name, (int)(i + 1))
                       : asprintf(&n, "%s", name)) < 0 ||
            cat_strv_push(&names, n) < 0) {
#pragma GCC diagnostic pop
            free(n);
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        free(n);
        r = cat_check_name("VM", names.v[i], err);
        if (r < 0) {
            goto out;
        }
    }
    if (o->request_id) {
        bool found = false;

        r = find_request(cat, o->request_id, count, res, &found, err);
        if (r < 0 || found) {
            res->seconds = cat_now() - t0;
            goto out;
        }
    }
    r = resolve_source(cat, source, o, &src, err);
    if (r < 0) {
        goto out;
    }
    snprintf(res->source_kind, sizeof(res->source_kind), "%s",
             src.is_template ? "template" : "vm");
    if (o->kind == VMC_CLONE_KIND_LINKED && !src.is_template && !src.snap) {
        r = vmc_error_set(err, -EINVAL, "a linked clone of VM '%s' needs a "
                          "snapshot (its disks are still written): run "
                          "'vm-clone snapshot create %s NAME' and clone "
                          "with --snapshot NAME", source, source);
        goto out;
    }
    linked = o->kind == VMC_CLONE_KIND_LINKED ||
             (o->kind == VMC_CLONE_KIND_DEFAULT &&
              (src.is_template || src.snap));
    if (linked && o->thick) {
        r = vmc_error_set(err, -EINVAL, "--thick applies to full clones");
        goto out;
    }
    res->actual = linked ? VMC_CLONE_KIND_LINKED : VMC_CLONE_KIND_FULL;
    r = cat_pool_lookup(cat, o->pool, "primary", &pool_id, NULL, err);
    if (r == 0) {
        r = cat_get_str(cat, &pool_name, err, "SELECT name FROM pools WHERE "
                        "id = ?", "I", pool_id);
    }
    if (r < 0) {
        goto out;
    }
    snprintf(res->pool, sizeof(res->pool), "%s", pool_name);
    /* the layers to clone */
    if (linked && src.is_template) {
        r = cat_ensure_copy(cat, src.id, pool_id, &copy_id,
                            &res->template_copied, &res->copy_mechanism,
                            &res->copy_bytes, err);
        if (r == 0) {
            r = cat_disks_load(cat, &base, "SELECT o.id, 0, o.disk, "
                               "o.virtual_size, o.path FROM volume_owners o "
                               "JOIN volumes v ON v.id = o.id WHERE "
                               "v.copy_id = ? AND v.state = 'ready' ORDER BY "
                               "v.disk", copy_id, err);
        }
    } else if (src.is_template) {
        r = cat_disks_load(cat, &base, "SELECT o.id, 0, o.disk, "
                           "o.virtual_size, o.path FROM volume_owners o JOIN "
                           "volumes v ON v.id = o.id WHERE v.template_id = ? "
                           "AND v.state = 'ready' ORDER BY v.disk", src.id,
                           err);
    } else if (src.snap) {
        r = cat_disks_load(cat, &base, "SELECT o.id, 0, o.disk, "
                           "o.virtual_size, o.path FROM volume_owners o JOIN "
                           "volumes v ON v.id = o.id WHERE v.snapshot_id = ? "
                           "AND v.state = 'ready' ORDER BY v.disk", src.snap,
                           err);
    } else {
        r = cat_disks_load(cat, &base, "SELECT o.id, 0, o.disk, "
                           "o.virtual_size, o.path FROM volume_owners o JOIN "
                           "volumes v ON v.id = o.id WHERE v.vm_id = ? AND "
                           "v.top = 1 AND v.state = 'ready' ORDER BY v.disk",
                           src.id, err);
    }
    if (r < 0) {
        goto out;
    }
    nd = base.n;
    if (nd == 0) {
        r = vmc_error_set(err, -ENOENT, "%s has no disks", src.desc);
        goto out;
    }
    if (linked) {
        unsigned depth = 0;

        r = cat_volume_depth(cat, base.d[0].vid, &depth, err);
        if (r == 0 && depth + 2 > cat_max_depth(cat)) {
            r = vmc_error_set(err, -ELOOP, "a linked clone of %s would have "
                              "%u layers, more than max-chain-depth %u: run "
                              "'vm-clone consolidate %s' or make a full "
                              "clone", src.desc, depth + 2,
                              cat_max_depth(cat), source);
            goto out;
        }
    }
    res->disks = (unsigned)nd;
    paths = calloc(count * nd, sizeof(*paths));
    vids = calloc(count * nd, sizeof(*vids));
    vmids = calloc(count, sizeof(*vmids));
    if (!paths || !vids || !vmids) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    parse_ttl_expiry(o->ttl_seconds, &expires);
    /* (2) the rows */
    r = cat_begin(cat, err);
    if (r < 0) {
        goto out;
    }
    if (copy_id) {
        int64_t ok = 0;

        r = cat_get_i64(cat, &ok, err, "SELECT count(*) FROM "
                        "template_copies WHERE id = ? AND state = 'ready'",
                        "I", copy_id);
        if (r == 0 && !ok) {
            r = vmc_error_set(err, -EAGAIN, "the template copy was removed "
                              "meanwhile; try again");
        }
    }
    if (r == 0 && o->request_id) {
        /* under BEGIN IMMEDIATE: nobody can insert the same request now */
        int64_t taken = 0;

        r = cat_get_i64(cat, &taken, err, "SELECT count(*) FROM vms WHERE "
                        "request_key = ?", "s", o->request_id);
        if (r == 0 && taken) {
            *raced = true;
            r = -EAGAIN;
        }
    }
    if (r == 0) {
        r = cat_journal_start(cat, "clone", names.v[0], &jid, &lock_fd, err);
        started = r == 0;
    }
    for (i = 0; r == 0 && i < count; i++) {
        char uuid[37];
        size_t l;

        make_uuid(uuid);
        r = cat_exec(cat, err, "INSERT INTO vms(name, uuid, state, pool_id, "
                     "cpus, memory_mb, template_id, source, clone_requested, "
                     "clone_type, request_key, request_idx, expires, "
                     "journal_id, created) VALUES (?, ?, 'creating', ?, ?, "
                     "?, nullif(?, 0), ?, ?, ?, ?, ?, nullif(?, 0), ?, ?)",
                     "ssIIIIssssIdId", names.v[i], uuid, pool_id, src.cpus,
                     src.memory_mb, src.template_id, src.desc,
                     vmc_clone_kind_name(o->kind), linked ? "linked" : "full",
                     o->request_id, (int64_t)(count > 1 ? i + 1 : 0),
                     expires, jid, cat_now());
        if (r == -EEXIST) {
            r = vmc_error_set(err, r, "a VM named '%s' already exists",
                              names.v[i]);
        }
        if (r < 0) {
            break;
        }
        vmids[i] = cat_last_id(cat);
        r = add_nics(cat, vmids[i], (unsigned)src.nics, err);
        for (l = 0; r == 0 && l < o->nlabels; l++) {
            r = cat_exec(cat, err, "INSERT OR REPLACE INTO labels(vm_id, "
                         "key, value) VALUES (?, ?, ?)", "Iss", vmids[i],
                         o->labels[l].key, o->labels[l].value);
        }
        for (d = 0; r == 0 && d < nd; d++) {
            r = cat_volume_insert(cat, pool_id, names.v[i], base.d[d].disk,
                                  base.d[d].virtual_size,
                                  linked ? base.d[d].vid : 0, "vm_id",
                                  vmids[i], 1, jid, &vids[i * nd + d], err);
        }
    }
    if (r == 0) {
        r = cat_commit(cat, err);
    } else {
        cat_rollback(cat);
        if (started) {
            cat_journal_unlock(cat, jid, lock_fd);
            started = false;
        }
        goto out;
    }
    for (i = 0; r == 0 && i < count * nd; i++) {
        r = cat_volume_path(cat, vids[i], &paths[i], err);
    }
    /* (3) the files */
    if (linked) {
        for (d = 0; r == 0 && d < nd; d++) {
            struct vmc_clone_opts co;
            const char **group = calloc(count, sizeof(*group));

            if (!group) {
                r = vmc_error_set(err, -ENOMEM, "out of memory");
                break;
            }
            for (i = 0; i < count; i++) {
                group[i] = paths[i * nd + d];
            }
            vmc_clone_opts_init(&co);
            co.base_format = VMC_FMT_QCOW2;
            co.create.size = base.d[d].virtual_size;
            r = vmc_clone_linked(base.d[d].path, group, count, &co, err);
            free(group);
        }
        if (r == 0) {
            res->bytes_written = allocated(paths, count * nd);
        }
    } else {
        struct cat_progress prog;

        cat_progress_init(&prog, cat, o->progress, o->opaque, count * nd);
        for (i = 0; r == 0 && i < count * nd; i++) {
            r = full_one(base.d[i % nd].path, paths[i], o->thick, &prog,
                         &mech, &res->bytes_written, err);
        }
    }
    cat_crashpoint("clone.before-commit");
    /* (4) one commit makes the whole group visible */
    if (r == 0) {
        r = cat_begin(cat, err);
        if (r == 0) {
            r = cat_exec(cat, err, "UPDATE volumes SET state = 'ready' WHERE "
                         "journal_id = ? AND state = 'creating'", "I", jid);
        }
        if (r == 0) {
            r = cat_exec(cat, err, "UPDATE vms SET state = 'ready', "
                         "mechanism = ? WHERE journal_id = ? AND state = "
                         "'creating'", "sI", mech, jid);
        }
        if (r == 0) {
            r = cat_journal_finish(cat, jid, "done", err);
        }
        if (r == 0) {
            r = cat_commit(cat, err);
        } else {
            cat_rollback(cat);
        }
    }
    if (r < 0) {
        cat_finish_journal(cat, jid, NULL);
    }
    cat_journal_unlock(cat, jid, lock_fd);
    started = false;
    if (r == 0) {
        res->mechanism = mech;
        res->names = names.v;
        res->count = names.n;
        memset(&names, 0, sizeof(names));
        res->seconds = cat_now() - t0;
    }
out:
    if (started) {
        cat_journal_unlock(cat, jid, lock_fd);
    }
    for (i = 0; paths && i < count * nd; i++) {
        free(paths[i]);
    }
    free(paths);
    free(vids);
    free(vmids);
    free(pool_name);
    cat_disks_release(&base);
    cat_strv_release(&names);
    return r;
}

int
vmc_catalog_clone(struct vmc_catalog *cat, const char *source,
                  const char *name, const struct vmc_catalog_clone_opts *o,
                  struct vmc_catalog_clone_result *res,
                  struct vmc_error *err)
{
    unsigned tries;
    int r = 0;

    for (tries = 0; tries < 20; tries++) {
        bool raced = false;

        r = clone_once(cat, source, name, o, res, &raced, err);
        if (!raced) {
            return r;
        }
    }
    return vmc_error_set(err, -EBUSY, "request '%s' is still in progress",
                         o->request_id);
}
