/* SPDX-License-Identifier: BSD-3-Clause */
#include "squash.h"

bool squash_available(void)
{
	return false;
}
