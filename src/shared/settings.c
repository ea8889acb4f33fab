/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "settings.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <sys/capability.h>
#include <sys/stat.h>

#include "log.h"
#include "names.h"
#include "util.h"

#define WHITESPACE " \t\r"
#define REASON_MAX 256
#define PRIVATE_USERS_DEFAULT_RANGE 65536U

/* ---- value parsers ---- */

int parse_boolean(const char *v)
{
        static const char *const yes[] = {"yes", "true", "1", "on"};
        static const char *const no[] = {"no", "false", "0", "off"};

        if (!v)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0)
                        return 1;
                if (strcasecmp(v, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

static bool all_digits(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char)*s))
                        return false;
        return true;
}

/* Unlike safe_atou64(), refuses leading whitespace, signs and anything else strtoull() tolerates. */
static int parse_u64_strict(const char *s, uint64_t *ret)
{
        if (!all_digits(s))
                return -EINVAL;
        return safe_atou64(s, ret);
}

int parse_size(const char *v, uint64_t *ret)
{
        static const struct {
                char suffix;
                uint64_t factor;
        } units[] = {
            {'K', 1ULL << 10},
            {'M', 1ULL << 20},
            {'G', 1ULL << 30},
            {'T', 1ULL << 40},
        };

        if (!v)
                return -EINVAL;
        if (streq(v, "infinity")) {
                *ret = LIMIT_INFINITY;
                return 0;
        }

        size_t n = strspn(v, "0123456789");
        if (n == 0 || n > 20)
                return n == 0 ? -EINVAL : -ERANGE;

        uint64_t factor = 1;
        if (v[n] != 0) {
                size_t i;
                for (i = 0; i < ELEMENTSOF(units); i++)
                        if (v[n] == units[i].suffix)
                                break;
                if (i == ELEMENTSOF(units) || v[n + 1] != 0)
                        return -EINVAL;
                factor = units[i].factor;
        }

        char digits[21];
        memcpy(digits, v, n);
        digits[n] = 0;
        uint64_t base, bytes;
        int r = parse_u64_strict(digits, &base);
        if (r < 0)
                return r;
        /* The two top values of the range are the "unset" and "infinity" markers. */
        if (__builtin_mul_overflow(base, factor, &bytes) || bytes >= LIMIT_INFINITY)
                return -ERANGE;
        *ret = bytes;
        return 0;
}

int parse_cpu_quota(const char *v, uint64_t *ret_usec)
{
        if (!v)
                return -EINVAL;
        if (streq(v, "infinity")) {
                *ret_usec = LIMIT_INFINITY;
                return 0;
        }

        /* "N%" or "N.D%"/"N.DD%": hundredths of a percent are 100 µs per second, finer makes no sense. */
        size_t n = strspn(v, "0123456789");
        if (n == 0 || n > 18)
                return n == 0 ? -EINVAL : -ERANGE;
        const char *p = v + n;
        uint64_t hundredths = 0;
        if (*p == '.') {
                size_t f = strspn(p + 1, "0123456789");
                if (f == 0 || f > 2)
                        return -EINVAL;
                hundredths = (uint64_t)(p[1] - '0') * 10 + (f == 2 ? (uint64_t)(p[2] - '0') : 0);
                p += 1 + f;
        }
        if (!streq(p, "%"))
                return -EINVAL;

        char digits[19];
        memcpy(digits, v, n);
        digits[n] = 0;
        uint64_t percent, usec;
        int r = parse_u64_strict(digits, &percent);
        if (r < 0)
                return r;
        if (__builtin_mul_overflow(percent, 10000, &usec) ||
            __builtin_add_overflow(usec, hundredths * 100, &usec) || usec >= LIMIT_INFINITY)
                return -ERANGE;
        if (usec == 0)
                return -ERANGE;
        *ret_usec = usec;
        return 0;
}

int parse_tasks_max(const char *v, uint64_t *ret)
{
        if (!v)
                return -EINVAL;
        if (streq(v, "infinity")) {
                *ret = LIMIT_INFINITY;
                return 0;
        }
        uint64_t n;
        int r = parse_u64_strict(v, &n);
        if (r < 0)
                return r;
        if (n == 0 || n >= LIMIT_INFINITY)
                return -ERANGE;
        *ret = n;
        return 0;
}

/* "+N"/"-N" after RTMIN/RTMAX, or nothing. */
static int parse_rt_offset(const char *s, char sign, int *ret)
{
        if (*s == 0) {
                *ret = 0;
                return 0;
        }
        if (*s != sign || !all_digits(s + 1))
                return -EINVAL;
        int r = safe_atoi(s + 1, ret);
        if (r < 0)
                return r;
        if (*ret > SIGRTMAX - SIGRTMIN)
                return -ERANGE;
        return 0;
}

int parse_signal(const char *v)
{
        int r, sig;

        if (!v || !*v)
                return -EINVAL;
        if (all_digits(v)) {
                r = safe_atoi(v, &sig);
                if (r < 0)
                        return r;
                return sig >= 1 && sig <= SIGRTMAX ? sig : -ERANGE;
        }

        const char *name = strncmp(v, "SIG", 3) == 0 ? v + 3 : v;
        int offset;
        if (strncmp(name, "RTMIN", 5) == 0) {
                r = parse_rt_offset(name + 5, '+', &offset);
                return r < 0 ? r : SIGRTMIN + offset;
        }
        if (strncmp(name, "RTMAX", 5) == 0) {
                r = parse_rt_offset(name + 5, '-', &offset);
                return r < 0 ? r : SIGRTMAX - offset;
        }
        for (sig = 1; sig < SIGRTMIN; sig++) {
                const char *abbrev = sigabbrev_np(sig);
                if (abbrev && streq(abbrev, name))
                        return sig;
        }
        return -EINVAL;
}

static int parse_port_number(const char *s, uint16_t *ret)
{
        uint64_t n;
        int r = parse_u64_strict(s, &n);
        if (r < 0)
                return r;
        if (n < 1 || n > 65535)
                return -ERANGE;
        *ret = (uint16_t)n;
        return 0;
}

int parse_port(const char *v, PortForward *ret)
{
        if (!v)
                return -EINVAL;

        int protocol = IPPROTO_TCP;
        if (strncmp(v, "tcp:", 4) == 0)
                v += 4;
        else if (strncmp(v, "udp:", 4) == 0) {
                protocol = IPPROTO_UDP;
                v += 4;
        }

        _cleanup_free_ char *copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        char *guest = strchr(copy, ':');
        if (guest)
                *guest++ = 0;

        PortForward p = {.protocol = protocol};
        int r = parse_port_number(copy, &p.host_port);
        if (r < 0)
                return r;
        if (guest) {
                r = parse_port_number(guest, &p.guest_port);
                if (r < 0)
                        return r;
        } else
                p.guest_port = p.host_port;
        *ret = p;
        return 0;
}

/* Absolute, and without ".." components: a destination inside the guest must not climb out of it.
 * No ':' either, it separates SRC from DST. */
static bool path_is_safe_absolute(const char *p)
{
        if (!p || p[0] != '/' || strlen(p) >= PATH_MAX)
                return false;
        for (const char *c = p; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == ':')
                        return false;
        for (const char *c = p; (c = strstr(c, "..")); c += 2)
                if (c[-1] == '/' && (c[2] == '/' || c[2] == 0))
                        return false;
        return true;
}

void bind_mount_done(BindMount *b)
{
        if (!b)
                return;
        free(b->source);
        free(b->destination);
        b->source = b->destination = NULL;
}

int parse_bind(const char *v, bool read_only, BindMount *ret)
{
        if (!v)
                return -EINVAL;
        _cleanup_free_ char *source = strdup(v);
        if (!source)
                return -ENOMEM;
        char *dst = strchr(source, ':');
        if (dst)
                *dst++ = 0;
        if (!path_is_safe_absolute(source) || (dst && !path_is_safe_absolute(dst)))
                return -EINVAL;

        char *destination = strdup(dst ? dst : source);
        if (!destination)
                return -ENOMEM;
        *ret = (BindMount){.source = TAKE_PTR(source), .destination = destination, .read_only = read_only};
        return 0;
}

static int lookup_string(const char *const *table, size_t n, const char *v)
{
        for (size_t i = 0; v && i < n; i++)
                if (streq(table[i], v))
                        return (int)i;
        return -EINVAL;
}

static const char *const network_mode_table[] = {
    [NETWORK_NONE] = "none",
    [NETWORK_VETH] = "veth",
    [NETWORK_BRIDGE] = "bridge",
    [NETWORK_HOST] = "host",
};

int parse_network_mode(const char *v)
{
        return lookup_string(network_mode_table, ELEMENTSOF(network_mode_table), v);
}

const char *network_mode_to_string(NetworkMode m)
{
        if (m < 0 || (size_t)m >= ELEMENTSOF(network_mode_table))
                return NULL;
        return network_mode_table[m];
}

static const char *const resolv_conf_table[] = {
    [RESOLV_CONF_COPY_HOST] = "copy-host",
    [RESOLV_CONF_BIND_HOST] = "bind-host",
    [RESOLV_CONF_OFF] = "off",
};

int parse_resolv_conf(const char *v)
{
        return lookup_string(resolv_conf_table, ELEMENTSOF(resolv_conf_table), v);
}

const char *resolv_conf_to_string(ResolvConfMode m)
{
        if (m < 0 || (size_t)m >= ELEMENTSOF(resolv_conf_table))
                return NULL;
        return resolv_conf_table[m];
}

int parse_capability(const char *v)
{
        if (!v || !*v || strlen(v) > 64)
                return -EINVAL;
        /* cap_from_name() stops at the first character that is not part of a name, so "cap_chown,x"
         * would pass: check the whole string first. */
        for (const char *c = v; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '_')
                        return -EINVAL;

        char name[72];
        if (strncasecmp(v, "cap_", 4) == 0 || all_digits(v))
                snprintf(name, sizeof name, "%s", v);
        else
                snprintf(name, sizeof name, "cap_%s", v);

        cap_value_t cap;
        if (cap_from_name(name, &cap) < 0 || cap < 0 || cap >= 64)
                return -EINVAL;
        return cap;
}

int parse_private_users(const char *v, uint32_t *ret_uid, uint32_t *ret_range)
{
        if (!v)
                return -EINVAL;
        if (streq(v, "no"))
                return PRIVATE_USERS_NO;
        if (streq(v, "pick"))
                return PRIVATE_USERS_PICK;

        _cleanup_free_ char *copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        char *range_str = strchr(copy, ':');
        if (range_str)
                *range_str++ = 0;

        uint64_t uid, range = PRIVATE_USERS_DEFAULT_RANGE;
        int r = parse_u64_strict(copy, &uid);
        if (r < 0)
                return r;
        if (range_str) {
                r = parse_u64_strict(range_str, &range);
                if (r < 0)
                        return r;
        }
        /* UID 0 would make the guest's root the host's root; (uid_t)-1 is not a valid id. */
        if (uid == 0 || range == 0 || uid > UINT32_MAX || range > UINT32_MAX || uid + range > UINT32_MAX)
                return -ERANGE;
        if (ret_uid)
                *ret_uid = (uint32_t)uid;
        if (ret_range)
                *ret_range = (uint32_t)range;
        return PRIVATE_USERS_FIXED;
}

int format_size(uint64_t v, char *buf, size_t len)
{
        if (v == LIMIT_UNSET)
                return -EINVAL;
        int n = v == LIMIT_INFINITY ? snprintf(buf, len, "infinity") : snprintf(buf, len, "%" PRIu64, v);
        if (n < 0 || (size_t)n >= len)
                return -ENOBUFS;
        return 0;
}

/* ---- Settings object ---- */

Settings *settings_new(void)
{
        Settings *s = calloc(1, sizeof(Settings));
        if (!s)
                return NULL;
        s->boot = -1;
        s->memory_max = LIMIT_UNSET;
        s->cpu_quota_per_sec_usec = LIMIT_UNSET;
        s->tasks_max = LIMIT_UNSET;
        s->network_mode = NETWORK_UNSET;
        s->resolv_conf = RESOLV_CONF_UNSET;
        s->read_only = -1;
        s->ephemeral = -1;
        return s;
}

static void settings_clear_binds(Settings *s)
{
        for (size_t i = 0; i < s->n_binds; i++)
                bind_mount_done(&s->binds[i]);
        free(s->binds);
        s->binds = NULL;
        s->n_binds = 0;
}

void settings_free(Settings *s)
{
        if (!s)
                return;
        strv_free(s->command);
        free(s->hostname);
        strv_free(s->environment);
        free(s->bridge);
        strv_free(s->addresses);
        free(s->ports);
        settings_clear_binds(s);
        strv_free(s->syscall_filter);
        free(s->private_users);
        free(s);
}

/* ---- per-key setters: each takes the value, fills the field, or explains in reason why not ---- */

typedef int (*setter_t)(Settings *s, void *field, const char *v, char *reason);

static int set_boolean(Settings *s, void *field, const char *v, char *reason)
{
        int *b = field;
        int r = parse_boolean(v);
        if (r < 0) {
                snprintf(reason, REASON_MAX, "invalid boolean '%s'", v);
                return r;
        }
        *b = r;
        return 0;
}

static int set_limit(int (*parse)(const char *, uint64_t *), const char *what, uint64_t *field,
                     const char *v, char *reason)
{
        uint64_t n;
        int r = parse(v, &n);
        if (r < 0) {
                snprintf(reason, REASON_MAX, "%s %s '%s'", r == -ERANGE ? "out-of-range" : "invalid", what,
                         v);
                return r == -ERANGE ? -EINVAL : r;
        }
        *field = n;
        return 0;
}

static int set_memory_max(Settings *s, void *field, const char *v, char *reason)
{
        int r = set_limit(parse_size, "size", field, v, reason);
        if (r == 0 && *(uint64_t *)field == 0) {
                snprintf(reason, REASON_MAX, "size must be greater than 0");
                return -EINVAL;
        }
        return r;
}

static int set_cpu_quota(Settings *s, void *field, const char *v, char *reason)
{
        return set_limit(parse_cpu_quota, "CPU quota", field, v, reason);
}

static int set_tasks_max(Settings *s, void *field, const char *v, char *reason)
{
        return set_limit(parse_tasks_max, "task limit", field, v, reason);
}

static int replace_string(char **field, const char *v)
{
        char *copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

/* Words as a POSIX shell splits them: blanks separate, '…' is literal, "…" and a bare backslash
 * escape the next character. No expansion of any kind. */
static int split_quoted(const char *v, char ***ret)
{
        _cleanup_strv_free_ char **words = NULL;
        size_t len = strlen(v);

        for (const char *p = v + strspn(v, WHITESPACE); *p; p += strspn(p, WHITESPACE)) {
                _cleanup_free_ char *word = malloc(len + 1);
                if (!word)
                        return -ENOMEM;
                size_t n = 0;
                char quote = 0;
                for (; *p && (quote || !strchr(WHITESPACE, *p)); p++) {
                        if (quote == '\'' && *p != '\'')
                                word[n++] = *p;
                        else if (*p == quote)
                                quote = 0;
                        else if (!quote && (*p == '\'' || *p == '"'))
                                quote = *p;
                        else if (*p == '\\') {
                                if (!p[1])
                                        return -EINVAL;
                                word[n++] = *++p;
                        } else
                                word[n++] = *p;
                }
                if (quote)
                        return -EINVAL;
                word[n] = 0;
                int r = strv_push(&words, word);
                if (r < 0)
                        return r;
                word = NULL;
        }
        *ret = TAKE_PTR(words);
        return 0;
}

/* Hands each string of words to add(), which takes ownership on success; frees what is left. */
static int strv_move_each(char ***dst, char **words, int (*add)(char ***, char *))
{
        int r = 0;
        size_t i;

        for (i = 0; words && words[i]; i++) {
                r = add(dst, words[i]);
                if (r < 0)
                        break;
        }
        for (; words && words[i]; i++)
                free(words[i]);
        free(words);
        return r;
}

static int set_command(Settings *s, void *field, const char *v, char *reason)
{
        char **argv = NULL;
        int r = split_quoted(v, &argv);
        if (r == -EINVAL)
                snprintf(reason, REASON_MAX, "unbalanced quotes or trailing backslash in '%s'", v);
        if (r < 0)
                return r;
        if (!argv || !argv[0][0]) {
                strv_free(argv);
                snprintf(reason, REASON_MAX, "empty command in '%s'", v);
                return -EINVAL;
        }
        strv_free(s->command);
        s->command = argv;
        return 0;
}

static bool hostname_is_valid(const char *h)
{
        size_t len = strlen(h);
        if (len == 0 || len > 64 || h[0] == '.' || h[len - 1] == '.')
                return false;
        for (const char *label = h; label < h + len;) {
                size_t n = strspn(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
                if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-' ||
                    (label[n] && label[n] != '.'))
                        return false;
                label += n + (label[n] == '.');
        }
        return true;
}

static int set_hostname(Settings *s, void *field, const char *v, char *reason)
{
        if (!hostname_is_valid(v)) {
                snprintf(reason, REASON_MAX, "invalid hostname '%s'", v);
                return -EINVAL;
        }
        return replace_string(&s->hostname, v);
}

static bool env_assignment_is_valid(const char *e)
{
        if (!isalpha((unsigned char)e[0]) && e[0] != '_')
                return false;
        size_t n = strspn(e, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
        if (e[n] != '=')
                return false;
        for (const char *c = e + n + 1; *c; c++)
                if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
                        return false;
        return utf8_is_valid(e);
}

/* A later VAR= replaces an earlier one, as it would in a shell. */
static int env_set(char ***env, char *assignment)
{
        size_t name_len = strcspn(assignment, "=") + 1;
        for (char **e = *env; e && *e; e++)
                if (strncmp(*e, assignment, name_len) == 0) {
                        free(*e);
                        *e = assignment;
                        return 0;
                }
        return strv_push(env, assignment);
}

static int set_environment(Settings *s, void *field, const char *v, char *reason)
{
        _cleanup_strv_free_ char **words = NULL;
        int r = split_quoted(v, &words);
        if (r == -EINVAL)
                snprintf(reason, REASON_MAX, "unbalanced quotes or trailing backslash in '%s'", v);
        if (r < 0)
                return r;
        STRV_FOREACH(w, words)
        if (!env_assignment_is_valid(*w)) {
                snprintf(reason, REASON_MAX, "invalid assignment '%s', expected VAR=value", *w);
                return -EINVAL;
        }
        return strv_move_each(&s->environment, TAKE_PTR(words), env_set);
}

static int set_kill_signal(Settings *s, void *field, const char *v, char *reason)
{
        int sig = parse_signal(v);
        if (sig < 0) {
                snprintf(reason, REASON_MAX, "invalid signal '%s'", v);
                return -EINVAL;
        }
        s->kill_signal = sig;
        return 0;
}

static int set_network_mode(Settings *s, void *field, const char *v, char *reason)
{
        int m = parse_network_mode(v);
        if (m < 0) {
                snprintf(reason, REASON_MAX, "invalid mode '%s', expected none, veth, bridge or host", v);
                return m;
        }
        s->network_mode = m;
        return 0;
}

static bool ifname_is_valid(const char *n)
{
        size_t len = strlen(n);
        if (len == 0 || len > 15 || streq(n, ".") || streq(n, ".."))
                return false;
        for (const char *c = n; *c; c++)
                if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || *c == '/' || *c == ':')
                        return false;
        return true;
}

static int set_bridge(Settings *s, void *field, const char *v, char *reason)
{
        if (!ifname_is_valid(v)) {
                snprintf(reason, REASON_MAX, "invalid interface name '%s'", v);
                return -EINVAL;
        }
        return replace_string(&s->bridge, v);
}

static bool address_prefix_is_valid(const char *v)
{
        char addr[INET6_ADDRSTRLEN + 1];
        const char *slash = strchr(v, '/');
        if (!slash || (size_t)(slash - v) >= sizeof addr)
                return false;
        memcpy(addr, v, slash - v);
        addr[slash - v] = 0;

        unsigned char buf[sizeof(struct in6_addr)];
        unsigned max_prefix;
        if (inet_pton(AF_INET, addr, buf) == 1)
                max_prefix = 32;
        else if (inet_pton(AF_INET6, addr, buf) == 1)
                max_prefix = 128;
        else
                return false;

        uint64_t prefix;
        return parse_u64_strict(slash + 1, &prefix) == 0 && prefix <= max_prefix;
}

static int set_address(Settings *s, void *field, const char *v, char *reason)
{
        if (!address_prefix_is_valid(v)) {
                snprintf(reason, REASON_MAX, "invalid address '%s', expected ADDRESS/PREFIX", v);
                return -EINVAL;
        }
        return strv_extend(&s->addresses, v);
}

static int set_port(Settings *s, void *field, const char *v, char *reason)
{
        PortForward p;
        int r = parse_port(v, &p);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(reason, REASON_MAX,
                         "invalid port forward '%s', expected [tcp|udp:]HOSTPORT[:GUESTPORT]", v);
                return -EINVAL;
        }
        PortForward *ports = reallocarray(s->ports, s->n_ports + 1, sizeof(PortForward));
        if (!ports)
                return -ENOMEM;
        ports[s->n_ports++] = p;
        s->ports = ports;
        return 0;
}

static int set_resolv_conf(Settings *s, void *field, const char *v, char *reason)
{
        int m = parse_resolv_conf(v);
        if (m < 0) {
                snprintf(reason, REASON_MAX, "invalid value '%s', expected copy-host, bind-host or off", v);
                return m;
        }
        s->resolv_conf = m;
        return 0;
}

static int add_bind(Settings *s, const char *v, bool read_only, char *reason)
{
        BindMount b;
        int r = parse_bind(v, read_only, &b);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(
                    reason, REASON_MAX,
                    "invalid bind mount '%s', expected SOURCE[:DESTINATION], absolute paths without '..'",
                    v);
                return -EINVAL;
        }
        BindMount *binds = reallocarray(s->binds, s->n_binds + 1, sizeof(BindMount));
        if (!binds) {
                bind_mount_done(&b);
                return -ENOMEM;
        }
        binds[s->n_binds++] = b;
        s->binds = binds;
        return 0;
}

static int set_bind(Settings *s, void *field, const char *v, char *reason)
{
        return add_bind(s, v, false, reason);
}

static int set_bind_read_only(Settings *s, void *field, const char *v, char *reason)
{
        return add_bind(s, v, true, reason);
}

/* Capability=, DropCapability= and SystemCallFilter= take a blank-separated list, like systemd's. */
static int set_capabilities(Settings *s, void *field, const char *v, char *reason)
{
        uint64_t *mask = field, add = 0;
        _cleanup_strv_free_ char **words = NULL;
        int r = split_quoted(v, &words);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !words) {
                snprintf(reason, REASON_MAX, "invalid capability list '%s'", v);
                return -EINVAL;
        }
        STRV_FOREACH(w, words)
        {
                int cap = parse_capability(*w);
                if (cap < 0) {
                        snprintf(reason, REASON_MAX, "unknown capability '%s'", *w);
                        return -EINVAL;
                }
                add |= UINT64_C(1) << cap;
        }
        *mask |= add;
        return 0;
}

static bool syscall_filter_entry_is_valid(const char *e)
{
        const char *name = e[0] == '~' ? e + 1 : e;
        return *name && strlen(name) < 64 &&
               strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(name);
}

static int set_syscall_filter(Settings *s, void *field, const char *v, char *reason)
{
        _cleanup_strv_free_ char **words = NULL;
        int r = split_quoted(v, &words);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !words) {
                snprintf(reason, REASON_MAX, "invalid system call list '%s'", v);
                return -EINVAL;
        }
        STRV_FOREACH(w, words)
        if (!syscall_filter_entry_is_valid(*w)) {
                snprintf(reason, REASON_MAX, "invalid system call '%s', expected NAME or ~NAME", *w);
                return -EINVAL;
        }
        return strv_move_each(&s->syscall_filter, TAKE_PTR(words), strv_push);
}

static int set_private_users(Settings *s, void *field, const char *v, char *reason)
{
        int r = parse_private_users(v, NULL, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(reason, REASON_MAX,
                         "invalid value '%s', expected no, pick or UID[:RANGE] (UID > 0)", v);
                return -EINVAL;
        }
        return replace_string(&s->private_users, v);
}

/* "Key=" with nothing after it puts the key back to unset, so a drop-in style later line can undo an
 * earlier one (and lists can be emptied). */
static void reset_key(Settings *s, setter_t set, void *field)
{
        if (set == set_boolean)
                *(int *)field = -1;
        else if (set == set_memory_max || set == set_cpu_quota || set == set_tasks_max)
                *(uint64_t *)field = LIMIT_UNSET;
        else if (set == set_capabilities)
                *(uint64_t *)field = 0;
        else if (set == set_command) {
                strv_free(s->command);
                s->command = NULL;
        } else if (set == set_hostname) {
                free(s->hostname);
                s->hostname = NULL;
        } else if (set == set_environment) {
                strv_free(s->environment);
                s->environment = NULL;
        } else if (set == set_kill_signal)
                s->kill_signal = 0;
        else if (set == set_network_mode)
                s->network_mode = NETWORK_UNSET;
        else if (set == set_bridge) {
                free(s->bridge);
                s->bridge = NULL;
        } else if (set == set_address) {
                strv_free(s->addresses);
                s->addresses = NULL;
        } else if (set == set_port) {
                free(s->ports);
                s->ports = NULL;
                s->n_ports = 0;
        } else if (set == set_resolv_conf)
                s->resolv_conf = RESOLV_CONF_UNSET;
        else if (set == set_bind || set == set_bind_read_only)
                settings_clear_binds(s);
        else if (set == set_syscall_filter) {
                strv_free(s->syscall_filter);
                s->syscall_filter = NULL;
        } else if (set == set_private_users) {
                free(s->private_users);
                s->private_users = NULL;
        }
}

typedef struct KeyTable {
        const char *section;
        const char *key;
        setter_t set;
        size_t offset; /* of the field in Settings, for the setters that are shared between keys */
} KeyTable;

static const KeyTable key_table[] = {
    {"Exec", "Boot", set_boolean, offsetof(Settings, boot)},
    {"Exec", "Command", set_command, 0},
    {"Exec", "Hostname", set_hostname, 0},
    {"Exec", "Environment", set_environment, 0},
    {"Exec", "KillSignal", set_kill_signal, 0},
    {"Resources", "MemoryMax", set_memory_max, offsetof(Settings, memory_max)},
    {"Resources", "CPUQuota", set_cpu_quota, offsetof(Settings, cpu_quota_per_sec_usec)},
    {"Resources", "TasksMax", set_tasks_max, offsetof(Settings, tasks_max)},
    {"Network", "Mode", set_network_mode, 0},
    {"Network", "Bridge", set_bridge, 0},
    {"Network", "Address", set_address, 0},
    {"Network", "Port", set_port, 0},
    {"Network", "ResolvConf", set_resolv_conf, 0},
    {"Files", "Bind", set_bind, 0},
    {"Files", "BindReadOnly", set_bind_read_only, 0},
    {"Files", "ReadOnly", set_boolean, offsetof(Settings, read_only)},
    {"Files", "Ephemeral", set_boolean, offsetof(Settings, ephemeral)},
    {"Security", "Capability", set_capabilities, offsetof(Settings, capability_add)},
    {"Security", "DropCapability", set_capabilities, offsetof(Settings, capability_drop)},
    {"Security", "SystemCallFilter", set_syscall_filter, 0},
    {"Security", "PrivateUsers", set_private_users, 0},
};

static bool section_is_known(const char *section)
{
        for (size_t i = 0; i < ELEMENTSOF(key_table); i++)
                if (streq(key_table[i].section, section))
                        return true;
        return false;
}

static const KeyTable *key_lookup(const char *section, const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(key_table); i++)
                if (streq(key_table[i].section, section) && streq(key_table[i].key, key))
                        return &key_table[i];
        return NULL;
}

/* ---- the INI reader ---- */

typedef struct Parser {
        const char *path;
        unsigned line;
        char *section;        /* NULL before the first header */
        bool section_unknown; /* warned once at its header; its keys are skipped silently */
        Settings *settings;
        char **error;
} Parser;

static int parser_error(Parser *p, const char *section, const char *key, const char *reason)
{
        if (p->error) {
                free(*p->error);
                *p->error = NULL;
                int n = section ? asprintf(p->error, "%s:%u: [%s] %s=: %s", p->path, p->line, section, key,
                                           reason)
                                : asprintf(p->error, "%s:%u: %s", p->path, p->line, reason);
                if (n < 0) {
                        *p->error = NULL;
                        return -ENOMEM;
                }
        }
        return -EINVAL;
}

static char *strip(char *s)
{
        s += strspn(s, WHITESPACE);
        size_t n = strlen(s);
        while (n > 0 && strchr(WHITESPACE, s[n - 1]))
                s[--n] = 0;
        return s;
}

static int parse_section_header(Parser *p, char *l)
{
        size_t n = strlen(l);
        if (n < 3 || l[n - 1] != ']')
                return parser_error(p, NULL, NULL, "invalid section header, expected [Section]");
        l[n - 1] = 0;
        char *name = strdup(l + 1);
        if (!name)
                return -ENOMEM;
        free(p->section);
        p->section = name;
        p->section_unknown = !section_is_known(name);
        if (p->section_unknown)
                log_warning("%s:%u: Unknown section [%s], ignoring.", p->path, p->line, name);
        return 0;
}

static int parse_assignment(Parser *p, char *l)
{
        char *eq = strchr(l, '=');
        if (!eq)
                return parser_error(p, NULL, NULL, "missing '=', expected Key=value");
        *eq = 0;
        char *key = strip(l), *value = strip(eq + 1);

        if (!p->section) {
                log_warning("%s:%u: Assignment '%s' outside of any section, ignoring.", p->path, p->line,
                            key);
                return 0;
        }
        if (p->section_unknown)
                return 0;

        const KeyTable *k = key_lookup(p->section, key);
        if (!k) {
                log_warning("%s:%u: Unknown key '%s' in section [%s], ignoring.", p->path, p->line, key,
                            p->section);
                return 0;
        }

        void *field = (uint8_t *)p->settings + k->offset;
        if (!*value) {
                reset_key(p->settings, k->set, field);
                return 0;
        }

        char reason[REASON_MAX] = "";
        int r = k->set(p->settings, field, value, reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return parser_error(p, k->section, k->key, reason);
        return 0;
}

static int parse_line(Parser *p, char *raw)
{
        char *l = strip(raw);
        if (!*l || *l == '#' || *l == ';')
                return 0;
        if (*l == '[')
                return parse_section_header(p, l);
        return parse_assignment(p, l);
}

int settings_parse_string(const char *path_for_messages, const char *text, Settings **ret, char **ret_error)
{
        if (ret_error)
                *ret_error = NULL;
        if (!text || !ret)
                return -EINVAL;

        _cleanup_(settings_freep) Settings *s = settings_new();
        _cleanup_free_ char *copy = strdup(text);
        if (!s || !copy)
                return -ENOMEM;

        Parser p = {
            .path = path_for_messages ? path_for_messages : "(string)",
            .settings = s,
            .error = ret_error,
        };
        int r = 0;
        for (char *next = copy, *l; (l = strsep(&next, "\n"));) {
                p.line++;
                r = parse_line(&p, l);
                if (r < 0)
                        break;
        }
        free(p.section);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

static int set_error(char **ret_error, const char *path, int error)
{
        if (ret_error && asprintf(ret_error, "%s: %s", path, strerror(-error)) < 0)
                *ret_error = NULL;
        return error;
}

int settings_load_file(const char *path, Settings **ret, char **ret_error)
{
        _cleanup_free_ char *text = NULL;
        size_t size;

        if (ret_error)
                *ret_error = NULL;
        int r = read_full_file(path, &text, &size);
        if (r < 0)
                return set_error(ret_error, path, r);
        /* A NUL would silently cut the file short. */
        if (strlen(text) != size)
                return set_error(ret_error, path, -EBADMSG);
        return settings_parse_string(path, text, ret, ret_error);
}

int settings_find_file(const char *name, const char *image_dir, char *const *search_dirs, char **ret_path)
{
        static const char *const default_dirs[] = {"/etc/machinemgr", "/run/machinemgr", NULL};

        if (!machine_name_is_valid(name))
                return -EINVAL;
        *ret_path = NULL;

        const char *dirs[16];
        size_t n = 0;
        const char *const *given = search_dirs ? (const char *const *)search_dirs : default_dirs;
        for (; *given && n < ELEMENTSOF(dirs) - 1; given++)
                dirs[n++] = *given;
        if (image_dir)
                dirs[n++] = image_dir;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s.machine", dirs[i], name) < 0)
                        return -ENOMEM;
                struct stat st;
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                        *ret_path = TAKE_PTR(path);
                        return 1;
                }
        }
        return 0;
}

/* ---- merging and defaults ---- */

static int merge_string(char **dst, const char *src)
{
        if (*dst || !src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

static int merge_strv(char ***dst, char *const *src)
{
        if (strv_length(*dst) > 0 || strv_length(src) == 0)
                return 0;
        char **copy = strv_copy(src);
        if (!copy)
                return -ENOMEM;
        strv_free(*dst);
        *dst = copy;
        return 0;
}

static int merge_ports(Settings *dst, const Settings *src)
{
        if (dst->n_ports > 0 || src->n_ports == 0)
                return 0;
        PortForward *ports = reallocarray(NULL, src->n_ports, sizeof(PortForward));
        if (!ports)
                return -ENOMEM;
        memcpy(ports, src->ports, src->n_ports * sizeof(PortForward));
        free(dst->ports);
        dst->ports = ports;
        dst->n_ports = src->n_ports;
        return 0;
}

static int merge_binds(Settings *dst, const Settings *src)
{
        if (dst->n_binds > 0 || src->n_binds == 0)
                return 0;
        settings_clear_binds(dst);
        dst->binds = calloc(src->n_binds, sizeof(BindMount));
        if (!dst->binds)
                return -ENOMEM;
        for (size_t i = 0; i < src->n_binds; i++) {
                BindMount *b = &dst->binds[i];
                b->source = strdup(src->binds[i].source);
                b->destination = strdup(src->binds[i].destination);
                b->read_only = src->binds[i].read_only;
                dst->n_binds++;
                if (!b->source || !b->destination)
                        return -ENOMEM;
        }
        return 0;
}

#define MERGE_SCALAR(field, unset)                                                                          \
        do {                                                                                                \
                if (dst->field == (unset))                                                                  \
                        dst->field = src->field;                                                            \
        } while (0)

int settings_merge(Settings *dst, const Settings *src)
{
        int r;

        if (!dst || !src)
                return -EINVAL;

        MERGE_SCALAR(boot, -1);
        MERGE_SCALAR(kill_signal, 0);
        MERGE_SCALAR(memory_max, LIMIT_UNSET);
        MERGE_SCALAR(cpu_quota_per_sec_usec, LIMIT_UNSET);
        MERGE_SCALAR(tasks_max, LIMIT_UNSET);
        MERGE_SCALAR(network_mode, NETWORK_UNSET);
        MERGE_SCALAR(resolv_conf, RESOLV_CONF_UNSET);
        MERGE_SCALAR(read_only, -1);
        MERGE_SCALAR(ephemeral, -1);
        /* The capability masks are lists too: an empty one takes the other side's. */
        MERGE_SCALAR(capability_add, 0);
        MERGE_SCALAR(capability_drop, 0);

        if ((r = merge_strv(&dst->command, src->command)) < 0 ||
            (r = merge_string(&dst->hostname, src->hostname)) < 0 ||
            (r = merge_strv(&dst->environment, src->environment)) < 0 ||
            (r = merge_string(&dst->bridge, src->bridge)) < 0 ||
            (r = merge_strv(&dst->addresses, src->addresses)) < 0 || (r = merge_ports(dst, src)) < 0 ||
            (r = merge_binds(dst, src)) < 0 ||
            (r = merge_strv(&dst->syscall_filter, src->syscall_filter)) < 0 ||
            (r = merge_string(&dst->private_users, src->private_users)) < 0)
                return r;
        return 0;
}

int settings_apply_defaults(Settings *s, const char *machine_name)
{
        int r;

        if (!s)
                return -EINVAL;
        if (s->boot < 0)
                s->boot = 1;
        if (!s->command && (r = strv_extend(&s->command, "/bin/sh")) < 0)
                return r;
        if (!s->hostname && machine_name && !(s->hostname = strdup(machine_name)))
                return -ENOMEM;
        if (s->kill_signal == 0)
                s->kill_signal = SIGRTMIN + 4;
        if (s->memory_max == LIMIT_UNSET)
                s->memory_max = LIMIT_INFINITY;
        if (s->cpu_quota_per_sec_usec == LIMIT_UNSET)
                s->cpu_quota_per_sec_usec = LIMIT_INFINITY;
        if (s->tasks_max == LIMIT_UNSET)
                s->tasks_max = DEFAULT_TASKS_MAX;
        if (s->network_mode == NETWORK_UNSET)
                s->network_mode = NETWORK_NONE;
        if (s->resolv_conf == RESOLV_CONF_UNSET)
                s->resolv_conf = RESOLV_CONF_COPY_HOST;
        if (s->read_only < 0)
                s->read_only = 0;
        if (s->ephemeral < 0)
                s->ephemeral = 0;
        /* Unprivileged by default (SPEC §3): root in the guest is an unprivileged uid on the host.
         * PrivateUsers=no is the explicit opt-in to a privileged container. */
        if (!s->private_users && !(s->private_users = strdup("pick")))
                return -ENOMEM;
        return 0;
}
