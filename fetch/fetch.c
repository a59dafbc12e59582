/* SPDX-License-Identifier: BSD-3-Clause */
#include "fetch.h"

bool fetch_available(void)
{
	return false;
}
