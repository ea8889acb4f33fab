#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hostile D-Bus client for tests/security/dbus-abuse.sh: speaks the wire protocol itself (no dbus
module), so it can send what a D-Bus library refuses to marshal: invalid UTF-8, NULs inside strings,
1 MiB names, wrong signatures and bodies that do not match them.

Usage: dbus-abuse.py SOCKET MODE [ARGS]   (prints one JSON object with the counts)
  root VICTIM_IMAGE     every malformed/hostile category, as the caller it runs as
  nonroot MACHINE       every state-changing method as a non-root caller: must be AccessDenied
  race NAME CLIENTS N   CLIENTS connections each doing N start/terminate pairs of one machine
"""

import json
import os
import random
import socket
import struct
import sys
import threading
import time

DEST = "org.machinemgr1"
MGR_PATH = "/org/machinemgr1"
MGR = "org.machinemgr1.Manager"
MACH = "org.machinemgr1.Machine"


def pad(buf, n):
    return buf + b"\0" * ((-len(buf)) % n)


class W:
    """Little-endian D-Bus marshaller over raw bytes (strings may be any bytes)."""

    def __init__(self, base=0):
        self.b = bytearray()
        self.base = base

    def align(self, n):
        while (self.base + len(self.b)) % n:
            self.b.append(0)

    def y(self, v):
        self.b.append(v & 0xFF)

    def u(self, v):
        self.align(4)
        self.b += struct.pack("<I", v & 0xFFFFFFFF)

    def i(self, v):
        self.align(4)
        self.b += struct.pack("<i", v)

    def t(self, v):
        self.align(8)
        self.b += struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)

    def bool(self, v):
        self.u(1 if v else 0)

    def s(self, v):
        if isinstance(v, str):
            v = v.encode()
        self.u(len(v))
        self.b += v + b"\0"

    def g(self, v):
        if isinstance(v, str):
            v = v.encode()
        self.y(len(v))
        self.b += v + b"\0"

    def array(self, elem_align, items, fn):
        self.align(4)
        at = len(self.b)
        self.b += b"\0\0\0\0"
        self.align(elem_align)
        start = len(self.b)
        for it in items:
            fn(self, it)
        struct.pack_into("<I", self.b, at, len(self.b) - start)

    def variant(self, sig, fn):
        self.g(sig)
        fn(self)


def message(serial, path, iface, member, sig, body, dest=DEST, nfds=0):
    fields = W()

    def field(w, f):
        code, vsig, val = f
        w.align(8)
        w.y(code)
        w.g(vsig)
        if vsig == "g":
            w.g(val)
        elif vsig == "u":
            w.u(val)
        else:
            w.s(val)

    fl = [(1, "o", path), (3, "s", member)]
    if iface:
        fl.append((2, "s", iface))
    if dest:
        fl.append((6, "s", dest))
    if sig:
        fl.append((8, "g", sig))
    if nfds:
        fl.append((9, "u", nfds))
    fields.base = 12
    fields.array(8, fl, field)
    hdr = b"l" + bytes([1, 0, 1]) + struct.pack("<II", len(body), serial) + bytes(fields.b)
    return pad(hdr, 8) + bytes(body)


def body_of(fn):
    w = W()
    fn(w)
    return bytes(w.b)


def header_fields(fields):
    """{field code: value} of a message's header fields (4: error name, 5: reply serial, 3: member…)."""
    out = {}
    off = 0
    while off < len(fields):
        off = (off + 7) & ~7
        if off >= len(fields):
            break
        code = fields[off]
        slen = fields[off + 1]
        vsig = fields[off + 2:off + 2 + slen].decode()
        off += 3 + slen
        if vsig in ("s", "o"):
            off = (off + 3) & ~3
            ln = struct.unpack_from("<I", fields, off)[0]
            out[code] = fields[off + 4:off + 4 + ln].decode(errors="replace")
            off += 5 + ln
        elif vsig == "g":
            ln = fields[off]
            out[code] = fields[off + 1:off + 1 + ln].decode()
            off += 2 + ln
        elif vsig == "u":
            off = (off + 3) & ~3
            out[code] = struct.unpack_from("<I", fields, off)[0]
            off += 4
        else:
            raise ConnectionError("unexpected header field type " + vsig)
    return out


class Conn:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(path)
        uid = str(os.getuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        line = self._readline()
        if not line.startswith(b"OK"):
            raise RuntimeError("auth failed: %r" % line)
        self.sock.sendall(b"BEGIN\r\n")
        # A call sent in the same breath as BEGIN is left unanswered by the daemon (reported in
        # docs/SECURITY.md: the bytes after BEGIN sit in sd-bus's buffer until more data arrives).
        time.sleep(float(os.environ.get("MM_ABUSE_BEGIN_DELAY", "0.05")))
        self.buf = b""
        self.serial = 0

    def _readline(self):
        out = b""
        while not out.endswith(b"\r\n"):
            c = self.sock.recv(1)
            if not c:
                raise ConnectionError("eof during auth")
            out += c
        return out

    def send(self, path, iface, member, sig, body, dest=DEST):
        self.serial += 1
        self.sock.sendall(message(self.serial, path, iface, member, sig, body, dest))
        return self.serial

    def _recv_exact(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(1 << 20)
            if not d:
                raise ConnectionError("eof")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self):
        """Next reply: (type, reply_serial, error_name)."""
        while True:
            fixed = self._recv_exact(16)
            if fixed[0:1] != b"l":
                raise ConnectionError("big-endian reply not handled")
            mtype = fixed[1]
            blen, _serial, flen = struct.unpack("<III", fixed[4:16])
            rest = self._recv_exact(((flen + 7) & ~7) + blen)
            h = header_fields(rest[:flen])
            if mtype in (2, 3):
                return mtype, h.get(5), h.get(4)

    def call(self, path, iface, member, sig, body, dest=DEST):
        s = self.send(path, iface, member, sig, body, dest)
        while True:
            mtype, rs, err = self.read()
            if rs == s:
                return mtype, err

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.answered = 0
        self.errors = {}
        self.ok = 0
        self.disconnects = 0
        self.unexpected = []

    def add(self, mtype, err, expect=None, what=""):
        with self.lock:
            self.answered += 1
            key = err if mtype == 3 else "ok"
            self.errors[key] = self.errors.get(key, 0) + 1
            if mtype == 2:
                self.ok += 1
            if expect is not None and key not in expect and len(self.unexpected) < 50:
                self.unexpected.append("%s: got %s, expected %s" % (what[:120], key, sorted(expect)))


def s_(v):
    return lambda w: w.s(v)


def names():
    """Names that are valid UTF-8 but must be refused, or that name nothing."""
    out = ["", "a" * 65, "a" * 64, "..", ".", "/", "a/b", "-x", ".x", "a\nb", "a\tb", "\x01", "a b",
           "\u00fc", "\U0001F600", "a" * 4096, "x" * 300, "machine-\u202e", "%s", "%n%n%n", "$(reboot)",
           "../../etc", "a" * 1 + "\x7f"]
    for _ in range(40):
        n = random.randint(1, 80)
        out.append("".join(chr(random.choice([random.randint(0x20, 0x7e), random.randint(0xa0, 0x2fff)]))
                           for _ in range(n)))
    return out


BAD_NAME_ERRORS = {"org.machinemgr1.Error.InvalidName", "org.machinemgr1.Error.NoSuchMachine",
                   "org.machinemgr1.Error.NoSuchImage", "org.machinemgr1.Error.InvalidArgument",
                   "org.freedesktop.DBus.Error.InvalidArgs"}


def pipelined(conn, stats, calls, window=64):
    """Sends calls [(path, iface, member, sig, body, expect, what)] keeping `window` in flight."""
    pending = {}
    it = iter(calls)
    done = False
    while not done or pending:
        while not done and len(pending) < window:
            try:
                c = next(it)
            except StopIteration:
                done = True
                break
            s = conn.send(*c[:5])
            stats.sent += 1
            pending[s] = c
        if pending:
            mtype, rs, err = conn.read()
            c = pending.pop(rs, None)
            if c is not None:
                stats.add(mtype, err, c[5], c[6])


def mode_root(sock, image):
    st = Stats()
    conn = Conn(sock)
    calls = []
    unknown_expect = {"org.freedesktop.DBus.Error.UnknownMethod", "org.freedesktop.DBus.Error.UnknownObject",
                      "org.freedesktop.DBus.Error.UnknownInterface", "org.freedesktop.DBus.Error.InvalidArgs"}
    # Unknown methods, interfaces and paths.
    for k in range(2000):
        r = k % 4
        if r == 0:
            calls.append((MGR_PATH, MGR, "NoSuch%d" % k, "", b"", unknown_expect, "unknown method"))
        elif r == 1:
            calls.append((MGR_PATH, "org.machinemgr1.NoSuch%d" % k, "ListMachines", "", b"", unknown_expect,
                          "unknown interface"))
        elif r == 2:
            calls.append(("/org/machinemgr1/machine/nosuch_%d" % k, MACH, "PowerOff", "", b"",
                          unknown_expect | {"org.machinemgr1.Error.NoSuchMachine"}, "unknown machine path"))
        else:
            calls.append(("/x/y%d" % k, MGR, "ListMachines", "", b"", unknown_expect, "unknown path"))
    # Wrong signatures for every manager method.
    methods = ["GetMachine", "StartMachine", "PowerOffMachine", "RebootMachine", "TerminateMachine",
               "KillMachine", "GetMachineConsole", "CopyToMachine", "CopyFromMachine", "GetImage",
               "CloneImage", "RenameImage", "RemoveImage", "MarkImageReadOnly", "ShellMachine", "GetMachineExit",
               "ListMachines", "ListImages"]
    sigs = [("u", lambda w: w.u(7)), ("i", lambda w: w.i(-1)), ("t", lambda w: w.t(1 << 63)),
            ("b", lambda w: w.bool(True)), ("ss", lambda w: (w.s("a"), w.s("b"))),
            ("sa{ss}", lambda w: (w.s(image), w.array(8, [("k", "v")], lambda w, kv: (w.align(8), w.s(kv[0]), w.s(kv[1]))))),
            ("as", lambda w: w.array(4, ["a", "b"], lambda w, x: w.s(x))),
            ("o", lambda w: w.s("/a")), ("ssib", lambda w: (w.s("a"), w.s("b"), w.i(1), w.bool(False))),
            ("ay", lambda w: w.array(1, [1, 2, 3], lambda w, x: w.y(x)))]
    wrong_sig_expect = {"org.freedesktop.DBus.Error.InvalidArgs", "org.freedesktop.DBus.Error.UnknownMethod"}
    for k in range(2000):
        m = methods[k % len(methods)]
        sig, fn = sigs[(k // len(methods)) % len(sigs)]
        if (m, sig) == ("RenameImage", "ss"):
            continue
        calls.append((MGR_PATH, MGR, m, sig, body_of(fn), wrong_sig_expect, "%s(%s)" % (m, sig)))
    # Odd (valid UTF-8) names for every name-taking method.
    nm = names()
    name_methods = [("GetMachine", "s"), ("PowerOffMachine", "s"), ("RebootMachine", "s"),
                    ("TerminateMachine", "s"), ("GetMachineConsole", "s"), ("GetImage", "s"),
                    ("RemoveImage", "s"), ("GetMachineExit", "s")]
    for k in range(2000):
        n = nm[k % len(nm)]
        m, sig = name_methods[k % len(name_methods)]
        calls.append((MGR_PATH, MGR, m, sig, body_of(s_(n)), BAD_NAME_ERRORS, "%s(%r)" % (m, n[:40])))
    # StartMachine with odd names and with wrongly typed/hostile options, on a real image.
    opts_bad = [
        ("MemoryMax", "s", lambda w: w.s("1G")), ("MemoryMax", "t", lambda w: w.t(0)),
        ("TasksMax", "b", lambda w: w.bool(True)), ("TasksMax", "t", lambda w: w.t(0)),
        ("CPUQuotaPerSecUSec", "t", lambda w: w.t(0)), ("CPUQuotaPerSecUSec", "s", lambda w: w.s("50%")),
        ("Network", "s", lambda w: w.s("evil")), ("Network", "u", lambda w: w.u(1)),
        ("Bind", "s", lambda w: w.s("/etc:/x")),
        ("Bind", "a(ssb)", lambda w: w.array(8, [("relative", "/x", False)],
                                             lambda w, e: (w.align(8), w.s(e[0]), w.s(e[1]), w.bool(e[2])))),
        ("Bind", "a(ssb)", lambda w: w.array(8, [("/etc/../etc", "/../../x", False)],
                                             lambda w, e: (w.align(8), w.s(e[0]), w.s(e[1]), w.bool(e[2])))),
        ("Bind", "a(ssb)", lambda w: w.array(8, [("/nonexistent-mm", "/x", True)],
                                             lambda w, e: (w.align(8), w.s(e[0]), w.s(e[1]), w.bool(e[2])))),
        ("Command", "s", lambda w: w.s("/bin/sh")), ("Command", "as", lambda w: w.array(4, [], lambda w, x: w.s(x))),
        ("Boot", "s", lambda w: w.s("no")), ("Ephemeral", "u", lambda w: w.u(2)),
        ("Environment", "as", lambda w: w.array(4, ["NOEQUALS", "=x"], lambda w, x: w.s(x))),
        ("Environment", "s", lambda w: w.s("A=B")),
        ("Port", "a(sqq)", lambda w: w.array(8, [("sctp", 0, 0)],
                                             lambda w, e: (w.align(8), w.s(e[0]), w.align(2), w.b.extend(struct.pack("<HH", e[1], e[2]))))),
        ("ResolvConf", "s", lambda w: w.s("steal-host")), ("PrivateUsers", "s", lambda w: w.s("bogus")),
        ("PrivateUsers", "b", lambda w: w.bool(True)), ("NoSuchOption", "s", lambda w: w.s("x")),
        ("Hostname", "s", lambda w: w.s("a" * 300)), ("Hostname", "t", lambda w: w.t(1)),
        ("SystemCallFilter", "as", lambda w: w.array(4, ["kexec_load"], lambda w, x: w.s(x))),
    ]
    # NoInit: a correctly typed value (MemoryMax=0, CPUQuota 0) passed validation and the start got as
    # far as looking for the busybox image's init (there is none: nothing starts).
    start_expect = {"org.machinemgr1.Error.NoInit", "org.machinemgr1.Error.InvalidArgument", "org.freedesktop.DBus.Error.InvalidArgs",
                    "org.machinemgr1.Error.InvalidName", "org.machinemgr1.Error.NoSuchImage"}
    for k in range(2000):
        if k % 5 == 0:
            n = nm[k % len(nm)]
            body = body_of(lambda w: (w.s(n), w.array(8, [], None)))
            calls.append((MGR_PATH, MGR, "StartMachine", "sa{sv}", body, start_expect, "StartMachine(%r)" % n[:40]))
            continue
        key, vsig, fn = opts_bad[k % len(opts_bad)]

        def entry(w, e, vsig=vsig, fn=fn):
            w.align(8)
            w.s(e)
            w.variant(vsig, fn)
        # Every option set also carries Command=["/bin/false"] and Boot=false in case one got through.
        body = body_of(lambda w: (w.s(image), w.array(8, [key], entry)))
        calls.append((MGR_PATH, MGR, "StartMachine", "sa{sv}", body, start_expect,
                      "StartMachine(%s %s)" % (key, vsig)))
    # Machine-object methods with wrong signatures on the manager path and a machine path.
    for k in range(400):
        calls.append(("/org/machinemgr1/machine/%s" % image.replace("-", "_2d"), MACH,
                      ["Kill", "SetLimits", "GetOSRelease", "PowerOff"][k % 4], "u", body_of(lambda w: w.u(k)),
                      wrong_sig_expect | {"org.freedesktop.DBus.Error.UnknownObject",
                                          "org.machinemgr1.Error.NoSuchMachine"}, "machine method, wrong sig"))
    random.shuffle(calls)
    pipelined(conn, st, calls)
    # Huge names: 1 MiB, one at a time (sd-bus's limit on a message is 128 MiB).
    for m in ["GetMachine", "TerminateMachine", "GetImage", "PowerOffMachine"] * 5:
        st.sent += 1
        mtype, err = conn.call(MGR_PATH, MGR, m, "s", body_of(s_("A" * (1 << 20))))
        st.add(mtype, err, BAD_NAME_ERRORS, "%s(1 MiB)" % m)
    st.sent += 1
    mtype, err = conn.call(MGR_PATH, MGR, "StartMachine", "sa{sv}",
                           body_of(lambda w: (w.s("B" * (1 << 20)), w.array(8, [], None))))
    st.add(mtype, err, start_expect, "StartMachine(1 MiB)")
    conn.close()

    # Bytes the bus library itself would refuse: invalid UTF-8, NUL inside a string, body shorter than
    # its signature. The daemon's sd-bus may drop such a connection instead of answering: that is
    # counted, and the daemon must still answer the next connection.
    raw = [b"\xff\xfe", b"a\xc3", b"\xc0\xaf", b"a\0b", b"\xed\xa0\x80", b"ok\0", b"\xf8\x88\x80\x80\x80"]
    for k in range(700):
        c = Conn(sock)
        n = raw[k % len(raw)] + str(k).encode()
        m = ["GetMachine", "StartMachine", "TerminateMachine"][k % 3]
        if m == "StartMachine":
            body = body_of(lambda w: (w.s(n), w.array(8, [], None)))
            sig = "sa{sv}"
        else:
            body = body_of(s_(n))
            sig = "s"
        if k % 10 == 9:
            body = body[:3]  # truncated: shorter than the signature says
        st.sent += 1
        try:
            mtype, err = c.call(MGR_PATH, MGR, m, sig, body)
            st.add(mtype, err, BAD_NAME_ERRORS | {"org.freedesktop.DBus.Error.InvalidArgs",
                                                  "org.freedesktop.DBus.Error.InconsistentMessage"}, "raw %r" % n)
        except (ConnectionError, OSError):
            st.disconnects += 1
        c.close()
    # Garbage after authentication.
    for k in range(50):
        c = Conn(sock)
        st.sent += 1
        try:
            c.sock.sendall(os.urandom(random.randint(1, 4096)))
            c.sock.settimeout(2)
            c.read()
            st.answered += 1
        except (ConnectionError, OSError, socket.timeout):
            st.disconnects += 1
        c.close()
    return st


def mode_nonroot(sock, machine):
    st = Stats()
    conn = Conn(sock)
    mpath = "/org/machinemgr1/machine/" + "".join(
        ch if ch.isalnum() else "_%02x" % ord(ch) for ch in machine)
    denied = {"org.freedesktop.DBus.Error.AccessDenied"}
    opts = lambda w: w.array(8, [], None)
    mutating = [
        (MGR_PATH, MGR, "StartMachine", "sa{sv}", body_of(lambda w: (w.s(machine), opts(w)))),
        (MGR_PATH, MGR, "StartMachine", "sa{sv}", body_of(lambda w: (w.s("other-image"), opts(w)))),
        (MGR_PATH, MGR, "PowerOffMachine", "s", body_of(s_(machine))),
        (MGR_PATH, MGR, "RebootMachine", "s", body_of(s_(machine))),
        (MGR_PATH, MGR, "TerminateMachine", "s", body_of(s_(machine))),
        (MGR_PATH, MGR, "KillMachine", "ssi", body_of(lambda w: (w.s(machine), w.s("all"), w.i(9)))),
        (MGR_PATH, MGR, "GetMachineConsole", "s", body_of(s_(machine))),
        (MGR_PATH, MGR, "CopyToMachine", "sss", body_of(lambda w: (w.s(machine), w.s("/etc/passwd"), w.s("/x")))),
        (MGR_PATH, MGR, "CopyFromMachine", "sss", body_of(lambda w: (w.s(machine), w.s("/etc/passwd"), w.s("/tmp/x")))),
        (MGR_PATH, MGR, "CloneImage", "ssb", body_of(lambda w: (w.s(machine), w.s("stolen"), w.bool(False)))),
        (MGR_PATH, MGR, "RenameImage", "ss", body_of(lambda w: (w.s(machine), w.s("renamed")))),
        (MGR_PATH, MGR, "RemoveImage", "s", body_of(s_(machine))),
        (MGR_PATH, MGR, "MarkImageReadOnly", "sb", body_of(lambda w: (w.s(machine), w.bool(True)))),
        (mpath, MACH, "PowerOff", "", b""),
        (mpath, MACH, "Reboot", "", b""),
        (mpath, MACH, "Terminate", "", b""),
        (mpath, MACH, "Kill", "si", body_of(lambda w: (w.s("all"), w.i(9)))),
        (mpath, MACH, "SetLimits", "a{sv}", body_of(lambda w: w.array(8, ["TasksMax"], lambda w, k: (
            w.align(8), w.s(k), w.variant("t", lambda w: w.t(1)))))),
    ]
    calls = []
    for k in range(1800):
        c = mutating[k % len(mutating)]
        calls.append(c + (denied, "nonroot %s.%s" % (c[0], c[2])))
    # Reads stay allowed.
    for k in range(100):
        calls.append((MGR_PATH, MGR, "ListMachines", "", b"", {"ok"}, "nonroot ListMachines"))
    pipelined(conn, st, calls)
    conn.close()
    return st


def mode_race(sock, name, clients, n):
    st = Stats()
    ok_expect = {"ok", "org.machinemgr1.Error.MachineExists", "org.machinemgr1.Error.NoSuchMachine",
                 "org.machinemgr1.Error.StartFailed", "org.machinemgr1.Error.ImageBusy"}

    def worker(idx):
        try:
            c = Conn(sock)
        except (ConnectionError, OSError) as e:
            with st.lock:
                st.unexpected.append("connect: %s" % e)
            return
        def start_entry(w, k):
            w.align(8)
            w.s(k)
            if k == "Boot":
                w.variant("b", lambda w: w.bool(False))
            else:
                w.variant("as", lambda w: w.array(4, ["/bin/sleep", "1000"], lambda w, x: w.s(x)))

        body_start = body_of(lambda w: (w.s(name), w.array(8, ["Boot", "Command"], start_entry)))
        for k in range(n):
            for m, sig, body in (("StartMachine", "sa{sv}", body_start),
                                 ("TerminateMachine", "s", body_of(s_(name)))):
                with st.lock:
                    st.sent += 1
                try:
                    mtype, err = c.call(MGR_PATH, MGR, m, sig, body)
                    st.add(mtype, err, ok_expect, "race %s" % m)
                except (ConnectionError, OSError) as e:
                    with st.lock:
                        st.disconnects += 1
                        st.unexpected.append("race %s: %s" % (m, e))
                    return
        c.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return st


def main():
    random.seed(6)
    sock, mode = sys.argv[1], sys.argv[2]
    if mode == "root":
        st = mode_root(sock, sys.argv[3])
    elif mode == "nonroot":
        st = mode_nonroot(sock, sys.argv[3])
    elif mode == "race":
        st = mode_race(sock, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("unknown mode")
    print(json.dumps({"sent": st.sent, "answered": st.answered, "ok": st.ok, "disconnects": st.disconnects,
                      "errors": st.errors, "unexpected": st.unexpected}))


if __name__ == "__main__":
    main()
