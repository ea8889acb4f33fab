/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The .machine parser (SPEC §3), the value parsers, merging and file lookup. */
#include "settings.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/stat.h>

#include "log.h"
#include "settings-json.h"
#include "util.h"

static unsigned passed, failed;

#define CHECK(expr)                                                                                         \
        do {                                                                                                \
                if (expr)                                                                                   \
                        passed++;                                                                           \
                else {                                                                                      \
                        failed++;                                                                           \
                        fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #expr);                    \
                }                                                                                           \
        } while (0)

#define U64(v) ((uint64_t)(v))
#define CAP_BIT(c) (UINT64_C(1) << (c))

/* ---- value parsers ---- */

static uint64_t size_or(const char *v, int expect_r)
{
        uint64_t n = 4242;
        int r = parse_size(v, &n);
        if (r != expect_r)
                fprintf(stderr, "parse_size(\"%s\") = %d, expected %d\n", v, r, expect_r);
        CHECK(r == expect_r);
        return n;
}

static void test_parse_size(void)
{
        CHECK(size_or("0", 0) == 0);
        CHECK(size_or("1024", 0) == 1024);
        CHECK(size_or("1K", 0) == 1024);
        CHECK(size_or("512M", 0) == U64(512) << 20);
        CHECK(size_or("1G", 0) == U64(1) << 30);
        CHECK(size_or("2T", 0) == U64(2) << 40);
        CHECK(size_or("007K", 0) == 7168);
        CHECK(size_or("infinity", 0) == LIMIT_INFINITY);
        CHECK(size_or("18446744073709551613", 0) == U64(18446744073709551613ULL));
        size_or("18446744073709551614", -ERANGE); /* == LIMIT_INFINITY, reserved */
        size_or("18446744073709551615", -ERANGE);
        size_or("18446744073709551616", -ERANGE);
        size_or("99999999999999999999999", -ERANGE);
        size_or("16777216T", -ERANGE); /* 2^64 */
        size_or("16777215T", 0);
        size_or("", -EINVAL);
        size_or("abc", -EINVAL);
        size_or("-1", -EINVAL);
        size_or("+1", -EINVAL);
        size_or(" 1", -EINVAL);
        size_or("1 ", -EINVAL);
        size_or("1 M", -EINVAL);
        size_or("1m", -EINVAL);
        size_or("1MB", -EINVAL);
        size_or("1KK", -EINVAL);
        size_or("1P", -EINVAL);
        size_or("M", -EINVAL);
        size_or("1.5G", -EINVAL);
        size_or("0x10", -EINVAL);
        size_or("Infinity", -EINVAL);
        size_or("infinityx", -EINVAL);
        CHECK(parse_size(NULL, &(uint64_t){0}) == -EINVAL);

        char buf[32];
        CHECK(format_size(LIMIT_INFINITY, buf, sizeof buf) == 0 && streq(buf, "infinity"));
        CHECK(format_size(1024, buf, sizeof buf) == 0 && streq(buf, "1024"));
        CHECK(format_size(0, buf, sizeof buf) == 0 && streq(buf, "0"));
        CHECK(format_size(LIMIT_UNSET, buf, sizeof buf) == -EINVAL);
        CHECK(format_size(123456, buf, 4) == -ENOBUFS);
}

static void test_parse_cpu_quota(void)
{
        uint64_t u = 0;
        CHECK(parse_cpu_quota("150%", &u) == 0 && u == 1500000);
        CHECK(parse_cpu_quota("100%", &u) == 0 && u == 1000000);
        CHECK(parse_cpu_quota("1%", &u) == 0 && u == 10000);
        CHECK(parse_cpu_quota("12.5%", &u) == 0 && u == 125000);
        CHECK(parse_cpu_quota("0.01%", &u) == 0 && u == 100);
        CHECK(parse_cpu_quota("800%", &u) == 0 && u == 8000000);
        CHECK(parse_cpu_quota("infinity", &u) == 0 && u == LIMIT_INFINITY);
        CHECK(parse_cpu_quota("0%", &u) == -ERANGE);
        CHECK(parse_cpu_quota("0.00%", &u) == -ERANGE);
        CHECK(parse_cpu_quota("99999999999999999%", &u) == -ERANGE);
        CHECK(parse_cpu_quota("9999999999999999999%", &u) == -ERANGE);
        CHECK(parse_cpu_quota("150", &u) == -EINVAL);
        CHECK(parse_cpu_quota("%", &u) == -EINVAL);
        CHECK(parse_cpu_quota("-5%", &u) == -EINVAL);
        CHECK(parse_cpu_quota("1.234%", &u) == -EINVAL);
        CHECK(parse_cpu_quota("1.%", &u) == -EINVAL);
        CHECK(parse_cpu_quota(".5%", &u) == -EINVAL);
        CHECK(parse_cpu_quota("50%%", &u) == -EINVAL);
        CHECK(parse_cpu_quota("50% ", &u) == -EINVAL);
        CHECK(parse_cpu_quota("abc", &u) == -EINVAL);
        CHECK(parse_cpu_quota("", &u) == -EINVAL);
}

static void test_parse_tasks_max(void)
{
        uint64_t n = 0;
        CHECK(parse_tasks_max("1", &n) == 0 && n == 1);
        CHECK(parse_tasks_max("16384", &n) == 0 && n == 16384);
        CHECK(parse_tasks_max("infinity", &n) == 0 && n == LIMIT_INFINITY);
        CHECK(parse_tasks_max("0", &n) == -ERANGE);
        CHECK(parse_tasks_max("18446744073709551614", &n) == -ERANGE);
        CHECK(parse_tasks_max("18446744073709551616", &n) == -ERANGE);
        CHECK(parse_tasks_max("-1", &n) == -EINVAL);
        CHECK(parse_tasks_max("10k", &n) == -EINVAL);
        CHECK(parse_tasks_max("1 ", &n) == -EINVAL);
        CHECK(parse_tasks_max("", &n) == -EINVAL);
}

static void test_parse_signal(void)
{
        CHECK(parse_signal("SIGTERM") == SIGTERM);
        CHECK(parse_signal("TERM") == SIGTERM);
        CHECK(parse_signal("15") == 15);
        CHECK(parse_signal("SIGKILL") == SIGKILL);
        CHECK(parse_signal("INT") == SIGINT);
        CHECK(parse_signal("SIGRTMIN+4") == SIGRTMIN + 4);
        CHECK(parse_signal("RTMIN+4") == SIGRTMIN + 4);
        CHECK(parse_signal("SIGRTMIN") == SIGRTMIN);
        CHECK(parse_signal("RTMAX") == SIGRTMAX);
        CHECK(parse_signal("SIGRTMAX-1") == SIGRTMAX - 1);
        CHECK(parse_signal("RTMIN+30") == SIGRTMAX);
        CHECK(parse_signal("64") == 64);
        CHECK(parse_signal("RTMIN+31") == -ERANGE);
        CHECK(parse_signal("65") == -ERANGE);
        CHECK(parse_signal("0") == -ERANGE);
        CHECK(parse_signal("99999999999") == -ERANGE);
        CHECK(parse_signal("-1") == -EINVAL);
        CHECK(parse_signal("RTMIN-1") == -EINVAL);
        CHECK(parse_signal("RTMAX+1") == -EINVAL);
        CHECK(parse_signal("RTMIN+") == -EINVAL);
        CHECK(parse_signal("RTMIN+x") == -EINVAL);
        CHECK(parse_signal("SIG") == -EINVAL);
        CHECK(parse_signal("sigterm") == -EINVAL);
        CHECK(parse_signal("SIGFOO") == -EINVAL);
        CHECK(parse_signal("15x") == -EINVAL);
        CHECK(parse_signal("") == -EINVAL);
        CHECK(parse_signal(NULL) == -EINVAL);
}

static void test_parse_port(void)
{
        PortForward p;
        CHECK(parse_port("8080", &p) == 0 && p.protocol == IPPROTO_TCP && p.host_port == 8080 &&
              p.guest_port == 8080);
        CHECK(parse_port("8080:80", &p) == 0 && p.protocol == IPPROTO_TCP && p.host_port == 8080 &&
              p.guest_port == 80);
        CHECK(parse_port("tcp:2222:22", &p) == 0 && p.protocol == IPPROTO_TCP && p.host_port == 2222 &&
              p.guest_port == 22);
        CHECK(parse_port("udp:53", &p) == 0 && p.protocol == IPPROTO_UDP && p.host_port == 53 &&
              p.guest_port == 53);
        CHECK(parse_port("1:65535", &p) == 0 && p.host_port == 1 && p.guest_port == 65535);
        CHECK(parse_port("0", &p) == -ERANGE);
        CHECK(parse_port("65536", &p) == -ERANGE);
        CHECK(parse_port("80:0", &p) == -ERANGE);
        CHECK(parse_port("99999999999999999999", &p) == -ERANGE);
        CHECK(parse_port("", &p) == -EINVAL);
        CHECK(parse_port("-80", &p) == -EINVAL);
        CHECK(parse_port("80:", &p) == -EINVAL);
        CHECK(parse_port(":80", &p) == -EINVAL);
        CHECK(parse_port("80:80:80", &p) == -EINVAL);
        CHECK(parse_port("sctp:80", &p) == -EINVAL);
        CHECK(parse_port("TCP:80", &p) == -EINVAL);
        CHECK(parse_port("tcp:", &p) == -EINVAL);
        CHECK(parse_port("80 ", &p) == -EINVAL);
        CHECK(parse_port("http", &p) == -EINVAL);
}

static void test_parse_bind(void)
{
        BindMount b = {};
        CHECK(parse_bind("/srv/data", false, &b) == 0 && streq(b.source, "/srv/data") &&
              streq(b.destination, "/srv/data") && !b.read_only);
        bind_mount_done(&b);
        CHECK(parse_bind("/srv/data:/data", true, &b) == 0 && streq(b.source, "/srv/data") &&
              streq(b.destination, "/data") && b.read_only);
        bind_mount_done(&b);
        CHECK(parse_bind("/a..b:/c..", false, &b) == 0); /* ".." only matters as a whole component */
        bind_mount_done(&b);
        CHECK(!b.source && !b.destination);

        static const char *const bad[] = {"",         "relative", "/a:relative", "/a:",         ":/b",
                                          "/a:/b:/c", "/../etc",  "/a:/../etc",  "/a:/x/../..", "/a:/x/..",
                                          "/a\n",     "/a:/b\x7f"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                BindMount x = {};
                int r = parse_bind(bad[i], false, &x);
                if (r != -EINVAL)
                        fprintf(stderr, "parse_bind(\"%s\") = %d\n", bad[i], r);
                CHECK(r == -EINVAL && !x.source);
        }
}

static void test_parse_misc(void)
{
        static const char *const yes[] = {"yes", "true", "1", "on", "YES", "True"};
        static const char *const no[] = {"no", "false", "0", "off", "NO", "Off"};
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                CHECK(parse_boolean(yes[i]) == 1);
                CHECK(parse_boolean(no[i]) == 0);
        }
        CHECK(parse_boolean("") == -EINVAL);
        CHECK(parse_boolean("2") == -EINVAL);
        CHECK(parse_boolean("yess") == -EINVAL);
        CHECK(parse_boolean(NULL) == -EINVAL);

        CHECK(parse_network_mode("none") == NETWORK_NONE);
        CHECK(parse_network_mode("veth") == NETWORK_VETH);
        CHECK(parse_network_mode("bridge") == NETWORK_BRIDGE);
        CHECK(parse_network_mode("host") == NETWORK_HOST);
        CHECK(parse_network_mode("Host") == -EINVAL);
        CHECK(parse_network_mode("") == -EINVAL);
        CHECK(streq(network_mode_to_string(NETWORK_BRIDGE), "bridge"));
        CHECK(network_mode_to_string(NETWORK_UNSET) == NULL);

        CHECK(parse_resolv_conf("copy-host") == RESOLV_CONF_COPY_HOST);
        CHECK(parse_resolv_conf("bind-host") == RESOLV_CONF_BIND_HOST);
        CHECK(parse_resolv_conf("off") == RESOLV_CONF_OFF);
        CHECK(parse_resolv_conf("copy") == -EINVAL);

        CHECK(parse_capability("CAP_SYS_ADMIN") == CAP_SYS_ADMIN);
        CHECK(parse_capability("cap_sys_admin") == CAP_SYS_ADMIN);
        CHECK(parse_capability("sys_admin") == CAP_SYS_ADMIN);
        CHECK(parse_capability("NET_ADMIN") == CAP_NET_ADMIN);
        CHECK(parse_capability("CAP_CHOWN") == CAP_CHOWN);
        CHECK(parse_capability("CAP_FOO") == -EINVAL);
        CHECK(parse_capability("CAP_CHOWN,CAP_KILL") == -EINVAL);
        CHECK(parse_capability("CAP_CHOWN ") == -EINVAL);
        CHECK(parse_capability("") == -EINVAL);

        uint32_t uid = 0, range = 0;
        CHECK(parse_private_users("no", &uid, &range) == PRIVATE_USERS_NO);
        CHECK(parse_private_users("pick", &uid, &range) == PRIVATE_USERS_PICK);
        CHECK(parse_private_users("100000", &uid, &range) == PRIVATE_USERS_FIXED && uid == 100000 &&
              range == 65536);
        CHECK(parse_private_users("100000:1000", &uid, &range) == PRIVATE_USERS_FIXED && uid == 100000 &&
              range == 1000);
        CHECK(parse_private_users("0", &uid, &range) == -ERANGE);
        CHECK(parse_private_users("1:0", &uid, &range) == -ERANGE);
        CHECK(parse_private_users("4294967295", &uid, &range) == -ERANGE);
        CHECK(parse_private_users("4294901760:65536", &uid, &range) == -ERANGE);
        CHECK(parse_private_users("4294901759:65536", &uid, &range) == PRIVATE_USERS_FIXED);
        CHECK(parse_private_users("yes", &uid, &range) == -EINVAL);
        CHECK(parse_private_users("1:", &uid, &range) == -EINVAL);
        CHECK(parse_private_users("-1", &uid, &range) == -EINVAL);
}

/* ---- the file parser ---- */

static const char full_file[] = "# a comment\n"
                                "; another comment\n"
                                "\n"
                                "[Exec]\n"
                                "Boot = no\n"
                                "Command=/bin/sh -c 'echo \"hi there\"' a\\ b\n"
                                "  Hostname=web-1.example  \n"
                                "Environment=FOO=bar\n"
                                "Environment=\"GREETING=hello world\" EMPTY=\n"
                                "Environment=FOO=baz\n"
                                "KillSignal=SIGTERM\n"
                                "\t\n"
                                "[Resources]\r\n"
                                "MemoryMax=512M\r\n"
                                "CPUQuota=150%\n"
                                "TasksMax=100\n"
                                "[Network]\n"
                                "Mode=bridge\n"
                                "Bridge=br0\n"
                                "Address=10.0.0.2/24\n"
                                "Address=fd00::2/64\n"
                                "Port=8080:80\n"
                                "Port=udp:53\n"
                                "ResolvConf=off\n"
                                "[Files]\n"
                                "Bind=/srv/a\n"
                                "BindReadOnly=/srv/b:/b\n"
                                "ReadOnly=true\n"
                                "Ephemeral=on\n"
                                "[Security]\n"
                                "Capability=CAP_NET_ADMIN sys_time\n"
                                "Capability=CAP_SYS_MODULE\n"
                                "DropCapability=CAP_MKNOD\n"
                                "SystemCallFilter=add_key ~reboot\n"
                                "SystemCallFilter=keyctl\n"
                                "PrivateUsers=pick\n";

static void test_full_file(void)
{
        _cleanup_(settings_freep) Settings *s = NULL;
        _cleanup_free_ char *error = NULL;

        CHECK(settings_parse_string("full.machine", full_file, &s, &error) == 0);
        CHECK(!error);
        if (!s)
                return;

        CHECK(s->boot == 0);
        CHECK(strv_length(s->command) == 4 && streq(s->command[0], "/bin/sh") &&
              streq(s->command[1], "-c") && streq(s->command[2], "echo \"hi there\"") &&
              streq(s->command[3], "a b"));
        CHECK(streq_ptr(s->hostname, "web-1.example"));
        CHECK(strv_length(s->environment) == 3 && streq(s->environment[0], "FOO=baz") &&
              streq(s->environment[1], "GREETING=hello world") && streq(s->environment[2], "EMPTY="));
        CHECK(s->kill_signal == SIGTERM);
        CHECK(s->memory_max == U64(512) << 20);
        CHECK(s->cpu_quota_per_sec_usec == 1500000);
        CHECK(s->tasks_max == 100);
        CHECK(s->network_mode == NETWORK_BRIDGE);
        CHECK(streq_ptr(s->bridge, "br0"));
        CHECK(strv_length(s->addresses) == 2 && streq(s->addresses[0], "10.0.0.2/24") &&
              streq(s->addresses[1], "fd00::2/64"));
        CHECK(s->n_ports == 2);
        if (s->n_ports == 2) {
                CHECK(s->ports[0].protocol == IPPROTO_TCP && s->ports[0].host_port == 8080 &&
                      s->ports[0].guest_port == 80);
                CHECK(s->ports[1].protocol == IPPROTO_UDP && s->ports[1].host_port == 53 &&
                      s->ports[1].guest_port == 53);
        }
        CHECK(s->resolv_conf == RESOLV_CONF_OFF);
        CHECK(s->n_binds == 2);
        if (s->n_binds == 2) {
                CHECK(streq(s->binds[0].source, "/srv/a") && streq(s->binds[0].destination, "/srv/a") &&
                      !s->binds[0].read_only);
                CHECK(streq(s->binds[1].source, "/srv/b") && streq(s->binds[1].destination, "/b") &&
                      s->binds[1].read_only);
        }
        CHECK(s->read_only == 1);
        CHECK(s->ephemeral == 1);
        CHECK(s->capability_add ==
              (CAP_BIT(CAP_NET_ADMIN) | CAP_BIT(CAP_SYS_TIME) | CAP_BIT(CAP_SYS_MODULE)));
        CHECK(s->capability_drop == CAP_BIT(CAP_MKNOD));
        CHECK(strv_length(s->syscall_filter) == 3 && streq(s->syscall_filter[0], "add_key") &&
              streq(s->syscall_filter[1], "~reboot") && streq(s->syscall_filter[2], "keyctl"));
        CHECK(streq_ptr(s->private_users, "pick"));
}

static void test_empty_and_unset(void)
{
        _cleanup_(settings_freep) Settings *s = NULL;

        CHECK(settings_parse_string("empty.machine", "", &s, NULL) == 0 && s);
        if (!s)
                return;
        CHECK(s->boot == -1 && !s->command && !s->hostname && !s->environment && s->kill_signal == 0);
        CHECK(s->memory_max == LIMIT_UNSET && s->cpu_quota_per_sec_usec == LIMIT_UNSET &&
              s->tasks_max == LIMIT_UNSET);
        CHECK(s->network_mode == NETWORK_UNSET && !s->bridge && !s->addresses && s->n_ports == 0);
        CHECK(s->resolv_conf == RESOLV_CONF_UNSET && s->n_binds == 0 && s->read_only == -1 &&
              s->ephemeral == -1);
        CHECK(s->capability_add == 0 && s->capability_drop == 0 && !s->syscall_filter && !s->private_users);
}

static void test_reset_and_repeat(void)
{
        _cleanup_(settings_freep) Settings *s = NULL;
        const char *text =
            "[Exec]\nBoot=yes\nBoot=\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n"
            "KillSignal=9\nKillSignal=RTMIN+3\n"
            "[Resources]\nMemoryMax=1G\nMemoryMax=\nTasksMax=5\nTasksMax=infinity\n"
            "[Files]\nBind=/a\nBindReadOnly=/b\nBind=\nBind=/c\n"
            "[Network]\nPort=1\nPort=\nAddress=10.0.0.1/8\nAddress=\n"
            "[Security]\nCapability=CAP_KILL\nCapability=\nPrivateUsers=pick\nPrivateUsers=\n";

        CHECK(settings_parse_string("reset.machine", text, &s, NULL) == 0 && s);
        if (!s)
                return;
        CHECK(s->boot == -1);
        CHECK(strv_length(s->environment) == 1 && streq(s->environment[0], "B=2"));
        CHECK(s->kill_signal == SIGRTMIN + 3);
        CHECK(s->memory_max == LIMIT_UNSET);
        CHECK(s->tasks_max == LIMIT_INFINITY);
        CHECK(s->n_binds == 1 && streq(s->binds[0].source, "/c"));
        CHECK(s->n_ports == 0 && !s->ports);
        CHECK(!s->addresses);
        CHECK(s->capability_add == 0);
        CHECK(!s->private_users);
}

/* Runs the parser with stderr captured, so warnings can be checked. */
static int parse_capturing(const char *text, Settings **ret, char **ret_error, char **ret_stderr)
{
        char path[] = "/tmp/test-settings-stderr.XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0)
                return -errno;
        unlink(path);
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);

        int r = settings_parse_string("warn.machine", text, ret, ret_error);

        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        lseek(fd, 0, SEEK_SET);
        char buf[4096] = "";
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n > 0 ? n : 0] = 0;
        *ret_stderr = strdup(buf);
        return r;
}

static void test_unknown_keys(void)
{
        _cleanup_(settings_freep) Settings *s = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL;
        const char *text = "Early=1\n"
                           "[Exec]\n"
                           "Foo=bar\n"
                           "Boot=no\n"
                           "[Bogus]\n"
                           "Anything=goes here\n"
                           "[Resources]\n"
                           "memorymax=1G\n"
                           "TasksMax=7\n";

        CHECK(parse_capturing(text, &s, &error, &warnings) == 0);
        CHECK(!error);
        CHECK(s && s->boot == 0 && s->tasks_max == 7 && s->memory_max == LIMIT_UNSET);
        CHECK(warnings && strstr(warnings, "warn.machine:1: "));
        CHECK(warnings &&
              strstr(warnings, "warn.machine:3: Unknown key 'Foo' in section [Exec], ignoring."));
        CHECK(warnings && strstr(warnings, "warn.machine:5: Unknown section [Bogus], ignoring."));
        CHECK(warnings && !strstr(warnings, "Anything"));
        CHECK(warnings &&
              strstr(warnings, "warn.machine:8: Unknown key 'memorymax' in section [Resources]"));
}

static void check_bad(const char *text, const char *expected_error)
{
        _cleanup_(settings_freep) Settings *s = NULL;
        _cleanup_free_ char *error = NULL;

        int r = settings_parse_string("bad.machine", text, &s, &error);
        bool ok = r == -EINVAL && !s && error && strstr(error, expected_error);
        if (!ok)
                fprintf(stderr, "for '%s': r=%d error='%s', expected '%s'\n", text, r, strempty(error),
                        expected_error);
        CHECK(ok);
}

static void test_bad_values(void)
{
        check_bad("[Exec]\nBoot=maybe\n", "bad.machine:2: [Exec] Boot=: invalid boolean 'maybe'");
        check_bad("[Exec]\nCommand=/bin/sh 'unterminated\n", "bad.machine:2: [Exec] Command=: ");
        check_bad("[Exec]\nCommand=/bin/sh trailing\\\n", "bad.machine:2: [Exec] Command=: ");
        check_bad("[Exec]\nCommand=''\n", "bad.machine:2: [Exec] Command=: empty command");
        check_bad("[Exec]\n\nHostname=-bad\n", "bad.machine:3: [Exec] Hostname=: invalid hostname '-bad'");
        check_bad("[Exec]\nHostname=a..b\n", "bad.machine:2: [Exec] Hostname=:");
        check_bad("[Exec]\nHostname=under_score\n", "bad.machine:2: [Exec] Hostname=:");
        check_bad("[Exec]\nEnvironment=NOEQUALS\n",
                  "bad.machine:2: [Exec] Environment=: invalid assignment 'NOEQUALS'");
        check_bad("[Exec]\nEnvironment=1X=y\n", "bad.machine:2: [Exec] Environment=:");
        check_bad("[Exec]\nEnvironment=A-B=y\n", "bad.machine:2: [Exec] Environment=:");
        check_bad("[Exec]\nEnvironment==y\n", "bad.machine:2: [Exec] Environment=:");
        check_bad("[Exec]\nEnvironment=OK=1 \"BAD\x01=2\"\n", "bad.machine:2: [Exec] Environment=:");
        check_bad("[Exec]\nEnvironment=A=\"x\n", "bad.machine:2: [Exec] Environment=:");
        check_bad("[Exec]\nKillSignal=SIGNOPE\n",
                  "bad.machine:2: [Exec] KillSignal=: invalid signal 'SIGNOPE'");
        check_bad("[Exec]\nKillSignal=0\n", "bad.machine:2: [Exec] KillSignal=:");
        check_bad("[Resources]\nMemoryMax=abc\n",
                  "bad.machine:2: [Resources] MemoryMax=: invalid size 'abc'");
        check_bad("[Resources]\nMemoryMax=0\n",
                  "bad.machine:2: [Resources] MemoryMax=: size must be greater than 0");
        check_bad("[Resources]\nMemoryMax=99999999999T\n",
                  "bad.machine:2: [Resources] MemoryMax=: out-of-range size");
        check_bad("[Resources]\nMemoryMax=-1\n", "bad.machine:2: [Resources] MemoryMax=: invalid size '-1'");
        check_bad("[Resources]\nCPUQuota=0%\n",
                  "bad.machine:2: [Resources] CPUQuota=: out-of-range CPU quota '0%'");
        check_bad("[Resources]\nCPUQuota=150\n",
                  "bad.machine:2: [Resources] CPUQuota=: invalid CPU quota '150'");
        check_bad("[Resources]\nTasksMax=0\n",
                  "bad.machine:2: [Resources] TasksMax=: out-of-range task limit '0'");
        check_bad("[Resources]\nTasksMax=lots\n",
                  "bad.machine:2: [Resources] TasksMax=: invalid task limit 'lots'");
        check_bad("[Network]\nMode=nat\n", "bad.machine:2: [Network] Mode=: invalid mode 'nat'");
        check_bad("[Network]\nBridge=this-name-is-too-long\n",
                  "bad.machine:2: [Network] Bridge=: invalid interface");
        check_bad("[Network]\nBridge=br/0\n", "bad.machine:2: [Network] Bridge=:");
        check_bad("[Network]\nAddress=10.0.0.1\n", "bad.machine:2: [Network] Address=: invalid address");
        check_bad("[Network]\nAddress=10.0.0.1/33\n", "bad.machine:2: [Network] Address=:");
        check_bad("[Network]\nAddress=fd00::1/129\n", "bad.machine:2: [Network] Address=:");
        check_bad("[Network]\nAddress=300.0.0.1/8\n", "bad.machine:2: [Network] Address=:");
        check_bad("[Network]\nAddress=10.0.0.1/-1\n", "bad.machine:2: [Network] Address=:");
        check_bad("[Network]\nPort=70000\n", "bad.machine:2: [Network] Port=: invalid port forward '70000'");
        check_bad("[Network]\nPort=sctp:80\n", "bad.machine:2: [Network] Port=:");
        check_bad("[Network]\nResolvConf=yes\n",
                  "bad.machine:2: [Network] ResolvConf=: invalid value 'yes'");
        check_bad("[Files]\nBind=relative/path\n",
                  "bad.machine:2: [Files] Bind=: invalid bind mount 'relative/path'");
        check_bad("[Files]\nBindReadOnly=/a:/../etc\n",
                  "bad.machine:2: [Files] BindReadOnly=: invalid bind mount");
        check_bad("[Files]\nReadOnly=2\n", "bad.machine:2: [Files] ReadOnly=: invalid boolean '2'");
        check_bad("[Files]\nEphemeral=nope\n", "bad.machine:2: [Files] Ephemeral=: invalid boolean 'nope'");
        check_bad("[Security]\nCapability=CAP_CHOWN CAP_BOGUS\n",
                  "bad.machine:2: [Security] Capability=: unknown capability 'CAP_BOGUS'");
        check_bad("[Security]\nDropCapability=all\n",
                  "bad.machine:2: [Security] DropCapability=: unknown capability");
        check_bad("[Security]\nSystemCallFilter=~\n",
                  "bad.machine:2: [Security] SystemCallFilter=: invalid system call '~'");
        check_bad("[Security]\nSystemCallFilter=open;rm\n", "bad.machine:2: [Security] SystemCallFilter=:");
        check_bad("[Security]\nPrivateUsers=maybe\n",
                  "bad.machine:2: [Security] PrivateUsers=: invalid value 'maybe'");
        check_bad("[Security]\nPrivateUsers=0\n", "bad.machine:2: [Security] PrivateUsers=:");

        /* Syntax errors name file and line too. */
        check_bad("[Exec]\nBoot\n", "bad.machine:2: missing '='");
        check_bad("[Exec\nBoot=yes\n", "bad.machine:1: invalid section header");
        check_bad("[]\n", "bad.machine:1: invalid section header");

        /* Without ret_error the result is the same, just without the text. */
        Settings *s = NULL;
        CHECK(settings_parse_string("bad.machine", "[Exec]\nBoot=maybe\n", &s, NULL) == -EINVAL && !s);
}

/* ---- files, merge, defaults ---- */

static int write_file(const char *dir, const char *name, const char *contents)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        size_t l = strlen(contents);
        return write(fd, contents, l) == (ssize_t)l ? 0 : -EIO;
}

static void test_files(void)
{
        char root[] = "/tmp/test-settings.XXXXXX";
        if (!mkdtemp(root)) {
                CHECK(!"mkdtemp");
                return;
        }
        char etc[64], run[64], img[64];
        snprintf(etc, sizeof etc, "%s/etc", root);
        snprintf(run, sizeof run, "%s/run", root);
        snprintf(img, sizeof img, "%s/img", root);
        CHECK(mkdir(etc, 0755) == 0 && mkdir(run, 0755) == 0 && mkdir(img, 0755) == 0);
        char *dirs[] = {etc, run, NULL};

        _cleanup_free_ char *p = NULL;
        CHECK(settings_find_file("vm", img, dirs, &p) == 0 && !p);
        CHECK(settings_find_file("../vm", img, dirs, &p) == -EINVAL);

        CHECK(write_file(img, "vm.machine", "[Resources]\nTasksMax=3\n") == 0);
        CHECK(settings_find_file("vm", img, dirs, &p) == 1 && p && strstr(p, "/img/vm.machine"));
        free(p);
        CHECK(write_file(run, "vm.machine", "[Resources]\nTasksMax=2\n") == 0);
        CHECK(settings_find_file("vm", img, dirs, &p) == 1 && p && strstr(p, "/run/vm.machine"));
        free(p);
        CHECK(write_file(etc, "vm.machine", "[Resources]\nTasksMax=1\nBogus=1\n") == 0);
        CHECK(settings_find_file("vm", img, dirs, &p) == 1 && p && strstr(p, "/etc/vm.machine"));

        _cleanup_(settings_freep) Settings *s = NULL;
        _cleanup_free_ char *error = NULL;
        CHECK(p && settings_load_file(p, &s, &error) == 0 && s && s->tasks_max == 1 && !error);

        /* A directory of that name is not a settings file. */
        char subdir[96];
        snprintf(subdir, sizeof subdir, "%s/dir.machine", etc);
        CHECK(mkdir(subdir, 0755) == 0);
        free(p);
        p = NULL;
        CHECK(settings_find_file("dir", NULL, dirs, &p) == 0 && !p);

        _cleanup_(settings_freep) Settings *t = NULL;
        _cleanup_free_ char *error2 = NULL, *missing = NULL;
        if (asprintf(&missing, "%s/missing.machine", root) > 0) {
                CHECK(settings_load_file(missing, &t, &error2) == -ENOENT && !t);
                CHECK(error2 && strstr(error2, "missing.machine"));
        }

        CHECK(write_file(etc, "bad.machine", "[Resources]\nTasksMax=1\nMemoryMax=lots\n") == 0);
        _cleanup_free_ char *bad = NULL, *error3 = NULL;
        if (asprintf(&bad, "%s/bad.machine", etc) > 0) {
                CHECK(settings_load_file(bad, &t, &error3) == -EINVAL && !t);
                CHECK(error3 &&
                      strstr(error3, "/etc/bad.machine:3: [Resources] MemoryMax=: invalid size 'lots'"));
        }

        /* An embedded NUL would hide the rest of the file from the parser. */
        _cleanup_free_ char *nul = NULL, *error4 = NULL;
        if (asprintf(&nul, "%s/nul.machine", etc) > 0) {
                _cleanup_close_ int fd = open(nul, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                CHECK(fd >= 0 && write(fd, "[Exec]\n\0Boot=maybe\n", 19) == 19);
                CHECK(settings_load_file(nul, &t, &error4) == -EBADMSG && !t && error4);
        }

        rm_rf_dir(root);
}

static void test_merge(void)
{
        _cleanup_(settings_freep) Settings *file = NULL, *options = NULL;

        CHECK(settings_parse_string("file.machine", full_file, &file, NULL) == 0);
        CHECK(settings_parse_string("options",
                                    "[Exec]\nBoot=yes\nEnvironment=OPT=1\n[Resources]\nMemoryMax=1G\n"
                                    "[Files]\nBind=/opt\n[Security]\nDropCapability=CAP_KILL\n",
                                    &options, NULL) == 0);
        if (!file || !options)
                return;

        CHECK(settings_merge(options, file) == 0);
        /* What the options set wins... */
        CHECK(options->boot == 1);
        CHECK(options->memory_max == U64(1) << 30);
        CHECK(strv_length(options->environment) == 1 && streq(options->environment[0], "OPT=1"));
        CHECK(options->n_binds == 1 && streq(options->binds[0].source, "/opt"));
        CHECK(options->capability_drop == CAP_BIT(CAP_KILL));
        /* ...what they leave unset comes from the file, as deep copies. */
        CHECK(options->cpu_quota_per_sec_usec == 1500000 && options->tasks_max == 100);
        CHECK(options->kill_signal == SIGTERM);
        CHECK(strv_length(options->command) == 4 && options->command != file->command);
        CHECK(streq_ptr(options->hostname, "web-1.example") && options->hostname != file->hostname);
        CHECK(options->network_mode == NETWORK_BRIDGE && streq_ptr(options->bridge, "br0"));
        CHECK(strv_length(options->addresses) == 2);
        CHECK(options->n_ports == 2 && options->ports != file->ports && options->ports[0].host_port == 8080);
        CHECK(options->resolv_conf == RESOLV_CONF_OFF && options->read_only == 1 && options->ephemeral == 1);
        CHECK(options->capability_add == file->capability_add);
        CHECK(strv_length(options->syscall_filter) == 3 && streq_ptr(options->private_users, "pick"));

        /* Merging into an empty Settings copies everything, including binds. */
        _cleanup_(settings_freep) Settings *empty = settings_new();
        CHECK(empty && settings_merge(empty, file) == 0);
        CHECK(empty && empty->n_binds == 2 && streq(empty->binds[1].destination, "/b") &&
              empty->binds[1].read_only);
        CHECK(settings_merge(NULL, file) == -EINVAL);
}

static void test_defaults(void)
{
        _cleanup_(settings_freep) Settings *s = settings_new();
        CHECK(s && settings_apply_defaults(s, "debian") == 0);
        if (!s)
                return;
        CHECK(s->boot == 1);
        CHECK(strv_length(s->command) == 1 && streq(s->command[0], "/bin/sh"));
        CHECK(streq_ptr(s->hostname, "debian"));
        CHECK(s->kill_signal == SIGRTMIN + 4);
        CHECK(s->memory_max == LIMIT_INFINITY && s->cpu_quota_per_sec_usec == LIMIT_INFINITY);
        CHECK(s->tasks_max == DEFAULT_TASKS_MAX);
        CHECK(s->network_mode == NETWORK_NONE && s->resolv_conf == RESOLV_CONF_COPY_HOST);
        CHECK(s->read_only == 0 && s->ephemeral == 0 && streq_ptr(s->private_users, "pick"));

        /* Set values are kept. */
        _cleanup_(settings_freep) Settings *t = NULL;
        CHECK(settings_parse_string("t", "[Exec]\nHostname=other\n[Resources]\nTasksMax=9\n", &t, NULL) ==
              0);
        CHECK(t && settings_apply_defaults(t, "debian") == 0 && streq_ptr(t->hostname, "other") &&
              t->tasks_max == 9);
}

/* ---- the state file's settings object: written and read back, nothing is lost or changed ---- */

static char *json_text(const Settings *s)
{
        json_object *o = NULL;
        CHECK(settings_to_json(s, &o) == 0);
        char *t = o ? strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) : NULL;
        json_object_put(o);
        return t;
}

static void check_round_trip(const Settings *s)
{
        _cleanup_free_ char *first = json_text(s), *second = NULL;
        _cleanup_(settings_freep) Settings *back = NULL;
        json_object *o = first ? json_tokener_parse(first) : NULL;
        CHECK(o && settings_from_json(o, &back) == 0);
        json_object_put(o);
        if (!back)
                return;
        second = json_text(back);
        CHECK(first && second && streq(first, second));
}

static void test_json_round_trip(void)
{
        _cleanup_(settings_freep) Settings *full = NULL, *unset = settings_new(), *defaults = settings_new();
        CHECK(settings_parse_string("full.machine", full_file, &full, NULL) == 0);
        if (full) {
                check_round_trip(full);
                /* Text no line-based format could hold. */
                CHECK(strv_extend(&full->environment, "X=a\nLEADER=1\r\"q\"") == 0);
                full->binds[0].destination[1] = ':';
                check_round_trip(full);
        }
        check_round_trip(unset);
        CHECK(settings_apply_defaults(defaults, "m") == 0);
        check_round_trip(defaults);

        /* Ill-typed values are refused, not guessed. */
        const char *bad[] = {
                "{\"boot\":\"yes\"}",
                "{\"network_mode\":\"teleport\"}",
                "{\"private_users\":0}",
                "{\"ports\":[{\"protocol\":\"tcp\",\"host\":0,\"guest\":80}]}",
                "{\"binds\":[{\"source\":\"relative\",\"destination\":\"/x\"}]}",
                "{\"command\":[\"/bin/sh\",7]}",
                "[]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(settings_freep) Settings *s = NULL;
                json_object *o = json_tokener_parse(bad[i]);
                CHECK(o && settings_from_json(o, &s) < 0 && !s);
                json_object_put(o);
        }
}

int main(void)
{
        test_parse_size();
        test_parse_cpu_quota();
        test_parse_tasks_max();
        test_parse_signal();
        test_parse_port();
        test_parse_bind();
        test_parse_misc();
        test_full_file();
        test_empty_and_unset();
        test_reset_and_repeat();
        test_unknown_keys();
        test_bad_values();
        test_files();
        test_merge();
        test_defaults();
        test_json_round_trip();

        printf("%u passed, %u failed\n", passed, failed);
        return failed > 0;
}
