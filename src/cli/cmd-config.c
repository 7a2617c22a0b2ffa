/*
 * cmd-config.c - "config get|set|unset|show": the store's settings, and
 * which store is in use (its directory and pools).
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

/* ------------------------------------------------------------ config */

static int
config_set(struct catcli *c, void *ctx, int argc, char **argv)
{
    const char *value = argc > 1 ? argv[1] : NULL;
    struct vmc_error err = { 0 };
    int r = vmc_catalog_config_set(c->cat, argv[0], value, &err);

    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "key", argv[0]);
        json_object_object_add(o, "value", value
                               ? json_object_new_string(value) : NULL);
        cli_json_add_bool(o, "set", value != NULL);
        catcli_json_done(o);
    }
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static int
config_get_one(struct catcli *c, const char *key)
{
    struct vmc_error err = { 0 };
    char *val = NULL;
    int r = vmc_catalog_config_get(c->cat, key, &val, &err);

    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "key", key);
        json_object_object_add(o, "value",
                               val ? json_object_new_string(val) : NULL);
        catcli_json_done(o);
    } else if (r == 0 && val) {
        printf("%s\n", val);
    } else if (r == 0) {
        r = -ENOENT;
        vmc_error_set(&err, r, "'%s' is not set", key);
    }
    free(val);
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static int
config_get(struct catcli *c, void *ctx, int argc, char **argv)
{
    static const char *const cols[] = { "key", "value", NULL };

    if (argc > 0) {
        return config_get_one(c, argv[0]);
    }
    return catcli_print_report(c, VMC_REPORT_CONFIG, cols);
}

/* The store in use: its directory, pools and settings. */
static int
config_show(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct json_object *pools = catcli_report(c, VMC_REPORT_POOLS, NULL, 0);
    struct json_object *conf = catcli_report(c, VMC_REPORT_CONFIG, NULL, 0);
    size_t i;

    (void)ctx;
    (void)argc;
    (void)argv;
    if (!pools || !conf) {
        json_object_put(pools);
        json_object_put(conf);
        return CLI_EXIT_FAIL;
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "home", vmc_catalog_dir(c->cat));
        cli_json_add_obj(o, "pools", json_object_get(pools));
        cli_json_add_obj(o, "config", json_object_get(conf));
        catcli_json_done(o);
    } else {
        printf("store: %s\n", vmc_catalog_dir(c->cat));
        for (i = 0; i < json_object_array_length(pools); i++) {
            struct json_object *p = json_object_array_get_idx(pools, i);

            printf("pool:  %-12s %-9s %s\n", catcli_jstr(p, "name"),
                   catcli_jstr(p, "kind"), catcli_jstr(p, "path"));
        }
        for (i = 0; i < json_object_array_length(conf); i++) {
            struct json_object *r = json_object_array_get_idx(conf, i);

            printf("%s = %s\n", catcli_jstr(r, "key"), catcli_jstr(r,
                                                                "value"));
        }
    }
    json_object_put(pools);
    json_object_put(conf);
    return CLI_EXIT_OK;
}

int
cmd_config(int argc, char **argv)
{
    struct catcli c = { .verb = "config", .usage =
        "keys: default-template (the template of 'vm-clone --linked "
        "--name X'),\n      default-pool (primary pool for new VMs), "
        "max-chain-depth (default 16)\nshow: the store in use (its "
        "directory, pools and settings)\n" };
    const struct cli_opt common[] = { CATCLI_OPTS(&c), CLI_OPT_END };
    const struct catcli_sub subs[] = {
        { "get", config_get, common, 0, 1, "[KEY]", NULL, CATCLI_STORE },
        { "set", config_set, common, 2, 2, "KEY VALUE",
          "wrong number of arguments", CATCLI_STORE },
        { "unset", config_set, common, 1, 1, "KEY",
          "wrong number of arguments", CATCLI_STORE },
        { "show", config_show, common, 0, 0, "", NULL, CATCLI_STORE },
        { NULL, NULL, NULL, 0, 0, NULL, NULL, 0 },
    };

    return catcli_run_group(&c, subs, NULL, argc, argv);
}
