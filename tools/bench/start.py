#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""(a) start -> exit of /bin/true in a busybox rootfs with new pid/mnt/uts/ipc/net namespaces.

Runs, in one hyperfine session on the same image: the `unshare ... chroot` floor, machinemgr through the
CLI (`start --no-boot --command=/bin/true --wait`), systemd-nspawn, and `lxc-start -F` when LXC is
installed. Prints medians and ratios; writes BENCH_OUT/start.json (+ hyperfine's raw times).

Usage: tools/bench/start.py [--runs N] [--warmup N]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmbench as mb


def daemon_cpu_ms(pid):
        with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        # utime stime cutime cstime (fields 14-17), in clock ticks
        return sum(int(x) for x in fields[11:15]) * 1000 / os.sysconf("SC_CLK_TCK")


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("--runs", type=int, default=50)
        ap.add_argument("--warmup", type=int, default=5)
        a = ap.parse_args()
        if not mb.have("hyperfine"):
                sys.exit("hyperfine is needed (apt-get install hyperfine)")

        with mb.Bench("start") as b:
                root = b.busybox_image("bb")
                b.start_daemon()
                cmds = {
                        "unshare-floor": f"unshare --pid --fork --mount --uts --ipc --net chroot {root} /bin/true",
                        "machinemgr": f"{mb.CLI} start bb --no-boot --command=/bin/true --wait",
                        "nspawn": f"systemd-nspawn --register=no --keep-unit -q -D {root} /bin/true",
                }
                if mb.have("lxc-start"):
                        b.lxc_config("bb", root, "/bin/true")
                        cmds["lxc"] = f"lxc-start -F -P {b.lxcpath} -n bb"
                else:
                        mb.log("LXC not installed: skipped")
                raw = os.path.join(b.tmp, "hyperfine.json")
                args = ["hyperfine", "-N", "--style", "basic", "-w", str(a.warmup), "-r", str(a.runs),
                        "--export-json", raw]
                for n, c in cmds.items():
                        args += ["-n", n, c]
                cpu0 = daemon_cpu_ms(b.daemon.pid)
                subprocess.run(args, check=True, env=b.env(), stdout=sys.stderr)
                # CPU time of the daemon and everything it reaped (the container trees): per start,
                # much less sensitive to a busy host than wall-clock time.
                cpu_per_start = (daemon_cpu_ms(b.daemon.pid) - cpu0) / (a.runs + a.warmup)
                with open(raw) as f:
                        h = json.load(f)

        res = {}
        for r in h["results"]:
                res[r["command"]] = {"times_ms": [t * 1000 for t in r["times"]],
                                     "stats": mb.stats([t * 1000 for t in r["times"]]),
                                     "exit_codes": sorted(set(r.get("exit_codes", [0])))}
        floor = res["unshare-floor"]["stats"]["median"]
        mm = res["machinemgr"]["stats"]["median"]
        print("## (a) start -> exit of /bin/true, busybox rootfs (median, p10-p90)")
        for n, r in res.items():
                s = r["stats"]
                print(f"{n:14s} {s['median']:7.1f} ms  [{s['p10']:.1f} .. {s['p90']:.1f}]  "
                      f"x{s['median'] / floor:.2f} of floor  machinemgr/this = {mm / s['median']:.2f}"
                      + ("" if r["exit_codes"] == [0] else f"  EXIT CODES {r['exit_codes']}"))
        print(f"machinemgr CPU per start (daemon + container tree): {cpu_per_start:.1f} ms")
        mb.save("start", {"runs": a.runs, "results": res, "commands": cmds, "machinemgr_cpu_ms_per_start": cpu_per_start})


if __name__ == "__main__":
        main()
