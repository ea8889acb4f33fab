#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 7, console: guest root in a PrivateUsers guest floods its console (short lines, lines
# longer than a journal entry, and bytes without any newline) for 10 s, with an interactive client
# attached. The flood must stop at the guest's journal rate limit (10000 lines or 4 MiB per 30 s) with
# one "N console lines suppressed" entry at the interval's end, the attached client keeps getting the
# output, the daemon spends little CPU on it; meanwhile the victim's ticks all reach the journal and
# `machinemgr list` stays fast (lib-hostile's probes).
set -euo pipefail
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

FLOOD_SEC=10
# The daemon's limits (console.c): what the test checks the journal against.
BURST_LINES=10000
BURST_BYTES=$((4 * 1024 * 1024))
INTERVAL_SEC=30

hostile_setup
NOISY=$(mm_name noisy)
hostile_attacker "$NOISY"

# journalctl over this test's window, for one machine's console lines or the daemon's messages on it.
SINCE=$(date '+%Y-%m-%d %H:%M:%S')
console_lines() {
        journalctl --no-pager -q -o cat --since "$SINCE" MACHINEMGR_MACHINE="$1" SYSLOG_IDENTIFIER="$1"
}
suppressed_entry() {
        journalctl --no-pager -q -o export --since "$SINCE" MACHINEMGR_MACHINE="$NOISY" PRIORITY=4 |
                grep -a -e '^MESSAGE=' -e '^N_DROPPED=' -e '^PRIORITY='
}
daemon_cpu_ticks() {
        awk '{print $14 + $15}' "/proc/$MM_DAEMON_PID/stat"
}

# An interactive client, reading everything as fast as it comes; its input is a FIFO nobody writes to
# (opened read-write, so it never sees EOF and types nothing).
mkfifo "$MM_TMP/console-in"
mm console "$NOISY" <>"$MM_TMP/console-in" >"$MM_TMP/attached" 2>/dev/null &
ATTACHED=$!

hostile_probe_start
CPU0=$(daemon_cpu_ticks)
T0=$(date +%s%N)
# Three floods at once, as guest root: short lines, 5000-byte lines (two entries each), no newline at all.
LONG=$(head -c 5000 /dev/zero | tr '\0' L)
FLOOD="timeout $FLOOD_SEC yes flood-short >/dev/console & timeout $FLOOD_SEC yes $LONG >/dev/console &"
FLOOD+=" timeout $FLOOD_SEC tr '\\0' n </dev/zero >/dev/console; wait"
assert_exit 0 mm shell "$NOISY" sh -c "$FLOOD"
T1=$(date +%s%N)
CPU1=$(daemon_cpu_ticks)
# The relay is still attached: it saw the flood continue after the journal stopped taking it.
ATTACHED_BYTES=$(stat -c %s "$MM_TMP/attached")
hostile_probe_check "item 7 console flood"
# Not one of the victim's lines lost while the other guest flooded: its ticks are consecutive.
VICTIM_TICKS=$(journalctl --no-pager -q -o cat --since "$SINCE" MACHINEMGR_MACHINE="$HOSTILE_VICTIM" \
        SYSLOG_IDENTIFIER="$HOSTILE_VICTIM" | sed -n 's/^victim-tick //p')
GAPS=$(echo "$VICTIM_TICKS" | awk 'NR > 1 && $1 != prev + 1 {g++} {prev = $1} END {print g + 0}')
echo "# victim ticks $(echo "$VICTIM_TICKS" | head -1)..$(echo "$VICTIM_TICKS" | tail -1), $GAPS gap(s)"
assert_eq "the victim's ticks have no gap" 0 "$GAPS"

HZ=$(getconf CLK_TCK)
CPU_PCT=$(((CPU1 - CPU0) * 100 * 1000000000 / HZ / (T1 - T0)))
echo "# daemon CPU during the ${FLOOD_SEC} s flood: ${CPU_PCT}% of one CPU; attached client read $ATTACHED_BYTES bytes"
# Reading the console of a guest over its limit is paced (64 KiB per 100 ms): the flood costs the daemon
# a small share of a CPU, not all of it.
assert_true "daemon CPU during the flood < 10% (${CPU_PCT}%)" test "$CPU_PCT" -lt 10

# The suppressed entry comes when the interval that began with the flood ends.
assert_true "a 'lines suppressed' entry for $NOISY" \
        mm_wait_for $((INTERVAL_SEC + 10)) sh -c "journalctl --no-pager -q -o cat --since '$SINCE' \
                MACHINEMGR_MACHINE='$NOISY' PRIORITY=4 | grep -q 'lines suppressed'"
ENTRY=$(suppressed_entry || true)
echo "# $(echo "$ENTRY" | head -3 | tr '\n' ' ')"
assert_contains "suppressed entry: priority warning" "$ENTRY" "PRIORITY=4"
DROPPED=$(echo "$ENTRY" | sed -n 's/^N_DROPPED=//p' | head -1)
assert_true "suppressed entry counts the dropped lines (${DROPPED:-none})" test "${DROPPED:-0}" -gt 1000

# Within the one interval the flood lasted, the journal got at most the burst, lines and bytes.
NOISY_LINES=$(console_lines "$NOISY" | wc -l)
NOISY_BYTES=$(console_lines "$NOISY" | wc -c)
echo "# $NOISY: $NOISY_LINES console entries, $NOISY_BYTES bytes in the journal"
assert_true "noisy guest's entries bounded (${NOISY_LINES} <= $BURST_LINES)" test "$NOISY_LINES" -le "$BURST_LINES"
assert_true "noisy guest's bytes bounded (${NOISY_BYTES})" test "$NOISY_BYTES" -le $((BURST_BYTES + NOISY_LINES))
assert_true "noisy guest's first lines were logged" test "$NOISY_LINES" -ge 100
# Lines longer than an entry are split (the three writers interleave, so only the size is checked).
assert_eq "no entry over 4096 bytes" 0 "$(console_lines "$NOISY" | awk 'length($0) > 4096' | wc -l)"

# The attached client got more than the journal did: the limit is the journal's, not the console's.
assert_true "attached client kept receiving ($ATTACHED_BYTES bytes > journal's $NOISY_BYTES)" \
        test "$ATTACHED_BYTES" -gt $((NOISY_BYTES + 1024 * 1024))
kill "$ATTACHED" 2>/dev/null || true
wait "$ATTACHED" 2>/dev/null || true

# The limit is per interval: the next one logs the guest's lines again.
assert_exit 0 mm shell "$NOISY" sh -c 'echo after-the-flood >/dev/console'
assert_true "the guest's console is logged again after the interval" \
        mm_wait_for 10 sh -c "journalctl --no-pager -q -o cat --since '$SINCE' MACHINEMGR_MACHINE='$NOISY' \
                SYSLOG_IDENTIFIER='$NOISY' | grep -qx after-the-flood"

mm_finish
