#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# TasksMax= is enforced: a bounded fork loop in the guest stops at the limit, the host and the daemon
# carry on.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
A=$(mm_name tasks)
mm_busybox_image "$A"

assert_exit 0 mm_start_busybox "$A" "sleep 100000" --tasks-max=20
HIER=$(mm_controller_hier pids)
CG=$(mm_scope_dir "$A" "$HIER")
assert_ne "machine has a pids cgroup in $HIER" "" "$CG"
assert_eq "pids.max" 20 "$(cat "$CG/pids.max" 2>/dev/null || true)"

# 60 background sleeps; each fork that fails is counted instead of aborting the loop.
assert_exit 0 mm shell "$A" sh -c '
        ok=0 failed=0
        for i in $(seq 60); do
                if (sleep 30 &) 2>/dev/null; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
        done
        echo "$ok $failed"'
read -r ok failed <<<"${MM_STDOUT:-0 0}"
assert_true "some forks succeeded ($ok)" test "${ok:-0}" -gt 0
assert_true "some forks failed ($failed)" test "${failed:-0}" -gt 0
assert_true "tasks stayed at or below 20" test "$(cat "$CG/pids.current" 2>/dev/null || echo 999)" -le 20
if [[ -f "$CG/pids.events" ]]; then
        # v1 counts a failed fork only in the forking cgroup (the guest runs in $CG/payload): sum the subtree.
        assert_true "pids.events counts hits of the limit" \
                test "$(find "$CG" -name pids.events -exec awk '$1 == "max" {n += $2} END {print n + 0}' {} +)" -gt 0
fi
assert_true "daemon alive" mm_pid_alive "$MM_DAEMON_PID"
assert_exit 0 mm list
assert_true "host can still fork" true

assert_exit 0 mm terminate "$A"
mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$A' ]" || true
assert_no_leftovers "$A"
mm_finish
