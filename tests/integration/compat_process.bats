#!/usr/bin/env bats
# Apptainer compatibility (issue 16): what the payload process inherits from
# its caller (file descriptors, umask) and how the command line combines
# with Apptainer's variables.  Each test cites the Apptainer e2e test or
# user guide section it follows.  Runs as root and as sifu-test.
load helpers

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	local t=$IMG/tree
	busybox_tree "$t"
	mkdir -p "$t/.singularity.d/env"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$t/etc/passwd"
	printf 'root:x:0:\n' >"$t/etc/group"
	# env scripts make the launcher source them through /bin/sh
	printf 'export MYVAR=Hello\n' >"$t/.singularity.d/env/90-environment.sh"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/img.sqfs" -noappend -quiet >/dev/null
	mkdir -p "$IMG/b1" "$IMG/b2" "$IMG/b3"
	touch "$IMG/b1/one" "$IMG/b2/two" "$IMG/b3/three"
	chmod -R a+rX "$IMG"
}

img() { echo "$IMG/img.sqfs"; }

# e2e actions/regressions.go issue4488: "no file descriptor leaked in the
# container process" - the payload sees the caller's fds and nothing of
# sifu's own.  Apptainer's starter keeps the fds open before it started
# (cleanup_fd keeps the "master" list), so a caller's fd 7 reaches the
# payload; the listing matches the same ls run on the host.
@test "fds: the payload has exactly the caller's descriptors (issue4488)" {
	local host
	host=$(exec 7</dev/null; ls /proc/self/fd | sort -n | tr '\n' ' ')
	local mode
	# (not `run`: busybox sh keeps a script's own fd open across `exec`,
	# on the host as well)
	for mode in "exec" "exec --fakeroot" "exec --containall" "exec --writable-tmpfs"; do
		# shellcheck disable=SC2086
		run bash -c 'exec 7</dev/null; "$@" | sort -n | tr "\n" " "' _ \
			"$SIFU" $mode "$(img)" ls /proc/self/fd
		[ "$status" -eq 0 ] || { echo "$mode: $output" >&2; return 1; }
		[ "$output" = "$host" ] || { echo "$mode: payload '$output', host '$host'" >&2; return 1; }
	done
}

# e2e actions.go actionUmask: with the caller's umask 0000, `exec
# --fakeroot IMAGE sh -c umask` prints 0000; the same in every mode.
@test "umask: the caller's umask reaches the payload in every mode (actionUmask)" {
	local mode mask
	for mask in 0000 0027; do
		for mode in "" --fakeroot --containall --writable-tmpfs "--fakeroot --writable-tmpfs"; do
			# shellcheck disable=SC2086
			run bash -c 'umask "$1"; shift; "$@"' _ "$mask" "$SIFU" exec $mode "$(img)" sh -c umask
			[ "$status" -eq 0 ] || { echo "$mode: $output" >&2; return 1; }
			[ "$output" = "$mask" ] || { echo "$mode: umask $output, want $mask" >&2; return 1; }
		done
	done
	run bash -c 'umask 0027; echo umask | "$1" shell --fakeroot "$2"' _ "$SIFU" "$(img)"
	[ "$status" -eq 0 ]
	[ "$output" = 0027 ]
}

# Apptainer's --bind and --mount flags take their variables with
# EnvAppendValue (cmd/internal/cli/action_flags.go): the command line's
# specs, then APPTAINER_BIND, then APPTAINER_BINDPATH; SINGULARITY_BIND only
# where APPTAINER_BIND is unset.  User guide "Bind Paths and Mounts": "the
# environment variable $APPTAINER_BIND ... in addition to --bind".
@test "APPTAINER_BIND together with --bind: both apply" {
	run env APPTAINER_BIND="$IMG/b1:/mnt/one" "$SIFU" exec -B "$IMG/b2:/mnt/two" "$(img)" \
		ls /mnt/one /mnt/two
	[ "$status" -eq 0 ]
	[[ "$output" == *one* && "$output" == *two* ]]
	run env APPTAINER_BIND="$IMG/b1:/mnt/one" APPTAINER_BINDPATH="$IMG/b3:/mnt/three" \
		"$SIFU" exec -B "$IMG/b2:/mnt/two" "$(img)" ls /mnt/one /mnt/two /mnt/three
	[ "$status" -eq 0 ]
	[[ "$output" == *three* ]]
	run env SINGULARITY_BIND="$IMG/b1:/mnt/one" "$SIFU" exec -B "$IMG/b2:/mnt/two" "$(img)" \
		ls /mnt/one /mnt/two
	[ "$status" -eq 0 ]
	[[ "$output" == *one* && "$output" == *two* ]]
	run env APPTAINER_MOUNT="type=bind,source=$IMG/b1,destination=/mnt/one" \
		"$SIFU" exec --mount "type=bind,source=$IMG/b2,destination=/mnt/two" "$(img)" \
		ls /mnt/one /mnt/two
	[ "$status" -eq 0 ]
	[[ "$output" == *one* && "$output" == *two* ]]
}

# e2e actions.go "overlay_find_with_writable_tmpfs_fail": --overlay DIR
# with --writable-tmpfs exits 255 ("you can't specify --writable-tmpfs with
# another writable overlay image", prepare_linux.go); with DIR:ro
# ("overlay_find_with_writable_tmpfs") the run works and writes go to the
# tmpfs.
@test "--overlay DIR with --writable-tmpfs is refused; DIR:ro is not" {
	mkdir -p "$BATS_TEST_TMPDIR/ov"
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/ov" --writable-tmpfs "$(img)" true
	assert_sifu_error
	[[ "$output" == *"you can't specify --writable-tmpfs with another writable overlay image ($BATS_TEST_TMPDIR/ov)"* ]]
	# as the e2e sequence: overlay_create first, then the :ro find
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/ov" "$(img)" touch /dir_overlay
	[ "$status" -eq 0 ]
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/ov:ro" --writable-tmpfs "$(img)" \
		sh -c 'test -f /dir_overlay && touch /x && echo ok'
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
	[ ! -e "$BATS_TEST_TMPDIR/ov/upper/x" ]
}
