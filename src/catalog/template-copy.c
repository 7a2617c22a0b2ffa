/*
 * template-copy.c - pre-stage a template's copy in a primary pool
 * (vm-clone template copy NAME --pool P, issue 13 point 9), as CloudStack
 * pre-stages templates on primary storage: the same once-per-pool copy a
 * first linked clone makes (cat_ensure_copy), made now instead of inside
 * that clone; a copy already there is left as it is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-ops.h"
#include "vmclone-catalog-admin.h"

/* Template @name, ready and not retired: its id. */
static int
copyable_template(struct vmc_catalog *cat, const char *name, int64_t *tid,
                  struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "SELECT id, state, retired FROM "
                        "templates WHERE name = ?", "s", name);

    if (r == 0 && (r = cat_step(cat, st, err)) == 0) {
        r = vmc_error_set(err, -ENOENT, "no template named '%s'", name);
    } else if (r > 0 && strcmp(cat_col(st, 1), "ready")) {
        r = vmc_error_set(err, -EBUSY, "template '%s' is being %s", name,
                          !strcmp(cat_col(st, 1), "creating") ? "created"
                                                              : "removed");
    } else if (r > 0 && cat_col_int(st, 2)) {
        r = vmc_error_set(err, -EINVAL, "template '%s' is retired: no new "
                          "copies", name);
    } else if (r > 0) {
        *tid = cat_col_i64(st, 0);
        r = 0;
    }
    cat_finalize(st);
    return r;
}

int
vmc_catalog_template_copy(struct vmc_catalog *cat, const char *name,
                          const char *pool,
                          struct vmc_template_copy_result *res,
                          struct vmc_error *err)
{
    int64_t tid = 0, pool_id = 0, copy_id = 0;
    char *pool_path = NULL;
    int r;

    memset(res, 0, sizeof(*res));
    r = copyable_template(cat, name, &tid, err);
    if (r == 0) {
        r = cat_pool_lookup(cat, pool, "primary", &pool_id, &pool_path, err);
    }
    free(pool_path);
    if (r == 0) {
        r = cat_ensure_copy(cat, tid, pool_id, &copy_id, &res->copied,
                            &res->mechanism, &res->bytes, err);
    }
    if (r == 0) {
        r = cat_get_str(cat, &res->pool, err, "SELECT name FROM pools WHERE "
                        "id = ?", "I", pool_id);
    }
    return r;
}
