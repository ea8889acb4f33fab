/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The guest's sd_notify socket: RUNTIME_DIR/host/NAME/notify on the host, /run/host/notify in the guest
 * (the whole directory is bind-mounted, so a restarted daemon can bind a fresh socket at the same path and
 * the guest still reaches it).
 *
 * Every process of the guest can write to it, so everything read from it is hostile. What reaches the
 * handler (SECURITY.md, "notify socket"):
 *   - only datagrams whose kernel-supplied credentials (SO_PASSCRED) name the sender set with
 *     notify_set_sender() — the guest's init, as systemd's NotifyAccess=main; all others are dropped;
 *   - datagrams over NOTIFY_DATAGRAM_MAX bytes, with NUL bytes, with file descriptors or with truncated
 *     control data are dropped (file descriptors are refused by the kernel where it can, closed otherwise);
 *   - READY=1 and STOPPING=1: at once, always (state changes are never lost to a rate limit);
 *   - STATUS=TEXT: TEXT cut to NOTIFY_STATUS_MAX bytes of valid UTF-8 with control characters and invalid
 *     sequences replaced by '?'; coalesced: at most one call per NOTIFY_STATUS_INTERVAL_USEC, the latest
 *     text wins, an unchanged text is not passed again;
 *   - nothing else (MAINPID=, ERRNO=, FDSTORE=, … are ignored).
 * Work is bounded per machine: NOTIFY_DISPATCH_BUDGET datagrams per event-loop iteration, at most
 * NOTIFY_READ_RATE datagrams read per second from anyone (past that the socket is left alone for a moment
 * and the guest's senders wait in their own sendmsg()), and datagrams from init beyond NOTIFY_ACCEPT_RATE/s
 * (burst NOTIFY_ACCEPT_BURST) lose their STATUS=. Drops are counted and logged at most once per
 * NOTIFY_LOG_INTERVAL_USEC per machine. */

#include <sys/types.h>
#include <systemd/sd-event.h>

#define NOTIFY_DATAGRAM_MAX 4096u
#define NOTIFY_STATUS_MAX 1024u
#define NOTIFY_STATUS_INTERVAL_USEC (100 * 1000u)
#define NOTIFY_DISPATCH_BUDGET 16u
#define NOTIFY_READ_RATE 1000u
#define NOTIFY_ACCEPT_RATE 50u
#define NOTIFY_ACCEPT_BURST 100u
#define NOTIFY_LOG_INTERVAL_USEC (30 * 1000 * 1000u)

typedef struct Notify Notify;

/* key is "READY", "STOPPING" (value "1") or "STATUS". value stays valid until the handler returns. The
 * handler must not free the Notify. */
typedef void (*notify_handler_t)(const char *key, const char *value, void *userdata);

/* Binds DIR/notify (replacing a dead socket of a previous daemon there). Accepts nothing until
 * notify_set_sender(). */
int notify_new(sd_event *e, const char *dir, notify_handler_t handler, void *userdata, Notify **ret);
/* Adopts an already bound notify socket (kept in the fd store across a daemon restart, with whatever the
 * guest sent meanwhile still queued). Takes ownership of fd, also on failure. */
int notify_new_from_fd(sd_event *e, int fd, notify_handler_t handler, void *userdata, Notify **ret);
/* The socket, still owned by n (to put a duplicate into the fd store). */
int notify_fd(Notify *n);
/* The only process whose datagrams are accepted: the guest's init, as a PID of our pid namespace (the
 * kernel translates the sender's). 0: accept nothing. Call after every spawn and re-adoption. */
void notify_set_sender(Notify *n, pid_t leader);
Notify *notify_free(Notify *n);
