#!/bin/bash
# layers: flatten, relink, consolidate (each method) and du keep the guest
# view (qemu-img compare against a raw copy taken before) and leave every
# image check-clean; relink frees space; du adds up.
. "$(dirname "$0")/../lib.sh"
requires qemu-img --version
requires qemu-io --version
requires python3 -c 'import json'

jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0][sys.argv[1]] if isinstance(d,list) else d[sys.argv[1]])' "$1"; }
check_all() {
    local f
    for f in "$@"; do qemu_check "$f"; done
}

qemu-img create -q -f qcow2 tmpl.qcow2 48M
qemu-io -f qcow2 -c 'write -P 0xa1 0 24M' -c 'write -P 0xa2 30M 4M' tmpl.qcow2 >/dev/null

# --- flatten
ok vmc img clone --linked -q tmpl.qcow2 c.qcow2
qemu-io -f qcow2 -c 'write -P 0xc1 1M 4k' -c 'write -z 2M 128k' -c 'write -P 0xc2 40M 1M' c.qcow2 >/dev/null
raw_of c.qcow2 c.raw
ok vmc img flatten -q c.qcow2
qemu_same c.qcow2 c.raw; qemu_check c.qcow2
qemu-img info c.qcow2 | grep -q '^backing file' && fail "flatten left a backing file"
ok vmc img flatten -q c.qcow2     # nothing to do: still fine
qemu_same c.qcow2 c.raw

# --- relink (the flattened clone back onto the template)
before=$(du -k c.qcow2 | cut -f1)
out=$(vmc img relink --json -b tmpl.qcow2 -F qcow2 c.qcow2) || fail "relink failed"
qemu_same c.qcow2 c.raw; qemu_check c.qcow2
qemu-img info c.qcow2 | grep -q '^backing file: tmpl.qcow2' || fail "relink did not link to the template"
after=$(du -k c.qcow2 | cut -f1)
[ "$after" -lt $((before / 4)) ] || fail "relink kept too much: $before KiB -> $after KiB"
freed=$(jget bytes-freed <<<"$out")
[ "$freed" -gt $((20 * 1024 * 1024)) ] || fail "relink reported $freed bytes freed"
kept=$(jget bytes-kept <<<"$out")
[ "$kept" -le $((2 * 1024 * 1024)) ] || fail "relink kept $kept bytes (expected ~1.2 MiB)"
# per-subcluster: a 4 KiB change keeps 4 KiB, not a cluster
qemu-img map --output=json c.qcow2 | python3 -c '
import json, sys
m = json.load(sys.stdin)
top = sum(e["length"] for e in m if e["depth"] == 0 and e["data"])
assert top <= 1024 * 1024 + 4096, top' || fail "relink did not keep only the differing subclusters"
# a template that differs in content: still the same guest view
qemu-img create -q -f qcow2 t2.qcow2 48M
qemu-io -f qcow2 -c 'write -P 0xa1 0 8M' -c 'write -P 0x99 8M 8M' t2.qcow2 >/dev/null
ok vmc img relink -q -b t2.qcow2 c.qcow2
qemu_same c.qcow2 c.raw; qemu_check c.qcow2
# --no-extended-l2: per cluster
ok vmc img flatten -q c.qcow2
ok vmc img relink -q --no-extended-l2 -b tmpl.qcow2 c.qcow2
qemu-img info c.qcow2 | grep -q 'extended l2: false' || fail "--no-extended-l2 ignored"
qemu_same c.qcow2 c.raw; qemu_check c.qcow2
# a raw full image onto a raw template
qemu-img convert -O raw tmpl.qcow2 tmpl.raw
cp c.raw full.raw
ok vmc img relink -q -b tmpl.raw -F raw full.raw
qemu-img info full.raw | grep -q 'file format: qcow2' || fail "relink of raw did not make a qcow2 overlay"
qemu_same full.raw c.raw; qemu_check full.raw
[ "$(stat -c %a full.raw)" = "$(stat -c %a c.raw)" ] || fail "relink changed the file mode"

# --- du
out=$(vmc img du --json c.qcow2 tmpl.qcow2) || fail "du failed"
python3 - "$out" <<'PY' || fail "du figures are inconsistent: $out"
import json, sys
c, t = json.loads(sys.argv[1])
assert c["virtual-size"] == 48 << 20 and c["depth"] == 2 and t["depth"] == 1
assert c["unique"] + c["shared"] + c["zero"] <= c["virtual-size"]
assert t["shared"] == 0 and t["flatten"] == 0 and t["unique"] == 28 << 20
assert c["shared"] > 20 << 20 and c["flatten"] >= c["shared"]
assert c["disk-size"] < t["disk-size"]
PY
ok vmc img du c.qcow2 tmpl.qcow2 > du.txt
grep -q 'c.qcow2' du.txt || fail "du human output lacks the image"

# --- consolidate: build base <- l1 <- l2 <- l3 <- top
mkchain() {
    rm -rf "$1"; mkdir "$1"
    ( cd "$1"
      qemu-img create -q -f qcow2 base.qcow2 32M
      qemu-io -f qcow2 -c 'write -P 0xaa 0 16M' base.qcow2 >/dev/null
      qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 l1.qcow2
      qemu-io -f qcow2 -c "write -P 1 0 $2" l1.qcow2 >/dev/null
      qemu-img create -q -f qcow2 -b l1.qcow2 -F qcow2 l2.qcow2
      qemu-io -f qcow2 -c 'write -P 2 4M 1M' -c 'write -z 6M 1M' l2.qcow2 >/dev/null
      qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 l3.qcow2 40M
      qemu-io -f qcow2 -c "write -P 3 5M $3" -c 'write -P 3 36M 64k' l3.qcow2 >/dev/null
      qemu-img create -q -f qcow2 -b l3.qcow2 -F qcow2 top.qcow2
      qemu-io -f qcow2 -c 'write -P 4 20M 1M' top.qcow2 >/dev/null )
}
chain_ok() {
    qemu_same "$1/top.qcow2" "$1.raw"
    check_all "$1"/*.qcow2
    qemu-img info --backing-chain "$1/top.qcow2" >/dev/null || fail "$1: chain broken"
}
for m in auto commit pull new-layer; do
    mkchain "k-$m" 8M 512k
    raw_of "k-$m/top.qcow2" "k-$m.raw"
    out=$(vmc img consolidate --json --method "$m" "k-$m/top.qcow2") || fail "consolidate --method $m failed"
    chain_ok "k-$m"
    n=$(qemu-img info --backing-chain "k-$m/top.qcow2" | grep -c '^image:')
    [ "$n" = 3 ] || fail "consolidate --method $m left $n layers"
    got=$(jget method <<<"$out")
    [ "$m" = auto ] && { [ "$got" = commit ] || fail "auto chose $got, expected commit (fewer bytes)"; }
    [ "$m" != auto ] && { [ "$got" = "$m" ] || fail "--method $m did $got"; }
done
# auto picks pull when the lower layers hold less
mkchain kp 512k 12M
raw_of kp/top.qcow2 kp.raw
out=$(vmc img consolidate --json kp/top.qcow2) || fail "consolidate failed"
[ "$(jget method <<<"$out")" = pull ] || fail "auto chose $(jget method <<<"$out"), expected pull"
chain_ok kp
# --keep: collapse l2..l3 above l1
mkchain kk 8M 512k
raw_of kk/top.qcow2 kk.raw
ok vmc img consolidate -q --keep l1.qcow2 kk/top.qcow2
chain_ok kk
n=$(qemu-img info --backing-chain kk/top.qcow2 | grep -c '^image:')
[ "$n" = 4 ] || fail "--keep l1 left $n layers, expected 4"
# nothing to do
ok vmc img consolidate kk/top.qcow2 > out.txt
chain_ok kk
# another image uses l2: auto must not write into l2..l3 (commit) and
# the other image's view stays the same
mkchain ku 8M 512k
qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 ku/other.qcow2
raw_of ku/top.qcow2 ku.raw
raw_of ku/other.qcow2 ku-other.raw
out=$(vmc img consolidate --json ku/top.qcow2) || fail "consolidate with a user failed"
[ "$(jget method <<<"$out")" != commit ] || fail "committed into a layer with another user"
chain_ok ku
qemu_same ku/other.qcow2 ku-other.raw
note ok
