/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Port forwarders in the daemon's event loop: each listens on 0.0.0.0:PORT and [::]:PORT (IPV6_V6ONLY)
 * in the daemon's netns — so the host's loopback reaches it too — and relays to sockets the owner opens
 * (in the guest's netns). No process or thread per forward, connection or flow.
 *
 * TCP: each accepted connection is relayed with splice() through pipes in both directions (64 KiB each,
 * so a peer that never reads costs two pipes and the kernel's socket buffers, nothing more). Hostile
 * clients and guests are bounded: one dispatch moves at most 128 KiB per direction of a connection; at
 * most 256 connections per forwarder and 32 per client address (IPv6: per /64), the rest are reset at
 * once; a connection the guest has not accepted within 10 s, or that moved no byte for 10 min, is closed
 * (MACHINEMGR_TCP_CONNECT_SEC and MACHINEMGR_TCP_IDLE_SEC override them, for tests).
 * UDP: each client address (ip:port) is a "flow" with a datagram socket of its own connected to the
 * guest, so the guest's replies can be told apart and sent back to that client from the address it sent
 * to. Flows end after PORTFWD_UDP_IDLE_USEC without a datagram either way, and at most
 * PORTFWD_UDP_FLOWS_MAX exist per forwarder (the least recently used one makes room for a new client;
 * a client address that has 32 flows or more makes room from its own, so that one client with many
 * ports cannot push out the others). Each socket handles at most 32 datagrams or 256 KiB per dispatch.
 * MACHINEMGR_UDP_IDLE_SEC in the daemon's environment overrides the idle timeout (for tests). */

#include <stdint.h>
#include <systemd/sd-event.h>

#define PORTFWD_UDP_IDLE_USEC (60ULL * 1000000ULL)
#define PORTFWD_UDP_FLOWS_MAX 256

typedef struct PortForwarder PortForwarder;

/* Returns a non-blocking socket of this type (SOCK_STREAM or SOCK_DGRAM) on which connect() to the
 * target was done (a datagram socket) or started (a stream socket), or -errno. */
typedef int (*PortForwardOpen)(int type, void *userdata);

/* protocol: IPPROTO_TCP or IPPROTO_UDP. */
int portfwd_new(sd_event *event, int protocol, uint16_t host_port, PortForwardOpen open_target, void *userdata,
                PortForwarder **ret);
PortForwarder *portfwd_free(PortForwarder *f);
/* Drops every UDP flow: their sockets were opened in a guest netns that is gone (the guest rebooted into
 * a new one), and a client that keeps sending would keep such a flow alive forever. */
void portfwd_drop_flows(PortForwarder *f);
