/*
 * ovf-mf.c - an OVF appliance's manifest (the .mf file): one line
 * "ALGO(name)= hexdigest" per file of the appliance. Every file the
 * import uses needs its line with a matching digest; a line that names
 * no such file, a malformed line or a wrong digest refuses the import
 * (-EBADMSG: exit status 6, integrity).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ovf.h"

/* The digest called @algo in manifests, or NULL. */
static const EVP_MD *
md_of(const char *algo, size_t len)
{
    if (len == 4 && !strncmp(algo, "SHA1", 4)) {
        return EVP_sha1();
    }
    if (len == 6 && !strncmp(algo, "SHA256", 6)) {
        return EVP_sha256();
    }
    if (len == 6 && !strncmp(algo, "SHA512", 6)) {
        return EVP_sha512();
    }
    return NULL;
}

/* The lowercase hex @md digest of file @path into @hex (129 bytes). */
static int
digest_file(const char *path, const EVP_MD *md, char *hex,
            struct vmc_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20), dig[EVP_MAX_MD_SIZE];
    unsigned dlen = 0, i;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r = 0;
    ssize_t n;

    if (fd < 0) {
        r = vmc_error_set(err, -errno, "appliance: '%s': %s", path,
                          strerror(errno));
    } else if (!ctx || !buf || !EVP_DigestInit_ex(ctx, md, NULL)) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    }
    while (r == 0 && (n = read(fd, buf, 1 << 20)) != 0) {
        if (n < 0) {
            r = vmc_error_set(err, -errno, "appliance: reading '%s': %s",
                              path, strerror(errno));
        } else if (!EVP_DigestUpdate(ctx, buf, (size_t)n)) {
            r = vmc_error_set(err, -EIO, "appliance: digest failed");
        }
    }
    if (r == 0 && !EVP_DigestFinal_ex(ctx, dig, &dlen)) {
        r = vmc_error_set(err, -EIO, "appliance: digest failed");
    }
    for (i = 0; r == 0 && i < dlen; i++) {
        snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    }
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    EVP_MD_CTX_free(ctx);
    return r;
}

int
ovf_sha256_file(const char *path, char hex[65], struct vmc_error *err)
{
    char full[2 * EVP_MAX_MD_SIZE + 1];
    int r = digest_file(path, EVP_sha256(), full, err);

    if (r == 0) {
        memcpy(hex, full, 65);
    }
    return r;
}

/* One manifest line "ALGO(name)= hex" split in place; -EBADMSG if it is
 * not one. */
static int
split_line(char *line, size_t lineno, const char **algo, size_t *alen,
           char **name, char **hex, struct vmc_error *err)
{
    char *open = strchr(line, '('), *close = strstr(line, ")=");

    if (!open || !close || close < open) {
        return vmc_error_set(err, -EBADMSG, "appliance: manifest line %zu "
                             "is not 'ALGO(file)= digest': refused", lineno);
    }
    *algo = line;
    *alen = (size_t)(open - line);
    *close = '\0';
    *name = open + 1;
    *hex = close + 2;
    while (**hex == ' ') {
        (*hex)++;
    }
    (*hex)[strcspn(*hex, " \r")] = '\0';
    return 0;
}

/* Check line @lineno (split) against the files; mark the one it names. */
static int
check_line(char *line, size_t lineno, const char *const *names,
           const char *const *paths, size_t n, bool *seen,
           const char **algo_out, struct vmc_error *err)
{
    char want[2 * EVP_MAX_MD_SIZE + 1] = "", *name = NULL, *hex = NULL, *p;
    const EVP_MD *md;
    const char *algo = "";
    size_t alen = 0, i;
    int r = split_line(line, lineno, &algo, &alen, &name, &hex, err);

    if (r < 0) {
        return r;
    }
    if (!(md = md_of(algo, alen))) {
        return vmc_error_set(err, -EBADMSG, "appliance: manifest line %zu: "
                             "unknown digest '%.*s' (SHA1, SHA256 or "
                             "SHA512): refused", lineno, (int)alen, algo);
    }
    for (i = 0; i < n && strcmp(names[i], name); i++) {
    }
    if (i == n || seen[i]) {
        return vmc_error_set(err, -EBADMSG, "appliance: manifest line %zu "
                             "names '%s', %s: refused", lineno, name,
                             i == n ? "which is not a file of the appliance"
                                    : "already listed");
    }
    seen[i] = true;
    *algo_out = EVP_MD_get0_name(md);
    if (!paths[i]) {
        return 0;       /* a file of the appliance this import skips */
    }
    for (p = hex; *p; p++) {
        *p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    }
    r = digest_file(paths[i], md, want, err);
    if (r == 0 && strcmp(want, hex)) {
        r = vmc_error_set(err, -EBADMSG, "appliance: '%s' does not match "
                          "its manifest digest (%.*s %s, the file's is %s): "
                          "refused", name, (int)alen, algo, hex, want);
    }
    return r;
}

int
ovf_manifest_check(const char *mf, size_t len, const char *const *names,
                   const char *const *paths, size_t n,
                   const char **algo_out, struct vmc_error *err)
{
    char *text = malloc(len + 1), *line, *save = NULL;
    bool *seen = calloc(n ? n : 1, sizeof(*seen));
    size_t lineno = 0, i;
    int r = 0;

    if (!text || !seen) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    } else if (len > OVF_MF_MAX || memchr(mf, '\0', len)) {
        r = vmc_error_set(err, -EBADMSG, "appliance: the manifest is not "
                          "a text of at most %u bytes: refused", OVF_MF_MAX);
    }
    if (r == 0) {
        memcpy(text, mf, len);
        text[len] = '\0';
    }
    for (line = r ? NULL : strtok_r(text, "\n", &save); line && r == 0;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[strspn(line, " \r\t")] != '\0') {
            r = check_line(line, lineno, names, paths, n, seen, algo_out,
                           err);
        }
    }
    for (i = 0; r == 0 && i < n; i++) {
        if (!seen[i] && paths[i]) {
            r = vmc_error_set(err, -EBADMSG, "appliance: the manifest has "
                              "no digest of '%s': refused", names[i]);
        }
    }
    free(text);
    free(seen);
    return r;
}
