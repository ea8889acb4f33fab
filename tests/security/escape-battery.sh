#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Escape battery (issue 6 §1): tests/security/attack.c runs as root inside privileged guests (busybox,
# and Debian booted with systemd when the probe rootfs exists) and reports each attempt as BLOCKED,
# KNOWN (expected success of a privileged container, see docs/SECURITY.md) or ESCAPED (a failure).
# The host side checks what the guest cannot see: its release_agent files, the sleeper, the canaries.
# Then the daemon side: images whose /proc, /dev, /sys or /run are symlinks to host paths, and binds
# with "..".
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

ATTACK=${MM_ATTACK:-$MM_BUILD_ROOT/tests/security/attack}
DEBIAN_SRC=${MM_DEBIAN_SRC:-${MM_DEBIAN_ROOTFS:-/var/cache/machinemgr/probe/debian}}
[[ -x "$ATTACK" ]] || mm_skip "$ATTACK not built (static libc missing?)"

mm_setup
SLEEPER=
LOOPDEV=
security_cleanup() {
        [[ -z "$SLEEPER" ]] || kill "$SLEEPER" 2>/dev/null || true
        [[ -z "$LOOPDEV" ]] || losetup -d "$LOOPDEV" 2>/dev/null || true
}
trap 'security_cleanup; _mm_on_exit' EXIT

mm_daemon_start

# Host-side targets: a sleeper named so the guest can recognise it, a canary file, a loop device over
# a scratch file starting with MMDEVCANARY (a block device the host can read, unlike this VM's disk).
bash -c 'exec -a mm-host-sleeper sleep 100000' &
SLEEPER=$!
echo "host canary" >"$MM_TMP/canary"
head -c 1M /dev/zero >"$MM_TMP/blockdev.img"
printf MMDEVCANARY | dd of="$MM_TMP/blockdev.img" conv=notrunc status=none
LOOPDEV=$(losetup -f --show "$MM_TMP/blockdev.img")
DEVNUM=$(stat -c '%t %T' "$LOOPDEV")
MAJ=$((16#${DEVNUM% *}))
MIN=$((16#${DEVNUM#* }))

release_agents() {
        local h
        for h in /sys/fs/cgroup/*/release_agent; do
                [[ -f "$h" ]] && printf '%s=%s\n' "$h" "$(cat "$h")"
        done
        return 0
}
RA_BEFORE=$(release_agents)
HOSTNAME_BEFORE=$(hostname)

# Runs the battery in machine $1, asserting each line.
# run_battery NAME [unprivileged]: in an unprivileged (PrivateUsers) guest even the documented properties
# of privileged containers must fail, so a KNOWN line counts as an escape there.
run_battery() {
        local name=$1 mode=${2:-privileged} line verdict n=0 blocked=0 known=0 escaped=0
        assert_exit 0 mm shell "$name" /attack "$SLEEPER" "$MAJ" "$MIN" "$MM_TMP/canary"
        while IFS= read -r line; do
                verdict=${line%% *}
                case "$verdict" in
                BLOCKED) n=$((n + 1)); blocked=$((blocked + 1)); _mm_ok "[$name] $line" ;;
                KNOWN)
                        n=$((n + 1))
                        if [[ $mode == unprivileged ]]; then
                                escaped=$((escaped + 1))
                                _mm_fail "[$name] unprivileged guest: $line"
                        else
                                known=$((known + 1))
                                _mm_ok "[$name] expected success (privileged): $line"
                        fi
                        ;;
                ESCAPED) n=$((n + 1)); escaped=$((escaped + 1)); _mm_fail "[$name] $line" ;;
                NOTE) echo "# [$name] $line" ;;
                DONE) ;;
                *) _mm_fail "[$name] unexpected output: $line" ;;
                esac
        done <<<"$MM_STDOUT"
        assert_contains "[$name] the battery ran to the end" "$MM_STDOUT" "DONE escaped="
        # A guard against a battery that silently lost attempts.
        assert_true "[$name] at least 55 attempts reported (got $n)" test "$n" -ge 55
        echo "# [$name] attempts: $n, blocked: $blocked, expected successes: $known, escaped: $escaped"
        echo "SUMMARY $name tried=$n blocked=$blocked known=$known escaped=$escaped" >>"$MM_TMP/summary"
}

host_checks() {
        local name=$1
        assert_eq "[$name] host release_agent files unchanged" "$RA_BEFORE" "$(release_agents)"
        assert_true "[$name] host sleeper still alive" mm_pid_alive "$SLEEPER"
        assert_eq "[$name] host canary unchanged" "host canary" "$(cat "$MM_TMP/canary")"
        assert_eq "[$name] host hostname unchanged" "$HOSTNAME_BEFORE" "$(hostname)"
        # The battery writes its namespace root's pids.max; the default TasksMax above it must be intact.
        local cg
        cg=$(mm_scope_dir "$name" "$(mm_controller_hier pids)")
        [[ -z "$cg" ]] || assert_eq "[$name] TasksMax intact on the machine's cgroup" 16384 "$(cat "$cg/pids.max")"
}

# --- busybox guest ----------------------------------------------------------------------------------
BB=$(mm_name bb)
mm_busybox_image "$BB"
cp "$ATTACK" "$MM_IMAGES/$BB/attack"
assert_exit 0 mm_start_busybox "$BB" "sleep 100000" --private-users=no
run_battery "$BB"
host_checks "$BB"
assert_exit 0 mm terminate "$BB"
assert_true "$BB gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$BB' ]"
assert_no_leftovers "$BB"

# The same battery in an unprivileged guest (PrivateUsers=pick): nothing may succeed.
UB=$(mm_name ub)
mm_busybox_image "$UB"
cp "$ATTACK" "$MM_IMAGES/$UB/attack"
assert_exit 0 mm_start_busybox "$UB" "sleep 100000" --private-users=pick
run_battery "$UB" unprivileged
host_checks "$UB"
assert_exit 0 mm terminate "$UB"
assert_true "$UB gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$UB' ]"
assert_no_leftovers "$UB"

# --- Debian guest booted with systemd (also proves the device policy does not break its boot) ---------
if [[ -d "$DEBIAN_SRC" ]]; then
        DEB=$(mm_name deb)
        cp -a "$DEBIAN_SRC" "$MM_IMAGES/$DEB"
        cp "$ATTACK" "$MM_IMAGES/$DEB/attack"
        assert_exit 0 mm start "$DEB" --wait --private-users=no
        if [[ $MM_FAILED -eq 0 ]] || mm_machine_listed "$DEB"; then
                SYSTEMD_STATE=$(mm shell "$DEB" systemctl is-system-running 2>/dev/null || true)
                assert_true "systemd in $DEB is up under the device policy (state '$SYSTEMD_STATE')" \
                        grep -qxE 'running|degraded' <<<"$SYSTEMD_STATE"
                run_battery "$DEB"
                host_checks "$DEB"
        fi
        assert_exit 0 mm poweroff "$DEB" --wait
        assert_true "$DEB gone" mm_wait_for 30 sh -c "! [ -e '$MM_RUN/machines/$DEB' ]"
        assert_no_leftovers "$DEB"
        rm -rf "${MM_IMAGES:?}/$DEB"
else
        echo "# $DEBIAN_SRC missing: Debian part skipped"
fi

# --- daemon side: an image whose API mount points are symlinks to host paths ------------------------------
for dir in proc dev sys run; do
        for style in absolute relative; do
                N=$(mm_name "ln-$dir-${style:0:3}")
                H="$MM_TMP/host-$dir-$style"
                mkdir -p "$H"
                echo keep >"$H/canary"
                mm_busybox_image "$N"
                rm -rf "${MM_IMAGES:?}/$N/${dir:?}"
                if [[ $style == absolute ]]; then
                        ln -s "$H" "$MM_IMAGES/$N/$dir"
                else
                        ln -s "../../../../../../../../..$H" "$MM_IMAGES/$N/$dir"
                fi
                rc=0
                mm start "$N" --no-boot --command='sleep 100000' >/dev/null 2>"$MM_TMP/ln.err" || rc=$?
                echo "# /$dir -> $style host path: start exit $rc ($(head -c 200 "$MM_TMP/ln.err"))"
                # Whatever the start did, the host path must be untouched: no mount, no new file.
                assert_eq "/$dir symlinked to a host path ($style): nothing mounted there" "" \
                        "$(_mm_mounts_under "$H")"
                assert_eq "/$dir symlinked to a host path ($style): host dir unchanged" "canary" \
                        "$(ls -A "$H" | tr '\n' ' ' | sed 's/ $//')"
                if [[ $rc -eq 0 ]]; then
                        mm terminate "$N" >/dev/null 2>&1 || true
                        mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$N' ]" || true
                fi
                assert_no_leftovers "$N"
        done
done

# --- daemon side: bind paths with ".." -------------------------------------------------------------
BN=$(mm_name bind)
mm_busybox_image "$BN"
mkdir -p "$MM_TMP/bindsrc"
for spec in "$MM_TMP/bindsrc/../bindsrc:/mnt" "$MM_TMP/bindsrc:/../../../../mnt" "$MM_TMP/bindsrc:/mnt/../../x" \
        "../etc:/mnt"; do
        assert_exit 2 mm start "$BN" --no-boot --command='sleep 100000' --bind="$spec"
        assert_false_running=$(mm_machine_listed "$BN" && echo running || echo absent)
        assert_eq "bind '$spec' refused, machine not started" absent "$assert_false_running"
        if [[ $assert_false_running == running ]]; then
                mm terminate "$BN" >/dev/null 2>&1 || true
                mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$BN' ]" || true
        fi
done
assert_no_leftovers "$BN"

echo "# summary:"
sed 's/^/# /' "$MM_TMP/summary"
security_cleanup
SLEEPER=
LOOPDEV=
mm_finish
