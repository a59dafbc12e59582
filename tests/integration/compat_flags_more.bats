#!/usr/bin/env bats
# Apptainer compatibility (issue 16, the Flags bullet): --compat, --no-env,
# --scratch, --underlay, --runscript-timeout, --network none, --mount
# ...,nonested, escaped \, and \: in bind paths, APPTAINER_TARGET_PWD.
# Each test cites the Apptainer e2e test or source it follows.  Runs as
# root and as sifu-test.
load helpers

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	local t=$IMG/tree
	busybox_tree "$t"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$t/etc/passwd"
	printf 'root:x:0:\n' >"$t/etc/group"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/img.sqfs" -noappend -quiet >/dev/null
	# a sandbox whose env script is slow (e2e env.go "runscript timeout"
	# binds one in as 91-slow_env.sh) and whose runscript echoes
	local s=$IMG/slow
	cp -a "$t" "$s"
	mkdir -p "$s/.singularity.d/env"
	printf 'sleep 3\n' >"$s/.singularity.d/env/91-slow_env.sh"
	printf '#!/bin/sh\necho "runscript $*"\n' >"$s/.singularity.d/runscript"
	chmod 755 "$s/.singularity.d/runscript"
	mkdir -p "$IMG/canary" "$IMG/work"
	touch "$IMG/canary/file" "$IMG/canary/file,comma" "$IMG/canary/file:colon"
	chmod -R a+rwX "$IMG"
}

img() { echo "$IMG/img.sqfs"; }

# e2e actions/actions.go actionCompat (containall, writable-tmpfs, no-init,
# no-umask) and actions.go: --compat sets isContainAll, isWritableTmpfs,
# noInit, noUmask and noEval.
@test "--compat: --containall --writable-tmpfs --no-init --no-umask --no-eval" {
	run sh -c 'umask 0077; FOO=host exec "$SIFU" exec --compat --env "E=\$(echo x)" "$1" \
		sh -c "ls -A \$HOME | wc -l; touch /test && echo wrote; echo pid \$\$; umask; echo \"[\$FOO][\$E]\""' \
		sh "$(img)"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 0 ]        # --contain: an empty home
	[ "${lines[1]}" = wrote ]    # --writable-tmpfs
	[ "${lines[2]}" = "pid 1" ]  # --pid (of --containall) with --no-init
	[ "${lines[3]}" = 0022 ]     # --no-umask
	[ "${lines[4]}" = '[][$(echo x)]' ] # --cleanenv, --no-eval
	run env APPTAINER_COMPAT=1 "$SIFU" exec "$(img)" sh -c 'touch /test && echo $$'
	[ "$status" -eq 0 ]
	[ "$output" = 1 ]
}

# e2e env/env.go apptainerNoEnvOption: NoEnvAlone, NoEnvSecond,
# NoEnvViaEnv, OverridePermitted (APPTAINERENV_FOO still sets FOO).
@test "--no-env and APPTAINER_NOENV keep host variables out" {
	run env FOO=bar BAR=foo "$SIFU" exec --no-env FOO "$(img)" sh -c 'echo "[$FOO][$BAR]"'
	[ "$status" -eq 0 ]
	[ "$output" = "[][foo]" ]
	run env FOO=bar BAR=foo "$SIFU" exec --no-env BAR,FOO "$(img)" sh -c 'echo "[$FOO][$BAR]"'
	[ "$output" = "[][]" ]
	run env FOO=bar BAR=foo APPTAINER_NOENV=FOO,BAR "$SIFU" exec "$(img)" sh -c 'echo "[$FOO][$BAR]"'
	[ "$output" = "[][]" ]
	run env FOO=bar APPTAINERENV_FOO=Bar "$SIFU" exec --no-env BAR,FOO "$(img)" sh -c 'echo "[$FOO]"'
	[ "$status" -eq 0 ]
	[ "$output" = "[Bar]" ]
}

# e2e actions/actions.go actionBinds ScratchTmpfsBind and ScratchWorkdirBind
# (container_linux.go addScratchMount: WORKDIR/scratch/DIR with -W).
@test "--scratch/-S: an empty writable directory, below WORKDIR/scratch with -W" {
	run_sifu exec --scratch /scratch --bind "$IMG/canary:/scratch/dir" "$(img)" \
		sh -c 'test -f /scratch/dir/file && touch /scratch/new && ls /scratch'
	[ "$status" -eq 0 ]
	[ "$(echo $output)" = "dir new" ]
	run_sifu exec -W "$IMG/work" -S /scratch,/other --bind "$IMG/canary:/scratch/dir" "$(img)" \
		sh -c 'touch /scratch/kept /other/too && test -f /scratch/dir/file'
	[ "$status" -eq 0 ]
	[ -d "$IMG/work/scratch/scratch/dir" ]
	[ -f "$IMG/work/scratch/scratch/kept" ]
	[ -f "$IMG/work/scratch/other/too" ]
	run env APPTAINER_SCRATCH=/s1 "$SIFU" exec "$(img)" sh -c 'touch /s1/x && echo ok'
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
}

# e2e actions/actions.go actionBinds ScratchTmpfsBindUnderlay and
# SimpleFileUnderlay: --underlay (deprecated) runs as without it.
@test "--underlay is accepted: sifu needs no underlay" {
	run_sifu exec --underlay --scratch /scratch --bind "$IMG/canary:/scratch/dir" "$(img)" \
		test -f /scratch/dir/file
	[ "$status" -eq 0 ]
	run env APPTAINER_UNDERLAY=1 "$SIFU" exec -B "$IMG/canary:/opt/canary" "$(img)" \
		test -f /opt/canary/file
	[ "$status" -eq 0 ]
}

# e2e env/env.go "runscript timeout" (apptainerRuntimeTimeoutEnv): a slow
# env script with --runscript-timeout 1s exits 255 and says so;
# process_linux.go runActionScript's deadline.
@test "--runscript-timeout stops slow environment scripts with 255" {
	local t0=$SECONDS
	run_sifu run --runscript-timeout 1s "$IMG/slow" hi
	[ "$status" -eq 255 ]
	[[ "$output" == *"did not finish within 1s"* ]]
	[ $((SECONDS - t0)) -lt 3 ]
	run env APPTAINER_RUNSCRIPT_TIMEOUT=500ms "$SIFU" run "$IMG/slow"
	[ "$status" -eq 255 ]
	# within the limit (the default is a minute) the run goes on
	run_sifu run --runscript-timeout 1m "$IMG/slow" hi
	[ "$status" -eq 0 ]
	[ "$output" = "runscript hi" ]
	run_sifu run --runscript-timeout soon "$IMG/slow"
	assert_sifu_error
	[[ "$output" == *"not a duration"* ]]
}

# e2e actions/actions.go actionNetwork NoneNetwork (user profile: exit 0)
# and UserBridgeNetwork (255); launcher_linux.go: --network implies --net.
@test "--network none: a new network namespace with loopback up" {
	run_sifu exec --net --network none "$(img)" cat /proc/net/dev
	[ "$status" -eq 0 ]
	[ "$(grep -c : <<<"$output")" -eq 1 ]
	[[ "$output" == *"lo:"* ]]
	run_sifu exec --network none "$(img)" sh -c 'ip link show lo'
	[ "$status" -eq 0 ]
	[[ "$output" == *"UP"* ]]
	run_sifu exec --net --network bridge "$(img)" true
	assert_sifu_error
	[[ "$output" == *"--network bridge is not supported"* ]]
	[[ "$output" == *"none"* ]]
}

# e2e actions/regressions.go issue3501 and config/mount_test.go:
# --mount type=bind,...,nonested binds, and stays out of APPTAINER_BIND.
@test "--mount ...,nonested is accepted and not passed on in APPTAINER_BIND" {
	run_sifu exec --mount "type=bind,source=$IMG/canary,destination=/hidden,nonested" "$(img)" \
		sh -c 'test -f /hidden/file && echo "[$APPTAINER_BIND]"'
	[ "$status" -eq 0 ]
	[ "$output" = "[]" ]
}

# e2e actions/actions.go actionBinds BindFileWithCommaOK/KO and
# BindFileWithColonOK/KO (bind.go ParseBindPath: "\," and "\:").
@test "escaped \\, and \\: in --bind and APPTAINER_BIND paths" {
	run_sifu exec --bind "$IMG/canary/file\\,comma:/canary/file" "$(img)" test -f /canary/file
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$IMG/canary/file,comma:/canary/file" "$(img)" test -f /canary/file
	[ "$status" -eq 255 ]
	run_sifu exec --bind "$IMG/canary/file\\:colon:/canary/file" "$(img)" test -f /canary/file
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$IMG/canary/file:colon:/canary/file" "$(img)" test -f /canary/file
	[ "$status" -eq 255 ]
	run env APPTAINER_BIND="$IMG/canary/file\\,comma:/c1,$IMG/canary/file\\:colon:/c2" \
		"$SIFU" exec "$(img)" sh -c 'test -f /c1 && test -f /c2'
	[ "$status" -eq 0 ]
}

# action_flags.go actionPwdFlag: EnvKeys PWD and TARGET_PWD, so
# APPTAINER_TARGET_PWD and SINGULARITY_TARGET_PWD set --pwd.
@test "APPTAINER_TARGET_PWD and SINGULARITY_TARGET_PWD set --pwd" {
	run env APPTAINER_TARGET_PWD=/etc "$SIFU" exec "$(img)" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /etc ]
	run env SINGULARITY_TARGET_PWD=/bin "$SIFU" exec "$(img)" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /bin ]
	run env APPTAINER_TARGET_PWD=/etc "$SIFU" exec --pwd /bin "$(img)" pwd
	[ "$output" = /bin ]
}
