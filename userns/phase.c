/* SPDX-License-Identifier: BSD-3-Clause */
/* --debug phase timings: every step of the launch, in the launcher and the
 * payload alike, says how long it took since the previous one and since the
 * start (docs/running.md, "What happens at start-up"). */
#include "userns_priv.h"

void ns_phase(struct ns_run *l, const char *what)
{
	uint64_t now = sifu_now_ns();
	sifu_debug("timing: %-22s %7.3f ms  (total %7.3f ms)", what, (double)(now - l->tlast) / 1e6,
	           (double)(now - l->t0) / 1e6);
	l->tlast = now;
}
