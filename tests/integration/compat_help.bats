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
	# an environment script: the image's start goes through /bin/sh
	mkdir -p "$D/root/.singularity.d/env" "$D/empty" "$D/data/results"
	echo 'export IMG_ENV=1' >"$D/root/.singularity.d/env/90-img.sh"
	echo 42 >"$D/data/results/run1.csv"
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
	local v verbs
	# every verb sifu --help lists; the Examples (commands to copy, left
	# whole) are written to fit too
	verbs=$("$SIFU" --help | sed -n '/^Verbs:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
	[ "$(printf '%s\n' "$verbs" | wc -l)" -ge 20 ]
	for v in $verbs; do
		run_sifu "$v" --help
		[ "$status" -eq 0 ] || { echo "$v --help: $output"; false; }
		long=$(printf '%s\n' "$output" | awk 'length($0) > 80')
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
	local build intro
	build="$(dirname "$SIFU")/.."
	intro="$build/meson-info/intro-installed.json"
	# an installed sifu has no build tree to look at: the test above covers it
	[ -f "$intro" ] || return 0
	run diff <("$SIFU" help --bash-completion) "$build/docs/sifu"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	grep -q 'bash-completion/completions/sifu"' "$intro"
}

# Apptainer's sandbox check (pkg/image/sandbox.go takes any directory) then
# fails on a missing /bin/sh or action script; the issue asks for a plain
# "not a container image" for a directory that is none
@test "a directory that is not a container image says so, in one line" {
	for dir in "$D/empty" "$D/data"; do
		run_sifu exec "$dir" true
		[ "$status" -eq 255 ] || { echo "$dir: $output"; false; }
		[ "$(message_count)" -eq 1 ] || { echo "$dir: $output"; false; }
		[[ "$output" == *"$dir is not a container image"* ]] || { echo "$output"; false; }
	done
	# a root file system without /.singularity.d still runs
	run_sifu exec "$D/root" true
	[ "$status" -eq 0 ] || { echo "$output"; false; }
}

# cobra answers "unknown flag: --block-cache" for a verb's flag given
# before the verb; sifu names the verb it belongs to
@test "a verb's flag before the verb says it belongs after the verb" {
	run_sifu --block-cache off exec "$D/root" true
	[ "$status" -eq 255 ]
	[[ "$output" == *"--block-cache is a flag of the verb exec, not a global flag"* ]] || { echo "$output"; false; }
	[[ "$output" == *"sifu exec --block-cache"* ]]
	# a real typo of a global flag still gets its suggestion
	run_sifu --debg exec "$D/root" true
	[[ "$output" == *"did you mean --debug?"* ]] || { echo "$output"; false; }
}

# Apptainer takes the home directory from the password database when HOME
# is unset (user.Current in internal/pkg/util/user); sifu wrote its keyring
# under "//.config" (or failed to create it)
@test "HOME unset: the home directory comes from the password database" {
	local home
	home=$(getent passwd "$(id -un)" | cut -d: -f6)
	run env -u HOME "$SIFU" key list
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[[ "$output" != *"//.config"* ]] || { echo "$output"; false; }
	[[ "$output" == *"$home/.config/sifu/keys"* ]] || { echo "$output"; false; }
}

# Apptainer's build fails in an unusable temporary directory; the issue asks
# that the message name the remedy (APPTAINER_TMPDIR/TMPDIR)
@test "build: an unusable TMPDIR is named with the variables that fix it" {
	: >"$BATS_TEST_TMPDIR/notadir"
	run env -u SIFU_TMPDIR -u APPTAINER_TMPDIR TMPDIR="$BATS_TEST_TMPDIR/notadir" \
		"$SIFU" build "$BATS_TEST_TMPDIR/out.sif" "$D/root"
	[ "$status" -eq 255 ] || { echo "$output"; false; }
	[[ "$output" == *"$BATS_TEST_TMPDIR/notadir"* ]] || { echo "$output"; false; }
	[[ "$output" == *"TMPDIR"*"writable directory"* ]] || { echo "$output"; false; }
	[ ! -e "$BATS_TEST_TMPDIR/out.sif" ]
}

# Apptainer's --verify failure points at `verify`; the command suggested
# must be one that works: with --key for a PEM-signed (DSSE) image
@test "--verify's hint suggests a verify command that works (with --key)" {
	local img="$BATS_TEST_TMPDIR/signed.sif" other="$BATS_TEST_TMPDIR/other"
	"$SIFU" build "$img" "$D/root" >/dev/null 2>&1
	"$SIFU" sign --key "$SIFU_FIXTURES/sif/ed25519-private.pem" "$img" >/dev/null
	openssl genpkey -algorithm ed25519 -out "$other.pem" 2>/dev/null
	openssl pkey -in "$other.pem" -pubout -out "$other.pub"
	run_sifu exec --verify="$other.pub" "$img" true
	[ "$status" -eq 255 ]
	[[ "$output" == *"sifu verify --key $other.pub $img"* ]] || { echo "$output"; false; }
	run_sifu exec --verify "$img" true
	[ "$status" -eq 255 ]
	[[ "$output" != *"'sifu verify $img'"* ]] || { echo "$output"; false; }
	[[ "$output" == *"--key PUBLIC.pem"* ]]
	# and the command the first hint names does what it says
	run_sifu verify --key "$SIFU_FIXTURES/sif/ed25519-public.pem" "$img"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
}

# cmd/internal/cli/cache_clean_linux.go: the prompt says what goes, and
# declining logs "cleanup canceled" and exits 0
@test "cache clean: the prompt names what it deletes, declining exits 0" {
	export SIFU_CACHEDIR="$BATS_TEST_TMPDIR/cache"
	mkdir -p "$SIFU_CACHEDIR"
	run bash -c 'echo n | "$SIFU" cache clean --type blob,sif'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[[ "$output" == *"OCI blobs and pulled images in $SIFU_CACHEDIR"* ]] || { echo "$output"; false; }
	[[ "$output" == *"canceled, nothing removed"* ]]
	[ -d "$SIFU_CACHEDIR" ]
	# no answer at all is not a yes either, and not a success
	run "$SIFU" cache clean </dev/null
	[ "$status" -eq 255 ] || { echo "$output"; false; }
}

# Apptainer runs the command through its action script; a command that
# cannot be run is reported as such, not as a line of an internal script
@test "a command that cannot be run is one clean line, no script line numbers" {
	local c
	for c in /etc /etc/passwd /no/such/cmd nosuchcmd; do
		run_sifu exec "$D/root" "$c"
		[ "$status" -eq 255 ] || { echo "$c: $output"; false; }
		[ "$(message_count)" -eq 1 ] || { echo "$c: $output"; false; }
		[[ "$output" == *"cannot run '$c' in the container"* ]] || { echo "$output"; false; }
		[[ ! "$output" =~ line\ [0-9] ]] || { echo "$output"; false; }
	done
	run_sifu exec "$D/root" sh -c 'echo $IMG_ENV'
	[ "$output" = 1 ]
}

# docs/build.md's two-stage example: gcc-12 only Recommends libc6-dev (its
# crt1.o, libc.so), which --no-install-recommends drops, so the build stage
# must name it.  Building the example needs Debian's archive and ftp.gnu.org,
# which no offline test can reach: what is checked here is its package line.
@test "docs/build.md's two-stage example installs a C toolchain that can link" {
	local doc="$BATS_TEST_DIRNAME/../../docs/build.md" line
	line=$(awk '/^```singularity$/{f=1; next} /^```$/{if (f) exit} f' "$doc" | grep 'apt-get install')
	[[ "$line" == *" gcc "* ]] || { echo "$line"; false; }
	[[ "$line" != *"--no-install-recommends"* || "$line" == *" libc6-dev "* ||
		"$line" == *" build-essential"* ]] || { echo "no libc6-dev: $line"; false; }
	# what the packages give: gcc links a program only with libc6-dev's files
	[ -e /usr/lib/x86_64-linux-gnu/crt1.o ] || return 0 # not this machine's layout
	dpkg -S /usr/lib/x86_64-linux-gnu/crt1.o | grep -q '^libc6-dev'
}

# docs/sif.md said inspect cannot read /.singularity.d; it does (the
# inspect_image tests), as Apptainer's inspect reads the image's files
@test "docs/sif.md does not say inspect cannot read the image's own files" {
	local doc="$BATS_TEST_DIRNAME/../../docs/sif.md"
	run grep -n "cannot be read by this build" "$doc"
	[ "$status" -eq 1 ] || { echo "$output"; false; }
	# and what it says holds: a SIF with no metadata object shows the
	# runscript of its file system
	local t="$BATS_TEST_TMPDIR/t"
	cp -a "$D/root" "$t"
	printf '#!/bin/sh\necho from-the-image\n' >"$t/.singularity.d/runscript"
	mksquashfs "$t" "$t.sqfs" -noappend -all-root -quiet >/dev/null
	"$SIFU" sif new "$t.sif"
	"$SIFU" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$t.sif" "$t.sqfs"
	run_sifu inspect --runscript "$t.sif"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[[ "$output" == *"echo from-the-image"* ]] || { echo "$output"; false; }
}

# A fresh Debian (the guides' platform) has no sudo: the guides say "as
# root" and do not start their commands with it
@test "the guides do not need sudo" {
	local top="$BATS_TEST_DIRNAME/../.."
	run grep -nE '^\s*(\$ )?sudo ' "$top/README.md" "$top/docs/getting-started.md"
	[ "$status" -eq 1 ] || { echo "$output"; false; }
	run grep -n '&& sudo ' "$top/README.md" "$top/docs/getting-started.md"
	[ "$status" -eq 1 ] || { echo "$output"; false; }
}
