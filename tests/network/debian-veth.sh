#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A Debian guest with Mode=veth and an address still boots systemd to READY=1, has host0 with its
# address before init ran, gets the host's resolv.conf (ResolvConf=copy-host), and leaves no link behind.
set -euo pipefail
# shellcheck source=tests/network/netlib.sh
. "$(dirname "$0")/netlib.sh"

net_setup
mm_daemon_start
D=$(mm_name deb)
mm_debian_image "$D"
mm_settings "$D" $'[Network]\nMode=veth\nAddress=10.90.0.2/24\nResolvConf=copy-host'

assert_exit 0 mm start "$D" --wait
assert_eq "state after --wait" "State=running" "$(mm show "$D" -p State 2>/dev/null || true)"
IFD=$(host_ifname "$D" || true)
assert_ne "host end exists" "" "$IFD"
assert_contains "address listed" "$(mm list --no-legend 2>/dev/null | grep -F "$D" || true)" "10.90.0.2"
nsx ip addr add 10.90.0.1/24 dev "$IFD"
assert_true "host reaches the guest" nsx busybox ping -c 3 -W 1 10.90.0.2
if [[ -f /etc/resolv.conf && ! -L "$MM_IMAGES/$D/etc/resolv.conf" ]]; then
        assert_eq "resolv.conf copied" "$(cat /etc/resolv.conf)" "$(cat "$MM_IMAGES/$D/etc/resolv.conf")"
fi
assert_exit 0 mm poweroff "$D" --wait
assert_true "gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$D' ]"
assert_eq "no veth after poweroff" "" "$(veth_links)"
assert_no_leftovers "$D"

net_finish
