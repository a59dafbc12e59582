/* SPDX-License-Identifier: BSD-3-Clause */
/* What exec, run, shell and test share: turning parsed options into an
 * ns_config for userns/'s launcher. */
#include "cli.h"
#include "cli_priv.h"
#include "userns.h"
#include "sif.h"

#include <fcntl.h>

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
	c->home_spec = a->set[O_HOME] ? a->val[O_HOME] : NULL;
	c->env_file = a->set[O_ENV_FILE] ? a->val[O_ENV_FILE] : NULL;
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
	static const enum cli_opt_id ids[] = {O_NV};
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++)
		if (a->set[ids[i]]) {
			sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "--%s is not supported yet",
			             cli_opts[ids[i]].long_name);
			sifu_err_hint(err, "run without --%s", cli_opts[ids[i]].long_name);
			return -ENOTSUP;
		}
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
	if (r == 0 && a->set[O_VERIFY])
		r = cmd_action_verify ? cmd_action_verify(&x, a->val[O_VERIFY], err)
		                      : cli_delegate_full(err);
	if (r == 0)
		r = ns_launch(&x.cfg, &status, err);
	cmd_action_free(&x);
	return r < 0 ? r : status;
}
