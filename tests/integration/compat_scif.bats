#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# SCIF apps as Apptainer has them: the /scif tree `build` makes from %app*
# sections (internal/pkg/build/apps/apps.go), `run|exec|shell|test --app`
# with the app's environment (internal/pkg/build/sources/95-apps.sh and the
# action script internal/pkg/util/fs/files/action_script.sh), and
# `inspect --app` / `--list-apps` (cmd/internal/cli/inspect.go,
# e2e/inspect/inspect.go).  The image is built here, unprivileged, on busybox.
load helpers

setup_file() {
	local d=$BATS_FILE_TMPDIR
	export TMPDIR=$d/tmp
	mkdir -p "$TMPDIR"
	# the definition of Apptainer's e2e test image's apps (e2e/testdata),
	# with every %app* section, and an app whose name is not a variable name
	cat >"$d/apps.def" <<'DEF'
Bootstrap: busybox

%environment
    export CONTAINER_VAR=container
    export SEEN_BY_APP=container

%post
    echo post > /from-post

%appinstall foo
    echo "INSTALLING FOO"
    pwd > installed-in
    echo "$SCIF_APPNAME $SCIF_APPROOT $SCIF_APPDATA" > install-vars
    test -f /from-post
    touch filefoo.exec
    printf '#!/bin/sh\necho foo-tool\n' > bin/footool
    chmod 755 bin/footool

%apprun foo
    echo "RUNNING FOO $*"

%appenv foo
    HELLOTHISIS=foo
    export HELLOTHISIS
    SEEN_BY_APP="app after $SEEN_BY_APP"

%applabels foo
    HELLOTHISIS foo
    Maintainer tester

%apphelp foo
    This is the help for foo!

%apptest foo
    echo "TESTING FOO $SCIF_APPNAME"

%appfiles foo
    data.txt
    data.txt share/data.txt

%appinstall bar-2
    touch filebar.exec

%apprun bar-2
    echo "RUNNING BAR"

%applabels bar-2
    HELLOTHISIS bar
DEF
	echo "app data" >"$d/data.txt"
	(cd "$d" && "$SIFU" -q build apps.sif apps.def)
	(cd "$d" && "$SIFU" -q build --sandbox apps.sandbox apps.def)
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	IMG=$BATS_FILE_TMPDIR/apps.sif
	SBX=$BATS_FILE_TMPDIR/apps.sandbox
}

# e2e/actions/actions.go ScifTestfolderOrg; apps.go createAppRoot
@test "scif: build makes /scif/apps/NAME and /scif/data/NAME as Apptainer" {
	local p
	for p in /scif /scif/apps /scif/data /scif/apps/foo /scif/apps/bar-2 \
		/scif/apps/foo/bin /scif/apps/foo/lib /scif/apps/foo/scif/env \
		/scif/data/foo/input /scif/data/foo/output /scif/data/bar-2/input \
		/scif/data/bar-2/output; do
		run "$SIFU" exec "$IMG" test -d "$p"
		[ "$status" -eq 0 ] || { echo "no directory $p" >&2; return 1; }
	done
	for p in /scif/apps/foo/scif/env/01-base.sh /scif/apps/foo/scif/env/90-environment.sh \
		/scif/apps/foo/scif/runscript /scif/apps/foo/scif/test \
		/scif/apps/foo/scif/runscript.help /scif/apps/foo/scif/labels.json \
		/scif/apps/foo/filefoo.exec /scif/apps/bar-2/filebar.exec \
		/.singularity.d/env/94-appsbase.sh /.singularity.d/env/95-apps.sh; do
		run "$SIFU" exec "$IMG" test -f "$p"
		[ "$status" -eq 0 ] || { echo "no file $p" >&2; return 1; }
	done
	# sections an app lacks write nothing
	run "$SIFU" exec "$IMG" test -e /scif/apps/bar-2/scif/test
	[ "$status" -eq 1 ]
	run "$SIFU" exec "$IMG" test -e /scif/apps/bar-2/scif/env/90-environment.sh
	[ "$status" -eq 1 ]
	# the sandbox has the same tree
	[ -x "$SBX/scif/apps/foo/scif/runscript" ]
	[ -d "$SBX/scif/data/bar-2/output" ]
}

# apps.go: the runscript is "#!/bin/sh", a blank line, the section;
# labels.json holds SCIF_APP_NAME and %applabels; 01-base.sh the app's paths
@test "scif: the app's scripts, labels and 01-base.sh" {
	run "$SIFU" exec "$IMG" cat /scif/apps/foo/scif/runscript
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '#!/bin/sh\n\n    echo "RUNNING FOO $*"')" ]
	run "$SIFU" exec "$IMG" cat /scif/apps/foo/scif/labels.json
	[ "$status" -eq 0 ]
	[ "$(printf '%s' "$output" | jq -r .SCIF_APP_NAME)" = foo ]
	[ "$(printf '%s' "$output" | jq -r .HELLOTHISIS)" = foo ]
	[ "$(printf '%s' "$output" | jq -r .Maintainer)" = tester ]
	run "$SIFU" exec "$IMG" cat /scif/apps/foo/scif/env/01-base.sh
	[ "$status" -eq 0 ]
	[[ "$output" == *'SCIF_APPROOT="/scif/apps/foo"'* ]]
	[[ "$output" == *'SCIF_APPOUTPUT="/scif/data/foo/output"'* ]]
}

# apps.go buildPost: %appinstall runs after %post, in /scif/apps/NAME, with
# its 01-base.sh sourced
@test "scif: %appinstall runs after %post in the app's root with SCIF_ variables" {
	run "$SIFU" exec "$IMG" cat /scif/apps/foo/installed-in /scif/apps/foo/install-vars
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = /scif/apps/foo ]
	[ "${lines[1]}" = "foo /scif/apps/foo /scif/data/foo" ]
}

# apps.go copyFiles: %appfiles SRC [DST], DST relative to the app's root
@test "scif: %appfiles copies host files into the app" {
	run "$SIFU" exec "$IMG" cat /scif/apps/foo/data.txt /scif/apps/foo/share/data.txt
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'app data\napp data')" ]
}

# e2e/actions/actions.go AppsFoo and ScifTestAppGood (run --app foo)
@test "scif: run --app runs the app's runscript with the arguments" {
	run "$SIFU" run --app foo "$IMG" a b
	[ "$status" -eq 0 ]
	[ "$output" = "RUNNING FOO a b" ]
	run "$SIFU" run --app bar-2 "$IMG"
	[ "$status" -eq 0 ]
	[ "$output" = "RUNNING BAR" ]
	# APPTAINER_APP names the app as --app does (action_flags.go EnvKeys)
	APPTAINER_APP=foo run "$SIFU" run "$IMG" x
	[ "$status" -eq 0 ]
	[ "$output" = "RUNNING FOO x" ]
}

# 95-apps.sh, 01-base.sh and 94-appsbase.sh: the variables of the app run
@test "scif: exec --app sets the app's SCIF_ variables" {
	run "$SIFU" exec --app foo "$IMG" env
	[ "$status" -eq 0 ]
	local kv
	for kv in SCIF_APPNAME=foo SCIF_APPROOT=/scif/apps/foo SCIF_APPMETA=/scif/apps/foo/scif \
		SCIF_APPDATA=/scif/data/foo SCIF_APPINPUT=/scif/data/foo/input \
		SCIF_APPOUTPUT=/scif/data/foo/output SCIF_DATA=/scif/data SCIF_APPS=/scif/apps \
		SINGULARITY_APPNAME=foo APPTAINER_APPNAME=foo \
		SCIF_APPROOT_foo=/scif/apps/foo SCIF_APPDATA_foo=/scif/data/foo \
		SCIF_APPBIN_foo=/scif/apps/foo/bin SCIF_APPLIB_foo=/scif/apps/foo/lib \
		SCIF_APPMETA_foo=/scif/apps/foo/scif \
		SCIF_APPRUN_foo=/scif/apps/foo/scif/runscript \
		SCIF_APPENV_foo=/scif/apps/foo/scif/env/90-environment.sh \
		SCIF_APPLABELS_foo=/scif/apps/foo/scif/labels.json \
		SCIF_APPROOT_bar_2=/scif/apps/bar_2 SCIF_APPRUN_bar_2=/scif/apps/bar_2/scif/runscript; do
		printf '%s\n' "$output" | grep -qx "$kv" || { echo "missing $kv in: $output" >&2; return 1; }
	done
	# Apptainer sets no SCIF_APPENV_ for an app without %appenv, and no
	# unsuffixed SCIF_APPBIN / SCIF_APPRUN
	run "$SIFU" exec --app foo "$IMG" env
	printf '%s\n' "$output" | grep -q '^SCIF_APPENV_bar_2=' && return 1
	printf '%s\n' "$output" | grep -q '^SCIF_APPBIN=' && return 1
	# the per-app globals are there without --app too (94-appsbase.sh)
	run "$SIFU" exec "$IMG" sh -c 'echo "$SCIF_APPROOT_foo|${SCIF_APPNAME:-unset}"'
	[ "$status" -eq 0 ]
	[ "$output" = "/scif/apps/foo|unset" ]
}

# 95-apps.sh: the app's bin and root lead PATH, its lib LD_LIBRARY_PATH, and
# its %appenv is sourced after the container's %environment
@test "scif: --app puts the app's bin first on PATH and sources %appenv last" {
	run "$SIFU" exec --app foo "$IMG" sh -c 'echo "$PATH"; echo "$LD_LIBRARY_PATH"; footool; echo "$HELLOTHISIS|$SEEN_BY_APP|$CONTAINER_VAR"'
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == /scif/apps/foo/bin:/scif/apps/foo:/scif/apps/singularity:* ]]
	[[ "${lines[1]}" == /scif/apps/foo/lib:* ]]
	[ "${lines[2]}" = foo-tool ]
	[ "${lines[3]}" = "foo|app after container|container" ]
	# shell --app: the same environment
	run sh -c 'echo "echo \$SCIF_APPNAME" | "$SIFU" shell --app foo "$1"' _ "$IMG"
	[ "$status" -eq 0 ]
	[ "$output" = foo ]
}

# action_script.sh test): test --app runs the app's test; an app without
# one is an error ("No tests for contained app")
@test "scif: test --app runs the app's test" {
	run "$SIFU" test --app foo "$IMG"
	[ "$status" -eq 0 ]
	[ "$output" = "TESTING FOO foo" ]
	run "$SIFU" test --app bar-2 "$IMG"
	assert_sifu_error
	[[ "$output" == *"no tests for contained app: bar-2"* ]]
}

# e2e/actions/actions.go ScifTestAppBad (run and exec --app fakeapp fail);
# Apptainer exits 1 there, sifu 255 (its own failure: docs/cli.md)
@test "scif: an unknown app is an error for every action" {
	local verb
	for verb in run exec test; do
		if [ "$verb" = exec ]; then
			run "$SIFU" exec --app fakeapp "$IMG" true
		else
			run "$SIFU" "$verb" --app fakeapp "$IMG"
		fi
		assert_sifu_error
		[[ "$output" == *"could not locate the container application: fakeapp"* ]]
	done
	run "$SIFU" exec --app ../foo "$IMG" true
	assert_sifu_error
}

# e2e/inspect/inspect.go "list apps" (sorted names); a bare SquashFS has
# no metadata object, so its /scif/apps is listed
@test "scif: inspect --list-apps, of a SIF, a sandbox and a bare SquashFS" {
	local sq=$BATS_TEST_TMPDIR/apps.sqfs
	mksquashfs "$SBX" "$sq" -noappend -quiet -all-root >/dev/null
	for img in "$IMG" "$SBX" "$sq"; do
		run "$SIFU" inspect --list-apps "$img"
		[ "$status" -eq 0 ] || { echo "$img: $output"; false; }
		[ "$output" = "$(printf 'bar-2\nfoo')" ] || { echo "$img: $output"; false; }
	done
}

# e2e/inspect/inspect.go "label app hello", "help app hello", "env app
# hello", "runscript app hello"; inspect.go puts them under apps.NAME
@test "scif: inspect --app shows the app's labels, runscript, test, help and environment" {
	local img
	for img in "$IMG" "$SBX"; do
		run "$SIFU" inspect --app foo "$img"
		[ "$status" -eq 0 ]
		[[ "$output" == *"HELLOTHISIS: foo"* ]]
		[[ "$output" == *"SCIF_APP_NAME: foo"* ]]
		run "$SIFU" inspect --app foo --runscript "$img"
		[ "$status" -eq 0 ]
		[ "$output" = "$(printf '#!/bin/sh\n\n    echo "RUNNING FOO $*"')" ]
		run "$SIFU" inspect --app foo --helpfile "$img"
		[ "$status" -eq 0 ]
		[ "$output" = "    This is the help for foo!" ]
		run "$SIFU" inspect --app foo --test "$img"
		[ "$status" -eq 0 ]
		[[ "$output" == *'echo "TESTING FOO $SCIF_APPNAME"'* ]]
		run "$SIFU" inspect --json --app foo --environment "$img"
		[ "$status" -eq 0 ]
		local env
		env=$(printf '%s' "$output" |
			jq -r '.data.attributes.apps.foo.environment["/scif/apps/foo/scif/env/90-environment.sh"]')
		[[ "$env" == *"HELLOTHISIS=foo"* ]]
		run "$SIFU" inspect --app nope "$img"
		assert_sifu_error
	done
	# --all holds every app
	run "$SIFU" inspect --all "$IMG"
	[ "$status" -eq 0 ]
	[ "$(printf '%s' "$output" | jq -r '.data.attributes.apps["bar-2"].labels.HELLOTHISIS')" = bar ]
}
