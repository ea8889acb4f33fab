/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#define MACHINE_NAME_MAX 64

/* SPEC §9: non-empty, at most 64 bytes, valid UTF-8, no '/', not "." or "..", no leading '.' or '-',
 * no control characters, no whitespace. Used for machine and image names alike. */
bool machine_name_is_valid(const char *name);
