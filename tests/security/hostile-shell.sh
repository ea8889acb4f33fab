#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile-guest battery, issue 11 item 4: the shell helper that enters a guest. Guest root of a
# PrivateUsers guest
#  - turns /etc/passwd and /etc/group into FIFOs and into 200 MB sparse files: `machinemgr shell`
#    must end within a few seconds — root falls back to root's defaults (exit 0, a warning naming the
#    file), another user gets an error naming the file (exit 1) — never hang;
#  - stops (SIGSTOP) and seizes (PTRACE_SEIZE) every new process of its pid namespace while shell
#    sessions start (tests/security/seize-watch.c): the helper, before it execs the command, must never
#    be seized, and the one the attacker leaves stopped must be, seen from the host, the guest's root
#    (uid_shift) — not the host's root.
# Meanwhile the victim guest and `machinemgr list` are unaffected (lib-hostile.sh's probes).
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

SEIZE=${MM_SEIZE_WATCH:-$MM_BUILD_ROOT/tests/security/seize-watch}
[[ -x "$SEIZE" ]] || mm_skip "$SEIZE not built (static libc missing?)"

hostile_setup
A=$(mm_name attacker)
mm_busybox_image "$A"
cp "$SEIZE" "$MM_IMAGES/$A/seize-watch"
ETC=$MM_IMAGES/$A/etc
assert_exit 0 hostile_attacker "$A"
LEADER=$(mm_leader "$A")
SHIFT=$(awk '{print $2; exit}' "/proc/$LEADER/uid_map")
assert_ne "the attacker is unprivileged (PrivateUsers=pick)" 0 "$SHIFT"
# A second account, to see what happens to anyone but root.
assert_exit 0 mm shell "$A" sh -c 'echo "mmuser:x:1000:1000::/:/bin/sh" >>/etc/passwd &&
        echo "mmgrp:x:1000:mmuser" >>/etc/group'

# Puts the real file back from the host (the image is the guest's root); a reader still blocked on
# the FIFO (the unfixed helper) is released first by a writer.
restore_accounts() {
        local f
        for f in passwd group; do
                [[ -e "$ETC/$f.real" ]] || continue
                [[ -p "$ETC/$f" ]] && timeout 1 sh -c ": >'$ETC/$f'" 2>/dev/null || true
                rm -f "$ETC/$f"
                mv "$ETC/$f.real" "$ETC/$f"
        done
}
hostile_cleanup_add restore_accounts

hostile_probe_start

# --- /etc/passwd and /etc/group that block or are huge -----------------------------------------------
# run_session LABEL EXPECTED_RC NEEDLE [shell options…]: `machinemgr shell A … true` ends within 5 s with
# EXPECTED_RC, and its stderr names NEEDLE.
run_session() {
        local label=$1 expected=$2 needle=$3 t0 t1 rc=0
        shift 3
        t0=$(_hostile_now_us)
        MM_TIMEOUT=15 mm shell "$@" "$A" true >"$MM_TMP/out" 2>"$MM_TMP/err" || rc=$?
        t1=$(_hostile_now_us)
        echo "# [$label] exit $rc after $(((t1 - t0) / 1000)) ms: $(head -c 300 "$MM_TMP/err" | tr '\n' ' ')"
        assert_true "[$label] the session ended within 5 s ($(((t1 - t0) / 1000)) ms)" \
                test $((t1 - t0)) -lt 5000000
        assert_eq "[$label] exit status" "$expected" "$rc"
        assert_contains "[$label] the error names the file" "$(cat "$MM_TMP/err")" "$needle"
}

for f in passwd group; do
        for kind in fifo huge; do
                case $kind in
                fifo) make="mkfifo /etc/$f" ;;
                huge) make="dd if=/dev/zero of=/etc/$f bs=1 count=0 seek=209715200 2>/dev/null" ;;
                esac
                assert_exit 0 mm shell "$A" sh -c "mv /etc/$f /etc/$f.real && $make"
                run_session "$f as $kind, root" 0 "/etc/$f"
                run_session "$f as $kind, another user" 1 "/etc/$f" --uid=mmuser
                restore_accounts
        done
done
assert_exit 0 mm shell --uid=mmuser "$A" id -u
assert_eq "with the files back, mmuser is entered as itself" 1000 "$MM_STDOUT"

# --- ptrace on the helper ------------------------------------------------------------------------------
# seize_round LABEL: seize-watch runs in the attacker for 12 s while 30 sessions start next to it.
seize_round() {
        local label=$1 out=$MM_TMP/seize-watch.$1 watch stopped host_pid='' ns d uids p failed=0 done_line helpers seized
        local sessions=()
        MM_TIMEOUT=60 mm shell "$A" /seize-watch 12 stop >"$out" 2>&1 &
        watch=$!
        sleep 1
        for ((i = 0; i < 30; i++)); do
                MM_TIMEOUT=40 mm shell "$A" true >/dev/null 2>&1 &
                sessions+=($!)
                sleep 0.2
        done

        # The helper the attacker left stopped, looked up from the host by its pid in the guest's pid
        # namespace.
        stopped=$(sed -n 's/^STOPPED pid=\([0-9]*\)$/\1/p' "$out" | head -n 1)
        if [[ -n "$stopped" ]]; then
                ns=$(readlink "/proc/$(mm_leader "$A")/ns/pid")
                for d in /proc/[0-9]*; do
                        [[ "$(readlink "$d/ns/pid" 2>/dev/null)" == "$ns" ]] || continue
                        [[ "$(awk '/^NSpid:/ {print $NF}' "$d/status" 2>/dev/null)" == "$stopped" ]] || continue
                        host_pid=${d#/proc/}
                        break
                done
        fi
        assert_ne "[$label] the attacker stopped a helper before its exec (guest pid ${stopped:-none})" "" "$host_pid"
        if [[ -n "$host_pid" ]]; then
                uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$host_pid/status")
                echo "# [$label] stopped helper: host pid $host_pid, comm $(cat "/proc/$host_pid/comm"), Uid: $uids"
                assert_eq "[$label] the stopped process is the helper before its exec" machinemgrd \
                        "$(cat "/proc/$host_pid/comm")"
                assert_eq "[$label] the helper the guest can see runs as the guest's root (uid_shift), not the host's" \
                        "$SHIFT $SHIFT $SHIFT $SHIFT" "$uids"
                kill -CONT "$host_pid" 2>/dev/null || true
        fi
        for p in "${sessions[@]}"; do
                wait "$p" || failed=$((failed + 1))
        done
        assert_eq "[$label] every shell session next to the attack succeeded" 0 "$failed"
        wait "$watch" || true
        done_line=$(grep '^DONE ' "$out" || true)
        echo "# [$label] seize-watch: $done_line"
        assert_contains "[$label] the attacker ran to the end" "$done_line" "DONE helpers="
        helpers=$(sed -n 's/.*helpers=\([0-9]*\).*/\1/p' <<<"$done_line")
        seized=$(sed -n 's/.* seized=\([0-9]*\).*/\1/p' <<<"$done_line")
        assert_true "[$label] the attacker saw helpers before their exec (${helpers:-0})" test "${helpers:-0}" -ge 1
        assert_eq "[$label] no helper was seized" 0 "${seized:-missing}"
        assert_not_contains "[$label] no seize=OK" "$(cat "$out")" "seize=OK"
        assert_not_contains "[$label] no helper visible as an unmapped (host) uid" "$(cat "$out")" "uid=65534"
}
seize_round "running daemon"
hostile_probe_check "item 4: shell helper"

# Again on a freshly restarted daemon (the attacker re-adopted): nothing it did before (a set-up in its
# memory) makes it non-dumpable by accident there.
mm_daemon_stop
mm_daemon_start
hostile_probe_start
seize_round "restarted daemon"
hostile_probe_check "item 4: shell helper, restarted daemon"

assert_exit 0 mm terminate "$A"
assert_true "$A gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$A' ]"
assert_no_leftovers "$A"
mm_finish
