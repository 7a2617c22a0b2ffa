/*
 * cmd-img.c - the "img" group: second-level table of the disk image
 * verbs, a drop-in for the qemu-img verbs of the same names.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct cli_cmd img_cmds[] = {
    { "create",  cmd_img_create,  "Create a new image or a linked clone" },
    { "info",    cmd_img_info,    "Show information about an image" },
    { "map",     cmd_img_map,     "Show the allocation map through the "
                                  "backing chain" },
    { "check",   cmd_img_check,   "Check (and repair) image consistency" },
    { "convert", cmd_img_convert, "Copy an image (full clone, flatten, "
                                  "compress)" },
    { "compare", cmd_img_compare, "Compare the contents of two images" },
    { "commit",  cmd_img_commit,  "Merge an overlay into its backing file" },
    { "rebase",  cmd_img_rebase,  "Change the backing file of an image" },
    { "resize",  cmd_img_resize,  "Change the virtual size of an image" },
    { "io",      cmd_img_io,      "Run scripted I/O on an image "
                                  "(qemu-io style)" },
    { "clone",   cmd_img_clone,   "Make linked or full clones" },
    { "flatten", cmd_img_flatten, "Copy the chain into an image and drop "
                                  "its backing file" },
    { "relink",  cmd_img_relink,  "Turn a full image into a linked clone "
                                  "of a template" },
    { "consolidate", cmd_img_consolidate, "Collapse the intermediate "
                                  "layers of a chain" },
    { "du",      cmd_img_du,      "Space used by images and their chains" },
    { "bench",   cmd_img_bench,   "Benchmark the engine's I/O path "
                                  "(qemu-img bench)" },
    { "seal",    cmd_img_seal,    "Make an image a sealed template" },
    { "unseal",  cmd_img_unseal,  "Remove the seal of a template" },
    { "verify",  cmd_img_verify,  "Verify (and repair) a sealed template" },
    { NULL, NULL, NULL },
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: " CLI_NAME " img <command> [<args>]\n\n"
               "commands:\n");
    cli_print_table(f, img_cmds);
    fprintf(f, "\nRun '" CLI_NAME " img <command> --help' for the options "
               "of a command.\n");
}

int
cmd_img(int argc, char **argv)
{
    if (argc < 2) {
        return cli_usage_error("img", "missing command");
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argv[1][0] == '-') {
        return cli_usage_error("img", "unrecognized option '%s'", argv[1]);
    }
    return cli_dispatch(img_cmds, "img", argc - 1, argv + 1);
}
