#!/bin/bash
# qemu-shim.sh - stands in for `vm-clone` by forwarding `img VERB ...` to
# qemu-img (and `img io` to qemu-io).  Used only to validate the interop
# tests themselves: with QEMU as the implementation under test every
# interop test must pass, except assertions about behaviour where we are
# deliberately stricter than QEMU (they are marked "stricter than QEMU").
#   VMCLONE=$PWD/tests/helpers/qemu-shim.sh bash tests/interop/map.sh
[ "$1" = img ] || { echo "qemu-shim: only 'img' is supported" >&2; exit 2; }
shift
verb=$1
shift
case $verb in
io) exec qemu-io "$@" 1>&2 ;;   # failures then land on stderr, as ours
*) exec qemu-img "$verb" "$@" ;;
esac
