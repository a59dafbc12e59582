#!/usr/bin/env bats
# Issue 14, items 1 and 5: `--verify` runs the bytes it verified and nothing
# else, whatever happens to the file afterwards; the image's /etc/passwd and
# /etc/group are read only when they are small regular files.
load helpers

KEY_PRIV=$SIFU_FIXTURES/sif/ed25519-private.pem
KEY_PUB=$SIFU_FIXTURES/sif/ed25519-public.pem

# An image whose /zz/secret lies alone, uncompressed, in its own data block,
# far (8 MiB of incompressible padding) from everything a start reads, so
# that no chunk or read-ahead of the start holds it: bytes written there
# later are read from the file only when the container reads the secret.
make_image() { # dir id-text sqfs
	mkdir -p "$1/bin" "$1/yy" "$1/zz"
	cp "$(command -v busybox)" "$1/bin/busybox"
	for a in sh echo true cat sleep; do ln -sf busybox "$1/bin/$a"; done
	echo "$2" >"$1/id"
	head -c 8M /dev/urandom >"$1/yy/pad"
	echo ORIGINAL-SECRET-CONTENT >"$1/zz/secret"
	mksquashfs "$1" "$3" -noappend -all-root -quiet -noD -noF -no-fragments >/dev/null
}

make_sif() { # sqfs sif
	"$SIFU" sif new "$2"
	"$SIFU" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$2" "$1"
}

setup_file() {
	export D="$BATS_FILE_TMPDIR"
	make_image "$D/root" signed-image "$D/img.sqfs"
	make_sif "$D/img.sqfs" "$D/signed.sif"
	"$SIFU" sign --key "$KEY_PRIV" "$D/signed.sif" >/dev/null
	make_image "$D/other" UNSIGNED-IMAGE "$D/other.sqfs"
	make_sif "$D/other.sqfs" "$D/unsigned.sif"
}

setup() {
	T=$BATS_TEST_TMPDIR
	# /tmp is bound into the container by default: the FIFOs live there
	F=$(mktemp -d /tmp/sifu-hv.XXXXXX)
	chmod 755 "$F"
}

teardown() {
	rm -rf "$F"
}

# Start `exec --verify` of $1 with extra options $2... in the background: it
# says "ready" on $F/ready once the container runs, waits for a line on
# $F/go, then prints /zz/secret.  Output in $T/out, status in $T/status.
start_waiting_container() {
	local img=$1
	shift
	mkfifo "$F/ready" "$F/go"
	(
		st=0
		timeout 60 "$SIFU" exec --verify="$KEY_PUB" "$@" "$img" \
			sh -c "echo ready >$F/ready; cat $F/go >/dev/null; cat /zz/secret" \
			>"$T/out" 2>&1 || st=$?
		echo "$st" >"$T/status"
	) &
	BG=$!
}

# Overwrite the secret's bytes inside the signed image file, in place.
tamper() { # sif
	local off
	off=$(grep -obUa ORIGINAL-SECRET-CONTENT "$1" | head -n1 | cut -d: -f1)
	[ -n "$off" ]
	printf 'MODIFIED-SECRET-CONTENT' | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
	grep -qa MODIFIED-SECRET-CONTENT "$1"
}

tamper_after_start() { # image-io
	require_feature "user namespaces" unshare -Ur true
	cp "$D/signed.sif" "$T/img.sif"
	start_waiting_container "$T/img.sif" --image-io "$1"
	read -r line <"$F/ready" # verified, mounted, running
	[ "$line" = ready ]
	tamper "$T/img.sif"
	echo go >"$F/go"
	wait "$BG"
	cat "$T/out"
	[ "$(cat "$T/status")" -ne 0 ]
	[ "$(cat "$T/status")" -ne 124 ]
	[ "$(grep -c MODIFIED "$T/out")" -eq 0 ]
	grep -Eq "Input/output error|I/O error" "$T/out"
	grep -q "changed after verification" "$T/out"
}

@test "verify: bytes written into the partition after verification are never served (page cache)" {
	tamper_after_start pagecache
}

@test "verify: bytes written into the partition after verification are never served (chunks)" {
	tamper_after_start chunks
}

@test "verify: an untouched verified image still runs in both I/O modes" {
	require_feature "user namespaces" unshare -Ur true
	for io in pagecache chunks; do
		run_sifu exec --verify="$KEY_PUB" --image-io "$io" "$D/signed.sif" cat /id /zz/secret
		[ "$status" -eq 0 ]
		[ "$output" = "$(printf 'signed-image\nORIGINAL-SECRET-CONTENT')" ]
	done
}

@test "verify: an image renamed over the path after the open is not what runs" {
	require_feature "user namespaces" unshare -Ur true
	cp "$D/signed.sif" "$T/img.sif"
	cp "$D/unsigned.sif" "$T/swap.sif"
	# the key comes through a FIFO: sifu has opened the image by the time
	# it reads the key, and verifies only after; the swap happens between
	mkfifo "$F/key"
	(
		st=0
		timeout 60 "$SIFU" exec --verify="$F/key" "$T/img.sif" cat /id >"$T/out" 2>&1 || st=$?
		echo "$st" >"$T/status"
	) &
	BG=$!
	exec 7>"$F/key" # returns once sifu opens the key (bats owns fd 3)
	mv -f "$T/swap.sif" "$T/img.sif"
	cat "$KEY_PUB" >&7
	exec 7>&-
	wait "$BG"
	cat "$T/out"
	[ "$(cat "$T/status")" -eq 0 ]
	[ "$(cat "$T/out")" = signed-image ]
	# and the file now at the path is refused on its own
	run_sifu exec --verify="$KEY_PUB" "$T/img.sif" cat /id
	assert_sifu_error
	[[ "$output" != *UNSIGNED-IMAGE* ]]
}

# ---------------------------------------------------------- item 5 --------

make_bare() { # dir sqfs
	mkdir -p "$1/bin"
	cp "$(command -v busybox)" "$1/bin/busybox"
	ln -sf busybox "$1/bin/true"
	ln -sf busybox "$1/bin/cat"
	mksquashfs "$1" "$2" -noappend -all-root -quiet >/dev/null
}

# A run that must fail at once naming FILE.  The old code hung on a FIFO
# (timeout makes that a failure) and read a huge file whole (the address
# space bound makes that fail fast instead of eating the machine's memory;
# not under AddressSanitizer, which reserves terabytes).
exec_refused() { # image file
	local limit="ulimit -v 4194304;"
	ldd "$SIFU" 2>/dev/null | grep -q libasan && limit=
	run bash -c "$limit exec timeout -k 5 60 \"\$0\" exec \"\$1\" true" "$SIFU" "$1"
	echo "$output"
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[[ "$output" == *"$2"* ]]
}

@test "passwd: an image whose /etc/passwd is a FIFO is refused at once, naming it" {
	require_feature "user namespaces" unshare -Ur true
	mkdir -p "$T/r/etc"
	mkfifo "$T/r/etc/passwd"
	echo "root:x:0:" >"$T/r/etc/group"
	make_bare "$T/r" "$T/fifo.sqfs"
	exec_refused "$T/fifo.sqfs" /etc/passwd
	[[ "$output" == *"not a regular file"* ]]
}

@test "passwd: an image whose /etc/group is a 2 GiB (sparse) file is refused, naming it" {
	require_feature "user namespaces" unshare -Ur true
	mkdir -p "$T/r/etc"
	echo "root:x:0:0:root:/root:/bin/sh" >"$T/r/etc/passwd"
	truncate -s 2G "$T/r/etc/group"
	mkdir -p "$T/r/bin"
	cp "$(command -v busybox)" "$T/r/bin/busybox"
	ln -sf busybox "$T/r/bin/true"
	# through tar --sparse: mksquashfs would read the 2 GiB of holes itself
	tar -C "$T/r" --sparse -cf - etc bin | mksquashfs - "$T/big.sqfs" -tar -noappend -all-root -quiet >/dev/null
	rm -f "$T/r/etc/group"
	exec_refused "$T/big.sqfs" /etc/group
	[[ "$output" == *"larger than"* ]]
}

@test "passwd: the image's own small /etc/passwd and /etc/group are still used" {
	require_feature "user namespaces" unshare -Ur true
	mkdir -p "$T/r/etc"
	echo "imageuser:x:4242:4242:from the image:/nowhere:/bin/sh" >"$T/r/etc/passwd"
	echo "imagegroup:x:4242:" >"$T/r/etc/group"
	make_bare "$T/r" "$T/ok.sqfs"
	run_sifu exec "$T/ok.sqfs" cat /etc/passwd /etc/group
	[ "$status" -eq 0 ]
	[[ "$output" == *"imageuser:x:4242"* ]]
	[[ "$output" == *"imagegroup:x:4242:"* ]]
}
