#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# machinemgr-init run as a plain child (no container): exit status passing, signal forwarding,
# READY=1 on NOTIFY_SOCKET, and the stragglers being killed once the payload is gone.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

INIT=$MM_BUILD_ROOT/src/init/machinemgr-init
[[ -x "$INIT" ]] || {
        echo "FAIL: $INIT not built"
        exit 1
}
MM_TMP=$(mktemp -d /tmp/mminit.XXXXXX)
trap 'rm -rf "$MM_TMP"' EXIT

test_static() {
        # The guest may have no libc at all: no program interpreter allowed.
        if command -v readelf >/dev/null; then
                assert_not_contains "machinemgr-init is static" "$(readelf -l "$INIT")" "INTERP"
        fi
}

test_exit_status() {
        assert_exit 0 "$INIT" -- true
        assert_exit 7 "$INIT" -- sh -c 'exit 7'
        assert_exit 3 "$INIT" sh -c 'exit 3'
        assert_exit 137 "$INIT" -- sh -c 'kill -KILL $$'
        assert_exit 127 "$INIT" -- /nonexistent/command
        assert_contains "names the command it could not run" "$MM_STDERR" "/nonexistent/command"
        # Default payload is /bin/sh, reading stdin.
        local rc=0
        echo 'exit 9' | "$INIT" || rc=$?
        assert_eq "default payload /bin/sh" 9 "$rc"
}

# Starts init with a payload that reports a signal by exiting with a known code, then signals init.
# $1 signal to send to init, $2 signal the payload should see, $3 expected exit status.
check_forward() {
        local send=$1 trapsig=$2 code=$3 pid rc=0
        "$INIT" -- sh -c "trap 'exit $code' $trapsig; echo up >'$MM_TMP/up.$send'; while :; do sleep 0.05; done" &
        pid=$!
        mm_wait_for 5 test -e "$MM_TMP/up.$send" || true
        kill "-$send" "$pid"
        wait "$pid" || rc=$?
        assert_eq "SIG$send reaches the payload as SIG$trapsig" "$code" "$rc"
}

test_forwarding() {
        check_forward TERM TERM 40
        check_forward INT INT 41
        check_forward HUP HUP 42
        check_forward USR1 USR1 43
        check_forward USR2 USR2 44
        check_forward RTMIN+4 TERM 45
        check_forward WINCH WINCH 46
}

test_notify() {
        local sock=$MM_TMP/notify
        command -v python3 >/dev/null || return 0
        python3 - "$sock" "$INIT" <<'PY' >"$MM_TMP/notify.out"
import os, socket, subprocess, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(5)
env = dict(os.environ, NOTIFY_SOCKET=sys.argv[1])
p = subprocess.Popen([sys.argv[2], "--", "sh", "-c", 'echo "payload-notify=${NOTIFY_SOCKET:-unset}"; sleep 0.2'],
                     env=env, stdout=subprocess.PIPE, text=True)
msg = s.recv(4096).decode()
out, _ = p.communicate(timeout=10)
print(msg)
print(out.strip())
print("rc=%d" % p.returncode)
PY
        local out
        out=$(cat "$MM_TMP/notify.out")
        assert_contains "READY=1 sent to NOTIFY_SOCKET" "$out" "READY=1"
        assert_contains "payload does not inherit NOTIFY_SOCKET" "$out" "payload-notify=unset"
        assert_contains "exit status with NOTIFY_SOCKET" "$out" "rc=0"
}

# The manager holds the console's master; when it is restarted the master closes and the kernel
# hangs the console up. The payload must survive that (the container outlives the manager).
test_console_hangup() {
        command -v python3 >/dev/null || return 0
        local out
        out=$(python3 - "$INIT" <<'PY'
import fcntl, os, subprocess, sys, termios, time
master, slave = os.openpty()
def ctty():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
p = subprocess.Popen([sys.argv[1], "--", "sh", "-c", "trap 'exit 50' TERM; while :; do sleep 0.05; done"],
                     stdin=slave, stdout=slave, stderr=slave, preexec_fn=ctty)
os.close(slave)
time.sleep(0.3)
os.close(master)
time.sleep(0.5)
print("alive" if p.poll() is None else "died rc=%s" % p.returncode)
p.terminate()
print("rc=%d" % p.wait(timeout=10))
PY
)
        assert_contains "payload survives a console hangup" "$out" "alive"
        assert_contains "and still gets SIGTERM afterwards" "$out" "rc=50"
}

test_stragglers() {
        local start end rc=0
        # A background child that ignores SIGTERM must still be gone (SIGKILL after ~2 s).
        start=$(date +%s%N)
        "$INIT" -- sh -c "sh -c 'trap \"\" TERM; echo \$\$ >\"$MM_TMP/straggler\"; exec sleep 60' & sleep 0.3; exit 5" || rc=$?
        end=$(date +%s%N)
        assert_eq "exit status with a straggler" 5 "$rc"
        local pid
        pid=$(cat "$MM_TMP/straggler")
        assert_true "straggler (pid $pid) killed" sh -c "! kill -0 $pid 2>/dev/null"
        local ms=$(((end - start) / 1000000))
        assert_true "stragglers get ~2 s grace, took ${ms} ms" test "$ms" -ge 1500 -a "$ms" -lt 6000

        # An orphan (reparented to init, the subreaper) that exits on SIGTERM goes at once.
        rc=0
        start=$(date +%s%N)
        "$INIT" -- sh -c "setsid sleep 60 & sleep 0.2; exit 0" || rc=$?
        end=$(date +%s%N)
        ms=$(((end - start) / 1000000))
        assert_eq "exit status with an orphan" 0 "$rc"
        assert_true "orphan terminated promptly (${ms} ms)" test "$ms" -lt 1500
}

test_static
test_exit_status
test_forwarding
test_notify
test_console_hangup
test_stragglers
echo "$MM_PASSED passed, $MM_FAILED failed"
[[ "$MM_FAILED" -eq 0 ]]
