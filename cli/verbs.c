/* SPDX-License-Identifier: BSD-3-Clause */
/* The verb table: names, handlers and help text.  Help, man pages and the
 * "not built yet" answers come from here. */
#include "cli.h"

/* Weak references: the launcher `sifu` links only the verbs in cli_core
 * (cli/meson.build) and hands the others to sifu-all; a verb with no
 * cmd_<verb>.c yet stays NULL in both and says plainly that it is not
 * available. */
int cmd_exec(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_run(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_shell(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_test(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_instance(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_pull(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_build(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_push(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_inspect(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_run_help(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_sign(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_verify(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_key(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_cache(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_sif(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_mount(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_registry(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_remote(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_keyserver(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_search(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_plugin(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));
int cmd_overlay(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
    __attribute__((weak));

#define ACTION_ENV                                                                      \
	"Environment: every flag can also be set as SIFU_<FLAG>, APPTAINER_<FLAG> or\n" \
	"SINGULARITY_<FLAG> (e.g. APPTAINER_BIND); APPTAINERENV_<NAME> and\n"           \
	"SINGULARITYENV_<NAME> set <NAME> inside the container.\n"

const struct cli_verb cli_verbs[] = {
    {"exec", V_EXEC, cmd_exec, false, "sifu exec [options] IMAGE COMMAND [ARGS...]",
     "Run a command within a container",
     "Runs COMMAND inside IMAGE (a SIF file, a bare SquashFS file or a sandbox\n"
     "directory) with no privileges: a user namespace, the image mounted through\n"
     "sifu's own FUSE server, your home directory, the current directory and /tmp\n"
     "bound in as Apptainer does. The exit status is COMMAND's (128+N if it was\n"
     "killed by signal N); 255 means sifu itself failed.\n\n" ACTION_ENV,
     "  $ sifu exec ubuntu.sif head -n 4 /etc/os-release\n"
     "  $ sifu exec --bind /scratch:/data ubuntu.sif ls /data\n"
     "  $ sifu exec --cleanenv --env LANG=C tools.sif python3 job.py\n"},
    {"run", V_RUN, cmd_run, false, "sifu run [options] IMAGE [ARGS...]",
     "Run the user-defined default command within a container",
     "Runs the image's runscript (/.singularity.d/runscript) with ARGS. A SIF\n"
     "file is its own launcher: ./image.sif ARGS does the same through the\n"
     "run-singularity name.\n\n" ACTION_ENV,
     "  $ sifu run lolcow.sif\n  $ ./lolcow.sif --help\n"
     "  $ sifu run --app foo apps.sif a b      # the SCIF app foo's %apprun\n"},
    {"shell", V_SHELL, cmd_shell, false, "sifu shell [options] IMAGE",
     "Run a shell within a container",
     "Starts an interactive shell in IMAGE: $SINGULARITY_SHELL, then /bin/bash\n"
     "--norc, then /bin/sh. The prompt is \"Sifu> \".\n\n" ACTION_ENV,
     "  $ sifu shell ubuntu.sif\n  $ sifu shell --shell /bin/zsh tools.sif\n"},
    {"test", V_TEST, cmd_test, false, "sifu test [options] IMAGE",
     "Run the user-defined tests within a container",
     "Runs the image's test script (/.singularity.d/test), or exits 0 if it has\n"
     "none.\n\n" ACTION_ENV,
     "  $ sifu test tools.sif\n  $ sifu test --app foo apps.sif\n"},
    {"instance", V_INSTANCE, cmd_instance, false, "sifu instance start|stop|list [options] ...",
     "Manage containers running as services",
     "Starts, lists and stops named container instances.\n", "  $ sifu instance list\n"},
    {"pull", V_PULL, cmd_pull, true, "sifu pull [options] [OUTPUT.sif] URI",
     "Pull an image from a URI",
     "Downloads an image and converts it to a SIF file. URI is docker://,\n"
     "oras://, oci-archive:, oci:, docker-archive: or https://. Without OUTPUT the\n"
     "name is derived from the URI as Apptainer does (alpine_latest.sif); --name\n"
     "beats OUTPUT, --dir puts the file in a directory. An existing file is kept\n"
     "and the pull fails, unless --force. Layers stream straight into SquashFS:\n"
     "no root file system is ever extracted.\n",
     "  $ sifu pull docker://alpine\n  $ sifu pull ubuntu.sif docker://ubuntu:24.04\n"
     "  $ sifu pull --force --name tool.sif --dir images docker://alpine:3.19\n"},
    {"push", V_PUSH, cmd_push, true, "sifu push [options] IMAGE.sif oras://HOST/REPO[:TAG]",
     "Upload a SIF image to an OCI registry",
     "Uploads IMAGE.sif byte for byte as the ORAS artifact Apptainer writes (a SIF\n"
     "layer in an OCI manifest), so that sifu pull oras:// and apptainer pull\n"
     "oras:// get the same file back; signatures inside the SIF travel with it.\n"
     "Credentials come from registry login or the docker config files, as for\n"
     "pull. docker:// is refused (a SIF is not a container image) and library://\n"
     "does not apply (sifu has no container library).\n",
     "  $ sifu push lolcow.sif oras://registry.example.org/me/lolcow:1\n"
     "  $ sifu push --nohttps tool.sif oras://localhost:5000/tool:latest\n"},
    {"build", V_BUILD, cmd_build, true, "sifu build [options] OUTPUT SOURCE",
     "Build a container image",
     "Builds OUTPUT (a SIF, or a directory with --sandbox) from SOURCE: a\n"
     "definition file, a URI, a SIF or a sandbox directory. Unprivileged: %post\n"
     "runs as root in a user namespace, under a seccomp filter that lets chown,\n"
     "setgroups and mknod succeed and records the owners chown asked for.\n\n"
     "A definition file is read whole first, its {{ templates }} filled from\n"
     "--build-arg, --build-arg-file and its %arguments defaults; any mistake is\n"
     "reported with its file and line before anything runs.\n\n"
     "Bootstrap agents: docker, oci, oci-archive, docker-archive, localimage,\n"
     "busybox, scratch, and debootstrap (the host's debootstrap, run as the\n"
     "same fake root; OSVersion:, MirrorURL:, Include:; packages are cached in\n"
     "$SIFU_CACHEDIR/debootstrap).\n\n"
     "--userns-subid maps your /etc/subuid and /etc/subgid ranges through\n"
     "newuidmap/newgidmap instead: chown and groups are then real. It is never\n"
     "needed.\n",
     "  $ sifu build tool.sif tool.def\n"
     "  $ sifu build --build-arg VERSION=1.2 tool.sif tool.def\n"
     "  $ sifu build --sandbox dir/ docker://alpine\n"
     "  $ sifu build --userns-subid tool.sif tool.def\n"},
    {"inspect", V_INSPECT, cmd_inspect, true, "sifu inspect [options] IMAGE",
     "Show metadata for an image",
     "Shows the labels (by default), definition file, runscript, start script,\n"
     "test script, environment or help of IMAGE, as Apptainer does; --json\n"
     "for scripts, --all for everything. The answers come from the SIF's\n"
     "metadata objects (inspect-metadata.json, the definition file and labels\n"
     "objects). What lives only inside the image's own /.singularity.d cannot\n"
     "be read by this build yet, and inspect says so.\n",
     "  $ sifu inspect ubuntu.sif\n  $ sifu inspect --deffile tool.sif\n"
     "  $ sifu inspect --all --json tool.sif\n"
     "  $ sifu inspect --list-apps apps.sif\n  $ sifu inspect --app foo --runscript apps.sif\n"},
    {"run-help", V_RUN_HELP, cmd_run_help, true, "sifu run-help [--app NAME] IMAGE",
     "Show the user-defined help for an image",
     "Prints the help text of IMAGE (a SIF, a sandbox directory or a bare\n"
     "SquashFS file): the %help section of its definition file, kept in\n"
     "/.singularity.d/runscript.help, or with --app NAME the app's %apphelp\n"
     "(/scif/apps/NAME/scif/runscript.help). Without one it prints Apptainer's\n"
     "line \"No help sections were defined for this image\" and exits 0.\n",
     "  $ sifu run-help tool.sif\n  $ sifu run-help --app foo apps.sif\n"},
    {"sign", V_SIGN, cmd_sign, true, "sifu sign [options] IMAGE",
     "Add digital signature(s) to an image",
     "Signs each object group of IMAGE (or --group-id N, or the objects of\n"
     "--sif-id N) as Apptainer and SingularityCE do: JSON metadata with the\n"
     "digests of the header, the descriptors and the objects, clear-signed with\n"
     "an OpenPGP key from sifu's keyring (the first secret key, or --keyidx N),\n"
     "or in a DSSE envelope with one signature per PEM private key (--key,\n"
     "repeatable: RSA, ECDSA, Ed25519). Either tool verifies the result.\n",
     "  $ sifu sign image.sif\n"
     "  $ sifu sign --key ed25519-private.pem --key rsa-private.pem image.sif\n"
     "  $ sifu sign --group-id 2 --keyidx 1 image.sif\n"},
    {"verify", V_VERIFY, cmd_verify, true, "sifu verify [options] IMAGE",
     "Verify digital signature(s) within an image",
     "Checks every signature of every object group of IMAGE (or --group-id N,\n"
     "or --sif-id N): the signer must be trusted (a key in sifu's keyring for\n"
     "OpenPGP, a --key PUBLIC.pem for DSSE), every digest must match, and the\n"
     "signed set must be exactly the group. Prints which objects each signer\n"
     "covers; on failure one line per problem and exit status 255. Legacy\n"
     "(pre-3.6) signatures are checked only with --legacy-insecure (--all: every\n"
     "object's own signature).\n",
     "  $ sifu verify image.sif\n"
     "  $ sifu verify --key rsa-public.pem image.sif\n"
     "  $ sifu verify --json --group-id 1 image.sif\n"
     "  $ sifu verify --legacy-insecure --all old.sif\n"},
    {"key", V_KEY, cmd_key, true, "sifu key newpair|list|import|export|remove [options]",
     "Manage OpenPGP keys",
     "Manages the OpenPGP keyring sign and verify use: a GnuPG home at\n"
     "$XDG_CONFIG_HOME/sifu/keys/gnupg. Public keys in ~/.apptainer/keys\n"
     "($APPTAINER_CONFIGDIR/keys) and ~/.singularity/sypgp are read (never\n"
     "written) when a signer is missing.\n\n"
     "  newpair [--name N --email E --comment C --password --bit-length B]\n"
     "  list [--secret] [--json]\n"
     "  import KEYFILE            armored or binary, public or secret keys\n"
     "  export [--secret] [--armor] [FINGERPRINT] FILE\n"
     "  remove FINGERPRINT\n",
     "  $ sifu key newpair --name 'Ada Lovelace' --email ada@example.org\n"
     "  $ sifu key list\n"
     "  $ sifu key export --armor 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84 ada.asc\n"},
    {"cache", V_CACHE, cmd_cache, true, "sifu cache list|clean [options] [TYPE...]",
     "Manage the local cache",
     "Lists or cleans the blob and image cache, the packages kept by debootstrap\n"
     "builds there, and the block cache (see --block-cache of exec).\n\n"
     "The cache is $SIFU_CACHEDIR, else $APPTAINER_CACHEDIR, else\n"
     "$SINGULARITY_CACHEDIR, else $XDG_CACHE_HOME/sifu, else ~/.cache/sifu\n"
     "(HOME, or the passwd entry's home when HOME is unset or not a directory of\n"
     "yours), else $TMPDIR/sifu-UID/cache.  Images in it are executed by\n"
     "'exec docker://...', so sifu uses it only if it and every directory in it\n"
     "is yours, not writable by group or others, and not a symbolic link; it\n"
     "makes what is missing with mode 0700.  Otherwise it stops with one line\n"
     "naming the directory: fix its owner or mode, set SIFU_CACHEDIR to\n"
     "another directory, or use --disable-cache.  clean refuses (exit 255, nothing\n"
     "removed) a block cache directory that is a symlink, another user's, or\n"
     "writable by others.\n",
     "  $ sifu cache list\n  $ sifu cache clean --force\n"},
    {"sif", V_SIF, cmd_sif, true, "sifu sif list|info|header|dump|new|add|del|setprim ...",
     "Manipulate Singularity Image Format (SIF) images",
     "Low-level access to SIF files, with siftool's commands, arguments, flags\n"
     "and output, so either tool works in a script:\n\n"
     "  header IMAGE         the global header\n"
     "  list IMAGE           the objects: id, group, link, position, type\n"
     "  info ID IMAGE        everything object ID's descriptor holds\n"
     "  dump ID IMAGE        object ID's bytes, to standard output\n"
     "  new IMAGE            a new, empty image (mode 0755, run-singularity line)\n"
     "  add IMAGE FILE ...   add FILE as an object (--datatype N and its flags)\n"
     "  del ID IMAGE         delete object ID\n"
     "  setprim ID IMAGE     make system partition ID the primary one\n\n"
     "--json prints list, header and info as JSON. A damaged image is refused\n"
     "with one line naming the field and its offset. add, del and setprim change\n"
     "the image in place, as siftool does, and refuse a change that would leave a\n"
     "link pointing at nothing.\n",
     "  $ sifu sif list image.sif\n"
     "  $ sifu sif info 2 image.sif\n"
     "  $ sifu sif dump 1 image.sif > recipe.def\n"
     "  $ sifu sif new tool.sif\n"
     "  $ sifu sif add tool.sif rootfs.sqfs --datatype 4 --partfs 1 --parttype 2 \\\n"
     "        --partarch 2 --groupid 1\n"
     "  $ sifu sif add tool.sif tool.def --datatype 1 --groupid 1\n"
     "  $ sifu sif setprim 2 tool.sif\n"},
    {"overlay", V_OVERLAY, cmd_overlay, true, "sifu overlay create [options] IMAGE",
     "Manage an EXT3 writable overlay image",
     "create makes IMAGE a persistent overlay, as Apptainer does: a new ext3\n"
     "image file of --size MiB (default 64, the least; --sparse takes disk space\n"
     "only as it is written) with upper/ and work/ at its root, owned by you (by\n"
     "root with --fakeroot, for runs with --fakeroot), and each --create-dir\n"
     "under upper/.  When IMAGE is an existing SIF, the overlay is added to it as\n"
     "an ext3 overlay partition instead; a signed SIF, one with an encrypted root\n"
     "file system, or one that has an overlay partition already is refused.  Use\n"
     "it with --overlay IMAGE (a file) or --writable (a SIF).  The file system is\n"
     "made by mke2fs (e2fsprogs), the layout by sifu itself; a half-made image\n"
     "never appears under IMAGE's name.\n",
     "  $ sifu overlay create --size 1024 overlay.img\n"
     "  $ sifu exec --overlay overlay.img ubuntu.sif touch /data.txt\n"
     "  $ sifu overlay create --sparse --create-dir /opt/data tool.sif\n"
     "  $ sifu exec --writable tool.sif ls /opt/data\n"},
    {"mount", V_MOUNT, cmd_mount, true, "sifu mount [options] IMAGE DIR",
     "Mount an image's file system on a directory (debugging, benchmarks)",
     "Serves IMAGE (a SIF, a bare SquashFS or an ext3 image) on DIR in the\n"
     "foreground until Ctrl-C or unmount, and prints the server's I/O counters at\n"
     "the end.  Should it be killed (SIGKILL), a watchdog unmounts a SquashFS DIR.\n"
     "An ext3 image is served read-only, or read-write with --writable, and\n"
     "written back when the command ends.\n",
     "  $ sifu mount ubuntu.sif /tmp/u &\n  $ ls /tmp/u; fusermount3 -u /tmp/u\n"
     "  $ sifu mount --writable overlay.img /tmp/o &\n"},
    {"registry", V_REGISTRY, cmd_registry, true,
     "sifu registry login|logout [options] docker://HOST | list",
     "Log in to or out of an OCI registry",
     "login checks the user name and password (or token) with the registry, as\n"
     "docker login does, and only then stores them (in\n"
     "~/.apptainer/docker-config.json: $APPTAINER_CONFIGDIR/docker-config.json\n"
     "when set; or --authfile), where pull, build and\n"
     "exec find them; credentials the registry refuses change nothing. logout\n"
     "says what it removed; list shows the registries with stored credentials.\n"
     "oras://HOST names the same login.\n",
     "  $ echo \"$TOKEN\" | sifu registry login -u me --password-stdin docker://ghcr.io\n"
     "  $ sifu registry list\n  $ sifu registry logout docker://ghcr.io\n"},
    /* bit 0: these take their words unparsed (cmd_remote.c says why) */
    {"remote", 0, cmd_remote, true, "sifu remote login|logout [options] docker://HOST | list",
     "Log in to or out of an OCI registry (Apptainer's remote verbs)",
     "remote login, logout and list are registry login, logout and list, with\n"
     "the same options (sifu help registry). sifu has no library or keyserver\n"
     "endpoints: remote add, remove, use, status and the keyserver subcommands\n"
     "say so and exit 255.\n",
     "  $ sifu remote login -u me --password-stdin docker://registry.example.org\n"
     "  $ sifu remote list\n"},
    {"keyserver", 0, cmd_keyserver, true, "sifu keyserver ...", "Not in sifu: no keyservers",
     "sifu has no keyserver endpoints; exchange public keys as files with\n"
     "sifu key export and sifu key import. Exits 255.\n",
     "  $ sifu key import colleague.asc\n"},
    {"search", 0, cmd_search, true, "sifu search ...", "Not in sifu: no library to search",
     "sifu pulls from OCI registries and has no container library to search.\n"
     "Exits 255.\n",
     "  $ skopeo list-tags docker://docker.io/library/alpine\n"},
    {"plugin", 0, cmd_plugin, true, "sifu plugin ...", "Not in sifu: no plugins",
     "sifu has no plugin system (Apptainer's plugins are Go code built into\n"
     "Apptainer). Exits 255.\n",
     "  $ sifu exec --bind /data tool.sif ls /data\n"},
    {"version", V_VERSION, cmd_version, true, "sifu version", "Show the version",
     "Prints sifu's version; called as apptainer or singularity (a link), the\n"
     "Apptainer release whose behaviour sifu matches, as Apptainer prints it.\n"
     "With --debug a line on stderr says it is sifu.\n",
     "  $ sifu version\n"},
    {"help", V_HELP, cmd_help, true, "sifu help [VERB]", "Help about any command",
     "Prints help for sifu or for one verb.\n", "  $ sifu help exec\n"},
};
const size_t cli_nverbs = ARRAY_SIZE(cli_verbs);

const struct cli_verb *cli_find_verb(const char *name)
{
	for (size_t i = 0; i < cli_nverbs; i++)
		if (!strcmp(cli_verbs[i].name, name))
			return &cli_verbs[i];
	return NULL;
}

int cli_not_built(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	return sifu_err_set(err, SIFU_E_UNAVAILABLE, ENOSYS,
	                    "'%s' is not available in this build yet", v->name);
}

static bool as_apptainer;

void cli_set_as_apptainer(bool yes)
{
	as_apptainer = yes;
}

void cli_print_version(bool flag)
{
	if (!as_apptainer)
		printf("sifu version %s\n", SIFU_VERSION);
	else if (flag)
		printf("apptainer version %s\n", SIFU_APPTAINER_VERSION);
	else
		printf("%s\n", SIFU_APPTAINER_VERSION);
	if (sifu_log_get_level() >= SIFU_LOG_DEBUG)
		sifu_debug("this is sifu %s, which matches Apptainer %s%s", SIFU_VERSION,
		           SIFU_APPTAINER_VERSION,
		           as_apptainer ? " and answers as it when called apptainer or singularity"
		                        : "");
}

int cmd_version(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	cli_print_version(false);
	return 0;
}

int cmd_help(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	/* help takes its words unparsed (main.c), so its own --help is seen here */
	for (int i = 0; i < a->npos; i++)
		if (!strcmp(a->pos[i], "--help") || !strcmp(a->pos[i], "-h")) {
			cli_print_verb_help(stdout, v);
			return 0;
		}
	if (a->npos == 1 && !strcmp(a->pos[0], "--bash-completion")) {
		cli_print_bash_completion(stdout, cli_verbs, cli_nverbs);
		return 0;
	}
	bool markdown = a->npos > 0 && !strcmp(a->pos[0], "--markdown");
	char **pos = a->pos + markdown;
	int npos = a->npos - markdown;
	if (npos == 0) {
		if (markdown)
			cli_print_main_markdown(stdout, cli_verbs, cli_nverbs);
		else
			cli_print_main_help(stdout, cli_verbs, cli_nverbs);
		return 0;
	}
	const struct cli_verb *t = cli_find_verb(pos[0]);
	if (!t) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "help: unknown verb '%s'", pos[0]);
		return -EINVAL;
	}
	if (markdown)
		cli_print_verb_markdown(stdout, t);
	else
		cli_print_verb_help(stdout, t);
	return 0;
}
