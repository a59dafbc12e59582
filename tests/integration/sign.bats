#!/usr/bin/env bats
# sifu sign / verify / key against the reference images of sylabs/sif
# (tests/fixtures/sif, see its README): the signatures must be Apptainer's.
load helpers

setup() {
	F=$SIFU_FIXTURES/sif
	# a clean home: sifu's keyring lives under $XDG_CONFIG_HOME/sifu/keys
	export HOME=$BATS_TEST_TMPDIR/home XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/home/.config
	mkdir -p "$HOME"
	unset SIFU_KEYSDIR
	# RSA 2048 keeps key generation fast; the default is 4096 like Apptainer
	export SIFU_KEY_ALGO=rsa2048
	T=$BATS_TEST_TMPDIR
}

teardown() {
	# gpg-agent started for this test's keyring must not outlive it
	gpgconf --homedir "$XDG_CONFIG_HOME/sifu/keys/gnupg" --kill gpg-agent 2>/dev/null || true
}

@test "DSSE image verifies with the Ed25519 and with the RSA public key" {
	run_sifu verify --key "$F/ed25519-public.pem" "$F/one-group-signed-dsse.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"signed by: SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs"* ]]
	[[ "$output" == *"covers object 1"* ]]
	[[ "$output" == *"covers object 2"* ]]
	run_sifu verify --key "$F/rsa-public.pem" "$F/one-group-signed-dsse.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"signed by: SHA256:BhCwr7qZulYcOMSl2Jt2DuYHxHNnN6th4NdMqR/PGa4"* ]]
}

@test "a stranger's key does not verify, and the error names the key ids expected" {
	openssl genpkey -algorithm ed25519 -out "$T/k.pem" 2>/dev/null
	openssl pkey -in "$T/k.pem" -pubout -out "$T/k.pub"
	run_sifu verify --key "$T/k.pub" "$F/one-group-signed-dsse.sif"
	[ "$status" -eq 255 ]
	[[ "$output" == *"ERROR:   verify: signature object 3: no trusted key"*"SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs"* ]]
	# with no key at all: it says what to give
	run_sifu verify "$F/one-group-signed-dsse.sif"
	[ "$status" -eq 255 ]
	[[ "$output" == *"DSSE envelope: verify it with --key"* ]]
}

@test "OpenPGP image verifies once the public key is imported, names the fingerprint before" {
	run_sifu verify "$F/one-group-signed-pgp.sif"
	[ "$status" -eq 255 ]
	[[ "$output" == *"no trusted key: signed by 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84"* ]]
	mkdir -m 700 "$T/gpg"
	gpg --batch --quiet --homedir "$T/gpg" --import "$F/private.asc" 2>/dev/null
	gpg --batch --homedir "$T/gpg" --export 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84 > "$T/pub.gpg"
	gpgconf --homedir "$T/gpg" --kill gpg-agent || true
	run_sifu key import "$T/pub.gpg"
	[ "$status" -eq 0 ]
	run_sifu verify "$F/one-group-signed-pgp.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"signed by: 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84"* ]]
}

@test "Apptainer's own public keyring is read (read only) when a signer is missing" {
	mkdir -p "$HOME/.apptainer/keys" "$T/gpg"
	chmod 700 "$T/gpg"
	gpg --batch --quiet --homedir "$T/gpg" --import "$F/private.asc"
	gpg --batch --homedir "$T/gpg" --export > "$HOME/.apptainer/keys/pgp-public"
	gpgconf --homedir "$T/gpg" --kill gpg-agent || true
	sum=$(sha256sum "$HOME/.apptainer/keys/pgp-public")
	run_sifu verify "$F/one-group-signed-pgp.sif"
	[ "$status" -eq 0 ]
	[ "$(sha256sum "$HOME/.apptainer/keys/pgp-public")" = "$sum" ]
}

@test "legacy signatures are reported as legacy and verify only with --legacy-insecure" {
	run_sifu key import "$F/private.asc"
	[ "$status" -eq 0 ]
	for img in one-group-signed-legacy one-group-signed-legacy-group one-group-signed-legacy-all; do
		run_sifu verify "$F/$img.sif"
		[ "$status" -eq 255 ]
		[[ "$output" == *"only legacy signatures"*"--legacy-insecure"* ]]
		run_sifu verify --legacy-insecure "$F/$img.sif"
		[ "$status" -eq 0 ]
		[[ "$output" == *"legacy OpenPGP"* ]]
	done
	run_sifu verify --legacy-insecure --all "$F/one-group-signed-legacy-all.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"covers object 1"* && "$output" == *"covers object 2"* ]]
	# a legacy signature of one object does not vouch for the other
	run_sifu verify --legacy-insecure --sif-id 1 "$F/one-group-signed-legacy.sif"
	[ "$status" -eq 255 ]
}

@test "sign --key with both PEM keys writes the reference image byte for byte" {
	cp "$F/one-group.sif" "$T/img.sif"
	run_sifu sign --key "$F/ed25519-private.pem" --key "$F/rsa-private.pem" "$T/img.sif"
	[ "$status" -eq 0 ]
	cmp "$T/img.sif" "$F/one-group-signed-dsse.sif"
	# and what sifu signed, sifu verifies
	run_sifu verify --key "$F/rsa-public.pem" "$T/img.sif"
	[ "$status" -eq 0 ]
}

@test "sign with a keyring key: the reference's structure, and gpg --verify accepts it" {
	run_sifu key import "$F/private.asc"
	[ "$status" -eq 0 ]
	cp "$F/one-group.sif" "$T/img.sif"
	run_sifu sign "$T/img.sif"
	[ "$status" -eq 0 ]
	# same descriptor fields as the reference's signature object
	"$SIFU" sif info 3 "$T/img.sif" | grep -v -E 'Size|Offset' > "$T/mine"
	"$SIFU" sif info 3 "$F/one-group-signed-pgp.sif" | grep -v -E 'Size|Offset' > "$T/ref"
	diff "$T/mine" "$T/ref"
	# the same signed JSON
	"$SIFU" sif dump 3 "$T/img.sif" > "$T/sig.asc"
	"$SIFU" sif dump 3 "$F/one-group-signed-pgp.sif" > "$T/ref.asc"
	diff <(sed -n '/^{/p' "$T/sig.asc") <(sed -n '/^{/p' "$T/ref.asc")
	# GnuPG itself accepts it
	mkdir -m 700 "$T/gpg"
	gpg --batch --quiet --homedir "$T/gpg" --import "$F/private.asc" 2>/dev/null
	gpg --batch --homedir "$T/gpg" --verify "$T/sig.asc"
	gpgconf --homedir "$T/gpg" --kill gpg-agent || true
	run_sifu verify "$T/img.sif"
	[ "$status" -eq 0 ]
}

@test "key newpair, sign, verify in a clean home; a removed key fails naming its fingerprint" {
	run_sifu key newpair --name "Sifu Test" --email test@example.org --comment ci < /dev/null
	[ "$status" -eq 0 ]
	fpr=$("$SIFU" key list --json | jq -r '.[0].fingerprint')
	[ ${#fpr} -eq 40 ]
	run_sifu key list --secret
	[[ "$output" == *"F: $fpr"* ]]
	cp "$F/one-group.sif" "$T/img.sif"
	run_sifu sign "$T/img.sif"
	[ "$status" -eq 0 ]
	run_sifu verify "$T/img.sif"
	[ "$status" -eq 0 ]
	[[ "$output" == *"signed by: $fpr"* ]]
	run_sifu key export --armor "$fpr" "$T/pub.asc"
	[ "$status" -eq 0 ]
	grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$T/pub.asc"
	run_sifu key remove "$fpr"
	[ "$status" -eq 0 ]
	run_sifu verify "$T/img.sif"
	[ "$status" -eq 255 ]
	[[ "$output" == *"no trusted key: signed by $fpr"* ]]
	run_sifu key import "$T/pub.asc"
	[ "$status" -eq 0 ]
	run_sifu verify "$T/img.sif"
	[ "$status" -eq 0 ]
}

@test "verify fails with one line per problem: changed object, changed descriptor, uncovered object" {
	cp "$F/one-group-signed-dsse.sif" "$T/img.sif"
	# a byte of object 2 (at 36864)
	printf '\x00' | dd of="$T/img.sif" bs=1 seek=36866 conv=notrunc status=none
	run_sifu verify --key "$F/ed25519-public.pem" "$T/img.sif"
	[ "$status" -eq 255 ]
	[ "$(printf '%s\n' "$output" | grep -c '^ERROR:   verify: ')" -eq 1 ]
	[[ "$output" == *"object 2: digest differs"* ]]
	# a byte of descriptor 1's name (descriptor table at 4096, name at +73)
	cp "$F/one-group-signed-dsse.sif" "$T/img.sif"
	printf 'x' | dd of="$T/img.sif" bs=1 seek=$((4096 + 73)) conv=notrunc status=none
	run_sifu verify --key "$F/ed25519-public.pem" "$T/img.sif"
	[ "$status" -eq 255 ]
	[[ "$output" == *"descriptor of object 1: digest differs"* ]]
	# a new object in the signed group is not covered by the signature
	cp "$F/one-group-signed-dsse.sif" "$T/img.sif"
	echo '{}' > "$T/o.json"
	"$SIFU" sif add --datatype 6 --groupid 1 "$T/img.sif" "$T/o.json"
	run_sifu verify --key "$F/ed25519-public.pem" "$T/img.sif"
	[ "$status" -eq 255 ]
	[[ "$output" == *"object 4 of group 1 is not covered by signature object 3"* ]]
	# JSON for scripts
	run "$SIFU" verify --json --key "$F/ed25519-public.pem" "$T/img.sif"
	[ "$status" -eq 255 ]
	printf '%s\n' "$output" | sed '/^ERROR:/d' | jq -e '.verified == false and (.problems | length) == 1'
}

@test "--sif-id and --group-id select what is signed and verified; --json reports coverage" {
	cp "$F/two-groups.sif" "$T/img.sif"
	run_sifu sign --key "$F/ed25519-private.pem" --sif-id 2 "$T/img.sif"
	[ "$status" -eq 0 ]
	run_sifu verify --key "$F/ed25519-public.pem" --sif-id 2 "$T/img.sif"
	[ "$status" -eq 0 ]
	# the group as a whole is not covered (object 1 is not signed)
	run_sifu verify --key "$F/ed25519-public.pem" --group-id 1 "$T/img.sif"
	[ "$status" -eq 255 ]
	[[ "$output" == *"object 1 of group 1 is not covered"* ]]
	run_sifu sign --key "$F/ed25519-private.pem" --group-id 2 "$T/img.sif"
	[ "$status" -eq 0 ]
	run "$SIFU" verify --json --key "$F/ed25519-public.pem" --group-id 2 "$T/img.sif"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | jq -e '.verified and .signatures[0].group == 2 and .signatures[0].covers == [3]'
}

@test "bad input: one error line, exit 255" {
	echo notasif > "$T/x.sif"
	run_sifu verify "$T/x.sif"
	assert_sifu_error
	run_sifu sign --key "$F/ed25519-public.pem" "$F/one-group.sif"
	assert_sifu_error
	[[ "$output" == *"PEM private key"* ]]
	run_sifu verify --sif-id x "$F/one-group.sif"
	assert_sifu_error
	run_sifu key frobnicate
	assert_sifu_error
}

@test "a passphrase-protected key signs with the right passphrase only; export of the one key" {
	export SIFU_PASSPHRASE=s3cret
	run_sifu key newpair --name "Sifu Pass" --email pass@example.org --password < /dev/null
	[ "$status" -eq 0 ]
	cp "$F/one-group.sif" "$T/img.sif"
	SIFU_PASSPHRASE=wrong run "$SIFU" sign "$T/img.sif" < /dev/null
	assert_sifu_error
	[[ "$output" == *"Bad passphrase"* ]]
	# nothing was added
	[ "$("$SIFU" sif list "$T/img.sif" | grep -c Signature)" -eq 0 ]
	run_sifu sign "$T/img.sif" < /dev/null
	[ "$status" -eq 0 ]
	run_sifu verify "$T/img.sif"
	[ "$status" -eq 0 ]
	# with one key in the keyring, export needs no fingerprint
	run_sifu key export "$T/pub.gpg"
	[ "$status" -eq 0 ]
	[ -s "$T/pub.gpg" ]
	# an existing file is kept unless --force
	run_sifu key export --armor "$T/pub.gpg"
	assert_sifu_error
	[[ "$output" == *"already exists"* ]]
	run_sifu key export --armor --force "$T/pub.gpg"
	[ "$status" -eq 0 ]
	grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$T/pub.gpg"
	[ ! -e "$T/pub.gpg".sifu-tmp-* ]
	[ -z "$(ls -A "$T" | grep '^\.pub\.gpg\.sifu-')" ]
}

@test "ECDSA and RSA keys made here sign and verify; key ids are OpenSSH fingerprints" {
	for spec in "EC -pkeyopt ec_paramgen_curve:P-256" "EC -pkeyopt ec_paramgen_curve:P-384" \
		"EC -pkeyopt ec_paramgen_curve:P-521" "RSA -pkeyopt rsa_keygen_bits:2048"; do
		# shellcheck disable=SC2086
		openssl genpkey -algorithm $spec -out "$T/k.pem" 2>/dev/null
		openssl pkey -in "$T/k.pem" -pubout -out "$T/k.pub"
		want=$(ssh-keygen -i -m PKCS8 -f "$T/k.pub" | ssh-keygen -l -E sha256 -f - | awk '{print $2}')
		cp "$F/one-group.sif" "$T/img.sif"
		run_sifu sign --key "$T/k.pem" "$T/img.sif"
		[ "$status" -eq 0 ]
		run_sifu verify --key "$T/k.pub" "$T/img.sif"
		[ "$status" -eq 0 ]
		[[ "$output" == *"signed by: $want"* ]]
		# the same metadata the reference signs
		"$SIFU" sif dump 3 "$T/img.sif" | jq -r .payload | base64 -d > "$T/md"
		"$SIFU" sif dump 3 "$F/one-group-signed-dsse.sif" | jq -r .payload | base64 -d | cmp - "$T/md"
	done
}
