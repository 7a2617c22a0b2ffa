/*
 * output.c - what the CLI prints besides errors: JSON in the layout of
 * qemu-img (objects built with json-c, laid out here), human sizes, and
 * the "    (12.34/100%)" progress line.
 */
#include <string.h>

#include "cli.h"

/* --------------------------------------------------------------- json */

static void
print_scalar(FILE *f, struct json_object *o)
{
    fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                            JSON_C_TO_STRING_NOSLASHESCAPE),
          f);
}

static void
print_key(FILE *f, const char *key)
{
    struct json_object *s = json_object_new_string(key);

    if (s) {
        print_scalar(f, s);
        json_object_put(s);
    } else {
        fprintf(f, "\"%s\"", key);
    }
}

static void
indent(FILE *f, int n)
{
    fprintf(f, "%*s", n, "");
}

static void
print_pretty(FILE *f, struct json_object *o, int level)
{
    bool first = true;
    size_t i, n;

    switch (json_object_get_type(o)) {
    case json_type_object:
        if (json_object_object_length(o) == 0) {
            fputs("{}", f);
            return;
        }
        fputs("{\n", f);
        json_object_object_foreach(o, key, val) {
            if (!first) {
                fputs(",\n", f);
            }
            first = false;
            indent(f, level + 4);
            print_key(f, key);
            fputs(": ", f);
            print_pretty(f, val, level + 4);
        }
        fputc('\n', f);
        indent(f, level);
        fputc('}', f);
        return;
    case json_type_array:
        n = json_object_array_length(o);
        if (n == 0) {
            fputs("[]", f);
            return;
        }
        fputs("[\n", f);
        for (i = 0; i < n; i++) {
            indent(f, level + 4);
            print_pretty(f, json_object_array_get_idx(o, i), level + 4);
            fputs(i + 1 < n ? ",\n" : "\n", f);
        }
        indent(f, level);
        fputc(']', f);
        return;
    default:
        print_scalar(f, o);
        return;
    }
}

void
cli_json_print(FILE *f, struct json_object *o)
{
    if (f == stdout) {
        cli_json_printed();
    }
    print_pretty(f, o, 0);
    fputc('\n', f);
}

void
cli_json_print_inline(FILE *f, struct json_object *o)
{
    bool first = true;

    if (f == stdout) {
        cli_json_printed();
    }
    fputs("{ ", f);
    json_object_object_foreach(o, key, val) {
        if (!first) {
            fputs(", ", f);
        }
        first = false;
        print_key(f, key);
        fputs(": ", f);
        print_scalar(f, val);
    }
    fputc('}', f);
}

bool
cli_json_add_obj(struct json_object *o, const char *k, struct json_object *v)
{
    if (!v) {
        return false;
    }
    if (json_object_object_add(o, k, v) < 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

bool
cli_json_add_str(struct json_object *o, const char *k, const char *v)
{
    return cli_json_add_obj(o, k, json_object_new_string(v));
}

bool
cli_json_add_u64(struct json_object *o, const char *k, uint64_t v)
{
    return cli_json_add_obj(o, k, json_object_new_int64((int64_t)v));
}

bool
cli_json_add_bool(struct json_object *o, const char *k, bool v)
{
    return cli_json_add_obj(o, k, json_object_new_boolean(v));
}

static bool
add_field(struct json_object *o, const struct cli_json_field *f)
{
    switch (f->kind) {
    case CLI_JSON_STR:
        return cli_json_add_str(o, f->key, f->str);
    case CLI_JSON_U64_SET:
        return !f->num || cli_json_add_u64(o, f->key, f->num);
    case CLI_JSON_BOOL:
        return cli_json_add_bool(o, f->key, f->num != 0);
    case CLI_JSON_U64:
        break;
    }
    return cli_json_add_u64(o, f->key, f->num);
}

bool
cli_json_add_fields(struct json_object *o, const struct cli_json_field *fields,
                    size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!add_field(o, &fields[i])) {
            return false;
        }
    }
    return true;
}

/* -------------------------------------------------------------- sizes */

void
cli_size_to_str(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = {
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    };
    double unit = 1.0;
    unsigned i = 0;

    /* Switch to the next unit once the value reaches 1000 of the
     * current one, so that at most three digits show before the point. */
    while (i + 1 < sizeof(units) / sizeof(units[0]) &&
           (double)v >= 1000.0 * unit) {
        unit *= 1024.0;
        i++;
    }
    snprintf(buf, len, "%0.3g %sB", (double)v / unit, units[i]);
}

/* ----------------------------------------------------------- progress */

static void
progress_print(struct cli_progress *p, double pct)
{
    printf("    (%3.2f/100%%)\r", pct);
    fflush(stdout);
    p->last = pct;
    p->printed = true;
}

void
cli_progress_start(struct cli_progress *p, bool enabled)
{
    memset(p, 0, sizeof(*p));
    p->enabled = enabled;
    if (enabled) {
        progress_print(p, 0.0);
    }
}

void
cli_progress_cb(uint64_t done, uint64_t total, void *opaque)
{
    struct cli_progress *p = opaque;
    double pct;

    if (!p || !p->enabled) {
        return;
    }
    pct = total ? (double)done * 100.0 / (double)total : 100.0;
    if (pct > 100.0) {
        pct = 100.0;
    }
    if (pct >= p->last + 1.0 || (pct == 100.0 && p->last < 100.0)) {
        progress_print(p, pct);
    }
}

void
cli_progress_end(struct cli_progress *p)
{
    if (p->enabled && p->printed) {
        putchar('\n');
        fflush(stdout);
        p->enabled = false;
    }
}
