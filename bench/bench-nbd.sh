#!/bin/bash
# bench-nbd: vm-clone serve vs qemu-nbd serving the same linked clone
# (1 GiB of random data in a qcow2 template + a qcow2 clone that owns
# 64 MiB of it), read-only, on Unix sockets, interleaved round by round:
#   - nbdcopy URI null:            (sequential, 4 connections if multi-conn)
#   - fio --ioengine=nbd 4 KiB random reads, iodepth 32, one connection
#     (qemu-img bench -d 32 when fio lacks the nbd engine)
#   - server CPU seconds per GiB copied (utime+stime from /proc/PID/stat)
#   - RSS of one server process exporting 1 vs 20 clones of the template
#     (each clone mapped and sampled), per extra clone; qemu-nbd serves one
#     image per process, so its figure is the RSS of one more process.
# Environment: BENCH_BUILD (build dir, default build), BENCH_ROUNDS (5),
# BENCH_DIR (scratch; default a fresh dir in /dev/shm, else $TMPDIR),
# BENCH_FIO_SECONDS (5).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$ROOT/${BENCH_BUILD:-build}" && pwd)
VMC=$BUILD/src/cli/vm-clone
ROUNDS=${BENCH_ROUNDS:-5}
FIO_SECONDS=${BENCH_FIO_SECONDS:-5}
for t in qemu-img qemu-io qemu-nbd nbdcopy nbdinfo python3; do
    command -v $t >/dev/null || { echo "bench-nbd: $t is not installed" >&2; exit 1; }
done
[ -x "$VMC" ] || { echo "bench-nbd: $VMC not built" >&2; exit 1; }
if [ -z "${BENCH_DIR:-}" ]; then
    parent=/dev/shm
    [ -d $parent ] && [ -w $parent ] || parent=${TMPDIR:-/tmp}
    BENCH_DIR=$(mktemp -d "$parent/vmc-bench-nbd.XXXXXX")
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"

if [ ! -f clone.qcow2 ]; then
    echo "making a 1 GiB template of random data and a linked clone in $BENCH_DIR" >&2
    head -c 1G /dev/urandom > base.raw
    qemu-img convert -f raw -O qcow2 base.raw base.qcow2
    rm -f base.raw
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 clone.qcow2
    cmds=()
    for i in $(seq 0 63); do
        cmds+=(-c "write -P $((i + 1)) $((i * 16 + 3))M 1M")
    done
    qemu-io -f qcow2 "${cmds[@]}" clone.qcow2 >/dev/null
    for i in $(seq 1 20); do
        qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 r$i.qcow2
        qemu-io -f qcow2 -c "write -P $i $((i * 7))M 1M" r$i.qcow2 >/dev/null
    done
fi

fio_has_nbd=0
if command -v fio >/dev/null && fio --enghelp 2>/dev/null | grep -qw nbd; then
    fio_has_nbd=1
fi

VMC="$VMC" ROUNDS=$ROUNDS FIO_SECONDS=$FIO_SECONDS FIO_NBD=$fio_has_nbd \
    exec python3 - <<'PY'
import json, os, statistics, subprocess, sys, time

VMC, ROUNDS = os.environ["VMC"], int(os.environ["ROUNDS"])
FIO_SECONDS, FIO_NBD = int(os.environ["FIO_SECONDS"]), os.environ["FIO_NBD"] == "1"
HERE = os.getcwd()
TICK = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def rss_kib(pid):
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
    return 0


def wait_socket(path, proc):
    for _ in range(400):
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            sys.exit("server exited: %s" % proc.args)
        time.sleep(0.025)
    sys.exit("server did not start: %s" % proc.args)


def start(kind, name, images):
    sock = os.path.join(HERE, name + ".sock")
    if os.path.exists(sock):
        os.unlink(sock)
    if kind == "vm-clone":
        cmd = [VMC, "serve", "--readonly", "--socket", sock] + images
    else:
        cmd = ["qemu-nbd", "-f", "qcow2", "-r", "-t", "-e", "32", "-k", sock,
               "-x", os.path.basename(images[0]), images[0]]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_socket(sock, p)
    return p, sock


def stop(p):
    p.terminate()
    p.wait(30)


def uri(sock, export):
    return "nbd+unix:///%s?socket=%s" % (export, sock)


def run(cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr.decode()[-2000:]))
    return dt, r.stdout.decode()


def randread(u):
    if FIO_NBD:
        _, out = run(["fio", "--name=rnd", "--ioengine=nbd", "--uri=" + u,
                      "--rw=randread", "--bs=4k", "--iodepth=32", "--size=1g",
                      "--time_based", "--runtime=%d" % FIO_SECONDS,
                      "--output-format=json"])
        return json.loads(out[out.index("{"):])["jobs"][0]["read"]["iops"]
    n = 100000
    dt, _ = run(["qemu-img", "bench", "-f", "raw", "-c", str(n), "-s", "4k",
                 "-S", "65540096", "-d", "32", u])
    return n / dt


servers = {k: start(k, k, ["clone.qcow2"]) for k in ("vm-clone", "qemu-nbd")}
res = {k: {"copy": [], "cpu": [], "iops": []} for k in servers}
# warm-up (page cache, server caches)
for k, (p, s) in servers.items():
    run(["nbdcopy", uri(s, "clone.qcow2"), "null:"])
order = list(servers)
for r in range(ROUNDS):
    for k in order:
        p, s = servers[k]
        c0 = cpu_seconds(p.pid)
        dt, _ = run(["nbdcopy", uri(s, "clone.qcow2"), "null:"])
        res[k]["copy"].append(dt)
        res[k]["cpu"].append(cpu_seconds(p.pid) - c0)
    for k in order:
        p, s = servers[k]
        res[k]["iops"].append(randread(uri(s, "clone.qcow2")))
    order.reverse()
for k, (p, s) in servers.items():
    stop(p)

med = statistics.median
print("\nNBD serving a linked clone (1 GiB), %d interleaved rounds, medians" % ROUNDS)
print("%-10s %14s %14s %16s %10s" % ("server", "nbdcopy s", "MiB/s", "server CPU s/GiB",
                                      "4K IOPS"))
row = {}
for k in res:
    t = med(res[k]["copy"])
    row[k] = (t, 1024 / t, med(res[k]["cpu"]), med(res[k]["iops"]))
    print("%-10s %14.3f %14.0f %16.3f %10.0f" % ((k,) + row[k]))
a, b = row["vm-clone"], row["qemu-nbd"]
print("%-10s %14s %14.2f %16.2f %10.2f" % ("ratio", "", a[1] / b[1], a[2] / b[2], a[3] / b[3]))
print("(ratio = vm-clone / qemu-nbd: throughput and IOPS higher is better, CPU lower is better)")
print("random reads: %s" % ("fio --ioengine=nbd, bs=4k, iodepth=32, %d s" % FIO_SECONDS
                            if FIO_NBD else "qemu-img bench -d 32 -s 4k"))


# ---- RSS: one process, 1 vs 20 clones (each mapped and sampled)
def touch(s, export):
    run(["nbdinfo", "--map", uri(s, export)])
    subprocess.run(["qemu-img", "bench", "-f", "raw", "-c", "2000", "-s", "4k",
                    "-S", "536543232", "-d", "8", uri(s, export)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def rss_with(n):
    imgs = ["r%d.qcow2" % i for i in range(1, n + 1)]
    p, s = start("vm-clone", "rss%d" % n, imgs)
    for i in imgs:
        touch(s, i)
    kib = rss_kib(p.pid)
    stop(p)
    return kib


rss1, rss20 = rss_with(1), rss_with(20)
p, s = start("qemu-nbd", "q1", ["r1.qcow2"])
touch(s, "r1.qcow2")
q1 = rss_kib(p.pid)
stop(p)
print("\nRSS, clones of one template exported by one vm-clone serve (each mapped, 2000 4K reads)")
print("  1 clone : %7.1f MiB" % (rss1 / 1024))
print("  20 clones: %7.1f MiB   => +%.2f MiB per extra clone" % (rss20 / 1024, (rss20 - rss1) / 19 / 1024))
print("  qemu-nbd, 1 clone per process: %.1f MiB per process" % (q1 / 1024))
PY
