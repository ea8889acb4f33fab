#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Mode=bridge, Mode=veth, Address=, Port= forwarding (IPv4, IPv6, loopback), addresses in list/status,
# link removal at poweroff, at SIGKILL of the guest's init and after a daemon restart; bad input.
set -euo pipefail
# shellcheck source=tests/network/netlib.sh
. "$(dirname "$0")/netlib.sh"

net_setup
busybox --list | grep -qx nc || mm_skip "busybox has no nc applet"
nsx ip link add mmbr0 type bridge
nsx ip link set mmbr0 up
mm_daemon_start

ECHO_SERVER="nc -ll -p 7 -e /bin/cat"

# --- two guests on a bridge ---
B1=$(mm_name b1)
B2=$(mm_name b2)
mm_busybox_image "$B1"
mm_busybox_image "$B2"
mm_settings "$B1" $'[Network]\nAddress=10.88.0.11/24'
mm_settings "$B2" $'[Network]\nAddress=10.88.0.12/24'
assert_exit 0 mm start "$B1" --no-boot --network=bridge --bridge=mmbr0 --command="$ECHO_SERVER"
assert_exit 0 mm start "$B2" --no-boot --network=bridge --bridge=mmbr0 --command="sleep 100000"
IF1=$(host_ifname "$B1" || true)
assert_ne "host end of $B1 exists" "" "$IF1"
assert_contains "host end of $B1 is on the bridge" "$(nsx ip -o link show "$IF1" 2>/dev/null || true)" "master mmbr0"
assert_true "host name fits IFNAMSIZ" test "${#IF1}" -le 15
assert_exit 0 mm shell "$B2" ping -c 3 -W 1 10.88.0.11
assert_exit 0 mm shell "$B1" ping -c 3 -W 1 10.88.0.12
assert_exit 0 mm shell "$B2" sh -c 'echo across-the-bridge | nc -w 2 10.88.0.11 7'
assert_contains "TCP echo between guests" "$MM_STDOUT" "across-the-bridge"
assert_contains "guest sees host0 with its address" "$(mm shell "$B1" ip -o addr show host0 2>/dev/null || true)" "10.88.0.11/24"
assert_exit 0 mm poweroff "$B1" --wait
assert_exit 0 mm terminate "$B2"
assert_true "both gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$B1' ] && ! [ -e '$MM_RUN/machines/$B2' ]"
assert_eq "no veth left after stop" "" "$(veth_links)"
assert_no_leftovers "$B1"
assert_no_leftovers "$B2"

# --- veth with addresses and port forwards ---
V=$(mm_name v)
mm_busybox_image "$V"
mm_settings "$V" $'[Network]\nAddress=10.89.0.2/24\nAddress=fd89::2/64'
assert_exit 0 mm start "$V" --no-boot --network=veth --port=18080:7 --port=tcp:18081:7 --command="$ECHO_SERVER"
IFV=$(host_ifname "$V" || true)
assert_ne "host end of $V exists" "" "$IFV"
assert_contains "host end is up" "$(nsx ip -o link show "$IFV" 2>/dev/null || true)" ",UP"
nsx ip addr add 10.89.0.1/24 dev "$IFV"
nsx ip addr add fd89::1/64 dev "$IFV" nodad
assert_exit 0 mm shell "$V" ping -c 3 -W 1 10.89.0.1
assert_exit 0 mm shell "$V" ping6 -c 3 -W 1 fd89::1
for a in 127.0.0.1 ::1 10.89.0.1 fd89::1; do
        assert_eq "port forward via $a" "hello-$a" "$(tcp_echo "$a" 18080 "hello-$a")"
done
assert_eq "second forward" "second" "$(tcp_echo 127.0.0.1 18081 second)"
LIST=$(mm list --no-legend 2>/dev/null | grep -F "$V" || true)
assert_contains "list shows the IPv4 address" "$LIST" "10.89.0.2"
assert_contains "list shows the IPv6 address" "$LIST" "fd89::2"
assert_contains "status shows addresses" "$(mm status "$V" 2>/dev/null || true)" "Address: 10.89.0.2 fd89::2"
assert_contains "json list has addresses" "$(mm list -o json 2>/dev/null || true)" '"addresses":["10.89.0.2","fd89::2"]'
assert_eq "state file records the link" "$IFV" \
        "$(jq -r '.runtime[] | select(.[0] == "NET_IFNAME") | .[1]' "$MM_RUN/machines/$V")"

# Re-adoption: a new daemon re-creates the forwarders and still removes the link at stop.
mm_daemon_kill9
assert_eq "forwarder gone with the daemon" 0 "$(listening_on 18080)"
mm_daemon_start
assert_eq "forward after daemon restart" "again" "$(tcp_echo 127.0.0.1 18080 again)"
assert_exit 0 mm poweroff "$V" --wait
assert_true "gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$V' ]"
assert_eq "veth removed after poweroff" "" "$(veth_links)"
assert_eq "forwarder closed after poweroff" 0 "$(listening_on 18080)"
assert_eq "second forwarder closed" 0 "$(listening_on 18081)"
assert_no_leftovers "$V"

# --- SIGKILL of the guest's init ---
K=$(mm_name k)
mm_busybox_image "$K"
assert_exit 0 mm start "$K" --no-boot --network=veth --port=18082:7 --command="sleep 100000"
assert_ne "veth while running" "" "$(veth_links)"
LEADER=$(mm_leader "$K" || true)
kill -KILL "$LEADER"
assert_true "machine gone after SIGKILL" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$K' ]"
assert_eq "veth removed after SIGKILL" "" "$(veth_links)"
assert_eq "forwarder closed after SIGKILL" 0 "$(listening_on 18082)"
assert_no_leftovers "$K"

# --- bad input: InvalidArgument (exit 2), a clear message, nothing left behind ---
X=$(mm_name x)
mm_busybox_image "$X"
bad() {
        local what=$1 needle=$2
        shift 2
        assert_exit 2 "$@"
        assert_contains "$what: message" "$MM_STDERR" "$needle"
        assert_eq "$what: no link" "" "$(veth_links)"
        assert_no_leftovers "$X"
}
bad "missing bridge" "Bridge 'nope' does not exist" mm start "$X" --no-boot --network=bridge --bridge=nope
bad "not a bridge" "'lo' is not a bridge" mm start "$X" --no-boot --network=bridge --bridge=lo
bad "bridge mode without bridge" "needs a bridge" mm start "$X" --no-boot --network=bridge
bad "same port twice" "tcp:18084 is forwarded twice" mm start "$X" --no-boot --network=veth --port=18084 --port=tcp:18084:85
bad "port out of range" "70000" mm start "$X" --no-boot --network=veth --port=70000
bad "port forward with host netns" "needs a private network" mm start "$X" --no-boot --network=host --port=18083
mm_settings "$X" $'[Network]\nAddress=10.0.0.300/24'
bad "bad address" "10.0.0.300/24" mm start "$X" --no-boot --network=veth
mm_settings "$X" $'[Network]\nAddress=10.0.0.3/24'
bad "address without veth" "Address= needs Network mode" mm start "$X" --no-boot --network=none
rm -f "$MM_IMAGES/$X.machine"
# Over D-Bus directly, with the error name.
OUT=$(busctl --address="unix:path=$MM_RUN/private" call org.machinemgr1 /org/machinemgr1 \
        org.machinemgr1.Manager StartMachine 'sa{sv}' "$X" 2 Network s veth Address as 1 fd00::1/129 2>&1 || true)
assert_contains "D-Bus: bad IPv6 prefix" "$OUT" "Invalid address 'fd00::1/129'"
assert_eq "D-Bus: no link" "" "$(veth_links)"
assert_no_leftovers "$X"

net_finish
