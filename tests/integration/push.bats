#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# sifu push (issue 17): a SIF to oras:// as Apptainer stores it
# (internal/pkg/client/oras), pulled back byte for byte by sifu pull oras://;
# signatures travel inside the SIF; credentials as pull finds them; the
# destinations and files Apptainer's push refuses are refused.
load helpers
bats_require_minimum_version 1.5.0

ROOT=$BATS_TEST_DIRNAME/../..

setup_file() {
	local d=$BATS_FILE_TMPDIR
	busybox_tree "$d/tree"
	SIFU_CACHEDIR=$d/cache "$SIFU" -q build "$d/img.sif" "$d/tree"
	{
		echo "REG=$("$ROOT/scripts/registry" start "$d/reg")"
		echo "AUTH=$("$ROOT/scripts/registry" start "$d/reg-auth" --htpasswd alice:s3cret)"
		echo "TOKEN=$("$ROOT/scripts/registry" start "$d/reg-token" --token alice:s3cret)"
	} >"$d/vars"
}

teardown_file() {
	for r in "$BATS_FILE_TMPDIR"/reg*; do
		[ -d "$r" ] && "$ROOT/scripts/registry" stop "$r" || true
	done
}

setup() {
	. "$BATS_FILE_TMPDIR/vars"
	cd "$BATS_TEST_TMPDIR"
	export SIFU_CACHEDIR=$PWD/cache HOME=$PWD/home XDG_CONFIG_HOME=$PWD/home/.config
	mkdir -p home
	unset SIFU_DOCKER_USERNAME SIFU_DOCKER_PASSWORD APPTAINER_DOCKER_USERNAME \
		APPTAINER_DOCKER_PASSWORD SINGULARITY_DOCKER_USERNAME SINGULARITY_DOCKER_PASSWORD
	cp "$BATS_FILE_TMPDIR/img.sif" img.sif
	# for sanitizer builds: see the file for the one leak that is not ours
	export LSAN_OPTIONS="suppressions=$BATS_TEST_DIRNAME/lsan-libsquashfs.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
}

# The manifest REGISTRY holds for REPO:TAG.
manifest() {
	curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$1/v2/$2/manifests/$3"
}

# e2e/push/push.go testPushCmd "standard SIF push with --no-https/--nohttps";
# the manifest is the one internal/pkg/client/oras/image.go NewImageFromSIF
# writes (config.go: the empty config and its media type).
@test "push oras:// stores the SIF as Apptainer does, and pull oras:// gets it back" {
	run_sifu push --nohttps img.sif oras://"$REG"/sif/img:1
	[ "$status" -eq 0 ]
	[[ "$output" == *"Upload complete"* ]]
	"$SIFU" -q pull --nohttps got.sif oras://"$REG"/sif/img:1
	cmp img.sif got.sif
	manifest "$REG" sif/img 1 >m.json
	python3 - "$(sha256sum <img.sif | cut -d' ' -f1)" "$(stat -c %s img.sif)" <<'PY'
import json, sys
m = json.load(open("m.json"))
assert m["schemaVersion"] == 2
assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
c = m["config"]
assert c["mediaType"] == "application/vnd.sylabs.sif.config.v1+json"
assert c["digest"] == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" and c["size"] == 2
[l] = m["layers"]
assert l["mediaType"] == "application/vnd.sylabs.sif.layer.v1.sif"
assert l["digest"] == "sha256:" + sys.argv[1] and l["size"] == int(sys.argv[2])
assert l["annotations"] == {"org.opencontainers.image.title": "img.sif"}
assert "org.opencontainers.image.created" in m["annotations"]
PY
	# the digest printed is the manifest's
	[[ "$output" == *"Digest: sha256:$(sha256sum <m.json | cut -d' ' -f1)"* ]]
}

# e2e/push/push.go testPushCmd "standard SIF push with --description" and
# "with --annotation": both become manifest annotations (push.go); a key
# without a value is left out with a warning.
@test "push --description and --annotation annotate the manifest" {
	run_sifu push --nohttps --description "a tool" --annotation team=hpc --annotation lonely \
		img.sif oras://"$REG"/sif/notes:1
	[ "$status" -eq 0 ]
	[[ "$output" == *'Value missing for "lonely"'* ]]
	manifest "$REG" sif/notes 1 >m.json
	python3 - <<'PY'
import json
a = json.load(open("m.json"))["annotations"]
assert a["org.opencontainers.image.description"] == "a tool", a
assert a["team"] == "hpc" and "lonely" not in a, a
PY
}

# e2e/push/push.go testPushCmd: the same SIF under a second tag; the blob
# the repository holds is not sent again (a HEAD finds it).
@test "push skips a blob the registry already has" {
	"$SIFU" -q push --nohttps img.sif oras://"$REG"/sif/again:1
	run_sifu -v push --nohttps img.sif oras://"$REG"/sif/again:2
	[ "$status" -eq 0 ]
	[[ "$output" == *"the registry has it already"* ]]
	"$SIFU" -q pull --nohttps got.sif oras://"$REG"/sif/again:2
	cmp img.sif got.sif
}

# Apptainer user guide, "Signing and verifying containers" and "Library
# API registries / oras": a signed SIF pushed as is still verifies.
@test "a signed SIF verifies after push and pull (docs/pull.md's example)" {
	local doc="$BATS_TEST_DIRNAME/../../docs/pull.md"
	# the indented block of the "Pushing" section, HOST being our registry
	awk '/^## Pushing/{f=1; next} /^## /{f=0} f && /^    /' "$doc" | sed "s/^    //; s/HOST/$REG/g" >example.sh
	grep -q '^sifu push' example.sh
	busybox_tree tree
	"$SIFU" -q build tool.sif tree
	sifu() { "$SIFU" "$@"; }
	set -e
	. ./example.sh
	set +e
	cmp tool.sif copy.sif
	run_sifu verify --key key.pub copy.sif
	[ "$status" -eq 0 ]
}

# e2e/push/push.go testPushCmd "non SIF file", "directory", "non existent image"
@test "push refuses a file that is not a SIF, a directory and a missing file" {
	echo "Invalid Image Contents" >bad.sif
	run_sifu push --nohttps bad.sif oras://"$REG"/sif/bad:1
	assert_sifu_error
	[[ "$output" == *'"bad.sif" is not a SIF'* ]]
	[ "$(message_count)" -eq 1 ]
	mkdir dir
	run_sifu push --nohttps dir oras://"$REG"/sif/bad:1
	assert_sifu_error
	[[ "$output" == *"not a SIF"* ]]
	run_sifu push --nohttps missing.sif oras://"$REG"/sif/bad:1
	assert_sifu_error
	[[ "$output" == *"missing.sif"* ]]
	# nothing reached the registry
	run ! manifest "$REG" sif/bad 1
}

# e2e/push/push.go testInvalidTransport; cmd/internal/cli/push.go pushes
# only library:// and oras://
@test "push refuses docker://, library:// and other destinations with one line" {
	run_sifu push img.sif docker://"$REG"/sif/img:1
	assert_sifu_error
	[[ "$output" == *"does not send to docker://"*"oras://$REG/sif/img:1"* ]]
	run_sifu push img.sif library://me/col/img:1
	assert_sifu_error
	[[ "$output" == *"library:// does not apply"* ]]
	run_sifu push img.sif "$REG"/sif/img:1
	assert_sifu_error
	run_sifu push img.sif oras://"$REG"/sif/img@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
	assert_sifu_error
	[[ "$output" == *"needs a tag"* ]]
	run_sifu push img.sif
	assert_sifu_error
}

# Apptainer user guide, "Support for Docker and OCI" / "oras": push with
# --docker-username/--docker-password, or the credentials registry login
# stored; none, or wrong ones, are refused by the registry.
@test "push to a registry with basic auth: flags, registry login, and refused without" {
	run_sifu push --nohttps img.sif oras://"$AUTH"/priv/img:1
	assert_sifu_error
	[[ "$output" == *"HTTP 401"*"push rights"* ]]
	run_sifu push --nohttps --docker-username alice --docker-password wrong img.sif oras://"$AUTH"/priv/img:1
	assert_sifu_error
	"$SIFU" -q push --nohttps --docker-username alice --docker-password s3cret img.sif oras://"$AUTH"/priv/img:1
	echo s3cret | "$SIFU" -q registry login --nohttps -u alice --password-stdin docker://"$AUTH"
	"$SIFU" -q push --nohttps img.sif oras://"$AUTH"/priv/img:2
	"$SIFU" -q pull --nohttps got.sif oras://"$AUTH"/priv/img:2
	cmp img.sif got.sif
}

# The Docker token flow (distribution's token auth): a push asks for a
# pull,push token; an anonymous token only pulls.
@test "push to a registry with bearer tokens" {
	run_sifu push --nohttps img.sif oras://"$TOKEN"/tok/img:1
	assert_sifu_error
	SIFU_DOCKER_USERNAME=alice SIFU_DOCKER_PASSWORD=s3cret "$SIFU" -q push --nohttps img.sif oras://"$TOKEN"/tok/img:1
	"$SIFU" -q pull --nohttps got.sif oras://"$TOKEN"/tok/img:1
	cmp img.sif got.sif
}
