#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# `sifu inspect` as Apptainer's: metadata written by Apptainer/Singularity
# read, Apptainer's layout written, sandboxes and bare SquashFS inspected,
# values shown as Apptainer shows them.  Sources: Apptainer's e2e test
# e2e/inspect/inspect.go (apptainerInspect, whose container is
# e2e/testdata/inspector_container.def), its metadata layout in
# pkg/inspect/metadata.go and cmd/internal/cli/inspect.go, and the files its
# builder writes in internal/pkg/build/metadata.go.
load helpers

setup_file() {
	export D="$BATS_FILE_TMPDIR"
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

@test "inspect of a missing path: one line that says what inspect reads, exit 255" {
	run_sifu inspect "$D/no-such-image.sif"
	[ "$status" -eq 255 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *"cannot open $D/no-such-image.sif"* ]]
	[[ "$output" == *"SIF image, a sandbox directory or a SquashFS file"* ]]
}
