/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu sign`: add signatures as Apptainer does — OpenPGP from the keyring,
 * or a DSSE envelope with one signature per PEM key given with --key. */
#include "cli.h"
#include "sif.h"

int cmd_sign(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

static int parse_u32(const char *flag, const char *s, uint32_t *out, bool zero_ok,
                     struct sifu_err *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || (!zero_ok && v == 0) || v > UINT32_MAX || *s == '-')
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: '%s' is not a valid number",
		                    flag, s);
	*out = (uint32_t)v;
	return 0;
}

/* --keyidx N: the Nth secret key of `sifu key list --secret` */
static int key_by_index(const char *idx, char fpr[41], struct sifu_err *err)
{
	uint32_t n;
	int r = parse_u32("--keyidx", idx, &n, true, err);
	if (r < 0)
		return r;
	struct sif_pgp_key *keys = NULL;
	size_t nk = 0;
	if ((r = sif_pgp_list(cli_keyring(), true, &keys, &nk, err)) < 0)
		return r;
	if (n >= nk) {
		free(keys);
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "--keyidx %u: the keyring holds %zu secret key%s", n, nk,
		             nk == 1 ? "" : "s");
		sifu_err_hint(err, "'sifu key list --secret' numbers them from 0");
		return -EINVAL;
	}
	snprintf(fpr, 41, "%s", keys[n].fpr);
	free(keys);
	return 0;
}

int cmd_sign(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	(void)v;
	const char *path = cli_one_image(a, "sign", err);
	if (!path)
		return -EINVAL;
	struct sif_sign_opts o = {
	    .time = INT64_MIN, .keyring = cli_keyring(), .write = cli_sif_write()};
	uint32_t objid = 0;
	int r;
	if (a->set[O_SIF_ID]) {
		if ((r = parse_u32("--sif-id", a->val[O_SIF_ID], &objid, false, err)) < 0)
			return r;
		o.object_ids = &objid;
		o.nobject_ids = 1;
	}
	if (a->set[O_GROUP_ID] &&
	    (r = parse_u32("--group-id", a->val[O_GROUP_ID], &o.group_id, false, err)) < 0)
		return r;
	if (objid && o.group_id)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "--sif-id and --group-id select different things: give one");
	if (a->nlist[O_KEY] && a->set[O_KEYIDX])
		return sifu_err_set(
		    err, SIFU_E_USAGE, EINVAL,
		    "--key signs with a PEM key, --keyidx with a keyring key: give one");
	struct sif_pemkey **keys;
	if ((r = cli_pemkeys_load(a->list[O_KEY], a->nlist[O_KEY], true, &keys, err)) < 0)
		return r;
	o.keys = keys;
	o.nkeys = a->nlist[O_KEY];
	char fpr[41] = "";
	if (a->set[O_KEYIDX]) {
		if ((r = key_by_index(a->val[O_KEYIDX], fpr, err)) < 0) {
			cli_pemkeys_free(keys, o.nkeys);
			return r;
		}
		o.pgp_fpr = fpr;
	}
	printf("Signing image with %s key material\n", o.nkeys ? "PEM" : "PGP");
	_cleanup_free_ uint32_t *ids = NULL;
	size_t n = 0;
	r = sif_sign_image(path, &o, &ids, &n, err);
	sif_pgp_cleanup(o.keyring);
	cli_pemkeys_free(keys, o.nkeys);
	if (r < 0)
		return sifu_err_wrap(err, "cannot sign %s", path);
	for (size_t i = 0; i < n; i++)
		printf("Signature object %u added to %s\n", ids[i], path);
	printf("Signature created and applied to image '%s'\n", path);
	return 0;
}
