#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
# Real clients that drive `singularity` (issue 17): cwltool --singularity and
# Snakemake 7 --use-singularity, with sifu installed as `singularity` (a
# symlink in a PATH directory) and images in the local test registry.  Each
# pulls with its own command line (`pull --force --name`, `pull --name`),
# reads `singularity --version`, and runs its steps with `exec`.
load helpers

ROOT=$BATS_TEST_DIRNAME/../..

setup_file() {
	local d=$BATS_FILE_TMPDIR
	python3 "$BATS_TEST_DIRNAME/pull_image.py" "$d/img" --no-zstd
	REGISTRY=$("$ROOT/scripts/registry" start "$d/reg")
	echo "REGISTRY=$REGISTRY" >"$d/vars"
	skopeo copy -q --dest-tls-verify=false oci:"$d/img":latest docker://"$REGISTRY"/sifu/client:1
}

teardown_file() {
	"$ROOT/scripts/registry" stop "$BATS_FILE_TMPDIR/reg" || true
}

setup() {
	. "$BATS_FILE_TMPDIR/vars"
	require_feature "user namespaces" unshare -Ur true
	cd "$BATS_TEST_TMPDIR"
	mkdir bin
	ln -s "$SIFU" bin/singularity
	export PATH=$PWD/bin:$PATH
	export SIFU_CACHEDIR=$BATS_TEST_TMPDIR/cache
	# the test registry speaks plain HTTP; the tools pass no flag for it,
	# Apptainer's variable does
	export SINGULARITY_NOHTTPS=1
}

# cwltool's user guide, "Using Singularity" (cwltool --singularity): a
# DockerRequirement's dockerPull is pulled with `singularity pull --force
# --name IMAGE.sif docker://…` and each step runs under `singularity exec
# --contain --ipc --cleanenv --pid --home … --net --network none`.
@test "cwltool --singularity runs a two-step workflow from the local registry" {
	require_feature "cwltool" command -v cwltool
	cat >wf.cwl <<EOF
cwlVersion: v1.2
class: Workflow
inputs:
  message: string
outputs:
  shout:
    type: File
    outputSource: upper/out
steps:
  say:
    run:
      class: CommandLineTool
      requirements:
        DockerRequirement:
          dockerPull: $REGISTRY/sifu/client:1
      # in the container: the image's os-release (ID=sifutest), not the host's
      baseCommand: [sh, -c, 'echo "\$0"; grep ^ID= /etc/os-release']
      inputs:
        msg:
          type: string
          inputBinding: {position: 1}
      stdout: said.txt
      outputs:
        out: {type: stdout}
    in: {msg: message}
    out: [out]
  upper:
    run:
      class: CommandLineTool
      requirements:
        DockerRequirement:
          dockerPull: $REGISTRY/sifu/client:1
      baseCommand: [tr, a-z, A-Z]
      inputs:
        f: File
      stdin: \$(inputs.f.path)
      stdout: shout.txt
      outputs:
        out: {type: stdout}
    in: {f: say/out}
    out: [out]
EOF
	mkdir work
	run bash -c 'cd work && cwltool --singularity --outdir ../out ../wf.cwl --message "hello from cwl" 2>../log'
	cat log >&2
	[ "$status" -eq 0 ]
	[ "$(cat out/shout.txt)" = "$(printf 'HELLO FROM CWL\nID=SIFUTEST')" ]
	# the image cwltool pulled, under the name it gave
	siftool list "work/${REGISTRY}_sifu_client:1.sif" >/dev/null
}

# Snakemake 7 docs, "Running jobs in containers" (--use-singularity, the
# `container:` directive): the image is pulled with `singularity pull --name
# HASH.simg docker://…` into .snakemake/singularity and each job runs under
# `singularity exec --home CWD … IMAGE SHELL -c CMD`.
@test "snakemake --use-singularity runs a two-rule workflow with a container: directive" {
	require_feature "snakemake" command -v snakemake
	cat >Snakefile <<EOF
# the busybox image has sh, not Snakemake's default bash
shell.executable("/bin/sh")
container: "docker://$REGISTRY/sifu/client:1"

rule all:
    input: "shout.txt"

rule say:
    output: "said.txt"
    # in the container: the image's os-release (ID=sifutest), not the host's
    shell: "{{ echo hello from snakemake; grep ^ID= /etc/os-release; }} > {output}"

rule upper:
    input: "said.txt"
    output: "shout.txt"
    shell: "tr a-z A-Z < {input} > {output}"
EOF
	run bash -c 'snakemake --use-singularity --cores 1 >log 2>&1'
	cat log >&2
	[ "$status" -eq 0 ]
	[ "$(cat shout.txt)" = "$(printf 'HELLO FROM SNAKEMAKE\nID=SIFUTEST')" ]
	grep -q "Activating singularity image" log
	for f in .snakemake/singularity/*.simg; do siftool list "$f" >/dev/null; done
}
