#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPEC §6: any local user may read; state-changing calls from a non-root
# caller get org.freedesktop.DBus.Error.AccessDenied and change nothing.
set -euo pipefail
source "$MM_TESTS_DIR/lib-host.sh"

NAME=debian
USER_NAME=mmtestuser
useradd --create-home "$USER_NAME"
defer userdel --remove "$USER_NAME"
as_user() { runuser -u "$USER_NAME" -- "$@"; }
PATH_OBJ="/org/machinemgr1/machine/$NAME"

defer mm_force_stop "$NAME"
defer mm_force_stop busybox
check "root starts the guest" start_guest "$NAME"
leader="$(mm_leader "$NAME")"

out="$(as_user busctl --system call org.machinemgr1 /org/machinemgr1 org.machinemgr1.Manager ListMachines 2>&1)" || true
check_match "user can ListMachines" "^a\\(sssuo\\) 1 \"$NAME\"" "$out"
check "user can GetMachine" as_user busctl --system call org.machinemgr1 /org/machinemgr1 \
        org.machinemgr1.Manager GetMachine s "$NAME"
out="$(as_user busctl --system get-property org.machinemgr1 "$PATH_OBJ" org.machinemgr1.Machine State 2>&1)" || true
check_eq "user can read properties" 's "running"' "$out"
check "user can machinemgr list" as_user machinemgr list

# gdbus prints the D-Bus error name (busctl only prints the message).
denied() {
        local out rc=0
        out="$(as_user gdbus call --system --dest org.machinemgr1 "$@" 2>&1)" || rc=$?
        echo "gdbus exit $rc: $out"
        [[ $rc -ne 0 && "$out" == *org.freedesktop.DBus.Error.AccessDenied* ]]
}
check "user StartMachine: AccessDenied" denied --object-path /org/machinemgr1 \
        --method org.machinemgr1.Manager.StartMachine busybox '{}'
check "user PowerOffMachine: AccessDenied" denied --object-path /org/machinemgr1 \
        --method org.machinemgr1.Manager.PowerOffMachine "$NAME"
check "user TerminateMachine: AccessDenied" denied --object-path /org/machinemgr1 \
        --method org.machinemgr1.Manager.TerminateMachine "$NAME"
check "user KillMachine: AccessDenied" denied --object-path /org/machinemgr1 \
        --method org.machinemgr1.Manager.KillMachine "$NAME" all 9
check "user Machine.Terminate: AccessDenied" denied --object-path "$PATH_OBJ" \
        --method org.machinemgr1.Machine.Terminate
check "user Machine.SetLimits: AccessDenied" denied --object-path "$PATH_OBJ" \
        --method org.machinemgr1.Machine.SetLimits "{'TasksMax': <uint64 10>}"
check "user RemoveImage: AccessDenied" denied --object-path /org/machinemgr1 \
        --method org.machinemgr1.Manager.RemoveImage busybox

rc=0; as_user machinemgr start busybox >/dev/null 2>&1 || rc=$?
check_eq "CLI start as user exits 4 (permission denied)" 4 "$rc"
rc=0; as_user machinemgr poweroff "$NAME" >/dev/null 2>&1 || rc=$?
check_eq "CLI poweroff as user exits 4" 4 "$rc"

check "nothing changed: guest still running" kill -0 "$leader"
check_eq "nothing changed: same leader" "$leader" "$(mm_leader "$NAME")"
check_eq "nothing changed: TasksMax untouched" 16384 "$(unit_prop "machine-$NAME.scope" TasksMax)"
check "nothing changed: busybox not started" mm_absent busybox
check "nothing changed: busybox image still there" test -d /var/lib/machines/busybox

check "root can power it off" machinemgr poweroff "$NAME" --wait

finish
