# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared pieces of the machinemgr benchmarks (tools/bench/*.py).

Every benchmark runs in its own scratch dir and its own cgroup (so systemd-nspawn's payload/supervisor
cgroups and machinemgrd's container cgroups land below it and are removed with it; LXC's go to the sibling
mmbench-PID-lxc in every hierarchy), starts its own machinemgrd, and cleans everything up on exit, also on
errors and ^C.

Environment: MM_BUILD_ROOT (default: ./build), BENCH_OUT (results dir, default ./bench-results),
BENCH_DEBIAN (Debian 12 rootfs to copy, default /var/cache/machinemgr/probe/debian, never written).
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("MM_BUILD_ROOT", os.path.join(SRC, "build")))
OUT = os.path.abspath(os.environ.get("BENCH_OUT", "bench-results"))
DEBIAN = os.environ.get("BENCH_DEBIAN", "/var/cache/machinemgr/probe/debian")
DAEMON = os.path.join(BUILD, "src/manager/machinemgrd")
CLI = os.path.join(BUILD, "tools/machinemgr")
CGROOT = "/sys/fs/cgroup"


def log(*a):
        print("#", *a, file=sys.stderr, flush=True)


def now():
        """CLOCK_MONOTONIC in µs: the clock systemd's *TimestampMonotonic use, also inside a container."""
        return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def have(prog):
        return shutil.which(prog) is not None


def stats(xs):
        xs = sorted(xs)
        if not xs:
                return {"n": 0}
        q = lambda p: xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
        return {"n": len(xs), "median": statistics.median(xs), "min": xs[0], "max": xs[-1],
                "p10": q(0.1), "p90": q(0.9), "mean": statistics.fmean(xs),
                "stdev": statistics.stdev(xs) if len(xs) > 1 else 0.0}


def fmt(s, unit="ms"):
        if not s or s.get("n", 0) == 0:
                return "n/a"
        return f"{s['median']:.1f} {unit} (p10 {s['p10']:.1f}, p90 {s['p90']:.1f}, n={s['n']})"


def cgroup_dirs():
        """Hierarchies to make our own cgroup in: cgroup2 and, on hybrid hosts, the v1 ones."""
        if os.path.exists(os.path.join(CGROOT, "cgroup.controllers")):
                return [CGROOT]
        dirs = []
        for h in ("unified", "systemd"):  # not the v1 controllers: leave resource accounting alone
                d = os.path.join(CGROOT, h)
                if os.path.isdir(d) and os.path.exists(os.path.join(d, "cgroup.procs")):
                        dirs.append(d)
        return dirs


def cgroup_roots():
        """Every mounted hierarchy, the v1 controllers included: LXC makes its cgroups in all of them."""
        if os.path.exists(os.path.join(CGROOT, "cgroup.controllers")):
                return [CGROOT]
        return [os.path.join(CGROOT, h) for h in sorted(os.listdir(CGROOT))
                if os.path.exists(os.path.join(CGROOT, h, "cgroup.procs"))]


def _kill_cgroup(d):
        """SIGKILLs everything in cgroup d and below: cgroup.kill where there is one, else pid by pid (v1)."""
        try:
                with open(os.path.join(d, "cgroup.kill"), "w") as f:
                        f.write("1")
                return
        except OSError:
                pass
        for root, _, _ in os.walk(d):
                try:
                        with open(os.path.join(root, "cgroup.procs")) as f:
                                pids = [int(x) for x in f.read().split()]
                except (OSError, ValueError):
                        continue
                for p in pids:
                        if p != os.getpid():
                                try:
                                        os.kill(p, signal.SIGKILL)
                                except OSError:
                                        pass


def _rmtree_cgroup(d):
        for root, subdirs, _ in os.walk(d, topdown=False):
                for s in subdirs:
                        try:
                                os.rmdir(os.path.join(root, s))
                        except OSError:
                                pass
        try:
                os.rmdir(d)
        except OSError:
                pass


class Bench:
        """Context manager: scratch dir, own cgroup, own daemon; everything undone on exit."""

        def __init__(self, name):
                self.name = name
                self.tmp = tempfile.mkdtemp(prefix=f"mmbench-{name}-", dir="/var/tmp")
                self.run = os.path.join(self.tmp, "run")
                self.images = os.path.join(self.tmp, "images")
                os.makedirs(self.run)
                os.makedirs(self.images)
                # The daemon's runtime dir on a tmpfs, as /run is on a systemd host (on this VM /run is
                # on the root fs, where each state-file write and unlink is a journal transaction).
                self.run_mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=64m",
                                                   "mmbench-run", self.run]).returncode == 0
                self.daemon = None
                self.daemon_log = os.path.join(self.tmp, "daemon.log")
                self.procs = []      # Popen objects we started: killed on exit
                self.mounts = []     # overlay mounts we made
                self.cg = []
                self.lxcpath = os.path.join(self.tmp, "lxc")
                self.lxc_names = []
                # LXC's cgroups (payload, monitor, pivot; in every hierarchy, v1 controllers too) go below
                # this one, a sibling of our own: not below it, because on cgroup2 LXC enables controllers
                # in every parent's subtree_control, which a cgroup holding this process refuses (EBUSY).
                self.lxc_cg = f"mmbench-{os.getpid()}-lxc"
                os.makedirs(OUT, exist_ok=True)

        def __enter__(self):
                # Our own cgroup: everything started from here (daemon, nspawn, lxc) lives below it.
                cgname = f"mmbench-{os.getpid()}"
                for h in cgroup_dirs():
                        d = os.path.join(h, cgname)
                        os.makedirs(d, exist_ok=True)
                        with open(os.path.join(d, "cgroup.procs"), "w") as f:
                                f.write(str(os.getpid()))
                        self.cg.append(d)
                for sig in (signal.SIGTERM, signal.SIGHUP):
                        signal.signal(sig, lambda *_: sys.exit(130))
                return self

        def env(self):
                e = dict(os.environ)
                e["MACHINEMGR_ADDRESS"] = f"unix:path={self.run}/private"
                return e

        def start_daemon(self, extra=()):
                lf = open(self.daemon_log, "a")
                self.daemon = subprocess.Popen([DAEMON, f"--runtime-dir={self.run}", f"--image-path={self.images}",
                                                *extra], stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
                for _ in range(100):
                        if os.path.exists(f"{self.run}/private") and \
                           subprocess.run([CLI, "list"], env=self.env(), capture_output=True).returncode == 0:
                                return
                        if self.daemon.poll() is not None:
                                raise RuntimeError("machinemgrd exited early, see " + self.daemon_log)
                        time.sleep(0.05)
                raise RuntimeError("machinemgrd does not answer")

        def mm(self, *args, check=True, **kw):
                return subprocess.run([CLI, *args], env=self.env(), check=check, capture_output=True, text=True, **kw)

        def mm_popen(self, *args):
                p = subprocess.Popen([CLI, *args], env=self.env(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
                self.procs.append(p)
                return p

        def leader(self, name):
                r = self.mm("show", name, "-p", "Leader", check=False)
                for line in r.stdout.splitlines():
                        if line.startswith("Leader="):
                                return int(line.split("=", 1)[1])
                return 0

        def busybox_image(self, name):
                d = os.path.join(self.images, name)
                subprocess.run([os.path.join(SRC, "tools/mkimage-busybox"), d], check=True, capture_output=True)
                return d

        def debian_base(self):
                """One private copy of the Debian rootfs; per-guest images are overlays on it."""
                base = os.path.join(self.tmp, "debian-base")
                if not os.path.isdir(base):
                        if not os.path.isdir(DEBIAN):
                                raise FileNotFoundError(f"no Debian rootfs at {DEBIAN} (set BENCH_DEBIAN)")
                        subprocess.run(["cp", "-a", DEBIAN, base], check=True)
                        # Warm the page cache, so the first tool measured does not pay for reading the files.
                        subprocess.run(f"find {base} -xdev -type f -print0 | xargs -0 cat > /dev/null",
                                       shell=True, stderr=subprocess.DEVNULL)
                return base

        def debian_image(self, name):
                """IMAGES/NAME: an overlayfs over the Debian base with its own upper dir, so every tool boots
                the same files and no guest sees another's writes."""
                base = self.debian_base()
                d = os.path.join(self.images, name)
                up = os.path.join(self.tmp, "upper", name)
                for x in (d, up + "/u", up + "/w"):
                        os.makedirs(x, exist_ok=True)
                subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                                f"lowerdir={base},upperdir={up}/u,workdir={up}/w", d], check=True)
                self.mounts.append(d)
                return d

        def debian_bind_image(self, name):
                """IMAGES/NAME: a bind mount of the Debian base, for --ephemeral guests (their own tmpfs upper
                layer over the image). For PrivateUsers=pick, whose idmapped mount an overlayfs image cannot
                take."""
                base = self.debian_base()
                d = os.path.join(self.images, name)
                os.makedirs(d, exist_ok=True)
                subprocess.run(["mount", "--bind", base, d], check=True)
                self.mounts.append(d)
                return d

        def drop_image(self, d):
                if d in self.mounts:
                        subprocess.run(["umount", "-l", d])
                        self.mounts.remove(d)

        def lxc_config(self, name, rootfs, init_cmd, boot=False):
                d = os.path.join(self.lxcpath, name)
                os.makedirs(d, exist_ok=True)
                lines = [f"lxc.uts.name = {name}", f"lxc.rootfs.path = dir:{rootfs}", "lxc.net.0.type = empty",
                         f"lxc.init.cmd = {init_cmd}", "lxc.apparmor.profile = unconfined",
                         "lxc.tty.max = 0", "lxc.pty.max = 16", "lxc.console.path = none",
                         "lxc.autodev = 1", "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed",
                         # Not LXC's default lxc.payload.NAME at the root of each hierarchy: a killed
                         # lxc-start leaves its cgroups behind, and NAME may be someone else's container.
                         f"lxc.cgroup.dir.container = {self.lxc_cg}/payload.{name}",
                         f"lxc.cgroup.dir.monitor = {self.lxc_cg}/monitor.{name}",
                         f"lxc.cgroup.dir.monitor.pivot = {self.lxc_cg}/pivot"]
                if boot:
                        lines += ["lxc.signal.halt = SIGRTMIN+4", "lxc.signal.reboot = SIGINT",
                                  "lxc.environment = container=lxc"]
                with open(os.path.join(d, "config"), "w") as f:
                        f.write("\n".join(lines) + "\n")
                self.lxc_names.append(name)
                return d

        def __exit__(self, *exc):
                # The daemon's log outlives the scratch dir: why a guest failed must stay readable.
                if self.daemon and os.path.exists(self.daemon_log):
                        shutil.copy(self.daemon_log, os.path.join(OUT, f"{self.name}-daemon.log"))
                # LXC guests first, while their lxc-start monitors live and can clean up after them (a
                # killed monitor leaves its guest running and its cgroups behind: those are killed and
                # removed below); all at once, or a ^C during a 200-guest run waits for 200 lxc-stops in a row.
                # Only if one of our lxc-starts still runs: after a clean poweroff there is nothing to stop.
                live = any(p.poll() is None for p in self.procs)
                stops = [subprocess.Popen(["lxc-stop", "-k", "-P", self.lxcpath, "-n", n], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL) for n in self.lxc_names if live]
                for p in stops:
                        try:
                                p.wait(30)
                        except subprocess.TimeoutExpired:
                                p.kill()
                                p.wait()
                for p in self.procs:
                        if p.poll() is None:
                                p.kill()
                                p.wait()
                if self.daemon and self.daemon.poll() is None:
                        # Machines still running are terminated by name, then the daemon goes.
                        r = self.mm("list", "--no-legend", check=False)
                        for line in r.stdout.splitlines():
                                if line.split():
                                        self.mm("terminate", line.split()[0], check=False)
                        time.sleep(0.5)
                        self.daemon.terminate()
                        try:
                                self.daemon.wait(10)
                        except subprocess.TimeoutExpired:
                                self.daemon.kill()
                                self.daemon.wait()
                # Whatever is left in our cgroups (nspawn payloads) and LXC's (guests of a killed lxc-start)
                # was started by us.
                lxc_cgs = [os.path.join(r, self.lxc_cg) for r in cgroup_roots()
                           if os.path.isdir(os.path.join(r, self.lxc_cg))]
                for d in lxc_cgs:
                        _kill_cgroup(d)
                for d in self.cg:
                        for root, _, files in os.walk(d):
                                if "cgroup.kill" in files and root != d:
                                        try:
                                                with open(os.path.join(root, "cgroup.kill"), "w") as f:
                                                        f.write("1")
                                        except OSError:
                                                pass
                for m in list(self.mounts):
                        self.drop_image(m)
                # Leave our cgroups before removing them.
                for d in self.cg:
                        parent = os.path.dirname(d)
                        try:
                                with open(os.path.join(parent, "cgroup.procs"), "w") as f:
                                        f.write(str(os.getpid()))
                        except OSError:
                                pass
                # What is still in our cgroups was started by us (machinemgrd's --fd-holder outlives the daemon
                # by design): kill it, or the cgroups cannot go.
                for _ in range(20):
                        for d in self.cg:
                                try:
                                        with open(os.path.join(d, "cgroup.kill"), "w") as f:
                                                f.write("1")
                                except OSError:
                                        pass
                                _rmtree_cgroup(d)
                        for d in lxc_cgs:
                                _kill_cgroup(d)
                                _rmtree_cgroup(d)
                        if not any(os.path.exists(d) for d in self.cg + lxc_cgs):
                                break
                        time.sleep(0.1)
                if any(os.path.exists(d) for d in self.cg + lxc_cgs):
                        log("cgroups left behind:", *[d for d in self.cg + lxc_cgs if os.path.exists(d)])
                # LXC's lock files (/run/lxc/lock/LXCPATH/.NAME) outlive every container: ours go with us.
                if self.lxc_names:
                        subprocess.run(["rm", "-rf", "--one-file-system", "/run/lxc/lock" + self.tmp])
                if self.run_mounted:
                        subprocess.run(["umount", "-l", self.run])
                subprocess.run(["rm", "-rf", "--one-file-system", self.tmp])
                return False


def save(name, data):
        path = os.path.join(OUT, name + ".json")
        os.makedirs(OUT, exist_ok=True)  # also when no Bench ran (density.py --tools lxc without LXC)
        with open(path, "w") as f:
                json.dump(data, f, indent=1)
        log("results in", path)
        return path


def guest_init_of(pid):
        """The process below pid (inclusive) whose innermost pid-namespace pid is 1: the guest's PID 1."""
        todo = [pid]
        while todo:
                p = todo.pop(0)
                try:
                        with open(f"/proc/{p}/status") as f:
                                for line in f:
                                        if line.startswith("NSpid:"):
                                                ns = line.split()[1:]
                                                if len(ns) > 1 and ns[-1] == "1":
                                                        return p
                        for t in os.listdir(f"/proc/{p}/task"):
                                with open(f"/proc/{p}/task/{t}/children") as f:
                                        todo += [int(c) for c in f.read().split()]
                except OSError:
                        continue
        return 0


def pidns_members_of_children(pid):
        """Every process below pid (its descendants, pid itself excluded)."""
        out, todo = [], [pid]
        while todo:
                p = todo.pop()
                try:
                        for t in os.listdir(f"/proc/{p}/task"):
                                with open(f"/proc/{p}/task/{t}/children") as f:
                                        kids = [int(c) for c in f.read().split()]
                                        out += kids
                                        todo += kids
                except OSError:
                        continue
        return out


def _nsenter_run(argv):
        """A command in a guest; None if it does not return. A guest shutting down SIGSTOPs everything in
        its pid namespace before the SIGKILL (systemd-shutdown), our systemctl too: nsenter, which
        forwards its child's stop to itself, then waits stopped for ever."""
        try:
                return subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
                return None


def guest_systemd_times(leader):
        """(UserspaceTimestampMonotonic, FinishTimestampMonotonic) of the guest's systemd, in µs of the host's
        CLOCK_MONOTONIC (no time namespace). Taken by systemd itself, the same way under every tool."""
        r = _nsenter_run(["nsenter", "-t", str(leader), "-m", "-p", "--", "/bin/systemctl", "show",
                          "-p", "UserspaceTimestampMonotonic", "-p", "FinishTimestampMonotonic"])
        v = dict(l.split("=", 1) for l in (r.stdout if r else "").splitlines() if "=" in l)
        return int(v.get("UserspaceTimestampMonotonic", 0) or 0), int(v.get("FinishTimestampMonotonic", 0) or 0)


def guest_system_state(leader):
        # A guest with its own user namespace (PrivateUsers=pick): enter it too, or systemctl, as the host's
        # root mapped to nobody in there, cannot talk to the guest's systemd.
        userns = []
        try:
                if os.readlink(f"/proc/{leader}/ns/user") != os.readlink("/proc/self/ns/user"):
                        userns = ["-U"]
        except OSError:
                pass
        r = _nsenter_run(["nsenter", "-t", str(leader), "-m", "-p", *userns, "--", "/bin/systemctl",
                          "is-system-running"])
        return (r.stdout.strip() if r else "") or "unknown"


def wait_exit(pid, timeout=60):
        """Waits for a process that is not our child (a guest's init)."""
        end = time.monotonic() + timeout
        if pid <= 0:
                return True
        try:
                fd = os.pidfd_open(pid)
        except ProcessLookupError:
                return True
        try:
                import select
                p = select.poll()
                p.register(fd, select.POLLIN)
                return bool(p.poll(max(0, int((end - time.monotonic()) * 1000))))
        finally:
                os.close(fd)
