#!/bin/bash
# bench-clone-ops: the clone operations of issue 3, ours vs the peer in
# the same run, interleaved (abtime.py), ratios vs the first command:
#   1. one linked clone (whole process) vs qemu-img create -b
#   2. 100 linked clones (--count 100) vs 100 x qemu-img create -b
#   3. full clone of the base (hot cache) vs qemu-img convert and cat;
#      ours is durable (fdatasync before the rename), qemu-img convert
#      writes its target with cache=unsafe (no data sync) and cat does not
#      sync either, so both are also shown followed by `sync -d`
#   4. full clone on XFS reflink=1 (loop-mounted; root only) vs
#      cp --reflink=always and qemu-img convert
#   5. 4 KiB first writes into a fresh linked clone at qd16, ours (default
#      clone: extended L2, 128k) vs qemu-img bench on a qemu-made default
#      overlay; and the space each clone takes afterwards
#   6. commit of a 256 MiB overlay (and consolidate) vs qemu-img commit
#   7. rebase / relink onto a changed base vs qemu-img rebase (safe mode)
# BENCH_FIRST_WRITES (8192) sets the count of row 5.
. "$(dirname "$0")/common.sh"
make_base
cat base.qcow2 > /dev/null
Q="qemu-img"

$AB --rounds $((ROUNDS * 6)) --title "one linked clone (whole CLI process)" \
    "qemu-img create -b=$Q create -q -f qcow2 -b base.qcow2 -F qcow2 q.qcow2::rm -f q.qcow2" \
    "vm-clone img clone --linked=$VMC img clone --linked -q base.qcow2 o.qcow2::rm -f o.qcow2"
rm -f q.qcow2 o.qcow2

$AB --title "100 linked clones" \
    "100 x qemu-img create -b=sh -c 'for i in \$(seq 1 100); do $Q create -q -f qcow2 -b ../base.qcow2 -F qcow2 m/q\$i.qcow2; done'::rm -rf m && mkdir m" \
    "vm-clone --count 100=$VMC img clone --linked -q base.qcow2 'm/o%d.qcow2' --count 100::rm -rf m && mkdir m"
rm -rf m

$AB --title "full clone, ${EXTENTS}x${EXTENT_MB} MiB data / ${VSIZE_MB} MiB virtual, hot cache" \
    "qemu-img convert=$Q convert -f qcow2 -O qcow2 base.qcow2 q.qcow2::rm -f q.qcow2" \
    "cat > file=sh -c 'cat base.qcow2 > c.qcow2'::rm -f c.qcow2" \
    "qemu-img convert + sync -d=sh -c '$Q convert -f qcow2 -O qcow2 base.qcow2 s.qcow2 && sync -d s.qcow2'::rm -f s.qcow2" \
    "cat > file + sync -d=sh -c 'cat base.qcow2 > d.qcow2 && sync -d d.qcow2'::rm -f d.qcow2" \
    "vm-clone clone --full (auto)=$VMC img clone --full -q base.qcow2 o.qcow2::rm -f o.qcow2" \
    "vm-clone clone --full --no-offload=$VMC img clone --full -q --no-offload base.qcow2 g.qcow2::rm -f g.qcow2"
echo "method chosen: $($VMC img clone --full --json --force base.qcow2 o.qcow2 | grep method)"
$Q compare -q base.qcow2 o.qcow2 && $Q compare -q base.qcow2 g.qcow2 ||
    { echo "a full clone differs from the base!" >&2; exit 1; }
rm -f q.qcow2 c.qcow2 o.qcow2 g.qcow2 s.qcow2 d.qcow2

if [ "$(id -u)" = 0 ] && command -v mkfs.xfs >/dev/null; then
    truncate -s 4G xfs.img
    if mkfs.xfs -q -f -m reflink=1 xfs.img >/dev/null 2>&1 && mkdir -p xfs &&
       mount -o loop xfs.img xfs 2>/dev/null; then
        cp base.qcow2 xfs/base.qcow2 && sync
        $AB --title "full clone on XFS reflink=1 (loop-mounted)" \
            "cp reflink=cp --reflink=always xfs/base.qcow2 xfs/c.qcow2::rm -f xfs/c.qcow2" \
            "vm-clone clone --full=$VMC img clone --full -q xfs/base.qcow2 xfs/o.qcow2::rm -f xfs/o.qcow2" \
            "qemu-img convert=$Q convert -f qcow2 -O qcow2 xfs/base.qcow2 xfs/q.qcow2::rm -f xfs/q.qcow2"
        echo "method chosen: $($VMC img clone --full --json --force xfs/base.qcow2 xfs/o.qcow2 | grep method)"
        umount xfs
    else
        echo "(XFS reflink row skipped: mkfs.xfs or the loop mount failed)"
    fi
    rm -f xfs.img
else
    echo "(XFS reflink row skipped: needs root and mkfs.xfs)"
fi

N=${BENCH_FIRST_WRITES:-8192}
$AB --title "first writes into a fresh linked clone: $N x 4 KiB, step 128k, qd16" \
    "qemu-img bench -w -d 16=$Q bench -q -w -d 16 -c $N -s 4k -S 128k -f qcow2 q.qcow2::rm -f q.qcow2 && $Q create -q -f qcow2 -b base.qcow2 -F qcow2 q.qcow2" \
    "vm-clone img bench -w -d 16=$VMC img bench -q -w -d 16 -c $N -s 4k -S 128k -f qcow2 o.qcow2::rm -f o.qcow2 && $VMC img clone --linked -q base.qcow2 o.qcow2"
echo "space after one run: qemu overlay $(du -k q.qcow2 | cut -f1) KiB, ours $(du -k o.qcow2 | cut -f1) KiB"
echo "in-tool times: qemu $(rm -f q.qcow2; $Q create -q -f qcow2 -b base.qcow2 -F qcow2 q.qcow2; $Q bench -w -d 16 -c $N -s 4k -S 128k -f qcow2 q.qcow2 | tail -1)"
echo "               ours $(rm -f o.qcow2; $VMC img clone --linked -q base.qcow2 o.qcow2; $VMC img bench -w -d 16 -c $N -s 4k -S 128k -f qcow2 o.qcow2 | tail -1)"
$Q check -q o.qcow2 || { echo "our clone does not check clean!" >&2; exit 1; }
rm -f q.qcow2 o.qcow2

# commit: cbase <- mid (empty) <- ov (256 MiB of data) <- top (empty)
rm -rf cm && mkdir cm
( cd cm
  $Q create -q -f qcow2 cbase.qcow2 1G
  $Q create -q -f qcow2 -b cbase.qcow2 -F qcow2 mid.qcow2
  $Q create -q -f qcow2 -b mid.qcow2 -F qcow2 ov.qcow2
  $Q convert -n -f raw -O qcow2 <(head -c 256M /dev/urandom) ov.qcow2 2>/dev/null ||
      { head -c 256M /dev/urandom > r.raw; qemu-io -f qcow2 -c "write -P 0x5a 0 256M" ov.qcow2 >/dev/null; rm -f r.raw; }
  $Q create -q -f qcow2 -b ov.qcow2 -F qcow2 top.qcow2
  mkdir p && cp --sparse=always cbase.qcow2 mid.qcow2 ov.qcow2 top.qcow2 p/ )
restore="cp --sparse=always cm/p/cbase.qcow2 cm/p/mid.qcow2 cm/p/ov.qcow2 cm/p/top.qcow2 cm/"
$AB --title "commit 256 MiB (ov into mid)" \
    "qemu-img commit=$Q commit -q cm/ov.qcow2::$restore" \
    "vm-clone img commit=$VMC img commit -q cm/ov.qcow2::$restore" \
    "vm-clone consolidate --method commit=$VMC img consolidate -q --no-scan --method commit cm/top.qcow2::$restore" \
    "vm-clone consolidate (auto)=$VMC img consolidate -q --no-scan cm/top.qcow2::$restore"
eval "$restore"; $Q convert -O raw cm/top.qcow2 cm/ref.raw
$VMC img consolidate -q --no-scan --method commit cm/top.qcow2
$Q compare -q -F raw cm/top.qcow2 cm/ref.raw 2>/dev/null || $Q compare -q cm/top.qcow2 cm/ref.raw ||
    { echo "consolidate changed the guest view!" >&2; exit 1; }
rm -rf cm

# rebase onto a changed base: base2 = base with 4 extents of 16 MiB rewritten
if [ ! -f base2.qcow2 ] || [ base2.qcow2 -ot base.qcow2 ]; then
    cp --sparse=always base.qcow2 base2.qcow2
    step=$((VSIZE_MB / 4))
    for i in 0 1 2 3; do
        qemu-io -f qcow2 -c "write -P 0x$((i + 1))7 $((i * step + 8))M 16M" base2.qcow2 >/dev/null
    done
fi
mkclone="rm -f r.qcow2 && $Q create -q -f qcow2 -b base.qcow2 -F qcow2 r.qcow2 && qemu-io -f qcow2 -c 'write -P 0x42 1M 4M' r.qcow2 >/dev/null"
$AB --title "rebase a linked clone onto a changed base (safe mode)" \
    "qemu-img rebase=$Q rebase -q -b base2.qcow2 -F qcow2 r.qcow2::$mkclone" \
    "vm-clone img rebase=$VMC img rebase -q -b base2.qcow2 -F qcow2 r.qcow2::$mkclone" \
    "vm-clone img relink=$VMC img relink -q -b base2.qcow2 -F qcow2 r.qcow2::$mkclone"
eval "$mkclone"; $Q convert -O raw r.qcow2 r.raw
$VMC img relink -q -b base2.qcow2 -F qcow2 r.qcow2
$Q compare -q r.qcow2 r.raw || { echo "relink changed the guest view!" >&2; exit 1; }
rm -f r.qcow2 r.raw
