/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The name check and the value parsers on arbitrary strings, with a few invariants checked on the way. */
#include "log.h"
#include "names.h"
#include "settings.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *s)
{
        if (!machine_name_is_valid(s))
                return;
        /* What was accepted must honour SPEC §9, whatever path the checker took to accept it. */
        if (strlen(s) > MACHINE_NAME_MAX || strchr(s, '/') || s[0] == '.' || s[0] == '-' ||
            !utf8_is_valid(s))
                abort();
        for (const char *c = s; *c; c++)
                if ((unsigned char)*c <= ' ' || *c == 0x7f)
                        abort();

        _cleanup_free_ char *unit = NULL;
        if (machine_scope_unit_name(s, &unit) < 0)
                return;
        if (strncmp(unit, "machine-", 8) != 0 || strchr(unit, '/'))
                abort();
}

static void check_size(const char *s)
{
        uint64_t v;
        if (parse_size(s, &v) < 0)
                return;
        if (v == LIMIT_UNSET)
                abort();
        /* Whatever parsed must format and parse back to the same value. */
        char buf[32];
        uint64_t again;
        if (format_size(v, buf, sizeof buf) < 0 || parse_size(buf, &again) < 0 || again != v)
                abort();
}

static void check_bind(const char *s)
{
        BindMount b = {};
        if (parse_bind(s, true, &b) < 0) {
                if (b.source || b.destination)
                        abort();
                return;
        }
        if (b.source[0] != '/' || b.destination[0] != '/' || !b.read_only)
                abort();
        bind_mount_done(&b);
}

static void check_port(const char *s)
{
        PortForward p;
        if (parse_port(s, &p) < 0)
                return;
        if (p.host_port == 0 || p.guest_port == 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;

        check_name(s);
        check_size(s);
        check_bind(s);
        check_port(s);

        uint64_t v;
        if (parse_cpu_quota(s, &v) == 0 && (v == 0 || v == LIMIT_UNSET))
                abort();
        if (parse_tasks_max(s, &v) == 0 && (v == 0 || v == LIMIT_UNSET))
                abort();
        int sig = parse_signal(s);
        if (sig == 0)
                abort();
        int cap = parse_capability(s);
        if (cap >= 64)
                abort();
        uint32_t uid, range;
        if (parse_private_users(s, &uid, &range) == PRIVATE_USERS_FIXED && (uid == 0 || range == 0))
                abort();
        (void)parse_boolean(s);
        (void)parse_network_mode(s);
        (void)parse_resolv_conf(s);
        return 0;
}
