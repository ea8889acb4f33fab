#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# PrivateUsers= with [Files] settings and copies (busybox guests): Bind= sources are looked up by the
# daemon (a source below a 0700 directory works) and idmapped like the rootfs (0 on the host = 0 in the
# guest); BindReadOnly= stays read-only; Ephemeral= is an overlay over the idmapped image that leaves
# the image untouched; Network=host gets the host's /sys read-only; copy-to/copy-from keep owners as
# the guest sees them (N in the guest = N on the host, out-of-range ids become nobody).
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
A=$(mm_name bind)
E=$(mm_name eph)
N=$(mm_name hnet)
C=$(mm_name copy)
for n in "$A" "$E" "$N" "$C"; do
        mm_busybox_image "$n"
done
gone() {
        mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$1' ]"
}

# --- Bind= / BindReadOnly= --------------------------------------------------------------------
S=$MM_TMP/closed/src
mkdir -p "$S"
chmod 0700 "$MM_TMP/closed"
echo root >"$S/by-root"
echo user >"$S/by-1000"
chown 1000:1000 "$S/by-1000"
echo single >"$MM_TMP/closed/file"
assert_exit 0 mm start "$A" --private-users=pick --no-boot --bind="$S:/mnt/rw" --bind-ro="$S:/mnt/ro" \
        --bind-ro="$MM_TMP/closed/file:/etc/single" --command="sleep 100000"
assert_exit 0 mm shell "$A" sh -c 'stat -c "%n %u:%g" /mnt/rw/by-root /mnt/rw/by-1000; cat /etc/single'
assert_contains "bind source below a 0700 dir: host root's file is root's in the guest" "$MM_STDOUT" \
        "/mnt/rw/by-root 0:0"
assert_contains "a file of host uid 1000 is uid 1000 in the guest" "$MM_STDOUT" "/mnt/rw/by-1000 1000:1000"
assert_contains "a file bind works" "$MM_STDOUT" "single"
assert_exit 0 mm shell "$A" sh -c 'echo new > /mnt/rw/from-guest && chown 1000:1000 /mnt/rw/by-root'
assert_eq "guest root writes into a bind as host root" "0:0" "$(stat -c %u:%g "$S/from-guest")"
assert_eq "guest root chowns in a bind with the guest's ids" "1000:1000" "$(stat -c %u:%g "$S/by-root")"
assert_exit 1 mm shell "$A" sh -c 'echo x > /mnt/ro/x'
assert_contains "BindReadOnly= is read-only" "$MM_STDERR" "Read-only"
assert_exit 1 mm shell "$A" sh -c 'echo x >> /etc/single'
assert_true "the read-only file bind was not written" test "$(cat "$MM_TMP/closed/file")" = single
assert_exit 0 mm terminate "$A"
assert_true "bind machine gone" gone "$A"
assert_no_leftovers "$A"
assert_exit 2 mm start "$A" --private-users=pick --no-boot --bind="$MM_TMP/nonexistent:/mnt" --command=true
assert_contains "a missing source is named" "$MM_STDERR" "$MM_TMP/nonexistent"

# --- Ephemeral= -------------------------------------------------------------------------------
tree_sum() {
        (
                cd "$1"
                find . -printf '%p %m %s %T@ %U:%G %l\n' | LC_ALL=C sort
                find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
        ) | sha256sum
}
before=$(tree_sum "$MM_IMAGES/$E")
assert_exit 0 mm start "$E" --private-users=pick --ephemeral --no-boot --command="sleep 100000"
assert_exit 0 mm shell "$E" sh -c 'echo hi > /newfile && rm /bin/ls && mkdir /newdir && mv /etc /etc.moved &&
        stat -c "%u:%g" /newfile /root && mount | grep " on / "'
assert_contains "root is an overlay" "$MM_STDOUT" "overlay"
assert_contains "guest root's new file is root's" "$MM_STDOUT" $'0:0\n0:0'
assert_exit 0 mm shell "$E" cat /newfile
assert_eq "the guest sees its writes" hi "$MM_STDOUT"
assert_eq "image untouched while running" "$before" "$(tree_sum "$MM_IMAGES/$E")"
assert_exit 0 mm terminate "$E"
assert_true "ephemeral machine gone" gone "$E"
assert_eq "image unchanged after the ephemeral run" "$before" "$(tree_sum "$MM_IMAGES/$E")"
assert_no_leftovers "$E"

# --- Network=host -----------------------------------------------------------------------------
host_ifs=$(ls /sys/class/net | sort | tr '\n' ' ')
assert_exit 0 mm start "$N" --private-users=pick --network=host --no-boot --command="sleep 100000"
assert_exit 0 mm shell "$N" sh -c 'ls /sys/class/net | sort | tr "\n" " "'
assert_eq "the guest sees the host's interfaces in /sys" "$host_ifs" "$MM_STDOUT"
assert_exit 1 mm shell "$N" sh -c 'echo 1 > /sys/kernel/mm/ksm/run'
assert_exit 0 mm shell "$N" sh -c 'mkdir /sys/fs/cgroup/sub && echo $$ > /sys/fs/cgroup/sub/cgroup.procs'
assert_eq "the guest's own cgroup2 is writable" "" "$MM_STDERR"
assert_exit 0 mm terminate "$N"
assert_true "host-network machine gone" gone "$N"
assert_no_leftovers "$N"

# --- copy-to / copy-from ----------------------------------------------------------------------
assert_exit 0 mm start "$C" --private-users=pick --no-boot --command="sleep 100000"
H=$MM_TMP/host
mkdir -p "$H/tree/sub"
echo a >"$H/tree/a"
echo b >"$H/tree/sub/b"
chmod 0700 "$H/tree/sub"
chown 1234:5678 "$H/tree/a"
chown 100000:100000 "$H/tree/sub/b"
ln -s a "$H/tree/link"
assert_exit 0 mm copy-to "$C" "$H/tree" /root/tree
assert_exit 0 mm shell "$C" sh -c 'cd /root/tree && stat -c "%n %u:%g" . a sub sub/b link'
assert_contains "copy-to: root's directory is root's in the guest" "$MM_STDOUT" ". 0:0"
assert_contains "copy-to: ids are kept" "$MM_STDOUT" "a 1234:5678"
assert_contains "copy-to: ids beyond the range become nobody" "$MM_STDOUT" "sub/b 65534:65534"
assert_eq "copy-to: on disk as in the guest" "0:0 1234:5678" \
        "$(stat -c %u:%g "$MM_IMAGES/$C/root/tree" "$MM_IMAGES/$C/root/tree/a" | tr '\n' ' ' | sed 's/ $//')"
assert_exit 0 mm shell "$C" sh -c 'echo g > /root/g && echo r > /run/r && chown 1000:1000 /run/r'
assert_exit 0 mm copy-from "$C" /root/g "$MM_TMP/g"
assert_eq "copy-from: guest root's file is root's on the host" "0:0" "$(stat -c %u:%g "$MM_TMP/g")"
assert_exit 0 mm copy-from "$C" /run/r "$MM_TMP/r"
assert_eq "copy-from a guest tmpfs: guest uid 1000 is 1000 on the host" "1000:1000" "$(stat -c %u:%g "$MM_TMP/r")"
assert_exit 0 mm copy-from "$C" /root/tree "$MM_TMP/back"
assert_eq "copy-from: round trip of owners" "1234:5678 65534:65534" \
        "$(stat -c %u:%g "$MM_TMP/back/a" "$MM_TMP/back/sub/b" | tr '\n' ' ' | sed 's/ $//')"
assert_exit 0 mm terminate "$C"
assert_true "copy machine gone" gone "$C"
assert_no_leftovers "$C"
assert_eq "no allocation left" "" "$(ls "$MM_RUN/userns" | grep -v '^\.lock$' || true)"

mm_finish
