#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# FUSE server benchmarks: sifu mount side by side with squashfuse_ll and the
# kernel's squashfs (loop mount), on the same images, in one run, cold
# (caches dropped before every run).  Root only (drop_caches, loop mounts).
#
#   scripts/bench/fuse-bench.sh [-n RUNS] [-d DELAY_US] [-w WORKDIR] [TESTS...]
#
# SIFU_BEFORE=/path/to/an/older/sifu adds a "sifu-before" row to every test
# (before/after comparisons in one run).
# TESTS: numpy walk seq conc rss numpy-lat walk-lat seq-lat conc-lat (default: all).
# Images are made once and cached in WORKDIR (default /var/tmp/sifu-fuse-bench):
#   debian.sqfs  debootstrap --variant=minbase --include=python3,python3-numpy
#                bookworm (cached in WORKDIR/debian-numpy), mksquashfs gzip
#   big.sqfs     two 512 MiB files (base64 of random bytes: compresses ~25%)
# The "-lat" tests put the images behind scripts/bench/latfs.c: a FUSE
# passthrough adding DELAY_US (default 2000) to every read, with direct I/O.
# Prints one markdown row per test and method: median seconds (or MB/s) of
# RUNS and the ratio to the kernel mount.
set -euo pipefail

RUNS=3
DELAY=2000
WORK=/var/tmp/sifu-fuse-bench
while getopts n:d:w: o; do
	case $o in
	n) RUNS=$OPTARG ;;
	d) DELAY=$OPTARG ;;
	w) WORK=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
TESTS=${*:-numpy walk seq conc rss numpy-lat walk-lat seq-lat conc-lat}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIFU=${SIFU:-$ROOT/build/cli/sifu}
[ "$(id -u)" = 0 ] || { echo "run as root (drop_caches, loop mounts)" >&2; exit 2; }
mkdir -p "$WORK/img" "$WORK/lat" "$WORK/mnt"

log() { echo "# $*" >&2; }

# ---------------------------------------------------------------- images
make_images() {
	case " $TESTS " in
	*numpy* | *walk* | *rss*) make_debian ;;
	esac
	case " $TESTS " in
	*seq* | *conc*) make_big ;;
	esac
	[ -x "$WORK/latfs" ] ||
		cc -O2 -Wall -o "$WORK/latfs" "$ROOT/scripts/bench/latfs.c" $(pkg-config --cflags --libs fuse3)
}

make_debian() {
	if [ ! -d "$WORK/debian-numpy" ]; then
		log "debootstrap (once)"
		debootstrap --variant=minbase --include=python3,python3-numpy bookworm \
			"$WORK/debian-numpy.tmp" http://deb.debian.org/debian >"$WORK/debootstrap.log"
		mv "$WORK/debian-numpy.tmp" "$WORK/debian-numpy"
	fi
	[ -f "$WORK/img/debian.sqfs" ] ||
		mksquashfs "$WORK/debian-numpy" "$WORK/img/debian.sqfs" -comp gzip -noappend -quiet -no-progress
}

make_big() {
	if [ ! -f "$WORK/img/big.sqfs" ]; then
		mkdir -p "$WORK/bigsrc"
		for f in big1 big2; do
			head -c $((384 << 20)) /dev/urandom | base64 -w 0 | head -c $((512 << 20)) >"$WORK/bigsrc/$f"
		done
		mksquashfs "$WORK/bigsrc" "$WORK/img/big.sqfs" -comp gzip -noappend -quiet -no-progress
		rm -rf "$WORK/bigsrc"
	fi
}

# ----------------------------------------------------------- mount/umount
PID=
wait_mounted() {
	for _ in $(seq 300); do
		mountpoint -q "$1" && return 0
		sleep 0.02
	done
	echo "mount of $1 did not come up" >&2
	return 1
}

# mount_with METHOD IMAGE MNT
mount_with() {
	case $1 in
	kernel) mount -t squashfs -o loop,ro "$2" "$3" ;;
	squashfuse) squashfuse_ll -f "$2" "$3" & PID=$! ; wait_mounted "$3" ;;
	# cold means no cache at all: not the block cache either
	sifu) "$SIFU" mount --block-cache off "$2" "$3" 2>"$WORK/sifu-mount.log" & PID=$! ; wait_mounted "$3" ;;
	sifu-before) "$SIFU_BEFORE" mount --block-cache off "$2" "$3" 2>"$WORK/sifu-mount.log" & PID=$! ; wait_mounted "$3" ;;
	esac
}

umount_with() {
	case $1 in
	kernel) umount "$2" ;;
	*) fusermount3 -u "$2"; wait "$PID" || true ;;
	esac
}

cold() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

now() { date +%s.%N; }

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# run_one METHOD IMAGE WORKLOAD -> seconds on stdout
run_one() {
	local m=$1 img=$2 w=$3 mnt=$WORK/mnt t0 t1
	cold
	mount_with "$m" "$img" "$mnt"
	t0=$(now)
	case $w in
	numpy) chroot "$mnt" /usr/bin/python3 -c 'import numpy' ;;
	walk) find "$mnt" -print0 | xargs -0 stat >/dev/null ;;
	seq) cat "$mnt/big1" >/dev/null ;;
	conc)
		local p1 p2
		cat "$mnt/big1" >/dev/null &
		p1=$!
		cat "$mnt/big2" >/dev/null &
		p2=$!
		wait "$p1" "$p2"
		;;
	rss)
		chroot "$mnt" /usr/bin/python3 -c 'import numpy'
		find "$mnt" -type f -print0 | xargs -0 cat >/dev/null
		case $m in sifu*) grep VmHWM "/proc/$PID/status" >&2 ;; esac
		;;
	esac
	t1=$(now)
	umount_with "$m" "$mnt"
	case $m in sifu*) [ "$w" != rss ] && tail -2 "$WORK/sifu-mount.log" | while read -r l; do log "$l"; done ;; esac
	echo "$t1 - $t0" | bc -l
}

# bench NAME WORKLOAD IMAGE [throughput_MB]
bench() {
	local name=$1 w=$2 img=$3 mb=${4:-} kernel_med=
	for m in kernel squashfuse ${SIFU_BEFORE:+sifu-before} sifu; do
		local times=()
		for _ in $(seq "$RUNS"); do times+=("$(run_one "$m" "$img" "$w")"); done
		local med
		med=$(printf '%s\n' "${times[@]}" | median)
		[ "$m" = kernel ] && kernel_med=$med
		if [ -n "$mb" ]; then
			printf '| %s | %s | %.0f MB/s | %.2fx kernel | %s |\n' "$name" "$m" \
				"$(echo "$mb / $med" | bc -l)" "$(echo "$kernel_med / $med" | bc -l)" "${times[*]}"
		else
			printf '| %s | %s | %.3f s | %.2fx kernel | %s |\n' "$name" "$m" "$med" \
				"$(echo "$med / $kernel_med" | bc -l)" "${times[*]}"
		fi
	done
}

make_images
LATPID=
start_lat() {
	"$WORK/latfs" "$WORK/img" "$WORK/lat" "$DELAY" 2>"$WORK/latfs.log" &
	LATPID=$!
	wait_mounted "$WORK/lat"
}
stop_lat() {
	fusermount3 -u "$WORK/lat"
	wait "$LATPID" || true
	log "$(cat "$WORK/latfs.log")"
}
trap 'umount "$WORK/mnt" 2>/dev/null; fusermount3 -u "$WORK/mnt" 2>/dev/null; fusermount3 -u "$WORK/lat" 2>/dev/null; true' EXIT

echo "| test | method | median | vs kernel | runs |"
echo "| --- | --- | --- | --- | --- |"
for t in $TESTS; do
	case $t in
	numpy) bench "cold import numpy, local" numpy "$WORK/img/debian.sqfs" ;;
	walk) bench "cold find+stat walk, local" walk "$WORK/img/debian.sqfs" ;;
	seq) bench "cold sequential read 512 MiB, local" seq "$WORK/img/big.sqfs" 536.870912 ;;
	conc) bench "cold 2 readers x 512 MiB, local" conc "$WORK/img/big.sqfs" 1073.741824 ;;
	rss) for _ in 1; do run_one sifu "$WORK/img/debian.sqfs" rss >/dev/null; done ;;
	numpy-lat) start_lat; bench "cold import numpy, ${DELAY}us/read" numpy "$WORK/lat/debian.sqfs"; stop_lat ;;
	walk-lat) start_lat; bench "cold find+stat walk, ${DELAY}us/read" walk "$WORK/lat/debian.sqfs"; stop_lat ;;
	seq-lat) start_lat; bench "cold sequential read 512 MiB, ${DELAY}us/read" seq "$WORK/lat/big.sqfs" 536.870912; stop_lat ;;
	conc-lat) start_lat; bench "cold 2 readers x 512 MiB, ${DELAY}us/read" conc "$WORK/lat/big.sqfs" 1073.741824; stop_lat ;;
	esac
done
