# Shared by every tests/integration/*.bats file.
# scripts/test runs the suite twice: as root and as the unprivileged user
# sifu-test.  $SIFU is the binary under test; $SIFU_FIXTURES the SIF fixtures.

: "${SIFU:=$BATS_TEST_DIRNAME/../../build/cli/sifu}"
: "${SIFU_FIXTURES:=$BATS_TEST_DIRNAME/../fixtures}"
export SIFU SIFU_FIXTURES

# `run ! cmd` (bats >= 1.5) is how a test asserts that a command fails: a
# bare `! cmd` line is ignored by set -e and can never fail a test
# (scripts/lint rejects it).
bats_require_minimum_version 1.5.0

# Skip for a missing kernel feature, found by probing the feature; in CI
# (SIFU_TEST_MUST_WORK=1) a missing feature is a failure instead.
require_feature() {
	local what=$1
	shift
	if ! "$@" >/dev/null 2>&1; then
		if [ "${SIFU_TEST_MUST_WORK:-0}" = 1 ]; then
			echo "required feature missing: $what" >&2
			return 1
		fi
		skip "kernel feature missing: $what"
	fi
}

is_root() { [ "$(id -u)" = 0 ]; }

# run_sifu ARGS...: run the binary, capturing status/output (bats `run`)
run_sifu() { run "$SIFU" "$@"; }

# assert a one-line error with exit 255
# The messages in $output, as bats counts lines (empty ones left out), with
# a FATAL line's hint, indented 9 spaces under it (docs/cli.md), counted as
# part of its message.
message_count() {
	printf '%s\n' "$output" | grep -c -v -e '^$' -e '^         '
}

assert_sifu_error() {
	[ "$status" -eq 255 ] || { echo "status $status, want 255: $output" >&2; return 1; }
	[ "$(printf '%s\n' "$output" | grep -c '^FATAL:   ')" -ge 1 ] || { echo "no 'FATAL:' line: $output" >&2; return 1; }
}

# term_and_check PID STARTED_RE LEFT_RE: once a process of ours matching
# STARTED_RE runs, SIGTERM PID (a sifu started in the background with its
# stderr in ./err); it must exit 255 saying "interrupted", and no process
# matching LEFT_RE may remain.
term_and_check() {
	local pid=$1 started=$2 left=$3 st=0
	for _ in $(seq 1 200); do pgrep -u "$(id -u)" -f "$started" >/dev/null && break; sleep 0.05; done
	pgrep -u "$(id -u)" -f "$started" >/dev/null
	kill -TERM "$pid"
	wait "$pid" || st=$?
	[ "$st" -eq 255 ]
	grep -q interrupted err || { cat err; false; }
	for _ in $(seq 1 40); do pgrep -u "$(id -u)" -f "$left" >/dev/null || break; sleep 0.05; done
	if pgrep -u "$(id -u)" -f "$left"; then return 1; fi
}

# A busybox tree at $1: /bin with busybox and a link per applet, and the
# directories every runtime mounts onto (etc dev proc sys tmp home root
# var/tmp mnt).  Files add what their tests need.
busybox_tree() {
	local t=$1 a
	mkdir -p "$t/bin" "$t/etc" "$t/dev" "$t/proc" "$t/sys" "$t/tmp" "$t/home" "$t/root" \
		"$t/var/tmp" "$t/mnt"
	cp /usr/bin/busybox "$t/bin/busybox"
	for a in $("$t/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$t/bin/$a"
	done
}
