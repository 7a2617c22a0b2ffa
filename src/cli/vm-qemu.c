/*
 * vm-qemu.c - "vm xml" and "vm qemu-cmd": the VM's hardware model
 * (include/vmclone-virt.h) loaded with the hardware options of vm-qemu.h
 * and printed as a libvirt domain or a shell command line; the helpers
 * "start" and "vm define" share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm-qemu.h"

int
vmq_load(struct catcli *c, const char *name, const struct vmq_opts *o,
         struct vmc_hw **hw)
{
    struct vmc_hw_opts ho = { .accel = o->accel, .network = o->network };
    struct vmc_error err = { 0 };
    int r = vmc_hw_load(c->cat, name, &ho, hw, &err);

    if (r == -EINVAL) {
        return cli_usage_error(c->verb, "%s", err.msg);
    }
    if (r == -ENOENT) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "no VM named '%s'", name);
    }
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    (*hw)->kernel = o->kernel;
    (*hw)->initrd = o->initrd;
    (*hw)->append = o->append;
    (*hw)->serial = o->serial;
    return 0;
}

int
vmq_argv(const struct vmc_hw *hw, char **extra, char ***argv)
{
    size_t n = 0, k = 0, i;
    char **v;
    int r = vmc_hw_qemu_argv(hw, argv, &n);

    if (r == -ENOTSUP) {
        return cli_error("--network network:%s needs libvirt (vm define); "
                         "QEMU alone can use bridge:NAME", hw->net_name);
    }
    if (r < 0) {
        return cli_error("out of memory");
    }
    while (extra && extra[k]) {
        k++;
    }
    if (k == 0) {
        return 0;
    }
    v = realloc(*argv, (n + k + 1) * sizeof(*v));
    if (!v) {
        vmc_hw_argv_free(*argv);
        return cli_error("out of memory");
    }
    for (i = 0; i < k; i++) {
        v[n + i] = strdup(extra[i]);
        if (!v[n + i]) {
            v[n + i] = NULL;
            vmc_hw_argv_free(v);
            return cli_error("out of memory");
        }
    }
    v[n + k] = NULL;
    *argv = v;
    return 0;
}

/* Shell-quote @s with single quotes when it needs it. */
static void
shq(FILE *f, const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-_./=,:@%+") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') {
            fputs("'\\''", f);
        } else {
            fputc(*s, f);
        }
    }
    fputc('\'', f);
}

void
vmq_print(FILE *f, char *const *argv)
{
    static const char *const breaks[] = { "-drive", "-netdev", "-nic",
                                          "-kernel", "-display",
                                          "-nographic", NULL };
    size_t i, k;

    for (i = 0; argv[i]; i++) {
        const char *sep = i ? " " : "";

        for (k = 0; i && breaks[k]; k++) {
            if (!strcmp(argv[i], breaks[k])) {
                sep = " \\\n  ";
            }
        }
        fputs(sep, f);
        shq(f, argv[i]);
    }
    fputc('\n', f);
}

struct json_object *
vmq_argv_json(char *const *argv)
{
    struct json_object *a = json_object_new_array();
    size_t i;

    for (i = 0; argv && argv[i]; i++) {
        json_object_array_add(a, json_object_new_string(argv[i]));
    }
    return a;
}

/* An instant clone has no libvirt domain and no command line of its
 * own (its restore takes QMP steps): the refusal (as "vm qemu-cmd" when
 * @qemu), or 0; the store is open. */
static int
instant_refusal(struct catcli *c, const char *name, bool qemu)
{
    struct vmc_instant in;
    struct vmc_error err = { 0 };
    int r = 0;

    if (vmc_catalog_instant_of_vm(c->cat, name, &in, &err) == 0) {
        r = catcli_error(CLI_EXIT_CONFLICT, "VM '%s' is an instant clone of "
                         "'%s': %s cannot express its restore (a shared RAM "
                         "file, x-ignore-shared, -incoming defer and QMP "
                         "steps); start it with 'vm-clone start %s'%s%s%s",
                         name, in.template_name, qemu ? "a QEMU command line"
                         : "a libvirt domain", name, qemu ? " (its command "
                         "line: 'vm-clone start " : "", qemu ? name : "",
                         qemu ? " --dry-run')" : "");
        vmc_instant_release(&in);
    }
    return r;
}

/* The same, opening and closing the store. */
static int
refuse_instant(struct catcli *c, const char *name, bool qemu)
{
    int r = catcli_open(c, 0);

    if (r == 0) {
        r = instant_refusal(c, name, qemu);
    }
    if (c->cat) {
        catcli_close(c);
    }
    return r;
}

int
vmq_refuse_instant(struct catcli *c, const char *name)
{
    return instant_refusal(c, name, false);
}

/* Open the store and load the model; @return 0 or the exit status. */
static int
open_model(struct catcli *c, const char *name, const struct vmq_opts *o,
           struct vmc_hw **hw)
{
    int r = catcli_open(c, 0);

    if (r == 0) {
        r = vmq_load(c, name, o, hw);
        catcli_close(c);
    }
    return r;
}

int
vmq_print_qemu(struct catcli *c, const char *name, const struct vmq_opts *o)
{
    struct vmc_hw *hw = NULL;
    char **argv = NULL;
    int r = refuse_instant(c, name, true);

    if (r == 0) {
        r = open_model(c, name, o, &hw);
    }

    if (r == 0) {
        r = vmq_argv(hw, NULL, &argv);
    }
    if (r == 0 && c->json) {
        struct json_object *doc = json_object_new_object();

        cli_json_add_str(doc, "vm", name);
        cli_json_add_obj(doc, "argv", vmq_argv_json(argv));
        catcli_json_done(doc);
    } else if (r == 0) {
        vmq_print(stdout, argv);
    }
    vmc_hw_argv_free(argv);
    vmc_hw_free(hw);
    return r;
}

int
vmq_print_xml(struct catcli *c, const char *name, const struct vmq_opts *o)
{
    struct vmc_hw *hw = NULL;
    char *xml = NULL;
    int r = refuse_instant(c, name, false);

    if (r == 0) {
        r = open_model(c, name, o, &hw);
    }

    if (r) {
        return r;
    }
    if (vmc_hw_xml(hw, &xml) < 0) {
        vmc_hw_free(hw);
        return cli_error("out of memory");
    }
    if (c->json) {
        struct json_object *doc = json_object_new_object();

        cli_json_add_str(doc, "vm", name);
        cli_json_add_str(doc, "xml", xml);
        catcli_json_done(doc);
    } else {
        fputs(xml, stdout);
    }
    free(xml);
    vmc_hw_free(hw);
    return CLI_EXIT_OK;
}
