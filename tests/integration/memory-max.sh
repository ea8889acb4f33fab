#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# MemoryMax= is enforced: a memory hog in the guest is OOM-killed inside the machine's own cgroup,
# while the machine's init, the daemon and the host carry on.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
A=$(mm_name mem)
mm_busybox_image "$A"
mm_settings "$A" "[Resources]
MemoryMax=64M"

assert_exit 0 mm_start_busybox "$A"
LEADER=$(mm_leader "$A" || echo 0)
HIER=$(mm_controller_hier memory)
CG=$(mm_scope_dir "$A" "$HIER")
assert_ne "machine has a cgroup in the $HIER hierarchy" "" "$CG"

limit_of() {
        if [[ -f "$CG/memory.max" ]]; then cat "$CG/memory.max"; else cat "$CG/memory.limit_in_bytes"; fi
}
# v1 counts an OOM kill only in the victim's own cgroup (the guest runs in $CG/payload and below), so
# sum the subtree; cgroup2's memory.events is hierarchical already.
oom_kills() {
        if [[ -f "$CG/memory.events" ]]; then
                awk '$1 == "oom_kill" {print $2}' "$CG/memory.events"
        else
                find "$CG" -name memory.oom_control -exec awk '$1 == "oom_kill" {n += $2} END {print n + 0}' {} +
        fi
}
assert_eq "limit written to the cgroup" $((64 * 1024 * 1024)) "$(limit_of 2>/dev/null || true)"
# A guest with a memory limit is set up by a fork, never in the daemon's memory (container.c: an OOM
# kill in the guest's cgroup during set-up would take every process sharing that memory with it).
assert_contains "memory-limited guest set up by a fork" "$(grep "$A: Started" "$MM_TMP/daemon.log")" "forked)"
before=$(oom_kills 2>/dev/null || echo 0)

# dd allocates its whole 300M block and touches it when reading /dev/zero into it.
assert_exit 137 mm shell "$A" dd if=/dev/zero of=/dev/null bs=300M count=1
after=$(oom_kills 2>/dev/null || echo 0)
assert_true "OOM kill counted in the machine's cgroup ($before -> $after)" test "${after:-0}" -gt "${before:-0}"
assert_true "machine's init survived" mm_pid_alive "$LEADER"
assert_true "daemon alive" mm_pid_alive "$MM_DAEMON_PID"
assert_exit 0 mm list
assert_contains "machine still listed" "$MM_STDOUT" "$A"
assert_exit 0 mm shell "$A" echo still-here
assert_eq "guest still usable" still-here "$MM_STDOUT"

# A hog well below the limit is fine.
assert_exit 0 mm shell "$A" dd if=/dev/zero of=/dev/null bs=16M count=1

# set-limit changes the running machine's limit.
assert_exit 0 mm set-limit "$A" MemoryMax=128M
assert_eq "set-limit reached the cgroup" $((128 * 1024 * 1024)) "$(limit_of 2>/dev/null || true)"

assert_exit 0 mm terminate "$A"
mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$A' ]" || true
assert_no_leftovers "$A"
mm_finish
