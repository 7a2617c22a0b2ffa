/*
 * ovf.c - read an OVF descriptor (DMTF DSP0243 1.x) with libxml2: the
 * files it references, its disks in the order of the virtual hardware,
 * and the CPUs, memory and network cards of its one virtual system.
 *
 * The descriptor comes from an untrusted appliance: it is bounded in
 * size, may not declare a DTD or entities (no expansion, so no XML bomb),
 * is parsed without network access, and every file it names must be a
 * plain name beside it. Elements and attributes are matched by local
 * name, whatever namespace prefix the writer used.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ovf.h"
#include "xml-dl.h"

/* ------------------------------------------------------------ helpers */

static bool
named(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE &&
           !strcmp((const char *)n->name, name);
}

/* The first child element of @n called @name, or NULL. */
static xmlNode *
child(const xmlNode *n, const char *name)
{
    xmlNode *c;

    for (c = n ? n->children : NULL; c; c = c->next) {
        if (named(c, name)) {
            return c;
        }
    }
    return NULL;
}

/* Attribute @name of @n (any namespace), malloc'd, or NULL. */
static char *
attr(const xmlNode *n, const char *name)
{
    const xmlAttr *a;

    for (a = n->properties; a; a = a->next) {
        if (!strcmp((const char *)a->name, name)) {
            xmlChar *v = xmlNodeListGetString(n->doc, a->children, 1);
            char *s = strdup(v ? (const char *)v : "");

            xmlFree(v);
            return s;
        }
    }
    return NULL;
}

/* The text of child element @name of @n, malloc'd, or NULL. */
static char *
child_text(const xmlNode *n, const char *name)
{
    xmlNode *c = child(n, name);
    xmlChar *v;
    char *s;

    if (!c) {
        return NULL;
    }
    v = xmlNodeGetContent(c);
    s = strdup(v ? (const char *)v : "");
    xmlFree(v);
    return s;
}

static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;

    while (s && (*s == ' ' || *s == '\t' || *s == '\n')) {
        s++;
    }
    if (!s || *s < '0' || *s > '9') {
        return -EINVAL;
    }
    errno = 0;
    *out = strtoull(s, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n') {
        end++;
    }
    return errno || *end ? -EINVAL : 0;
}

/* The power of two of DSP0004 programmatic units ("byte * 2^20") or of
 * their usual names ("MegaBytes"); -1 if unknown. */
static int
unit_shift(const char *u)
{
    static const struct { const char *name; int shift; } names[] = {
        { "byte", 0 }, { "bytes", 0 }, { "KB", 10 }, { "KiloBytes", 10 },
        { "MB", 20 }, { "MegaBytes", 20 }, { "GB", 30 },
        { "GigaBytes", 30 }, { "TB", 40 }, { "TeraBytes", 40 },
    };
    const char *p;
    size_t i;

    if (!u || !*u) {
        return 20;
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(u, names[i].name)) {
            return names[i].shift;
        }
    }
    if (strncmp(u, "byte", 4) || !(p = strstr(u, "2^"))) {
        return -1;
    }
    i = (size_t)strtoul(p + 2, NULL, 10);
    return i <= 50 ? (int)i : -1;
}

int
ovf_check_href(const char *href, const char *what, struct vmc_error *err)
{
    if (!href || !*href) {
        return vmc_error_set(err, -EINVAL, "appliance: %s has no file "
                             "name: refused", what);
    }
    if (href[0] == '/') {
        return vmc_error_set(err, -EINVAL, "appliance: %s '%s' is an "
                             "absolute name: refused (an appliance's files "
                             "are plain names beside its descriptor)", what,
                             href);
    }
    if (strstr(href, "..") || strchr(href, '/') || strchr(href, '\\') ||
        strchr(href, ':') || !strcmp(href, ".")) {
        return vmc_error_set(err, -EINVAL, "appliance: %s '%s' is not a "
                             "plain file name (a path or URL could leave "
                             "the appliance): refused", what, href);
    }
    return 0;
}

/* ------------------------------------------------------ the sections */

/* References: every File's href, checked. */
static int
read_references(const xmlNode *env, struct ovf_desc *d,
                struct vmc_error *err)
{
    const xmlNode *f;
    int r = 0;

    for (f = child(env, "References"); f && (f = f->children); f = NULL) {
        for (; f && r == 0; f = f->next) {
            char *href, *comp, *chunk;

            if (!named(f, "File")) {
                continue;
            }
            if (d->nfiles == OVF_FILES_MAX) {
                return vmc_error_set(err, -EINVAL, "appliance: more than "
                                     "%d files: refused", OVF_FILES_MAX);
            }
            href = attr(f, "href");
            comp = attr(f, "compression");
            chunk = attr(f, "chunkSize");
            r = ovf_check_href(href, "file reference", err);
            if (r == 0 && ((comp && *comp && strcmp(comp, "identity")) ||
                           chunk)) {
                r = vmc_error_set(err, -ENOTSUP, "appliance: file '%s' is "
                                  "%s: not supported", href,
                                  chunk ? "chunked" : "compressed");
            }
            if (r == 0) {
                d->files[d->nfiles++] = href;
                href = NULL;
            }
            free(href);
            free(comp);
            free(chunk);
        }
    }
    return r;
}

/* The href of File @id (malloc'd), or NULL. */
static char *
file_of(const xmlNode *env, const char *id)
{
    const xmlNode *f = child(env, "References");

    for (f = f ? f->children : NULL; f; f = f->next) {
        char *fid = named(f, "File") ? attr(f, "id") : NULL;
        bool match = fid && !strcmp(fid, id);

        free(fid);
        if (match) {
            return attr(f, "href");
        }
    }
    return NULL;
}

static bool
disk_added(const struct ovf_desc *d, const char *id)
{
    size_t i;

    for (i = 0; i < d->ndisks; i++) {
        if (!strcmp(d->disks[i].id, id)) {
            return true;
        }
    }
    return false;
}

/* Append DiskSection disk @disk (an element) to @d, once. */
static int
add_disk(const xmlNode *env, const xmlNode *disk, struct ovf_desc *d,
         struct vmc_error *err)
{
    char *id = attr(disk, "diskId"), *ref = attr(disk, "fileRef");
    char *cap = attr(disk, "capacity"), *fmt = attr(disk, "format");
    char *units = attr(disk, "capacityAllocationUnits");
    char *href = NULL;
    uint64_t c = 0;
    int shift = unit_shift(units && *units ? units : "byte");
    int r = 0;

    if (!id || !*id) {
        r = vmc_error_set(err, -EINVAL, "appliance: a disk has no diskId: "
                          "refused");
    } else if (disk_added(d, id)) {
        goto out;
    } else if (d->ndisks == OVF_DISKS_MAX) {
        r = vmc_error_set(err, -EINVAL, "appliance: more than %d disks: "
                          "refused", OVF_DISKS_MAX);
    } else if (!ref || !*ref) {
        r = vmc_error_set(err, -ENOTSUP, "appliance: disk '%s' has no "
                          "file (an empty disk): not supported", id);
    } else if (!(href = file_of(env, ref))) {
        r = vmc_error_set(err, -EINVAL, "appliance: disk '%s' names file "
                          "'%s', which References does not list: refused",
                          id, ref);
    }
    if (r == 0 && cap && (parse_u64(cap, &c) < 0 || shift < 0 ||
                          c > (UINT64_MAX >> shift))) {
        r = vmc_error_set(err, -EINVAL, "appliance: disk '%s': capacity "
                          "'%s' is not a size: refused", id, cap);
    }
    if (r == 0) {
        struct ovf_disk *o = &d->disks[d->ndisks++];

        o->id = id;
        o->href = href;
        o->capacity = c << shift;
        o->vmdk = fmt && strstr(fmt, "vmdk");
        id = href = NULL;
    }
out:
    free(href);
    free(id);
    free(ref);
    free(cap);
    free(units);
    free(fmt);
    return r;
}

/* The DiskSection's Disk element called @id, or NULL. */
static const xmlNode *
disk_by_id(const xmlNode *env, const char *id)
{
    const xmlNode *n = child(env, "DiskSection");

    for (n = n ? n->children : NULL; n; n = n->next) {
        char *did = named(n, "Disk") ? attr(n, "diskId") : NULL;
        bool match = did && !strcmp(did, id);

        free(did);
        if (match) {
            return n;
        }
    }
    return NULL;
}

/* Memory item: VirtualQuantity in AllocationUnits, to MiB. */
static int
read_memory(const char *qty, const char *units, struct ovf_desc *d,
            struct vmc_error *err)
{
    int shift = unit_shift(units);
    uint64_t q = 0;

    if (parse_u64(qty, &q) < 0 || shift < 0 || q > (UINT64_MAX >> 44) ||
        (d->memory_mb = (q << shift) >> 20) == 0 ||
        d->memory_mb > (16ull << 20)) {
        return vmc_error_set(err, -EINVAL, "appliance: memory '%s %s' is "
                             "not a size from 1 MiB to 16 TiB: refused",
                             qty ? qty : "", units ? units : "");
    }
    return 0;
}

/* One rasd Item of the hardware: CPUs (3), memory (4), NIC (10), disk
 * drive (17: its disk is added in this order). */
static int
read_item(const xmlNode *env, const xmlNode *item, struct ovf_desc *d,
          struct vmc_error *err)
{
    char *type = child_text(item, "ResourceType");
    char *qty = child_text(item, "VirtualQuantity");
    char *units = child_text(item, "AllocationUnits");
    char *host = child_text(item, "HostResource");
    uint64_t t = 0, q = 0;
    int r = 0;

    if (!type || parse_u64(type, &t) < 0) {
        goto out;
    }
    if (t == 3) {
        if (!qty || parse_u64(qty, &q) < 0 || !q || q > 1024) {
            r = vmc_error_set(err, -EINVAL, "appliance: CPU count '%s' is "
                              "not from 1 to 1024: refused", qty ? qty : "");
        }
        d->cpus = (unsigned)q;
    } else if (t == 4) {
        r = read_memory(qty, units, d, err);
    } else if (t == 10 && ++d->nics > 32) {
        r = vmc_error_set(err, -EINVAL, "appliance: more than 32 network "
                          "cards: refused");
    } else if (t == 17 && host) {
        const char *id = strstr(host, "/disk/");
        const xmlNode *disk = id ? disk_by_id(env, id + 6) : NULL;

        r = disk ? add_disk(env, disk, d, err)
                 : vmc_error_set(err, -EINVAL, "appliance: disk drive '%s' "
                                 "names no disk of the DiskSection: "
                                 "refused", host);
    }
out:
    free(type);
    free(qty);
    free(units);
    free(host);
    return r;
}

/* The one VirtualSystem's hardware, then the disks no drive named. */
static int
read_system(const xmlNode *env, struct ovf_desc *d, struct vmc_error *err)
{
    const xmlNode *vs = child(env, "VirtualSystem"), *n;
    int r = 0;

    if (!vs) {
        return vmc_error_set(err, -EINVAL, "appliance: the descriptor has "
                             "no VirtualSystem%s: refused",
                             child(env, "VirtualSystemCollection")
                             ? " (a collection of several is not supported)"
                             : "");
    }
    n = child(vs, "VirtualHardwareSection");
    for (n = n ? n->children : NULL; n && r == 0; n = n->next) {
        if (named(n, "Item") || named(n, "EthernetPortItem") ||
            named(n, "StorageItem")) {
            r = read_item(env, n, d, err);
        }
    }
    n = child(env, "DiskSection");
    for (n = n ? n->children : NULL; n && r == 0; n = n->next) {
        if (named(n, "Disk")) {
            r = add_disk(env, n, d, err);
        }
    }
    if (r == 0 && d->ndisks == 0) {
        r = vmc_error_set(err, -EINVAL, "appliance: the descriptor names "
                          "no disk: refused");
    }
    return r;
}

/* An OVF descriptor never needs a DTD: one (with its entities, the
 * stuff of "billion laughs" bombs) is refused before libxml2 sees it;
 * so is a NUL byte (a UTF-16 text could hide a declaration). */
static int
refuse_dtd(const char *buf, size_t len, struct vmc_error *err)
{
    if (memchr(buf, '\0', len)) {
        return vmc_error_set(err, -EINVAL, "appliance: the descriptor is "
                             "not UTF-8 text: refused");
    }
    if (memmem(buf, len, "<!DOCTYPE", 9) || memmem(buf, len, "<!ENTITY", 8)) {
        return vmc_error_set(err, -EINVAL, "appliance: the descriptor "
                             "declares a DTD or entities: refused (an OVF "
                             "descriptor has none; entity expansion is how "
                             "XML bombs work)");
    }
    return 0;
}

int
ovf_parse(const char *buf, size_t len, struct ovf_desc *out,
          struct vmc_error *err)
{
    const int opts = XML_PARSE_NONET | XML_PARSE_NOERROR |
                     XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS;
    xmlDoc *doc = NULL;
    xmlNode *env;
    int r;

    memset(out, 0, sizeof(*out));
    if (xml_dl_error()) {
        return vmc_error_set(err, -ELIBACC, "an OVF descriptor needs "
                             "libxml2, which cannot be loaded (%s): install "
                             "libxml2", xml_dl_error());
    }
    if (len > OVF_DESC_MAX) {
        return vmc_error_set(err, -EFBIG, "appliance: the descriptor is "
                             "%zu bytes: refused (at most %u)", len,
                             OVF_DESC_MAX);
    }
    r = refuse_dtd(buf, len, err);
    if (r == 0) {
        doc = xmlReadMemory(buf, (int)len, "descriptor.ovf", NULL, opts);
        if (!doc) {
            const xmlError *e = xmlGetLastError();

            r = vmc_error_set(err, -EINVAL, "appliance: the descriptor is "
                              "not XML: line %d: %s", e ? e->line : 0,
                              e && e->message ? e->message : "parse error");
        }
    }
    if (r == 0 && (doc->intSubset || doc->extSubset)) {
        r = vmc_error_set(err, -EINVAL, "appliance: the descriptor "
                          "declares a DTD: refused");
    }
    env = r == 0 ? xmlDocGetRootElement(doc) : NULL;
    if (r == 0 && !named(env, "Envelope")) {
        r = vmc_error_set(err, -EINVAL, "appliance: the descriptor is not "
                          "an OVF Envelope: refused");
    }
    if (r == 0) {
        r = read_references(env, out, err);
    }
    if (r == 0) {
        r = read_system(env, out, err);
    }
    xmlFreeDoc(doc);
    if (r < 0) {
        ovf_desc_release(out);
    }
    return r;
}

void
ovf_desc_release(struct ovf_desc *d)
{
    size_t i;

    for (i = 0; i < d->ndisks; i++) {
        free(d->disks[i].id);
        free(d->disks[i].href);
    }
    for (i = 0; i < d->nfiles; i++) {
        free(d->files[i]);
    }
    d->ndisks = d->nfiles = 0;
}
