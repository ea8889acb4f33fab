/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The machine object persisted whole (machine-state.c): settings and runtime state in one file, so that a
 * restarted daemon's machine is indistinguishable from the one that wrote it. */

#include "machine.h"

int machine_state_save(Machine *m);
/* Fills m (whose name and state_file are set) from its state file; -EBADMSG if it is not one of ours. */
int machine_state_load(Machine *m);
