#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A Debian guest boots systemd to READY=1 (`start --wait`), is listed as running with its leader, and
# a clean poweroff leaves nothing behind.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
D=$(mm_name deb)
mm_debian_image "$D"

assert_exit 0 mm start "$D" --wait
assert_eq "state after --wait" "State=running" "$(mm show "$D" -p State 2>/dev/null || true)"
LEADER=$(mm_leader "$D" || true)
assert_true "leader $LEADER is alive" mm_pid_alive "${LEADER:-0}"
assert_eq "leader runs systemd" systemd "$(cat "/proc/${LEADER:-0}/comm" 2>/dev/null || true)"
assert_contains "listed" "$(mm list --no-legend 2>/dev/null || true)" "$D"
assert_contains "leader in list" "$(mm list --no-legend 2>/dev/null | grep -F "$D" || true)" "$LEADER"
assert_eq "state file exists while running" yes "$([[ -e $MM_RUN/machines/$D ]] && echo yes || echo no)"
assert_ne "has a memory cgroup" "" "$(mm_scope_dir "$D" "$(mm_controller_hier memory)")"
# systemd inside got far enough to run its own units.
assert_exit 0 mm shell "$D" systemctl is-system-running --wait

# Reboot: SIGINT to systemd, whose reboot(2) ends init with SIGHUP; the same machine comes back.
leader_changed() { local l; l=$(mm_leader "$D" 2>/dev/null) && [[ -n "$l" && "$l" != "$LEADER" ]]; }
assert_exit 0 mm reboot "$D"
assert_true "a new leader after reboot" mm_wait_for 60 leader_changed
assert_true "running again after reboot" mm_wait_for 60 sh -c \
        "[ \"\$(MACHINEMGR_ADDRESS=unix:path=$MM_RUN/private $MM_BUILD_ROOT/tools/machinemgr show $D -p State)\" = State=running ]"
assert_true "old leader gone" mm_pid_gone "$LEADER"
LEADER=$(mm_leader "$D" || true)
assert_exit 0 mm shell "$D" systemctl is-system-running --wait

assert_exit 0 mm poweroff "$D" --wait
assert_true "leader gone after poweroff" mm_wait_for 5 mm_pid_gone "$LEADER"
assert_eq "no longer listed" "" "$(mm list --no-legend 2>/dev/null | grep -F "$D" || true)"
assert_no_leftovers "$D"

mm_finish
