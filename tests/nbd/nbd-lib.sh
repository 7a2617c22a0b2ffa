# tests/nbd/nbd-lib.sh - helpers for the NBD server tests; sourced after
# tests/lib.sh.
#
#   serve NAME [SERVE ARGS...] TARGET...
#       start `vm-clone serve` in the background on $T/NAME.sock, wait
#       until it listens (pid file), record its pid in $T/NAME.pid;
#       the server is stopped (SIGTERM) when the test exits.
#   stop_server NAME     SIGTERM, wait; fails if the exit status is not 0
#                        or the server printed a sanitizer report
#   uri NAME [EXPORT]    nbd+unix URI of EXPORT (default: "") on NAME
#   nbdsh_ ARGS...       nbdsh from /usr/bin (pyenv's python3 lacks nbd)

requires nbdinfo --version
requires qemu-img --version

NBDSH_PY=/usr/bin/python3
nbdsh_() {
    PATH=/usr/bin:$PATH nbdsh "$@"
}

declare -A _srv_pid

serve() {
    local name=$1 i
    shift
    rm -f "$T/$name.pid"
    "$VMCLONE" serve --socket "$T/$name.sock" --pid-file "$T/$name.pid" \
        "$@" > "$T/$name.out" 2> "$T/$name.err" &
    _srv_pid[$name]=$!
    cleanup_fn "kill -TERM ${_srv_pid[$name]}; wait ${_srv_pid[$name]}"
    for i in $(seq 200); do
        [ -s "$T/$name.pid" ] && return 0
        if ! kill -0 "${_srv_pid[$name]}" 2>/dev/null; then
            cat "$T/$name.err" >&2
            fail "vm-clone serve $* exited early"
        fi
        sleep 0.05
    done
    fail "vm-clone serve $* did not start"
}

# server_alive NAME: the server process still runs
server_alive() {
    kill -0 "${_srv_pid[$1]}" 2>/dev/null || fail "server $1 died: $(tail -5 "$T/$1.err")"
}

stop_server() {
    local name=$1 rc=0
    kill -TERM "${_srv_pid[$name]}" 2>/dev/null || fail "server $name is not running"
    wait "${_srv_pid[$name]}" || rc=$?
    if grep -qE 'Sanitizer|runtime error:' "$T/$name.err"; then
        cat "$T/$name.err" >&2
        fail "sanitizer report from server $name"
    fi
    [ "$rc" = 0 ] || { cat "$T/$name.err" >&2; fail "server $name exited $rc"; }
    [ ! -e "$T/$name.pid" ] || fail "server $name left its pid file"
    [ ! -e "$T/$name.sock" ] || fail "server $name left its socket"
}

uri() {
    echo "nbd+unix:///${2:-}?socket=$T/$1.sock"
}
