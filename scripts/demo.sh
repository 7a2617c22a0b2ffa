#!/bin/bash
# demo.sh - the main job in miniature: a template image, a linked clone
# and a full clone made with `vm-clone img`, a write into the clone, and
# what info/map/check say about them; then the seed's story on a store:
# import the template, 20 linked clones in parallel, one full thick
# clone, `vm-clone tree`.
#   usage: scripts/demo.sh [path/to/vm-clone] [workdir]
set -eu
VMC=$(realpath "${1:-build/src/cli/vm-clone}")
dir=$(realpath -m "${2:-$(dirname "$VMC")/../../demo}")
[ -x "$VMC" ] || { echo "demo: $VMC not built (run 'make run')" >&2; exit 1; }
rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"

run() { printf '\n$ %s\n' "$*"; "$@"; }

echo "== a 1 GiB template with 16 MiB of data"
run "$VMC" img create -f qcow2 template.qcow2 1G
run "$VMC" img io -f qcow2 template.qcow2 -c 'write -P 0x5a 0 8M' -c 'write -P 0xa5 512M 8M'

echo; echo "== a linked clone: metadata only, reads fall through to the template"
run "$VMC" img create -f qcow2 -b template.qcow2 -F qcow2 clone.qcow2
run "$VMC" img io -f qcow2 clone.qcow2 -c 'write -P 0xc1 1M 64k' -c 'write -z 4M 1M' \
    -c 'read -P 0x5a 0 1M' -c 'read -P 0xc1 1M 64k' -c 'read -P 0 4M 1M' -c 'flush'
run "$VMC" img info clone.qcow2
run "$VMC" img map clone.qcow2
run "$VMC" img check clone.qcow2

echo; echo "== a full clone of the linked clone: standalone, same content"
run "$VMC" img convert -f qcow2 -O qcow2 clone.qcow2 full.qcow2
run "$VMC" img info full.qcow2
run "$VMC" img compare -f qcow2 -F qcow2 clone.qcow2 full.qcow2
run "$VMC" img check full.qcow2

echo; echo "== sizes on disk"
run ls -ls template.qcow2 clone.qcow2 full.qcow2
if command -v qemu-img >/dev/null; then
    echo; echo "== QEMU agrees"
    run qemu-img check clone.qcow2
    run qemu-img compare clone.qcow2 full.qcow2
fi
echo; echo "== the seed's story on a store (catalog + pools) in $dir/store"
export VMCLONE_HOME=$dir/store
run "$VMC" init
run "$VMC" template import TemplateVM template.qcow2 --cpus 2 --memory 2048
run "$VMC" config set default-template TemplateVM
printf '\n$ for i in $(seq 1 20); do vm-clone --linked --name unit-test-$i & done; wait\n'
for i in $(seq 1 20); do "$VMC" --linked -q --name "unit-test-$i" & done
wait
run "$VMC" --full --thick --name ProdServer-20261122
run "$VMC" list
run "$VMC" tree
run "$VMC" fsck
echo; echo "demo files are in $dir"
