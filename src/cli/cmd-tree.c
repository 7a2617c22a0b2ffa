/*
 * cmd-tree.c - "tree": templates, copies, snapshots and VMs as a tree;
 * under an instant template, its RAM and state files too (kinds "ram"
 * and "state", named by path: their size at freeze, their allocated
 * bytes now).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cat-cli.h"

/* -------------------------------------------------------------- tree */

struct node {
    char kind[16];
    char name[200];
    int parent;             /* index, -1 = root */
    uint64_t vsize, unique, shared, disk_size;
    unsigned disks;
    char note[160];
};

struct forest {
    struct node *n;
    size_t count;
};

static int
node_find(struct forest *f, const char *kind, const char *name)
{
    size_t i;

    for (i = 0; i < f->count; i++) {
        if (!strcmp(f->n[i].kind, kind) && !strcmp(f->n[i].name, name)) {
            return (int)i;
        }
    }
    return -1;
}

static int
node_get(struct forest *f, const char *kind, const char *name)
{
    int i = node_find(f, kind, name);
    struct node *nn;

    if (i >= 0) {
        return i;
    }
    nn = realloc(f->n, (f->count + 1) * sizeof(*nn));
    if (!nn) {
        return -1;
    }
    f->n = nn;
    memset(&f->n[f->count], 0, sizeof(*nn));
    snprintf(f->n[f->count].kind, sizeof(nn->kind), "%s", kind);
    snprintf(f->n[f->count].name, sizeof(nn->name), "%s", name);
    f->n[f->count].parent = -1;
    return (int)f->count++;
}

static void
tree_print(struct catcli *c, struct forest *f, int parent,
           const char *prefix)
{
    size_t i, last = (size_t)-1;

    for (i = 0; i < f->count; i++) {
        if (f->n[i].parent == parent) {
            last = i;
        }
    }
    for (i = 0; i < f->count; i++) {
        struct node *n = &f->n[i];
        char vs[32], un[32], sh[32], pre[512];

        if (n->parent != parent) {
            continue;
        }
        catcli_size(c, n->vsize, vs, sizeof(vs));
        catcli_size(c, n->unique, un, sizeof(un));
        catcli_size(c, n->shared, sh, sizeof(sh));
        if (!strcmp(n->kind, "ram") || !strcmp(n->kind, "state")) {
            printf("%s%s%s %s  [size %s, allocated %s]\n", prefix,
                   i == last ? "└─ " : "├─ ", n->kind, n->name, vs, un);
            continue;
        }
        printf("%s%s%s %s  [%u disk%s, virtual %s, unique %s, shared %s]%s%s"
               "\n", prefix, parent < 0 ? "" : i == last ? "└─ " : "├─ ",
               n->kind, n->name, n->disks, n->disks == 1 ? "" : "s", vs, un,
               sh, n->note[0] ? " " : "", n->note);
        snprintf(pre, sizeof(pre), "%s%s", prefix,
                 parent < 0 ? "" : i == last ? "   " : "│  ");
        tree_print(c, f, (int)i, pre);
    }
}

static struct json_object *
tree_json(struct forest *f, int parent)
{
    struct json_object *arr = json_object_new_array();
    size_t i;

    for (i = 0; i < f->count; i++) {
        struct node *n = &f->n[i];
        struct json_object *o;

        if (n->parent != parent) {
            continue;
        }
        o = json_object_new_object();
        cli_json_add_str(o, "kind", n->kind);
        cli_json_add_str(o, "name", n->name);
        cli_json_add_u64(o, "disk_count", n->disks);
        cli_json_add_u64(o, "virtual_size", n->vsize);
        cli_json_add_u64(o, "unique_bytes", n->unique);
        cli_json_add_u64(o, "shared_bytes", n->shared);
        cli_json_add_u64(o, "disk_size", n->disk_size);
        if (n->note[0]) {
            cli_json_add_str(o, "note", n->note);
        }
        cli_json_add_obj(o, "children", tree_json(f, (int)i));
        json_object_array_add(arr, o);
    }
    return arr;
}

static bool
template_exists(struct catcli *c, const char *name)
{
    const char *params[1] = { name };
    struct json_object *t = catcli_report_raw(c, VMC_REPORT_TEMPLATE_EXISTS,
                                              params, 1);
    bool yes = t && json_object_array_length(t) > 0;

    json_object_put(t);
    return yes;
}

/* The RAM and state files of the instant templates in @f (of template
 * @only when not NULL), as children of their template's node. */
static void
tree_instant(struct catcli *c, struct forest *f, const char *only)
{
    struct json_object *files = catcli_report_raw(c, VMC_REPORT_INSTANT_FILES,
                                                  NULL, 0);
    size_t i;

    for (i = 0; files && i < json_object_array_length(files); i++) {
        struct json_object *v = json_object_array_get_idx(files, i);
        const char *t = catcli_jstr(v, "template");
        struct stat st;
        int p = node_find(f, "template", t), k;

        if ((only && strcmp(only, t)) || p < 0 ||
            (k = node_get(f, catcli_jstr(v, "kind"),
                          catcli_jstr(v, "path"))) < 0) {
            continue;
        }
        f->n[k].parent = p;
        f->n[k].vsize = (uint64_t)catcli_jint(v, "size");
        if (stat(catcli_jstr(v, "path"), &st) == 0) {
            f->n[k].unique = (uint64_t)st.st_blocks * 512;
            f->n[k].disk_size = f->n[k].unique;
        }
    }
    json_object_put(files);
}

static int
tree_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct forest f = { 0 };
    struct json_object *vols, *full;
    const char *params[1] = { argc ? argv[0] : NULL };
    size_t i;

    if (argc && !template_exists(c, argv[0])) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "no template named '%s'",
                            argv[0]);
    }
    /* one template: its subtree, found by index (full clones of it do
     * not depend on it, and are not in it) */
    vols = argc ? catcli_report(c, VMC_REPORT_TEMPLATE_TREE, params, 1)
                : catcli_report(c, VMC_REPORT_VOLUME_TREE, NULL, 0);
    full = argc ? json_object_new_array()
                : catcli_report_raw(c, VMC_REPORT_FULL_VMS, NULL, 0);
    if (!vols || !full) {
        json_object_put(vols);
        json_object_put(full);
        return CLI_EXIT_FAIL;
    }
    for (i = 0; i < json_object_array_length(vols); i++) {
        struct json_object *v = json_object_array_get_idx(vols, i);
        struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                    .flags = VMC_OPEN_FORCE_SHARE };
        struct vmc_image *img = NULL;
        struct vmc_du du;
        int k = node_get(&f, catcli_jstr(v, "kind"), catcli_jstr(v, "name"));

        if (k < 0) {
            break;
        }
        /* node_get() may move f.n: its result first, then the store */
        if (*catcli_jstr(v, "pkind")) {
            int p = node_get(&f, catcli_jstr(v, "pkind"),
                             catcli_jstr(v, "pname"));

            f.n[k].parent = p;
        } else if (!strcmp(catcli_jstr(v, "kind"), "copy")) {
            char tname[200];
            int p;

            snprintf(tname, sizeof(tname), "%s", catcli_jstr(v, "name"));
            *strrchr(tname, '@') = '\0';
            p = node_get(&f, "template", tname);
            f.n[k].parent = p;
            /* TEMPLATE@POOL, or TEMPLATE@POOL#N: extra base copy N */
            snprintf(f.n[k].note, sizeof(f.n[k].note), "(copy in pool %.*s)",
                     (int)strcspn(strrchr(catcli_jstr(v, "name"), '@') + 1,
                                  "#"),
                     strrchr(catcli_jstr(v, "name"), '@') + 1);
        }
        f.n[k].disks++;
        f.n[k].vsize += (uint64_t)catcli_jint(v, "virtual_size");
        if (vmc_image_open(&img, catcli_jstr(v, "path"), &oo, NULL) == 0 &&
            vmc_du(img, &du, NULL) == 0) {
            f.n[k].unique += du.unique;
            f.n[k].shared += du.shared;
            f.n[k].disk_size += du.disk_size;
        }
        vmc_image_close(img);
    }
    tree_instant(c, &f, argc ? argv[0] : NULL);
    for (i = 0; i < json_object_array_length(full); i++) {
        struct json_object *v = json_object_array_get_idx(full, i);
        int k = node_find(&f, "vm", catcli_jstr(v, "name"));

        if (k >= 0 && f.n[k].parent < 0) {
            snprintf(f.n[k].note, sizeof(f.n[k].note), "(full clone of %s, "
                     "%s; independent)", catcli_jstr(v, "source"),
                     catcli_jstr(v, "mechanism"));
        }
    }
    if (c->json) {
        struct json_object *t = tree_json(&f, -1);

        cli_json_print(stdout, t);
        json_object_put(t);
    } else if (f.count == 0) {
        if (!c->quiet) {
            printf("the catalog is empty (vm-clone template import NAME "
                   "IMAGE)\n");
        }
    } else {
        tree_print(c, &f, -1, "");
    }
    free(f.n);
    json_object_put(vols);
    json_object_put(full);
    return CLI_EXIT_OK;
}

static const char tree_usage[] =
    "usage: " CLI_NAME " tree [TEMPLATE] [--json] [--bytes]\n\n"
    "Templates -> copies per pool -> snapshots -> VMs, with the virtual "
    "size,\nthe unique bytes (data in the node's own layers) and the "
    "shared bytes\n(read from the layers below) of each node. With TEMPLATE, only that\ntemplate, its copies and what depends on them.\n";

const struct catcli_cmd catcli_tree = {
    { "tree", tree_run, NULL, 0, 1, NULL, "expecting at most one template",
      CATCLI_STORE },
    tree_usage,
};
