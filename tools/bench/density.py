#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""(c) density and (d) poweroff: N Debian 12 guests started at once, machinemgr vs systemd-nspawn.

For each tool and N: every guest boots its own overlayfs over one Debian copy. Reported:
  ready_s      launch of all N -> every guest's systemd finished start-up (machinemgr: every
               `start --wait` returned; nspawn: every --notify-ready READY=1 arrived)
  memory       MemAvailable drop (host view, after a 3 s settle) split into
               guest = sum of PSS of every process in the guests' pid namespaces (/proc/PID/smaps_rollup),
               tool  = machinemgrd's PSS, or the sum of the nspawn processes' PSS,
               kernel/other = the rest of the drop (page tables, namespaces, cgroups, overlay, slab)
               per guest: (drop - guest) / N is the host memory per container outside the guest
  degraded     guests whose `systemctl is-system-running` is not "running" (a guest that never came up
               counts too, as "none"; the StartFailed messages are printed and kept in "errors")
Tools: machinemgr (--private-users=no, overlayfs images, like nspawn), machinemgr-pick (the default
PrivateUsers=pick: images are bind mounts of the base with --ephemeral, a tmpfs upper layer each),
nspawn. Each machinemgr run keeps its daemon log as $BENCH_OUT/density-TOOL-N-daemon.log.
  poweroff_s   SIGRTMIN+4 to all (machinemgr: `poweroff NAMES --wait`) -> all gone and cleaned up
The host's fs.inotify.max_user_instances is left alone unless --inotify=VALUE is given (then restored):
with 128, about 12-20 systemd guests fit (each holds ~6 instances, more while booting, all charged to root,
also with PrivateUsers=pick); machinemgr refuses a start that would cross it. See docs/BENCHMARKS.md.

Usage: tools/bench/density.py [--n 10,30,100] [--tools machinemgr,machinemgr-pick,nspawn] [--inotify VALUE]
"""
import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmbench as mb

INOTIFY = "/proc/sys/fs/inotify/max_user_instances"


def mem_available_kib():
        with open("/proc/meminfo") as f:
                for l in f:
                        if l.startswith("MemAvailable:"):
                                return int(l.split()[1])
        return 0


KERNEL_KEYS = ("SUnreclaim", "SReclaimable", "PageTables", "KernelStack", "Shmem")


def meminfo_kib():
        with open("/proc/meminfo") as f:
                return {l.split(":")[0]: int(l.split()[1]) for l in f}


def pss_kib(pid):
        try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                        for l in f:
                                if l.startswith("Pss:"):
                                        return int(l.split()[1])
        except OSError:
                pass
        return 0


def rss_kib(pid):
        try:
                with open(f"/proc/{pid}/status") as f:
                        for l in f:
                                if l.startswith("VmRSS:"):
                                        return int(l.split()[1])
        except OSError:
                pass
        return 0


def pidns_members(leaders):
        want = set()
        for l in leaders:
                try:
                        want.add(os.readlink(f"/proc/{l}/ns/pid"))
                except OSError:
                        pass
        pids = []
        for p in os.listdir("/proc"):
                if p.isdigit():
                        try:
                                if os.readlink(f"/proc/{p}/ns/pid") in want:
                                        pids.append(int(p))
                        except OSError:
                                pass
        return pids


def run_machinemgr(b, names, extra=("--private-users=no",)):
        t0 = time.monotonic()
        # Default: privileged like the nspawn runs (overlayfs images cannot be idmapped); the
        # machinemgr-pick column passes --ephemeral over bind-mounted images instead.
        ps = [b.mm_popen("start", n, *extra, "--wait") for n in names]
        end, failed = time.monotonic() + 600, 0
        for n, p in zip(names, ps):  # a guest that never sends READY=1 must not hang the benchmark
                try:
                        if p.wait(max(1, end - time.monotonic())) != 0:
                                failed += 1
                                b.errors.append(p.stderr.read().strip())
                except subprocess.TimeoutExpired:
                        failed += 1
                        b.errors.append(f"{n}: not ready after 600 s")
        ready = time.monotonic() - t0
        for e in b.errors:  # the colleague's N=30 run lost these: every one was a clear StartFailed
                mb.log(e)
        leaders = [b.leader(n) for n in names]
        return ready, failed, leaders, [b.daemon.pid]


def poweroff_machinemgr(b, names, leaders):
        t0 = time.monotonic()
        b.mm("poweroff", *names, "--wait", timeout=600, check=False)
        for l in leaders:
                mb.wait_exit(l, 60)
        return time.monotonic() - t0


def run_nspawn(b, names):
        socks, ps = {}, []
        t0 = time.monotonic()
        for n in names:
                path = os.path.join(b.tmp, f"notify-{n}")
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                s.bind(path)
                socks[s.fileno()] = s
                env = dict(os.environ, NOTIFY_SOCKET=path)
                p = subprocess.Popen(["systemd-nspawn", "--register=no", "--keep-unit", "-q", "--notify-ready=yes",
                                      "-D", os.path.join(b.images, n), "-b"], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                b.procs.append(p)
                ps.append(p)
        pending, end = set(socks), time.monotonic() + 600
        while pending and time.monotonic() < end:
                r, _, _ = select.select(list(pending), [], [], 1)
                for fd in r:
                        if b"READY=1" in socks[fd].recv(4096):
                                pending.discard(fd)
                if all(p.poll() is not None for p in ps):
                        break
        ready = time.monotonic() - t0
        for s in socks.values():
                s.close()
        leaders = [mb.guest_init_of(p.pid) for p in ps]
        tool_pids = [int(x) for p in ps for x in [p.pid] + subprocess.run(
                ["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
                if int(x) not in leaders]
        return ready, len(pending), leaders, tool_pids


def poweroff_nspawn(b, ps_leaders):
        t0 = time.monotonic()
        for l in ps_leaders:
                if l:
                        os.kill(l, signal.SIGRTMIN + 4)
        for p in list(b.procs):
                p.wait(600)
                b.procs.remove(p)
        return time.monotonic() - t0


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("--n", default="10,30,100")
        ap.add_argument("--tools", default="machinemgr,machinemgr-pick,nspawn")
        ap.add_argument("--inotify", type=int, default=0)
        a = ap.parse_args()

        old_inotify = open(INOTIFY).read().strip()
        out = {"inotify_max_user_instances": int(a.inotify or old_inotify), "results": {}}
        try:
                if a.inotify:
                        with open(INOTIFY, "w") as f:
                                f.write(str(a.inotify))
                for n in [int(x) for x in a.n.split(",")]:
                        for t in a.tools.split(","):
                                mm = t.startswith("machinemgr")
                                with mb.Bench(f"density-{t}-{n}") as b:
                                        b.errors = []
                                        if mm:
                                                b.start_daemon()
                                        names = [f"d{i}" for i in range(n)]
                                        for x in names:
                                                (b.debian_bind_image if t == "machinemgr-pick" else b.debian_image)(x)
                                        time.sleep(1)
                                        m0 = mem_available_kib()
                                        k0 = meminfo_kib()
                                        w0 = time.monotonic()
                                        if t == "machinemgr-pick":
                                                ready, failed, leaders, tool = run_machinemgr(b, names, ("--ephemeral",))
                                        else:
                                                ready, failed, leaders, tool = (run_machinemgr if mm
                                                                                else run_nspawn)(b, names)
                                        daemon_status = {}
                                        if mm:
                                                daemon_status = dict(l.split(":", 1) for l in open(
                                                        f"/proc/{b.daemon.pid}/status") if l.startswith("Vm"))
                                        time.sleep(3)
                                        drop = m0 - mem_available_kib()
                                        # Kernel memory, guests' own and the manager's together (slab, page
                                        # tables, kernel stacks, tmpfs): an upper bound of the kernel's share
                                        # outside the guest. MemAvailable minus the guests' PSS cannot give it:
                                        # the guests' file pages were in the page cache before (warmed).
                                        k1 = meminfo_kib()
                                        kdelta = {k: k1[k] - k0[k] for k in KERNEL_KEYS}
                                        guest = sum(pss_kib(p) for p in pidns_members([l for l in leaders if l]))
                                        tool_pss = sum(pss_kib(p) for p in tool)
                                        tool_rss = sum(rss_kib(p) for p in tool)
                                        states = [mb.guest_system_state(l) if l else "none" for l in leaders]
                                        degraded = sum(s != "running" for s in states)
                                        off = (poweroff_machinemgr(b, names, leaders) if mm
                                               else poweroff_nspawn(b, leaders))
                                        r = {"n": n, "ready_s": ready, "not_ready": failed, "mem_drop_kib": drop,
                                             "guest_pss_kib": guest, "tool_pss_kib": tool_pss,
                                             "tool_rss_kib": tool_rss, "kernel_other_kib": drop - guest - tool_pss,
                                             "outside_guest_per_container_kib": (drop - guest) / n,
                                             "degraded": degraded, "states": states, "poweroff_s": off,
                                             "kernel_delta_kib": kdelta,
                                             "kernel_per_guest_kib": (sum(kdelta.values()) - kdelta["Shmem"]) / n,
                                             "errors": b.errors, "load": open("/proc/loadavg").read().split()[:3],
                                             "daemon_status": {k: v.strip() for k, v in daemon_status.items()},
                                             "wall_s": time.monotonic() - w0}
                                        out["results"].setdefault(t, []).append(r)
                                        print(f"{t:15s} N={n:3d} ready {ready:6.2f} s (not ready {failed}), "
                                              f"mem drop {drop / 1024:7.1f} MiB = guests {guest / 1024:.1f} + "
                                              f"tool {tool_pss / 1024:.1f} (RSS {tool_rss / 1024:.1f}) + kernel/other "
                                              f"{(drop - guest - tool_pss) / 1024:.1f}; outside guest "
                                              f"{(drop - guest) / n:.0f} KiB/guest; kernel (slab+PT+stacks) "
                                              f"{(sum(kdelta.values()) - kdelta['Shmem']) / n:.0f} KiB/guest, "
                                              f"daemon PSS/guest {tool_pss / n:.0f} KiB; degraded {degraded}; "
                                              f"poweroff {off:.2f} s", flush=True)
                                        mb.save("density", out)  # after each N: a later failure keeps these
        finally:
                if a.inotify:
                        with open(INOTIFY, "w") as f:
                                f.write(old_inotify)
        mb.save("density", out)


if __name__ == "__main__":
        main()
