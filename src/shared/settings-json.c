/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "settings-json.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "util.h"

/* ---- writing ---- */

static int add_string(json_object *o, const char *key, const char *v)
{
        return v ? json_add(o, key, json_object_new_string(v)) : 0;
}

static json_object *strv_to_json(char *const *l)
{
        json_object *a = json_object_new_array();
        STRV_FOREACH(i, (char **)l)
        if (!a || json_add(a, NULL, json_object_new_string(*i)) < 0) {
                json_object_put(a);
                return NULL;
        }
        return a;
}

static int add_strv(json_object *o, const char *key, char *const *l)
{
        return l ? json_add(o, key, strv_to_json(l)) : 0;
}

static json_object *port_to_json(const PortForward *p)
{
        json_object *o = json_object_new_object();
        if (!o || add_string(o, "protocol", p->protocol == IPPROTO_UDP ? "udp" : "tcp") < 0 ||
            json_add(o, "host", json_object_new_int(p->host_port)) < 0 ||
            json_add(o, "guest", json_object_new_int(p->guest_port)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static json_object *bind_to_json(const BindMount *b)
{
        json_object *o = json_object_new_object();
        if (!o || add_string(o, "source", b->source) < 0 || add_string(o, "destination", b->destination) < 0 ||
            json_add(o, "read_only", json_object_new_boolean(b->read_only)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int add_ports(json_object *o, const Settings *s)
{
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < s->n_ports; i++)
                if (json_add(a, NULL, port_to_json(&s->ports[i])) < 0) {
                        json_object_put(a);
                        return -ENOMEM;
                }
        return json_add(o, "ports", a);
}

static int add_binds(json_object *o, const Settings *s)
{
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < s->n_binds; i++)
                if (json_add(a, NULL, bind_to_json(&s->binds[i])) < 0) {
                        json_object_put(a);
                        return -ENOMEM;
                }
        return json_add(o, "binds", a);
}

int settings_to_json(const Settings *s, json_object **ret)
{
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        int r = 0;
        if (r >= 0)
                r = json_add(o, "boot", json_object_new_int(s->boot));
        if (r >= 0)
                r = add_strv(o, "command", s->command);
        if (r >= 0)
                r = add_string(o, "hostname", s->hostname);
        if (r >= 0)
                r = add_strv(o, "environment", s->environment);
        if (r >= 0)
                r = json_add(o, "kill_signal", json_object_new_int(s->kill_signal));
        if (r >= 0)
                r = json_add(o, "memory_max", json_object_new_uint64(s->memory_max));
        if (r >= 0)
                r = json_add(o, "cpu_quota_per_sec_usec", json_object_new_uint64(s->cpu_quota_per_sec_usec));
        if (r >= 0)
                r = json_add(o, "tasks_max", json_object_new_uint64(s->tasks_max));
        if (r >= 0)
                r = add_string(o, "network_mode", network_mode_to_string(s->network_mode));
        if (r >= 0)
                r = add_string(o, "bridge", s->bridge);
        if (r >= 0)
                r = add_strv(o, "addresses", s->addresses);
        if (r >= 0)
                r = add_ports(o, s);
        if (r >= 0)
                r = add_string(o, "resolv_conf", resolv_conf_to_string(s->resolv_conf));
        if (r >= 0)
                r = add_binds(o, s);
        if (r >= 0)
                r = json_add(o, "read_only", json_object_new_int(s->read_only));
        if (r >= 0)
                r = json_add(o, "ephemeral", json_object_new_int(s->ephemeral));
        if (r >= 0)
                r = json_add(o, "capability_add", json_object_new_uint64(s->capability_add));
        if (r >= 0)
                r = json_add(o, "capability_drop", json_object_new_uint64(s->capability_drop));
        if (r >= 0)
                r = add_strv(o, "syscall_filter", s->syscall_filter);
        if (r >= 0)
                r = add_string(o, "private_users", s->private_users);
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

/* ---- reading: every value type-checked; a missing key stays unset ---- */

static int get_int(json_object *o, const char *key, int *field)
{
        json_object *v;
        int r = json_get(o, key, json_type_int, &v);
        if (r > 0)
                *field = json_object_get_int(v);
        return r;
}

static int get_u64(json_object *o, const char *key, uint64_t *field)
{
        json_object *v;
        int r = json_get(o, key, json_type_int, &v);
        if (r > 0)
                *field = json_object_get_uint64(v);
        return r;
}

static int get_string(json_object *o, const char *key, char **field)
{
        json_object *v;
        int r = json_get(o, key, json_type_string, &v);
        if (r <= 0)
                return r;
        char *s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int get_strv(json_object *o, const char *key, char ***field)
{
        json_object *a;
        int r = json_get(o, key, json_type_array, &a);
        if (r <= 0)
                return r;
        _cleanup_strv_free_ char **l = NULL;
        size_t n = json_object_array_length(a);
        /* An empty list is a list (Command= of no words never persists, but Environment= may be empty). */
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(a, i);
                if (!json_object_is_type(e, json_type_string))
                        return -EINVAL;
                r = strv_extend(&l, json_object_get_string(e));
                if (r < 0)
                        return r;
        }
        strv_free(*field);
        *field = TAKE_PTR(l);
        return 0;
}

static int get_enum(json_object *o, const char *key, int (*parse)(const char *), int *field)
{
        json_object *v;
        int r = json_get(o, key, json_type_string, &v);
        if (r <= 0)
                return r;
        r = parse(json_object_get_string(v));
        if (r < 0)
                return r;
        *field = r;
        return 0;
}

static int get_ports(json_object *o, Settings *s)
{
        json_object *a;
        int r = json_get(o, "ports", json_type_array, &a);
        size_t n = r > 0 ? json_object_array_length(a) : 0;
        if (n == 0)
                return r;
        PortForward *l = calloc(n, sizeof(PortForward));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(a, i), *proto = NULL;
                int h = 0, g = 0;
                if (json_get(e, "protocol", json_type_string, &proto) <= 0 || get_int(e, "host", &h) <= 0 ||
                    get_int(e, "guest", &g) <= 0 || h < 1 || h > 65535 || g < 1 || g > 65535) {
                        free(l);
                        return -EINVAL;
                }
                l[i] = (PortForward){
                        .protocol = streq(json_object_get_string(proto), "udp") ? IPPROTO_UDP : IPPROTO_TCP,
                        .host_port = (uint16_t)h,
                        .guest_port = (uint16_t)g,
                };
        }
        free(s->ports);
        s->ports = l;
        s->n_ports = n;
        return 0;
}

static int get_binds(json_object *o, Settings *s)
{
        json_object *a;
        int r = json_get(o, "binds", json_type_array, &a);
        size_t n = r > 0 ? json_object_array_length(a) : 0;
        if (n == 0)
                return r;
        BindMount *l = calloc(n, sizeof(BindMount));
        if (!l)
                return -ENOMEM;
        s->binds = l;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(a, i), *ro = NULL;
                r = get_string(e, "source", &l[i].source);
                if (r >= 0)
                        r = get_string(e, "destination", &l[i].destination);
                s->n_binds = i + 1;
                if (r < 0)
                        return r;
                if (!l[i].source || !l[i].destination || l[i].source[0] != '/' || l[i].destination[0] != '/' ||
                    json_get(e, "read_only", json_type_boolean, &ro) <= 0)
                        return -EINVAL;
                l[i].read_only = json_object_get_boolean(ro);
        }
        return 0;
}

int settings_from_json(json_object *o, Settings **ret)
{
        if (!json_object_is_type(o, json_type_object))
                return -EINVAL;
        _cleanup_(settings_freep) Settings *s = settings_new();
        if (!s)
                return -ENOMEM;
        int network_mode = NETWORK_UNSET, resolv_conf = RESOLV_CONF_UNSET, r = 0;
        if (r >= 0)
                r = get_int(o, "boot", &s->boot);
        if (r >= 0)
                r = get_strv(o, "command", &s->command);
        if (r >= 0)
                r = get_string(o, "hostname", &s->hostname);
        if (r >= 0)
                r = get_strv(o, "environment", &s->environment);
        if (r >= 0)
                r = get_int(o, "kill_signal", &s->kill_signal);
        if (r >= 0)
                r = get_u64(o, "memory_max", &s->memory_max);
        if (r >= 0)
                r = get_u64(o, "cpu_quota_per_sec_usec", &s->cpu_quota_per_sec_usec);
        if (r >= 0)
                r = get_u64(o, "tasks_max", &s->tasks_max);
        if (r >= 0)
                r = get_enum(o, "network_mode", parse_network_mode, &network_mode);
        if (r >= 0)
                r = get_string(o, "bridge", &s->bridge);
        if (r >= 0)
                r = get_strv(o, "addresses", &s->addresses);
        if (r >= 0)
                r = get_ports(o, s);
        if (r >= 0)
                r = get_enum(o, "resolv_conf", parse_resolv_conf, &resolv_conf);
        if (r >= 0)
                r = get_binds(o, s);
        if (r >= 0)
                r = get_int(o, "read_only", &s->read_only);
        if (r >= 0)
                r = get_int(o, "ephemeral", &s->ephemeral);
        if (r >= 0)
                r = get_u64(o, "capability_add", &s->capability_add);
        if (r >= 0)
                r = get_u64(o, "capability_drop", &s->capability_drop);
        if (r >= 0)
                r = get_strv(o, "syscall_filter", &s->syscall_filter);
        if (r >= 0)
                r = get_string(o, "private_users", &s->private_users);
        if (r < 0)
                return r;
        s->network_mode = network_mode;
        s->resolv_conf = resolv_conf;
        *ret = TAKE_PTR(s);
        return 0;
}
