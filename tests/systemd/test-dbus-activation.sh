#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPEC §6/§8: the first call to org.machinemgr1 on the system bus starts
# machinemgrd.service; the service's cgroup holds only the daemon.
set -euo pipefail
source "$MM_TESTS_DIR/lib-host.sh"

check_eq "machinemgrd is not running before the first call" inactive \
        "$(systemctl show -P ActiveState machinemgrd.service)"

out="$(busctl --system call org.machinemgr1 /org/machinemgr1 org.machinemgr1.Manager ListMachines 2>&1)" || true
check_match "ListMachines over the system bus answers" '^a\(sssuo\) 0' "$out"
check_eq "the call activated machinemgrd.service" active "$(systemctl show -P ActiveState machinemgrd.service)"
main_pid="$(systemctl show -P MainPID machinemgrd.service)"
check_eq "its main process is machinemgrd" machinemgrd "$(cat "/proc/$main_pid/comm" 2>/dev/null)"
check_eq "it owns org.machinemgr1" "$main_pid" \
        "$(busctl --system status org.machinemgr1 2>/dev/null | sed -n 's/^PID=//p')"
check_eq "the service cgroup holds only the daemon" "$main_pid" "$(unit_pids machinemgrd.service | sort -u)"

out="$(busctl --system introspect org.machinemgr1 /org/machinemgr1 2>&1)" || true
check_match "Manager interface is introspectable" 'org\.machinemgr1\.Manager' "$out"
check_match "ObjectManager on /org/machinemgr1" 'org\.freedesktop\.DBus\.ObjectManager' "$out"

check "private socket exists" test -S /run/machinemgr/private
out="$(busctl --address=unix:path=/run/machinemgr/private call org.machinemgr1 /org/machinemgr1 \
        org.machinemgr1.Manager ListMachines 2>&1)" || true
check_match "ListMachines over the private socket" '^a\(sssuo\) 0' "$out"
check "machinemgr list works" machinemgr list

# A second call goes to the same daemon (no second activation).
busctl --system call org.machinemgr1 /org/machinemgr1 org.machinemgr1.Manager ListMachines >/dev/null 2>&1 || true
check_eq "the daemon was not restarted" "$main_pid" "$(systemctl show -P MainPID machinemgrd.service)"

finish
