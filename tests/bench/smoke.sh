#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Smoke test of tools/bench: every benchmark in a tiny configuration (1-2 iterations, N=2) must run,
# clean up and produce its results file and summary. No timing is asserted.
# Needs root, hyperfine and systemd-nspawn (LXC is used when installed); the Debian parts need the
# rootfs at BENCH_DEBIAN (default /var/cache/machinemgr/probe/debian) and are skipped without it.
set -euo pipefail

MM_SOURCE_ROOT=${MM_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
export MM_BUILD_ROOT=${MM_BUILD_ROOT:-$MM_SOURCE_ROOT/build}
BENCH=$MM_SOURCE_ROOT/tools/bench
DEBIAN=${BENCH_DEBIAN:-${MM_DEBIAN_ROOTFS:-/var/cache/machinemgr/probe/debian}}
export BENCH_DEBIAN=$DEBIAN

[[ $(id -u) == 0 ]] || { echo "SKIP: needs root"; exit 77; }
for p in hyperfine systemd-nspawn python3 unshare; do
        command -v $p >/dev/null || { echo "SKIP: $p missing"; exit 77; }
done

export BENCH_OUT
BENCH_OUT=$(mktemp -d /tmp/bench-smoke.XXXXXX)
trap 'rm -rf "$BENCH_OUT"' EXIT
failed=0

check() { # NAME FILE PATTERN
        if [[ -s "$BENCH_OUT/$2" ]] && grep -q -- "$3" "$BENCH_OUT/$1.out"; then
                echo "ok - $1"
        else
                echo "FAIL: $1"; cat "$BENCH_OUT/$1.out" "$BENCH_OUT/$1.err" 2>/dev/null | tail -n 20
                failed=$((failed + 1))
        fi
}

before_cg=$( (ls -d /sys/fs/cgroup/*/mmbench-* /sys/fs/cgroup/mmbench-* 2>/dev/null || true) | wc -l)
before_lxc=$( (ls -d /run/lxc/lock/var/tmp/mmbench-* 2>/dev/null || true) | wc -l)

"$BENCH/start.py" --runs 2 --warmup 0 >"$BENCH_OUT/start.out" 2>"$BENCH_OUT/start.err" || true
check start start.json "unshare-floor"
"$BENCH/api.py" --n 2 --runs 2 >"$BENCH_OUT/api.out" 2>"$BENCH_OUT/api.err" || true
check api api.json "StartMachine via CLI"
if [[ -d "$DEBIAN" ]]; then
        "$BENCH/boot.py" --runs 1 --tools machinemgr,nspawn >"$BENCH_OUT/boot.out" 2>"$BENCH_OUT/boot.err" || true
        check boot boot.json "machinemgr/nspawn cycle"
        "$BENCH/density.py" --n 2 >"$BENCH_OUT/density.out" 2>"$BENCH_OUT/density.err" || true
        check density density.json "nspawn  *N=  2"
        # The default-PrivateUsers=pick column must boot too, and start errors must not be swallowed.
        grep -q -- "machinemgr-pick *N=  2 ready .*(not ready 0)" "$BENCH_OUT/density.out" &&
                echo "ok - density machinemgr-pick" ||
                { echo "FAIL: density machinemgr-pick"; failed=$((failed + 1)); }
        # The LXC column is in density.py's defaults when lxc-start is installed: its guests must boot
        # (found by polling their systemd) and power off.
        if command -v lxc-start >/dev/null; then
                grep -q -- "^lxc *N=  2 ready .*(not ready 0).*poweroff" "$BENCH_OUT/density.out" &&
                        echo "ok - density lxc" ||
                        { echo "FAIL: density lxc"; failed=$((failed + 1)); }
        else
                echo "ok - density lxc # SKIP lxc-start not installed"
        fi
else
        echo "ok - boot, density # SKIP no Debian rootfs at $DEBIAN"
fi
"$BENCH/plot.py" "$BENCH_OUT" "$BENCH_OUT/plots" >"$BENCH_OUT/plot.out" 2>"$BENCH_OUT/plot.err" || true
check plot plots/start.png "wrote"

after_cg=$( (ls -d /sys/fs/cgroup/*/mmbench-* /sys/fs/cgroup/mmbench-* 2>/dev/null || true) | wc -l)
after_lxc=$( (ls -d /run/lxc/lock/var/tmp/mmbench-* 2>/dev/null || true) | wc -l)
# (LXC's cgroups are mmbench-PID-lxc in every hierarchy, v1 controllers too; its locks in /run/lxc/lock.)
if [[ $after_cg -gt $before_cg || $after_lxc -gt $before_lxc ]] || ls -d /var/tmp/mmbench-* >/dev/null 2>&1 ||
   grep -q " /var/tmp/mmbench-" /proc/self/mountinfo; then
        echo "FAIL: leftovers: $(ls -d /sys/fs/cgroup/*/mmbench-* /sys/fs/cgroup/mmbench-* /var/tmp/mmbench-* \
                /run/lxc/lock/var/tmp/mmbench-* 2>/dev/null; grep " /var/tmp/mmbench-" /proc/self/mountinfo)"
        failed=$((failed + 1))
else
        echo "ok - no leftover cgroups, mounts, LXC locks or scratch dirs"
fi
echo "$failed failed"
[[ $failed == 0 ]]
