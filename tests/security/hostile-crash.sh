#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 1, kill at every step: the daemon is killed (SIGKILL, by itself through the test-only
# MACHINEMGR_TEST_CRASH_AT=POINT) at each step of a start, a reboot and a re-adoption, then started again
# without the variable. Whatever step it died at, the machine must end either running with exactly its
# settings (uid_map unprivileged as asked, its Command, limits, environment, bind; a `machinemgr reboot`
# afterwards keeps them) or gone with nothing left behind; never privileged, never /bin/sh. Busybox
# (Boot=no) for every point, Debian (Boot=yes, systemd) for the reboot points. Then 10 SIGKILLs of the
# daemon at random 0-60 ms after a reboot was asked for. A victim guest lives through all of it.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

START_POINTS=(start-cgroup start-cloned start-exec)
REBOOT_POINTS=(reboot-cgroup reboot-gone reboot-cloned reboot-exec)
RANDOM_KILLS=${HOSTILE_CRASH_RANDOM_KILLS:-10}

hostile_setup
mkdir -p "$MM_TMP/ro"
echo "read-only bind" >"$MM_TMP/ro/file"
VICTIM_REF=$(hostile_observe "$HOSTILE_VICTIM" || true)

NAME=
KIND=

settle_secs() {
        [[ $KIND == deb ]] && echo 90 || echo 20
}

start_opts() {
        local -a o=(--tasks-max=55 --cpu-quota=45% --setenv="CRASHMARK=$KIND" --bind-ro="$MM_TMP/ro:/mnt/ro")
        if [[ $KIND == bb ]]; then
                o+=(--no-boot --command="sleep 100077")
        fi
        printf '%s\n' "${o[@]}"
}

start_machine() {
        local -a opts
        mapfile -t opts < <(start_opts)
        [[ $KIND == deb ]] && opts+=(--wait)
        mm start "$NAME" "${opts[@]}"
}

state_running() {
        [[ "$(mm show "$NAME" -p State 2>/dev/null)" == State=running ]]
}

running_whole() {
        state_running && hostile_observe "$NAME" >/dev/null
}

# Settled: running and observable, or not listed at all.
settled() {
        running_whole || ! mm_machine_listed "$NAME"
}

new_leader_up() {
        local l
        l=$(mm_leader "$NAME" 2>/dev/null) && [[ -n "$l" && "$l" != 0 && "$l" != "$1" ]] && running_whole
}

no_leftovers() {
        [[ -z "$(_mm_leftovers "$NAME")" ]]
}

uid_map_unprivileged() {
        [[ "$1" =~ ^0\ [1-9][0-9]*\ 65536$ ]]
}

# Starts the daemon so that it kills itself at POINT.
daemon_start_crashing() {
        local point=$1
        mm_daemon_stop
        MACHINEMGR_TEST_CRASH_AT=$point mm_daemon_start || true
}

# Waits for the daemon of $MM_DAEMON_PID to die by its crash point; kills it if it does not.
wait_daemon_crashed() {
        local label=$1 pid=$MM_DAEMON_PID
        if [[ -z "$pid" ]]; then
                # It died before it answered (a crash point during start-up).
                _mm_ok "[$label] the daemon died at its crash point"
                return 0
        fi
        if mm_wait_for 20 sh -c "! kill -0 $pid 2>/dev/null"; then
                _mm_ok "[$label] the daemon died at its crash point"
        else
                _mm_fail "[$label] the daemon did not die at its crash point within 20 s (killed now)"
                kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        MM_DAEMON_PID=
}

# After a crash and a clean start: NAME runs whole with settings like REF (or, without REF, the ones
# asked for) and keeps them through a reboot; or it is gone with no leftovers.
check_outcome() {
        local label=$1 ref=${2:-} obs diffs map old
        if ! mm_wait_for "$(settle_secs)" settled; then
                _mm_fail "[$label] neither running whole nor gone $(settle_secs) s after the restart ($(mm show \
                        "$NAME" -p State -p Leader 2>/dev/null | tr '\n' ' '))"
                return 0
        fi
        if ! mm_machine_listed "$NAME"; then
                echo "# [$label] outcome: gone"
                mm_wait_for 10 no_leftovers || true
                assert_no_leftovers "$NAME"
                return 0
        fi
        obs=$(hostile_observe "$NAME" || true)
        echo "# [$label] outcome: running, $(grep -E '^(uid_map|payload)=' <<<"$obs" | tr '\n' ' ')"
        map=$(sed -n 's/^uid_map=//p' <<<"$obs")
        assert_true "[$label] still unprivileged (uid_map '$map')" uid_map_unprivileged "$map"
        if [[ -n "$ref" ]]; then
                diffs=$(hostile_observe_diff "$ref" "$obs")
                assert_eq "[$label] every observable setting as before the crash" "" "$diffs"
        else
                [[ $KIND == bb ]] && assert_contains "[$label] payload is its Command" "$obs" "payload=sleep 100077 "
                assert_contains "[$label] its TasksMax" "$obs" "cg.pids=55"
                assert_contains "[$label] its environment" "$obs" "CRASHMARK=$KIND"
                assert_contains "[$label] its bind" "$obs" "mounts=/mnt/ro ro,"
        fi
        # And the next reboot keeps all of it.
        old=$(mm_leader "$NAME" 2>/dev/null || echo 0)
        assert_exit 0 mm reboot "$NAME"
        if mm_wait_for "$(settle_secs)" new_leader_up "$old"; then
                diffs=$(hostile_observe_diff "$obs" "$(hostile_observe "$NAME" || true)")
                assert_eq "[$label] a reboot after it keeps every setting" "" "$diffs"
        else
                _mm_fail "[$label] not back from the reboot after the crash within $(settle_secs) s"
        fi
}

make_image() {
        [[ -d "$MM_IMAGES/$NAME" ]] && return 0
        if [[ $KIND == bb ]]; then
                mm_busybox_image "$NAME"
        else
                mm_debian_image "$NAME"
        fi
}

crash_at_start() {
        local point=$1 label
        KIND=bb
        NAME=$(mm_name "bb")
        label="$point bb"
        make_image
        daemon_start_crashing "$point"
        MM_TIMEOUT=30 start_machine >/dev/null 2>&1 || true
        wait_daemon_crashed "$label"
        mm_daemon_start
        check_outcome "$label"
        hostile_end "$NAME"
}

crash_at_reboot() {
        local point=$1 ref label
        NAME=$(mm_name "$KIND")
        label="$point $KIND"
        make_image
        daemon_start_crashing "$point"
        if ! start_machine >/dev/null 2>&1 || ! mm_wait_for "$(settle_secs)" running_whole; then
                _mm_fail "[$label] could not start $NAME"
                [[ -n "$MM_DAEMON_PID" ]] || mm_daemon_start
                hostile_end "$NAME"
                return 0
        fi
        ref=$(hostile_observe "$NAME" || true)
        MM_TIMEOUT=30 mm reboot "$NAME" >/dev/null 2>&1 || true
        wait_daemon_crashed "$label"
        mm_daemon_start
        check_outcome "$label" "$ref"
        hostile_end "$NAME"
}

# A crash while the restarted daemon re-adopts its machines.
crash_at_adopt() {
        local ref label="adopt bb"
        KIND=bb
        NAME=$(mm_name "bb")
        make_image
        start_machine >/dev/null
        mm_wait_for 20 running_whole || true
        ref=$(hostile_observe "$NAME" || true)
        daemon_start_crashing adopt
        wait_daemon_crashed "$label"
        mm_daemon_start
        check_outcome "$label" "$ref"
        hostile_end "$NAME"
}

for point in "${START_POINTS[@]}"; do
        echo "# --- crash at $point"
        crash_at_start "$point"
done
for point in "${REBOOT_POINTS[@]}"; do
        for KIND in bb deb; do
                if [[ $KIND == deb ]] && ! hostile_have_debian; then
                        echo "# no cached Debian rootfs: $point deb skipped"
                        continue
                fi
                echo "# --- crash at $point ($KIND)"
                crash_at_reboot "$point"
        done
done
echo "# --- crash at adopt"
crash_at_adopt
rm -rf --one-file-system "${MM_IMAGES:?}/$(mm_name deb)"

# --- SIGKILL at a random point 0-60 ms into a reboot ----------------------------------------------------
KIND=bb
NAME=$(mm_name bb)
mm_daemon_stop
mm_daemon_start
start_machine >/dev/null
mm_wait_for 20 running_whole || true
REF=$(hostile_observe "$NAME" || true)
for ((i = 1; i <= RANDOM_KILLS; i++)); do
        delay=$((RANDOM % 61))
        label="random kill $i at ${delay} ms"
        MM_TIMEOUT=30 mm reboot "$NAME" >/dev/null 2>&1 &
        reboot_cli=$!
        sleep "$(printf '0.%03d' "$delay")"
        mm_daemon_kill9
        wait "$reboot_cli" 2>/dev/null || true
        mm_daemon_start
        if ! mm_wait_for 20 settled; then
                _mm_fail "[$label] neither running whole nor gone 20 s after the restart"
                continue
        fi
        if mm_machine_listed "$NAME"; then
                OBS=$(hostile_observe "$NAME" || true)
                assert_eq "[$label] every observable setting as before" "" "$(hostile_observe_diff "$REF" "$OBS")"
        else
                echo "# [$label] outcome: gone"
                assert_no_leftovers "$NAME"
                start_machine >/dev/null
                mm_wait_for 20 running_whole || true
                REF=$(hostile_observe "$NAME" || true)
        fi
done
hostile_end "$NAME"

# Everyone else: the victim lived through every crash with its settings.
assert_eq "victim's settings unchanged through every crash" "" \
        "$(hostile_observe_diff "$VICTIM_REF" "$(hostile_observe "$HOSTILE_VICTIM" || true)")"
# 20 s: ~100 samples, so that the p99 is a percentile and not just the slowest run.
hostile_probe_start
sleep 20
hostile_probe_check "after the crashes"
mm_finish
