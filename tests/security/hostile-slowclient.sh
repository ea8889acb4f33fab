#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile guests and a client that does not read, issue 11 item 5: every signal and reply the daemon
# sends to a private-socket connection is queued for it until it reads. While the inits of
# PrivateUsers=pick guests flood ever-changing STATUS= texts (8 of them, 80 signals/s after
# coalescing, so that S outgrows the bound in about 20 s):
#   - S subscribes (one call) and never reads: the signals pile up for it;
#   - P sends 20000 Introspect calls back to back and never reads a reply.
# The daemon's RSS stays bounded, `machinemgr list` answers (lib-hostile.sh's probes), S and P are
# disconnected (their sockets see EOF, the daemon logs it). Then Q sends a few hundred calls and never
# reads: its queue stays under the bound, and a daemon asked to stop with Q connected exits at once
# (sd_bus_flush() would wait for Q for ever).
set -euo pipefail
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

GUEST_NOTIFY=${MM_GUEST_NOTIFY:-$MM_BUILD_ROOT/tests/security/guest-notify}
SLOW_CLIENT=$(dirname "$0")/slow-client.py
FLOODERS=8
# Texts per flooding init, each sent REPEAT times: about 40 s of datagrams at the daemon's read rate
# (1000/s); the texts change faster than StatusText may (10/s), so each guest makes 10 signals/s.
TEXTS=2000
REPEAT=20

hostile_setup
[[ -x "$GUEST_NOTIFY" ]] || {
        _mm_fail "$GUEST_NOTIFY not built"
        mm_finish
}
STOP=$MM_TMP/stop-clients
client_pids=()
stop_clients() {
        local p
        touch "$STOP"
        for p in "${client_pids[@]}"; do
                kill "$p" 2>/dev/null || true
        done
}
hostile_cleanup_add stop_clients

# NAME MODE [ARG]: a slow client in the background, its output in $MM_TMP/NAME.out; returns once it is set up.
slow_client() {
        local name=$1
        shift
        python3 "$SLOW_CLIENT" "$MM_RUN/private" "$@" "$STOP" >"$MM_TMP/$name.out" 2>&1 &
        client_pids+=($!)
        eval "${name}_pid=$!"
        mm_wait_for 10 grep -q READY "$MM_TMP/$name.out"
}

# The init of a flooding guest: one exec chain, so that every datagram comes from PID 1. READY=1 first:
# the daemon refuses to start more than a dozen booting guests at once (fs.inotify.max_user_instances).
flood_init() {
        local k=$1 i
        printf '#!/bin/sh\nexec /bin/guest-notify READY=1 --'
        for ((i = 0; i < TEXTS; i++)); do
                printf ' /bin/guest-notify -n %d "STATUS=flood %d text %d" --' "$REPEAT" "$k" "$i"
        done
        printf ' /bin/sleep 100000\n'
}

slow_client S subscribe
# shellcheck disable=SC2154 # set by slow_client
echo "# client S (subscriber) PID $S_pid"

hostile_probe_start
slow_client P pipeline 20000
# shellcheck disable=SC2154
echo "# client P (20000 calls) PID $P_pid"
flooders=()
for ((k = 0; k < FLOODERS; k++)); do
        f=$(mm_name "flood$k")
        flooders+=("$f")
        mm_busybox_image "$f"
        cp "$GUEST_NOTIFY" "$MM_IMAGES/$f/bin/guest-notify"
        flood_init "$k" >"$MM_IMAGES/$f/sbin/init"
        chmod 0755 "$MM_IMAGES/$f/sbin/init"
        mm start "$f" --private-users=pick
done
disconnected() {
        grep -q "Disconnecting private bus client (PID $1," "$MM_TMP/daemon.log"
}
assert_true "P (20000 unread replies) disconnected within 20 s" mm_wait_for 20 disconnected "$P_pid"
assert_true "S (unread signals) disconnected within 60 s" mm_wait_for 60 disconnected "$S_pid"
f0_status=$(mm show "${flooders[0]}" -p StatusText 2>/dev/null || true)
echo "# ${flooders[0]}: $f0_status"
assert_contains "the flooding inits' texts are shown" "$f0_status" "StatusText=flood 0 text "
hostile_probe_check "item 5: 8 flooding inits, clients that do not read"
grep -F "Disconnecting private bus client" "$MM_TMP/daemon.log" | sed 's/^/# daemon: /' | head -n 5 || true

touch "$STOP"
for c in S P; do
        pid_var=${c}_pid
        wait "${!pid_var}" || true
        echo "# $c: $(tail -n 1 "$MM_TMP/$c.out")"
done
assert_contains "S saw EOF" "$(tail -n 1 "$MM_TMP/S.out")" '"eof": true'
assert_contains "P saw EOF" "$(tail -n 1 "$MM_TMP/P.out")" '"eof": true'

# A stop with a connection whose queue the daemon cannot write: Q again, unread, under the bound.
rm -f "$STOP"
hostile_end "${flooders[@]}"
slow_client Q pipeline 300
sleep 1
# shellcheck disable=SC2154
assert_eq "Q (under the bound) not disconnected" "" "$(disconnected "$Q_pid" && echo disconnected || true)"
t0=$(_hostile_now_us)
mm_daemon_stop
ms=$((($(_hostile_now_us) - t0) / 1000))
echo "# daemon stop with an unread connection took $ms ms"
assert_true "daemon stopped within 2 s with an unread connection open (took $ms ms)" test "$ms" -lt 2000
touch "$STOP"
mm_finish
