/*
 * ovf.h - OVF appliances (DMTF DSP0243 1.x) inside the catalog: the
 * descriptor's parts an import needs (ovf.c), its manifest (ovf-mf.c),
 * and the appliance import (appliance.c).
 */
#ifndef VMC_CATALOG_OVF_H
#define VMC_CATALOG_OVF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmclone.h"

/* Bounds on what an appliance may hold before anything is parsed. */
#define OVF_DESC_MAX    (4u << 20)   /* descriptor bytes */
#define OVF_MF_MAX      (1u << 20)   /* manifest bytes */
#define OVF_DISKS_MAX   64
#define OVF_FILES_MAX   256

struct ovf_disk {
    char *id;               /* ovf:diskId */
    char *href;             /* the file, a plain name next to the .ovf */
    uint64_t capacity;      /* bytes (0: not given) */
    bool vmdk;              /* ovf:format names a VMDK */
};

struct ovf_desc {
    unsigned cpus;          /* 0: not given */
    uint64_t memory_mb;     /* 0: not given */
    unsigned nics;
    struct ovf_disk disks[OVF_DISKS_MAX];
    size_t ndisks;
    char *files[OVF_FILES_MAX];     /* every References/File href */
    size_t nfiles;
};

/* Parse descriptor @buf (@len bytes, at most OVF_DESC_MAX): refuses a
 * DTD or entity declarations (XML bombs), network access, disk references
 * that are not plain file names, and what it cannot import (compressed or
 * chunked files, disks without a file, several virtual systems). -EINVAL
 * with the reason in @err. */
int ovf_parse(const char *buf, size_t len, struct ovf_desc *out,
              struct vmc_error *err);
void ovf_desc_release(struct ovf_desc *d);

/* Whether @href is a plain file name (no '/', not '.', '..' or empty);
 * else -EINVAL with a message naming @what and @href. */
int ovf_check_href(const char *href, const char *what,
                   struct vmc_error *err);

/* Check manifest @mf (@len bytes) against the files: every name in
 * @names (with @paths[i] its file here) needs one line
 * "ALGO(name)= hex" (SHA1, SHA256 or SHA512) whose digest matches, and
 * every line must name one of them (a NULL @paths[i] is a file the import
 * does not use: its line is allowed, not needed nor checked). -EBADMSG with the first problem.
 * @algo_out gets the algorithm of the lines ("SHA256"). */
int ovf_manifest_check(const char *mf, size_t len, const char *const *names,
                       const char *const *paths, size_t n,
                       const char **algo_out, struct vmc_error *err);

/* The lowercase hex SHA-256 of file @path into @hex (65 bytes). */
int ovf_sha256_file(const char *path, char hex[65], struct vmc_error *err);

#endif
