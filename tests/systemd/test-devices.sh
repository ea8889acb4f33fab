#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 6 (devices): a privileged guest (--private-users=no) in systemd mode gets the device policy of
# direct mode as unit properties of machine-NAME.scope (DevicePolicy=closed + DeviceAllow=), boots to
# READY under it and still stops cleanly every way a scope stops: poweroff --wait, systemctl stop of the
# scope, machinemgr@NAME stop, and the host's power-off (the harness fails the test if that hangs).
#
# Whether the host's systemd can enforce the policy depends on the host, and the test checks each case
# for what it is:
#   - unified (cgroup2 only; the 'devices-unified' variant boots the test host that way): systemd 252
#     attaches a BPF_CGROUP_DEVICE program to the scope; enforced.
#   - hybrid with a writable v1 devices hierarchy (a real hybrid host): systemd writes devices.deny/allow
#     on the scope's v1 devices cgroup, payload/ inherits it; enforced.
#   - hybrid with a read-only v1 devices hierarchy (this nspawn test host as booted): systemd 252 leaves
#     the devices controller out of its supported mask, so the policy is a property only; not enforced.
#     The test checks that case first, then remounts the hierarchy read-write, re-executes the host's
#     systemd (it decides what it supports when it starts) and checks the enforced v1 case too.
set -euo pipefail
source "$MM_TESTS_DIR/lib-host.sh"

NAME=debian
SCOPE="machine-$NAME.scope"
SVC="machinemgr@$NAME.service"
SETTINGS="/etc/machinemgr/$NAME.machine"
PROBE_DIR=/var/tmp/mm-devprobe

# No mm_force_stop at exit: the last guest is left running on purpose (see the end), and the host is
# thrown away after the test anyway.
defer rm -f "$SETTINGS"
defer rm -rf "$PROBE_DIR"

# The list direct mode writes to the v1 devices cgroup (cgroup-direct.c), as DeviceAllow= entries.
EXPECTED_ALLOW="$(sort <<'EOF'
/dev/char/1:3 rwm
/dev/char/1:5 rwm
/dev/char/1:7 rwm
/dev/char/1:8 rwm
/dev/char/1:9 rwm
/dev/char/5:0 rwm
/dev/char/5:1 rwm
/dev/char/5:2 rwm
char-pts rwm
/dev/char/10:200 rwm
/dev/char/10:229 rwm
char-* m
block-* m
EOF
)"

# Whether bpf(2) reaches the kernel here: systemd-nspawn's seccomp filter answers EPERM unless the host
# was booted with --system-call-filter=bpf, and then systemd 252 has no device control on cgroup2.
bpf_usable() {
        python3 -c '
import ctypes, errno, os, sys
nr = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}.get(os.uname().machine)
if nr is None:
    sys.exit(2)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall(nr, 5, None, 0)  # bpf(BPF_PROG_LOAD, NULL, 0): the kernel itself says EINVAL/E2BIG/EFAULT
sys.exit(1 if ctypes.get_errno() == errno.EPERM else 0)'
}

# How this host's systemd applies a device policy: bpf, v1 or none (property only).
enforcement() {
        if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
                if bpf_usable; then echo bpf; else echo none; fi
        elif [[ ",$(findmnt -n -o OPTIONS /sys/fs/cgroup/devices 2>/dev/null)," == *,rw,* ]]; then
                echo v1
        else
                echo none
        fi
}

# Devices the guest must not open: the block device /var/lib/machines is on (the host's disk), a loop
# device, loop-control, /dev/mem. Only those the host itself can open count (this VM refuses even its
# root an open of its disk, and has no /dev/mem): a refusal there would prove nothing.
DENY_PROBES=()
ALLOW_PROBES=("c 1 3" "c 1 9" "c 10 200")
host_can_open() {
        local type="$1" maj="$2" min="$3" node
        mkdir -p "$PROBE_DIR"
        node="$PROBE_DIR/$type-$maj-$min"
        rm -f "$node"
        mknod "$node" "$type" "$maj" "$min" 2>/dev/null || return 1
        (exec 3<"$node") 2>/dev/null
}
pick_probes() {
        local disk p
        disk="$(mountpoint -d /var/lib/machines 2>/dev/null || true)"
        for p in ${disk:+"b ${disk%%:*} ${disk#*:}"} "b 7 0" "c 10 237" "c 1 1"; do
                # shellcheck disable=SC2086 # "TYPE MAJ MIN"
                if [[ "$p" != "b 0 "* ]] && host_can_open $p; then
                        DENY_PROBES+=("$p")
                else
                        note "probe '$p' not usable: the host itself cannot open it"
                fi
        done
        note "probes the guest must not open: ${DENY_PROBES[*]:-none}"
}

# guest_open "TYPE MAJ MIN": mknod in the guest's /tmp (allowed: `m`), then open it read-only.
# Prints OPENED or the shell's error.
guest_open() {
        local type maj min
        read -r type maj min <<<"$1"
        machinemgr shell "$NAME" /bin/sh -c \
                "n=/tmp/mm-probe-$type-$maj-$min; rm -f \$n; mknod \$n $type $maj $min || exit 1; exec 3<\$n && echo OPENED" 2>&1 || true
}

# shellcheck disable=SC2317 # called through check
start_privileged() {
        machinemgr start "$NAME" --wait --private-users=no
}

# Checks on a running privileged guest; $1 is the phase's enforcement.
check_running_guest() {
        local mode="$1" leader out p
        check_eq "[$mode] scope is active" active "$(unit_prop "$SCOPE" ActiveState)"
        leader="$(mm_leader "$NAME")"
        check_match "[$mode] the guest is privileged (no user namespace)" '^ +0 +0 +4294967295$' \
                "$(head -n1 "/proc/$leader/uid_map" 2>/dev/null)"
        check_eq "[$mode] DevicePolicy=closed on the scope" closed "$(unit_prop "$SCOPE" DevicePolicy)"
        check_eq "[$mode] DeviceAllow= is direct mode's list" "$EXPECTED_ALLOW" \
                "$(systemctl show -p DeviceAllow "$SCOPE" | sed -n 's/^DeviceAllow=//p' | sort)"
        out="$(machinemgr shell "$NAME" /bin/systemctl is-system-running 2>/dev/null | tr -d '\r')" || true
        check_match "[$mode] the guest's systemd is up under the policy" '^(running|degraded)$' "$out"
        check_eq "[$mode] /dev/null reads in the guest" ok \
                "$(machinemgr shell "$NAME" /bin/sh -c 'head -c1 /dev/null && echo ok' 2>&1 | tr -d '\r')"
        for p in "${ALLOW_PROBES[@]}"; do
                # shellcheck disable=SC2086
                host_can_open $p || continue
                check_match "[$mode] allowed device '$p' opens in the guest" OPENED "$(guest_open "$p")"
        done
        for p in "${DENY_PROBES[@]}"; do
                out="$(guest_open "$p")"
                case "$mode" in
                none)
                        # Documented gap of this host, not an assertion that it stays open.
                        note "[$mode] device '$p' in the guest: ${out//$'\r'/} (not enforced on this host)" ;;
                *)
                        check_match "[$mode] host device '$p': mknod allowed, open refused (EPERM)" \
                                'Operation not permitted' "$out"
                        check_no_match "[$mode] host device '$p' was not opened" OPENED "$out" ;;
                esac
        done
        if [[ "$mode" == v1 ]]; then
                local dir=/sys/fs/cgroup/devices/machine.slice/$SCOPE
                check "[$mode] the scope has a v1 devices cgroup" test -f "$dir/devices.list"
                check_no_match "[$mode] the scope's v1 devices list is not 'a *:* rwm'" 'a \*:\* rwm' \
                        "$(cat "$dir/devices.list" 2>&1)"
                check_match "[$mode] and allows ptys (c 136:*)" 'c 136:\* rwm' "$(cat "$dir/devices.list" 2>&1)"
                check_eq "[$mode] payload/ inherited it" "$(cat "$dir/devices.list" 2>&1)" \
                        "$(cat "$dir/payload/devices.list" 2>&1)"
                check_match "[$mode] the guest runs in payload/ of the devices hierarchy" \
                        ":devices:/machine.slice/$SCOPE/payload" "$(cat "/proc/$leader/cgroup")"
        fi
}

# How often the host's systemd failed to signal the scope's cgroups with ENODEV (see check_stops).
enodev_races() {
        journalctl --no-pager -q -u "$SCOPE" 2>/dev/null | grep -c "Failed to kill control group .*: No such device" || true
}

# poweroff --wait, then systemctl stop of the scope: both must end in a clean power-off.
check_stops() {
        local mode="$1" leader t0
        leader="$(mm_leader "$NAME")"
        check "[$mode] machinemgr poweroff --wait" timeout 120 machinemgr poweroff "$NAME" --wait
        check_eventually "[$mode] leader is gone" 30 sh -c "! kill -0 $leader"
        check_eventually "[$mode] scope is gone" 30 unit_gone "$SCOPE"
        check_match "[$mode] a clean power-off" "$CLEAN_EXIT_RE" "$(machine_exit "$NAME" || true)"

        check "[$mode] start again" start_privileged
        leader="$(mm_leader "$NAME")"
        local races out
        races="$(enodev_races)"
        t0=$SECONDS
        check "[$mode] systemctl stop $SCOPE" timeout 60 systemctl stop "$SCOPE"
        note "[$mode] scope stop took $((SECONDS - t0))s"
        check "[$mode] stopping the scope took less than its stop timeout" test $((SECONDS - t0)) -lt 25
        check_eventually "[$mode] leader is gone after the scope stop" 30 sh -c "! kill -0 $leader"
        check_eventually "[$mode] machinemgr saw it go" 30 mm_absent "$NAME"
        out="$(machine_exit "$NAME" || true)"
        # systemd 252 walks the scope's cgroups to send KillSignal= while the guest, already powering off,
        # removes its own: reading a removed cgroup's cgroup.procs gives ENODEV, systemd then believes it
        # signalled nothing and sends SIGKILL at once ("Failed to kill control group …: No such device";
        # fixed upstream in 2025, systemd/systemd#38134). It happens with or without a device policy (2 of 150
        # stops of this guest without one), so here it is reported as what it is, not as a failure of the policy.
        if [[ "$out" =~ ^sits\ \"killed\"\ 9\  ]] && (($(enodev_races) > races)); then
                note "[$mode] KNOWN: systemd 252's ENODEV race in the scope's kill turned the power-off into SIGKILL"
                pass "[$mode] stopping the scope: SIGKILL from systemd's known ENODEV race, not the policy"
        else
                check_match "[$mode] stopping the scope powered the guest off" "$CLEAN_EXIT_RE" "$out"
        fi
}

# machinemgr@NAME with PrivateUsers=no in the settings file: start, policy, stop.
check_instance() {
        local mode="$1" leader
        mkdir -p "$(dirname "$SETTINGS")"
        printf '[Security]\nPrivateUsers=no\n' >"$SETTINGS"
        check "[$mode] systemctl start $SVC" timeout 300 systemctl start "$SVC"
        check_eq "[$mode] the instance's guest is running" running "$(mm_prop "$NAME" State)"
        leader="$(mm_leader "$NAME")"
        check_match "[$mode] and is privileged" '^ +0 +0 +4294967295$' "$(head -n1 "/proc/$leader/uid_map" 2>/dev/null)"
        check_eq "[$mode] its scope has DevicePolicy=closed" closed "$(unit_prop "$SCOPE" DevicePolicy)"
        check "[$mode] systemctl stop $SVC" timeout 180 systemctl stop "$SVC"
        check_eq "[$mode] service inactive after stop" inactive "$(unit_prop "$SVC" ActiveState)"
        check_eventually "[$mode] scope gone after the instance's stop" 30 unit_gone "$SCOPE"
        check_match "[$mode] a clean power-off" "$CLEAN_EXIT_RE" "$(machine_exit "$NAME" || true)"
        rm -f "$SETTINGS"
}

run_phase() {
        local mode
        mode="$(enforcement)"
        note "device policy enforcement on this host: $mode"
        check "[$mode] start a privileged guest" start_privileged
        check_running_guest "$mode"
        check_stops "$mode"
        check_instance "$mode"
}

pick_probes
# A run that is meant to enforce must not pass quietly as "property only" (test-devices-unified.sh).
if [[ -n "${MM_EXPECT_ENFORCEMENT:-}" ]]; then
        check_eq "this host enforces device policies ($MM_EXPECT_ENFORCEMENT)" "$MM_EXPECT_ENFORCEMENT" "$(enforcement)"
fi
run_phase

if [[ "$(enforcement)" == none && ! -f /sys/fs/cgroup/cgroup.controllers && -d /sys/fs/cgroup/devices ]]; then
        # The v1 devices hierarchy of a real hybrid host is writable; make this one so, and let systemd
        # see it (it probes what it may write only when it starts).
        check "remount the v1 devices hierarchy read-write" mount -o remount,bind,rw /sys/fs/cgroup/devices
        check "re-execute the host's systemd" systemctl daemon-reexec
        check_eventually "the host's systemd is back" 60 sh -c \
                'systemctl is-system-running | grep -qE "^(running|degraded)$"'
        check_eq "now enforced through the v1 devices controller" v1 "$(enforcement)"
        run_phase
fi

# Left running: the harness's power-off of the host must stop its scope (powering it off) without a hang.
check "start a privileged guest for the host's power-off" start_privileged
check_eq "its scope is active" active "$(unit_prop "$SCOPE" ActiveState)"
note "leaving $NAME running: the harness's host power-off must stop it"

finish
