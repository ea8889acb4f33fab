#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# After poweroff, terminate, or the guest's init exiting on its own, nothing is left: processes,
# cgroup dirs, mounts, state files.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
A=$(mm_name clean)
mm_busybox_image "$A"

# check_gone HOW LEADER: the machine is gone from list, state, cgroups, mounts; its leader is dead.
check_gone() {
        local how=$1 leader=$2
        assert_true "$how: state file removed" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$A' ]"
        assert_true "$how: leader $leader dead" mm_wait_for 5 mm_pid_gone "$leader"
        assert_eq "$how: not listed" "" "$(mm list --no-legend 2>/dev/null | grep -F "$A" || true)"
        assert_no_leftovers "$A"
}

# A payload with a child that ignores SIGTERM, so there is more than one process to clean up.
CMD="sh -c '(trap \"\" TERM; exec sleep 100000) & exec sleep 100000'"

assert_exit 0 mm_start_busybox "$A" "$CMD"
L=$(mm_leader "$A" || echo 0)
assert_exit 0 mm poweroff "$A" --wait
check_gone poweroff "$L"

assert_exit 0 mm_start_busybox "$A" "$CMD"
L=$(mm_leader "$A" || echo 0)
assert_exit 0 mm terminate "$A"
check_gone terminate "$L"

assert_exit 0 mm_start_busybox "$A" "sleep 1"
L=$(mm_leader "$A" || echo 0)
check_gone "init exits by itself" "$L"

assert_exit 0 mm_start_busybox "$A" "$CMD"
L=$(mm_leader "$A" || echo 0)
assert_exit 0 mm kill "$A" --kill-whom=leader --signal=SIGKILL
check_gone "init killed" "$L"

mm_finish
