/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/: the Singularity Image Format — read, validate, create, modify,
 * locate the primary partition, sign and verify.  Binary compatible
 * with the reference Go implementation (sylabs/sif 2.x, `siftool`).
 *
 * On-disk layout (all integers little endian, structures packed):
 *   global header, 128 bytes at offset 0 (SIF_HDR_*)
 *   descriptor table at DescriptorsOffset (4096 by default): DescriptorsTotal
 *     descriptors of SIF_DESCR_SIZE (585) bytes each, unused ones all zero
 *   data objects from DataOffset on; partitions aligned to 4096. */
#pragma once

#include "common.h"

#define SIF_MAGIC  "SIF_MAGIC"
#define SIF_LAUNCH "#!/usr/bin/env run-singularity\n"
/* Name of the JSON.Generic object (SIF_DT_GENERIC_JSON) in which Apptainer
 * stores `inspect --all --json`'s attributes at build time:
 * {"attributes": {"labels": {...}, "deffile": "...", "runscript": "...",
 *  "startscript", "test", "environment": {"/.singularity.d/env/NN-x.sh": "..."},
 *  "helpfile", "apps": {...}}, "type": "container"}.  build/pull should write
 * it (sif_writer_add_data, group 1) so `inspect` answers without mounting. */
#define SIF_INSPECT_METADATA_NAME "inspect-metadata.json"

/* Partition filesystem types (sylabs/sif FsType) */
enum sif_fstype {
	SIF_FS_SQUASH = 1,
	SIF_FS_EXT3 = 2,
	SIF_FS_IMMOBJECTS = 3,
	SIF_FS_RAW = 4,
	SIF_FS_ENCRYPTED_SQUASH = 5,
};

/* Where a runtime finds its root file system inside an image file. */
struct sif_rootfs_loc {
	uint64_t offset; /* byte offset of the file system in the file */
	uint64_t size;   /* its length */
	uint32_t fstype; /* enum sif_fstype */
};

/* Quick sniff: does the file behind FD start like a SIF? (reads 128 bytes) */
bool sif_fd_is_sif(int fd);

/* Open FD as a SIF (validated) and return the primary system partition.
 * A file that is not a SIF is an SIFU_E_UNSUPPORTED error; a SIF without a
 * primary partition SIFU_E_NOTFOUND.  loc->fstype may be any enum sif_fstype:
 * the caller decides what it can mount. */
int sif_find_rootfs(int fd, struct sif_rootfs_loc *out, struct sifu_err *err);

/* ---- writing (contract used by pull/build; implemented by the sif work) ----
 * A writer builds a new SIF under a temporary name in the target's directory
 * and renames it into place on commit (mode 0755), so an interrupted write
 * never leaves a broken image under the final name. */
struct sif_writer;

/* How sif stamps what it writes: cli/ fills it from the environment.  A
 * NULL pointer to it, or a zero one, means the clock. */
struct sif_write_opts {
	/* $SOURCE_DATE_EPOCH: whole seconds since the epoch, written instead of
	 * the time of day (ignored unless a whole decimal number) */
	const char *source_date_epoch;
};

/* Whether a new output may be renamed to PATH: it must not be a directory,
 * nor a symbolic link that someone else owns (sifu never writes through a
 * link, and replaces only the caller's own, as Apptainer's remove-then-create
 * does; a link planted in a sticky directory is refused, not followed).
 * Checked up front for a clear message; the rename itself is the final word
 * (docs/security.md, outputs). */
int sif_output_check(const char *path, struct sifu_err *err);
/* Start a new image that will become PATH (sif_output_check first), its
 * times from WO (may be NULL). */
int sif_writer_create(const char *path, const struct sif_write_opts *wo, struct sif_writer **out,
                      struct sifu_err *err);
/* Add a data object from memory (deffile, labels, generic JSON, …).
 * datatype is the sylabs/sif DataType (0x4001 deffile, 0x4002 env vars,
 * 0x4003 labels, 0x4004 partition, …); groupid is the plain group number
 * (1 for the primary group, 0 for none), link 0 for none. */
int sif_writer_add_data(struct sif_writer *w, uint32_t datatype, const void *data, size_t len,
                        uint32_t groupid, uint32_t link, const char *name, struct sifu_err *err);
/* Reserve the next partition: returns the file descriptor of the temporary
 * file and the (4096-aligned) absolute offset the caller writes the file
 * system at, with pwrite.  Ended by sif_writer_end_partition with its size.
 * The partition joins group 1. */
int sif_writer_begin_partition(struct sif_writer *w, int *fd, uint64_t *offset,
                               struct sifu_err *err);
/* parttype: enum sif_parttype (primary=true makes it SIF_PART_PRIMSYS and
 * sets the header's architecture); arch: a Go architecture name ("amd64"),
 * or NULL for the host's. */
int sif_writer_end_partition(struct sif_writer *w, uint64_t size, uint32_t fstype,
                             uint32_t parttype, const char *arch, bool primary,
                             struct sifu_err *err);
/* fsync, chmod 0755, rename into place.  Always consumes W: on any failure
 * (the rename included) the temporary file is removed first, so nothing is
 * left behind; do not call sif_writer_abort after it. */
int sif_writer_commit(struct sif_writer *w, struct sifu_err *err);
/* Remove the temporary file, free the writer (after a failure, or instead of commit). */
void sif_writer_abort(struct sif_writer *w);
/* Reproducible images: fix the times (seconds since the epoch; the writer
 * otherwise uses WO's source_date_epoch or now) and the image id (16 bytes;
 * all zero for none). Call before commit. */
void sif_writer_set_time(struct sif_writer *w, int64_t t);
void sif_writer_set_id(struct sif_writer *w, const uint8_t id[16]);
/* The launch line; "" for none. Default SIF_LAUNCH. */
int sif_writer_set_launch(struct sif_writer *w, const char *launch, struct sifu_err *err);

/* ------------------------------------------------------------ the format -- */

#define SIF_HDR_SIZE             128
#define SIF_DESCR_SIZE           585
#define SIF_DESCR_OFFSET_DEFAULT 4096
#define SIF_DESCR_COUNT_DEFAULT  48
#define SIF_GROUP_MASK           0xf0000000u
#define SIF_NAME_LEN             128
#define SIF_EXTRA_LEN            384
#define SIF_LAUNCH_LEN           32
#define SIF_PART_ALIGN           4096
/* Go's zero time.Time as Unix seconds: what deterministic images store. */
#define SIF_TIME_ZERO (-62135596800LL)
/* Refuse descriptor tables larger than this (a sanity bound, not a format limit). */
#define SIF_DESCR_MAX 65536

/* Header field offsets, for error messages and tests. */
enum {
	SIF_HDR_LAUNCH = 0,
	SIF_HDR_MAGIC = 32,
	SIF_HDR_VERSION = 42,
	SIF_HDR_ARCH = 45,
	SIF_HDR_ID = 48,
	SIF_HDR_CTIME = 64,
	SIF_HDR_MTIME = 72,
	SIF_HDR_DFREE = 80,
	SIF_HDR_DTOTAL = 88,
	SIF_HDR_DOFF = 96,
	SIF_HDR_DSIZE = 104,
	SIF_HDR_DATAOFF = 112,
	SIF_HDR_DATASIZE = 120,
};
/* Descriptor field offsets (relative to the descriptor). */
enum {
	SIF_D_DATATYPE = 0,
	SIF_D_USED = 4,
	SIF_D_ID = 5,
	SIF_D_GROUP = 9,
	SIF_D_LINK = 13,
	SIF_D_OFFSET = 17,
	SIF_D_SIZE = 25,
	SIF_D_PADDED = 33,
	SIF_D_CTIME = 41,
	SIF_D_MTIME = 49,
	SIF_D_UID = 57,
	SIF_D_GID = 65,
	SIF_D_NAME = 73,
	SIF_D_EXTRA = 201,
};

enum sif_datatype {
	SIF_DT_DEFFILE = 0x4001,
	SIF_DT_ENVVAR = 0x4002,
	SIF_DT_LABELS = 0x4003,
	SIF_DT_PARTITION = 0x4004,
	SIF_DT_SIGNATURE = 0x4005,
	SIF_DT_GENERIC_JSON = 0x4006,
	SIF_DT_GENERIC = 0x4007,
	SIF_DT_CRYPTO_MESSAGE = 0x4008,
	SIF_DT_SBOM = 0x4009,
	SIF_DT_OCI_ROOT_INDEX = 0x400a,
	SIF_DT_OCI_BLOB = 0x400b,
};

enum sif_parttype {
	SIF_PART_SYSTEM = 1,
	SIF_PART_PRIMSYS = 2,
	SIF_PART_DATA = 3,
	SIF_PART_OVERLAY = 4,
};

enum sif_hashtype {
	SIF_HASH_SHA256 = 1,
	SIF_HASH_SHA384,
	SIF_HASH_SHA512,
	SIF_HASH_BLAKE2S,
	SIF_HASH_BLAKE2B,
};

struct sif_header {
	char launch[SIF_LAUNCH_LEN + 1]; /* NUL-terminated copy */
	uint8_t magic[10];
	char version[4];
	char arch[4]; /* "00".."12", NUL-terminated */
	uint8_t id[16];
	int64_t ctime, mtime;
	int64_t dfree, dtotal, doff, dsize, dataoff, datasize;
};

struct sif_descr {
	int32_t datatype;
	uint8_t used; /* as stored; non-zero means in use */
	uint32_t id;
	uint32_t groupid; /* raw: SIF_GROUP_MASK | group, or SIF_GROUP_MASK for none */
	uint32_t link;    /* raw: object id, SIF_GROUP_MASK | group, or 0 */
	int64_t offset, size, padded;
	int64_t ctime, mtime, uid, gid;
	char name[SIF_NAME_LEN + 1]; /* NUL-terminated copy */
	uint8_t extra[SIF_EXTRA_LEN];
};

/* An opened, validated image. */
struct sif_image {
	int fd; /* -1 for an image read from memory */
	uint64_t file_size;
	struct sif_header h;
	struct sif_descr *d; /* h.dtotal entries, table order */
	/* private */
	const uint8_t *mem;
	bool own_fd;
};

/* Pure encoders/decoders of the packed structures. */
void sif_header_decode(const uint8_t buf[SIF_HDR_SIZE], struct sif_header *h);
void sif_header_encode(const struct sif_header *h, uint8_t buf[SIF_HDR_SIZE]);
void sif_descr_decode(const uint8_t buf[SIF_DESCR_SIZE], struct sif_descr *d);
void sif_descr_encode(const struct sif_descr *d, uint8_t buf[SIF_DESCR_SIZE]);

/* Check the header alone against the file size (pure). */
int sif_check_header(const struct sif_header *h, uint64_t file_size, struct sifu_err *err);
/* Check every descriptor, the free count, overlaps, ids, groups and links (pure). */
int sif_check_descriptors(const struct sif_header *h, const struct sif_descr *d, uint64_t file_size,
                          struct sifu_err *err);

/* Open and validate. sif_open_fd borrows FD; sif_open_path opens PATH
 * (O_RDONLY, or O_RDWR when writable). */
int sif_open_fd(int fd, struct sif_image **out, struct sifu_err *err);
int sif_open_path(const char *path, bool writable, struct sif_image **out, struct sifu_err *err);
int sif_open_mem(const void *buf, size_t len, struct sif_image **out, struct sifu_err *err);
void sif_close(struct sif_image *img);
/* Read LEN bytes at OFF of the image file: range-checked against its size,
 * EINTR and short reads handled; a read past the end is SIFU_E_RANGE. */
int sif_read_at(const struct sif_image *img, void *buf, size_t len, uint64_t off,
                struct sifu_err *err);
static inline void sif_closep(struct sif_image **p)
{
	if (*p)
		sif_close(*p);
}
#define _cleanup_sif_ _cleanup_(sif_closep)

/* The used descriptor with object id ID, or NULL. */
const struct sif_descr *sif_get(const struct sif_image *img, uint32_t id);
/* The primary system partition, or NULL. */
const struct sif_descr *sif_primary(const struct sif_image *img);
/* The first used descriptor of DATATYPE (in table order), or NULL. */
const struct sif_descr *sif_first_of(const struct sif_image *img, int32_t datatype);
/* Read an object's bytes (at most max; -EFBIG beyond), malloc'ed, NUL-terminated. */
int sif_read_object(const struct sif_image *img, const struct sif_descr *d, size_t max, char **out,
                    size_t *len, struct sifu_err *err);

/* Extra fields */
struct sif_partinfo {
	int32_t fstype, parttype;
	char arch[4];
};
void sif_descr_partition(const struct sif_descr *d, struct sif_partinfo *p);
/* hash type; fingerprint (20 bytes) and whether it is set */
int32_t sif_descr_signature(const struct sif_descr *d, uint8_t fp[20], bool *has_fp);
void sif_descr_crypto(const struct sif_descr *d, int32_t *format, int32_t *message);
int32_t sif_descr_sbom(const struct sif_descr *d);
/* digest string of an OCI blob / root index (into buf) */
void sif_descr_oci_digest(const struct sif_descr *d, char *buf, size_t len);

/* Names as siftool prints them (pure). */
const char *sif_datatype_name(int32_t t);
const char *sif_fstype_name(int32_t t);
const char *sif_parttype_name(int32_t t);
const char *sif_hash_name(int32_t t); /* Go's crypto.Hash names: SHA-256 … */
const char *sif_format_name(int32_t t);
const char *sif_message_name(int32_t t);
const char *sif_sbom_name(int32_t t);
int32_t sif_sbom_parse(const char *name); /* 0 if unknown */
/* "00".."12" <-> Go architecture names ("unknown" if none) */
const char *sif_arch_goarch(const char *code);
const char *sif_arch_code(const char *goarch); /* NULL if unknown */
const char *sif_host_goarch(void);
/* siftool's readableSize: "27 KiB", "4 B" */
void sif_fmt_size(int64_t size, char *buf, size_t len);
/* Go's time.Time.String() in UTC: "2020-05-22 19:30:59 +0000 UTC" */
void sif_fmt_time(int64_t t, char *buf, size_t len);
void sif_fmt_uuid(const uint8_t id[16], char buf[37]);
bool sif_uuid_is_nil(const uint8_t id[16]);
int sif_uuid_parse(const char *s, uint8_t id[16]);
/* A hex digit's value, or -1. */
int sif_hexval(char c);

/* ---- modifying an existing image in place (as siftool does) ----
 * Data goes at the end of the file first and is synced, then the descriptor,
 * then the header: an interrupted add leaves the old image readable. */
struct sif_add_opts {
	int32_t datatype;
	uint32_t groupid;  /* plain group number; 0 = none */
	uint32_t link;     /* raw link (object id, or SIF_GROUP_MASK|group) */
	int64_t alignment; /* -1: default (4096 for partitions, else none) */
	const char *name;  /* NULL: none */
	int32_t fstype, parttype;
	const char *arch; /* partitions (Go arch name) */
	int32_t hashtype;
	uint8_t entity[20];      /* signatures */
	int32_t format, message; /* crypto messages */
	int32_t sbom;            /* SBOM */
	int64_t time;            /* INT64_MIN: now (or Go-zero for deterministic images) */
	const struct sif_write_opts *write; /* what "now" is (NULL: the clock) */
};
void sif_add_opts_init(struct sif_add_opts *o);
/* Add the contents of SRCFD (read to its end) to the image at PATH; the new
 * object's id in *id. */
int sif_add_object(const char *path, int srcfd, const struct sif_add_opts *o, uint32_t *id,
                   struct sifu_err *err);
/* Delete object ID: its descriptor is zeroed; with compact, its data is cut
 * off when it is the last object; with zero, its bytes are overwritten.
 * The header's modification time from WO (may be NULL). */
int sif_delete_object(const char *path, uint32_t id, bool zero, bool compact,
                      const struct sif_write_opts *wo, struct sifu_err *err);
/* Make system partition ID the primary one (the old primary becomes a plain
 * system partition) and set the header's architecture. */
int sif_set_primary(const char *path, uint32_t id, const struct sif_write_opts *wo,
                    struct sifu_err *err);
/* Create an empty image at PATH (temporary name, rename, mode 0755). */
int sif_create_empty(const char *path, const char *launch, const struct sif_write_opts *wo,
                     struct sifu_err *err);

/* ================================================================== *
 * Signatures: sign and verify (sif/digest.c, sif/sign.c, sif/verify.c,
 * sif/dsse.c, sif/pgp.c)
 * Interoperable with Apptainer/SingularityCE (sylabs/sif pkg/integrity):
 * the signed message is JSON metadata {"version":1,"header":{"digest":…},
 * "objects":[{"relativeId","descriptorDigest","objectDigest"}…]} over the
 * header's launch/magic/version/id and, per object, the descriptor's
 * datatype, used, relative id, link, size, ctime, uid, gid, name, extra
 * and the object's bytes.  It travels clear-signed (OpenPGP) or in a DSSE
 * envelope (PEM keys); the Signature object is linked to the group and
 * carries the hash type and the signer's fingerprint in its extra field.
 * ================================================================== */

#define SIF_DSSE_PAYLOAD_TYPE "application/vnd.sylabs.sif-metadata+json"

/* The bytes of the header the metadata digests (launch, magic, version, id). */
#define SIF_HDR_SIGNED_LEN (32 + 10 + 3 + 16)
/* The bytes of a descriptor it digests. */
#define SIF_DESCR_SIGNED_LEN (4 + 1 + 4 + 4 + 8 + 8 + 8 + 8 + SIF_NAME_LEN + SIF_EXTRA_LEN)

/* Pure: the digested header/descriptor bytes of raw on-disk structures.
 * relid is the object's id minus the smallest id of its group. */
void sif_header_signed_bytes(const uint8_t raw[SIF_HDR_SIZE], uint8_t out[SIF_HDR_SIGNED_LEN]);
void sif_descr_signed_bytes(const uint8_t raw[SIF_DESCR_SIZE], uint32_t relid,
                            uint8_t out[SIF_DESCR_SIGNED_LEN]);

/* The metadata JSON (Go's encoding, no trailing newline) for the objects
 * IDS (sorted, all in group GID; NULL/0 = every object of the group),
 * digested with HASHTYPE (enum sif_hashtype: SHA256/384/512).  Reads each
 * object once. */
int sif_metadata_json(const struct sif_image *img, uint32_t gid, const uint32_t *ids, size_t nids,
                      int hashtype, char **out, size_t *outlen, struct sifu_err *err);

/* ---- DSSE (PEM keys, OpenSSL) ---- */
struct sif_pemkey;
/* Load a PEM private (for signing) or public key: RSA, ECDSA or Ed25519. */
int sif_pemkey_load(const char *path, bool private_key, struct sif_pemkey **out,
                    struct sifu_err *err);
void sif_pemkey_free(struct sif_pemkey *k);
/* "SHA256:<base64 of the SHA-256 of the DER public key, unpadded>" */
const char *sif_pemkey_id(const struct sif_pemkey *k);
/* Pure: DSSE pre-authentication encoding. */
char *sif_dsse_pae(const char *type, const void *body, size_t len, size_t *outlen);
/* A DSSE envelope over BODY signed by every key (in order), byte for byte
 * as the reference stores it (compact JSON, no trailing newline). */
int sif_dsse_sign(struct sif_pemkey *const *keys, size_t nkeys, const void *body, size_t len,
                  char **out, size_t *outlen, struct sifu_err *err);
/* Is DATA a DSSE envelope of SIF metadata? */
bool sif_dsse_is_envelope(const void *data, size_t len);
/* Verify ENV against KEYS: at least one signature must verify with one key.
 * On success the payload (malloc'ed) and the ids of the keys that verified
 * (comma separated, malloc'ed).  keyids_out gets the envelope's key ids
 * when nothing verified, for the error message. */
int sif_dsse_verify(const void *env, size_t len, struct sif_pemkey *const *keys, size_t nkeys,
                    char **payload, size_t *plen, char **signers, struct sifu_err *err);

/* ---- OpenPGP (GPGME) ----
 * sifu's keyring is a GnuPG home at $XDG_CONFIG_HOME/sifu/keys/gnupg
 * ($SIFU_KEYSDIR overrides keys/); public keys from Apptainer's and
 * Singularity's keyrings (~/.apptainer/keys/pgp-public,
 * ~/.singularity/sypgp/pgp-public) are read when a signer is not found.
 * Where those are, and how a passphrase is found, is what the environment
 * says: cli/ copies it into a struct sif_keyring_opts (cli_keyring in
 * cli/cmd_key.c); every function below that touches the keyring takes it
 * (NULL: every field NULL). */
struct sif_keyring_opts {
	const char *keysdir;         /* $SIFU_KEYSDIR: the keys directory itself */
	const char *xdg_config_home; /* $XDG_CONFIG_HOME: keys in sifu/keys under it (absolute) */
	const char *home;            /* $HOME: else ~/.config/sifu/keys; Singularity's keyring */
	const char *configdir;       /* Apptainer's directory: its keys/pgp-public is read */
	const char *passphrase;      /* $SIFU_PASSPHRASE: given instead of asking ("" is one) */
	const char *key_algo;        /* $SIFU_KEY_ALGO: newpair's algorithm (default rsa4096) */
};
struct sif_pgp_key {
	char fpr[41];
	char uid[256];
	char algo[32];
	unsigned bits;
	bool secret;
	long created;
};
int sif_pgp_home(const struct sif_keyring_opts *kr, char **out, struct sifu_err *err);
/* Keys of the keyring (secret: only those with a secret part). */
int sif_pgp_list(const struct sif_keyring_opts *kr, bool secret, struct sif_pgp_key **keys,
                 size_t *n, struct sifu_err *err);
/* New key pair (Ed25519/Cv25519 … RSA 4096 like Apptainer: "rsa4096",
 * or kr->key_algo); passphrase NULL or "" for none. */
int sif_pgp_newpair(const struct sif_keyring_opts *kr, const char *name, const char *email,
                    const char *comment, const char *passphrase, struct sif_pgp_key *out,
                    struct sifu_err *err);
/* Import keys (armored or binary) from FILE; *count how many were new/changed. */
int sif_pgp_import(const struct sif_keyring_opts *kr, const char *file, unsigned *count,
                   struct sifu_err *err);
/* Export the key FPR (public, or secret too) into FD. */
int sif_pgp_export(const struct sif_keyring_opts *kr, const char *fpr, bool secret, bool armor,
                   int fd, struct sifu_err *err);
int sif_pgp_remove(const struct sif_keyring_opts *kr, const char *fpr, struct sifu_err *err);
/* Clear-sign MSG with the secret key FPR (NULL: the first one). */
int sif_pgp_clearsign(const struct sif_keyring_opts *kr, const char *fpr, const void *msg,
                      size_t len, char **out, size_t *outlen, uint8_t fpr_out[20],
                      struct sifu_err *err);
/* Verify a clear-signed message; the plaintext and the signer's primary-key
 * fingerprint (40 hex).  A missing key is SIFU_E_NOTFOUND. */
int sif_pgp_verify(const struct sif_keyring_opts *kr, const void *data, size_t len, char **plain,
                   size_t *plen, char fpr[41], struct sifu_err *err);
/* Is DATA an OpenPGP clear-signed message?  legacy: its text starts "SIFHASH:\n". */
bool sif_pgp_is_clearsigned(const void *data, size_t len, bool *legacy);
/* Stop the gpg-agent GPGME may have started for sifu's GnuPG home. */
void sif_pgp_cleanup(const struct sif_keyring_opts *kr);

/* ---- signing an image ---- */
struct sif_sign_opts {
	struct sif_pemkey *const *keys; /* DSSE when nkeys > 0 */
	size_t nkeys;
	const char *pgp_fpr;        /* OpenPGP key (NULL: the first secret key) */
	uint32_t group_id;          /* 0: every group (unless object ids) */
	const uint32_t *object_ids; /* objects to sign (one signature per group) */
	size_t nobject_ids;
	int hashtype;                           /* metadata digests; 0 = SHA256 */
	int64_t time;                           /* INT64_MIN: sif_add_object's default */
	const struct sif_keyring_opts *keyring; /* OpenPGP */
	const struct sif_write_opts *write;     /* what "now" is for the default time */
};
/* Adds one Signature object per group; the ids in *sig_ids (malloc'ed). */
int sif_sign_image(const char *path, const struct sif_sign_opts *o, uint32_t **sig_ids,
                   size_t *nsig, struct sifu_err *err);

/* ---- verifying an image ---- */
struct sif_verify_opts {
	struct sif_pemkey *const *keys; /* DSSE public keys */
	size_t nkeys;
	uint32_t group_id;                      /* 0: every group */
	uint32_t sif_id;                        /* 0: none; else only this object */
	bool all;                               /* with legacy: every object's own signature */
	bool legacy;                            /* --legacy-insecure: only legacy signatures */
	const struct sif_keyring_opts *keyring; /* OpenPGP */
};

enum sif_sig_kind { SIF_SIG_UNKNOWN, SIF_SIG_DSSE, SIF_SIG_PGP, SIF_SIG_LEGACY };

struct sif_verify_sig {
	uint32_t sig_id;
	enum sif_sig_kind kind;
	uint32_t link; /* raw link of the signature object */
	int32_t hashtype;
	char signer[512];   /* fingerprint or DSSE key ids that verified */
	char expected[512]; /* fingerprint/key ids the signature names */
	uint32_t *covered;  /* object ids verified by this signature */
	size_t ncovered;
	bool ok;
};

struct sif_verify_report {
	struct sif_verify_sig *sigs;
	size_t nsigs;
	char **problems; /* one line each */
	size_t nproblems;
	bool legacy_seen; /* legacy signatures present (and not asked for) */
};
void sif_verify_report_free(struct sif_verify_report *r);

/* Verify the image at PATH.  0 when every selected signature verifies and
 * covers what it must; < 0 (SIFU_E_VERIFY, first problem in err) otherwise.
 * REPORT (may be NULL) receives every signature and every problem (free it
 * with sif_verify_report_free).  This is what `sifu exec|run|shell
 * --verify[=KEY]` calls before mounting:
 *     struct sif_pemkey *k = NULL;          // --verify=KEY: a PEM public key
 *     if (key && sif_pemkey_load(key, false, &k, err) < 0) return -1;
 *     struct sif_verify_opts o = {.keys = &k, .nkeys = k ? 1 : 0, .keyring = kr};
 *     int r = sif_verify_image(path, &o, NULL, err);   // OpenPGP: the keyring
 *     sif_pemkey_free(k); sif_pgp_cleanup(kr);
 * The objects are read once, sequentially.  A launcher must not use this
 * one: it verifies what PATH names now, not what is opened later (see
 * sif_verify_fd). */
int sif_verify_image(const char *path, const struct sif_verify_opts *o,
                     struct sif_verify_report *report, struct sifu_err *err);

/* What a verified run may serve (`sifu exec|run|shell|test --verify`): the
 * primary partition's location, from the descriptors as this verification
 * parsed them, and a SHA-256 of every BLOCK bytes of it, taken from the very
 * reads whose digest matched the signed one.  A server that checks each
 * block it reads against these serves the verified bytes or nothing,
 * whatever is later written to the file (fuse/'s struct sqf_verity). */
struct sif_served_part {
	uint64_t block;        /* in: block size, a power of two of at most 8 MiB */
	uint64_t offset, size; /* out: the partition's bytes in the file */
	uint32_t id, fstype;   /* out: its object id and enum sif_fstype */
	uint8_t (*sha256)[32]; /* out: nblocks digests (malloc'ed) */
	size_t nblocks;        /* out: ceil(size / block) */
};
void sif_served_part_free(struct sif_served_part *p);
/* sif_verify_image on an open file, FD (read with pread only; NAME for
 * messages).  With PART (block set) the primary partition must be covered
 * by a signature that verifies, and PART is filled; on failure it is
 * freed.  The caller then serves FD itself, never the path again. */
int sif_verify_fd(int fd, const char *name, const struct sif_verify_opts *o,
                  struct sif_verify_report *report, struct sif_served_part *part,
                  struct sifu_err *err);
/* SHA-256 of DATA (libcrypto; safe from many threads at once). */
void sif_sha256(const void *data, size_t len, uint8_t out[32]);
