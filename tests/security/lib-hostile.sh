# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Library of the hostile-guest battery (issue 11, tests/security/hostile-*.sh). Sourced after
# tests/lib.sh. An attack test asserts that the attack fails AND that everyone else is unaffected; this
# library measures the second part while the attack runs:
#
#   hostile_setup            mm_setup + journald_ensure (skip 77 without a journal) + mm_daemon_start +
#                            the victim: a busybox guest $HOSTILE_VICTIM (Boot=no, default PrivateUsers,
#                            i.e. pick) printing "victim-tick N" to its console every 0.2 s
#   hostile_probe_start      starts the probes in the background: `machinemgr list` latency (~5 samples/s)
#                            and the daemon's VmRSS (~5 samples/s)
#   hostile_probe_check LABEL [RSS_BOUND_KB]
#                            stops the probes and asserts over the window since hostile_probe_start:
#                            - every `machinemgr list` answered, p99 latency < $HOSTILE_P99_MS (100 ms),
#                              from at least 20 samples (prints p50/p99/max/n)
#                            - the daemon's RSS grew by less than RSS_BOUND_KB (default 32768 = 32 MiB)
#                              over the window: growth, not the absolute value, so that the same bound
#                              holds under an ASan build (prints baseline and max)
#                            - the victim's ticks reached the journal at >= 1 per second of the window on
#                              average, the newest within 2 s of the window's end; the victim is running
#   hostile_attacker NAME [start options…]
#                            a busybox guest NAME running `sleep 100000` (Boot=no, default PrivateUsers
#                            unless the options say otherwise); an image $MM_IMAGES/NAME made beforehand
#                            (to copy tools into it) is used as it is. Returns the status of the start.
#   hostile_cleanup_add FN   FN runs on exit (also when the test aborts), before tests/lib.sh's cleanup
#   hostile_end NAME…        terminates each machine that is listed, waits for its state file to go and
#                            asserts that nothing is left of it
#   hostile_have_debian      succeeds when the cached Debian rootfs (tools/mkimage-debian) is there, so
#                            that mm_debian_image is a copy and not a download
#   hostile_observe NAME     prints the settings of a running machine as seen from outside, KEY=VALUE a
#                            line: uid_map/gid_map (first line), init's and the payload's command line,
#                            the payload's environment, hostname, mounts under /mnt, the cgroup's limit
#                            files and `show`'s MemoryMax/TasksMax/CPUQuotaPerSecUSec; fails while the
#                            machine has no leader or (Boot=no) its payload is not started yet
#   hostile_observe_diff A B the keys whose values differ between two hostile_observe outputs, one
#                            "KEY: 'old' -> 'new'" a line; empty when identical
#
# The probes follow the daemon of $MM_DAEMON_PID at hostile_probe_start: a test that restarts the daemon
# opens a new window after the restart. They stop on their own when the test's shell or $MM_TMP is gone.

if ! declare -F mm_setup >/dev/null; then
        # shellcheck source=tests/lib.sh
        . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fi

HOSTILE_P99_MS=100
HOSTILE_RSS_BOUND_KB=32768
HOSTILE_VICTIM=
HOSTILE_PROBE_DIR=
_hostile_probe_pids=()
_hostile_cleanups=()
_hostile_window_start=
_hostile_rss_pid=

# Microseconds since the epoch, without a fork (bash 5).
_hostile_now_us() {
        local t=$EPOCHREALTIME
        echo "${t/./}"
}

# The probes and the tests' own cleanups run first in lib.sh's cleanup, which both mm_finish and the EXIT
# trap (an aborted test) call.
eval "_hostile_lib_cleanup() $(declare -f _mm_cleanup | tail -n +2)"
_mm_cleanup() {
        local fn
        _hostile_probe_stop
        for fn in "${_hostile_cleanups[@]}"; do
                "$fn" || true
        done
        _hostile_cleanups=()
        _hostile_lib_cleanup
}

hostile_cleanup_add() {
        _hostile_cleanups+=("$1")
}

_hostile_victim_ticks() {
        journalctl --no-pager -o cat "MACHINEMGR_MACHINE=$HOSTILE_VICTIM" 2>/dev/null | grep -c '^victim-tick ' || true
}

hostile_setup() {
        mm_setup
        declare -F journald_ensure >/dev/null || mm_skip "tests/console/journald.sh missing"
        journald_ensure || mm_skip "no journal available"
        mm_daemon_start
        HOSTILE_PROBE_DIR=$MM_TMP/probes
        mkdir -p "$HOSTILE_PROBE_DIR"
        HOSTILE_VICTIM=$(mm_name victim)
        mm_busybox_image "$HOSTILE_VICTIM"
        # Printed by the shell itself: one write(2) per line, so every tick is one console line.
        mm start "$HOSTILE_VICTIM" --no-boot \
                --command="sh -c 'i=0; while :; do i=\$((i + 1)); echo victim-tick \$i; sleep 0.2; done'"
        if ! mm_wait_for 10 sh -c "[ \"\$(journalctl --no-pager -o cat MACHINEMGR_MACHINE=$HOSTILE_VICTIM 2>/dev/null | grep -c '^victim-tick ')\" -ge 3 ]"; then
                _mm_fail "victim $HOSTILE_VICTIM: no ticks in the journal 10 s after its start"
                return 1
        fi
}

hostile_attacker() {
        local name=$1
        shift
        [[ -d "$MM_IMAGES/$name" ]] || mm_busybox_image "$name"
        mm start "$name" --no-boot --command='sleep 100000' "$@"
}

hostile_end() {
        local n
        for n in "$@"; do
                if mm_machine_listed "$n"; then
                        assert_exit 0 mm terminate "$n"
                        assert_true "$n gone" mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$n' ]"
                fi
                assert_no_leftovers "$n"
        done
}

hostile_have_debian() {
        local cache
        cache=$("$MM_SOURCE_ROOT/tools/mkimage-debian" --print-cache 2>/dev/null) && [[ -d "$cache" ]]
}

# The probe loops run in subshells that must not run the test's traps or stop on errors; they end when
# hostile_probe_check removes their run file, or when the test's shell or its temp dir is gone.
_hostile_latency_loop() {
        local run=$1 out=$2 parent=$3 t0 t1 rc
        trap - ERR EXIT
        set +e
        while [[ -e "$run" ]] && kill -0 "$parent" 2>/dev/null; do
                t0=$(_hostile_now_us)
                MM_TIMEOUT=10 mm list >/dev/null 2>&1
                rc=$?
                t1=$(_hostile_now_us)
                echo "$((t1 - t0)) $rc" >>"$out"
                # ~5 samples/s with the run itself: a 5 s window has 20 even on a busy host.
                sleep 0.15
        done
}

_hostile_rss_loop() {
        local run=$1 out=$2 parent=$3 pid=$4 kb
        trap - ERR EXIT
        set +e
        while [[ -e "$run" ]] && kill -0 "$parent" 2>/dev/null; do
                kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
                [[ -n "$kb" ]] && echo "$kb" >>"$out"
                sleep 0.2
        done
}

_hostile_probe_stop() {
        local p
        [[ -n "$HOSTILE_PROBE_DIR" ]] && rm -f "$HOSTILE_PROBE_DIR/run"
        for p in "${_hostile_probe_pids[@]}"; do
                kill "$p" 2>/dev/null || true
        done
        for p in "${_hostile_probe_pids[@]}"; do
                wait "$p" 2>/dev/null || true
        done
        _hostile_probe_pids=()
}

hostile_probe_start() {
        local kb
        _hostile_probe_stop
        [[ -n "$MM_DAEMON_PID" ]] || {
                _mm_fail "hostile_probe_start: no daemon running"
                return 1
        }
        rm -f "$HOSTILE_PROBE_DIR/latency" "$HOSTILE_PROBE_DIR/rss"
        _hostile_rss_pid=$MM_DAEMON_PID
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$_hostile_rss_pid/status")
        echo "$kb" >"$HOSTILE_PROBE_DIR/rss.baseline"
        touch "$HOSTILE_PROBE_DIR/run"
        _hostile_window_start=$(_hostile_now_us)
        _hostile_latency_loop "$HOSTILE_PROBE_DIR/run" "$HOSTILE_PROBE_DIR/latency" $$ </dev/null >/dev/null 2>&1 &
        _hostile_probe_pids+=($!)
        _hostile_rss_loop "$HOSTILE_PROBE_DIR/run" "$HOSTILE_PROBE_DIR/rss" $$ "$_hostile_rss_pid" \
                </dev/null >/dev/null 2>&1 &
        _hostile_probe_pids+=($!)
}

# "p50 p99 max n failed" of the latency samples, in ms.
_hostile_latency_stats() {
        awk '{ print $1 }' "$1" | sort -n | awk -v failed="$(awk '$2 != 0' "$1" | wc -l)" '
                { v[NR] = $1 }
                END {
                        n = NR
                        if (n == 0) { print "0 0 0 0", failed; exit }
                        i50 = int(n * 0.50); if (i50 < n * 0.50) i50++
                        i99 = int(n * 0.99); if (i99 < n * 0.99) i99++
                        printf "%.1f %.1f %.1f %d %d\n", v[i50] / 1000, v[i99] / 1000, v[n] / 1000, n, failed
                }'
}

# Victim ticks journaled between START_US and END_US: "count newest_us".
_hostile_ticks_between() {
        local start_us=$1 end_us=$2
        journalctl --no-pager -o export "MACHINEMGR_MACHINE=$HOSTILE_VICTIM" \
                --since="@$((start_us / 1000000 - 1))" 2>/dev/null |
                awk -v s="$start_us" -v e="$end_us" '
                /^__REALTIME_TIMESTAMP=/ { t = substr($0, 22) + 0 }
                /^MESSAGE=victim-tick / { if (t >= s && t <= e) { n++; if (t > newest) newest = t } }
                END { printf "%d %.0f\n", n, newest }'
}

hostile_probe_check() {
        local label=$1 bound=${2:-$HOSTILE_RSS_BOUND_KB} end_us stats p50 p99 max n failed base rssmax
        local secs ticks newest i
        end_us=$(_hostile_now_us)
        _hostile_probe_stop
        [[ -n "$_hostile_window_start" ]] || {
                _mm_fail "[$label] hostile_probe_check without hostile_probe_start"
                return 0
        }
        secs=$(((end_us - _hostile_window_start) / 1000000))

        # Latency of `machinemgr list`.
        touch "$HOSTILE_PROBE_DIR/latency"
        stats=$(_hostile_latency_stats "$HOSTILE_PROBE_DIR/latency")
        read -r p50 p99 max n failed <<<"$stats"
        echo "# [$label] machinemgr list over ${secs} s: p50 ${p50} ms, p99 ${p99} ms, max ${max} ms, n=$n, failed=$failed"
        if [[ "$n" -lt 20 ]]; then
                _mm_fail "[$label] only $n latency samples in ${secs} s: too few to say (need 20)"
        else
                assert_true "[$label] machinemgr list p99 ${p99} ms < ${HOSTILE_P99_MS} ms (n=$n)" \
                        awk -v p="$p99" -v b="$HOSTILE_P99_MS" 'BEGIN { exit !(p < b) }'
        fi
        assert_eq "[$label] every machinemgr list answered (failed runs)" 0 "$failed"

        # Growth of the daemon's RSS.
        base=$(cat "$HOSTILE_PROBE_DIR/rss.baseline")
        touch "$HOSTILE_PROBE_DIR/rss"
        rssmax=$(sort -n "$HOSTILE_PROBE_DIR/rss" | tail -n 1)
        rssmax=${rssmax:-$base}
        [[ "$rssmax" -ge "$base" ]] || rssmax=$base
        echo "# [$label] daemon VmRSS: baseline $base kB, max $rssmax kB, growth $((rssmax - base)) kB" \
                "($(wc -l <"$HOSTILE_PROBE_DIR/rss") samples)"
        # The daemon probed at the start must be the one that answered all along.
        assert_eq "[$label] the daemon probed is still the one running" "$_hostile_rss_pid" "$MM_DAEMON_PID"
        if grep -q libasan "/proc/$MM_DAEMON_PID/maps" 2>/dev/null; then
                # AddressSanitizer keeps freed memory in quarantine (256 MiB) and adds shadow memory: the
                # growth is the sanitizer's, not the daemon's. The normal build's run asserts the bound.
                echo "# [$label] daemon under AddressSanitizer: RSS growth reported, not asserted"
        else
                assert_true "[$label] daemon RSS growth $((rssmax - base)) kB < $bound kB" \
                        test "$((rssmax - base))" -lt "$bound"
        fi

        # The victim's console kept reaching the journal. A line journaled shortly after the window
        # is late, not lost: wait up to 2 s for the newest.
        for ((i = 0; i < 20; i++)); do
                read -r ticks newest <<<"$(_hostile_ticks_between "$_hostile_window_start" $((end_us + 2000000)))"
                [[ "$newest" -ge $((end_us - 2000000)) ]] && break
                sleep 0.1
        done
        read -r ticks _ <<<"$(_hostile_ticks_between "$_hostile_window_start" "$end_us")"
        echo "# [$label] victim ticks journaled in the window: $ticks in ${secs} s," \
                "newest $(((end_us - newest) / 1000)) ms before its end"
        assert_true "[$label] victim ticks in the journal: $ticks >= 1/s over ${secs} s" test "$ticks" -ge "$secs"
        assert_true "[$label] newest victim tick within 2 s of the window's end" \
                test "$newest" -ge $((end_us - 2000000))
        assert_eq "[$label] victim still running" "State=running" "$(mm show "$HOSTILE_VICTIM" -p State 2>/dev/null || true)"
        _hostile_window_start=
}

# --- the settings of a machine, as observed from outside -----------------------------------------------

_hostile_map_line() {
        awk '{print $1, $2, $3; exit}' "$1" 2>/dev/null
}

# One cgroup limit of NAME: FILE_V1 in a v1 hierarchy of CONTROLLER, else FILE_V2 of cgroup2.
_hostile_cg_limit() {
        local name=$1 controller=$2 v1=$3 v2=$4 hier dir
        hier=$(mm_controller_hier "$controller")
        dir=$(mm_scope_dir "$name" "$hier")
        [[ -n "$dir" ]] || return 0
        if [[ "$hier" == unified ]]; then
                cat "$dir/$v2" 2>/dev/null || true
        else
                cat "$dir/$v1" 2>/dev/null || true
        fi
}

hostile_observe() {
        local name=$1 leader payload show p
        leader=$(mm_leader "$name" 2>/dev/null) || return 1
        [[ -n "$leader" && "$leader" != 0 ]] && mm_pid_alive "$leader" || return 1
        payload=$leader
        # Boot=no: machinemgr-init runs the Command as its child.
        if [[ "$(cat "/proc/$leader/comm" 2>/dev/null)" == machinemgr-init ]]; then
                payload=$(cat "/proc/$leader/task/$leader/children" 2>/dev/null) || return 1
                payload=${payload%% *}
                [[ -n "$payload" ]] || return 1
        fi
        echo "uid_map=$(_hostile_map_line "/proc/$leader/uid_map")"
        echo "gid_map=$(_hostile_map_line "/proc/$leader/gid_map")"
        echo "init=$(tr '\0' ' ' <"/proc/$leader/cmdline" 2>/dev/null)"
        echo "payload=$(tr '\0' ' ' <"/proc/$payload/cmdline" 2>/dev/null)"
        echo "environ=$(tr '\0' '\n' <"/proc/$payload/environ" 2>/dev/null | LC_ALL=C sort | tr '\n' ' ')"
        echo "hostname=$(nsenter -t "$leader" -u hostname 2>/dev/null)"
        # Mount point and per-mount options of everything a test binds under /mnt.
        echo "mounts=$(awk '$5 ~ "^/mnt(/|$)" {print $5, $6}' "/proc/$leader/mountinfo" 2>/dev/null | LC_ALL=C sort | tr '\n' ' ')"
        echo "cg.memory=$(_hostile_cg_limit "$name" memory memory.limit_in_bytes memory.max)"
        echo "cg.pids=$(_hostile_cg_limit "$name" pids pids.max pids.max)"
        echo "cg.cpu=$(_hostile_cg_limit "$name" cpu cpu.cfs_quota_us cpu.max)"
        show=$(mm show "$name" -p MemoryMax -p TasksMax -p CPUQuotaPerSecUSec 2>/dev/null) || return 1
        for p in $show; do
                echo "show.$p"
        done
}

hostile_observe_diff() {
        local a=$1 b=$2
        diff <(echo "$a") <(echo "$b") >/dev/null && return 0
        awk -F= 'NF == 0 { next }
                 NR == FNR { old[$1] = substr($0, length($1) + 2); seen[$1] = 1; next }
                 { k = $1; v = substr($0, length(k) + 2)
                   if (!(k in old)) printf "%s: (none) -> \047%s\047\n", k, v
                   else if (old[k] != v) printf "%s: \047%s\047 -> \047%s\047\n", k, old[k], v
                   delete seen[k] }
                 END { for (k in seen) printf "%s: \047%s\047 -> (none)\n", k, old[k] }' \
                <(echo "$a") <(echo "$b")
}
