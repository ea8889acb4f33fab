#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile guest, issue 11 item 5: the notify socket. Guest root in PrivateUsers=pick guests (Boot=yes
# busybox images whose /sbin/init is a script) attacks /run/host/notify:
#   1. 8 processes started with `machinemgr shell` (not init) flood STATUS= and READY=1: the machine's
#      StatusText and State never take their values (only init is listened to), the drops are logged;
#   2. an init that floods STATUS= (200000 datagrams): its StatusText is shown, the daemon stays
#      responsive;
#   3. an init whose STATUS= is 3000 bytes of invalid UTF-8, terminal escapes and control characters:
#      shown cut to 1024 bytes of valid UTF-8 without control characters; list and show still work.
# Throughout, the victim guest keeps logging and `machinemgr list` answers (lib-hostile.sh's probes).
set -euo pipefail
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

GUEST_NOTIFY=${MM_GUEST_NOTIFY:-$MM_BUILD_ROOT/tests/security/guest-notify}
FLOOD_SECS=10

hostile_setup
[[ -x "$GUEST_NOTIFY" ]] || {
        _mm_fail "$GUEST_NOTIFY not built"
        mm_finish
}

# NAME INIT_SCRIPT_BODY: a Boot=yes busybox guest with guest-notify, started with PrivateUsers=pick (an
# image made beforehand is used as it is).
notify_guest() {
        local name=$1 body=$2
        [[ -d "$MM_IMAGES/$name" ]] || mm_busybox_image "$name"
        cp "$GUEST_NOTIFY" "$MM_IMAGES/$name/bin/guest-notify"
        printf '#!/bin/sh\n%s\n' "$body" >"$MM_IMAGES/$name/sbin/init"
        chmod 0755 "$MM_IMAGES/$name/sbin/init"
        mm start "$name" --private-users=pick
}

show_prop() {
        local out
        out=$(mm show "$1" -p "$2" 2>/dev/null) || return 1
        printf '%s\n' "${out#"$2"=}"
}

# CPU time (user + system) the daemon has used, in ms: what a flood costs the host, not the guest.
daemon_cpu_ms() {
        awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$MM_DAEMON_PID/stat"
}

status_is() {
        [[ "$(show_prop "$1" StatusText)" == "$2" ]]
}

status_has() {
        [[ "$(show_prop "$1" StatusText)" == *"$2"* ]]
}

# --- 1. processes other than init ----------------------------------------------------------------------
A=$(mm_name shell)
notify_guest "$A" "exec /bin/guest-notify 'STATUS=init of A' -- /bin/sleep 100000"
assert_true "A: init's STATUS= shown" mm_wait_for 10 status_is "$A" "init of A"
assert_eq "A: starting (its init never says READY=1)" starting "$(show_prop "$A" State)"

hostile_probe_start
cpu0=$(daemon_cpu_ms)
# 8 guest-root processes, children of the shell helper: each sends datagrams for FLOOD_SECS seconds.
mm shell "$A" /bin/sh -c "for i in 1 2 3 4 5 6 7 8; do
                timeout $FLOOD_SECS /bin/guest-notify -n 100000000 \"STATUS=evil \$i\\nREADY=1\" 2>/dev/null &
        done; wait" </dev/null >"$MM_TMP/shell.out" 2>&1 &
shell_pid=$!
seen_status=$MM_TMP/a-status
seen_state=$MM_TMP/a-state
: >"$seen_status"
: >"$seen_state"
while kill -0 "$shell_pid" 2>/dev/null; do
        show_prop "$A" StatusText >>"$seen_status" || true
        show_prop "$A" State >>"$seen_state" || true
        sleep 0.2
done
wait "$shell_pid" || true
show_prop "$A" StatusText >>"$seen_status" || true
show_prop "$A" State >>"$seen_state" || true
echo "# daemon CPU during the ${FLOOD_SECS} s flood by 8 processes (and the probes): $(($(daemon_cpu_ms) - cpu0)) ms"
hostile_probe_check "item 5: 8 guest processes flooding the notify socket"
echo "# A: $(wc -l <"$seen_status") samples of StatusText and State during the flood"
assert_eq "A: StatusText never took a flooder's text" "init of A" "$(sort -u "$seen_status" | tr '\n' '|' | sed 's/|$//')"
assert_eq "A: State never left starting (READY=1 not from init)" starting "$(sort -u "$seen_state" | tr '\n' '|' | sed 's/|$//')"
dropped=$(grep -F "$A" "$MM_TMP/daemon.log" | grep -F "not from the guest's init" | head -n 1 || true)
echo "# daemon: ${dropped:0:300}"
assert_contains "A: the drops are logged, naming the machine" "$dropped" "not from the guest's init"
assert_true "A: at most one drop line per 30 s ($(grep -F "$A" "$MM_TMP/daemon.log" | grep -cF 'Notifications dropped' || true))" \
        test "$(grep -F "$A" "$MM_TMP/daemon.log" | grep -cF 'Notifications dropped' || true)" -le 2

# --- 2. an init that floods --------------------------------------------------------------------------
B=$(mm_name initflood)
hostile_probe_start
cpu0=$(daemon_cpu_ms)
notify_guest "$B" "exec /bin/guest-notify -n 200000 'STATUS=init flood of B' -- /bin/sleep 100000"
assert_true "B: the flooding init's STATUS= shown" mm_wait_for 5 status_is "$B" "init flood of B"
sleep "$FLOOD_SECS"
assert_eq "B: still starting" starting "$(show_prop "$B" State)"
assert_eq "B: StatusText" "init flood of B" "$(show_prop "$B" StatusText)"
echo "# daemon CPU during the ${FLOOD_SECS} s flood by B's init (and the probes): $(($(daemon_cpu_ms) - cpu0)) ms"
hostile_probe_check "item 5: an init flooding the notify socket"
suppressed=$(grep -F "$B" "$MM_TMP/daemon.log" | grep -F "suppressed" | head -n 1 || true)
echo "# daemon: ${suppressed:0:300}"
assert_contains "B: the rate limit's drops are logged" "$suppressed" "suppressed (over 50/s"

# --- 3. hostile text ---------------------------------------------------------------------------------
C=$(mm_name badtext)
# 3000 bytes: an ESC colour sequence, a bell, a lone continuation byte, 0xff, a CR, an overlong '/'
# (0xc0 0xaf), a UTF-16 surrogate (0xed 0xa0 0x80), a C1 control (U+0085), a non-character (U+FFFE), then
# valid UTF-8 and 'x' up to the end. Written on the host, read by init (argv cannot hold a NUL; a newline
# would end the assignment).
mm_busybox_image "$C"
{
        printf 'STATUS=\033[31mred\007\200\377\r\300\257\355\240\200\302\205\357\277\276ok \303\274'
        head -c 2960 /dev/zero | tr '\0' x
} >"$MM_IMAGES/$C/status"
notify_guest "$C" 'exec /bin/guest-notify "$(cat /status)" -- /bin/sleep 100000'
assert_true "C: a StatusText appears" mm_wait_for 5 status_has "$C" "ok"
assert_exit 0 mm show "$C" -p StatusText
text=${MM_STDOUT#StatusText=}
assert_true "C: StatusText cut to <= 1024 bytes (got $(printf %s "$text" | wc -c))" test "$(printf %s "$text" | wc -c)" -le 1024
verdict=$(printf %s "$text" | python3 -c '
import sys, unicodedata
b = sys.stdin.buffer.read()
try:
    t = b.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("invalid UTF-8: %s" % e)
bad = [hex(ord(c)) for c in t if unicodedata.category(c) in ("Cc", "Cs") or ord(c) in (0xfffe, 0xffff)]
print("bad: " + " ".join(bad) if bad else "clean")' 2>&1 || true)
assert_eq "C: valid UTF-8 without control characters" clean "$verdict"
assert_contains "C: the text itself kept" "$text" "?[31mred?"
assert_contains "C: valid UTF-8 kept" "$text" "ok ü"
assert_exit 0 mm list --no-legend
assert_contains "C: listed" "$MM_STDOUT" "$C"
hostile_end "$A" "$B" "$C"
mm_finish
