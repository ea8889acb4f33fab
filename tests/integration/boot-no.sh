#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A busybox container with Boot=no: the payload runs under machinemgr-init and its exit status comes
# back through `start --no-boot --wait`; the machine is gone afterwards.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
A=$(mm_name bb)
mm_busybox_image "$A"

assert_exit 0 mm start "$A" --no-boot --command="true" --wait
assert_exit 7 mm start "$A" --no-boot --command="sh -c 'exit 7'" --wait
assert_exit 137 mm start "$A" --no-boot --command="sh -c 'kill -KILL \$\$'" --wait
assert_exit 0 mm start "$A" --no-boot --command="sh -c 'test \$(hostname) = $A'" --wait
assert_no_leftovers "$A"

# The payload is PID 1's child inside: init is PID 1 and the payload sees container=machinemgr.
assert_exit 0 mm start "$A" --no-boot --wait \
        --command="sh -c 'test \$PPID = 1 && test \"\$container\" = machinemgr && test -e /run/host/notify'"

# Command= from the settings file ($IMAGES/NAME.machine), Boot=no there too.
mm_settings "$A" "[Exec]
Boot=no
Command=/bin/sh -c 'exit 12'"
# The CLI cannot know Boot=no from the file, so --wait returns at READY; the status shows the end.
assert_exit 0 mm start "$A" --wait
assert_true "payload from the settings file ran and ended" \
        mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$A' ]"
assert_exit 0 mm status "$A"
assert_contains "status shows the exit status of Command=" "$MM_STDOUT" "12"
assert_no_leftovers "$A"

# Reboot of a Boot=no machine: the payload starts afresh, same machine, new leader.
B=$(mm_name reboot)
assert_exit 0 mm_start_busybox "$B" "sleep 100000"
OLD=$(mm_leader "$B" || true)
assert_exit 0 mm reboot "$B"
new_leader() { local l; l=$(mm_leader "$B" 2>/dev/null) && [[ -n "$l" && "$l" != "$OLD" ]]; }
assert_true "a new leader after reboot" mm_wait_for 10 new_leader
assert_true "old leader gone" mm_pid_gone "$OLD"
assert_exit 0 mm shell "$B" true
assert_exit 0 mm terminate "$B"
assert_true "$B gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$B' ]"
assert_no_leftovers "$B"

mm_finish
