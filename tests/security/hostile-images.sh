#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile-guest battery, issue 11 item 6: image trees that guests make hostile, read by local users.
# Guest root of a running PrivateUsers guest makes a chain of 40,000 nested directories and 200,000
# files in its own (writable) root; a second guest makes 50,000 files, 5,000 of them with a second name.
# Then root and an unprivileged user ask for what walks those trees: ListImages (`list-images`),
# GetManagedObjects, the Image Usage property, once each, then all three in a loop from 4 clients for 35 s.
# The daemon must answer every one of them at once (usage comes from a cache filled by a bounded walk in
# a worker process), never run more than 2 walks at once, `machinemgr list` stays under 100 ms at the
# 99th percentile, the daemon's RSS stays flat, and the usage reported in the end is the size du(1)
# sees for the plain tree and "unknown" (UINT64_MAX) for the tree deeper than the walk goes.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

MKTREE=${MM_MKTREE:-$MM_BUILD_ROOT/tests/security/mktree}
[[ -x "$MKTREE" ]] || mm_skip "$MKTREE not built (static libc missing?)"
UNKNOWN=18446744073709551615
DEPTH=40000
NFILES=200000
# A reply slower than this blocked the loop: each of these reads is a few stat(2) calls per image.
READ_BOUND_MS=250

hostile_setup
BUS="unix:path=$MM_RUN/private"
A=$(mm_name deep)
B=$(mm_name wide)

# Non-root callers, when setpriv can drop to nobody here: the private socket is open to everyone.
NOBODY=false
if setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
        chmod 0755 "$MM_TMP" "$MM_RUN"
        NOBODY=true
fi
as_nobody() {
        setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

# Milliseconds a command takes; its output in $MM_STDOUT, its status checked by the caller's assertion.
elapsed_ms() {
        local t0 t1 rc=0
        t0=$EPOCHREALTIME
        MM_STDOUT=$("$@" 2>&1) || rc=$?
        t1=$EPOCHREALTIME
        ELAPSED=$(((${t1/./} - ${t0/./}) / 1000))
        return "$rc"
}

busctl_as() {
        local who=$1
        shift
        if [[ $who == nobody ]]; then
                as_nobody busctl --address="$BUS" "$@"
        else
                busctl --address="$BUS" "$@"
        fi
}

usage_of() {
        local out
        out=$(busctl --address="$BUS" get-property org.machinemgr1 "/org/machinemgr1/image/$(escape_path "$1")" \
                org.machinemgr1.Image Usage 2>/dev/null) || return 1
        echo "${out#t }"
}

# sd_bus_path_encode: every byte but [A-Za-z0-9] as _XX.
escape_path() {
        local s=$1 out="" c i
        for ((i = 0; i < ${#s}; i++)); do
                c=${s:i:1}
                if [[ $c == [A-Za-z0-9] ]]; then
                        out+=$c
                else
                        out+=$(printf '_%02x' "'$c")
                fi
        done
        echo "$out"
}

# Worker processes of the daemon that walk image trees (named so by the daemon).
walkers() {
        ps -o comm= --ppid "$MM_DAEMON_PID" 2>/dev/null | grep -c '^mm-image-usage$' || true
}

# --- the guests make their trees, as guest root ---
mm_busybox_image "$A"
mm_busybox_image "$B"
cp "$MKTREE" "$MM_IMAGES/$A/mktree"
cp "$MKTREE" "$MM_IMAGES/$B/mktree"
assert_exit 0 hostile_attacker "$A"
assert_exit 0 hostile_attacker "$B"
LEADER=$(mm_leader "$A" || echo 0)
assert_ne "the attacker is unprivileged (PrivateUsers=pick)" "0 0 4294967295" \
        "$(awk '{print $1, $2, $3; exit}' "/proc/$LEADER/uid_map" 2>/dev/null || true)"
MM_TIMEOUT=300 assert_exit 0 mm shell "$A" /mktree deep "$DEPTH" /deep
assert_contains "guest root made a chain of $DEPTH directories" "$MM_STDOUT" "made $DEPTH"
MM_TIMEOUT=300 assert_exit 0 mm shell "$A" /mktree files "$NFILES" /many
assert_contains "guest root made $NFILES files" "$MM_STDOUT" "made $NFILES"
MM_TIMEOUT=300 assert_exit 0 mm shell "$B" /mktree files 45000 /many
MM_TIMEOUT=300 assert_exit 0 mm shell "$B" /mktree links 5000 /linked
assert_contains "guest root made 5000 hardlinked files" "$MM_STDOUT" "made 5000"

hostile_probe_start
WALKERS_MAX=0
sample_walkers() {
        local n
        n=$(walkers)
        [[ "$n" -le "$WALKERS_MAX" ]] || WALKERS_MAX=$n
}

# --- one read of each kind, as root and as nobody: each answers at once ---
callers=(root)
$NOBODY && callers+=(nobody)
for who in "${callers[@]}"; do
        if [[ $who == nobody ]]; then
                cli=(as_nobody env "MACHINEMGR_ADDRESS=$BUS" "$MM_BUILD_ROOT/tools/machinemgr")
        else
                cli=(mm)
        fi
        rc=0
        elapsed_ms "${cli[@]}" list-images || rc=$?
        assert_eq "[$who] list-images succeeds" 0 "$rc"
        assert_contains "[$who] list-images lists the attacker" "$MM_STDOUT" "$A"
        assert_true "[$who] list-images answered in ${ELAPSED} ms < ${READ_BOUND_MS} ms" test "$ELAPSED" -lt "$READ_BOUND_MS"
        sample_walkers

        rc=0
        elapsed_ms busctl_as "$who" call org.machinemgr1 /org/machinemgr1 org.freedesktop.DBus.ObjectManager \
                GetManagedObjects || rc=$?
        assert_eq "[$who] GetManagedObjects succeeds" 0 "$rc"
        assert_contains "[$who] GetManagedObjects has the attacker's image" "$MM_STDOUT" "$(escape_path "$A")"
        assert_true "[$who] GetManagedObjects answered in ${ELAPSED} ms < ${READ_BOUND_MS} ms" test "$ELAPSED" -lt "$READ_BOUND_MS"

        rc=0
        elapsed_ms busctl_as "$who" get-property org.machinemgr1 "/org/machinemgr1/image/$(escape_path "$A")" \
                org.machinemgr1.Image Usage || rc=$?
        assert_eq "[$who] the Usage property is read" 0 "$rc"
        assert_true "[$who] Usage answered in ${ELAPSED} ms < ${READ_BOUND_MS} ms" test "$ELAPSED" -lt "$READ_BOUND_MS"
        sample_walkers
done
assert_true "the daemon survived the reads" kill -0 "$MM_DAEMON_PID"

# --- 4 clients reading for 35 s: past the cache's 30 s, so every image is walked twice at most ---
STORM_SECS=35
storm() {
        local who=$1 end=$((SECONDS + STORM_SECS)) n=0
        trap - ERR EXIT
        set +e
        while ((SECONDS < end)); do
                busctl_as "$who" call org.machinemgr1 /org/machinemgr1 org.machinemgr1.Manager ListImages \
                        >/dev/null 2>&1 || echo fail
                busctl_as "$who" call org.machinemgr1 /org/machinemgr1 org.freedesktop.DBus.ObjectManager \
                        GetManagedObjects >/dev/null 2>&1 || echo fail
                busctl_as "$who" get-property org.machinemgr1 "/org/machinemgr1/image/$(escape_path "$A")" \
                        org.machinemgr1.Image Usage >/dev/null 2>&1 || echo fail
                n=$((n + 3))
                # Paced: the clients' own processes must not be what slows `machinemgr list` on 2 cores.
                sleep 0.2
        done
        echo "calls $n"
}
STORM_OUT=$MM_TMP/storm
: >"$STORM_OUT"
storm_pids=()
for i in 1 2 3 4; do
        who=root
        $NOBODY && ((i % 2 == 0)) && who=nobody
        storm "$who" >>"$STORM_OUT" &
        storm_pids+=($!)
done
WALK_PIDS=$MM_TMP/walk-pids
: >"$WALK_PIDS"
while :; do
        sample_walkers
        ps -o pid=,comm= --ppid "$MM_DAEMON_PID" 2>/dev/null | awk '$2 == "mm-image-usage" {print $1}' >>"$WALK_PIDS"
        alive=false
        for p in "${storm_pids[@]}"; do
                kill -0 "$p" 2>/dev/null && alive=true
        done
        $alive || break
        sleep 0.1
done
for p in "${storm_pids[@]}"; do
        wait "$p" || true
done
CALLS=$(awk '$1 == "calls" {n += $2} END {print n + 0}' "$STORM_OUT")
WALKS_SEEN=$(sort -u "$WALK_PIDS" | wc -l)
echo "# $CALLS reads from 4 clients in ${STORM_SECS} s; walks seen: $WALKS_SEEN, at most $WALKERS_MAX at once"
assert_eq "every read of the storm answered" 0 "$(grep -c fail "$STORM_OUT" || true)"
assert_true "the storm made its reads ($CALLS)" test "$CALLS" -ge 300
assert_true "the daemon survived the storm" kill -0 "$MM_DAEMON_PID"
# 3 images (victim, A, B), each walked at the first read and once more 30 s later: the walks seen (the
# sampling can miss short ones) are at most 6, however many reads there were.
assert_true "at most one walk per image per 30 s (saw $WALKS_SEEN walks for $CALLS reads)" test "$WALKS_SEEN" -le 6

# --- the usage eventually reported: du's for the plain tree, unknown for the one too deep ---
got_b=$UNKNOWN
for ((i = 0; i < 120; i++)); do
        sample_walkers
        got_b=$(usage_of "$B" || echo "$UNKNOWN")
        [[ "$got_b" != "$UNKNOWN" && "$(walkers)" -eq 0 ]] && break
        sleep 0.5
done
du_b=$(du -sx --block-size=1 "$MM_IMAGES/$B" | cut -f1)
echo "# usage of $B: daemon $got_b, du $du_b"
assert_ne "the usage of the guest's tree became known" "$UNKNOWN" "$got_b"
assert_true "it is what du counts (hardlinks once), within 1%" \
        awk -v a="$got_b" -v b="$du_b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d * 100 <= b) }'
got_a=$(usage_of "$A" || echo error)
assert_eq "the tree deeper than the walk goes reports unknown (UINT64_MAX)" "$UNKNOWN" "$got_a"
MM_TIMEOUT=10 assert_exit 0 mm list-images
assert_true "list-images shows '-' as its usage" \
        bash -c "grep -qE '^$A[[:space:]].*[[:space:]]-[[:space:]]' <<<\"\$1\"" _ "$MM_STDOUT"
assert_true "at most 2 walks ran at once (saw $WALKERS_MAX)" test "$WALKERS_MAX" -le 2

hostile_probe_check "item 6" 8192

for n in "$A" "$B"; do
        assert_exit 0 mm terminate "$n"
        assert_true "$n gone" mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$n' ]"
        assert_no_leftovers "$n"
done
mm_finish
