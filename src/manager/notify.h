/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The guest's sd_notify socket: RUNTIME_DIR/host/NAME/notify on the host, /run/host/notify in the guest
 * (the whole directory is bind-mounted, so a restarted daemon can bind a fresh socket at the same path and
 * the guest still reaches it). */

#include <systemd/sd-event.h>

typedef struct Notify Notify;

/* Called for each NAME=VALUE assignment of a datagram (READY=1, STATUS=…, STOPPING=1, …). */
typedef void (*notify_handler_t)(const char *key, const char *value, void *userdata);

int notify_new(sd_event *e, const char *dir, notify_handler_t handler, void *userdata, Notify **ret);
Notify *notify_free(Notify *n);
