/*
 * main.c - entry point of vm-clone: the top-level command table.
 * Each group ("img") dispatches its own second-level table.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_cmd top_cmds[] = {
    { "img", cmd_img, "Create, inspect, clone, commit and rebase disk "
                      "images (qemu-img compatible)" },
    { "serve", cmd_serve, "Export images over NBD" },
    { NULL, NULL, NULL },
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: " CLI_NAME " [--version] [--help] <group> "
               "<command> [<args>]\n\ngroups:\n");
    cli_print_table(f, top_cmds);
    fprintf(f, "\nRun '" CLI_NAME " <group> --help' for the commands of a "
               "group.\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        return cli_usage_error(NULL, "missing command group");
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf(CLI_NAME " version %s\n", vmc_version());
        return CLI_EXIT_OK;
    }
    if (argv[1][0] == '-') {
        return cli_usage_error(NULL, "unrecognized option '%s'", argv[1]);
    }
    return cli_dispatch(top_cmds, NULL, argc - 1, argv + 1);
}
