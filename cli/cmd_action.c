/* SPDX-License-Identifier: BSD-3-Clause */
/* What exec, run, shell and test share: turning parsed options into an
 * ns_config for userns/'s launcher. */
#include "cli.h"
#include "cli_priv.h"
#include "userns.h"
#include "sif.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <strings.h>

extern char **environ;

static void add_bind(struct cmd_action *x, struct ns_bind *b)
{
	x->binds = sifu_xrealloc(x->binds, (x->nbinds + 1) * sizeof(*x->binds));
	x->binds[x->nbinds++] = *b;
}

static int flush_mount(char **cur, const char *cwd, struct cmd_action *x, struct sifu_err *err)
{
	int r = 0;
	if (*cur) {
		struct ns_bind b;
		r = ns_mount_parse(*cur, cwd, &b, err);
		if (r == 0)
			add_bind(x, &b);
	}
	free(*cur);
	*cur = NULL;
	return r;
}

/* The option table splits values at commas; a --mount spec is itself comma
 * separated, so a new spec starts at "type=" (or at a second source), and
 * at a newline (APPTAINER_MOUNT holds one spec per line). */
static int parse_mounts(struct cli_args *a, const char *cwd, struct cmd_action *x,
                        struct sifu_err *err)
{
	char *cur = NULL;
	int r = 0;
	for (size_t i = 0; r == 0 && i < a->nlist[O_MOUNT]; i++) {
		const char *item = a->list[O_MOUNT][i];
		while (r == 0 && *item) {
			size_t n = strcspn(item, "\n");
			bool starts =
			    !strncmp(item, "type=", 5) ||
			    (cur && (!strncmp(item, "src=", 4) || !strncmp(item, "source=", 7)) &&
			     (strstr(cur, "src=") || strstr(cur, "source=")));
			if (starts)
				r = flush_mount(&cur, cwd, x, err);
			if (n) {
				char *nc = cur ? sifu_xasprintf("%s,%.*s", cur, (int)n, item)
				               : sifu_xasprintf("%.*s", (int)n, item);
				free(cur);
				cur = nc;
			}
			item += n;
			if (*item == '\n') {
				item++;
				if (r == 0)
					r = flush_mount(&cur, cwd, x, err);
			}
		}
	}
	if (r == 0)
		r = flush_mount(&cur, cwd, x, err);
	free(cur);
	return r;
}

/* APPTAINER_BIND inside: the destinations of every --bind and --mount but
 * those marked nonested, as Apptainer's setBinds passes them to a nested
 * container (e2e issue3501) - the container path is where a nested run
 * finds the bound data. */
static char *nested_bind_list(const struct cmd_action *x)
{
	size_t len = 1;
	for (size_t i = 0; i < x->nbinds; i++)
		len += strlen(x->binds[i].dst) + 1;
	char *list = sifu_xcalloc(1, len);
	size_t off = 0;
	for (size_t i = 0; i < x->nbinds; i++) {
		if (x->binds[i].nonested)
			continue;
		size_t n = strlen(x->binds[i].dst);
		if (off)
			list[off++] = ',';
		memcpy(list + off, x->binds[i].dst, n);
		off += n;
	}
	return list;
}

int cmd_action_parse_binds(struct cli_args *a, const char *cwd, struct cmd_action *x,
                           struct sifu_err *err)
{
	for (size_t i = 0; i < a->nlist[O_BIND]; i++) {
		const char *item = a->list[O_BIND][i];
		/* "SRC:DST:image-src=/d,id=2" was split at its comma: an option
		 * word after a bind with options belongs to it (Apptainer's
		 * ParseBindPath) */
		struct ns_bind *prev = x->nbinds ? &x->binds[x->nbinds - 1] : NULL;
		if (prev && prev->opts && ns_bind_is_option(item)) {
			int r = ns_bind_option(prev, item, item, err);
			if (r < 0)
				return r;
			continue;
		}
		struct ns_bind b;
		int r = ns_bind_parse(item, cwd, &b, err);
		if (r < 0)
			return r;
		add_bind(x, &b);
	}
	int r = parse_mounts(a, cwd, x, err);
	if (r == 0)
		x->bind_list = nested_bind_list(x);
	return r;
}

static int parse_nomount(struct cli_args *a, unsigned *mask, struct sifu_err *err)
{
	for (size_t i = 0; i < a->nlist[O_NO_MOUNT]; i++) {
		int r = ns_nomount_parse(a->list[O_NO_MOUNT][i], mask, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --env K=V,K2=V2 as Apptainer's (a string-to-string flag): split at every
 * comma, and a piece without '=' belongs to the value before it
 * (LD_LIBRARY_PATH=/foo, keeps its trailing comma, A=1,2 is "1,2"). */
static void split_env_values(struct cli_args *a)
{
	struct ns_strv out = {0};
	for (size_t i = 0; i < a->nlist[O_ENV]; i++) {
		for (const char *p = a->list[O_ENV][i];;) {
			size_t n = strcspn(p, ",");
			if (out.n && !memchr(p, '=', n)) {
				char *v = sifu_xasprintf("%s,%.*s", out.v[out.n - 1], (int)n, p);
				free(out.v[out.n - 1]);
				out.v[out.n - 1] = v;
			} else {
				ns_strv_push_take(&out, sifu_xstrndup(p, n));
			}
			if (!p[n])
				break;
			p += n + 1;
		}
		free(a->list[O_ENV][i]);
	}
	free(a->list[O_ENV]);
	a->list[O_ENV] = out.v;
	a->nlist[O_ENV] = out.n;
}

static void flags(struct cli_args *a, struct ns_config *c)
{
	/* --compat is exactly what Apptainer's actions.go makes of isCompat:
	 * --containall --writable-tmpfs --no-init --no-umask --no-eval */
	bool compat = a->set[O_COMPAT];
	bool all = compat || a->set[O_CONTAINALL];
	c->contain = all || a->set[O_CONTAIN];
	/* --no-pid wins over --pid and --containall (NoPID in Apptainer's
	 * launch options: "even if set by default / other flags") */
	c->pid = (all || a->set[O_PID]) && !a->set[O_NO_PID];
	c->ipc = all || a->set[O_IPC];
	c->cleanenv = all || a->set[O_CLEANENV];
	/* --network implies --net, as Apptainer's launcher sets it */
	c->net = a->set[O_NET] || a->set[O_NETWORK];
	c->no_init = compat || a->set[O_NO_INIT];
	c->no_umask = compat || a->set[O_NO_UMASK];
	c->no_eval = compat || a->set[O_NO_EVAL];
	c->no_home = a->set[O_NO_HOME];
	c->writable_tmpfs = compat || a->set[O_WRITABLE_TMPFS];
	c->writable = a->set[O_WRITABLE];
	c->fakeroot = a->set[O_FAKEROOT];
	c->unsquash = a->set[O_UNSQUASH];
	c->hostname = a->set[O_HOSTNAME] ? a->val[O_HOSTNAME] : NULL;
	c->uts = a->set[O_UTS];
	c->home_spec = a->set[O_HOME] ? a->val[O_HOME] : NULL;
	c->env_files = a->list[O_ENV_FILE];
	c->pwd = a->set[O_PWD] ? a->val[O_PWD] : NULL;
	c->workdir = a->set[O_WORKDIR] ? a->val[O_WORKDIR] : NULL;
	c->shell = a->set[O_SHELL] ? a->val[O_SHELL] : NULL;
	c->app = a->set[O_APP] && *a->val[O_APP] ? a->val[O_APP] : NULL;
	split_env_values(a);
	c->env_opts = a->list[O_ENV];
	c->no_env = a->list[O_NO_ENV];
	c->scratch = a->list[O_SCRATCH];
	c->overlays = a->list[O_OVERLAY];
}

/* --network: Apptainer's CNI networks (bridge, ptp, ...) need a setuid
 * installation or root to make their interfaces; what an unprivileged user
 * namespace can have is "none", a namespace with its loopback only, which
 * Apptainer's e2e (actionNetwork, NoneNetwork) runs as an ordinary user. */
static int check_network(const struct cli_args *a, struct sifu_err *err)
{
	const char *n = a->set[O_NETWORK] ? a->val[O_NETWORK] : NULL;
	if (!n || !strcmp(n, "none"))
		return 0;
	sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "--network %s is not supported", n);
	sifu_err_hint(err,
	              "sifu supports --network none (a new network namespace with "
	              "loopback only); other network types need Apptainer's setuid CNI set-up");
	return -ENOTSUP;
}

/* --runscript-timeout as Go's time.ParseDuration reads the values people
 * write: a number with a unit of ns, us, ms, s, m or h, or several of them
 * ("1m30s").  Into milliseconds, at least 1. */
static int parse_timeout(const char *s, unsigned long *ms, struct sifu_err *err)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 6e4}, {"h", 3.6e6}};
	double total = 0;
	const char *p = s;
	while (*p) {
		char *end;
		double v = strtod(p, &end);
		size_t n = end == p ? 0 : strspn(end, "numsh");
		size_t i = 0;
		while (n && i < ARRAY_SIZE(units) &&
		       (strlen(units[i].unit) != n || strncmp(end, units[i].unit, n)))
			i++;
		if (!n || i == ARRAY_SIZE(units) || v < 0) {
			sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			             "--runscript-timeout %s: not a duration", s);
			sifu_err_hint(err, "write a number with a unit: 30s, 2m, 1h30m");
			return -EINVAL;
		}
		total += v * units[i].ms;
		p = end + n;
	}
	*ms = total < 1 ? 1 : total > 1e12 ? (unsigned long)1e12 : (unsigned long)total;
	return 0;
}

static int unsupported(struct cli_args *a, struct sifu_err *err)
{
	static const enum cli_opt_id gpus[] = {O_NV, O_ROCM, O_NVCCLI};
	for (size_t i = 0; i < ARRAY_SIZE(gpus); i++)
		if (a->set[gpus[i]]) {
			sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "--%s is not supported yet",
			             cli_opts[gpus[i]].long_name);
			sifu_err_hint(err,
			              "GPU support (--nv, --rocm, --nvccli) is not in sifu yet: "
			              "run without --%s",
			              cli_opts[gpus[i]].long_name);
			return -ENOTSUP;
		}
	/* Apptainer's resource limits are cgroups its setuid starter or systemd
	 * make; sifu has no daemon to ask and sets none, and says so rather than
	 * run a job unlimited that asked to be limited */
	static const enum cli_opt_id cgroups[] = {
	    O_APPLY_CGROUPS,    O_CPUS,       O_CPU_SHARES,         O_CPUSET_CPUS,
	    O_CPUSET_MEMS,      O_MEMORY,     O_MEMORY_RESERVATION, O_MEMORY_SWAP,
	    O_OOM_KILL_DISABLE, O_PIDS_LIMIT, O_BLKIO_WEIGHT,       O_BLKIO_WEIGHT_DEVICE};
	for (size_t i = 0; i < ARRAY_SIZE(cgroups); i++)
		if (a->set[cgroups[i]]) {
			sifu_err_set(
			    err, SIFU_E_UNSUPPORTED, ENOTSUP,
			    "--%s: sifu sets no cgroup limits (it has no setuid starter or "
			    "systemd manager to make them)",
			    cli_opts[cgroups[i]].long_name);
			sifu_err_hint(err, "limit the job with the batch system (Slurm --mem, "
			                   "--cpus-per-task) or systemd-run --user --scope -p "
			                   "MemoryMax=... sifu ...");
			return -ENOTSUP;
		}
	return 0;
}

/* As the payload's set_caps (userns/payload.c) makes them. */
uint64_t cmd_action_caps(const struct ns_config *c)
{
	bool root = c->fakeroot || getuid() == 0;
	uint64_t all = cli_caps_all();
	if (!c->caps_set)
		return root ? all : 0;
	return ((root && !c->no_privs ? all : 0) | c->add_caps) & ~c->drop_caps;
}

/* The capabilities of a --add-caps or --drop-caps list; an unknown name is
 * skipped with a warning, as Apptainer's "won't add unknown capability". */
static uint64_t parse_caps(const struct cli_args *a, enum cli_opt_id id)
{
	uint64_t set = 0;
	for (size_t i = 0; i < a->nlist[id]; i++) {
		_cleanup_free_ char *w =
		    sifu_xstrdup(a->list[id][i] + strspn(a->list[id][i], " \t"));
		w[strcspn(w, " \t")] = '\0';
		int bit = cli_cap_bit(w);
		if (!strcasecmp(w, "all") || !strcasecmp(w, "cap_all")) {
			set |= cli_caps_all();
		} else if (bit >= 0) {
			set |= UINT64_C(1) << bit;
		} else if (*w) {
			for (char *p = w; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			sifu_warning("won't %s unknown capability: %s%s",
			             id == O_ADD_CAPS ? "add" : "drop",
			             strncasecmp(w, "CAP_", 4) ? "CAP_" : "", w);
		}
	}
	return set;
}

/* An id of --security uid:N or gid:N (one id: the user namespace maps one
 * uid and one gid, and denies setgroups, so there are no extra groups). */
static int security_id(const char *o, bool *set, uint32_t *out, struct sifu_err *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(o + 4, &end, 10);
	if (errno || end == o + 4 || *end || o[4] == '-' || v > UINT32_MAX - 1) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "--security %s: %s", o,
		             *end == ':' ? "sifu maps one gid only (the user namespace denies "
		                           "setgroups, so there are no supplementary groups)"
		                         : "not a number");
		sifu_err_hint(err, "write --security %.4sN with one number", o);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	*set = true;
	return 0;
}

/* --security: uid:/gid: as Apptainer without its setuid starter runs the
 * container (setTargetIDs: "always allow when not using suid starter"),
 * mapped to the caller's own ids; seccomp: compiled by cmd_action_seccomp;
 * apparmor: and selinux: set labels sifu does not manage: refused, with
 * the reason, rather than ignored. */
static int check_security(const struct cli_args *a, struct ns_config *c, struct sifu_err *err)
{
	for (size_t i = 0; i < a->nlist[O_SECURITY]; i++) {
		const char *o = a->list[O_SECURITY][i];
		int r = 0;
		if (!strncmp(o, "uid:", 4))
			r = security_id(o, &c->target_uid_set, &c->target_uid, err);
		else if (!strncmp(o, "gid:", 4))
			r = security_id(o, &c->target_gid_set, &c->target_gid, err);
		if (r < 0)
			return r;
		if (!strncmp(o, "uid:", 4) || !strncmp(o, "gid:", 4))
			continue;
		if (!strncmp(o, "seccomp:", 8)) {
			if (HAVE_SECCOMP && o[8])
				continue; /* compiled by cmd_action_seccomp */
			sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "--security %s: %s", o,
			             o[8] ? "this sifu was built without libseccomp"
			                  : "no profile given");
			sifu_err_hint(err, "%s",
			              o[8] ? "rebuild sifu with libseccomp-dev installed"
			                   : "write --security seccomp:PROFILE.json");
			return -ENOTSUP;
		}
		const char *why = !strncmp(o, "apparmor:", 9)  ? "sifu changes no AppArmor profile"
		                  : !strncmp(o, "selinux:", 8) ? "sifu sets no SELinux context"
		                                               : NULL;
		if (!why) {
			sifu_err_set(err, SIFU_E_USAGE, EINVAL, "--security %s: unknown option", o);
			sifu_err_hint(err,
			              "Apptainer's are seccomp:, apparmor:, selinux:, uid:, gid:");
			return -EINVAL;
		}
		sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "--security %s: %s", o, why);
		sifu_err_hint(err, "run without --security %s", o);
		return -ENOTSUP;
	}
	return 0;
}

/* --dns as Apptainer's files.ResolvConf checks it: comma separated IP
 * addresses, blanks removed, each a valid address. */
static int parse_dns(const struct cli_args *a, struct cmd_action *x, struct sifu_err *err)
{
	if (!a->set[O_DNS])
		return 0;
	struct ns_strv v = {0};
	const char *p = a->val[O_DNS];
	while (*p) {
		size_t n = strcspn(p, ",");
		char ip[INET6_ADDRSTRLEN + 1];
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (p[i] != ' ' && k + 1 < sizeof(ip))
				ip[k++] = p[i];
		ip[k] = '\0';
		unsigned char buf[sizeof(struct in6_addr)];
		if (inet_pton(AF_INET, ip, buf) != 1 && inet_pton(AF_INET6, ip, buf) != 1) {
			ns_strv_free(&v);
			sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			             "--dns: dns ip %.*s is not a valid IP address", (int)n, p);
			sifu_err_hint(err,
			              "give IP addresses, comma separated: --dns 1.1.1.1,8.8.8.8");
			return -EINVAL;
		}
		ns_strv_push(&v, ip);
		p += n + (p[n] == ',');
	}
	if (!v.n) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "--dns: no dns ip provided");
		return -EINVAL;
	}
	x->dns = v.v;
	return 0;
}

/* --no-privs, --keep-privs, --add-caps, --drop-caps as Apptainer's launcher
 * and engine take them (launcher_linux.go withPrivilege; prepare_linux.go
 * prepareRootCaps, prepareUserCaps without its setuid enforcement). */
static int caps_options(const struct cli_args *a, struct ns_config *c, struct sifu_err *err)
{
	if (a->set[O_KEEP_PRIVS] && getuid() != 0) {
		sifu_err_set(err, SIFU_E_USAGE, EPERM, "--keep-privs requires root privileges");
		sifu_err_hint(err, "uid 0 in the container (--fakeroot) has every capability of "
		                   "its user namespace already; run without --keep-privs");
		return -EPERM;
	}
	c->no_privs = a->set[O_NO_PRIVS];
	c->add_caps = parse_caps(a, O_ADD_CAPS);
	c->drop_caps = parse_caps(a, O_DROP_CAPS);
	c->caps_set = c->no_privs || a->set[O_ADD_CAPS] || a->set[O_DROP_CAPS];
	return 0;
}

/* An image given as a URI (docker://, oras://, https://, oci:, oci-archive:,
 * docker-archive:) is pulled into the cache once and run from there, as
 * Apptainer does. */
static bool is_uri(const char *image)
{
	static const char *const prefixes[] = {"oci:", "oci-archive:", "docker-archive:"};
	if (strstr(image, "://"))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (!strncmp(image, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

int cmd_action_prepare(struct cli_args *a, enum ns_action act, struct cmd_action *x,
                       struct sifu_err *err)
{
	memset(x, 0, sizeof(*x));
	x->opened.fd = -1;
	struct ns_config *c = &x->cfg;
	int need = act == NS_EXEC ? 2 : 1;
	if (a->npos < need) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "missing %s",
		             need == 2 && a->npos == 1 ? "the command to run" : "the image");
		sifu_err_hint(err, "%s",
		              act == NS_EXEC
		                  ? "sifu exec [options] IMAGE COMMAND [ARGS...]"
		                  : "give the image: a SIF, a SquashFS file or a directory");
		return -EINVAL;
	}
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "/");
	int r = unsupported(a, err);
	if (r == 0)
		r = check_security(a, c, err);
	if (r == 0)
		r = caps_options(a, c, err);
	if (r == 0)
		r = parse_dns(a, x, err);
	if (r == 0)
		r = cmd_action_parse_binds(a, cwd, x, err);
	if (r == 0)
		r = parse_nomount(a, &c->no_mount, err);
	if (r == 0)
		r = cli_fuse_options(a, &c->sqf, err);
	if (r < 0)
		return r;
	r = check_network(a, err);
	if (r == 0 && a->set[O_RUNSCRIPT_TIMEOUT])
		r = parse_timeout(a->val[O_RUNSCRIPT_TIMEOUT], &c->env_timeout_ms, err);
	if (r < 0)
		return r;
	flags(a, c);
	c->image = a->pos[0];
	if (is_uri(c->image)) {
		if (!cmd_action_pull)
			return cli_delegate_full(
			    err); /* the launcher binary has no registry code */
		if ((r = cmd_action_pull(a, c->image, &x->pulled, err)) < 0)
			return r;
		c->image = x->pulled;
	}
	c->action = act;
	c->args = a->pos + 1;
	c->nargs = a->npos - 1;
	c->binds = x->binds;
	c->nbinds = x->nbinds;
	c->bind_list = x->bind_list;
	c->dns = x->dns;
	c->host_env = environ;
	c->home = cli_env_get()->home;
	c->user = cli_env_get()->user;
	return 0;
}

void cmd_action_free(struct cmd_action *x)
{
	for (size_t i = 0; i < x->nbinds; i++)
		ns_bind_free(&x->binds[i]);
	free(x->binds);
	free(x->bind_list);
	for (char **d = x->dns; d && *d; d++)
		free(*d);
	free(x->dns);
	free(x->seccomp);
	free(x->pulled);
	if (x->opened.fd >= 0)
		close(x->opened.fd);
	free(x->digests);
}

int cmd_action_run(struct cli_args *a, enum ns_action act, struct sifu_err *err)
{
	struct cmd_action x;
	int status = 255;
	int r = cmd_action_prepare(a, act, &x, err);
	for (size_t i = 0; r == 0 && i < a->nlist[O_SECURITY]; i++)
		if (!strncmp(a->list[O_SECURITY][i], "seccomp:", 8))
			r = cmd_action_seccomp
			        ? cmd_action_seccomp(&x, a->list[O_SECURITY][i] + 8,
			                             cmd_action_caps(&x.cfg), err)
			        : cli_delegate_full(err); /* the launcher binary has no JSON */
	if (r == 0 && a->set[O_VERIFY])
		r = cmd_action_verify ? cmd_action_verify(&x, a->val[O_VERIFY], err)
		                      : cli_delegate_full(err);
	if (r == 0)
		r = ns_launch(&x.cfg, &status, err);
	cmd_action_free(&x);
	return r < 0 ? r : status;
}
