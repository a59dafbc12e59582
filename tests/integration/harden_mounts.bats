#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Read-only stays read-only (issue 14, items 4 and 14):
#  - a payload that is root in its user namespace (--fakeroot, or root
#    running sifu) cannot remount a `:ro` bind or the image's root writable,
#    nor unmount a bind to reveal what lies below: the payload's mount
#    namespace is owned by a user namespace of its own, so the tree's mounts
#    are locked (mount_namespaces(7));
#  - a `:ro` bind is read-only down to its submounts (-B /dev:...:ro and
#    /dev/shm), also on kernels without mount_setattr (< 5.12) or without
#    open_tree/move_mount (< 5.2): sifu-test-nosys makes those system calls
#    fail with ENOSYS, as an older kernel would.
# Runs as root and as the unprivileged user sifu-test.
load helpers

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	local t=$IMG/tree
	busybox_tree "$t"
	ln -s bin "$t/sbin"
	echo image >"$t/mnt/beneath"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$t/etc/passwd"
	printf 'root:x:0:\n' >"$t/etc/group"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/img.sqfs" -noappend -quiet >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	mkdir -p data
	echo host >data/f
}

# The test helper that makes system calls fail with ENOSYS, built next to
# the binary under test.
nosys() {
	local h
	h=$(dirname "$SIFU")/../tests/integration/sifu-test-nosys
	[ -x "$h" ] || { echo "no $h: build the project first" >&2; return 1; }
	"$h" "$@"
}

# The kernels a `:ro` bind must work on: this one, 5.6-5.11 (no
# mount_setattr), 5.2-5.5 (and no openat2), < 5.2 (no new mount API).
KERNELS=("" mount_setattr mount_setattr,openat2 open_tree,move_mount,mount_setattr,openat2)

as_kernel() { # SYSCALLS CMD...: CMD as on a kernel without SYSCALLS ("" = this one)
	local s=$1
	shift
	if [ -n "$s" ]; then nosys "$s" "$@"; else "$@"; fi
}

@test "a :ro bind of /dev is read-only down to /dev/shm, also without mount_setattr or open_tree" {
	require_feature "/dev/shm is a mount of its own" grep -q ' /dev/shm ' /proc/self/mountinfo
	local k probe=sifu-harden-$$-$RANDOM
	for k in "${KERNELS[@]}"; do
		run as_kernel "$k" "$SIFU" exec -B /dev:/hostdev:ro "$IMG/img.sqfs" \
			sh -c "touch /hostdev/shm/$probe; echo rc=\$?; touch /hostdev/x; echo rc=\$?"
		[ "$status" -eq 0 ] || { echo "kernel without [$k]: $output"; false; }
		[ "$(printf '%s\n' "$output" | grep -c '^rc=1$')" -eq 2 ] || { echo "kernel without [$k]: $output"; false; }
		[[ "$output" == *"/hostdev/shm/$probe: Read-only file system"* ]]
		[ ! -e "/dev/shm/$probe" ] || { rm -f "/dev/shm/$probe"; echo "kernel without [$k]: written"; false; }
		# the bind itself works as before: the host's /dev is there
		run as_kernel "$k" "$SIFU" exec -B /dev:/hostdev:ro "$IMG/img.sqfs" sh -c 'test -c /hostdev/null && cat /hostdev/null'
		[ "$status" -eq 0 ] || { echo "kernel without [$k]: $output"; false; }
	done
}

@test "a :ro bind of a directory is read-only on every kernel; a plain bind stays writable" {
	local k
	for k in "${KERNELS[@]}"; do
		run as_kernel "$k" "$SIFU" exec -B "$PWD/data:/mnt:ro" "$IMG/img.sqfs" sh -c 'cat /mnt/f; echo x >/mnt/f'
		[ "$status" -eq 1 ] || { echo "kernel without [$k]: $output"; false; }
		[[ "$output" == "host"*"Read-only file system"* ]]
		[ "$(cat data/f)" = host ]
		run as_kernel "$k" "$SIFU" exec -B "$PWD/data:/mnt" "$IMG/img.sqfs" sh -c 'echo rw >/mnt/g'
		[ "$status" -eq 0 ] || { echo "kernel without [$k]: $output"; false; }
		[ "$(cat data/g)" = rw ]
		rm data/g
	done
}

@test "--fakeroot cannot remount a :ro bind writable; the host file stays unchanged" {
	local k fr
	for k in "" open_tree,move_mount,mount_setattr,openat2; do
		for fr in --fakeroot ""; do
			run as_kernel "$k" "$SIFU" exec $fr -B "$PWD/data:/mnt:ro" "$IMG/img.sqfs" \
				sh -c 'mount -o remount,rw,bind /mnt && echo x >/mnt/f'
			[ "$status" -ne 0 ] || { echo "[$k] $fr: $output"; false; }
			[ "$status" -ne 255 ] || { echo "[$k] $fr: $output"; false; }
			[ "$(cat data/f)" = host ] || { echo "[$k] $fr: the host file was written"; false; }
			# nor through mount_setattr's form (util-linux: -o remount,bind,rw
			# on the mount's fd), nor a read-write bind of the same mount
			run as_kernel "$k" "$SIFU" exec $fr -B "$PWD/data:/mnt:ro" "$IMG/img.sqfs" \
				sh -c 'mkdir -p /tmp/m2 && mount --bind /mnt /tmp/m2 && mount -o remount,rw,bind /tmp/m2 && echo x >/tmp/m2/f'
			[ "$status" -ne 0 ] && [ "$status" -ne 255 ] || { echo "[$k] $fr: $output"; false; }
			[ "$(cat data/f)" = host ]
		done
	done
}

@test "--fakeroot cannot reopen a :ro bind's source through the launcher's fds" {
	# The launcher holds an fd on every bind source; a payload that could
	# ptrace it (or --pid's init) would reopen /proc/PID/fd/N writable.
	local pid
	for pid in "" --pid; do
		run "$SIFU" exec --fakeroot $pid -B "$PWD/data:/mnt:ro" "$IMG/img.sqfs" sh -c '
			for p in /proc/[0-9]*; do
				for f in "$p"/fd/*; do
					[ "$(readlink "$f")" = "$1" ] && echo pwned >"$f/f" && echo "wrote through $f"
				done
			done 2>/dev/null; true' sh "$PWD/data"
		[ "$status" -eq 0 ] || { echo "$pid: $output"; false; }
		[ "$(cat data/f)" = host ] || { echo "$pid: $output"; false; }
	done
}

@test "--fakeroot cannot remount the image's root writable" {
	local fr
	for fr in --fakeroot ""; do
		run "$SIFU" exec $fr "$IMG/img.sqfs" sh -c 'mount -o remount,rw /; mount -o remount,rw,bind /; touch /x'
		[ "$status" -ne 0 ] && [ "$status" -ne 255 ] || { echo "$fr: $output"; false; }
		[[ "$output" == *"/x: Read-only file system"* ]] || { echo "$fr: $output"; false; }
	done
}

@test "umount of a bind does not reveal what the image has beneath it" {
	local fr
	for fr in --fakeroot ""; do
		run "$SIFU" exec $fr -B "$PWD/data:/mnt" "$IMG/img.sqfs" \
			sh -c 'umount /mnt; umount -l /mnt; ls /mnt'
		[ "$status" -eq 0 ] || { echo "$fr: $output"; false; }
		[[ "$output" == *f* ]]
		[[ "$output" != *beneath* ]] || { echo "$fr: $output"; false; }
	done
}

@test "a root inside still mounts: /proc of its own PID namespace, a tmpfs; --hostname, --net" {
	run "$SIFU" exec --fakeroot --pid "$IMG/img.sqfs" \
		sh -c 'mount -t proc proc /proc && test -d /proc/$$ && [ $(ls -d /proc/[0-9]* | wc -l) -lt 10 ] && mount -t tmpfs t /mnt && touch /mnt/t && echo ok'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = ok ]
	run "$SIFU" exec --fakeroot --hostname h1 "$IMG/img.sqfs" sh -c 'hostname h2 && hostname'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = h2 ]
	run "$SIFU" exec --fakeroot --net "$IMG/img.sqfs" sh -c 'ip link set lo down && ip link show lo'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[[ "$output" != *",UP"* ]] || { echo "$output"; false; }
}
