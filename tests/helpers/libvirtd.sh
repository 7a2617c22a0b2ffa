# tests/helpers/libvirtd.sh - a private libvirtd for one test (sourced
# after tests/lib.sh), as /work/shared/notes/services.md describes: its
# configuration, sockets, state and logs in $T/lv, bind-mounted on the
# system paths in a private mount namespace, a Unix socket only.
#
#   libvirtd_start      start it (skips the test, 77, when libvirtd or
#                       the QEMU driver is missing); sets LV_URI, LV_PID
#   lv_virsh ARGS...    virsh on it
#
# It is stopped on every exit path of the test (lib.sh's cleanup hooks):
# every running domain destroyed, what $LV/run/qemu/*.pid names killed,
# then the daemon, by the PID this helper started.

LV=
LV_URI=
LV_PID=

lv_virsh() {
    virsh -q -c "$LV_URI" "$@"
}

libvirtd_stop() {
    local d p i
    [ -n "$LV_PID" ] || return 0
    for d in $(virsh -q -c "$LV_URI" list --name 2>/dev/null); do
        virsh -q -c "$LV_URI" destroy "$d" > /dev/null 2>&1
    done
    for p in "$LV"/run/qemu/*.pid; do
        [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
    done
    kill "$LV_PID" 2>/dev/null
    for i in $(seq 50); do
        kill -0 "$LV_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$LV_PID" 2>/dev/null
    wait "$LV_PID" 2>/dev/null
    LV_PID=
}

libvirtd_start() {
    local bin i
    bin=$(command -v libvirtd || echo /usr/sbin/libvirtd)
    [ -x "$bin" ] || skip "libvirtd is not installed (libvirt-daemon; scripts/install-deps.sh)"
    ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so > /dev/null 2>&1 ||
        skip "the libvirt QEMU driver is not installed (libvirt-daemon-driver-qemu)"
    requires virsh --version
    requires unshare --version
    [ "$(id -u)" = 0 ] || skip "a private system libvirtd needs root here"
    # the QEMU driver looks this user up first (libvirt-daemon-system makes it)
    id libvirt-qemu > /dev/null 2>&1 ||
        useradd --system --no-create-home --shell /usr/sbin/nologin libvirt-qemu ||
        fail "cannot create the user libvirt-qemu"
    LV=$T/lv
    mkdir -p "$LV"/{etc,run,lib,log,cache,sock} || fail "mkdir $LV"
    cat > "$LV/etc/libvirtd.conf" <<CONF
unix_sock_dir = "$LV/sock"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:$LV/libvirtd.log"
CONF
    cat > "$LV/etc/qemu.conf" <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
    mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt
    unshare -m --propagation private sh -c '
        mount --bind "$1/etc" /etc/libvirt &&
        mount --bind "$1/run" /run/libvirt &&
        mount --bind "$1/lib" /var/lib/libvirt &&
        mount --bind "$1/log" /var/log/libvirt &&
        mount --bind "$1/cache" /var/cache/libvirt &&
        exec "$2" -f "$1/etc/libvirtd.conf" -p "$1/libvirtd.pid"' \
        sh "$LV" "$bin" > "$LV/stdout.log" 2>&1 &
    LV_PID=$!
    cleanup_fn libvirtd_stop
    LV_URI="qemu:///system?socket=$LV/sock/libvirt-sock"
    for i in $(seq 300); do
        [ -S "$LV/sock/libvirt-sock" ] && break
        kill -0 "$LV_PID" 2>/dev/null ||
            fail "libvirtd exited: $(tail -5 "$LV/stdout.log" "$LV/libvirtd.log" 2>/dev/null)"
        sleep 0.1
    done
    [ -S "$LV/sock/libvirt-sock" ] || fail "libvirtd did not listen in 30 s"
    virsh -q -c "$LV_URI" version > /dev/null 2>&1 ||
        fail "virsh cannot reach the private libvirtd: $(tail -5 "$LV/libvirtd.log")"
}
