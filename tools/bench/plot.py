#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Plots the results of tools/bench/*.py (python3-matplotlib).

Usage: tools/bench/plot.py RESULTS_DIR OUT_DIR   (e.g. bench-results docs/bench)
Writes start.png (latency distributions side by side), boot.png (phases per tool, with spread),
density.png (time to all READY, manager and kernel memory per guest, poweroff time vs N; one series per
tool in the results: machinemgr, machinemgr-pick, nspawn, lxc): each only when its results file exists.
"""
import json
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(d, name):
        p = os.path.join(d, name + ".json")
        if not os.path.exists(p):
                return None
        with open(p) as f:
                return json.load(f)


def main():
        src, dst = sys.argv[1], sys.argv[2]
        os.makedirs(dst, exist_ok=True)

        s = load(src, "start")
        if s:
                names = list(s["results"])
                fig, ax = plt.subplots(figsize=(7, 4))
                ax.violinplot([s["results"][n]["times_ms"] for n in names], showmedians=True)
                ax.set_xticks(range(1, len(names) + 1), names)
                ax.set_ylabel("ms, start -> exit of /bin/true")
                ax.set_title(f"(a) busybox /bin/true, {s['runs']} runs each, same run")
                ax.set_ylim(bottom=0)
                fig.tight_layout()
                fig.savefig(os.path.join(dst, "start.png"), dpi=100)
                print("wrote", os.path.join(dst, "start.png"))

        b = load(src, "boot")
        if b:
                tools = [t for t in b if "raw" in b[t]]
                fig, ax = plt.subplots(figsize=(7, 4))
                phases = ("setup", "userspace", "shutdown")
                bottom = [0.0] * len(tools)
                for ph in phases:
                        med = [b[t][ph]["median"] for t in tools]
                        err = [[m - b[t][ph]["p10"] for t, m in zip(tools, med)],
                               [b[t][ph]["p90"] - m for t, m in zip(tools, med)]]
                        ax.bar(tools, med, bottom=bottom, label=ph, yerr=err, capsize=3)
                        bottom = [x + y for x, y in zip(bottom, med)]
                ax.set_ylabel("ms (median, p10-p90 bars)")
                ax.set_title("(b) Debian 12 boot + poweroff cycle by phase")
                ax.legend()
                fig.tight_layout()
                fig.savefig(os.path.join(dst, "boot.png"), dpi=100)
                print("wrote", os.path.join(dst, "boot.png"))

        d = load(src, "density")
        if d:
                fig, axs = plt.subplots(1, 4, figsize=(15, 3.8))
                for t, rs in d["results"].items():
                        ns = [r["n"] for r in rs]
                        axs[0].plot(ns, [r["ready_s"] for r in rs], "o-", label=t)
                        # The manager's own memory per guest (daemon, all nspawn processes, or the lxc-start
                        # monitors): what the MemAvailable split cannot give reliably (the guests' file pages
                        # were cached before).
                        axs[1].plot(ns, [r["tool_pss_kib"] / r["n"] for r in rs], "o-", label=t)
                        axs[2].plot(ns, [r.get("kernel_per_guest_kib", float("nan")) for r in rs], "o-", label=t)
                        axs[3].plot(ns, [r["poweroff_s"] for r in rs], "o-", label=t)
                for ax, yl in zip(axs, ("s until all READY", "manager PSS per guest, KiB",
                                        "kernel slab+PT+stacks per guest, KiB", "s to power off all")):
                        ax.set_xlabel("N guests at once")
                        ax.set_ylabel(yl)
                        ax.set_xscale("log")
                        ax.legend(fontsize=7)
                axs[1].set_yscale("log")
                fig.suptitle(f"(c, d) Debian 12 density, fs.inotify.max_user_instances={d['inotify_max_user_instances']}")
                fig.tight_layout()
                fig.savefig(os.path.join(dst, "density.png"), dpi=100)
                print("wrote", os.path.join(dst, "density.png"))


if __name__ == "__main__":
        main()
