/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A TCP port forwarder in the daemon's event loop: listens on 0.0.0.0:PORT and [::]:PORT (IPV6_V6ONLY)
 * in the daemon's netns — so the host's loopback reaches it too — and relays each accepted connection
 * to a socket the owner opens (in the guest's netns), with splice() through pipes in both directions.
 * No process or thread per forward or per connection. */

#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct PortForwarder PortForwarder;

/* Returns a non-blocking stream socket on which connect() to the target was started (or -errno). */
typedef int (*PortForwardOpen)(void *userdata);

int portfwd_new(sd_event *event, uint16_t host_port, PortForwardOpen open_target, void *userdata,
                PortForwarder **ret);
PortForwarder *portfwd_free(PortForwarder *f);
