/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: definition files — parse, bootstrap agents, %post as fake root in a user namespace, sandbox dirs. */
#pragma once

#include "common.h"

/* True once this module is built; the CLI says "not available" until then. */
bool recipe_available(void);
