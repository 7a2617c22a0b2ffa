/*
 * ovf-write.c - write an OVF 1.0 appliance (vmc_ova_write): a descriptor
 * made with libxml2's writer (the VM's CPUs, memory, network cards and
 * disks), a SHA-256 manifest, and the streamOptimized VMDK disks, in a
 * tar archive made with libarchive, in the order OVF asks (descriptor,
 * manifest, disks). What ovf.c reads back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "archive-dl.h"
#include "ovf.h"
#include "vmclone-catalog.h"
#include "xml-dl.h"

#define OVF_NS    "http://schemas.dmtf.org/ovf/envelope/1"
#define RASD_NS   "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/" \
                  "CIM_ResourceAllocationSettingData"
#define VMDK_SO   "http://www.vmware.com/interfaces/specifications/" \
                  "vmdk.html#streamOptimized"

static const char *
base_name(const char *path)
{
    const char *s = strrchr(path, '/');

    return s ? s + 1 : path;
}

/* One <Item> of the virtual hardware: rasd:ResourceType @type with an
 * optional VirtualQuantity (@qty, 0: none) or HostResource (@host). */
static int
put_item(xmlTextWriterPtr w, unsigned id, unsigned type, const char *label,
         uint64_t qty, const char *units, const char *host)
{
    int r = xmlTextWriterStartElement(w, BAD_CAST "Item");

    if (r >= 0 && units) {
        r = xmlTextWriterWriteElement(w, BAD_CAST "rasd:AllocationUnits",
                                      BAD_CAST units);
    }
    r = r < 0 ? r : xmlTextWriterWriteElement(w, BAD_CAST "rasd:ElementName",
                                              BAD_CAST label);
    if (r >= 0 && host) {
        r = xmlTextWriterWriteElement(w, BAD_CAST "rasd:HostResource",
                                      BAD_CAST host);
    }
    r = r < 0 ? r : xmlTextWriterWriteFormatElement(
        w, BAD_CAST "rasd:InstanceID", "%u", id);
    r = r < 0 ? r : xmlTextWriterWriteFormatElement(
        w, BAD_CAST "rasd:ResourceType", "%u", type);
    if (r >= 0 && qty) {
        r = xmlTextWriterWriteFormatElement(
            w, BAD_CAST "rasd:VirtualQuantity", "%llu",
            (unsigned long long)qty);
    }
    return r < 0 ? r : xmlTextWriterEndElement(w);
}

static int
put_disks(xmlTextWriterPtr w, const struct vmc_ova_spec *s)
{
    size_t i;
    int r = xmlTextWriterStartElement(w, BAD_CAST "References");

    for (i = 0; r >= 0 && i < s->ndisks; i++) {
        r = xmlTextWriterStartElement(w, BAD_CAST "File");
        r = r < 0 ? r : xmlTextWriterWriteFormatAttribute(
            w, BAD_CAST "ovf:id", "file%zu", i + 1);
        r = r < 0 ? r : xmlTextWriterWriteAttribute(
            w, BAD_CAST "ovf:href", BAD_CAST base_name(s->disks[i].file));
        r = r < 0 ? r : xmlTextWriterEndElement(w);
    }
    r = r < 0 ? r : xmlTextWriterEndElement(w);
    r = r < 0 ? r : xmlTextWriterStartElement(w, BAD_CAST "DiskSection");
    r = r < 0 ? r : xmlTextWriterWriteElement(w, BAD_CAST "Info",
                                              BAD_CAST "Virtual disks");
    for (i = 0; r >= 0 && i < s->ndisks; i++) {
        r = xmlTextWriterStartElement(w, BAD_CAST "Disk");
        r = r < 0 ? r : xmlTextWriterWriteFormatAttribute(
            w, BAD_CAST "ovf:diskId", "disk%zu", i + 1);
        r = r < 0 ? r : xmlTextWriterWriteFormatAttribute(
            w, BAD_CAST "ovf:fileRef", "file%zu", i + 1);
        r = r < 0 ? r : xmlTextWriterWriteFormatAttribute(
            w, BAD_CAST "ovf:capacity", "%llu",
            (unsigned long long)s->disks[i].capacity);
        r = r < 0 ? r : xmlTextWriterWriteAttribute(
            w, BAD_CAST "ovf:format", BAD_CAST VMDK_SO);
        r = r < 0 ? r : xmlTextWriterEndElement(w);
    }
    return r < 0 ? r : xmlTextWriterEndElement(w);
}

static int
put_system(xmlTextWriterPtr w, const struct vmc_ova_spec *s)
{
    char host[48];
    unsigned id = 1;
    size_t i;
    int r = xmlTextWriterStartElement(w, BAD_CAST "VirtualSystem");

    r = r < 0 ? r : xmlTextWriterWriteAttribute(w, BAD_CAST "ovf:id",
                                                BAD_CAST s->name);
    r = r < 0 ? r : xmlTextWriterWriteElement(w, BAD_CAST "Info",
                                              BAD_CAST "A virtual machine");
    r = r < 0 ? r : xmlTextWriterWriteElement(w, BAD_CAST "Name",
                                              BAD_CAST s->name);
    r = r < 0 ? r : xmlTextWriterStartElement(
        w, BAD_CAST "VirtualHardwareSection");
    r = r < 0 ? r : xmlTextWriterWriteElement(w, BAD_CAST "Info",
                                              BAD_CAST "Virtual hardware");
    r = r < 0 ? r : put_item(w, id++, 3, "virtual CPUs", s->cpus, NULL,
                             NULL);
    r = r < 0 ? r : put_item(w, id++, 4, "memory", s->memory_mb,
                             "byte * 2^20", NULL);
    for (i = 0; r >= 0 && i < s->nics; i++) {
        r = put_item(w, id++, 10, "network adapter", 0, NULL, NULL);
    }
    for (i = 0; r >= 0 && i < s->ndisks; i++) {
        snprintf(host, sizeof(host), "ovf:/disk/disk%zu", i + 1);
        r = put_item(w, id++, 17, "disk", 0, NULL, host);
    }
    r = r < 0 ? r : xmlTextWriterEndElement(w);
    return r < 0 ? r : xmlTextWriterEndElement(w);
}

/* The descriptor of @s, in *@out (an xmlBuffer the caller frees). */
static int
ovf_descriptor(const struct vmc_ova_spec *s, xmlBufferPtr *out)
{
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;
    int r = w ? 0 : -1;

    r = r < 0 ? r : xmlTextWriterSetIndent(w, 1);
    r = r < 0 ? r : xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL);
    r = r < 0 ? r : xmlTextWriterStartElementNS(w, NULL, BAD_CAST "Envelope",
                                                BAD_CAST OVF_NS);
    r = r < 0 ? r : xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:ovf",
                                                BAD_CAST OVF_NS);
    r = r < 0 ? r : xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns:rasd",
                                                BAD_CAST RASD_NS);
    r = r < 0 ? r : put_disks(w, s);
    r = r < 0 ? r : put_system(w, s);
    r = r < 0 ? r : xmlTextWriterEndDocument(w);
    if (w) {
        xmlFreeTextWriter(w);       /* flushes into buf */
    }
    if (r < 0) {
        xmlBufferFree(buf);
        return -ENOMEM;
    }
    *out = buf;
    return 0;
}

static void
sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned dlen = 0, i;

    EVP_Digest(data, len, dig, &dlen, EVP_sha256(), NULL);
    for (i = 0; i < dlen && i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    }
}

/* "SHA256(name)= hex" for the descriptor and each disk. */
static int
ova_manifest(const struct vmc_ova_spec *s, const char *ovf_name,
             const xmlBufferPtr ovf, char **out, struct vmc_error *err)
{
    char hex[65];
    char *mf = NULL;
    size_t len = 0, i;
    FILE *f = open_memstream(&mf, &len);
    int r = f ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");

    if (r == 0) {
        sha256_hex(xmlBufferContent(ovf), (size_t)xmlBufferLength(ovf), hex);
        fprintf(f, "SHA256(%s)= %s\n", ovf_name, hex);
    }
    for (i = 0; r == 0 && i < s->ndisks; i++) {
        r = ovf_sha256_file(s->disks[i].file, hex, err);
        if (r == 0) {
            fprintf(f, "SHA256(%s)= %s\n", base_name(s->disks[i].file), hex);
        }
    }
    if (f && fclose(f) != 0 && r == 0) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (r < 0) {
        free(mf);
        return r;
    }
    *out = mf;
    return 0;
}

/* A tar member @name of @len bytes from memory @data, or (data NULL)
 * from file @file. */
static int
tar_member(struct archive *a, const char *name, const void *data,
           size_t len, const char *file, struct vmc_error *err)
{
    struct archive_entry *e = archive_entry_new();
    struct stat st;
    char *buf = NULL;
    int fd = -1, r = e ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");
    ssize_t n;

    if (r == 0 && file) {
        fd = open(file, O_RDONLY | O_CLOEXEC);
        buf = malloc(1 << 20);
        r = fd < 0 || fstat(fd, &st) < 0
            ? vmc_error_set(err, -errno, "'%s': %s", file, strerror(errno))
            : !buf ? vmc_error_set(err, -ENOMEM, "out of memory") : 0;
        len = r == 0 ? (size_t)st.st_size : 0;
    }
    if (r == 0) {
        archive_entry_set_pathname(e, name);
        archive_entry_set_size(e, (la_int64_t)len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, time(NULL), 0);
        if (archive_write_header(a, e) != ARCHIVE_OK) {
            r = vmc_error_set(err, -EIO, "appliance: %s",
                              archive_error_string(a));
        }
    }
    if (r == 0 && data && archive_write_data(a, data, len) != (la_ssize_t)len) {
        r = vmc_error_set(err, -EIO, "appliance: %s", archive_error_string(a));
    }
    while (r == 0 && fd >= 0 && (n = read(fd, buf, 1 << 20)) != 0) {
        if (n < 0 || archive_write_data(a, buf, (size_t)n) != n) {
            r = vmc_error_set(err, n < 0 ? -errno : -EIO, "appliance: "
                              "writing '%s' into the archive failed", name);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    archive_entry_free(e);
    return r;
}

int
vmc_ova_write(const char *path, const struct vmc_ova_spec *s,
              struct vmc_error *err)
{
    xmlBufferPtr ovf = NULL;
    struct archive *a = NULL;
    char *mf = NULL, *ovf_name = NULL, *mf_name = NULL;
    size_t i;
    int fd, r;

    if (xml_dl_error() || archive_dl_error()) {
        return vmc_error_set(err, -ELIBACC, "an OVA needs libxml2 and "
                             "libarchive, which cannot be loaded (%s): install "
                             "libxml2 and libarchive13", xml_dl_error() ?
                             xml_dl_error() : archive_dl_error());
    }
    if (ovf_descriptor(s, &ovf) < 0) {
        return vmc_error_set(err, -ENOMEM, "appliance: cannot write the "
                             "descriptor");
    }
    if (asprintf(&ovf_name, "%s.ovf", s->name) < 0 ||
        asprintf(&mf_name, "%s.mf", s->name) < 0) {
        xmlBufferFree(ovf);
        free(ovf_name);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = ova_manifest(s, ovf_name, ovf, &mf, err);
    /* a new file: never one that exists */
    fd = r < 0 ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                           0644);
    if (r == 0 && fd < 0) {
        r = vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    if (r == 0) {
        a = archive_write_new();
        if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_open_fd(a, fd) != ARCHIVE_OK) {
            r = vmc_error_set(err, -EIO, "appliance: cannot start the "
                              "archive");
        }
    }
    r = r < 0 ? r : tar_member(a, ovf_name, xmlBufferContent(ovf),
                               (size_t)xmlBufferLength(ovf), NULL, err);
    r = r < 0 ? r : tar_member(a, mf_name, mf, strlen(mf), NULL, err);
    for (i = 0; r == 0 && i < s->ndisks; i++) {
        r = tar_member(a, base_name(s->disks[i].file), NULL, 0,
                       s->disks[i].file, err);
    }
    if (a && archive_write_close(a) != ARCHIVE_OK && r == 0) {
        r = vmc_error_set(err, -EIO, "appliance: %s", archive_error_string(a));
    }
    if (a) {
        archive_write_free(a);
    }
    if (fd >= 0 && r == 0 && fsync(fd) < 0) {
        r = vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    if (fd >= 0 && close(fd) < 0 && r == 0) {
        r = vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    if (r < 0 && fd >= 0) {
        unlink(path);               /* made by this call */
    }
    xmlBufferFree(ovf);
    free(mf);
    free(ovf_name);
    free(mf_name);
    return r;
}
