/* SPDX-License-Identifier: BSD-3-Clause */
#include "recipe.h"

bool recipe_available(void)
{
	return false;
}
