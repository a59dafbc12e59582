#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Apptainer's message prefixes (issue 17, "Environment and output"): every
# line sifu writes to stderr starts as pkg/sylog's do, "INFO:    ",
# "WARNING: ", "ERROR:   ", "FATAL:   " (the label and its colon padded to
# 8 columns, then a space: sylog.go prefix(), "%-8s "), coloured only on a
# terminal, and at --debug in sylog's debug form.
load helpers

setup_file() {
	busybox_tree "$BATS_FILE_TMPDIR/bb" # no test script: `sifu test` says so in an INFO line
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	BB=$BATS_FILE_TMPDIR/bb
	AUTH=$BATS_TEST_TMPDIR/auth.json
}

# pkg/sylog/sylog.go Fatalf: the FATAL line, then os.Exit(255); Apptainer's
# CLI ends a command with it (cmd/internal/cli: sylog.Fatalf on most errors).
# sifu's hint follows on the next line, indented under the message.
@test "an error that ends the command: 'FATAL:   ' and exit 255" {
	run "$SIFU" exec "$BATS_TEST_TMPDIR/missing.sif" true
	[ "$status" -eq 255 ]
	[[ "${lines[0]}" == "FATAL:   "*"missing.sif"* ]] || { echo "got: $output"; false; }
	[[ "${lines[0]}" != "FATAL:    "* ]] # exactly three spaces: "%-8s " of "FATAL:"
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[1]}" == "         "[!\ ]* ]] || { echo "hint not indented: $output"; false; }
	[[ "$output" != *"sifu:"* ]]
	# an unknown verb and an unknown global flag are the same kind of line
	run "$SIFU" no-such-verb
	[ "$status" -eq 255 ]
	[[ "${lines[0]}" == "FATAL:   unknown verb 'no-such-verb'"* ]]
	run "$SIFU" --no-such-flag version
	[ "$status" -eq 255 ]
	[[ "${lines[0]}" == "FATAL:   unknown global flag --no-such-flag"* ]]
	# -s (sylog ErrorLevel) still prints it, hint included
	run "$SIFU" -s exec "$BATS_TEST_TMPDIR/missing.sif" true
	[ "$status" -eq 255 ]
	[[ "${lines[0]}" == "FATAL:   "* && "${#lines[@]}" -eq 2 ]]
}

# sylog.Warningf and Infof: "WARNING: " (the label fills the 8 columns) and
# "INFO:    "; Apptainer's `registry logout` warns and exits 0 when nothing
# is stored (e2e registry "logout KO").
@test "a warning: 'WARNING: '; an informational line: 'INFO:    '" {
	run "$SIFU" registry logout --authfile "$AUTH" docker://registry.invalid
	[ "$status" -eq 0 ]
	[[ "$output" == "WARNING: no credentials for registry.invalid are stored in $AUTH"* ]] ||
		{ echo "got: $output"; false; }
	run "$SIFU" registry list --authfile "$AUTH"
	[ "$status" -eq 0 ]
	[ "$output" = "INFO:    no registry credentials are stored in $AUTH" ] || { echo "got: $output"; false; }
	# Apptainer's `test` without a test script: sylog.Infof
	run "$SIFU" test "$BB"
	[ "$status" -eq 0 ]
	[ "$output" = "INFO:    no test script in the container, exiting" ] || { echo "got: $output"; false; }
}

# cmd/internal/cli/apptainer.go setSylogMessageLevel: -q is LogLevel (-1),
# -s ErrorLevel (-3); sylog.go writef prints a message only at or below the
# level, so -q drops INFO and keeps WARNING, -s drops both.
@test "-q and -s silence the INFO line; -s the warning too" {
	run "$SIFU" -q registry list --authfile "$AUTH"
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "-q printed: $output"; false; }
	run "$SIFU" -s registry list --authfile "$AUTH"
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "-s printed: $output"; false; }
	run "$SIFU" test "$BB"
	[[ "$output" == "INFO:    "* ]]
	run "$SIFU" -q test "$BB"
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "-q printed: $output"; false; }
	run "$SIFU" -s test "$BB"
	[ -z "$output" ] || { echo "-s printed: $output"; false; }
	run "$SIFU" -q registry logout --authfile "$AUTH" docker://registry.invalid
	[[ "$output" == "WARNING: "* ]]
	run "$SIFU" -s registry logout --authfile "$AUTH" docker://registry.invalid
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "-s printed: $output"; false; }
}

# sylog.go prefix(): at DebugLevel every line is "%-8s" of the bare label,
# "%-19s" of [U=euid,P=pid] and "%-30s" of the function, then the message.
@test "--debug lines carry sylog's debug prefix: label, [U=,P=], function" {
	run "$SIFU" -d exec "$BATS_TEST_TMPDIR/missing.sif" true
	[ "$status" -eq 255 ]
	printf '%s\n' "$output" | grep -Eq "^FATAL   \[U=$(id -u),P=[0-9]+\] +[a-z_]+\(\) +.*missing.sif" ||
		{ echo "got: $output"; false; }
	run "$SIFU" -d registry list --authfile "$AUTH"
	printf '%s\n' "$output" | grep -Eq '^INFO    \[U=[0-9]+,P=[0-9]+\] +[a-z_]+\(\) +no registry credentials' ||
		{ echo "got: $output"; false; }
}

# cmd/internal/cli/apptainer.go: colour unless --nocolor or stderr is not a
# terminal (term.IsTerminal(2)); sylog.go messageColors colours the label
# only: red FATAL, yellow WARNING, blue INFO.
@test "colours only on a terminal, and only the label" {
	run "$SIFU" exec "$BATS_TEST_TMPDIR/missing.sif" true
	[[ "$output" != *$'\033'* ]]
	run script -qec "'$SIFU' exec '$BATS_TEST_TMPDIR/missing.sif' true" /dev/null
	[[ "$output" == $'\033[31mFATAL:  \033[0m cannot open image'* ]] || { echo "got: $(printf '%q' "$output")"; false; }
	run script -qec "'$SIFU' --nocolor exec '$BATS_TEST_TMPDIR/missing.sif' true" /dev/null
	[[ "$output" == "FATAL:   cannot open image"* ]]
	run script -qec "'$SIFU' registry list --authfile '$AUTH'" /dev/null
	[[ "$output" == $'\033[34mINFO:   \033[0m no registry'* ]] || { echo "got: $(printf '%q' "$output")"; false; }
}
