/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "json-util.h"

#include <errno.h>

int json_add(json_object *o, const char *key, json_object *v)
{
        if (!v)
                return -ENOMEM;
        if ((key ? json_object_object_add(o, key, v) : json_object_array_add(o, v)) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int json_get(json_object *o, const char *key, json_type type, json_object **ret)
{
        if (!json_object_object_get_ex(o, key, ret))
                return 0;
        return json_object_is_type(*ret, type) ? 1 : -EINVAL;
}
