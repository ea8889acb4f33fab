#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A private-socket client that never reads, for tests/security/hostile-slowclient.sh. Speaks the wire
protocol with dbus-abuse.py's code, so nothing (no library thread) reads on its behalf.

Usage: slow-client.py SOCKET MODE STOPFILE
  subscribe          one call (the daemon sends signals only to connections that have spoken), then
                     nothing: every signal the daemon emits piles up for this connection
  pipeline N         N Introspect calls of /org/machinemgr1 sent back to back, no reply read
Prints "READY" once connected and set up, then waits, reading nothing, until STOPFILE exists. Then it
reads what is queued for it (10 s at most) and prints one JSON object: "eof" (the daemon closed the
connection), the messages and bytes it drained, the calls it got sent before the daemon stopped taking
them.
"""

import importlib.util
import json
import os
import socket
import struct
import sys
import time

_spec = importlib.util.spec_from_file_location(
    "dbus_abuse", os.path.join(os.path.dirname(os.path.abspath(__file__)), "dbus-abuse.py"))
dbus_abuse = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dbus_abuse)


def drain(sock, buf, secs):
    """(messages, bytes, eof) read until EOF or until secs pass without it; buf: what was read already."""
    data = bytearray(buf)
    eof = False
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = sock.recv(1 << 20)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            eof = True
            break
        if not d:
            eof = True
            break
        data += d
    msgs, off = 0, 0
    while off + 16 <= len(data):
        blen, _serial, flen = struct.unpack_from("<III", data, off + 4)
        size = 16 + ((flen + 7) & ~7) + blen
        if off + size > len(data):
            break
        msgs += 1
        off += size
    return msgs, len(data), eof


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, mode, stop = sys.argv[1], sys.argv[2], sys.argv[-1]
    conn = dbus_abuse.Conn(path)
    conn.call(dbus_abuse.MGR_PATH, "org.freedesktop.DBus.Peer", "Ping", "", b"")
    sent = 0
    refused = None
    if mode == "pipeline":
        n = int(sys.argv[3])
        conn.sock.settimeout(30)
        print("READY", flush=True)
        try:
            for _ in range(n):
                conn.send(dbus_abuse.MGR_PATH, "org.freedesktop.DBus.Introspectable", "Introspect", "", b"")
                sent += 1
        except (BrokenPipeError, ConnectionResetError, socket.timeout) as e:
            refused = type(e).__name__
    elif mode == "subscribe":
        print("READY", flush=True)
    else:
        sys.exit(__doc__)
    while not os.path.exists(stop):
        time.sleep(0.1)
    msgs, got, eof = drain(conn.sock, conn.buf, 10)
    print(json.dumps({"mode": mode, "eof": eof, "drained_messages": msgs, "drained_bytes": got, "sent": sent,
                      "send_stopped_by": refused}), flush=True)


if __name__ == "__main__":
    main()
