#!/usr/bin/env bats
# Definition files: `Fingerprints:` makes a build fail unless the base image
# verifies and is signed by every fingerprint listed (issue 8).
load helpers

setup_file() {
	export HOME=$BATS_FILE_TMPDIR/home XDG_CONFIG_HOME=$BATS_FILE_TMPDIR/home/.config
	mkdir -p "$HOME"
	local d=$BATS_FILE_TMPDIR
	mkdir -p "$d/root/bin"
	cp "$(command -v busybox)" "$d/root/bin/busybox"
	for a in sh echo cat true; do ln -s busybox "$d/root/bin/$a"; done
	mksquashfs "$d/root" "$d/base.sqfs" -noappend -all-root -quiet >/dev/null
	"$SIFU" sif new "$d/base.sif"
	"$SIFU" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 \
		"$d/base.sif" "$d/base.sqfs"
	cp "$d/base.sif" "$d/unsigned.sif"
	"$SIFU" -q key import "$SIFU_FIXTURES/sif/private.asc" >/dev/null
	"$SIFU" -q sign "$d/base.sif" >/dev/null
	"$SIFU" key list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["fingerprint"])' >"$d/fpr"
}

teardown_file() {
	gpgconf --homedir "$XDG_CONFIG_HOME/sifu/keys/gnupg" --kill gpg-agent 2>/dev/null || true
}

def() { # FILE FROM FINGERPRINTS
	printf 'Bootstrap: localimage\nFrom: %s\nFingerprints: %s\n\n%%post\n    echo built > /built\n' \
		"$2" "$3" >"$1"
}

@test "Fingerprints: a base signed by the listed key builds" {
	local d=$BATS_FILE_TMPDIR fpr
	fpr=$(cat "$d/fpr")
	[ ${#fpr} -eq 40 ]
	def "$BATS_TEST_TMPDIR/ok.def" "$d/base.sif" "$fpr"
	run_sifu -q build "$BATS_TEST_TMPDIR/ok.sif" "$BATS_TEST_TMPDIR/ok.def"
	[ "$status" -eq 0 ]
	[ -f "$BATS_TEST_TMPDIR/ok.sif" ]
}

@test "Fingerprints: an unsigned base, or one not signed by the key, is refused and nothing is written" {
	local d=$BATS_FILE_TMPDIR
	def "$BATS_TEST_TMPDIR/u.def" "$d/unsigned.sif" "$(cat "$d/fpr")"
	run_sifu -q build "$BATS_TEST_TMPDIR/u.sif" "$BATS_TEST_TMPDIR/u.def"
	assert_sifu_error
	[[ "$output" == *"Fingerprints: the base"*"does not verify"* ]]
	[ ! -e "$BATS_TEST_TMPDIR/u.sif" ]
	def "$BATS_TEST_TMPDIR/w.def" "$d/base.sif" 0123456789ABCDEF0123456789ABCDEF01234567
	run_sifu -q build "$BATS_TEST_TMPDIR/w.sif" "$BATS_TEST_TMPDIR/w.def"
	assert_sifu_error
	[[ "$output" == *"no good signature by 0123456789ABCDEF0123456789ABCDEF01234567"* ]]
	[ ! -e "$BATS_TEST_TMPDIR/w.sif" ]
	def "$BATS_TEST_TMPDIR/s.def" "$d/root" "$(cat "$d/fpr")"
	run_sifu -q build "$BATS_TEST_TMPDIR/s.sif" "$BATS_TEST_TMPDIR/s.def"
	assert_sifu_error
	[[ "$output" == *"needs a signed SIF base"* ]]
}
