/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"

#include <stdarg.h>
#include <systemd/sd-journal.h>

static const char *program = "machinemgr";
static int max_level = LOG_INFO;
static int journal_state = -1; /* -1 unknown, 0 no journal socket, 1 journal present */

void log_set_program(const char *name)
{
        program = name;
}

void log_set_max_level(int level)
{
        max_level = level;
}

int log_get_max_level(void)
{
        return max_level;
}

static bool journal_available(void)
{
        /* Re-checked until found: a journald started after us should still get our messages. */
        if (journal_state != 1)
                journal_state = access("/run/systemd/journal/socket", W_OK) == 0;
        return journal_state == 1;
}

int log_internal(int level, int error, const char *machine, const char *file, int line, const char *format, ...)
{
        int saved = errno;
        int err = error < 0 ? -error : error;

        if (level > max_level)
                return -err;

        char buf[2048];
        va_list ap;
        va_start(ap, format);
        errno = err; /* so %m names our error, not whatever errno held */
        vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        if (machine)
                fprintf(stderr, "%s: %s: %s\n", program, machine, buf);
        else
                fprintf(stderr, "%s: %s\n", program, buf);

        /* The daemon's stderr is already the journal under systemd; only machine-tagged messages are
         * worth a structured duplicate there, because they carry MACHINEMGR_MACHINE=. */
        if (machine && journal_available()) {
                char codeline[32];
                snprintf(codeline, sizeof codeline, "CODE_LINE=%d", line);
                sd_journal_send("MESSAGE=%s: %s", machine, buf, "PRIORITY=%d", level, "MACHINEMGR_MACHINE=%s",
                                machine, "SYSLOG_IDENTIFIER=%s", program, "CODE_FILE=%s", file, "%s", codeline,
                                err ? "ERRNO=%d" : NULL, err, NULL);
        }
        errno = saved;
        return -err;
}
