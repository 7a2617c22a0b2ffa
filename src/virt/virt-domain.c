/*
 * virt-domain.c - libvirt domains of catalogued VMs through libvirt's C
 * API (no virsh): define / undefine (vm define, vm undefine, clone
 * --define), the rm and crash-recovery hooks and fsck's checks (virt.h).
 * A domain carries its VM's name and UUID; the catalog remembers the
 * connection URI and the UUID (vms.domain_uri, vms.domain_uuid).
 * Built without libvirt, every entry point that needs it says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalog/catalog-internal.h"
#include "virt.h"
#include "vmclone-virt.h"

#ifdef VMC_HAVE_LIBVIRT
#include "virt-dl.h"

/* libvirt prints its errors on stderr unless told otherwise; we report
 * them ourselves, once, in struct vmc_error. */
static void
quiet_errors(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static const char *
last_error(void)
{
    const char *m = virGetLastErrorMessage();

    return m && *m ? m : "unknown libvirt error";
}

static virConnectPtr
connect_uri(const char *uri, struct vmc_error *err)
{
    virConnectPtr conn;

    virSetErrorFunc(NULL, quiet_errors);
    conn = virConnectOpen(uri && *uri ? uri : NULL);
    if (!conn) {
        vmc_error_set(err, -ECONNREFUSED, "cannot connect to libvirt%s%s: "
                      "%s", uri ? " at " : "", uri ? uri : "", last_error());
    }
    return conn;
}

/* The domain @uuid on @conn, or NULL (absent). */
static virDomainPtr
find_domain(virConnectPtr conn, const char *uuid)
{
    return uuid && *uuid ? virDomainLookupByUUIDString(conn, uuid) : NULL;
}

/* Define @hw on @conn; @return 0 or -EIO with the message. */
static int
define_hw(virConnectPtr conn, const struct vmc_hw *hw, struct vmc_error *err)
{
    virDomainPtr dom;
    char *xml = NULL;

    if (vmc_hw_xml(hw, &xml) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    dom = virDomainDefineXML(conn, xml);
    free(xml);
    if (!dom) {
        return vmc_error_set(err, -EIO, "libvirt refused the domain of VM "
                             "'%s': %s", hw->name, last_error());
    }
    virDomainFree(dom);
    return 0;
}

/* Undefine domain @uuid on @conn (gone already: fine). A running one is
 * -EBUSY unless @stop, which destroys it first. */
static int
undefine_uuid(virConnectPtr conn, const char *uuid, const char *vm,
              bool stop, struct vmc_error *err)
{
    virDomainPtr dom = find_domain(conn, uuid);
    int r = 0;

    if (!dom) {
        return 0;
    }
    if (virDomainIsActive(dom) == 1) {
        if (!stop) {
            r = vmc_error_set(err, -EBUSY, "VM '%s' runs as libvirt domain "
                              "'%s' (stop it, or rm --force)", vm,
                              virDomainGetName(dom));
        } else if (virDomainDestroy(dom) < 0) {
            r = vmc_error_set(err, -EIO, "cannot stop domain '%s': %s",
                              virDomainGetName(dom), last_error());
        }
    }
    if (r == 0 && virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_NVRAM) < 0 &&
        virDomainUndefine(dom) < 0) {
        r = vmc_error_set(err, -EIO, "cannot undefine domain '%s': %s",
                          virDomainGetName(dom), last_error());
    }
    virDomainFree(dom);
    return r;
}

/* The canonical URI of @conn (malloc'd), or a copy of @uri. */
static char *
conn_uri(virConnectPtr conn, const char *uri)
{
    char *u = virConnectGetURI(conn);

    return u ? u : strdup(uri ? uri : "");
}

int
vmc_virt_define(struct vmc_catalog *cat, const struct vmc_hw *hw,
                const char *uri, struct vmc_error *err)
{
    virConnectPtr conn = connect_uri(uri, err);
    char *curi;
    int r;

    if (!conn) {
        return err ? err->code : -ECONNREFUSED;
    }
    r = define_hw(conn, hw, err);
    curi = r == 0 ? conn_uri(conn, uri) : NULL;
    virConnectClose(conn);
    if (r == 0) {
        /* the URI we were given: it names the socket of a private daemon */
        r = cat_exec(cat, err, "UPDATE vms SET domain_uri = ?, domain_uuid = "
                     "? WHERE name = ?", "sss", uri && *uri ? uri : curi,
                     hw->uuid, hw->name);
    }
    free(curi);
    return r;
}

/* The domain URI and UUID of VM @name: *uri NULL when it has none. */
static int
vm_domain(struct vmc_catalog *cat, const char *name, char **uri, char **uuid,
          struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "SELECT domain_uri, domain_uuid FROM "
                        "vms WHERE name = ?", "s", name);

    *uri = *uuid = NULL;
    if (r == 0) {
        r = cat_step(cat, st, err);
    }
    if (r == 0) {
        r = vmc_error_set(err, -ENOENT, "no VM named '%s'", name);
    } else if (r > 0) {
        r = 0;
        if (cat_col(st, 0)) {
            *uri = strdup(cat_col(st, 0));
            *uuid = strdup(cat_col(st, 1) ? cat_col(st, 1) : "");
            r = *uri && *uuid ? 0 : vmc_error_set(err, -ENOMEM, "out of "
                                                  "memory");
        }
    }
    cat_finalize(st);
    return r;
}

int
vmc_virt_undefine(struct vmc_catalog *cat, const char *name, bool stop,
                  struct vmc_error *err)
{
    virConnectPtr conn;
    char *uri, *uuid;
    int r = vm_domain(cat, name, &uri, &uuid, err);

    if (r == 0 && !uri) {
        return vmc_error_set(err, -ENOENT, "VM '%s' has no libvirt domain",
                             name);
    }
    if (r < 0) {
        return r;
    }
    conn = connect_uri(uri, err);
    r = conn ? undefine_uuid(conn, uuid, name, stop, err) : -ECONNREFUSED;
    if (conn) {
        virConnectClose(conn);
    }
    if (r == 0) {
        r = cat_exec(cat, err, "UPDATE vms SET domain_uri = NULL, "
                     "domain_uuid = NULL WHERE name = ?", "s", name);
    }
    free(uri);
    free(uuid);
    return r;
}

int
cat_virt_define_group(struct vmc_catalog *cat, int64_t jid, const char *uri,
                      struct vmc_error *err)
{
    struct cat_strv names = { 0 };
    virConnectPtr conn;
    size_t i, done = 0;
    int r = cat_collect(cat, &names, err, "SELECT name FROM vms WHERE "
                        "journal_id = ? ORDER BY id", jid);

    conn = r == 0 ? connect_uri(uri, err) : NULL;
    if (r == 0 && !conn) {
        r = -ECONNREFUSED;
    }
    for (i = 0; r == 0 && i < names.n; i++) {
        struct vmc_hw *hw = NULL;

        r = vmc_hw_load(cat, names.v[i], NULL, &hw, err);
        if (r == 0) {
            r = define_hw(conn, hw, err);
        }
        if (r == 0) {
            done++;
            r = cat_exec(cat, err, "UPDATE vms SET domain_uuid = ? WHERE "
                         "name = ?", "ss", hw->uuid, names.v[i]);
        }
        vmc_hw_free(hw);
    }
    /* all or nothing: a failure undefines what this call defined */
    for (i = 0; r < 0 && conn && i < done; i++) {
        char *u = NULL;

        if (cat_get_str(cat, &u, NULL, "SELECT uuid FROM vms WHERE name = "
                        "?", "s", names.v[i]) == 0) {
            undefine_uuid(conn, u, names.v[i], true, NULL);
        }
        free(u);
    }
    if (conn) {
        virConnectClose(conn);
    }
    cat_strv_release(&names);
    return r;
}

void
cat_virt_rollback(struct vmc_catalog *cat, int64_t jid)
{
    cat_stmt *st = NULL;

    if (cat_prepare(cat, &st, NULL, "SELECT name, domain_uri, uuid FROM vms "
                    "WHERE journal_id = ? AND state = 'creating' AND "
                    "domain_uri IS NOT NULL", "I", jid) < 0) {
        return;
    }
    while (cat_step(cat, st, NULL) > 0) {
        virConnectPtr conn = connect_uri(cat_col(st, 1), NULL);

        if (conn) {
            undefine_uuid(conn, cat_col(st, 2), cat_col(st, 0), true, NULL);
            virConnectClose(conn);
        }
    }
    cat_finalize(st);
}

int
cat_virt_rm_check(struct vmc_catalog *cat, const char *name, char **uri,
                  char **uuid, struct vmc_error *err)
{
    virConnectPtr conn;
    virDomainPtr dom;
    int r = vm_domain(cat, name, uri, uuid, err);

    if (r < 0 || !*uri) {
        return r == -ENOENT ? 0 : r;    /* no VM: rm says so itself */
    }
    conn = connect_uri(*uri, NULL);     /* no daemon: nothing runs there */
    dom = conn ? find_domain(conn, *uuid) : NULL;
    if (dom && virDomainIsActive(dom) == 1) {
        r = vmc_error_set(err, -EBUSY, "VM '%s' runs as libvirt domain '%s' "
                          "(stop it, or rm --force)", name,
                          virDomainGetName(dom));
    }
    if (dom) {
        virDomainFree(dom);
    }
    if (conn) {
        virConnectClose(conn);
    }
    return r;
}

void
cat_virt_rm_done(const char *uri, const char *uuid)
{
    virConnectPtr conn = connect_uri(uri, NULL);

    if (conn) {
        undefine_uuid(conn, uuid, "", false, NULL);
        virConnectClose(conn);
    }
}

/* Whether domain @dom's XML names a file in one of @pools ("DIR/"). */
static bool
uses_our_disks(virDomainPtr dom, const struct cat_strv *pools)
{
    char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
    bool hit = false;
    size_t i;

    for (i = 0; xml && !hit && i < pools->n; i++) {
        char needle[4200];

        snprintf(needle, sizeof(needle), "file='%s/", pools->v[i]);
        hit = strstr(xml, needle) != NULL;
    }
    free(xml);
    return hit;
}

/* fsck on one connection @uri: our VMs' domains there, and the others. */
static void
fsck_uri(struct vmc_catalog *cat, const char *uri, const struct cat_strv *pools,
         vmc_catalog_report_fn fn, void *opaque, unsigned *problems)
{
    virConnectPtr conn = connect_uri(uri, NULL);
    virDomainPtr *doms = NULL;
    cat_stmt *st = NULL;
    char detail[1200], uuid[VIR_UUID_STRING_BUFLEN];
    int n, i;

    if (!conn) {
        snprintf(detail, sizeof(detail), "cannot connect to check its "
                 "domains: %s", last_error());
        fn("problem", uri, detail, opaque);
        ++*problems;
        return;
    }
    if (cat_prepare(cat, &st, NULL, "SELECT name, domain_uuid FROM vms WHERE "
                    "domain_uri = ? AND state = 'ready'", "s", uri) == 0) {
        while (cat_step(cat, st, NULL) > 0) {
            virDomainPtr dom = find_domain(conn, cat_col(st, 1));

            if (dom) {
                virDomainFree(dom);
                continue;
            }
            snprintf(detail, sizeof(detail), "its libvirt domain %s on %s is "
                     "gone (vm define to make it again)", cat_col(st, 1), uri);
            fn("problem", cat_col(st, 0), detail, opaque);
            ++*problems;
        }
    }
    cat_finalize(st);
    n = virConnectListAllDomains(conn, &doms, 0);
    for (i = 0; i < n; i++) {
        int64_t ours = 0;

        if (virDomainGetUUIDString(doms[i], uuid) == 0 &&
            cat_get_i64(cat, &ours, NULL, "SELECT count(*) FROM vms WHERE "
                        "domain_uuid = ?", "s", uuid) == 0 && ours == 0 &&
            uses_our_disks(doms[i], pools)) {
            snprintf(detail, sizeof(detail), "libvirt domain '%s' on %s uses "
                     "disks of this store but is not one of its VMs",
                     virDomainGetName(doms[i]), uri);
            fn("problem", virDomainGetName(doms[i]), detail, opaque);
            ++*problems;
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    virConnectClose(conn);
}

int
cat_virt_fsck(struct vmc_catalog *cat, vmc_catalog_report_fn fn, void *opaque,
              unsigned *problems, struct vmc_error *err)
{
    struct cat_strv uris = { 0 }, pools = { 0 };
    size_t i;
    int r = cat_collect(cat, &uris, err, "SELECT DISTINCT domain_uri FROM "
                        "vms WHERE domain_uri IS NOT NULL AND id > ?", 0);

    if (r == 0) {
        r = cat_collect(cat, &pools, err, "SELECT path FROM pools WHERE id "
                        "> ?", 0);
    }
    for (i = 0; r == 0 && fn && i < uris.n; i++) {
        fsck_uri(cat, uris.v[i], &pools, fn, opaque, problems);
    }
    cat_strv_release(&uris);
    cat_strv_release(&pools);
    return r;
}

#else /* !VMC_HAVE_LIBVIRT */

static int
no_libvirt(struct vmc_error *err)
{
    return vmc_error_set(err, -ENOTSUP, "this vm-clone was built without "
                         "libvirt (libvirt-dev)");
}

int
vmc_virt_define(struct vmc_catalog *cat, const struct vmc_hw *hw,
                const char *uri, struct vmc_error *err)
{
    return no_libvirt(err);
}

int
vmc_virt_undefine(struct vmc_catalog *cat, const char *name, bool stop,
                  struct vmc_error *err)
{
    return no_libvirt(err);
}

int
cat_virt_define_group(struct vmc_catalog *cat, int64_t jid, const char *uri,
                      struct vmc_error *err)
{
    return no_libvirt(err);
}

void
cat_virt_rollback(struct vmc_catalog *cat, int64_t jid)
{
}

int
cat_virt_rm_check(struct vmc_catalog *cat, const char *name, char **uri,
                  char **uuid, struct vmc_error *err)
{
    *uri = *uuid = NULL;
    return 0;
}

void
cat_virt_rm_done(const char *uri, const char *uuid)
{
}

int
cat_virt_fsck(struct vmc_catalog *cat, vmc_catalog_report_fn fn, void *opaque,
              unsigned *problems, struct vmc_error *err)
{
    return 0;
}

#endif /* VMC_HAVE_LIBVIRT */
