# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# A journald for tests on hosts where none runs (no systemd as PID 1). Source this file; sourcing it
# only defines functions and does nothing else.
#
#   journald_ensure    Makes sure /run/systemd/journal/socket is served. If a journald already serves it
#                      (the host's, or one another test started) it is used as is; otherwise
#                      /lib/systemd/systemd-journald is started standalone (it binds its own sockets and
#                      writes to /var/log/journal or /run/log/journal). Returns 0 when the journal accepts
#                      entries, 1 when it could not be made to (the caller should skip: exit 77).
#   journald_cleanup   Undoes journald_ensure: stops the journald it started (by PID), but only once no
#                      other live test that called journald_ensure still uses it. Idempotent; safe to call
#                      from an EXIT trap even when journald_ensure was never called or failed.
#
# Tests of several engineers may run at the same time, so the started journald is shared: its PID and the
# PIDs of the shells using it are kept in $JOURNALD_STATE_DIR under a flock. A user that died without
# cleaning up is pruned by the next caller, so a crashed test does not keep journald alive forever.
#
# Typical use:
#       . "$MM_SOURCE_ROOT/tests/console/journald.sh"
#       trap journald_cleanup EXIT
#       journald_ensure || exit 77

JOURNALD_BIN=${JOURNALD_BIN:-/lib/systemd/systemd-journald}
JOURNALD_STATE_DIR=${JOURNALD_STATE_DIR:-/run/machinemgr-test-journald}
_journald_user=

_journald_served() {
        # systemd-cat connects to journald's stream socket: refused unless a journald is listening.
        [ -S /run/systemd/journal/socket ] && systemd-cat true 2>/dev/null
}

_journald_locked() {
        # Runs "$@" with the state directory locked against other tests.
        mkdir -p "$JOURNALD_STATE_DIR" || return 1
        (
                flock -w 30 9 || exit 1
                "$@"
        ) 9>"$JOURNALD_STATE_DIR/lock"
}

_journald_ours_alive() {
        local pid
        pid=$(cat "$JOURNALD_STATE_DIR/pid" 2>/dev/null) || return 1
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

_journald_start() {
        local i
        mkdir -p /run/systemd/journal || return 1
        # 9>&-: journald must not inherit (and so hold forever) our lock.
        setsid "$JOURNALD_BIN" </dev/null >>"$JOURNALD_STATE_DIR/journald.log" 2>&1 9>&- &
        echo $! >"$JOURNALD_STATE_DIR/pid"
        for i in $(seq 100); do
                _journald_served && return 0
                kill -0 "$(cat "$JOURNALD_STATE_DIR/pid")" 2>/dev/null || break
                sleep 0.05
        done
        echo "journald_ensure: $JOURNALD_BIN did not come up, see $JOURNALD_STATE_DIR/journald.log" >&2
        kill "$(cat "$JOURNALD_STATE_DIR/pid")" 2>/dev/null
        rm -f "$JOURNALD_STATE_DIR/pid"
        return 1
}

_journald_ensure_locked() {
        local user=$1
        if _journald_ours_alive; then
                touch "$JOURNALD_STATE_DIR/user.$user"
                return 0
        fi
        rm -f "$JOURNALD_STATE_DIR/pid" "$JOURNALD_STATE_DIR"/user.*
        # Someone else's journald (the host's): use it, and never stop it.
        _journald_served && return 2
        _journald_start || return 1
        touch "$JOURNALD_STATE_DIR/user.$user"
}

journald_ensure() {
        local r
        [ -n "$_journald_user" ] && return 0
        _journald_locked _journald_ensure_locked "$$"
        r=$?
        case $r in
        0) _journald_user=$$ ;;
        2) return 0 ;;
        esac
        return "$r"
}

_journald_remove_sockets() {
        # What our journald bound; left behind they would make clients think a journal is there.
        _journald_served || rm -f /run/systemd/journal/socket /run/systemd/journal/stdout \
                /run/systemd/journal/dev-log /run/systemd/journal/io.systemd.journal
}

_journald_cleanup_locked() {
        local user=$1 f pid
        rm -f "$JOURNALD_STATE_DIR/user.$user"
        for f in "$JOURNALD_STATE_DIR"/user.*; do
                [ -e "$f" ] || continue
                kill -0 "${f##*/user.}" 2>/dev/null && return 0
                rm -f "$f"
        done
        pid=$(cat "$JOURNALD_STATE_DIR/pid" 2>/dev/null) || return 0
        rm -f "$JOURNALD_STATE_DIR/pid"
        [ -n "$pid" ] || return 0
        kill "$pid" 2>/dev/null || return 0
        for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        _journald_remove_sockets
        return 0
}

journald_cleanup() {
        [ -n "$_journald_user" ] || return 0
        _journald_locked _journald_cleanup_locked "$_journald_user"
        _journald_user=
}
