/*
 * instant.c - instant clones on the command line (instant.h): the
 * freezable run, the freeze, and the restore of a clone over QMP.
 *
 * A freezable run leaves, while QEMU runs, HOME/run/instant/UUID.json
 * (QEMU's pid, the QMP socket, the RAM file, what clones must repeat)
 * and UUID.qmp; "template freeze" reads it. The freeze renames the RAM
 * file to its final name before it tells QEMU to quit, so the run's
 * clean-up (which removes the RAM file under its first name) leaves a
 * frozen one alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "instant.h"

void
inst_trace(const char *step)
{
    static double last;
    const char *on = getenv("VMCLONE_TRACE_START");
    double t;

    if (!on || !*on) {
        return;
    }
    t = cli_mono_s();
    fprintf(stderr, CLI_NAME ": trace %s %.6f (+%.3f)\n", step, t,
            last > 0 ? t - last : 0.0);
    last = t;
}

/* snprintf into a path buffer; -1 when it does not fit. */
static int __attribute__((format(printf, 3, 4)))
pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int
mkdir_p(const char *home, const char *sub)
{
    int r = cli_run_dir(home, sub);

    return r < 0 ? cli_error("cannot create '%s/%s': %s", home, sub,
                             strerror(-r)) : 0;
}

char *
inst_devices(char *const *argv)
{
    char *out = NULL;
    size_t len = 0, i;
    FILE *f = open_memstream(&out, &len);

    for (i = 0; f && argv[i] && argv[i + 1]; i++) {
        if (!strcmp(argv[i], "-device")) {
            fprintf(f, "%s\n", argv[++i]);
        } else if (!strcmp(argv[i], "-vga")) {
            fprintf(f, "vga,%s\n", argv[++i]);
        } else if (!strcmp(argv[i], "-drive")) {
            /* a disk's device, not its file */
            fprintf(f, "%s\n", strstr(argv[++i], "media=cdrom") ? "drive,cdrom"
                                                               : "drive,"
                                                                 "virtio");
        }
    }
    if (f) {
        fclose(f);
    }
    return out;
}

int
inst_check_devices(struct inst_run *r, char *const *argv)
{
    char *d = inst_devices(argv);
    int rc = 0;

    if (!d) {
        return cli_error("out of memory");
    }
    if (strcmp(d, r->in->devices)) {
        rc = catcli_error(CLI_EXIT_CONFLICT, "the devices of VM '%s' are not "
                          "those instant template '%s' was frozen with "
                          "(frozen:\n%snow:\n%s)", r->vm,
                          r->in->template_name, r->in->devices, d);
    }
    free(d);
    return rc;
}

int
inst_freezable_setup(struct inst_run *r, struct vmc_hw *hw,
                     const char *memdir, bool dry_run)
{
    char dir[PATH_MAX];
    int fd;

    if (!memdir) {
        memdir = "/dev/shm";
    }
    if (!realpath(memdir, dir)) {
        return cli_error("--memory-dir '%s': %s", memdir, strerror(errno));
    }
    if (pathf(r->ram, sizeof(r->ram), "%s/vmclone-%s-XXXXXX.ram", dir,
              hw->uuid) || pathf(r->qmp, sizeof(r->qmp), "%s/" INST_RUN
                                 "/%s.qmp", r->home, hw->uuid) ||
        pathf(r->record, sizeof(r->record), "%s/" INST_RUN "/%s.json",
              r->home, hw->uuid)) {
        return cli_error("the store's or --memory-dir's path is too long");
    }
    if (strlen(r->qmp) >= 100) {
        return cli_error("the QMP socket '%s' is too long for a unix socket "
                         "(a store with a shorter path)", r->qmp);
    }
    if (!dry_run) {
        if (mkdir_p(r->home, INST_RUN)) {
            return CLI_EXIT_FAIL;
        }
        if (access(r->record, F_OK) == 0) {
            return catcli_error(CLI_EXIT_BUSY, "VM '%s' already runs "
                                "freezable (%s)", r->vm, r->record);
        }
        fd = mkstemps(r->ram, 4);
        if (fd < 0) {
            return cli_error("cannot create the RAM file in '%s': %s", dir,
                             strerror(errno));
        }
        close(fd);
    }
    r->freezable = true;
    hw->mem_path = r->ram;
    hw->mem_share = true;
    hw->qmp = r->qmp;
    hw->vmgenid = true;
    hw->no_nics = true;
    hw->no_vga = true;      /* its VRAM would be private in every clone */
    hw->fw_name = hw->name;
    hw->fw_id = hw->uuid;
    return 0;
}

int
inst_clone_setup(struct inst_run *r, struct vmc_hw *hw, bool dry_run)
{
    const struct vmc_instant_file *f[2] = { &r->in->ram, &r->in->state };
    char why[512];
    int k;

    for (k = 0; !dry_run && k < 2; k++) {
        if (vmc_instant_file_check(f[k], false, why, sizeof(why))) {
            return catcli_error(CLI_EXIT_INTEGRITY, "the %s file of instant "
                                "template '%s' changed since the freeze "
                                "(%s: %s); it is not resumed",
                                k ? "state" : "RAM", r->in->template_name,
                                f[k]->path, why);
        }
    }
    if (strchr(r->in->state.path, '\'')) {
        return cli_error("the state file '%s' has a quote in its name",
                         r->in->state.path);
    }
    snprintf(r->qmp, sizeof(r->qmp), "%s/" INST_RUN "/%s.qmp", r->home,
             hw->uuid);
    if (strlen(r->qmp) >= 100) {
        return cli_error("the QMP socket '%s' is too long for a unix socket "
                         "(a store with a shorter path)", r->qmp);
    }
    if (!dry_run && mkdir_p(r->home, INST_RUN)) {
        return CLI_EXIT_FAIL;
    }
    r->machine_asked = hw->machine;
    hw->machine = r->in->machine;
    hw->cpus = r->in->cpus;
    hw->memory_mb = r->in->memory_mb;
    hw->kernel = r->in->kernel;
    hw->initrd = r->in->initrd;
    hw->append = r->in->append;
    hw->mem_path = r->in->ram.path;
    hw->mem_share = false;
    hw->qmp = r->qmp;
    hw->vmgenid = true;
    hw->no_nics = true;
    hw->fw_name = hw->name;
    hw->fw_id = hw->uuid;
    hw->incoming_defer = true;
    /* as the template was frozen: templates of before had a VGA */
    hw->no_vga = strstr(r->in->devices, "vga,none\n") != NULL;
    r->macs = hw->macs;
    r->nmacs = hw->net == VMC_HW_NET_NONE ? 0 : hw->nnics;
    return 0;
}

/* The record of a freezable run (written once QEMU runs). */
static int
write_record(struct inst_run *r, pid_t pid, char *const *argv)
{
    struct json_object *o = json_object_new_object();
    char tmp[PATH_MAX + 16];
    char *dev = inst_devices(argv);
    const char *k[3] = { "-kernel", "-initrd", "-append" };
    size_t i, j;
    int rc = 0;

    json_object_object_add(o, "pid", json_object_new_int64(pid));
    /* the process serving QEMU's disks over NBD (without --direct): the
     * freeze waits for it too before it seals them */
    json_object_object_add(o, "starter", json_object_new_int64(getpid()));
    cli_json_add_str(o, "qmp", r->qmp);
    cli_json_add_str(o, "ram", r->ram);
    cli_json_add_str(o, "devices", dev ? dev : "");
    for (i = 0; argv[i] && argv[i + 1]; i++) {
        for (j = 0; j < 3; j++) {
            if (!strcmp(argv[i], k[j])) {
                cli_json_add_str(o, k[j] + 1, argv[i + 1]);
            }
        }
        if (!strcmp(argv[i], "-smp")) {
            json_object_object_add(o, "cpus", json_object_new_int(
                                       atoi(argv[i + 1])));
        }
        if (!strcmp(argv[i], "-m")) {
            json_object_object_add(o, "memory_mb", json_object_new_int(
                                       atoi(argv[i + 1])));
        }
        if (!strcmp(argv[i], "-machine")) {
            char m[256];

            snprintf(m, sizeof(m), "%s", argv[i + 1]);
            m[strcspn(m, ",")] = '\0';
            cli_json_add_str(o, "machine", m);
        }
    }
    free(dev);
    snprintf(tmp, sizeof(tmp), "%s.tmp", r->record);
    if (json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PRETTY) < 0 ||
        rename(tmp, r->record) < 0) {
        rc = cli_error("cannot write '%s': %s", r->record, strerror(errno));
        unlink(tmp);
    }
    json_object_put(o);
    return rc;
}

/* "MAJOR.MINOR.MICRO (package)" of QMP query-version. */
static int
qemu_version(struct vmc_qmp *q, char *buf, size_t len, struct vmc_error *err)
{
    struct json_object *ret = NULL, *v;
    int r = vmc_qmp_cmd(q, "query-version", NULL, &ret, err);

    if (r == 0) {
        v = json_object_object_get(ret, "qemu");
        snprintf(buf, len, "%d.%d.%d (%s)",
                 json_object_get_int(json_object_object_get(v, "major")),
                 json_object_get_int(json_object_object_get(v, "minor")),
                 json_object_get_int(json_object_object_get(v, "micro")),
                 json_object_get_string(json_object_object_get(ret,
                                                               "package")));
    }
    json_object_put(ret);
    return r;
}

/* The machine type @name stands for (an alias such as "q35" resolved). */
static int
qemu_machine(struct vmc_qmp *q, const char *name, char *buf, size_t len,
             struct vmc_error *err)
{
    struct json_object *ret = NULL;
    size_t i, n;
    int r = vmc_qmp_cmd(q, "query-machines", NULL, &ret, err);

    snprintf(buf, len, "%s", name);
    n = r == 0 ? json_object_array_length(ret) : 0;
    for (i = 0; i < n; i++) {
        struct json_object *m = json_object_array_get_idx(ret, i);
        const char *alias = json_object_get_string(
            json_object_object_get(m, "alias"));

        if (alias && !strcmp(alias, name)) {
            snprintf(buf, len, "%s", json_object_get_string(
                         json_object_object_get(m, "name")));
        }
    }
    json_object_put(ret);
    return r;
}

static struct json_object *
args1(const char *k, struct json_object *v)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, k, v);
    return o;
}

/* migrate-set-capabilities x-ignore-shared on, and with @events the
 * MIGRATION events (the end of a load is then waited for, not polled). */
static int
ignore_shared(struct vmc_qmp *q, bool events, struct vmc_error *err)
{
    static const char *const caps[2] = { "x-ignore-shared", "events" };
    struct json_object *arr = json_object_new_array(), *a, *ret;
    int r, i;

    for (i = 0; i < (events ? 2 : 1); i++) {
        struct json_object *cap = json_object_new_object();

        json_object_object_add(cap, "capability",
                               json_object_new_string(caps[i]));
        json_object_object_add(cap, "state", json_object_new_boolean(1));
        json_object_array_add(arr, cap);
    }
    a = args1("capabilities", arr);
    r = vmc_qmp_cmd(q, "migrate-set-capabilities", a, &ret, err);
    json_object_put(a);
    json_object_put(ret);
    return r;
}

/* Hot-add NIC @i with MAC @mac on root port vmc-hpI. */
static int
hot_add_nic(struct vmc_qmp *q, size_t i, const char *mac, bool r_q35,
            struct vmc_error *err)
{
    struct json_object *a = json_object_new_object(), *ret = NULL;
    char id[32], port[32], nic[32];
    int r;

    snprintf(id, sizeof(id), "net%zu", i);
    snprintf(port, sizeof(port), "vmc-hp%zu", i);
    snprintf(nic, sizeof(nic), "nic%zu", i);
    cli_json_add_str(a, "type", "user");
    cli_json_add_str(a, "id", id);
    r = vmc_qmp_cmd(q, "netdev_add", a, &ret, err);
    json_object_put(a);
    json_object_put(ret);
    if (r < 0) {
        return r;
    }
    a = json_object_new_object();
    cli_json_add_str(a, "driver", "virtio-net-pci");
    cli_json_add_str(a, "netdev", id);
    cli_json_add_str(a, "mac", mac);
    if (r_q35) {
        cli_json_add_str(a, "bus", port);
    }
    cli_json_add_str(a, "id", nic);
    r = vmc_qmp_cmd(q, "device_add", a, &ret, err);
    json_object_put(a);
    json_object_put(ret);
    return r;
}

/* The checks a restore needs before the state is loaded: the QEMU build
 * and the machine type the template was frozen with. */
static int
restore_checks(struct inst_run *r, struct vmc_qmp *q, struct vmc_error *err)
{
    char ver[256], mach[256];
    int rc = qemu_version(q, ver, sizeof(ver), err);

    if (rc == 0) {
        rc = qemu_machine(q, r->machine_asked, mach, sizeof(mach), err);
    }
    if (rc < 0) {
        return cli_error_lib(err, rc);
    }
    if (strcmp(ver, r->in->qemu_version)) {
        return catcli_error(CLI_EXIT_CONFLICT, "instant template '%s' was "
                            "frozen with QEMU %s; this is QEMU %s: its "
                            "clones run on that build only",
                            r->in->template_name, r->in->qemu_version, ver);
    }
    if (strcmp(mach, r->in->machine)) {
        return catcli_error(CLI_EXIT_CONFLICT, "instant template '%s' was "
                            "frozen with machine type %s; VM '%s' would run "
                            "%s (%s): clones must repeat the machine type",
                            r->in->template_name, r->in->machine, r->vm,
                            mach, r->machine_asked);
    }
    return 0;
}

/* Have QEMU load the state file: passed as an open file ("getfd", then
 * "migrate-incoming fd:"), which spares the shell and cat of an exec:
 * URI; its end is the MIGRATION event, not a polled status. */
static int
load_state(struct inst_run *r, struct vmc_qmp *q, struct vmc_error *err)
{
    struct json_object *a, *ret = NULL;
    char st[64] = "";
    int rc, fd = open(r->in->state.path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return vmc_error_set(err, -errno, "cannot open the state file '%s': "
                             "%s", r->in->state.path, strerror(errno));
    }
    a = args1("fdname", json_object_new_string("vmc-state"));
    rc = vmc_qmp_cmd_fd(q, "getfd", a, fd, &ret, err);
    close(fd);
    json_object_put(a);
    json_object_put(ret);
    if (rc == 0) {
        a = args1("uri", json_object_new_string("fd:vmc-state"));
        rc = vmc_qmp_cmd(q, "migrate-incoming", a, &ret, err);
        json_object_put(a);
        json_object_put(ret);
    }
    if (rc == 0) {
        rc = vmc_qmp_wait_migration(q, 120, st, sizeof(st), err);
    }
    if (rc == 0 && strcmp(st, "completed")) {
        rc = vmc_error_set(err, -EIO, "the state of instant template '%s' "
                           "did not load (migration %s; QEMU's log says "
                           "why)", r->in->template_name, st);
    }
    return rc;
}

/* Restore an instant clone: capability, state, resume, NICs. */
static int
restore(struct inst_run *r)
{
    struct vmc_error err = { 0 };
    struct vmc_qmp *q = NULL;
    struct json_object *ret = NULL;
    size_t i;
    int rc = vmc_qmp_open(r->qmp, 60, r->pid, &q, &err);

    if (rc < 0) {
        return cli_error_lib(&err, rc);
    }
    inst_trace("qmp-ready");
    rc = restore_checks(r, q, &err);
    inst_trace("version-machine-checked");
    if (rc) {
        vmc_qmp_close(q);
        return rc;
    }
    rc = ignore_shared(q, true, &err);
    if (rc == 0) {
        rc = load_state(r, q, &err);
    }
    inst_trace("state-loaded");
    if (rc == 0) {
        rc = vmc_qmp_cmd(q, "cont", NULL, &ret, &err);
        json_object_put(ret);
        r->resumed = true;      /* "cont" may have run even if it failed */
    }
    inst_trace("resumed");
    for (i = 0; rc == 0 && i < r->nmacs; i++) {
        rc = hot_add_nic(q, i, r->macs[i], strstr(r->in->machine, "q35"),
                         &err);
    }
    inst_trace("nics-added");
    vmc_qmp_close(q);
    if (rc < 0) {
        return cli_error_lib(&err, rc);
    }
    if (!r->quiet) {
        fprintf(stderr, CLI_NAME ": VM '%s' restored from instant template "
                "'%s' in %.3f s\n", r->vm, r->in->template_name,
                cli_mono_s() - r->t0);
    }
    return 0;
}

int
inst_after_spawn(struct inst_run *r, pid_t pid, char *const *argv)
{
    r->pid = pid;
    if (r->in) {
        return restore(r);
    }
    if (r->freezable) {
        return write_record(r, pid, argv);
    }
    return 0;
}

void
inst_cleanup(struct inst_run *r, bool dry_run)
{
    vmc_instant_release(r->in);
    if (dry_run) {
        return;
    }
    if (r->freezable) {
        unlink(r->ram);         /* gone already when it was frozen */
        unlink(r->record);
    }
    if (r->qmp[0]) {
        unlink(r->qmp);
    }
}

/* ------------------------------------------------------------ freeze */

/* Stop the guest, save its device state to @state (x-ignore-shared: the
 * RAM stays in its file) through a descriptor passed to QEMU (no shell),
 * move the RAM file to @ram, and quit QEMU. */
static int
freeze_qemu(struct vmc_qmp *q, const char *ram_now, const char *ram,
            const char *state, struct vmc_error *err)
{
    struct json_object *a, *ret = NULL;
    char st[64] = "";
    double deadline = cli_mono_s() + 300;
    int fd = open(state, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int r = fd < 0 ? vmc_error_set(err, -errno, "cannot create the state "
                                   "file '%s': %s", state, strerror(errno))
                   : vmc_qmp_cmd(q, "stop", NULL, &ret, err);

    json_object_put(ret);
    if (r == 0) {
        r = ignore_shared(q, false, err);
    }
    if (r == 0) {
        a = args1("fdname", json_object_new_string("vmc-state"));
        ret = NULL;
        r = vmc_qmp_cmd_fd(q, "getfd", a, fd, &ret, err);
        json_object_put(a);
        json_object_put(ret);
    }
    if (r == 0) {
        a = args1("uri", json_object_new_string("fd:vmc-state"));
        ret = NULL;
        r = vmc_qmp_cmd(q, "migrate", a, &ret, err);
        json_object_put(a);
        json_object_put(ret);
    }
    while (r == 0 && strcmp(st, "completed")) {
        ret = NULL;
        r = vmc_qmp_cmd(q, "query-migrate", NULL, &ret, err);
        snprintf(st, sizeof(st), "%s", r == 0 ? json_object_get_string(
                     json_object_object_get(ret, "status")) : "");
        if (r == 0 && (!strcmp(st, "failed") || !strcmp(st, "cancelled") ||
                       cli_mono_s() > deadline)) {
            r = vmc_error_set(err, -EIO, "saving the device state failed "
                              "(%s): %s", st, json_object_get_string(
                                  json_object_object_get(ret,
                                                         "error-desc")));
        }
        json_object_put(ret);
        if (r == 0 && strcmp(st, "completed")) {
            usleep(10000);
        }
    }
    if (r == 0 && fsync(fd) < 0) {
        r = vmc_error_set(err, -errno, "cannot sync the state file '%s': "
                          "%s", state, strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
        if (r < 0) {
            unlink(state);      /* ours: made by the open above */
        }
    }
    if (r == 0 && rename(ram_now, ram) < 0) {
        r = vmc_error_set(err, -errno, "cannot rename the RAM file '%s': %s",
                          ram_now, strerror(errno));
        unlink(state);          /* ours, complete but of no use */
    }
    if (r < 0) {
        struct vmc_error e2 = { 0 };

        ret = NULL;
        vmc_qmp_cmd(q, "cont", NULL, &ret, &e2);   /* it runs on */
        json_object_put(ret);
        return r;
    }
    r = vmc_qmp_cmd(q, "quit", NULL, &ret, err);
    json_object_put(ret);
    if (r == 0 || r == -EPIPE) {
        r = vmc_qmp_wait_closed(q, 60);
    }
    return r < 0 ? vmc_error_set(err, r, "QEMU did not quit: %s",
                                 strerror(-r)) : 0;
}

/* Read the record of VM @uuid's freezable run; the refusal when none. */
static int
read_record(struct catcli *c, const char *home, const char *vm,
            const char *uuid, struct json_object **out)
{
    char path[PATH_MAX];
    struct json_object *o;
    pid_t pid;

    o = pathf(path, sizeof(path), "%s/" INST_RUN "/%s.json", home, uuid)
        ? NULL : json_object_from_file(path);
    pid = o ? (pid_t)json_object_get_int64(json_object_object_get(o, "pid"))
            : 0;
    if (!o || pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH)) {
        json_object_put(o);
        (void)c;
        return catcli_error(CLI_EXIT_CONFLICT, "VM '%s' is not running "
                            "freezable: only a VM started with 'vm-clone "
                            "start %s --freezable' (guest RAM in a shared "
                            "file, a QMP socket of vm-clone's) can be "
                            "frozen", vm, vm);
    }
    *out = o;
    return 0;
}

static const char *
jget(struct json_object *o, const char *k)
{
    return json_object_get_string(json_object_object_get(o, k));
}

/* Wait (60 s at most) until process @pid is gone: false if it is not. */
static bool
wait_gone(pid_t pid)
{
    double deadline = cli_mono_s() + 60;

    while (pid > 0 && kill(pid, 0) == 0) {
        if (cli_mono_s() > deadline) {
            return false;
        }
        usleep(10000);
    }
    return true;
}

int
inst_freeze(struct catcli *c, const char *vm, const char *name)
{
    struct vmc_error err = { 0 };
    struct vmc_instant in = { 0 };
    struct json_object *v = NULL, *rec = NULL;
    struct vmc_qmp *q = NULL;
    char home[PATH_MAX], ram[PATH_MAX], state[PATH_MAX], ver[256], mach[256];
    char **layers = NULL;
    size_t nlayers = 0, i;
    char *uuid = NULL, *dir = NULL;
    double t0 = cli_mono_s();
    int rc;

    rc = catcli_open_vm(c, vm, &v);
    if (rc) {
        return rc;
    }
    snprintf(home, sizeof(home), "%s", vmc_catalog_dir(c->cat));
    uuid = strdup(jget(v, "uuid") ? jget(v, "uuid") : "");
    json_object_put(v);
    /* what the catalog would refuse, before QEMU is stopped */
    rc = vmc_catalog_template_freeze_check(c->cat, name, vm, &err);
    if (rc < 0) {
        rc = catcli_fail(&err, rc);
        catcli_close(c);
        free(uuid);
        return rc;
    }
    catcli_close(c);        /* not held while QEMU saves */
    rc = read_record(c, home, vm, uuid, &rec);
    if (rc) {
        goto out;
    }
    dir = strdup(jget(rec, "ram"));
    *strrchr(dir, '/') = '\0';
    if (pathf(ram, sizeof(ram), "%s/vmclone-%s-%s.ram", dir, uuid, name) ||
        pathf(state, sizeof(state), "%s/instant", home)) {
        rc = cli_error("the path of the frozen files is too long");
        goto out;
    }
    mkdir(state, 0700);
    if (pathf(state, sizeof(state), "%s/instant/%s-%s.state", home, name,
              uuid) || access(ram, F_OK) == 0 || access(state, F_OK) == 0) {
        rc = catcli_error(CLI_EXIT_CONFLICT, "'%s' or '%s' exists: a template "
                          "'%s' was frozen from VM '%s' before", ram, state,
                          name, vm);
        goto out;
    }
    rc = vmc_qmp_open(jget(rec, "qmp"), 30, 0, &q, &err);
    if (rc == 0) {
        rc = qemu_version(q, ver, sizeof(ver), &err);
    }
    if (rc == 0) {
        rc = qemu_machine(q, jget(rec, "machine"), mach, sizeof(mach), &err);
    }
    if (rc == 0) {
        rc = freeze_qemu(q, jget(rec, "ram"), ram, state, &err);
    }
    vmc_qmp_close(q);
    if (rc < 0) {
        rc = cli_error_lib(&err, rc);
        goto out;
    }
    if (!wait_gone((pid_t)json_object_get_int64(
                       json_object_object_get(rec, "pid"))) ||
        !wait_gone((pid_t)json_object_get_int64(
                       json_object_object_get(rec, "starter")))) {
        rc = catcli_error(CLI_EXIT_BUSY, "QEMU or the start of VM '%s' did "
                          "not exit within 60 s of the freeze; its disks are "
                          "not frozen", vm);
        unlink(ram);
        unlink(state);
        goto out;
    }
    if (chmod(ram, 0444) < 0 || chmod(state, 0444) < 0) {
        rc = cli_error("cannot make the frozen files read-only: %s",
                       strerror(errno));
        goto out;
    }
    in.qemu_version = ver;
    in.machine = mach;
    in.devices = (char *)jget(rec, "devices");
    in.cpus = json_object_get_int(json_object_object_get(rec, "cpus"));
    in.memory_mb = json_object_get_int(json_object_object_get(rec,
                                                              "memory_mb"));
    in.kernel = (char *)jget(rec, "kernel");
    in.initrd = (char *)jget(rec, "initrd");
    in.append = (char *)jget(rec, "append");
    rc = vmc_instant_file_record(ram, &in.ram, &err);
    if (rc == 0) {
        rc = vmc_instant_file_record(state, &in.state, &err);
    }
    if (rc == 0) {
        rc = catcli_open(c, 0);
        rc = rc ? -EIO : 0;
    }
    if (rc == 0) {
        rc = vmc_catalog_template_freeze(c->cat, name, vm, &in, &layers,
                                         &nlayers, &err);
        if (rc < 0) {
            rc = catcli_fail(&err, rc);
        }
        catcli_close(c);
    } else if (rc < 0) {
        rc = cli_error_lib(&err, rc);
    }
    if (rc) {
        unlink(ram);
        unlink(state);
        goto out;
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();
        struct json_object *disks = json_object_new_array();

        cli_json_add_str(o, "template", name);
        cli_json_add_str(o, "vm", vm);
        cli_json_add_str(o, "ram_file", ram);
        cli_json_add_str(o, "state_file", state);
        for (i = 0; i < nlayers; i++) {
            json_object_array_add(disks, json_object_new_string(layers[i]));
        }
        json_object_object_add(o, "disk_layers", disks);
        cli_json_add_str(o, "qemu_version", ver);
        cli_json_add_str(o, "machine", mach);
        cli_json_add_u64(o, "state_bytes", (uint64_t)in.state.size);
        catcli_json_done(o);
    } else if (!c->quiet) {
        printf("Instant template '%s' frozen from VM '%s' in %.2f s: disk "
               "%s%s (in place), RAM %s, state %s (%lld bytes), QEMU %s, "
               "machine %s\n", name, vm, cli_mono_s() - t0, layers[0],
               nlayers > 1 ? " ..." : "", ram, state,
               (long long)in.state.size, ver, mach);
    }
out:
    for (i = 0; i < nlayers; i++) {
        free(layers[i]);
    }
    free(layers);
    free(in.ram.path);
    free(in.ram.sha256);
    free(in.state.path);
    free(in.state.sha256);
    json_object_put(rec);
    free(dir);
    free(uuid);
    return rc;
}
