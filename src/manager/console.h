/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The guest's /dev/console is a pty slave; the daemon holds the master, reads it in the event loop and
 * sends each line to the journal (SPEC §7): MESSAGE, PRIORITY=6, MACHINEMGR_MACHINE=NAME,
 * SYSLOG_IDENTIFIER=NAME, OBJECT_PID=<leader>. Partial lines are flushed after a short delay, over-long
 * lines are split, never dropped; bytes (ANSI colour included) are kept as written.
 * Interactive attach: clients get one end of a socketpair; the daemon relays console output to every
 * attached client and client input to the console, so the journal never misses a line. */

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

typedef struct Console Console;

/* Opens a new pty master (non-blocking, CLOEXEC); does not start reading yet. */
int console_new(sd_event *e, const char *machine_name, Console **ret);
/* Wraps an existing master (re-adoption after a daemon restart): sets O_NONBLOCK and FD_CLOEXEC, leaves the
 * guest's termios alone. On success the Console owns master_fd; on failure the caller still does. */
int console_new_from_fd(sd_event *e, const char *machine_name, int master_fd, Console **ret);

const char *console_slave_path(Console *c); /* "/dev/pts/N" on the host */
/* Only for the fd store and for ioctls: anything else reading the master steals lines from the journal
 * (attach with console_attach() instead). */
int console_master_fd(Console *c);
void console_set_leader(Console *c, pid_t leader); /* for OBJECT_PID= */

/* Starts forwarding to the journal from the event loop. */
int console_start(Console *c);

/* A new client: returns a socket fd; what the guest writes is copied to it, what the client writes goes
 * to the console. */
int console_attach(Console *c, int *ret_fd);

/* The last n lines (n <= 64) written to the console, oldest first; a strv. For `status`. */
int console_last_lines(Console *c, unsigned n, char ***ret);

/* Reads whatever is still buffered and flushes a partial line: called before the machine goes away. */
void console_flush(Console *c);

Console *console_free(Console *c);
