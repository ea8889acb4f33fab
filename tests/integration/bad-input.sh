#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every bad input of SPEC §9 gets the documented exit code and a one-line error naming the problem,
# and changes nothing: no state file, no cgroup, the machine list unchanged.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
GOOD=$(mm_name good)
mm_busybox_image "$GOOD"

snapshot() {
        {
                mm list --no-legend --all 2>&1 || true
                ls -A "$MM_RUN/machines" "$MM_RUN/host" 2>/dev/null || true
                _mm_cgroup_dirs_of "$MM_PREFIX*"
                ls -A "$MM_IMAGES"
        } | sort
}

# $1 expected exit code, $2 text stderr must contain (case-insensitive), then the CLI arguments.
expect_refused() {
        local code=$1 text=$2 before after
        shift 2
        before=$(snapshot)
        assert_exit "$code" mm "$@"
        assert_contains "stderr of '$*' names the problem" "${MM_STDERR,,}" "${text,,}"
        assert_eq "stderr of '$*' is one line" 1 "$(printf '%s\n' "$MM_STDERR" | grep -c .)"
        after=$(snapshot)
        assert_eq "'$*' changed nothing" "$before" "$after"
}

test_names() {
        local long
        long=$(printf 'a%.0s' $(seq 65))
        expect_refused 2 "name" start ""
        expect_refused 2 "name" start "$long"
        expect_refused 2 "name" start "a/b"
        expect_refused 2 "name" start ".."
        expect_refused 2 "name" start ".hidden"
        # The CLI reads a leading '-' as an option (and 'start NAME -- CMD' as the payload), so such a
        # name can only come over D-Bus.
        local before
        before=$(snapshot)
        assert_exit 1 busctl --address="unix:path=$MM_RUN/private" -- call org.machinemgr1 /org/machinemgr1 \
                org.machinemgr1.Manager StartMachine 'sa{sv}' -dash 0
        assert_contains "D-Bus start of '-dash' is refused as invalid" "$MM_STDERR" "nvalid"
        assert_contains "the error names '-dash'" "$MM_STDERR" "-dash"
        assert_eq "'-dash' changed nothing" "$before" "$(snapshot)"
        expect_refused 2 "name" start "$(printf 'a\tb')"
        expect_refused 2 "name" start "$(printf 'a\001b')"
        expect_refused 2 "name" start "$(printf 'bad\377utf8')"
}

test_images() {
        local noinit
        expect_refused 3 "$(mm_name missing)" start "$(mm_name missing)"
        noinit=$(mm_name noinit)
        mm_busybox_image "$noinit" # no /sbin/init, so it cannot boot
        expect_refused 1 "init" start "$noinit"
}

test_limits() {
        expect_refused 2 "memory" start "$GOOD" --memory=lots
        expect_refused 2 "memory" start "$GOOD" --memory=-5M
        expect_refused 2 "memory" start "$GOOD" --memory=99999999T
        expect_refused 2 "tasks" start "$GOOD" --tasks-max=abc
        expect_refused 2 "tasks" start "$GOOD" --tasks-max=0
        expect_refused 2 "cpu" start "$GOOD" --cpu-quota=fast
        expect_refused 2 "cpu" start "$GOOD" --cpu-quota=0%
        expect_refused 2 "network" start "$GOOD" --network=wormhole
}

test_settings_file() {
        local bad
        bad=$(mm_name badset)
        mm_busybox_image "$bad"
        mm_settings "$bad" "[Exec]
Boot=no
[Resources]
MemoryMax=lots"
        expect_refused 2 "MemoryMax" start "$bad"
        assert_contains "error names the file and line" "$MM_STDERR" "$bad.machine:4"

        # An unknown key is a warning naming file, line and key; the start goes ahead.
        mm_settings "$bad" "[Exec]
Boot=no
Command=sleep 100000
NoSuchKey=1"
        assert_exit 0 mm start "$bad"
        assert_contains "warning names file:line and key" \
                "$MM_STDERR$(cat "$MM_TMP/daemon.log")" "$bad.machine:4"
        assert_contains "warning names the key" "$MM_STDERR$(cat "$MM_TMP/daemon.log")" "NoSuchKey"
        mm terminate "$bad" >/dev/null 2>&1 || true
        mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$bad' ]" || true
        rm -f "$MM_IMAGES/$bad.machine"
}

test_running() {
        local leader
        assert_exit 0 mm_start_busybox "$GOOD"
        leader=$(mm_leader "$GOOD" || echo 0)
        expect_refused 1 "$GOOD" start "$GOOD" --no-boot --command="sleep 1"
        assert_eq "the running machine kept its leader" "$leader" "$(mm_leader "$GOOD" || true)"
        # Zero limits over D-Bus are out of range (the CLI refuses them before any call).
        local path limits
        path=$(busctl --address="unix:path=$MM_RUN/private" call org.machinemgr1 /org/machinemgr1 \
                org.machinemgr1.Manager GetMachine s "$GOOD" | awk '{print $2}' | tr -d '"')
        limits=$(mm show "$GOOD" -p MemoryMax -p TasksMax -p CPUQuotaPerSecUSec)
        for key in MemoryMax TasksMax CPUQuotaPerSecUSec; do
                assert_exit 1 busctl --address="unix:path=$MM_RUN/private" call org.machinemgr1 "$path" \
                        org.machinemgr1.Machine SetLimits 'a{sv}' 1 "$key" t 0
                assert_contains "SetLimits $key=0 is InvalidArgument" "$MM_STDERR" "greater than 0"
        done
        assert_eq "refused SetLimits changed no limit" "$limits" \
                "$(mm show "$GOOD" -p MemoryMax -p TasksMax -p CPUQuotaPerSecUSec)"
        for key in MemoryMax CPUQuotaPerSecUSec; do
                assert_exit 1 busctl --address="unix:path=$MM_RUN/private" call org.machinemgr1 /org/machinemgr1 \
                        org.machinemgr1.Manager StartMachine 'sa{sv}' "$(mm_name zero)" 1 "$key" t 0
                assert_contains "StartMachine $key=0 is InvalidArgument" "$MM_STDERR" "greater than 0"
        done
        expect_refused 1 "$GOOD" remove "$GOOD"
        expect_refused 1 "$GOOD" rename "$GOOD" "$(mm_name renamed)"
        assert_true "image still there" test -x "$MM_IMAGES/$GOOD/bin/busybox"
        expect_refused 3 "$(mm_name nope)" terminate "$(mm_name nope)"
        expect_refused 3 "$(mm_name nope)" show "$(mm_name nope)"
        expect_refused 2 "verb" no-such-verb
        mm terminate "$GOOD" >/dev/null 2>&1 || true
        mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$GOOD' ]" || true
        assert_no_leftovers "$GOOD"
}

test_names
test_images
test_limits
test_settings_file
test_running
mm_finish
