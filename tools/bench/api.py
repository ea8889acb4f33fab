#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""(e) Daemon API with many machines: StartMachine calls per second (N busybox sleepers started one
after another through the CLI, and N started concurrently), then, with all N running, the latency of
ListMachines and of one property read (busctl on the private socket, so the CLI's own formatting is not
measured), and of `machinemgr list`. Also the daemon's RSS/PSS with N machines.

Usage: tools/bench/api.py [--n 200] [--runs 30]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmbench as mb
from density import pss_kib, rss_kib


def meminfo_kib():
        with open("/proc/meminfo") as f:
                return {l.split(":")[0]: int(l.split()[1]) for l in f}


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("--n", type=int, default=200)
        ap.add_argument("--runs", type=int, default=30)
        a = ap.parse_args()
        out = {"n": a.n}
        with mb.Bench("api") as b:
                names = [f"s{i}" for i in range(a.n)]
                for n in names:
                        b.busybox_image(n)
                b.start_daemon()
                rss0, pss0 = rss_kib(b.daemon.pid), pss_kib(b.daemon.pid)
                k0 = meminfo_kib()
                half = a.n // 2
                t0 = time.monotonic()
                for n in names[:half]:
                        b.mm("start", n, "--no-boot", "--command=/bin/sleep 100000")
                seq = half / (time.monotonic() - t0)
                t0 = time.monotonic()
                ps = [b.mm_popen("start", n, "--no-boot", "--command=/bin/sleep 100000") for n in names[half:]]
                failed = sum(p.wait() != 0 for p in ps)
                par = (a.n - half) / (time.monotonic() - t0)
                running = len(b.mm("list", "--no-legend").stdout.splitlines())
                time.sleep(2)
                # Kernel memory per machine: everything the kernel holds for one Boot=no container (its
                # namespaces, mounts, cgroup, pty, sockets, pidfd) *and* its two tiny processes (kernel
                # stacks, page tables): an upper bound of the kernel's share outside the guest.
                k1 = meminfo_kib()
                kdelta = {k: k1[k] - k0[k] for k in ("SUnreclaim", "SReclaimable", "PageTables", "KernelStack")}
                guest_pss = sum(pss_kib(p) for p in mb.pidns_members_of_children(b.daemon.pid))
                status = {l.split(":")[0]: l.split(":")[1].strip() for l in open(f"/proc/{b.daemon.pid}/status")
                          if l.startswith("Vm")}
                addr = f"unix:path={b.run}/private"
                raw = os.path.join(b.tmp, "hf.json")
                path = "/org/machinemgr1/machine/" + names[-1]
                subprocess.run(["hyperfine", "-N", "--style", "basic", "-w", "3", "-r", str(a.runs), "--export-json", raw,
                                "-n", "busctl ListMachines",
                                f"busctl --address={addr} call org.machinemgr1 /org/machinemgr1 org.machinemgr1.Manager ListMachines",
                                "-n", "busctl get-property State",
                                f"busctl --address={addr} get-property org.machinemgr1 {path} org.machinemgr1.Machine State",
                                "-n", "machinemgr list", f"{mb.CLI} list"],
                               check=True, env=b.env(), stdout=sys.stderr)
                with open(raw) as f:
                        h = json.load(f)
                out.update({"start_per_s_sequential": seq, "start_per_s_concurrent": par, "failed": failed,
                            "running": running, "daemon_rss_kib": [rss0, rss_kib(b.daemon.pid)],
                            "daemon_pss_kib": [pss0, pss_kib(b.daemon.pid)],
                            "kernel_delta_kib": kdelta, "kernel_per_machine_kib": sum(kdelta.values()) / max(1, running),
                            "guest_pss_per_machine_kib": guest_pss / max(1, running), "daemon_status": status,
                            "load": open("/proc/loadavg").read().split()[:3],
                            "latency_ms": {r["command"]: mb.stats([t * 1000 for t in r["times"]]) for r in h["results"]}})
                # Stop them all before the daemon goes (mmbench would terminate one by one).
                b.mm("terminate", *names, check=False, timeout=300)

        print(f"## (e) daemon API with {a.n} busybox machines ({out['running']} running, {failed} failed starts)")
        print(f"StartMachine via CLI: {seq:.1f}/s one after another, {par:.1f}/s {a.n - half} at once")
        for k, s in out["latency_ms"].items():
                print(f"{k:28s} {mb.fmt(s)}")
        print(f"daemon RSS {out['daemon_rss_kib'][0]} -> {out['daemon_rss_kib'][1]} KiB, "
              f"PSS {out['daemon_pss_kib'][0]} -> {out['daemon_pss_kib'][1]} KiB "
              f"({(out['daemon_pss_kib'][1] - out['daemon_pss_kib'][0]) / max(1, running):.1f} KiB per machine)")
        print(f"kernel (slab + page tables + kernel stacks) per machine: {out['kernel_per_machine_kib']:.0f} KiB "
              f"{out['kernel_delta_kib']}; guest processes' PSS per machine {out['guest_pss_per_machine_kib']:.0f} KiB")
        print(f"daemon with {running} machines: VmRSS {out['daemon_status'].get('VmRSS')}, "
              f"VmPTE {out['daemon_status'].get('VmPTE')}")
        mb.save("api", out)


if __name__ == "__main__":
        main()
