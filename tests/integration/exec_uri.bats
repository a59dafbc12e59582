#!/usr/bin/env bats
# `sifu exec docker://…` (and oci:, …): pull into the cache once, then run
# from the cached SIF, as Apptainer does.
load helpers

ROOT=$BATS_TEST_DIRNAME/../..

setup_file() {
	local d=$BATS_FILE_TMPDIR
	export SIFU_CACHEDIR=$d/cache
	python3 "$BATS_TEST_DIRNAME/pull_image.py" "$d/img"
	REGISTRY=$("$ROOT/scripts/registry" start "$d/reg")
	echo "REGISTRY=$REGISTRY" >"$d/vars"
	skopeo copy -q --dest-tls-verify=false oci:"$d/img":latest docker://"$REGISTRY"/sifu/run:1
}

teardown_file() {
	"$ROOT/scripts/registry" stop "$BATS_FILE_TMPDIR/reg" || true
}

setup() {
	. "$BATS_FILE_TMPDIR/vars"
	require_feature "user namespaces" unshare -Ur true
}

@test "exec oci:DIR runs a command from the image" {
	run_sifu -q exec oci:"$BATS_FILE_TMPDIR/img":latest cat /etc/os-release
	[ "$status" -eq 0 ]
	[[ "$output" == *"ID=sifutest"* ]]
}

@test "exec docker:// pulls once into the cache and runs; the second run reuses it" {
	run_sifu -q exec --nohttps docker://"$REGISTRY"/sifu/run:1 cat /etc/os-release
	[ "$status" -eq 0 ]
	[[ "$output" == *"ID=sifutest"* ]]
	n=$(ls "$SIFU_CACHEDIR"/sif | wc -l)
	[ "$n" -ge 1 ]
	before=$(stat -c %Y "$SIFU_CACHEDIR"/sif/*)
	# the runscript from ENTRYPOINT/CMD, through run
	run_sifu -q run --nohttps docker://"$REGISTRY"/sifu/run:1 more
	[ "$status" -eq 0 ]
	[[ "$output" == *"entry more"* ]]
	[ "$(ls "$SIFU_CACHEDIR"/sif | wc -l)" -eq "$n" ]
	[ "$(stat -c %Y "$SIFU_CACHEDIR"/sif/*)" = "$before" ]
}

@test "exec docker:// of a missing image: one line, exit 255, nothing cached" {
	run_sifu -q exec --nohttps docker://"$REGISTRY"/sifu/none:1 true
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[[ "$output" == *"docker://$REGISTRY/sifu/none:1"* ]]
}
