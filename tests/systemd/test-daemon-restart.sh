#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPEC §9: restarting machinemgrd (systemctl restart; SIGKILL + restart) loses
# no running container, and console lines written afterwards still reach the
# journal (pty masters kept in the service's fd store).
set -euo pipefail
source "$MM_TESTS_DIR/lib-host.sh"

NAME=debian
SCOPE="machine-$NAME.scope"

daemon_pid() { systemctl show -P MainPID machinemgrd.service; }
daemon_up_with_new_pid() {
        local old="$1" pid
        pid="$(daemon_pid)"
        [[ "$(systemctl show -P ActiveState machinemgrd.service)" == active && "$pid" != 0 && "$pid" != "$old" ]]
}

# Survives one kind of restart; $1 describes it, $2 is the function doing it.
check_survives() {
        local what="$1" how="$2" old_pid marker
        old_pid="$(daemon_pid)"
        "$how" "$old_pid"
        check_eventually "daemon is back after $what" 60 daemon_up_with_new_pid "$old_pid"
        check "guest init still alive after $what" kill -0 "$leader"
        check_eq "scope still active after $what" active "$(systemctl show -P ActiveState "$SCOPE")"
        check_eventually "machine re-adopted after $what" 30 mm_running "$NAME"
        check_eq "same leader after $what" "$leader" "$(mm_leader "$NAME")"
        marker="after-$RANDOM$RANDOM"
        check "console write after $what" console_write "$NAME" "$marker"
        check_eventually "console line after $what reaches the journal" 15 \
                journal_has "$marker" -u "$SCOPE"
}

restart_cleanly() { systemctl restart machinemgrd.service; }
# SIGKILL: Restart=on-failure brings it back; a `systemctl start` in case the
# restart is still pending is harmless.
kill_and_start() {
        kill -KILL "$1"
        sleep 2
        systemctl start machinemgrd.service
}

defer mm_force_stop "$NAME"
check "start the guest" start_guest "$NAME"
leader="$(mm_leader "$NAME")"
check_match "have a leader" '^[0-9]+$' "$leader"
marker="before-$RANDOM$RANDOM"
check "console write before restart" console_write "$NAME" "$marker"
check_eventually "console line reaches the journal" 15 journal_has "$marker" -u "$SCOPE"
check_match "console fd kept in the fd store" '^[1-9]' \
        "$(systemctl show -P NFileDescriptorStore machinemgrd.service)"

check_survives "systemctl restart" restart_cleanly
check_survives "SIGKILL" kill_and_start

check "poweroff still works after the restarts" machinemgr poweroff "$NAME" --wait
check_eventually "scope gone" 30 unit_gone "$SCOPE"
check_eventually "fd store emptied once the machine is gone" 15 sh -c \
        '[ "$(systemctl show -P NFileDescriptorStore machinemgrd.service)" = 0 ]'

finish
