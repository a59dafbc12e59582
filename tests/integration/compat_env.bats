#!/usr/bin/env bats
# Apptainer compatibility of the environment (issue 16, defects 2 and 3):
# values of APPTAINERENV_*, --env and --env-file evaluated as Apptainer's
# action script evaluates them, a legacy /environment, and LD_LIBRARY_PATH
# as Apptainer builds it.  The expectations are those of Apptainer's e2e
# suite, e2e/env/env.go and e2e/env/regressions.go (test names cited).
# Runs as root and as the unprivileged user sifu-test.
load helpers

# helpers.bash's busybox tree, with /sbin and /usr/bin as Debian has them
env_tree() {
	busybox_tree "$1"
	mkdir -p "$1/sbin" "$1/usr" && ln -s ../bin "$1/usr/bin"
}

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	# as Apptainer's e2e test image: a custom PATH from %environment, and
	# Singularity's 99-base.sh (the one that appends /.singularity.d/libs)
	local t=$IMG/app
	env_tree "$t"
	mkdir -p "$t/.singularity.d/env" "$t/.singularity.d/libs"
	printf 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/go/bin\n' \
		>"$t/.singularity.d/env/90-environment.sh"
	cat >"$t/.singularity.d/env/99-base.sh" <<'SH'
#!/bin/sh
if [ -z "$LD_LIBRARY_PATH" ]; then
    LD_LIBRARY_PATH="/.singularity.d/libs"
else
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"
fi
PS1="Singularity> "
export LD_LIBRARY_PATH PS1
SH
	# what glibc's ldconfig -Nv prints on Debian (busybox has none)
	cat >"$t/sbin/ldconfig" <<'SH'
#!/bin/sh
printf '/usr/local/lib: (from /etc/ld.so.conf.d/libc.conf:2)\n'
printf '/lib/x86_64-linux-gnu: (from /etc/ld.so.conf.d/x86_64-linux-gnu.conf:3)\n'
printf '\tlibc.so.6 -> libc.so.6\n'
printf '/lib: (from <builtin>:0)\n\tlibfoo.so -> libfoo.so.1\n'
SH
	chmod 755 "$t/sbin/ldconfig"
	# one as sifu builds them: no 99-base.sh
	cp -a "$t" "$IMG/sifu"
	rm "$IMG/sifu/.singularity.d/env/99-base.sh"
	# Singularity 2.2: no /.singularity.d, a /environment (e2e issue 5426)
	env_tree "$IMG/legacy"
	cat >"$IMG/legacy/environment" <<'SH'
if test -z "$APPTAINER_INIT"; then
    PATH="/canary/path:$PATH"
    PS1="$PS1"
    APPTAINER_INIT=1
    export PATH PS1 APPTAINER_INIT
fi
SH
	chmod -R a+rX "$IMG"
}

APATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/go/bin
LDDIRS=/usr/local/lib:/lib/x86_64-linux-gnu:/lib

# e2e env.go "env eval": values evaluated as in double quotes
@test "APPTAINERENV_ values are evaluated: \$UID, \$(id -u), quotes kept, \\\$ escapes" {
	local uid
	uid=$(id -u)
	APPTAINERENV_WHO='ME' run_sifu exec "$IMG/app" /bin/sh -c 'echo $WHO'
	[ "$status" -eq 0 ] && [ "$output" = ME ]
	APPTAINERENV_WHO='$UID' run_sifu exec "$IMG/app" /bin/sh -c 'echo $WHO'
	[ "$status" -eq 0 ] && [ "$output" = "$uid" ]
	APPTAINERENV_WHO='"$UID"' run_sifu exec "$IMG/app" /bin/sh -c 'echo $WHO'
	[ "$status" -eq 0 ] && [ "$output" = "\"$uid\"" ]
	APPTAINERENV_WHO="'\$UID'" run_sifu exec "$IMG/app" /bin/sh -c 'echo $WHO'
	[ "$status" -eq 0 ] && [ "$output" = "'$uid'" ]
	APPTAINERENV_WHO='\$UID' run_sifu exec "$IMG/app" /bin/sh -c 'echo $WHO'
	[ "$status" -eq 0 ] && [ "$output" = '$UID' ]
	APPTAINERENV_WHO='$(id -u)' run_sifu exec "$IMG/app" /bin/sh -c 'echo $WHO'
	[ "$status" -eq 0 ] && [ "$output" = "$uid" ]
	APPTAINERENV_WHO='"$(id -u)"' run_sifu exec "$IMG/app" /bin/sh -c 'echo $WHO'
	[ "$status" -eq 0 ] && [ "$output" = "\"$uid\"" ]
	APPTAINERENV_WHO='\$(id -u)' run_sifu exec "$IMG/app" /bin/sh -c 'echo $WHO'
	[ "$status" -eq 0 ] && [ "$output" = '$(id -u)' ]
}

# e2e env.go "env eval", through --env and in an image as sifu builds them
@test "--env values are evaluated the same way, in every kind of image" {
	local uid image
	uid=$(id -u)
	for image in "$IMG/app" "$IMG/sifu" "$IMG/legacy"; do
		run_sifu exec --env 'WHO=$UID' --env 'ESC=\$UID' "$image" /bin/sh -c 'echo $WHO $ESC'
		[ "$status" -eq 0 ] && [ "$output" = "$uid \$UID" ] || { echo "$image: $output"; false; }
	done
}

# e2e regressions.go issue43 (sylabs/singularity#43)
@test "APPTAINERENV_LD_PRELOAD=/foo/bar/\\\$LIB/baz.so keeps \$LIB literal" {
	APPTAINERENV_LD_PRELOAD='/foo/bar/\$LIB/baz.so' run_sifu exec "$IMG/app" /bin/sh -c 'echo "${LD_PRELOAD}"'
	[ "$status" -eq 0 ]
	[ "$output" = '/foo/bar/$LIB/baz.so' ]
}

# e2e env.go "environment file": AppendLiteralDefaultPath, PrependLiteralDefaultPath
@test "--env-file PATH=\"\\\$PATH:/\" appends to the image's PATH" {
	printf 'PATH="\\$PATH:/"\n' >"$BATS_TEST_TMPDIR/append"
	run_sifu exec --env-file "$BATS_TEST_TMPDIR/append" "$IMG/app" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "$APATH:/" ]
	printf 'PATH="/:\\$PATH"\n' >"$BATS_TEST_TMPDIR/prepend"
	run_sifu exec --env-file "$BATS_TEST_TMPDIR/prepend" "$IMG/app" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "/:$APATH" ]
	# e2e regressions.go issue1263: an empty env file, no "readonly variable"
	: >"$BATS_TEST_TMPDIR/empty"
	run_sifu exec --env-file "$BATS_TEST_TMPDIR/empty" "$IMG/app" /bin/true
	[ "$status" -eq 0 ] && [[ "$output" != *readonly* ]]
}

# e2e regressions.go issue5426: a legacy /environment without /.singularity.d
@test "a Singularity 2.2 image's /environment is sourced" {
	run_sifu exec "$IMG/legacy" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ]
	[[ "$output" == *"/canary/path"* ]]
	# and the user's values still come after it
	run_sifu exec --env APPEND_PATH=/end "$IMG/legacy" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ]
	[[ "$output" == "/canary/path:"*":/end" ]]
}

# e2e env.go "environment option": TestDefaultLdLibraryPath, TestCustomLdLibraryPath,
# TestCustomTrailingCommaPath; "environment file": CustomLdLibraryPath
@test "LD_LIBRARY_PATH: /.singularity.d/libs once, after a user's value, trailing separators kept" {
	local image
	for image in "$IMG/app" "$IMG/sifu"; do
		run_sifu exec "$image" /bin/sh -c 'echo "${LD_LIBRARY_PATH}"'
		[ "$status" -eq 0 ] && [ "$output" = /.singularity.d/libs ] || { echo "$image: $output"; false; }
		run_sifu exec --env LD_LIBRARY_PATH=/foo "$image" /bin/sh -c 'echo "${LD_LIBRARY_PATH}"'
		[ "$status" -eq 0 ] && [ "$output" = /foo:/.singularity.d/libs ] || { echo "$image: $output"; false; }
		run_sifu exec --env LD_LIBRARY_PATH=/foo, "$image" /bin/sh -c 'echo "${LD_LIBRARY_PATH}"'
		[ "$status" -eq 0 ] && [ "$output" = /foo,:/.singularity.d/libs ] || { echo "$image: $output"; false; }
	done
	printf 'LD_LIBRARY_PATH=/foo\n' >"$BATS_TEST_TMPDIR/ld"
	run_sifu exec --env-file "$BATS_TEST_TMPDIR/ld" "$IMG/app" /bin/sh -c 'echo "${LD_LIBRARY_PATH}"'
	[ "$status" -eq 0 ] && [ "$output" = /foo:/.singularity.d/libs ]
	# the host's own is not passed in (Apptainer: always omitted)
	LD_LIBRARY_PATH=/host run_sifu exec "$IMG/app" /bin/sh -c 'echo "${LD_LIBRARY_PATH}"'
	[ "$status" -eq 0 ] && [ "$output" = /.singularity.d/libs ]
}

# e2e env.go "environment option": TestPrependLdLibraryPath, TestAppendLdLibraryPath
@test "PREPEND_/APPEND_LD_LIBRARY_PATH: the ldconfig directories, then /.singularity.d/libs" {
	APPTAINERENV_PREPEND_LD_LIBRARY_PATH=/foo run_sifu exec "$IMG/app" /bin/sh -c 'echo "${LD_LIBRARY_PATH}"'
	[ "$status" -eq 0 ] && [ "$output" = "/foo:$LDDIRS:/.singularity.d/libs" ]
	run_sifu exec --env APPEND_LD_LIBRARY_PATH=/foo "$IMG/app" /bin/sh -c 'echo "${LD_LIBRARY_PATH}"'
	[ "$status" -eq 0 ] && [ "$output" = "$LDDIRS:/.singularity.d/libs:/foo" ]
	run_sifu exec --env APPEND_LD_LIBRARY_PATH=/foo "$IMG/sifu" /bin/sh -c 'echo "${LD_LIBRARY_PATH}"'
	[ "$status" -eq 0 ] && [ "$output" = "$LDDIRS:/.singularity.d/libs:/foo" ]
}

# e2e env.go "environment option": TestDefaultLdLibraryPathWithBind
@test "LD_LIBRARY_PATH: the ldconfig directories first when /.singularity.d/libs has files" {
	run_sifu exec -B /etc/os-release:/.singularity.d/libs/os-release "$IMG/app" /bin/sh -c 'echo "${LD_LIBRARY_PATH}"'
	[ "$status" -eq 0 ]
	[ "$output" = "$LDDIRS:/.singularity.d/libs" ]
}
