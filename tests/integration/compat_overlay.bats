#!/usr/bin/env bats
# Apptainer compatibility of --overlay and image binds (issue 16, "Overlays"
# and "Image binds"): several overlays at once, SquashFS files and SIF
# overlay partitions as read-only layers, one writable layer at most, and
# -B IMAGE:DST:image-src=SRC,id=N served by sifu's own FUSE server.  Runs as
# root and as the unprivileged user sifu-test; each test names the Apptainer
# e2e test (e2e/actions/actions.go) or user guide section it follows.
load helpers

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	local t=$IMG/tree
	busybox_tree "$t"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/base.sqfs" -noappend -quiet -all-root >/dev/null
	# two layers that both hold /data/f, each with a file of its own
	mkdir -p "$IMG/a/data" "$IMG/b/data"
	echo A >"$IMG/a/data/f"
	echo A >"$IMG/a/only_a"
	echo B >"$IMG/b/data/f"
	echo B >"$IMG/b/only_b"
	ln -s ../.. "$IMG/b/data/up"  # climbs out of the image from /data
	ln -s /etc "$IMG/b/data/abs"  # absolute: the host's /etc if followed
	mksquashfs "$IMG/a" "$IMG/a.sqfs" -noappend -quiet -all-root >/dev/null
	mksquashfs "$IMG/b" "$IMG/b.sqfs" -noappend -quiet -all-root >/dev/null
	# SIF files made by the reference tool: two data partitions (ids 1 and
	# 2), and an overlay partition
	siftool new "$IMG/data.sif" >/dev/null
	siftool add --datatype 4 --parttype 3 --partfs 1 --partarch 2 "$IMG/data.sif" \
		"$IMG/a.sqfs" >/dev/null
	siftool add --datatype 4 --parttype 3 --partfs 1 --partarch 2 "$IMG/data.sif" \
		"$IMG/b.sqfs" >/dev/null
	siftool new "$IMG/overlay.sif" >/dev/null
	siftool add --datatype 4 --parttype 4 --partfs 1 --partarch 2 "$IMG/overlay.sif" \
		"$IMG/b.sqfs" >/dev/null
	chmod -R a+rX "$IMG"
}

base() { echo "$IMG/base.sqfs"; }

# e2e PersistentOverlay "overlay_squashFS_find" and
# "overlay_squashFS_find_without_ro": a SquashFS file is a read-only layer,
# with or without :ro, and the root stays read-only
@test "--overlay SQUASHFS: a read-only layer, with or without :ro" {
	run_sifu exec --overlay "$IMG/a.sqfs:ro" "$(base)" cat /only_a
	[ "$status" -eq 0 ] && [ "$output" = A ]
	run_sifu exec --overlay "$IMG/a.sqfs" "$(base)" sh -c 'cat /data/f; touch /x'
	[ "$status" -eq 1 ]
	[[ "$output" == A*"Read-only file system"* ]]
}

# e2e PersistentOverlay "overlay_multiple_find_squashfs"; the order is
# Apptainer's (container_linux.go: AddLowerDir puts each --overlay above
# the ones before it): the last --overlay given wins
@test "several --overlay: every layer is seen, the last one given is on top" {
	run_sifu exec --overlay "$IMG/a.sqfs" --overlay "$IMG/b.sqfs" "$(base)" \
		cat /data/f /only_a /only_b
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'B\nA\nB')" ]
	run_sifu exec --overlay "$IMG/b.sqfs" --overlay "$IMG/a.sqfs" "$(base)" cat /data/f
	[ "$status" -eq 0 ] && [ "$output" = A ]
}

# e2e PersistentOverlay "overlay_multiple_create" / "overlay_multiple_find_ext3"
# (there with an ext3 file as the writable layer): a writable directory on
# top of a SquashFS overlay takes the writes, which persist
@test "--overlay DIR above a SquashFS overlay takes the writes" {
	local ov=$BATS_TEST_TMPDIR/ov
	mkdir "$ov"
	run_sifu exec --overlay "$IMG/a.sqfs:ro" --overlay "$ov" "$(base)" \
		sh -c 'cat /data/f && echo W >/data/f && touch /multiple_overlay_fs'
	[ "$status" -eq 0 ] && [ "$output" = A ]
	[ "$(cat "$ov/upper/data/f")" = W ]
	run_sifu exec --overlay "$IMG/a.sqfs:ro" --overlay "$ov" "$(base)" \
		sh -c 'cat /data/f && test -f /multiple_overlay_fs'
	[ "$status" -eq 0 ] && [ "$output" = W ]
	# the same directory read-only: its upper/ is the layer, as in Apptainer
	run_sifu exec --overlay "$ov:ro" "$(base)" sh -c 'cat /data/f; touch /y'
	[ "$status" -eq 1 ]
	[[ "$output" == W*"Read-only file system"* ]]
}

# prepare_linux.go loadOverlayImages: "Overlay image %s is not writable,
# proceeding with read-only" (a warning, the run goes on)
@test "--overlay DIR the caller cannot write is used read-only" {
	# root may write any directory: the test is the unprivileged user's
	is_root && return 0
	local ov=$BATS_TEST_TMPDIR/ro
	mkdir -p "$ov/upper"
	echo R >"$ov/upper/r"
	chmod 0555 "$ov" "$ov/upper"
	run_sifu exec --overlay "$ov" "$(base)" cat /r
	chmod 0755 "$ov" "$ov/upper"
	[ "$status" -eq 0 ]
	[[ "$output" == *"is not writable, proceeding with read-only"* ]]
	[[ "$output" == *R ]]
}

# e2e PersistentOverlay "overlay_multiple_writable_fail" (255; the message
# is prepare_linux.go loadOverlayImages')
@test "two writable overlays are refused" {
	mkdir "$BATS_TEST_TMPDIR/o1" "$BATS_TEST_TMPDIR/o2"
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/o1" --overlay "$BATS_TEST_TMPDIR/o2" "$(base)" true
	assert_sifu_error
	[[ "$output" == *"you can't specify more than one writable overlay"* ]]
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/o1" --overlay "$BATS_TEST_TMPDIR/o2:ro" \
		"$(base)" true
	[ "$status" -eq 0 ]
}

# e2e PersistentOverlay "overlay_find_with_writable_fail": --writable with
# --overlay exits 255; a writable sandbox does not drop the overlay either
@test "--overlay with --writable is refused" {
	mkdir "$BATS_TEST_TMPDIR/o1"
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/o1" --writable "$(base)" true
	assert_sifu_error
	cp -a "$IMG/tree" "$BATS_TEST_TMPDIR/sandbox"
	run_sifu exec --overlay "$IMG/a.sqfs" --writable "$BATS_TEST_TMPDIR/sandbox" true
	assert_sifu_error
	[[ "$output" == *"--writable and --overlay"* ]]
}

# user guide "Persistent overlays" (overlay partitions in a SIF): a SIF's
# SquashFS overlay partition is a read-only layer; the file is made by
# siftool (the reference) and by sifu's own sif verbs
@test "--overlay SIF: its SquashFS overlay partition is a read-only layer" {
	run_sifu exec --overlay "$IMG/overlay.sif" "$(base)" sh -c 'cat /only_b; touch /z'
	[ "$status" -eq 1 ]
	[[ "$output" == B*"Read-only file system"* ]]
	local s=$BATS_TEST_TMPDIR/own.sif
	"$SIFU" sif new "$s"
	"$SIFU" sif add "$s" "$IMG/a.sqfs" --datatype 4 --parttype 4 --partfs 1 --partarch 2
	run_sifu exec --overlay "$s" "$(base)" cat /only_a
	[ "$status" -eq 0 ] && [ "$output" = A ]
}

# An ext3 overlay image as Apptainer's `overlay create` makes one: upper/
# and work/ at its root, the user's (mkfs.ext3 -d copies the owners).
mk_ext3() {
	local src=$BATS_TEST_TMPDIR/ext3src
	mkdir -p "$src/upper" "$src/work"
	PATH=$PATH:/usr/sbin:/sbin mkfs.ext3 -q -E root_owner="$(id -u):$(id -g)" -d "$src" -F "$1" 16M >/dev/null
}

# e2e PersistentOverlay "overlay_ext3_create" and "overlay_ext3_find" (and
# the _ro variant): writes to an ext3 overlay land in its upper/ and stay
# there; with :ro the layer is read and the root stays read-only.  Served
# by sifu's own libext2fs server, and the image is clean afterwards.
@test "--overlay EXT3: writes persist in the image, :ro reads them" {
	local e=$BATS_TEST_TMPDIR/ov.img
	mk_ext3 "$e"
	run_sifu exec --overlay "$e" "$(base)" sh -c 'echo kept >/new && mkdir /made && rm /bin/true'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run_sifu exec --overlay "$e:ro" "$(base)" sh -c 'cat /new; test -d /made && test ! -e /bin/true && touch /x'
	[ "$status" -eq 1 ]
	[[ "$output" == kept*"Read-only file system"* ]]
	run env PATH="$PATH:/usr/sbin:/sbin" e2fsck -fn "$e"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run env PATH="$PATH:/usr/sbin:/sbin" debugfs -R 'cat /upper/new' "$e"
	[[ "$output" == *kept* ]]
}

# prepare_linux.go loadOverlayImages: an overlay image the caller cannot
# write is used read-only, with a warning
@test "--overlay EXT3 the caller cannot write is used read-only" {
	# root may write any file: the test is the unprivileged user's
	is_root && return 0
	local e=$BATS_TEST_TMPDIR/ro.img
	mk_ext3 "$e"
	chmod 0444 "$e"
	run_sifu exec --overlay "$e" "$(base)" touch /x
	[ "$status" -eq 1 ]
	[[ "$output" == *"is not writable, proceeding with read-only"*"Read-only file system"* ]]
}

# user guide "Persistent overlays", "Overlay embedded in the SIF image" and
# e2e PersistentOverlay "overlay_find_with_writable" / prepare_linux.go:
# the SIF's own ext3 overlay partition is a read-only layer, read-write
# with --writable; --writable on a SIF without one is Apptainer's error.
# An ext3 partition of another SIF works as --overlay too.
@test "a SIF's own ext3 overlay partition: read-only, --writable writes into it" {
	local e=$BATS_TEST_TMPDIR/emb.img s=$BATS_TEST_TMPDIR/emb.sif p=$BATS_TEST_TMPDIR/plain.sif
	mk_ext3 "$e"
	"$SIFU" sif new "$s"
	"$SIFU" sif add "$s" "$IMG/base.sqfs" --datatype 4 --parttype 2 --partfs 1 --partarch 2
	"$SIFU" sif add "$s" "$e" --datatype 4 --parttype 4 --partfs 2 --partarch 2
	run_sifu exec --writable "$s" sh -c 'echo in >/inside'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run_sifu exec "$s" sh -c 'cat /inside; touch /y'
	[ "$status" -eq 1 ]
	[[ "$output" == in*"Read-only file system"* ]]
	run_sifu exec --overlay "$s" "$(base)" cat /inside
	[ "$status" -eq 0 ] && [ "$output" = in ]
	"$SIFU" sif new "$p"
	"$SIFU" sif add "$p" "$IMG/base.sqfs" --datatype 4 --parttype 2 --partfs 1 --partarch 2
	run_sifu exec --writable "$p" true
	assert_sifu_error
	[[ "$output" == *"no SIF writable overlay partition found in $p"* ]]
}

# e2e bindImage "Ext3Write", "Ext3WriteKO": an ext3 image's directory
# bound with image-src= takes writes (kept in the image), and not with ro
@test "-B EXT3:DST:image-src=: read-write, or read-only with ro" {
	local e=$BATS_TEST_TMPDIR/b.img
	mkdir -p "$BATS_TEST_TMPDIR/ext3src/upper"
	echo E >"$BATS_TEST_TMPDIR/ext3src/upper/e"
	mk_ext3 "$e"
	run_sifu exec -B "$e:/bind:image-src=/upper" "$(base)" sh -c 'cat /bind/e; echo M >/bind/m'
	[ "$status" -eq 0 ] && [ "$output" = E ]
	run_sifu exec -B "$e:/bind:image-src=/,ro" "$(base)" sh -c 'cat /bind/upper/m; touch /bind/n'
	[ "$status" -eq 1 ]
	[[ "$output" == M*"Read-only file system"* ]]
}

# e2e bindImage "Squashfs", "SquashfsDouble", "NoBindOption": image-src
# binds the image's directory; without image-src or id the file itself
@test "-B SQUASHFS:DST:image-src=: the image's directory, read-only" {
	run_sifu exec -B "$IMG/b.sqfs:/bind:image-src=/data" -B "$IMG/a.sqfs:/bind2:image-src=/" \
		"$(base)" sh -c 'cat /bind/f /bind2/only_a; touch /bind/n'
	[ "$status" -eq 1 ]
	[[ "$output" == "B"*"A"*"Read-only file system"* ]]
	run_sifu exec -B "$IMG/b.sqfs:/bind" "$(base)" test -f /bind/only_b
	[ "$status" -eq 1 ]
}

# e2e bindImage "SifDataSquash", "SifWithID", "MountSifWithID": a SIF's
# first data partition by default, the partition of descriptor id=N when
# given, in -B and in --mount
@test "-B SIF:DST:image-src=,id=N and --mount ...,image-src=,id=N" {
	run_sifu exec -B "$IMG/data.sif:/d:image-src=/data" "$(base)" cat /d/f
	[ "$status" -eq 0 ] && [ "$output" = A ]
	run_sifu exec -B "$IMG/data.sif:/d:image-src=/data,id=2" "$(base)" cat /d/f
	[ "$status" -eq 0 ] && [ "$output" = B ]
	run_sifu exec --mount "type=bind,src=$IMG/data.sif,dst=/d,image-src=/data,id=2" \
		"$(base)" cat /d/f
	[ "$status" -eq 0 ] && [ "$output" = B ]
	run_sifu exec -B "$IMG/data.sif:/d:id=1" "$(base)" cat /d/only_a
	[ "$status" -eq 0 ] && [ "$output" = A ]
}

# e2e bindImage "SquashfsBeforeScratch" and "ScratchBeforeSquashfs": an
# image bound below a bound directory is seen whatever the order
@test "an image bind below a directory bind is seen in either order" {
	mkdir -p "$BATS_TEST_TMPDIR/scratch"
	run_sifu exec -B "$IMG/b.sqfs:/scratch/bin:image-src=/data" \
		-B "$BATS_TEST_TMPDIR/scratch:/scratch" "$(base)" cat /scratch/bin/f
	[ "$status" -eq 0 ] && [ "$output" = B ]
	run_sifu exec -B "$BATS_TEST_TMPDIR/scratch:/scratch" \
		-B "$IMG/b.sqfs:/scratch/bin:image-src=/data" "$(base)" cat /scratch/bin/f
	[ "$status" -eq 0 ] && [ "$output" = B ]
}

# e2e bindImage "BadIDValue", "BadBindOption", "SandboxKO" (255 each), a
# missing partition id ("no data partition found", container_linux.go
# addImageBindMount) and a missing image-src ("doesn't exist in image")
@test "image binds: bad id, unknown option, a directory, a missing id or path" {
	run_sifu exec -B "$IMG/b.sqfs:/bind:id=0" "$(base)" true
	assert_sifu_error
	[[ "$output" == *"greater than 0"* ]]
	run_sifu exec -B "$IMG/b.sqfs:/bind:fake_option=fake" "$(base)" true
	assert_sifu_error
	run_sifu exec -B "$IMG/b:/bind:image-src=/" "$(base)" true
	assert_sifu_error
	run_sifu exec -B "$IMG/data.sif:/bind:id=9" "$(base)" true
	assert_sifu_error
	[[ "$output" == *"no data partition"* ]]
	run_sifu exec -B "$IMG/b.sqfs:/bind:image-src=/nope" "$(base)" true
	assert_sifu_error
	[[ "$output" == *"/nope doesn't exist in image"* ]]
}

# sifu's own rule (Apptainer joins the path to its mount point and checks
# nothing): image-src never leaves the image, by ".." or by a symlink
@test "image-src cannot leave the image with .. or a symlink" {
	local src
	for src in /../etc /data/up /data/abs /data/up/etc; do
		run_sifu exec -B "$IMG/b.sqfs:/bind:image-src=$src" "$(base)" ls /bind
		assert_sifu_error
		[[ "$output" == *"leads out of image"* ]]
	done
	# a ".." that stays inside is followed
	run_sifu exec -B "$IMG/b.sqfs:/bind:image-src=/data/../data" "$(base)" cat /bind/f
	[ "$status" -eq 0 ] && [ "$output" = B ]
}
