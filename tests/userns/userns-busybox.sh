#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# PrivateUsers= with busybox guests (Boot=no): root in the guest is the range's base on the host, the
# rootfs is an idmapped mount (image ownership unchanged in both directions), ranges are disjoint, freed
# on stop and reused, and a fixed range that overlaps one in use is refused.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
A=$(mm_name a)
B=$(mm_name b)
C=$(mm_name c)
D=$(mm_name d)
for n in "$A" "$B" "$C" "$D"; do
        mm_busybox_image "$n"
done

# The range of a running machine, from its allocation file: "BASE SIZE".
range_of() {
        local f
        for f in "$MM_RUN"/userns/*-*; do
                [[ -e "$f" ]] || continue
                if [[ "$(cat "$f")" == "$1" ]]; then
                        local b=${f##*/}
                        echo "${b%-*} ${b#*-}"
                        return 0
                fi
        done
        return 1
}

assert_exit 0 mm start "$A" --private-users=pick --no-boot --command="sleep 1000"
leader=$(mm_leader "$A")
read -r base size < <(range_of "$A")
assert_eq "pick takes a 65536-id range" 65536 "$size"
assert_true "pick takes the range from the pool (>= 0x80000, step 65536)" \
        test "$base" -ge 524288 -a $((base % 65536)) -eq 0
assert_eq "uid_map of the leader" "0 $base 65536" "$(awk '{print $1, $2, $3}' "/proc/$leader/uid_map")"
assert_eq "gid_map of the leader" "0 $base 65536" "$(awk '{print $1, $2, $3}' "/proc/$leader/gid_map")"
assert_eq "the leader's uid on the host is the range's base" "$base $base $base $base" \
        "$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$leader/status")"
assert_eq "the state file records the range" "$base" \
        "$(jq -r '.runtime[] | select(.[0] == "USERNS_SHIFT") | .[1]' "$MM_RUN/machines/$A")"
assert_eq "the state file records PrivateUsers=" "pick" "$(jq -r .settings.private_users "$MM_RUN/machines/$A")"

# Idmapped rootfs: owned by 0 in the image = 0 in the guest; created by guest root = 0 in the image.
assert_exit 0 mm shell "$A" sh -c 'id -u; ls -ln /etc/passwd; touch /created-in-guest; mkdir /dir-in-guest'
assert_contains "shell runs as root inside" "$MM_STDOUT" $'0\n'
assert_eq "image files appear owned by 0 in the guest" "0 0" \
        "$(echo "$MM_STDOUT" | awk '/passwd/ {print $3, $4}')"
assert_eq "a file the guest's root creates is 0:0 in the image" "0:0" \
        "$(stat -c %u:%g "$MM_IMAGES/$A/created-in-guest")"
assert_eq "a directory the guest's root creates is 0:0 in the image" "0:0" \
        "$(stat -c %u:%g "$MM_IMAGES/$A/dir-in-guest")"
assert_eq "the image root was not chowned" "0:0" "$(stat -c %u:%g "$MM_IMAGES/$A/etc/passwd")"
# The host's files outside the mapping are nobody's in the guest; guest root cannot touch them.
assert_exit 0 mm shell "$A" sh -c 'ls -ln /dev/null; echo x > /dev/null; cat /proc/self/uid_map'
assert_contains "/dev/null is the host's node (nobody-owned inside) and writable" "$MM_STDOUT" "65534"
assert_eq "shell joins the user namespace" "0 $base 65536" \
        "$(echo "$MM_STDOUT" | awk 'NR == 2 {print $1, $2, $3}')"
assert_exit 1 mm shell "$A" sh -c 'echo 1 > /proc/sys/kernel/domainname'
assert_exit 0 mm shell "$A" sh -c 'mkdir /sys/fs/cgroup/sub && echo $$ > /sys/fs/cgroup/sub/cgroup.procs'
assert_eq "guest root can use its delegated cgroup" "" "$MM_STDERR"

# A second machine gets a disjoint range.
assert_exit 0 mm start "$B" --private-users=pick --no-boot --command="sleep 1000"
read -r base_b size_b < <(range_of "$B")
assert_true "two machines get disjoint ranges" \
        test $((base_b >= base + size || base >= base_b + size_b)) -eq 1

# A fixed range overlapping one in use is refused (InvalidArgument: exit status 2), and leaves nothing behind.
assert_exit 2 mm start "$D" --private-users=$((base_b + 100)):1000 --no-boot --command="sleep 1000"
assert_contains "overlapping fixed range refused" "$MM_STDERR" "overlaps"
assert_true "refused start left no allocation" test -z "$(range_of "$D" || true)"
# A fixed range outside the others works, and shows in the maps.
assert_exit 0 mm start "$D" --private-users=300000:70000 --no-boot --command="sleep 1000"
assert_eq "fixed range in uid_map" "0 300000 70000" \
        "$(awk '{print $1, $2, $3}' "/proc/$(mm_leader "$D")/uid_map")"

# Stopping A frees its range: the next pick reuses it.
assert_exit 0 mm terminate "$A"
assert_true "A is gone" mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$A' ]"
assert_true "A's range is released" test -z "$(range_of "$A" || true)"
assert_exit 0 mm start "$A" --private-users=pick --network=host --no-boot --wait --command="test -e /sys/class/net/lo"
assert_true "A (host network) is gone" mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$A' ]"

assert_exit 0 mm start "$C" --private-users=pick --no-boot --command="sleep 1000"
assert_eq "a freed range is reused" "$base" "$(range_of "$C" | cut -d' ' -f1)"

# A daemon restart keeps the range with the re-adopted machine; shell still enters its user namespace.
mm_daemon_stop
mm_daemon_start
assert_eq "range kept across a daemon restart" "$base 65536" "$(range_of "$C")"
assert_exit 0 mm shell "$C" cat /proc/self/uid_map
assert_eq "shell into a re-adopted userns machine" "0 $base 65536" "$(echo "$MM_STDOUT" | awk '{print $1, $2, $3}')"
assert_exit 0 mm terminate "$C"
assert_true "re-adopted C is gone" mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$C' ]"
assert_true "re-adopted C's range is released" test -z "$(range_of "$C" || true)"

# PrivateUsers=no (the explicit opt-in to a privileged guest) is unchanged: the leader is the host's root.
assert_exit 0 mm start "$A" --private-users=no --no-boot --command="sleep 1000"
assert_eq "with PrivateUsers=no the leader is host root" "0" \
        "$(awk '/^Uid:/ {print $2}' "/proc/$(mm_leader "$A")/status")"

# A daemon-side step that fails: an overlayfs image cannot be idmapped. The start fails with the step
# named, the daemon carries on with one thread, nothing is left. (In direct mode this step runs on the
# spawn's worker thread while the child waits in the daemon's memory; the child must exit cleanly.)
O=$(mm_name ovl)
mm_busybox_image "$O"
mkdir -p "$MM_TMP/ovl/upper" "$MM_TMP/ovl/work"
mv "$MM_IMAGES/$O" "$MM_TMP/ovl/lower"
mkdir "$MM_IMAGES/$O"
mount -t overlay "mmtest-$O" -o "lowerdir=$MM_TMP/ovl/lower,upperdir=$MM_TMP/ovl/upper,workdir=$MM_TMP/ovl/work" \
        "$MM_IMAGES/$O"
assert_exit 1 mm start "$O" --private-users=pick --no-boot --command=true --wait
assert_contains "the failing step is named" "$MM_STDERR" "idmap the rootfs"
assert_exit 0 mm list
assert_eq "daemon has one thread after the failed spawn" 1 \
        "$(awk '$1 == "Threads:" {print $2}' "/proc/$MM_DAEMON_PID/status")"
assert_exit 0 mm start "$O" --private-users=no --no-boot --command=true --wait
umount "$MM_IMAGES/$O"
assert_no_leftovers "$O"

for n in "$A" "$B" "$C" "$D"; do
        mm terminate "$n" >/dev/null 2>&1 || true
done
for n in "$A" "$B" "$C" "$D"; do
        assert_true "$n stopped" mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$n' ]"
        assert_no_leftovers "$n"
done
assert_eq "no allocation left" "" "$(ls "$MM_RUN/userns" | grep -v '^\.lock$' || true)"

mm_finish
