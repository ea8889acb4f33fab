/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A machine's complete settings as a JSON object, for the state file that a restarted daemon re-adopts the
 * machine from (SPEC §9: every setting a guest was started with holds through daemon restarts). Every field
 * is written, unset ones with their "unset" value, so that reading gives back exactly what was written. */

#include <json-c/json.h>

#include "settings.h"

int settings_to_json(const Settings *s, json_object **ret);
/* Every value is type-checked; an ill-typed or out-of-range one fails with -EINVAL. A missing key stays
 * unset. */
int settings_from_json(json_object *o, Settings **ret);
