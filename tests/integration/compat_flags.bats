#!/usr/bin/env bats
# Apptainer compatibility (issue 16): action flags Apptainer has and sifu
# lacked - --cwd, --no-umask, --no-eval, --no-pid.  Each test cites the
# Apptainer e2e test or source it follows.  Runs as root and as sifu-test.
load helpers

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	local t=$IMG/tree
	busybox_tree "$t"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$t/etc/passwd"
	printf 'root:x:0:\n' >"$t/etc/group"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/img.sqfs" -noappend -quiet >/dev/null
	# an env script makes the launcher go through /bin/sh: the values
	# are then quoted into a script rather than set directly
	mkdir -p "$t/.singularity.d/env"
	printf 'export MYVAR=Hello\n' >"$t/.singularity.d/env/90-environment.sh"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/envimg.sqfs" -noappend -quiet >/dev/null
	chmod -R a+rX "$IMG"
}

img() { echo "$IMG/img.sqfs"; }

# e2e actions/actions.go STDPipe "CwdPath": exec --cwd /etc IMAGE pwd
# prints /etc; --cwd is a synonym of --pwd (cwdPath in action_flags.go),
# with the variables APPTAINER_CWD and APPTAINER_TARGET_CWD.
@test "--cwd sets the payload's working directory, as --pwd does" {
	run_sifu exec --cwd /etc "$(img)" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /etc ]
	# the last of --pwd and --cwd wins, as they share one value
	run_sifu exec --pwd /bin --cwd /etc "$(img)" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /etc ]
	run env APPTAINER_CWD=/etc "$SIFU" exec "$(img)" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /etc ]
	run env APPTAINER_TARGET_CWD=/etc "$SIFU" exec "$(img)" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /etc ]
	# the command line beats a variable for the other name
	run env APPTAINER_CWD=/etc "$SIFU" exec --pwd /bin "$(img)" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /bin ]
}

# e2e actions/actions.go actionUmask: under umask 0000, exec ... umask
# prints 0000, and with --no-umask 0022 (launcher_linux.go setUmask).
@test "--no-umask runs the payload under umask 0022" {
	run sh -c 'umask 0000; exec "$SIFU" exec "$1" sh -c umask' sh "$(img)"
	[ "$status" -eq 0 ]
	[ "$output" = 0000 ]
	run sh -c 'umask 0000; exec "$SIFU" exec --no-umask "$1" sh -c umask' sh "$(img)"
	[ "$status" -eq 0 ]
	[ "$output" = 0022 ]
	run sh -c 'umask 0077; APPTAINER_NO_UMASK=1 exec "$SIFU" exec "$1" sh -c umask' sh "$(img)"
	[ "$status" -eq 0 ]
	[ "$output" = 0022 ]
}

# Apptainer's --no-eval (action_flags.go: "do not shell evaluate env vars or
# OCI container CMD/ENTRYPOINT/ARGS"): injectEnvHandler in
# engine/apptainer/process_linux.go single-quotes each APPTAINERENV_ /
# --env / --env-file export instead of double-quoting it, and the launcher
# (launcher_linux.go) sets APPTAINER_NO_EVAL=1 in the container.
@test "--no-eval takes --env, --env-file and APPTAINERENV_ values literally" {
	printf 'FILEVAR="$(echo f)"\n' >"$BATS_TEST_TMPDIR/envfile"
	for i in img.sqfs envimg.sqfs; do
		# evaluated without --no-eval, Apptainer's historic behaviour
		run env 'APPTAINERENV_A=$(echo a)' "$SIFU" exec --env 'B=$(echo b)' \
			--env-file "$BATS_TEST_TMPDIR/envfile" "$IMG/$i" \
			sh -c 'echo "$A|$B|$FILEVAR|${APPTAINER_NO_EVAL-unset}"'
		[ "$status" -eq 0 ]
		[ "$output" = 'a|b|f|unset' ]
		run env 'APPTAINERENV_A=$(echo a)' "$SIFU" exec --no-eval --env 'B=$(echo b)' \
			--env 'C=${HOME}' --env 'PREPEND_PATH=/p$X' \
			--env-file "$BATS_TEST_TMPDIR/envfile" "$IMG/$i" \
			sh -c 'echo "$A|$B|$C|$FILEVAR|${PATH%%:*}|$APPTAINER_NO_EVAL|$SINGULARITY_NO_EVAL"'
		[ "$status" -eq 0 ]
		[ "$output" = '$(echo a)|$(echo b)|${HOME}|$(echo f)|/p$X|1|1' ]
		run env APPTAINER_NO_EVAL=1 "$SIFU" exec --env 'B=$(echo b)' "$IMG/$i" \
			sh -c 'echo "$B"'
		[ "$status" -eq 0 ]
		[ "$output" = '$(echo b)' ]
	done
}

# e2e actions/actions.go "ContainAllPID" / "ContainAllNoPID": with
# --containall --no-init the payload is PID 1; --no-pid takes the PID
# namespace away again.
@test "--no-pid disables the PID namespace --containall implies" {
	run_sifu exec --containall --no-init "$(img)" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" = 1 ]
	run_sifu exec --containall --no-init --no-pid "$(img)" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" != 1 ]
	run_sifu exec --pid --no-init --no-pid "$(img)" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" != 1 ]
	run env APPTAINER_NO_PID=1 "$SIFU" exec --containall --no-init "$(img)" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" != 1 ]
}
