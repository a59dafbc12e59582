#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Apptainer's build options and definition-file details (issue 17, build:):
# --bind/--mount for %post and %test, --writable-tmpfs for %test, %pre,
# "%post -c CMD ARGS", comments in %files, --reproducible/SOURCE_DATE_EPOCH,
# --mksquashfs-args, --warn-unused-build-args.  Reference: Apptainer's
# cmd/internal/cli/build*.go, internal/pkg/build/{build,stage,util}.go and
# e2e/imgbuild/imgbuild.go.  The definition is docs/build.md's example.
load helpers

setup_file() {
	local d=$BATS_FILE_TMPDIR
	export TMPDIR=$d/tmp
	mkdir -p "$TMPDIR" "$d/data"
	echo canary >"$d/data/canary"
	# the ```singularity block after docs/build.md's compat_build marker
	awk '/<!-- compat_build: binds.def -->/{m=1; next} m && /^```singularity$/{f=1; next}
	     f && /^```$/{exit} f' "$BATS_TEST_DIRNAME/../../docs/build.md" >"$d/binds.def"
	grep -q '^Bootstrap: busybox' "$d/binds.def"
}

setup() {
	cd "$BATS_FILE_TMPDIR"
}

# the binds of docs/build.md's command line
binds() { echo --bind data:/mnt --mount "type=bind,src=$PWD/data,dst=/srv"; }

# e2e imgbuild buildBindMount ("Bind test dir to /mnt", "Mount test dir to
# /mnt": %post and %test read the host file) and testWritableTmpfs (%test
# touches a file); internal/pkg/build/stage.go runPostScript/runTestScript
@test "build --bind/--mount reach %post and %test, --writable-tmpfs lets %test write" {
	# shellcheck disable=SC2046
	run "$SIFU" build -F $(binds) --writable-tmpfs binds.sif binds.def
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run "$SIFU" exec binds.sif cat /from-host
	[ "$output" = "$(printf 'canary\ncanary')" ]
	# without --writable-tmpfs %test runs on a read-only root, as Apptainer
	# shellcheck disable=SC2046
	run "$SIFU" build -F $(binds) ro.sif binds.def
	[ "$status" -eq 255 ]
	[[ "$output" == *"Read-only file system"*"%test failed"* ]]
	[ ! -e ro.sif ]
}

# e2e imgbuild buildBindMount ("Bind test dir to /mnt read-only", "... to
# non-existent image directory": exit 255)
@test "build --bind: a read-only bind stays read-only, a missing destination fails" {
	printf 'Bootstrap: busybox\n%%setup\n    mkdir "$APPTAINER_ROOTFS/mnt"\n%%post\n    mkdir /mnt/should_fail\n' >ro.def
	run "$SIFU" build -F --bind data:/mnt:ro ro.sif ro.def
	[ "$status" -eq 255 ]
	[ ! -e data/should_fail ]
	printf 'Bootstrap: busybox\n%%post\n    cat /fake/dir/canary\n' >fake.def
	run "$SIFU" build -F --bind data:/fake/dir fake.sif fake.def
	[ "$status" -eq 255 ]
	[[ "$output" == *"/fake/dir"* ]]
}

# internal/pkg/build/build.go: runHostScript("pre") before the bootstrap,
# on the host, with APPTAINER_ROOTFS
@test "build runs %pre on the host before the bootstrap" {
	rm -f pre.count pre.root
	printf 'Bootstrap: busybox\n%%pre\n    echo "$APPTAINER_ROOTFS" > pre.root\n    ls -A "$APPTAINER_ROOTFS" | wc -l > pre.count\n' >pre.def
	run "$SIFU" build -F pre.sif pre.def
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[[ "$(cat pre.root)" == /* ]]
	[ "$(cat pre.count)" = 0 ]
}

# internal/pkg/build/util.go getSectionScriptArgs: every word after -c is
# the interpreter's command line, the script comes last
@test "build: %post -c /bin/busybox sh runs the script with busybox's sh" {
	printf 'Bootstrap: busybox\n%%post -c /bin/busybox sh # the applet\n    echo "$0" > /interp\n' >c.def
	run "$SIFU" build -F c.sif c.def
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run "$SIFU" exec c.sif cat /interp
	[ "$output" = /.post.script ]
}

# internal/pkg/build/stage.go copyFilesFrom (section arguments cut at '#');
# a comment after a line's paths, as in docs/build.md's example
@test "build: comments after %files and %files from STAGE, and after a line's paths" {
	printf 'Bootstrap: busybox\nStage: one\n%%files # in\n    data/canary /c\nBootstrap: busybox\n%%files from one # the canary\n    /c /d # copied\n' >two.def
	run "$SIFU" build -F two.sif two.def
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run "$SIFU" exec two.sif cat /d
	[ "$output" = canary ]
}

# e2e imgbuild reproducibleBuild ("SourceDateEpoch", "Reproducible (flag)"):
# two builds, one file; internal/pkg/build/assemblers/sif.go (nil id),
# metadata.go addBuildLabels (the build date)
@test "build with SOURCE_DATE_EPOCH or --reproducible gives byte-identical SIFs" {
	printf 'Bootstrap: busybox\n%%files\n    data/canary /c\n%%post\n    echo made > /made\n' >rep.def
	for i in 1 2; do
		SOURCE_DATE_EPOCH=1700000000 "$SIFU" -q build -F "sde$i.sif" rep.def 2>/dev/null
		sleep 1
	done
	cmp sde1.sif sde2.sif
	run "$SIFU" inspect --labels sde1.sif
	[[ "$output" == *"build-date: Tuesday_14_November_2023_22:13:20_UTC"* ]]
	run "$SIFU" sif header --json sde1.sif
	[[ "$output" == *'"id": null'* ]] || { echo "$output"; false; }
	for i in 1 2; do
		"$SIFU" -q build -F --reproducible "rep$i.sif" rep.def 2>/dev/null
		sleep 1
	done
	cmp rep1.sif rep2.sif
}

# The SquashFS partition of SIF $1 at ./part.sqfs
dump_squash() {
	local id
	id=$("$SIFU" sif list "$1" | awk -F'|' '/FS \(Squashfs/{print $1+0}')
	"$SIFU" sif dump "$id" "$1" >part.sqfs
}

# e2e imgbuild buildExtraArgs (--mksquashfs-args "-comp lz4")
@test "build --mksquashfs-args: -comp and -b apply, unknown options are refused" {
	printf 'Bootstrap: busybox\n' >small.def
	run "$SIFU" build -F --mksquashfs-args "-comp lz4 -b 64K -noappend" small.sif small.def
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	dump_squash small.sif
	# superblock: block size (u32) at 12, compressor (u16, lz4 = 5) at 20
	[ "$(od -An -tu4 -j12 -N4 part.sqfs | tr -d ' ')" = 65536 ]
	[ "$(od -An -tu2 -j20 -N2 part.sqfs | tr -d ' ')" = 5 ]
	run "$SIFU" build -F --mksquashfs-args "-e /etc" bad.sif small.def
	[ "$status" -eq 255 ]
	[[ "$output" == *"--mksquashfs-args: -e is not supported"* ]]
	[ ! -e bad.sif ]
}

# cmd/internal/cli/build_linux.go (the messages); e2e imgbuild
# buildDefinitionWithBuildArgs ("unused build args: ADDITION. Use option
# --warn-unused-build-args ...")
@test "build: an unused --build-arg is refused, a warning with --warn-unused-build-args" {
	printf 'Bootstrap: busybox\n%%post\n    echo {{ USED }} > /used\n' >args.def
	run "$SIFU" build -F --build-arg USED=1 --build-arg ADDITION=2 args.sif args.def
	[ "$status" -eq 255 ]
	[[ "$output" == *"unused build args: ADDITION. Use option --warn-unused-build-args to show a warning instead of a fatal message"* ]]
	[ ! -e args.sif ]
	run "$SIFU" build -F --warn-unused-build-args --build-arg USED=1 --build-arg ADDITION=2 args.sif args.def
	[ "$status" -eq 0 ]
	[[ "$output" == *"Unused build args: ADDITION"* ]]
	run "$SIFU" exec args.sif cat /used
	[ "$output" = 1 ]
}

# e2e/imgbuild/imgbuild.go buildDataPartition ("--data" from a SquashFS
# file, ensureImageHasDataPartition); internal/pkg/build/sources CopyPacker
# (the SquashFS is copied, not re-encoded) and assemblers/sif.go (PartData,
# the host's architecture).  The result is what an image bind reads.
@test "build --data: a SquashFS file or a directory becomes a SIF's data partition" {
	local d=$BATS_TEST_TMPDIR
	mkdir -p "$d/tree/sub"
	echo hi >"$d/tree/sub/f"
	mksquashfs "$d/tree" "$d/t.sqfs" -quiet -noappend >/dev/null
	run "$SIFU" build --data "$d/a.sif" "$d/t.sqfs"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run "$SIFU" sif list "$d/a.sif"
	[[ "$output" == *"FS (Squashfs/Data/"* ]] || { echo "$output"; false; }
	[[ "$output" != *"Definition"* ]]
	"$SIFU" sif dump 1 "$d/a.sif" | cmp - "$d/t.sqfs"
	run "$SIFU" build --data "$d/b.sif" "$d/tree"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run "$SIFU" sif list "$d/b.sif"
	[[ "$output" == *"FS (Squashfs/Data/"* ]]
	busybox_tree "$d/base"
	mksquashfs "$d/base" "$d/base.sqfs" -quiet -noappend >/dev/null
	run "$SIFU" exec -B "$d/b.sif:/data:image-src=/" "$d/base.sqfs" cat /data/sub/f
	[ "$status" -eq 0 ] && [ "$output" = hi ] || { echo "$output"; false; }
	# a definition file into a data partition: not in sifu yet, said so
	run "$SIFU" build --data "$d/c.sif" binds.def
	assert_sifu_error
	[[ "$output" == *"--data makes a SIF from a directory or a SquashFS file"* ]]
	[ ! -e "$d/c.sif" ]
}

# cmd/internal/cli/build.go --no-cleanup ("do NOT clean up bundle after
# failed build, can be helpful for debugging", EnvKeys NOCLEANUP)
@test "build --no-cleanup keeps a failed build's directory and names it" {
	local d=$BATS_TEST_TMPDIR
	mkdir -p "$d/t1" "$d/t2"
	printf 'Bootstrap: busybox\n%%post\n    echo was-here >/marker\n    exit 3\n' >"$d/fail.def"
	TMPDIR=$d/t1 run "$SIFU" build --no-cleanup "$d/f.sif" "$d/fail.def"
	[ "$status" -eq 255 ] || { echo "$output"; false; }
	[ ! -e "$d/f.sif" ]
	local kept
	kept=$(printf '%s\n' "$output" | sed -n 's/.*the failed build.s directory is kept: //p')
	[ -n "$kept" ] && [ -d "$kept" ] || { echo "$output"; false; }
	[[ "$kept" == "$d/t1/"* ]]
	grep -rqs was-here "$kept" || find "$kept" -name marker | grep -q .
	# without it, nothing is left behind
	TMPDIR=$d/t2 APPTAINER_NOCLEANUP= run "$SIFU" build "$d/f.sif" "$d/fail.def"
	[ "$status" -eq 255 ]
	[ -z "$(ls -A "$d/t2")" ] || { ls -la "$d/t2"; false; }
	chmod -R u+rwX "$kept" && rm -rf "$kept"
}
