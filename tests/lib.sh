# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Library for the integration tests: sourced by every tests/integration/*.sh. Each test gets its own
# daemon, runtime dir and image dir under a temp dir, and machine names with a per-test prefix, so
# tests can run next to each other and anything left behind can be attributed to its test.
#
#   mm_setup                 temp dir ($MM_TMP) with images/ ($MM_IMAGES) and run/ ($MM_RUN); EXIT trap
#   mm_name SUFFIX           a machine name with this test's prefix ($MM_PREFIX)
#   mm_daemon_start          machinemgrd in the background ($MM_DAEMON_PID), waits for $MM_RUN/private;
#                            in the netns /run/netns/$MM_DAEMON_NETNS when that is set
#   mm_daemon_stop           SIGTERM + wait;  mm_daemon_kill9: SIGKILL + wait
#   mm ARGS…                 the CLI against this test's daemon
#   mm_busybox_image NAME    / mm_debian_image NAME [--include=…]: an image $MM_IMAGES/NAME
#   mm_settings NAME TEXT    writes $MM_IMAGES/NAME.machine (never /etc/machinemgr)
#   mm_leader NAME           the Leader property;  mm_scope_dir NAME HIER: its cgroup dir in hierarchy HIER
#   mm_wait_for SECS CMD…    polls CMD until it succeeds (returns 1 on timeout)
#   assert_eq WHAT EXPECTED GOT, assert_ne WHAT UNEXPECTED GOT, assert_contains WHAT HAYSTACK NEEDLE,
#   assert_not_contains WHAT HAYSTACK NEEDLE, assert_true WHAT CMD…,
#   assert_exit CODE CMD…    runs CMD; stdout/stderr are left in $MM_STDOUT / $MM_STDERR
#   assert_no_leftovers NAME processes, cgroups, mounts, state files of one machine are gone
#   mm_finish                cleanup, "N passed, N failed", exit status
#
# Exit status 77 means skipped (meson's convention): not root, or a prerequisite is missing.

set -euo pipefail

MM_SOURCE_ROOT=${MM_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MM_BUILD_ROOT=${MM_BUILD_ROOT:-$MM_SOURCE_ROOT/build}
MM_TIMEOUT=${MM_TIMEOUT:-120}
MM_TEST=${MM_TEST:-$(basename "$0" .sh)}

MM_PASSED=0
MM_FAILED=0
MM_TMP=
MM_RUN=
MM_IMAGES=
MM_DAEMON_PID=
MM_STDOUT=
MM_STDERR=
_mm_cleaned=false

# Test name + PID: unique per run, well below 64 bytes, and a leftover names the test it came from.
_mm_tag=${MM_TEST//[^A-Za-z0-9]/-}
MM_PREFIX="${_mm_tag:0:12}-$$-"

_mm_log() {
        echo "# $*" >&2
}

mm_skip() {
        echo "SKIP: $*"
        exit 77
}

mm_name() {
        echo "$MM_PREFIX$1"
}

# --- assertions -------------------------------------------------------------------------------

_mm_ok() {
        MM_PASSED=$((MM_PASSED + 1))
        echo "ok - $1"
}

_mm_fail() {
        MM_FAILED=$((MM_FAILED + 1))
        echo "FAIL: $1"
}

assert_eq() {
        local what=$1 expected=$2 got=$3
        if [[ "$expected" == "$got" ]]; then
                _mm_ok "$what"
        else
                _mm_fail "$what, expected '$expected', got '$got'"
        fi
}

assert_ne() {
        local what=$1 unexpected=$2 got=$3
        if [[ "$unexpected" != "$got" ]]; then
                _mm_ok "$what"
        else
                _mm_fail "$what, expected anything but '$unexpected', got it"
        fi
}

assert_contains() {
        local what=$1 haystack=$2 needle=$3
        if [[ "$haystack" == *"$needle"* ]]; then
                _mm_ok "$what"
        else
                _mm_fail "$what, expected to contain '$needle', got '${haystack:0:500}'"
        fi
}

assert_not_contains() {
        local what=$1 haystack=$2 needle=$3
        if [[ "$haystack" != *"$needle"* ]]; then
                _mm_ok "$what"
        else
                _mm_fail "$what, expected not to contain '$needle', got '${haystack:0:500}'"
        fi
}

assert_true() {
        local what=$1
        shift
        if "$@"; then
                _mm_ok "$what"
        else
                _mm_fail "$what, expected success of: $*"
        fi
}

# Runs CMD with output captured, so a test can go on to check what it printed.
assert_exit() {
        local expected=$1 rc=0
        shift
        "$@" >"$MM_TMP/stdout" 2>"$MM_TMP/stderr" || rc=$?
        # shellcheck disable=SC2034 # read by the test scripts
        MM_STDOUT=$(cat "$MM_TMP/stdout")
        MM_STDERR=$(cat "$MM_TMP/stderr")
        if [[ "$rc" == "$expected" ]]; then
                _mm_ok "exit $expected: $*"
        else
                _mm_fail "exit status of: $*, expected $expected, got $rc (stderr: ${MM_STDERR:0:300})"
        fi
}

mm_wait_for() {
        local secs=$1 i
        shift
        for ((i = 0; i < secs * 10; i++)); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}

# --- setup, daemon, CLI -----------------------------------------------------------------------

mm_setup() {
        [[ $EUID -eq 0 ]] || mm_skip "needs root"
        [[ -x "$MM_BUILD_ROOT/src/manager/machinemgrd" ]] || {
                echo "FAIL: $MM_BUILD_ROOT/src/manager/machinemgrd not built"
                exit 1
        }
        MM_TMP=$(mktemp -d /var/tmp/mmtest.XXXXXX)
        MM_RUN=$MM_TMP/run
        MM_IMAGES=$MM_TMP/images
        mkdir -p "$MM_RUN" "$MM_IMAGES"
        trap '_mm_on_exit' EXIT
        trap '_mm_on_err "$LINENO" "$BASH_COMMAND"' ERR
        set -E
        _mm_log "$MM_TEST: tmp $MM_TMP, machine prefix $MM_PREFIX"
}

_mm_on_err() {
        echo "FAIL: aborted at line $1: $2" >&2
}

mm_daemon_start() {
        local i
        local -a netns=()
        # Network tests run the daemon in a netns of their own (nsenter execs it: $! stays the daemon).
        [[ -z "${MM_DAEMON_NETNS:-}" ]] || netns=(nsenter --net="/run/netns/$MM_DAEMON_NETNS")
        "${netns[@]}" "$MM_BUILD_ROOT/src/manager/machinemgrd" --runtime-dir="$MM_RUN" --image-path="$MM_IMAGES" \
                </dev/null >>"$MM_TMP/daemon.log" 2>&1 &
        MM_DAEMON_PID=$!
        # Answering, not just bound: after a SIGKILL the old socket file is still there.
        for ((i = 0; i < 50; i++)); do
                [[ -S "$MM_RUN/private" ]] && MM_TIMEOUT=2 mm list >/dev/null 2>&1 && return 0
                if ! kill -0 "$MM_DAEMON_PID" 2>/dev/null; then
                        echo "machinemgrd exited early; log:" >&2
                        tail -n 20 "$MM_TMP/daemon.log" >&2
                        MM_DAEMON_PID=
                        return 1
                fi
                sleep 0.1
        done
        echo "machinemgrd did not answer on $MM_RUN/private within 5 s" >&2
        return 1
}

_mm_daemon_signal_and_wait() {
        local sig=$1 i
        [[ -n "$MM_DAEMON_PID" ]] || return 0
        kill "-$sig" "$MM_DAEMON_PID" 2>/dev/null || true
        # Bounded: a daemon that ignores SIGTERM gets SIGKILL after 10 s and the test says so.
        for ((i = 0; i < 100; i++)); do
                kill -0 "$MM_DAEMON_PID" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$MM_DAEMON_PID" 2>/dev/null; then
                _mm_fail "machinemgrd (pid $MM_DAEMON_PID) still alive 10 s after SIG$sig"
                kill -KILL "$MM_DAEMON_PID" 2>/dev/null || true
        fi
        wait "$MM_DAEMON_PID" 2>/dev/null || true
        MM_DAEMON_PID=
}

mm_daemon_stop() {
        _mm_daemon_signal_and_wait TERM
}

mm_daemon_kill9() {
        _mm_daemon_signal_and_wait KILL
}

mm() {
        MACHINEMGR_ADDRESS="unix:path=$MM_RUN/private" \
                timeout -k 5 "$MM_TIMEOUT" "$MM_BUILD_ROOT/tools/machinemgr" "$@"
}

mm_busybox_image() {
        "$MM_SOURCE_ROOT/tools/mkimage-busybox" "$MM_IMAGES/$1"
}

mm_debian_image() {
        local name=$1
        shift
        "$MM_SOURCE_ROOT/tools/mkimage-debian" "$@" "$MM_IMAGES/$name"
}

mm_settings() {
        printf '%s\n' "$2" >"$MM_IMAGES/$1.machine"
}

mm_leader() {
        local out
        out=$(mm show "$1" -p Leader) || return 1
        echo "${out#Leader=}"
}

mm_machine_listed() {
        mm list --no-legend 2>/dev/null | awk '{print $1}' | grep -qxF -- "$1"
}

# --- cgroups ------------------------------------------------------------------------------------

# Mount point of a hierarchy: "unified" is cgroup2 (at /sys/fs/cgroup itself on a pure v2 host).
_mm_hier_root() {
        local hier=$1
        if [[ "$hier" == unified ]]; then
                if [[ -d /sys/fs/cgroup/unified ]]; then
                        echo /sys/fs/cgroup/unified
                else
                        echo /sys/fs/cgroup
                fi
        else
                echo "/sys/fs/cgroup/$hier"
        fi
}

# NAME as it appears in a unit name: escaped the way systemd does ('-' becomes '\x2d'), since the
# manager names the cgroups after the scope units.
_mm_unit_escape() {
        if command -v systemd-escape >/dev/null; then
                systemd-escape -- "$1"
        else
                printf '%s\n' "${1//-/\\x2d}"
        fi
}

# find -name treats a backslash as a quote; the escaped names are full of them.
_mm_find_quote() {
        printf '%s\n' "${1//\\/\\\\}"
}

# The directory of machine-NAME.scope in hierarchy HIER (memory, pids, unified, …); empty if none.
# Looked up by name below the hierarchy, because its parent (the daemon's cgroup) depends on where
# the test runner happens to live.
mm_scope_dir() {
        local name=$1 hier=$2 root
        root=$(_mm_hier_root "$hier")
        [[ -d "$root" ]] || return 0
        find "$root" -type d -name "machine-$(_mm_find_quote "$(_mm_unit_escape "$name")").scope" \
                -print -quit 2>/dev/null || true
}

# Which v1/v2 hierarchy has a controller: its own v1 mount if there is one, else cgroup2.
mm_controller_hier() {
        if [[ -f "/sys/fs/cgroup/$1/cgroup.procs" && ! -f "/sys/fs/cgroup/$1/cgroup.controllers" ]]; then
                echo "$1"
        else
                echo unified
        fi
}

# NAME.scope for one machine, or PREFIX* for all machines with PREFIX.
_mm_cgroup_dirs_of() {
        local pat=$1 glob
        if [[ "$pat" == *'*' ]]; then
                glob="$(_mm_find_quote "$(_mm_unit_escape "${pat%\*}")")*"
        else
                glob="$(_mm_find_quote "$(_mm_unit_escape "${pat%.scope}")").scope"
        fi
        find /sys/fs/cgroup -type d -name "machine-$glob" -prune -print 2>/dev/null || true
}

# Every process in these cgroups and their sub-cgroups (the guest may create its own).
_mm_procs_in() {
        local d
        for d in "$@"; do
                [[ -d "$d" ]] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
        done | sort -un
}

_mm_mounts_under() {
        local dir=$1
        # Field 5 of mountinfo is the mount point; octal escapes do not matter for our own paths.
        awk -v d="$dir" 'index($5, d "/") == 1 || $5 == d {print $5}' /proc/self/mountinfo
}

# --- leftovers --------------------------------------------------------------------------------

# Lists everything still around of one machine NAME, or with "PREFIX*" of all machines with PREFIX.
_mm_leftovers() {
        local pattern=$1 dirs procs f
        dirs=$(_mm_cgroup_dirs_of "${pattern%\*}.scope")
        [[ "$pattern" != *'*' ]] || dirs=$(_mm_cgroup_dirs_of "$pattern")
        if [[ -n "$dirs" ]]; then
                # shellcheck disable=SC2086
                procs=$(_mm_procs_in $dirs)
                [[ -z "$procs" ]] || echo "processes: $(echo "$procs" | tr '\n' ' ')"
                echo "cgroups: $(echo "$dirs" | tr '\n' ' ')"
        fi
        # shellcheck disable=SC2206
        local files=("$MM_RUN/machines/"$pattern "$MM_RUN/host/"$pattern)
        for f in "${files[@]}"; do
                [[ -e "$f" ]] && echo "state: $f"
        done
        if [[ -n "$MM_TMP" ]]; then
                local m
                m=$(_mm_mounts_under "$MM_TMP")
                [[ -z "$m" ]] || echo "mounts: $(echo "$m" | tr '\n' ' ')"
        fi
        return 0
}

assert_no_leftovers() {
        local name=$1 left
        left=$(_mm_leftovers "$name")
        if [[ -z "$left" ]]; then
                _mm_ok "nothing left of $name"
        else
                _mm_fail "leftovers of $name: $(echo "$left" | tr '\n' ';')"
        fi
}

# Removes by force what the daemon failed to clean up, so one broken test does not poison the next.
_mm_force_clean() {
        local dirs procs p d m
        dirs=$(_mm_cgroup_dirs_of "$MM_PREFIX*")
        if [[ -n "$dirs" ]]; then
                # shellcheck disable=SC2086
                procs=$(_mm_procs_in $dirs)
                for p in $procs; do
                        kill -KILL "$p" 2>/dev/null || true
                done
                # Deepest first: a cgroup can only be removed once its children are.
                for ((i = 0; i < 20; i++)); do
                        # shellcheck disable=SC2086
                        [[ -z "$(_mm_procs_in $dirs)" ]] && break
                        sleep 0.1
                done
                for d in $(echo "$dirs" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-); do
                        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
                done
        fi
        if [[ -n "$MM_TMP" ]]; then
                for m in $(_mm_mounts_under "$MM_TMP" | sort -r); do
                        umount -l "$m" 2>/dev/null || true
                done
        fi
}

_mm_cleanup() {
        local names n left
        $_mm_cleaned && return 0
        _mm_cleaned=true
        [[ -n "$MM_TMP" ]] || return 0

        # A daemon that was killed by the test still knows its machines after a restart.
        if [[ -z "$MM_DAEMON_PID" && -n "$(ls -A "$MM_RUN/machines" 2>/dev/null)" ]]; then
                mm_daemon_start || true
        fi
        if [[ -n "$MM_DAEMON_PID" ]]; then
                names=$(mm list --no-legend 2>/dev/null | awk '{print $1}') || true
                for n in $names; do
                        mm terminate "$n" >/dev/null 2>&1 || _mm_log "terminate $n failed"
                done
                for n in $names; do
                        mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$n' ]" ||
                                _mm_log "$n still has a state file 10 s after terminate"
                done
                mm_daemon_stop
        fi

        left=$(_mm_leftovers "$MM_PREFIX*")
        if [[ -n "$left" ]]; then
                _mm_fail "leftovers after the test: $(echo "$left" | tr '\n' ';')"
                _mm_force_clean
        fi
        if [[ "$MM_FAILED" -gt 0 && -s "$MM_TMP/daemon.log" ]]; then
                echo "--- daemon log (last 40 lines) ---"
                tail -n 40 "$MM_TMP/daemon.log"
        fi
        # Skip anything still mounted rather than deleting through it.
        rm -rf --one-file-system "$MM_TMP" 2>/dev/null || _mm_log "could not remove $MM_TMP entirely"
        if declare -F journald_cleanup >/dev/null; then
                journald_cleanup || true
        fi
}

_mm_on_exit() {
        local rc=$?
        trap - ERR
        set +e
        _mm_cleanup
        if [[ $rc -ne 0 && $rc -ne 77 ]]; then
                echo "$MM_PASSED passed, $((MM_FAILED + 1)) failed (aborted with status $rc)"
                exit "$rc"
        fi
        if [[ "$MM_FAILED" -gt 0 ]]; then
                exit 1
        fi
        exit "$rc"
}

mm_finish() {
        trap - ERR
        set +e
        _mm_cleanup
        echo "$MM_PASSED passed, $MM_FAILED failed"
        trap - EXIT
        [[ "$MM_FAILED" -eq 0 ]] || exit 1
        exit 0
}

# --- journal ------------------------------------------------------------------------------------

if [[ -f "$MM_SOURCE_ROOT/tests/console/journald.sh" ]]; then
        # shellcheck source=tests/console/journald.sh
        . "$MM_SOURCE_ROOT/tests/console/journald.sh"
fi

# --- common guests ------------------------------------------------------------------------------

# A busybox machine NAME with Boot=no running CMD (default: a long sleep); returns once it is started.
mm_start_busybox() {
        local name=$1 cmd=${2:-sleep 100000}
        shift 2 || shift $#
        [[ -d "$MM_IMAGES/$name" ]] || mm_busybox_image "$name"
        mm start "$name" --no-boot --command="$cmd" "$@"
}

# Succeeds while PID is alive (and not a zombie).
mm_pid_alive() {
        [[ -d "/proc/$1" ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# Succeeds once PID is gone or a zombie (a leader adopted after a daemon restart is reaped by
# whoever inherited it, not necessarily at once).
mm_pid_gone() {
        ! mm_pid_alive "$1"
}
