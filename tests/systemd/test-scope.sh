#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPEC §2/§6/§7/§9 in systemd mode: a Debian guest runs in machine-NAME.scope
# with its limits as unit properties, is registered with machined, its console
# reaches the journal under the scope, and nothing is left after power-off.
set -euo pipefail
source "$MM_TESTS_DIR/lib-host.sh"

NAME=debian
SCOPE="machine-$NAME.scope"

defer mm_force_stop "$NAME"
check "machinemgr start --wait with limits" start_guest "$NAME" \
        --memory=512M --tasks-max=500 --cpu-quota=50%
check_eq "scope is active" active "$(systemctl show -P ActiveState "$SCOPE")"
check_eq "scope is in machine.slice" machine.slice "$(unit_prop "$SCOPE" Slice)"
check_eq "Delegate=yes" yes "$(unit_prop "$SCOPE" Delegate)"
check_eq "MemoryMax as requested" 536870912 "$(unit_prop "$SCOPE" MemoryMax)"
check_eq "TasksMax as requested" 500 "$(unit_prop "$SCOPE" TasksMax)"
check_eq "CPUQuotaPerSecUSec as requested" 500ms "$(unit_prop "$SCOPE" CPUQuotaPerSecUSec)"
# Stopping the scope (host shutdown) powers the guest off: its KillSignal=, to
# every process (a scope has no main process for KillMode=mixed to pick).
check_eq "KillSignal=SIGRTMIN+4" "$(kill -l RTMIN+4)" "$(unit_prop "$SCOPE" KillSignal)"
check_eq "KillMode=control-group" control-group "$(unit_prop "$SCOPE" KillMode)"
check_eq "TimeoutStopUSec bounded" 30s "$(unit_prop "$SCOPE" TimeoutStopUSec)"
check_match "stopped before machinemgrd at shutdown" machinemgrd.service "$(unit_prop "$SCOPE" After)"
check_match "stopped after machinemgr@$NAME at shutdown" "machinemgr@$NAME.service" "$(unit_prop "$SCOPE" Before)"

leader="$(mm_leader "$NAME")"
check_match "show -p Leader gives a pid" '^[0-9]+$' "$leader"
check_eq "the leader is the guest's systemd" systemd "$(cat "/proc/$leader/comm" 2>/dev/null)"
check_eq "machine state is running" running "$(mm_prop "$NAME" State)"
check_eq "Unit property names the scope" "$SCOPE" "$(mm_prop "$NAME" Unit)"

# Every process of the guest (same PID namespace as its init) is in the scope.
scope_pids="$(unit_pids "$SCOPE" | sort -u)"
guest_ns="$(readlink "/proc/$leader/ns/pid")"
outside=0 seen=0
for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        [[ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" == "$guest_ns" ]] || continue
        seen=$((seen + 1))
        grep -qx "$p" <<<"$scope_pids" || outside=$((outside + 1))
done
check_match "guest has processes" '^[1-9]' "$seen"
check_eq "no guest process outside $SCOPE" 0 "$outside"
check_eq "the daemon's service holds no guest process" \
        "$(systemctl show -P MainPID machinemgrd.service)" "$(unit_pids machinemgrd.service | sort -u)"

check "machinectl list shows the guest" sh -c "machinectl list --no-legend | grep -qE '^[[:space:]]*${NAME}[[:space:]]'"
out="$(machinectl status "$NAME" --no-pager 2>&1)" || true
check_match "machinectl status names the scope" "Unit: $SCOPE" "$out"
check_match "machinectl status shows the leader" "Leader: $leader" "$out"
out="$(machinemgr list 2>&1)" || true
check_match "machinemgr list shows it running" "(^|[[:space:]])$NAME +running" "$out"
# machined makes the guest reachable the way machinectl users expect: its journal and its systemd.
out="$(journalctl -M "$NAME" -b -n 5 --no-pager 2>&1)" || true
check_match "journalctl -M $NAME reads the guest's journal" "systemd|Started|Reached" "$out"
out="$(systemctl -M "$NAME" is-system-running 2>&1)" || true
check_match "systemctl -M $NAME reaches the guest's systemd" "^(running|degraded|starting)$" "$out"

marker="console-marker-$RANDOM$RANDOM"
check "write a line to the guest's /dev/console" console_write "$NAME" "$marker"
check_eventually "journalctl -u $SCOPE has the console line" 15 journal_has "$marker" -u "$SCOPE"
check_eventually "journalctl MACHINEMGR_MACHINE=$NAME has it" 15 journal_has "$marker" "MACHINEMGR_MACHINE=$NAME"
check_match "machinemgr logs $NAME shows it (sd-journal)" "$marker" "$(machinemgr logs "$NAME" 2>&1)"

# logs -f: a line written while following shows up.
follow_out="$(mktemp)"
defer rm -f "$follow_out"
timeout 20 machinemgr logs -f "$NAME" >"$follow_out" 2>&1 &
follow_pid=$!
sleep 1
marker2="follow-marker-$RANDOM$RANDOM"
check "write another console line" console_write "$NAME" "$marker2"
check_eventually "machinemgr logs -f $NAME prints it" 15 grep -q -- "$marker2" "$follow_out"
kill "$follow_pid" 2>/dev/null || true
wait "$follow_pid" 2>/dev/null || true

check "machinemgr poweroff --wait" machinemgr poweroff "$NAME" --wait
check_eventually "leader is gone" 30 sh -c "! kill -0 $leader"
check_eventually "scope is gone" 30 unit_gone "$SCOPE"
check_eventually "machined registration is gone" 30 sh -c "! machinectl show '$NAME' >/dev/null 2>&1"
check "machinemgr no longer knows a running $NAME" mm_absent "$NAME"
left="$(find /run/machinemgr -mindepth 1 -name "*$NAME*" ! -name "$NAME.machine" 2>/dev/null)"
check_eq "no state files left in /run/machinemgr" "" "$left"
out="$(machine_exit "$NAME")" || true
check_match "GetMachineExit: a clean power-off (exited 0 or poweroff)" "$CLEAN_EXIT_RE" "$out"

# What a host shutdown does to a guest started by hand: stop its scope. The
# guest must power itself off (not be SIGKILLed after TimeoutStopSec).
check "start again" start_guest "$NAME"
leader="$(mm_leader "$NAME")"
t0=$SECONDS
check "systemctl stop $SCOPE" timeout 60 systemctl stop "$SCOPE"
note "scope stop took $((SECONDS - t0))s"
check "stopping the scope took less than its stop timeout" test $((SECONDS - t0)) -lt 25
check_eventually "leader is gone after the scope stop" 30 sh -c "! kill -0 $leader"
check_eventually "machinemgr saw it go" 30 mm_absent "$NAME"
out="$(machine_exit "$NAME")" || true
check_match "stopping the scope powered the guest off" "$CLEAN_EXIT_RE" "$out"

# A scope systemd refuses (its name is taken): the scope is made asynchronously
# while the guest's init waits, so the failure comes from the event loop. The
# start fails with systemd's reason, and nothing of the guest is left.
systemd-run --quiet --scope --unit="$SCOPE" sleep 300 &
occupier=$!
defer kill "$occupier"
check_eventually "$SCOPE is taken by another process" 10 systemctl is-active -q "$SCOPE"
rc=0
out="$(machinemgr start "$NAME" --wait 2>&1)" || rc=$?
check "start fails while $SCOPE is taken" test "$rc" -ne 0
check_match "the error names the machine, the step and systemd's reason" \
        "$NAME: start $SCOPE: Unit $SCOPE was already loaded" "$out"
check "machinemgr does not list $NAME" mm_absent "$NAME"
check_match "GetMachineExit says the start failed" '^sits "failed"' "$(machine_exit "$NAME")"
check_eq "the taken scope holds only its own process" "$occupier" "$(unit_pids "$SCOPE" | sort -u | tr '\n' ' ' | xargs)"
left="$(find /run/machinemgr -mindepth 1 -name "*$NAME*" ! -name "$NAME.machine" 2>/dev/null)"
check_eq "no state files left after the failed start" "" "$left"
kill "$occupier" 2>/dev/null || true
check_eventually "$SCOPE is free again" 15 unit_gone "$SCOPE"
check "and the guest starts again" start_guest "$NAME"
check "machinemgr poweroff --wait" machinemgr poweroff "$NAME" --wait

finish
