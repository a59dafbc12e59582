#!/usr/bin/env bats
# `sifu inspect` reads what lives inside the image's /.singularity.d (through
# the SquashFS reader of fuse/, no mount), when the SIF's metadata objects do
# not hold it — as for images made by mksquashfs and `sifu sif add`.
load helpers

setup_file() {
	export D="$BATS_FILE_TMPDIR"
	local r="$D/root"
	mkdir -p "$r/bin" "$r/.singularity.d/env"
	cp "$(command -v busybox)" "$r/bin/busybox"
	ln -s busybox "$r/bin/sh"
	printf '#!/bin/sh\necho running "$@"\n' >"$r/.singularity.d/runscript"
	printf '#!/bin/sh\nexit 0\n' >"$r/.singularity.d/test"
	printf 'Usage: give it words\n' >"$r/.singularity.d/runscript.help"
	printf '{"org.example.owner": "lab 7", "version": "1.2"}\n' >"$r/.singularity.d/labels.json"
	printf 'export GREETING=hello\n' >"$r/.singularity.d/env/90-environment.sh"
	ln -s .singularity.d/runscript "$r/singularity"
	mksquashfs "$r" "$D/img.sqfs" -noappend -all-root -quiet >/dev/null
	"$SIFU" sif new "$D/img.sif"
	"$SIFU" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 \
		"$D/img.sif" "$D/img.sqfs"
}

@test "inspect shows the labels from /.singularity.d/labels.json" {
	run_sifu inspect "$D/img.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"org.example.owner: lab 7"* ]]
	[[ "$output" == *"version: 1.2"* ]]
}

@test "inspect --runscript, --test, --helpfile, --environment read the image" {
	run_sifu inspect --runscript "$D/img.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *'echo running "$@"'* ]]
	run_sifu inspect --test "$D/img.sif"
	[[ "$output" == *"exit 0"* ]]
	run_sifu inspect --helpfile "$D/img.sif"
	[[ "$output" == *"Usage: give it words"* ]]
	run_sifu inspect --environment "$D/img.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"90-environment.sh"* ]]
	[[ "$output" == *"export GREETING=hello"* ]]
}

@test "inspect --all --json gives what there is; a missing startscript is one clear line" {
	run_sifu inspect --all "$D/img.sif"
	[ "$status" -eq 0 ]
	printf '%s' "$output" | python3 -c 'import json,sys
d=json.load(sys.stdin)["data"]["attributes"]
assert d["labels"]["version"] == "1.2", d
assert "echo running" in d["runscript"]
assert "startscript" not in d'
	run_sifu inspect --startscript "$D/img.sif"
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[[ "$output" == *"has no startscript"* ]]
}
