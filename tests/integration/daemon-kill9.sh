#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SIGKILL of machinemgrd with two running containers: both keep running, and after a restart both are
# listed with the same leaders and can still be controlled.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
A=$(mm_name one)
B=$(mm_name two)
assert_exit 0 mm_start_busybox "$A"
assert_exit 0 mm_start_busybox "$B"
LA=$(mm_leader "$A" || echo 0)
LB=$(mm_leader "$B" || echo 0)
assert_ne "two different leaders" "$LA" "$LB"

mm_daemon_kill9
assert_true "leader of $A survives the daemon's SIGKILL" mm_pid_alive "$LA"
assert_true "leader of $B survives the daemon's SIGKILL" mm_pid_alive "$LB"
assert_true "state files kept" test -e "$MM_RUN/machines/$A" -a -e "$MM_RUN/machines/$B"

mm_daemon_start
assert_exit 0 mm list --no-legend
assert_contains "$A listed after restart" "$MM_STDOUT" "$A"
assert_contains "$B listed after restart" "$MM_STDOUT" "$B"
assert_eq "$A has the same leader" "$LA" "$(mm_leader "$A" || true)"
assert_eq "$B has the same leader" "$LB" "$(mm_leader "$B" || true)"

# Still controllable: a command inside, limits, and a terminate that cleans everything up.
assert_exit 0 mm shell "$A" echo adopted
assert_eq "shell into an adopted machine" adopted "$MM_STDOUT"
assert_exit 0 mm set-limit "$B" TasksMax=100
assert_exit 0 mm terminate "$A"
assert_true "$A gone after terminate" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$A' ]"
assert_true "leader of $A killed" mm_wait_for 5 mm_pid_gone "$LA"
assert_no_leftovers "$A"

# The daemon notices an adopted machine's own end (its init exits) too.
assert_exit 0 mm kill "$B" --kill-whom=leader --signal=SIGKILL
assert_true "$B cleaned up after its init died" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$B' ]"
assert_no_leftovers "$B"
mm_finish
