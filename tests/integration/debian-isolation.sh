#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A booted Debian guest is isolated: its namespaces differ from the host's, it has its own hostname,
# and it sees only its own processes.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
D=$(mm_name iso)
mm_debian_image "$D"
assert_exit 0 mm start "$D" --wait
LEADER=$(mm_leader "$D" || echo 0)

for ns in pid mnt uts ipc net cgroup; do
        host=$(readlink "/proc/self/ns/$ns")
        guest=$(readlink "/proc/$LEADER/ns/$ns" 2>/dev/null || echo missing)
        assert_ne "$ns namespace differs from the host's" "$host" "$guest"
        assert_ne "$ns namespace readable" missing "$guest"
done

assert_exit 0 mm shell "$D" hostname
assert_eq "hostname inside" "$D" "$MM_STDOUT"
assert_eq "UTS name seen from the host side" "$D" "$(nsenter -t "$LEADER" -u hostname 2>/dev/null || true)"
assert_ne "host hostname unchanged" "$D" "$(hostname)"

assert_exit 0 mm shell "$D" cat /proc/1/comm
assert_eq "PID 1 inside is systemd" systemd "$MM_STDOUT"
assert_exit 0 mm shell "$D" sh -c 'cat /proc/[0-9]*/comm 2>/dev/null; true'
guest_comms=$MM_STDOUT
assert_not_contains "host's machinemgrd is not visible" "$guest_comms" machinemgrd
# Every PID the guest can see must be one of the machine's processes: the count inside is at most
# the number of processes in its cgroup (plus the shell we just ran, which joined it).
n_inside=$(echo "$guest_comms" | wc -l)
# A glob, not ls: processes come and go while it runs.
host_pids=(/proc/[0-9]*)
n_host=${#host_pids[@]}
assert_true "guest sees $n_inside processes, far fewer than the host's $n_host" test "$n_inside" -lt "$n_host"
assert_exit 0 mm shell "$D" sh -c 'ls -d /proc/[0-9]* | wc -l'
assert_true "guest has fewer than 60 PIDs" test "${MM_STDOUT:-999}" -lt 60
test_pid=$$
assert_exit 0 mm shell "$D" sh -c "test -d /proc/$test_pid && grep -q debian-isolation /proc/$test_pid/cmdline 2>/dev/null && echo visible || echo hidden"
assert_eq "the test's own PID is not visible inside" hidden "$MM_STDOUT"

assert_exit 0 mm terminate "$D"
mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$D' ]" || true
assert_no_leftovers "$D"
mm_finish
