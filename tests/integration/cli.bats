#!/usr/bin/env bats
# The CLI skeleton: help, version, unknown verbs and flags, man pages.
load helpers

@test "runs as the user the harness says" {
	# scripts/test runs this file as root and as sifu-test; prove which.
	if [ "${SIFU_TEST_EXPECT_UNPRIVILEGED:-0}" = 1 ]; then
		[ "$(id -u)" -ne 0 ]
		[ "$(id -un)" = sifu-test ]
	else
		[ "$(id -u)" -eq 0 ] || [ "${SIFU_TEST_EXPECT_UNPRIVILEGED:-}" = "" ]
	fi
}

@test "sifu --version and sifu version" {
	run_sifu --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^sifu\ version\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	run_sifu version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^sifu\ version ]]
}

@test "sifu --help lists every verb" {
	run_sifu --help
	[ "$status" -eq 0 ]
	for v in exec run shell test pull build inspect sign verify key cache instance sif version help; do
		printf '%s\n' "$output" | grep -qE "^  $v "
	done
}

@test "verb --help has usage, description, options and examples" {
	for v in exec run shell test pull build inspect sign verify key cache instance sif; do
		run_sifu "$v" --help
		[ "$status" -eq 0 ]
		[[ "$output" == *"Usage:"* ]]
		[[ "$output" == *"Description:"* ]]
		[[ "$output" == *"Examples:"* ]]
	done
	run_sifu exec --help
	[[ "$output" == *"--bind"* ]]
	[[ "$output" == *"APPTAINER_BIND"* ]]
}

@test "unknown verb: one line, a suggestion, exit 255" {
	run_sifu frobnicate
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[[ "$output" == *"unknown verb 'frobnicate'"* ]]
	run_sifu exce
	assert_sifu_error
	[[ "$output" == *"did you mean 'sifu exec'"* ]]
}

@test "unknown flag: one line, a suggestion, exit 255" {
	run_sifu exec --bnid /x img true
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[[ "$output" == *"--bnid"* ]]
	[[ "$output" == *"--bind"* ]]
	run_sifu --debgu version
	assert_sifu_error
	[[ "$output" == *"--debug"* ]]
}

@test "flag needing a value says so" {
	run_sifu exec --pwd
	assert_sifu_error
	[[ "$output" == *"--pwd needs a value"* ]]
}

@test "a bad boolean in the environment is reported with its variable" {
	SIFU_CLEANENV=perhaps run "$SIFU" exec img true
	assert_sifu_error
	[[ "$output" == *"SIFU_CLEANENV=perhaps"* ]]
}

@test "no verb prints help and exits 255" {
	run_sifu
	[ "$status" -eq 255 ]
	[[ "$output" == *"Usage:"* ]]
}

@test "man pages are built and name the options and variables" {
	man_dir="$(dirname "$SIFU")/../docs"
	[ -f "$man_dir/sifu.1" ]
	MANWIDTH=1000 run man -l "$man_dir/sifu-exec.1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"--bind"* ]]
	[[ "$output" == *"SINGULARITY_BINDPATH"* ]]
	MANWIDTH=1000 run man -l "$man_dir/sifu.1"
	[[ "$output" == *"run-singularity"* ]]
}

@test "run-singularity behaves as sifu run" {
	link="$(dirname "$SIFU")/run-singularity"
	[ -L "$link" ]
	run "$link" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"sifu run [options] IMAGE"* ]]
}

@test "the launcher binary loads no registry, archive, crypto or JSON library; sifu-all has the rest" {
	# every `sifu exec` pays for each shared object sifu loads at start-up
	run ldd "$SIFU"
	[ "$status" -eq 0 ]
	[[ "$output" != *libcurl* ]]
	[[ "$output" != *libgpgme* ]]
	[[ "$output" != *libarchive* ]]
	[[ "$output" != *libcrypto* ]]
	[[ "$output" != *libjansson* ]]
	[ -x "$(dirname "$SIFU")/sifu-all" ]
	# a verb that lives in sifu-all is handed to it with the same arguments
	run_sifu cache list --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"sifu cache list|clean"* ]]
	XDG_CACHE_HOME=$BATS_TEST_TMPDIR/c run "$SIFU" cache list
	[ "$status" -eq 0 ]
}
