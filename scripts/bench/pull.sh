#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The pull benchmark (docs/benchmarks.md, "pull"): a Debian + python3 + numpy
# image made with debootstrap as three layers (the last one deleting the apt
# lists, as Dockerfiles do), pushed to a local registry, then pulled
#   (a) by sifu:                         sifu pull --nohttps OUT docker://…
#                                        (its default gzip level 6, and level 9)
#   (b) as Apptainer does:               skopeo copy + umoci unpack + mksquashfs
#   (c) tar2sqfs on the flattened tree   (compression alone, no registry)
# all with gzip and all cores, RUNS times each, medians reported.
# Run as root (debootstrap, chroot, drop_caches):
#   scripts/bench/pull.sh WORKDIR [RUNS]
set -euo pipefail
W=$(mkdir -p "$1" && cd "$1" && pwd); RUNS=${2:-3}
here=$(cd "$(dirname "$0")" && pwd); root=$here/../..
SIFU=${SIFU:-$root/build/cli/sifu}
J=$(nproc)

if [ ! -f "$W/img/index.json" ]; then
	rm -rf "$W/rootfs" "$W/img"
	debootstrap --variant=minbase bookworm "$W/rootfs" http://deb.debian.org/debian >"$W/debootstrap.log"
	list() { (cd "$W/rootfs" && find . -mindepth 1 | sort); }
	snap() { list >"$W/$1.list"; touch "$W/$1.mark"; sleep 1.1; }
	layer() { # N: files changed since mark N-1, whiteouts for what went
		local n=$1 p=$(($1 - 1))
		(cd "$W/rootfs" && find . -mindepth 1 -newer "$W/$p.mark" | sort) >"$W/$n.changed"
		list >"$W/$n.list"
		comm -23 "$W/$p.list" "$W/$n.list" >"$W/$n.gone"
		mkdir -p "$W/wh$n"
		while read -r f; do
			d=$(dirname "$f"); b=$(basename "$f")
			mkdir -p "$W/wh$n/$d"; : >"$W/wh$n/$d/.wh.$b"
		done <"$W/$n.gone"
		tar -C "$W/rootfs" --numeric-owner --xattrs --no-recursion -cf "$W/l$n.tar" -T "$W/$n.changed"
		(cd "$W/wh$n" && find . -name '.wh.*' | sort) >"$W/$n.wh"
		[ -s "$W/$n.wh" ] && tar -C "$W/wh$n" --numeric-owner -rf "$W/l$n.tar" -T "$W/$n.wh"
		true
	}
	tar -C "$W/rootfs" --numeric-owner --xattrs -cf "$W/l1.tar" .
	snap 1
	chroot "$W/rootfs" apt-get install -y --no-install-recommends python3 >"$W/apt2.log"
	layer 2; touch "$W/2.mark"; sleep 1.1
	chroot "$W/rootfs" sh -c 'apt-get install -y --no-install-recommends python3-numpy && apt-get clean && rm -rf /var/lib/apt/lists/*' >"$W/apt3.log"
	layer 3
	python3 "$here/pull-image.py" "$W/img" "$W/l1.tar" "$W/l2.tar" "$W/l3.tar"
fi

REG=$("$root/scripts/registry" start "$W/reg")
trap '"$root/scripts/registry" stop "$W/reg"' EXIT
skopeo copy -q --dest-tls-verify=false oci:"$W/img":latest docker://"$REG"/bench/numpy:1
# the flattened tree for tar2sqfs, made once, not timed
if [ ! -f "$W/flat.tar" ]; then
	rm -rf "$W/ref"; umoci unpack --image "$W/img":latest "$W/ref" >/dev/null
	tar -C "$W/ref/rootfs" --numeric-owner --xattrs -cf "$W/flat.tar" .
fi

drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
# peak of `du` over PATHS while CMD runs (sampled every 0.1 s)
peak_du() {
	local out=$1; shift; local paths=$1; shift
	( peak=0; while :; do
		s=$(du -sbc $paths 2>/dev/null | tail -1 | cut -f1); [ "${s:-0}" -gt "$peak" ] && peak=$s
		echo "$peak" >"$out"; sleep 0.1; done ) &
	local mon=$!
	"$@"; local rc=$?
	kill $mon; wait $mon 2>/dev/null || true
	return $rc
}
t() { local s=$(date +%s.%N); "$@"; echo "$(date +%s.%N) - $s" | bc; }

res=$W/results.txt; : >"$res"
for i in $(seq "$RUNS"); do
	for lvl in 6 9; do
		rm -rf "$W/cache" "$W/out"; mkdir -p "$W/out"; drop
		s=$(t peak_du "$W/peak.sifu" "$W/cache $W/out" env SIFU_CACHEDIR="$W/cache" "$SIFU" -q pull --nohttps --compression gzip:$lvl "$W/out/sifu.sif" docker://"$REG"/bench/numpy:1)
		echo "sifu-gzip$lvl $s $(siftool info 1 "$W/out/sifu.sif" | awk '/Size:/{print $2}') $(cat "$W/peak.sifu")" >>"$res"
	done

	rm -rf "$W/oci" "$W/bundle" "$W/apptainer.sqfs"; drop
	a=$(t peak_du "$W/peak.app" "$W/oci $W/bundle $W/apptainer.sqfs" sh -c "
		skopeo copy -q --src-tls-verify=false docker://$REG/bench/numpy:1 oci:$W/oci:latest &&
		umoci unpack --image $W/oci:latest $W/bundle >/dev/null &&
		mksquashfs $W/bundle/rootfs $W/apptainer.sqfs -comp gzip -noappend -no-progress -processors $J >/dev/null")
	echo "apptainer $a $(stat -c %s "$W/apptainer.sqfs") $(cat "$W/peak.app")" >>"$res"

	rm -f "$W/tar2sqfs.sqfs"; drop
	b=$(t sh -c "tar2sqfs -q -c gzip -j $J $W/tar2sqfs.sqfs <$W/flat.tar")
	echo "tar2sqfs $b $(stat -c %s "$W/tar2sqfs.sqfs") -" >>"$res"
done
blobs=$(du -sbc "$W"/img/blobs/sha256/* | tail -1 | cut -f1)
echo "compressed blobs: $blobs bytes; uncompressed layers: $(du -sbc "$W"/l?.tar | tail -1 | cut -f1) bytes"
echo "tool seconds bytes-of-image peak-disk-bytes"
cat "$res"
for tool in sifu-gzip6 sifu-gzip9 apptainer tar2sqfs; do
	printf '%s median %s s\n' "$tool" "$(awk -v t=$tool '$1==t{print $2}' "$res" | sort -n | awk '{a[NR]=$1}END{print a[int((NR+1)/2)]}')"
done
