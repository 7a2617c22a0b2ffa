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
 * before (4) rolls the whole group back (journal.c).
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
#include "vmclone-ops.h"
#include "vmclone-seal.h"
#include "../virt/virt.h"

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

int
cat_add_nics(struct vmc_catalog *cat, int64_t vm, unsigned first, unsigned n,
             struct vmc_error *err)
{
    unsigned i, tries;
    int r = 0;

    for (i = first; r == 0 && i < n; i++) {
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

/* One full clone of @src into @dst, standalone and writable; @live_vm
 * names the VM when @src is its live disk (copied under QEMU's lock). */
static int
full_one(const char *src, const char *dst, bool thick, const char *live_vm,
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
    r = live_vm ? cat_open_live_disk(live_vm, src, &img, err)
                : vmc_image_open(&img, src, &oo, err);
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
        chmod(tmp, cat_new_file_mode());
    }
    cat_crashpoint("clone.full-before-rename");
    if (r == 0) {
        r = engine_rename(tmp, dst, true);
        if (r < 0) {
            vmc_error_set(err, r, "cannot rename '%s' to '%s': %s", tmp, dst,
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
    char name[65];
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
    snprintf(s->name, sizeof(s->name), "%s", source);
    r = cat_prepare(cat, &st, err, "SELECT id, state, retired, cpus, "
                    "memory_mb, nics FROM templates WHERE name = ?", "s",
                    source);
    if (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        r = 0;
        s->is_template = true;
        s->id = cat_col_i64(st, 0);
        if (strcmp(cat_col(st, 1), "ready")) {
            r = vmc_error_set(err, -EBUSY, "template '%s' is being %s",
                              source, !strcmp(cat_col(st, 1), CAT_CREATING)
                              ? "created" : "removed");
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
            r = vmc_error_set(err, -EBUSY, "VM '%s' is being %s", source,
                              !strcmp(cat_col(st, 1), CAT_CREATING)
                              ? "created" : "removed");
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

/* One clone call's state, shared by the steps of clone_once(). */
struct clone_plan {
    struct vmc_catalog *cat;
    const struct vmc_catalog_clone_opts *o;
    struct clone_src src;
    struct cat_strv names;  /* the VMs' names */
    struct cat_disks base;  /* the layers to clone, one per disk */
    char **paths;           /* [vm * nd + disk] */
    int64_t *vids, *vmids;
    int64_t pool_id, copy_id;
    int64_t home;           /* the template's primary pool, if it has one */
    size_t count, nd;
    bool linked;
    const char *mech;
    struct cat_op op;
};

static void
clone_plan_release(struct clone_plan *p)
{
    size_t i;

    cat_op_end(&p->op);
    for (i = 0; p->paths && i < p->count * p->nd; i++) {
        free(p->paths[i]);
    }
    free(p->paths);
    free(p->vids);
    free(p->vmids);
    cat_disks_release(&p->base);
    cat_strv_release(&p->names);
}

/* The VMs' names: @name, or @name's "%d" numbered 1..count. */
static int
clone_names(struct clone_plan *p, const char *name, struct vmc_error *err)
{
    char **numbered = NULL;
    size_t i;
    int r = 0;

    if (p->count > 1) {
        r = vmc_clone_names(name, p->count, &numbered, err);
    }
    for (i = 0; r == 0 && i < p->count; i++) {
        if (cat_strv_push(&p->names, numbered ? numbered[i] : name) < 0) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
        } else {
            r = cat_check_name("VM", p->names.v[i], err);
        }
    }
    vmc_clone_names_free(numbered, p->count);
    return r;
}

/* The first parameter of this call that differs from row @st of an
 * earlier call with the same request id (columns: 0 name, 3 requested,
 * 7 source, 9 pool id; @i the row's place in its group), written into
 * @what; "" when they agree. A retry must repeat the call exactly: the
 * name (each numbered name), the source and snapshot, the type asked
 * for, and the pool (the default pool when none is given). */
static void
request_differs(cat_stmt *st, const struct clone_plan *p, const char *source,
                int64_t pool_id, size_t i, char *what, size_t len)
{
    const struct vmc_catalog_clone_opts *o = p->o;
    const char *src = cat_col(st, 7) ? cat_col(st, 7) : "";
    char tdesc[300], vdesc[300];

    snprintf(tdesc, sizeof(tdesc), "template %s", source);
    snprintf(vdesc, sizeof(vdesc), "vm %s%s%s", source,
             o->snapshot ? "@" : "", o->snapshot ? o->snapshot : "");
    what[0] = '\0';
    if (i < p->names.n && strcmp(cat_col(st, 0), p->names.v[i])) {
        snprintf(what, len, "name '%s', not '%s'", p->names.v[i],
                 cat_col(st, 0));
    } else if (strcmp(src, vdesc) && (o->snapshot || strcmp(src, tdesc))) {
        snprintf(what, len, "source '%s%s%s', not %s", source,
                 o->snapshot ? "@" : "", o->snapshot ? o->snapshot : "",
                 src);
    } else if (strcmp(cat_col(st, 3) ? cat_col(st, 3) : "",
                      vmc_clone_kind_name(o->kind))) {
        snprintf(what, len, "type %s, not %s", vmc_clone_kind_name(o->kind),
                 cat_col(st, 3) ? cat_col(st, 3) : "unknown");
    } else if (cat_col_i64(st, 9) != pool_id) {
        snprintf(what, len, "pool '%s', not '%s'", o->pool ? o->pool
                 : "(the default)", cat_col(st, 6));
    }
}

/* Return the VMs of an earlier call with the same request id; refused
 * (-EEXIST) when that call had other parameters (request_differs()). */
static int
find_request(struct clone_plan *p, const char *source,
             struct vmc_catalog_clone_result *res, bool *found,
             struct vmc_error *err)
{
    struct vmc_catalog *cat = p->cat;
    const char *rid = p->o->request_id;
    unsigned tries;
    int64_t pool_id = 0;
    int r;

    *found = false;
    r = cat_pool_lookup(cat, p->o->pool, "primary", &pool_id, NULL, err);
    if (r < 0) {
        return r;
    }
    for (tries = 0; tries < 10; tries++) {
        cat_stmt *st = NULL;
        struct cat_strv names = { 0 };
        int64_t jid = 0;
        bool creating = false;
        char what[700] = "", first[200] = "";

        r = cat_prepare(cat, &st, err, "SELECT m.name, m.state, coalesce("
                        "m.journal_id, 0), m.clone_requested, m.clone_type, "
                        "m.mechanism, p.name, m.source, (SELECT count(*) "
                        "FROM volumes v WHERE v.vm_id = m.id AND v.top = 1), "
                        "m.pool_id "
                        "FROM vms m JOIN pools p ON p.id = m.pool_id WHERE "
                        "m.request_key = ?1 ORDER BY m.request_idx, m.id",
                        "s", rid);
        while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
            r = 0;
            if (!first[0]) {
                snprintf(first, sizeof(first), "%s", cat_col(st, 0));
            }
            if (strcmp(cat_col(st, 1), "ready")) {
                creating = true;
                jid = cat_col_i64(st, 2);
                continue;
            }
            if (!what[0]) {
                request_differs(st, p, source, pool_id, names.n, what,
                                sizeof(what));
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
        if (names.n != p->count) {
            size_t n = names.n;

            cat_strv_release(&names);
            return vmc_error_set(err, -EEXIST, "request id '%s' was used "
                                 "for a different number of VMs (%zu, "
                                 "from VM '%s' on), not %zu", rid, n, first,
                                 p->count);
        }
        if (what[0]) {
            cat_strv_release(&names);
            return vmc_error_set(err, -EEXIST, "request id '%s' was used "
                                 "by another call, which made VM '%s': "
                                 "this one has %s (use another id)", rid,
                                 first, what);
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

/* Linked or full (checked against the source), and the pool. */
static int
clone_kind_and_pool(struct clone_plan *p, const char *source,
                    struct vmc_catalog_clone_result *res,
                    struct vmc_error *err)
{
    const struct vmc_catalog_clone_opts *o = p->o;
    char *pool_name = NULL;
    int r;

    if (o->kind == VMC_CLONE_KIND_LINKED && !p->src.is_template &&
        !p->src.snap) {
        return vmc_error_set(err, -EINVAL, "a linked clone of VM '%s' needs "
                             "a snapshot (its disks are still written): run "
                             "'vm-clone snapshot create %s NAME' and clone "
                             "with --snapshot NAME", source, source);
    }
    p->linked = o->kind == VMC_CLONE_KIND_LINKED ||
                (o->kind == VMC_CLONE_KIND_DEFAULT &&
                 (p->src.is_template || p->src.snap));
    if (p->linked && o->thick) {
        return vmc_error_set(err, -EINVAL, "--thick applies to full clones");
    }
    res->actual = p->linked ? VMC_CLONE_KIND_LINKED : VMC_CLONE_KIND_FULL;
    r = p->src.is_template ? cat_template_home(p->cat, p->src.id, &p->home,
                                               err) : 0;
    if (r == 0 && p->home && !o->pool) {
        p->pool_id = p->home;   /* a frozen template's clones: its pool */
    } else if (r == 0) {
        r = cat_pool_lookup(p->cat, o->pool, "primary", &p->pool_id, NULL,
                            err);
    }
    if (r == 0) {
        cat_rbd_prefetch_pool(p->cat, p->pool_id);  /* connect meanwhile */
    }
    if (r == 0) {
        r = cat_get_str(p->cat, &pool_name, err, "SELECT name FROM pools "
                        "WHERE id = ?", "I", p->pool_id);
    }
    if (r == 0) {
        snprintf(res->pool, sizeof(res->pool), "%s", pool_name);
    }
    free(pool_name);
    return r;
}

/* (1) The layers to clone: the template's copy in the pool (made now if
 * missing), the template, the snapshot or the VM's top layers; within
 * max-chain-depth when linked. */
static int
clone_layers(struct clone_plan *p, const char *source,
             struct vmc_catalog_clone_result *res, struct vmc_error *err)
{
    const struct clone_src *s = &p->src;
    unsigned depth = 0;
    int r;

    if (p->linked && s->is_template && p->home &&
        p->home == p->pool_id) {
        /* a frozen template, used in place in its pool (freeze.c) */
        r = cat_disks_of(p->cat, &p->base, CAT_DISKS_TEMPLATE, s->id, err);
    } else if (p->linked && s->is_template) {
        r = cat_ensure_copy(p->cat, s->id, p->pool_id, (int64_t)p->count,
                            &p->copy_id, &res->template_copied,
                            &res->copy_mechanism, &res->copy_bytes, err);
        if (r == 0) {
            r = cat_disks_of(p->cat, &p->base, CAT_DISKS_COPY, p->copy_id, err);
        }
    } else if (s->is_template) {
        r = cat_disks_of(p->cat, &p->base, CAT_DISKS_TEMPLATE, s->id, err);
    } else if (s->snap) {
        r = cat_disks_of(p->cat, &p->base, CAT_DISKS_SNAPSHOT, s->snap, err);
    } else {
        r = cat_disks_of(p->cat, &p->base, CAT_DISKS_VM_TOP, s->id, err);
    }
    if (r == 0) {
        r = cat_refuse_damaged(&p->base, source, err);
    }
    if (r < 0) {
        return r;
    }
    p->nd = p->base.n;
    if (p->nd == 0) {
        return vmc_error_set(err, -ENOENT, "%s has no disks", s->desc);
    }
    if (p->linked) {
        r = cat_volume_depth(p->cat, p->base.d[0].vid, &depth, err);
        if (r == 0 && depth + 2 > cat_max_depth(p->cat)) {
            return vmc_error_set(err, -ELOOP, "a linked clone of %s would "
                                 "have %u layers, more than max-chain-depth "
                                 "%u: run 'vm-clone consolidate %s' or make "
                                 "a full clone", s->desc, depth + 2,
                                 cat_max_depth(p->cat), source);
        }
    }
    return r;
}

/* Inside the transaction: the template copy is still there, and no other
 * call took the request id meanwhile (*raced). */
static int
clone_check_still_free(struct clone_plan *p, bool *raced,
                       struct vmc_error *err)
{
    int64_t n = 0;
    size_t i;
    int r = 0;

    for (i = 0; r == 0 && i < p->base.n; i++) {
        /* FOR SHARE: a delete of the parent (FOR UPDATE) waits for us */
        r = cat_get_i64(p->cat, &n, err, "SELECT id FROM volumes WHERE "
                        "id = ? AND state = 'ready' FOR SHARE", "I",
                        p->base.d[i].vid);
        if (r == -ENOENT) {
            return vmc_error_set(err, -EBUSY, "%s is being removed or "
                                 "changed by another operation", p->src.desc);
        }
    }
    if (r == 0 && p->copy_id) {
        /* after the volumes (the order a delete locks in): the base copy
         * still has room for us, else look again (template-copy.c) */
        bool room = false;

        r = cat_copy_has_room(p->cat, p->copy_id, (int64_t)p->count, &room,
                              err);
        if (r == 0 && !room) {
            *raced = true;
            r = -EAGAIN;
        }
    }
    if (r == 0 && p->o->request_id) {
        /* under BEGIN IMMEDIATE: nobody can insert the same request now */
        r = cat_get_i64(p->cat, &n, err, "SELECT count(*) FROM vms WHERE "
                        "request_key = ?", "s", p->o->request_id);
        if (r == 0 && n) {
            *raced = true;
            r = -EAGAIN;
        }
    }
    return r;
}

/* After a refused insert: another call committed our request id (without
 * SQLite's single writer, its insert and ours can both pass the check
 * of clone_check_still_free()). */
static bool
request_taken(struct clone_plan *p)
{
    int64_t n = 0;

    return cat_get_i64(p->cat, &n, NULL, "SELECT count(*) FROM vms WHERE "
                       "request_key = ?", "s", p->o->request_id) == 0 && n;
}

/* VM @i's row, NICs, labels and volumes, all 'creating'. */
static int
clone_insert_vm(struct clone_plan *p, size_t i, double expires,
                struct vmc_error *err)
{
    const struct vmc_catalog_clone_opts *o = p->o;
    struct vmc_catalog *cat = p->cat;
    char uuid[37];
    size_t l, d;
    int r;

    make_uuid(uuid);
    r = cat_exec(cat, err, "INSERT INTO vms(name, uuid, state, pool_id, "
                 "cpus, memory_mb, template_id, source, clone_requested, "
                 "clone_type, request_key, request_idx, expires, "
                 "journal_id, created) VALUES (?, ?, ?, ?, ?, "
                 "?, nullif(?, 0), ?, ?, ?, ?, ?, nullif(?, 0), ?, ?)",
                 "sssIIIIssssIdId", p->names.v[i], uuid, CAT_CREATING,
                 p->pool_id, p->src.cpus, p->src.memory_mb,
                 p->src.template_id, p->src.desc,
                 vmc_clone_kind_name(o->kind), p->linked ? "linked" : "full",
                 o->request_id, (int64_t)(p->count > 1 ? i + 1 : 0),
                 expires, p->op.jid, cat_now());
    if (r == -EEXIST) {
        return vmc_error_set(err, r, "a VM named '%s' already exists",
                             p->names.v[i]);
    }
    if (r < 0) {
        return r;
    }
    p->vmids[i] = cat_last_id(cat);
    r = cat_add_nics(cat, p->vmids[i], 0, (unsigned)p->src.nics, err);
    for (l = 0; r == 0 && l < o->nlabels; l++) {
        r = cat_exec(cat, err, "INSERT INTO labels(vm_id, key, value) "
                     "VALUES (?, ?, ?) ON CONFLICT (vm_id, key) DO UPDATE "
                     "SET value = excluded.value", "Iss", p->vmids[i],
                     o->labels[l].key, o->labels[l].value);
    }
    for (d = 0; r == 0 && d < p->nd; d++) {
        const struct cat_disk *b = &p->base.d[d];

        r = cat_volume_insert(cat, p->pool_id, p->names.v[i], b->disk,
                              b->virtual_size, p->linked ? b->vid : 0,
                              "vm_id", p->vmids[i], 1, p->op.jid,
                              &p->vids[i * p->nd + d], err);
    }
    return r;
}

/* (2) One transaction: the journal row and every VM 'creating'. */
static int
clone_stage_rows(struct clone_plan *p, bool *raced, struct vmc_error *err)
{
    double expires = 0;
    size_t i;
    int r;

    p->paths = calloc(p->count * p->nd, sizeof(*p->paths));
    p->vids = calloc(p->count * p->nd, sizeof(*p->vids));
    p->vmids = calloc(p->count, sizeof(*p->vmids));
    if (!p->paths || !p->vids || !p->vmids) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    parse_ttl_expiry(p->o->ttl_seconds, &expires);
    r = cat_begin(p->cat, err);
    if (r < 0) {
        return r;
    }
    r = clone_check_still_free(p, raced, err);
    if (r == 0) {
        r = cat_op_begin(&p->op, p->names.v[0], err);
    }
    for (i = 0; r == 0 && i < p->count; i++) {
        r = clone_insert_vm(p, i, expires, err);
    }
    if (r == 0) {
        cat_crashpoint("clone.before-stage");   /* rows in, not committed */
    }
    r = cat_op_stage(&p->op, r, err);
    if (r == -EEXIST && p->o->request_id && request_taken(p)) {
        *raced = true;      /* PostgreSQL: its rows waited for ours */
        r = -EAGAIN;
    }
    return r;
}

/* (3) The files: one linked group per disk, or one full copy each. */
static int
clone_make_files(struct clone_plan *p, uint64_t *bytes,
                 struct vmc_error *err)
{
    size_t i, d, count = p->count, nd = p->nd;
    struct cat_progress prog;
    int r = 0;

    for (i = 0; r == 0 && i < count * nd; i++) {
        r = cat_volume_path(p->cat, p->vids[i], &p->paths[i], err);
    }
    if (r == 0 && (cat_path_is_rbd(p->paths[0]) ||
                   cat_path_is_rbd(p->base.d[0].path))) {
        p->mech = p->linked ? "overlay" : "copy";
        return cat_rbd_clone_group(&p->base, p->paths, count, p->linked,
                                   bytes, err);
    }
    if (r == 0 && !p->linked) {
        cat_progress_init(&prog, p->cat, p->o->progress, p->o->opaque,
                          count * nd);
        for (i = 0; r == 0 && i < count * nd; i++) {
            r = full_one(p->base.d[i % nd].path, p->paths[i], p->o->thick,
                         p->src.is_template || p->src.snap ? NULL
                                                           : p->src.name,
                         &prog, &p->mech, bytes, err);
        }
        return r;
    }
    for (d = 0; r == 0 && d < nd; d++) {
        struct vmc_clone_opts co;
        const char **group = calloc(count, sizeof(*group));

        if (!group) {
            return vmc_error_set(err, -ENOMEM, "out of memory");
        }
        for (i = 0; i < count; i++) {
            group[i] = p->paths[i * nd + d];
        }
        vmc_clone_opts_init(&co);
        co.base_format = VMC_FMT_QCOW2;
        co.create.size = p->base.d[d].virtual_size;
        r = vmc_clone_linked(p->base.d[d].path, group, count, &co, err);
        free(group);
    }
    if (r == 0) {
        *bytes = allocated(p->paths, count * nd);
    }
    return r;
}

/* (4) One commit makes the whole group visible; on any failure the
 * journal rolls the group back. */
static int
clone_publish(struct clone_plan *p, int r, struct vmc_error *err)
{
    if (r == 0) {
        r = cat_op_publish(&p->op, err);
    }
    if (r == 0) {
        r = cat_op_volumes_ready(&p->op, (int)(p->count * p->nd), err);
    }
    if (r == 0) {
        r = cat_op_cas(&p->op, (int)p->count, "a VM of the clone", err,
                       "UPDATE vms SET state = ?, mechanism = ? WHERE "
                       "journal_id = ? AND state = ?", "ssIs", CAT_READY,
                       p->mech, p->op.jid, CAT_CREATING);
    }
    if (r == 0) {
        r = cat_op_ready(&p->op, err);
    }
    if (r < 0) {
        cat_op_fail(&p->op);
    }
    return r;
}

/* (3b) clone --define: the VMs' domain URI is committed while they are
 * 'creating' (so a crash's recovery undefines them, journal.c), then
 * every domain is defined; a failure undefines them and rolls back. */
static int
clone_define(struct clone_plan *p, struct vmc_error *err)
{
    int r = cat_exec(p->cat, err, "UPDATE vms SET domain_uri = ? WHERE "
                     "journal_id = ? AND state = ?", "sIs", p->o->define_uri,
                     p->op.jid, CAT_CREATING);

    return r ? r : cat_virt_define_group(p->cat, p->op.jid,
                                         p->o->define_uri, err);
}

/* Every label valid (printable, bounded: they are printed in listings). */
static int
check_labels(const struct vmc_catalog_clone_opts *o, struct vmc_error *err)
{
    size_t l;
    int r = 0;

    for (l = 0; r == 0 && l < o->nlabels; l++) {
        r = cat_check_label(o->labels[l].key, o->labels[l].value, err);
    }
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
    struct clone_plan p = { .cat = cat, .o = o, .mech = "overlay" };
    double t0 = cat_now();
    bool found = false;
    int r;

    memset(res, 0, sizeof(*res));
    cat_op_init(&p.op, cat, "clone");
    res->requested = o->kind;
    p.count = o->count > 1 ? o->count : 1;
    r = clone_names(&p, name, err);
    if (r == 0) {
        r = check_labels(o, err);
    }
    if (r == 0 && o->request_id) {
        r = find_request(&p, source, res, &found, err);
        if (r < 0 || found) {
            res->seconds = cat_now() - t0;
            goto out;
        }
    }
    if (r == 0) {
        r = resolve_source(cat, source, o, &p.src, err);
    }
    if (r < 0) {
        goto out;
    }
    snprintf(res->source_kind, sizeof(res->source_kind), "%s",
             p.src.is_template ? "template" : "vm");
    r = clone_kind_and_pool(&p, source, res, err);
    if (r == 0) {
        r = clone_layers(&p, source, res, err);
    }
    if (r < 0) {
        goto out;
    }
    res->disks = (unsigned)p.nd;
    r = clone_stage_rows(&p, raced, err);
    if (r < 0) {
        goto out;
    }
    r = clone_make_files(&p, &res->bytes_written, err);
    if (r == 0 && o->define_uri) {
        r = clone_define(&p, err);
    }
    cat_crashpoint("clone.before-commit");
    r = clone_publish(&p, r, err);
    if (r == 0) {
        res->mechanism = p.mech;
        res->names = p.names.v;
        res->count = p.names.n;
        memset(&p.names, 0, sizeof(p.names));
        res->seconds = cat_now() - t0;
    }
out:
    clone_plan_release(&p);
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

    for (tries = 0; tries < 50; tries++) {
        bool raced = false;

        r = clone_once(cat, source, name, o, res, &raced, err);
        if (!raced) {
            return r;
        }
    }
    if (!o->request_id) {   /* raced for room on a base copy every time */
        return vmc_error_set(err, -EBUSY, "the template's base copies "
                             "stayed full; try again");
    }
    return vmc_error_set(err, -EBUSY, "request '%s' is still in progress",
                         o->request_id);
}
