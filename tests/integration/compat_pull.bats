#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Apptainer compatibility of pull, cache and version (issue 17): the forms
# Singularity 3.x scripts and the workflow tools (cwltool, Snakemake,
# Nextflow) use, APPTAINER_CACHEDIR/SINGULARITY_CACHEDIR, cache --type/--days,
# and the version string when called as apptainer or singularity.
load helpers

ROOT=$BATS_TEST_DIRNAME/../..

setup_file() {
	local d=$BATS_FILE_TMPDIR
	export SIFU_CACHEDIR=$d/cache
	python3 "$BATS_TEST_DIRNAME/pull_image.py" "$d/img" --no-zstd
	REGISTRY=$("$ROOT/scripts/registry" start "$d/reg")
	echo "REGISTRY=$REGISTRY" >"$d/vars"
	skopeo copy -q --dest-tls-verify=false oci:"$d/img":latest docker://"$REGISTRY"/sifu/compat:1
}

teardown_file() {
	"$ROOT/scripts/registry" stop "$BATS_FILE_TMPDIR/reg" || true
}

setup() {
	. "$BATS_FILE_TMPDIR/vars"
	export SIFU_CACHEDIR=$BATS_FILE_TMPDIR/cache
	export SIFU_NOHTTPS=1
	cd "$BATS_TEST_TMPDIR"
}

is_sif() { [ "$(head -c 10 "$1" | tail -c 9)" = "SIF_MAGIC" ] || siftool list "$1" >/dev/null; }

# e2e/pull/pull.go testPullCmd (--name is hidden there but kept for
# Singularity 3.x); cwltool's singularity.py: `pull --force --name NAME URI`
@test "pull --force --name NAME URI writes NAME (cwltool's command)" {
	run_sifu -q pull --force --name my.img docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 0 ]
	is_sif my.img
	# Snakemake 7's: `pull --name HASH.simg URI`, no --force
	run_sifu -q pull --name other.simg docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 0 ]
	is_sif other.simg
}

# cmd/internal/cli/pull.go pullRun: --name beats the OUTPUT word
@test "pull --name NAME FILE URI: --name wins, as in Apptainer" {
	run_sifu -q pull --name byname.sif positional.sif oci:"$BATS_FILE_TMPDIR/img"
	[ "$status" -eq 0 ]
	is_sif byname.sif
	[ ! -e positional.sif ]
}

# e2e/pull/pull.go testPullCmd "force existing file" / the error of pullRun
# ("Image file already exists: %q - will not overwrite"), with -F as in
# Apptainer's commonForceFlag
@test "pull onto an existing file fails and keeps it; --force and -F overwrite" {
	echo precious >keep.sif
	run_sifu pull keep.sif oci:"$BATS_FILE_TMPDIR/img"
	[ "$status" -eq 255 ]
	[[ "$output" == *'already exists: "keep.sif" - will not overwrite'* ]]
	[ "$(cat keep.sif)" = precious ]
	run_sifu pull --name keep.sif oci:"$BATS_FILE_TMPDIR/img"
	[ "$status" -eq 255 ]
	[ "$(cat keep.sif)" = precious ]
	run_sifu -q pull -F keep.sif oci:"$BATS_FILE_TMPDIR/img"
	[ "$status" -eq 0 ]
	is_sif keep.sif
	echo precious >keep.sif
	run_sifu -q pull --force --name keep.sif oci:"$BATS_FILE_TMPDIR/img"
	[ "$status" -eq 0 ]
	is_sif keep.sif
}

# e2e/pull/pull.go testPullCmd "--dir tests"; APPTAINER_PULLDIR (pullDirFlag's
# EnvKeys PULLDIR, PULLFOLDER)
@test "pull --dir DIR puts the name made from the URI, or --name, in DIR" {
	mkdir d e f
	run_sifu -q pull --dir d docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 0 ]
	is_sif d/compat_1.sif
	run_sifu -q pull --dir e --name n.sif docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 0 ]
	is_sif e/n.sif
	APPTAINER_PULLDIR=f run_sifu -q pull out.sif oci:"$BATS_FILE_TMPDIR/img"
	[ "$status" -eq 0 ]
	is_sif f/out.sif
	# the existing file check looks in DIR too
	run_sifu pull --dir e --name n.sif docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 255 ]
	[[ "$output" == *'"e/n.sif" - will not overwrite'* ]]
}

# cmd/internal/cli/pull.go pullRun: "No transport type URI supplied"
@test "pull URI without a transport says so" {
	run_sifu pull alpine
	[ "$status" -eq 255 ]
	[[ "$output" == *"no transport type URI supplied"* ]]
}

# e2e/pull/pull.go testPullDisableCacheCmd: nothing lands in the cache
@test "pull --disable-cache writes the image and leaves the cache as it was" {
	export SIFU_CACHEDIR=$BATS_TEST_TMPDIR/c
	run_sifu -q pull --disable-cache nc.sif docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 0 ]
	is_sif nc.sif
	[ -z "$(find "$SIFU_CACHEDIR" -type f 2>/dev/null)" ]
	APPTAINER_DISABLE_CACHE=1 run_sifu -q pull nc2.sif docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 0 ]
	[ -z "$(find "$SIFU_CACHEDIR" -type f 2>/dev/null)" ]
}

# User guide "Cache Folders" (APPTAINER_CACHEDIR; SINGULARITY_CACHEDIR as the
# legacy name); sifu's own SIFU_CACHEDIR beats both (docs/pull.md)
@test "APPTAINER_CACHEDIR, then SINGULARITY_CACHEDIR, hold the cache; SIFU_CACHEDIR beats them" {
	unset SIFU_CACHEDIR
	mkdir a s f
	APPTAINER_CACHEDIR=$PWD/a SINGULARITY_CACHEDIR=$PWD/s run_sifu -q pull 1.sif docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 0 ]
	[ -n "$(ls a/blobs/sha256)" ]
	[ ! -e s/blobs ]
	SINGULARITY_CACHEDIR=$PWD/s run_sifu -q pull 2.sif docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 0 ]
	[ -n "$(ls s/blobs/sha256)" ]
	SIFU_CACHEDIR=$PWD/f APPTAINER_CACHEDIR=$PWD/a run_sifu cache list
	[ "$status" -eq 0 ]
	[[ "$output" == *"Cache directory: $PWD/f"* ]]
	APPTAINER_CACHEDIR=$PWD/a run_sifu cache list
	[[ "$output" == *"Cache directory: $PWD/a"* ]]
}

# cmd/internal/cli/cache_list_linux.go / cache_clean_linux.go: --type's
# values, -v/--verbose, -D/--days, -f; `cache list all` is sifu's shorthand
@test "cache --type takes Apptainer's names; list -v shows entries; clean --days keeps new ones" {
	export SIFU_CACHEDIR=$BATS_TEST_TMPDIR/c
	run_sifu -q pull x.sif docker://"$REGISTRY"/sifu/compat:1
	[ "$status" -eq 0 ]
	run_sifu cache list --verbose --type blob
	[ "$status" -eq 0 ]
	[[ "$output" == *"sha256:"* ]]
	[[ "$output" != *"container file"* ]]
	run_sifu cache list -v all
	[ "$status" -eq 0 ]
	[[ "$output" == *"sha256:"* ]]
	for t in net blob library oci-tmp oras shub all; do
		run_sifu cache list --type "$t"
		[ "$status" -eq 0 ]
	done
	run_sifu cache list --type nosuch
	[ "$status" -eq 255 ]
	[[ "$output" == *'unknown cache type "nosuch"'* ]]
	# nothing is a day old yet: --days 1 removes nothing
	n=$(ls "$SIFU_CACHEDIR"/blobs/sha256 | wc -l)
	[ "$n" -ge 1 ]
	run_sifu cache clean --force -D 1
	[ "$status" -eq 0 ]
	[ "$(ls "$SIFU_CACHEDIR"/blobs/sha256 | wc -l)" -eq "$n" ]
	# net holds nothing in sifu: cleaning it leaves the blobs
	run_sifu cache clean --force --type net
	[ "$status" -eq 0 ]
	[ "$(ls "$SIFU_CACHEDIR"/blobs/sha256 | wc -l)" -eq "$n" ]
	# made old, they go
	touch -d '3 days ago' "$SIFU_CACHEDIR"/blobs/sha256/*
	run_sifu cache clean -f --days 2 --type blob
	[ "$status" -eq 0 ]
	[ "$(ls "$SIFU_CACHEDIR"/blobs/sha256 | wc -l)" -eq 0 ]
	run_sifu cache clean --force --days soon
	[ "$status" -eq 255 ]
}

# cmd/internal/cli/apptainer.go: the version template is "apptainer version
# X" whatever the binary is called; `version` prints the bare number.
# cwltool (singularity.py get_version) and Snakemake 7
# (deployment/singularity.py) parse it.
@test "called as apptainer or singularity, --version answers as Apptainer; --debug version says sifu" {
	mkdir bin
	ln -s "$SIFU" bin/apptainer
	ln -s "$SIFU" bin/singularity
	for n in apptainer singularity; do
		run bin/$n --version
		[ "$status" -eq 0 ]
		[[ "$output" =~ ^apptainer\ version\ 1\.[0-9]+\.[0-9]+$ ]]
		run bin/$n version
		[ "$status" -eq 0 ]
		[[ "$output" =~ ^1\.[0-9]+\.[0-9]+$ ]]
	done
	run "$SIFU" --version
	[[ "$output" == "sifu version "* ]]
	run "$SIFU" --debug version
	[ "$status" -eq 0 ]
	[[ "$output" == *"sifu version "* ]]
	[[ "$output" == *"this is sifu"*"matches Apptainer 1."* ]]
	run bin/singularity --debug --version
	[[ "$output" == *"this is sifu"* ]]
}
