/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu verify`: check an image's signatures as Apptainer does, say which
 * objects each signer covers, and one line per problem when it fails. */
#include "cli.h"
#include "sif.h"

#include <jansson.h>

int cmd_verify(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

static int parse_u32(const char *flag, const char *s, uint32_t *out, struct sifu_err *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > UINT32_MAX || *s == '-')
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: '%s' is not an id (1, 2, …)",
		                    flag, s);
	*out = (uint32_t)v;
	return 0;
}

static const char *kind_name(enum sif_sig_kind k)
{
	switch (k) {
	case SIF_SIG_DSSE: return "DSSE";
	case SIF_SIG_PGP: return "OpenPGP";
	case SIF_SIG_LEGACY: return "legacy OpenPGP (insecure: covers no header or descriptor)";
	default: return "unknown";
	}
}

static void link_str(uint32_t link, char *buf, size_t len)
{
	if (link & SIF_GROUP_MASK)
		snprintf(buf, len, "group %u", link & ~SIF_GROUP_MASK);
	else
		snprintf(buf, len, "object %u", link);
}

static void print_text(const char *path, const struct sif_image *img,
                       const struct sif_verify_report *r)
{
	printf("Verifying image: %s\n", path);
	for (size_t i = 0; i < r->nsigs; i++) {
		const struct sif_verify_sig *s = &r->sigs[i];
		char l[32];
		link_str(s->link, l, sizeof(l));
		printf("Signature object %u (%s, %s) of %s: %s\n", s->sig_id, kind_name(s->kind),
		       sif_hash_name(s->hashtype), l, s->ok ? "verified" : "FAILED");
		if (*s->signer)
			printf("  signed by: %s\n", s->signer);
		else if (*s->expected)
			printf("  names signer: %s\n", s->expected);
		for (size_t j = 0; j < s->ncovered; j++) {
			const struct sif_descr *d = img ? sif_get(img, s->covered[j]) : NULL;
			printf("  covers object %u (%s%s%s)\n", s->covered[j],
			       d ? sif_datatype_name(d->datatype) : "?", d && *d->name ? ", " : "",
			       d ? d->name : "");
		}
	}
}

static void print_json(const char *path, const struct sif_verify_report *r, bool ok)
{
	json_t *o = json_object();
	json_object_set_new(o, "image", json_string(path));
	json_object_set_new(o, "verified", json_boolean(ok));
	json_t *sigs = json_array();
	for (size_t i = 0; i < r->nsigs; i++) {
		const struct sif_verify_sig *s = &r->sigs[i];
		json_t *j = json_object();
		json_object_set_new(j, "id", json_integer(s->sig_id));
		json_object_set_new(j, "kind",
		                    json_string(s->kind == SIF_SIG_DSSE     ? "dsse"
		                                : s->kind == SIF_SIG_PGP    ? "pgp"
		                                : s->kind == SIF_SIG_LEGACY ? "legacy"
		                                                            : "unknown"));
		json_object_set_new(j, "hash", json_string(sif_hash_name(s->hashtype)));
		if (s->link & SIF_GROUP_MASK)
			json_object_set_new(j, "group", json_integer(s->link & ~SIF_GROUP_MASK));
		else
			json_object_set_new(j, "object", json_integer(s->link));
		json_object_set_new(j, "signer", json_string(s->signer));
		json_object_set_new(j, "expected_signer", json_string(s->expected));
		json_t *c = json_array();
		for (size_t k = 0; k < s->ncovered; k++)
			json_array_append_new(c, json_integer(s->covered[k]));
		json_object_set_new(j, "covers", c);
		json_object_set_new(j, "verified", json_boolean(s->ok));
		json_array_append_new(sigs, j);
	}
	json_object_set_new(o, "signatures", sigs);
	json_t *p = json_array();
	for (size_t i = 0; i < r->nproblems; i++)
		json_array_append_new(p, json_string(r->problems[i]));
	json_object_set_new(o, "problems", p);
	json_dumpf(o, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(o);
}

int cmd_verify(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	(void)v;
	const char *path = cli_one_image(a, "verify", err);
	if (!path)
		return -EINVAL;
	struct sif_verify_opts o = {.keyring = cli_keyring()};
	int r;
	if (a->set[O_SIF_ID] && (r = parse_u32("--sif-id", a->val[O_SIF_ID], &o.sif_id, err)) < 0)
		return r;
	if (a->set[O_GROUP_ID] &&
	    (r = parse_u32("--group-id", a->val[O_GROUP_ID], &o.group_id, err)) < 0)
		return r;
	if (o.sif_id && o.group_id)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "--sif-id and --group-id select different things: give one");
	o.all = a->set[O_ALL];
	o.legacy = a->set[O_LEGACY_INSECURE];
	struct sif_pemkey **keys;
	if ((r = cli_pemkeys_load(a->list[O_KEY], a->nlist[O_KEY], false, &keys, err)) < 0)
		return r;
	o.keys = keys;
	o.nkeys = a->nlist[O_KEY];

	struct sif_verify_report rep;
	struct sifu_err verr = {0};
	r = sif_verify_image(path, &o, &rep, &verr);
	sif_pgp_cleanup(o.keyring);
	cli_pemkeys_free(keys, o.nkeys);
	if (r < 0 && verr.code != SIFU_E_VERIFY) {
		*err = verr;
		sif_verify_report_free(&rep);
		return r;
	}
	_cleanup_sif_ struct sif_image *img = NULL;
	struct sifu_err ignore = {0};
	sif_open_path(path, false, &img, &ignore);
	if (a->set[O_JSON])
		print_json(path, &rep, r == 0);
	else
		print_text(path, img, &rep);
	fflush(stdout);
	for (size_t i = 0; i < rep.nproblems; i++)
		sifu_log(SIFU_LOG_ERROR, "verify: %s", rep.problems[i]);
	if (r == 0 && !a->set[O_JSON])
		printf("Verified signature(s) of %s\n", path);
	sif_verify_report_free(&rep);
	return r < 0 ? 255 : 0;
}
