#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Apptainer verbs and action flags sifu lacked (issue 17): `run-help`
# (cmd/internal/cli/run_help_linux.go, e2e/runhelp/runhelp.go), repeated
# `--env-file` (cmd/internal/cli/action_flags.go apptainerEnvFiles, merged
# in internal/pkg/runtime/launch/launcher_linux.go), and the action flags an
# unprivileged Apptainer user can pass.  Images are made here on busybox.
load helpers

setup_file() {
	export D="$BATS_FILE_TMPDIR"
	local r="$D/root" n="$D/nohelp"
	busybox_tree "$r"
	mkdir -p "$r/.singularity.d/env" "$r/scif/apps/foo/scif" "$r/scif/apps/bar/scif"
	printf '#!/bin/sh\nexec "$@"\n' >"$r/.singularity.d/runscript"
	chmod 755 "$r/.singularity.d/runscript"
	# e2e/testdata's %help holds BAD_GUY=Thanos, which DefaultHelp looks for
	printf '    The help of the image.\n    BAD_GUY=Thanos\n' >"$r/.singularity.d/runscript.help"
	printf '{}\n' >"$r/scif/apps/foo/scif/labels.json"
	printf '{}\n' >"$r/scif/apps/bar/scif/labels.json"
	printf '    This is the help for foo!\n' >"$r/scif/apps/foo/scif/runscript.help"
	mksquashfs "$r" "$D/img.sqfs" -noappend -all-root -quiet >/dev/null
	"$SIFU" sif new "$D/img.sif"
	"$SIFU" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 \
		"$D/img.sif" "$D/img.sqfs"
	cp -a "$r" "$n"
	rm "$n/.singularity.d/runscript.help"
	chmod -R a+rX "$D"
}

# e2e/runhelp testRunHelp "DefaultHelp": the image's %help
@test "run-help prints the image's help (SIF, sandbox, bare SquashFS)" {
	for img in "$D/img.sif" "$D/root" "$D/img.sqfs"; do
		run_sifu run-help "$img"
		[ "$status" -eq 0 ] || { echo "$img: $output"; false; }
		[[ "$output" == *"BAD_GUY=Thanos"* ]] || { echo "$img: $output"; false; }
		[[ "$output" == *"The help of the image."* ]]
	done
}

# e2e/runhelp "AppFooHelp" and "AppFakeHelp" (an app with no help, or no
# such app: Apptainer's default line, exit 0)
@test "run-help --app prints the app's %apphelp, or the default line" {
	for img in "$D/img.sif" "$D/root" "$D/img.sqfs"; do
		run_sifu run-help --app foo "$img"
		[ "$status" -eq 0 ] || { echo "$img: $output"; false; }
		[[ "$output" == *"This is the help for foo!"* ]]
		[[ "$output" != *"BAD_GUY"* ]]
		run_sifu run-help --app fake "$img"
		[ "$status" -eq 0 ]
		[[ "$output" == *"No help sections were defined for this image"* ]]
		run_sifu run-help --app bar "$img"
		[ "$status" -eq 0 ]
		[[ "$output" == *"No help sections were defined for this image"* ]]
	done
}

# run_help_linux.go: an image without %help prints the default line
@test "run-help of an image with no help prints Apptainer's default line" {
	run_sifu run-help "$D/nohelp"
	[ "$status" -eq 0 ]
	[ "$output" = "No help sections were defined for this image" ]
}

# e2e/runhelp "NoImage": exit 255
@test "run-help of a missing image exits 255" {
	run_sifu run-help /fake/image
	assert_sifu_error
}

# action_flags.go: --env-file is a string slice (apptainerEnvFiles); the
# launcher reads every file in order, a later file's value wins, and --env
# beats any file ("Ignored environment file variable %s: override from --env")
@test "--env-file repeated: every file applies, later files win, --env wins" {
	printf 'A=one\nB=one\nONLY1=x\n' >"$D/e1"
	printf 'B=two\nC=two\nONLY2=y\n' >"$D/e2"
	run_sifu exec --env-file "$D/e1" --env-file "$D/e2" --env C=env "$D/root" \
		sh -c 'echo "$A $B $C $ONLY1 $ONLY2"'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = "one two env x y" ]
	# a comma list, as pflag's StringSlice splits it
	run_sifu exec --env-file "$D/e1,$D/e2" "$D/root" sh -c 'echo "$A $B $C"'
	[ "$status" -eq 0 ]
	[ "$output" = "one two two" ]
}
