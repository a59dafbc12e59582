#!/usr/bin/env bats
# ext3 images served in process by sifu's libext2fs FUSE server (issue 16,
# "Overlays"): what Apptainer serves with fuse2fs for `--overlay IMG.ext3`
# (user guide, "Persistent Overlays": "File system image overlay"; e2e
# actions.go PersistentOverlay, overlay.go testOverlayCreate), reached here
# through `sifu mount IMG.ext3 DIR [--writable]`.
load helpers

setup() {
	require_feature "FUSE (/dev/fuse usable)" test -w /dev/fuse
	# mkfs.ext3, e2fsck and debugfs live in sbin, off a user's PATH
	PATH="$PATH:/usr/sbin:/sbin"
	require_feature "e2fsprogs (scripts/setup installs it)" command -v mkfs.ext3
	T="$BATS_TEST_TMPDIR"
	MNT="$T/mnt"
	MPID=
	mkdir -p "$T/src/sub" "$MNT"
	echo hello >"$T/src/hello.txt"
	echo deep >"$T/src/sub/file"
	ln -s hello.txt "$T/src/link"
	# the root directory as the user's (mkfs makes it root's otherwise)
	mkfs.ext3 -q -E root_owner="$(id -u):$(id -g)" -d "$T/src" -F "$T/img" 64M
}

teardown() {
	if [ -n "$MPID" ] && kill -0 "$MPID" 2>/dev/null; then
		kill -TERM "$MPID" 2>/dev/null || true
		wait "$MPID" 2>/dev/null || true
	fi
	mountpoint -q "$MNT" 2>/dev/null && { fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"; }
	true
}

# mount_ext3 [OPTIONS...]: sifu mount $T/img on $MNT in the background
mount_ext3() {
	"$SIFU" mount "$@" "$T/img" "$MNT" 2>"$T/log" &
	MPID=$!
	for _ in $(seq 200); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$MPID" 2>/dev/null || break
		sleep 0.05
	done
	echo "mount did not come up:" >&2
	cat "$T/log" >&2
	return 1
}

# umount_ext3: SIGTERM; sifu must write the file system back, unmount, exit 0
umount_ext3() {
	local st=0
	kill -TERM "$MPID"
	wait "$MPID" || st=$?
	MPID=
	[ "$st" -eq 0 ] || { echo "sifu mount exited $st" >&2; cat "$T/log" >&2; return 1; }
	if mountpoint -q "$MNT"; then echo "$MNT is still mounted" >&2; return 1; fi
}

# e2fsck -fn: the image sifu wrote is clean
fsck_clean() {
	run e2fsck -fn "$T/img"
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
}

# user guide "Persistent Overlays": the overlay image's files are read back
@test "ext3: a read-only mount shows the image's files" {
	mount_ext3
	[ "$(cat "$MNT/hello.txt")" = hello ]
	[ "$(cat "$MNT/sub/file")" = deep ]
	[ "$(readlink "$MNT/link")" = hello.txt ]
	[ "$(cat "$MNT/link")" = hello ]
	run ls "$MNT"
	[[ "$output" == *lost+found* ]]
	grep -q 'fuse.sifu' /proc/self/mountinfo
	umount_ext3
}

# e2e actions.go PersistentOverlay: a read-only overlay (":ro") refuses writes
@test "ext3: a read-only mount refuses writes" {
	mount_ext3
	run sh -c "echo x >'$MNT/new'"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Read-only file system"* ]]
	run rm "$MNT/hello.txt"
	[ "$status" -ne 0 ]
	[ -f "$MNT/hello.txt" ]
	umount_ext3
	fsck_clean
}

# e2e actions.go PersistentOverlay: writes land in the image and persist
@test "ext3: --writable writes, renames, deletes and keeps xattrs; e2fsck is clean" {
	mount_ext3 --writable
	echo written >"$MNT/new.txt"
	mv "$MNT/new.txt" "$MNT/renamed.txt"
	rm "$MNT/hello.txt"
	mkdir -p "$MNT/d1/d2"
	mv "$MNT/sub" "$MNT/d1/d2/sub"
	run rmdir "$MNT/d1/d2/sub"
	[[ "$output" == *"not empty"* ]]
	rm "$MNT/d1/d2/sub/file"
	rmdir "$MNT/d1/d2/sub"
	head -c 3000000 /dev/urandom >"$MNT/big"
	sum=$(md5sum <"$MNT/big")
	ln "$MNT/big" "$MNT/big2"
	truncate -s 100 "$MNT/renamed.txt"
	truncate -s 8 "$MNT/renamed.txt"
	chmod 0600 "$MNT/renamed.txt"
	touch -d '2001-02-03 04:05:06' "$MNT/big"
	ln -s /some/where/else "$MNT/abs"
	mkfifo "$MNT/fifo"
	setfattr -n user.overlay.opaque -v y "$MNT/d1"
	setfattr -n user.note -v hi "$MNT/renamed.txt"
	setfattr -n user.gone -v 1 "$MNT/renamed.txt"
	setfattr -x user.gone "$MNT/renamed.txt"
	run getfattr --absolute-names --only-values -n user.note "$MNT/renamed.txt"
	[ "$output" = hi ]
	run getfattr --absolute-names -d "$MNT/renamed.txt"
	[[ "$output" != *user.gone* ]]
	run setfattr -x user.gone "$MNT/renamed.txt"
	[ "$status" -ne 0 ]
	umount_ext3
	fsck_clean

	# what a kernel-independent reader (debugfs) sees in the image
	run debugfs -R 'cat /renamed.txt' "$T/img"
	[[ "$output" == *written* ]]
	run debugfs -R 'ls -l /' "$T/img"
	[[ "$output" != *hello.txt* ]]
	run debugfs -R 'stat /renamed.txt' "$T/img"
	[[ "$output" == *"Mode:  0600"* ]]
	[[ "$output" == *"Size: 8"* ]]
	run debugfs -R 'ea_get /d1 user.overlay.opaque' "$T/img"
	[[ "$output" == *y* ]]

	# and sifu again, read-only, after the write-back
	mount_ext3
	[ "$(md5sum <"$MNT/big")" = "$sum" ]
	[ "$(stat -c %h "$MNT/big")" = 2 ]
	[ "$(stat -c %Y "$MNT/big")" = "$(date -d '2001-02-03 04:05:06' +%s)" ]
	[ "$(readlink "$MNT/abs")" = /some/where/else ]
	[ -p "$MNT/fifo" ]
	[ "$(cat "$MNT/renamed.txt")" = written ]
	[ "$(getfattr --absolute-names --only-values -n user.note "$MNT/renamed.txt")" = hi ]
	[ ! -e "$MNT/sub" ]
	umount_ext3
}

# e2e actions.go PersistentOverlay ("overlay image that is not valid"): one clear error
@test "ext3: a corrupt image gives one clear error line" {
	dd if=/dev/zero of="$T/bad" bs=1k count=64 status=none
	printf '\123\357' | dd of="$T/bad" bs=1 seek=1080 conv=notrunc status=none
	run "$SIFU" mount "$T/bad" "$MNT"
	assert_sifu_error
	[ "$(printf '%s\n' "$output" | grep -c '^FATAL:   ')" -eq 1 ]
	[[ "$output" == *"not a usable ext2/3/4 file system"* ]]
	run ! mountpoint -q "$MNT"
	# a journal left to replay (a crashed kernel's) is refused, not served stale
	debugfs -w -R 'feature needs_recovery' "$T/img" >/dev/null 2>&1
	run "$SIFU" mount "$T/img" "$MNT"
	assert_sifu_error
	[[ "$output" == *"journal needs recovery"*"e2fsck -fy"* ]]
}

# e2e actions.go PersistentOverlay: a SquashFS is never writable
@test "ext3: --writable on a SquashFS image is refused" {
	mksquashfs "$T/src" "$T/sq" -quiet -noappend >/dev/null
	run "$SIFU" mount --writable "$T/sq" "$MNT"
	assert_sifu_error
	[[ "$output" == *"needs an ext3 image"* ]]
}

# user guide "Persistent Overlays" (the ext3 image is the overlay's upper
# layer, kernel overlayfs with userxattr in a user namespace, as Apptainer
# does with fuse2fs): write, delete (whiteout), rename, rmdir of a lower dir
@test "ext3: a read-write mount is an overlayfs upper directory inside a user namespace" {
	require_feature "user namespaces" unshare -Urm true
	mkdir -p "$T/lower/dir" "$T/merged"
	echo low >"$T/lower/a"
	echo lowb >"$T/lower/b"
	echo y >"$T/lower/dir/y"
	# uid 0 inside `unshare -Ur` is the user: the ext root must be 0's
	mkfs.ext3 -q -F "$T/img" 64M
	cat >"$T/in.sh" <<-'EOS'
	set -e
	cd "$1"
	"$2" mount --writable img mnt 2>log >&2 &
	pid=$!
	trap 'kill -TERM $pid 2>/dev/null; wait $pid' EXIT
	for _ in $(seq 200); do mountpoint -q mnt && break; sleep 0.05; done
	mkdir mnt/upper mnt/work
	mount -t overlay overlay -o lowerdir=lower,upperdir=mnt/upper,workdir=mnt/work,userxattr merged
	echo new >merged/new
	rm merged/a
	mv merged/b merged/c
	rm -r merged/dir
	ls merged | tr '\n' ' '
	echo
	umount merged
	EOS
	run unshare -Urm sh "$T/in.sh" "$T" "$SIFU"
	[ "$status" -eq 0 ] || { echo "$output"; cat "$T/log"; false; }
	[ "$output" = "c new " ]
	fsck_clean
	# the whiteouts are 0:0 character devices in the upper directory
	run debugfs -R 'stat /upper/a' "$T/img"
	[[ "$output" == *"Type: character special"* ]]
	run debugfs -R 'stat /upper/dir' "$T/img"
	[[ "$output" == *"Type: character special"* ]]
	run debugfs -R 'cat /upper/c' "$T/img"
	[[ "$output" == *lowb* ]]
	run debugfs -R 'cat /upper/new' "$T/img"
	[[ "$output" == *new* ]]
}

# e2e overlay.go testOverlayCreate ("create ext3 overlay image in unsigned
# SIF"): an ext3 partition inside a SIF is served at its offset, and writes
# stay inside it
@test "ext3: an ext3 partition of a SIF is served read-write at its offset" {
	"$SIFU" sif new "$T/e.sif"
	"$SIFU" sif add "$T/e.sif" "$T/img" --datatype 4 --partfs 2 --parttype 1 --partarch 2 --groupid 1
	"$SIFU" sif setprim 1 "$T/e.sif"
	"$SIFU" mount --writable "$T/e.sif" "$MNT" 2>"$T/log" &
	MPID=$!
	for _ in $(seq 200); do mountpoint -q "$MNT" && break; sleep 0.05; done
	[ "$(cat "$MNT/hello.txt")" = hello ]
	echo insif >"$MNT/new"
	umount_ext3
	# the partition, cut out of the SIF, is a clean file system with the write
	run "$SIFU" sif list "$T/e.sif"
	start=$(printf '%s\n' "$output" | awk -F'|' '/Ext3/ {split($4, r, "-"); print r[1]}')
	dd if="$T/e.sif" of="$T/img" bs=1M iflag=skip_bytes skip="$start" count=64 status=none
	fsck_clean
	run debugfs -R 'cat /new' "$T/img"
	[[ "$output" == *insif* ]]
	# the SIF around it is intact
	run "$SIFU" sif list "$T/e.sif"
	[ "$status" -eq 0 ]
}
