#!/usr/bin/env bats
# fuse/: `sifu mount` against the source tree it was built from, against
# squashfuse_ll, under 16 concurrent readers, and on broken images.
load helpers

tree_py() { python3 "$BATS_TEST_DIRNAME/fuse_tree.py" "$@"; }

setup_file() {
	export FT="$BATS_FILE_TMPDIR"
	python3 "$BATS_TEST_DIRNAME/fuse_tree.py" mktree "$FT/src"
	python3 "$BATS_TEST_DIRNAME/fuse_tree.py" listing "$FT/src" >"$FT/src.list"
	python3 "$BATS_TEST_DIRNAME/fuse_tree.py" listing "$FT/src" no-xattr >"$FT/src.noxattr.list"
}

setup() {
	require_feature "FUSE (/dev/fuse usable)" test -w /dev/fuse
	MNT="$BATS_TEST_TMPDIR/mnt"
	MPID=
}

teardown() {
	if [ -n "$MPID" ] && kill -0 "$MPID" 2>/dev/null; then
		kill -TERM "$MPID" 2>/dev/null || true
		wait "$MPID" 2>/dev/null || true
	fi
	for d in "$BATS_TEST_TMPDIR"/mnt*; do
		mountpoint -q "$d" 2>/dev/null && { fusermount3 -uz "$d" 2>/dev/null || umount -l "$d"; }
	done
	true
}

# mount_img IMAGE DIR [OPTIONS...]: sifu mount in the background until DIR is a mount
mount_img() {
	local img=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	"$SIFU" mount "$@" "$img" "$dir" 2>"$dir.log" &
	MPID=$!
	for _ in $(seq 200); do
		mountpoint -q "$dir" && return 0
		kill -0 "$MPID" 2>/dev/null || break
		sleep 0.05
	done
	echo "mount did not come up:" >&2
	cat "$dir.log" >&2
	return 1
}

# umount_img DIR: SIGTERM, the server must unmount, exit 0 and print its counters
umount_img() {
	local dir=$1 st=0
	kill -TERM "$MPID"
	wait "$MPID" || st=$?
	MPID=
	[ "$st" -eq 0 ] || { echo "sifu mount exited $st" >&2; cat "$dir.log" >&2; return 1; }
	if mountpoint -q "$dir"; then echo "$dir is still mounted" >&2; return 1; fi
	grep -q 'requests from the image; cache: ' "$dir.log"
}

# check_image IMAGE EXPECTED-LISTING [LISTING OPTIONS...]
check_image() {
	local img=$1 want=$2
	shift 2
	mount_img "$img" "$MNT"
	tree_py listing "$MNT" "$@" >"$BATS_TEST_TMPDIR/got.list"
	umount_img "$MNT"
	diff -u "$want" "$BATS_TEST_TMPDIR/got.list"
}

@test "fuse: mksquashfs images with every compressor match the source tree" {
	# both ways of reading the image file: page-cache mode (the default on
	# a local disk) and the chunk cache (the default on NFS, Lustre, ...)
	for comp in gzip xz lzo lz4 zstd; do
		echo "# $comp" >&3
		mksquashfs "$FT/src" "$BATS_TEST_TMPDIR/$comp.sqfs" -comp "$comp" -noappend -quiet -no-progress >/dev/null
		SIFU_IMAGE_IO=pagecache check_image "$BATS_TEST_TMPDIR/$comp.sqfs" "$FT/src.list"
		grep -q "(page-cache mode, served" "$MNT.log"
		SIFU_IMAGE_IO=chunks check_image "$BATS_TEST_TMPDIR/$comp.sqfs" "$FT/src.list"
		grep -q "(chunk mode, served" "$MNT.log"
		rm "$BATS_TEST_TMPDIR/$comp.sqfs"
	done
}

@test "fuse: mksquashfs layouts: 4K blocks, no fragments, uncompressed tables, no export table" {
	local img="$BATS_TEST_TMPDIR/a.sqfs"
	mksquashfs "$FT/src" "$img" -b 4096 -always-use-fragments -noI -noD -noF -no-exports \
		-noappend -quiet -no-progress >/dev/null
	check_image "$img" "$FT/src.list"
	mksquashfs "$FT/src" "$img" -comp xz -no-fragments -no-duplicates -exports \
		-noappend -quiet -no-progress >/dev/null
	check_image "$img" "$FT/src.list"
	mksquashfs "$FT/src" "$img" -comp lz4 -no-xattrs -noappend -quiet -no-progress >/dev/null
	check_image "$img" "$FT/src.noxattr.list" no-xattr
}

@test "fuse: gensquashfs and tar2sqfs images match the source tree" {
	local img="$BATS_TEST_TMPDIR/g.sqfs"
	# gensquashfs packs a directory scan: no hard-link detection, owners
	# from --set-uid (none: 0), root mtime 0, empty xattr values dropped
	gensquashfs -D "$FT/src" -k -x -c zstd -q "$img"
	tree_py listing "$FT/src" no-links no-owner no-dir-mtime no-empty-xattr >"$BATS_TEST_TMPDIR/want.list"
	check_image "$img" "$BATS_TEST_TMPDIR/want.list" no-links no-owner no-dir-mtime no-empty-xattr
	rm "$img"
	# tar has no sockets
	tar --xattrs --xattrs-include='*' -C "$FT/src" -cf - . 2>/dev/null | tar2sqfs -q -c gzip "$img"
	tree_py listing "$FT/src" no-dir-mtime | grep -v "^'socket' " >"$BATS_TEST_TMPDIR/want.list"
	check_image "$img" "$BATS_TEST_TMPDIR/want.list" no-dir-mtime
}

@test "fuse: squashfuse_ll shows the same tree as sifu" {
	command -v squashfuse_ll >/dev/null || skip "squashfuse_ll not installed"
	local img="$BATS_TEST_TMPDIR/s.sqfs"
	mksquashfs "$FT/src" "$img" -comp zstd -noappend -quiet -no-progress >/dev/null
	mount_img "$img" "$MNT"
	# squashfuse_ll 0.1.105 lists an empty xattr value but answers ENODATA,
	# and swaps the trusted./security. prefixes of a file with both
	tree_py listing "$MNT" no-empty-xattr user-xattr-only >"$BATS_TEST_TMPDIR/sifu.list"
	umount_img "$MNT"
	mkdir -p "$MNT.sq"
	squashfuse_ll -f "$img" "$MNT.sq" &
	local sq=$!
	for _ in $(seq 100); do mountpoint -q "$MNT.sq" && break; sleep 0.05; done
	tree_py listing "$MNT.sq" no-empty-xattr user-xattr-only >"$BATS_TEST_TMPDIR/squashfuse.list" || true
	fusermount3 -u "$MNT.sq" || umount -l "$MNT.sq"
	wait "$sq" || true
	diff -u "$BATS_TEST_TMPDIR/squashfuse.list" "$BATS_TEST_TMPDIR/sifu.list"
}

@test "fuse: --owner-self shows every file as the caller's" {
	local img="$BATS_TEST_TMPDIR/o.sqfs"
	mksquashfs "$FT/src" "$img" -force-uid 4242 -force-gid 4343 -noappend -quiet -no-progress >/dev/null
	mount_img "$img" "$MNT"
	[ "$(stat -c %u:%g "$MNT/text")" = 4242:4343 ]
	umount_img "$MNT"
	mount_img "$img" "$MNT" --owner-self
	run sh -c "find '$MNT' -printf '%U:%G\n' | sort -u"
	umount_img "$MNT"
	[ "$output" = "$(id -u):$(id -g)" ]
}

@test "fuse: 16 concurrent readers get the right bytes, with default and tiny caches" {
	local img="$BATS_TEST_TMPDIR/c.sqfs"
	mksquashfs "$FT/src" "$img" -comp zstd -noappend -quiet -no-progress >/dev/null
	mount_img "$img" "$MNT"
	tree_py hammer "$MNT" "$FT/src" 12 16
	umount_img "$MNT"
	# on a local disk the default is page-cache mode
	case $(stat -f -c %T "$img") in
	ext2/ext3 | xfs | btrfs | tmpfs) grep -q "(page-cache mode, served" "$MNT.log" ;;
	esac
	# small files were preloaded into the page cache at their first read
	# (and the hammer above checked every byte read after that)
	grep -q "preloaded .* into the page cache" "$MNT.log"
	mount_img "$img" "$MNT" --file-preload 0
	tree_py hammer "$MNT" "$FT/src" 4 4
	umount_img "$MNT"
	run ! grep -q "preloaded" "$MNT.log"
	# a cache of a few chunks: constant eviction while readers wait on fetches
	mount_img "$img" "$MNT" --image-io chunks --cache-size 256K --chunk-size 64K --readahead 1M
	tree_py hammer "$MNT" "$FT/src" 8 16
	umount_img "$MNT"
}

@test "fuse: a block that does not decompress is EIO; the other files are served" {
	local src="$BATS_TEST_TMPDIR/c-src" img="$BATS_TEST_TMPDIR/bad.sqfs"
	mkdir "$src"
	# "a-bad" sorts first, so its first compressed block follows the superblock
	seq 1 200000 >"$src/a-bad"
	head -c 300000 /dev/urandom >"$src/b-good"
	mksquashfs "$src" "$img" -comp gzip -no-fragments -noappend -quiet -no-progress >/dev/null
	python3 -c '
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
for i in range(96 + 40, 96 + 80):
    d[i] ^= 0xA5
open(p, "wb").write(d)' "$img"
	mount_img "$img" "$MNT"
	run cat "$MNT/a-bad"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Input/output error"* ]]
	cmp "$MNT/b-good" "$src/b-good"
	[ "$(ls "$MNT" | wc -l)" -eq 2 ]
	umount_img "$MNT"
}

@test "fuse: flipped bytes in every table never crash or hang the server" {
	local img="$BATS_TEST_TMPDIR/t.sqfs"
	mksquashfs "$FT/src" "$img" -comp gzip -noappend -quiet -no-progress -e big-dir >/dev/null
	# superblock fields: inode, directory, fragment, export, id, xattr tables
	for field in inode dir frag export id xattr; do
		cp "$img" "$img.$field"
		python3 -c '
import struct, sys
p, field = sys.argv[1], sys.argv[2]
d = bytearray(open(p, "rb").read())
(ids, xattr, inode, dirt, frag, export) = struct.unpack_from("<QQQQQQ", d, 48)
at = {"inode": inode + 2, "dir": dirt + 2, "frag": frag, "export": export,
      "id": ids, "xattr": xattr}[field]
for i in range(at, min(at + 8, len(d))):
    d[i] ^= 0x5A
open(p, "wb").write(d)' "$img.$field" "$field"
		mkdir -p "$MNT.$field"
		"$SIFU" mount "$img.$field" "$MNT.$field" 2>"$MNT.$field.log" &
		MPID=$!
		for _ in $(seq 100); do
			mountpoint -q "$MNT.$field" && break
			kill -0 "$MPID" 2>/dev/null || break
			sleep 0.05
		done
		if ! mountpoint -q "$MNT.$field"; then
			# refused at open: one line, exit 255
			local st=0
			wait "$MPID" || st=$?
			MPID=
			echo "# $field: refused: $(cat "$MNT.$field.log")" >&3
			[ "$st" -eq 255 ]
			[ "$(grep -c '^FATAL:   ' "$MNT.$field.log")" -eq 1 ]
			continue
		fi
		local st=0
		timeout 60 sh -c "ls -laR '$MNT.$field' >/dev/null 2>&1; find '$MNT.$field' -type f -exec cat {} + >/dev/null 2>&1; find '$MNT.$field' -exec getfattr -d {} + >/dev/null 2>&1; find '$MNT.$field' -type l -exec readlink {} + >/dev/null 2>&1; true" || st=$?
		[ "$st" -eq 0 ] # 124 would be a hang
		kill -0 "$MPID"  # still alive
		echo "# $field: served" >&3
		umount_img "$MNT.$field"
	done
}

@test "fuse: truncated and foreign files are refused with one line" {
	local img="$BATS_TEST_TMPDIR/x.sqfs"
	mksquashfs "$FT/src" "$img" -noappend -quiet -no-progress -e big-dir >/dev/null
	mkdir -p "$MNT"
	head -c $(($(stat -c %s "$img") / 2)) "$img" >"$img.trunc"
	run_sifu mount "$img.trunc" "$MNT"
	assert_sifu_error
	[[ "$output" == *"truncated"* ]]
	head -c 100000 /dev/zero >"$img.zero"
	run_sifu mount "$img.zero" "$MNT"
	assert_sifu_error
	[[ "$output" == *"not a SquashFS"* ]]
	# an inode table that starts past the end of the image
	cp "$img" "$img.range"
	python3 -c '
import struct, sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
struct.pack_into("<Q", d, 64, 1 << 40)
open(p, "wb").write(d)' "$img.range"
	run_sifu mount "$img.range" "$MNT"
	assert_sifu_error
	run_sifu mount "$BATS_TEST_TMPDIR/missing.sqfs" "$MNT"
	assert_sifu_error
	run_sifu mount "$img" "$BATS_TEST_TMPDIR/no-such-dir"
	assert_sifu_error
	run_sifu mount "$img"
	assert_sifu_error
	run ! mountpoint -q "$MNT"
}

@test "fuse: sifu mount ends cleanly when the file system is unmounted from outside" {
	local img="$BATS_TEST_TMPDIR/u.sqfs"
	mksquashfs "$FT/src/d1" "$img" -noappend -quiet -no-progress >/dev/null
	mount_img "$img" "$MNT"
	[ -f "$MNT/d2/hard-c" ]
	fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT"
	local st=0
	timeout 10 tail --pid="$MPID" -f /dev/null || st=$?
	[ "$st" -eq 0 ]
	wait "$MPID"
	MPID=
	grep -q 'requests from the image; cache: ' "$MNT.log"
}

@test "fuse: the docs/fuse.md example runs" {
	local img="$BATS_TEST_TMPDIR/doc.sqfs"
	mksquashfs "$FT/src/d1" "$img" -noappend -quiet -no-progress >/dev/null
	mkdir -p "$MNT"
	# from docs/fuse.md: mount, look, unmount
	"$SIFU" mount --readahead 16M "$img" "$MNT" 2>"$MNT.log" &
	MPID=$!
	for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
	ls "$MNT" | grep -qx d2
	fusermount3 -u "$MNT"
	wait "$MPID"
	MPID=
	grep -q 'read .* in .* requests from the image' "$MNT.log"
	# the request counts: the ls above was a readdirplus, nothing was opened
	grep -q '^INFO:    requests: .*readdirplus [0-9]' "$MNT.log"
	run ! grep -q 'release' "$MNT.log"
}

@test "fuse: a SIF's primary partition is mounted, at its offset" {
	local img="$BATS_TEST_TMPDIR/p.sqfs" sif="$BATS_TEST_TMPDIR/p.sif"
	mksquashfs "$FT/src" "$img" -comp xz -noappend -quiet -no-progress -e big-dir >/dev/null
	printf 'Bootstrap: scratch\n' >"$BATS_TEST_TMPDIR/r.def"
	"$SIFU" sif new "$sif"
	"$SIFU" sif add "$sif" "$BATS_TEST_TMPDIR/r.def" --datatype 1 --groupid 1
	"$SIFU" sif add "$sif" "$img" --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1
	tree_py listing "$FT/src" | grep -v "^'big-dir" >"$BATS_TEST_TMPDIR/want.list"
	check_image "$sif" "$BATS_TEST_TMPDIR/want.list"
	# a SIF without a system partition: one line, exit 255
	"$SIFU" sif new "$sif.empty"
	mkdir -p "$MNT"
	run_sifu mount "$sif.empty" "$MNT"
	assert_sifu_error
}
