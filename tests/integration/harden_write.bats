#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Writing outputs (issue 14, item 11): build, pull and sif new write under a
# temporary name and rename into place; a failure, the final rename
# included, leaves nothing behind, and an output name that is a directory or
# another user's symbolic link is refused in one line, never followed.
load helpers

MKIMG=$BATS_TEST_DIRNAME/pull_image.py

setup_file() {
	local d=$BATS_FILE_TMPDIR
	python3 "$MKIMG" "$d/img" --no-zstd >/dev/null
	skopeo copy -q oci:"$d/img":latest oci-archive:"$d/img.oci.tar":latest
	mkdir "$d/box"
	echo hi >"$d/box/f"
}

setup() {
	export SIFU_CACHEDIR=$BATS_TEST_TMPDIR/cache
	cd "$BATS_TEST_TMPDIR"
}

# the three writers of a new image, each told to write OUT
write_build() { run_sifu -q build -F "$1" "$BATS_FILE_TMPDIR/box"; }
write_pull() { run_sifu -q pull -F "$1" oci-archive:"$BATS_FILE_TMPDIR/img.oci.tar"; }
write_new() { run_sifu sif new "$1"; }

@test "an output name that is a directory: build, pull, sif new fail in one line, leave nothing" {
	mkdir out out/o.sif
	for w in write_build write_pull write_new; do
		"$w" out/o.sif
		assert_sifu_error
		[ "$(message_count)" -eq 1 ] || { echo "$w: $output" >&2; false; }
		[[ "$output" == *"directory"* ]]
		# no temporary file of any name beside it, nothing in it
		[ "$(ls -A out)" = o.sif ] || { echo "$w left: $(ls -A out)" >&2; false; }
		[ -z "$(ls -A out/o.sif)" ]
	done
	# a bare SquashFS output (pull's own temporary file) the same
	mkdir out/o.sqfs
	write_pull out/o.sqfs
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[ "$(ls -A out | sort | tr '\n' ' ')" = "o.sif o.sqfs " ]
}

@test "the caller's own symlink as the output is replaced, never written through" {
	mkdir out
	echo victim >target
	for w in write_build write_pull write_new; do
		ln -sfn ../target out/o.sif
		"$w" out/o.sif
		[ "$status" -eq 0 ] || { echo "$w: $output" >&2; false; }
		[ ! -L out/o.sif ] && [ -f out/o.sif ]
		[ "$(cat target)" = victim ]
		[ "$(ls -A out)" = o.sif ]
	done
}

@test "another user's symlink in a sticky directory: refused in one line, not followed, nothing left" {
	# planting a link that someone else owns needs root (chown -h)
	is_root || return 0
	mkdir -m 1777 sticky
	echo victim >target
	for out in o.sif o.sqfs; do
		ln -s "$PWD/target" "sticky/$out"
		chown -h sifu-subid "sticky/$out"
	done
	for w in write_build write_pull write_new; do
		"$w" sticky/o.sif
		assert_sifu_error
		[ "$(message_count)" -eq 1 ] || { echo "$w: $output" >&2; false; }
		[[ "$output" == *"symbolic link owned by uid $(id -u sifu-subid)"* ]]
		[ -L sticky/o.sif ] && [ "$(stat -c %U sticky/o.sif)" = sifu-subid ]
		[ "$(cat target)" = victim ]
		[ "$(ls -A sticky | sort | tr '\n' ' ')" = "o.sif o.sqfs " ] ||
			{ echo "$w left: $(ls -A sticky)" >&2; false; }
	done
	write_pull sticky/o.sqfs
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[ "$(ls -A sticky | sort | tr '\n' ' ')" = "o.sif o.sqfs " ]
	[ "$(cat target)" = victim ]
}
