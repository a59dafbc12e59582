/* SPDX-License-Identifier: BSD-3-Clause */
/* Private to recipe/: shared helpers. */
#pragma once

#include "common.h"

/* The spelling the serialiser writes for a lower-case header KEY. */
void recipe_header_display(const char *key, char *buf, size_t len);
