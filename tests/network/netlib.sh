# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Network tests: the daemon under test runs in a network namespace of its own ($NET_NS), so every link
# it creates, every bridge the test makes and every forwarded port stay out of the VM's real network.
# nsenter --net (not `ip netns exec`, which would also remount /sys and hide the cgroup hierarchies).

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

NET_NS="mmtest-net-$$"
# lib.sh starts (and its cleanup restarts) the daemon inside it.
MM_DAEMON_NETNS=$NET_NS

net_setup() {
        mm_setup
        command -v ip >/dev/null && command -v nsenter >/dev/null || mm_skip "needs ip and nsenter"
        ip netns add "$NET_NS"
        trap 'net_cleanup; _mm_on_exit' EXIT
        nsx ip link set lo up
}

nsx() {
        ip netns exec "$NET_NS" "$@"
}

# Machines, daemon and temp dir first (lib.sh), then the namespace with whatever links are left in it.
net_cleanup() {
        _mm_cleanup
        ip netns del "$NET_NS" 2>/dev/null || true
}

net_finish() {
        net_cleanup
        mm_finish
}

# The host-side interface name of machine NAME, from its NetworkInterfaces property.
host_ifname() {
        local idx
        idx=$(mm show "$1" -p NetworkInterfaces 2>/dev/null | cut -d= -f2)
        [[ -n "$idx" ]] || return 1
        nsx ip -o link show | awk -F': ' -v i="$idx" '$1 == i {print $2}' | cut -d@ -f1
}

# veth links in the daemon's netns (there should be none once the machines are gone).
veth_links() {
        nsx ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | tr '\n' ' '
}

listening_on() {
        nsx ss -Hltn "sport = :$1" | grep -c LISTEN || true
}

# A TCP exchange through the daemon's netns: sends a line to ADDR:PORT, prints the reply.
tcp_echo() {
        echo "$3" | nsx timeout 5 busybox nc -w 2 "$1" "$2" 2>/dev/null || true
}
