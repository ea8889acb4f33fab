/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The machinemgr CLI: shared state between the verb files. Every verb returns a negative errno on
 * failure (already logged, mapped to an exit code by main) or an exit status >= 0. */

#include <inttypes.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-names.h"
#include "settings.h"
#include "util.h"

#define MM_SERVICE MM_BUS_NAME
#define MM_PATH MM_BUS_PATH
#define MM_MANAGER MM_BUS_MANAGER_INTERFACE
#define MM_MACHINE MM_BUS_MACHINE_INTERFACE
#define MM_MACHINE_PREFIX MM_BUS_MACHINE_PREFIX

typedef enum OutputMode {
        OUTPUT_TABLE,
        OUTPUT_JSON,
} OutputMode;

typedef struct Args {
        const char *address;
        const char *host;
        bool no_legend;
        OutputMode output;
        bool quiet;
        bool all;
        char **properties; /* show -p */

        /* start; limits are LIMIT_UNSET / LIMIT_INFINITY as in settings.h */
        uint64_t memory_max;
        uint64_t cpu_quota;
        uint64_t tasks_max;
        const char *network;
        const char *bridge;
        PortForward *ports;
        size_t n_ports;
        BindMount *binds;
        size_t n_binds;
        int ephemeral; /* -1 unset */
        int read_only;
        int boot;
        const char *private_users;
        const char *hostname;
        char **environment;
        bool wait;
        bool follow; /* start --follow, logs -f */

        /* kill */
        int signal;
        const char *kill_whom;

        /* shell */
        const char *uid;

        /* logs */
        int lines; /* -1: all */

        /* after "--" (start) or after NAME (shell) */
        char **command;
} Args;

extern Args arg;

/* Mapped from D-Bus error names (see machinemgr.c) so that exit codes follow from the errno. */
#define ERRNO_NO_SUCH ESRCH
#define ERRNO_INVALID EINVAL
#define ERRNO_DENIED EACCES

void cli_error(const char *machine, const char *fmt, ...) _printf_(2, 3);
/* Logs "NAME: WHAT: reason" for a failed call and returns the errno its error name maps to. */
int cli_bus_error(const char *machine, const char *what, const sd_bus_error *e, int r);
int cli_bus_parse_error(int r);

int bus_machine_path(sd_bus *bus, const char *name, char **ret_path, sd_bus_error *error);
int bus_machine_exit(sd_bus *bus, const char *name, char **ret_result, int *ret_status, uint64_t *ret_ts,
                     char **ret_message, sd_bus_error *error);

/* Verbs, and the checks some of them make before connecting */
int start_check(char **args);
int set_limit_check(char **args);
int verb_list(sd_bus *bus, char **args);
int verb_status(sd_bus *bus, char **args);
int verb_show(sd_bus *bus, char **args);
int verb_start(sd_bus *bus, char **args);
int verb_poweroff(sd_bus *bus, char **args);
int verb_reboot(sd_bus *bus, char **args);
int verb_terminate(sd_bus *bus, char **args);
int verb_kill(sd_bus *bus, char **args);
int verb_set_limit(sd_bus *bus, char **args);
int verb_shell(sd_bus *bus, char **args);
int verb_console(sd_bus *bus, char **args);
int verb_logs(sd_bus *bus, char **args);
int verb_enable(sd_bus *bus, char **args);
int verb_disable(sd_bus *bus, char **args);

/* machinemgr-output.c */
typedef struct Table Table;
Table *table_new(size_t n_columns, ...);
void table_free(Table *t);
static inline void table_freep(Table **t)
{
        table_free(*t);
}
#define _cleanup_table_ _cleanup_(table_freep)
int table_add_row(Table *t, ...); /* n_columns strings; NULL prints "-" */
size_t table_rows(const Table *t);
void table_print(const Table *t, FILE *f);
void json_print_string(FILE *f, const char *s);

/* machinemgr-net.c: the Addresses property, a(iay), as "10.0.0.2 fd00::2" / ["10.0.0.2","fd00::2"]. */
int format_addresses(sd_bus_message *m, FILE *text, FILE *json);
int machine_get_addresses(sd_bus *bus, const char *path, char **ret); /* space-separated */
char *format_timestamp(char *buf, size_t len, uint64_t usec);
char *format_timespan(char *buf, size_t len, uint64_t usec);
char *format_bytes(char *buf, size_t len, uint64_t bytes);

/* machinemgr-journal.c */
int show_journal_lines(const char *name, int n_lines, bool follow, const char *indent);

/* machinemgr-tty.c: relays local stdin/stdout to fd until the callback says stop or fd hits EOF. */
typedef struct Relay Relay;
int relay_new(sd_event *e, int fd, bool escape_detach, Relay **ret);
Relay *relay_free(Relay *r);
static inline void relay_freep(Relay **r)
{
        relay_free(*r);
}
void relay_drain(Relay *r); /* flush whatever fd still has for us, then stop */
bool relay_done(const Relay *r);
/* Not sd_event_loop(): its exit would also close the attached bus, which we still need afterwards. */
int event_run_until(sd_event *e, const bool *done);
int terminal_raw(int fd, void **ret_saved);
void terminal_restore(int fd, void *saved);

/* machinemgr-query.c: GetMachineExit's result in words, e.g. "exited with status 1". */
int machine_exit_describe(const char *result, int status, const char *message, char **ret);
