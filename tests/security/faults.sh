#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Faults (issue 6 §3): SIGKILL of the daemon raced against container starts, a guest init killed by a
# signal from the host, a guest OOM, a fork bomb under TasksMax, a rootfs deleted while running. Each
# ends in a clear state (running and adopted, or gone), a logged reason, and no leftovers.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

TRIES=${MM_FAULT_TRIES:-30}
mm_setup
mm_daemon_start
INJECTED=0

# --- SIGKILL of the daemon at a random point of a start ----------------------------------------------
adopted=0
vanished=0
for ((i = 0; i < TRIES; i++)); do
        N=$(mm_name "k$i")
        mm_busybox_image "$N"
        mm start "$N" --no-boot --command='sleep 100000' >/dev/null 2>&1 &
        CLI=$!
        # 0–60 ms: spread the kill over connect, cgroup creation, clone, set-up and exec.
        sleep "0.0$((RANDOM % 7))$((RANDOM % 10))"
        mm_daemon_kill9
        INJECTED=$((INJECTED + 1))
        wait "$CLI" 2>/dev/null || true
        mm_daemon_start
        if mm_machine_listed "$N"; then
                L=$(mm_leader "$N" || echo 0)
                assert_true "try $i: $N adopted with a live leader ($L)" mm_pid_alive "$L"
                assert_exit 0 mm shell "$N" true
                adopted=$((adopted + 1))
                mm terminate "$N" >/dev/null 2>&1 || true
                mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$N' ]" || true
        else
                vanished=$((vanished + 1))
        fi
        assert_no_leftovers "$N"
        rm -rf "${MM_IMAGES:?}/$N"
done
echo "# daemon SIGKILL during start: $TRIES tries, $adopted adopted and running, $vanished left nothing"

# --- guest init killed from the host --------------------------------------------------------------
N=$(mm_name segv)
assert_exit 0 mm_start_busybox "$N"
L=$(mm_leader "$N" || echo 0)
kill -SEGV "$L"
INJECTED=$((INJECTED + 1))
if mm_wait_for 5 sh -c "! [ -e '$MM_RUN/machines/$N' ]"; then
        assert_exit 0 mm status "$N"
        assert_contains "status names the SEGV" "$MM_STDOUT" "SEGV"
else
        # The kernel does not deliver a default-action signal from an ancestor namespace to a
        # namespace's init unless it has a handler: machinemgr-init has none for SIGSEGV.
        echo "# SIGSEGV from the host was not delivered to $N's init (pid namespace init protection); SIGKILL"
        kill -KILL "$L"
        assert_true "$N cleaned up after its init was killed" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$N' ]"
        assert_exit 0 mm status "$N"
        assert_contains "status names the signal" "$MM_STDOUT" "KILL"
fi
assert_contains "daemon log names the reason" "$(cat "$MM_TMP/daemon.log")" "$N: Init was killed by signal"
assert_no_leftovers "$N"

# --- OOM inside the guest ---------------------------------------------------------------------------
N=$(mm_name oom)
assert_exit 0 mm_start_busybox "$N" 'sh -c "tail /dev/zero; echo hog-exited-$? >/dev/console; exec sleep 100000"' \
        --memory=64M
INJECTED=$((INJECTED + 1))
H=$(mm_controller_hier memory)
D=$(mm_scope_dir "$N" "$H")
# v1 counts an OOM kill only in the victim's own cgroup (the guest runs in $D/payload): sum the subtree.
oom_kills() {
        if [[ -f "$D/memory.events" ]]; then
                awk '$1 == "oom_kill" {print $2}' "$D/memory.events"
        else
                find "$D" -name memory.oom_control -exec awk '$1 == "oom_kill" {n += $2} END {print n + 0}' {} +
        fi
}
oom_killed() { test "$(oom_kills 2>/dev/null || echo 0)" -ge 1; }
assert_true "the hog was OOM-killed inside $N" mm_wait_for 30 oom_killed
echo "# oom_kill count in $N: $(oom_kills)"
assert_true "$N still running after the OOM kill" mm_machine_listed "$N"
assert_exit 0 mm shell "$N" true
assert_exit 0 mm terminate "$N"
assert_true "$N gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$N' ]"
assert_no_leftovers "$N"

# --- fork bomb under TasksMax -------------------------------------------------------------------------
N=$(mm_name bomb)
assert_exit 0 mm_start_busybox "$N" 'sh -c "b() { b | b & }; b; exec sleep 100000"' --tasks-max=64
INJECTED=$((INJECTED + 1))
sleep 3
H=$(mm_controller_hier pids)
D=$(mm_scope_dir "$N" "$H")
CUR=$(cat "$D/pids.current" 2>/dev/null || echo 0)
assert_true "fork bomb capped at TasksMax (pids.current $CUR <= 64)" test "$CUR" -le 64
START=$(date +%s%N)
assert_exit 0 mm list
/bin/true
MS=$((($(date +%s%N) - START) / 1000000))
assert_true "host and daemon responsive during the bomb (${MS} ms for list)" test "$MS" -lt 2000
assert_exit 0 mm terminate "$N"
assert_true "$N gone" mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$N' ]"
assert_no_leftovers "$N"

# --- rootfs deleted while running ---------------------------------------------------------------------
N=$(mm_name gone)
assert_exit 0 mm_start_busybox "$N"
rm -rf "${MM_IMAGES:?}/$N"
INJECTED=$((INJECTED + 1))
assert_exit 0 mm list
assert_contains "$N still listed with its rootfs deleted" "$MM_STDOUT" "$N"
assert_exit 0 mm status "$N"
assert_exit 0 mm terminate "$N"
assert_true "$N gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$N' ]"
assert_no_leftovers "$N"
assert_true "daemon alive after all faults" kill -0 "$MM_DAEMON_PID"
echo "# faults injected: $INJECTED"
mm_finish
