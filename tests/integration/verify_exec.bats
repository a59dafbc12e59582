#!/usr/bin/env bats
# `sifu exec --verify[=KEY]`: refuse to run an image whose signatures do not
# verify (issue 8, something Apptainer's unprivileged mode cannot do).
load helpers

setup_file() {
	export D="$BATS_FILE_TMPDIR"
	mkdir -p "$D/root/bin"
	cp "$(command -v busybox)" "$D/root/bin/busybox"
	for a in sh echo true cat; do ln -s busybox "$D/root/bin/$a"; done
	mksquashfs "$D/root" "$D/img.sqfs" -noappend -all-root -quiet >/dev/null
	"$SIFU" sif new "$D/signed.sif"
	"$SIFU" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 \
		"$D/signed.sif" "$D/img.sqfs"
	cp "$D/signed.sif" "$D/unsigned.sif"
	"$SIFU" sign --key "$SIFU_FIXTURES/sif/ed25519-private.pem" "$D/signed.sif"
}

@test "exec --verify=KEY runs a signed image" {
	require_feature "user namespaces" unshare -Ur true
	run_sifu exec --verify="$SIFU_FIXTURES/sif/ed25519-public.pem" "$D/signed.sif" echo verified-ok
	[ "$status" -eq 0 ]
	[ "$output" = verified-ok ]
	SIFU_VERIFY="$SIFU_FIXTURES/sif/ed25519-public.pem" run "$SIFU" exec "$D/signed.sif" echo env-ok
	[ "$status" -eq 0 ]
	[ "$output" = env-ok ]
}

@test "exec --verify refuses an unsigned image, a wrong key and a tampered image" {
	run_sifu exec --verify="$SIFU_FIXTURES/sif/ed25519-public.pem" "$D/unsigned.sif" echo no
	assert_sifu_error
	[[ "$output" == *"refusing to run"* ]]
	[[ "$output" != *no* || "$output" == *"not signed"* ]]
	run_sifu exec --verify="$SIFU_FIXTURES/sif/rsa-public.pem" "$D/signed.sif" echo no
	assert_sifu_error
	[[ "$output" == *"refusing to run"* ]]
	cp "$D/signed.sif" "$D/tampered.sif"
	# flip one byte inside the SquashFS partition (its offset from sif list)
	off=$("$SIFU" sif list "$D/tampered.sif" | awk -F'|' '$1 ~ /^1 /{split($4, r, "-"); print r[1]}')
	printf 'X' | dd of="$D/tampered.sif" bs=1 seek=$((off + 200)) conv=notrunc status=none
	run_sifu exec --verify="$SIFU_FIXTURES/sif/ed25519-public.pem" "$D/tampered.sif" echo no
	assert_sifu_error
	[[ "$output" == *"refusing to run"* ]]
	[ "$(message_count)" -eq 1 ]
}

@test "exec --verify on a bare SquashFS says only SIF images carry signatures" {
	run_sifu exec --verify "$D/img.sqfs" true
	assert_sifu_error
	[[ "$output" == *"only SIF images carry signatures"* ]]
}
