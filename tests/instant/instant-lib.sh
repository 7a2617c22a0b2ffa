# tests/instant/instant-lib.sh - helpers of the instant-clone tests
# (issue 16); sourced after tests/lib.sh. A store in $T/home, QEMU under
# TCG (/dev/kvm hangs on the test machines), runs in the background.

requires qemu-system-x86_64 --version
requires mke2fs -V
requires sqlite3 --version

export VMCLONE_HOME=$T/home
export TMPDIR=$T/tmp
unset XDG_RUNTIME_DIR
mkdir -p "$TMPDIR" "$T/mem"
# the RAM files of this test's templates: in its scratch directory, so
# that nothing is left in /dev/shm whatever happens
MEMDIR=$T/mem

# inst_store MEMORY_MiB: a store with template "tiny" (a 32 MiB ext4 disk
# holding hello.txt) and its clone "tv"
inst_store() {
    vmc init -q || fail "vm-clone init"
    mkdir -p rootfs
    echo "hello from the base" > rootfs/hello.txt
    mke2fs -q -t ext4 -d rootfs -F root.raw 32M || fail "mke2fs -d"
    ok vmc template import tiny root.raw --memory "$1" --cpus 1 -q
    ok vmc clone tiny --name tv -q
}

# start_bg NAME VM ARGS...: "vm-clone start VM ARGS..." in the background
# (TCG, serial console to $T/NAME.log); its pid in $BG_PID, stderr in
# $T/NAME.err
start_bg() {
    local n=$1
    shift
    "$VMCLONE" start "$@" --accel tcg --serial "$T/$n.log" \
        < /dev/null > "$T/$n.out" 2> "$T/$n.err" &
    BG_PID=$!
    cleanup_fn "kill $BG_PID"
}

# wait_for FILE PATTERN SECONDS [PID]: until FILE matches (fails after
# SECONDS, or when PID exits first)
wait_for() {
    local i
    for i in $(seq 1 $(($3 * 10))); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then
            grep -q "$2" "$1" 2>/dev/null && return 0
            fail "waiting for '$2' in $1: the process exited ($(tail -3 "$1" 2>/dev/null))"
        fi
        sleep 0.1
    done
    fail "no '$2' in $1 after $3 s: $(tail -3 "$1" 2>/dev/null)"
}

# children PID: the pids of PID's children (and theirs), nearest first
children() {
    local c
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        echo "$c"
        children "$c"
    done
}

# stop_bg PID: SIGTERM to a background start, wait for it
stop_bg() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null || true
}

# frozen_files T: the RAM and state files of instant template T
frozen_files() {
    sqlite3 "$VMCLONE_HOME/catalog.db" "SELECT i.ram_file || ' ' || \
        i.state_file FROM instant_templates i JOIN templates t ON \
        t.id = i.template_id WHERE t.name = '$1'"
}

# start_freezable NAME VM: "vm-clone start VM --freezable" in the
# background (start_bg NAME), back once its run record is written and
# QEMU had half a second to settle; fails when no record comes in 30 s
start_freezable() {
    local i
    start_bg "$1" "$2" --freezable --memory-dir "$MEMDIR" --direct
    for i in $(seq 1 300); do
        ls "$VMCLONE_HOME"/run/instant/*.json > /dev/null 2>&1 && break
        sleep 0.1
    done
    ls "$VMCLONE_HOME"/run/instant/*.json > /dev/null 2>&1 ||
        fail "no record of the freezable run of $2: $(cat "$T/$1.err")"
    sleep 0.5
}
