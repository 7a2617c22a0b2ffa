/*
 * cat-group.c - how the management commands parse: the common options
 * (catcli_parse) and the groups with subcommands (template, snapshot,
 * vm, pool, config), each subcommand with its own option table, so an
 * option of another subcommand is a usage error (exit 2) naming it.
 */
#include <assert.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cat-cli.h"

int
catcli_parse(struct catcli *c, const struct cli_opt *opts, int argc,
             char **argv)
{
    const struct cli_opt common[] = { CATCLI_OPTS(c), CLI_OPT_END };
    const struct cli_usage u = { .verb = c->verb, .synopsis = c->usage };

    return cli_parse_options(opts ? opts : common, &u, argc, argv);
}

/* The index in argv of the subcommand word (0: none). Options before it
 * may take the next word as their argument, per any subcommand's table. */
static int
find_sub_word(const struct catcli_sub *subs, int argc, char **argv,
              bool *help)
{
    const struct catcli_sub *s;
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            return i + 1 < argc ? i + 1 : 0;
        }
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            *help = true;
            return 0;
        }
        if (argv[i][0] != '-' || !argv[i][1]) {
            return i;
        }
        for (s = subs; s->name; s++) {
            if (cli_opt_takes_next(s->opts, argv[i])) {
                i++;
                break;
            }
        }
    }
    return 0;
}

/* An option of another subcommand of the group given to @s: a usage
 * error that names the option and the subcommands that take it. */
static int
foreign_option(const struct catcli *c, const struct catcli_sub *subs,
               const struct catcli_sub *s, int argc, char **argv)
{
    const struct catcli_sub *t;
    char names[256];
    size_t len, n;
    int i;

    for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        if (argv[i][0] != '-' || !argv[i][1]) {
            continue;
        }
        if (cli_opt_lookup(s->opts, argv[i])) {
            i += cli_opt_takes_next(s->opts, argv[i]);
            continue;
        }
        len = n = 0;
        names[0] = '\0';
        for (t = subs; t->name; t++) {
            if (cli_opt_lookup(t->opts, argv[i]) && len < sizeof(names)) {
                len += (size_t)snprintf(names + len, sizeof(names) - len,
                                        "%s%s", n++ ? " and " : "", t->name);
            }
        }
        if (n) {
            return cli_usage_error(c->verb, "option '%.*s' is not one of "
                                   "'%s %s': it applies to %s",
                                   (int)strcspn(argv[i], "="), argv[i],
                                   c->verb, s->name, names);
        }
    }
    return 0;
}

/* Run @s on its operands, in the store if it asks for one. */
static int
run_with_store(struct catcli *c, const struct catcli_sub *s, void *ctx,
               int argc, char **argv)
{
    unsigned open_flags = 0;
    int r;

    if (!(s->flags & (CATCLI_STORE | CATCLI_EXCLUSIVE))) {
        return s->fn(c, ctx, argc, argv);
    }
    if (s->flags & CATCLI_EXCLUSIVE) {
        open_flags = VMC_CATALOG_EXCLUSIVE | VMC_CATALOG_NO_RECOVER;
    }
    r = catcli_open(c, open_flags);
    if (r) {
        return r;
    }
    r = s->fn(c, ctx, argc, argv);
    catcli_close(c);
    return r;
}

/* The group's help: one usage line per subcommand, from its table
 * entry, then the group's description (c->usage) and the common
 * options. */
static void
print_group_help(const struct catcli *c, const struct catcli_sub *subs)
{
    const struct catcli_sub *s;

    for (s = subs; s->name; s++) {
        printf("%s" CLI_NAME " %s %s%s%s\n", s == subs ? "usage: " : "       ",
               c->verb, s->name, *s->synopsis ? " " : "", s->synopsis);
    }
    putchar('\n');
    fputs(c->usage, stdout);
    fputs(CATCLI_COMMON_HELP, stdout);
}

static int
missing_sub(const struct catcli *c, const struct catcli_sub *subs)
{
    char names[256] = "";
    size_t len = 0;

    for (; subs->name && len < sizeof(names); subs++) {
        len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
                                len ? ", " : "", subs->name);
    }
    return cli_usage_error(c->verb, "missing subcommand (%s)", names);
}

int
catcli_run_group(struct catcli *c, const struct catcli_sub *subs, void *ctx,
                 int argc, char **argv)
{
    char verb[64], synopsis[512];
    const struct catcli_sub *s;
    bool help = false;
    int w, r;

    w = find_sub_word(subs, argc, argv, &help);
    if (help) {
        print_group_help(c, subs);
        return CLI_EXIT_OK;
    }
    if (!w) {
        return missing_sub(c, subs);
    }
    for (s = subs; s->name && strcmp(s->name, argv[w]); s++) {
    }
    if (!s->name) {
        return cli_usage_error(c->verb, "unknown subcommand '%s'", argv[w]);
    }
    /* the subcommand word out of the way: the rest parses as one line */
    memmove(&argv[w], &argv[w + 1], (size_t)(argc - w) * sizeof(*argv));
    argc--;
    r = foreign_option(c, subs, s, argc, argv);
    if (r) {
        return r;
    }
    snprintf(verb, sizeof(verb), "%s %s", c->verb, s->name);
    snprintf(synopsis, sizeof(synopsis), "usage: " CLI_NAME " %s %s\n", verb,
             s->synopsis);
    {
        const struct cli_usage u = { .verb = verb, .synopsis = synopsis };

        r = cli_parse_options(s->opts, &u, argc, argv);
        if (r) {
            return CLI_PARSE_EXIT(r);
        }
        r = cli_check_operands(&u, argc, argv, s->min_args, s->max_args,
                               s->missing);
        if (r) {
            return r;
        }
    }
    return run_with_store(c, s, ctx, argc - optind, argv + optind);
}

int
catcli_run(struct catcli *c, const struct catcli_sub *cmd, void *ctx,
           int argc, char **argv)
{
    int r = catcli_parse(c, cmd->opts, argc, argv), n;

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    n = argc - optind;
    if (n < cmd->min_args) {
        return cli_usage_error(c->verb, "%s", cmd->missing);
    }
    if (cmd->max_args >= 0 && n > cmd->max_args) {
        return cli_usage_error(c->verb, "%s", cmd->max_args ? cmd->missing
                               : "too many arguments");
    }
    return run_with_store(c, cmd, ctx, n, argv + optind);
}

const struct catcli_cmd *const catcli_cmds[] = {
    &catcli_init, &catcli_list, &catcli_info, &catcli_rm, &catcli_deps,
    &catcli_tree, &catcli_du, &catcli_gc, &catcli_fsck, &catcli_flatten,
    &catcli_consolidate, &catcli_export, NULL,
};

int
catcli_main(int argc, char **argv)
{
    const struct catcli_cmd *const *d;
    struct catcli c = { .verb = argv[0] };
    struct cli_opt opts[32] = { CATCLI_OPTS(&c) };
    struct catcli_sub sub;
    size_t n = 4, i;

    for (d = catcli_cmds; *d && strcmp((*d)->sub.name, argv[0]); d++) {
    }
    if (!*d) {
        return cli_usage_error(NULL, "command not found: %s", argv[0]);
    }
    c.usage = (*d)->usage;
    sub = (*d)->sub;
    /* the common options, then the command's own: a table of ours, so
     * it fits (asserted) */
    for (i = 0; sub.opts && sub.opts[i].kind != CLI_OPT_KIND_END; i++) {
        assert(n + 1 < sizeof(opts) / sizeof(opts[0]));
        opts[n++] = sub.opts[i];
    }
    opts[n] = (struct cli_opt)CLI_OPT_END;
    sub.opts = opts;
    return catcli_run(&c, &sub, NULL, argc, argv);
}
