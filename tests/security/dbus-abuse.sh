#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile D-Bus input (issue 6 §2): >10,000 malformed or hostile calls (dbus-abuse.py speaks the wire
# protocol itself) against a live daemon, an ASan/UBSan build when MM_ASAN_BUILD_ROOT is given or this
# build tree is sanitized. The daemon must answer each with a named error (or drop a connection that
# sent garbage), stay up, refuse every state-changing call from a non-root caller with AccessDenied,
# leave no state behind, and exit cleanly on SIGTERM with nothing in the sanitizer report.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

[[ -z "${MM_ASAN_BUILD_ROOT:-}" ]] || MM_BUILD_ROOT=$MM_ASAN_BUILD_ROOT
ABUSE=$MM_SOURCE_ROOT/tests/security/dbus-abuse.py
command -v python3 >/dev/null || mm_skip "python3 missing"
command -v runuser >/dev/null || mm_skip "runuser missing"

mm_setup
# The non-root caller must be able to reach the socket: only the daemon's own check may refuse it.
chmod 755 "$MM_TMP" "$MM_RUN"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
mm_daemon_start
DPID=$MM_DAEMON_PID
SOCK=$MM_RUN/private
VICTIM=$(mm_name victim)
RACE=$(mm_name race)
IDLE=$(mm_name idle)
mm_busybox_image "$IDLE"
mm_busybox_image "$RACE"
assert_exit 0 mm_start_busybox "$VICTIM"
LEADER=$(mm_leader "$VICTIM" || echo 0)
TOTAL_SENT=0
TOTAL_ANSWERED=0
TOTAL_DISC=0

# $1 label, then the command printing the JSON counts.
run_abuse() {
        local label=$1 out
        shift
        out=$("$@") || { _mm_fail "$label: abuse client failed"; return 0; }
        echo "# $label: $out" | cut -c1-2000
        local sent answered disc unexpected
        read -r sent answered disc unexpected < <(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print(d["sent"], d["answered"], d["disconnects"], len(d["unexpected"]))
for u in d["unexpected"]:
    print("UNEXPECTED", u, file=sys.stderr)
' "$out")
        TOTAL_SENT=$((TOTAL_SENT + sent))
        TOTAL_ANSWERED=$((TOTAL_ANSWERED + answered))
        TOTAL_DISC=$((TOTAL_DISC + disc))
        assert_eq "$label: every call answered or its connection dropped" "$sent" "$((answered + disc))"
        assert_eq "$label: every answer is one of the expected named errors" 0 "$unexpected"
        assert_true "$label: daemon still running" kill -0 "$DPID"
        assert_exit 0 mm list
}

run_abuse "malformed/hostile calls as root" python3 "$ABUSE" "$SOCK" root "$IDLE"
run_abuse "state-changing calls as nobody" runuser -u nobody -- python3 "$ABUSE" "$SOCK" nonroot "$VICTIM"
assert_eq "$VICTIM untouched by the non-root calls (same leader)" "$LEADER" "$(mm_leader "$VICTIM" || true)"
assert_true "no image was cloned/renamed by nobody" test ! -e "$MM_IMAGES/stolen" -a ! -e "$MM_IMAGES/renamed" \
        -a -d "$MM_IMAGES/$VICTIM"
run_abuse "concurrent start/terminate of one name (8 clients)" python3 "$ABUSE" "$SOCK" race "$RACE" 8 25

# Only the victim may be running now (the race machine may be up if a start won last).
mm terminate "$RACE" >/dev/null 2>&1 || true
assert_true "$RACE gone after the race" mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$RACE' ]"
assert_no_leftovers "$RACE"
assert_no_leftovers "$IDLE"
assert_exit 0 mm list --no-legend
assert_eq "only $VICTIM listed" "$VICTIM" "$(awk '{print $1}' <<<"$MM_STDOUT")"
assert_eq "only $VICTIM has a state file" "$VICTIM" "$(ls -A "$MM_RUN/machines")"
assert_exit 0 mm terminate "$VICTIM"
assert_true "$VICTIM gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$VICTIM' ]"
assert_no_leftovers "$VICTIM"

mm_daemon_stop
assert_true "daemon exited after SIGTERM" mm_pid_gone "$DPID"
SAN=$(grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: ' "$MM_TMP/daemon.log" || true)
assert_eq "sanitizer report clean" "" "$SAN"
echo "# totals: sent $TOTAL_SENT, answered $TOTAL_ANSWERED, connections dropped $TOTAL_DISC, daemon crashes 0 (checked after each batch)"
assert_true "at least 10000 hostile calls sent (sent $TOTAL_SENT)" test "$TOTAL_SENT" -ge 10000
mm_finish
