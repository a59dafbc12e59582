#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# sifu build --userns-subid: the build's user namespace maps the caller's
# /etc/subuid and /etc/subgid ranges through newuidmap/newgidmap, so chown,
# su and groups are real and the SquashFS stores the tree's own owners.
# scripts/setup makes sifu-subid (with ranges) and keeps sifu-test without;
# the root run builds as sifu-subid through runuser.
load helpers

ROOT=$BATS_TEST_DIRNAME/../..

setup() {
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
	cd "$BATS_TEST_TMPDIR"
}

teardown() {
	[ -d "$BATS_TEST_TMPDIR/reg" ] && "$ROOT/scripts/registry" stop "$BATS_TEST_TMPDIR/reg" || true
	[ -n "${WORK:-}" ] && rm -rf "$WORK" || true
}

has_subid() { # user
	grep -q "^$1:" /etc/subuid 2>/dev/null && grep -q "^$1:" /etc/subgid 2>/dev/null
}

# A directory another user can work in, with this sifu in it (the suite's
# own temporary directories are private to the user running it).
make_work() {
	WORK=$(mktemp -d /tmp/sifu-subid-test.XXXXXX)
	chmod 0755 "$WORK"
	cp "$SIFU" "$(dirname "$SIFU")/sifu-all" "$WORK/"
	mkdir -m 0777 "$WORK/out"
}

# Run sifu in $WORK/out as USER ("" = the current user).
sifu_as() { # user, args...
	local user=$1
	shift
	if [ -z "$user" ]; then
		(cd "$WORK/out" && TMPDIR=$WORK/out "$WORK/sifu" "$@")
	else
		local home
		home=$(getent passwd "$user" | cut -d: -f6)
		(cd "$WORK/out" && runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin \
			HOME="$home" USER="$user" TMPDIR="$WORK/out" SIFU_CACHEDIR="$WORK/out/cache" \
			${SIFU_DEBOOTSTRAP:+SIFU_DEBOOTSTRAP="$SIFU_DEBOOTSTRAP"} "$WORK/sifu" "$@")
	fi
}

# Who builds with subordinate ids here: sifu-subid for root, else oneself
# when one has ranges; "-" when nobody can.
subid_user() {
	if is_root; then
		has_subid sifu-subid || { echo "sifu-subid has no /etc/subuid range: run scripts/setup" >&2; return 1; }
		echo sifu-subid
	elif has_subid "$(id -un)"; then
		echo ""
	else
		echo -
	fi
}

lln_part() {
	local id
	id=$(siftool list "$1" | awk -F'|' '/FS \(Squashfs/ {gsub(/ /,"",$1); print $1}')
	siftool dump "$id" "$1" >"$1.part"
	unsquashfs -lln "$1.part" | sed 's/  */ /g'
}

assert_no_subid_error() {
	assert_sifu_error
	[[ "$output" == *"--userns-subid: /etc/subuid has no subordinate uid range for "* ]]
	[[ "$output" == *"usermod --add-subuids"* ]]
}

@test "build --userns-subid: chown, su and groups are real; the SquashFS stores the tree's owners" {
	local user
	user=$(subid_user)
	make_work
	cat >"$WORK/out/s.def" <<'DEF'
Bootstrap: busybox
%post
    echo 'grp:x:2000:' >> /etc/group
    echo 'app:x:2000:2000::/home/app:/bin/sh' >> /etc/passwd
    mkdir -p /opt/x /home/app
    chown 1234:1234 /opt/x
    test "$(stat -c %u:%g /opt/x)" = 1234:1234
    echo secret > /opt/x/s && chown 1234:1234 /opt/x/s && chmod 0600 /opt/x/s && chmod 0700 /opt/x
    chown app:grp /home/app
    su app -c 'id -u; id -G; touch /home/app/mine'  > /opt/app-id
%runscript
    cat /opt/app-id
DEF
	if [ "$user" = - ]; then
		# this user has no range: the clear error instead
		run sifu_as "" build --userns-subid s.sif s.def
		assert_no_subid_error
		[ ! -e "$WORK/out/s.sif" ]
		return
	fi
	run sifu_as "$user" build --userns-subid s.sif s.def
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	lln_part "$WORK/out/s.sif" >list
	grep -q '^drwx------ 1234/1234 .* squashfs-root/opt/x$' list
	grep -q '^-rw------- 1234/1234 .* squashfs-root/opt/x/s$' list
	grep -q '^drwxr-xr-x 2000/2000 .* squashfs-root/home/app$' list
	# made by app itself after su: real setgroups/setgid/setuid
	grep -q '^-rw-r--r-- 2000/2000 .* squashfs-root/home/app/mine$' list
	grep -q '^drwxr-xr-x 0/0 .* squashfs-root/opt$' list
	run sifu_as "$user" run s.sif
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = "2000
2000" ] || { echo "got: $output"; false; }
	# the build's directory, with files of other ids, is gone
	[ -z "$(find "$WORK/out" -maxdepth 1 -name '.sifu-build-*')" ]
}

@test "build --userns-subid on a Debian minbase: useradd, chown to that user, su, apt's _apt sandbox" {
	local user base=${SIFU_TEST_MINBASE:-/var/cache/sifu-build-test/oci}
	user=$(subid_user)
	make_work
	if [ "$user" = - ]; then
		# this user has no range: what it gets is the error (the first
		# test checks it in full)
		printf 'Bootstrap: scratch\n' >"$WORK/out/u.def"
		run sifu_as "" build --userns-subid u.sif u.def
		assert_no_subid_error
		return
	fi
	[ -f "$base/index.json" ] || skip "no cached Debian minbase in $base (build.bats's root run makes it)"
	REGISTRY=$("$ROOT/scripts/registry" start "$BATS_TEST_TMPDIR/reg")
	skopeo copy -q --dest-tls-verify=false oci:"$base":minbase docker://"$REGISTRY"/debian/minbase:bookworm
	cat >"$WORK/out/u.def" <<DEF
Bootstrap: docker
From: $REGISTRY/debian/minbase:bookworm
%post
    useradd -m app && groupadd g && usermod -aG g app
    mkdir /opt/y && chown app:g /opt/y
    su app -s /bin/sh -c 'id -nG > /opt/y/groups; touch /opt/y/mine'
    # apt may drop to its _apt user for real: no sandbox override
    test ! -e /etc/apt/apt.conf.d/00sifu-build-no-sandbox
DEF
	run sifu_as "$user" build --nohttps --userns-subid u.sif u.def
	"$ROOT/scripts/registry" stop "$BATS_TEST_TMPDIR/reg"
	[ "$status" -eq 0 ] || { echo "$output" | tail -20; false; }
	lln_part "$WORK/out/u.sif" >list
	grep -q '^drwxr-xr-x 1000/1001 .* squashfs-root/opt/y$' list
	grep -q '^-rw-r--r-- 1000/1000 .* squashfs-root/opt/y/mine$' list
	unsquashfs -cat "$WORK/out/u.sif.part" opt/y/groups | grep -qx 'app g'
}

# debootstrap in such a namespace (build_debootstrap.bats runs the real one
# under the seccomp fake root); a stand-in checks what it may expect
@test "build --userns-subid with Bootstrap debootstrap: its chowns are real too" {
	local user
	user=$(subid_user)
	make_work
	printf 'Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://mirror.invalid/debian\n' >"$WORK/out/d.def"
	cat >"$WORK/out/stub" <<'SH'
#!/bin/sh
set -e
eval "target=\${$(($# - 1))}"
test "$(id -u)" = 0
test -c "$target/dev/null"
mknod "$target/dev/test-null" c 1 3 # still answered with success
mkdir -p "$target/proc" "$target/opt"
mount -t proc proc "$target/proc"
umount "$target/proc"
touch "$target/opt/owned"
chown 1234:4321 "$target/opt/owned"
test "$(stat -c %u:%g "$target/opt/owned")" = 1234:4321
SH
	chmod 0755 "$WORK/out/stub"
	SIFU_DEBOOTSTRAP=$WORK/out/stub run sifu_as "${user#-}" build --userns-subid d.sif d.def
	if [ "$user" = - ]; then
		assert_no_subid_error
		return
	fi
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	lln_part "$WORK/out/d.sif" | grep -q '^-rw-r--r-- 1234/4321 .* squashfs-root/opt/owned$'
}

@test "build --userns-subid without an /etc/subuid entry: one clear error, exit 255, nothing left" {
	make_work
	printf 'Bootstrap: busybox\n%%post\n    true\n' >"$WORK/out/e.def"
	if is_root; then
		# root has no range of its own; sifu-test stands for the users with none
		run sifu_as "" build --userns-subid e.sif e.def
		assert_no_subid_error
		if id sifu-test >/dev/null 2>&1 && ! has_subid sifu-test; then
			run sifu_as sifu-test build --userns-subid e.sif e.def
			assert_no_subid_error
			[[ "$output" == *"range for sifu-test"* ]]
		fi
	elif ! has_subid "$(id -un)"; then
		run sifu_as "" build --userns-subid e.sif e.def
		assert_no_subid_error
	else
		skip "$(id -un) has an /etc/subuid range"
	fi
	[ ! -e "$WORK/out/e.sif" ]
	[ -z "$(find "$WORK/out" -maxdepth 1 -name '.sifu-build-*')" ]
}
