#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Apptainer compatibility at run time (issue 16): behaviours of exec, run,
# shell, test and inspect that an Apptainer job script can notice, each test
# translated from Apptainer's e2e suite (e2e/actions, e2e/env, e2e/inspect,
# e2e/runhelp, e2e/security and their regressions.go) or its user guide, and
# citing it in the comment above it.  The images are built here, offline:
# Apptainer's e2e test image rebuilt from its definition on busybox, images
# made with mksquashfs from helpers.bash's busybox tree, and sandboxes.
# What sifu deliberately does differently is in docs/cli.md "Differences
# from Apptainer".  SCIF apps, overlay images, ext3 and the --compat family
# of flags have their own compat_*.bats files.  Runs as root and as the
# unprivileged user sifu-test (scripts/test runs it both ways).
load helpers

# ---- images ----
# The e2e test image (e2e/testdata/Apptainer) rebuilt on busybox: its
# %help, %environment, %runscript, %startscript, %test and the /var/etc
# symlinks of its %post (without the %app sections, which
# compat_scif.bats covers); the inspect test image
# (e2e/testdata/inspector_container.def) on busybox; and a bare busybox
# SquashFS, the e2e "default image" that sets no PATH.
setup_e2e_images() {
	local d=$IMG/e2e
	mkdir -p "$d" "$IMG/tmp"
	cat >"$d/e2e.def" <<'DEF'
Bootstrap: busybox

%labels
    maintainer "Apptainer Team <tsc@apptainer.org>"

%help
    export BAD_GUY=Thanos
    export SMART_GUY=tony

%environment
    GOPATH=/go
    PATH=$PATH:$GOPATH/bin:/usr/local/go/bin
    CGO_ENABLED=0
    AVENGERS=assemble
    export GOPATH PATH CGO_ENABLED AVENGERS

%startscript
    exec "$@"

%runscript
    echo "Running command: $*"
    exec "$@"

%post
    ln -s /etc /var/etc
    mkdir /madness
    ln -s /madness /var/etc/madness

%test
    exec "$@"
DEF
	cat >"$d/inspector.def" <<'DEF'
Bootstrap: busybox

%help
This is a e2e test container used for testing the 'inspect'
command. This container "inspector_container.sif" should be placed
in the "e2e/testdata" directory of Apptainer.

%labels
MAINTAINER "WestleyK <westley@sylabs.io>"
e2e awesome
E2E AWESOME
hi "hello world"
HI "HELLO WORLD"

%post
echo "export hello=\"world\"" >> $APPTAINER_ENVIRONMENT
# add labels from post section
k=first; echo "$k.build.labels  $k" >> $APPTAINER_LABELS
k=second; echo "$k.build.labels $k" >> $APPTAINER_LABELS

%test
ls /
test -d /
test -d /etc

%environment
export test="testing"
export e2e="e2e testing"
DEF
	# e2e/testdata/regressions/issue_1097.def: /var/tmp a link to /tmp
	printf 'Bootstrap: busybox\n\n%%setup\n    mv "${APPTAINER_ROOTFS}/var/tmp" "${APPTAINER_ROOTFS}/var/tmpold"\n    ln -s ../tmp "${APPTAINER_ROOTFS}/var/tmp"\n' >"$d/issue1097.def"
	(
		export TMPDIR=$IMG/tmp
		"$SIFU" -q build "$d/e2e.sif" "$d/e2e.def"
		# as the e2e tests convert it: build --sandbox DIR IMAGE
		"$SIFU" -q build --sandbox "$d/sandbox" "$d/e2e.sif"
		"$SIFU" -q build "$d/inspector.sif" "$d/inspector.def"
		"$SIFU" -q build "$d/issue1097.sif" "$d/issue1097.def"
	) >/dev/null 2>&1
	busybox_tree "$d/busybox"
	mksquashfs "$d/busybox" "$d/busybox.sqfs" -noappend -quiet -all-root >/dev/null
	chmod -R a+rX "$d"
}

# the e2e actionBinds workspace: a canary directory with a 0777 file
bind_workspace() {
	W=$BATS_TEST_TMPDIR/ws
	mkdir -p "$W/canary" "$W/home" "$W/workdir"
	touch "$W/canary/file"
	chmod 0777 "$W/canary" "$W/canary/file" "$W/home" "$W/workdir"
}

# helpers.bash's busybox tree, with /sbin and /usr/bin as Debian has them
env_tree() {
	busybox_tree "$1"
	mkdir -p "$1/sbin" "$1/usr" && ln -s ../bin "$1/usr/bin"
}

setup_env_images() {
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
}

setup_flag_images() {
	local t=$IMG/ftree
	busybox_tree "$t"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$t/etc/passwd"
	printf 'root:x:0:\n' >"$t/etc/group"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/plain.sqfs" -noappend -quiet >/dev/null
	# an env script makes the launcher go through /bin/sh: the values
	# are then quoted into a script rather than set directly
	mkdir -p "$t/.singularity.d/env"
	printf 'export MYVAR=Hello\n' >"$t/.singularity.d/env/90-environment.sh"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/envimg.sqfs" -noappend -quiet >/dev/null
}

setup_mount_images() {
	local t=$IMG/mtree
	busybox_tree "$t"
	rmdir "$t/mnt" # the sandbox tests want mount points the image lacks
	mkdir -p "$t/opt/shared"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$t/etc/passwd"
	printf 'root:x:0:\n' >"$t/etc/group"
	chmod 0777 "$t/opt/shared"
	mkdir -p "$t/.singularity.d/env"
	printf 'export FROM_IMAGE=1\n' >"$t/.singularity.d/env/90-environment.sh"
	chmod -R a+rX "$t"
	# every file owned by root, as in an image built by root
	mksquashfs "$t" "$IMG/root.sqfs" -noappend -quiet -all-root >/dev/null
	# an image with its own /dev/null node, as images built by Apptainer
	# have (mksquashfs -p makes it without privileges)
	mksquashfs "$t" "$IMG/devnull.sqfs" -noappend -quiet -all-root \
		-p '/dev/null c 666 0 0 1 3' >/dev/null
}

setup_inspect_images() {
	mkdir -p "$D"
	# an image as Apptainer's builder leaves it (internal/pkg/build/
	# metadata.go): scripts are "shebang\n\nbody\n", the help "text\n", the
	# environment appended to the base 90-environment.sh
	local r="$D/root"
	mkdir -p "$r/bin" "$r/.singularity.d/env"
	cp "$(command -v busybox)" "$r/bin/busybox"
	ln -s busybox "$r/bin/sh"
	printf '#!/bin/sh\n\ncat /.singularity.d/runscript.help\n' >"$r/.singularity.d/runscript"
	printf '#!/bin/sh\n\nexec "$@"\n' >"$r/.singularity.d/startscript"
	printf '#!/bin/sh\n\nls /\ntest -d /\ntest -d /etc\n' >"$r/.singularity.d/test"
	printf 'This is a e2e test container\nused for inspect.\n' >"$r/.singularity.d/runscript.help"
	printf '{\n\t"E2E": "AWESOME",\n\t"org.label-schema.usage.apptainer.runscript.help": "/.singularity.d/runscript.help"\n}' \
		>"$r/.singularity.d/labels.json"
	printf '#!/bin/sh\n# Custom environment shell code should follow\n\n\nexport test="testing"\n' \
		>"$r/.singularity.d/env/90-environment.sh"
	printf 'export hello="world"\n' >"$r/.singularity.d/env/91-environment.sh"
	printf '#!/bin/sh\nexport PATH=/bin\n' >"$r/.singularity.d/env/01-base.sh"
	printf 'bootstrap: localimage\nfrom: base.sif\n\n%%runscript\n    cat /.singularity.d/runscript.help\n' \
		>"$r/.singularity.d/Singularity"
	mksquashfs "$r" "$D/img.sqfs" -noappend -all-root -quiet >/dev/null
	cp -a "$r" "$D/sandbox"
}

setup_bind_dirs() {
	mkdir -p "$IMG/b1" "$IMG/b2" "$IMG/b3"
	touch "$IMG/b1/one" "$IMG/b2/two" "$IMG/b3/three"
}

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	export E2E=$IMG/e2e D=$IMG/insp
	setup_e2e_images
	setup_env_images
	setup_flag_images
	setup_mount_images
	setup_inspect_images
	setup_bind_dirs
	chmod -R a+rX "$IMG"
}

# every test works in its own directory (some write files to the cwd)
setup() { cd "$BATS_TEST_TMPDIR"; }

# ---- actions: exec, run, shell, test (e2e/actions/actions.go) ----

# e2e/actions/actions.go: actionExec "True", "TrueAbsPAth", "False", "FalseAbsPath"
@test "exec: true and /bin/true exit 0, false and /bin/false exit 1" {
	run_sifu exec "$E2E/e2e.sif" true
	[ "$status" -eq 0 ]
	run_sifu exec "$E2E/e2e.sif" /bin/true
	[ "$status" -eq 0 ]
	run_sifu exec "$E2E/e2e.sif" false
	[ "$status" -eq 1 ]
	run_sifu exec "$E2E/e2e.sif" /bin/false
	[ "$status" -eq 1 ]
}

# e2e/actions/actions.go: actionExec "NoCommand" (Apptainer exits 1; a usage
# error exits 255 in sifu, docs/cli.md "Differences from Apptainer")
@test "exec without a command is a usage error" {
	run_sifu exec "$E2E/e2e.sif"
	assert_sifu_error
}

# e2e/actions/actions.go: actionRun "NoCommand", "True", "False"
@test "run: the runscript's exit status, with and without arguments" {
	run_sifu run "$E2E/e2e.sif"
	[ "$status" -eq 0 ]
	run_sifu run "$E2E/e2e.sif" true
	[ "$status" -eq 0 ]
	run_sifu run "$E2E/e2e.sif" false
	[ "$status" -eq 1 ]
}

# e2e/actions/actions.go: STDPipe "Arguments": run IMAGE foo prints
# "Running command: foo" and exits 127 (exec of a missing command)
@test "run passes its arguments to the runscript" {
	run -127 "$SIFU" run "$E2E/e2e.sif" foo
	[ "${lines[0]}" = "Running command: foo" ]
}

# e2e/actions/actions.go: exitSignals "Exit0", "Exit1", "Exit134",
# "SignalKill", "SignalAbort"
@test "exit status: the payload's code, 128+N when a signal kills it" {
	local code
	for code in 0 1 134; do
		run_sifu exec "$E2E/e2e.sif" /bin/sh -c "exit $code"
		[ "$status" -eq "$code" ]
	done
	run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'kill -KILL $$'
	[ "$status" -eq 137 ]
	run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'kill -ABRT $$'
	[ "$status" -eq 134 ]
}

# e2e/actions/actions.go: STDPipe "TrueSTDIN", "FalseSTDIN"
@test "exec reads the caller's stdin" {
	run bash -c 'printf hi | "$SIFU" exec "$1" grep hi' _ "$E2E/e2e.sif"
	[ "$status" -eq 0 ] && [ "$output" = hi ]
	run bash -c 'printf bye | "$SIFU" exec "$1" grep hi' _ "$E2E/e2e.sif"
	[ "$status" -eq 1 ]
}

# e2e/actions/actions.go: STDPipe "TrueLibrary", "FalseLibrary" (shell
# with commands on stdin; a local image instead of oras://)
@test "shell runs the commands on its stdin and exits with their status" {
	run bash -c 'echo true | "$SIFU" shell "$1"' _ "$E2E/e2e.sif"
	[ "$status" -eq 0 ]
	run bash -c 'echo false | "$SIFU" shell "$1"' _ "$E2E/e2e.sif"
	[ "$status" -eq 1 ]
}

# e2e/actions/actions.go: actionShell "ShellBadCommand"
@test "shell: an unknown command, then exit, exits 127" {
	run -127 bash -c 'printf "_a_fake_command\nexit\n" | "$SIFU" shell "$1"' _ "$E2E/e2e.sif"
}

# e2e/actions/actions.go: STDPipe "Permissions": exec id -un prints the caller
@test "exec id -un prints the caller's user name" {
	run_sifu exec "$E2E/e2e.sif" id -un
	[ "$status" -eq 0 ]
	[ "$output" = "$(id -un)" ]
}

# e2e/actions/actions.go: STDPipe "PwdPath", "CwdPath";
# actionExecMultiProfile "CwdGood", "PwdGood"
@test "--pwd and --cwd /etc: the payload starts in /etc" {
	run_sifu exec --pwd /etc "$E2E/e2e.sif" pwd
	[ "$status" -eq 0 ] && [ "$output" = /etc ]
	run_sifu exec --cwd /etc "$E2E/e2e.sif" true
	[ "$status" -eq 0 ]
}

# user guide "Running a container": `test` runs the image's %test section
# (e2e/testdata/Apptainer: %test exec "$@")
@test "test runs %test with the arguments" {
	run_sifu test "$E2E/e2e.sif" true
	[ "$status" -eq 0 ]
	run_sifu test "$E2E/e2e.sif" false
	[ "$status" -eq 1 ]
	run_sifu test "$E2E/e2e.sif" /bin/sh -c 'echo $AVENGERS'
	[ "$status" -eq 0 ] && [ "$output" = assemble ]
}

# internal/pkg/util/fs/files/action_script.sh (run): without
# /.singularity.d/runscript, /apptainer, else /bin/sh with the arguments
@test "run without a runscript: /apptainer, else /bin/sh" {
	local t=$BATS_TEST_TMPDIR/legacy
	busybox_tree "$t"
	run_sifu run "$t" -c 'echo sh "$1"' _ a
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "sh a" ]
	printf '#!/bin/sh\necho apptainer "$@"\n' >"$t/apptainer"
	chmod 755 "$t/apptainer"
	run_sifu run "$t" a b
	[ "$status" -eq 0 ]
	[ "$output" = "apptainer a b" ]
}

# user guide "shell" (--shell, APPTAINER_SHELL): the shell to run
@test "shell --shell and APPTAINER_SHELL choose the shell" {
	run bash -c 'echo "echo \$0" | "$SIFU" shell --shell /bin/ash "$1"' _ "$E2E/e2e.sif"
	[ "$status" -eq 0 ] && [ "$output" = /bin/ash ]
	run bash -c 'echo "echo \$0" | APPTAINER_SHELL=/bin/ash "$SIFU" shell "$1"' _ "$E2E/e2e.sif"
	[ "$status" -eq 0 ] && [ "$output" = /bin/ash ]
}

# internal/pkg/util/fs/files/action_script.sh (shell): SHELL=/bin/bash
# when it runs bash, SHELL=/bin/sh when it runs /bin/sh
@test "shell: SHELL names the shell that runs" {
	run bash -c 'echo "echo \$SHELL" | SHELL=/bin/bash "$SIFU" shell "$1"' _ "$E2E/e2e.sif"
	[ "$status" -eq 0 ]
	[ "$output" = /bin/sh ]
	local t=$BATS_TEST_TMPDIR/bash
	busybox_tree "$t"
	# busybox has no bash: one that takes bash's --norc and runs sh
	printf '#!/bin/sh\n[ "$1" = --norc ] && shift\nexec /bin/sh "$@"\n' >"$t/bin/bash"
	chmod 755 "$t/bin/bash"
	run bash -c 'echo "echo \$SHELL" | SHELL=/bin/zsh "$SIFU" shell "$1"' _ "$t"
	[ "$status" -eq 0 ]
	[ "$output" = /bin/bash ]
}

# ---- home, /tmp, --contain, --workdir (actionExecMultiProfile) ----

# e2e/actions/actions.go: actionExec "NoHome"
@test "--no-home: the caller's home is not mounted" {
	run_sifu exec --no-home "$E2E/e2e.sif" mount
	[ "$status" -eq 0 ]
	run grep -c " on $HOME " <<<"$output"
	[ "$output" = 0 ]
	if ! is_root; then
		run_sifu exec --no-home "$E2E/e2e.sif" ls -ld "$HOME"
		[ "$status" -eq 1 ]
	fi
}

# user guide "Bind Paths and Mounts" (--contain: a minimal /dev); e2e
# actionNoMount "devpts" runs `mount` in it
@test "--contain: a minimal /dev with the usual nodes and a devpts" {
	run_sifu exec --contain "$E2E/e2e.sif" sh -c 'for n in null zero random urandom tty full shm pts ptmx; do test -e /dev/$n || echo missing $n; done; echo x >/dev/null && echo ok'
	[ "$status" -eq 0 ] && [ "$output" = ok ]
}

# e2e/actions/actions.go: actionExecMultiProfile "ContainOnly", "WorkdirOnly"
@test "--contain hides the host /tmp; --workdir alone does not" {
	local f
	f=$(mktemp /tmp/sifu-compat.XXXXXX)
	mkdir -p "$BATS_TEST_TMPDIR/wd/tmp"
	run_sifu exec "$E2E/e2e.sif" test -f "$f"
	[ "$status" -eq 0 ]
	run_sifu exec --contain "$E2E/e2e.sif" test -f "$f"
	[ "$status" -eq 1 ]
	run_sifu exec --workdir "$BATS_TEST_TMPDIR/wd" "$E2E/e2e.sif" test -f "$f"
	[ "$status" -eq 0 ]
	rm -f "$f"
}

# internal/pkg/runtime/launch/launcher_linux.go setProcessCwd: with
# --contain and no --pwd the payload starts in its home, even where the
# caller's directory exists in the image
@test "--contain: the payload starts in the home, not in the caller's directory" {
	run bash -c 'cd /etc && "$SIFU" exec --contain "$1" pwd' _ "$E2E/e2e.sif"
	[ "$status" -eq 0 ] && [ "$output" = "$HOME" ]
	run bash -c 'cd /etc && "$SIFU" exec --containall "$1" pwd' _ "$E2E/e2e.sif"
	[ "$status" -eq 0 ] && [ "$output" = "$HOME" ]
	run bash -c 'cd /etc && "$SIFU" exec --contain --pwd /bin "$1" pwd' _ "$E2E/e2e.sif"
	[ "$status" -eq 0 ] && [ "$output" = /bin ]
	# without --contain, the caller's directory
	run bash -c 'cd /etc && "$SIFU" exec "$1" pwd' _ "$E2E/e2e.sif"
	[ "$status" -eq 0 ] && [ "$output" = /etc ]
}

# e2e/actions/actions.go: actionExecMultiProfile "WorkdirContainTmp",
# "WorkdirContainVarTmp", "WorkdirContainHome"
@test "--workdir with --contain: /tmp, /var/tmp and the home come from the workdir" {
	local wd=$BATS_TEST_TMPDIR/wd
	mkdir -p "$wd/tmp" "$wd/var_tmp" "$wd/home"
	touch "$wd/tmp/t1" "$wd/var_tmp/v1" "$wd/home/h1"
	run_sifu exec --workdir "$wd" --contain "$E2E/e2e.sif" test -f /tmp/t1
	[ "$status" -eq 0 ]
	run_sifu exec --workdir "$wd" --contain "$E2E/e2e.sif" test -f /var/tmp/v1
	[ "$status" -eq 0 ]
	run_sifu exec --workdir "$wd" --contain "$E2E/e2e.sif" sh -c 'test -f $HOME/h1'
	[ "$status" -eq 0 ]
}

# e2e/actions/actions.go: actionExecMultiProfile "Home", "HomePath"
@test "--home DIR and --home DIR:/home" {
	local d=$BATS_TEST_TMPDIR/data
	mkdir -p "$d/tmp" && touch "$d/tmp/canary"
	run_sifu exec --home "$d" "$E2E/e2e.sif" test -f "$d/tmp/canary"
	[ "$status" -eq 0 ]
	run_sifu exec --home "$d" "$E2E/e2e.sif" sh -c 'echo $HOME'
	[ "$status" -eq 0 ] && [ "$output" = "$d" ]
	run_sifu exec --home "$d/tmp:/home" "$E2E/e2e.sif" test -f /home/canary
	[ "$status" -eq 0 ]
}

# e2e/actions/actions.go: actionExecMultiProfile "HomeTmp", "HomeTmpExplicit"
@test "--home /tmp and --home /tmp:/home" {
	run_sifu exec --home /tmp "$E2E/e2e.sif" true
	[ "$status" -eq 0 ]
	run_sifu exec --home /tmp:/home "$E2E/e2e.sif" true
	[ "$status" -eq 0 ]
}

# e2e/actions/actions.go: actionExecMultiProfile "UserBindTmp", "UserBindVarTmp"
@test "--bind DIR:/tmp and DIR:/var/tmp replace them" {
	local d=$BATS_TEST_TMPDIR/data
	mkdir -p "$d" && touch "$d/canary"
	run_sifu exec --bind "$d:/tmp" "$E2E/e2e.sif" test -f /tmp/canary
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$d:/var/tmp" "$E2E/e2e.sif" test -f /var/tmp/canary
	[ "$status" -eq 0 ]
}

# e2e/actions/regressions.go: issue4587 - cwd the home, --home SRC:$HOME
@test "--home SRC:\$HOME while the cwd is the home" {
	local h=$BATS_TEST_TMPDIR/homedir
	mkdir -p "$h" && touch "$h/canary_file"
	run bash -c 'cd "$HOME" && "$SIFU" exec --home "$1:$HOME" "$2" test -f "$HOME/canary_file"' _ "$h" "$E2E/e2e.sif"
	[ "$status" -eq 0 ]
}

# e2e/run/regressions.go: issue409 "accessible home directory", "read only
# home directory", "inaccessible only home directory": run works whatever
# the mode of the caller's home
@test "run works with a home of mode 0700, 0400 or 0000" {
	local m h
	for m in 700 400 000; do
		h=$BATS_TEST_TMPDIR/home$m
		mkdir -p "$h" && chmod "$m" "$h"
		HOME=$h run_sifu run "$E2E/e2e.sif" /bin/true
		chmod 700 "$h"
		[ "$status" -eq 0 ] || { echo "$m: $output"; false; }
	done
}

# e2e/actions/regressions.go: issue5228 - a home of / is not mounted
@test "--home / still runs" {
	run_sifu exec --home / "$E2E/e2e.sif" /bin/true
	[ "$status" -eq 0 ]
}

# e2e/actions/regressions.go: issue4768, issue4836 - a symlink in the cwd
@test "a cwd reached through a symlink: pwd prints the resolved path" {
	local d=$BATS_TEST_TMPDIR/issue
	mkdir -p "$d/dir/child"
	ln -s dir "$d/symlink"
	ln -s . "$d/dir/self"
	run bash -c 'cd "$1/symlink/child" && "$SIFU" exec "$2" pwd' _ "$d" "$E2E/e2e.sif"
	[ "$status" -eq 0 ] && [ "$output" = "$d/dir/child" ]
	run bash -c 'cd "$1/dir/self" && "$SIFU" exec "$2" pwd' _ "$d" "$E2E/e2e.sif"
	[ "$status" -eq 0 ] && [ "$output" = "$d/dir" ]
}

# e2e/actions/regressions.go: issue5211 - --fakeroot --contain: HOME is
# /root and the host home is not mounted there
@test "--fakeroot --contain: HOME=/root, with nothing of the host home" {
	run_sifu exec --fakeroot --contain "$E2E/e2e.sif" sh -c 'echo $HOME'
	[ "$status" -eq 0 ] && [ "$output" = /root ]
	run_sifu exec --fakeroot --contain "$E2E/e2e.sif" sh -c 'ls -A /root | wc -l'
	[ "$status" -eq 0 ] && [ "$output" = 0 ]
}

# e2e/actions/regressions.go: issue3502 - fakeroot is root by name
@test "--fakeroot: whoami prints root, id -u 0" {
	run_sifu exec --fakeroot "$E2E/e2e.sif" whoami
	[ "$status" -eq 0 ] && [ "$output" = root ]
	run_sifu exec --fakeroot "$E2E/e2e.sif" id -u
	[ "$status" -eq 0 ] && [ "$output" = 0 ]
}

# e2e/actions/regressions.go: issue1848 - the caller's passwd line
@test "/etc/passwd in the container has the caller's entry" {
	# root's line is the image's own (Apptainer adds none for root)
	is_root && return 0
	local want
	want=$(getent passwd "$(id -un)")
	run_sifu exec "$E2E/e2e.sif" grep "^$(id -un):" /etc/passwd
	[ "$status" -eq 0 ]
	[ "$output" = "$want" ]
}

# e2e/actions/regressions.go: issue5465 - /etc/hosts and /etc/localtime
# being directories in the image is not fatal, with or without --contain
@test "/etc/hosts and /etc/localtime as directories in a sandbox" {
	local sb=$BATS_TEST_TMPDIR/sb
	cp -a "$E2E/sandbox" "$sb"
	rm -f "$sb/etc/hosts" "$sb/etc/localtime"
	mkdir -p "$sb/etc/hosts" "$sb/etc/localtime"
	run_sifu exec "$sb" true
	[ "$status" -eq 0 ]
	run_sifu exec --contain "$sb" true
	[ "$status" -eq 0 ]
}

# ---- binds (e2e/actions/actions.go actionBinds, on the sandbox) ----

# actionBinds "NonExistentSource", "RelativeBindDestination"
@test "--bind: a missing source or a relative destination exits 255" {
	bind_workspace
	run_sifu exec --bind /non/existent/source/path "$E2E/sandbox" true
	[ "$status" -eq 255 ]
	run_sifu exec --bind "$W/canary/file:relative" "$E2E/sandbox" true
	[ "$status" -eq 255 ]
}

# actionBinds "SimpleFile", "SimpleFileCwd", "SimpleFilePwd"
@test "--bind a file to a path the image lacks, and --cwd/--pwd beside it" {
	bind_workspace
	run_sifu exec --bind "$W/canary/file:/canary/file" "$E2E/sandbox" test -f /canary/file
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$W/canary/file:/canary/file" --cwd /canary "$E2E/sandbox" test -f file
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$W/canary/file:/canary/file" --pwd /canary "$E2E/sandbox" test -f file
	[ "$status" -eq 0 ]
}

# actionBinds "SimpleDir", "SimpleDirCwd", "SimpleDirPwd"
@test "--bind a directory to a path the image lacks, and --cwd/--pwd into it" {
	bind_workspace
	run_sifu exec --bind "$W/canary:/canary" "$E2E/sandbox" test -f /canary/file
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$W/canary:/canary" --cwd /canary "$E2E/sandbox" test -f file
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$W/canary:/canary" --pwd /canary "$E2E/sandbox" test -f file
	[ "$status" -eq 0 ]
}

# actionBinds "SimpleFileWritableOK", "SimpleDirWritableOK": with
# --writable, a source bound at its own path under the shared /tmp
@test "--writable --bind SRC at its own path" {
	bind_workspace
	local sb=$BATS_TEST_TMPDIR/sb
	cp -a "$E2E/sandbox" "$sb"
	run_sifu exec --writable --bind "$W/canary/file" "$sb" test -f "$W/canary/file"
	[ "$status" -eq 0 ]
	run_sifu exec --writable --bind "$W/canary" "$sb" test -f "$W/canary/file"
	[ "$status" -eq 0 ]
}

# actionBinds "HomeContainOverride", "TmpContainOverride", "VarTmpContainOverride"
@test "--contain: a --bind onto /home, /tmp or /var/tmp wins over the contained one" {
	bind_workspace
	local dst
	for dst in /home /tmp /var/tmp; do
		run_sifu exec --contain --bind "$W/canary:$dst" "$E2E/sandbox" test -f "$dst/file"
		[ "$status" -eq 0 ] || { echo "$dst: $output"; false; }
	done
}

# actionBinds "SymlinkOneLevelFileBind", "SymlinkTwoLevelFileBind"
@test "--bind a file through symlinks of the image (/var/etc -> /etc)" {
	bind_workspace
	run_sifu exec --bind "$W/canary/file:/var/etc/symlink1" "$E2E/sandbox" test -f /etc/symlink1
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$W/canary/file:/var/etc/madness/symlink2" "$E2E/sandbox" test -f /madness/symlink2
	[ "$status" -eq 0 ]
}

# actionBinds "SymlinkOneLevelDirBind", "SymlinkTwoLevelDirBind"
@test "--bind a directory onto a symlink of the image" {
	bind_workspace
	run_sifu exec --bind "$W/canary:/var/etc" "$E2E/sandbox" test -f /etc/file
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$W/canary:/var/etc/madness" "$E2E/sandbox" test -f /madness/file
	[ "$status" -eq 0 ]
}

# actionBinds "SymlinkOneLevelNewDirBind", "SymlinkTwoLevelNewDirBind"
@test "--bind a directory to a new directory below a symlink of the image" {
	bind_workspace
	run_sifu exec --bind "$W/canary:/var/etc/new" "$E2E/sandbox" test -f /etc/new/file
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$W/canary:/var/etc/madness/new" "$E2E/sandbox" test -f /madness/new/file
	[ "$status" -eq 0 ]
}

# actionBinds "NestedBindFile", "NestedBindDir", "MultipleNestedBindDir"
@test "nested binds: a file and directories inside a bound directory" {
	bind_workspace
	run_sifu exec --bind "$W/canary:/canary" --bind "$W/canary/file:/canary/file2" "$E2E/sandbox" test -f /canary/file2
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$W/canary:/canary" --bind "$W/canary:/canary/dir2" "$E2E/sandbox" test -d /canary/dir2
	[ "$status" -eq 0 ]
	run_sifu exec --bind "$W/canary:/canary" --bind "$W/canary:/canary/dir2" \
		--bind "$W/canary/file:/canary/dir2/nested" "$E2E/sandbox" test -f /canary/dir2/nested
	[ "$status" -eq 0 ]
}

# actionBinds "CustomHomeOneToOne", "CustomHomeBind"
@test "--home with a --bind inside the home" {
	bind_workspace
	run_sifu exec --home "$W/home" --bind "$W/canary:$W/home/canary121RO" "$E2E/sandbox" \
		test -f "$W/home/canary121RO/file"
	[ "$status" -eq 0 ]
	run_sifu exec --home "$W/home:/home/e2e" --bind "$W/canary:/home/e2e/canaryRO" "$E2E/sandbox" \
		test -f /home/e2e/canaryRO/file
	[ "$status" -eq 0 ]
}

# actionBinds "CustomHomeBindWritableKO"
@test "--writable: a home destination the sandbox lacks outside /home is refused" {
	bind_workspace
	local sb=$BATS_TEST_TMPDIR/sb
	cp -a "$E2E/sandbox" "$sb"
	run_sifu exec --writable --home "$W/canary:/canary" "$sb" true
	[ "$status" -eq 255 ]
}

# actionBinds "WorkdirTmpBind", "WorkdirVarTmpBind"
@test "--workdir --contain with a bind below /tmp or /var/tmp" {
	bind_workspace
	run_sifu exec --workdir "$W/workdir" --contain --bind "$W/canary:/tmp/canary/dir" "$E2E/sandbox" \
		test -f /tmp/canary/dir/file
	[ "$status" -eq 0 ]
	run_sifu exec --workdir "$W/workdir" --contain --bind "$W/canary:/var/tmp/canary/dir" "$E2E/sandbox" \
		test -f /var/tmp/canary/dir/file
	[ "$status" -eq 0 ]
}

# actionBinds "MountSingle", "MountNested"
@test "--mount: one bind, and a bind nested in another" {
	bind_workspace
	run_sifu exec --mount "type=bind,source=$W/canary/file,destination=/canary/file" "$E2E/sandbox" test -f /canary/file
	[ "$status" -eq 0 ]
	run_sifu exec --mount "type=bind,source=$W/canary,destination=/canary" \
		--mount "source=$W/canary/file,destination=/canary/file3" "$E2E/sandbox" test -f /canary/file3
	[ "$status" -eq 0 ]
}

# user guide "Bind Paths and Mounts": src:dest:ro is read-only
@test "--bind SRC:DST:ro is read-only, :rw writable" {
	bind_workspace
	run_sifu exec --bind "$W/canary:/mnt:ro" "$E2E/e2e.sif" touch /mnt/new
	[ "$status" -ne 0 ]
	[ ! -e "$W/canary/new" ]
	run_sifu exec --bind "$W/canary:/mnt:rw" "$E2E/e2e.sif" touch /mnt/new
	[ "$status" -eq 0 ]
	[ -e "$W/canary/new" ]
}

# e2e/actions/regressions.go: issue6165 - a bind without a destination is
# not added twice
@test "--contain --bind FILE without a destination is mounted once" {
	bind_workspace
	run_sifu exec --contain --bind "$W/canary/file" "$E2E/e2e.sif" test -f "$W/canary/file"
	[ "$status" -eq 0 ]
	[[ "$output" != *"already in the mount point list"* ]]
}

# e2e/actions/regressions.go: issue5599 - APPTAINER_BIND in the container
# lists the destinations of the flag's binds and of the variable's
@test "APPTAINER_BIND in the container: the --bind destinations, then the variable's" {
	bind_workspace
	run env APPTAINER_BIND="$W/canary:/srv" "$SIFU" exec --bind "$W/canary:/mnt" "$E2E/e2e.sif" /usr/bin/env
	[ "$status" -eq 0 ]
	[[ "$output" == *"APPTAINER_BIND=/mnt,/srv"* ]]
}

# e2e/actions/actions.go: actionNoMount "proc" (mount then fails, exit 1),
# "home" (run from /), "home,cwd" (run from the home), "cwd" (run from /srv)
@test "--no-mount proc, home, cwd" {
	local nm want dir code opt
	while read -r nm want dir code; do
		for opt in "" --contain; do
			run bash -c 'cd "$1" && shift && exec "$@"' _ "$dir" "$SIFU" exec $opt --no-mount "$nm" "$E2E/e2e.sif" mount
			[ "$status" -eq "$code" ] || { echo "$nm $opt: $status $output"; false; }
			if grep -q " on $want" <<<"$output"; then
				echo "--no-mount $nm $opt: still mounted on $want"
				false
			fi
		done
	done <<-EOF2
		proc /proc / 1
		home $HOME / 0
		home,cwd $HOME $HOME 0
		cwd /srv /srv 0
	EOF2
}

# ---- the mount tree: --writable, --writable-tmpfs, --no-mount ----
# a private writable copy of the sandbox
sandbox() {
	local d=$BATS_TEST_TMPDIR/sandbox
	cp -a "$IMG/mtree" "$d"
	echo "$d"
}

# Apptainer e2e actions/regressions.go issue5455: "create a directory in a
# root owned directory with others write permissions in conjunction with
# --writable-tmpfs"
@test "--writable-tmpfs: mkdir in a root-owned 0777 directory of the image" {
	run_sifu exec --writable-tmpfs "$IMG/root.sqfs" sh -c 'mkdir /opt/shared/new && touch /opt/shared/new/f && echo made'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = made ]
	# the image's root directory too (e2e issue5271: mkdir /e2e-dir)
	run_sifu exec --writable-tmpfs "$IMG/root.sqfs" mkdir /e2e-dir
	[ "$status" -eq 0 ] || { echo "$output"; false; }
}

# the same on a sandbox whose 0777 directory belongs to an id that the user
# namespace does not map (root can make one; issue5455 uses a sandbox)
@test "--writable-tmpfs: mkdir in a 0777 directory of a sandbox owned by an unmapped id" {
	# needs a directory owned by another user: root only (scripts/test runs
	# every file as root too; a skip would fail CI as a missing feature)
	is_root || return 0
	local d
	d=$(sandbox)
	chown 12345:12345 "$d/opt" "$d/opt/shared"
	run_sifu exec --writable-tmpfs "$d" sh -c 'mkdir /opt/shared/new && echo made && stat -c %a /opt/shared'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "${lines[0]}" = made ]
	[ "${lines[1]}" = 777 ]
	# nothing reached the sandbox itself
	[ ! -e "$d/opt/shared/new" ]
}

# Apptainer's container_linux.go addHomeNoLayer: with --writable there is no
# layer, so the home is staged in a session directory bound over the home's
# top directory (/home), and a home the sandbox lacks still works
@test "--writable: a home directory the sandbox lacks is staged, not refused" {
	local d h=$BATS_TEST_TMPDIR/guesthome
	d=$(sandbox)
	mkdir -p "$h" && echo hello >"$h/greeting"
	[ ! -e "$d/home/guest" ]
	run_sifu exec --writable -H "$h:/home/guest" "$d" sh -c 'cat /home/guest/greeting && touch /home/guest/new && echo "$HOME"'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "${lines[0]}" = hello ]
	[ "${lines[1]}" = /home/guest ]
	[ -e "$h/new" ]
	# nothing was created in the sandbox itself
	[ ! -e "$d/home/guest" ]
	if ! is_root; then
		# the caller's own home, by default
		run_sifu exec --writable "$d" sh -c 'test -d "$HOME" && echo "$HOME"'
		[ "$status" -eq 0 ] || { echo "$output"; false; }
		[ "$output" = "$HOME" ]
	fi
}

# Apptainer e2e actions.go actionBinds SimpleFileWritableKO and
# SimpleDirWritableKO: without a layer a --bind destination missing from the
# sandbox is an error (exit 255), not created
@test "--writable: a --bind destination missing from the sandbox is still an error" {
	local d
	d=$(sandbox)
	run_sifu exec --writable --bind "$IMG/mtree/etc:/canary" "$d" true
	assert_sifu_error
	[ ! -e "$d/canary" ]
}

# Apptainer's addIdentityMount: "skipping bind-mount of /etc/passwd and
# /etc/group (container is writable running as root)", so adduser (which
# writes passwd+ and renames it over passwd) works with --fakeroot --writable
@test "--fakeroot --writable: /etc/passwd and /etc/group are the sandbox's own" {
	local d
	d=$(sandbox)
	run_sifu exec --fakeroot --writable "$d" sh -c '
		for f in passwd group; do cp /etc/$f /etc/$f+ || exit 1; done
		echo "newuser:x:1000:1000::/home/newuser:/bin/sh" >>/etc/passwd+
		echo "newuser:x:1000:" >>/etc/group+
		mv /etc/passwd+ /etc/passwd && mv /etc/group+ /etc/group && echo renamed'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = renamed ]
	grep -q '^newuser:x:1000:1000:' "$d/etc/passwd"
	grep -q '^newuser:x:1000:$' "$d/etc/group"
	# the same with --writable-tmpfs: writes land in the tmpfs
	run_sifu exec --fakeroot --writable-tmpfs "$IMG/root.sqfs" sh -c 'cp /etc/passwd /etc/p+ && mv /etc/p+ /etc/passwd && echo renamed'
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = renamed ]
}

# Apptainer e2e actions.go actionNoMount: "--no-mount X IMAGE mount" exits 0
# and lists no mount on the disabled destination, by default and under
# --contain; /etc/hosts, /etc/localtime, /etc/resolv.conf by absolute path
# and all of them with bind-paths; devpts (only under --contain)
@test "--no-mount: Apptainer's names, absolute paths, bind-paths and devpts" {
	local nm want opt
	while read -r nm want; do
		for opt in "" --contain; do
			# shellcheck disable=SC2086 # $opt is empty or one word
			run_sifu exec $opt --no-mount "$nm" "$IMG/root.sqfs" mount
			[ "$status" -eq 0 ] || { echo "$nm $opt: $output"; false; }
			if grep -q " on $want " <<<"$output"; then
				echo "--no-mount $nm $opt: still mounted on $want: $output"
				false
			fi
		done
	done <<-'EOF2'
		sys /sys
		tmp /tmp
		/etc/hosts /etc/hosts
		/etc/localtime /etc/localtime
		/etc/resolv.conf /etc/resolv.conf
		bind-paths /etc/hosts
		bind-paths /etc/localtime
		bind-paths /etc/resolv.conf
	EOF2
	# devpts: only the minimal /dev of --contain has its own devpts
	run_sifu exec --contain "$IMG/root.sqfs" mount
	[ "$status" -eq 0 ] && grep -q " on /dev/pts " <<<"$output"
	run_sifu exec --contain --no-mount devpts "$IMG/root.sqfs" mount
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run grep -c " on /dev/pts " <<<"$output"
	[ "$output" = 0 ]
}

# e2e/actions/actions.go actionNoMount "dev": with the image's own /dev, whose device nodes do
# not work on the container's nodev root, the command still runs (it was
# refused as "not found" when /dev/null could not be written)
@test "--no-mount dev: the image's /dev, and the command still runs" {
	# the refusal came from the payload's command check in userns/env.c
	# (`>/dev/null` fails with EACCES on the nodev root)
	run_sifu exec --no-mount dev "$IMG/devnull.sqfs" mount
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run grep -c " on /dev" <<<"$output"
	[ "$output" = 0 ]
}

# ---- what the payload inherits: fds, umask, binds from variables ----
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
			"$SIFU" $mode "$IMG/envimg.sqfs" ls /proc/self/fd
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
			run bash -c 'umask "$1"; shift; "$@"' _ "$mask" "$SIFU" exec $mode "$IMG/envimg.sqfs" sh -c umask
			[ "$status" -eq 0 ] || { echo "$mode: $output" >&2; return 1; }
			[ "$output" = "$mask" ] || { echo "$mode: umask $output, want $mask" >&2; return 1; }
		done
	done
	run bash -c 'umask 0027; echo umask | "$1" shell --fakeroot "$2"' _ "$SIFU" "$IMG/envimg.sqfs"
	[ "$status" -eq 0 ]
	[ "$output" = 0027 ]
}

# Apptainer's --bind and --mount flags take their variables with
# EnvAppendValue (cmd/internal/cli/action_flags.go): the command line's
# specs, then APPTAINER_BIND, then APPTAINER_BINDPATH; SINGULARITY_BIND only
# where APPTAINER_BIND is unset.  User guide "Bind Paths and Mounts": "the
# environment variable $APPTAINER_BIND ... in addition to --bind".
@test "APPTAINER_BIND together with --bind: both apply" {
	run env APPTAINER_BIND="$IMG/b1:/mnt/one" "$SIFU" exec -B "$IMG/b2:/mnt/two" "$IMG/envimg.sqfs" \
		ls /mnt/one /mnt/two
	[ "$status" -eq 0 ]
	[[ "$output" == *one* && "$output" == *two* ]]
	run env APPTAINER_BIND="$IMG/b1:/mnt/one" APPTAINER_BINDPATH="$IMG/b3:/mnt/three" \
		"$SIFU" exec -B "$IMG/b2:/mnt/two" "$IMG/envimg.sqfs" ls /mnt/one /mnt/two /mnt/three
	[ "$status" -eq 0 ]
	[[ "$output" == *three* ]]
	run env SINGULARITY_BIND="$IMG/b1:/mnt/one" "$SIFU" exec -B "$IMG/b2:/mnt/two" "$IMG/envimg.sqfs" \
		ls /mnt/one /mnt/two
	[ "$status" -eq 0 ]
	[[ "$output" == *one* && "$output" == *two* ]]
	run env APPTAINER_MOUNT="type=bind,source=$IMG/b1,destination=/mnt/one" \
		"$SIFU" exec --mount "type=bind,source=$IMG/b2,destination=/mnt/two" "$IMG/envimg.sqfs" \
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
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/ov" --writable-tmpfs "$IMG/envimg.sqfs" true
	assert_sifu_error
	[[ "$output" == *"you can't specify --writable-tmpfs with another writable overlay image ($BATS_TEST_TMPDIR/ov)"* ]]
	# as the e2e sequence: overlay_create first, then the :ro find
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/ov" "$IMG/envimg.sqfs" touch /dir_overlay
	[ "$status" -eq 0 ]
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/ov:ro" --writable-tmpfs "$IMG/envimg.sqfs" \
		sh -c 'test -f /dir_overlay && touch /x && echo ok'
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
	[ ! -e "$BATS_TEST_TMPDIR/ov/upper/x" ]
}

# ---- action flags: --cwd, --no-umask, --no-eval, --no-pid ----
# e2e actions/actions.go STDPipe "CwdPath": exec --cwd /etc IMAGE pwd
# prints /etc; --cwd is a synonym of --pwd (cwdPath in action_flags.go),
# with the variables APPTAINER_CWD and APPTAINER_TARGET_CWD.
@test "--cwd sets the payload's working directory, as --pwd does" {
	run_sifu exec --cwd /etc "$IMG/plain.sqfs" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /etc ]
	# the last of --pwd and --cwd wins, as they share one value
	run_sifu exec --pwd /bin --cwd /etc "$IMG/plain.sqfs" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /etc ]
	run env APPTAINER_CWD=/etc "$SIFU" exec "$IMG/plain.sqfs" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /etc ]
	run env APPTAINER_TARGET_CWD=/etc "$SIFU" exec "$IMG/plain.sqfs" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /etc ]
	# the command line beats a variable for the other name
	run env APPTAINER_CWD=/etc "$SIFU" exec --pwd /bin "$IMG/plain.sqfs" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /bin ]
}

# e2e actions/actions.go actionUmask: under umask 0000, exec ... umask
# prints 0000, and with --no-umask 0022 (launcher_linux.go setUmask).
@test "--no-umask runs the payload under umask 0022" {
	run sh -c 'umask 0000; exec "$SIFU" exec "$1" sh -c umask' sh "$IMG/plain.sqfs"
	[ "$status" -eq 0 ]
	[ "$output" = 0000 ]
	run sh -c 'umask 0000; exec "$SIFU" exec --no-umask "$1" sh -c umask' sh "$IMG/plain.sqfs"
	[ "$status" -eq 0 ]
	[ "$output" = 0022 ]
	run sh -c 'umask 0077; APPTAINER_NO_UMASK=1 exec "$SIFU" exec "$1" sh -c umask' sh "$IMG/plain.sqfs"
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
	for i in plain.sqfs envimg.sqfs; do
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
	run_sifu exec --containall --no-init "$IMG/plain.sqfs" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" = 1 ]
	run_sifu exec --containall --no-init --no-pid "$IMG/plain.sqfs" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" != 1 ]
	run_sifu exec --pid --no-init --no-pid "$IMG/plain.sqfs" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" != 1 ]
	run env APPTAINER_NO_PID=1 "$SIFU" exec --containall --no-init "$IMG/plain.sqfs" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" != 1 ]
}

# ---- environment (e2e/env/env.go, e2e/env/regressions.go) ----
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

DEFPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CUSTOMPATH=$DEFPATH:/go/bin:/usr/local/go/bin

# e2e/env/env.go: apptainerEnv "DefaultPath", "CustomPath"
@test "PATH: Apptainer's default in an image without one, the image's own otherwise" {
	run_sifu exec "$E2E/busybox.sqfs" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "$DEFPATH" ]
	run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "$CUSTOMPATH" ]
	# the host's PATH is not passed in
	PATH=/host/bin:$PATH run_sifu exec "$E2E/busybox.sqfs" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "$DEFPATH" ]
}

# e2e/env/env.go: apptainerEnv "AppendToDefaultPath", "AppendToCustomPath",
# "PrependToDefaultPath", "PrependToCustomPath"
@test "APPTAINERENV_APPEND_PATH and APPTAINERENV_PREPEND_PATH" {
	APPTAINERENV_APPEND_PATH=/foo run_sifu exec "$E2E/busybox.sqfs" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "$DEFPATH:/foo" ]
	APPTAINERENV_APPEND_PATH=/foo run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "$CUSTOMPATH:/foo" ]
	APPTAINERENV_PREPEND_PATH=/foo run_sifu exec "$E2E/busybox.sqfs" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "/foo:$DEFPATH" ]
	APPTAINERENV_PREPEND_PATH=/foo run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "/foo:$CUSTOMPATH" ]
}

# e2e/env/env.go: apptainerEnv "OverwriteDefaultPath", "OverwriteCustomPath",
# "OverwriteTrailingCommaPath"
@test "APPTAINERENV_PATH replaces the PATH, a trailing comma kept" {
	APPTAINERENV_PATH=/usr/bin:/bin run_sifu exec "$E2E/busybox.sqfs" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = /usr/bin:/bin ]
	APPTAINERENV_PATH=/usr/bin:/bin run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = /usr/bin:/bin ]
	APPTAINERENV_PATH=/usr/bin:/bin, run_sifu exec "$E2E/busybox.sqfs" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = /usr/bin:/bin, ]
}

# e2e/env/env.go: apptainerEnvOption "DefaultPathOverride",
# "AppendDefaultPath", "PrependDefaultPath", "DefaultPathTestImageOverride",
# "AppendDefaultPathTestImage", "PrependDefaultPathTestImage"
@test "--env PATH=, APPEND_PATH=, PREPEND_PATH=" {
	local img base
	for img in busybox.sqfs e2e.sif; do
		base=$DEFPATH
		[ "$img" = e2e.sif ] && base=$CUSTOMPATH
		run_sifu exec --env PATH=/ "$E2E/$img" /bin/sh -c 'echo "${PATH}"'
		[ "$status" -eq 0 ] && [ "$output" = / ]
		run_sifu exec --env APPEND_PATH=/foo "$E2E/$img" /bin/sh -c 'echo "${PATH}"'
		[ "$status" -eq 0 ] && [ "$output" = "$base:/foo" ]
		run_sifu exec --env PREPEND_PATH=/foo "$E2E/$img" /bin/sh -c 'echo "${PATH}"'
		[ "$status" -eq 0 ] && [ "$output" = "/foo:$base" ]
	done
}

# e2e/env/env.go: apptainerEnvOption "AppendLiteralDefaultPathTestImage",
# "PrependLiteralDefaultPathTestImage"
@test "--env 'PATH=\$PATH:/foo' and 'PATH=/foo:\$PATH' extend the image's PATH" {
	run_sifu exec --env 'PATH=$PATH:/foo' "$E2E/e2e.sif" /bin/sh -c 'echo "${PATH}"'
	[ "$status" -eq 0 ] && [ "$output" = "$CUSTOMPATH:/foo" ]
	run_sifu exec --env 'PATH=/foo:$PATH' "$E2E/e2e.sif" /bin/sh -c 'echo "${PATH}"'
	[ "$status" -eq 0 ] && [ "$output" = "/foo:$CUSTOMPATH" ]
}

# e2e/env/env.go: apptainerEnvOption "TestImageCgoEnabledDefault",
# "TestImageCgoEnabledOverride", "TestImageCgoEnabledOverride_KO",
# "TestImageCgoEnabledOverrideFromEnv",
# "TestImageCgoEnabledOverrideEnvOptionPrecedence", "TestImageCgoEnabledOverrideEmpty"
@test "an image's %environment value: --env and APPTAINERENV_ override it, the host's does not" {
	local q='echo "${CGO_ENABLED}"'
	run_sifu exec "$E2E/e2e.sif" /bin/sh -c "$q"
	[ "$status" -eq 0 ] && [ "$output" = 0 ]
	run_sifu exec --env CGO_ENABLED=1 "$E2E/e2e.sif" /bin/sh -c "$q"
	[ "$status" -eq 0 ] && [ "$output" = 1 ]
	CGO_ENABLED=1 run_sifu exec "$E2E/e2e.sif" /bin/sh -c "$q"
	[ "$status" -eq 0 ] && [ "$output" = 0 ]
	APPTAINERENV_CGO_ENABLED=1 run_sifu exec "$E2E/e2e.sif" /bin/sh -c "$q"
	[ "$status" -eq 0 ] && [ "$output" = 1 ]
	APPTAINERENV_CGO_ENABLED=1 run_sifu exec --env CGO_ENABLED=2 "$E2E/e2e.sif" /bin/sh -c "$q"
	[ "$status" -eq 0 ] && [ "$output" = 2 ]
	run_sifu exec --env CGO_ENABLED= "$E2E/e2e.sif" /bin/sh -c "$q"
	[ "$status" -eq 0 ] && [ "$output" = "" ]
}

# e2e/env/env.go: apptainerEnvOption "TestImageOverrideHost"
@test "--env beats the host's value of the same variable" {
	FOO=bar run_sifu exec --env FOO=foo "$E2E/e2e.sif" /bin/sh -c 'echo "${FOO}"'
	[ "$status" -eq 0 ] && [ "$output" = foo ]
	# and the host's value is passed in without --env
	FOO=bar run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo "${FOO}"'
	[ "$status" -eq 0 ] && [ "$output" = bar ]
}

# e2e/env/env.go: apptainerEnvOption "TestMultiLine", "TestEscapedNewline"
@test "host values with a newline or a backslash-n arrive unchanged" {
	MULTI=$'Hello\nWorld' run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo "${MULTI}"'
	[ "$status" -eq 0 ] && [ "$output" = $'Hello\nWorld' ]
	ESCAPED='Hello\nWorld' run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo "${ESCAPED}"'
	[ "$status" -eq 0 ] && [ "$output" = 'Hello\nWorld' ]
}

# e2e/env/env.go: apptainerEnvOption "TestInvalidKey"
@test "a host variable with an invalid name is dropped without an error" {
	run env 'BASH_FUNC_ml%%=TEST' "$SIFU" exec "$E2E/e2e.sif" /bin/sh -c 'env | grep -c BASH_FUNC || true'
	[ "$status" -eq 0 ]
	[ "$output" = 0 ]
}

# e2e/env/env.go: apptainerEnvFile "DefaultPathOverride",
# "DefaultPathOverrideEnvOptionPrecedence", "AppendDefaultPath", "PrependDefaultPath"
@test "--env-file: PATH=, APPEND_PATH=, PREPEND_PATH=, and --env wins over it" {
	local f=$BATS_TEST_TMPDIR/env.file
	echo 'PATH=/' >"$f"
	run_sifu exec --env-file "$f" "$E2E/e2e.sif" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = / ]
	run_sifu exec --env PATH=/etc --env-file "$f" "$E2E/e2e.sif" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = /etc ]
	echo 'APPEND_PATH=/' >"$f"
	run_sifu exec --env-file "$f" "$E2E/e2e.sif" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "$CUSTOMPATH:/" ]
	echo 'PREPEND_PATH=/' >"$f"
	run_sifu exec --env-file "$f" "$E2E/e2e.sif" /bin/sh -c 'echo $PATH'
	[ "$status" -eq 0 ] && [ "$output" = "/:$CUSTOMPATH" ]
}

# e2e/env/env.go: apptainerEnvFile "DefaultLdLibraryPath", "CustomLdLibraryPath"
# (on an image sifu built: no ldconfig, no 99-base.sh)
@test "LD_LIBRARY_PATH in a built image: /.singularity.d/libs, after an env-file value" {
	run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo $LD_LIBRARY_PATH'
	[ "$status" -eq 0 ] && [ "$output" = /.singularity.d/libs ]
	echo 'LD_LIBRARY_PATH=/foo' >"$BATS_TEST_TMPDIR/ld"
	run_sifu exec --env-file "$BATS_TEST_TMPDIR/ld" "$E2E/e2e.sif" /bin/sh -c 'echo $LD_LIBRARY_PATH'
	[ "$status" -eq 0 ] && [ "$output" = /foo:/.singularity.d/libs ]
}

# internal/pkg/util/env/create.go alwaysOmitKeys (Apptainer's "Overriding HOME
# environment variable with APPTAINERENV_HOME is not permitted"): HOME stays
# the mounted home, whatever APPTAINERENV_, --env or --env-file say
@test "APPTAINERENV_HOME, --env HOME= and --env-file HOME= do not move HOME" {
	local want=$HOME
	APPTAINERENV_HOME=/foo run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo $HOME'
	[ "$status" -eq 0 ] && [ "${lines[-1]}" = "$want" ]
	[[ "$output" == *"Overriding HOME environment variable with APPTAINERENV_HOME is not permitted"* ]]
	run_sifu exec --env HOME=/foo "$E2E/e2e.sif" /bin/sh -c 'echo $HOME'
	[ "$status" -eq 0 ] && [ "${lines[-1]}" = "$want" ]
	[[ "$output" == *"Overriding HOME environment variable with --env is not permitted"* ]]
	echo HOME=/foo >"$BATS_TEST_TMPDIR/env.file"
	run_sifu exec --env-file "$BATS_TEST_TMPDIR/env.file" "$E2E/e2e.sif" /bin/sh -c 'echo $HOME'
	[ "$status" -eq 0 ] && [ "${lines[-1]}" = "$want" ]
	# --home is the way to move it
	run_sifu exec --home "$BATS_TEST_TMPDIR:/foo" "$E2E/e2e.sif" /bin/sh -c 'echo $HOME'
	[ "$status" -eq 0 ] && [ "$output" = /foo ]
}

# user guide "Environment and Metadata": SINGULARITYENV_ is read too, and
# APPTAINERENV_ wins when both set a variable
@test "SINGULARITYENV_ values, and APPTAINERENV_ wins over them" {
	SINGULARITYENV_FOO=old run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo $FOO'
	[ "$status" -eq 0 ] && [ "$output" = old ]
	SINGULARITYENV_FOO=old APPTAINERENV_FOO=new run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo $FOO'
	[ "$status" -eq 0 ] && [ "$output" = new ]
}

# user guide "Environment and Metadata": --cleanenv drops the host's
# variables; APPTAINERENV_ and --env still apply
@test "--cleanenv: no host variables, APPTAINERENV_ and --env still set" {
	FOO=bar APPTAINERENV_BAZ=1 run_sifu exec --cleanenv --env QUX=2 "$E2E/e2e.sif" \
		/bin/sh -c 'echo "${FOO-unset} $BAZ $QUX $AVENGERS"'
	[ "$status" -eq 0 ]
	[ "$output" = "unset 1 2 assemble" ]
}

# internal/pkg/util/env/create.go SetContainerEnv: --cleanenv keeps TERM
# (alwaysPassKeys) and sets LANG=C
@test "--cleanenv keeps TERM and sets LANG=C" {
	TERM=xterm-sifu LANG=de_DE.UTF-8 run_sifu exec --cleanenv "$E2E/e2e.sif" /bin/sh -c 'echo "$TERM $LANG"'
	[ "$status" -eq 0 ] && [ "$output" = "xterm-sifu C" ]
}

# user guide "Environment and Metadata": APPTAINER_CONTAINER, APPTAINER_NAME
@test "APPTAINER_CONTAINER and APPTAINER_NAME name the image" {
	run_sifu exec "$E2E/e2e.sif" /bin/sh -c 'echo "$APPTAINER_CONTAINER $APPTAINER_NAME"'
	[ "$status" -eq 0 ]
	[ "$output" = "$E2E/e2e.sif e2e.sif" ]
}

# ---- inspect (e2e/inspect/inspect.go) ----
# A SIF as Apptainer writes it: Def.FILE, the inspect-metadata.json object
# in Apptainer's layout (pkg/inspect.Metadata: {"data":{"attributes":{…}},
# "type":"container"}, json.Marshal'ed compactly by insertJSONInspectMetadata,
# values with their trailing newlines trimmed), then the root file system.
make_apptainer_sif() {
	printf 'bootstrap: localimage\nfrom: base.sif\n' >"$D/app.def"
	cat >"$D/meta.json" <<'JSON'
{"data":{"attributes":{"environment":{"/.singularity.d/env/90-environment.sh":"#!/bin/sh\n# Custom environment shell code should follow\n\n\nexport test=\"testing\"\nexport e2e=\"e2e testing\"","/.singularity.d/env/91-environment.sh":"export hello=\"world\""},"labels":{"E2E":"AWESOME","HI":"\"HELLO WORLD\"","org.label-schema.usage.apptainer.runscript.help":"/.singularity.d/runscript.help"},"runscript":"#!/bin/sh\n\ncat /.singularity.d/runscript.help","test":"#!/bin/sh\n\nls /\ntest -d /\ntest -d /etc","helpfile":"This is a e2e test container used for testing the 'inspect'\ncommand.","deffile":"bootstrap: localimage\nfrom: base.sif","startscript":"#!/bin/sh\n\nexec \"$@\""}},"type":"container"}
JSON
	"$SIFU" sif new "$1"
	"$SIFU" sif add "$1" "$D/app.def" --datatype 1 --groupid 1
	"$SIFU" sif add "$1" "$D/meta.json" --datatype 6 --groupid 1 --filename inspect-metadata.json
	"$SIFU" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$1" "$D/img.sqfs"
}

# e2e/inspect apptainerInspect: label, runscript, startscript, test,
# helpfile and environment of a SIF built by Apptainer
@test "inspect reads the inspect-metadata.json that Apptainer writes" {
	make_apptainer_sif "$D/app.sif"
	run_sifu inspect "$D/app.sif"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "${lines[0]}" = "E2E: AWESOME" ]
	[ "${lines[1]}" = 'HI: "HELLO WORLD"' ]
	"$SIFU" inspect --runscript "$D/app.sif" >got
	printf '#!/bin/sh\n\ncat /.singularity.d/runscript.help\n' >exp
	cmp exp got
	"$SIFU" inspect --startscript "$D/app.sif" >got
	printf '#!/bin/sh\n\nexec "$@"\n' >exp
	cmp exp got
	run_sifu inspect --json --test --helpfile --environment "$D/app.sif"
	[ "$status" -eq 0 ]
	printf '%s' "$output" >all.json
	[ "$(jq -r .data.attributes.test all.json)" = "$(printf '#!/bin/sh\n\nls /\ntest -d /\ntest -d /etc')" ]
	[ "$(jq -r .data.attributes.helpfile all.json)" = "$(printf "This is a e2e test container used for testing the 'inspect'\ncommand.")" ]
	[ "$(jq -r '.data.attributes.environment."/.singularity.d/env/91-environment.sh"' all.json)" = 'export hello="world"' ]
}

# cmd/internal/cli/inspect.go: `--json` prints inspect.Metadata,
# {"data":{"attributes":…},"type":"container"}, MarshalIndent with tabs
@test "inspect --json prints Apptainer's layout: type beside data, not in it" {
	make_apptainer_sif "$D/app2.sif"
	"$SIFU" inspect --json "$D/app2.sif" >out.json
	[ "$(jq -r .type out.json)" = container ]
	[ "$(jq -c '.data | keys' out.json)" = '["attributes"]' ]
	[ "$(jq -c '.data.attributes | keys' out.json)" = '["labels"]' ]
	[ "$(jq -r '.data.attributes.labels.E2E' out.json)" = AWESOME ]
	grep -q "^	\"type\": \"container\"" out.json
	[ "$(head -c 1 out.json)" = '{' ]
	[ "$(tail -n 1 out.json)" = '}' ]
}

# e2e/inspect apptainerInspect inspects the unsquashed sandbox and the bare
# SquashFS of the same image; the environment shows 10-docker*.sh and
# 9*-environment.sh only (addEnvironmentCommand's globs)
@test "inspect of a sandbox directory and of a bare SquashFS" {
	for img in "$D/sandbox" "$D/img.sqfs"; do
		run_sifu inspect "$img"
		[ "$status" -eq 0 ] || { echo "$img: $output"; false; }
		[ "${lines[0]}" = "E2E: AWESOME" ]
		"$SIFU" inspect --runscript "$img" >got
		printf '#!/bin/sh\n\ncat /.singularity.d/runscript.help\n' >exp
		cmp exp got
		"$SIFU" inspect --helpfile "$img" >got
		printf 'This is a e2e test container\nused for inspect.\n' >exp
		cmp exp got
		"$SIFU" inspect --all "$img" >all.json
		[ "$(jq -r '.data.attributes.environment."/.singularity.d/env/90-environment.sh"' all.json)" = "$(printf '#!/bin/sh\n# Custom environment shell code should follow\n\n\nexport test="testing"')" ]
		[ "$(jq -r '.data.attributes.environment | keys | join(",")' all.json)" = "/.singularity.d/env/90-environment.sh,/.singularity.d/env/91-environment.sh" ]
		[ "$(jq -r .data.attributes.deffile all.json)" = "$(cat "$D/root/.singularity.d/Singularity")" ]
		[ "$(jq -r .data.attributes.startscript all.json)" = "$(printf '#!/bin/sh\n\nexec "$@"')" ]
	done
}

# internal/pkg/build/metadata.go: what `build` writes (scripts, help, the
# 90-environment.sh header, the runscript.help labels, the definition as
# written) and the inspect-metadata.json object in Apptainer's layout
@test "build writes the metadata Apptainer writes, and inspect shows it as Apptainer" {
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
	cd "$BATS_TEST_TMPDIR"
	cat >b.def <<'DEF'
Bootstrap: busybox
# a comment Apptainer keeps in the stored definition

%help
    This is the help.

%environment
    export test="testing"

%runscript
    cat /.singularity.d/runscript.help

%startscript
    exec "$@"

%test
    test -d /
DEF
	"$SIFU" -q build b.sif b.def
	"$SIFU" inspect --runscript b.sif >got
	printf '#!/bin/sh\n\n    cat /.singularity.d/runscript.help\n' >exp
	diff -u exp got
	"$SIFU" inspect --startscript b.sif >got
	printf '#!/bin/sh\n\n    exec "$@"\n' >exp
	diff -u exp got
	"$SIFU" inspect --test b.sif >got
	printf '#!/bin/sh\n\n    test -d /\n' >exp
	diff -u exp got
	"$SIFU" inspect --helpfile b.sif >got
	printf '    This is the help.\n' >exp
	diff -u exp got
	# the definition as written, comment included (not re-serialized)
	"$SIFU" inspect --deffile b.sif >got
	diff -u b.def got
	"$SIFU" exec b.sif cat /.singularity.d/Singularity >got
	cmp b.def got
	run_sifu inspect b.sif
	[[ "$output" == *"org.label-schema.usage.apptainer.runscript.help: /.singularity.d/runscript.help"* ]]
	[[ "$output" == *"org.label-schema.usage: /.singularity.d/runscript.help"* ]]
	"$SIFU" inspect --environment --json b.sif >env.json
	[ "$(jq -r '.data.attributes.environment."/.singularity.d/env/90-environment.sh"' env.json)" = "$(printf '#!/bin/sh\n# Custom environment shell code should follow\n\n\n    export test="testing"')" ]
	# the stored object: Apptainer's layout, read by Apptainer's decoder
	id=$("$SIFU" sif list b.sif | awk -F'|' '/JSON.Generic/ {gsub(/ /,"",$1); print $1}')
	"$SIFU" sif dump "$id" b.sif >meta.json
	[ "$(jq -r .type meta.json)" = container ]
	[ "$(jq -r 'has("attributes")' meta.json)" = false ]
	[ "$(jq -r .data.attributes.runscript meta.json)" = "$(printf '#!/bin/sh\n\n    cat /.singularity.d/runscript.help')" ]
	[ "$(jq -r .data.attributes.deffile meta.json)" = "$(cat b.def)" ]
	[ "$(jq -c '.data.attributes | keys_unsorted' meta.json)" = '["environment","labels","runscript","test","helpfile","deffile","startscript"]' ]
}

# cmd/internal/cli/inspect.go: a path that cannot be opened is fatal (exit 255);
# the message is sifu's own (docs/cli.md "Differences from Apptainer")
@test "inspect of a missing path: one line that says what inspect reads, exit 255" {
	run_sifu inspect "$D/no-such-image.sif"
	[ "$status" -eq 255 ]
	[ "$(message_count)" -eq 1 ]
	[[ "$output" == *"cannot open $D/no-such-image.sif"* ]]
	[[ "$output" == *"SIF image, a sandbox directory or a SquashFS file"* ]]
}

# e2e/inspect/inspect.go: "label maintainer", "label_E2E", "label_HI",
# "label_e2e", "label_hi", "build_label_first", "build_label_second",
# "label_org.label-schema.usage",
# "label_org.label-schema.usage.apptainer.runscript.help"
@test "inspect --labels of the inspect test image, %post labels included" {
	"$SIFU" inspect --labels --json "$E2E/inspector.sif" >l.json
	local k v
	while IFS='|' read -r k v; do
		[ "$(jq -r --arg k "$k" '.data.attributes.labels[$k]' l.json)" = "$v" ] || {
			echo "$k: $(jq -r --arg k "$k" '.data.attributes.labels[$k]' l.json), want $v"; false; }
	done <<-'EOF2'
		MAINTAINER|"WestleyK <westley@sylabs.io>"
		E2E|AWESOME
		HI|"HELLO WORLD"
		e2e|awesome
		hi|"hello world"
		first.build.labels|first
		second.build.labels|second
		org.label-schema.usage|/.singularity.d/runscript.help
		org.label-schema.usage.apptainer.runscript.help|/.singularity.d/runscript.help
	EOF2
}

# e2e/inspect/inspect.go: "label_org.label-schema.usage.singularity.deffile.bootstrap"
@test "inspect: the deffile.bootstrap label names the bootstrap agent" {
	run_sifu inspect --labels "$E2E/inspector.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"org.label-schema.usage.singularity.deffile.bootstrap: busybox"* ]]
}

# e2e/inspect/inspect.go: "deffile", "test", "helpfile"
@test "inspect --deffile, --test, --helpfile of the inspect test image" {
	"$SIFU" inspect --deffile "$E2E/inspector.sif" >got
	diff -u "$E2E/inspector.def" got
	run_sifu inspect --test "$E2E/inspector.sif"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '#!/bin/sh\n\nls /\ntest -d /\ntest -d /etc')" ]
	run_sifu inspect --helpfile "$E2E/inspector.sif"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "This is a e2e test container used for testing the 'inspect'" ]]
}

# e2e/inspect/inspect.go: "environment": %environment in 90-environment.sh,
# what %post appended to $APPTAINER_ENVIRONMENT in 91-environment.sh
@test "inspect --environment: 90-environment.sh and %post's 91-environment.sh" {
	"$SIFU" inspect --environment --json "$E2E/inspector.sif" >e.json
	[[ "$(jq -r '.data.attributes.environment."/.singularity.d/env/90-environment.sh"' e.json)" == *'export e2e="e2e testing"'* ]]
	[ "$(jq -r '.data.attributes.environment."/.singularity.d/env/91-environment.sh"' e.json)" = 'export hello="world"' ]
	run_sifu exec "$E2E/inspector.sif" /bin/sh -c 'echo "$test|$e2e|$hello"'
	[ "$status" -eq 0 ] && [ "$output" = "testing|e2e testing|world" ]
}

# cmd/internal/cli/inspect.go (InspectCmd): labels sorted by key as
# "KEY: VALUE"; each environment file as "=== PATH ===", its text, a blank
# line; several sections in its order (runscript, helpfile, labels)
@test "inspect's text output: Apptainer's order and layout" {
	"$SIFU" inspect "$E2E/inspector.sif" >labels
	sed 's/:.*//' labels >keys
	LC_ALL=C sort -c keys
	grep -qx 'E2E: AWESOME' labels
	"$SIFU" inspect --environment "$E2E/inspector.sif" >env
	[ "$(grep -c '^=== /.singularity.d/env/9[01]-environment.sh ===$' env)" = 2 ]
	[ "$(head -n 1 env)" = "=== /.singularity.d/env/90-environment.sh ===" ]
	[ "$(tail -n 3 env | head -n 2)" = "$(printf '=== /.singularity.d/env/91-environment.sh ===\nexport hello="world"')" ]
	[ -z "$(tail -n 1 env)" ]
	"$SIFU" inspect --labels --helpfile --test "$E2E/inspector.sif" >all
	[ "$(head -n 1 all)" = '#!/bin/sh' ]
	grep -n '^This is a e2e test container' all | grep -q '^6:'
	[ "$(tail -n "$(wc -l <labels)" all)" = "$(cat labels)" ]
}

# e2e/inspect/inspect.go: the same answers from the SIF, its sandbox and its
# bare SquashFS ("runscript", "startscript")
@test "inspect --runscript and --startscript: the SIF and its sandbox agree" {
	local a b
	a=$("$SIFU" inspect --runscript "$E2E/e2e.sif")
	b=$("$SIFU" inspect --runscript "$E2E/sandbox")
	[ "$a" = "$b" ]
	[[ "$a" == *'echo "Running command: $*"'* ]]
	a=$("$SIFU" inspect --startscript "$E2E/e2e.sif")
	b=$("$SIFU" inspect --startscript "$E2E/sandbox")
	[ "$a" = "$b" ]
	[[ "$a" == *'exec "$@"'* ]]
}

# ---- security and namespaces (e2e/security/security.go, user guide) ----
# e2e/security/security.go: testSecurityUnpriv "capabilities_keep-false"
@test "an unprivileged payload has no effective capabilities" {
	is_root && return 0
	run_sifu exec "$E2E/e2e.sif" grep '^CapEff:' /proc/self/status
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^CapEff:[[:space:]]+0+$ ]]
}

# user guide "Fakeroot feature": --fakeroot is uid 0 with its capabilities
# inside its user namespace
@test "--fakeroot: uid and gid 0" {
	run_sifu exec --fakeroot "$E2E/e2e.sif" sh -c 'echo $(id -u):$(id -g)'
	[ "$status" -eq 0 ] && [ "$output" = 0:0 ]
}

# user guide "Persistent Overlays": with --writable-tmpfs changes are lost
# when the container exits
@test "--writable-tmpfs: writes work and do not persist" {
	run_sifu exec --writable-tmpfs "$E2E/e2e.sif" sh -c 'echo x >/etc/new && cat /etc/new'
	[ "$status" -eq 0 ] && [ "$output" = x ]
	run_sifu exec "$E2E/e2e.sif" test -e /etc/new
	[ "$status" -eq 1 ]
	# and without it the image is read-only
	run_sifu exec "$E2E/e2e.sif" touch /etc/new
	[ "$status" -ne 0 ]
}

# e2e/actions/actions.go: actionShell "ShellHostname": the host's name by
# default; user guide "Namespace options": --hostname in a UTS namespace
@test "hostname: the host's, or the one --hostname sets" {
	run_sifu exec "$E2E/e2e.sif" hostname
	[ "$status" -eq 0 ] && [ "$output" = "$(hostname)" ]
	run_sifu exec --hostname sifu-compat "$E2E/e2e.sif" hostname
	[ "$status" -eq 0 ] && [ "$output" = sifu-compat ]
}

# e2e/actions/actions.go: actionExec "ContainAllPID" (--pid alone)
@test "--pid --no-init: the payload is PID 1" {
	run_sifu exec --pid --no-init "$E2E/e2e.sif" sh -c 'echo $$'
	[ "$status" -eq 0 ] && [ "$output" = 1 ]
}

# e2e/actions/actions.go: actionBinds conversion, build --sandbox DIR IMAGE
@test "a sandbox made from the SIF runs as the SIF does" {
	run_sifu run "$E2E/sandbox" echo hi
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "Running command: echo hi" ]
	[ "${lines[1]}" = hi ]
}
