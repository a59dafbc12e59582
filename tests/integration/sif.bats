#!/usr/bin/env bats
# sif/: sifu against the reference implementation (siftool, Debian package
# `siftool`) on the reference images, round trips both ways, and a table of
# hand-made corruptions that must each give one clear error line and 255.
load helpers

FIX="$SIFU_FIXTURES/sif"

setup_file() {
	command -v siftool >/dev/null || { echo "siftool (Debian package siftool) is required" >&2; return 1; }
}

setup() {
	T=$BATS_TEST_TMPDIR
}

# siftool 2.8.3 (Debian 12) predates the OCI data types and prints
# "Unknown" without their Digest line; sifu names them as sylabs/sif does now.
normalize_oci() {
	sed -E -e 's/\|OCI\.(Blob|RootIndex)$/|Unknown/' \
		-e 's/(Data Type: +)OCI\.(Blob|RootIndex)$/\1Unknown/' -e '/^  Digest: /d'
}

object_ids() { siftool list "$1" | tail -n +4 | cut -d' ' -f1; }

@test "sif list, header, info and dump match siftool on every reference image" {
	local n=0
	for f in "$FIX"/*.sif; do
		diff -u <(siftool header "$f") <("$SIFU" sif header "$f")
		diff -u <(siftool list "$f") <("$SIFU" sif list "$f" | normalize_oci)
		for id in $(object_ids "$f"); do
			diff -u <(siftool info "$id" "$f") <("$SIFU" sif info "$id" "$f" | normalize_oci)
			cmp <(siftool dump "$id" "$f") <("$SIFU" sif dump "$id" "$f")
			n=$((n + 1))
		done
	done
	[ "$n" -ge 25 ] # every object of the 16 images was compared
}

@test "sif shows the OCI types by their current names, with the digest" {
	run_sifu sif list "$FIX/one-object-oci-blob.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"|OCI.Blob"* ]]
	run_sifu sif info 1 "$FIX/one-object-oci-root-index.sif"
	[[ "$output" == *"Data Type:  OCI.RootIndex"* ]]
	[[ "$output" == *"Digest:     sha256:2dc692f0dcaf7e3cb30db2d5d61004e4319f13db84331b65f066481c0f94cffb"* ]]
}

@test "sif --json gives the same facts" {
	run_sifu sif list --json "$FIX/two-groups.sif"
	[ "$status" -eq 0 ]
	[ "$(printf '%s' "$output" | jq '.objects | length')" = 3 ]
	[ "$(printf '%s' "$output" | jq -r '.objects[1].partition_type')" = '*System' ]
	[ "$(printf '%s' "$output" | jq -r '.objects[2].arch')" = amd64 ]
	run_sifu sif header --json "$FIX/one-group-signed-legacy.sif"
	[ "$(printf '%s' "$output" | jq -r .id)" = 6ecc76b7-a497-4f7f-9ebd-8da2a04c6be1 ]
	[ "$(printf '%s' "$output" | jq -r .descriptors_free)" = 45 ]
	run_sifu sif info --json 3 "$FIX/one-group-signed-pgp.sif"
	[ "$(printf '%s' "$output" | jq -r .entity)" = 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84 ]
	[ "$(printf '%s' "$output" | jq -r .linked_is_group)" = true ]
}

@test "an image made by sifu sif new/add/setprim is read by siftool" {
	printf 'Bootstrap: docker\nFrom: alpine\n' >"$T/r.def"
	head -c 5000 /dev/urandom >"$T/root.sqfs"
	head -c 777 /dev/urandom >"$T/data.img"
	"$SIFU" sif new "$T/a.sif"
	[ "$(stat -c %a "$T/a.sif")" = 755 ]
	"$SIFU" sif add "$T/a.sif" "$T/r.def" --datatype 1 --groupid 1 --filename r.def
	"$SIFU" sif add "$T/a.sif" "$T/root.sqfs" --datatype 4 --parttype 1 --partfs 1 --partarch 2 --groupid 1
	"$SIFU" sif add "$T/a.sif" "$T/data.img" --datatype 4 --parttype 3 --partfs 4 --partarch 4 --groupid 2
	"$SIFU" sif add "$T/a.sif" "$T/r.def" --datatype 5 --signhash 2 \
		--signentity 433FE984155206BD962725E20E8713472A879943 --linkgroup 1
	"$SIFU" sif setprim 2 "$T/a.sif"
	run siftool list "$T/a.sif"
	[ "$status" -eq 0 ]
	[[ "${lines[3]}" == "1    |1       |NONE    |32176-32207               |Def.FILE" ]]
	[[ "${lines[4]}" == "2    |1       |NONE    |32768-37768               |FS (Squashfs/*System/amd64)" ]]
	[[ "${lines[5]}" == "3    |2       |NONE    |40960-41737               |FS (Raw/Data/arm64)" ]]
	[[ "${lines[6]}" == "4    |NONE    |1   (G) |41737-41768               |Signature (SHA-384)" ]]
	siftool header "$T/a.sif" | grep -qx 'Launch Script:        #!/usr/bin/env run-singularity'
	siftool header "$T/a.sif" | grep -qx 'Primary Architecture: amd64'
	cmp <(siftool dump 2 "$T/a.sif") "$T/root.sqfs"
	cmp <(siftool dump 3 "$T/a.sif") "$T/data.img"
	diff -u <(siftool header "$T/a.sif") <("$SIFU" sif header "$T/a.sif")
	for id in 1 2 3 4; do diff -u <(siftool info $id "$T/a.sif") <("$SIFU" sif info $id "$T/a.sif"); done
	# and siftool can keep editing it
	siftool del 3 "$T/a.sif"
	run_sifu sif list "$T/a.sif"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 6 ]
}

# zero the time fields (header and every descriptor) of a 48-descriptor image
mask_times() {
	dd if=/dev/zero of="$1" bs=1 seek=64 count=16 conv=notrunc status=none
	for i in $(seq 0 47); do
		dd if=/dev/zero of="$1" bs=1 seek=$((4096 + i * 585 + 41)) count=16 conv=notrunc status=none
	done
}

@test "sifu add and del write the same bytes as siftool" {
	# Debian's siftool 2.8.3 stamps the clock even on deterministic images,
	# where current sylabs/sif (and sifu) keep Go's zero time: compare all
	# but the time fields
	cp "$FIX/empty.sif" "$T/go.sif"
	cp "$FIX/empty.sif" "$T/c.sif"
	chmod u+w "$T/go.sif" "$T/c.sif"
	printf '{"a": 1}\n' >"$T/o.json"
	head -c 6000 /dev/urandom >"$T/p.img"
	for tool in "siftool" "$SIFU sif"; do
		f=$T/c.sif; [ "$tool" = siftool ] && f=$T/go.sif
		$tool add "$f" "$T/o.json" --datatype 6 --groupid 1 --filename o.json
		$tool add "$f" "$T/p.img" --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1
		$tool add "$f" "$T/o.json" --datatype 7 --alignment 512
		$tool add "$f" "$T/o.json" --datatype 5 --signhash 1 \
			--signentity 433FE984155206BD962725E20E8713472A879943 --link 2
		$tool add "$f" "$T/o.json" --datatype 9 --sbomformat spdx-json
		$tool del 3 "$f"
	done
	mask_times "$T/go.sif"
	mask_times "$T/c.sif"
	cmp "$T/go.sif" "$T/c.sif"
}

@test "an image made by siftool is read by sifu" {
	siftool new "$T/g.sif"
	head -c 9000 /dev/urandom >"$T/p.img"
	siftool add "$T/g.sif" "$T/p.img" --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1
	siftool add "$T/g.sif" "$T/p.img" --datatype 2 --groupid 1 --filename env
	diff -u <(siftool list "$T/g.sif") <("$SIFU" sif list "$T/g.sif")
	diff -u <(siftool header "$T/g.sif") <("$SIFU" sif header "$T/g.sif")
	cmp <("$SIFU" sif dump 1 "$T/g.sif") "$T/p.img"
	cmp <("$SIFU" sif dump 2 "$T/g.sif") "$T/p.img"
}

@test "sif modifications refuse what would break the image" {
	cp "$FIX/one-group-signed-pgp.sif" "$T/s.sif"
	chmod u+w "$T/s.sif"
	before=$(sha256sum <"$T/s.sif")
	# the signature (object 3) links to group 1: deleting its only other... ok,
	# but a primary partition cannot be doubled and a link cannot dangle
	run_sifu sif add "$T/s.sif" "$T/s.sif" --datatype 4 --parttype 2 --partfs 1 --partarch 2
	assert_sifu_error
	[[ "$output" == *"already has a primary partition (object 2)"* ]]
	run_sifu sif add "$T/s.sif" /etc/hostname --datatype 5 --signhash 1 \
		--signentity 433FE984155206BD962725E20E8713472A879943 --link 9
	assert_sifu_error
	[[ "$output" == *"links to object 9, which does not exist"* ]]
	run_sifu sif setprim 3 "$T/s.sif"
	assert_sifu_error
	[[ "$output" == *"object 3 is not a partition (Signature)"* ]]
	run_sifu sif del 7 "$T/s.sif"
	assert_sifu_error
	[ "$(sha256sum <"$T/s.sif")" = "$before" ]
	# deleting both members of group 1 would orphan the group signature
	"$SIFU" sif del 1 "$T/s.sif"
	run_sifu sif del 2 "$T/s.sif"
	assert_sifu_error
	[[ "$output" == *"links to group 1, which does not exist"* ]]
}

@test "sif new never leaves a half-written file under the final name" {
	# a write that fails half-way (file size limit, SIGXFSZ ignored so
	# write(2) says EFBIG): no image under the final name, no temp file
	mkdir "$T/small"
	run bash -c "trap '' XFSZ; ulimit -f 8; exec '$SIFU' sif new '$T/small/x.sif'"
	assert_sifu_error
	[ -z "$(ls -A "$T/small")" ]
	# a directory the user cannot write to (root can, so only as a user)
	if ! is_root; then
		mkdir "$T/ro"
		chmod 0555 "$T/ro"
		run_sifu sif new "$T/ro/x.sif"
		assert_sifu_error
		[ -z "$(ls -A "$T/ro")" ]
	fi
}

@test "sif usage errors say what to do" {
	run_sifu sif
	assert_sifu_error
	run_sifu sif lst "$FIX/empty.sif"
	assert_sifu_error
	[[ "$output" == *"did you mean 'sifu sif list'"* ]]
	run_sifu sif info 0 "$FIX/one-group.sif"
	assert_sifu_error
	run_sifu sif info 9 "$FIX/one-group.sif"
	assert_sifu_error
	[[ "$output" == *"has no object 9"* ]]
	run_sifu sif add "$T/none.sif" /etc/hostname
	assert_sifu_error
	[[ "$output" == *"--datatype is required"* ]]
	run_sifu sif list /etc/hostname
	assert_sifu_error
	[[ "$output" == *"not a SIF file"* ]]
}

# ---- corruptions ----------------------------------------------------------
# one-group.sif: header at 0, descriptors at 4096 (585 bytes each: object 1
# at 4096, object 2 at 4681), object 1 at 32768 (4 bytes), object 2 at 36864
# (4096 bytes), 40960 bytes in all.

put() { # put FILE OFFSET BYTES(hex) — overwrite in place
	printf "$(printf '%s' "$3" | sed 's/../\\x&/g')" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
le() { # le WIDTH VALUE — little-endian hex of a two's-complement integer
	local w=$1 v=$2 hex out="" i
	if [ "$v" -lt 0 ]; then v=$(( (1 << 63) + (v + (1 << 63)) )); fi
	hex=$(printf "%0$((w * 2))x" "$v")
	hex=${hex: -$((w * 2))}
	for ((i = w * 2 - 2; i >= 0; i -= 2)); do out+=${hex:$i:2}; done
	printf '%s' "$out"
}

corrupt_case() { # corrupt_case EXPECTED-SUBSTRING ACTION...
	local want=$1
	shift
	cp "$FIX/one-group.sif" "$T/c.sif"
	chmod u+w "$T/c.sif"
	"$@"
	run "$SIFU" sif list "$T/c.sif"
	[ "$status" -eq 255 ] || { echo "status $status for: $want" >&2; return 1; }
	[ "$(message_count)" -eq 1 ] || { echo "not one line: $output" >&2; return 1; }
	[[ "$output" == FATAL:* ]] || { echo "no FATAL: prefix: $output" >&2; return 1; }
	[[ "$output" == *"$want"* ]] || { echo "want '$want', got: $output" >&2; return 1; }
	# the launcher's entry point refuses it too, and nothing crashed on the way
	run "$SIFU" sif header "$T/c.sif"
	[ "$status" -eq 255 ]
	count=$((count + 1))
}

trunc() { truncate -s "$1" "$T/c.sif"; }
set64() { put "$T/c.sif" "$1" "$(le 8 "$2")"; }
set32() { put "$T/c.sif" "$1" "$(le 4 "$2")"; }

@test "each hand-made corruption gives one clear error naming field and offset, exit 255" {
	count=0
	corrupt_case "not a SIF file: 0 bytes" trunc 0
	corrupt_case "global header (offset 0) truncated: the file is 100 bytes" trunc 100
	corrupt_case "DescriptorsOffset (offset 96): the descriptor table (28080 bytes at 4096) runs past the end of the file (4096 bytes" trunc 4096
	corrupt_case "DescriptorsOffset (offset 96): the descriptor table (28080 bytes at 4096) runs past the end of the file (5000 bytes" trunc 5000
	corrupt_case "DataSize (offset 120): 8784 bytes from offset 32176 run past the end of the file (32176 bytes" trunc 32176
	corrupt_case "DataSize (offset 120)" trunc 38000
	corrupt_case "no SIF_MAGIC at offset 32" put "$T/c.sif" 32 58
	corrupt_case "version (offset 42): SIF version '02' is not supported" put "$T/c.sif" 43 32
	corrupt_case "DescriptorsTotal (offset 88): -1 is out of range" set64 88 -1
	corrupt_case "DescriptorsTotal (offset 88): 1000000000 is out of range" set64 88 1000000000
	corrupt_case "DescriptorsSize (offset 104): 28080 bytes cannot hold 60 descriptors" set64 88 60
	corrupt_case "DescriptorsFree (offset 80): says 47 free, but 46 of 48 descriptors are unused" set64 80 47
	corrupt_case "DescriptorsFree (offset 80): 100 free of 48 descriptors" set64 80 100
	corrupt_case "DescriptorsOffset (offset 96): 0 overlaps the 128-byte global header" set64 96 0
	corrupt_case "DescriptorsOffset (offset 96): the descriptor table (28080 bytes at 1099511627776) runs past the end" set64 96 1099511627776
	corrupt_case "DataOffset (offset 112): 100 lies inside the descriptor table" set64 112 100
	corrupt_case "DataOffset (offset 112): 1099511627776 is past the end of the file" set64 112 1099511627776
	corrupt_case "DataSize (offset 120): -5 bytes" set64 120 -5
	corrupt_case "object 1 field Offset (offset 4113): 999999 is outside the data section" set64 4113 999999
	corrupt_case "object 1 field Offset (offset 4113): 100 is outside the data section" set64 4113 100
	corrupt_case "object 2 field Offset (offset 4698): bytes 32770-36866 overlap object 1 (32768-32772)" set64 4698 32770
	corrupt_case "object 2 field Size (offset 4706): 100000 bytes at 36864 run past the end of the file" set64 4706 100000
	corrupt_case "object 1 field Size (offset 4121): -1 bytes" set64 4121 -1
	corrupt_case "object 1 field SizeWithPadding (offset 4129): 1 does not fit size 4" set64 4129 1
	corrupt_case "descriptor 1 field ID (offset 4686): object id 1 is used twice" set32 4686 1
	corrupt_case "descriptor 0 field ID (offset 4101): object id 0 is reserved" set32 4101 0
	corrupt_case "object 1 field GroupID (offset 4105): 0x00000001 lacks the group mask" set32 4105 1
	corrupt_case "object 1 field LinkedID (offset 4109): links to object 7, which does not exist" set32 4109 7
	corrupt_case "object 1 field LinkedID (offset 4109): links to object 1, which is itself" set32 4109 1
	corrupt_case "object 1 field LinkedID (offset 4109): links to group 9, which does not exist" set32 4109 $((0xf0000009))
	corrupt_case "object 2 field Extra (offset 4886): a second primary system partition" set32 4301 2
	[ "$count" -ge 30 ]
}

@test "docs/sif.md example runs as written" {
	cd "$T"
	# the commands of the example in docs/sif.md, in order
	sed -n '/^<!-- example:begin -->/,/^<!-- example:end -->/p' "$BATS_TEST_DIRNAME/../../docs/sif.md" |
		grep '^\$ ' | sed 's/^\$ //' >cmds.sh
	[ "$(wc -l <cmds.sh)" -ge 5 ]
	PATH="$(dirname "$SIFU"):$PATH" bash -euo pipefail cmds.sh >out.txt
	grep -q 'FS (Squashfs/\*System/amd64)' out.txt
	grep -q 'Def.FILE' out.txt
}

@test "inspect reads the SIF metadata objects first, then the image; a damaged image is one line" {
	printf 'Bootstrap: docker\nFrom: alpine\n' >"$T/t.def"
	printf '{"org.label-schema.schema-version":"1.0","MAINTAINER":"me"}' >"$T/l.json"
	head -c 4096 /dev/urandom >"$T/root.sqfs"
	"$SIFU" sif new "$T/i.sif"
	"$SIFU" sif add "$T/i.sif" "$T/t.def" --datatype 1 --groupid 1
	"$SIFU" sif add "$T/i.sif" "$T/l.json" --datatype 3 --groupid 1
	"$SIFU" sif add "$T/i.sif" "$T/root.sqfs" --datatype 4 --partfs 1 --parttype 2 --partarch 2 --groupid 1
	run_sifu inspect "$T/i.sif"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "MAINTAINER: me" ]
	[ "${lines[1]}" = "org.label-schema.schema-version: 1.0" ]
	run_sifu inspect --deffile "$T/i.sif"
	[ "$status" -eq 0 ]
	[ "$output" = "$(cat "$T/t.def")" ]
	run_sifu inspect --json --labels --deffile "$T/i.sif"
	[ "$(printf '%s' "$output" | jq -r .type)" = container ]
	[ "$(printf '%s' "$output" | jq -r .data.attributes.labels.MAINTAINER)" = me ]
	# the runscript lives only inside the image's file system, and this
	# "file system" is random bytes (inspect_image.bats reads real ones)
	run_sifu inspect --runscript "$T/i.sif"
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[[ "$output" == *"reading /.singularity.d/runscript from the image: not a SquashFS"* ]]
	# Apptainer's inspect-metadata.json object answers it
	printf '{"attributes":{"runscript":"#!/bin/sh\\necho hi\\n","labels":{"A":"b"}},"type":"container"}' >"$T/m.json"
	"$SIFU" sif add "$T/i.sif" "$T/m.json" --datatype 6 --groupid 1 --filename inspect-metadata.json
	run_sifu inspect --runscript "$T/i.sif"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "echo hi" ]
	run_sifu inspect "$T/i.sif"
	[ "$output" = "A: b" ]
}
