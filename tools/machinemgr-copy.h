/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* copy-to NAME HOSTPATH [GUESTPATH], copy-from NAME GUESTPATH [HOSTPATH]: CopyToMachine/CopyFromMachine.
 * A relative host path is taken from the current directory; a guest path must be absolute; the missing
 * one defaults to the other. A destination ending in "/" (or, for copy-from, an existing host directory)
 * receives the source under its own name. */

#include <systemd/sd-bus.h>

int copy_check(char **args);
int verb_copy_to(sd_bus *bus, char **args);
int verb_copy_from(sd_bus *bus, char **args);
