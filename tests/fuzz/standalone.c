/*
 * standalone.c - replay fuzz inputs without libFuzzer, so the corpus runs
 * as an ordinary test (and under the ordinary sanitizer build).
 *
 * usage: fuzz-replay FILE|DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count;

static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long len;

    if (!f || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    rewind(f);
    data = malloc((size_t)len + 1);
    if (!data || fread(data, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    printf("# %s (%ld bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(data, (size_t)len);
    free(data);
    count++;
    return 0;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
run_path(const char *path)
{
    struct stat st;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, i;
    int rc = 0;
    DIR *d;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "cannot stat %s\n", path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return run_file(path);
    }
    if (!(d = opendir(path))) {
        return 1;
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') {
            continue;
        }
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n] = malloc(strlen(path) + strlen(de->d_name) + 2);
        sprintf(names[n++], "%s/%s", path, de->d_name);
    }
    closedir(d);
    if (n) {
        qsort(names, n, sizeof(*names), cmp_names);
    }
    for (i = 0; i < n; i++) {
        rc |= run_path(names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        rc |= run_path(argv[i]);
    }
    if (!count) {
        fprintf(stderr, "no inputs replayed\n");
        return 1;
    }
    printf("%d inputs replayed\n", count);
    return rc;
}
