/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu key newpair|list|import|export|remove`: the OpenPGP keyring that
 * sign and verify use (a GnuPG home under $XDG_CONFIG_HOME/sifu/keys). */
#include "cli.h"
#include "sif.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <time.h>

int cmd_key(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

const struct sif_keyring_opts *cli_keyring(void)
{
	static struct sif_keyring_opts kr;
	const struct cli_env *e = cli_env_get();
	kr = (struct sif_keyring_opts){.keysdir = e->keysdir,
	                               .xdg_config_home = e->xdg_config_home,
	                               .home = e->home,
	                               .configdir = e->configdir,
	                               .passphrase = e->passphrase,
	                               .key_algo = e->key_algo};
	return &kr;
}

int cli_pemkeys_load(char *const *paths, size_t n, bool private_key, struct sif_pemkey ***keys,
                     struct sifu_err *err)
{
	*keys = sifu_xcalloc(n + 1, sizeof(**keys));
	for (size_t i = 0; i < n; i++) {
		int r = sif_pemkey_load(paths[i], private_key, &(*keys)[i], err);
		if (r < 0) {
			cli_pemkeys_free(TAKE_PTR(*keys), i);
			return r;
		}
	}
	return 0;
}

void cli_pemkeys_free(struct sif_pemkey **keys, size_t n)
{
	for (size_t i = 0; keys && i < n; i++)
		sif_pemkey_free(keys[i]);
	free(keys);
}

static int want_args(struct cli_args *a, int n, const char *usage, struct sifu_err *err)
{
	if (a->npos - 1 != n)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "usage: sifu key %s", usage);
	return 0;
}

/* Ask on the terminal for a field the flags did not give. */
static char *ask(const char *prompt, const char *given, bool required, struct sifu_err *err)
{
	if (given)
		return sifu_xstrdup(given);
	if (!isatty(STDIN_FILENO)) {
		if (!required)
			return sifu_xstrdup("");
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "key newpair: no %s given", prompt);
		sifu_err_hint(err, "give --name and --email (stdin is not a terminal to ask on)");
		return NULL;
	}
	char buf[256];
	fprintf(stderr, "Enter your %s: ", prompt);
	if (!fgets(buf, sizeof(buf), stdin))
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	if (required && !*buf) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "key newpair: the %s cannot be empty",
		             prompt);
		return NULL;
	}
	return sifu_xstrdup(buf);
}

static int key_newpair(struct cli_args *a, struct sifu_err *err)
{
	int r = want_args(a, 0, "newpair [--name N --email E --comment C --password]", err);
	if (r < 0)
		return r;
	_cleanup_free_ char *name = ask("name", a->val[O_KEY_NAME], true, err);
	if (!name)
		return -EINVAL;
	_cleanup_free_ char *email = ask("email address", a->val[O_KEY_EMAIL], true, err);
	if (!email)
		return -EINVAL;
	_cleanup_free_ char *comment = ask("comment", a->val[O_KEY_COMMENT], false, err);
	if (!comment)
		return -EINVAL;
	struct sif_keyring_opts kr = *cli_keyring();
	const char *pass = NULL;
	if (a->set[O_KEY_PASSWORD]) {
		pass = kr.passphrase;
		if (!pass && isatty(STDIN_FILENO))
			pass = getpass("Enter a passphrase for the key: ");
		if (!pass || !*pass)
			return sifu_err_set(
			    err, SIFU_E_USAGE, EINVAL,
			    "--password: no passphrase given (terminal or $SIFU_PASSPHRASE)");
	}
	char algo[32];
	if (a->set[O_KEY_BITS]) {
		char *end;
		long bits = strtol(a->val[O_KEY_BITS], &end, 10);
		if (*end || bits < 2048 || bits > 16384)
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "--bit-length %s: give an RSA size from 2048 to 16384",
			                    a->val[O_KEY_BITS]);
		snprintf(algo, sizeof(algo), "rsa%ld", bits);
		kr.key_algo = algo;
	}
	fprintf(stderr, "Generating OpenPGP key pair...\n");
	struct sif_pgp_key k;
	r = sif_pgp_newpair(&kr, name, email, comment, pass, &k, err);
	if (r < 0)
		return r;
	printf("Key created: %s\n  Fingerprint: %s\n", k.uid, k.fpr);
	return 0;
}

static void fmt_time(long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
}

static int key_list(struct cli_args *a, struct sifu_err *err)
{
	int r = want_args(a, 0, "list [--secret] [--json]", err);
	if (r < 0)
		return r;
	bool secret = a->set[O_SECRET];
	struct sif_pgp_key *keys = NULL;
	size_t n = 0;
	if ((r = sif_pgp_list(cli_keyring(), secret, &keys, &n, err)) < 0)
		return r;
	_cleanup_free_ char *home = NULL;
	if ((r = sif_pgp_home(cli_keyring(), &home, err)) < 0) {
		free(keys);
		return r;
	}
	if (a->set[O_JSON]) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "index", json_integer((json_int_t)i));
			json_object_set_new(o, "fingerprint", json_string(keys[i].fpr));
			json_object_set_new(o, "uid", json_string(keys[i].uid));
			json_object_set_new(o, "algorithm", json_string(keys[i].algo));
			json_object_set_new(o, "bits", json_integer(keys[i].bits));
			json_object_set_new(o, "created", json_integer(keys[i].created));
			json_object_set_new(o, "secret", json_boolean(keys[i].secret));
			json_array_append_new(arr, o);
		}
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(arr);
	} else {
		printf("%s key listing (%s):\n\n", secret ? "Private" : "Public", home);
		for (size_t i = 0; i < n; i++) {
			char t[64];
			fmt_time(keys[i].created, t, sizeof(t));
			printf("%zu) U: %s\n   C: %s\n   F: %s\n   L: %u\n   --------\n", i,
			       keys[i].uid, t, keys[i].fpr, keys[i].bits);
		}
	}
	free(keys);
	return 0;
}

static int key_import(struct cli_args *a, struct sifu_err *err)
{
	int r = want_args(a, 1, "import [--secret] KEYFILE", err);
	if (r < 0)
		return r;
	unsigned n = 0;
	if ((r = sif_pgp_import(cli_keyring(), a->pos[1], &n, err)) < 0)
		return r;
	printf("Key(s) from %s added to the keyring (%u)\n", a->pos[1], n);
	return 0;
}

/* The keyring's only key (Apptainer's `key export FILE` asks which one;
 * sifu takes the fingerprint, or the one key there is). */
static int only_key(bool secret, char fpr[41], struct sifu_err *err)
{
	struct sif_pgp_key *keys = NULL;
	size_t n = 0;
	int r = sif_pgp_list(cli_keyring(), secret, &keys, &n, err);
	if (r < 0)
		return r;
	if (n == 1)
		snprintf(fpr, 41, "%s", keys[0].fpr);
	free(keys);
	if (n != 1) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "key export: the keyring holds %zu %skeys: "
		             "say which (sifu key export [--secret] [--armor] FINGERPRINT FILE)",
		             n, secret ? "secret " : "");
		sifu_err_hint(err, "'sifu key list%s' shows the fingerprints",
		              secret ? " --secret" : "");
		return -EINVAL;
	}
	return 0;
}

static int key_export(struct cli_args *a, struct sifu_err *err)
{
	char only[41] = "";
	int r;
	if (a->npos == 2) {
		if ((r = only_key(a->set[O_SECRET], only, err)) < 0)
			return r;
	} else if ((r = want_args(a, 2, "export [--secret] [--armor] [FINGERPRINT] FILE", err)) <
	           0) {
		return r;
	}
	const char *fpr = *only ? only : a->pos[1], *out = *only ? a->pos[1] : a->pos[2];
	if (!a->set[O_FORCE] && access(out, F_OK) == 0) {
		sifu_err_set(err, SIFU_E_USAGE, EEXIST, "key export: %s already exists", out);
		sifu_err_hint(err, "give another file name, or --force to replace it");
		return -EEXIST;
	}
	/* a temporary name beside FILE, renamed on success: no half-written key */
	_cleanup_atomic_ struct sifu_atomic tmp = {.fd = -1, .dirfd = -1};
	struct sifu_err e = {0};
	if (sifu_atomic_open(&tmp, AT_FDCWD, out, &e) < 0)
		return sifu_err_set(err, SIFU_E_SYS, e.errnum, "create %s", out);
	r = sif_pgp_export(cli_keyring(), fpr, a->set[O_SECRET], a->set[O_ARMOR], tmp.fd, err);
	if (r == 0)
		r = sifu_atomic_commit(&tmp, a->set[O_SECRET] ? 0600 : 0644, err);
	if (r < 0)
		return r;
	printf("%s key %s exported to %s\n", a->set[O_SECRET] ? "Secret" : "Public", fpr, out);
	return 0;
}

static int key_remove(struct cli_args *a, struct sifu_err *err)
{
	int r = want_args(a, 1, "remove FINGERPRINT", err);
	if (r < 0)
		return r;
	if ((r = sif_pgp_remove(cli_keyring(), a->pos[1], err)) < 0)
		return r;
	printf("Key %s removed from the keyring\n", a->pos[1]);
	return 0;
}

int cmd_key(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	(void)v;
	static const struct {
		const char *name;
		int (*fn)(struct cli_args *, struct sifu_err *);
	} subs[] = {
	    {"newpair", key_newpair}, {"list", key_list},     {"import", key_import},
	    {"export", key_export},   {"remove", key_remove},
	};
	if (a->npos < 1)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "key needs a command: newpair, list, import, export or remove");
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		if (strcmp(a->pos[0], subs[i].name))
			continue;
		int r = subs[i].fn(a, err);
		sif_pgp_cleanup(cli_keyring());
		return r;
	}
	static const char *const names[] = {"newpair", "list", "import", "export", "remove", NULL};
	const char *s = cli_suggest(a->pos[0], names);
	sifu_err_set(err, SIFU_E_USAGE, EINVAL, "key: unknown command '%s'", a->pos[0]);
	if (s)
		sifu_err_hint(err, "did you mean 'sifu key %s'?", s);
	return -EINVAL;
}
