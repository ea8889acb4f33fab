/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* logs (the console from the journal), and enable/disable (machinemgr@NAME.service at boot). */

#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "machinemgr.h"
#include "names.h"

static void print_message(sd_journal *j, const char *indent)
{
        const void *data;
        size_t len;

        if (sd_journal_get_data(j, "MESSAGE", &data, &len) < 0 || len < strlen("MESSAGE="))
                return;
        /* As written: binary messages and ANSI colour included. */
        fputs(indent, stdout);
        fwrite((const char *)data + strlen("MESSAGE="), 1, len - strlen("MESSAGE="), stdout);
        fputc('\n', stdout);
}

/* Positions j so that the next sd_journal_next() returns the first of the last n entries. */
static int seek_last(sd_journal *j, int n)
{
        int r;

        if (n < 0)
                return sd_journal_seek_head(j);
        r = sd_journal_seek_tail(j);
        if (r < 0)
                return r;
        r = sd_journal_previous_skip(j, (uint64_t)n + 1);
        if (r < 0)
                return r;
        /* Fewer entries than asked: start at the very beginning. */
        return r <= n ? sd_journal_seek_head(j) : 0;
}

int show_journal_lines(const char *name, int n_lines, bool follow, const char *indent)
{
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        _cleanup_free_ char *match = NULL;
        int r;

        if (n_lines == 0 && !follow)
                return 0;
        if (asprintf(&match, "MACHINEMGR_MACHINE=%s", name) < 0)
                return -ENOMEM;

        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
        if (r >= 0)
                r = sd_journal_add_match(j, match, 0);
        if (r >= 0)
                r = seek_last(j, n_lines);
        if (r < 0) {
                cli_error(name, "failed to read the journal: %s", strerror(-r));
                return r;
        }

        for (bool first = true;; first = false) {
                r = sd_journal_next(j);
                if (r < 0) {
                        cli_error(name, "failed to read the journal: %s", strerror(-r));
                        return r;
                }
                if (r > 0) {
                        /* status: a blank line between the summary and the console, if there is any */
                        if (first && *indent)
                                putchar('\n');
                        print_message(j, indent);
                        continue;
                }
                if (!follow)
                        return 0;
                fflush(stdout);
                r = sd_journal_wait(j, UINT64_MAX);
                if (r < 0) {
                        cli_error(name, "failed to wait for the journal: %s", strerror(-r));
                        return r;
                }
        }
}

int verb_logs(sd_bus *bus, char **args)
{
        /* Like journalctl: everything, or the last 10 lines before following. */
        int n = arg.lines >= 0 ? arg.lines : arg.follow ? 10 : -1;

        return show_journal_lines(args[1], n, arg.follow, "");
}

/* ---- enable / disable ---- */

#define UNIT_TEMPLATE "/usr/lib/systemd/system/machinemgr@.service"
#define WANTS_DIR "/etc/systemd/system/machinemgr.target.wants"

/* "machinemgr@NAME.service", NAME escaped as systemd escapes unit names. */
static int instance_unit_name(const char *name, char **ret)
{
        _cleanup_free_ char *scope = NULL;
        const char *p, *e;
        int r;

        /* machine_scope_unit_name() escapes NAME the same way; reuse it instead of a second escaper. */
        r = machine_scope_unit_name(name, &scope);
        if (r < 0)
                return r;
        p = scope + strlen("machine-");
        e = strrchr(p, '.');
        if (!e)
                return -EINVAL;
        return asprintf(ret, "machinemgr@%.*s.service", (int)(e - p), p) < 0 ? -ENOMEM : 0;
}

static int systemd_unit_files(char **units, bool enable)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = arg.host ? sd_bus_open_system_remote(&bus, arg.host) : sd_bus_open_system(&bus);
        if (r < 0) {
                cli_error(NULL, "failed to connect to the system bus: %s", strerror(-r));
                return r;
        }
        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager",
                                           enable ? "EnableUnitFiles" : "DisableUnitFiles");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, units);
        if (r >= 0)
                r = enable ? sd_bus_message_append(m, "bb", 0, 0) : sd_bus_message_append(m, "b", 0);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &error, NULL);
        if (r < 0)
                return cli_bus_error(NULL, enable ? "failed to enable" : "failed to disable", &error, r);

        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Reload", &error, NULL, "");
        if (r < 0)
                return cli_bus_error(NULL, "failed to reload systemd", &error, r);
        return 0;
}

/* Without systemd running, do what "systemctl enable" would have written. */
static int symlink_unit(const char *unit, bool enable)
{
        _cleanup_free_ char *link = NULL;

        if (asprintf(&link, "%s/%s", WANTS_DIR, unit) < 0)
                return -ENOMEM;
        if (enable) {
                int r = mkdir_p(WANTS_DIR, 0755);
                if (r < 0) {
                        cli_error(NULL, "failed to create %s: %s", WANTS_DIR, strerror(-r));
                        return r;
                }
                if (symlink(UNIT_TEMPLATE, link) < 0 && errno != EEXIST) {
                        r = negative_errno();
                        cli_error(NULL, "failed to create %s: %s", link, strerror(-r));
                        return r;
                }
                if (!arg.quiet)
                        printf("Created symlink %s -> %s.\n", link, UNIT_TEMPLATE);
                return 0;
        }
        if (unlink(link) < 0) {
                if (errno == ENOENT)
                        return 0;
                int r = negative_errno();
                cli_error(NULL, "failed to remove %s: %s", link, strerror(-r));
                return r;
        }
        if (!arg.quiet)
                printf("Removed %s.\n", link);
        return 0;
}

static int enable_disable(char **names, bool enable)
{
        _cleanup_strv_free_ char **units = NULL;
        int r;

        STRV_FOREACH(name, names) {
                char *unit;
                r = instance_unit_name(*name, &unit);
                if (r < 0)
                        return r;
                if (strv_push(&units, unit) < 0) {
                        free(unit);
                        return -ENOMEM;
                }
        }

        if (arg.host || sd_booted() > 0)
                return systemd_unit_files(units, enable);

        STRV_FOREACH(unit, units) {
                r = symlink_unit(*unit, enable);
                if (r < 0)
                        return r;
        }
        return 0;
}

int verb_enable(sd_bus *bus, char **args)
{
        return enable_disable(args + 1, true);
}

int verb_disable(sd_bus *bus, char **args)
{
        return enable_disable(args + 1, false);
}
