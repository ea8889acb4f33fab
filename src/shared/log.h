/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Logging: one line to stderr ("machinemgrd: NAME: message"), and, when a journal socket exists, a
 * structured journal entry carrying MACHINEMGR_MACHINE= for messages about one machine.
 * Every log_* call returns -abs(error) so "return log_error_errno(r, ...)" logs once and propagates. */

#include <syslog.h>
#include "util.h"

void log_set_program(const char *name);
void log_set_max_level(int level);
int log_get_max_level(void);

/* error: 0 or an errno (either sign); "%m" in format expands to strerror(error). */
int log_internal(int level, int error, const char *machine, const char *file, int line, const char *format,
                 ...) _printf_(6, 7);

#define log_full_errno(level, error, ...) log_internal(level, error, NULL, __FILE__, __LINE__, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)

/* Messages about one machine: tagged MACHINEMGR_MACHINE=name in the journal. */
#define log_machine_full(level, error, name, ...) log_internal(level, error, name, __FILE__, __LINE__, __VA_ARGS__)
#define log_machine_error_errno(name, error, ...) log_machine_full(LOG_ERR, error, name, __VA_ARGS__)
#define log_machine_warning_errno(name, error, ...) log_machine_full(LOG_WARNING, error, name, __VA_ARGS__)
#define log_machine_info(name, ...) log_machine_full(LOG_INFO, 0, name, __VA_ARGS__)
#define log_machine_debug(name, ...) log_machine_full(LOG_DEBUG, 0, name, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
