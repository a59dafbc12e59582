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
	[[ "$output" == *"/fake/image"* ]]
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

# the hex capability mask FIELD (CapEff, CapBnd, CapAmb) of the payload of
# `sifu exec FLAGS... IMAGE`
cap_mask() {
	local field=$1
	shift
	"$SIFU" exec "$@" grep "^$field:" /proc/self/status | awk '{print $2}'
}

# action_flags.go actionUtsNamespaceFlag ("run container in a new UTS
# namespace"); launcher_linux.go adds the uts namespace for it
@test "--uts runs the container in a new UTS namespace" {
	run_sifu exec --uts "$D/root" readlink /proc/self/ns/uts
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" != "$(readlink /proc/self/ns/uts)" ]
	run_sifu exec "$D/root" readlink /proc/self/ns/uts
	[ "$output" = "$(readlink /proc/self/ns/uts)" ]
	run_sifu exec --uts "$D/root" hostname
	[ "$output" = "$(hostname)" ]
}

# prepare_linux.go prepareRootCaps: --no-privs gives root of the container
# ("no") no capabilities, Permitted/Effective/Bounding alike
@test "--no-privs: root of the container has no capabilities, bounding set included" {
	run cap_mask CapEff --fakeroot "$D/root"
	[ "$status" -eq 0 ]
	[ "$output" != 0000000000000000 ]
	run cap_mask CapEff --fakeroot --no-privs "$D/root"
	[ "$output" = 0000000000000000 ]
	run cap_mask CapBnd --fakeroot --no-privs "$D/root"
	[ "$output" = 0000000000000000 ]
	run_sifu exec --fakeroot --no-privs "$D/root" id -u
	[ "$output" = 0 ]
}

# prepareRootCaps: --drop-caps removes those (names as capabilities.Normalize
# reads them: any case, CAP_ optional) from every set
@test "--drop-caps takes those capabilities from every set" {
	run cap_mask CapEff --fakeroot --drop-caps net_raw,CAP_SYS_ADMIN "$D/root"
	[ "$status" -eq 0 ]
	local eff=$output
	[ $((0x$eff & (1 << 13))) -eq 0 ]
	[ $((0x$eff & (1 << 21))) -eq 0 ]
	[ $((0x$eff & (1 << 0))) -ne 0 ] # CAP_CHOWN stays
	run cap_mask CapBnd --fakeroot --drop-caps net_raw "$D/root"
	[ $((0x$output & (1 << 13))) -eq 0 ]
}

# prepareUserCaps without the setuid starter (not enforced): a user's
# --add-caps are given to the payload, which keeps them across exec
@test "--add-caps gives the payload those capabilities" {
	run cap_mask CapEff --add-caps CAP_NET_RAW "$D/root"
	[ "$status" -eq 0 ]
	[ $((0x$output & (1 << 13))) -ne 0 ]
	if ! is_root; then
		[ "$output" = 0000000000002000 ]
	fi
	run_sifu exec --add-caps CAP_NOT_ONE "$D/root" true
	[ "$status" -eq 0 ]
	[[ "$output" == *"won't add unknown capability: CAP_NOT_ONE"* ]]
}

# launcher_linux.go withPrivilege: "--keep-privs requires root privileges"
@test "--keep-privs: root keeps its capabilities, another user is refused" {
	run_sifu exec --keep-privs "$D/root" grep CapEff /proc/self/status
	if is_root; then
		[ "$status" -eq 0 ]
		[[ "$output" != *0000000000000000* ]]
	else
		assert_sifu_error
		[[ "$output" == *"--keep-privs requires root privileges"* ]]
	fi
}

# container_linux.go addResolvConfMount with --dns, files.ResolvConf:
# "nameserver IP" per server; an address that is not one is an error
@test "--dns writes the container's resolv.conf with those servers" {
	run_sifu exec --dns "1.1.1.1, 2001:db8::1" "$D/root" cat /etc/resolv.conf
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = "$(printf 'nameserver 1.1.1.1\nnameserver 2001:db8::1')" ]
	run_sifu exec --dns 1.1.1.x "$D/root" true
	assert_sifu_error
	[[ "$output" == *"1.1.1.x is not a valid IP address"* ]]
}

# action_flags.go resource flags and --apply-cgroups: Apptainer makes cgroups
# through its starter or systemd; sifu sets none and refuses to run a job
# unlimited that asked for limits
@test "cgroup limits are refused with the reason" {
	printf '[memory]\n  limit = 1000000\n' >"$D/cg.toml"
	for f in "--cpus 1" "--memory 1G" "--pids-limit 10" "--apply-cgroups $D/cg.toml" "--oom-kill-disable"; do
		# shellcheck disable=SC2086
		run_sifu exec $f "$D/root" true
		assert_sifu_error
		[[ "$output" == *"sifu sets no cgroup limits"* ]] || { echo "$f: $output"; false; }
	done
}

# action_flags.go --rocm, --nvccli: GPU set-ups, not in sifu yet
@test "--rocm and --nvccli are refused: GPUs are not supported yet" {
	for f in --rocm --nvccli; do
		run_sifu exec $f "$D/root" true
		assert_sifu_error
		[[ "$output" == *"GPU support"* ]] || { echo "$f: $output"; false; }
	done
}

# prepare_linux.go: --security apparmor:, selinux: set the process's label;
# sifu sets none and says why
@test "--security apparmor:, selinux: are refused with the reason" {
	for o in apparmor:unconfined selinux:user_u:user_r:user_t:s0; do
		run_sifu exec --security "$o" "$D/root" true
		assert_sifu_error
		[[ "$output" == *"--security $o: sifu "* ]] || { echo "$o: $output"; false; }
	done
}

# e2e/security testSecurityUnpriv "SecComp_BlackList" (killed by SIGSYS:
# 159) and "SecComp_true", with a profile like its testdata's: allow all,
# kill mkdir and mkdirat; and SCMP_ACT_ERRNO answering EPERM
@test "--security seccomp:PROFILE loads the profile for the payload" {
	require_feature "libseccomp in this build" grep -q 'HAVE_SECCOMP 1' \
		"$(dirname "$SIFU")/../config.h"
	cat >"$D/seccomp.json" <<'JSON'
{
    "defaultAction": "SCMP_ACT_ALLOW",
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL", "args": [],
                  "includes": {}, "excludes": {}}]
}
JSON
	printf '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}\n' >"$D/errno.json"
	chmod a+r "$D/seccomp.json" "$D/errno.json"
	run_sifu exec --security "seccomp:$D/seccomp.json" "$D/root" mkdir /tmp/foo
	[ "$status" -eq 159 ] || { echo "$status $output"; false; }
	run_sifu exec --security "seccomp:$D/seccomp.json" "$D/root" true
	[ "$status" -eq 0 ]
	run_sifu exec --security "seccomp:$D/errno.json" "$D/root" mkdir /tmp/foo
	[ "$status" -eq 1 ]
	[[ "$output" == *"Operation not permitted"* ]]
	run_sifu exec --security "seccomp:$D/nothere.json" "$D/root" true
	assert_sifu_error
}

# e2e/security testSecurityUnpriv "Set_uid"/"Set_gid" with a user namespace
# (exit 0) and testSecurityPriv (id -u prints 99): launcher_linux.go
# setTargetIDs allows them without the setuid starter
@test "--security uid:N, gid:N run the payload as those ids" {
	run_sifu exec --security uid:99 "$D/root" id -u
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = 99 ]
	run_sifu exec --security gid:99 "$D/root" id -g
	[ "$status" -eq 0 ]
	[ "$output" = 99 ]
	run_sifu exec --security uid:98 --security gid:97 "$D/root" sh -c 'touch /tmp/ids.$$ && stat -c "%u %g" /tmp/ids.$$; rm /tmp/ids.$$'
	[ "$output" = "98 97" ]
	run_sifu exec --security gid:1:2 "$D/root" true
	assert_sifu_error
	[[ "$output" == *"one gid only"* ]]
}
