#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 11 item 7, port forwarding: a PrivateUsers guest with Port= forwards (Network=none: the forwarder
# connects to the guest's loopback) and clients outside it that attack the forwarder:
#   (a) 1 GiB down and 1 GiB up through forwards at full speed: the loop moves a bounded amount per
#       connection per dispatch, so `machinemgr list` stays fast (lib-hostile's probes, p99 < 100 ms);
#   (b) one source opens more connections than its per-source limit (32 per port): the extra ones are
#       closed, while another source (127.0.0.2) still gets through;
#   (c) idle connections, and ones stalled by a guest that never reads, are closed after the idle timeout
#       (3 s here, MACHINEMGR_TCP_IDLE_SEC); a connection to a guest that never completes the handshake
#       after the connect timeout (2 s here, MACHINEMGR_TCP_CONNECT_SEC); busy ones stay;
#   (d) UDP: one source with 300 client ports cannot push another source's flow out (at most 256 flows
#       per port; when they are all taken, a source with 32 or more makes room from its own).
# The daemon runs in a network namespace of its own (as in tests/network), so all traffic stays on its
# loopback.
set -euo pipefail
# shellcheck source=tests/security/lib-hostile.sh
. "$(dirname "$0")/lib-hostile.sh"

PER_SOURCE=32
export MACHINEMGR_TCP_IDLE_SEC=3 MACHINEMGR_TCP_CONNECT_SEC=2 MACHINEMGR_UDP_IDLE_SEC=60

# --- the daemon in a netns of its own ---
NET_NS="mmtest-pfwd-$$"
PF_PIDS=()
MM_DAEMON_NETNS=$NET_NS
nsx() {
        nsenter --net="/run/netns/$NET_NS" "$@"
}
# Our helpers, then machines and daemon (lib.sh), then the namespace: wrapped around lib.sh's cleanup,
# which both mm_finish and the EXIT trap run.
eval "_pf_lib_cleanup() $(declare -f _mm_cleanup | tail -n +2)"
_mm_cleanup() {
        local p
        for p in "${PF_PIDS[@]}"; do
                kill "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
        done
        PF_PIDS=()
        _pf_lib_cleanup
        ip netns del "$NET_NS" 2>/dev/null || true
}

command -v python3 >/dev/null || mm_skip "needs python3"
busybox --list | grep -qx nc || mm_skip "busybox has no nc applet"
[[ -x "$MM_BUILD_ROOT/tests/network/udp-echo" ]] || mm_skip "udp-echo not built"
# The namespace before the daemon goes into it; the cleanup removes it even when the setup fails.
ip netns add "$NET_NS"
nsx ip link set lo up
hostile_setup

# --- the guest: echo (7), 1 GiB source (9), sink (10), a reader that never reads (12), UDP echo (13) ---
G=$(mm_name fwd)
mm_busybox_image "$G"
cat >"$MM_IMAGES/$G/bin/pf-source" <<'EOF'
#!/bin/sh
exec dd if=/dev/zero bs=65536 count=16384 2>/dev/null
EOF
cat >"$MM_IMAGES/$G/bin/pf-sink" <<'EOF'
#!/bin/sh
exec cat >/dev/null
EOF
cat >"$MM_IMAGES/$G/bin/pf-services" <<'EOF'
#!/bin/sh
nc -ll -p 7 -e /bin/cat &
nc -ll -p 9 -e /bin/pf-source &
nc -ll -p 10 -e /bin/pf-sink &
nc -ll -p 12 -e /bin/sleep 100000 &
udp-echo serve 13 &
exec sleep 100000
EOF
install -m 0755 "$MM_BUILD_ROOT/tests/network/udp-echo" "$MM_IMAGES/$G/bin/udp-echo"
chmod 0755 "$MM_IMAGES/$G/bin/pf-source" "$MM_IMAGES/$G/bin/pf-sink" "$MM_IMAGES/$G/bin/pf-services"
assert_exit 0 mm start "$G" --no-boot --private-users=pick --network=none --command=/bin/pf-services \
        --port=tcp:17007:7 --port=tcp:17009:9 --port=tcp:17010:10 --port=tcp:17011:11 --port=tcp:17012:12 \
        --port=udp:17013:13
LEADER=$(mm_leader "$G")
assert_true "guest services listening" mm_wait_for 10 sh -c \
        "[ \$(nsenter -t '$LEADER' -n ss -Hltn | grep -c LISTEN) -ge 4 ]"

# The clients, run in the daemon's netns.
cat >"$MM_TMP/pf.py" <<'EOF'
import socket, sys, time

def conn(port, src="127.0.0.1", timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s

def closed_by_peer(s, wait):
    """True if the peer closes (EOF or reset) within wait seconds."""
    s.settimeout(wait)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except socket.timeout:
        return False
    except OSError:
        return True

def echo_ok(s):
    try:
        s.settimeout(3)
        s.sendall(b"ping\n")
        return s.recv(16) == b"ping\n"
    except OSError:
        return False

cmd = sys.argv[1]
if cmd == "download":          # port bytes
    port, want = int(sys.argv[2]), int(sys.argv[3])
    s = conn(port, timeout=120)
    buf, got, t0 = bytearray(1 << 20), 0, time.time()
    while True:
        n = s.recv_into(buf)
        if n == 0:
            break
        got += n
    print(got, "%.2f" % (time.time() - t0))
elif cmd == "upload":          # port bytes: the guest sinks it; then EOF both ways
    port, total = int(sys.argv[2]), int(sys.argv[3])
    s = conn(port, timeout=120)
    chunk, sent, t0 = bytes(1 << 20), 0, time.time()
    while sent < total:
        s.sendall(chunk)
        sent += len(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    print(sent, "%.2f" % (time.time() - t0))
elif cmd == "hold":            # port src n statefile: n connections from src, echo on each, then hold
    port, src, n, state = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    socks = []
    for i in range(n):
        try:
            socks.append(conn(port, src))
        except OSError:
            pass
    good = [s for s in socks if echo_ok(s)]
    with open(state, "w") as f:
        f.write("%d %d\n" % (len(good), n - len(good)))
    while True:                # busy, so that the idle timeout does not free the slots meanwhile
        for s in good:
            echo_ok(s)
        time.sleep(1)
elif cmd == "echo":            # port src
    s = conn(int(sys.argv[2]), sys.argv[3])
    print("ok" if echo_ok(s) else "failed")
elif cmd == "idle":            # idle_sec: an idle, a stalled and a busy connection
    idle = float(sys.argv[2])
    quiet, stalled, busy = conn(17007), conn(17012), conn(17007)
    stalled.setblocking(False)
    try:
        while True:
            stalled.send(bytes(65536))
    except BlockingIOError:
        pass
    t0, alive = time.time(), True
    while time.time() - t0 < idle + 3:
        alive = alive and echo_ok(busy)
        time.sleep(0.5)
    print("quiet-closed" if closed_by_peer(quiet, 0.5) else "quiet-open",
          "stalled-closed" if closed_by_peer(stalled, 0.5) else "stalled-open",
          "busy-alive" if alive and echo_ok(busy) else "busy-dead")
elif cmd == "backlog":         # port: in the guest's netns, a listener that never accepts, its queue full
    port = int(sys.argv[2])
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port))
    l.listen(0)
    fill = []
    for i in range(2):
        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fill.append(f)
    print("listening", flush=True)
    time.sleep(1000)
elif cmd == "connect-timeout": # port wait
    s = conn(int(sys.argv[2]))
    t0 = time.time()
    print("closed %.1f" % (time.time() - t0) if closed_by_peer(s, float(sys.argv[3])) else "open")
elif cmd == "udp-send":        # port src srcport text: one datagram from src:srcport, prints the reply
    port, src, sport, text = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((src, sport))
    u.settimeout(2)
    u.sendto(text.encode(), ("127.0.0.1", port))
    try:
        print(u.recv(256).decode())
    except socket.timeout:
        print("")
elif cmd == "udp-flood":       # port n: one datagram from each of n client ports of 127.0.0.1
    port, n = int(sys.argv[2]), int(sys.argv[3])
    flood = []
    for i in range(n):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.sendto(b"x\n", ("127.0.0.1", port))
        flood.append(u)
    time.sleep(1)
EOF
pf() {
        nsx timeout 200 python3 "$MM_TMP/pf.py" "$@"
}
# The transfers' clients at a lower priority: on a small host, clients, guest and daemon at full speed
# would otherwise delay the probes' own `machinemgr list` processes, which is not what they measure.
pf_bulk() {
        nsx timeout 200 nice -n 10 python3 "$MM_TMP/pf.py" "$@"
}
assert_eq "echo through the forward" "ok" "$(pf echo 17007 127.0.0.1 || true)"

# --- (a) 1 GiB each way at full speed ---
# Both ways at once; prints "DOWN_BYTES DOWN_SEC UP_BYTES UP_SEC". With "strace", what one dispatch
# moves is measured meanwhile: the bytes the daemon splices between two of its epoll_wait() calls (every
# source already pending is dispatched once between two waits, each moving at most 128 KiB per
# direction of its connection: 1 MiB for these two connections). Before the probes' window: strace
# slows every system call of the daemon while it is attached.
transfer() {
        local down up
        pf_bulk download 17009 $((1 << 30)) >"$MM_TMP/down" &
        down=$!
        pf_bulk upload 17010 $((1 << 30)) >"$MM_TMP/up" &
        up=$!
        if [[ "${1:-}" == strace ]]; then
                sleep 0.3
                timeout 2 strace -p "$MM_DAEMON_PID" -e trace=splice,epoll_wait,epoll_pwait -o "$MM_TMP/strace" \
                        2>/dev/null || true
        fi
        wait "$down" || true
        wait "$up" || true
        echo "$(cat "$MM_TMP/down") $(cat "$MM_TMP/up")"
}
if command -v strace >/dev/null; then
        read -r DOWN_BYTES _ UP_BYTES _ <<<"$(transfer strace)"
        MAX_BURST=$(awk '/^epoll_p?wait/ {if (b > max) max = b; b = 0}
                         /^splice/ {if ($NF > 0) b += $NF}
                         END {print max + 0}' "$MM_TMP/strace")
        echo "# at most $MAX_BURST bytes spliced between two epoll_wait() calls"
        assert_true "the loop polls between bounded bursts ($MAX_BURST bytes <= 2 MiB)" \
                test "$MAX_BURST" -gt 0 -a "$MAX_BURST" -le $((2 << 20))
        assert_eq "1 GiB each way under strace, every byte" "$((1 << 30)) $((1 << 30))" "$DOWN_BYTES $UP_BYTES"
fi
hostile_probe_start
read -r DOWN_BYTES DOWN_SEC UP_BYTES UP_SEC <<<"$(transfer)"
echo "# 1 GiB down in ${DOWN_SEC:-?} s, 1 GiB up in ${UP_SEC:-?} s"
assert_eq "1 GiB down, every byte" $((1 << 30)) "${DOWN_BYTES:-0}"
assert_eq "1 GiB up, every byte" $((1 << 30)) "${UP_BYTES:-0}"

# --- (b) per-source limit ---
# Not through a function (that would be a subshell): the PID must be the helper's own (nsenter execs
# timeout, which passes the signal on).
nsenter --net="/run/netns/$NET_NS" timeout 200 python3 "$MM_TMP/pf.py" hold 17007 127.0.0.1 $((PER_SOURCE + 8)) "$MM_TMP/hold" &
PF_PIDS+=($!)
assert_true "40 connections tried" mm_wait_for 30 test -s "$MM_TMP/hold"
read -r HOLD_OK HOLD_CLOSED <"$MM_TMP/hold" || true
echo "# one source, $((PER_SOURCE + 8)) connections: $HOLD_OK served, $HOLD_CLOSED closed"
assert_eq "one source gets $PER_SOURCE connections" "$PER_SOURCE" "${HOLD_OK:-}"
assert_eq "the rest are closed" 8 "${HOLD_CLOSED:-}"
assert_eq "another source still gets through" "ok" "$(pf echo 17007 127.0.0.2 || true)"
kill "${PF_PIDS[-1]}" 2>/dev/null || true
wait "${PF_PIDS[-1]}" 2>/dev/null || true
assert_true "the first source gets through once its connections are gone" \
        mm_wait_for 5 sh -c "[ \"\$(nsenter --net=/run/netns/$NET_NS python3 $MM_TMP/pf.py echo 17007 127.0.0.1)\" = ok ]"

# --- (c) idle, stalled and half-open connections ---
assert_eq "idle and stalled connections closed, busy one kept" "quiet-closed stalled-closed busy-alive" \
        "$(pf idle "$MACHINEMGR_TCP_IDLE_SEC" || true)"
nsenter -t "$LEADER" -n python3 -u "$MM_TMP/pf.py" backlog 11 >"$MM_TMP/backlog" &
PF_PIDS+=($!)
assert_true "a listener that never accepts" mm_wait_for 5 grep -q listening "$MM_TMP/backlog"
CT=$(pf connect-timeout 17011 $((MACHINEMGR_TCP_CONNECT_SEC + 3)) || true)
assert_contains "a connection the guest never completes is closed" "$CT" "closed"
assert_eq "no half-open connection of the daemon left toward the guest" 0 \
        "$(nsenter -t "$LEADER" -n ss -Htnp state syn-sent | grep -c machinemgrd || true)"

# --- (d) UDP flows per source ---
# A client with a fixed address and port is one flow: one socket of the forwarder in the guest.
udp_keep() {
        pf udp-send 17013 127.0.0.2 40013 "$1" 2>/dev/null || true
}
guest_flow_ports() {
        nsenter -t "$LEADER" -n ss -Hun "dport = :13" | awk '{print $(NF - 1)}' | sort
}
assert_eq "a UDP client" "keep" "$(udp_keep keep)"
KEEP_FLOW=$(guest_flow_ports)
assert_eq "one flow for it" 1 "$(echo "$KEEP_FLOW" | grep -c .)"
pf udp-flood 17013 300 || true
echo "# keep flow: $KEEP_FLOW; after: $(guest_flow_ports | head -3 | tr '\n' ' ')"
FLOWS=$(guest_flow_ports | wc -l)
echo "# UDP: 300 client ports of one source -> $FLOWS flows in the guest"
assert_true "flows capped at 256 ($FLOWS)" test "$FLOWS" -le 256
assert_contains "the other source's flow survived the flood" "$(guest_flow_ports)" "$KEEP_FLOW"
assert_eq "the other source's client still answered" "again" "$(udp_keep again)"
assert_contains "… through the same flow" "$(guest_flow_ports)" "$KEEP_FLOW"

hostile_probe_check "item 7 port forwarding"
mm_finish
