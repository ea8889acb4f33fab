#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Proves the harness, independently of machinemgr: the host booted with
# systemd, our build is installed, and nested containers work inside it
# (plain systemd-nspawn, then a booted systemd guest registered with machined).
set -euo pipefail
source "$MM_TESTS_DIR/lib-host.sh"

GUEST=/var/lib/machines/debian

check_eq "PID 1 is systemd" systemd "$(cat /proc/1/comm)"
check "system bus is up" busctl --system status org.freedesktop.DBus
check "machinemgrd is installed" test -x /usr/local/sbin/machinemgrd
check "machinemgr CLI is installed" test -x /usr/local/bin/machinemgr
check "units are installed" systemctl cat machinemgrd.service machinemgr@x.service machinemgr.target
check "D-Bus policy is installed" test -f /usr/share/dbus-1/system.d/org.machinemgr1.conf
check "D-Bus activation file is installed" test -f /usr/share/dbus-1/system-services/org.machinemgr1.service
check_eq "machinemgrd.service is D-Bus activatable" org.machinemgr1 \
        "$(systemctl show -P BusName machinemgrd.service)"
check "guest image present" test -x "$GUEST/usr/lib/systemd/systemd"
check "busybox image present" test -x /var/lib/machines/busybox/bin/busybox
for tool in gdbus runuser ssh sshd jq python3 systemd-stdio-bridge machinectl; do
        check "$tool is available in the host" command -v "$tool"
done

# 1. A plain nested container: one command, no registration.
out="$(systemd-nspawn -q --register=no --private-network -D "$GUEST" /bin/sh -c 'echo nested-$((6*7))' 2>&1)" || true
check_match "nested systemd-nspawn runs a command" 'nested-42' "$out"

# 2. A nested booted systemd guest, as a unit, registered with machined.
defer "systemctl stop selftest-guest.service; machinectl terminate selftest"
check "nested boot starts" systemd-run --unit=selftest-guest --service-type=notify \
        -p NotifyAccess=all -p Delegate=yes -p KillMode=mixed \
        systemd-nspawn -q --boot --private-network --notify-ready=yes -D "$GUEST" -M selftest
check_eventually "machined sees the guest" 30 sh -c 'machinectl list --no-legend | grep -q "^selftest"'
state="$(timeout 90 systemd-run -q --wait --pipe -M selftest /bin/systemctl is-system-running --wait 2>&1 || true)"
check_match "guest systemd boots (running/degraded)" '^(running|degraded)' "$state"
check "guest PID 1 is systemd" sh -c \
        "leader=\$(machinectl show selftest -p Leader --value); test \"\$(cat /proc/\$leader/comm)\" = systemd"
check "machinectl poweroff" machinectl poweroff selftest
check_eventually "guest powered off, unit gone" 60 sh -c '! systemctl is-active -q selftest-guest.service'
check_eventually "machined registration gone" 30 sh -c '! machinectl list --no-legend | grep -q "^selftest"'

finish
