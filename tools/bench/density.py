#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""(c) density and (d) poweroff: N Debian 12 guests started at once, machinemgr vs systemd-nspawn vs LXC.

For each tool and N: every guest boots its own overlayfs over one Debian copy. Reported:
  ready_s      launch of all N -> every guest's systemd finished start-up (machinemgr: every
               `start --wait` returned; nspawn: every --notify-ready READY=1 arrived; lxc: the latest
               FinishTimestampMonotonic of the guests' systemd, the moment it sends READY=1, found by
               polling `systemctl show` in each guest, one at a time, at most 4 a second;
               ready_seen_s is when the poll saw the last one)
  memory       MemAvailable drop (host view, after a 3 s settle) split into
               guest = sum of PSS of every process in the guests' pid namespaces (/proc/PID/smaps_rollup),
               tool  = machinemgrd's PSS, or the sum of the nspawn processes' PSS, or of the lxc-start
                       monitors' and their helpers' outside the guests,
               kernel/other = the rest of the drop (page tables, namespaces, cgroups, overlay, slab)
               per guest: (drop - guest) / N is the host memory per container outside the guest
  degraded     guests whose `systemctl is-system-running` is not "running" (a guest that never came up
               counts too, as "none"; the StartFailed messages are printed and kept in "errors")
Tools: machinemgr (--private-users=no, overlayfs images, like nspawn), machinemgr-pick (the default
PrivateUsers=pick: images are bind mounts of the base with --ephemeral, a tmpfs upper layer each),
nspawn, lxc (`lxc-start -F`, privileged, network type empty; in the defaults only when LXC is installed).
Each machinemgr run keeps its daemon log as $BENCH_OUT/density-TOOL-N-daemon.log.
  poweroff_s   SIGRTMIN+4 to all (machinemgr: `poweroff NAMES --wait`) -> all gone and cleaned up
               (nspawn, lxc: every nspawn / lxc-start exited)
The host's fs.inotify.max_user_instances is left alone unless --inotify=VALUE is given (then restored):
with 128, about 12-20 systemd guests fit (each holds ~6 instances, more while booting, all charged to root,
also with PrivateUsers=pick); machinemgr refuses a start that would cross it. See docs/BENCHMARKS.md.

Usage: tools/bench/density.py [--n 10,30,100] [--tools machinemgr,machinemgr-pick,nspawn,lxc] [--inotify VALUE]
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


def pid_namespaces(leaders):
        """The pid namespaces of these guests' PID 1 (those still there)."""
        ns = set()
        for l in leaders:
                try:
                        ns.add(os.readlink(f"/proc/{l}/ns/pid"))
                except OSError:
                        pass
        return ns


def pidns_members(leaders):
        want = pid_namespaces(leaders)
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


def run_lxc(b, names):
        # Errors to a file, not a pipe: nobody reads it while the guests run, and a full pipe would stop
        # the monitor.
        errs = [open(os.path.join(b.tmp, f"lxc-{n}.err"), "w+") for n in names]
        ps = []
        t0 = mb.now()
        for n, e in zip(names, errs):
                p = subprocess.Popen(["lxc-start", "-F", "-P", b.lxcpath, "-n", n], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=e)
                b.procs.append(p)
                ps.append(p)
        # LXC has no readiness notification: ask each guest's systemd when it finished start-up. Its own
        # FinishTimestampMonotonic (host CLOCK_MONOTONIC, no time namespace) is when it sent READY=1,
        # so the poll may be slow without moving the result. And it must be: one nsenter + systemctl
        # costs ~25 ms CPU here, so one at a time, at most 4 a second and each guest at most once a
        # second (~5 % of this 2-CPU host), or the poll takes the CPU from the guests it waits for.
        leaders, finish, asked = [0] * len(names), [0] * len(names), [0.0] * len(names)
        pending, end = list(range(len(names))), time.monotonic() + 600
        while pending and time.monotonic() < end:
                for i in list(pending):
                        if not leaders[i]:
                                # The pid stays the guest's PID 1 across its exec of systemd.
                                leaders[i] = mb.guest_init_of(ps[i].pid)
                        if leaders[i] and time.monotonic() - asked[i] >= 1:
                                asked[i] = time.monotonic()
                                finish[i] = mb.guest_systemd_times(leaders[i])[1]
                                time.sleep(0.25)
                        if finish[i]:
                                pending.remove(i)
                        elif ps[i].poll() is not None:  # a guest that is gone will not come up
                                pending.remove(i)
                                errs[i].seek(0)
                                b.errors.append(f"{names[i]}: lxc-start exited with {ps[i].returncode}: "
                                                + errs[i].read().strip()[-500:])
                time.sleep(0.05)
        seen = (mb.now() - t0) / 1e6
        for e in errs:
                e.close()
        failed = sum(not f for f in finish)
        for i in pending:
                b.errors.append(f"{names[i]}: not ready after 600 s")
        for e in b.errors:
                mb.log(e)
        ready = (max(finish) - t0) / 1e6 if any(finish) and not pending else seen
        b.extra["ready_seen_s"] = seen
        # The guests' PID 1 stay up until poweroff: their pid namespaces hold the guests' processes; the
        # monitors and any helper they forked outside those are LXC's own.
        guest_ns = pid_namespaces(leaders)
        tool_pids = []
        for p in ps:
                tool_pids.append(p.pid)
                for c in mb.pidns_members_of_children(p.pid):
                        try:
                                if os.readlink(f"/proc/{c}/ns/pid") not in guest_ns:
                                        tool_pids.append(c)
                        except OSError:
                                pass
        return ready, failed, leaders, tool_pids


def poweroff_external(b, ps_leaders):
        """nspawn, lxc: SIGRTMIN+4 to every guest's PID 1 -> every nspawn / lxc-start we started exited."""
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
        ap.add_argument("--tools", default="machinemgr,machinemgr-pick,nspawn,lxc")
        ap.add_argument("--inotify", type=int, default=0)
        a = ap.parse_args()
        tools = [t for t in a.tools.split(",") if t != "lxc" or mb.have("lxc-start")]
        if len(tools) < len(a.tools.split(",")):
                mb.log("LXC not installed: lxc skipped")

        old_inotify = open(INOTIFY).read().strip()
        out = {"inotify_max_user_instances": int(a.inotify or old_inotify), "results": {}}
        try:
                if a.inotify:
                        with open(INOTIFY, "w") as f:
                                f.write(str(a.inotify))
                for n in [int(x) for x in a.n.split(",")]:
                        for t in tools:
                                mm = t.startswith("machinemgr")
                                with mb.Bench(f"density-{t}-{n}") as b:
                                        b.errors = []
                                        b.extra = {}  # tool-specific fields of the result
                                        if mm:
                                                b.start_daemon()
                                        names = [f"d{i}" for i in range(n)]
                                        for x in names:
                                                root = (b.debian_bind_image if t == "machinemgr-pick"
                                                        else b.debian_image)(x)
                                                if t == "lxc":
                                                        b.lxc_config(x, root, "/sbin/init", boot=True)
                                        time.sleep(1)
                                        m0 = mem_available_kib()
                                        k0 = meminfo_kib()
                                        w0 = time.monotonic()
                                        if t == "machinemgr-pick":
                                                ready, failed, leaders, tool = run_machinemgr(b, names, ("--ephemeral",))
                                        elif mm:
                                                ready, failed, leaders, tool = run_machinemgr(b, names)
                                        elif t == "lxc":
                                                ready, failed, leaders, tool = run_lxc(b, names)
                                        else:
                                                ready, failed, leaders, tool = run_nspawn(b, names)
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
                                               else poweroff_external(b, leaders))
                                        r = {"n": n, "ready_s": ready, "not_ready": failed, "mem_drop_kib": drop,
                                             "guest_pss_kib": guest, "tool_pss_kib": tool_pss,
                                             "tool_rss_kib": tool_rss, "kernel_other_kib": drop - guest - tool_pss,
                                             "outside_guest_per_container_kib": (drop - guest) / n,
                                             "degraded": degraded, "states": states, "poweroff_s": off,
                                             "kernel_delta_kib": kdelta,
                                             "kernel_per_guest_kib": (sum(kdelta.values()) - kdelta["Shmem"]) / n,
                                             "errors": b.errors, "load": open("/proc/loadavg").read().split()[:3],
                                             "daemon_status": {k: v.strip() for k, v in daemon_status.items()},
                                             "wall_s": time.monotonic() - w0, **b.extra}
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
