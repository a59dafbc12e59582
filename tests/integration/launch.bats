#!/usr/bin/env bats
# The unprivileged launcher: exec, run, shell, test and ./image.sif, against
# images this file builds itself (a busybox tree with a /.singularity.d
# layout, as a sandbox directory, a bare SquashFS and a SIF; one with no
# /bin/sh).  Runs as root and as the unprivileged user sifu-test.
#
# Examples marked "Apptainer docs" reproduce the documented commands and
# output of Apptainer's user guide (adapted to paths this test owns):
#   [B] https://apptainer.org/docs/user/main/bind_paths_and_mounts.html
#   [E] https://apptainer.org/docs/user/main/environment_and_metadata.html
load helpers

setup_file() {
	export IMG=$BATS_FILE_TMPDIR
	local t=$IMG/tree a
	busybox_tree "$t"
	mkdir -p "$t/.singularity.d/env"
	ln -s bin "$t/sbin"
	mkdir -p "$t/usr" && ln -s ../bin "$t/usr/bin"
	printf 'root:x:0:0:root:/root:/bin/sh\nimguser:x:4242:4242::/home/imguser:/bin/sh\n' >"$t/etc/passwd"
	printf 'root:x:0:\nimggroup:x:4242:\n' >"$t/etc/group"
	# [E] "Environment from a definition file": %environment export MYVAR="Hello"
	printf 'export MYVAR="Hello"\nexport IMGONLY=image\n' >"$t/.singularity.d/env/90-environment.sh"
	printf '#!/bin/sh\necho $MYVAR\n[ $# -gt 0 ] && echo "args: $*"\nexit 0\n' >"$t/.singularity.d/runscript"
	printf '#!/bin/sh\necho "testing $1"\nexit ${1:-0}\n' >"$t/.singularity.d/test"
	chmod 755 "$t/.singularity.d/runscript" "$t/.singularity.d/test"
	printf '{"org.label-schema.schema-version":"1.0"}\n' >"$t/.singularity.d/labels.json"
	chmod -R a+rX "$t"
	mksquashfs "$t" "$IMG/env.sqfs" -noappend -quiet >/dev/null
	siftool new "$IMG/env.sif" >/dev/null
	siftool add "$IMG/env.sif" "$IMG/env.sqfs" --datatype 4 --partarch 2 --partfs 1 \
		--parttype 2 --groupid 1 >/dev/null
	# the launch line Apptainer writes into the SIF header's first 32 bytes
	printf '#!/usr/bin/env run-singularity\n' | dd of="$IMG/env.sif" conv=notrunc status=none
	chmod 755 "$IMG/env.sif"
	# an image with no shell at all (busybox reachable only as echo/cat/id)
	local n=$IMG/nosh
	mkdir -p "$n/bin" "$n/.singularity.d/env"
	cp /usr/bin/busybox "$n/bin/busybox"
	for a in echo cat id ls; do ln -s busybox "$n/bin/$a"; done
	printf 'export NOSH=1\n' >"$n/.singularity.d/env/90-environment.sh"
	mksquashfs "$n" "$IMG/nosh.sqfs" -noappend -quiet >/dev/null
	mkdir -p "$IMG/data" && touch "$IMG/data/bar" "$IMG/data/foo"
	mkdir -p "$IMG/opt" && touch "$IMG/opt/optfile"
}

img() { echo "$IMG/env.sqfs"; }

no_sifu_left() {
	# no process of sifu (or of its payload) may remain
	if pgrep -u "$(id -u)" -f "$IMG"; then return 1; fi
}

@test "exec: the caller's ids inside; the image's passwd and group with the user's entries" {
	for image in "$IMG/env.sqfs" "$IMG/env.sif" "$IMG/tree"; do
		run_sifu exec "$image" id -u
		[ "$status" -eq 0 ]
		[ "$output" = "$(id -u)" ]
		run_sifu exec "$image" id -g
		[ "$output" = "$(id -g)" ]
		run_sifu exec "$image" cat /etc/passwd
		echo "$output" | grep -q '^imguser:x:4242:4242:'
		echo "$output" | grep -q "^$(id -un):x:$(id -u):$(id -g):"
		run_sifu exec "$image" cat /etc/group
		echo "$output" | grep -q "^$(id -gn):x:$(id -g):$(id -un)\$"
	done
}

@test "the image is read-only: touch /x fails with Read-only file system" {
	run_sifu exec "$(img)" touch /x
	[ "$status" -eq 1 ]
	[[ "$output" == *"Read-only file system"* ]]
}

@test "home, the current directory and /tmp are visible" {
	local home
	home=$(getent passwd "$(id -un)" | cut -d: -f6)
	run_sifu exec "$(img)" sh -c 'echo $HOME; pwd'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$home" ]
	[ "${lines[1]}" = "$PWD" ]
	echo hello >"$BATS_TEST_TMPDIR/seen"
	cd "$BATS_TEST_TMPDIR"
	run_sifu exec "$(img)" cat seen
	[ "$output" = hello ]
	run_sifu exec "$(img)" ls -d "$home"
	[ "$status" -eq 0 ]
}

@test "--bind ro and rw; --mount; a missing source is one error line" {
	mkdir -p "$BATS_TEST_TMPDIR/d"
	run_sifu exec -B "$BATS_TEST_TMPDIR/d:/data:ro" "$(img)" touch /data/f
	[ "$status" -eq 1 ]
	[[ "$output" == *"Read-only file system"* ]]
	run_sifu exec -B "$BATS_TEST_TMPDIR/d:/data:rw" "$(img)" touch /data/f
	[ "$status" -eq 0 ]
	[ -f "$BATS_TEST_TMPDIR/d/f" ]
	run_sifu exec --mount "type=bind,src=$BATS_TEST_TMPDIR/d,dst=/deep/new/dir" "$(img)" ls /deep/new/dir
	[ "$output" = f ]
	run_sifu exec -B /nonexistent/src:/x "$(img)" true
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	run_sifu exec -B "$BATS_TEST_TMPDIR/d:/x:bogus" "$(img)" true
	assert_sifu_error
}

@test "Apptainer docs [B]: --bind /data:/mnt lists bar foo" {
	run_sifu exec --bind "$IMG/data:/mnt" "$(img)" ls /mnt
	[ "$status" -eq 0 ]
	[ "$(echo $output)" = "bar foo" ]
}

@test "Apptainer docs [B]: --bind /opt,/data:/mnt binds both" {
	run_sifu exec --bind "$IMG/opt:/opt,$IMG/data:/mnt" "$(img)" ls /opt /mnt
	[ "$status" -eq 0 ]
	[[ "$output" == *optfile* ]]
	[[ "$output" == *bar* ]]
}

@test "Apptainer docs [B]: APPTAINER_BINDPATH=/opt,/data:/mnt, and APPTAINER_BIND inside" {
	APPTAINER_BINDPATH="$IMG/opt:/opt,$IMG/data:/mnt" run_sifu exec "$(img)" sh -c 'ls /mnt; echo $APPTAINER_BIND'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = bar ]
	# the destinations, as Apptainer's setBinds (e2e issue3501)
	[ "${lines[2]}" = "/opt,/mnt" ]
	SINGULARITY_BIND="$IMG/data:/mnt" run_sifu exec "$(img)" ls /mnt
	[ "$(echo $output)" = "bar foo" ]
}

@test "Apptainer docs [B]: --mount type=bind,src=/data,dst=/mnt lists bar foo" {
	run_sifu exec --mount "type=bind,src=$IMG/data,dst=/mnt" "$(img)" ls /mnt
	[ "$status" -eq 0 ]
	[ "$(echo $output)" = "bar foo" ]
	# [B]: "Multiple bind mounts set via this environment variable should be
	# separated by newlines"
	APPTAINER_MOUNT="type=bind,src=$IMG/data,dst=/m1
type=bind,src=$IMG/opt,dst=/m2" run_sifu exec "$(img)" ls /m1 /m2
	[ "$status" -eq 0 ]
	[[ "$output" == *bar*optfile* ]]
}

@test "Apptainer docs [B]: --mount ...,ro refuses touch /mnt/test" {
	# Apptainer's page shows 'Permission denied'; a read-only bind says EROFS
	run_sifu exec --mount "type=bind,source=$IMG/data,dest=/mnt,ro" "$(img)" touch /mnt/test
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot touch"*"/mnt/test"* || "$output" == *"/mnt/test"*"Read-only"* ]]
	[ ! -e "$IMG/data/test" ]
}

@test "Apptainer docs [B]: --no-mount tmp,sys,dev; --no-home" {
	touch "/tmp/sifu-nomount-$$"
	run_sifu exec --no-mount tmp,sys,dev "$(img)" sh -c "ls /tmp/sifu-nomount-$$; ls /sys/kernel; ls /dev/null"
	rm -f "/tmp/sifu-nomount-$$"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/tmp/sifu-nomount-$$: No such file"* ]]
	[[ "$output" == *"/sys/kernel: No such file"* ]]
	[[ "$output" == *"/dev/null: No such file"* ]]
	local home mark
	home=$(getent passwd "$(id -un)" | cut -d: -f6)
	mark=$home/.sifu-nohome-$$
	touch "$mark"
	cd "$BATS_TEST_TMPDIR"
	run_sifu exec "$(img)" ls "$mark"
	local with=$status
	run_sifu exec --no-home "$(img)" ls "$mark"
	local without=$status
	rm -f "$mark"
	[ "$with" -eq 0 ]
	[ "$without" -ne 0 ]
}

@test "--contain: empty home and /tmp, minimal /dev; --workdir keeps them" {
	touch "/tmp/sifu-contain-$$"
	run_sifu exec --contain "$(img)" sh -c "ls -A \$HOME | wc -l; ls /tmp/sifu-contain-$$; ls /dev | wc -l; echo x >/dev/null && echo null-ok"
	rm -f "/tmp/sifu-contain-$$"
	[ "${lines[0]}" = 0 ]
	[[ "$output" == *"No such file"* ]]
	[[ "$output" == *null-ok* ]]
	[ "$(echo "$output" | sed -n 3p)" -lt 20 ]
	mkdir -p "$BATS_TEST_TMPDIR/w"
	run_sifu exec --contain -W "$BATS_TEST_TMPDIR/w" "$(img)" sh -c 'echo kept >/tmp/k'
	[ "$status" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/w/tmp/k")" = kept ]
}

@test "--containall: clean environment, own PID and IPC namespaces" {
	FOO=bar run_sifu exec --containall "$(img)" sh -c 'echo "[$FOO]"; echo $$; readlink /proc/self/ns/ipc'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "[]" ]
	[ "${lines[1]}" -le 2 ]
	[ "${lines[2]}" != "$(readlink /proc/self/ns/ipc)" ]
}

@test "environment precedence: host < image < --env-file < APPTAINERENV_ < --env" {
	printf 'MYVAR="from file"\n# comment\nexport FILEVAR=f\n' >"$BATS_TEST_TMPDIR/envf"
	MYVAR=host HOSTVAR=h run_sifu exec "$(img)" sh -c 'echo $MYVAR $HOSTVAR $IMGONLY'
	[ "$output" = "Hello h image" ]
	run_sifu exec --env-file "$BATS_TEST_TMPDIR/envf" "$(img)" sh -c 'echo $MYVAR $FILEVAR'
	[ "$output" = "from file f" ]
	APPTAINERENV_MYVAR=prefixed run_sifu exec --env-file "$BATS_TEST_TMPDIR/envf" "$(img)" sh -c 'echo $MYVAR'
	[ "$output" = prefixed ]
	APPTAINERENV_MYVAR=prefixed SINGULARITYENV_MYVAR=old run_sifu exec "$(img)" sh -c 'echo $MYVAR'
	[ "$output" = prefixed ]
	APPTAINERENV_MYVAR=prefixed run_sifu exec --env MYVAR=option --env-file "$BATS_TEST_TMPDIR/envf" "$(img)" sh -c 'echo $MYVAR'
	[ "$output" = option ]
	PATH=/host/only:$PATH LD_LIBRARY_PATH=/host/lib run_sifu exec "$(img)" sh -c 'echo $PATH; echo $LD_LIBRARY_PATH'
	[ "${lines[0]}" = /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ]
	[ "${lines[1]}" = /.singularity.d/libs ]
}

@test "Apptainer docs [E]: run env.sif prints Hello (%environment)" {
	run_sifu run "$IMG/env.sif"
	[ "$status" -eq 0 ]
	[ "$output" = Hello ]
}

@test "Apptainer docs [E]: run --env MYVAR=Goodbye prints Goodbye" {
	run_sifu run --env MYVAR=Goodbye "$IMG/env.sif"
	[ "$output" = Goodbye ]
}

@test "Apptainer docs [E]: --env-file with MYVAR=\"Hello from a file\"" {
	echo 'MYVAR="Hello from a file"' >"$BATS_TEST_TMPDIR/myenvs"
	run_sifu run --env-file "$BATS_TEST_TMPDIR/myenvs" "$IMG/env.sif"
	[ "$output" = "Hello from a file" ]
}

@test "Apptainer docs [E]: SINGULARITYENV_MYVAR=Overridden" {
	SINGULARITYENV_MYVAR=Overridden run_sifu run "$IMG/env.sif"
	[ "$output" = Overridden ]
}

@test "Apptainer docs [E]: APPEND_PATH, PREPEND_PATH and --env PATH=\\\$PATH:/endpath" {
	local def=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	SINGULARITYENV_APPEND_PATH=/endpath run_sifu exec "$(img)" sh -c 'echo $PATH'
	[ "$output" = "$def:/endpath" ]
	SINGULARITYENV_PREPEND_PATH=/startpath run_sifu exec "$(img)" sh -c 'echo $PATH'
	[ "$output" = "/startpath:$def" ]
	run_sifu exec --env 'PATH=$PATH:/endpath' "$(img)" sh -c 'echo $PATH'
	[ "$output" = "$def:/endpath" ]
	run_sifu exec --env APPEND_PATH=/endpath "$(img)" sh -c 'echo $PATH'
	[ "$output" = "$def:/endpath" ]
}

@test "Apptainer docs [E]: --cleanenv keeps the documented minimum" {
	FOO=bar TERM=xterm-256color run_sifu exec --cleanenv "$IMG/env.sif" env
	[ "$status" -eq 0 ]
	echo "$output" | grep -q '^LANG=C$'
	echo "$output" | grep -q '^TERM=xterm-256color$'
	echo "$output" | grep -q '^LD_LIBRARY_PATH=/.singularity.d/libs$'
	echo "$output" | grep -q '^SINGULARITY_COMMAND=exec$'
	echo "$output" | grep -q "^SINGULARITY_CONTAINER=$IMG/env.sif\$"
	echo "$output" | grep -q '^SINGULARITY_ENVIRONMENT=/.singularity.d/env/91-environment.sh$'
	echo "$output" | grep -q '^SINGULARITY_NAME=env.sif$'
	echo "$output" | grep -q '^HOME='
	run ! grep -q '^FOO=' <<<"$output"
}

@test "runtime variables under both prefixes; PS1 is Sifu> " {
	run_sifu exec -B "$IMG/data:/mnt" "$IMG/env.sif" sh -c 'echo "$APPTAINER_CONTAINER|$APPTAINER_NAME|$APPTAINER_COMMAND|$APPTAINER_BIND|$SINGULARITY_NAME|$PS1|"'
	[ "$output" = "$IMG/env.sif|env.sif|exec|/mnt|env.sif|Sifu> |" ]
	run_sifu run "$IMG/tree"
	[ "$output" = Hello ]
}

@test "exit status: 0, 1, 42, 128+signal, and 255 for sifu's own failures" {
	run_sifu exec "$(img)" true
	[ "$status" -eq 0 ]
	run_sifu exec "$(img)" false
	[ "$status" -eq 1 ]
	run_sifu exec "$(img)" sh -c 'exit 42'
	[ "$status" -eq 42 ]
	run_sifu exec "$(img)" sh -c 'kill -TERM $$'
	[ "$status" -eq 143 ]
	run_sifu exec "$(img)" sh -c 'kill -KILL $$'
	[ "$status" -eq 137 ]
	run_sifu exec "$BATS_TEST_TMPDIR/missing.sif" true
	assert_sifu_error
	echo notanimage >"$BATS_TEST_TMPDIR/bad.sif"
	run_sifu exec "$BATS_TEST_TMPDIR/bad.sif" true
	assert_sifu_error
	run_sifu exec "$(img)" /no/such/command
	assert_sifu_error
	no_sifu_left
}

@test "signals sent to sifu reach the payload" {
	local out=$BATS_TEST_TMPDIR/sig
	for sig in INT TERM HUP QUIT USR1 USR2 WINCH; do
		"$SIFU" exec "$(img)" sh -c "trap 'echo got-$sig >$out; exit 9' $sig; touch $out.ready; while :; do sleep 0.05; done" &
		local pid=$!
		while [ ! -e "$out.ready" ]; do sleep 0.02; done
		kill -s "$sig" "$pid"
		local st=0
		wait "$pid" || st=$?
		[ "$st" -eq 9 ]
		[ "$(cat "$out")" = "got-$sig" ]
		rm -f "$out" "$out.ready"
	done
}

@test "--pid: the payload sees a PID namespace; init forwards signals and reaps" {
	run_sifu exec --pid "$(img)" sh -c 'echo $$; ls /proc | grep -c "^[0-9]"'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" -eq 2 ]
	[ "${lines[1]}" -le 4 ]
	run_sifu exec --pid --no-init "$(img)" sh -c 'echo $$'
	[ "$output" -eq 1 ]
	# an orphan is re-parented to init, which reaps it: no zombie
	run_sifu exec --pid "$(img)" sh -c '(sleep 0.1 &); sleep 0.6; ps -o stat,comm'
	[ "$status" -eq 0 ]
	[[ "${lines[1]}" == *sifu* ]]
	run ! grep -q '^Z' <<<"$output"

	local out=$BATS_TEST_TMPDIR/pidsig
	"$SIFU" exec --pid "$(img)" sh -c "trap 'echo got >$out; exit 5' USR1; (sleep 33.3 &); touch $out.ready; while :; do sleep 0.05; done" &
	local pid=$!
	while [ ! -e "$out.ready" ]; do sleep 0.02; done
	kill -USR1 "$pid"
	local st=0
	wait "$pid" || st=$?
	[ "$st" -eq 5 ]
	[ "$(cat "$out")" = got ]
	sleep 0.2
	no_sifu_left
	# the orphaned sleep died with the PID namespace
	run ! pgrep -u "$(id -u)" -f "sleep 33.3"
}

@test "--writable-tmpfs: writes work and vanish after the run" {
	run_sifu exec --writable-tmpfs "$(img)" sh -c 'echo w >/written && cat /written'
	[ "$status" -eq 0 ]
	[ "$output" = w ]
	run_sifu exec "$(img)" cat /written
	[ "$status" -ne 0 ]
}

@test "--overlay DIR: writes persist across runs" {
	mkdir -p "$BATS_TEST_TMPDIR/ov"
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/ov" "$(img)" sh -c 'echo kept >/persist'
	[ "$status" -eq 0 ]
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/ov" "$(img)" cat /persist
	[ "$output" = kept ]
	[ -f "$BATS_TEST_TMPDIR/ov/upper/persist" ]
	run_sifu exec "$(img)" cat /persist
	[ "$status" -ne 0 ]
	# DIR:ro: the same layer, read-only
	run_sifu exec --overlay "$BATS_TEST_TMPDIR/ov:ro" "$(img)" sh -c 'cat /persist; touch /other'
	[ "${lines[0]}" = kept ]
	[[ "$output" == *"Read-only file system"* ]]
}

@test "--fakeroot: uid 0 inside, home at /root, no privilege outside" {
	run_sifu exec --fakeroot "$(img)" sh -c 'id -u; echo $HOME; id -un'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 0 ]
	[ "${lines[1]}" = /root ]
	[ "${lines[2]}" = root ]
	run_sifu exec --fakeroot --writable-tmpfs "$(img)" sh -c 'echo x >/etc/newfile && echo ok'
	[ "$output" = ok ]
}

@test "--hostname, --net (loopback only), --ipc" {
	run_sifu exec --hostname sifubox "$(img)" hostname
	[ "$output" = sifubox ]
	run_sifu exec --net "$(img)" sh -c 'ls /sys/class/net 2>/dev/null || cat /proc/net/dev'
	[ "$status" -eq 0 ]
	[[ "$output" == *lo* ]]
	run_sifu exec --net "$(img)" sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'
	[ "$output" = lo ]
	run_sifu exec --ipc "$(img)" readlink /proc/self/ns/ipc
	[ "$output" != "$(readlink /proc/self/ns/ipc)" ]
	run_sifu exec "$(img)" readlink /proc/self/ns/ipc
	[ "$output" = "$(readlink /proc/self/ns/ipc)" ]
}

@test "-w on a sandbox directory writes into it; without -w it is read-only" {
	cp -a "$IMG/tree" "$BATS_TEST_TMPDIR/sandbox"
	run_sifu exec "$BATS_TEST_TMPDIR/sandbox" touch /made
	[ "$status" -ne 0 ]
	run_sifu exec -w "$BATS_TEST_TMPDIR/sandbox" touch /made
	[ "$status" -eq 0 ]
	[ -f "$BATS_TEST_TMPDIR/sandbox/made" ]
	run_sifu exec -w "$(img)" true
	assert_sifu_error
	# -w with --contain: the minimal /dev is complete (its mount points are
	# made in its own tmpfs, not in the sandbox), and the sandbox gets none
	run_sifu exec -w --contain "$BATS_TEST_TMPDIR/sandbox" sh -c 'test -c /dev/null && test -c /dev/urandom && test -d /dev/pts && echo x >/dev/null && echo dev-ok'
	[ "$status" -eq 0 ]
	[ "$output" = dev-ok ]
	[ ! -e "$BATS_TEST_TMPDIR/sandbox/dev/null" ] || [ -c "$BATS_TEST_TMPDIR/sandbox/dev/null" ]
}

@test "run, test and shell dispatch as Apptainer's actions" {
	run_sifu run "$(img)" a b
	[ "${lines[0]}" = Hello ]
	[ "${lines[1]}" = "args: a b" ]
	run_sifu test "$(img)"
	[ "$status" -eq 0 ]
	[ "$output" = "testing " ]
	run_sifu test "$IMG/nosh.sqfs"
	[ "$status" -eq 0 ]
	run sh -c "echo 'echo \"[\$PS1]\" \$APPTAINER_COMMAND; exit 3' | '$SIFU' shell '$(img)'"
	[ "$status" -eq 3 ]
	[[ "$output" == *"[Sifu> ] shell"* ]]
	run sh -c "echo 'exit 4' | '$SIFU' shell --shell /bin/ash '$(img)'"
	[ "$status" -eq 4 ]
}

@test "exec works in an image with no /bin/sh" {
	run_sifu exec "$IMG/nosh.sqfs" echo hello
	[ "$status" -eq 0 ]
	[ "$output" = hello ]
	run_sifu exec --env X=1 --env 'Y=${X}2' "$IMG/nosh.sqfs" cat /proc/self/environ
	[[ "$output" == *X=1* ]]
	[[ "$output" == *Y=12* ]]
	run_sifu run "$IMG/nosh.sqfs"
	assert_sifu_error
}

@test "./image.sif runs the runscript through run-singularity on PATH" {
	local bindir=$BATS_TEST_TMPDIR/bin
	mkdir -p "$bindir"
	ln -s "$SIFU" "$bindir/run-singularity"
	PATH=$bindir:$PATH run "$IMG/env.sif" x y
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = Hello ]
	[ "${lines[1]}" = "args: x y" ]
	PATH=$bindir:$PATH run run-singularity "$IMG/env.sif"
	[ "$output" = Hello ]
}

@test "kill -9 of the supervisor leaves no process and no mount behind" {
	local d=$BATS_TEST_TMPDIR
	"$SIFU" exec "$(img)" sh -c "readlink /proc/self/ns/mnt >$d/ns.tmp; mv $d/ns.tmp $d/ns; exec sleep 60" &
	local pid=$!
	while [ ! -e "$d/ns" ]; do sleep 0.02; done
	local ns
	ns=$(cat "$d/ns")
	[ "$ns" != "$(readlink /proc/self/ns/mnt)" ]
	kill -9 "$pid"
	wait "$pid" || true
	sleep 0.3
	no_sifu_left
	# the container's mounts live only in its mount namespace: gone when no
	# process is left in it
	local p left=0
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && left=$((left + 1))
	done
	[ "$left" -eq 0 ]
	run ! grep -q "$IMG" /proc/mounts
}

@test "--unsquash extracts instead of mounting, and says so" {
	run_sifu exec --unsquash "$(img)" cat /.singularity.d/env/90-environment.sh
	[ "$status" -eq 0 ]
	[[ "$output" == *'MYVAR="Hello"'* ]]
}

@test "--debug prints the start-up broken down by phase" {
	run_sifu --debug exec "$(img)" true
	[ "$status" -eq 0 ]
	echo "$output" | grep -q 'timing: user namespace'
	echo "$output" | grep -q 'timing: FUSE server started'
	echo "$output" | grep -q "timing: payload exec'd"
}

@test "refuses to run with file capabilities or set-user-ID" {
	is_root || return 0 # making such a binary needs root
	command -v setcap >/dev/null || skip "setcap not installed"
	local dir
	dir=$(mktemp -d /tmp/sifu-caps.XXXXXX)
	cp "$SIFU" "$dir/sifu" && chmod 755 "$dir" "$dir/sifu"
	setcap cap_net_raw+ep "$dir/sifu"
	run runuser -u sifu-test -- "$dir/sifu" exec "$(img)" true
	rm -rf "$dir"
	[ "$status" -eq 255 ]
	[[ "$output" == *"refuses to run"* ]]
}

@test "user namespaces disabled: the cause and the remedy in one line" {
	# user.max_user_namespaces is per user namespace: set it to 0 in one
	# made for the test, and run sifu there
	require_feature "nested user namespaces" unshare -U -r true
	# a TMPDIR of the test's: the shared /tmp/sifu-0 is someone else's in
	# that namespace, and the block cache would say so in a warning
	run env TMPDIR="$BATS_TEST_TMPDIR" unshare -U -r sh -c "echo 0 >/proc/sys/user/max_user_namespaces && exec '$SIFU' exec '$(img)' true"
	assert_sifu_error
	[[ "$output" == *"refused to create a user namespace"*"user.max_user_namespaces"* ]]
	[ "$(message_count)" -eq 1 ]
}

@test "shell on a terminal: the prompt, the tty and job control" {
	command -v script >/dev/null || skip "script (util-linux) not installed"
	run sh -c "printf 'case \$- in *m*) echo JOB\$((1+1))CTL;; esac; tty; exit 7\n' | script -qec '$SIFU shell $(img)' /dev/null"
	[ "$status" -eq 7 ]
	[[ "$output" == *"Sifu> "* ]]
	[[ "$output" == *JOB2CTL* ]]
	[[ "$output" == *"/dev/pts/"* ]]
}

@test "host files, --pwd, -H src:dst, --no-mount cwd" {
	run_sifu exec "$(img)" cat /etc/hosts
	[ "$output" = "$(cat /etc/hosts)" ]
	run_sifu exec "$(img)" cat /etc/resolv.conf
	[ "$output" = "$(cat /etc/resolv.conf)" ]
	run_sifu exec --pwd /etc "$(img)" pwd
	[ "$output" = /etc ]
	run_sifu exec --pwd /nonexistent "$(img)" pwd
	assert_sifu_error
	mkdir -p "$BATS_TEST_TMPDIR/h" && echo mine >"$BATS_TEST_TMPDIR/h/file"
	run_sifu exec -H "$BATS_TEST_TMPDIR/h:/home/other" "$(img)" sh -c 'echo $HOME; cat ~/file'
	[ "${lines[0]}" = /home/other ]
	[ "${lines[1]}" = mine ]
	local d
	d=$(mktemp -d "$HOME/.sifu-cwd.XXXXXX")
	mkdir -p "$d/sub" && cd "$d/sub"
	run_sifu exec -H "$BATS_TEST_TMPDIR/h:/home/other" "$(img)" pwd
	local with=$output
	run_sifu exec -H "$BATS_TEST_TMPDIR/h:/home/other" --no-mount cwd "$(img)" pwd
	local without=$output
	cd / && rm -rf "$d"
	[ "$with" = "$d/sub" ]
	[ "$without" = /home/other ]
}

@test "Ctrl-C on the terminal reaches the payload once (also through --pid's init)" {
	command -v script >/dev/null || skip "script (util-linux) not installed"
	local d=$BATS_TEST_TMPDIR payload
	payload="n=0; trap 'n=\$((n+1))' INT; touch $d/rdy; while [ ! -e $d/go ]; do sleep 0.05; done; echo count=\$n"
	printf '%s\n' "$payload" >"$d/payload.sh"
	for opt in "" "--pid"; do
		rm -f "$d/rdy" "$d/go"
		run sh -c "(while [ ! -e $d/rdy ]; do sleep 0.05; done; printf '\003'; sleep 0.5; touch $d/go; sleep 0.3) | script -qec 'exec $SIFU exec $opt $(img) sh $d/payload.sh' /dev/null"
		[ "$status" -eq 0 ]
		[[ "$output" == *count=1* ]]
	done
}

@test "no usable /dev/fuse: extracts the image instead and says so on stderr" {
	# hide the real /dev/fuse behind /dev/null in a namespace of the test's own
	require_feature "nested user namespaces" unshare -U -r -m true
	run unshare -U -r -m sh -c "mount --bind /dev/null /dev/fuse && exec '$SIFU' exec '$(img)' sh -c 'echo \$MYVAR'"
	[ "$status" -eq 0 ]
	[[ "$output" == *"WARNING: "*"FUSE"*"extracting the image to a private temporary directory instead"* ]]
	[ "${lines[-1]}" = Hello ]
}

@test "block cache: the next start copies kept blocks, which stay the image's bytes" {
	# a fresh image of its own, so that nothing is kept for it yet
	local t=$BATS_TEST_TMPDIR/bc img=$BATS_TEST_TMPDIR/bc.sqfs
	mkdir -p "$t/bin" && cp /usr/bin/busybox "$t/bin/busybox"
	seq 1 100000 >"$t/numbers"
	mksquashfs "$t" "$img" -noappend -quiet >/dev/null
	local want
	want=$(cat /usr/bin/busybox "$t/numbers" | sha256sum)
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir "$TMPDIR"
	local dir=$TMPDIR/sifu-$(id -u)/blocks
	# the first start decompresses and keeps; the default directory is 0700
	run "$SIFU" --debug exec "$img" /bin/busybox sh -c 'cat /bin/busybox /numbers | sha256sum'
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | grep -Fqx -- "$want"
	# (a block another thread of this run kept a moment before may be
	# found: what counts is that the blocks were not there and were added)
	printf '%s\n' "$output" | grep -Eq 'block cache: [0-9]+ blocks found, [1-9][0-9]* not found, [0-9.]+ [KM]iB added'
	[ "$(stat -c %a "$dir")" = 700 ]
	[ "$(stat -c %a "$TMPDIR/sifu-$(id -u)")" = 700 ]
	[ "$(ls "$dir" | wc -l)" -eq 1 ]
	local f
	f=$(ls "$dir"/*.blk)
	[ "$(stat -c '%a %u' "$f")" = "600 $(id -u)" ]
	# the next finds every block and adds none
	run "$SIFU" --debug exec "$img" /bin/busybox sh -c 'cat /bin/busybox /numbers | sha256sum'
	printf '%s\n' "$output" | grep -Fqx -- "$want"
	printf '%s\n' "$output" | grep -q 'block cache: [1-9][0-9]* blocks found, 0 not found, 0 B added'
	# damaged kept blocks fail their CRC: decompressed again, right bytes
	python3 -c '
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
for i in range(200, len(d), 4096):
    d[i] ^= 0x5A
open(p, "r+b").write(d)' "$f"
	run "$SIFU" --debug exec "$img" /bin/busybox sh -c 'cat /bin/busybox /numbers | sha256sum'
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | grep -Fqx -- "$want"
	[[ "$output" == *"a damaged record"* ]]
	# and the damaged file is dropped, to be made anew by the next start
	[ ! -e "$f" ]
	run_sifu exec "$img" /bin/busybox true
	[ "$(ls "$dir" | wc -l)" -eq 1 ]
	# off: nothing kept; a directory others may write to: a warning, no use
	rm -rf "$dir"
	run_sifu exec --block-cache off "$img" /bin/busybox true
	[ "$status" -eq 0 ]
	[ ! -e "$dir" ]
	run_sifu --debug exec --disable-cache "$img" /bin/busybox true
	[ "$status" -eq 0 ]
	[[ "$output" == *"block cache: off"* ]]
	[ ! -e "$dir" ]
	mkdir -m 0777 "$BATS_TEST_TMPDIR/open"
	chmod 0777 "$BATS_TEST_TMPDIR/open"
	run "$SIFU" exec --block-cache "$BATS_TEST_TMPDIR/open" "$img" /bin/busybox echo ran
	[ "$status" -eq 0 ]
	[[ "$output" == *"running without the block cache"* ]]
	[[ "$output" == *ran* ]]
	[ -z "$(ls -A "$BATS_TEST_TMPDIR/open")" ]
	# SIFU_BLOCK_CACHE names the directory (made if missing); sifu cache
	# clean empties it
	SIFU_BLOCK_CACHE=$BATS_TEST_TMPDIR/mine run_sifu exec "$img" /bin/busybox true
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/mine")" = 700 ]
	[ "$(ls "$BATS_TEST_TMPDIR/mine" | wc -l)" -eq 1 ]
	SIFU_BLOCK_CACHE=$BATS_TEST_TMPDIR/mine run_sifu cache list --type blocks
	[[ "$output" == *"There are 1 block cache file(s)"* ]]
	SIFU_BLOCK_CACHE=$BATS_TEST_TMPDIR/mine run_sifu cache clean --force --type blocks
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$BATS_TEST_TMPDIR/mine")" ]
}
