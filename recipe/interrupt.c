/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: the build's signal state.  While a build runs, SIGINT, SIGTERM
 * and SIGHUP only set a flag: every step checks it (bld_check_interrupted)
 * and returns, so that the temporary directory is removed on the way out,
 * and a child being waited for gets the signal passed on (bld_forward). */
#include "recipe_priv.h"

static volatile sig_atomic_t interrupted;
volatile sig_atomic_t bld_forward;

int bld_check_interrupted(struct sifu_err *err)
{
	if (!interrupted)
		return 0;
	return sifu_err_set(err, SIFU_E_SYS, EINTR, "build interrupted by signal %d",
	                    (int)interrupted);
}

static void on_signal(int sig)
{
	interrupted = sig;
	/* a terminal's ^C reached the child's group already; a kill aimed at
	 * sifu alone did not: the child ends the way a kill would end it */
	bld_forward = sig == SIGINT ? SIGINT : SIGTERM;
}

static const int caught[] = {SIGINT, SIGTERM, SIGHUP};

void bld_signals_catch(struct bld_signals *s)
{
	_Static_assert(ARRAY_SIZE(caught) == ARRAY_SIZE(s->old), "one old action per signal");
	interrupted = 0;
	bld_forward = 0;
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(caught); i++)
		sigaction(caught[i], &sa, &s->old[i]);
}

void bld_signals_restore(struct bld_signals *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(caught); i++)
		sigaction(caught[i], &s->old[i], NULL);
}
