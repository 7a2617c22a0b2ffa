/*
 * main.c - entry point of vm-clone: the top-level command table.
 * Each group ("img") dispatches its own second-level table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cat-cli.h"
#include "vm-qemu.h"
#include "vmclone-rbd.h"

static const struct cli_cmd top_cmds[] = {
    { "img", cmd_img, "Create, inspect, clone, commit and rebase disk "
                      "images (qemu-img compatible)" },
    { "serve", cmd_serve, "Export images over NBD" },
    /* the management layer: catalog of templates, VMs and snapshots */
    { "init", catcli_main, "Create the store (catalog and default pools)" },
    { "pool", cmd_pool, "Add, list or remove storage pools" },
    { "template", cmd_template, "Import, create, list, retire or remove "
                                "templates" },
    { "clone", cmd_clone, "Make linked or full clones of a template or VM" },
    { "list", catcli_main, "List VMs (--label k=v)" },
    { "info", catcli_main, "Show a VM" },
    { "snapshot", cmd_snapshot, "Create, list, revert or remove snapshots" },
    { "tree", catcli_main, "Templates, copies, snapshots and VMs as a tree" },
    { "deps", catcli_main, "What depends on a template, VM or snapshot" },
    { "rm", catcli_main, "Remove a VM (refused while something depends "
                       "on it)" },
    { "du", catcli_main, "Space used per pool" },
    { "gc", catcli_main, "Remove expired VMs and unused template copies" },
    { "fsck", catcli_main, "Reconcile the catalog and the files" },
    { "flatten", catcli_main, "Make a VM's disks standalone" },
    { "relink", cmd_relink, "Make a full VM a linked clone of a template" },
    { "export", catcli_main, "Write a VM's disks as standalone images "
      "(qcow2, raw, vmdk, vhdx, vpc, vdi)" },
    { "consolidate", catcli_main, "Collapse a VM's snapshot chain" },
    { "config", cmd_config, "Get or set store settings" },
    { "vm", cmd_vm, "Export a VM for hypervisors (libvirt XML, qemu)" },
    { "start", cmd_start, "Run a VM in qemu-system-x86_64 (its disks "
                          "directly or over NBD)" },
    { "stop", cmd_stop, "Stop a VM that 'start' runs, and wait for its "
                        "clean-up" },
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

/* Whether --json is among the options (before a "--"). */
static bool
wants_json(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--json")) {
            return true;
        }
    }
    return false;
}

/* --json before the command, or between a group and its verb, applies to
 * the command: "vm-clone --json list" runs as "vm-clone list --json",
 * "vm-clone img --json info X" as "vm-clone img info X --json". It moves
 * after the command's words (before a "--", which ends the options). */
static void
move_json_last(int argc, char **argv)
{
    int end = 1, i;

    while (end < argc && strcmp(argv[end], "--")) {
        end++;
    }
    for (i = 1; i < 3 && i < end; i++) {
        if (!strcmp(argv[i], "--json")) {
            char *json = argv[i];

            memmove(&argv[i], &argv[i + 1],
                    (size_t)(end - i - 1) * sizeof(argv[0]));
            argv[end - 1] = json;
            return;
        }
    }
}

/* The command of argv[1] (after the options main() takes itself). */
static int
run(int argc, char **argv)
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
    /* the seed's form: vm-clone --linked|--full --name X [--template T] */
    if (!strcmp(argv[1], "--linked") || !strcmp(argv[1], "--full") ||
        !strcmp(argv[1], "--name") || !strcmp(argv[1], "--template")) {
        return cmd_clone_short(argc, argv);
    }
    if (argv[1][0] == '-') {
        return cli_usage_error(NULL, "unrecognized option '%s'", argv[1]);
    }
    return cli_dispatch(top_cmds, NULL, argc - 1, argv + 1);
}

/* Given --json, every command but serve (which has no JSON output) prints
 * one JSON document, an error document on failure (docs/cli-contract.md);
 * the img verbs' --output=json keeps qemu-img's silence on stdout. */
int
main(int argc, char **argv)
{
    int r;

    move_json_last(argc, argv);
    /* --home DIR before the command applies to it */
    while (argc > 2 && !strcmp(argv[1], "--home")) {
        setenv("VMCLONE_HOME", argv[2], 1);
        argv[2] = argv[0];
        argc -= 2;
        argv += 2;
    }
    move_json_last(argc, argv);     /* vm-clone --home H --json list */
    cli_json_errors(wants_json(argc, argv) &&
                    !(argc > 1 && !strcmp(argv[1], "serve")));
    r = run(argc, argv);
    vmc_rbd_shutdown();     /* before exit(): see include/vmclone-rbd.h */
    return cli_json_errors_end(r);
}
