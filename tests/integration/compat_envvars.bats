#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Apptainer's environment variables (issue 17, "Environment and output"):
# the appendix of Apptainer's user guide ("Apptainer's environment
# variables") and the EnvKeys of its flags (cmd/internal/cli/*.go).  A sample
# of the supported variables is checked for its flag's effect, one or more
# of each kind (action flag, pull, build, sign/verify, cache, global), and
# docs/cli.md's table is checked against what sifu accepts.
load helpers

ROOT=$BATS_TEST_DIRNAME/../..

setup_file() {
	local d=$BATS_FILE_TMPDIR
	python3 "$BATS_TEST_DIRNAME/pull_image.py" "$d/img" --no-zstd
	REGISTRY=$("$ROOT/scripts/registry" start "$d/reg")
	echo "REGISTRY=$REGISTRY" >"$d/vars"
	skopeo copy -q --dest-tls-verify=false oci:"$d/img":latest docker://"$REGISTRY"/sifu/env:1
	busybox_tree "$d/tree"
}

teardown_file() {
	"$ROOT/scripts/registry" stop "$BATS_FILE_TMPDIR/reg" || true
}

setup() {
	. "$BATS_FILE_TMPDIR/vars"
	export SIFU_CACHEDIR=$BATS_TEST_TMPDIR/cache
	unset SIFU_NOHTTPS APPTAINER_NOHTTPS SINGULARITY_NOHTTPS
	cd "$BATS_TEST_TMPDIR"
}

# Every variable sifu reads: each verb's man page (made from cli/options.def
# and the per-verb names of cli/opts.c) and the main page's ENVIRONMENT
# section (cli/env.c's variables), underscores unescaped.
accepted_vars() {
	local v
	{
		"$SIFU" help --markdown
		for v in $("$SIFU" help --markdown | sed -n 's/^\*\*\([a-z-]*\)\*\*$/\1/p'); do
			"$SIFU" help --markdown "$v" 2>/dev/null || true
		done
	} | sed 's/\\_/_/g' | grep -oE '\b[A-Z][A-Z0-9_]*[A-Z0-9]\b' | sort -u
}

# User guide appendix: every variable docs/cli.md's table answers "supported"
# for must be one sifu reads, under its APPTAINER_ and its SINGULARITY_ name
@test "every variable docs/cli.md lists as supported is accepted by sifu" {
	accepted_vars >acc
	[ "$(wc -l <acc)" -gt 100 ]
	sed -n '/^## Apptainer.s environment variables/,/^## /p' "$ROOT/docs/cli.md" |
		grep '^| `' >rows
	[ "$(wc -l <rows)" -gt 80 ]
	grep '| supported' rows | cut -d'|' -f2 | grep -oE '`[A-Z_]+`' | tr -d '`' |
		grep -v '^APPTAINERENV_' >names
	[ "$(wc -l <names)" -gt 70 ]
	local n missing=
	while read -r n; do
		grep -qx "$n" acc || missing="$missing $n"
		case $n in APPTAINER_*)
			grep -qx "SINGULARITY_${n#APPTAINER_}" acc || missing="$missing SINGULARITY_${n#APPTAINER_}"
			;;
		esac
	done <names
	echo "listed as supported, not accepted:$missing"
	[ -z "$missing" ]
	# each row gives an answer
	run grep -vE '\| (supported|not applicable|not yet|the message-level item)' rows
	[ "$status" -eq 1 ]
}

# Action flags.  action_flags.go: --overlay's EnvKeys OVERLAY, OVERLAYIMAGE;
# --no-init's NOSHIMINIT (e2e/actions/actions.go PID namespace tests)
@test "APPTAINER_OVERLAYIMAGE is --overlay, SINGULARITY_NOSHIMINIT is --no-init" {
	mkdir ov
	APPTAINER_OVERLAYIMAGE=$PWD/ov run_sifu exec "$BATS_FILE_TMPDIR/tree" sh -c 'echo hi >/new'
	[ "$status" -eq 0 ]
	[ "$(cat ov/upper/new)" = hi ]
	SINGULARITY_NOSHIMINIT=true run_sifu exec --pid "$BATS_FILE_TMPDIR/tree" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" = 1 ]
	SINGULARITY_NOSHIMINIT=false run_sifu exec --pid "$BATS_FILE_TMPDIR/tree" sh -c 'echo $$'
	[ "$status" -eq 0 ]
	[ "$output" != 1 ]
}

# Pull.  apptainer.go: --no-https's EnvKeys NOHTTPS, NO_HTTPS; the appendix's
# "APPTAINER_NO_HTTPS and APPTAINER_NOHTTPS"
@test "APPTAINER_NO_HTTPS lets pull reach a plain-HTTP registry" {
	run_sifu -q pull a.sif docker://"$REGISTRY"/sifu/env:1
	[ "$status" -eq 255 ]
	[ ! -e a.sif ]
	APPTAINER_NO_HTTPS=1 run_sifu -q pull a.sif docker://"$REGISTRY"/sifu/env:1
	[ "$status" -eq 0 ]
	[ -s a.sif ]
	SINGULARITY_NO_HTTPS=true run_sifu -q pull b.sif docker://"$REGISTRY"/sifu/env:1
	[ "$status" -eq 0 ]
}

# Build.  build.go: --fix-perms's EnvKeys FIXPERMS (not FIX_PERMS)
@test "APPTAINER_FIXPERMS is build --fix-perms" {
	printf 'Bootstrap: busybox\n%%post\n    touch /g && chmod 0000 /g\n' >p.def
	APPTAINER_FIXPERMS=1 run_sifu -q build --sandbox fixed p.def
	[ "$status" -eq 0 ]
	[ "$(stat -c %a fixed/g)" = 600 ]
	chmod -R u+rwX fixed
}

# Global.  apptainer.go: --tmpdir's EnvKeys TMPDIR (APPTAINER_TMPDIR and its
# legacy SINGULARITY_TMPDIR; "Temporary Folders" of the user guide)
@test "SINGULARITY_TMPDIR is build's temporary directory" {
	printf 'Bootstrap: busybox\n' >t.def
	SINGULARITY_TMPDIR=$PWD/nowhere run_sifu -q build t.sif t.def
	[ "$status" -eq 255 ]
	[[ "$output" == *"$PWD/nowhere"* ]]
	[ ! -e t.sif ]
	mkdir tmp
	SINGULARITY_TMPDIR=$PWD/tmp run_sifu -q build t.sif t.def
	[ "$status" -eq 0 ]
	[ -z "$(ls -A tmp)" ]
}

# Sign and verify.  verify.go: --key's EnvKeys VERIFY_KEY; sign.go: SIGN_KEY,
# which verify must not take (it names a private key)
@test "APPTAINER_VERIFY_KEY is verify --key; APPTAINER_SIGN_KEY is sign's only" {
	local f=$SIFU_FIXTURES/sif
	APPTAINER_VERIFY_KEY=$f/ed25519-public.pem run_sifu verify "$f/one-group-signed-dsse.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"signed by: SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs"* ]]
	APPTAINER_SIGN_KEY=$PWD/private.pem run_sifu verify "$f/one-group-signed-dsse.sif"
	[ "$status" -eq 255 ]
	[[ "$output" != *private.pem* ]]
	cp "$f/one-group-signed-dsse.sif" s.sif
	SINGULARITY_SIGN_KEY=$PWD/nokey.pem run_sifu sign s.sif
	[ "$status" -eq 255 ]
	[[ "$output" == *nokey.pem* ]]
}

# Cache.  User guide "Cache Folders": APPTAINER_CACHEDIR (cache list names it)
@test "APPTAINER_CACHEDIR is the cache sifu lists" {
	unset SIFU_CACHEDIR
	mkdir c
	APPTAINER_CACHEDIR=$PWD/c run_sifu cache list
	[ "$status" -eq 0 ]
	[[ "$output" == *"Cache directory: $PWD/c"* ]]
}

# registry.go: registry login's --username and --password EnvKeys
# LOGIN_USERNAME, LOGIN_PASSWORD; remote.go: --insecure's LOGIN_INSECURE
@test "APPTAINER_LOGIN_USERNAME, _PASSWORD and _INSECURE are registry login's flags" {
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME"
	APPTAINER_LOGIN_USERNAME=u APPTAINER_LOGIN_PASSWORD=p APPTAINER_LOGIN_INSECURE=1 \
		run_sifu registry login docker://"$REGISTRY"
	# the test registry asks for no credentials: the login is checked and stored
	[ "$status" -eq 0 ]
	grep -q "$REGISTRY" "$HOME/.apptainer/docker-config.json"
}

# internal/pkg/syfs (ConfigDir: APPTAINER_CONFIGDIR, else ~/.apptainer):
# registry logins are kept in its docker-config.json, which pull reads,
# and its keys/pgp-public is among the public keys verify trusts
@test "APPTAINER_CONFIGDIR holds the registry logins, instead of ~/.apptainer" {
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME"
	APPTAINER_CONFIGDIR=$BATS_TEST_TMPDIR/cfg APPTAINER_LOGIN_USERNAME=u \
		APPTAINER_LOGIN_PASSWORD=p APPTAINER_LOGIN_INSECURE=1 \
		run_sifu registry login docker://"$REGISTRY"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	grep -q "$REGISTRY" "$BATS_TEST_TMPDIR/cfg/docker-config.json"
	[ ! -e "$HOME/.apptainer/docker-config.json" ]
	SINGULARITY_CONFIGDIR=$BATS_TEST_TMPDIR/cfg run_sifu registry list
	[[ "$output" == *"$REGISTRY"* ]] || { echo "$output"; false; }
	run_sifu registry list
	[[ "$output" != *"$REGISTRY"* ]] || { echo "$output"; false; }
}
