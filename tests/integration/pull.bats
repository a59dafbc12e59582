#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# sifu pull: every source type into SIF, compared with `umoci unpack` of the
# same image; registries with and without TLS/auth; digests, hostile layers,
# concurrency and a full disk.
load helpers

ROOT=$BATS_TEST_DIRNAME/../..
MKIMG=$BATS_TEST_DIRNAME/pull_image.py
TREE=$BATS_TEST_DIRNAME/pull_tree.py

setup_file() {
	local d=$BATS_FILE_TMPDIR
	# for sanitizer builds: see the file for the one leak that is not ours
	export LSAN_OPTIONS="suppressions=$BATS_TEST_DIRNAME/lsan-libsquashfs.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
	export SIFU_CACHEDIR=$d/cache
	python3 "$MKIMG" "$d/img"               # layers: gzip, plain, zstd
	python3 "$MKIMG" "$d/img-gz" --no-zstd  # umoci 0.4 reads no zstd
	skopeo copy -q oci:"$d/img-gz":latest oci-archive:"$d/img.oci.tar":latest
	skopeo copy -q oci:"$d/img-gz":latest docker-archive:"$d/img.docker.tar":sifu/test:1
	# the reference tree
	if is_root; then
		umoci unpack --image "$d/img-gz":latest "$d/bundle" >/dev/null
		python3 "$TREE" "$d/bundle/rootfs" >"$d/expected"
	else
		# owners from umoci's user.rootlesscontainers xattr; devices it cannot make
		umoci unpack --rootless --image "$d/img-gz":latest "$d/bundle" >/dev/null
		python3 "$TREE" "$d/bundle/rootfs" --rootless --exclude dev-blk --exclude dev-null >"$d/expected"
	fi
	REGISTRY=$("$ROOT/scripts/registry" start "$d/reg")
	echo "REGISTRY=$REGISTRY" >"$d/vars"
	skopeo copy -q --dest-tls-verify=false oci:"$d/img":latest docker://"$REGISTRY"/sifu/test:1
}

teardown_file() {
	"$ROOT/scripts/registry" stop "$BATS_FILE_TMPDIR/reg" || true
	for r in "$BATS_FILE_TMPDIR"/reg-*; do
		[ -d "$r" ] && "$ROOT/scripts/registry" stop "$r" || true
	done
}

setup() {
	. "$BATS_FILE_TMPDIR/vars"
	export SIFU_CACHEDIR=$BATS_FILE_TMPDIR/cache
	cd "$BATS_TEST_TMPDIR"
}

# The tree inside a SIF, in pull_tree.py's form (as the reference was made).
tree_of() {
	siftool dump 1 "$1" >part.sqfs
	rm -rf x
	if is_root; then
		unsquashfs -q -d x part.sqfs >/dev/null
		python3 "$TREE" x --exclude .singularity.d --exclude singularity
	else
		# unprivileged unsquashfs cannot chown, keep setuid or make devices:
		# modes and owners come from its listing instead
		unsquashfs -q -d x part.sqfs >/dev/null 2>&1 || true
		unsquashfs -lln part.sqfs >lln
		python3 "$TREE" x --lln lln --exclude .singularity.d --exclude singularity \
			--exclude dev-blk --exclude dev-null
	fi
}

listing() { siftool dump 1 "$1" >"$1.part" && unsquashfs -lln "$1.part" | sed 's/  */ /g'; }

@test "pull oci: writes a SIF that siftool lists, with the tree umoci unpacks" {
	run_sifu -q pull out.sif oci:"$BATS_FILE_TMPDIR/img-gz"
	[ "$status" -eq 0 ]
	run siftool list out.sif
	[ "$status" -eq 0 ]
	[[ "$output" == *"FS (Squashfs/*System/"* ]]
	[[ "$output" == *"JSON.Generic"* ]]
	tree_of out.sif >got
	diff -u "$BATS_FILE_TMPDIR/expected" got
}

@test "pull oci: with a zstd layer gives the same tree as with gzip" {
	"$SIFU" -q pull a.sif oci:"$BATS_FILE_TMPDIR/img"
	"$SIFU" -q pull b.sif oci:"$BATS_FILE_TMPDIR/img-gz":latest
	diff <(listing a.sif) <(listing b.sif)
}

@test "pull oci-archive: and docker-archive: give the umoci tree" {
	"$SIFU" -q pull o.sif oci-archive:"$BATS_FILE_TMPDIR/img.oci.tar"
	tree_of o.sif >got
	diff -u "$BATS_FILE_TMPDIR/expected" got
	"$SIFU" -q pull --disable-cache d.sif docker-archive:"$BATS_FILE_TMPDIR/img.docker.tar"
	tree_of d.sif >got
	diff -u "$BATS_FILE_TMPDIR/expected" got
}

@test "pull docker:// from a local registry; the default name is NAME_TAG.sif" {
	run_sifu -q pull --nohttps docker://"$REGISTRY"/sifu/test:1
	[ "$status" -eq 0 ]
	[ -f test_1.sif ]
	tree_of test_1.sif >got
	diff -u "$BATS_FILE_TMPDIR/expected" got
	siftool list test_1.sif
}

@test "ownership, setuid, devices, fifo, hard links and xattrs are kept" {
	"$SIFU" -q pull o.sif oci:"$BATS_FILE_TMPDIR/img"
	listing o.sif >l
	grep -q '^-rwsr-xr-x 0/0 20 .* squashfs-root/bin/suid$' l
	grep -q '^-rwxr-sr-x 0/50 .* squashfs-root/bin/sgid$' l
	grep -q '^drwx------ 1000/1000 .* squashfs-root/home/user$' l
	grep -q '^-rw-r----- 7/8 15 .* squashfs-root/hl3$' l
	grep -q '^-rw-r----- 7/8 15 .* squashfs-root/hl4$' l
	# an upper layer replaced hl1: its old hard link hl2 keeps the old content
	grep -q '^-rw-r--r-- 0/0 40 .* squashfs-root/hl1$' l
	grep -q '^-rw-r----- 7/8 20 .* squashfs-root/hl2$' l
	grep -q '^crw-rw-rw- 0/0 1, 3 .* squashfs-root/dev-null$' l
	grep -q '^prw------- 0/0 0 .* squashfs-root/fifo$' l
	grep -q 'squashfs-root/l1 -> l2$' l
	grep -q 'squashfs-root/l3 -> /etc/os-release$' l
	# whiteouts and the opaque directory
	run ! grep -q 'squashfs-root/a/b/del' l
	run ! grep -q 'squashfs-root/opq/x' l
	run ! grep -q 'squashfs-root/opq/sub' l
	grep -q 'squashfs-root/opq/z$' l
	run ! grep -q 'squashfs-root/fifo2' l
	run ! grep -q 'squashfs-root/owned' l
	grep -q '^-rw-r--r-- 0/0 19 .* squashfs-root/gone$' l
	# hard links share one inode; xattrs are there
	unsquashfs -q -d x o.sif.part hl2 hl3 hl4 xattrfile >/dev/null 2>&1 || true
	[ "$(stat -c %i x/hl3)" = "$(stat -c %i x/hl4)" ]
	[ "$(cat x/hl2)" = "hard linked content" ]
	[ "$(getfattr --only-values -n user.sifu x/xattrfile)" = hello ]
}

@test "pull oras:// gets a SIF stored as an OCI artifact, byte for byte" {
	"$SIFU" -q pull o.sif oci:"$BATS_FILE_TMPDIR/img"
	python3 "$BATS_TEST_DIRNAME/pull_oras.py" o.sif art
	skopeo copy -q --dest-tls-verify=false oci:art:latest docker://"$REGISTRY"/sif/art:1
	"$SIFU" -q pull --nohttps got.sif oras://"$REGISTRY"/sif/art:1
	cmp o.sif got.sif
	[ -x got.sif ]
	run_sifu -q pull --nohttps img.sif docker://"$REGISTRY"/sif/art:1
	assert_sifu_error
	[[ "$output" == *"oras://"* ]]
}

@test "pull https:// (here http://) downloads a SIF; anything else is refused" {
	mkdir www
	"$SIFU" -q pull www/img.sif oci:"$BATS_FILE_TMPDIR/img"
	echo "not a sif" >www/bad.sif
	P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	(cd www && exec python3 -m http.server "$P" --bind 127.0.0.1 >/dev/null 2>&1 3>&-) &
	srv=$!
	for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$P))" 2>/dev/null && break; sleep 0.1; done
	"$SIFU" -q pull http://127.0.0.1:"$P"/img.sif
	run_sifu -q pull http://127.0.0.1:"$P"/bad.sif
	kill "$srv"
	cmp www/img.sif img.sif
	assert_sifu_error
	[[ "$output" == *"not a SIF"* ]]
	[ ! -e bad.sif ]
	run ! grep -q 'sifu-' <<<"$(ls -A)"
}

@test "/.singularity.d comes from the image config as Apptainer makes it" {
	"$SIFU" -q pull o.sif oci:"$BATS_FILE_TMPDIR/img"
	siftool dump 1 o.sif >p.sqfs
	unsquashfs -q -d s p.sqfs .singularity.d singularity >/dev/null
	[ "$(sh s/.singularity.d/runscript)" = "entry default args" ]
	[ "$(sh s/.singularity.d/runscript one 'two three')" = "entry one two three" ]
	run env -i HOME=/nonexistent sh -c '. s/.singularity.d/env/10-docker2singularity.sh; printf "%s|%s|%s" "$PATH" "$GREETING" "$QUOTE"'
	[ "$output" = "/bin:/usr/bin|hello world|it's \"quoted\" \$HOME" ]
	run env -i GREETING=host sh -c '. s/.singularity.d/env/10-docker2singularity.sh; echo "$GREETING"'
	[ "$output" = host ]
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["org.example.name"]=="sifu test", d' \
		s/.singularity.d/labels.json
	[ "$(readlink s/singularity)" = .singularity.d/runscript ]
}

@test "--compression zstd:19, xz, lz4 give images unsquashfs reads; bad levels are refused" {
	for c in zstd:19 xz lz4 gzip:1; do
		"$SIFU" -q pull "o-${c%%:*}.sif" --compression "$c" oci:"$BATS_FILE_TMPDIR/img"
		siftool dump 1 "o-${c%%:*}.sif" >p.sqfs
		unsquashfs -s p.sqfs | grep -qi "compression ${c%%:*}"
	done
	run_sifu pull bad.sif --compression gzip:12 oci:"$BATS_FILE_TMPDIR/img"
	assert_sifu_error
	[[ "$output" == *"level from 1 to 9"* ]]
	run_sifu pull bad.sif --compression brotli oci:"$BATS_FILE_TMPDIR/img"
	assert_sifu_error
	[ ! -e bad.sif ]
}

@test "a registry with TLS and basic auth: verify, ask for credentials, then pull" {
	local r=$BATS_FILE_TMPDIR/reg-tls
	R=$("$ROOT/scripts/registry" start "$r" --tls --htpasswd alice:s3cret)
	skopeo copy -q --dest-tls-verify=false --dest-creds alice:s3cret \
		oci:"$BATS_FILE_TMPDIR/img":latest docker://"$R"/priv/img:1
	run_sifu -q pull t.sif docker://"$R"/priv/img:1
	assert_sifu_error
	[[ "$output" == *"certificate"* ]]
	export SIFU_CA_BUNDLE=$r/ca.pem
	run_sifu -q pull t.sif docker://"$R"/priv/img:1
	assert_sifu_error
	[[ "$output" == *"401"* && "$output" == *"login"* ]]
	[ ! -e t.sif ]
	SIFU_DOCKER_USERNAME=alice SIFU_DOCKER_PASSWORD=s3cret "$SIFU" -q pull --disable-cache t.sif docker://"$R"/priv/img:1
	siftool list t.sif
	# credentials from a docker config.json
	mkdir -p home/.docker
	printf '{"auths":{"%s":{"auth":"%s"}}}' "$R" "$(printf alice:s3cret | base64)" >home/.docker/config.json
	HOME=$PWD/home "$SIFU" -q pull --disable-cache t2.sif docker://"$R"/priv/img:1
	siftool list t2.sif
	# sifu registry login / logout
	echo s3cret | HOME=$PWD/h2 "$SIFU" registry login -u alice --password-stdin docker://"$R"
	HOME=$PWD/h2 "$SIFU" -q pull --disable-cache t3.sif docker://"$R"/priv/img:1
	HOME=$PWD/h2 "$SIFU" registry logout docker://"$R"
	HOME=$PWD/h2 run "$SIFU" -q pull --disable-cache t4.sif docker://"$R"/priv/img:1
	assert_sifu_error
	[ ! -e t4.sif ]
	"$ROOT/scripts/registry" stop "$r"
}

@test "a registry with token auth: anonymous bearer token flow" {
	local r=$BATS_FILE_TMPDIR/reg-token
	R=$("$ROOT/scripts/registry" start "$r" --token bob:pw)
	skopeo copy -q --dest-tls-verify=false --dest-creds bob:pw \
		oci:"$BATS_FILE_TMPDIR/img":latest docker://"$R"/tok/img:1
	"$SIFU" -q pull --nohttps --disable-cache t.sif docker://"$R"/tok/img:1
	siftool list t.sif
	"$ROOT/scripts/registry" stop "$r"
}

@test "a layer whose digest does not match: refused, nothing in the cache or at the target" {
	python3 "$MKIMG" bad --bad-digest
	export SIFU_CACHEDIR=$PWD/c
	run_sifu -q pull bad.sif oci:bad
	assert_sifu_error
	[[ "$output" == *"sha256"* ]]
	[ ! -e bad.sif ]
	[ -z "$(ls -A . | grep -v '^bad$')" ]
	# the same through a registry whose stored blob was corrupted
	local r=$BATS_FILE_TMPDIR/reg-bad
	R=$("$ROOT/scripts/registry" start "$r")
	skopeo copy -q --dest-tls-verify=false oci:"$BATS_FILE_TMPDIR/img":latest docker://"$R"/bad/img:1
	big=$(find "$r/data" -path '*/blobs/sha256/*/data' -size +100k | head -1)
	chmod u+w "$big"
	printf 'XXXX' | dd of="$big" bs=1 seek=5000 conv=notrunc 2>/dev/null
	run_sifu -q pull --nohttps bad.sif docker://"$R"/bad/img:1
	assert_sifu_error
	[[ "$output" == *"digest"* ]]
	[ ! -e bad.sif ]
	[ -z "$(ls "$SIFU_CACHEDIR/tmp")" ]
	run ! grep -q "$(basename "$(dirname "$big")")" <<<"$(ls -A "$SIFU_CACHEDIR/blobs/sha256")"
	"$ROOT/scripts/registry" stop "$r"
}

@test "hostile layers are refused or kept inside the tree" {
	for h in dotdot dotdot-mid hardlink-out whiteout-out longname; do
		python3 "$MKIMG" "h-$h" --hostile "$h"
		run_sifu -q pull "h-$h.sif" oci:"h-$h"
		assert_sifu_error
		[ ! -e "h-$h.sif" ]
	done
	python3 "$MKIMG" h-dup --hostile dup
	"$SIFU" -q pull dup.sif oci:h-dup
	listing dup.sif >l
	grep -q '^-rw-r--r-- 0/0 4 .* squashfs-root/dup$' l       # the later entry wins
	grep -q '^-rw-r--r-- 0/0 11 .* squashfs-root/dupdir$' l
	python3 "$MKIMG" h-abs --hostile absolute
	"$SIFU" -q pull abs.sif oci:h-abs
	listing abs.sif | grep -q ' squashfs-root/abs/file$'
	python3 "$MKIMG" h-sl --hostile symlink-dir
	"$SIFU" -q pull sl.sif oci:h-sl
	listing sl.sif >l
	grep -q ' squashfs-root/sl/passwd$' l                   # not /etc/passwd
	grep -q '^-rw-r--r-- 0/0 67 .* squashfs-root/etc/passwd$' l
}

@test "8 concurrent pulls of one image into one cache: 1 download, 8 good SIFs" {
	local r=$BATS_FILE_TMPDIR/reg-conc
	R=$("$ROOT/scripts/registry" start "$r")
	skopeo copy -q --dest-tls-verify=false oci:"$BATS_FILE_TMPDIR/img":latest docker://"$R"/conc/img:1
	: >"$r/registry.log"
	export SIFU_CACHEDIR=$PWD/c
	pids=()
	for i in 1 2 3 4 5 6 7 8; do
		"$SIFU" -q pull --nohttps "c$i.sif" docker://"$R"/conc/img:1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	for i in 1 2 3 4 5 6 7 8; do siftool list "c$i.sif" >/dev/null; done
	for i in 2 3 4 5 6 7 8; do cmp <(listing c1.sif) <(listing "c$i.sif"); done
	# every blob (3 layers + config) was fetched once
	n=$(grep -c 'GET /v2/conc/img/blobs/sha256:.* 200 ' "$r/registry.log")
	[ "$n" -eq 4 ] || { grep 'GET /v2/conc/img/blobs' "$r/registry.log"; false; }
	"$ROOT/scripts/registry" stop "$r"
}

@test "network faults: a 503 is retried, a blob cut mid-transfer resumes with Range" {
	local r=$BATS_FILE_TMPDIR/reg-flaky
	R=$("$ROOT/scripts/registry" start "$r")
	skopeo copy -q --dest-tls-verify=false oci:"$BATS_FILE_TMPDIR/img":latest docker://"$R"/f/img:1
	P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	python3 "$BATS_TEST_DIRNAME/flaky_proxy.py" "$P" "$R" "$PWD/proxy.log" 3>&- &
	proxy=$!
	for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$P))" 2>/dev/null && break; sleep 0.1; done
	SIFU_CACHEDIR=$PWD/c run "$SIFU" -q pull --nohttps f.sif docker://127.0.0.1:"$P"/f/img:1
	kill "$proxy"
	"$ROOT/scripts/registry" stop "$r"
	[ "$status" -eq 0 ] || { echo "$output"; cat proxy.log; false; }
	grep -q '^CUT ' proxy.log
	grep -q 'range=bytes=[1-9][0-9]*-$' proxy.log
	[ "$(grep -c 'manifests/1' proxy.log)" -eq 2 ]
	tree_of f.sif >got
	diff -u "$BATS_FILE_TMPDIR/expected" got
}

@test "a full disk: a clear error and no partial SIF" {
	require_feature "unprivileged user+mount namespaces" unshare -Urm true
	run unshare -Urm sh -c "mount -t tmpfs -o size=600k tmpfs '$PWD' && cd '$PWD' && SIFU_CACHEDIR=$BATS_FILE_TMPDIR/cache '$SIFU' -q pull full.sif oci:'$BATS_FILE_TMPDIR/img'; echo status=\$?; ls -A"
	[[ "$output" == *"status=255"* ]]
	[[ "$output" == *"No space left on device"* ]]
	[[ "$output" != *"full.sif"$'\n'* ]]
	local listing=$output
	run ! grep -q '^full.sif$' <<<"$listing"
	run ! grep -q 'sifu-\|\.tmp' <<<"$listing"
}

@test "sifu cache list and clean" {
	export SIFU_CACHEDIR=$PWD/c
	"$SIFU" -q pull --nohttps x.sif docker://"$REGISTRY"/sifu/test:1
	run_sifu cache list
	[ "$status" -eq 0 ]
	[[ "$output" == *"There are 4 OCI blob file(s)"* ]]
	run_sifu cache clean </dev/null
	assert_sifu_error
	[ "$(ls c/blobs/sha256 | wc -l)" -eq 4 ]
	run_sifu cache clean --force
	[ "$status" -eq 0 ]
	[ "$(ls c/blobs/sha256 | wc -l)" -eq 0 ]
}

@test "bad input: one error line, exit 255, nothing written" {
	run_sifu pull x.sif foo://bar
	assert_sifu_error
	[[ "$output" == *"docker://"* ]]
	run_sifu pull x.sif docker://UPPER/Case
	assert_sifu_error
	run_sifu pull x.sif oci:/nonexistent
	assert_sifu_error
	run_sifu pull --nohttps x.sif docker://"$REGISTRY"/sifu/nothere:1
	assert_sifu_error
	[[ "$output" == *"404"* ]]
	touch exists.sif
	run_sifu pull exists.sif oci:"$BATS_FILE_TMPDIR/img"
	assert_sifu_error
	[[ "$output" == *"--force"* ]]
	[ ! -s exists.sif ]
	[ "$(ls -A)" = exists.sif ]
}
