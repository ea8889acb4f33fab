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
# Without a memory limit the child is set up in the daemon's memory (CLONE_VM | CLONE_VFORK, container.c);
# the AddressSanitizer build always forks.
if ldd "$MM_BUILD_ROOT/src/manager/machinemgrd" | grep -q libasan; then spawn="forked)"; else spawn="shared-memory spawn)"; fi
assert_contains "set up by the expected spawn ($spawn)" "$(grep "$A: Started" "$MM_TMP/daemon.log")" "$spawn"
B0=$(mm_name boost)
mm_busybox_image "$B0"
assert_exit 0 mm_start_busybox "$B0"
CPUH=$(mm_controller_hier cpu)
if [[ -n "$CPUH" && -f "$(mm_scope_dir "$B0" "$CPUH")/cpu.shares" ]]; then
        assert_eq "the set-up's CPU boost is off once init runs" 1024 "$(cat "$(mm_scope_dir "$B0" "$CPUH")/cpu.shares")"
fi
assert_exit 0 mm terminate "$B0"
assert_true "$B0 gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$B0' ]"
assert_eq "daemon has one thread again (the spawn's worker is gone)" 1 \
        "$(awk '$1 == "Threads:" {print $2}' "/proc/$MM_DAEMON_PID/status")"
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
