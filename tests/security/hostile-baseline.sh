#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The hostile-guest battery's smoke test: with an attacker that does nothing harmful (it sleeps), the
# probes of tests/security/lib-hostile.sh pass: `machinemgr list` answers fast, the daemon's RSS stays
# flat, the victim's console ticks reach the journal. Proves the probes work before any attack uses them.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

hostile_setup
A=$(mm_name idle)
assert_exit 0 hostile_attacker "$A"
LEADER=$(mm_leader "$A" || echo 0)
assert_ne "the attacker is unprivileged (PrivateUsers=pick)" "0 0 4294967295" \
        "$(awk '{print $1, $2, $3; exit}' "/proc/$LEADER/uid_map" 2>/dev/null || true)"

hostile_probe_start
sleep 5
hostile_probe_check "baseline"

hostile_end "$A"
mm_finish
