/* SPDX-License-Identifier: BSD-3-Clause */
/* cli/'s private header: what the action verbs (cmd_exec.c, cmd_run.c,
 * cmd_shell.c, cmd_test.c, cmd_action*.c) share.  cli.h is the header main.c
 * and the unit tests use. */
#pragma once

#include "cli.h"
#include "userns.h"

struct cmd_action {
	struct ns_config cfg;
	struct ns_bind *binds;
	size_t nbinds;
	char *bind_list;
	char **dns;    /* --dns addresses, NULL-terminated, or NULL */
	void *seccomp; /* --security seccomp:'s BPF program, or NULL */
	char *pulled;  /* the cached SIF of a docker://… (etc.) image */
	/* --verify: the image as opened once and verified (opened.fd -1
	 * before), where its partition lies, and its block digests */
	struct ns_image_fd opened;
	struct sqf_verity verity;
	uint8_t (*digests)[32];
};

/* Options → ns_config (pure apart from getcwd). */
int cmd_action_prepare(struct cli_args *a, enum ns_action act, struct cmd_action *x,
                       struct sifu_err *err);
void cmd_action_free(struct cmd_action *x);
/* --bind and --mount (relative sources against CWD) into x->binds and
 * x->bind_list; build uses them for %post and %test too. */
int cmd_action_parse_binds(struct cli_args *a, const char *cwd, struct cmd_action *x,
                           struct sifu_err *err);
/* Launch; returns the payload's exit status, or < 0 with err set. */
int cmd_action_run(struct cli_args *a, enum ns_action act, struct sifu_err *err);

/* cmd_action_ext.c (sifu-all only; NULL in the launcher binary): pull a
 * docker://… image into the cache, and --verify[=KEY]: open x->cfg.image
 * once, verify that open file and point x->cfg at it (opened, sqf.verity),
 * so the launcher serves the verified bytes or nothing. */
int cmd_action_pull(struct cli_args *a, const char *uri, char **path, struct sifu_err *err)
    __attribute__((weak));
int cmd_action_verify(struct cmd_action *x, const char *key, struct sifu_err *err)
    __attribute__((weak));
/* cmd_seccomp.c (sifu-all built with libseccomp): compile the seccomp
 * profile at PATH for x->cfg's payload into x->seccomp and x->cfg. */
int cmd_action_seccomp(struct cmd_action *x, const char *path, uint64_t caps, struct sifu_err *err)
    __attribute__((weak));
/* cmd_action.c: the capabilities C's payload will hold (bit N: capability N). */
uint64_t cmd_action_caps(const struct ns_config *c);

int cmd_exec(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
int cmd_run(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
int cmd_shell(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
int cmd_test(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
