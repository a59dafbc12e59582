#!/usr/bin/env bats
# Apptainer compatibility of the mount tree (issue 16): the default /var/tmp
# bind in an image whose /var/tmp is a symlink to /tmp, mount points nested
# in a bound directory under --writable, and the APPTAINER_BIND a nested
# container sees.  Runs as root and as the unprivileged user sifu-test; each
# test names the Apptainer e2e test it follows.
load helpers

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	local t=$IMG/tree
	busybox_tree "$t"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/base.sqfs" -noappend -quiet -all-root >/dev/null
	# e2e/testdata/regressions/issue_1097.def: /var/tmp -> ../tmp
	rmdir "$t/var/tmp"
	ln -s ../tmp "$t/var/tmp"
	mksquashfs "$t" "$IMG/vartmp_link.sqfs" -noappend -quiet -all-root >/dev/null
	mkdir -p "$IMG/canary"
	echo canary >"$IMG/canary/file"
}

# a writable sandbox of our own per test: --writable creates in it
sandbox() {
	local s=$BATS_TEST_TMPDIR/sandbox
	busybox_tree "$s"
	echo "$s"
}

# e2e/actions/regressions.go issue1097: the host's /var/tmp is not mounted
# over the container's /tmp when the image's /var/tmp links to /tmp
@test "issue1097: image /var/tmp -> /tmp does not show the host's /var/tmp" {
	[ "$(readlink -f /var/tmp)" != "$(readlink -f /tmp)" ] || skip "/var/tmp links to /tmp on the host"
	local vcanary tcanary
	vcanary=$(mktemp /var/tmp/issue-1097.XXXXXX)
	tcanary=$(mktemp /tmp/issue-1097.XXXXXX)
	run_sifu exec "$IMG/vartmp_link.sqfs" cat "$vcanary"
	local st=$status
	run_sifu exec "$IMG/vartmp_link.sqfs" sh -c "test -f $tcanary && test -f ${tcanary/\/tmp/\/var\/tmp}"
	local st2=$status
	rm -f "$vcanary" "$tcanary"
	[ "$st" -eq 1 ]
	# /tmp (and /var/tmp through the link) is still the host's /tmp
	[ "$st2" -eq 0 ]
	# an image with a real /var/tmp still gets the host's
	vcanary=$(mktemp /var/tmp/issue-1097.XXXXXX)
	run_sifu exec "$IMG/base.sqfs" cat "$vcanary"
	rm -f "$vcanary"
	[ "$status" -eq 0 ]
}

# e2e/actions/regressions.go issue1097, with --contain: /tmp and /var/tmp
# resolve to one directory, mounted once
@test "issue1097: --contain, image /var/tmp -> /tmp: one directory" {
	run_sifu exec --contain "$IMG/vartmp_link.sqfs" sh -c 'echo x >/tmp/f && cat /var/tmp/f'
	[ "$status" -eq 0 ]
	[ "$output" = x ]
}

# e2e/actions/actions.go actionBinds CustomHomeBindWritableOK
@test "CustomHomeBindWritableOK: --writable, a bind inside a custom home" {
	local s home
	s=$(sandbox)
	home=$BATS_TEST_TMPDIR/home
	mkdir -p "$home"
	run_sifu exec --home "$home:/home/e2e" --bind "$IMG/canary:/home/e2e/canaryRW" --writable \
		"$s" test -f /home/e2e/canaryRW/file
	[ "$status" -eq 0 ]
	# the mount point is made in the bound host directory
	[ -d "$home/canaryRW" ]
	[ ! -e "$s/home/e2e" ]
}

# e2e/actions/actions.go actionBinds WorkdirTmpBindWritable
@test "WorkdirTmpBindWritable: --writable --contain --workdir, a bind below /tmp" {
	local s wd
	s=$(sandbox)
	wd=$BATS_TEST_TMPDIR/wd
	mkdir -p "$wd"
	run_sifu exec --writable --workdir "$wd" --contain --bind "$IMG/canary:/tmp/canary/dir" \
		"$s" test -f /tmp/canary/dir/file
	[ "$status" -eq 0 ]
	[ -d "$wd/tmp/canary/dir" ]
	[ ! -e "$s/tmp/canary" ]
}

# e2e/actions/actions.go actionBinds WorkdirVarTmpBindWritable
@test "WorkdirVarTmpBindWritable: --writable --contain --workdir, a bind below /var/tmp" {
	local s wd
	s=$(sandbox)
	wd=$BATS_TEST_TMPDIR/wd
	mkdir -p "$wd"
	run_sifu exec --writable --workdir "$wd" --contain --bind "$IMG/canary:/var/tmp/canary/dir" \
		"$s" test -f /var/tmp/canary/dir/file
	[ "$status" -eq 0 ]
	[ -d "$wd/var_tmp/canary/dir" ]
	[ ! -e "$s/var/tmp/canary" ]
}

# e2e/actions/actions.go actionBinds SimpleDirWritableKO: outside every
# bound directory, --writable still makes no mount point in the image
@test "SimpleDirWritableKO: --writable, a destination missing from the image fails" {
	local s
	s=$(sandbox)
	run_sifu exec --writable --bind "$IMG/canary:/canary/dir" "$s" test -f /canary/dir/file
	assert_sifu_error
	[ ! -e "$s/canary" ]
}

# e2e/actions/regressions.go issue3501 "mixed" and "nonested", and
# internal/pkg/runtime/launch/launcher_linux.go setBinds: APPTAINER_BIND
# lists the destinations, without the --mount binds marked nonested
@test "issue3501: APPTAINER_BIND lists bind destinations, not nonested ones" {
	run_sifu exec --bind "$IMG/canary:/visible" \
		--mount "type=bind,source=$IMG/canary,destination=/hidden,nonested" \
		"$IMG/base.sqfs" env
	[ "$status" -eq 0 ]
	grep -qx 'APPTAINER_BIND=/visible' <<<"$output"
	grep -qx 'SINGULARITY_BIND=/visible' <<<"$output"
	run ! grep -q /hidden <<<"$output"
	run_sifu exec --mount "type=bind,source=$IMG/canary,destination=/hidden,nonested" \
		"$IMG/base.sqfs" env
	[ "$status" -eq 0 ]
	run ! grep -q 'APPTAINER_BIND=/hidden' <<<"$output"
	run_sifu exec --bind "$IMG/canary:/a,$IMG/canary" \
		--mount "type=bind,source=$IMG/canary,destination=/m" "$IMG/base.sqfs" \
		sh -c 'echo "$APPTAINER_BIND"'
	[ "$status" -eq 0 ]
	[ "$output" = "/a,$IMG/canary,/m" ]
}
