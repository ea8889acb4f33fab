#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for test scripts that run inside the systemd host (sourced).
# Each check prints "ok - …" or "not ok - …"; finish prints "N passed, N failed"
# and exits non-zero if anything failed.

MM_PASSED=0
MM_FAILED=0
MM_CLEANUPS=()

pass() { MM_PASSED=$((MM_PASSED + 1)); echo "ok - $*"; }
fail() { MM_FAILED=$((MM_FAILED + 1)); echo "not ok - $*"; }
note() { echo "# $*"; }

# check DESCRIPTION CMD…: passes if CMD succeeds.
check() {
        local desc="$1"; shift
        local out
        if out="$("$@" 2>&1)"; then
                pass "$desc"
        else
                fail "$desc (command: $*; output: ${out//$'\n'/ | })"
        fi
}

# check_fails DESCRIPTION CMD…: passes if CMD fails.
check_fails() {
        local desc="$1"; shift
        if "$@" >/dev/null 2>&1; then
                fail "$desc (command unexpectedly succeeded: $*)"
        else
                pass "$desc"
        fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
        if [[ "$2" == "$3" ]]; then
                pass "$1"
        else
                fail "$1 (expected '$2', got '$3')"
        fi
}

# check_match DESCRIPTION REGEX TEXT
check_match() {
        if [[ "$3" =~ $2 ]]; then
                pass "$1"
        else
                fail "$1 (no match for /$2/ in: ${3//$'\n'/ | })"
        fi
}

# check_no_match DESCRIPTION REGEX TEXT
check_no_match() {
        if [[ "$3" =~ $2 ]]; then
                fail "$1 (unexpected match for /$2/ in: ${3//$'\n'/ | })"
        else
                pass "$1"
        fi
}

# wait_until TIMEOUT_SEC CMD…: poll CMD every 0.5s until it succeeds.
wait_until() {
        local timeout="$1"; shift
        local deadline=$((SECONDS + timeout))
        until "$@" >/dev/null 2>&1; do
                ((SECONDS < deadline)) || return 1
                sleep 0.5
        done
}

# check_eventually DESCRIPTION TIMEOUT CMD…
check_eventually() {
        local desc="$1" timeout="$2"; shift 2
        if wait_until "$timeout" "$@"; then
                pass "$desc"
        else
                fail "$desc (still failing after ${timeout}s: $*)"
        fi
}

# Run CMD… at exit (LIFO), also when the test fails half-way.
defer() { MM_CLEANUPS+=("$*"); }

_run_cleanups() {
        local i
        for ((i = ${#MM_CLEANUPS[@]} - 1; i >= 0; i--)); do
                eval "${MM_CLEANUPS[i]}" >/dev/null 2>&1 || true
        done
}
trap _run_cleanups EXIT

finish() {
        echo "$MM_PASSED passed, $MM_FAILED failed"
        ((MM_FAILED == 0 && MM_PASSED > 0))
        exit $?
}

# --- machinemgr specifics -----------------------------------------------

MM_GUEST="${MM_GUEST:-debian}"

unit_prop() { systemctl show -P "$2" "$1"; }
unit_gone() {
        local state
        state="$(systemctl show -P LoadState "$1" 2>/dev/null)"
        [[ "$state" == not-found || "$(systemctl show -P ActiveState "$1")" == inactive ]]
}

# machinemgr show NAME -p PROP prints PROP=VALUE (SPEC §5); print VALUE.
mm_prop() { machinemgr show "$1" -p "$2" 2>/dev/null | sed -n "s/^$2=//p"; }
mm_leader() { mm_prop "$1" Leader; }
mm_running() { [[ "$(mm_prop "$1" State)" == running ]]; }
# Not among the running machines any more.
mm_absent() { ! machinemgr list --no-legend 2>/dev/null | grep -q "^$1 "; }

# Best-effort stop of a machine (cleanup path; never fails the test).
mm_force_stop() {
        machinemgr terminate "$1" >/dev/null 2>&1 || true
        systemctl stop "machine-$1.scope" >/dev/null 2>&1 || true
}

# journalctl, retried: the journal may lag a moment behind.
journal_has() {
        local pattern="$1"; shift
        journalctl --no-pager -q "$@" 2>/dev/null | grep -q -- "$pattern"
}

# Path of a unit's cgroup in the hierarchy systemd tracks processes in
# (cgroup2 when unified, else name=systemd on hybrid/legacy hosts).
unit_cgroup_dir() {
        local cg
        cg="$(systemctl show -P ControlGroup "$1")"
        [[ -n "$cg" ]] || return 1
        if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
                echo "/sys/fs/cgroup$cg"
        elif [[ -d /sys/fs/cgroup/unified$cg ]]; then
                echo "/sys/fs/cgroup/unified$cg"
        else
                echo "/sys/fs/cgroup/systemd$cg"
        fi
}

# All pids in a unit's cgroup subtree.
unit_pids() {
        local dir
        dir="$(unit_cgroup_dir "$1")" || return 1
        find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null
}

# Start a guest and wait for READY=1. Register `defer mm_force_stop NAME` in
# the test's own shell first: check runs this in a subshell.
start_guest() {
        local name="$1"; shift
        machinemgr start "$name" --wait "$@"
}

# A unique marker line written to the guest's /dev/console from inside.
console_write() {
        local name="$1" line="$2"
        machinemgr shell "$name" /bin/sh -c "echo '$line' >/dev/console"
}

# How a clean power-off looks in GetMachineExit: init exited 0, or result
# "poweroff" (status 2): the kernel ends a PID namespace's init with SIGINT when
# it calls reboot(RB_POWER_OFF), as systemd-shutdown does, and machinemgrd
# records that as the guest powering itself off (docs/DBUS.md).
# shellcheck disable=SC2034 # used by the test scripts that source this
CLEAN_EXIT_RE='^sits ("exited" 0|"poweroff" 2) '

# Manager.GetMachineExit as busctl prints it: sits "RESULT" STATUS TIMESTAMP "MESSAGE".
machine_exit() {
        busctl --system call org.machinemgr1 /org/machinemgr1 org.machinemgr1.Manager \
                GetMachineExit s "$1" 2>/dev/null
}
