/* SPDX-License-Identifier: BSD-3-Clause */
/* userns/: the unprivileged launcher — namespaces, id maps, the mount tree,
 * passwd/group, environment, the supervisor, exec. */
#pragma once

#include "common.h"

/* Does this kernel let an unprivileged process create a user namespace?
 * Fills err with the cause and the remedy when it does not.  Probes by doing
 * it (in a short-lived child), never by reading version numbers. */
int ns_probe_userns(struct sifu_err *err);
