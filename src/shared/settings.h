/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Per-machine settings (SPEC §3): the .machine INI file, merged with start options.
 * Each field has an "unset" value so that a later source (start options) overrides only what it sets. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define LIMIT_UNSET UINT64_MAX       /* not given */
#define LIMIT_INFINITY (UINT64_MAX - 1) /* explicitly "infinity" */

typedef enum NetworkMode {
        NETWORK_UNSET = -1,
        NETWORK_NONE = 0,
        NETWORK_VETH,
        NETWORK_BRIDGE,
        NETWORK_HOST,
} NetworkMode;

typedef enum ResolvConfMode {
        RESOLV_CONF_UNSET = -1,
        RESOLV_CONF_COPY_HOST = 0,
        RESOLV_CONF_BIND_HOST,
        RESOLV_CONF_OFF,
} ResolvConfMode;

typedef struct BindMount {
        char *source;
        char *destination; /* absolute, inside the guest */
        bool read_only;
} BindMount;

typedef struct PortForward {
        int protocol; /* IPPROTO_TCP or IPPROTO_UDP */
        uint16_t host_port;
        uint16_t guest_port;
} PortForward;

typedef struct Settings {
        /* [Exec] */
        int boot;           /* -1 unset, 0, 1 */
        char **command;     /* argv; NULL unset */
        char *hostname;
        char **environment; /* VAR=value */
        int kill_signal;    /* 0 unset */

        /* [Resources] */
        uint64_t memory_max;             /* bytes; LIMIT_UNSET / LIMIT_INFINITY */
        uint64_t cpu_quota_per_sec_usec; /* µs of CPU per second of wall time; LIMIT_UNSET / LIMIT_INFINITY */
        uint64_t tasks_max;              /* LIMIT_UNSET / LIMIT_INFINITY */

        /* [Network] */
        NetworkMode network_mode;
        char *bridge;
        char **addresses; /* "ADDR/PREFIX", v4 or v6 */
        PortForward *ports;
        size_t n_ports;
        ResolvConfMode resolv_conf;

        /* [Files] */
        BindMount *binds;
        size_t n_binds;
        int read_only; /* -1 unset */
        int ephemeral; /* -1 unset */

        /* [Security] */
        uint64_t capability_add;  /* bit mask of CAP_* numbers */
        uint64_t capability_drop;
        char **syscall_filter;    /* "name" allow, "~name" deny */
        char *private_users;      /* "no", "pick", "UID[:RANGE]"; NULL unset */
} Settings;

/* Defaults from SPEC §3, applied after merging. */
#define DEFAULT_TASKS_MAX 16384

Settings *settings_new(void);
void settings_free(Settings *s);
static inline void settings_freep(Settings **s)
{
        settings_free(*s);
}

/* Parses one .machine file. Unknown keys/sections: a warning naming file, line and key, ignored.
 * A value that does not parse: returns -EINVAL and puts "FILE:LINE: [Section] Key=: reason" into
 * *ret_error (malloc'd) if ret_error is non-NULL. A key given twice: the last one wins, except for the
 * repeatable keys, which accumulate. An empty value ("MemoryMax=") resets the key to unset (for a
 * repeatable key: empties the list). settings_load_file() also fails with -errno if the file cannot be
 * read (the reason in *ret_error as well). */
int settings_load_file(const char *path, Settings **ret, char **ret_error);
int settings_parse_string(const char *path_for_messages, const char *text, Settings **ret, char **ret_error);

/* Finds NAME.machine in /etc/machinemgr, /run/machinemgr, IMAGE_DIR (first found wins; directories
 * overridable for tests by passing search_dirs, NULL for the defaults: search_dirs replaces the /etc and
 * /run entries, a non-NULL image_dir is still searched last). Returns 0 and *ret=NULL-path if
 * none exists, 1 with the malloc'd path if found, -EINVAL for an invalid NAME. */
int settings_find_file(const char *name, const char *image_dir, char *const *search_dirs, char **ret_path);

/* Fills every field that is unset in dst from src (src wins where dst is unset): used as
 * settings_merge(options, file_settings) so that start options override the file. */
int settings_merge(Settings *dst, const Settings *src);

/* Fills what is still unset with the SPEC §3 defaults (Boot=yes, Command=/bin/sh, Hostname=NAME,
 * KillSignal=SIGRTMIN+4, MemoryMax/CPUQuota=infinity, TasksMax=16384, Mode=none, ResolvConf=copy-host,
 * ReadOnly/Ephemeral=no, PrivateUsers=pick). Call it last, after every settings_merge(). */
int settings_apply_defaults(Settings *s, const char *machine_name);

/* Value parsers shared by the settings file, D-Bus options and the CLI. All return -EINVAL/-ERANGE. */
int parse_boolean(const char *v);                       /* 1/0 or -EINVAL */
int parse_size(const char *v, uint64_t *ret);           /* "512M", "1G", "1024", "infinity" -> LIMIT_INFINITY */
int parse_cpu_quota(const char *v, uint64_t *ret_usec); /* "150%" -> 1500000 µs per s; "infinity" */
int parse_tasks_max(const char *v, uint64_t *ret);      /* N >= 1 or "infinity" */
int parse_signal(const char *v);                        /* "SIGRTMIN+4", "RTMIN+4", "TERM", "15" -> signo */
int parse_port(const char *v, PortForward *ret);        /* "[tcp|udp:]HOST[:GUEST]" */
int parse_bind(const char *v, bool read_only, BindMount *ret); /* "SRC[:DST]" (DST default SRC, absolute) */
int parse_network_mode(const char *v);                  /* NetworkMode or -EINVAL */
int parse_resolv_conf(const char *v);                   /* ResolvConfMode or -EINVAL */
int parse_capability(const char *v);                    /* "CAP_SYS_ADMIN"/"sys_admin" -> number, libcap names */

typedef enum PrivateUsersMode {
        PRIVATE_USERS_NO = 0,
        PRIVATE_USERS_PICK,
        PRIVATE_USERS_FIXED, /* *ret_uid / *ret_range filled (RANGE defaults to 65536) */
} PrivateUsersMode;
/* "no", "pick", "UID[:RANGE]" (UID >= 1, UID+RANGE <= 2^32-1) -> PrivateUsersMode, or -EINVAL/-ERANGE */
int parse_private_users(const char *v, uint32_t *ret_uid, uint32_t *ret_range);
void bind_mount_done(BindMount *b);

/* Reverse of the parsers, for show/status and the state file. */
int format_size(uint64_t v, char *buf, size_t len); /* "infinity" or bytes */
const char *network_mode_to_string(NetworkMode m);
const char *resolv_conf_to_string(ResolvConfMode m);
