#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 2: readiness across a daemon restart, and only from the guest's init.
# - A Debian guest (systemd) whose READY=1 comes while the daemon is down (SIGKILLed right after the
#   start, kept down 4 s): the next daemon sees it running within 10 s, not `starting` for ever.
# - The attack: a process in a guest that is not its init (a shell session, or a process entered with
#   nsenter while the daemon is down) sends READY=1, many times: a Boot=yes guest whose init never
#   reports stays `starting`, before and after a daemon restart. A guest whose init sends READY=1 itself
#   (through the same tool) does become running: the path works, only the sender is refused.
# The victim and the probes run through the attack.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

NOTIFY_TOOL=${MM_GUEST_NOTIFY:-$MM_BUILD_ROOT/tests/security/guest-notify}
[[ -x "$NOTIFY_TOOL" ]] || mm_skip "$NOTIFY_TOOL not built (static libc missing?)"

hostile_setup

state_of() {
        mm show "$1" -p State 2>/dev/null || true
}

# --- READY=1 while the daemon is down (Debian, systemd) ---------------------------------------------------
if hostile_have_debian; then
        D=$(mm_name deb)
        mm_debian_image "$D"
        assert_exit 0 mm start "$D"
        # systemd reports READY=1 about a second after its exec: the kill comes before it.
        BEFORE=$(state_of "$D")
        LEADER=$(mm_leader "$D" || echo 0)
        mm_daemon_kill9
        assert_eq "the daemon was killed before the guest's READY=1 (the case under test)" "State=starting" "$BEFORE"
        sleep 4
        assert_true "systemd in $D kept running while the daemon was down" mm_pid_alive "$LEADER"
        mm_daemon_start
        assert_true "$D running within 10 s of the daemon's return" mm_wait_for 10 sh -c \
                "[ \"\$(MACHINEMGR_ADDRESS=unix:path=$MM_RUN/private $MM_BUILD_ROOT/tools/machinemgr show $D -p State)\" = State=running ]"
        assert_eq "$D: state after the restart" "State=running" "$(state_of "$D")"
        assert_eq "$D: the same leader" "$LEADER" "$(mm_leader "$D" || true)"
        assert_exit 0 mm poweroff "$D" --wait
        assert_true "$D gone" mm_wait_for 30 sh -c "! [ -e '$MM_RUN/machines/$D' ]"
        assert_no_leftovers "$D"
        rm -rf --one-file-system "${MM_IMAGES:?}/$D"
else
        echo "# no cached Debian rootfs: the READY=1-while-down case is skipped"
fi

# --- READY=1 from a process that is not the guest's init --------------------------------------------------
# Boot=yes busybox guests: /sbin/init is a script; PID 1 never reports (or, for the control, reports
# READY=1 itself through guest-notify, which then execs the sleep and stays PID 1).
boot_image() {
        local name=$1 init=$2
        mm_busybox_image "$name"
        cp "$NOTIFY_TOOL" "$MM_IMAGES/$name/guest-notify"
        printf '#!/bin/sh\n%s\n' "$init" >"$MM_IMAGES/$name/sbin/init"
        chmod 0755 "$MM_IMAGES/$name/sbin/init"
}

C=$(mm_name ctl)
boot_image "$C" "exec /guest-notify READY=1 -- sleep 100000"
assert_exit 0 mm start "$C"
assert_true "control: a guest whose init sends READY=1 is running" mm_wait_for 10 sh -c \
        "[ \"\$(MACHINEMGR_ADDRESS=unix:path=$MM_RUN/private $MM_BUILD_ROOT/tools/machinemgr show $C -p State)\" = State=running ]"

A=$(mm_name silent)
boot_image "$A" "exec sleep 100000"
assert_exit 0 mm start "$A"
sleep 1
assert_eq "$A: an init that never reports leaves it starting" "State=starting" "$(state_of "$A")"
ALEADER=$(mm_leader "$A" || echo 0)

hostile_probe_start
T0=$SECONDS
# From a shell session (guest root, not init): once, then a burst.
assert_exit 0 mm shell "$A" /guest-notify READY=1
assert_contains "the session's READY=1 was sent" "$MM_STDERR" "sent 1 of 1"
assert_exit 0 mm shell "$A" /guest-notify -n 2000 'READY=1\nSTATUS=ready, trust me'
sleep 2
assert_eq "$A: READY=1 from a non-init process is ignored" "State=starting" "$(state_of "$A")"
assert_eq "$A: its STATUS= is ignored too" "StatusText=" "$(mm show "$A" -p StatusText 2>/dev/null || true)"
# A window long enough for the probes' 20 samples.
while ((SECONDS - T0 < 6)); do sleep 0.5; done
hostile_probe_check "READY=1 from a non-init process"

# While the daemon is down: a process entered into every namespace of the guest (it is not init either)
# queues READY=1 on the kept socket; the next daemon must not take it from there.
mm_daemon_kill9
assert_exit 0 nsenter -t "$ALEADER" -a -- /guest-notify -n 10 READY=1
mm_daemon_start
sleep 2
assert_eq "$A: READY=1 queued by a non-init process while the daemon was down is ignored" "State=starting" \
        "$(state_of "$A")"
assert_eq "$A: the same leader after the restart" "$ALEADER" "$(mm_leader "$A" || true)"

hostile_end "$A" "$C"
mm_finish
