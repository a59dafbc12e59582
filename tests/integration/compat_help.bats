#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Help, completion and the messages a new user meets (issue 17), checked
# against Apptainer's behaviour: cobra's help (cmd/internal/cli/apptainer.go,
# its usage templates in docs/), the bash completion Apptainer installs
# (etc/bash_completion.d, made by cmd/docs), and its messages for the
# same mistakes.
load helpers

setup_file() {
	export D="$BATS_FILE_TMPDIR"
	busybox_tree "$D/root"
	mkdir -p "$D/root/.singularity.d"
	chmod -R a+rX "$D"
}

# cobra's help command: `apptainer help --help` and `apptainer version
# --help` print usage with an Options heading (-h, --help), exit 0
@test "help --help, help VERB and version --help have usage and an Options heading" {
	for cmd in "help --help" "help exec" "version --help" "help version"; do
		run_sifu $cmd
		[ "$status" -eq 0 ] || { echo "$cmd: $output"; false; }
		[[ "$output" == *"Usage:"* ]] || { echo "$cmd: $output"; false; }
		[[ "$output" == *$'\nOptions:\n'* ]] || { echo "$cmd: $output"; false; }
		[[ "$output" == *"-h, --help"* ]] || { echo "$cmd: $output"; false; }
	done
	run_sifu help --help
	[[ "$output" == *"sifu help [VERB]"* ]]
}

# Apptainer's help wraps its flag text to the terminal (cobra's
# FlagUsagesWrapped); a pipe gets 80 columns
@test "verb help is wrapped to COLUMNS, or to 80 when not a terminal" {
	local v
	for v in exec pull build cache; do
		run_sifu "$v" --help
		[ "$status" -eq 0 ]
		# the Examples are commands to copy, left whole
		long=$(printf '%s\n' "$output" | sed '/^Examples:/,$d' | awk 'length($0) > 80')
		[ -z "$long" ] || { echo "$v: lines over 80 columns:"; echo "$long"; false; }
	done
	COLUMNS=60 run "$SIFU" exec --help
	long=$(printf '%s\n' "$output" | sed '/^Examples:/,$d' | awk 'length($0) > 60')
	[ -z "$long" ] || { echo "over 60 columns:"; echo "$long"; false; }
	# wrapped, not cut: the last words of --bind's help are still there
	[[ "$output" == *"repeatable"* ]]
}

# each option's variables once: Apptainer's flag help names each env var once
@test "help lists each environment variable once per option" {
	run_sifu pull --help
	[ "$status" -eq 0 ]
	local n
	n=$(printf '%s\n' "$output" | grep -o 'APPTAINER_NOHTTPS\b' | wc -l)
	[ "$n" -eq 1 ] || { echo "$output"; false; }
	n=$(printf '%s\n' "$output" | grep -o 'SINGULARITY_NOHTTPS\b' | wc -l)
	[ "$n" -eq 1 ]
}

# Apptainer installs bash completion (etc/bash_completion.d/apptainer, from
# cmd/docs's completion generator): verbs, each verb's flags, files
@test "bash completion completes verbs, a verb's flags and image files" {
	"$SIFU" help --bash-completion >"$BATS_TEST_TMPDIR/sifu.bash"
	mkdir "$BATS_TEST_TMPDIR/w" && cd "$BATS_TEST_TMPDIR/w"
	touch a.sif b.sqfs notes.txt && mkdir sandbox
	run bash -c '
		source "$1"
		t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
		      _sifu; printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "; echo; }
		t sifu ex
		t sifu exec --bi
		t sifu exec ""
		t sifu exec --bind /x ""
		t sifu pull --na
		t sifu --debug ru
		complete -p sifu' _ "$BATS_TEST_TMPDIR/sifu.bash"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	echo "$output"
	[ "${lines[0]}" = "exec " ]
	[ "${lines[1]}" = "--bind " ]
	# an image: SIF and SquashFS files and directories, not other files
	[ "${lines[2]}" = "a.sif b.sqfs sandbox " ]
	[ "${lines[3]}" = "a.sif b.sqfs sandbox " ]
	[ "${lines[4]}" = "--name " ]
	[ "${lines[5]}" = "run run-help " ]
	[[ "${lines[6]}" == "complete "*" -F _sifu sifu" ]]
}

# the completion the build makes is the one sifu prints, and meson
# install puts it where bash-completion looks (share/bash-completion/completions)
@test "the build's completion file is installed and current" {
	local f
	f="$(dirname "$SIFU")/../docs/sifu"
	[ -f "$f" ] || skip "not run from a build tree"
	run diff <("$SIFU" help --bash-completion) "$f"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	local intro="$(dirname "$SIFU")/../meson-info/intro-installed.json"
	[ -f "$intro" ] || skip "no meson introspection data"
	grep -q 'bash-completion/completions/sifu"' "$intro"
}
