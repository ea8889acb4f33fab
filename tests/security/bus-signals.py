#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Prints every signal the daemon sends on one direct (peer-to-peer) connection to its private socket,
one line each, flushed at once: "MEMBER PATH ARG…" (string and object path arguments of the body).
busctl/gdbus monitor need a bus daemon; the daemon emits its signals to every peer connection that
has made a call, so a connection that pings once and then only reads sees them all. Uses the wire code of dbus-abuse.py (no dbus module).

Usage: bus-signals.py SOCKET     (runs until killed; prints "READY" once it receives signals)
"""

import importlib.util
import os
import struct
import sys

_spec = importlib.util.spec_from_file_location(
    "dbus_abuse", os.path.join(os.path.dirname(os.path.abspath(__file__)), "dbus-abuse.py"))
dbus_abuse = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dbus_abuse)


def leading_strings(sig, body):
    """The leading string/object path arguments of a body (enough for MachineNew/MachineRemoved)."""
    out = []
    off = 0
    for t in sig:
        if t not in "so":
            break
        off = (off + 3) & ~3
        ln = struct.unpack_from("<I", body, off)[0]
        out.append(body[off + 4:off + 4 + ln].decode(errors="replace"))
        off += 5 + ln
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    conn = dbus_abuse.Conn(sys.argv[1])
    # The daemon sends signals only to connections that have spoken: one call first.
    conn.call(dbus_abuse.MGR_PATH, "org.freedesktop.DBus.Peer", "Ping", "", b"")
    conn.sock.settimeout(None)
    print("READY", flush=True)
    while True:
        fixed = conn._recv_exact(16)
        if fixed[0:1] != b"l":
            sys.exit("big-endian message not handled")
        mtype = fixed[1]
        blen, _serial, flen = struct.unpack("<III", fixed[4:16])
        fields = conn._recv_exact((flen + 7) & ~7)[:flen]
        body = conn._recv_exact(blen)
        if mtype != 4:
            continue
        h = dbus_abuse.header_fields(fields)
        args = leading_strings(h.get(8, ""), body)
        print(" ".join([str(h.get(3, "?")), str(h.get(1, "?"))] + args), flush=True)


if __name__ == "__main__":
    try:
        main()
    except (ConnectionError, KeyboardInterrupt, BrokenPipeError):
        pass
