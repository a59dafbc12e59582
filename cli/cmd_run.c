/* SPDX-License-Identifier: BSD-3-Clause */
#include "cli_priv.h"

int cmd_run(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	return cmd_action_run(a, NS_RUN, err);
}
