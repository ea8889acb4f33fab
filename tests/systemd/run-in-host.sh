#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The systemd-host harness: boot a throw-away Debian 12 host with systemd as
# PID 1 in systemd-nspawn, install this build into it, run one test script
# inside, report its output and exit status, and clean everything up.
#
#   run-in-host.sh TEST-SCRIPT [ARGS…]      (TEST-SCRIPT: a file in tests/systemd/)
#
# Environment:
#   MM_BUILD_ROOT    meson build dir to install into the host (required)
#   MM_SOURCE_ROOT   source tree (default: two levels above this script)
#   MM_BOOT_TIMEOUT  seconds to wait for the host to boot (default 180)
#   MM_TEST_TIMEOUT  seconds the test may run (default 1200)
#   MM_KEEP_LOGS     directory to copy console/journal logs to (default: BUILD/meson-logs/systemd/)
#   MM_NSPAWN_OPTIONS  extra systemd-nspawn options for the host, split at whitespace (default: none;
#                    e.g. --system-call-filter=bpf, which nspawn's seccomp filter refuses otherwise)
#
# Exit: the test's exit status; 77 (skip) if this machine cannot run it; 99 harness error.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE_ROOT="${MM_SOURCE_ROOT:-$(cd "$HERE/../.." && pwd)}"
BOOT_TIMEOUT="${MM_BOOT_TIMEOUT:-180}"
TEST_TIMEOUT="${MM_TEST_TIMEOUT:-1200}"
TESTS_DIR_IN_HOST=/usr/local/lib/machinemgr-tests

# State for cleanup: set as soon as the thing exists.
WORK=""
ROOT_MOUNTED=0
NSPAWN_PID=""
LEADER=""
CGROUPS=()

CHILD_PID=""
HOST_KILLED=0
POWEROFF_WAIT=120       # half-seconds the host gets to power off before SIGKILL

# Run a long command in the background and wait for it: `wait` returns at once
# when a trapped signal arrives (a foreground command would delay the trap
# until it finished), and the trap can then end the child.
run_interruptible() {
        "$@" &
        CHILD_PID=$!
        local rc=0
        wait "$CHILD_PID" || rc=$?
        CHILD_PID=""
        return "$rc"
}

on_signal() {
        log "interrupted"
        # Whoever interrupts wants us gone soon: give the host less time to power off.
        POWEROFF_WAIT=20
        [[ -n "$CHILD_PID" ]] && kill -TERM "$CHILD_PID" 2>/dev/null
        exit 130
}

log() { printf '[harness %(%T)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 99; }
skip() { log "SKIP: $*"; exit 77; }

check_prerequisites() {
        [[ $(id -u) -eq 0 ]] || skip "needs root"
        local tool
        for tool in systemd-nspawn nsenter mmdebstrap meson; do
                command -v "$tool" >/dev/null || skip "$tool not installed"
        done
        [[ -n "${MM_BUILD_ROOT:-}" ]] || die "MM_BUILD_ROOT is not set"
        [[ -f "$MM_BUILD_ROOT/build.ninja" ]] || die "MM_BUILD_ROOT=$MM_BUILD_ROOT is not a meson build dir"
}

# inotify instances are counted per user across every user namespace that maps
# to it: a nested host plus its guest is two systemd instances (each service
# manager, journald, udev-less tools…) all charged to uid 0 of this machine.
# The default of 128 runs out with one or two other container workloads on
# the box, and the guest then never gets to READY=1 ("Failed to create inotify
# object: Too many open files"). Raising a limit only ever helps others.
raise_inotify_limit() {
        local f=/proc/sys/fs/inotify/max_user_instances want=4096 cur
        cur="$(cat "$f" 2>/dev/null)" || return 0
        if ((cur < want)); then
                log "raising fs.inotify.max_user_instances from $cur to $want"
                echo "$want" >"$f" || log "warning: could not raise fs.inotify.max_user_instances"
        fi
}

# Print, one per line, a fresh child cgroup "NAME" of our current cgroup in
# every mounted hierarchy (cgroup2, name=systemd, the v1 controllers). The
# host's systemd gets a subtree of its own, nested below wherever we were
# started (we never move anything out of it), and cleanup is a matter of rmdir.
cgroup_dirs() {
        local name="$1" line hier ctrls path mnt
        while IFS= read -r line; do
                hier="${line%%:*}"; line="${line#*:}"
                ctrls="${line%%:*}"; path="${line#*:}"
                if [[ "$hier" == 0 ]]; then
                        mnt="$(findmnt -n -o TARGET -t cgroup2 | head -n1)"
                else
                        ctrls="${ctrls#name=}"
                        mnt="/sys/fs/cgroup/${ctrls}"
                        # Co-mounted controllers may be mounted under another name.
                        [[ -d "$mnt" ]] || mnt="$(findmnt -n -o TARGET -t cgroup -O "${ctrls%%,*}" | head -n1)"
                fi
                [[ -n "$mnt" && -d "$mnt" ]] || continue
                printf '%s\n' "$mnt${path%/}/$name"
        done </proc/self/cgroup
}

# Move the calling shell ($BASHPID) into those cgroups.
enter_cgroups() {
        local dir
        for dir in "$@"; do
                mkdir -p "$dir"
                # A new v1 cpuset cgroup starts with no CPUs/nodes; joining it
                # would fail with ENOSPC, so inherit the parent's.
                if [[ -f "$dir/cpuset.cpus" && -z "$(<"$dir/cpuset.cpus")" ]]; then
                        cat "$dir/../cpuset.cpus" >"$dir/cpuset.cpus"
                        cat "$dir/../cpuset.mems" >"$dir/cpuset.mems"
                fi
                echo "$BASHPID" >"$dir/cgroup.procs"
        done
}

# Remove our cgroups bottom-up (the host's systemd leaves its subtree empty
# once everything in it is dead; retry briefly while the kernel reaps).
cleanup_cgroups() {
        local dir sub
        for dir in "${CGROUPS[@]}"; do
                [[ -d "$dir" ]] || continue
                for _ in 1 2 3 4 5 6 7 8 9 10; do
                        # Deepest first.
                        while IFS= read -r sub; do
                                rmdir "$sub" 2>/dev/null || true
                        done < <(find "$dir" -mindepth 1 -type d | sort -r)
                        rmdir "$dir" 2>/dev/null && break
                        [[ -n "${MM_HARNESS_DEBUG:-}" ]] && log "rmdir $dir: busy"
                        sleep 0.5
                done
                [[ -d "$dir" ]] && log "warning: could not remove cgroup $dir"
        done
        return 0
}

# Kill only what we started: the host's PID 1 (which takes its whole PID
# namespace with it) and the nspawn process.
stop_host() {
        if [[ -n "$LEADER" ]] && kill -0 "$LEADER" 2>/dev/null; then
                log "powering the host off (SIGRTMIN+4 to its PID 1, $LEADER)"
                kill -s RTMIN+4 "$LEADER" 2>/dev/null || true
        fi
        if [[ -n "$NSPAWN_PID" ]]; then
                local i t0=$SECONDS
                for ((i = 0; i < POWEROFF_WAIT; i++)); do
                        kill -0 "$NSPAWN_PID" 2>/dev/null || break
                        sleep 0.5
                done
                log "host power-off took $((SECONDS - t0))s"
                if kill -0 "$NSPAWN_PID" 2>/dev/null; then
                        log "host did not power off in time: SIGKILL"
                        HOST_KILLED=1
                        [[ -n "$LEADER" ]] && kill -KILL "$LEADER" 2>/dev/null || true
                        sleep 1
                        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
                fi
                wait "$NSPAWN_PID" 2>/dev/null || true
                log "host is down"
        fi
        NSPAWN_PID=""
        LEADER=""
}

cleanup() {
        local rc=$?
        set +e
        stop_host
        # A host shutdown that hangs (e.g. on a container scope that does not
        # stop) is a failure of the product, whatever the test said.
        if [[ "$HOST_KILLED" == 1 && "$rc" == 0 ]]; then
                log "FAIL: the host's power-off hung (a test that passed is failed for it)"
                rc=1
        fi
        if [[ "$ROOT_MOUNTED" == 1 ]]; then
                umount -R "$WORK/root" 2>/dev/null || umount -l "$WORK/root"
        fi
        cleanup_cgroups
        [[ -n "$WORK" ]] && rm -rf --one-file-system "$WORK"
        log "cleaned up"
        exit "$rc"
}

# A minimal busybox guest (Boot=no style: /bin/sh payload), built fresh: it is
# tiny and needs no cache. The project's own tool when it works, else a
# fallback, so the harness does not depend on that tool's state.
make_busybox_image() {
        local dir="$1" bb
        if "$SOURCE_ROOT/tools/mkimage-busybox" "$dir" >/dev/null 2>&1; then
                return 0
        fi
        log "tools/mkimage-busybox failed; using the harness's own busybox image"
        rm -rf "$dir"
        bb="$(command -v busybox)" || die "busybox not installed"
        mkdir -p "$dir"/{bin,sbin,etc,proc,sys,dev,run,tmp,root,var}
        cp "$bb" "$dir/bin/busybox"
        local applet
        for applet in sh ls cat echo sleep mount ps kill poweroff halt reboot init true false hostname id; do
                ln -s busybox "$dir/bin/$applet"
        done
        ln -s ../bin/busybox "$dir/sbin/init"
        printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/etc/passwd"
        printf 'root:x:0:\n' >"$dir/etc/group"
        printf 'ID=busybox\nNAME=BusyBox\nPRETTY_NAME="BusyBox test guest"\n' >"$dir/etc/os-release"
}

prepare_root() {
        local host_img="$1" guest_img="$2"
        mkdir -p "$WORK"/{upper,ovlwork,root,machines}
        # Overlay: the cached image is never written, and the copy is instant.
        mount -t overlay overlay \
                -o "lowerdir=$host_img,upperdir=$WORK/upper,workdir=$WORK/ovlwork" "$WORK/root"
        ROOT_MOUNTED=1

        log "installing $MM_BUILD_ROOT into the host"
        meson install -C "$MM_BUILD_ROOT" --no-rebuild --quiet --destdir "$WORK/root" >&2 \
                || die "meson install failed"

        mkdir -p "$WORK/root$TESTS_DIR_IN_HOST"
        cp "$HERE"/*.sh "$WORK/root$TESTS_DIR_IN_HOST/"
        chmod 0755 "$WORK/root$TESTS_DIR_IN_HOST"/*.sh

        # Guest images live on a real directory, bound at /var/lib/machines, so
        # nested containers do not run on overlayfs (idmapped mounts, overlay
        # upper dirs, … behave differently there).
        log "copying guest images"
        cp -a "$guest_img" "$WORK/machines/debian"
        rm -f "$WORK/machines/debian/.machinemgr-recipe"
        make_busybox_image "$WORK/machines/busybox"
}

# systemd's PID 1 in the host is a child of the nspawn process: the one in a
# new PID namespace that has exec'd systemd (nspawn's intermediate children
# come and go first).
find_leader() {
        local i child self_ns
        self_ns="$(readlink /proc/self/ns/pid)"
        for ((i = 0; i < 300; i++)); do
                for child in $(cat /proc/"$NSPAWN_PID"/task/*/children 2>/dev/null); do
                        [[ "$(readlink "/proc/$child/ns/pid" 2>/dev/null)" != "$self_ns" ]] || continue
                        [[ "$(cat "/proc/$child/comm" 2>/dev/null)" == systemd ]] || continue
                        LEADER="$child"
                        return 0
                done
                kill -0 "$NSPAWN_PID" 2>/dev/null || return 1
                sleep 0.1
        done
        return 1
}

boot_host() {
        local machine="$1"
        log "booting host $machine"
        mapfile -t CGROUPS < <(cgroup_dirs "$machine")
        # A subshell that moves itself into its own cgroups, then becomes nspawn.
        # No machined and no systemd here: --register=no, and --keep-unit so
        # nspawn uses the cgroup it is in instead of asking systemd for a scope.
        (
                enter_cgroups "${CGROUPS[@]}"
                # shellcheck disable=SC2086 # a list of options, split on purpose
                exec systemd-nspawn ${MM_NSPAWN_OPTIONS:-} --quiet --boot --private-network --register=no --keep-unit \
                        --console=read-only --machine="$machine" -D "$WORK/root" \
                        --bind="$WORK/machines:/var/lib/machines" \
                        </dev/null >"$WORK/console.log" 2>&1
        ) &
        NSPAWN_PID=$!
        find_leader || { cat "$WORK/console.log" >&2; die "nspawn exited before the host started"; }
        log "host PID 1 is $LEADER (nspawn $NSPAWN_PID)"
}

in_host() {
        nsenter -t "$LEADER" -a -- "$@"
}

wait_for_boot() {
        local state="" deadline=$((SECONDS + BOOT_TIMEOUT))
        # systemctl cannot connect until PID 1 has created its private socket:
        # retry that, then let --wait do the waiting.
        while ((SECONDS < deadline)); do
                kill -0 "$LEADER" 2>/dev/null || break
                state="$(run_interruptible timeout "$((deadline - SECONDS + 1))" \
                        nsenter -t "$LEADER" -a -- systemctl is-system-running --wait 2>&1)" || true
                [[ "$state" == *"Failed to connect"* || -z "$state" ]] || break
                sleep 0.5
        done
        log "host state: $state"
        case "$state" in
        running|degraded) ;;
        *) cat "$WORK/console.log" >&2; die "host did not boot within ${BOOT_TIMEOUT}s (state: ${state:-none})" ;;
        esac
        if [[ "$state" == degraded ]]; then
                in_host systemctl --no-pager --failed >&2 || true
        fi
}

# Run the test as a transient unit inside the host, so it lives in the host's
# own cgroup tree and environment, with its stdout/stderr passed through.
run_test() {
        local test="$1"; shift
        local rc=0
        run_interruptible timeout --kill-after=10 "$TEST_TIMEOUT" \
                nsenter -t "$LEADER" -a -- \
                systemd-run --quiet --wait --pipe --collect --unit="mmtest-${test%.sh}" \
                        -p RuntimeMaxSec="$TEST_TIMEOUT" \
                        --setenv=MM_TESTS_DIR="$TESTS_DIR_IN_HOST" \
                        --setenv=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                        /bin/bash "$TESTS_DIR_IN_HOST/$test" "$@" </dev/null || rc=$?
        return "$rc"
}

save_logs() {
        local test="$1" dest="${MM_KEEP_LOGS:-$MM_BUILD_ROOT/meson-logs/systemd}"
        mkdir -p "$dest"
        in_host journalctl -b --no-pager -o short-monotonic >"$dest/${test%.sh}.journal" 2>&1 || true
        cp "$WORK/console.log" "$dest/${test%.sh}.console" 2>/dev/null || true
        log "host journal and console saved to $dest/${test%.sh}.{journal,console}"
}

main() {
        local test="${1:?usage: run-in-host.sh TEST-SCRIPT [ARGS…]}"; shift
        [[ -f "$HERE/$test" ]] || die "no such test script: $HERE/$test"
        check_prerequisites
        raise_inotify_limit

        local host_img guest_img
        host_img="$("$HERE/image-cache.sh" host)" || die "building the host image failed"
        guest_img="$("$HERE/image-cache.sh" guest)" || die "building the guest image failed"

        trap cleanup EXIT
        trap on_signal INT TERM
        WORK="$(mktemp -d /var/tmp/mmhost.XXXXXX)"
        local machine
        machine="mmhost-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"

        prepare_root "$host_img" "$guest_img"
        boot_host "$machine"
        wait_for_boot

        log "running $test"
        local rc=0
        run_test "$test" "$@" || rc=$?
        log "$test exited with status $rc"
        save_logs "$test"
        if [[ $rc -ne 0 ]]; then
                log "last lines of the host journal:"
                in_host journalctl -b --no-pager -n 60 >&2 || true
        fi
        return "$rc"
}

# One line, parsed whole before it runs: editing this file during a run is safe.
main "$@"; exit $?
