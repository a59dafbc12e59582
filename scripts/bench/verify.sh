#!/bin/bash
# sifu verify on a large SIF vs sha256sum of the same file, in one run.
# Usage: scripts/bench/verify.sh [SIZE_MIB (1024)] [RUNS (5)]
# Warm page cache for both (the file is read once before timing); medians.
set -euo pipefail
SIFU=${SIFU:-$(dirname "$0")/../../build/cli/sifu}
F=$(dirname "$0")/../../tests/fixtures/sif
MIB=${1:-1024}
RUNS=${2:-5}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
head -c $((MIB << 20)) /dev/urandom > "$W/part"
"$SIFU" sif new "$W/img.sif"
"$SIFU" sif add --datatype 4 --partfs 1 --parttype 2 --partarch 2 --groupid 1 "$W/img.sif" "$W/part"
rm "$W/part"
"$SIFU" sign --key "$F/ed25519-private.pem" "$W/img.sif" > /dev/null
cat "$W/img.sif" > /dev/null
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$W/sha"; : > "$W/ver"; : > "$W/ossl"
for _ in $(seq "$RUNS"); do
	t sha256sum "$W/img.sif" >> "$W/sha"
	t openssl dgst -sha256 "$W/img.sif" >> "$W/ossl"
	t "$SIFU" verify --key "$F/ed25519-public.pem" "$W/img.sif" >> "$W/ver"
done
S=$(median < "$W/sha"); V=$(median < "$W/ver"); O=$(median < "$W/ossl")
SIZE=$(stat -c %s "$W/img.sif")
printf 'image %d MiB, %d runs, medians: sha256sum %.3f s (%.0f MiB/s), sifu verify %.3f s (%.0f MiB/s), verify speed = %.2fx sha256sum\n' \
	$((SIZE >> 20)) "$RUNS" "$S" "$(echo "$SIZE / 1048576 / $S" | bc -l)" "$V" \
	"$(echo "$SIZE / 1048576 / $V" | bc -l)" "$(echo "$S / $V" | bc -l)"
printf 'openssl dgst -sha256 (same libcrypto as sifu): %.3f s (%.0f MiB/s)\n' "$O" \
	"$(echo "$SIZE / 1048576 / $O" | bc -l)"
