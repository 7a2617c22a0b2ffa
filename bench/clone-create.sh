#!/bin/bash
# clone-create: time to create one linked clone (create -b -F), ours vs
# qemu-img, interleaved; plus the process floors for scale.
. "$(dirname "$0")/common.sh"
make_base
$AB --rounds $((ROUNDS * 6)) --title "linked clone creation" \
    "qemu-img create -b=qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 q.qcow2::rm -f q.qcow2" \
    "vm-clone img create -b=$VMC img create -f qcow2 -b base.qcow2 -F qcow2 o.qcow2 >/dev/null::rm -f o.qcow2" \
    "qemu-img --version=qemu-img --version" \
    "true (process floor)=true"
