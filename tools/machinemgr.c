/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* machinemgr: the command line client of machinemgrd. This file: options, the connection, error
 * reporting and the verb table; the verbs live in machinemgr-*.c. */

#include <getopt.h>
#include <stdarg.h>

#include "config.h"
#include "machinemgr-copy.h"
#include "machinemgr-image.h"
#include "machinemgr.h"
#include "names.h"

#define DEFAULT_PRIVATE_ADDRESS "unix:path=/run/machinemgr/private"

Args arg = {
        .output = OUTPUT_TABLE,
        .memory_max = LIMIT_UNSET,
        .cpu_quota = LIMIT_UNSET,
        .tasks_max = LIMIT_UNSET,
        .ephemeral = -1,
        .read_only = -1,
        .boot = -1,
        .signal = 0,
        .lines = -1,
};

static const sd_bus_error_map machinemgr_errors[] = {
        SD_BUS_ERROR_MAP(MM_ERROR_NO_SUCH_MACHINE, ERRNO_NO_SUCH),
        SD_BUS_ERROR_MAP(MM_ERROR_NO_SUCH_IMAGE, ERRNO_NO_SUCH),
        SD_BUS_ERROR_MAP(MM_ERROR_INVALID_NAME, ERRNO_INVALID),
        SD_BUS_ERROR_MAP(MM_ERROR_INVALID_ARGUMENT, ERRNO_INVALID),
        SD_BUS_ERROR_MAP(MM_ERROR_MACHINE_EXISTS, EEXIST),
        SD_BUS_ERROR_MAP(MM_ERROR_IMAGE_BUSY, EBUSY),
        SD_BUS_ERROR_MAP(MM_ERROR_NO_INIT, ENOEXEC),
        SD_BUS_ERROR_MAP(MM_ERROR_START_FAILED, EIO),
        SD_BUS_ERROR_MAP_END,
};

void cli_error(const char *machine, const char *fmt, ...)
{
        va_list ap;

        fputs("machinemgr: ", stderr);
        if (machine)
                fprintf(stderr, "%s: ", machine);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

int cli_bus_error(const char *machine, const char *what, const sd_bus_error *e, int r)
{
        if (sd_bus_error_is_set(e))
                r = -sd_bus_error_get_errno(e);
        if (r >= 0)
                r = -EIO;

        if (sd_bus_error_has_names(e, MM_ERROR_NO_SUCH_MACHINE))
                cli_error(machine, "no such machine");
        else if (sd_bus_error_has_names(e, MM_ERROR_NO_SUCH_IMAGE))
                cli_error(machine, "no such image");
        else if (sd_bus_error_has_names(e, SD_BUS_ERROR_ACCESS_DENIED))
                cli_error(machine, "%s: permission denied%s%s", what, e->message ? ": " : "",
                          strempty(e->message));
        else if (sd_bus_error_is_set(e))
                cli_error(machine, "%s: %s", what, e->message ?: e->name);
        else
                cli_error(machine, "%s: %s", what, strerror(-r));
        return r;
}

int cli_bus_parse_error(int r)
{
        cli_error(NULL, "unexpected reply from machinemgrd: %s", strerror(-r));
        return r;
}

int bus_machine_path(sd_bus *bus, const char *name, char **ret_path, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(bus, MM_SERVICE, MM_PATH, MM_MANAGER, "GetMachine", error, &reply, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        *ret_path = strdup(path);
        return *ret_path ? 0 : -ENOMEM;
}

int bus_machine_exit(sd_bus *bus, const char *name, char **ret_result, int *ret_status, uint64_t *ret_ts,
                     char **ret_message, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *result, *message;
        int r;

        r = sd_bus_call_method(bus, MM_SERVICE, MM_PATH, MM_MANAGER, "GetMachineExit", error, &reply, "s",
                               name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "sits", &result, ret_status, ret_ts, &message);
        if (r < 0)
                return r;
        *ret_result = strdup(result);
        *ret_message = strdup(message);
        if (!*ret_result || !*ret_message) {
                free(*ret_result);
                free(*ret_message);
                return -ENOMEM;
        }
        return 0;
}

/* ---- connection ---- */

/* Not sd-bus's 25 s: the daemon serves its clients one after another from one loop, StartMachine replies
 * only once the guest's init has exec'd, and on a host saturated by booting guests both can take longer.
 * A timeout then told the user a start had failed while the guest came up anyway. */
#define CLI_CALL_TIMEOUT_USEC (5 * 60 * UINT64_C(1000000))

static int bus_open_address(const char *address, bool bus_client, sd_bus **ret)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, bus_client);
        if (r >= 0)
                r = sd_bus_set_method_call_timeout(bus, CLI_CALL_TIMEOUT_USEC);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* Owned now, or startable by bus activation. */
static bool system_bus_has_service(sd_bus *bus)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **names = NULL;
        int owned = 0;

        if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", NULL, &reply, "s", MM_SERVICE) >= 0 &&
            sd_bus_message_read(reply, "b", &owned) >= 0 && owned)
                return true;

        reply = sd_bus_message_unref(reply);
        if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "ListActivatableNames", NULL, &reply, "") < 0)
                return false;
        if (sd_bus_message_read_strv(reply, &names) < 0)
                return false;
        return strv_contains(names, MM_SERVICE);
}

static int bus_connect(sd_bus **ret)
{
        const char *address;
        int r;

        if (arg.address) {
                /* Could be a real bus or our private socket; the daemon answers Hello on the latter. */
                r = bus_open_address(arg.address, true, ret);
                if (r < 0)
                        cli_error(NULL, "failed to connect to %s: %s", arg.address, strerror(-r));
                return r;
        }

        if (arg.host) {
                r = sd_bus_open_system_remote(ret, arg.host);
                if (r < 0)
                        cli_error(NULL, "failed to connect to %s: %s", arg.host, strerror(-r));
                return r;
        }

        if (access("/run/dbus/system_bus_socket", F_OK) == 0) {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;

                if (sd_bus_open_system(&bus) >= 0 && system_bus_has_service(bus)) {
                        (void)sd_bus_set_method_call_timeout(bus, CLI_CALL_TIMEOUT_USEC);
                        *ret = TAKE_PTR(bus);
                        return 0;
                }
        }

        address = getenv("MACHINEMGR_ADDRESS") ?: DEFAULT_PRIVATE_ADDRESS;
        r = bus_open_address(address, false, ret);
        if (r < 0)
                cli_error(NULL, "failed to connect to machinemgrd at %s: %s", address, strerror(-r));
        return r;
}

/* ---- options ---- */

static void help(void)
{
        printf("machinemgr [OPTIONS] VERB [ARGS...]\n\n"
               "Manage system containers run by machinemgrd.\n\n"
               "Machine verbs:\n"
               "  list                       List running machines (--all: also stopped images)\n"
               "  status NAME...             Show a machine's state, limits, usage and console\n"
               "  show NAME... [-p PROP...]  Show properties as KEY=VALUE\n"
               "  start NAME...              Boot machines\n"
               "  poweroff NAME...           Shut machines down cleanly\n"
               "  reboot NAME...             Reboot machines\n"
               "  terminate NAME...          Kill everything in machines now\n"
               "  kill NAME...               Send a signal to machines\n"
               "  set-limit NAME PROP=VAL... Change MemoryMax=, CPUQuota=, TasksMax=\n"
               "  shell NAME [CMD...]        Run a command (default: a login shell) in a machine\n"
               "  console NAME               Attach to a machine's console\n"
               "  logs NAME                  Show a machine's console log\n"
               "  copy-to NAME HOST [GUEST]  Copy a file or directory into a running machine\n"
               "  copy-from NAME GUEST [HOST] Copy a file or directory out of a running machine\n"
               "  enable NAME...             Start machines at boot\n"
               "  disable NAME...            Do not start machines at boot\n\n"
               "Image verbs:\n"
               "  list-images                List images under the image path\n"
               "  image-status NAME...       Show an image's type, size and dates\n"
               "  clone SRC DST              Copy an image (--read-only for a read-only copy)\n"
               "  rename OLD NEW             Rename an image (and its .machine file)\n"
               "  remove NAME...             Remove images\n"
               "  read-only NAME [BOOL]      Mark an image read-only (or writable)\n"
               "  create NAME                Make an image (--busybox, or --distribution= --release=)\n"
               "  import-tar FILE NAME       Make an image from a tarball (.gz .xz .zst)\n"
               "  export-tar NAME FILE       Write an image to a tarball\n\n"
               "Options:\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "  -H --host=[USER@]HOST      Operate on a remote host (over ssh)\n"
               "     --address=ADDR          Connect to this D-Bus address\n"
               "     --no-pager              Accepted for compatibility (output is never paged)\n"
               "     --no-legend             Omit table header and footer\n"
               "  -o --output=table|json     Output format\n"
               "  -q --quiet                 Suppress informational messages\n"
               "  -a --all                   list: include images that are not running\n"
               "  -p --property=NAME         show: only this property (repeatable)\n"
               "     --memory=BYTES          start: MemoryMax (K/M/G/T suffix, or infinity)\n"
               "     --cpu-quota=PERCENT     start: CPU quota, e.g. 150%%\n"
               "     --tasks-max=N           start: TasksMax\n"
               "     --network=MODE          start: none, veth, bridge, host\n"
               "     --bridge=BRIDGE         start: bridge for --network=bridge\n"
               "     --port=[PROTO:]HOST[:GUEST]  start: forward a port (repeatable)\n"
               "     --bind=SRC[:DST]        start: bind mount (repeatable)\n"
               "     --bind-ro=SRC[:DST]     start: read-only bind mount (repeatable)\n"
               "     --ephemeral             start: throw-away overlay on top of the image\n"
               "     --read-only             start: mount the root read-only\n"
               "     --private-users=no|pick|UID[:RANGE]  start: user namespace\n"
               "     --no-boot               start: run --command= under machinemgr-init\n"
               "     --command=CMDLINE       start: the payload (or everything after --)\n"
               "     --setenv=VAR=VALUE      start: environment for the payload (repeatable)\n"
               "     --hostname=NAME         start: hostname of the guest\n"
               "     --wait                  start: until READY=1 (--no-boot: until exit); poweroff: until gone\n"
               "  -f --follow               start: stay until the machine is gone; logs: follow\n"
               "  -s --signal=SIG            kill: the signal (default SIGTERM)\n"
               "     --kill-whom=leader|all  kill: whom to signal (default all)\n"
               "     --uid=USER              shell: run as this user\n"
               "  -n --lines=N               logs/status: how many lines\n"
               "\nExit status: 0 ok, 1 failed, 2 bad usage, 3 no such machine, 4 permission denied.\n");
}

enum {
        ARG_VERSION = 0x100,
        ARG_ADDRESS,
        ARG_NO_PAGER,
        ARG_NO_LEGEND,
        ARG_MEMORY,
        ARG_CPU_QUOTA,
        ARG_TASKS_MAX,
        ARG_NETWORK,
        ARG_BRIDGE,
        ARG_PORT,
        ARG_BIND,
        ARG_BIND_RO,
        ARG_EPHEMERAL,
        ARG_READ_ONLY,
        ARG_PRIVATE_USERS,
        ARG_NO_BOOT,
        ARG_COMMAND,
        ARG_SETENV,
        ARG_HOSTNAME,
        ARG_WAIT,
        ARG_KILL_WHOM,
        ARG_UID,
        ARG_DISTRIBUTION,
        ARG_RELEASE,
        ARG_BUSYBOX,
};

static const struct option options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        { "host", required_argument, NULL, 'H' },
        { "address", required_argument, NULL, ARG_ADDRESS },
        { "no-pager", no_argument, NULL, ARG_NO_PAGER },
        { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
        { "output", required_argument, NULL, 'o' },
        { "quiet", no_argument, NULL, 'q' },
        { "all", no_argument, NULL, 'a' },
        { "property", required_argument, NULL, 'p' },
        { "memory", required_argument, NULL, ARG_MEMORY },
        { "cpu-quota", required_argument, NULL, ARG_CPU_QUOTA },
        { "tasks-max", required_argument, NULL, ARG_TASKS_MAX },
        { "network", required_argument, NULL, ARG_NETWORK },
        { "bridge", required_argument, NULL, ARG_BRIDGE },
        { "port", required_argument, NULL, ARG_PORT },
        { "bind", required_argument, NULL, ARG_BIND },
        { "bind-ro", required_argument, NULL, ARG_BIND_RO },
        { "ephemeral", no_argument, NULL, ARG_EPHEMERAL },
        { "read-only", no_argument, NULL, ARG_READ_ONLY },
        { "private-users", required_argument, NULL, ARG_PRIVATE_USERS },
        { "no-boot", no_argument, NULL, ARG_NO_BOOT },
        { "command", required_argument, NULL, ARG_COMMAND },
        { "setenv", required_argument, NULL, ARG_SETENV },
        { "hostname", required_argument, NULL, ARG_HOSTNAME },
        { "wait", no_argument, NULL, ARG_WAIT },
        { "follow", no_argument, NULL, 'f' },
        { "signal", required_argument, NULL, 's' },
        { "kill-whom", required_argument, NULL, ARG_KILL_WHOM },
        { "uid", required_argument, NULL, ARG_UID },
        { "distribution", required_argument, NULL, ARG_DISTRIBUTION },
        { "release", required_argument, NULL, ARG_RELEASE },
        { "busybox", no_argument, NULL, ARG_BUSYBOX },
        { "lines", required_argument, NULL, 'n' },
        {},
};

static int bad_value(const char *option, const char *value, const char *why)
{
        cli_error(NULL, "invalid value for %s: '%s'%s%s", option, value, why ? ": " : "", strempty(why));
        return -EINVAL;
}

/* Splits a command line the way a shell would for the simple cases: whitespace separates words,
 * single quotes are literal, double quotes allow \" \\ \$ \`, a backslash outside quotes escapes. */
static int split_command_line(const char *s, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *word = NULL;
        size_t n = 0;
        bool in_word = false;
        char quote = 0;
        int r;

        word = malloc(strlen(s) + 1);
        if (!word)
                return -ENOMEM;

        for (const char *p = s;; p++) {
                char c = *p;

                if (c == 0 || (!quote && strchr(" \t\n", c))) {
                        if (c == 0 && quote)
                                return -EINVAL;
                        if (in_word) {
                                word[n] = 0;
                                r = strv_extend(&l, word);
                                if (r < 0)
                                        return r;
                                n = 0;
                                in_word = false;
                        }
                        if (c == 0)
                                break;
                        continue;
                }

                in_word = true;
                if (quote == '\'') {
                        if (c == '\'')
                                quote = 0;
                        else
                                word[n++] = c;
                } else if (c == '\\' && (!quote || (p[1] && strchr("\"\\$`", p[1])))) {
                        if (!p[1])
                                return -EINVAL;
                        word[n++] = *++p;
                } else if (quote == '"' && c == '"')
                        quote = 0;
                else if (!quote && (c == '\'' || c == '"'))
                        quote = c;
                else
                        word[n++] = c;
        }

        if (strv_length(l) == 0)
                return -EINVAL;
        *ret = TAKE_PTR(l);
        return 0;
}

static int parse_limit_option(const char *option, const char *value, int (*parser)(const char *, uint64_t *),
                              uint64_t *ret)
{
        int r = parser(value, ret);
        if (r < 0)
                return bad_value(option, value, strerror(-r));
        return 0;
}

static int add_bind(const char *value, bool read_only)
{
        BindMount *b = reallocarray(arg.binds, arg.n_binds + 1, sizeof(BindMount));
        int r;

        if (!b)
                return -ENOMEM;
        arg.binds = b;
        r = parse_bind(value, read_only, &arg.binds[arg.n_binds]);
        if (r < 0)
                return bad_value(read_only ? "--bind-ro" : "--bind", value, strerror(-r));
        arg.n_binds++;
        return 0;
}

static int add_port(const char *value)
{
        PortForward *p = reallocarray(arg.ports, arg.n_ports + 1, sizeof(PortForward));
        int r;

        if (!p)
                return -ENOMEM;
        arg.ports = p;
        r = parse_port(value, &arg.ports[arg.n_ports]);
        if (r < 0)
                return bad_value("--port", value, strerror(-r));
        arg.n_ports++;
        return 0;
}

/* One option; returns 1 if the program should stop successfully (--help, --version). */
static int parse_option(int c, const char *value, const char *prog)
{
        int r;

        switch (c) {
        case 'h':
                help();
                return 1;
        case ARG_VERSION:
                printf("machinemgr %s\n", PACKAGE_VERSION);
                return 1;
        case 'H':
                arg.host = value;
                return 0;
        case ARG_ADDRESS:
                arg.address = value;
                return 0;
        case ARG_NO_PAGER:
                return 0;
        case ARG_NO_LEGEND:
                arg.no_legend = true;
                return 0;
        case 'o':
                if (streq(value, "table"))
                        arg.output = OUTPUT_TABLE;
                else if (streq(value, "json"))
                        arg.output = OUTPUT_JSON;
                else
                        return bad_value("--output", value, "expected table or json");
                return 0;
        case 'q':
                arg.quiet = true;
                return 0;
        case 'a':
                arg.all = true;
                return 0;
        case 'p':
                return strv_extend(&arg.properties, value);
        case ARG_MEMORY:
                return parse_limit_option("--memory", value, parse_size, &arg.memory_max);
        case ARG_CPU_QUOTA:
                return parse_limit_option("--cpu-quota", value, parse_cpu_quota, &arg.cpu_quota);
        case ARG_TASKS_MAX:
                return parse_limit_option("--tasks-max", value, parse_tasks_max, &arg.tasks_max);
        case ARG_NETWORK:
                if (parse_network_mode(value) < 0)
                        return bad_value("--network", value, "expected none, veth, bridge or host");
                arg.network = value;
                return 0;
        case ARG_BRIDGE:
                arg.bridge = value;
                return 0;
        case ARG_PORT:
                return add_port(value);
        case ARG_BIND:
        case ARG_BIND_RO:
                return add_bind(value, c == ARG_BIND_RO);
        case ARG_EPHEMERAL:
                arg.ephemeral = true;
                return 0;
        case ARG_READ_ONLY:
                arg.read_only = true;
                return 0;
        case ARG_PRIVATE_USERS:
                arg.private_users = value;
                return 0;
        case ARG_NO_BOOT:
                arg.boot = false;
                return 0;
        case ARG_COMMAND:
                strv_free(arg.command);
                arg.command = NULL;
                r = split_command_line(value, &arg.command);
                if (r < 0)
                        return r == -ENOMEM ? r : bad_value("--command", value, "empty or unbalanced quotes");
                return 0;
        case ARG_SETENV:
                if (!strchr(value, '=') || value[0] == '=')
                        return bad_value("--setenv", value, "expected VAR=VALUE");
                return strv_extend(&arg.environment, value);
        case ARG_HOSTNAME:
                arg.hostname = value;
                return 0;
        case ARG_WAIT:
                arg.wait = true;
                return 0;
        case 'f':
                arg.follow = true;
                return 0;
        case 's':
                r = parse_signal(value);
                if (r <= 0)
                        return bad_value("--signal", value, "not a signal");
                arg.signal = r;
                return 0;
        case ARG_KILL_WHOM:
                if (!streq(value, "leader") && !streq(value, "all"))
                        return bad_value("--kill-whom", value, "expected leader or all");
                arg.kill_whom = value;
                return 0;
        case ARG_UID:
                arg.uid = value;
                return 0;
        case ARG_DISTRIBUTION:
                image_arg.distribution = value;
                return 0;
        case ARG_RELEASE:
                image_arg.release = value;
                return 0;
        case ARG_BUSYBOX:
                image_arg.busybox = true;
                return 0;
        case 'n':
                if (safe_atoi(value, &arg.lines) < 0 || arg.lines < 0)
                        return bad_value("--lines", value, "expected a number");
                return 0;
        case '?':
                fprintf(stderr, "Try '%s --help'.\n", prog);
                return -EINVAL;
        default:
                return -EINVAL;
        }
}

/* Options may come anywhere (as with machinectl), except that for "shell" everything after NAME, and for
 * every verb everything after "--", is the command. Positional words go to *ret_positional. */
static int parse_argv(int argc, char *argv[], char ***ret_positional)
{
        _cleanup_strv_free_ char **pos = NULL;
        int r;

        opterr = 1;
        optind = 1;
        while (optind < argc) {
                const char *a = argv[optind];

                if (streq(a, "--")) {
                        optind++;
                        break;
                }
                if (a[0] != '-' || a[1] == 0) {
                        r = strv_extend(&pos, a);
                        if (r < 0)
                                return r;
                        optind++;
                        if (strv_length(pos) == 2 && streq(pos[0], "shell"))
                                break;
                        continue;
                }

                int c = getopt_long(argc, argv, "+hH:o:qap:fs:n:", options, NULL);
                if (c < 0)
                        break;
                r = parse_option(c, optarg, program_invocation_short_name);
                if (r != 0)
                        return r;
        }

        if (optind < argc) {
                char **rest = strv_copy(argv + optind);
                if (!rest)
                        return -ENOMEM;
                strv_free(arg.command);
                arg.command = rest;
        }

        *ret_positional = TAKE_PTR(pos);
        return 0;
}

/* ---- verbs ---- */

typedef struct Verb {
        const char *name;
        unsigned min_args; /* including the verb */
        unsigned max_args; /* 0: any */
        bool names;        /* arguments from the second one on are machine names */
        int (*check)(char **args); /* more checks before any bus call */
        int (*run)(sd_bus *bus, char **args);
} Verb;

static const Verb verbs[] = {
        { "list", 1, 1, false, NULL, verb_list },
        { "status", 2, 0, true, NULL, verb_status },
        { "show", 2, 0, true, NULL, verb_show },
        { "start", 2, 0, true, start_check, verb_start },
        { "poweroff", 2, 0, true, NULL, verb_poweroff },
        { "reboot", 2, 0, true, NULL, verb_reboot },
        { "terminate", 2, 0, true, NULL, verb_terminate },
        { "kill", 2, 0, true, NULL, verb_kill },
        { "set-limit", 3, 0, false, set_limit_check, verb_set_limit },
        { "shell", 2, 2, true, NULL, verb_shell },
        { "console", 2, 2, true, NULL, verb_console },
        { "logs", 2, 2, true, NULL, verb_logs },
        { "enable", 2, 0, true, NULL, verb_enable },
        { "list-images", 1, 1, false, NULL, verb_list_images },
        { "image-status", 2, 0, true, NULL, verb_image_status },
        { "clone", 3, 3, true, NULL, verb_clone },
        { "rename", 3, 3, true, NULL, verb_rename },
        { "remove", 2, 0, true, NULL, verb_remove },
        { "read-only", 2, 3, false, NULL, verb_read_only },
        { "create", 2, 2, true, NULL, verb_create },
        { "import-tar", 3, 3, false, NULL, verb_import_tar },
        { "export-tar", 3, 3, false, NULL, verb_export_tar },
        { "copy-to", 3, 4, false, copy_check, verb_copy_to },
        { "copy-from", 3, 4, false, copy_check, verb_copy_from },
        { "disable", 2, 0, true, NULL, verb_disable },
};

static const Verb *verb_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

/* Checked before any bus call so that bad input never reaches the daemon. */
static int verb_check_args(const Verb *v, char **args)
{
        size_t n = strv_length(args);

        if (n < v->min_args) {
                cli_error(NULL, "%s: missing argument", v->name);
                return -EINVAL;
        }
        if (v->max_args > 0 && n > v->max_args) {
                cli_error(NULL, "%s: too many arguments", v->name);
                return -EINVAL;
        }
        if (v->names)
                STRV_FOREACH(name, args + 1)
                        if (!machine_name_is_valid(*name)) {
                                cli_error(*name, "invalid machine name");
                                return -EINVAL;
                        }
        return v->check ? v->check(args) : 0;
}

static int exit_code_from_errno(int r)
{
        switch (-r) {
        case ERRNO_INVALID:
                return 2;
        case ERRNO_NO_SUCH:
                return 3;
        case ERRNO_DENIED:
        case EPERM:
                return 4;
        default:
                return 1;
        }
}

static void args_free(void)
{
        for (size_t i = 0; i < arg.n_binds; i++)
                bind_mount_done(&arg.binds[i]);
        free(arg.binds);
        free(arg.ports);
        strv_free(arg.properties);
        strv_free(arg.environment);
        strv_free(arg.command);
}

static int run(int argc, char *argv[])
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_strv_free_ char **args = NULL;
        const Verb *v;
        int r;

        r = parse_argv(argc, argv, &args);
        if (r != 0)
                return r > 0 ? 0 : r; /* > 0: --help or --version done */

        if (!args) {
                cli_error(NULL, "no verb given; try --help");
                return -EINVAL;
        }
        v = verb_find(args[0]);
        if (!v) {
                cli_error(NULL, "unknown verb '%s'; try --help", args[0]);
                return -EINVAL;
        }
        /* Only start and shell take a command; for the others "--" just ends the options. */
        if (arg.command && v->run != verb_start && v->run != verb_shell) {
                STRV_FOREACH(a, arg.command)
                        if (strv_extend(&args, *a) < 0)
                                return -ENOMEM;
                strv_free(arg.command);
                arg.command = NULL;
        }
        r = verb_check_args(v, args);
        if (r < 0)
                return r;

        r = sd_bus_error_add_map(machinemgr_errors);
        if (r < 0)
                return r;

        /* enable/disable work on unit files, not on the daemon. */
        if (v->run != verb_enable && v->run != verb_disable && v->run != verb_create && v->run != verb_import_tar &&
            v->run != verb_export_tar) {
                r = bus_connect(&bus);
                if (r < 0)
                        return r;
        }
        return v->run(bus, args);
}

int main(int argc, char *argv[])
{
        int r = run(argc, argv);

        args_free();
        /* r >= 0 is an exit status: 0, or a payload's (shell, start --no-boot --wait). */
        return r < 0 ? exit_code_from_errno(r) : r;
}
