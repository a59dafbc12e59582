#!/usr/bin/env bats
# Hardening of the block cache and of `sifu mount` (issue 14, items 9, 10
# and 12): a planted $TMPDIR/sifu-UID is never followed, a block cache never
# serves blocks of an image's earlier content, and a killed `sifu mount`
# leaves no mount behind.  Runs as root and as the unprivileged user.
load helpers

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	local t=$IMG/tree
	mkdir -p "$t/bin"
	cp /usr/bin/busybox "$t/bin/busybox"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/bb.sqfs" -noappend -quiet >/dev/null
}

setup() {
	# every test its own TMPDIR: the default block cache lies under it
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -m 0700 "$TMPDIR"
	unset SIFU_BLOCK_CACHE
}

teardown() {
	local d
	for d in "$BATS_TEST_TMPDIR"/mnt*; do
		[ -d "$d" ] || continue
		if awk -v d="$d" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; then
			fusermount3 -u -z "$d" 2>/dev/null || umount -l "$d" 2>/dev/null || true
		fi
	done
}

# the files under DIR, as "name size" lines
listing() { (cd "$1" && find . -type f -printf '%p %s\n' | sort); }

@test "block cache: a symlink planted at \$TMPDIR/sifu-UID is not followed; cache clean refuses it" {
	# another user's doing, in a shared /tmp: sifu-UID points at a directory
	# of the victim's holding a blocks/ with files that look like ours
	local victim=$BATS_TEST_TMPDIR/victim uid
	uid=$(id -u)
	mkdir -p "$victim"
	mkdir -m 0700 "$victim/blocks"
	echo precious >"$victim/blocks/thesis.blk"
	echo precious >"$victim/blocks/notes.tmp"
	ln -s "$victim" "$TMPDIR/sifu-$uid"
	local before
	before=$(listing "$victim")
	run "$SIFU" exec "$IMG/bb.sqfs" /bin/busybox echo ran
	[ "$status" -eq 0 ]
	[[ "$output" == *ran* ]]
	# nothing written through the link
	[ "$(listing "$victim")" = "$before" ]
	# one warning: which directory, what is wrong, what to do
	[ "$(printf '%s\n' "$output" | grep -c 'WARNING: ')" -eq 1 ]
	[[ "$output" == *"block cache: $TMPDIR/sifu-$uid is a symbolic link"* ]]
	[[ "$output" == *"running without the block cache"* ]]
	[[ "$output" == *"set TMPDIR"* ]]
	run "$SIFU" cache clean --force --type blocks
	[ "$(listing "$victim")" = "$before" ]
	assert_sifu_error
	[[ "$output" == *"block cache: $TMPDIR/sifu-$uid is a symbolic link"* ]]
	# listing says so and removes nothing either
	run "$SIFU" cache list --type blocks
	[[ "$output" == *"is a symbolic link"* ]]
	[ "$(listing "$victim")" = "$before" ]
	# a symlink at blocks/ inside a sound sifu-UID: the same
	rm "$TMPDIR/sifu-$uid"
	mkdir -m 0700 "$TMPDIR/sifu-$uid"
	ln -s "$victim/blocks" "$TMPDIR/sifu-$uid/blocks"
	run "$SIFU" cache clean --force --type blocks
	assert_sifu_error
	[[ "$output" == *"sifu-$uid/blocks is a symbolic link"* ]]
	[ "$(listing "$victim")" = "$before" ]
}

@test "block cache: a sifu-UID directory others may write is refused" {
	local uid
	uid=$(id -u)
	mkdir -p "$TMPDIR/sifu-$uid/blocks"
	chmod 0777 "$TMPDIR/sifu-$uid"
	chmod 0700 "$TMPDIR/sifu-$uid/blocks"
	echo kept >"$TMPDIR/sifu-$uid/blocks/old.blk"
	run "$SIFU" exec "$IMG/bb.sqfs" /bin/busybox echo ran
	[ "$status" -eq 0 ]
	[[ "$output" == *ran* ]]
	# nothing added to the untrusted directory
	[ "$(ls "$TMPDIR/sifu-$uid/blocks")" = old.blk ]
	[[ "$output" == *"sifu-$uid is writable by"*"running without the block cache"* ]]
	run "$SIFU" cache clean --force --type blocks
	[ -e "$TMPDIR/sifu-$uid/blocks/old.blk" ]
	assert_sifu_error
	[[ "$output" == *"sifu-$uid is writable by"* ]]
	# made private again: used, and cleaned
	chmod 0700 "$TMPDIR/sifu-$uid"
	run "$SIFU" exec "$IMG/bb.sqfs" /bin/busybox echo ran
	[ "$status" -eq 0 ]
	[ "$output" = ran ]
	[ "$(ls "$TMPDIR/sifu-$uid/blocks" | wc -l)" -eq 2 ]
	run "$SIFU" cache clean --force --type blocks
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$TMPDIR/sifu-$uid/blocks")" ]
	if is_root && id sifu-test >/dev/null 2>&1; then
		# another user's directory, even a private one, is not ours
		chown sifu-test "$TMPDIR/sifu-$uid"
		run "$SIFU" cache clean --force --type blocks
		assert_sifu_error
		[[ "$output" == *"sifu-$uid belongs to uid"* ]]
	fi
}

@test "block cache: an image rewritten in place (same size, mtime put back) is read anew" {
	# images A and B differ in one file's content only: same size, same
	# compressed size (a 128 KiB run of one letter), same metadata
	local a=$BATS_TEST_TMPDIR/a b=$BATS_TEST_TMPDIR/b img=$BATS_TEST_TMPDIR/img.sqfs
	mkdir -p "$a/bin" "$b/bin"
	cp /usr/bin/busybox "$a/bin/busybox"
	cp /usr/bin/busybox "$b/bin/busybox"
	head -c 131072 /dev/zero | tr '\0' A >"$a/data"
	head -c 131072 /dev/zero | tr '\0' B >"$b/data"
	mksquashfs "$a" "$a.sqfs" -noappend -quiet -all-time 0 -mkfs-time 0 -all-root >/dev/null
	mksquashfs "$b" "$b.sqfs" -noappend -quiet -all-time 0 -mkfs-time 0 -all-root >/dev/null
	[ "$(stat -c %s "$a.sqfs")" = "$(stat -c %s "$b.sqfs")" ]
	# only the data block differs, by a few bytes
	[ "$(cmp -l "$a.sqfs" "$b.sqfs" | wc -l)" -lt 16 ]
	cp "$a.sqfs" "$img"
	run "$SIFU" --debug exec "$img" /bin/busybox sh -c 'head -c 8 /data; echo'
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | grep -qx AAAAAAAA
	# kept (a block may already be found: read twice in the run)
	printf '%s\n' "$output" | grep -Eq 'block cache: [0-9]+ blocks found, [1-9][0-9]* not found, [0-9.]+ [KM]iB added'
	[ "$(ls "$TMPDIR/sifu-$(id -u)/blocks" | wc -l)" -eq 1 ]
	# in place: same inode, size and (restored) mtime
	touch -r "$img" "$BATS_TEST_TMPDIR/when"
	local ino
	ino=$(stat -c %i "$img")
	cat "$b.sqfs" >"$img"
	touch -r "$BATS_TEST_TMPDIR/when" "$img"
	[ "$(stat -c %i "$img")" = "$ino" ]
	run "$SIFU" --debug exec "$img" /bin/busybox sh -c 'head -c 8 /data; echo'
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | grep -qx BBBBBBBB
	[[ "$output" == *"the image changed since its blocks were kept"* ]]
	# the stale file is gone; the next start keeps B's blocks, the one
	# after finds them all
	run "$SIFU" exec "$img" /bin/busybox sh -c 'head -c 8 /data; echo'
	[ "$output" = BBBBBBBB ]
	run "$SIFU" --debug exec "$img" /bin/busybox sh -c 'head -c 8 /data; echo'
	printf '%s\n' "$output" | grep -qx BBBBBBBB
	printf '%s\n' "$output" | grep -q 'block cache: [1-9][0-9]* blocks found, 0 not found, 0 B added'
}

@test "mount: a sifu mount killed with SIGKILL leaves no mount behind" {
	local dir=$BATS_TEST_TMPDIR/mnt
	mkdir "$dir"
	"$SIFU" mount "$IMG/bb.sqfs" "$dir" 2>"$BATS_TEST_TMPDIR/mount.log" 3>&- &
	local pid=$!
	for _ in $(seq 200); do
		[ -e "$dir/bin/busybox" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -e "$dir/bin/busybox" ] || { cat "$BATS_TEST_TMPDIR/mount.log"; false; }
	mountpoint -q "$dir"
	kill -KILL "$pid"
	wait "$pid" || true
	# gone within a bounded wait (the watchdog unmounts it)
	local mounted=1
	for _ in $(seq 100); do
		awk -v d="$dir" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo || {
			mounted=0
			break
		}
		sleep 0.1
	done
	[ "$mounted" -eq 0 ]
	run mountpoint -q "$dir"
	[ "$status" -ne 0 ]
	# and a clean stop still unmounts, exits 0, and leaves no process
	"$SIFU" mount "$IMG/bb.sqfs" "$dir" 2>"$BATS_TEST_TMPDIR/mount.log" 3>&- &
	pid=$!
	for _ in $(seq 200); do
		[ -e "$dir/bin/busybox" ] && break
		sleep 0.05
	done
	[ -e "$dir/bin/busybox" ]
	kill -TERM "$pid"
	local st=0
	wait "$pid" || st=$?
	[ "$st" -eq 0 ]
	run mountpoint -q "$dir"
	[ "$status" -ne 0 ]
	run pgrep -u "$(id -u)" -f "mount $IMG/bb.sqfs"
	[ "$status" -ne 0 ]
}
