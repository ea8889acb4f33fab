/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#define MACHINE_NAME_MAX 64

/* SPEC §9: non-empty, at most 64 bytes, valid UTF-8, no '/', not "." or "..", no leading '.' or '-',
 * no control characters, no whitespace. Used for machine and image names alike. Also rejects ':' (see
 * names.c for why). */
bool machine_name_is_valid(const char *name);

/* Strict UTF-8 check: no overlong forms, no surrogates, nothing above U+10FFFF, no truncated sequence. */
bool utf8_is_valid(const char *s);

/* "machine-NAME.scope" with NAME escaped the way systemd's unit_name_escape() does it (so the same name
 * gives the same unit as systemd-machined would use). NAME must be valid. Returns 0 or -ENOMEM/-EINVAL. */
int machine_scope_unit_name(const char *name, char **ret);
