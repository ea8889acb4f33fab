#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 8: the state file cannot be broken by guest-controlled text, and every valid name is
# re-adopted.
# (a) Guests whose init (guest-notify, staying PID 1) sends STATUS= texts made to break a line-based
#     state file: a text that fills a 4096-byte line buffer exactly so that its tail ("ID=x") is read
#     as a line of its own, one full of quotes, backslashes, '=', '\r', '\t', invalid UTF-8 and
#     key-like fragments, and a text of the largest datagram. After daemon restarts (SIGTERM and
#     SIGKILL) each is re-adopted with the same leader and uid_map, and StatusText what it was: the text
#     as sent, sanitised and cut to the documented bound (NOTIFY_STATUS_MAX = 1024 bytes, control
#     characters and invalid bytes as '?', src/manager/notify.h). A guest started after the restarts
#     gets a uid range of its own (none of the re-adopted guests' ranges is handed out again).
# (b) Machine names with '.' and with ".tmp." in them are re-adopted after a restart.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

NOTIFY_TOOL=${MM_GUEST_NOTIFY:-$MM_BUILD_ROOT/tests/security/guest-notify}
[[ -x "$NOTIFY_TOOL" ]] || mm_skip "$NOTIFY_TOOL not built (static libc missing?)"
readonly STATUS_MAX=1024

hostile_setup

# --- (a) hostile STATUS= texts ------------------------------------------------------------------------------
# The old state file's line: "STATUS_TEXT=" (12 bytes) + text, read in chunks of 4095 bytes: a text of
# 4083 bytes fills the first chunk, whatever follows is parsed as a line of its own.
FILL=$(printf 'A%.0s' $(seq 4083))
# Sent texts (guest-notify escapes) and what StatusText must show.
declare -A SENT EXPECT
SENT[split]="${FILL}ID=x"
EXPECT[split]=${FILL:0:STATUS_MAX}
SENT[quotes]='q"uote\\",\r"leader":1,\t"userns_shift":0}\xff\xfeLEADER=1 USERNS_SHIFT=0 ]]}'
EXPECT[quotes]='q"uote\",?"leader":1,?"userns_shift":0}??LEADER=1 USERNS_SHIFT=0 ]]}'
# The largest datagram: "STATUS=" and 4089 bytes.
BIG=$(printf 'Z%.0s' $(seq 4080))
SENT[big]="${BIG}\rLEADER=1"
EXPECT[big]=${BIG:0:STATUS_MAX}
KINDS=(split quotes big)

status_of() {
        local s
        s=$(mm show "$1" -p StatusText 2>/dev/null) || return 1
        printf '%s' "${s#StatusText=}"
}

status_is() {
        [[ "$(status_of "$1")" == "$2" ]]
}

map_of() {
        local l
        l=$(mm_leader "$1" 2>/dev/null) || return 0
        _hostile_map_line "/proc/$l/uid_map"
}

declare -A LEADER MAP
for k in "${KINDS[@]}"; do
        N=$(mm_name "st-$k")
        mm_busybox_image "$N"
        cp "$NOTIFY_TOOL" "$MM_IMAGES/$N/guest-notify"
        # Init sends the text, then READY=1 on its own (the text alone may fill a datagram), and stays PID 1.
        printf '#!/bin/sh\nexec /guest-notify %q -- /guest-notify READY=1 -- sleep 100000\n' "STATUS=${SENT[$k]}" \
                >"$MM_IMAGES/$N/sbin/init"
        chmod 0755 "$MM_IMAGES/$N/sbin/init"
        assert_exit 0 mm start "$N"
        assert_true "[$k] running" mm_wait_for 10 sh -c \
                "[ \"\$(MACHINEMGR_ADDRESS=unix:path=$MM_RUN/private $MM_BUILD_ROOT/tools/machinemgr show $N -p State)\" = State=running ]"
        LEADER[$k]=$(mm_leader "$N" || echo 0)
        MAP[$k]=$(map_of "$N")
        assert_true "[$k] unprivileged (uid_map '${MAP[$k]}')" test "${MAP[$k]%% *}" = 0 -a "${MAP[$k]}" != "0 0 4294967295"
        if ! mm_wait_for 5 status_is "$N" "${EXPECT[$k]}"; then
                got=$(status_of "$N" || true)
                _mm_fail "[$k] StatusText as sent, sanitised and cut to $STATUS_MAX bytes: got ${#got} bytes '${got:0:80}…'"
        else
                _mm_ok "[$k] StatusText as sent, sanitised and cut to $STATUS_MAX bytes (${#EXPECT[$k]} bytes)"
        fi
done
# The text is saved with the machine at most once a second.
sleep 1.5

for sig in TERM KILL; do
        if [[ $sig == TERM ]]; then mm_daemon_stop; else mm_daemon_kill9; fi
        mm_daemon_start
        for k in "${KINDS[@]}"; do
                N=$(mm_name "st-$k")
                assert_true "[$k] re-adopted after SIG$sig" mm_machine_listed "$N"
                assert_eq "[$k] same leader after SIG$sig" "${LEADER[$k]}" "$(mm_leader "$N" 2>/dev/null || true)"
                assert_eq "[$k] same uid_map after SIG$sig" "${MAP[$k]}" "$(map_of "$N")"
                assert_eq "[$k] StatusText kept after SIG$sig" "${EXPECT[$k]}" "$(status_of "$N" || true)"
                assert_eq "[$k] still running after SIG$sig" "State=running" "$(mm show "$N" -p State 2>/dev/null || true)"
        done
done
# The re-adopted hostile guests do not disturb anyone.
hostile_probe_start
sleep 6
hostile_probe_check "hostile STATUS= texts, re-adopted"

# No re-adopted guest's uid range is given to a new one.
NEW=$(mm_name st-new)
assert_exit 0 hostile_attacker "$NEW"
NEWMAP=$(map_of "$NEW")
VMAP=$(map_of "$HOSTILE_VICTIM")
for k in "${KINDS[@]}" victim; do
        [[ $k == victim ]] && other=$VMAP || other=${MAP[$k]}
        # Ranges [base, base + 65536) must not overlap.
        nb=$(awk '{print $2}' <<<"$NEWMAP")
        ob=$(awk '{print $2}' <<<"$other")
        assert_true "a new guest's uid range ($nb) is not the one of [$k] ($ob)" \
                test -n "$nb" -a -n "$ob" -a \( "${nb:-0}" -ge $((${ob:-0} + 65536)) -o $((${nb:-0} + 65536)) -le "${ob:-0}" \)
done

# --- (b) names with '.' and '.tmp.' ---------------------------------------------------------------------
DOT=$(mm_name a.b)
TMP=$(mm_name x.tmp.1)
declare -A NLEADER
for N in "$DOT" "$TMP"; do
        mm_busybox_image "$N"
        assert_exit 0 mm start "$N" --no-boot --command="sleep 100000"
        NLEADER[$N]=$(mm_leader "$N" || echo 0)
done
for sig in TERM KILL; do
        if [[ $sig == TERM ]]; then mm_daemon_stop; else mm_daemon_kill9; fi
        mm_daemon_start
        for N in "$DOT" "$TMP"; do
                assert_true "[$N] state file kept after SIG$sig" test -e "$MM_RUN/machines/$N"
                assert_true "[$N] re-adopted after SIG$sig" mm_machine_listed "$N"
                assert_eq "[$N] same leader after SIG$sig" "${NLEADER[$N]}" "$(mm_leader "$N" 2>/dev/null || true)"
        done
done
for k in "${KINDS[@]}"; do
        hostile_end "$(mm_name "st-$k")"
done
hostile_end "$DOT" "$TMP" "$NEW"
mm_finish
