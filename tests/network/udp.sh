#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# UDP port forwarding (Port=udp:HOST[:GUEST]): echo over 127.0.0.1, ::1 and a v4 and a v6 host address,
# next to a TCP forward of the same port number; one flow per client, capped at 256 per port, expiring
# when idle; re-created by a restarted daemon; gone after stop. Bad input.
set -euo pipefail
# shellcheck source=tests/network/netlib.sh
. "$(dirname "$0")/netlib.sh"

UDP_ECHO=$MM_BUILD_ROOT/tests/network/udp-echo
net_setup
[[ -x "$UDP_ECHO" ]] || mm_skip "udp-echo not built"
busybox --list | grep -qx nc || mm_skip "busybox has no nc applet"
# Flows idle for 3 s expire (60 s by default), so that the test can watch them go.
export MACHINEMGR_UDP_IDLE_SEC=3
mm_daemon_start

# One datagram to ADDR:PORT through the daemon's netns; prints the reply.
udp_echo() {
        nsx timeout 5 "$UDP_ECHO" send "$@" 2>/dev/null || true
}
# The forwarder's flow sockets: connected UDP sockets in the guest's netns whose peer is port $2.
guest_flows() {
        nsenter -t "$1" -n ss -Hun "dport = :$2" | wc -l
}
bound_udp() {
        nsx ss -Huan "sport = :$1" | wc -l
}

U=$(mm_name u)
mm_busybox_image "$U"
install -m 0755 "$UDP_ECHO" "$MM_IMAGES/$U/bin/udp-echo"
mm_settings "$U" $'[Network]\nAddress=10.91.0.2/24\nAddress=fd91::2/64'
assert_exit 0 mm start "$U" --no-boot --network=veth --port=udp:18090:7 --port=udp:18091:8 --port=tcp:18090:7 \
        --command="sh -c 'udp-echo serve 8 & udp-echo serve 7 & exec nc -ll -p 7 -e /bin/cat'"
LEADER=$(mm_leader "$U" || true)
IFU=$(host_ifname "$U" || true)
assert_ne "host end exists" "" "$IFU"
nsx ip addr add 10.91.0.1/24 dev "$IFU"
nsx ip addr add fd91::1/64 dev "$IFU" nodad
mm_wait_for 5 sh -c "nsenter -t '$LEADER' -n ss -Huln 'sport = :8' | grep -q ."

for a in 127.0.0.1 ::1 10.91.0.1 fd91::1; do
        assert_eq "udp forward via $a" "hello-$a" "$(udp_echo "$a" 18090 "hello-$a")"
done
assert_eq "second udp forward" "other" "$(udp_echo 127.0.0.1 18091 other)"
assert_eq "tcp forward of the same port number" "tcp-too" "$(tcp_echo 127.0.0.1 18090 tcp-too)"
assert_eq "one flow per client" 4 "$(guest_flows "$LEADER" 7)"
assert_contains "state file records the udp ports" \
        "$(jq -c '.settings.ports[] | select(.protocol == "udp")' "$MM_RUN/machines/$U")" \
        '{"protocol":"udp","host":18091,"guest":8}'

# 300 clients at once: at most 256 flows; the oldest make room for new ones.
N=$(nsx timeout 10 "$UDP_ECHO" flows 127.0.0.1 18091 300 || echo 0)
assert_true "most of 300 clients answered ($N)" test "$N" -ge 256
assert_eq "flows capped at 256" 256 "$(guest_flows "$LEADER" 8)"

assert_true "idle flows expire" mm_wait_for 10 sh -c "[ \$(nsenter -t '$LEADER' -n ss -Hun | wc -l) = 0 ]"
assert_eq "a new flow after expiry" "again" "$(udp_echo ::1 18090 again)"

# A guest that reboots gets a new netns: a client that keeps its address (its flow) still gets through.
# (Before the daemon restart: a re-adopted guest's reboot is not observable, its init is not our child.)
assert_eq "before reboot" "one" "$(udp_echo 127.0.0.1 18090 one 40001)"
# reboot(2) from inside the guest's pid namespace. Not through `mm shell`: a session's helper sits in the
# guest's cgroup, which the respawn kills, so its exit status would race the reboot.
assert_exit 0 nsenter -t "$LEADER" -p -m -- /bin/reboot -f
# A new leader whose echo server is up.
rebooted() {
        local l
        l=$(mm show "$U" -p Leader 2>/dev/null) || return 1
        l=${l#Leader=}
        [[ -n "$l" && "$l" != "$LEADER" ]] && nsenter -t "$l" -n ss -Huln 'sport = :7' | grep -q .
}
assert_true "rebooted" mm_wait_for 10 rebooted
assert_eq "same client after reboot" "two" "$(udp_echo 127.0.0.1 18090 two 40001)"

# The reboot made a new veth pair: the host end's addresses are gone, loopback is used from here on.
LEADER=$(mm_leader "$U" || true)

# Re-adoption: a new daemon binds the ports again.
mm_daemon_kill9
assert_eq "udp forwarder gone with the daemon" 0 "$(bound_udp 18090)"
mm_daemon_start
assert_eq "udp forward after daemon restart" "adopted" "$(udp_echo 127.0.0.1 18090 adopted)"
assert_eq "second udp forward after restart" "adopted2" "$(udp_echo ::1 18091 adopted2)"

assert_exit 0 mm poweroff "$U" --wait
assert_true "gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$U' ]"
assert_eq "udp forwarder closed after poweroff" 0 "$(bound_udp 18090)"
assert_eq "second udp forwarder closed" 0 "$(bound_udp 18091)"
assert_eq "no reply after stop" "" "$(udp_echo 127.0.0.1 18090 late)"
assert_eq "veth removed" "" "$(veth_links)"
assert_no_leftovers "$U"

# --- bad input ---
X=$(mm_name x)
mm_busybox_image "$X"
assert_exit 2 mm start "$X" --no-boot --network=veth --port=udp:18092 --port=udp:18092:9
assert_contains "same udp port twice" "$MM_STDERR" "udp:18092 is forwarded twice"
# A port someone else holds: the start fails and names it. (nsenter execs: $! is the holder itself.)
nsenter --net="/run/netns/$NET_NS" "$UDP_ECHO" serve 18093 &
HOLDER=$!
mm_wait_for 5 sh -c "[ \$(ip netns exec '$NET_NS' ss -Huan 'sport = :18093' | wc -l) -gt 0 ]"
assert_exit 1 mm start "$X" --no-boot --network=veth --port=udp:18093
assert_contains "busy udp port named" "$MM_STDERR" "udp:18093"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
assert_eq "no link" "" "$(veth_links)"
assert_no_leftovers "$X"

net_finish
