/*
 * cmd-template-copy.c - "template copy NAME [--pool P]": pre-stage a
 * template's copy in a primary pool (issue 13 point 9) through
 * vmc_catalog_template_copy(), so that no first clone there pays for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cat-cli.h"
#include "vmclone-catalog-admin.h"

static const char *copy_pool;

const struct cli_opt *
catcli_tmpl_copy_opts(struct catcli *c)
{
    static struct cli_opt opts[12];
    const struct cli_opt mine[] = {
        CLI_OPT_STRING(0, "pool", "POOL", &copy_pool, "the primary pool "
                       "(default: the default pool)"),
        CATCLI_OPTS(c),
        CLI_OPT_END,
    };

    memcpy(opts, mine, sizeof(mine));
    return opts;
}

int
catcli_tmpl_copy(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_template_copy_result res;
    struct vmc_error err = { 0 };
    char sz[32];
    int r = vmc_catalog_template_copy(c->cat, argv[0], copy_pool, &res,
                                      &err);

    if (r < 0) {
        return catcli_fail(&err, r);
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "template", argv[0]);
        cli_json_add_str(o, "pool", res.pool);
        cli_json_add_bool(o, "copied", res.copied);
        json_object_object_add(o, "mechanism", res.copied && res.mechanism
                               ? json_object_new_string(res.mechanism)
                               : NULL);
        cli_json_add_u64(o, "bytes_written", res.copied ? res.bytes : 0);
        catcli_json_done(o);
    } else if (!c->quiet && res.copied) {
        catcli_size(c, res.bytes, sz, sizeof(sz));
        printf("Template '%s' copied into pool '%s' (%s, %s written)\n",
               argv[0], res.pool, res.mechanism ? res.mechanism : "copy",
               sz);
    } else if (!c->quiet && res.in_place) {
        printf("Template '%s' was frozen in pool '%s': its clones there use "
               "it in place, no copy is needed\n", argv[0], res.pool);
    } else if (!c->quiet) {
        printf("Template '%s' already has its copy in pool '%s'\n", argv[0],
               res.pool);
    }
    free(res.pool);
    return CLI_EXIT_OK;
}
