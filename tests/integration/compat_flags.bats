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
