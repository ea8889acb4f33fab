/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The D-Bus method argument handling of machinemgrd (manager-dbus.c, machine-dbus.c, image-dbus.c), in
 * process: a Manager without manager_startup() (no sockets, no adoption), its objects served on one end of
 * a socketpair, an sd-bus client on the other. Each input becomes one method call: the bytes pick the
 * object path, interface and member (the Manager's members are read from its own introspection data, so a
 * new method is fuzzed without touching this file), and the arguments, built with sd_bus_message_append*
 * of the method's signature or of fuzzer-chosen types: strings (invalid machine names, control characters,
 * non-ASCII, up to 1 MiB), extreme integers, and a{sv} with known or arbitrary keys carrying variants of
 * the right or a wrong type. The call must get a reply, a method return or an error with a name, and the
 * daemon must be left as it was: no machine registered, nothing created in the image directory.
 *
 * The fuzzer runs as root, so the root check lets every mutating call through (the uid comes from the
 * socket's peer credentials, i.e. ourselves). What keeps it off the host: the image directory is an empty
 * temporary directory, so every StartMachine ends in NoSuchImage before any cgroup, pty or process exists,
 * and every image operation in NoSuchImage before a worker is forked; with no machine running, Kill,
 * Terminate, Shell and Copy end in NoSuchMachine and machine objects are unknown. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "manager.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MANAGER_PATH "/org/machinemgr1"
#define MAX_DEPTH 4

/* ---- reading the input ---- */

typedef struct Src {
        const uint8_t *p;
        size_t n;
} Src;

static uint8_t take_u8(Src *s)
{
        if (s->n == 0)
                return 0;
        s->n--;
        return *s->p++;
}

static uint64_t take_u64(Src *s, unsigned bytes)
{
        uint64_t v = 0;
        for (unsigned i = 0; i < bytes; i++)
                v = v << 8 | take_u8(s);
        return v;
}

static const char *pick(Src *s, const char *const *list, size_t n)
{
        return list[take_u8(s) % n];
}

/* ---- what is called ---- */

typedef enum PathKind {
        PATH_MANAGER,
        PATH_MACHINE, /* /org/machinemgr1/machine/<encoded fuzzed name> */
        PATH_IMAGE,   /* /org/machinemgr1/image/<encoded fuzzed name> */
        PATH_ANY,     /* any of the above, or a fuzzed object path */
} PathKind;

typedef struct Method {
        PathKind path;
        char *interface;
        char *member;
        char *signature;
} Method;

static Method *methods;
static size_t n_methods;

/* machine-dbus.c and image-dbus.c: their objects exist only for a running machine or an existing image, so
 * their introspection cannot be asked for here; kept in step with their vtables by hand. */
static const struct {
        PathKind path;
        const char *interface, *member, *signature;
} fixed_methods[] = {
        {PATH_MACHINE, "org.machinemgr1.Machine", "PowerOff", ""},
        {PATH_MACHINE, "org.machinemgr1.Machine", "Reboot", ""},
        {PATH_MACHINE, "org.machinemgr1.Machine", "Terminate", ""},
        {PATH_MACHINE, "org.machinemgr1.Machine", "Kill", "si"},
        {PATH_MACHINE, "org.machinemgr1.Machine", "GetOSRelease", ""},
        {PATH_MACHINE, "org.machinemgr1.Machine", "SetLimits", "a{sv}"},
        {PATH_IMAGE, "org.machinemgr1.Image", "Remove", ""},
        {PATH_IMAGE, "org.machinemgr1.Image", "Rename", "s"},
        {PATH_IMAGE, "org.machinemgr1.Image", "Clone", "sb"},
        {PATH_IMAGE, "org.machinemgr1.Image", "MarkReadOnly", "b"},
        {PATH_ANY, "org.freedesktop.DBus.Properties", "Get", "ss"},
        {PATH_ANY, "org.freedesktop.DBus.Properties", "GetAll", "s"},
        {PATH_ANY, "org.freedesktop.DBus.Properties", "Set", "ssv"},
        {PATH_ANY, "org.freedesktop.DBus.Introspectable", "Introspect", ""},
        {PATH_ANY, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", ""},
        {PATH_ANY, "org.freedesktop.DBus.Peer", "Ping", ""},
        {PATH_ANY, "org.freedesktop.DBus.Peer", "GetMachineId", ""},
};

static const char *const interfaces[] = {
        "org.machinemgr1.Manager", "org.machinemgr1.Machine", "org.machinemgr1.Image",
        "org.freedesktop.DBus.Properties", "org.machinemgr1.Nope", "org.freedesktop.DBus",
};

static const char *const properties[] = {
        "Name", "Id", "State", "Leader", "Unit", "RootDirectory", "Class", "Timestamp", "StatusText",
        "NetworkInterfaces", "Addresses", "MemoryMax", "MemoryCurrent", "CPUUsageNSec", "CPUQuotaPerSecUSec",
        "TasksMax", "TasksCurrent", "Path", "Type", "ReadOnly", "CreationTimestamp", "ModificationTimestamp",
        "Usage", "", "Nope",
};

/* StartMachine's options (read_start_option, network_read_start_option) and SetLimits' keys, each with the
 * variant type it expects: the right type most of the time reaches the value checks behind the type. */
static const struct {
        const char *key, *type;
} option_keys[] = {
        {"MemoryMax", "t"}, {"CPUQuotaPerSecUSec", "t"}, {"TasksMax", "t"},   {"Network", "s"},
        {"Bridge", "s"},    {"Bind", "a(ssb)"},          {"Ephemeral", "b"},  {"ReadOnly", "b"},
        {"Boot", "b"},      {"Command", "as"},           {"Environment", "as"}, {"Port", "a(sqq)"},
        {"ResolvConf", "s"}, {"PrivateUsers", "s"},      {"Hostname", "s"},   {"Address", "as"},
};

/* Complete types for wrong signatures and variant contents. */
static const char *const types[] = {
        "s", "t", "b", "u", "i", "y", "n", "q", "x", "d", "o", "g", "h", "v", "as", "ay", "a(ssb)", "a(sqq)",
        "a{sv}", "(ss)", "a{ss}", "a(sssuo)", "aas", "(tt)",
};

static const char *const odd_strings[] = {
        "", ".", "..", "-", "-x", ".hidden", "a/b", "../etc", "a b", "a\tb", "a\nb", "\x01", "\x7f",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",  /* 64: the longest valid name */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
        "debian", "machine-1", "a..b", "%s%n%x", "/", "/etc/passwd", "/proc/self/root", "/../../..", "x:y",
        "\xc3\xa4", "\xf0\x9f\x98\x80", "\xe2\x80\xa8", "leader", "all", "tcp:80:8080", "udp:53:53", "none",
        "host", "veth", "bridge", "pick", "no", "yes", "65536:65536", "0:4294967295", "4294967295", "-1",
        "infinity", "10.0.0.1/24", "fe80::1/64", "copy-host", "bind-host", "off", "auto", "VAR=value", "=x",
        "X", "64M", "18446744073709551615", "18446744073709551616", "0x10", "1e9", "machine", "image",
};

static const char *const odd_glyphs[] = {"\xc3\xa4", "\xf0\x9f\x98\x80", "\xe2\x80\xa8", "\xef\xbb\xbf", "\xcd\x8f"};

static int null_fd = -1;

/* A string of one of several kinds. Always valid UTF-8: sd-bus refuses to send anything else (raw invalid
 * UTF-8 on the wire is tests/security/dbus-abuse.py's job). Returns malloc'd memory. */
static char *take_string(Src *s)
{
        uint8_t kind = take_u8(s) % 8;
        size_t len;
        char *str;

        switch (kind) {
        case 0: /* printable and control ASCII straight from the input */
        case 1:
                len = take_u8(s);
                if (len > s->n)
                        len = s->n;
                str = malloc(len + 1);
                if (!str)
                        return NULL;
                for (size_t i = 0; i < len; i++)
                        str[i] = (char)(take_u8(s) & 0x7f) ?: 'x';
                str[len] = 0;
                return str;
        case 2: /* a name made of the characters names may contain, up to well past the limit */
                len = take_u8(s) % 80;
                str = malloc(len + 1);
                if (!str)
                        return NULL;
                for (size_t i = 0; i < len; i++)
                        str[i] = "abcxyz0189-_.:@+"[take_u8(s) % 16];
                str[len] = 0;
                return str;
        case 3: { /* huge: 1 KiB to 1 MiB */
                len = (size_t)1 << (10 + take_u8(s) % 11);
                str = malloc(len + 1);
                if (!str)
                        return NULL;
                memset(str, 'a' + take_u8(s) % 26, len);
                str[len] = 0;
                return str;
        }
        case 4: { /* one multi-byte glyph, repeated */
                const char *g = pick(s, odd_glyphs, ELEMENTSOF(odd_glyphs));
                size_t count = take_u8(s) % 40, gl = strlen(g);
                str = malloc(count * gl + 1);
                if (!str)
                        return NULL;
                for (size_t i = 0; i < count; i++)
                        memcpy(str + i * gl, g, gl);
                str[count * gl] = 0;
                return str;
        }
        default:
                return strdup(pick(s, odd_strings, ELEMENTSOF(odd_strings)));
        }
}

static char *take_object_path(Src *s, PathKind kind)
{
        _cleanup_free_ char *name = NULL;
        char *path = NULL;

        if (kind == PATH_ANY)
                kind = take_u8(s) % 5;
        switch (kind) {
        case PATH_MANAGER:
                return strdup(MANAGER_PATH);
        case PATH_MACHINE:
        case PATH_IMAGE:
                name = take_string(s);
                if (!name)
                        return NULL;
                if (sd_bus_path_encode(kind == PATH_MACHINE ? MANAGER_PATH "/machine" : MANAGER_PATH "/image", name,
                                       &path) < 0)
                        return NULL;
                /* sd-bus sends no object path over 64 KiB: a long name then stands for "some long name". */
                if (strlen(path) > 65535)
                        path[65535] = 0;
                return path;
        default: {
                /* Arbitrary valid object paths: "/", the prefixes themselves, deeper paths below them. */
                static const char *const paths[] = {"/", "/org", "/org/machinemgr1/machine", "/org/machinemgr1/image",
                                                    "/org/machinemgr1/machine/_2e_2e", "/org/machinemgr1/machine/a/b",
                                                    "/org/machinemgr1/image/_", "/org/freedesktop/DBus",
                                                    "/org/machinemgr1/machine/x_2fy"};
                return strdup(pick(s, paths, ELEMENTSOF(paths)));
        }
        }
}

/* The length of the single complete type at the start of sig. */
static size_t type_len(const char *sig)
{
        if (*sig == 'a')
                return 1 + type_len(sig + 1);
        if (*sig == '(' || *sig == '{') {
                size_t l = 1;
                while (sig[l] && sig[l] != ')' && sig[l] != '}')
                        l += type_len(sig + l);
                return l + 1;
        }
        return *sig ? 1 : 0;
}

static int append_value(sd_bus_message *m, Src *s, const char *type, size_t len, unsigned depth);

/* One a{sv} entry; the key mostly one the handlers know, the variant mostly of the type that key takes. */
static int append_option(sd_bus_message *m, Src *s, unsigned depth)
{
        _cleanup_free_ char *key = NULL;
        const char *vtype;
        uint8_t sel = take_u8(s);
        size_t k = take_u8(s) % ELEMENTSOF(option_keys);

        if (sel % 8 == 0)
                key = take_string(s);
        else
                key = strdup(option_keys[k].key);
        if (!key)
                return -ENOMEM;
        vtype = sel % 4 == 1 ? pick(s, types, ELEMENTSOF(types)) : option_keys[k].type;
        int r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 's', key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', vtype);
        if (r >= 0)
                r = append_value(m, s, vtype, strlen(vtype), depth + 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static uint64_t take_number(Src *s)
{
        static const uint64_t extremes[] = {0, 1, 2, UINT64_MAX, UINT64_MAX - 1, INT64_MAX, (uint64_t)INT64_MAX + 1,
                                            UINT32_MAX, (uint64_t)UINT32_MAX + 1, 4096, 65535, 65536, 1000000};
        uint8_t sel = take_u8(s);
        if (sel % 2 == 0)
                return extremes[(sel / 2) % ELEMENTSOF(extremes)];
        return take_u64(s, 8);
}

/* Appends one value of the complete type type[0..len). */
static int append_value(sd_bus_message *m, Src *s, const char *type, size_t len, unsigned depth)
{
        _cleanup_free_ char *inner = NULL;
        int r;

        switch (type[0]) {
        case 's':
        case 'o':
        case 'g': {
                _cleanup_free_ char *str = NULL;
                if (type[0] == 's')
                        str = take_string(s);
                else if (type[0] == 'o')
                        str = take_object_path(s, PATH_ANY);
                else
                        str = strdup(pick(s, types, ELEMENTSOF(types)));
                if (!str)
                        return -ENOMEM;
                return sd_bus_message_append_basic(m, type[0], str);
        }
        case 'b': {
                int b = take_u8(s) & 1;
                return sd_bus_message_append_basic(m, 'b', &b);
        }
        case 'y': {
                uint8_t v = take_u8(s);
                return sd_bus_message_append_basic(m, 'y', &v);
        }
        case 'n':
        case 'q': {
                uint16_t v = (uint16_t)take_number(s);
                return sd_bus_message_append_basic(m, type[0], &v);
        }
        case 'i':
        case 'u': {
                /* Signals and pids: small values, negatives, _NSIG and beyond. */
                uint32_t v = take_u8(s) % 2 ? (uint32_t)(int8_t)take_u8(s) : (uint32_t)take_number(s);
                return sd_bus_message_append_basic(m, type[0], &v);
        }
        case 'x':
        case 't': {
                uint64_t v = take_number(s);
                return sd_bus_message_append_basic(m, type[0], &v);
        }
        case 'd': {
                uint64_t bits = take_u64(s, 8);
                double d;
                memcpy(&d, &bits, sizeof d);
                return sd_bus_message_append_basic(m, 'd', &d);
        }
        case 'h':
                return sd_bus_message_append_basic(m, 'h', &null_fd);
        case 'v': {
                const char *vt = depth >= MAX_DEPTH ? "s" : pick(s, types, ELEMENTSOF(types));
                if ((r = sd_bus_message_open_container(m, 'v', vt)) < 0 ||
                    (r = append_value(m, s, vt, strlen(vt), depth + 1)) < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }
        case 'a': {
                inner = strndup(type + 1, len - 1);
                if (!inner)
                        return -ENOMEM;
                /* Mostly short arrays; sometimes long ones (a 4000-element Command= or Bind=). */
                uint8_t sel = take_u8(s);
                size_t count = sel < 240 ? sel % 6 : (size_t)(sel - 239) * 250;
                if (depth >= MAX_DEPTH)
                        count = 0;
                if ((r = sd_bus_message_open_container(m, 'a', inner)) < 0)
                        return r;
                for (size_t i = 0; i < count; i++) {
                        if (streq(inner, "{sv}"))
                                r = append_option(m, s, depth);
                        else
                                r = append_value(m, s, inner, len - 1, depth + 1);
                        if (r < 0)
                                return r;
                        if (s->n == 0 && i >= 1)
                                break; /* out of input: a long array of zeros teaches nothing */
                }
                return sd_bus_message_close_container(m);
        }
        case '(':
        case '{': {
                inner = strndup(type + 1, len - 2);
                if (!inner)
                        return -ENOMEM;
                if ((r = sd_bus_message_open_container(m, type[0] == '(' ? 'r' : 'e', inner)) < 0)
                        return r;
                for (const char *t = inner; *t; t += type_len(t))
                        if ((r = append_value(m, s, t, type_len(t), depth + 1)) < 0)
                                return r;
                return sd_bus_message_close_container(m);
        }
        default:
                return -EINVAL;
        }
}

/* A signature for calls with the wrong one: 0-3 complete types. */
static char *take_signature(Src *s)
{
        char buf[256] = "";
        unsigned n = take_u8(s) % 4;
        for (unsigned i = 0; i < n; i++)
                strcat(buf, pick(s, types, ELEMENTSOF(types)));
        return strdup(buf);
}

/* ---- the Manager and the connection ---- */

static Manager *manager;
static sd_bus *server, *client;
static char tmp_dir[] = "/tmp/fuzz-dbus.XXXXXX";
static char *image_dir;

static void cleanup_tmp(void)
{
        (void)rm_rf_dir(tmp_dir);
}

static int connect_pair(void)
{
        int fds[2];
        sd_id128_t id;

        server = sd_bus_flush_close_unref(server);
        client = sd_bus_flush_close_unref(client);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
                return -errno;
        /* As bus-private.c sets up its connections: fds and peer credentials negotiated. */
        if (sd_id128_randomize(&id) < 0 || sd_bus_new(&server) < 0 || sd_bus_set_fd(server, fds[0], fds[0]) < 0 ||
            sd_bus_set_server(server, 1, id) < 0 || sd_bus_negotiate_fds(server, 1) < 0 ||
            sd_bus_negotiate_creds(server, 1, SD_BUS_CREDS_PID | SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID) < 0 ||
            manager_bus_add_objects(manager, server) < 0 || sd_bus_start(server) < 0)
                return -EIO;
        if (sd_bus_new(&client) < 0 || sd_bus_set_fd(client, fds[1], fds[1]) < 0 ||
            sd_bus_negotiate_fds(client, 1) < 0 || sd_bus_start(client) < 0)
                return -EIO;
        return 0;
}

/* Runs both ends until done() or nothing moves for a second. */
static bool pump(bool (*done)(void *), void *userdata)
{
        unsigned idle = 0;
        while (!done(userdata)) {
                int a = sd_bus_process(server, NULL);
                int b = sd_bus_process(client, NULL);
                if (a < 0 || b < 0)
                        return false;
                if (a > 0 || b > 0) {
                        idle = 0;
                        continue;
                }
                if (++idle > 20)
                        return false;
                struct pollfd p[2] = {{.fd = sd_bus_get_fd(server), .events = (short)sd_bus_get_events(server)},
                                      {.fd = sd_bus_get_fd(client), .events = (short)sd_bus_get_events(client)}};
                (void)poll(p, 2, 50);
        }
        return true;
}

static bool both_ready(void *userdata)
{
        return sd_bus_is_ready(server) > 0 && sd_bus_is_ready(client) > 0;
}

static bool got_reply(void *userdata)
{
        return *(sd_bus_message **)userdata != NULL;
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        *(sd_bus_message **)userdata = sd_bus_message_ref(reply);
        return 0;
}

static void add_method(PathKind path, const char *interface, const char *member, const char *signature)
{
        methods = realloc(methods, (n_methods + 1) * sizeof *methods);
        if (!methods)
                abort();
        methods[n_methods++] = (Method){path, strdup(interface), strdup(member), strdup(signature)};
}

/* The Manager's methods and their in-signatures, from the introspection XML sd-bus generates from
 * manager_vtable. */
static void add_manager_methods(void)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        const char *xml;

        if (sd_bus_message_new_method_call(client, &call, NULL, MANAGER_PATH, "org.freedesktop.DBus.Introspectable",
                                           "Introspect") < 0 ||
            sd_bus_call_async(client, NULL, call, on_reply, &reply, 0) < 0 || !pump(got_reply, &reply) ||
            sd_bus_message_read(reply, "s", &xml) < 0)
                abort();
        const char *iface = strstr(xml, "<interface name=\"org.machinemgr1.Manager\">");
        if (!iface)
                abort();
        const char *end = strstr(iface, "</interface>");
        for (const char *p = strstr(iface, "<method name=\""); p && p < end; p = strstr(p, "<method name=\"")) {
                p += strlen("<method name=\"");
                _cleanup_free_ char *member = strndup(p, strcspn(p, "\""));
                const char *mend = strstr(p, "</method>");
                char sig[256] = "";
                for (const char *a = strstr(p, "<arg type=\""); a && a < mend; a = strstr(a, "<arg type=\"")) {
                        a += strlen("<arg type=\"");
                        size_t l = strcspn(a, "\"");
                        /* sd-bus writes type before direction: in-args only. */
                        if (strncmp(a + l, "\" direction=\"in\"", 16) == 0 && strlen(sig) + l < sizeof sig)
                                strncat(sig, a, l);
                }
                if (!member)
                        abort();
                add_method(PATH_MANAGER, "org.machinemgr1.Manager", member, sig);
        }
        if (n_methods < 10) /* ListMachines … CopyFromMachine: the XML format changed under us */
                abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        /* Every handler logs its refusals; at this rate that would drown libFuzzer's output. */
        log_set_max_level(LOG_CRIT);
        if (!mkdtemp(tmp_dir))
                abort();
        atexit(cleanup_tmp);
        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0 || manager_new(&manager) < 0)
                abort();
        /* What manager_startup() would set, without its sockets, system bus and adoption. */
        if (asprintf(&manager->runtime_dir, "%s/run", tmp_dir) < 0 ||
            asprintf(&manager->machines_dir, "%s/run/machines", tmp_dir) < 0 ||
            asprintf(&manager->host_dir, "%s/run/host", tmp_dir) < 0 ||
            asprintf(&manager->image_path, "%s/images", tmp_dir) < 0 || mkdir_p(manager->machines_dir, 0700) < 0 ||
            mkdir_p(manager->host_dir, 0755) < 0 || mkdir_p(manager->image_path, 0755) < 0)
                abort();
        image_dir = manager->image_path;
        if (connect_pair() < 0 || !pump(both_ready, NULL))
                abort();
        add_manager_methods();
        for (size_t i = 0; i < ELEMENTSOF(fixed_methods); i++)
                add_method(fixed_methods[i].path, fixed_methods[i].interface, fixed_methods[i].member,
                           fixed_methods[i].signature);
        return 0;
}

static bool dir_is_empty(const char *path)
{
        _cleanup_closedir_ DIR *d = opendir(path);
        if (!d)
                return false;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Src s = {data, size};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_free_ char *path = NULL, *sig = NULL, *member = NULL;
        const Method *method = &methods[take_u8(&s) % n_methods];
        uint8_t mode = take_u8(&s);
        const char *interface = method->interface;

        /* mode: mostly the method as declared; sometimes a wrong signature, no or another interface, an
         * unknown member. */
        if (mode % 16 == 1)
                interface = NULL;
        else if (mode % 16 == 2)
                interface = pick(&s, interfaces, ELEMENTSOF(interfaces));
        member = strdup(mode % 16 == 3 ? "NoSuchMethod" : method->member);
        sig = mode % 8 == 4 ? take_signature(&s) : strdup(method->signature);
        path = take_object_path(&s, method->path);
        if (!member || !sig || !path)
                return 0;
        /* sd-bus refuses object paths over 64 KiB (a long machine name, encoded): nothing to send. */
        if (sd_bus_message_new_method_call(client, &call, NULL, path, interface, member) < 0)
                return 0;

        bool properties_call = method->path == PATH_ANY && streq(method->interface, "org.freedesktop.DBus.Properties");
        for (const char *t = sig; *t; t += type_len(t)) {
                int r;
                /* Properties.Get/Set(s interface, s property): real names most of the time. */
                if (properties_call && t == sig && mode % 2 == 0)
                        r = sd_bus_message_append_basic(call, 's', pick(&s, interfaces, ELEMENTSOF(interfaces)));
                else if (properties_call && t == sig + 1 && mode % 2 == 0)
                        r = sd_bus_message_append_basic(call, 's', pick(&s, properties, ELEMENTSOF(properties)));
                else
                        r = append_value(call, &s, t, type_len(t), 0);
                if (r == -ENOMEM)
                        return 0;
                if (r < 0) {
                        /* Every value generated is valid for its type: a failure is a bug of this file. */
                        fprintf(stderr, "fuzz-dbus: append %s (%s): %s\n", t, sig, strerror(-r));
                        abort();
                }
        }

        if (sd_bus_call_async(client, NULL, call, on_reply, &reply, 0) < 0)
                abort();
        if (!pump(got_reply, &reply)) {
                fprintf(stderr, "fuzz-dbus: no reply to %.200s %s.%s(%s)\n", path, interface ?: "(none)", member, sig);
                abort();
        }
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        uint8_t type = 0;
        if (sd_bus_message_get_type(reply, &type) < 0)
                abort();
        if (type == SD_BUS_MESSAGE_METHOD_ERROR ? !e || !e->name || !*e->name : type != SD_BUS_MESSAGE_METHOD_RETURN)
                abort();
        /* A connection error would show up as a synthesized NoReply/Disconnected: the daemon must never drop
         * a client over a well-formed call. */
        if (sd_bus_is_open(server) <= 0 || sd_bus_is_open(client) <= 0) {
                fprintf(stderr, "fuzz-dbus: connection dropped after %.200s %s.%s(%s)\n", path, interface ?: "(none)",
                        member, sig);
                abort();
        }
        /* Nothing may have been started or created: every start fails for want of an image. */
        if (manager->machines || !dir_is_empty(image_dir)) {
                fprintf(stderr, "fuzz-dbus: state left behind by %.200s %s.%s(%s)\n", path, interface ?: "(none)", member,
                        sig);
                abort();
        }
        return 0;
}
