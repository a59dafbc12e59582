/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/pgp.c: OpenPGP signatures through GPGME.
 *
 * sifu keeps its keys in a GnuPG home of its own ($XDG_CONFIG_HOME/sifu/
 * keys/gnupg, or $SIFU_KEYSDIR/gnupg): GPGME drives gpg, and gpg keeps secret
 * keys in its agent's store, so a plain keyring file (Apptainer's
 * pgp-secret) cannot be signed with directly.  Public keys that Apptainer or
 * Singularity users already trust (~/.apptainer/keys/pgp-public,
 * ~/.singularity/sypgp/pgp-public, and sifu's own keys/pgp-public) are read —
 * never written — and imported when a signature names a key sifu lacks.
 * Those variables (and $HOME, $SIFU_PASSPHRASE, $SIFU_KEY_ALGO) reach this
 * file only through struct sif_keyring_opts, which cli/ fills.
 *
 * What the reference writes (sylabs/sif pkg/integrity/clearsign.go): the
 * metadata JSON clear-signed (RFC 4880 §7), SHA-256, the signing key's
 * primary fingerprint in the descriptor.  The armor ends without a newline. */
#include "sif.h"

#include <fcntl.h>
#include <gpgme.h>
#include <sys/stat.h>
#include <termios.h>

static bool agent_used;

/* A NULL keyring: what an empty environment gives. */
static const struct sif_keyring_opts no_opts;
#define KR(kr) ((kr) ? (kr) : &no_opts)

static int mkdir_p(const char *path, mode_t mode, struct sifu_err *err)
{
	_cleanup_free_ char *p = sifu_xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return sifu_err_sys(err, "create %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return sifu_err_sys(err, "create %s", p);
	return 0;
}

static char *keys_dir(const struct sif_keyring_opts *kr)
{
	const char *k = KR(kr)->keysdir;
	if (k && *k)
		return sifu_xstrdup(k);
	const char *x = KR(kr)->xdg_config_home;
	if (x && *x == '/')
		return sifu_xasprintf("%s/sifu/keys", x);
	const char *h = KR(kr)->home;
	return h && *h == '/' ? sifu_xasprintf("%s/.config/sifu/keys", h) : NULL;
}

int sif_pgp_home(const struct sif_keyring_opts *kr, char **out, struct sifu_err *err)
{
	_cleanup_free_ char *k = keys_dir(kr);
	if (!k) { /* not "/.config/sifu", which is nobody's */
		sifu_err_set(err, SIFU_E_USAGE, ENOENT,
		             "no home directory for the keyring: HOME is not set, and the "
		             "password database has none for this user");
		sifu_err_hint(err, "set HOME, or SIFU_KEYSDIR to the keyring's directory");
		return -ENOENT;
	}
	char *home = sifu_xasprintf("%s/gnupg", k);
	int r = mkdir_p(home, 0700, err);
	if (r < 0) {
		free(home);
		return r;
	}
	/* SHA-256 like the reference, whatever the key's preferences say */
	_cleanup_free_ char *conf = sifu_xasprintf("%s/gpg.conf", home);
	int fd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		static const char c[] =
		    "personal-digest-preferences SHA256\ncert-digest-algo SHA256\n";
		if (write(fd, c, sizeof(c) - 1) < 0)
			sifu_debug("write %s: %s", conf, strerror(errno));
		close(fd);
	}
	*out = home;
	return 0;
}

static int gpg_fail(struct sifu_err *err, gpgme_error_t e, const char *what)
{
	switch (gpg_err_code(e)) {
	case GPG_ERR_BAD_PASSPHRASE:
	case GPG_ERR_NO_PASSPHRASE:
	case GPG_ERR_CANCELED:
		sifu_err_set(err, SIFU_E_DENIED, EACCES, "%s: %s", what, gpgme_strerror(e));
		sifu_err_hint(err,
		              "give the key's passphrase on the terminal or in $SIFU_PASSPHRASE");
		return -EACCES;
	case GPG_ERR_ENOENT:
		sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOENT, "%s: %s", what, gpgme_strerror(e));
		sifu_err_hint(err, "install GnuPG (Debian: gnupg, gpg-agent)");
		return -ENOENT;
	default:
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, EIO, "%s: GnuPG says: %s", what,
		                    gpgme_strerror(e));
	}
}

static gpgme_error_t passphrase_cb(void *hook, const char *uid_hint, const char *info, int prev_bad,
                                   int fd)
{
	(void)info;
	const char *given = hook; /* the caller's, else $SIFU_PASSPHRASE's */
	char buf[512] = "";
	if (!given) {
		/* ask on the terminal, without echo */
		int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
		if (tty < 0)
			return gpg_error(GPG_ERR_NO_PASSPHRASE);
		dprintf(tty, "%sPassphrase for %s: ", prev_bad ? "Bad passphrase. " : "",
		        uid_hint ? uid_hint : "the key");
		struct termios t, o;
		bool term = tcgetattr(tty, &o) == 0;
		if (term) {
			t = o;
			t.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(tty, TCSAFLUSH, &t);
		}
		ssize_t n = read(tty, buf, sizeof(buf) - 1);
		if (term)
			tcsetattr(tty, TCSAFLUSH, &o);
		dprintf(tty, "\n");
		close(tty);
		if (n <= 0)
			return gpg_error(GPG_ERR_CANCELED);
		buf[n] = 0;
		buf[strcspn(buf, "\n")] = 0;
		given = buf;
	} else if (prev_bad) {
		return gpg_error(GPG_ERR_BAD_PASSPHRASE);
	}
	size_t l = strlen(given);
	if (gpgme_io_writen(fd, given, l) || gpgme_io_writen(fd, "\n", 1))
		return gpg_error(GPG_ERR_CANCELED);
	return 0;
}

/* A GPGME context on sifu's GnuPG home; PASSPHRASE (NULL: KR's, else ask
 * on the terminal) answers the agent's questions. */
static int ctx_new(const struct sif_keyring_opts *kr, gpgme_ctx_t *out, const char *passphrase,
                   struct sifu_err *err)
{
	static bool inited;
	if (!inited) {
		gpgme_check_version(NULL);
		inited = true;
	}
	_cleanup_free_ char *home = NULL;
	int r = sif_pgp_home(kr, &home, err);
	if (r < 0)
		return r;
	if (!passphrase)
		passphrase = KR(kr)->passphrase;
	gpgme_ctx_t c;
	gpgme_error_t e = gpgme_new(&c);
	if (e)
		return gpg_fail(err, e, "GPGME");
	if ((e = gpgme_ctx_set_engine_info(c, GPGME_PROTOCOL_OpenPGP, NULL, home))) {
		gpgme_release(c);
		sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOENT, "GnuPG is not usable: %s",
		             gpgme_strerror(e));
		sifu_err_hint(err, "install gnupg (gpg)");
		return -ENOENT;
	}
	gpgme_set_pinentry_mode(c, GPGME_PINENTRY_MODE_LOOPBACK);
	gpgme_set_passphrase_cb(c, passphrase_cb, (void *)passphrase);
	*out = c;
	return 0;
}

static void ctx_freep(gpgme_ctx_t *c)
{
	if (*c)
		gpgme_release(*c);
}
static void data_freep(gpgme_data_t *d)
{
	if (*d)
		gpgme_data_release(*d);
}
#define _cleanup_ctx_  _cleanup_(ctx_freep)
#define _cleanup_data_ _cleanup_(data_freep)

static char *data_take(gpgme_data_t *d, size_t *len)
{
	size_t n = 0;
	char *p = gpgme_data_release_and_get_mem(*d, &n);
	*d = NULL;
	char *s = sifu_xmalloc(n + 1);
	if (n)
		memcpy(s, p, n);
	s[n] = 0;
	gpgme_free(p);
	*len = n;
	return s;
}

/* ------------------------------------------------------------ keylist -- */

static void fill_key(gpgme_key_t k, struct sif_pgp_key *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->fpr, sizeof(o->fpr), "%s", k->fpr ? k->fpr : "");
	if (k->uids && k->uids->uid)
		snprintf(o->uid, sizeof(o->uid), "%s", k->uids->uid);
	if (k->subkeys) {
		const char *a = gpgme_pubkey_algo_name(k->subkeys->pubkey_algo);
		snprintf(o->algo, sizeof(o->algo), "%s", a ? a : "?");
		o->bits = k->subkeys->length;
		o->created = k->subkeys->timestamp;
	}
	o->secret = k->secret;
}

int sif_pgp_list(const struct sif_keyring_opts *kr, bool secret, struct sif_pgp_key **keys,
                 size_t *n, struct sifu_err *err)
{
	_cleanup_ctx_ gpgme_ctx_t c = NULL;
	int r = ctx_new(kr, &c, NULL, err);
	if (r < 0)
		return r;
	*keys = NULL;
	*n = 0;
	gpgme_error_t e = gpgme_op_keylist_start(c, NULL, secret);
	gpgme_key_t k;
	while (!e && !(e = gpgme_op_keylist_next(c, &k))) {
		*keys = sifu_xrealloc(*keys, (*n + 1) * sizeof(**keys));
		fill_key(k, &(*keys)[(*n)++]);
		gpgme_key_unref(k);
	}
	if (gpg_err_code(e) != GPG_ERR_EOF)
		return gpg_fail(err, e, "list keys");
	return 0;
}

static int find_key(gpgme_ctx_t c, const char *fpr, bool secret, gpgme_key_t *out,
                    struct sifu_err *err)
{
	gpgme_error_t e = gpgme_get_key(c, fpr, out, secret);
	if (e) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "no %s key %s in the keyring",
		             secret ? "secret" : "public", fpr);
		sifu_err_hint(err, "'sifu key list%s' shows the keys", secret ? " --secret" : "");
		return -ENOENT;
	}
	return 0;
}

/* A context, as ctx_new, and in it the key FPR. */
static int ctx_with_key(const struct sif_keyring_opts *kr, const char *fpr, bool secret,
                        gpgme_ctx_t *c, gpgme_key_t *k, struct sifu_err *err)
{
	int r = ctx_new(kr, c, NULL, err);
	if (r < 0)
		return r;
	return find_key(*c, fpr, secret, k, err);
}

/* --------------------------------------------------------------- keys -- */

int sif_pgp_newpair(const struct sif_keyring_opts *kr, const char *name, const char *email,
                    const char *comment, const char *passphrase, struct sif_pgp_key *out,
                    struct sifu_err *err)
{
	const char *algo = KR(kr)->key_algo; /* e.g. rsa2048 for quick tests */
	_cleanup_ctx_ gpgme_ctx_t c = NULL;
	int r = ctx_new(kr, &c, passphrase && *passphrase ? passphrase : NULL, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *uid = sifu_xasprintf(
	    "%s%s%s%s%s%s%s", name, comment && *comment ? " (" : "", comment ? comment : "",
	    comment && *comment ? ")" : "", email && *email ? " <" : "", email ? email : "",
	    email && *email ? ">" : "");
	unsigned flags = GPGME_CREATE_SIGN | GPGME_CREATE_CERT | GPGME_CREATE_NOEXPIRE;
	if (!passphrase || !*passphrase)
		flags |= GPGME_CREATE_NOPASSWD;
	agent_used = true;
	gpgme_error_t e =
	    gpgme_op_createkey(c, uid, algo && *algo ? algo : "rsa4096", 0, 0, NULL, flags);
	if (e)
		return gpg_fail(err, e, "generate key");
	gpgme_genkey_result_t g = gpgme_op_genkey_result(c);
	gpgme_key_t k;
	if ((r = find_key(c, g->fpr, true, &k, err)) < 0)
		return r;
	fill_key(k, out);
	gpgme_key_unref(k);
	return 0;
}

int sif_pgp_import(const struct sif_keyring_opts *kr, const char *file, unsigned *count,
                   struct sifu_err *err)
{
	_cleanup_ctx_ gpgme_ctx_t c = NULL;
	int r = ctx_new(kr, &c, NULL, err);
	if (r < 0)
		return r;
	_cleanup_data_ gpgme_data_t d = NULL;
	gpgme_error_t e = gpgme_data_new_from_file(&d, file, 1);
	if (e)
		return sifu_err_set(err, SIFU_E_SYS, gpgme_err_code_to_errno(gpg_err_code(e)),
		                    "read %s: %s", file, gpgme_strerror(e));
	agent_used = true;
	if ((e = gpgme_op_import(c, d)))
		return gpg_fail(err, e, "import keys");
	gpgme_import_result_t res = gpgme_op_import_result(c);
	if (!res || res->considered == 0) {
		sifu_err_set(err, SIFU_E_CORRUPT, EINVAL, "%s holds no OpenPGP keys", file);
		sifu_err_hint(err, "give an armored or binary OpenPGP key file (gpg --export)");
		return -EINVAL;
	}
	if (count)
		*count = (unsigned)(res->imported + res->secret_imported + res->unchanged +
		                    res->secret_unchanged);
	return 0;
}

int sif_pgp_export(const struct sif_keyring_opts *kr, const char *fpr, bool secret, bool armor,
                   int fd, struct sifu_err *err)
{
	_cleanup_ctx_ gpgme_ctx_t c = NULL;
	gpgme_key_t k;
	int r = ctx_with_key(kr, fpr, secret, &c, &k, err);
	if (r < 0)
		return r;
	gpgme_key_unref(k);
	gpgme_set_armor(c, armor);
	_cleanup_data_ gpgme_data_t d = NULL;
	gpgme_data_new(&d);
	if (secret)
		agent_used = true;
	gpgme_error_t e = gpgme_op_export(c, fpr, secret ? GPGME_EXPORT_MODE_SECRET : 0, d);
	if (e)
		return gpg_fail(err, e, "export key");
	size_t n;
	_cleanup_free_ char *s = data_take(&d, &n);
	if (!n)
		return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "nothing exported for %s", fpr);
	for (size_t done = 0; done < n;) {
		ssize_t w = write(fd, s + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return sifu_err_sys(err, "write key");
		done += (size_t)w;
	}
	return 0;
}

int sif_pgp_remove(const struct sif_keyring_opts *kr, const char *fpr, struct sifu_err *err)
{
	_cleanup_ctx_ gpgme_ctx_t c = NULL;
	gpgme_key_t k;
	int r = ctx_with_key(kr, fpr, false, &c, &k, err);
	if (r < 0)
		return r;
	agent_used = true;
	gpgme_error_t e = gpgme_op_delete_ext(c, k, GPGME_DELETE_ALLOW_SECRET | GPGME_DELETE_FORCE);
	gpgme_key_unref(k);
	if (e)
		return gpg_fail(err, e, "remove key");
	return 0;
}

/* ------------------------------------------------------ sign / verify -- */

static int fpr_bytes(const char *hex, uint8_t out[20])
{
	if (strlen(hex) != 40)
		return -1;
	for (int i = 0; i < 20; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* The secret key FPR, or without one the keyring's first secret key. */
static int signing_key(gpgme_ctx_t c, const char *fpr, gpgme_key_t *k, struct sifu_err *err)
{
	if (fpr)
		return find_key(c, fpr, true, k, err);
	*k = NULL;
	gpgme_error_t e = gpgme_op_keylist_start(c, NULL, 1);
	if (!e)
		e = gpgme_op_keylist_next(c, k);
	gpgme_op_keylist_end(c);
	if (e || !*k) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "no secret key to sign with");
		sifu_err_hint(err, "make one with 'sifu key newpair', import one with "
		                   "'sifu key import --secret', or sign with --key PRIVATE.pem");
		return -ENOENT;
	}
	return 0;
}

int sif_pgp_clearsign(const struct sif_keyring_opts *kr, const char *fpr, const void *msg,
                      size_t len, char **out, size_t *outlen, uint8_t fpr_out[20],
                      struct sifu_err *err)
{
	_cleanup_ctx_ gpgme_ctx_t c = NULL;
	int r = ctx_new(kr, &c, NULL, err);
	if (r < 0)
		return r;
	gpgme_key_t k;
	if ((r = signing_key(c, fpr, &k, err)) < 0)
		return r;
	if (fpr_bytes(k->fpr, fpr_out) < 0) {
		/* the message before the unref: it names the key */
		r = sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP,
		                 "key %s: only v4 keys (40-digit fingerprints) sign SIF images",
		                 k->fpr);
		gpgme_key_unref(k);
		return r;
	}
	gpgme_signers_clear(c);
	gpgme_signers_add(c, k);
	gpgme_key_unref(k);
	gpgme_set_armor(c, 1);
	gpgme_set_textmode(c, 1);
	_cleanup_data_ gpgme_data_t in = NULL, sig = NULL;
	gpgme_data_new_from_mem(&in, msg, len, 0);
	gpgme_data_new(&sig);
	agent_used = true;
	gpgme_error_t e = gpgme_op_sign(c, in, sig, GPGME_SIG_MODE_CLEAR);
	if (e)
		return gpg_fail(err, e, "sign");
	*out = data_take(&sig, outlen);
	/* the reference's armor has no newline after its last line */
	while (*outlen && (*out)[*outlen - 1] == '\n')
		(*out)[--*outlen] = 0;
	return 0;
}

#define CLEARSIGN_BEGIN "-----BEGIN PGP SIGNED MESSAGE-----"

bool sif_pgp_is_clearsigned(const void *data, size_t len, bool *legacy)
{
	const char *p = data;
	*legacy = false;
	size_t bl = strlen(CLEARSIGN_BEGIN);
	/* !p: UBSan's checks make gcc see a NULL path into memmem below */
	if (!p || len < bl || memcmp(p, CLEARSIGN_BEGIN, bl))
		return false;
	/* armor headers end at the first empty line; the text follows */
	const char *t = memmem(p, len, "\n\n", 2);
	const char *t2 = memmem(p, len, "\r\n\r\n", 4);
	if (t2 && (!t || t2 < t))
		t = t2 + 4;
	else if (t)
		t += 2;
	else
		return false;
	*legacy = (size_t)(p + len - t) >= 9 && !memcmp(t, "SIFHASH:", 8) &&
	          (t[8] == '\n' || t[8] == '\r');
	return true;
}

/* Import the public keyrings Apptainer and Singularity users already have
 * (read only); returns how many files were imported. */
static int import_known_pubrings(const struct sif_keyring_opts *kr, gpgme_ctx_t c)
{
	const char *h = KR(kr)->home;
	_cleanup_free_ char *kd = keys_dir(kr);
	if (!kd)
		return 0;
	char *files[3] = {
	    sifu_xasprintf("%s/pgp-public", kd),
	    sifu_xasprintf("%s/keys/pgp-public",
	                   KR(kr)->configdir ? KR(kr)->configdir : "/nonexistent"),
	    sifu_xasprintf("%s/.singularity/sypgp/pgp-public", h ? h : ""),
	};
	int n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		gpgme_data_t d = NULL;
		if (access(files[i], R_OK) == 0 && !gpgme_data_new_from_file(&d, files[i], 1)) {
			if (!gpgme_op_import(c, d))
				n++;
			gpgme_data_release(d);
		}
		free(files[i]);
	}
	return n;
}

static gpgme_signature_t do_verify(gpgme_ctx_t c, const void *data, size_t len, gpgme_data_t *plain)
{
	gpgme_data_t sig = NULL;
	gpgme_data_new_from_mem(&sig, data, len, 0);
	gpgme_data_new(plain);
	gpgme_error_t e = gpgme_op_verify(c, sig, NULL, *plain);
	gpgme_data_release(sig);
	if (e)
		return NULL;
	gpgme_verify_result_t res = gpgme_op_verify_result(c);
	return res ? res->signatures : NULL;
}

int sif_pgp_verify(const struct sif_keyring_opts *kr, const void *data, size_t len, char **plain,
                   size_t *plen, char fpr[41], struct sifu_err *err)
{
	_cleanup_ctx_ gpgme_ctx_t c = NULL;
	int r = ctx_new(kr, &c, NULL, err);
	if (r < 0)
		return r;
	_cleanup_data_ gpgme_data_t out = NULL;
	gpgme_signature_t s = do_verify(c, data, len, &out);
	if (s && gpg_err_code(s->status) == GPG_ERR_NO_PUBKEY && import_known_pubrings(kr, c) > 0) {
		gpgme_data_release(out);
		out = NULL;
		s = do_verify(c, data, len, &out);
	}
	if (!s)
		return sifu_err_set(err, SIFU_E_CORRUPT, EINVAL, "not a valid OpenPGP signature");
	snprintf(fpr, 41, "%s", s->fpr ? s->fpr : "");
	if (gpg_err_code(s->status) == GPG_ERR_NO_PUBKEY)
		return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "key %s is not in the keyring",
		                    fpr);
	if (gpg_err_code(s->status) != GPG_ERR_NO_ERROR || (s->summary & GPGME_SIGSUM_RED))
		return sifu_err_set(err, SIFU_E_VERIFY, EBADMSG, "bad OpenPGP signature (%s)",
		                    gpgme_strerror(s->status));
	/* report the primary key, as the descriptor names it */
	gpgme_key_t k = NULL;
	if (!gpgme_get_key(c, s->fpr, &k, 0) && k) {
		snprintf(fpr, 41, "%s", k->fpr);
		gpgme_key_unref(k);
	}
	*plain = data_take(&out, plen);
	return 0;
}

void sif_pgp_cleanup(const struct sif_keyring_opts *kr)
{
	if (!agent_used)
		return;
	agent_used = false;
	_cleanup_free_ char *home = NULL;
	struct sifu_err e = {0};
	if (sif_pgp_home(kr, &home, &e) < 0)
		return;
	/* best effort, silent: without gpgconf there is no agent to stop */
	char *argv[] = {"gpgconf", "--homedir", home, "--kill", "gpg-agent", NULL};
	struct sifu_command s = {
	    .argv = argv, .in = -1, .out = SIFU_SPAWN_NULL, .err = SIFU_SPAWN_NULL};
	struct sifu_exit x;
	(void)sifu_spawn_wait(&s, &x, &e);
}
