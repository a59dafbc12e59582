#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# sifu build: definition files built unprivileged (busybox, scratch,
# localimage and docker bases), the /.singularity.d layout, inspect, the
# seccomp fake root in %post, conversions, and failures that leave nothing.
load helpers

ROOT=$BATS_TEST_DIRNAME/../..
MKIMG=$BATS_TEST_DIRNAME/pull_image.py

# the every-section definition; %files takes a file next to it
write_full_def() {
	cat >"$1/full.def" <<'DEF'
Bootstrap: busybox

%arguments
    WHO=world

%help
    Says hello to {{ WHO }}.

%setup
    touch "$APPTAINER_ROOTFS/from-setup"
    test "$SINGULARITY_ROOTFS" = "$APPTAINER_ROOTFS"

%files
    data.txt /opt/data.txt
    data.txt /opt/dir/

%labels
    Maintainer tester
    Version 1.0

%environment
    export GREETING=hello

%post
    echo post > /from-post
    test -z "${HOME_OF_HOST:-}"
    echo 'export FROMPOST=yes' >> "$APPTAINER_ENVIRONMENT"
    echo 'post.label from-post' >> "$APPTAINER_LABELS"

%runscript
    echo "$GREETING {{ WHO }} $FROMPOST $*"

%startscript
    echo started

%test
    test -f /from-post
    test "$GREETING" = hello
DEF
	echo "some data" >"$1/data.txt"
}

setup_file() {
	local d=$BATS_FILE_TMPDIR
	export TMPDIR=$d/tmp
	mkdir -p "$TMPDIR"
	write_full_def "$d"
	(cd "$d" && HOME_OF_HOST=1 "$SIFU" -q build full.sif full.def)
	mkdir -p "$d/bin"
	ln -s "$SIFU" "$d/bin/run-singularity"
}

# a registry a test started must not outlive it (bats would wait for it)
teardown() {
	[ -d "$BATS_TEST_TMPDIR/reg" ] && "$ROOT/scripts/registry" stop "$BATS_TEST_TMPDIR/reg" || true
}

setup() {
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
	cd "$BATS_TEST_TMPDIR"
	FULL=$BATS_FILE_TMPDIR/full.sif
}

# no temporary build directory left in $TMPDIR or next to the output
no_leftovers() {
	local left
	left=$(find "$TMPDIR" . -maxdepth 1 -name '.sifu-build-*' -o -maxdepth 1 -name '*.sifu-tmp*' | head -1)
	[ -z "$left" ] || { echo "left over: $left" >&2; return 1; }
}

# The SquashFS partition of a SIF, listed with numeric owners.
lln() {
	local id
	id=$(siftool list "$1" | awk -F'|' '/FS \(Squashfs/ {gsub(/ /,"",$1); print $1}')
	siftool dump "$id" "$1" >"$1.part"
	unsquashfs -lln "$1.part" | sed 's/  */ /g'
}

@test "build: every section gives Apptainer's /.singularity.d, file by file" {
	cat >exp.runscript <<'X'
#!/bin/sh

    echo "$GREETING world $FROMPOST $*"
X
	cat >exp.startscript <<'X'
#!/bin/sh

    echo started
X
	cat >exp.test <<'X'
#!/bin/sh

    test -f /from-post
    test "$GREETING" = hello
X
	printf '    Says hello to world.\n' >exp.runscript.help
	printf '#!/bin/sh\n# Custom environment shell code should follow\n\n\n    export GREETING=hello\n' >exp.env.90-environment.sh
	printf 'export FROMPOST=yes\n' >exp.env.91-environment.sh
	for f in runscript startscript test runscript.help env/90-environment.sh env/91-environment.sh; do
		"$SIFU" exec "$FULL" cat "/.singularity.d/$f" >got
		diff -u "exp.${f//\//.}" got
	done
	# the definition is stored in the image and as a SIF object, the same text
	"$SIFU" exec "$FULL" cat /.singularity.d/Singularity >def.image
	"$SIFU" inspect --deffile "$FULL" >def.inspect
	diff def.image def.inspect
	grep -q '^%post' def.image
	grep -q 'Says hello to world' def.image # templates expanded
	# the links Apptainer makes
	run "$SIFU" exec "$FULL" sh -c 'for l in /singularity /.run /.exec /.shell /.test /environment; do echo "$l -> $(readlink $l)"; done'
	[ "$status" -eq 0 ]
	[ "$output" = "/singularity -> .singularity.d/runscript
/.run -> .singularity.d/actions/run
/.exec -> .singularity.d/actions/exec
/.shell -> .singularity.d/actions/shell
/.test -> .singularity.d/actions/test
/environment -> .singularity.d/env/90-environment.sh" ]
	# %setup, %files (to a file and into a directory), %post ran
	run "$SIFU" exec "$FULL" cat /from-setup /opt/data.txt /opt/dir/data.txt /from-post
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = "some data
some data
post" ]
	# no build leftovers inside the image
	run "$SIFU" exec "$FULL" ls -a /
	[[ "$output" != *post.script* ]]
	[[ "$output" != *build.labels* ]]
}

@test "build: labels.json has the build labels, %labels and \$APPTAINER_LABELS" {
	"$SIFU" exec "$FULL" cat /.singularity.d/labels.json >labels.json
	[ "$(jq -r .Maintainer labels.json)" = tester ]
	[ "$(jq -r .Version labels.json)" = 1.0 ]
	[ "$(jq -r '."post.label"' labels.json)" = from-post ]
	[ "$(jq -r '."org.label-schema.usage.singularity.deffile.bootstrap"' labels.json)" = busybox ]
	[ "$(jq -r '."org.label-schema.schema-version"' labels.json)" = 1.0 ]
	jq -e '."org.label-schema.build-date"' labels.json >/dev/null
}

@test "build: sifu inspect --all shows what the build wrote" {
	run "$SIFU" inspect --all --json "$FULL"
	[ "$status" -eq 0 ]
	echo "$output" >all.json
	[ "$(jq -r .data.attributes.labels.Maintainer all.json)" = tester ]
	[ "$(jq -r .data.attributes.helpfile all.json)" = '    Says hello to world.' ]
	jq -r .data.attributes.runscript all.json | grep -q 'GREETING world'
	jq -r '.data.attributes.environment."/.singularity.d/env/90-environment.sh"' all.json | grep -q 'GREETING=hello'
	jq -r .data.attributes.deffile all.json | grep -q '^Bootstrap: busybox'
	run "$SIFU" inspect --runscript "$FULL"
	[[ "$output" == *'echo "$GREETING world $FROMPOST $*"'* ]]
}

@test "build: ./image runs the runscript with the environment" {
	run env PATH="$BATS_FILE_TMPDIR/bin:$PATH" "$FULL" a b
	[ "$status" -eq 0 ]
	[ "$output" = "hello world yes a b" ]
	run "$SIFU" run "$FULL" c
	[ "$output" = "hello world yes c" ]
	run "$SIFU" test "$FULL"
	[ "$status" -eq 0 ]
}

@test "build: %post as fake root - users, groups, chown, su, mknod succeed; the image stores the owners chown asked for" {
	cat >u.def <<'DEF'
Bootstrap: busybox
%post
    id -u | grep -qx 0
    test -c /dev/null && test -c /dev/urandom && test -d /dev/pts
    echo 'grp:x:2000:' >> /etc/group
    echo 'app:x:2000:2000::/home/app:/bin/sh' >> /etc/passwd
    mkdir -p /opt/x /home/app
    chown app:grp /opt/x
    chown 3000:3000 /home/app
    touch /opt/g && chgrp grp /opt/g
    su app -c true
    mknod /opt/null c 1 3
    mkfifo /opt/fifo
    chmod 0700 /opt/x
    echo secret > /opt/x/s && chmod 0000 /opt/x/s
DEF
	run "$SIFU" build u.sif u.def
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	lln u.sif >list
	grep -q '^drwx------ 2000/2000 .* squashfs-root/opt/x$' list
	grep -q '^drwxr-xr-x 3000/3000 .* squashfs-root/home/app$' list
	# chgrp passes on the owner it reads back: root, as %post sees it
	grep -q '^-rw-r--r-- 0/2000 .* squashfs-root/opt/g$' list
	grep -q '^---------- 0/0 .* squashfs-root/opt/x/s$' list
	grep -q '^prw-r--r-- 0/0 .* squashfs-root/opt/fifo$' list
	# relative paths, -R, -h on a link, a later chown of the same file
	cat >r.def <<'DEF'
Bootstrap: busybox
%post
    mkdir -p /t/d/e && echo x > /t/d/e/f && ln -s d /t/l
    cd /t && chown -R 5:6 d
    chown -h 7:8 /t/l
    chown 9 /t/d/e/f
DEF
	"$SIFU" -q build r.sif r.def
	lln r.sif >rlist
	grep -q '^drwxr-xr-x 5/6 .* squashfs-root/t/d$' rlist
	grep -q '^drwxr-xr-x 5/6 .* squashfs-root/t/d/e$' rlist
	# (busybox chown UID passes the group it reads back: root's)
	grep -q '^-rw-r--r-- 9/0 .* squashfs-root/t/d/e/f$' rlist
	grep -q '^lrwxrwxrwx 7/8 .* squashfs-root/t/l -> d$' rlist
	grep -q '^drwxr-xr-x 0/0 .* squashfs-root/t$' rlist
	# (sifu exec shows its own passwd; the image's is in the partition)
	unsquashfs -cat u.sif.part etc/passwd | grep -qx 'app:x:2000:2000::/home/app:/bin/sh'
	unsquashfs -cat u.sif.part etc/group | grep -qx 'grp:x:2000:'
	no_leftovers
}

@test "build: two stages, %files from the first stage" {
	cat >two.def <<'DEF'
Bootstrap: busybox
Stage: one
%post
    mkdir -p /out && echo made-in-one > /out/artifact
    ln -s artifact /out/link

Bootstrap: busybox
Stage: two
%files from one
    /out/artifact /opt/artifact
    /out /copied
%runscript
    cat /opt/artifact
DEF
	"$SIFU" -q build two.sif two.def
	run "$SIFU" run two.sif
	[ "$output" = made-in-one ]
	run "$SIFU" exec two.sif readlink /copied/link
	[ "$output" = artifact ]
	run "$SIFU" exec two.sif ls /out
	[ "$status" -ne 0 ]
	no_leftovers
}

@test "build --sandbox, --update, and conversions sandbox <-> SIF" {
	printf 'Bootstrap: busybox\n%%post\n    echo one > /one\n' >s.def
	"$SIFU" -q build --sandbox box s.def
	[ -d box ] && [ "$(cat box/one)" = one ]
	[ -x box/.singularity.d/runscript ]
	printf 'Bootstrap: busybox\n%%post\n    echo two > /two\n' >u.def
	"$SIFU" -q build --update --sandbox box u.def
	[ "$(cat box/one box/two)" = "one
two" ]
	"$SIFU" -q build from-box.sif box
	run "$SIFU" exec from-box.sif cat /one /two
	[ "$output" = "one
two" ]
	"$SIFU" -q build --sandbox back "$FULL"
	[ "$(cat back/from-post)" = post ]
	[ -L back/singularity ]
	no_leftovers
}

@test "build: Bootstrap scratch and localimage" {
	printf 'Bootstrap: scratch\n%%files\n    /bin/busyb?x /bin/\n' >s.def
	"$SIFU" -q build --sandbox sc s.def
	[ -x sc/bin/busybox ]
	[ "$(ls sc/bin)" = busybox ]
	printf 'Bootstrap: localimage\nFrom: %s\n%%post\n    echo more > /more\n' "$FULL" >l.def
	"$SIFU" -q build l.sif l.def
	run "$SIFU" exec l.sif cat /from-post /more
	[ "$output" = "post
more" ]
}

@test "build: Bootstrap docker from a local registry" {
	command -v docker-registry >/dev/null || skip "no docker-registry"
	local d=$BATS_TEST_TMPDIR
	python3 "$MKIMG" "$d/img"
	REGISTRY=$("$ROOT/scripts/registry" start "$d/reg")
	skopeo copy -q --dest-tls-verify=false oci:"$d/img":latest docker://"$REGISTRY"/sifu/base:1
	printf 'Bootstrap: docker\nFrom: %s/sifu/base:1\n%%post\n    cat /etc/motd > /motd-copy\n%%runscript\n    cat /motd-copy\n' "$REGISTRY" >d.def
	SIFU_CACHEDIR=$d/cache run "$SIFU" -q build --nohttps d.sif d.def
	"$ROOT/scripts/registry" stop "$d/reg"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run "$SIFU" run d.sif
	[ "$output" = "layer three" ]
	# the layers as pull applies them: whiteouts, opaque directories
	run "$SIFU" exec d.sif cat /opq/z /etc/os-release
	[ "$output" = "z
NAME=sifutest
ID=sifutest" ]
	run "$SIFU" exec d.sif ls /opq
	[ "$output" = z ]
	no_leftovers
}

@test "build: a failing %post, %setup or %test leaves no output and no temporary files" {
	printf 'Bootstrap: busybox\n%%post\n    true\n    false\n    echo never\n' >p.def
	run "$SIFU" build out.sif p.def
	assert_sifu_error
	[[ "$output" == *"p.def:2: %post failed (exit status 1)"* ]]
	[[ "$output" != *never* ]]
	[ ! -e out.sif ]
	printf 'Bootstrap: busybox\n%%setup\n    exit 3\n' >s.def
	run "$SIFU" build --sandbox outdir s.def
	assert_sifu_error
	[[ "$output" == *"%setup failed (exit status 3)"* ]]
	[ ! -e outdir ]
	printf 'Bootstrap: busybox\n%%test\n    false\n' >t.def
	run "$SIFU" build out.sif t.def
	assert_sifu_error
	[[ "$output" == *"%test failed"* ]]
	[ ! -e out.sif ]
	"$SIFU" -q build --notest out.sif t.def
	[ -f out.sif ]
	no_leftovers
}

@test "build: a missing %files source names its line; an existing output needs --force" {
	printf 'Bootstrap: busybox\n%%files\n    /nonexistent/x /x\n' >f.def
	run "$SIFU" build out.sif f.def
	assert_sifu_error
	[[ "$output" == *"f.def:3"* ]]
	[ ! -e out.sif ]
	printf 'Bootstrap: busybox\n' >ok.def
	echo keep >out.sif
	run "$SIFU" build out.sif ok.def
	assert_sifu_error
	[[ "$output" == *"already exists"* ]]
	[ "$(cat out.sif)" = keep ]
	"$SIFU" -q build -F out.sif ok.def
	[ "$(head -c 31 out.sif)" = "#!/usr/bin/env run-singularity" ]
	no_leftovers
}

@test "build: SIGTERM during the build leaves nothing behind" {
	printf 'Bootstrap: busybox\n%%setup\n    touch %s/started\n    exec sleep 60\n' "$BATS_TEST_TMPDIR" >k.def
	"$SIFU" -q build out.sif k.def 2>err &
	local pid=$!
	for _ in $(seq 1 200); do [ -e started ] && break; sleep 0.05; done
	[ -e started ]
	kill -TERM $pid
	local st=0
	wait $pid || st=$?
	[ "$st" -eq 255 ]
	grep -q interrupted err || { cat err; false; }
	[ ! -e out.sif ]
	no_leftovers
}

@test "build: docs/build.md's step-by-step example builds and does what the guide says" {
	local doc="$BATS_TEST_DIRNAME/../../docs/build.md"
	# the second ```singularity block of the guide
	awk '/^```singularity$/{n++; if (n == 2) {f=1; next}} /^```$/{if (f) exit} f' "$doc" >hello.def
	grep -q '^Bootstrap: busybox' hello.def
	echo data >data.txt
	"$SIFU" -q build hello.sif hello.def
	run env PATH="$BATS_FILE_TMPDIR/bin:$PATH" ./hello.sif a b
	[ "$output" = "hello world yes a b" ]
	lln hello.sif | grep -q '^drwxr-xr-x 2000/2000 .* squashfs-root/home/app$'
	run "$SIFU" inspect --labels hello.sif
	[[ "$output" == *"post.label: from-post"* ]]
	no_leftovers
}

@test "build: SIGTERM during %post stops everything %post started" {
	printf 'Bootstrap: busybox\n%%post\n    sleep 987 &\n    sleep 986\n' >k.def
	"$SIFU" -q build out.sif k.def 2>err &
	term_and_check $! 'sleep 986' 'sleep 98[67]'
	[ ! -e out.sif ]
	no_leftovers
}

@test "build: a daemon left running by %post does not outlive it" {
	printf 'Bootstrap: busybox\n%%post\n    (sleep 985 &)\n    echo done\n' >d.def
	"$SIFU" -q build out.sif d.def
	run ! pgrep -u "$(id -u)" -f 'sleep 985'
	[ -f out.sif ]
}

# The issue's headline: apt in %post, unprivileged, no /etc/subuid entry.
# The base is a Debian minbase made by debootstrap (by the root run of the
# suite, once; cached in $SIFU_TEST_MINBASE) and served by a local registry.
@test "build: apt-get install in %post on a Debian minbase from a local registry; ./image runs hello" {
	local base=${SIFU_TEST_MINBASE:-/var/cache/sifu-build-test/oci}
	curl -sfI --max-time 10 http://deb.debian.org/debian/dists/bookworm/Release >/dev/null ||
		skip "no network to deb.debian.org (apt needs it)"
	if [ ! -f "$base/index.json" ]; then
		is_root || skip "no cached Debian minbase in $base (the root run of the suite makes it)"
		local t=$BATS_TEST_TMPDIR/mk
		debootstrap --variant=minbase bookworm "$t/minbase" http://deb.debian.org/debian >"$t.log" 2>&1 ||
			{ tail "$t.log"; false; }
		mkdir -p "$(dirname "$base")"
		umoci init --layout "$base.tmp"
		umoci new --image "$base.tmp:minbase"
		umoci insert --image "$base.tmp:minbase" "$t/minbase" /
		chmod -R a+rX "$base.tmp" # umoci writes 0600 files; the unprivileged run reads them
		mv "$base.tmp" "$base"
		rm -rf "$t"
	fi
	local d=$BATS_TEST_TMPDIR
	REGISTRY=$("$ROOT/scripts/registry" start "$d/reg")
	skopeo copy -q --dest-tls-verify=false oci:"$base":minbase docker://"$REGISTRY"/debian/minbase:bookworm
	cat >a-s.def <<DEF
Bootstrap: docker
From: $REGISTRY/debian/minbase:bookworm
%post
    apt-get update && apt-get install -y hello && apt clean all
    useradd -m app && mkdir /opt/x && chown app /opt/x && groupadd g
%runscript
    exec hello "\$@"
DEF
	SIFU_CACHEDIR=$d/cache run "$SIFU" -q build --nohttps -f apt-hello a-s.def
	"$ROOT/scripts/registry" stop "$d/reg"
	[ "$status" -eq 0 ] || { echo "$output" | tail -20; false; }
	run env PATH="$BATS_FILE_TMPDIR/bin:$PATH" ./apt-hello
	[ "$output" = "Hello, world!" ]
	lln apt-hello >list
	grep -q '^drwxr-xr-x 1000/0 .* squashfs-root/opt/x$' list
	grep -q '^drwxr-xr-x 1000/1000 .* squashfs-root/home/app$' list
	siftool dump "$(siftool list apt-hello | awk -F'|' '/FS \(Squashfs/ {gsub(/ /,"",$1); print $1}')" apt-hello >p.sqfs
	unsquashfs -cat p.sqfs etc/group | grep -q '^g:x:'
	no_leftovers
}

@test "build --fix-perms and --section" {
	printf 'Bootstrap: busybox\n%%post\n    mkdir /d && touch /d/f /g && chmod 0000 /d/f /g && chmod 0500 /d\n%%environment\n    export E=1\n' >p.def
	"$SIFU" -q build --sandbox --fix-perms fixed p.def
	[ "$(stat -c %a fixed/d fixed/d/f fixed/g | tr '\n' ' ')" = "700 600 600 " ]
	chmod -R u+rwX fixed
	# without it the modes stay, in a SIF too
	"$SIFU" -q build p.sif p.def
	lln p.sif | grep -q '^---------- 0/0 .* squashfs-root/d/f$'
	lln p.sif | grep -q '^dr-x------ 0/0 .* squashfs-root/d$'
	# --section: only the named sections run
	"$SIFU" -q build --section environment --sandbox only p.def
	[ ! -e only/d ]
	grep -q 'export E=1' only/.singularity.d/env/90-environment.sh
	run "$SIFU" build --section bogus x.sif p.def
	assert_sifu_error
	no_leftovers
}
