/* SPDX-License-Identifier: BSD-3-Clause */
/* fetch/: image references, the OCI registry client, auth, the blob cache, layer streams. */
#pragma once

#include "common.h"

/* True once this module is built; the CLI says "not available" until then. */
bool fetch_available(void);
