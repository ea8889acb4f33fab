/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* CopyToMachine / CopyFromMachine (SPEC §5, §6): files and directory trees in and out of a running guest.
 *
 * Every path inside the guest is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) below
 * the guest's root (/proc/LEADER/root), and below that only single names are ever looked up, relative to
 * directory fds and never following a symlink: a guest's symlink (to /, to ../.., swapped in while the
 * copy runs) cannot make the daemon read or write outside the guest. The paths are checked in the daemon,
 * so a bad one gets org.machinemgr1.Error.InvalidArgument at once; the copy itself runs in a worker
 * process (operation.c) and the reply comes when it is done. A destination ending in "/" is a directory
 * to copy into; otherwise it is the new name, and must not exist. */

#include <systemd/sd-bus.h>

int method_copy_to_machine(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_copy_from_machine(sd_bus_message *message, void *userdata, sd_bus_error *error);
