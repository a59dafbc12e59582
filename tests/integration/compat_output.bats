#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Apptainer's output (issue 17, "Environment and output"): the levels of
# -s/-q/-v/-d and their variables, progress only on a terminal, and
# `pull --arch` on an image built for one platform only.
load helpers

ROOT=$BATS_TEST_DIRNAME/../..

setup_file() {
	local d=$BATS_FILE_TMPDIR
	busybox_tree "$d/bb" # no runscript, no test script: a warning and an INFO line
	python3 "$BATS_TEST_DIRNAME/pull_image.py" "$d/img"
	REGISTRY=$("$ROOT/scripts/registry" start "$d/reg")
	echo "REGISTRY=$REGISTRY" >"$d/vars"
	# a plain image manifest (no index): one platform, this machine's
	skopeo copy -q --dest-tls-verify=false oci:"$d/img":latest docker://"$REGISTRY"/sifu/one:1
}

teardown_file() {
	"$ROOT/scripts/registry" stop "$BATS_FILE_TMPDIR/reg" || true
}

setup() {
	. "$BATS_FILE_TMPDIR/vars"
	export SIFU_CACHEDIR=$BATS_TEST_TMPDIR/cache
	BB=$BATS_FILE_TMPDIR/bb
	cd "$BATS_TEST_TMPDIR"
}

# The lines FLAGS... give: `run` of an image without a runscript (a warning)
# and `test` of one without a test script (an INFO line), stderr only.
levels() {
	"$SIFU" "$@" run "$BB" </dev/null 2>&1 >/dev/null
	"$SIFU" "$@" test "$BB" 2>&1 >/dev/null
}

# Apptainer's cmd/internal/cli/apptainer.go (setSylogMessageLevel) and
# pkg/sylog: -s is ErrorLevel (errors only), -q LogLevel (warnings stay, INFO
# goes), the default InfoLevel; the user guide's "Commands" global options.
@test "-q keeps warnings and drops INFO lines; -s keeps only errors" {
	run levels
	[ "$status" -eq 0 ]
	[[ $output == *"no runscript"* ]]
	[[ $output == *"no test script"* ]]

	run levels -q
	[ "$status" -eq 0 ]
	[[ $output == *"no runscript"* ]] || { echo "-q dropped the warning: $output"; false; }
	[[ $output != *"no test script"* ]]
	run levels --quiet
	[[ $output == *"no runscript"* && $output != *"no test script"* ]]

	run levels -s
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "-s printed: $output"; false; }
	run levels --silent
	[ -z "$output" ]

	# errors are printed at every level
	run "$SIFU" -s exec "$BATS_TEST_TMPDIR/missing.sif" true
	[ "$status" -eq 255 ]
	[[ $output == *"missing.sif"* ]]
}

# Apptainer's setSylogMessageLevel checks debug, then verbose, then quiet,
# then silent: the most verbose flag wins, whatever the order given.
@test "the most verbose of -s, -q, -v, -d wins, whatever the order" {
	run levels -s -v
	[[ $output == *"no runscript"* && $output == *"no test script"* ]]
	run levels -q -d
	[[ $output == *"no test script"* ]]
	[[ $output == *"debug"* || $output == *"DEBUG"* ]]
	run levels -d -s
	[[ $output == *"debug"* || $output == *"DEBUG"* ]]
}

# The flags' EnvKeys in cmd/internal/cli/apptainer.go (DEBUG, VERBOSE, QUIET,
# SILENT, NOCOLOR under the APPTAINER_ and SINGULARITY_ prefixes, read as Go
# booleans) and APPTAINER_MESSAGELEVEL; user guide appendix "Environment
# variables".
@test "APPTAINER_QUIET, SINGULARITY_SILENT, APPTAINER_DEBUG and MESSAGELEVEL set the level" {
	APPTAINER_QUIET=1 run levels
	[[ $output == *"no runscript"* && $output != *"no test script"* ]]
	SINGULARITY_SILENT=true run levels
	[ -z "$output" ] || { echo "SINGULARITY_SILENT printed: $output"; false; }
	APPTAINER_QUIET=0 run levels
	[[ $output == *"no test script"* ]]
	# a flag and a variable together: the most verbose wins
	APPTAINER_DEBUG=1 run levels -s
	[[ $output == *"debug"* || $output == *"DEBUG"* ]]
	APPTAINER_MESSAGELEVEL=5 run levels
	[[ $output == *"debug"* || $output == *"DEBUG"* ]]
	# --nocolor / APPTAINER_NOCOLOR are accepted (stderr is no terminal here)
	APPTAINER_NOCOLOR=1 run "$SIFU" --nocolor -s test "$BB"
	[ "$status" -eq 0 ]
	run "$SIFU" --no-color -s test "$BB"
	[ "$status" -eq 0 ]
	run "$SIFU" --help
	[[ $output == *"--silent"* ]]
}

# Apptainer draws progress bars only when stderr is a terminal
# (internal/pkg/client/progress_roundtrip.go: term.IsTerminal(2)); a batch
# job's log gets the INFO lines and nothing else.
@test "pull with stderr redirected to a file writes no progress lines" {
	"$SIFU" pull --nohttps --disable-cache r.sif docker://"$REGISTRY"/sifu/one:1 2>err
	[ -s r.sif ]
	"$SIFU" pull --disable-cache o.sif oci:"$BATS_FILE_TMPDIR/img" 2>>err
	[ -s o.sif ]
	cat err
	run grep -c -v -i -e '^INFO: ' err
	[ "$output" = 0 ] || { echo "lines that are not INFO lines:"; cat err; false; }
	run grep -c $'\r\|MiB\|KiB\|/s' err
	[ "$output" = 0 ]
	# -q: not even the INFO line
	"$SIFU" -q pull --disable-cache q.sif oci:"$BATS_FILE_TMPDIR/img" 2>qerr
	[ -s q.sif ] && [ ! -s qerr ]
}

# Apptainer's internal/pkg/ociplatform (CheckImagePlatform): an image must
# satisfy the requested platform, "image (linux/amd64) does not satisfy
# required platform (linux/arm64)"; e2e/pull's "--arch" cases.
@test "pull --arch of another architecture on a single-platform image fails, writes nothing" {
	local other=arm64 here
	here=$(uname -m)
	[ "$here" = aarch64 ] && other=amd64
	run "$SIFU" pull --nohttps --arch "$other" a.sif docker://"$REGISTRY"/sifu/one:1
	[ "$status" -eq 255 ]
	[[ $output == *"does not satisfy required platform (linux/$other)"* ]] || { echo "$output"; false; }
	[ "$(message_count)" -eq 1 ]
	[ ! -e a.sif ]
	run "$SIFU" pull --platform linux/"$other" b.sif oci:"$BATS_FILE_TMPDIR/img"
	[ "$status" -eq 255 ]
	[[ $output == *"does not satisfy required platform"* ]]
	[ ! -e b.sif ]
	# this machine's architecture, asked for by name, still pulls
	case $here in x86_64) here=amd64 ;; aarch64) here=arm64 ;; esac
	run "$SIFU" -q pull --nohttps --arch "$here" c.sif docker://"$REGISTRY"/sifu/one:1
	[ "$status" -eq 0 ]
	[ -s c.sif ]
}
