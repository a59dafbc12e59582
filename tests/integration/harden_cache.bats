#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# The blob and image cache is private (issue 14, items 2, 3 and 8): a cache
# directory another user could write is refused, a SIF found in the cache
# runs only if it is the one sifu recorded, a blob's name is never taken for
# its content, a missing home never means a shared /tmp path, and an archive
# puts only what its image references into the cache.
load helpers

ROOT=$BATS_TEST_DIRNAME/../..

# add_layer LAYOUT PATH CONTENT: one more (plain tar) layer holding PATH
add_layer() {
	python3 - "$@" <<'EOF'
import hashlib, io, json, sys, tarfile
lay, path, data = sys.argv[1], sys.argv[2], sys.argv[3].encode().decode("unicode_escape").encode()
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{lay}/blobs/sha256/{h}", "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    ti = tarfile.TarInfo(path); ti.size = len(data); ti.mode = 0o644
    t.addfile(ti, io.BytesIO(data))
layer = buf.getvalue()
idx = json.load(open(f"{lay}/index.json"))
man = json.load(open(f"{lay}/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
cfg = json.load(open(f"{lay}/blobs/sha256/" + man["config"]["digest"][7:]))
cfg["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(layer).hexdigest())
man["layers"].append(dict(put(layer), mediaType="application/vnd.oci.image.layer.v1.tar"))
man["config"].update(put(json.dumps(cfg).encode()))
idx["manifests"][0].update(put(json.dumps(man).encode()))
json.dump(idx, open(f"{lay}/index.json", "w"))
EOF
}

setup_file() {
	local d=$BATS_FILE_TMPDIR
	python3 "$BATS_TEST_DIRNAME/pull_image.py" "$d/img" --no-zstd >/dev/null
	skopeo copy -q oci:"$d/img":latest oci-archive:"$d/img.oci.tar":latest
	skopeo copy -q oci:"$d/img":latest docker-archive:"$d/img.docker.tar":sifu/test:1
	# a different image to plant: the same one with another /etc/os-release
	cp -a "$d/img" "$d/planted"
	add_layer "$d/planted" etc/os-release 'NAME=planted\nID=planted\n'
	SIFU_CACHEDIR=$d/pcache "$SIFU" -q pull "$d/planted.sif" oci:"$d/planted":latest
	rm -rf "$d/pcache"
	chmod -R a+rX "$d"
}

teardown_file() {
	[ -d "$BATS_FILE_TMPDIR/reg" ] && "$ROOT/scripts/registry" stop "$BATS_FILE_TMPDIR/reg" || true
}

teardown() {
	if [ -e "$BATS_TEST_TMPDIR/made-tmp-cache" ]; then rm -rf /tmp/.cache; fi
	rm -rf /tmp/sifu-harden-"$BATS_SUITE_TEST_NUMBER"-*
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	unset SIFU_CACHEDIR APPTAINER_CACHEDIR SINGULARITY_CACHEDIR XDG_CACHE_HOME
}

# one error line, exit 255, naming the directory, the problem and the fixes
assert_refused() { # DIR PROBLEM
	assert_sifu_error
	[ "$(message_count)" -eq 1 ] || { echo "more than one line: $output"; false; }
	[[ "$output" == *"$1 "*"$2"* ]] || { echo "want '$1 … $2': $output"; false; }
	[[ "$output" == *"SIFU_CACHEDIR"* && "$output" == *"--disable-cache"* ]] || { echo "no remedy: $output"; false; }
}

@test "a cache directory that others can write, or a symlink: exec and pull refuse it" {
	local a=oci-archive:$BATS_FILE_TMPDIR/img.oci.tar
	mkdir -m 0777 open
	SIFU_CACHEDIR=$PWD/open run "$SIFU" -q exec "$a" true
	assert_refused "$PWD/open" "is writable by group and others (mode 0777)"
	[[ "$output" == *"chmod go-w $PWD/open"* ]]
	SIFU_CACHEDIR=$PWD/open run "$SIFU" -q pull o.sif "$a"
	assert_refused "$PWD/open" "is writable by"
	[ ! -e o.sif ]
	[ -z "$(ls -A open)" ] # nothing was made in it
	mkdir -m 0770 grp
	SIFU_CACHEDIR=$PWD/grp run "$SIFU" -q exec "$a" true
	assert_refused "$PWD/grp" "is writable by its group"
	# the cache root as a symbolic link (to a directory of the caller's)
	mkdir -m 0700 real
	ln -s real link
	SIFU_CACHEDIR=$PWD/link run "$SIFU" -q exec "$a" true
	assert_refused "$PWD/link" "is a symbolic link"
	# each subdirectory is checked too
	mkdir -m 0700 -p sub/sif sub2/blobs
	chmod 0777 sub/sif
	SIFU_CACHEDIR=$PWD/sub run "$SIFU" -q exec "$a" true
	assert_refused "$PWD/sub/sif" "is writable by"
	mkdir -m 0777 elsewhere
	ln -s ../elsewhere sub2/blobs/sha256
	SIFU_CACHEDIR=$PWD/sub2 run "$SIFU" -q pull o.sif "$a"
	assert_refused "$PWD/sub2/blobs/sha256" "is a symbolic link"
	[ -z "$(ls -A elsewhere)" ]
	SIFU_CACHEDIR=$PWD/sub2 run "$SIFU" cache list
	assert_refused "$PWD/sub2/blobs/sha256" "is a symbolic link"
}

@test "a cache directory owned by another user is refused (root: chown)" {
	is_root || return 0 # root only: giving a directory to another user needs root
	mkdir -m 0700 theirs
	chown sifu-subid theirs
	SIFU_CACHEDIR=$PWD/theirs run "$SIFU" -q exec oci-archive:"$BATS_FILE_TMPDIR/img.oci.tar" true
	assert_refused "$PWD/theirs" "belongs to uid $(id -u sifu-subid), not to you"
	SIFU_CACHEDIR=$PWD/theirs run "$SIFU" -q pull o.sif docker-archive:"$BATS_FILE_TMPDIR/img.docker.tar"
	assert_refused "$PWD/theirs" "belongs to uid"
	[ -z "$(ls -A theirs)" ]
}

@test "a SIF planted in the cache under the expected name is not executed" {
	require_feature "user namespaces" unshare -Ur true
	local a=oci-archive:$BATS_FILE_TMPDIR/img.oci.tar
	export SIFU_CACHEDIR=$PWD/c
	run_sifu -q exec "$a" cat /etc/os-release
	[ "$status" -eq 0 ]
	[[ "$output" == *"ID=sifutest"* ]]
	sif=$(echo c/sif/*.sif)
	[ -f "$sif" ]
	# rewritten in place (same inode and name, other content)
	chmod u+w "$sif"
	cat "$BATS_FILE_TMPDIR/planted.sif" >"$sif"
	run_sifu -q exec "$a" cat /etc/os-release
	[ "$status" -eq 0 ]
	[[ "$output" == *"ID=sifutest"* ]] || { echo "$output"; false; }
	[[ "$output" != *"planted"* ]]
	run cmp -s "$sif" "$BATS_FILE_TMPDIR/planted.sif"
	[ "$status" -ne 0 ] # made again
	# planted before the first run (the directory was open once, or the
	# file was copied in): no record of it, so it is not used
	rm -rf c
	mkdir -m 0700 -p c/sif
	cp "$BATS_FILE_TMPDIR/planted.sif" "$sif"
	run_sifu -q exec "$a" cat /etc/os-release
	[ "$status" -eq 0 ]
	[[ "$output" == *"ID=sifutest"* ]] || { echo "$output"; false; }
	[[ "$output" != *"planted"* ]]
	# an unchanged cached SIF is reused; a touch only makes sifu hash it once
	ino=$(stat -c %i "$sif")
	touch "$sif"
	run_sifu -q exec "$a" cat /etc/os-release
	[ "$status" -eq 0 ]
	[[ "$output" == *"ID=sifutest"* ]]
	[ "$(stat -c %i "$sif")" = "$ino" ]
}

@test "a planted blob is never used unverified (oras:// SIF layer from the cache)" {
	REGISTRY=$("$ROOT/scripts/registry" start "$BATS_FILE_TMPDIR/reg")
	"$SIFU" -q pull --disable-cache o.sif oci:"$BATS_FILE_TMPDIR/img"
	python3 "$BATS_TEST_DIRNAME/pull_oras.py" o.sif art
	skopeo copy -q --dest-tls-verify=false oci:art:latest docker://"$REGISTRY"/sif/art:1
	export SIFU_CACHEDIR=$PWD/c
	"$SIFU" -q pull --nohttps got.sif oras://"$REGISTRY"/sif/art:1
	cmp o.sif got.sif
	hex=$(sha256sum o.sif | cut -d' ' -f1)
	[ -f c/blobs/sha256/"$hex" ]
	# another SIF under that blob's name
	chmod u+w c/blobs/sha256/"$hex"
	cat "$BATS_FILE_TMPDIR/planted.sif" >c/blobs/sha256/"$hex"
	run_sifu -q pull --nohttps got2.sif oras://"$REGISTRY"/sif/art:1
	assert_sifu_error
	[[ "$output" == *"digest"* ]]
	[ ! -e got2.sif ]
}

@test "HOME unset: the cache is in the passwd home, never /tmp/.cache/sifu" {
	home=$(getent passwd "$(id -u)" | cut -d: -f6)
	[ -d "$home" ] && [ "$(stat -c %u "$home")" = "$(id -u)" ] || skip "no home of one's own"
	run env -u HOME "$SIFU" cache list
	[ "$status" -eq 0 ]
	[[ "$output" == *"Cache directory: $home/.cache/sifu"* ]] || { echo "$output"; false; }
	if ! is_root; then
		# a HOME that is not the caller's directory is not used either
		HOME=/ run "$SIFU" cache list
		[ "$status" -eq 0 ]
		[[ "$output" == *"Cache directory: $home/.cache/sifu"* ]] || { echo "$output"; false; }
	fi
}

@test "no home at all: a private \$TMPDIR/sifu-UID/cache, not another user's /tmp/.cache/sifu" {
	is_root || return 0 # root only: running as a uid without a passwd entry needs root
	local uid=54321 created=
	getent passwd $uid >/dev/null && skip "uid $uid has a passwd entry"
	w=$(mktemp -d /tmp/sifu-harden-"$BATS_SUITE_TEST_NUMBER"-XXXXXX)
	chmod 1777 "$w"
	cp "$BATS_FILE_TMPDIR/img.oci.tar" "$w/"
	chmod a+r "$w/img.oci.tar"
	as_nobody() { setpriv --reuid=$uid --regid=$uid --clear-groups env -u HOME -u XDG_CACHE_HOME TMPDIR="$w" "$@"; }
	# the checkout may be where that uid cannot go (a 0700 home): a copy
	mkdir -m 0755 "$w/bin"
	cp "$SIFU" "$(dirname "$SIFU")/sifu-all" "$w/bin/"
	local SIFU=$w/bin/sifu
	as_nobody test -x "$SIFU"
	# what the old fallback used: another user's directory, open to all
	if [ ! -e /tmp/.cache ]; then
		mkdir -m 0777 /tmp/.cache /tmp/.cache/sifu
		chown -R sifu-subid /tmp/.cache
		created=1
		touch "$BATS_TEST_TMPDIR/made-tmp-cache" # for teardown, should this test fail early
	fi
	cd "$w"
	run as_nobody "$SIFU" -q pull "$w/o.sif" oci-archive:"$w/img.oci.tar"
	st=$status out=$output
	blobs=$(ls "$w/sifu-$uid/cache/blobs/sha256" 2>/dev/null | wc -l) || true
	modes="$(stat -c %u:%a "$w/sifu-$uid" "$w/sifu-$uid/cache" 2>&1)" || true
	leaked=$(ls -A /tmp/.cache/sifu 2>/dev/null | wc -l) || true
	# a $TMPDIR/sifu-UID that is not the caller's is refused
	mkdir -m 0755 "$w/other"
	mkdir -m 0700 "$w/other/sifu-$uid"
	chown sifu-subid "$w/other/sifu-$uid"
	run setpriv --reuid=$uid --regid=$uid --clear-groups env -u HOME TMPDIR="$w/other" \
		"$SIFU" -q pull "$w/o2.sif" oci-archive:"$w/img.oci.tar"
	cd "$BATS_TEST_TMPDIR"
	[ -n "$created" ] && rm -rf /tmp/.cache && rm "$BATS_TEST_TMPDIR/made-tmp-cache"
	rm -rf "$w"
	[ "$st" -eq 0 ] || { echo "$out"; false; }
	[ "$blobs" -ge 3 ]
	[ "$modes" = "$uid:700
$uid:700" ] || { echo "$modes"; false; }
	[ -z "$created" ] || [ "$leaked" -eq 0 ]
	assert_refused "$w/other/sifu-$uid" "belongs to uid $(id -u sifu-subid)"
}

@test "--disable-cache works in a private \$TMPDIR/sifu-UID; one open to others is refused" {
	mkdir t
	mkdir -m 0777 t/sifu-"$(id -u)"
	TMPDIR=$PWD/t run "$SIFU" -q pull --disable-cache o.sif oci-archive:"$BATS_FILE_TMPDIR/img.oci.tar"
	assert_refused "$PWD/t/sifu-$(id -u)" "is writable by"
	[ ! -e o.sif ]
	chmod 0700 t/sifu-"$(id -u)"
	TMPDIR=$PWD/t run "$SIFU" -q pull --disable-cache o.sif oci-archive:"$BATS_FILE_TMPDIR/img.oci.tar"
	[ "$status" -eq 0 ]
	[ -f o.sif ]
	[ -z "$(ls -A t/sifu-"$(id -u)")" ] # the temporary cache went with the pull
}

# ARCHIVE OUT.tar.gz EXTRA-NAME: ARCHIVE plus a 20 MiB member of zeros that
# nothing references, gzip-compressed (it stays a few kB; nothing that size
# touches the disk)
with_extra() {
	python3 - "$@" <<'EOF'
import io, sys, tarfile
src, out, name = sys.argv[1:4]
class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
with tarfile.open(src) as i, tarfile.open(out, "w:gz", compresslevel=1) as o:
    for m in i.getmembers():
        o.addfile(m, i.extractfile(m) if m.isreg() else None)
    t = tarfile.TarInfo(name); t.size = 20 << 20
    o.addfile(t, Zeros(t.size))
EOF
}

@test "archives: only the blobs the image references reach the cache" {
	zero=$(head -c $((20 << 20)) /dev/zero | sha256sum | cut -d' ' -f1)
	with_extra "$BATS_FILE_TMPDIR/img.oci.tar" x.oci.tar.gz "blobs/sha256/$zero"
	with_extra "$BATS_FILE_TMPDIR/img.docker.tar" x.docker.tar.gz extra.bin
	[ "$(stat -c %s x.oci.tar.gz)" -lt $((4 << 20)) ]
	# what the OCI image references: its manifest's config and layers
	local t=$BATS_FILE_TMPDIR/img.oci.tar
	m=$(tar -xOf "$t" index.json | jq -r '.manifests[0].digest' | cut -d: -f2)
	tar -xOf "$t" "blobs/sha256/$m" >manifest
	jq -r '.config.digest, .layers[].digest' manifest | cut -d: -f2 | sort >want
	want_bytes=$(jq '[.config.size, .layers[].size] | add' manifest)
	SIFU_CACHEDIR=$PWD/c1 run "$SIFU" -q pull o1.sif oci-archive:x.oci.tar.gz
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	ls c1/blobs/sha256 | sort >got
	diff -u want got
	[ "$(cat c1/blobs/sha256/* | wc -c)" -eq "$want_bytes" ]
	[ ! -e "c1/blobs/sha256/$zero" ]
	[ -z "$(ls -A c1/tmp)" ]
	# docker-archive: manifest.json's config and layers, nothing else
	SIFU_CACHEDIR=$PWD/c2 run "$SIFU" -q pull o2.sif docker-archive:x.docker.tar.gz
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ ! -e "c2/blobs/sha256/$zero" ]
	tar -xOf "$BATS_FILE_TMPDIR/img.docker.tar" manifest.json >manifest.json
	[ "$(ls c2/blobs/sha256 | wc -l)" -eq "$(jq '1 + (.[0].Layers | length)' manifest.json)" ]
	[ "$(du -sk c2 | cut -f1)" -lt 10240 ]
	[ -z "$(ls -A c2/tmp)" ]
	# the pulled images are those of the archives without the extra member
	SIFU_CACHEDIR=$PWD/c3 "$SIFU" -q pull o3.sif oci-archive:"$BATS_FILE_TMPDIR/img.oci.tar"
	siftool dump 1 o1.sif >p1
	siftool dump 1 o3.sif >p3
	cmp p1 p3
}
