#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile-guest battery, issue 11 item 3: guest files the daemon and its helpers open. Guest root
#  - makes /etc/resolv.conf (which the set-up copies the host's into) a FIFO, a symlink to /dev/zero, a
#    symlink to a host file, and — in a privileged guest, since a user namespace cannot make one — a
#    device node (/dev/full): a reboot and a fresh start complete, or fail with an error naming the file;
#    the device is never written, the host file never touched;
#  - makes /etc/os-release a FIFO, a symlink to /dev/zero, a symlink to a host file, a 200 MB sparse
#    file, a file of 100000 keys and one of 300 keys, and (privileged guest) a /dev/zero node: GetOSRelease
#    (open to every local user) answers within 2 s, with an error or a bounded answer, never with the
#    host's file.
# Meanwhile the victim guest and `machinemgr list` are unaffected (lib-hostile.sh's probes): with the
# unfixed daemon the FIFO froze it until someone opened the FIFO.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

hostile_setup
A=$(mm_name attacker)
P=$(mm_name privileged)
assert_exit 0 hostile_attacker "$A"
assert_exit 0 hostile_attacker "$P" --private-users=no
LEADER=$(mm_leader "$A")
assert_ne "the attacker is unprivileged (PrivateUsers=pick)" 0 "$(awk '{print $2; exit}' "/proc/$LEADER/uid_map")"

# The set-up still does its job for a well-behaved image (ResolvConf=copy-host, the default).
if [[ -f /etc/resolv.conf ]]; then
        assert_exit 0 mm shell "$A" cat /etc/resolv.conf
        assert_eq "the host's resolv.conf was copied into the guest" "$(cat /etc/resolv.conf)" "$MM_STDOUT"
fi

CANARY=$MM_TMP/host-canary
printf 'ID=hostcanary\nNAME=host\n' >"$CANARY"
CANARY_SUM=$(sha256sum "$CANARY")

# A FIFO left in an image would block whoever opens it next (the unfixed daemon, our cleanup): give
# any blocked reader or writer its other end, then remove it.
unblock_fifos() {
        local f
        for f in "$MM_IMAGES/$A/etc/resolv.conf" "$MM_IMAGES/$A/etc/os-release"; do
                [[ -p "$f" ]] || continue
                timeout 1 sh -c "cat '$f' >/dev/null" 2>/dev/null || true
                timeout 1 sh -c "echo >'$f'" 2>/dev/null || true
                rm -f "$f"
        done
}
hostile_cleanup_add unblock_fifos

hostile_probe_start

# --- /etc/resolv.conf and the set-up child -------------------------------------------------------------
state_is() {
        [[ "$(MM_TIMEOUT=2 mm show "$1" -p State 2>/dev/null)" == "State=$2" ]]
}

# wait_running NAME OLD_LEADER: up to 10 s by the clock (a stuck daemon makes each query take its 2 s
# timeout) until NAME runs with a leader other than OLD_LEADER (a reboot's reply comes before the respawn).
wait_running() {
        local end=$((SECONDS + 10)) leader
        while ((SECONDS < end)); do
                leader=$(MM_TIMEOUT=2 mm show "$1" -p Leader 2>/dev/null || true)
                [[ -n "$leader" && "$leader" != "Leader=$2" && "$leader" != Leader=0 ]] && state_is "$1" running &&
                        return 0
                sleep 0.1
        done
        return 1
}

# expect_boot LABEL NAME VERB…: the verb ends within 10 s; either it succeeded and NAME runs (a new
# leader), or it failed naming /etc/resolv.conf — and never by writing into a device (ENOSPC: /dev/full).
expect_boot() {
        local label=$1 name=$2 t0 t1 rc=0 old
        shift 2
        old=$(mm_leader "$name" 2>/dev/null || echo 0)
        t0=$(_hostile_now_us)
        MM_TIMEOUT=20 mm "$@" >"$MM_TMP/out" 2>"$MM_TMP/err" || rc=$?
        t1=$(_hostile_now_us)
        echo "# [$label] exit $rc after $(((t1 - t0) / 1000)) ms: $(head -c 300 "$MM_TMP/err" | tr '\n' ' ')"
        assert_true "[$label] ended within 10 s ($(((t1 - t0) / 1000)) ms)" test $((t1 - t0)) -lt 10000000
        if [[ $rc == 0 ]]; then
                assert_true "[$label] $name runs again, with a new leader" wait_running "$name" "$old"
        else
                assert_contains "[$label] the error names the file" "$(cat "$MM_TMP/err")" "resolv.conf"
        fi
        assert_not_contains "[$label] nothing written into a device" "$(cat "$MM_TMP/err")" "No space left"
        # A daemon stuck on the FIFO (unfixed) stays stuck until someone opens the other end.
        state_is "$name" running || unblock_fifos
}

assert_exit 0 mm shell "$A" sh -c 'rm -f /etc/resolv.conf && mkfifo /etc/resolv.conf'
expect_boot "resolv.conf FIFO: reboot" "$A" reboot "$A"
assert_exit 0 mm terminate "$A"
assert_true "$A gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$A' ]"
expect_boot "resolv.conf FIFO: fresh start" "$A" start "$A" --no-boot --command='sleep 100000'
assert_true "the FIFO was left alone" test -p "$MM_IMAGES/$A/etc/resolv.conf"
unblock_fifos
mm_machine_listed "$A" || assert_exit 0 hostile_attacker "$A"

assert_exit 0 mm shell "$A" sh -c 'rm -f /etc/resolv.conf && ln -s /dev/zero /etc/resolv.conf'
expect_boot "resolv.conf -> /dev/zero: reboot" "$A" reboot "$A"
assert_exit 0 mm shell "$A" sh -c "rm -f /etc/resolv.conf && ln -s '$CANARY' /etc/resolv.conf"
expect_boot "resolv.conf -> host file: reboot" "$A" reboot "$A"
assert_exit 0 mm shell "$A" sh -c "rm -f /etc/resolv.conf && ln -s ../../../../../../..$CANARY /etc/resolv.conf"
expect_boot "resolv.conf -> ../../..host file: reboot" "$A" reboot "$A"
assert_eq "the host file is untouched" "$CANARY_SUM" "$(sha256sum "$CANARY")"

assert_exit 0 mm shell "$P" sh -c 'rm -f /etc/resolv.conf && mknod /etc/resolv.conf c 1 7'
expect_boot "resolv.conf a device (privileged guest): reboot" "$P" reboot "$P"
assert_true "the device node was left alone" test -c "$MM_IMAGES/$P/etc/resolv.conf"

# --- GetOSRelease ---------------------------------------------------------------------------------------
# os_release LABEL NAME: GetOSRelease of NAME into $MM_TMP/out/err, $OSR_RC; asserts it took < 2 s.
os_release() {
        local label=$1 name=$2 path t0 t1
        path=$(busctl --address="unix:path=$MM_RUN/private" call org.machinemgr1 /org/machinemgr1 \
                org.machinemgr1.Manager GetMachine s "$name" | awk '{print $2}' | tr -d '"') || true
        OSR_RC=0
        t0=$(_hostile_now_us)
        timeout 10 busctl --address="unix:path=$MM_RUN/private" --timeout=8 call org.machinemgr1 "$path" \
                org.machinemgr1.Machine GetOSRelease >"$MM_TMP/out" 2>"$MM_TMP/err" || OSR_RC=$?
        t1=$(_hostile_now_us)
        echo "# [$label] GetOSRelease exit $OSR_RC after $(((t1 - t0) / 1000)) ms:" \
                "$(head -c 200 "$MM_TMP/out" "$MM_TMP/err" | tr '\n' ' ')"
        assert_true "[$label] answered within 2 s ($(((t1 - t0) / 1000)) ms)" test $((t1 - t0)) -lt 2000000
}

# expect_os_release_error LABEL NAME NEEDLE
expect_os_release_error() {
        os_release "$1" "$2"
        assert_ne "[$1] an error" 0 "$OSR_RC"
        assert_contains "[$1] the error says why" "$(cat "$MM_TMP/err")" "$3"
        assert_not_contains "[$1] never the host's file" "$(cat "$MM_TMP/out")" hostcanary
}

os_release "os-release: the image's own" "$A"
assert_eq "[os-release: the image's own] answered" 0 "$OSR_RC"
assert_contains "[os-release: the image's own] ID=busybox" "$(cat "$MM_TMP/out")" '"ID" "busybox"'

assert_exit 0 mm shell "$A" sh -c 'mv /etc/os-release /etc/os-release.real && mkfifo /etc/os-release'
expect_os_release_error "os-release FIFO" "$A" "not a regular file"
unblock_fifos
assert_exit 0 mm shell "$A" sh -c 'ln -sf /dev/zero /etc/os-release'
expect_os_release_error "os-release -> /dev/zero" "$A" "not a regular file"
assert_exit 0 mm shell "$A" sh -c "ln -sf '$CANARY' /etc/os-release"
expect_os_release_error "os-release -> host file" "$A" "No such file"
assert_exit 0 mm shell "$A" sh -c 'rm -f /etc/os-release && dd if=/dev/zero of=/etc/os-release bs=1 count=0 seek=209715200 2>/dev/null'
expect_os_release_error "os-release 200 MB sparse" "$A" "larger than"
assert_exit 0 mm shell "$A" sh -c 'awk "BEGIN { for (i = 0; i < 100000; i++) print \"K\" i \"=v\" }" >/etc/os-release'
expect_os_release_error "os-release of 100000 keys" "$A" "larger than"
assert_exit 0 mm shell "$A" sh -c 'awk "BEGIN { for (i = 0; i < 300; i++) print \"K\" i \"=v\" }" >/etc/os-release'
expect_os_release_error "os-release of 300 keys" "$A" "more than 256 entries"
assert_exit 0 mm shell "$A" sh -c 'mv /etc/os-release.real /etc/os-release'
os_release "os-release: back to the image's own" "$A"
assert_contains "[os-release: back] ID=busybox" "$(cat "$MM_TMP/out")" '"ID" "busybox"'

assert_exit 0 mm shell "$P" sh -c 'rm -f /etc/os-release && mknod /etc/os-release c 1 5'
expect_os_release_error "os-release a /dev/zero node (privileged guest)" "$P" "not a regular file"

# Concurrency: bursts of 40 calls on one connection (tests/security/dbus-abuse.py's raw client) for 4 s: each
# call is answered or refused as busy (at most 16 readers run at once), and the loop stays free.
path=$(busctl --address="unix:path=$MM_RUN/private" call org.machinemgr1 /org/machinemgr1 \
        org.machinemgr1.Manager GetMachine s "$A" | awk '{print $2}' | tr -d '"')
burst=$(timeout 30 python3 - "$(dirname "$0")/dbus-abuse.py" "$MM_RUN/private" "$path" <<'PY'
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("abuse", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
c = m.Conn(sys.argv[2])
answered = busy = other = 0
t0 = time.monotonic()
while time.monotonic() - t0 < 4:
    serials = {c.send(sys.argv[3], m.MACH, "GetOSRelease", "", b"") for _ in range(40)}
    while serials:
        mtype, rs, err = c.read()
        if rs not in serials:
            continue
        serials.discard(rs)
        if mtype == 2:
            answered += 1
        elif err == "org.freedesktop.DBus.Error.LimitsExceeded":
            busy += 1
        else:
            other += 1
print(answered, busy, other, int((time.monotonic() - t0) * 1000))
PY
) || true
read -r answered busy other ms <<<"${burst:-0 0 1 0}"
echo "# pipelined GetOSRelease for 4 s: $answered answered, $busy refused (busy), $other otherwise, in $ms ms"
assert_eq "pipelined GetOSRelease: each answered or refused as busy" 0 "$other"
assert_true "pipelined GetOSRelease: many answered ($answered)" test "$answered" -ge 100
hostile_probe_check "item 3: guest files"

for n in "$A" "$P"; do
        assert_exit 0 mm terminate "$n"
        assert_true "$n gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$n' ]"
        assert_no_leftovers "$n"
done
mm_finish
