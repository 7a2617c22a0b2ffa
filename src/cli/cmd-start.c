/*
 * cmd-start.c - "vm-clone start VM": run qemu-system-x86_64 in the
 * foreground for a catalogued VM, with its hardware model (vm-qemu.h:
 * the one vm xml and vm qemu-cmd print). With --nbd, and by default when
 * a disk's chain is sealed (so that every read of the sealed layers is
 * verified by our engine), a child "vm-clone serve" exports the disks on
 * a unix socket in a private 0700 directory and QEMU uses nbd+unix URIs;
 * the server is stopped (and has flushed) when QEMU exits. Otherwise, or
 * with --direct (which skips the seal check), QEMU opens the qcow2 files
 * itself. The exit status is QEMU's.
 * With --ephemeral (or for a VM cloned with --ephemeral) QEMU writes to
 * throwaway overlays (ephemeral.c; through NBD, "serve --snapshot"), and
 * the VM's own files are only read.
 * With --freezable, and for an instant clone, instant.c adds its part.
 * With --detach or --wait-console TEXT, start-detach.c returns to the
 * caller once QEMU runs (and TEXT is on its console) and this process goes
 * on in the background.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cat-cli.h"
#include "ephemeral.h"
#include "instant.h"
#include "run-lock.h"
#include "start-detach.h"
#include "vm-qemu.h"

static const char start_usage[] =
    "usage: " CLI_NAME " start VM [--nbd | --direct] [--ephemeral] [--dry-run]\n"
    "                     [--freezable [--memory-dir DIR]]\n"
    "                     [--detach] [--wait-console TEXT "
    "[--wait-timeout SECONDS]]\n"
    "                     [--accel kvm|tcg] [--network MODE]\n"
    "                     [--serial FILE] [--kernel F] [--initrd F] "
    "[--append CMDLINE]\n"
    "                     [-- QEMU-ARGS...]\n\n"
    "Run qemu-system-x86_64 for VM in the foreground (exit status: "
    "QEMU's), or with\n--detach in the background.\n\n"
    "  --nbd            serve the disks with 'vm-clone serve' on a private "
    "unix socket\n"
    "                   and give QEMU nbd+unix URIs (the default when a "
    "disk's chain is\n"
    "                   sealed: every read of a sealed layer is verified)\n"
    "  --direct         QEMU opens the qcow2 files itself (the default for "
    "unsealed\n"
    "                   chains); this skips the seal check\n"
    "  --ephemeral      the guest writes to throwaway overlays, removed "
    "when it stops;\n"
    "                   the VM's disks stay as they are\n"
    "  --dry-run        print the command line(s) instead of running them\n"
    "  --freezable      guest RAM in a shared file (--memory-dir, default "
    "/dev/shm)\n"
    "                   and a QMP socket of vm-clone's, so that 'template "
    "freeze'\n"
    "                   can make an instant template of the running VM\n"
    "  --memory-dir DIR with --freezable: the directory of the RAM file (a "
    "disk\n"
    "                   directory keeps a frozen template over a reboot)\n"
    "  --detach         return once QEMU runs (an instant clone: once it "
    "is restored);\n"
    "                   QEMU goes on in the background (stop it with '"
    CLI_NAME " stop VM');\n"
    "                   console: --serial FILE or "
    "STORE/run/console/VM.log,\n"
    "                   QEMU's messages: STORE/run/console/VM.err\n"
    "  --wait-console TEXT  --detach, and return once TEXT appears on the "
    "guest's serial\n"
    "                   console; exit 124 when it does not in time (QEMU "
    "is stopped),\n"
    "                   125 when QEMU exits first\n"
    "  --wait-timeout SECONDS  for --wait-console (default 300), counted "
    "from the start\n"
    "  --accel kvm|tcg  the accelerator (default: kvm when /dev/kvm works, "
    "else tcg)\n"
    "  --network MODE   user (default), bridge:NAME or none\n"
    "  --serial FILE    serial console to FILE (no monitor, no display); "
    "default:\n"
    "                   -nographic (console and monitor on this terminal)\n"
    "  --kernel F, --initrd F, --append CMDLINE   direct kernel boot\n"
    "  -- QEMU-ARGS     appended to QEMU's command line\n\n"
    "An instant clone (clone --instant) is restored from its template's "
    "RAM and\ndevice state instead of booting: once, or at every "
    "--ephemeral run (later\nstarts boot it from its disk, which has "
    "changed since).\n";

static volatile pid_t g_qemu_pid;
/* a signal that came before QEMU's pid was known: passed on at its spawn */
static volatile sig_atomic_t g_pending_signal;

/* SIGINT/SIGTERM/SIGHUP to us go to QEMU; we wait for it to exit. */
static void
forward_signal(int sig)
{
    if (g_qemu_pid > 0) {
        kill(g_qemu_pid, sig);
    } else {
        g_pending_signal = sig;
    }
}

static int
exit_status(int st)
{
    if (WIFEXITED(st)) {
        return WEXITSTATUS(st);
    }
    if (WIFSIGNALED(st)) {
        return 128 + WTERMSIG(st);
    }
    return CLI_EXIT_FAIL;
}

static int
wait_child(pid_t pid)
{
    int st = 0;

    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return st;
}

/* In a child: die with the parent (a killed "start" leaves nothing). */
static void
die_with_parent(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
        _exit(CLI_EXIT_FAIL);
    }
}

/* A fresh 0700 directory for the socket; its absolute name in @dir. */
static int
make_private_dir(char *dir, size_t len)
{
    const char *base = getenv("XDG_RUNTIME_DIR");
    char abs[PATH_MAX];

    if (!base || !*base) {
        base = getenv("TMPDIR");
    }
    if (!base || !*base) {
        base = "/tmp";
    }
    if (!realpath(base, abs)) {
        return cli_error("cannot use '%s' for the NBD socket: %s", base,
                         strerror(errno));
    }
    if (snprintf(dir, len, "%s/vm-clone-start.XXXXXX", abs) >= (int)len ||
        !mkdtemp(dir)) {
        return cli_error("cannot create a directory for the NBD socket in "
                         "'%s': %s", abs, strerror(errno));
    }
    return 0;
}

/*
 * Start "vm-clone serve --socket DIR/nbd.sock --home HOME VM" and read the
 * URIs it prints once it listens (one per disk, in disk order). It runs
 * in DIR (empty then), so a file in our working directory named like the
 * VM cannot be taken for it, and in its own process group, so a ^C on
 * the terminal does not stop the disks under QEMU.
 */
static int
start_server(const char *dir, const char *home, const char *vm,
             bool snapshot, size_t ndisks, const struct sdet *det,
             pid_t *pid_out, char ***uris_out)
{
    char self[PATH_MAX], sock[PATH_MAX + 16];
    char *line = NULL, **uris;
    size_t cap = 0, n = 0;
    ssize_t len;
    pid_t parent = getpid(), pid;
    int fds[2];
    FILE *f;

    len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len < 0) {
        return cli_error("cannot find the vm-clone binary: %s",
                         strerror(errno));
    }
    self[len] = '\0';
    snprintf(sock, sizeof(sock), "%s/nbd.sock", dir);
    uris = calloc(ndisks + 1, sizeof(*uris));
    if (!uris || pipe2(fds, O_CLOEXEC) < 0) {
        free(uris);
        return cli_error("cannot start the NBD server: %s", strerror(errno));
    }
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        free(uris);
        return cli_error("cannot start the NBD server: %s", strerror(errno));
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);

        die_with_parent(parent);
        setpgid(0, 0);
        if (det->on) {
            sdet_child_stdio(det, false);
        }
        if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
            dup2(fds[1], STDOUT_FILENO) < 0 || chdir(dir) < 0) {
            _exit(CLI_EXIT_FAIL);
        }
        execl(self, self, "serve", "--socket", sock, "--home", home,
              snapshot ? "--snapshot" : "--", snapshot ? "--" : vm,
              snapshot ? vm : NULL, (char *)NULL);
        fprintf(stderr, CLI_NAME ": cannot run '%s': %s\n", self,
                strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    while (f && n < ndisks && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n') {
            line[len - 1] = '\0';
        }
        if (strncmp(line, "nbd+unix:///", 12) == 0) {
            uris[n] = strdup(line);
            if (!uris[n]) {
                break;
            }
            n++;
        }
    }
    free(line);
    if (f) {
        fclose(f);
    } else {
        close(fds[0]);
    }
    if (n < ndisks) {
        kill(pid, SIGTERM);
        wait_child(pid);
        for (size_t i = 0; i < n; i++) {
            free(uris[i]);
        }
        free(uris);
        return cli_error("the NBD server for VM '%s' did not start", vm);
    }
    *pid_out = pid;
    *uris_out = uris;
    return 0;
}

/* Stop the server (SIGTERM: it answers, flushes, exits 0). */
static int
stop_server(pid_t pid)
{
    int st;

    kill(pid, SIGTERM);
    st = wait_child(pid);
    if (st < 0 || exit_status(st) != 0) {
        return cli_error("the NBD server failed (exit status %d): the VM's "
                         "last writes may not be durable",
                         st < 0 ? -1 : exit_status(st));
    }
    return 0;
}

/* Percent-encode @name for the path of an nbd URI (for --dry-run). */
static void
uri_name(char *out, size_t len, const char *name)
{
    size_t k = 0;

    for (; *name && k + 4 < len; name++) {
        unsigned char ch = (unsigned char)*name;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || strchr("-._~/", ch)) {
            out[k++] = (char)ch;
        } else {
            k += (size_t)snprintf(out + k, len - k, "%%%02X", ch);
        }
    }
    out[k] = '\0';
}

/* Run QEMU; @keep_fd (>= 0) stays open in it (the overlays' lock); the
 * run file of VM @vm in store @home is locked into *@run_fd (run-lock.h)
 * once a SIGTERM would reach QEMU, even one sent before its spawn; once
 * it runs, @inst (non-NULL) does its part (instant.h): on failure QEMU is
 * killed and that is the status. With @det on, once QEMU runs (and its
 * console shows the text) the caller is told (start-detach.h): a console
 * that does not is QEMU stopped, and that is the status. */
static int
run_qemu(char **argv, int keep_fd, struct inst_run *inst, struct sdet *det,
         const char *home, const char *vm, int *run_fd)
{
    struct sigaction sa, old[3];
    static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
    sigset_t block, unblocked;
    pid_t parent = getpid(), pid;
    int st, i, inst_rc = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < 3; i++) {
        sigaction(sigs[i], &sa, &old[i]);
    }
    /* found by "stop" from here on: its SIGTERM is ours to pass on */
    if ((*run_fd = runlock_take(home, vm)) < 0) {
        fprintf(stderr, CLI_NAME ": warning: 'stop %s' will not find this "
                "run: its run file: %s\n", vm, strerror(-*run_fd));
    }
    fflush(stdout);
    if (inst) {
        inst->t0 = cli_mono_s();
    }
    /* blocked across the fork: the child must not take a signal with our
     * handler (which would not pass it on), nor we one before its pid */
    sigemptyset(&block);
    for (i = 0; i < 3; i++) {
        sigaddset(&block, sigs[i]);
    }
    sigprocmask(SIG_BLOCK, &block, &unblocked);
    pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &unblocked, NULL);
        return cli_error("cannot start QEMU: %s", strerror(errno));
    }
    if (pid == 0) {
        for (i = 0; i < 3; i++) {
            sigaction(sigs[i], &old[i], NULL);
        }
        sigprocmask(SIG_SETMASK, &unblocked, NULL);     /* QEMU's own */
        die_with_parent(parent);
        if (keep_fd >= 0) {
            fcntl(keep_fd, F_SETFD, 0);
        }
        if (inst) {
            setpgid(0, 0);      /* a ^C goes through us: not mid-restore */
        }
        if (det->on) {
            sdet_child_stdio(det, true);
        }
        execvp(argv[0], argv);
        fprintf(stderr, CLI_NAME ": cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    g_qemu_pid = pid;
    sigprocmask(SIG_SETMASK, &unblocked, NULL);
    if (g_pending_signal) {
        kill(pid, g_pending_signal);
    }
    inst_trace("qemu-spawned");
    if (inst && (inst_rc = inst_after_spawn(inst, pid, argv)) != 0) {
        kill(pid, SIGKILL);
    } else if (det->on && (inst_rc = sdet_watch(det, pid)) == 0) {
        sdet_release(det, pid);
    } else if (inst_rc == SDET_EXIT_TIMEOUT) {
        kill(pid, SIGTERM);
    }
    st = wait_child(pid);
    g_qemu_pid = 0;
    for (i = 0; i < 3; i++) {
        sigaction(sigs[i], &old[i], NULL);
    }
    if (st < 0) {
        return cli_error("waiting for QEMU: %s", strerror(errno));
    }
    return inst_rc ? inst_rc : exit_status(st);
}

/* --dry-run: what would run, the server (@sock: with --nbd) and QEMU; as
 * text, or with --json {"vm", "dry_run", "serve_argv", "argv"}. */
static void
print_plan(struct catcli *c, const char *name, const char *sock,
           const char *home, bool snapshot, char *const *qa)
{
    const char *serve[] = { CLI_NAME, "serve", "--socket", sock, "--home",
                            home, snapshot ? "--snapshot" : "--",
                            snapshot ? "--" : name, name };
    const size_t nserve = snapshot ? 9 : 8;
    struct json_object *doc, *sv = NULL;
    size_t i;

    if (!c->json) {
        if (sock) {
            printf(CLI_NAME " serve --socket %s --home %s%s -- %s\n", sock,
                   home, snapshot ? " --snapshot" : "", name);
        }
        vmq_print(stdout, qa);
        return;
    }
    doc = json_object_new_object();
    for (i = 0; sock && i < nserve; i++) {
        sv = sv ? sv : json_object_new_array();
        json_object_array_add(sv, json_object_new_string(serve[i]));
    }
    cli_json_add_str(doc, "vm", name);
    cli_json_add_bool(doc, "dry_run", true);
    json_object_object_add(doc, "serve_argv", sv);
    cli_json_add_obj(doc, "argv", vmq_argv_json(qa));
    catcli_json_done(doc);
}

/* --dry-run --nbd: the URIs the server would print, on the socket it would
 * use (the directory is made only for a real start). */
static int
dry_uris(const char *name, struct json_object *disks, size_t ndisks,
         char *sock, size_t socklen, char ***uris_out)
{
    const char *base = getenv("XDG_RUNTIME_DIR");
    char **uris = calloc(ndisks + 1, sizeof(*uris));
    size_t i;

    if (!base || !*base) {
        base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR")
                                                      : "/tmp";
    }
    snprintf(sock, socklen, "%s/vm-clone-start.XXXXXX/nbd.sock", base);
    *uris_out = uris;
    for (i = 0; uris && i < ndisks; i++) {
        char en[512], ex[1100];

        snprintf(ex, sizeof(ex), "%s/disk%d", name, json_object_get_int(
            json_object_object_get(json_object_array_get_idx(disks, i),
                                   "disk")));
        uri_name(en, sizeof(en), ex);
        if (asprintf(&uris[i], "nbd+unix:///%s?socket=%s", en, sock) < 0) {
            uris[i] = NULL;
            return cli_error("out of memory");
        }
    }
    return uris ? 0 : cli_error("out of memory");
}

static const char *
vm_state(struct json_object *vm)
{
    return json_object_get_string(json_object_object_get(vm, "state"));
}

/* Whether VM @name is an instant clone (its template's record in *@in);
 * 0 or the exit status. */
static int
load_instant(struct catcli *c, const char *name, struct vmc_instant *in,
             bool *instant)
{
    struct vmc_error e = { 0 };
    int r = vmc_catalog_instant_of_vm(c->cat, name, in, &e);

    *instant = r == 0;
    return r < 0 && r != -ENOENT ? catcli_fail(&e, r) : 0;
}

/* An instant clone's disk moves on once a start resumes it, so a start
 * that resumes it for good (not a dry run, not ephemeral) records that
 * first, and later starts boot the VM from its disk (said here): the
 * template's memory would not match the disk any more. *@recorded: the
 * record to undo if the guest does not run. 0 or an exit status. */
static int
record_resume(struct catcli *c, const char *name, struct json_object *vm,
              bool instant, bool dry_run, bool ephemeral, bool *recorded)
{
    struct vmc_error e = { 0 };
    int r;

    *recorded = false;
    if (!instant) {
        if (vmc_catalog_instant_was_resumed(c->cat, name, &e) == 1 &&
            !c->quiet && !c->json) {
            fprintf(stderr, CLI_NAME ": VM '%s' was resumed from its "
                    "instant template before and its disk has changed "
                    "since: it boots from its disk\n", name);
        }
        return 0;
    }
    if (dry_run || eph_wanted(vm, ephemeral) ||
        strcmp(vm_state(vm), "ready")) {
        return 0;
    }
    r = vmc_catalog_instant_resume(c->cat, name, true, &e);
    if (r < 0) {
        return catcli_fail(&e, r);
    }
    *recorded = true;
    return 0;
}

/* The guest of instant clone @name never ran: it may be resumed again. */
static void
undo_resume(struct catcli *c, const char *name)
{
    struct vmc_error e = { 0 };

    if (catcli_open(c, 0) == 0) {
        vmc_catalog_instant_resume(c->cat, name, false, &e);
        catcli_close(c);
    }
}

/* --freezable, or an instant clone (@r->in): set up model @hw (instant.h);
 * 0 or the exit status. */
static int
setup_instant(struct inst_run *r, struct vmc_hw *hw, bool freezable,
              bool ephemeral, const char *memdir, bool dry_run)
{
    if (freezable && (r->in || ephemeral)) {
        return catcli_error(CLI_EXIT_CONFLICT, "VM '%s' cannot run "
                            "freezable: %s", r->vm,
                            r->in ? "it is an instant clone"
                                  : "its run is ephemeral");
    }
    if (freezable) {
        return inst_freezable_setup(r, hw, memdir, dry_run);
    }
    return r->in ? inst_clone_setup(r, hw, dry_run) : 0;
}

static int
opt_wait_timeout(const char *arg, void *dest)
{
    struct sdet *d = dest;
    char *end;
    double v;

    errno = 0;
    v = strtod(arg, &end);
    if (errno || end == arg || *end || !(v > 0) || v > 86400 * 7) {
        return cli_usage_error("start", "--wait-timeout must be a number of "
                               "seconds, more than 0 and at most a week");
    }
    d->timeout = v;
    return 0;
}

/* Whether the options of the detached start hang together (else the
 * usage error's status). */
static int
check_detach(struct sdet *d, bool detach)
{
    if (d->text && (!*d->text || strlen(d->text) > 512)) {
        return cli_usage_error("start", "--wait-console needs a text of 1 "
                               "to 512 bytes");
    }
    if (d->timeout != 300 && !d->text) {
        return cli_usage_error("start", "--wait-timeout goes with "
                               "--wait-console");
    }
    d->on = detach || d->text;
    return 0;
}

/* size: one sequence of steps sharing their clean-up (the server, the
 * overlays, the instant run), clearer in one place. */
int
cmd_start(int argc, char **argv)
{
    struct catcli c = { .verb = "start", .usage = start_usage };
    struct vmq_opts qo = { 0 };
    struct vmc_hw *hw = NULL;
    struct vmc_scratch *scratch = NULL;
    struct json_object *vm = NULL, *disks = NULL;
    char home[PATH_MAX], dir[PATH_MAX] = "", sock[PATH_MAX + 16];
    char **uris = NULL, **extra = NULL, **qa = NULL;
    const char *name, *memdir = NULL;
    struct vmc_instant in = { 0 };
    struct inst_run ir = { 0 };
    bool nbd = false, direct = false, dry_run = false, ephemeral = false;
    bool freezable = false, instant = false, detach = false, recorded = false;
    struct sdet det;
    size_t ndisks = 0, i;
    pid_t srv = 0;
    int r, rc = CLI_EXIT_FAIL, run_fd = -1;
    const struct cli_opt opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_FLAG(0, "nbd", &nbd, "serve the disks over NBD (a 'serve' "
                     "child) instead of opening them in QEMU"),
        CLI_OPT_FLAG(0, "direct", &direct, "QEMU opens the disks itself, "
                     "skipping the seal check"),
        CLI_OPT_FLAG(0, "ephemeral", &ephemeral, "the guest's writes go to "
                     "throwaway overlays"),
        CLI_OPT_FLAG(0, "dry-run", &dry_run, "print the QEMU command line, "
                     "run nothing"),
        CLI_OPT_FLAG(0, "freezable", &freezable, "guest RAM in a shared "
                     "file and a QMP socket, for 'template freeze'"),
        CLI_OPT_STRING(0, "memory-dir", "DIR", &memdir, "with --freezable: "
                       "the directory of the RAM file (default /dev/shm)"),
        CLI_OPT_FLAG(0, "detach", &detach, "return once QEMU runs; it goes "
                     "on in the background"),
        CLI_OPT_STRING(0, "wait-console", "TEXT", &det.text, "--detach "
                       "once TEXT appears on the serial console"),
        CLI_OPT_CALL(0, "wait-timeout", "SECONDS", &det, opt_wait_timeout,
                     "for --wait-console (default 300; then exit 124)"),
        VMQ_NET_OPTS(&qo),
        VMQ_BOOT_OPTS(&qo),
        CLI_OPT_END,
    };

    sdet_init(&det);
    inst_trace("main");

    /* QEMU's own arguments follow "--" and are not ours to parse */
    for (i = 1; i < (size_t)argc; i++) {
        if (!strcmp(argv[i], "--")) {
            extra = argv + i + 1;       /* argv[argc] is NULL */
            argc = (int)i;
            break;
        }
    }
    r = catcli_parse(&c, opts, argc, argv);
    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (argc - optind != 1 || (memdir && !freezable)) {
        return cli_usage_error(c.verb, argc - optind != 1
                               ? "expecting one VM name"
                               : "--memory-dir goes with --freezable");
    }
    if (nbd && direct) {
        return cli_usage_error(c.verb, "--nbd and --direct exclude each "
                               "other");
    }
    if ((r = check_detach(&det, detach)) != 0) {
        return r;
    }
    det.vm = argv[optind];
    det.quiet = c.quiet;
    det.json = c.json;
    if (det.on && !dry_run && (r = sdet_fork(&det)) >= 0) {
        return r;               /* the caller's side of a detached start */
    }
    inst_trace("parsed");
    r = catcli_open_vm(&c, argv[optind], &vm);
    if (r) {
        return r;
    }
    rc = vmq_load(&c, argv[optind], &qo, &hw);
    rc = rc ? rc : load_instant(&c, argv[optind], &in, &instant);
    rc = rc ? rc : record_resume(&c, argv[optind], vm, instant, dry_run,
                                 ephemeral, &recorded);
    /* absolute: the server runs in another directory */
    if (!realpath(vmc_catalog_dir(c.cat), home)) {
        snprintf(home, sizeof(home), "%s", vmc_catalog_dir(c.cat));
    }
    /* The catalog stays closed while the VM runs (fsck would wait). */
    catcli_close(&c);
    inst_trace("catalog-read");
    if (rc) {
        goto out;
    }
    rc = CLI_EXIT_FAIL;
    name = json_object_get_string(json_object_object_get(vm, "name"));
    if (strcmp(vm_state(vm), "ready")) {
        rc = catcli_error(CLI_EXIT_BUSY, "VM '%s' is %s, not ready", name,
                          vm_state(vm));
        goto out;
    }
    json_object_object_get_ex(vm, "disks", &disks);
    ndisks = disks ? json_object_array_length(disks) : 0;
    /* a sealed chain is read through our engine, which verifies it */
    nbd = nbd || (!direct && vmc_hw_sealed(hw));
    nbd = nbd && ndisks > 0;        /* else nothing to serve */
    ephemeral = eph_wanted(vm, ephemeral);
    if (det.on && (rc = sdet_files(&det, home, qo.serial, dry_run)) != 0) {
        goto out;
    }
    if (det.on) {
        hw->serial = det.serial;
    }
    rc = CLI_EXIT_FAIL;
    ir = (struct inst_run){ .home = home, .vm = name, .quiet = c.quiet ||
                            c.json, .in = instant ? &in : NULL };
    if ((rc = setup_instant(&ir, hw, freezable, ephemeral, memdir,
                            dry_run))) {
        goto out;
    }
    rc = CLI_EXIT_FAIL;
    if (ephemeral && !nbd && eph_overlays(hw, home, dry_run, &scratch)) {
        goto out;
    }

    if (nbd && dry_run) {
        if (dry_uris(name, disks, ndisks, sock, sizeof(sock), &uris)) {
            goto out;
        }
    } else if (nbd) {
        if (make_private_dir(dir, sizeof(dir))) {
            dir[0] = '\0';
            goto out;
        }
        if (start_server(dir, home, name, ephemeral, ndisks, &det, &srv,
                         &uris)) {
            goto out;
        }
        for (i = 0; !c.quiet && i < ndisks; i++) {
            fprintf(stderr, CLI_NAME ": disk %zu of VM '%s' served on %s\n",
                    i, name, uris[i]);
        }
    }
    for (i = 0; uris && i < ndisks && i < hw->ndisks; i++) {
        if (vmc_hw_set_uri(hw, i, uris[i]) < 0) {
            cli_error("out of memory");
            goto out;
        }
    }
    if (vmq_argv(hw, extra, &qa)) {
        goto out;
    }
    if (instant && (rc = inst_check_devices(&ir, qa)) != 0) {
        goto out;
    }
    inst_trace("command-line");
    if (dry_run) {
        print_plan(&c, name, nbd ? sock : NULL, home, ephemeral, qa);
        rc = CLI_EXIT_OK;
        goto out;
    }
    rc = run_qemu(qa, scratch ? vmc_scratch_lock_fd(scratch) : -1,
                  freezable || instant ? &ir : NULL, &det, home, name,
                  &run_fd);

out:
    if (recorded && !ir.resumed) {
        undo_resume(&c, argv[optind]);
    }
    inst_cleanup(&ir, dry_run);
    vmc_instant_release(&in);       /* when it failed before ir.in */
    if (srv > 0 && stop_server(srv) && rc == CLI_EXIT_OK) {
        rc = CLI_EXIT_FAIL;
    }
    if (dir[0]) {
        snprintf(sock, sizeof(sock), "%s/nbd.sock", dir);
        unlink(sock);               /* only if the server could not */
        rmdir(dir);
    }
    for (i = 0; uris && i < ndisks; i++) {
        free(uris[i]);
    }
    free(uris);
    vmc_hw_argv_free(qa);
    vmc_hw_free(hw);
    vmc_scratch_free(scratch);
    json_object_put(vm);
    if (det.log_fd >= 0) {
        close(det.log_fd);
    }
    if (run_fd >= 0) {
        close(run_fd);
    }
    return rc;
}
