#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPEC §8: machinemgr@NAME.service follows its container: enable --now boots
# it (READY=1 from the CLI), stop powers it off cleanly, a guest-initiated
# power-off leaves the service inactive, a crash is restarted (Restart=).
set -euo pipefail
source "$MM_TESTS_DIR/lib-host.sh"

NAME=debian
SVC="machinemgr@$NAME.service"
SCOPE="machine-$NAME.scope"
defer systemctl disable --now "$SVC"
defer mm_force_stop "$NAME"

svc_state() { systemctl show -P ActiveState "$SVC"; }
svc_inactive() { [[ "$(svc_state)" == inactive ]]; }

check "systemctl enable --now $SVC" timeout 300 systemctl enable --now "$SVC"
check_eq "service is active once enable --now returns" active "$(svc_state)"
check_eq "machine is running (READY=1 came from the guest)" running "$(mm_prop "$NAME" State)"
check_eq "instance is enabled" enabled "$(systemctl is-enabled "$SVC" 2>&1)"
check_eq "machinemgr.target is enabled too" enabled "$(systemctl is-enabled machinemgr.target 2>&1)"
check "instance is wanted by machinemgr.target" \
        test -L "/etc/systemd/system/machinemgr.target.wants/$SVC"
check_eq "the scope is active" active "$(systemctl show -P ActiveState "$SCOPE")"
main_pid="$(systemctl show -P MainPID "$SVC")"
check_eq "the service's main process is the CLI" machinemgr "$(cat "/proc/$main_pid/comm" 2>/dev/null)"

# systemctl stop: the CLI powers the guest off and waits.
leader="$(mm_leader "$NAME")"
check "systemctl stop" timeout 180 systemctl stop "$SVC"
check_eq "service inactive (not failed) after stop" inactive "$(svc_state)"
check "leader gone after stop" sh -c "! kill -0 $leader 2>/dev/null"
check_eventually "scope gone after stop" 30 unit_gone "$SCOPE"
check_match "it was a clean power-off" "$CLEAN_EXIT_RE" "$(machine_exit "$NAME" || true)"

# Guest-initiated power-off: the service ends inactive, no restart.
check "systemctl start" timeout 300 systemctl start "$SVC"
check_eq "running again" running "$(mm_prop "$NAME" State)"
machinemgr shell "$NAME" /bin/systemctl poweroff >/dev/null 2>&1 || true
check_eventually "guest poweroff leaves the service inactive" 120 svc_inactive
check_eq "Result=success" success "$(systemctl show -P Result "$SVC")"
check_eq "no restart happened" 0 "$(systemctl show -P NRestarts "$SVC")"
check_eventually "scope gone after guest poweroff" 30 unit_gone "$SCOPE"

# A crash (the guest's init killed) fails the service and Restart= brings it back.
check "systemctl start" timeout 300 systemctl start "$SVC"
leader="$(mm_leader "$NAME")"
check_match "have a leader" '^[0-9]+$' "$leader"
kill -KILL "$leader" 2>/dev/null || true
check_eventually "service restarted after the crash" 120 sh -c \
        "[ \"\$(systemctl show -P NRestarts '$SVC')\" -ge 1 ] && [ \"\$(systemctl show -P ActiveState '$SVC')\" = active ]"
new_leader="$(mm_leader "$NAME")"
check_match "a new guest is running" '^[0-9]+$' "$new_leader"
check "with a different leader" test "$new_leader" != "$leader"

check "systemctl disable --now" timeout 180 systemctl disable --now "$SVC"
check_eq "instance disabled" disabled "$(systemctl is-enabled "$SVC" 2>&1)"
check_eventually "scope gone at the end" 30 unit_gone "$SCOPE"

# A guest started by hand: the service follows it instead of failing (MachineExists).
check "start the guest by hand" start_guest "$NAME"
leader="$(mm_leader "$NAME")"
check "systemctl start for the running guest" timeout 60 systemctl start "$SVC"
check_eq "service is active" active "$(svc_state)"
check_eq "it follows the same guest" "$leader" "$(mm_leader "$NAME")"
check "systemctl stop powers it off" timeout 180 systemctl stop "$SVC"
check_eq "service inactive after stop" inactive "$(svc_state)"
check_eventually "scope gone after stop" 30 unit_gone "$SCOPE"

finish
