#!/usr/bin/env bats
# `sifu overlay create` (issue 17, "Verbs and options"): Apptainer's
# persistent overlays, made as an ext3 image file or as an overlay
# partition added to a SIF, and used by sifu's own --overlay and
# --writable.  Each test names the Apptainer e2e test (e2e/overlay/
# overlay.go testOverlayCreate) or user guide section ("Persistent
# overlays") it follows.  Runs as root and as the unprivileged user.
load helpers

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	busybox_tree "$IMG/tree"
	mksquashfs "$IMG/tree" "$IMG/base.sqfs" -noappend -quiet -all-root >/dev/null
	"$SIFU" sif new "$IMG/base.sif"
	"$SIFU" sif add "$IMG/base.sif" "$IMG/base.sqfs" --datatype 4 --parttype 2 --partfs 1 \
		--partarch 2 --groupid 1
	chmod -R a+rX "$IMG"
}

setup() {
	require_feature "FUSE (/dev/fuse usable)" test -w /dev/fuse
	cd "$BATS_TEST_TMPDIR"
	# e2fsck and debugfs check the images; they live in sbin
	PATH="$PATH:/usr/sbin:/sbin"
}

# e2fsck -fn: the image is clean
fsck_clean() {
	run e2fsck -fn "$1"
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
}

# owner PATH IMAGE: "UID:GID" of PATH inside the ext3 image
owner() {
	debugfs -R "stat $1" "$2" 2>/dev/null | sed -n 's/.*User: *\([0-9]*\) *Group: *\([0-9]*\).*/\1:\2/p'
}

# e2e testOverlayCreate "create ext3 overlay image", "check ext3 overlay
# size"; user guide "Persistent overlays", "File system image overlay":
# 64 MiB by default, /upper and /work owned by the caller, and the image
# works read-write with --overlay
@test "overlay create IMG: an ext3 image with upper/ and work/, the caller's" {
	run_sifu overlay create ov.img
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$(stat -c %s ov.img)" = 67108864 ]
	[ "$(stat -c %a ov.img)" = 600 ]
	fsck_clean ov.img
	run debugfs -R 'ls /' ov.img
	[[ "$output" == *upper*work* ]] || [[ "$output" == *work*upper* ]]
	[ "$(owner /upper ov.img)" = "$(id -u):$(id -g)" ]
	[ "$(owner /work ov.img)" = "$(id -u):$(id -g)" ]
	run_sifu exec --overlay ov.img "$IMG/base.sif" sh -c 'echo kept >/new'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run_sifu exec --overlay ov.img:ro "$IMG/base.sif" cat /new
	[ "$status" -eq 0 ] && [ "$output" = kept ]
	fsck_clean ov.img
	ls -A | grep -qv '^ov.img$' && { ls -A; false; }
	true
}

# e2e testOverlayCreate "create ext3 overlay image" with --size 128, "create
# ext3 sparse overlay image", "create ext3 overlay with small size" (255)
@test "overlay create --size, --sparse; under 64 MiB is refused" {
	run_sifu overlay create --size 128 big.img
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$(stat -c %s big.img)" = 134217728 ]
	# not sparse: every block allocated
	[ "$(($(stat -c %b big.img) * $(stat -c %B big.img)))" -ge 134217728 ]
	run_sifu overlay create -S -s 128 sparse.img
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$(stat -c %s sparse.img)" = 134217728 ]
	[ "$(($(stat -c %b sparse.img) * $(stat -c %B sparse.img)))" -lt 67108864 ]
	fsck_clean sparse.img
	run_sifu overlay create --size 1 small.img
	assert_sifu_error
	[[ "$output" == *"image size must be equal or greater than 64 MiB"* ]]
	[ ! -e small.img ]
	run_sifu overlay create --size 12x small.img
	assert_sifu_error
	[ ! -e small.img ]
}

# e2e testOverlayCreate "create ext3 overlay with an existing image" (255);
# internal/app/apptainer/overlay_create.go: a file that is neither is
# "destination image must be SIF image"; neither is touched
@test "overlay create on an existing ext3 image or a non-SIF file is refused" {
	"$SIFU" overlay create ov.img
	cp ov.img ov.before
	run_sifu overlay create ov.img
	assert_sifu_error
	[[ "$output" == *"EXT3 overlay image ov.img already exists"* ]]
	cmp ov.img ov.before
	echo text >plain
	run_sifu overlay create plain
	assert_sifu_error
	[[ "$output" == *"destination image must be SIF image"* ]]
	[ "$(cat plain)" = text ]
	[ "$(ls -A | sort | tr '\n' ' ')" = "ov.before ov.img plain " ]
}

# e2e testOverlayCreate "create ext3 overlay with dir" and "check overlay
# dir permissions": --create-dir makes the directory under upper/, and an
# unprivileged run may write in it; a directory out of upper/ is refused
@test "overlay create --create-dir: made under upper/, writable in the container" {
	run_sifu overlay create --create-dir /usr/local/testing --create-dir a/../b dir.img
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$(owner /upper/usr/local/testing dir.img)" = "$(id -u):$(id -g)" ]
	[ "$(owner /upper/b dir.img)" = "$(id -u):$(id -g)" ]
	fsck_clean dir.img
	run_sifu exec -o dir.img "$IMG/base.sif" mkdir /usr/local/testing/perms
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run debugfs -R 'ls /upper/usr/local/testing' dir.img
	[[ "$output" == *perms* ]]
	run_sifu overlay create --create-dir ../../etc out.img
	assert_sifu_error
	[[ "$output" == *"created outside of overlay layout"* ]]
	[ ! -e out.img ]
	[ "$(ls -A)" = dir.img ]
}

# overlay_create.go "--fakeroot": "make overlay layout usable by actions
# run with --fakeroot": the layout is root's, and a --fakeroot run writes
# into it
@test "overlay create --fakeroot: the layout is root's, for --fakeroot runs" {
	run_sifu overlay create --fakeroot fr.img
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$(owner /upper fr.img)" = 0:0 ]
	[ "$(owner /work fr.img)" = 0:0 ]
	[ "$(owner / fr.img)" = 0:0 ]
	run_sifu exec --fakeroot --overlay fr.img "$IMG/base.sif" sh -c 'echo r >/root-made; id -u'
	[ "$status" -eq 0 ] && [ "$output" = 0 ] || { echo "$output"; false; }
	run debugfs -R 'cat /upper/root-made' fr.img
	[[ "$output" == *r* ]]
	fsck_clean fr.img
}

# e2e testOverlayCreate "create ext3 overlay image in unsigned SIF" and "...
# in SIF with an existing overlay" (255); user guide "Overlay embedded in
# the SIF image": the partition is the writable layer of --writable
@test "overlay create SIF: an ext3 overlay partition that --writable writes into" {
	cp "$IMG/base.sif" t.sif
	run_sifu overlay create --create-dir /data t.sif
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run_sifu sif list t.sif
	[[ "$output" == *"|1       |NONE    |"*"|FS (Ext3/Overlay/amd64)"* ]] || { echo "$output"; false; }
	run_sifu exec --writable t.sif sh -c 'echo inside >/data/f'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run_sifu exec t.sif cat /data/f
	[ "$status" -eq 0 ] && [ "$output" = inside ]
	# the partition alone is a clean ext3 file system
	"$SIFU" sif dump 2 t.sif >part.img
	fsck_clean part.img
	cp t.sif t.before
	run_sifu overlay create t.sif
	assert_sifu_error
	[[ "$output" == *"a writable overlay partition already exists in t.sif (ID: 2), delete it first with \"sifu sif del 2 t.sif\""* ]]
	cmp t.sif t.before
	[ "$(ls -A | sort | tr '\n' ' ')" = "part.img t.before t.sif " ]
}

# e2e testOverlayCreate "create ext3 overlay image in signed SIF" (255): a
# signed SIF is left as it is
@test "overlay create on a signed SIF is refused and leaves it unchanged" {
	cp "$IMG/base.sif" s.sif
	head -c 64 /dev/zero >sig
	"$SIFU" sif add s.sif sig --datatype 5 --signhash 1 \
		--signentity 0123456789abcdef0123456789abcdef01234567 --link 1
	cp s.sif s.before
	run_sifu overlay create s.sif
	assert_sifu_error
	[[ "$output" == *"SIF image s.sif is signed: could not add writable overlay"* ]]
	cmp s.sif s.before
}

# overlay.go OverlayCmd: `overlay` alone is an error; cli: an Apptainer verb
# must not be answered with an unrelated one ("did you mean verify?")
@test "overlay: the verb resolves; no subcommand or an unknown one is a usage error" {
	run_sifu overlay
	assert_sifu_error
	[[ "$output" == *"overlay needs a subcommand: create"*"sifu overlay create [options] IMAGE"* ]]
	[[ "$output" != *"did you mean"* ]]
	run_sifu overlay remove x.img
	assert_sifu_error
	[[ "$output" == *"unknown subcommand 'remove'"* ]]
	[ ! -e x.img ]
	run_sifu overlay create
	assert_sifu_error
	run_sifu overlay --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"sifu overlay create [options] IMAGE"*"--create-dir"*"--sparse"* ]]
	run_sifu help overlay
	[ "$status" -eq 0 ]
	[[ "$output" == *"--fakeroot"* ]]
}

# docs/running.md "Making an overlay image": the guide's example runs as
# written and prints what the guide says
@test "docs/running.md's overlay example runs as written" {
	local doc="$BATS_TEST_DIRNAME/../../docs/running.md"
	awk '/^### Making an overlay image$/{f=1} f && /^```sh$/{g=1; next} g && /^```$/{exit} g' \
		"$doc" >example.sh
	grep -q '^sifu overlay create' example.sh
	cp "$IMG/base.sif" tool.sif
	mkdir bin
	ln -s "$SIFU" bin/sifu
	run env PATH="$PWD/bin:$PATH" sh -e example.sh
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = "$(printf 'kept\ninside')" ]
	fsck_clean overlay.img
}
