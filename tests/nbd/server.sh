#!/bin/bash
# server: the life cycle of `vm-clone serve`.
#  - without --socket: a Unix socket in a fresh 0700 directory, socket
#    mode 0600, its URI printed; directory and socket removed at exit;
#  - --pid-file written once listening, removed at exit;
#  - SIGTERM and SIGINT: exit 0, and writes that were never flushed by the
#    client are durable and consistent (qemu-img check clean);
#  - a live socket is not stolen; a stale one is replaced;
#  - --max-connections: clients beyond the cap are closed at once;
#    --handshake-timeout drops a client that never negotiates;
#  - --export-name, and usage errors.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/nbd/nbd-lib.sh"
requires nbdsh_ --version
requires python3 --version

qemu-img create -q -f qcow2 img.qcow2 8M

# ---- default socket
export XDG_RUNTIME_DIR=$T/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
"$VMCLONE" serve --pid-file "$T/d.pid" img.qcow2 > d.out 2> d.err &
dpid=$!
cleanup_fn "kill $dpid"
for _ in $(seq 100); do [ -s d.pid ] && break; sleep 0.05; done
[ -s d.pid ] || fail "no pid file"
[ "$(cat d.pid)" = "$dpid" ] || fail "pid file holds $(cat d.pid), not $dpid"
u=$(head -1 d.out)
sock=${u#*socket=}
case $u in nbd+unix:///img.qcow2\?socket=$XDG_RUNTIME_DIR/vm-clone-serve.*/nbd.sock) ;;
    *) fail "unexpected URI '$u'" ;; esac
[ "$(stat -c %a "$(dirname "$sock")")" = 700 ] || fail "socket directory is not 0700"
[ "$(stat -c %a "$sock")" = 600 ] || fail "socket is not 0600: $(stat -c %a "$sock")"
nbdsh_ -u "$u" -c 'h.pwrite(b"D" * 65536, 1 << 20)' || fail "write"
kill -TERM "$dpid"
wait "$dpid" || fail "serve exited $? on SIGTERM"
[ ! -e "$sock" ] && [ ! -d "$(dirname "$sock")" ] || fail "socket or its directory left behind"
[ ! -e d.pid ] || fail "pid file left behind"
qemu_check img.qcow2
qemu-io -f qcow2 -c 'read -P 0x44 1M 64k' img.qcow2 >/dev/null || fail "unflushed write lost at SIGTERM"

# ---- SIGINT, with a client still connected and writing
serve s img.qcow2
nbdsh_ -u "$(uri s)" -c '
import os, time
h.pwrite(b"E" * 65536, 2 << 20)
os.kill(int(open("s.pid").read()), 2)
time.sleep(0.5)
' > /dev/null 2>&1
wait "${_srv_pid[s]}" || fail "serve exited $? on SIGINT"
qemu_check img.qcow2
qemu-io -f qcow2 -c 'read -P 0x45 2M 64k' img.qcow2 >/dev/null || fail "write lost at SIGINT"

# ---- sockets: live one refused, stale one replaced
serve s img.qcow2
qemu-img create -q -f qcow2 other.qcow2 1M
expect_rc 1 "$VMCLONE" serve --socket "$T/s.sock" other.qcow2 2> live.err
grep -qi 'already exists' live.err || fail "live socket: $(cat live.err)"
stop_server s
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/s.sock"
serve s img.qcow2
[ "$(nbdinfo --size "$(uri s)")" = $((8 << 20)) ] || fail "stale socket not replaced"
stop_server s
: > notasocket
expect_rc 1 "$VMCLONE" serve --socket "$T/notasocket" img.qcow2 2> file.err
[ -f notasocket ] || fail "a regular file was replaced by the socket"

# ---- connection cap and handshake timeout
serve s --max-connections 2 --handshake-timeout 1 --export-name disk0 img.qcow2
python3 - "$T/s.sock" <<'PY' || fail "cap/timeout behaviour"
import socket, sys, time
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); return s
a, b = conn(), conn()
assert len(a.recv(18)) == 18 and len(b.recv(18)) == 18
time.sleep(0.2)
c = conn()
assert c.recv(18) == b"", "third connection beyond the cap was not closed"
t0 = time.time()
assert a.recv(100) == b"", "idle client not dropped"
dt = time.time() - t0
assert 0.3 < dt < 4, "handshake timeout after %.1f s" % dt
PY
sleep 0.3
[ "$(nbdinfo --size "$(uri s disk0)")" = $((8 << 20)) ] || fail "--export-name"
[ "$(nbdinfo --size "$(uri s)")" = $((8 << 20)) ] || fail "default export with one target"
stop_server s

# ---- usage errors
expect_fail vmc serve
expect_fail vmc serve --export-name x img.qcow2 img.qcow2
expect_fail vmc serve --max-connections 0 img.qcow2
expect_fail vmc serve --socket "$T/x.sock" nonexistent.qcow2
expect_fail vmc serve --listen localhost img.qcow2
ok vmc serve --help
