/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The host side of a machine's network (SPEC §3 [Network]): the veth pair (host "ve-NAME", guest
 * "host0"), its bridge port, and the port forwarders. The guest side (host0 up, Address=) is set up by
 * the container's child in netns.c. What was created is recorded in the state file, so that a
 * restarted daemon re-creates the forwarders and still removes the links at stop. */

#include <stdio.h>
#include <systemd/sd-bus.h>

#include "settings.h"

typedef struct Machine Machine;

#define HOST0_IFNAME "host0"

/* "ve-NAME", or "ve-PREFIX-HASH" when NAME is too long for IFNAMSIZ or has characters an interface
 * name cannot have. buf must hold IFNAMSIZ bytes. */
void network_host_ifname(const char *machine_name, char *buf);

/* Checks the [Network] settings of a start request after merging; -EINVAL with a malloc'd message
 * (no machine name in it) for the user. Looks the bridge up in the daemon's netns. */
int network_check_settings(const Settings *s, char **ret_message);

/* Checks one "ADDR/PREFIX" (IPv4 or IPv6). */
bool network_address_is_valid(const char *s);

/* Between clone and "go": creates the veth pair with its guest end in pid's netns, plugs the host end
 * into the bridge, brings it up, and opens the port forwarders (once per machine: a reboot keeps
 * them). On failure the reason is in m->spawn_failure and nothing is left behind. */
int network_machine_pre_start(Machine *m, pid_t pid);

/* Removes the host link and the forwarders (the machine is gone). */
void network_machine_stop(Machine *m);
/* Frees memory and closes the forwarders' sockets but leaves the link alone (the daemon exits). */
void network_machine_free(Machine *m);

/* State file lines (NET_*) and re-adoption. */
void network_machine_serialize(Machine *m, FILE *f);
int network_machine_deserialize_item(Machine *m, const char *key, const char *value);
int network_machine_adopt(Machine *m);

/* Properties: the host-side ifindexes (ai) and the guest's addresses read from its netns (a(iay)). */
int network_machine_append_ifindexes(Machine *m, sd_bus_message *reply);
int network_machine_append_addresses(Machine *m, sd_bus_message *reply);

/* StartMachine options Network s, Bridge s, Address as, Port a(sqq), ResolvConf s: 1 read, 0 not a
 * network option, <0 error (error set for a bad value). */
int network_read_start_option(sd_bus_message *message, const char *key, Settings *s, sd_bus_error *error);
