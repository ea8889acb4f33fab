#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""(b) Debian 12 boot to READY and the whole boot + poweroff cycle, machinemgr vs systemd-nspawn (vs LXC).

All tools boot the same files: an overlayfs over one copy of the Debian rootfs, fresh per run.
Every phase is measured with timestamps the tool under test cannot move:
  set-up    launch of the tool (CLOCK_MONOTONIC in this script) -> the guest's systemd starts
            (its UserspaceTimestampMonotonic, taken by systemd in main(): exec + dynamic loading included)
  userspace guest systemd start -> startup finished (its FinishTimestampMonotonic; what "Startup
            finished in ..." prints; READY=1 is sent at this point)
  shutdown  SIGRTMIN+4 to the guest's PID 1 (machinemgr: `poweroff --wait`) -> the tool has cleaned up
            (nspawn/lxc-start exited; machinemgr's CLI returned)
  cycle     set-up + userspace + shutdown (the poll for readiness is not counted)
For machinemgr the daemon's own clone -> exec time ("set-up X ms" in its log) is reported as well.

Usage: tools/bench/boot.py [--runs N] [--tools machinemgr,nspawn,lxc]
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmbench as mb

RTMIN4 = signal.SIGRTMIN + 4


def wait_booted(leader, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
                u, f = mb.guest_systemd_times(leader)
                if f:
                        return u, f
                time.sleep(0.02)
        raise TimeoutError("guest did not finish booting")


def run_machinemgr(b, name):
        t0 = mb.now()
        # Privileged like the LXC/nspawn runs it is compared with; the overlayfs image cannot be idmapped.
        b.mm("start", name, "--private-users=no", "--wait", timeout=120)
        leader = b.leader(name)
        u, f = wait_booted(leader)
        state = mb.guest_system_state(leader)
        t1 = mb.now()
        b.mm("poweroff", name, "--wait", timeout=120)
        t2 = mb.now()
        return t0, u, f, t1, t2, state


def run_external(b, argv, name):
        t0 = mb.now()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        b.procs.append(p)
        leader, end = 0, time.monotonic() + 30
        while not leader and time.monotonic() < end:
                time.sleep(0.005)
                # The pid stays the guest's PID 1 across its exec of systemd.
                leader = mb.guest_init_of(p.pid)
                if p.poll() is not None:
                        raise RuntimeError(f"{argv[0]} exited with {p.returncode} before booting")
        if not leader:
                raise TimeoutError("no guest init found")
        u, f = wait_booted(leader)
        state = mb.guest_system_state(leader)
        t1 = mb.now()
        os.kill(leader, RTMIN4)
        p.wait(120)
        t2 = mb.now()
        b.procs.remove(p)
        return t0, u, f, t1, t2, state


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("--runs", type=int, default=10)
        ap.add_argument("--tools", default="machinemgr,nspawn,lxc")
        a = ap.parse_args()
        tools = [t for t in a.tools.split(",") if t != "lxc" or mb.have("lxc-start")]

        res = {t: {"setup": [], "userspace": [], "ready": [], "shutdown": [], "cycle": [], "states": []}
               for t in tools}
        daemon_setup = []
        with mb.Bench("boot") as b:
                b.start_daemon()
                for i in range(a.runs):
                        for t in tools:  # interleaved: slow drifts of the host hit every tool alike
                                name = f"deb{i}{t[:2]}"
                                root = b.debian_image(name)
                                if t == "machinemgr":
                                        r = run_machinemgr(b, name)
                                elif t == "nspawn":
                                        r = run_external(b, ["systemd-nspawn", "--register=no", "--keep-unit", "-q",
                                                             "-D", root, "-b"], name)
                                else:
                                        b.lxc_config(name, root, "/sbin/init", boot=True)
                                        r = run_external(b, ["lxc-start", "-F", "-P", b.lxcpath, "-n", name], name)
                                b.drop_image(root)
                                t0, u, f, t1, t2, state = r
                                d = res[t]
                                d["setup"].append((u - t0) / 1000)
                                d["userspace"].append((f - u) / 1000)
                                d["ready"].append((f - t0) / 1000)
                                d["shutdown"].append((t2 - t1) / 1000)
                                d["cycle"].append((f - t0 + t2 - t1) / 1000)
                                d["states"].append(state)
                                mb.log(f"{t} run {i}: setup {d['setup'][-1]:.1f} userspace {d['userspace'][-1]:.1f} "
                                       f"shutdown {d['shutdown'][-1]:.1f} ms, {state}")
                with open(b.daemon_log) as f:
                        daemon_setup = [float(x) for x in re.findall(r"\(set-up ([0-9.]+) ms[,)]", f.read())]

        out = {t: {k: mb.stats(v) for k, v in d.items() if k != "states"} for t, d in res.items()}
        for t in res:
                out[t]["raw"] = res[t]
        out["machinemgr-daemon-setup"] = mb.stats(daemon_setup)
        print("## (b) Debian 12 boot to READY + poweroff (median, p10-p90, ms)")
        print(f"{'tool':12s} {'set-up':>22s} {'userspace':>22s} {'shutdown':>22s} {'cycle':>22s}")
        for t in res:
                print(f"{t:12s} " + " ".join(f"{out[t][k]['median']:8.1f} [{out[t][k]['p10']:.0f}..{out[t][k]['p90']:.0f}]".rjust(22)
                                             for k in ("setup", "userspace", "shutdown", "cycle")))
        if daemon_setup:
                print(f"machinemgrd clone->exec (daemon log): {mb.fmt(out['machinemgr-daemon-setup'])}")
        if "nspawn" in out and "machinemgr" in out:
                for k in ("setup", "cycle", "shutdown"):
                        print(f"machinemgr/nspawn {k}: {out['machinemgr'][k]['median'] / out['nspawn'][k]['median']:.2f}")
        if "lxc" in out and "machinemgr" in out:
                print(f"machinemgr/lxc cycle: {out['machinemgr']['cycle']['median'] / out['lxc']['cycle']['median']:.2f}")
        mb.save("boot", out)


if __name__ == "__main__":
        main()
