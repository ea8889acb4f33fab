#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 10 (correctness found on the way):
# - `set-limit NAME MemoryMax=128M` on a machine started with TasksMax=40 and CPUQuota=50% changes the
#   memory limit only: pids.max stays 40, the CPU quota stays 50% (cpu.cfs_quota_us / cpu.max), and
#   `show` agrees with the cgroup files, also after another set-limit and a daemon restart.
# - A start that fails after the clone (init cannot be exec'd: an /sbin/init that is no executable
#   format) sends no MachineNew (nor MachineRemoved) to clients, on both spawn paths (shared-memory spawn
#   without MemoryMax=, forked with it); a start that succeeds does. Failing starts in a loop leave the
#   victim and the clients undisturbed.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

hostile_setup
SIGNALS_PID=
stop_signals() {
        [[ -z "$SIGNALS_PID" ]] || kill "$SIGNALS_PID" 2>/dev/null || true
        SIGNALS_PID=
}
hostile_cleanup_add stop_signals

# The limits as the cgroup files say, in `show`'s units: "MEMORY TASKS CPU_USEC_PER_SEC".
cgroup_limits() {
        local name=$1 mem pids cpu quota period
        mem=$(_hostile_cg_limit "$name" memory memory.limit_in_bytes memory.max)
        pids=$(_hostile_cg_limit "$name" pids pids.max pids.max)
        if [[ "$(mm_controller_hier cpu)" == unified ]]; then
                read -r quota period <<<"$(_hostile_cg_limit "$name" cpu - cpu.max)"
        else
                quota=$(_hostile_cg_limit "$name" cpu cpu.cfs_quota_us -)
                period=$(_hostile_cg_limit "$name" cpu cpu.cfs_period_us -)
        fi
        # Unlimited as show says it: v1 writes "no limit" as the largest page count, v2 as "max".
        [[ "$mem" == max ]] || (( ${mem:-0} < 1 << 62 )) || mem=infinity
        [[ "$mem" != max ]] || mem=infinity
        [[ "$pids" != max ]] || pids=infinity
        if [[ "$quota" == max || "$quota" == -1 ]]; then
                cpu=infinity
        else
                cpu=$((quota * 1000000 / period))
        fi
        echo "$mem $pids $cpu"
}

show_limits() {
        local out
        out=$(mm show "$1" -p MemoryMax -p TasksMax -p CPUQuotaPerSecUSec 2>/dev/null) || return 0
        echo "$(sed -n 's/^MemoryMax=//p' <<<"$out") $(sed -n 's/^TasksMax=//p' <<<"$out")" \
                "$(sed -n 's/^CPUQuotaPerSecUSec=//p' <<<"$out")"
}

# check LABEL EXPECTED: the cgroup files and show both say EXPECTED ("MEMORY TASKS CPU").
check_limits() {
        local label=$1 expected=$2
        assert_eq "[$label] cgroup files (memory, pids.max, CPU quota per second)" "$expected" "$(cgroup_limits "$L")"
        assert_eq "[$label] show agrees" "$expected" "$(show_limits "$L")"
}

# --- set-limit keeps the limits it is not given -------------------------------------------------------------
L=$(mm_name lim)
mm_busybox_image "$L"
assert_exit 0 mm start "$L" --no-boot --command="sleep 100000" --tasks-max=40 --cpu-quota=50%
check_limits "at start" "infinity 40 500000"
assert_exit 0 mm set-limit "$L" MemoryMax=128M
check_limits "set-limit MemoryMax=128M" "134217728 40 500000"
assert_exit 0 mm set-limit "$L" TasksMax=60
check_limits "set-limit TasksMax=60" "134217728 60 500000"
assert_exit 0 mm set-limit "$L" CPUQuota=150%
check_limits "set-limit CPUQuota=150%" "134217728 60 1500000"
mm_daemon_kill9
mm_daemon_start
check_limits "after a daemon restart" "134217728 60 1500000"
assert_exit 0 mm set-limit "$L" MemoryMax=96M
check_limits "set-limit MemoryMax=96M after the restart" "100663296 60 1500000"

# --- no MachineNew for a start that fails after the clone ---------------------------------------------------
python3 "$MM_SOURCE_ROOT/tests/security/bus-signals.py" "$MM_RUN/private" >"$MM_TMP/signals" 2>&1 &
SIGNALS_PID=$!
assert_true "signal watcher connected" mm_wait_for 10 grep -q '^READY$' "$MM_TMP/signals"

BAD=$(mm_name badinit)
mm_busybox_image "$BAD"
printf '\177ELF-not-really\n' >"$MM_IMAGES/$BAD/sbin/init"
chmod 0755 "$MM_IMAGES/$BAD/sbin/init"

hostile_probe_start
T0=$SECONDS
for path in shared forked; do
        opts=()
        [[ $path == forked ]] && opts=(--memory=200M)
        for ((i = 0; i < 10; i++)); do
                assert_exit 1 mm start "$BAD" "${opts[@]}"
        done
        assert_contains "[$path spawn] the start failed at exec (after the clone)" "$MM_STDERR" "xec format error"
        assert_true "[$path spawn] $BAD not listed" sh -c "! MACHINEMGR_ADDRESS=unix:path=$MM_RUN/private \
                $MM_BUILD_ROOT/tools/machinemgr list --no-legend | awk '{print \$1}' | grep -qxF '$BAD'"
done
assert_no_leftovers "$BAD"
while ((SECONDS - T0 < 6)); do sleep 0.5; done
hostile_probe_check "failing starts"

# A start that succeeds does send MachineNew (the watcher works).
OK=$(mm_name good)
mm_busybox_image "$OK"
assert_exit 0 mm start "$OK" --no-boot --command="sleep 100000"
assert_true "MachineNew for a start that succeeded" mm_wait_for 5 grep -q "^MachineNew .* $OK " "$MM_TMP/signals"
stop_signals
echo "# signals seen for $BAD: $(grep -c " $BAD " "$MM_TMP/signals" || true)"
assert_eq "no MachineNew for the failed starts" "" "$(grep "^MachineNew .* $BAD " "$MM_TMP/signals" | head -n 3 || true)"
assert_eq "no MachineRemoved for the failed starts" "" "$(grep "^MachineRemoved .* $BAD " "$MM_TMP/signals" | head -n 3 || true)"

hostile_end "$L" "$OK"
mm_finish
