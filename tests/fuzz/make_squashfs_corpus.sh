#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Regenerate the small SquashFS seeds in corpus/squashfs/ (also the unit
# test's fixtures, see tests/unit/test_fuse.c): one tree, every compressor.
set -eu
out=$(cd "$(dirname "$0")" && pwd)/corpus/squashfs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t=$tmp/tree
mkdir -p "$t/dir/sub" "$t/empty"
printf 'hello, world\n' >"$t/hello"
seq 1 3000 >"$t/dir/numbers"            # 13893 bytes: 3 blocks of 4K + a tail
head -c 5000 /dev/zero >"$t/zeros"      # sparse blocks
ln "$t/hello" "$t/dir/hello-link"
ln -s ../hello "$t/dir/sym"
setfattr -n user.greeting -v hi "$t/hello"
for c in gzip xz lzo lz4 zstd; do
	mksquashfs "$t" "$out/tree-$c.sqfs" -comp "$c" -b 4096 -all-root -all-time 1700000000 \
		-mkfs-time 1700000000 -noappend -quiet -no-progress >/dev/null
done
mksquashfs "$t" "$out/tree-nofrag.sqfs" -b 4096 -no-fragments -no-xattrs -all-root \
	-all-time 1700000000 -mkfs-time 1700000000 -noappend -quiet -no-progress >/dev/null
