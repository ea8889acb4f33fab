/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Small json-c helpers for the state file (settings-json.c, machine-state.c). */

#include <json-c/json.h>

/* Adds v (NULL: out of memory) under key, or appends it to an array when key is NULL; takes v. */
int json_add(json_object *o, const char *key, json_object *v);
/* 1 and *ret when present with type, 0 when missing, -EINVAL when present with another type. */
int json_get(json_object *o, const char *key, json_type type, json_object **ret);
