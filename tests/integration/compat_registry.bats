#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Registries as a new user meets them (issue 17): an unreachable registry
# says which one and why, retries show; registry login checks the
# credentials before storing them and logout says what it removed; Apptainer's
# `remote` login verbs, and the verbs that do not apply to sifu (remote
# endpoints, keyserver, search, plugin) say so plainly.
load helpers
bats_require_minimum_version 1.5.0

ROOT=$BATS_TEST_DIRNAME/../..

setup_file() {
	local d=$BATS_FILE_TMPDIR
	python3 "$BATS_TEST_DIRNAME/pull_image.py" "$d/img" --no-zstd
	R=$("$ROOT/scripts/registry" start "$d/reg" --tls --htpasswd alice:s3cret)
	echo "R=$R" >"$d/vars"
	skopeo copy -q --dest-tls-verify=false --dest-creds alice:s3cret \
		oci:"$d/img":latest docker://"$R"/priv/img:1
}

teardown_file() {
	for r in "$BATS_FILE_TMPDIR"/reg*; do
		[ -d "$r" ] && "$ROOT/scripts/registry" stop "$r" || true
	done
}

setup() {
	. "$BATS_FILE_TMPDIR/vars"
	cd "$BATS_TEST_TMPDIR"
	export SIFU_CACHEDIR=$PWD/cache HOME=$PWD/home
	mkdir -p home
	# for sanitizer builds: see the file for the one leak that is not ours
	export LSAN_OPTIONS="suppressions=$BATS_TEST_DIRNAME/lsan-libsquashfs.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A registry that answers its first N requests 503 (Retry-After: 1), then
# closes its port as a registry going down does.  Its port lands in ./port.
flaky_start() {
	python3 - "$PWD/port" "$1" 3>&- <<'PY' &
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_port))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
for _ in range(int(sys.argv[2])):
    s.handle_request()
s.server_close()
PY
	for _ in $(seq 100); do [ -s port ] && break; sleep 0.05; done
}

# Apptainer: a pull from a registry that does not answer fails with the
# registry named (user guide, "Troubleshooting"; e2e docker "testDockerPulls"
# KO cases).  sifu: the cause in words, a hint, no libcurl text; a port
# nothing listens on, on this machine, is not retried for 31 s.
@test "unreachable registry: a closed local port fails at once, naming the registry and the cause" {
	local p
	p=$(free_port)
	local t0=$SECONDS
	run_sifu pull --nohttps x.sif docker://127.0.0.1:"$p"/a/b:1
	assert_sifu_error
	[ $((SECONDS - t0)) -lt 5 ] || { echo "took $((SECONDS - t0)) s: $output"; false; }
	[[ "$output" == *"registry 127.0.0.1:$p"* ]]
	[[ "$output" == *"connection refused"* ]]
	[[ "$output" == *"nothing listens there"* ]]
	[[ "$output" != *"Couldn't connect"* && "$output" != *"Failed to connect"* ]]
	[ ! -e x.sif ]
}

# Same source.  Retries keep their policy (SIFU_PULL_RETRIES, backoff from
# 1 s) but each one is a line at the default level: which registry, what
# failed, when the next try is.  A refusal after the registry has answered is
# a restart in progress, and is retried.
@test "retries are visible: HTTP 503, then a registry that went away, one line per retry" {
	flaky_start 1
	local p
	p=$(cat port)
	SIFU_PULL_RETRIES=2 run_sifu pull --nohttps x.sif docker://127.0.0.1:"$p"/a/b:1
	assert_sifu_error
	[[ "$output" == *"registry 127.0.0.1:$p: HTTP 503; trying again in 1 s (retry 1 of 2)"* ]]
	[[ "$output" == *"registry 127.0.0.1:$p: connection refused; trying again in 2 s (retry 2 of 2)"* ]]
	[[ "$output" == *"cannot reach registry 127.0.0.1:$p: connection refused (gave up after 3 tries)"* ]]
	[ ! -e x.sif ]
}

@test "retries are visible: a name that does not resolve" {
	SIFU_PULL_RETRIES=1 run_sifu pull x.sif docker://sifu-test-no-such-host.invalid/a/b:1
	assert_sifu_error
	[[ "$output" == *"registry sifu-test-no-such-host.invalid: name not resolved; trying again in 1 s (retry 1 of 1)"* ]]
	[[ "$output" == *"cannot reach registry sifu-test-no-such-host.invalid: name not resolved (gave up after 2 tries)"* ]]
	[[ "$output" == *"check the registry's name"* ]]
}

# Apptainer: a registry whose certificate does not verify fails (e2e docker
# "testDockerPulls", registry with a self-signed CA).  sifu: in words, with
# the remedies, not retried.
@test "a TLS certificate that is not trusted: said in words, with the remedy" {
	run_sifu pull x.sif docker://"$R"/priv/img:1
	assert_sifu_error
	[[ "$output" == *"cannot reach registry $R: TLS certificate not trusted"* ]]
	[[ "$output" == *"SIFU_CA_BUNDLE"* && "$output" == *"--insecure"* ]]
	[[ "$output" != *"trying again"* ]]
}

# Apptainer e2e registry "registryAuth"/"registryLogin": "login OK",
# "login password-stdin", "logout OK", "logout KO" (exit 0, a warning), and
# registryList.  sifu: a wrong password is refused by the registry before
# anything is stored, and the good credentials stay.
@test "registry login checks the credentials first; a wrong password leaves the stored ones" {
	export SIFU_CA_BUNDLE=$BATS_FILE_TMPDIR/reg/ca.pem
	local cfg=home/.apptainer/docker-config.json
	echo s3cret | "$SIFU" registry login -u alice --password-stdin docker://"$R"
	cp "$cfg" good.json
	run_sifu registry login -u alice -p wrong docker://"$R"
	assert_sifu_error
	[[ "$output" == *"registry $R refused the user name or password of 'alice'"* ]]
	[[ "$output" == *"not changed"* ]]
	[[ "$output" != *"Token stored"* ]]
	cmp good.json "$cfg"
	# what is stored still pulls
	"$SIFU" -q pull --disable-cache t.sif docker://"$R"/priv/img:1
	siftool list t.sif >/dev/null
	run_sifu registry list
	[ "$status" -eq 0 ]
	[[ "$output" == *"docker://$R  alice"* ]]
	run_sifu registry logout docker://"$R"
	[ "$status" -eq 0 ]
	[[ "$output" == *"removed the credentials of 'alice' for $R from $PWD/$cfg"* ]]
	run_sifu registry logout docker://"$R"
	[ "$status" -eq 0 ]
	[[ "$output" == *"no credentials for $R are stored in $PWD/$cfg: nothing removed"* ]]
	# a first login with a wrong password stores nothing either
	run_sifu registry login -u alice -p wrong docker://"$R"
	assert_sifu_error
	run_sifu registry list
	[[ "$output" != *"docker://$R"* ]]
}

# Apptainer e2e registry "registryLogin": "login without scheme KO",
# "login username and empty password", "login empty username and password".
@test "registry login: no scheme, an empty password or no user name are refused" {
	run_sifu registry login -u alice -p s3cret "$R"
	assert_sifu_error
	[[ "$output" == *"not a docker:// or oras:// URI"* ]]
	run_sifu registry login -u alice -p "" docker://"$R"
	assert_sifu_error
	run_sifu registry login -p bad docker://"$R"
	assert_sifu_error
	[ ! -e home/.apptainer/docker-config.json ]
}

# Token auth (the Docker token spec): the token service refuses the wrong
# password; the right one gets a token and is stored.
@test "registry login with token auth: checked against the token service" {
	local r=$BATS_FILE_TMPDIR/reg-token
	local T
	T=$("$ROOT/scripts/registry" start "$r" --token bob:pw)
	run_sifu registry login --nohttps -u bob -p nope docker://"$T"
	assert_sifu_error
	[[ "$output" == *"refused the user name or password of 'bob'"* ]]
	run_sifu registry login --nohttps -u bob -p pw docker://"$T"
	"$ROOT/scripts/registry" stop "$r"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Token stored"* ]]
}

# Apptainer cmd/internal/cli/remote.go: remote login [-u] [-p|--password-stdin]
# URI, remote logout URI, remote list; for an OCI registry they are the
# registry verbs (e2e remote "remoteList", registry "registryAuth").
@test "remote login/logout/list are registry login/logout/list" {
	export SIFU_CA_BUNDLE=$BATS_FILE_TMPDIR/reg/ca.pem
	run_sifu remote login -u alice -p wrong docker://"$R"
	assert_sifu_error
	[[ "$output" == *"refused"* ]]
	echo s3cret | "$SIFU" remote login --username alice --password-stdin docker://"$R"
	run_sifu remote list
	[ "$status" -eq 0 ]
	[[ "$output" == *"docker://$R  alice"* ]]
	"$SIFU" -q pull --disable-cache t.sif docker://"$R"/priv/img:1
	run_sifu remote logout docker://"$R"
	[ "$status" -eq 0 ]
	[[ "$output" == *"removed the credentials of 'alice'"* ]]
	run_sifu remote --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"remote login|logout"* ]]
}

# Apptainer e2e remote "remoteAdd", "remoteUse", "remoteStatus" and the
# keyserver verbs work on library endpoints and keyservers, which sifu does
# not have: one line, exit 255, whatever flags come with them.
@test "remote add/use/status, a remote endpoint name and keyserver: no such endpoint in sifu" {
	for args in "add --no-login --global e2e https://cloud.example.org" "use --exclusive SylabsCloud" \
		"status" "login SylabsCloud" "add-keyserver https://keys.example.org"; do
		# shellcheck disable=SC2086
		run_sifu remote $args
		assert_sifu_error
		[ "$(message_count)" -eq 1 ] || { echo "$output"; false; }
		[[ "$output" == *"sifu does not have"* || "$output" == *"does not apply to sifu"* ]]
		[[ "$output" != *"unknown"* ]]
	done
	run_sifu keyserver add https://keys.example.org
	assert_sifu_error
	[[ "$output" == *"'keyserver' does not apply to sifu"* && "$output" == *"sifu key import"* ]]
}

# Apptainer's search (the library) and plugin verbs (user guide, "Command
# Line Interface"): not "unknown verb" with an unrelated suggestion.
@test "search and plugin say they do not apply, and what to do instead" {
	run_sifu search --library https://library.example.org alpine
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[[ "$output" == *"'search' does not apply to sifu"* && "$output" == *"skopeo list-tags"* ]]
	[[ "$output" != *"unknown verb"* && "$output" != *"did you mean"* ]]
	run_sifu plugin list
	assert_sifu_error
	[ "$(message_count)" -eq 1 ]
	[[ "$output" == *"'plugin' does not apply to sifu"* ]]
	[[ "$output" != *"unknown verb"* && "$output" != *"did you mean"* ]]
}
