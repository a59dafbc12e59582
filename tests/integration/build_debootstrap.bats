#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Bootstrap: debootstrap, unprivileged: the host's debootstrap as the fake
# root of a user namespace. Needs deb.debian.org (as the apt test does).
load helpers

setup_file() {
	# downloaded packages are kept between runs, one cache per user (the
	# suite runs as root and as sifu-test); debootstrap checks every cached
	# package against the signed Release file before it uses it
	local c=${SIFU_TEST_DEBOOTSTRAP_CACHE:-/var/tmp/sifu-test-debootstrap-$(id -u)}
	if ! mkdir -p "$c" 2>/dev/null || [ "$(stat -c %u "$c")" != "$(id -u)" ]; then
		c=$BATS_FILE_TMPDIR/cache
		mkdir -p "$c"
	fi
	chmod 0700 "$c"
	export SIFU_CACHEDIR=$c
	mkdir -p "$BATS_FILE_TMPDIR/bin"
	ln -s "$SIFU" "$BATS_FILE_TMPDIR/bin/run-singularity"
}

setup() {
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
	cd "$BATS_TEST_TMPDIR"
}

no_leftovers() {
	local left
	left=$(find "$TMPDIR" . -maxdepth 1 -name '.sifu-build-*' -o -maxdepth 1 -name '*.sifu-tmp*' | head -1)
	[ -z "$left" ] || { echo "left over: $left" >&2; return 1; }
}

lln() {
	local id
	id=$(siftool list "$1" | awk -F'|' '/FS \(Squashfs/ {gsub(/ /,"",$1); print $1}')
	siftool dump "$id" "$1" >"$1.part"
	unsquashfs -lln "$1.part" | sed 's/  */ /g'
}

need_mirror() {
	curl -sfI --max-time 10 http://deb.debian.org/debian/dists/bookworm/Release >/dev/null ||
		skip "no network to deb.debian.org (debootstrap needs it)"
}

# docs/build.md, "Bootstrap: debootstrap"
@test "build: Bootstrap debootstrap makes a bookworm minbase unprivileged; %post, %runscript and the owners debootstrap and %post asked for" {
	need_mirror
	cat >deb.def <<'DEF'
Bootstrap: debootstrap
OSVersion: bookworm
MirrorURL: http://deb.debian.org/debian
Include: hello

%post
    useradd -m app && mkdir /opt/x && chown app /opt/x
    . /etc/os-release && echo "$VERSION_CODENAME" > /opt/codename

%runscript
    exec hello "$@"
DEF
	run "$SIFU" build deb.sif deb.def
	[ "$status" -eq 0 ] || { echo "$output" | tail -30; false; }
	# Apptainer's debootstrap arguments
	echo "$output" | grep -q 'Running debootstrap bookworm http://deb.debian.org/debian --include=apt,hello'
	[[ "$output" == *"I: Base system installed successfully."* ]]
	run env PATH="$BATS_FILE_TMPDIR/bin:$PATH" ./deb.sif
	[ "$status" -eq 0 ]
	[ "$output" = "Hello, world!" ]
	run "$SIFU" exec deb.sif cat /opt/codename /etc/debian_version
	[ "$status" -eq 0 ]
	[[ "$output" == "bookworm"$'\n'12.* ]]
	"$SIFU" inspect deb.sif | grep -q 'deffile.bootstrap.*debootstrap'
	lln deb.sif >list
	# what dpkg unpacked with a group (passwd's chage is root:shadow) and
	# what %post chowned
	grep -q '^-rwxr-sr-x 0/42 .* squashfs-root/usr/bin/chage$' list
	grep -q '^-rwsr-xr-x 0/0 .* squashfs-root/usr/bin/passwd$' list
	grep -q '^drwxr-xr-x 1000/0 .* squashfs-root/opt/x$' list
	grep -q '^drwxr-xr-x 1000/1000 .* squashfs-root/home/app$' list
	# the host's device nodes it used are gone again, and its own leftovers
	run ! grep -qE ' squashfs-root/(dev/(null|zero|tty|console|ptmx)|debootstrap)$' list
	# the packages are cached for the next build
	ls "$SIFU_CACHEDIR"/debootstrap/hello_*.deb >/dev/null
	no_leftovers
}

# A stand-in for debootstrap ($SIFU_DEBOOTSTRAP): it checks what sifu
# promises the real one - root, Apptainer's arguments, the host's /dev/null,
# mknod and mount -t proc - and chowns a file. Offline and fast.
write_stub() {
	cat >stub <<'SH'
#!/bin/sh
set -e
printf '%s\n' "$@" >"$STUB_LOG"
eval "target=\${$(($# - 1))}"
id -u >>"$STUB_LOG"
test -c "$target/dev/null"
echo discarded >"$target/dev/null"
mknod "$target/dev/test-null" c 1 3 # debootstrap's check: answered with success
mkdir -p "$target/proc" "$target/opt"
mount -t proc proc "$target/proc" # debootstrap's second stage does, in the chroot
test -r "$target/proc/1/status"
umount "$target/proc"
touch "$target/opt/owned" && chown 1234:4321 "$target/opt/owned"
if [ -n "${STUB_HANG:-}" ]; then
	sleep 984 &
	sleep 983
fi
SH
	chmod +x stub
	printf 'Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://mirror.invalid/debian\nInclude: a b,c\n' >s.def
}

@test "build: Bootstrap debootstrap runs debootstrap as root with Apptainer's arguments, /dev, mknod, proc; its chowns reach the SquashFS" {
	write_stub
	STUB_LOG=$BATS_TEST_TMPDIR/args SIFU_DEBOOTSTRAP=$BATS_TEST_TMPDIR/stub run "$SIFU" build s.sif s.def
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	local target
	target=$(sed -n 7p args)
	[ "$(sed -n 1,6p args; sed -n '8,$p' args)" = "--variant=minbase
--exclude=openssl,udev,debconf-i18n,e2fsprogs
--include=apt,a,b,c
--arch=$(dpkg --print-architecture)
--cache-dir=$SIFU_CACHEDIR/debootstrap
bookworm
http://mirror.invalid/debian
0" ]
	[[ "$target" == */.sifu-build-*/stage-0 ]]
	lln s.sif >list
	grep -q '^-rw-r--r-- 1234/4321 .* squashfs-root/opt/owned$' list
	# the bound device nodes, and mknod's, left nothing in the image
	run ! grep -qE ' squashfs-root/dev/.' list
	no_leftovers
}

@test "build: Bootstrap debootstrap refuses an OSVersion: or MirrorURL: that debootstrap would take for an option" {
	write_stub
	printf 'Bootstrap: debootstrap\nOSVersion: --foreign\nMirrorURL: http://mirror.invalid/debian\n' >o.def
	STUB_LOG=$BATS_TEST_TMPDIR/args SIFU_DEBOOTSTRAP=$BATS_TEST_TMPDIR/stub run "$SIFU" build o.sif o.def
	assert_sifu_error
	[[ "$output" == *"line 1"*"may not start with '-'"* ]]
	[ ! -e args ]
	no_leftovers
}

@test "build: SIGTERM during debootstrap stops everything it started and leaves nothing" {
	write_stub
	STUB_HANG=1 STUB_LOG=$BATS_TEST_TMPDIR/args SIFU_DEBOOTSTRAP=$BATS_TEST_TMPDIR/stub \
		"$SIFU" -q build out.sif s.def 2>err &
	term_and_check $! 'sleep 983' 'sleep 98[34]'
	[ ! -e out.sif ]
	no_leftovers
}

@test "build: Bootstrap debootstrap without debootstrap on the host says what to do" {
	# a later stage's agent is checked before the first stage runs
	printf 'Bootstrap: busybox\nStage: one\n%%post\n    echo STAGE-ONE-RAN\n\nBootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://deb.debian.org/debian\n' >d.def
	SIFU_DEBOOTSTRAP=$BATS_TEST_TMPDIR/no/debootstrap run "$SIFU" build d.sif d.def
	assert_sifu_error
	[[ "$output" == *"debootstrap"*"install debootstrap"*"Bootstrap: docker or localimage"* ]]
	[[ "$output" != *STAGE-ONE-RAN* ]]
	[ ! -e d.sif ]
	no_leftovers
}

@test "build: Bootstrap debootstrap from a mirror without the suite fails with debootstrap's reason, leaving nothing" {
	need_mirror
	printf 'Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://deb.debian.org/no-such-archive\n' >bad.def
	run "$SIFU" build bad.sif bad.def
	assert_sifu_error
	[[ "$output" == *"debootstrap bookworm http://deb.debian.org/no-such-archive failed (exit status 1)"* ]]
	[[ "$output" == *"E: Failed getting release file"* ]]
	[[ "$output" == *"the end of debootstrap's log"* ]]
	[ ! -e bad.sif ]
	no_leftovers
}

@test "sifu cache list and clean --type debootstrap: the kept packages, and nothing else" {
	export SIFU_CACHEDIR=$BATS_TEST_TMPDIR/c
	mkdir -p c/debootstrap c/blobs/sha256
	head -c 3000 /dev/zero >c/debootstrap/hello_2.10-3_amd64.deb
	head -c 1000 /dev/zero >c/debootstrap/libc6_2.36-9_amd64.deb
	echo blob >c/blobs/sha256/$(printf '%064d' 1)
	run "$SIFU" cache list --type debootstrap
	[ "$status" -eq 0 ]
	[[ "$output" == *"There are 2 debootstrap package file(s) using 3.9 KiB"* ]] || { echo "$output"; false; }
	run "$SIFU" cache clean --force --type debootstrap --dry-run
	[[ "$output" == *"Would remove 2 file(s)"* ]]
	[ "$(ls c/debootstrap | wc -l)" -eq 2 ]
	run "$SIFU" cache clean --force --type debootstrap
	[ "$status" -eq 0 ]
	[[ "$output" == *"Removed 2 file(s), 3.9 KiB, from $SIFU_CACHEDIR/debootstrap"* ]] || { echo "$output"; false; }
	[ -z "$(ls -A c/debootstrap)" ]
	[ -e c/blobs/sha256/$(printf '%064d' 1) ]
	# a plain clean empties it too
	touch c/debootstrap/x_1_amd64.deb
	run "$SIFU" cache clean --force
	[ "$status" -eq 0 ]
	[ -z "$(ls -A c/debootstrap)" ]
	[ -z "$(ls -A c/blobs/sha256)" ]
}
