#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 1: a re-adopted guest is indistinguishable from one that never saw a daemon restart.
# For busybox (Boot=no, with a Command) and Debian (Boot=yes, systemd), each unprivileged
# (PrivateUsers=pick, the default) and privileged (--private-users=no), started with distinctive
# settings (limits, environment, hostname, a read-only bind): after a daemon restart (SIGTERM, SIGKILL)
# and a reboot (`machinemgr reboot`, or reboot(2) from inside the guest) every observable setting is
# what it was: uid_map/gid_map, init's and the payload's command line and environment, hostname, the
# bind, the cgroup's limit files and what `show` reports. Then a loop of 5 x (restart, reboot). An
# unprivileged guest must never come back as host root ("0 0 4294967295"), a Boot=no guest never with
# /bin/sh instead of its Command. The busybox cases run with the battery's probes (victim, latency, RSS).
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

readonly PRIVILEGED_MAP="0 0 4294967295"
LOOPS=${HOSTILE_READOPT_LOOPS:-5}

hostile_setup
mkdir -p "$MM_TMP/ro"
echo "read-only bind" >"$MM_TMP/ro/file"

# Globals of the machine under test.
NAME=
KIND=
PU=
REF=

state_running() {
        [[ "$(mm show "$NAME" -p State 2>/dev/null)" == State=running ]]
}

# Succeeds once NAME runs with a leader other than $1, completely started (observable, running).
new_leader_up() {
        local l
        l=$(mm_leader "$NAME" 2>/dev/null) || return 1
        [[ -n "$l" && "$l" != 0 && "$l" != "$1" ]] && state_running && hostile_observe "$NAME" >/dev/null
}

settle_secs() {
        [[ $KIND == deb ]] && echo 90 || echo 20
}

# The uid_map an unprivileged guest has: root is the base of a range of 65536 other than 0.
uid_map_ok() {
        local map=$1
        if [[ $PU == no ]]; then
                [[ "$map" == "$PRIVILEGED_MAP" ]]
        else
                [[ "$map" =~ ^0\ [1-9][0-9]*\ 65536$ ]]
        fi
}

daemon_restart() {
        if [[ $1 == KILL ]]; then
                mm_daemon_kill9
        else
                mm_daemon_stop
        fi
        mm_daemon_start
}

REBOOT_TRIGGER=/run/mm-test-reboot-now

# reboot_and_compare LABEL HOW: reboots NAME (HOW: cli or inside), waits for its new leader and compares
# everything observable with $REF. Returns 1 if the machine did not come back.
reboot_and_compare() {
        local label=$1 how=$2 old now diffs t0
        old=$(mm_leader "$NAME" 2>/dev/null || echo 0)
        t0=$SECONDS
        [[ $KIND == bb ]] && hostile_probe_start
        if [[ $how == cli ]]; then
                assert_exit 0 mm reboot "$NAME"
        elif [[ $KIND == bb ]]; then
                # The guest's own payload calls reboot(2) (start_machine), once guest root tells it to.
                # Not a session's process nor a host process through nsenter: neither is under the
                # filter of the guest's init, through which the daemon learns of a guest's reboot
                # (README, "Exit of a re-adopted leader").
                assert_exit 0 mm shell "$NAME" /bin/touch "$REBOOT_TRIGGER"
        else
                # Guest root asks systemd, which calls reboot(2) itself. The session ends with the
                # guest's reboot: its status is not the point.
                mm shell "$NAME" systemctl reboot >/dev/null 2>&1 || true
        fi
        if ! mm_wait_for "$(settle_secs)" new_leader_up "$old"; then
                _mm_fail "[$NAME $label] not back with a new leader within $(settle_secs) s (listed: $(mm_machine_listed \
                        "$NAME" && echo yes || echo no), $(mm show "$NAME" -p State 2>/dev/null || echo no State))"
                [[ $KIND == bb ]] && hostile_probe_check "$NAME $label"
                return 1
        fi
        _mm_ok "[$NAME $label] back with a new leader"
        now=$(hostile_observe "$NAME" || true)
        diffs=$(hostile_observe_diff "$REF" "$now")
        assert_eq "[$NAME $label] every observable setting as before the restart" "" "$diffs"
        assert_true "[$NAME $label] uid_map $(grep '^uid_map=' <<<"$now")" uid_map_ok "$(sed -n 's/^uid_map=//p' <<<"$now")"
        assert_true "[$NAME $label] old leader $old gone" mm_pid_gone "$old"
        if [[ $KIND == bb ]]; then
                # A window long enough for the probes' 20 samples.
                while ((SECONDS - t0 < 6)); do sleep 0.5; done
                hostile_probe_check "$NAME $label"
        fi
        return 0
}

start_machine() {
        local -a opts=(--setenv="HOSTILE_MARK=$KIND-$PU" --bind-ro="$MM_TMP/ro:/mnt/ro" --hostname="h-$KIND-$PU")
        if [[ $KIND == bb ]]; then
                # The payload reboots the guest itself when told to (REBOOT_TRIGGER): a guest's own process,
                # under the guest's seccomp filter, unlike anything that enters from the host.
                opts+=(--memory=96M --tasks-max=77 --cpu-quota=35% --no-boot
                        --command="sh -c 'while sleep 0.1; do [ -e $REBOOT_TRIGGER ] && rm -f $REBOOT_TRIGGER && reboot -f; done'")
        else
                opts+=(--memory=384M --tasks-max=333 --cpu-quota=170% --wait)
        fi
        [[ $PU == no ]] && opts+=(--private-users=no)
        assert_exit 0 mm start "$NAME" "${opts[@]}"
}

run_case() {
        KIND=$1
        PU=$2
        NAME=$(mm_name "$KIND-$PU")
        echo "# --- $NAME: $KIND, PrivateUsers=$PU"
        if [[ $KIND == bb ]]; then
                mm_busybox_image "$NAME"
        else
                mm_debian_image "$NAME"
        fi
        start_machine
        if ! mm_wait_for "$(settle_secs)" state_running || ! mm_wait_for 10 hostile_observe "$NAME"; then
                _mm_fail "[$NAME] not running and observable $(settle_secs) s after its start"
                return 0
        fi
        REF=$(hostile_observe "$NAME" || true)
        echo "$REF" | sed "s/^/# [$NAME] before: /"
        # The reference itself must show the settings asked for, or comparing with it proves nothing.
        assert_true "[$NAME] uid_map at start ($(grep '^uid_map=' <<<"$REF"))" uid_map_ok "$(sed -n 's/^uid_map=//p' <<<"$REF")"
        assert_contains "[$NAME] environment has --setenv" "$REF" "HOSTILE_MARK=$KIND-$PU"
        assert_contains "[$NAME] hostname" "$REF" "hostname=h-$KIND-$PU"
        assert_contains "[$NAME] read-only bind" "$REF" "mounts=/mnt/ro ro,"
        if [[ $KIND == bb ]]; then
                assert_contains "[$NAME] payload is the Command" "$REF" "payload=sh -c while sleep 0.1; do [ -e $REBOOT_TRIGGER ]"
                assert_contains "[$NAME] pids.max" "$REF" "cg.pids=77"
                assert_contains "[$NAME] show TasksMax" "$REF" "show.TasksMax=77"
                assert_contains "[$NAME] show CPUQuotaPerSecUSec" "$REF" "show.CPUQuotaPerSecUSec=350000"
        else
                assert_contains "[$NAME] pids.max" "$REF" "cg.pids=333"
                assert_contains "[$NAME] show CPUQuotaPerSecUSec" "$REF" "show.CPUQuotaPerSecUSec=1700000"
        fi

        daemon_restart TERM
        reboot_and_compare "SIGTERM restart, machinemgr reboot" cli || return 0
        daemon_restart KILL
        reboot_and_compare "SIGKILL restart, machinemgr reboot" cli || return 0

        local i sig map l
        for ((i = 1; i <= LOOPS; i++)); do
                sig=TERM
                ((i % 2)) && sig=KILL
                daemon_restart "$sig"
                reboot_and_compare "loop $i: SIG$sig restart, reboot" cli || return 0
                l=$(mm_leader "$NAME" 2>/dev/null || echo 0)
                map=$(_hostile_map_line "/proc/$l/uid_map")
                assert_true "[$NAME loop $i] uid_map '$map' still the $([[ $PU == no ]] && echo privileged || echo unprivileged) one" \
                        uid_map_ok "$map"
        done

        daemon_restart KILL
        reboot_and_compare "SIGKILL restart, reboot from inside the guest" inside || return 0
        daemon_restart TERM
        reboot_and_compare "SIGTERM restart, reboot from inside the guest" inside || return 0
}

finish_case() {
        hostile_end "$NAME"
        rm -rf --one-file-system "${MM_IMAGES:?}/$NAME"
}

for pu in pick no; do
        run_case bb "$pu"
        finish_case
        if hostile_have_debian; then
                run_case deb "$pu"
                finish_case
        else
                echo "# no cached Debian rootfs: Debian cases skipped"
        fi
done
mm_finish
