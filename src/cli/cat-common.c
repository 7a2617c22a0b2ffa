/*
 * cat-common.c - what the management commands share (cat-cli.h): opening
 * and closing the store, its progress bar, sizes, durations, the
 * catalog's reports turned into JSON, and the small JSON accessors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cat-cli.h"
#include "ephemeral.h"

/* A missing file (a VM's disk) is -ENOENT like a missing object, but its
 * message has strerror's words or "is missing"; an object's has not. ("Has
 * dependents" is -ENOTEMPTY, apart from a held lock's -EBUSY.) */
static bool
names_missing_file(const char *msg)
{
    return strstr(msg, strerror(ENOENT)) || strstr(msg, "is missing");
}

int
catcli_exit_code(int r, const struct vmc_error *err)
{
    const char *msg = err ? err->msg : "";

    switch (-r) {
    case ENOENT:
        return names_missing_file(msg) ? CLI_EXIT_INTEGRITY
                                       : CLI_EXIT_NOT_FOUND;
    case EEXIST:
    case ENOTEMPTY:
        return CLI_EXIT_CONFLICT;
    case EBUSY:
    case EAGAIN:
    case EDEADLK:
        return CLI_EXIT_BUSY;
    case EUCLEAN:
    case ESTALE:
    case EBADMSG:
        return CLI_EXIT_INTEGRITY;
    default:
        return CLI_EXIT_FAIL;
    }
}

int
catcli_fail(const struct vmc_error *err, int r)
{
    cli_error_lib(err, r);
    return catcli_exit_code(r, err);
}

int
catcli_error(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cli_error("%s", msg);
    return code;
}

/* The store's progress bar: one line per operation. */
void
catcli_progress_cb(uint64_t done, uint64_t total, void *opaque)
{
    struct catcli *c = opaque;

    if (!c->prog_shown) {
        cli_progress_start(&c->prog, true);
        c->prog_shown = true;
    }
    cli_progress_cb(done, total, &c->prog);
    if (done >= total) {
        catcli_progress_end(c);
    }
}

void
catcli_progress_end(struct catcli *c)
{
    if (c->prog_shown) {
        cli_progress_end(&c->prog);
        c->prog_shown = false;
    }
}

int
catcli_open(struct catcli *c, unsigned flags)
{
    struct vmc_error err = { 0 };
    int r = vmc_catalog_open(&c->cat, c->home, flags, &err);

    if (r == -ENOENT && !(flags & VMC_CATALOG_CREATE) &&
        !strncmp(err.msg, "no store at ", 12)) {
        char *dir = NULL, hint[1024];

        vmc_catalog_home(c->home, &dir);
        snprintf(hint, sizeof(hint), CLI_NAME " init --home %s",
                 dir ? dir : "PATH");
        free(dir);
        cli_note_error(err.msg, hint);
        return catcli_error(CLI_EXIT_NOT_FOUND, "%s: create one with '%s' "
                            "(or set VMCLONE_HOME or --home to the store "
                            "you meant)", err.msg, hint);
    }
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    eph_sweep(vmc_catalog_dir(c->cat));   /* overlays of killed runs */
    r = catcli_progress_setup(c);
    if (r) {
        vmc_catalog_close(c->cat);
        c->cat = NULL;
    }
    return r;
}

void
catcli_close(struct catcli *c)
{
    catcli_progress_end(c);
    vmc_catalog_close(c->cat);
    c->cat = NULL;
}

void
catcli_json_done(struct json_object *o)
{
    cli_json_print(stdout, o);
    json_object_put(o);
}

void
catcli_size(const struct catcli *c, uint64_t v, char *buf, size_t len)
{
    if (c->bytes) {
        snprintf(buf, len, "%" PRIu64, v);
    } else {
        cli_size_to_str(v, buf, len);
    }
}

int
catcli_snapref(const char *verb, char *arg, const char *other,
               const char **snap)
{
    char *at = strchr(arg, '@');

    *snap = NULL;
    if (!at) {
        return 0;
    }
    if (at == arg || !at[1] || strchr(at + 1, '@')) {
        return cli_usage_error(verb, "'%s' is not VM@SNAPSHOT", arg);
    }
    if (other) {
        return cli_usage_error(verb, "snapshot given twice: '%s' and '%s'",
                               arg, other);
    }
    *at = '\0';
    *snap = at + 1;
    return 0;
}

int
catcli_parse_duration(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1;

    /* strtoull() takes a sign and wraps "-1" round to a huge value */
    if (*s < '0' || *s > '9') {
        return -EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s) {
        return -EINVAL;
    }
    switch (*end) {
    case '\0':
    case 's':
        break;
    case 'm':
        mul = 60;
        break;
    case 'h':
        mul = 3600;
        break;
    case 'd':
        mul = 86400;
        break;
    case 'w':
        mul = 7 * 86400;
        break;
    default:
        return -EINVAL;
    }
    if (*end && end[1]) {
        return -EINVAL;
    }
    /* a duration that wraps round, or one so long it never ends, is a
     * typo: at most CATCLI_DURATION_MAX seconds (100 years) */
    if (v > CATCLI_DURATION_MAX / mul) {
        return -ERANGE;
    }
    *out = (uint64_t)v * mul;
    return 0;
}

static bool
numeric_column(const char *name)
{
    static const char *const cols[] = {
        "virtual_size", "size", "cpus", "memory_mb", "nics", "disks",
        "vms", "copies", "created", "expires", "retired", "disk",
        "dependents", "snapshots", "volumes", "allocated", "free", "depth",
        "nic", NULL,
    };
    unsigned i;

    for (i = 0; cols[i]; i++) {
        if (!strcmp(cols[i], name)) {
            return true;
        }
    }
    return false;
}

static int
row_to_json(int ncols, const char *const *names, const char *const *values,
            void *opaque)
{
    struct json_object *arr = opaque, *o = json_object_new_object();
    int i;

    for (i = 0; i < ncols; i++) {
        struct json_object *v = NULL;

        if (values[i] && numeric_column(names[i])) {
            if (strchr(values[i], '.')) {
                v = json_object_new_double(strtod(values[i], NULL));
            } else {
                v = json_object_new_int64(strtoll(values[i], NULL, 10));
            }
        } else if (values[i]) {
            v = json_object_new_string(values[i]);
        }
        json_object_object_add(o, names[i], v);
    }
    json_object_array_add(arr, o);
    return 0;
}

/* ------------------------------------------- the JSON contract's types */

/* A source or origin sentence of the catalog ("template T", "vm A",
 * "vm A@S") as {"kind", "name", "snapshot"}; NULL for none. */
struct json_object *
catcli_source_json(const char *sentence)
{
    struct json_object *o;
    const char *sp = sentence ? strchr(sentence, ' ') : NULL;
    const char *at;
    char *name;

    if (!sp) {
        return NULL;
    }
    name = strdup(sp + 1);
    o = json_object_new_object();
    if (!name || !o) {
        free(name);
        json_object_put(o);
        return NULL;
    }
    at = strncmp(sentence, "vm ", 3) ? NULL : strchr(name, '@');
    if (at) {
        name[at - name] = '\0';
    }
    cli_json_add_str(o, "kind", at ? "snapshot" : sentence[0] == 't'
                                 ? "template" : "vm");
    cli_json_add_str(o, "name", name);
    json_object_object_add(o, "snapshot", at ? json_object_new_string(at + 1)
                                             : NULL);
    free(name);
    return o;
}

struct json_object *
catcli_dep_json(const char *kind_name)
{
    struct json_object *o = json_object_new_object();
    const char *sp = strchr(kind_name, ' ');
    char kind[32];

    snprintf(kind, sizeof(kind), "%.*s", sp ? (int)(sp - kind_name) : 0,
             kind_name);
    cli_json_add_str(o, "kind", kind);
    cli_json_add_str(o, "name", sp ? sp + 1 : kind_name);
    return o;
}

struct json_object *
catcli_deps_json(struct json_object *kind_names)
{
    struct json_object *out = json_object_new_array();
    size_t i;

    for (i = 0; kind_names && i < json_object_array_length(kind_names); i++) {
        json_object_array_add(out, catcli_dep_json(json_object_get_string(
                                  json_object_array_get_idx(kind_names, i))));
    }
    return out;
}

/* Epoch seconds as an ISO 8601 UTC string; NULL for none. */
static struct json_object *
time_json(struct json_object *v)
{
    char t[64];

    if (!v || json_object_get_double(v) <= 0) {
        return NULL;
    }
    catcli_fmt_time(json_object_get_double(v), t, sizeof(t));
    return json_object_new_string(t);
}

/* Hex digits @hex (@n of them) decoded into a new string (NULL: out of
 * memory). */
static char *
unhex(const char *hex, size_t n)
{
    char *out = malloc(n / 2 + 1);
    size_t i, k = 0;

    for (i = 0; out && i + 1 < n; i += 2) {
        char byte[3] = { hex[i], hex[i + 1], '\0' };

        out[k++] = (char)strtoul(byte, NULL, 16);
    }
    if (out) {
        out[k] = '\0';
    }
    return out;
}

/* "HEX(k)=HEX(v),..." (the catalog's labels_hex: any character may be in
 * a value an older catalog holds) as {"k": "v"}. */
static struct json_object *
labels_json(struct json_object *v)
{
    struct json_object *o = json_object_new_object();
    const char *p = v ? json_object_get_string(v) : NULL;

    while (p && *p) {
        const char *eq = strchr(p, '='), *comma = strchr(p, ',');
        size_t end = comma ? (size_t)(comma - p) : strlen(p);

        if (eq && (size_t)(eq - p) < end) {
            char *key = unhex(p, (size_t)(eq - p));
            char *value = unhex(eq + 1, end - (size_t)(eq + 1 - p));

            if (key && value) {
                json_object_object_add(o, key, json_object_new_string(value));
            }
            free(key);
            free(value);
        }
        p = comma ? comma + 1 : NULL;
    }
    return o;
}

/* A comma-separated list (copies_in) as an array of strings. */
static struct json_object *
list_json(struct json_object *v)
{
    struct json_object *a = json_object_new_array();
    const char *p = v ? json_object_get_string(v) : NULL;

    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        json_object_array_add(a, json_object_new_string_len(p, (int)len));
        p = comma ? comma + 1 : NULL;
    }
    return a;
}

enum shape { SHAPE_TIME, SHAPE_BOOL, SHAPE_COUNT, SHAPE_SOURCE,
             SHAPE_LABELS, SHAPE_LIST, SHAPE_DROP };

/* The report columns whose JSON type differs from the catalog's value
 * (docs/cli-contract.md): times, booleans, counts (renamed *_count: a
 * plural key is an array), sentences and lists. */
static const struct {
    const char *col;
    enum shape how;
    const char *key;    /* the key in the document, when renamed */
} shapes[] = {
    { "created", SHAPE_TIME, NULL }, { "expires", SHAPE_TIME, NULL },
    { "retired", SHAPE_BOOL, NULL },
    { "disks", SHAPE_COUNT, "disk_count" },
    { "dependents", SHAPE_COUNT, "dependent_count" },
    { "dependent_count", SHAPE_COUNT, NULL },
    { "volumes", SHAPE_COUNT, "volume_count" },
    { "max_clones_per_base", SHAPE_COUNT, NULL },
    { "source", SHAPE_SOURCE, NULL }, { "origin", SHAPE_SOURCE, NULL },
    { "labels", SHAPE_DROP, NULL }, { "labels_hex", SHAPE_LABELS, "labels" },
    { "copies_in", SHAPE_LIST, NULL },
};

/* Add column @col of value @v (a reference taken) to @out, shaped. */
static void
add_shaped(struct json_object *out, const char *col, struct json_object *v)
{
    struct json_object *x = json_object_get(v);
    const char *key = col;
    size_t i;

    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        if (strcmp(shapes[i].col, col)) {
            continue;
        }
        key = shapes[i].key ? shapes[i].key : col;
        json_object_put(x);
        switch (shapes[i].how) {
        case SHAPE_TIME:
            x = time_json(v);
            break;
        case SHAPE_BOOL:
            x = json_object_new_boolean(v && json_object_get_int(v));
            break;
        case SHAPE_COUNT:
            x = json_object_new_int64(v ? json_object_get_int64(v) : 0);
            break;
        case SHAPE_SOURCE:
            x = v ? catcli_source_json(json_object_get_string(v)) : NULL;
            break;
        case SHAPE_LABELS:
            x = labels_json(v);
            break;
        case SHAPE_LIST:
            x = list_json(v);
            break;
        case SHAPE_DROP:
            return;
        }
        break;
    }
    json_object_object_add(out, key, x);
}

/* Every row of @arr in the contract's types, in its column order. */
static void
shape_rows(struct json_object *arr)
{
    size_t i;

    for (i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *row = json_object_array_get_idx(arr, i);
        struct json_object *out = json_object_new_object();

        json_object_object_foreach(row, col, v) {
            add_shaped(out, col, v);
        }
        json_object_array_put_idx(arr, i, out);
    }
}

struct json_object *
catcli_report_raw(struct catcli *c, enum vmc_report which,
                  const char *const *args, size_t n)
{
    struct json_object *arr = json_object_new_array();
    struct vmc_error err = { 0 };
    int r = vmc_catalog_report_rows(c->cat, which, args, n, row_to_json, arr,
                                    &err);

    if (r < 0) {
        json_object_put(arr);
        catcli_fail(&err, r);
        return NULL;
    }
    return arr;
}

struct json_object *
catcli_report(struct catcli *c, enum vmc_report which,
              const char *const *args, size_t n)
{
    struct json_object *arr = catcli_report_raw(c, which, args, n);

    if (arr && c->json) {
        shape_rows(arr);
    }
    return arr;
}

bool
catcli_vm_exists(struct catcli *c, const char *name)
{
    const char *params[1] = { name };
    struct json_object *vm = catcli_report_raw(c, VMC_REPORT_VM, params, 1);
    bool yes = vm && json_object_array_length(vm) > 0;

    json_object_put(vm);
    return yes;
}

int
catcli_opt_label(const char *arg, void *dest)
{
    struct catcli_labels *f = dest;
    char *eq = strchr(arg, '=');

    if (!eq || eq == arg || f->np + 2 > 64) {
        return cli_usage_error(f->verb, "--label needs KEY=VALUE");
    }
    *eq = '\0';
    f->params[f->np++] = arg;
    f->params[f->np++] = eq + 1;
    return 0;
}

static int
add_string_row(int ncols, const char *const *names,
               const char *const *values, void *opaque)
{
    (void)ncols;
    (void)names;
    json_object_array_add(opaque, json_object_new_string(values[0]));
    return 0;
}

struct json_object *
catcli_report_strings(struct catcli *c, enum vmc_report which,
                      const char *param)
{
    const char *params[1] = { param };
    struct json_object *out = json_object_new_array();

    if (out) {
        vmc_catalog_report_rows(c->cat, which, params, 1, add_string_row,
                                out, NULL);
    }
    return out;
}

const char *
catcli_jstr(struct json_object *o, const char *k)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, k, &v) || !v) {
        return "";
    }
    return json_object_get_string(v);
}

int64_t
catcli_jint(struct json_object *o, const char *k)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, k, &v) || !v) {
        return 0;
    }
    return json_object_get_int64(v);
}

void
catcli_fmt_time(double t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    struct tm tm;

    if (t <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct json_object *
catcli_gone(struct catcli *c, struct json_object *before)
{
    struct json_object *out = json_object_new_array();
    size_t i;

    for (i = 0; before && i < json_object_array_length(before); i++) {
        const char *name = catcli_jstr(json_object_array_get_idx(before, i),
                                "name");
        const char *params[1] = { name };
        struct json_object *t = catcli_report(c, VMC_REPORT_TEMPLATE_EXISTS,
                                              params, 1);

        if (t && json_object_array_length(t) == 0) {
            json_object_array_add(out, json_object_new_string(name));
        }
        json_object_put(t);
    }
    return out;
}

int
catcli_print_rows(struct catcli *c, struct json_object *arr,
                 const char *const *cols)
{
    size_t i;
    unsigned k;

    if (c->json) {
        cli_json_print(stdout, arr);
        return 0;
    }
    for (i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *row = json_object_array_get_idx(arr, i);

        for (k = 0; cols[k]; k++) {
            printf("%s%s", k ? "  " : "", catcli_jstr(row, cols[k]));
        }
        putchar('\n');
    }
    return 0;
}

int
catcli_print_table(struct catcli *c, struct json_object *arr,
                   const char *header, catcli_row_fn *row)
{
    size_t i, n;

    if (!arr) {
        return CLI_EXIT_FAIL;
    }
    n = json_object_array_length(arr);
    if (c->json) {
        cli_json_print(stdout, arr);
    } else {
        if (n && !c->quiet) {
            printf("%s\n", header);
        }
        for (i = 0; i < n; i++) {
            row(c, json_object_array_get_idx(arr, i));
        }
    }
    json_object_put(arr);
    return CLI_EXIT_OK;
}

int
catcli_print_report(struct catcli *c, enum vmc_report which,
                    const char *const *cols)
{
    struct json_object *arr = catcli_report(c, which, NULL, 0);

    if (!arr) {
        return CLI_EXIT_FAIL;
    }
    catcli_print_rows(c, arr, cols);
    json_object_put(arr);
    return CLI_EXIT_OK;
}
