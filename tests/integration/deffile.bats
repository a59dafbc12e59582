#!/usr/bin/env bats
# sifu build's front end for definition files: every malformed file gives one
# error line naming the file and the line, exit 255, and writes nothing; a
# valid file is accepted (the builder itself is not in this build yet).
load helpers

DEFS="$BATS_TEST_DIRNAME/../fixtures/deffiles"

setup() {
	cd "$BATS_TEST_TMPDIR"
}

@test "each malformed definition file gives its error with the line number" {
	local n=0 failed=0
	for f in "$DEFS"/bad/*.def; do
		n=$((n + 1))
		# the first line says what the file must produce: "# expect: LINE: TEXT"
		local expect
		expect=$(head -n 1 "$f" | sed -n 's/^# expect: //p')
		[ -n "$expect" ] || { echo "$f: no '# expect:' line" >&2; failed=1; continue; }
		run "$SIFU" build out.sif "$f"
		if [ "$status" -ne 255 ]; then
			echo "$f: status $status, want 255" >&2
			failed=1
		fi
		if [ "$(printf '%s\n' "$output" | grep -c '^FATAL:   ')" -ne 1 ]; then
			echo "$f: want exactly one 'FATAL:' line, got: $output" >&2
			failed=1
		fi
		if ! printf '%s\n' "$output" | grep -qF "FATAL:   $f:$expect"; then
			echo "$f: want 'FATAL:   $f:$expect'" >&2
			echo "      got  '$output'" >&2
			failed=1
		fi
		if [ -e out.sif ]; then
			echo "$f: out.sif was written" >&2
			failed=1
		fi
	done
	echo "checked $n malformed files" >&2
	[ "$n" -ge 25 ]
	[ "$failed" -eq 0 ]
}

# The build checks the whole file first, then that the output can be
# written (nodir/ does not exist): a valid file gets as far as that, and no
# further, without any download or %post.
@test "valid definition files are accepted before anything else happens" {
	for f in "$DEFS"/good/*.def; do
		run "$SIFU" build --warn-unused-build-args --build-arg extra=curl nodir/out.sif "$f"
		[ "$status" -eq 255 ] || { echo "$f: status $status: $output" >&2; return 1; }
		[[ "$output" == *"$f is valid"*"cannot write nodir/out.sif: its directory does not exist"* ]] ||
			{ echo "$f: $output" >&2; return 1; }
		[ ! -e nodir ]
	done
	run "$SIFU" build nodir/out.sif "$DEFS/good/two-stage.def"
	[[ "$output" == *"(2 stages, Bootstrap: docker)"* ]]
}

@test "the user's apt example is valid and gives exactly one line" {
	run "$SIFU" build -f nodir/apt-search "$DEFS/good/apt-search.def"
	[ "$status" -eq 255 ]
	[ "$(message_count)" -eq 2 ]
	[[ "${lines[0]}" == "INFO:    $DEFS/good/apt-search.def is valid (1 stage, Bootstrap: docker)" ]]
	[[ "${lines[1]}" == "FATAL:   cannot write nodir/apt-search: its directory does not exist"* ]]
}

@test "templates: --build-arg, --build-arg-file and %arguments defaults" {
	local def="$DEFS/good/templates.def"
	# %arguments's pkgs default uses {{ extra }}, which only a build arg gives
	run "$SIFU" build out.sif "$def"
	[ "$status" -eq 255 ]
	[[ "$output" == "FATAL:   $def:7: build variable 'extra' is not defined"*"--build-arg extra=VALUE"* ]]

	run "$SIFU" build --build-arg extra=curl nodir/out.sif "$def"
	[ "$status" -eq 255 ]
	[[ "$output" == *"is valid"* ]]

	printf '# build arguments\nextra = curl\n\ntag=trixie\n' >args.txt
	run "$SIFU" build --build-arg-file args.txt nodir/out.sif "$def"
	[[ "$output" == *"is valid"* ]]
	[ "$(message_count)" -eq 2 ]

	# the environment sets it too, as every flag
	SIFU_BUILD_ARG=extra=wget run "$SIFU" build nodir/out.sif "$def"
	[[ "$output" == *"is valid"* ]]

	# a line that is not K=V is skipped with a warning, as Apptainer does
	printf 'extra=curl\nnonsense\n' >args2.txt
	run "$SIFU" build --build-arg-file args2.txt nodir/out.sif "$def"
	[[ "$output" == *"args2.txt:2: skipping 'nonsense': not KEY=VALUE"* ]]
	[[ "$output" == *"is valid"* ]]

	# an argument the file never uses is refused, as Apptainer (e2e
	# imgbuild buildDefinitionWithBuildArgs), or a warning on request
	run "$SIFU" build --build-arg extra=1 --build-arg unused=2 nodir/out.sif "$def"
	[ "$status" -eq 255 ]
	[[ "$output" == *"unused build args: unused. Use option --warn-unused-build-args"* ]]
	run "$SIFU" build --warn-unused-build-args --build-arg extra=1 --build-arg unused=2 nodir/out.sif "$def"
	[[ "$output" == *"Unused build args: unused"* ]]
}

@test "bad build arguments are refused" {
	run "$SIFU" build --build-arg novalue out.sif "$DEFS/good/apt-search.def"
	assert_sifu_error
	[[ "$output" == *"--build-arg 'novalue' is not KEY=VALUE"* ]]
	run "$SIFU" build --build-arg-file missing.txt out.sif "$DEFS/good/apt-search.def"
	assert_sifu_error
	[[ "$output" == *"build-arg file missing.txt: No such file or directory"* ]]
}

@test "usage errors: missing definition file, wrong argument count" {
	run "$SIFU" build out.sif nothere.def
	assert_sifu_error
	[[ "$output" == *"definition file nothere.def: No such file or directory"* ]]
	run "$SIFU" build out.sif
	assert_sifu_error
	[[ "$output" == *"build takes OUTPUT and SOURCE"* ]]
	: >empty.def
	run "$SIFU" build out.sif empty.def
	assert_sifu_error
	[[ "$output" == *"empty.def: empty definition file"* ]]
}

@test "a URI or an image as SOURCE is not taken for a definition file" {
	run "$SIFU" build nodir/out.sif docker://alpine
	assert_sifu_error
	[[ "$output" == *"cannot write nodir/out.sif"* ]]
	[[ "$output" != *"definition file"* ]]
	# a directory is a sandbox to convert
	mkdir sandbox
	echo hi >sandbox/f
	run "$SIFU" build out.sif sandbox
	[ "$status" -eq 0 ]
	run "$SIFU" sif list out.sif
	[[ "$output" == *"FS (Squashfs"* ]]
	[[ "$output" != *"Def.FILE"* ]]
}

@test "docs/build.md's example definition file is valid" {
	local doc="$BATS_TEST_DIRNAME/../../docs/build.md"
	# the first ```singularity block of the guide
	awk '/^```singularity$/{f=1; next} /^```$/{if (f) exit} f' "$doc" >example.def
	[ -s example.def ]
	run "$SIFU" build --build-arg VERSION=2.12 nodir/example.sif example.def
	[ "$status" -eq 255 ]
	[[ "$output" == *"example.def is valid (2 stages, Bootstrap: docker)"* ]]
	# %arguments defaults belong to their stage: the final stage has none
	run "$SIFU" build example.sif example.def
	assert_sifu_error
	[[ "$output" == *"example.def:29: build variable 'VERSION' is not defined"* ]]
}
