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

marker="console-marker-$RANDOM$RANDOM"
check "write a line to the guest's /dev/console" console_write "$NAME" "$marker"
check_eventually "journalctl -u $SCOPE has the console line" 15 journal_has "$marker" -u "$SCOPE"
check_eventually "journalctl MACHINEMGR_MACHINE=$NAME has it" 15 journal_has "$marker" "MACHINEMGR_MACHINE=$NAME"

check "machinemgr poweroff --wait" machinemgr poweroff "$NAME" --wait
check_eventually "leader is gone" 30 sh -c "! kill -0 $leader"
check_eventually "scope is gone" 30 unit_gone "$SCOPE"
check_eventually "machined registration is gone" 30 sh -c "! machinectl show '$NAME' >/dev/null 2>&1"
check "machinemgr no longer knows a running $NAME" mm_absent "$NAME"
left="$(find /run/machinemgr -mindepth 1 -name "*$NAME*" ! -name "$NAME.machine" 2>/dev/null)"
check_eq "no state files left in /run/machinemgr" "" "$left"
out="$(machine_exit "$NAME")" || true
check_match "GetMachineExit: a clean power-off (exited 0 or SIGINT)" "$CLEAN_EXIT_RE" "$out"

finish
