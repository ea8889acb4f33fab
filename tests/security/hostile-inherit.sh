#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile-guest battery, issue 11 item 9: what guests would inherit from the daemon. The daemon runs with
# oom_score_adj -500 (its unit's OOMScoreAdjust=; +500 where the test may not lower it) and a raised fd
# limit; guests (their init, set up by the
# shared-memory spawn or by a fork) and shell sessions get oom_score_adj 0 — which guest root cannot lower
# again — and the fd limit the daemon was started with, also after a reboot and after a daemon restart
# "under a unit with LimitNOFILE=N" (soft = hard: then the soft limit is 1024), while the daemon's own
# value stays as set: the kernel does not hand the vfork child's write on to the daemon it shares memory
# with (__set_oom_adj skips a task with vfork_done).
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

# The daemon starts with a soft fd limit below its hard one (as under its unit: 1024:524288) and raises
# its own; the guests must get the original.
HARD=$(ulimit -Hn)
if [[ "$HARD" == unlimited ]]; then
        ulimit -Hn 65536
        HARD=65536
fi
SOFT=$((HARD > 2048 ? 1024 : HARD / 2))
ulimit -Sn "$SOFT"

hostile_setup
# OOMScoreAdjust=-500 of the daemon's unit. Lowering it needs CAP_SYS_RESOURCE, which a test host may not
# grant (a container): then the daemon runs at +500, which needs no privilege — what guests inherit, and
# what the shared-memory spawn may do to the daemon's value, is the same question either way.
DAEMON_ADJ=-500
set_daemon_adj() {
        if ! echo "$DAEMON_ADJ" 2>/dev/null >"/proc/$MM_DAEMON_PID/oom_score_adj"; then
                echo "# no CAP_SYS_RESOURCE here: the daemon runs at oom_score_adj +500 instead of -500"
                DAEMON_ADJ=500
                echo "$DAEMON_ADJ" >"/proc/$MM_DAEMON_PID/oom_score_adj"
        fi
}
set_daemon_adj

daemon_oom() { cat "/proc/$MM_DAEMON_PID/oom_score_adj"; }
nofile_of() { awk '/^Max open files/ {print $4 ":" $5}' "/proc/$1/limits"; }
assert_eq "the daemon raised its own soft fd limit" "$HARD:$HARD" "$(nofile_of "$MM_DAEMON_PID")"

# check_guest LABEL NAME EXPECTED_NOFILE [privileged]
check_guest() {
        local label=$1 name=$2 nofile=$3 mode=${4:-} leader
        leader=$(mm_leader "$name")
        assert_eq "[$label] init's oom_score_adj (host view)" 0 "$(cat "/proc/$leader/oom_score_adj")"
        assert_exit 0 mm shell "$name" cat /proc/1/oom_score_adj /proc/self/oom_score_adj
        assert_eq "[$label] oom_score_adj of init and of a shell session (guest view)" "0 0" \
                "${MM_STDOUT//$'\n'/ }"
        assert_eq "[$label] init's fd limit" "$nofile" "$(nofile_of "$leader")"
        assert_exit 0 mm shell "$name" cat /proc/self/limits
        assert_eq "[$label] a shell session's fd limit" "$nofile" \
                "$(awk '/^Max open files/ {print $4 ":" $5}' <<<"$MM_STDOUT")"
        if [[ "$mode" != privileged ]]; then
                assert_exit 1 mm shell "$name" sh -c 'echo -500 >/proc/self/oom_score_adj'
                assert_exit 1 mm shell "$name" sh -c 'echo -500 >/proc/1/oom_score_adj'
                assert_exit 0 mm shell "$name" cat /proc/1/oom_score_adj
                assert_eq "[$label] guest root cannot lower init's oom_score_adj again" 0 "$MM_STDOUT"
        fi
        assert_eq "[$label] the daemon's oom_score_adj stays" "$DAEMON_ADJ" "$(daemon_oom)"
}

leader_changed() {
        local now
        now=$(MM_TIMEOUT=2 mm show "$1" -p Leader 2>/dev/null) && [[ "$now" != "Leader=$2" && "$now" != Leader=0 ]]
}

# reboot_loop EXPECTED_NOFILE: reboots A for 5 s (each one a set-up in the daemon's memory); after each,
# the new init has oom_score_adj 0 and the fd limit, and the daemon's value is unchanged.
reboot_loop() {
        local nofile=$1 end=$((SECONDS + 5)) n=0 bad=0 old leader
        while ((SECONDS < end)); do
                old=$(mm_leader "$A")
                mm reboot "$A" >/dev/null 2>&1 || bad=$((bad + 1))
                mm_wait_for 10 leader_changed "$A" "$old" ||
                        bad=$((bad + 1))
                leader=$(mm_leader "$A")
                [[ "$(cat "/proc/$leader/oom_score_adj" 2>/dev/null)" == 0 ]] || bad=$((bad + 1))
                [[ "$(nofile_of "$leader")" == "$nofile" ]] || bad=$((bad + 1))
                [[ "$(daemon_oom)" == "$DAEMON_ADJ" ]] || bad=$((bad + 1))
                n=$((n + 1))
        done
        echo "# $n reboots of $A in 5 s"
        assert_eq "$n reboots: each init at oom_score_adj 0 with $nofile, the daemon at $DAEMON_ADJ (failures)" 0 "$bad"
}

A=$(mm_name attacker)
M=$(mm_name memlimit)
P=$(mm_name privileged)
hostile_probe_start

# Shared-memory spawn (no MemoryMax=, direct mode), a forked one (MemoryMax=), a privileged guest.
assert_exit 0 hostile_attacker "$A"
assert_eq "after a shared-memory spawn the daemon's oom_score_adj is still $DAEMON_ADJ" "$DAEMON_ADJ" "$(daemon_oom)"
check_guest "userns guest" "$A" "$SOFT:$HARD"
assert_exit 0 hostile_attacker "$M" --memory=256M
check_guest "guest with MemoryMax (forked set-up)" "$M" "$SOFT:$HARD"
assert_exit 0 hostile_attacker "$P" --private-users=no
check_guest "privileged guest" "$P" "$SOFT:$HARD" privileged

reboot_loop "$SOFT:$HARD"
check_guest "userns guest after reboots" "$A" "$SOFT:$HARD"

hostile_probe_check "item 9: inherited limits"

# A restart under a unit with LimitNOFILE=N: the daemon starts with soft = hard and cannot tell the
# original; guests get FD_SETSIZE (1024) soft, the hard limit stays.
mm_daemon_stop
ulimit -Sn "$HARD"
mm_daemon_start
ulimit -Sn "$SOFT"
set_daemon_adj
UNIT_SOFT=$((HARD > 1024 ? 1024 : HARD))
hostile_probe_start
leader=$(mm_leader "$A")
assert_eq "[re-adopted] init keeps its fd limit" "$SOFT:$HARD" "$(nofile_of "$leader")"
assert_exit 0 mm shell "$A" cat /proc/self/limits /proc/self/oom_score_adj
assert_eq "[re-adopted] a shell session's fd limit under the restarted daemon" "$UNIT_SOFT:$HARD" \
        "$(awk '/^Max open files/ {print $4 ":" $5}' <<<"$MM_STDOUT")"
assert_eq "[re-adopted] a shell session's oom_score_adj" 0 "$(tail -n 1 <<<"$MM_STDOUT")"
reboot_loop "$UNIT_SOFT:$HARD"
check_guest "re-adopted guest after reboots" "$A" "$UNIT_SOFT:$HARD"
assert_exit 0 mm terminate "$M"
assert_true "$M gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$M' ]"
assert_exit 0 hostile_attacker "$M" --memory=256M
check_guest "guest started by the restarted daemon" "$M" "$UNIT_SOFT:$HARD"
hostile_probe_check "item 9: after a restart"

for n in "$A" "$M" "$P"; do
        assert_exit 0 mm terminate "$n"
        assert_true "$n gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$n' ]"
        assert_no_leftovers "$n"
done
mm_finish
