/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Brings up "lo" in the calling process's network namespace (a fresh netns has it down). */
int netns_loopback_up(void);
