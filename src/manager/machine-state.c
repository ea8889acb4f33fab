/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state file RUNTIME_DIR/machines/NAME: the whole machine — every setting it was started with and its
 * runtime state — as one JSON object, written atomically after every change and read back whole by a
 * restarted daemon. JSON because some of it is guest-controlled text (StatusText): no text can split a
 * record or forge a key. */
#include "machine-state.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "json-util.h"
#include "log.h"
#include "machine-userns.h"
#include "network.h"
#include "settings-json.h"
#include "util.h"

#define STATE_FORMAT 1
/* Ours, written by us into a root-only directory; bounded all the same. */
#define STATE_FILE_MAX (1024 * 1024)

/* The cgroup, network and userns modules describe their runtime parts as KEY=VALUE lines (our own values:
 * paths, interface names, numbers); kept as [key, value] pairs in file order, since a key may repeat. */
static int runtime_records(Machine *m, json_object **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        network_machine_serialize(m, f);
        userns_machine_serialize(m, f);
        if (m->cgroup)
                (void)cgroup_serialize(m->cgroup, f);
        if (fclose(f) != 0)
                return -ENOMEM;

        json_object *a = json_object_new_array();
        if (!a)
                return -ENOMEM;
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq = 0;
                json_object *pair = json_object_new_array();
                int r = pair ? json_add(pair, NULL, json_object_new_string(line)) : -ENOMEM;
                if (r >= 0)
                        r = json_add(pair, NULL, json_object_new_string(eq + 1));
                if (r < 0)
                        json_object_put(pair);
                else
                        r = json_add(a, NULL, pair);
                if (r < 0) {
                        json_object_put(a);
                        return r;
                }
        }
        *ret = a;
        return 0;
}

static int machine_to_json(Machine *m, json_object **ret)
{
        char id[SD_ID128_STRING_MAX];
        json_object *o = json_object_new_object(), *settings = NULL, *runtime = NULL;
        if (!o)
                return -ENOMEM;
        int r = json_add(o, "format", json_object_new_int(STATE_FORMAT));
        if (r >= 0)
                r = json_add(o, "name", json_object_new_string(m->name));
        if (r >= 0)
                r = json_add(o, "id", json_object_new_string(sd_id128_to_string(m->id, id)));
        if (r >= 0)
                r = json_add(o, "state", json_object_new_string(machine_state_to_string(m->state)));
        if (r >= 0)
                r = json_add(o, "leader", json_object_new_int(m->leader));
        if (r >= 0)
                r = json_add(o, "leader_starttime", json_object_new_uint64(m->leader_starttime));
        if (r >= 0)
                r = json_add(o, "timestamp", json_object_new_uint64(m->timestamp));
        if (r >= 0 && m->status_text)
                r = json_add(o, "status_text", json_object_new_string(m->status_text));
        if (r >= 0 && (r = settings_to_json(m->settings, &settings)) >= 0)
                r = json_add(o, "settings", settings);
        if (r >= 0 && (r = runtime_records(m, &runtime)) >= 0)
                r = json_add(o, "runtime", runtime);
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

int machine_state_save(Machine *m)
{
        json_object *o = NULL;
        int r = machine_to_json(m, &o);
        if (r >= 0)
                r = write_file_atomic(m->state_file, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        if (r < 0)
                log_machine_warning_errno(m->name, r, "Write state file %s: %m", m->state_file);
        return r;
}

/* ---- reading ---- */

/* A value of that type, or NULL (missing or of another type). */
static json_object *field(json_object *o, const char *key, json_type type)
{
        json_object *v;
        return json_get(o, key, type, &v) > 0 ? v : NULL;
}

static int load_runtime(Machine *m, json_object *a)
{
        size_t n = a ? json_object_array_length(a) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *pair = json_object_array_get_idx(a, i);
                if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2)
                        return -EINVAL;
                const char *key = json_object_get_string(json_object_array_get_idx(pair, 0)),
                           *value = json_object_get_string(json_object_array_get_idx(pair, 1));
                int r = 0;
                if (!key || !value)
                        return -EINVAL;
                if (strncmp(key, "USERNS_", 7) == 0)
                        r = userns_machine_deserialize_item(m, key, value);
                else if (strncmp(key, "NET_", 4) == 0)
                        r = network_machine_deserialize_item(m, key, value);
                else if (strncmp(key, "CGROUP", 6) == 0)
                        r = cgroup_deserialize_item(&m->cgroup, m->name, key, value);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int machine_from_json(Machine *m, json_object *o)
{
        json_object *format = field(o, "format", json_type_int), *name = field(o, "name", json_type_string),
                    *id = field(o, "id", json_type_string), *state = field(o, "state", json_type_string),
                    *leader = field(o, "leader", json_type_int), *settings = field(o, "settings", json_type_object),
                    *v;
        if (!format || json_object_get_int(format) != STATE_FORMAT || !name ||
            !streq(json_object_get_string(name), m->name) || !settings || !leader || !state)
                return -EBADMSG;
        if (!id || sd_id128_from_string(json_object_get_string(id), &m->id) < 0)
                return -EBADMSG;
        int s = machine_state_from_string(json_object_get_string(state));
        if (s < 0)
                return -EBADMSG;
        m->state = s;
        m->leader = json_object_get_int(leader);
        if ((v = field(o, "leader_starttime", json_type_int)))
                m->leader_starttime = json_object_get_uint64(v);
        if ((v = field(o, "timestamp", json_type_int)))
                m->timestamp = json_object_get_uint64(v);
        if ((v = field(o, "status_text", json_type_string)) && !(m->status_text = strdup(json_object_get_string(v))))
                return -ENOMEM;

        settings_free(m->settings);
        m->settings = NULL;
        int r = settings_from_json(settings, &m->settings);
        if (r < 0)
                return r;
        /* A state file of a start that had not got as far as applying defaults is completed the same way
         * a start would have: never to a less isolated value than the defaults. */
        r = settings_apply_defaults(m->settings, m->name);
        if (r < 0)
                return r;
        return load_runtime(m, field(o, "runtime", json_type_array));
}

static int read_state_file(const char *path, char **ret)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        return read_fd_bounded(fd, STATE_FILE_MAX, ret, NULL);
}

int machine_state_load(Machine *m)
{
        _cleanup_free_ char *text = NULL;
        int r = read_state_file(m->state_file, &text);
        if (r < 0)
                return r;
        json_object *o = json_tokener_parse(text);
        if (!o)
                return -EBADMSG;
        r = machine_from_json(m, o);
        json_object_put(o);
        return r;
}
