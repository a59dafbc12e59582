#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The build benchmark (docs/benchmarks.md, "build"): issue 7's apt example,
# end to end (pull of the base + apt in %post / RUN + SquashFS), unprivileged,
# side by side in one run:
#   sifu        sifu build -F out.sif a-s.def                (gzip 6, its default)
#   sifu-gzip9  the same with --compression gzip:9           (mksquashfs's level)
#   ch-image    ch-image build --force (Charliecloud 0.31's fake-root mode) of
#               the same steps as a Dockerfile, with its default git build
#               cache, then ch-convert -i ch-image -o squash
#   ch-nocache  the same with ch-image --no-cache
#   sifu-before (only with SIFU_BEFORE=another sifu binary) the same as sifu,
#               with that binary: a before/after figure for a change
# RUNS rounds (default 3), the order rotating each round; every run starts
# from an empty cache / storage directory, so each includes its pull.  Then
# one untimed pass per method samples its peak disk use.
#
# Both sides pull the same Debian bookworm minbase (debootstrap, made once
# and cached in /var/cache/sifu-build-test/oci as tests/integration/build.bats
# makes it) from the same local registry.  ch-image 0.31 speaks HTTPS only, so
# the registry runs with TLS (scripts/registry --tls) and both verify its CA:
# sifu through SIFU_CA_BUNDLE, ch-image (python-requests) REQUESTS_CA_BUNDLE.
# apt in %post / RUN needs deb.debian.org.
#
# Run as root (debootstrap, registry); the builds run as the unprivileged
# user sifu-test:
#   scripts/bench/build.sh [RUNS] [WORKDIR]
#   SIFU_BEFORE=/path/to/old/build/cli/sifu scripts/bench/build.sh 3
# Needs: charliecloud-builders charliecloud (ch-image, ch-convert, ch-run),
# docker-registry skopeo umoci debootstrap squashfs-tools siftool python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
SIFU=$(readlink -f "${SIFU:-$root/build/cli/sifu}")
SIFU_BEFORE=${SIFU_BEFORE:+$(readlink -f "$SIFU_BEFORE")}
METHODS="sifu${SIFU_BEFORE:+ sifu-before} sifu-gzip9 ch-image ch-nocache"

# ------------------------------------------- the timed part, as sifu-test --
if [ "${1:-}" = --user ]; then
	W=$2 RUNS=$3 REG=$4 CA=$5
	now() { date +%s.%N; }
	# elapsed seconds since the run started in front of each output line, for
	# the phase breakdown (python3 reads the pipe; it costs next to nothing)
	stamp() { python3 -u -c '
import sys, time
t0 = float(sys.argv[1])
for l in sys.stdin.buffer:
    sys.stdout.buffer.write(b"%8.3f " % (time.time() - t0) + l)
' "$1"; }
	ctx=$W/ctx; mkdir -p "$ctx"
	printf 'FROM %s/debian/minbase:bookworm\nRUN apt-get update && apt-get install -y hello && apt clean all\n' \
		"$REG" >"$ctx/Dockerfile"
	cat >"$W/a-s.def" <<DEF
Bootstrap: docker
From: $REG/debian/minbase:bookworm
%post
    apt-get update && apt-get install -y hello && apt clean all
%runscript
    exec hello "\$@"
DEF
	# ch-image keeps its build cache in git, which wants an identity
	export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
	export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
	export REQUESTS_CA_BUNDLE=$CA SIFU_CA_BUNDLE=$CA

	# one end-to-end build: METHOD into the fresh directory R
	one() {
		local m=$1 R=$2
		case $m in
		sifu | sifu-gzip9 | sifu-before)
			local c='' bin=$SIFU; [ "$m" = sifu-gzip9 ] && c="--compression gzip:9"
			[ "$m" = sifu-before ] && bin=$SIFU_BEFORE
			# shellcheck disable=SC2086
			SIFU_CACHEDIR=$R/cache SIFU_TMPDIR=$R/tmp "$bin" -v build -F $c "$R/out/img.sif" "$W/a-s.def"
			;;
		ch-image | ch-nocache)
			local c=; [ "$m" = ch-nocache ] && c=--no-cache
			# shellcheck disable=SC2086
			CH_IMAGE_STORAGE=$R/storage TMPDIR=$R/tmp ch-image $c build --force -t apt-hello "$ctx" &&
				echo "== ch-convert" &&
				CH_IMAGE_STORAGE=$R/storage TMPDIR=$R/tmp ch-convert -i ch-image -o squash apt-hello "$R/out/img.sqfs"
			;;
		esac
	}
	fresh() { rm -rf "$1"; mkdir -p "$1/tmp" "$1/out"; }
	# the image's SquashFS (the SIF's partition, or the bare file) to stdout
	sqfs_of() {
		case $1 in
		*.sif) siftool dump "$(siftool list "$1" | awk -F'|' '/FS \(Squashfs/ {gsub(/ /,"",$1); print $1}')" "$1" ;;
		*) cat "$1" ;;
		esac
	}
	check() { # the image has hello and runs it
		local img=$1 m=$2 out
		sqfs_of "$img" >"$W/check.sqfs"
		unsquashfs -l "$W/check.sqfs" | grep 'squashfs-root/usr/bin/hello$' >/dev/null ||
			{ echo "build: $m: no /usr/bin/hello in $img" >&2; return 1; }
		case $m in
		sifu*) out=$("$SIFU" run "$img") ;;
		ch-*) out=$(ch-run "$img" -- hello) ;;
		esac
		[ "$out" = "Hello, world!" ] || { echo "build: $m: hello says '$out'" >&2; return 1; }
		rm -f "$W/check.sqfs"
	}

	# shellcheck disable=SC2086 # (split on purpose)
	set -- $METHODS
	for i in $(seq "$RUNS"); do
		for m in "$@"; do
			R=$W/run; fresh "$R"; log=$W/log/$m.$i; mkdir -p "$W/log"
			s=$(now)
			if ! one "$m" "$R" 2>&1 | stamp "$s" >"$log"; then
				echo "build: $m failed:" >&2; tail "$log" >&2; exit 1
			fi
			e=$(now)
			img=$(ls "$R"/out/img.*)
			check "$img" "$m"
			printf '%s %s %s %s\n' "$m" "$i" "$(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.2f", e - s}')" \
				"$(stat -c %s "$img")" >>"$W/results.txt"
			echo "build: round $i: $m $(tail -1 "$W/results.txt" | cut -d' ' -f3) s" >&2
		done
		set -- "${@:2}" "$1" # rotate the order for the next round
	done

	# peak disk: an untimed pass per method, du of the run directory (cache or
	# storage, temporary files, output) every 0.2 s
	for m in $METHODS; do
		R=$W/run; fresh "$R"
		(set +e +o pipefail; peak=0; while :; do # du fails on files that vanish
			v=$(du -sb "$R" 2>/dev/null | cut -f1); [ "${v:-0}" -gt "$peak" ] && peak=$v
			echo "$peak" >"$W/peak.$m"; sleep 0.2; done) &
		mon=$!
		rc=0; one "$m" "$R" >"$W/log/$m.peak" 2>&1 || rc=$?
		kill "$mon" 2>/dev/null || true; wait "$mon" 2>/dev/null || true
		[ $rc = 0 ] || { echo "build: $m failed (peak pass), see $W/log/$m.peak" >&2; exit 1; }
	done
	rm -rf "$W/run"
	exit 0
fi

# ---------------------------------------------------------- root: set-up --
[ "$(id -u)" = 0 ] || { echo "build: run as root (it switches to sifu-test for the builds)" >&2; exit 1; }
id sifu-test >/dev/null 2>&1 || { echo "build: create the user sifu-test first (useradd -m sifu-test)" >&2; exit 1; }
RUNS=${1:-3}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin # Debian's python3 (ch-image needs its lark)
for t in ch-image ch-convert ch-run skopeo umoci debootstrap docker-registry unsquashfs siftool python3; do
	command -v "$t" >/dev/null || { echo "build: $t is not installed" >&2; exit 1; }
done
if [ -n "${2:-}" ]; then W=$(mkdir -p "$2" && cd "$2" && pwd); keep=1; else W=$(mktemp -d /var/tmp/sifu-bench-build.XXXXXX); keep=0; fi
chmod 755 "$W"

base=${SIFU_TEST_MINBASE:-/var/cache/sifu-build-test/oci}
if [ ! -f "$base/index.json" ]; then # as tests/integration/build.bats makes it
	rm -rf "$W/mk" "$base.tmp"
	debootstrap --variant=minbase bookworm "$W/mk" http://deb.debian.org/debian >"$W/debootstrap.log" 2>&1 ||
		{ tail "$W/debootstrap.log"; exit 1; }
	mkdir -p "$(dirname "$base")"
	umoci init --layout "$base.tmp"
	umoci new --image "$base.tmp:minbase"
	umoci insert --image "$base.tmp:minbase" "$W/mk" /
	chmod -R a+rX "$base.tmp"
	mv "$base.tmp" "$base"
	rm -rf "$W/mk"
fi

REG=$("$root/scripts/registry" start "$W/reg" --tls)
cleanup() {
	"$root/scripts/registry" stop "$W/reg"
	[ $keep = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
chmod 755 "$W/reg"; chmod 644 "$W/reg/ca.pem"
skopeo copy -q --dest-tls-verify=false oci:"$base":minbase docker://"$REG"/debian/minbase:bookworm

U=$W/user; rm -rf "$U"; mkdir -p "$U"; chown sifu-test: "$U"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
runuser -u sifu-test -- env -i HOME="$(getent passwd sifu-test | cut -d: -f6)" USER=sifu-test \
	PATH="$PATH" LANG=C.UTF-8 SIFU="$SIFU" SIFU_BEFORE="$SIFU_BEFORE" bash "$0" --user "$U" "$RUNS" "$REG" "$W/reg/ca.pem"
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report --
echo "sifu $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')${SIFU_BEFORE:+ (sifu-before: $SIFU_BEFORE)}; ch-image $(USER=root ch-image --version 2>&1);" \
	"$(mksquashfs -version 2>&1 | head -1); $(nproc) CPUs"
echo "load average (1/5/15 min): before $load0, after $load1"
# shellcheck disable=SC2086
python3 - "$U" $METHODS <<'PY'
import re, statistics, sys
W, methods = sys.argv[1], sys.argv[2:]
runs = {m: [] for m in methods}
size = {}
for l in open(f"{W}/results.txt"):
    m, i, s, b = l.split()
    runs[m].append(float(s)); size[m] = int(b)
n = max(len(v) for v in runs.values())
med = {m: statistics.median(v) for m, v in runs.items()}
peak = {}
for m in methods:
    try: peak[m] = int(open(f"{W}/peak.{m}").read())
    except (OSError, ValueError): pass
print()
print("| method | " + " | ".join(f"run {i+1}" for i in range(n)) + " | median | vs ch-image | image bytes | peak disk |")
print("| --- " * (n + 5) + "|")
for m in methods:
    r = " | ".join(f"{t:.1f} s" for t in runs[m])
    p = f"{peak[m] / 1e6:.0f} MB" if m in peak else "-"
    print(f"| {m} | {r} | **{med[m]:.1f} s** | {med[m] / med['ch-image']:.2f} | {size[m]:,} | {p} |")
print()
print(f"sifu / ch-image          = {med['sifu'] / med['ch-image']:.2f}  (target <= 1: sifu no slower end to end)")
print(f"sifu / ch-image --no-cache = {med['sifu'] / med['ch-nocache']:.2f}")
print(f"sifu gzip:9 / ch-image   = {med['sifu-gzip9'] / med['ch-image']:.2f}  (same gzip level as mksquashfs)")
if "sifu-before" in med:
    print(f"sifu / sifu-before       = {med['sifu'] / med['sifu-before']:.2f}")

# phases: the time of the first line matching each marker (median over runs)
marks = {
    "sifu": [("pull: download, layers -> temporary base SquashFS", r"INFO:    layer \d+: "),
             ("finish base SquashFS, extract it to a directory", r"Running post scriptlet"),
             ("%post (apt)", r"Creating SIF file"),
             ("SquashFS + SIF", None)],
    "ch-image": [("pull: download, flatten, extract", r"image arch:"),
                 ("build cache: commit FROM", r"^\s*2\. RUN"),
                 ("copy image from cache", r"will use --force"),
                 ("--force init: apt-get update, install fakeroot", r"workarounds: RUN: new command"),
                 ("RUN (apt under fakeroot), commit", r"grown in"),
                 ("ch-convert start-up", r"packing \.\.\."),
                 ("ch-convert: mksquashfs", None)],
    "ch-nocache": [("pull: download, flatten, extract", r"image arch:"),
                   ("copy image", r"will use --force"),
                   ("--force init: apt-get update, install fakeroot", r"workarounds: RUN: new command"),
                   ("RUN (apt under fakeroot)", r"grown in"),
                   ("ch-convert start-up", r"packing \.\.\."),
                   ("ch-convert: mksquashfs", None)],
}
marks["sifu-gzip9"] = marks["sifu-before"] = marks["sifu"]
tot = {m: runs[m] for m in methods}
for m in methods:
    ph = {name: [] for name, _ in marks[m]}
    for i in range(1, len(runs[m]) + 1):
        lines = open(f"{W}/log/{m}.{i}", errors="replace").read().splitlines()
        prev = 0.0
        for name, rx in marks[m]:
            if rx is None:
                t = runs[m][i - 1]
            else:
                t = next((float(l[:8]) for l in lines if re.search(rx, l[9:])), None)
                if t is None:
                    break
            ph[name].append(t - prev); prev = t
    print(f"\n{m} phases (median s): " + "; ".join(
        f"{name} {statistics.median(v):.1f}" for name, v in ph.items() if v))
PY
echo
echo "logs in $U/log$([ $keep = 1 ] || echo ' (removed: give a WORKDIR to keep them)')"
