/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* PrivateUsers= for a Machine (userns.h has the mechanics): the range is allocated before each spawn
 * and kept until the machine is finished; the container's cgroup2 directory is handed to the range's
 * root in pre_start. */

#include <stdio.h>
#include <systemd/sd-bus.h>

#include "machine.h"

/* Reads m->settings->private_users and records the range (m->uid_shift/uid_range). A fixed range that
 * overlaps another machine's is org.machinemgr1.Error.InvalidArgument. */
int userns_machine_prepare(Machine *m, MachineError *error);

/* After the cgroup exists (both backends): chown it to the range's root. */
int userns_machine_pre_start(Machine *m);

/* The machine is gone: its range is free again. */
void userns_machine_stop(Machine *m);

/* State file: "USERNS_SHIFT=" / "USERNS_RANGE=" lines. */
void userns_machine_serialize(Machine *m, FILE *f);
int userns_machine_deserialize_item(Machine *m, const char *key, const char *value);
