# Shared by every tests/integration/*.bats file.
# scripts/test runs the suite twice: as root and as the unprivileged user
# sifu-test.  $SIFU is the binary under test; $SIFU_FIXTURES the SIF fixtures.

: "${SIFU:=$BATS_TEST_DIRNAME/../../build/cli/sifu}"
: "${SIFU_FIXTURES:=$BATS_TEST_DIRNAME/../fixtures}"
export SIFU SIFU_FIXTURES

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
assert_sifu_error() {
	[ "$status" -eq 255 ] || { echo "status $status, want 255: $output" >&2; return 1; }
	[ "$(printf '%s\n' "$output" | grep -c '^sifu: ')" -ge 1 ] || { echo "no 'sifu:' line: $output" >&2; return 1; }
}
