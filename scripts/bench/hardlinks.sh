#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The hard-link benchmark (docs/benchmarks.md, "Hard links in layers"): the
# layer -> SquashFS step through the real path, `sifu pull -F OUT.sif
# oci-archive:X` with an empty cache each time, on images hardlinks.py makes:
#   plain     one layer: N files and N more files (no links; the baseline)
#   links     one layer: N files and N hard links to them
#   deferred  links under a layer that replaces all N link targets: every
#             link is served by the second pass (quadratic in a60965e)
# side by side in one run with
#   sifu-before  (only with SIFU_BEFORE=another sifu binary, e.g. a60965e's)
#                the same pulls with that binary, each stopped after
#                BEFORE_TIMEOUT seconds (default 1200) and then reported as
#                "> BEFORE_TIMEOUT s"
#   tar2sqfs     tar2sqfs -c gzip -X level=6 -j $(nproc) (sifu's default
#                compression) on plain.tar, links.tar, and for deferred the
#                flattened tree flat.tar (it knows no layers)
# RUNS rounds (default 3), medians reported.  Any user; no network:
#   scripts/bench/hardlinks.sh [N] [RUNS] [WORKDIR]
#   SIFU_BEFORE=/work/wt/links-base/build/cli/sifu scripts/bench/hardlinks.sh 200000 3
set -euo pipefail
N=${1:-200000} RUNS=${2:-3}
W=$(mkdir -p "${3:-/var/tmp/sifu-hardlinks-bench}" && cd "${3:-/var/tmp/sifu-hardlinks-bench}" && pwd)
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
SIFU=$(readlink -f "${SIFU:-$root/build/cli/sifu}")
SIFU_BEFORE=${SIFU_BEFORE:+$(readlink -f "$SIFU_BEFORE")}
BEFORE_TIMEOUT=${BEFORE_TIMEOUT:-1200}
J=$(nproc)
D=$W/n$N
if [ ! -f "$D/deferred.oci.tar" ]; then
	echo "== making the layers for N=$N in $D"
	python3 "$here/hardlinks.py" "$D" "$N"
fi
ls -l "$D"/*.tar

now() { date +%s.%N; }
# one timed run: prints seconds, or "> T" when stopped by the timeout
run() { # METHOD WORKLOAD
	local m=$1 w=$2 t0 rc=0 lim=0
	rm -rf "$W/cache" "$W/out"; mkdir -p "$W/out"
	t0=$(now)
	case $m in
	sifu | sifu-before)
		local bin=$SIFU; [ "$m" = sifu-before ] && bin=$SIFU_BEFORE lim=$BEFORE_TIMEOUT
		SIFU_CACHEDIR=$W/cache timeout "${lim}" "$bin" -q pull -F "$W/out/o.sif" \
			"oci-archive:$D/$w.oci.tar" || rc=$?
		;;
	tar2sqfs)
		local t=$w.tar; [ "$w" = deferred ] && t=flat.tar
		tar2sqfs -q -f -c gzip -X level=6 -j "$J" "$W/out/o.sqfs" <"$D/$t" || rc=$?
		;;
	esac
	if [ "$rc" = 124 ]; then
		echo "> $lim"
	elif [ "$rc" != 0 ]; then
		echo "$m $w failed ($rc)" >&2; exit 1
	else
		python3 -c "print('%.2f' % ($(now) - $t0))"
	fi
}

methods="sifu${SIFU_BEFORE:+ sifu-before} tar2sqfs"
declare -A times
for r in $(seq "$RUNS"); do
	for w in plain links deferred; do
		for m in $methods; do
			# a run that hit the timeout is not repeated
			if [ "$m" = sifu-before ] && [[ "${times[$m $w]:-}" == *">"* ]]; then continue; fi
			t=$(run "$m" "$w")
			times[$m $w]="${times[$m $w]:-}${times[$m $w]:+ }$t"
			echo "round $r: $m $w: $t s"
		done
	done
done
rm -rf "$W/cache" "$W/out"

# the list of times is split into arguments on purpose
# shellcheck disable=SC2086
median() { python3 -c '
import statistics, sys
v = sys.argv[1:]
if any(x.startswith(">") for x in v): print("> %s" % v[-1].lstrip("> ")); sys.exit()
print("%.2f" % statistics.median(float(x) for x in v))' $1; }
echo
echo "N=$N, $RUNS rounds, $(nproc) CPUs, $(uname -r)"
echo "| method | plain (2N files) | links (N files + N links) | deferred (N links, targets replaced above) |"
echo "| --- | --- | --- | --- |"
for m in $methods; do
	row="| $m"
	for w in plain links deferred; do row="$row | $(median "${times[$m $w]}") s (${times[$m $w]})"; done
	echo "$row |"
done
