/* SPDX-License-Identifier: BSD-3-Clause */
/* squash/: an in-memory file tree (from OCI layers with whiteouts, or a directory) written out as SquashFS through libsquashfs. */
#pragma once

#include "common.h"

/* True once this module is built; the CLI says "not available" until then. */
bool squash_available(void);
