/* SPDX-License-Identifier: BSD-3-Clause */
/* --security seccomp:PROFILE: an OCI/Docker seccomp profile (JSON) compiled
 * here, in sifu-all (jansson, libseccomp), into the BPF program the payload
 * loads right before it execs the action, as Apptainer's engine loads the
 * profile (internal/pkg/security/seccomp: LoadSeccompConfig, with errno 1
 * for every SCMP_ACT_ERRNO and SCMP_ACT_KILL killing the thread). */
#include "cli_priv.h"
#include "config.h"

#include <ctype.h>
#include <jansson.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#if HAVE_SECCOMP
#include <seccomp.h>

static bool action_of(const char *name, uint32_t *out)
{
	static const struct {
		const char *name;
		uint32_t act;
	} acts[] = {
	    {"SCMP_ACT_KILL", SCMP_ACT_KILL},
	    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL},
	    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
	    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
	    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(1)},
	    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(1)},
	    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
	    {"SCMP_ACT_LOG", SCMP_ACT_LOG},
	};
	for (size_t i = 0; name && i < ARRAY_SIZE(acts); i++)
		if (!strcmp(name, acts[i].name)) {
			*out = acts[i].act;
			return true;
		}
	return false;
}

static bool op_of(const char *name, enum scmp_compare *out)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
	    {"SCMP_CMP_NE", SCMP_CMP_NE},
	    {"SCMP_CMP_LT", SCMP_CMP_LT},
	    {"SCMP_CMP_LE", SCMP_CMP_LE},
	    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
	    {"SCMP_CMP_GE", SCMP_CMP_GE},
	    {"SCMP_CMP_GT", SCMP_CMP_GT},
	    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
	};
	for (size_t i = 0; name && i < ARRAY_SIZE(ops); i++)
		if (!strcmp(name, ops[i].name)) {
			*out = ops[i].op;
			return true;
		}
	return false;
}

/* "SCMP_ARCH_X86_64" (or the OCI "amd64"-less form libseccomp resolves
 * after the prefix, lower case) as libseccomp's token, 0 when unknown. */
static uint32_t arch_of(const char *name)
{
	if (!name)
		return 0;
	if (!strncmp(name, "SCMP_ARCH_", 10))
		name += 10;
	char low[32];
	size_t i = 0;
	for (; name[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[i] = '\0';
	if (!strcmp(low, "x86_64"))
		return SCMP_ARCH_X86_64;
	return seccomp_arch_resolve_name(low);
}

static bool arch_listed(json_t *list)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) if (arch_of(json_string_value(v)) ==
	                                   seccomp_arch_native()) return true;
	return false;
}

/* Whether the payload holds every (ALL) or any (!ALL) capability of LIST. */
static bool caps_held(json_t *list, uint64_t caps, bool all);

static bool kernel_at_least(const char *v)
{
	struct utsname u;
	unsigned a = 0, b = 0, x = 0, y = 0;
	if (!v || uname(&u) < 0 || sscanf(v, "%u.%u", &a, &b) < 1)
		return true;
	sscanf(u.release, "%u.%u", &x, &y);
	return x > a || (x == a && y >= b);
}

/* containers/common's rule filters: includes (all must hold) and excludes
 * (none may) of arches, caps and minKernel. */
static bool rule_applies(json_t *rule, uint64_t caps)
{
	json_t *in = json_object_get(rule, "includes"), *ex = json_object_get(rule, "excludes");
	json_t *l;
	if ((l = json_object_get(in, "arches")) && json_array_size(l) && !arch_listed(l))
		return false;
	if ((l = json_object_get(ex, "arches")) && json_array_size(l) && arch_listed(l))
		return false;
	if ((l = json_object_get(in, "caps")) && json_array_size(l) && !caps_held(l, caps, true))
		return false;
	if ((l = json_object_get(ex, "caps")) && json_array_size(l) && caps_held(l, caps, false))
		return false;
	if ((l = json_object_get(in, "minKernel")) && !kernel_at_least(json_string_value(l)))
		return false;
	return true;
}

static int add_rule(scmp_filter_ctx ctx, json_t *rule, const char *path, struct sifu_err *err)
{
	uint32_t act;
	const char *an = json_string_value(json_object_get(rule, "action"));
	if (!action_of(an, &act))
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: invalid action '%s' specified",
		                    path, an ? an : "");
	struct scmp_arg_cmp conds[6];
	unsigned nc = 0;
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(rule, "args"), i, a)
	{
		json_int_t idx = json_integer_value(json_object_get(a, "index"));
		enum scmp_compare op;
		if (nc == 6 || idx < 0 || idx >= 6 ||
		    !op_of(json_string_value(json_object_get(a, "op")), &op))
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "%s: a rule's args: index 0-5 and an SCMP_CMP_ op each",
			                    path);
		conds[nc++] = (struct scmp_arg_cmp){
		    .arg = (unsigned)idx,
		    .op = op,
		    .datum_a = (scmp_datum_t)json_integer_value(json_object_get(a, "value")),
		    .datum_b = (scmp_datum_t)json_integer_value(json_object_get(a, "valueTwo"))};
	}
	json_t *names = json_object_get(rule, "names");
	json_t *one = json_object_get(rule, "name");
	if (!json_array_size(names) && !json_is_string(one))
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "%s: no syscall specified for the rule", path);
	size_t n = json_array_size(names) ? json_array_size(names) : 1;
	for (size_t k = 0; k < n; k++) {
		const char *name = json_array_size(names)
		                       ? json_string_value(json_array_get(names, k))
		                       : json_string_value(one);
		int nr = name ? seccomp_syscall_resolve_name(name) : __NR_SCMP_ERROR;
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture, as Apptainer skips it */
		int r = seccomp_rule_add_array(ctx, act, nr, nc, conds);
		if (r < 0 && r != -EEXIST)
			return sifu_err_set(err, SIFU_E_USAGE, -r,
			                    "%s: failed adding seccomp rule for syscall %s", path,
			                    name);
	}
	return 0;
}

static int compile(json_t *prof, const char *path, uint64_t caps, scmp_filter_ctx *out,
                   struct sifu_err *err)
{
	uint32_t dflt;
	const char *dn = json_string_value(json_object_get(prof, "defaultAction"));
	if (!dn)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "%s: a defaultAction must be provided", path);
	if (!action_of(dn, &dflt))
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: invalid action '%s' specified",
		                    path, dn);
	scmp_filter_ctx ctx = seccomp_init(dflt);
	if (!ctx)
		return sifu_err_set(err, SIFU_E_SYS, ENOMEM, "seccomp_init");
	*out = ctx;
	/* no_new_privs is the launcher's, set before the user namespace */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(prof, "architectures"), i, v)
	{
		uint32_t a = arch_of(json_string_value(v));
		if (a && a != seccomp_arch_native())
			seccomp_arch_add(ctx, a);
	}
	json_array_foreach(json_object_get(prof, "syscalls"), i, v)
	{
		if (!rule_applies(v, caps))
			continue;
		int r = add_rule(ctx, v, path, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int cmd_action_seccomp(struct cmd_action *x, const char *path, uint64_t caps, struct sifu_err *err)
{
	json_error_t je;
	json_t *prof = json_load_file(path, 0, &je);
	if (!json_is_object(prof)) {
		json_decref(prof);
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "--security seccomp:%s: %s", path, je.text);
		sifu_err_hint(err, "give an OCI (Docker) seccomp profile in JSON");
		return -EINVAL;
	}
	scmp_filter_ctx ctx = NULL;
	int r = compile(prof, path, caps, &ctx, err);
	json_decref(prof);
	_cleanup_close_ int fd = r < 0 ? -1 : memfd_create("sifu-seccomp", MFD_CLOEXEC);
	if (r == 0 && fd < 0)
		r = sifu_err_sys(err, "memfd_create");
	if (r == 0 && (r = seccomp_export_bpf(ctx, fd)) < 0)
		sifu_err_set(err, SIFU_E_SYS, -r, "--security seccomp:%s: exporting the filter",
		             path);
	seccomp_release(ctx);
	if (r < 0)
		return r;
	off_t len = lseek(fd, 0, SEEK_END);
	x->seccomp = sifu_xmalloc(len > 0 ? (size_t)len : 1);
	if (len <= 0 || pread(fd, x->seccomp, (size_t)len, 0) != len)
		return sifu_err_sys(err, "--security seccomp:%s: reading the filter back", path);
	x->cfg.seccomp_bpf = x->seccomp;
	x->cfg.seccomp_bpf_len = (size_t)len;
	return 0;
}

static bool caps_held(json_t *list, uint64_t caps, bool all)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		int bit = cli_cap_bit(json_string_value(v));
		bool held = bit >= 0 && (caps >> bit) & 1;
		if (held != all)
			return !all;
	}
	return all;
}
#endif
