#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bind=/BindReadOnly= (CLI, settings file), ReadOnly= rootfs, and what a bad bind source leaves behind.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
HOSTSUB=
RO=
cleanup_files() {
        [[ -z "$HOSTSUB" ]] || umount "$HOSTSUB" 2>/dev/null || true
        [[ -z "$RO" ]] || rm -rf --one-file-system "$RO"
}
# Ours first (a host mount under $MM_TMP would count as a leftover), then the library's.
trap 'rc=$?; cleanup_files; (exit $rc); _mm_on_exit' EXIT
mm_daemon_start

A=$(mm_name bind)
mm_busybox_image "$A"
SRC=$MM_TMP/src
# Outside $MM_TMP: the host tmpfs below it is ours, not a leftover of the daemon.
RO=$(mktemp -d /var/tmp/mmfiles-ro.XXXXXX)
mkdir -p "$SRC" "$RO/sub"
echo hello >"$SRC/file"
echo readonly >"$RO/file"
echo rofile >"$MM_TMP/rofile"
# A submount of a read-only bind must be read-only too (recursive MOUNT_ATTR_RDONLY).
HOSTSUB=$RO/sub
mount -t tmpfs -o size=1m tmpfs "$HOSTSUB"
# Symlinks in the image pointing at a host path, absolute and relative: the bind destination must stay
# inside the guest (the same path exists in the image, so resolving in the root succeeds).
mkdir -p "$MM_TMP/escape" "$MM_IMAGES/$A/$MM_TMP/escape"
ln -s "$MM_TMP/escape" "$MM_IMAGES/$A/evil"
ln -s "../../../../../../../..$MM_TMP/escape" "$MM_IMAGES/$A/evil2"

assert_exit 0 mm start "$A" --no-boot --command="sleep 100000" \
        --bind="$SRC:/mnt/deep/dst" --bind-ro="$RO:/ro" --bind-ro="$MM_TMP/rofile:/etc/rofile" \
        --bind="$SRC:/evil/target" --bind="$SRC:/evil2/target2"
assert_exit 0 mm shell "$A" cat /mnt/deep/dst/file
assert_eq "bind source visible in the guest" hello "$MM_STDOUT"
assert_exit 0 mm shell "$A" sh -c 'echo new > /mnt/deep/dst/new'
assert_eq "a write through a writable bind reaches the host" new "$(cat "$SRC/new" 2>/dev/null)"
assert_exit 0 mm shell "$A" cat /ro/file
assert_eq "read-only bind visible" readonly "$MM_STDOUT"
assert_exit 1 mm shell "$A" sh -c 'echo x > /ro/file'
assert_contains "read-only bind refuses writes" "$MM_STDERR" "Read-only file system"
assert_exit 1 mm shell "$A" sh -c 'echo x > /ro/sub/x'
assert_contains "submount of a read-only bind is read-only" "$MM_STDERR" "Read-only file system"
assert_eq "host file under the read-only bind unchanged" readonly "$(cat "$RO/file")"
assert_exit 0 mm shell "$A" sh -c 'test -f /etc/rofile && cat /etc/rofile'
assert_eq "file bind onto a missing destination (created as a file)" rofile "$MM_STDOUT"
assert_exit 1 mm shell "$A" sh -c 'echo x > /etc/rofile'
assert_exit 0 mm shell "$A" cat /evil/target/file /evil2/target2/file
assert_eq "binds through guest symlinks work inside the guest" "hello
hello" "$MM_STDOUT"
assert_eq "guest symlinks did not redirect a bind onto the host" "" "$(ls -A "$MM_TMP/escape")"
assert_true "destinations created inside the image instead" \
        test -d "$MM_IMAGES/$A/$MM_TMP/escape/target" -a -d "$MM_IMAGES/$A/$MM_TMP/escape/target2"
assert_exit 0 mm terminate "$A"
assert_true "machine gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$A' ]"
assert_no_leftovers "$A"
assert_eq "no bind left mounted on the host" "" \
        "$(awk -v s="$SRC" '$4 == s || index($5, s) == 1' /proc/self/mountinfo)"

# A symlink whose target is missing in the guest: the start fails (StartFailed) and nothing reaches the host.
rm -rf "$MM_IMAGES/$A/${MM_TMP#/}"
assert_exit 1 mm start "$A" --no-boot --command="sleep 100000" --bind="$SRC:/evil/target"
assert_contains "StartFailed names the destination" "$MM_STDERR" "/evil/target"
assert_eq "dangling guest symlink did not redirect the bind onto the host" "" "$(ls -A "$MM_TMP/escape")"
assert_no_leftovers "$A"

# A missing source: InvalidArgument (exit 2) naming it, and nothing created.
B=$(mm_name nosrc)
mm_busybox_image "$B"
assert_exit 2 mm start "$B" --no-boot --command="sleep 100000" --bind=/nonexistent/src:/x
assert_contains "error names the missing source" "$MM_STDERR" "/nonexistent/src"
assert_exit 1 mm_machine_listed "$B"
assert_no_leftovers "$B"
mm_settings "$B" "[Files]
BindReadOnly=/nonexistent/other"
assert_exit 2 mm start "$B" --no-boot --command="sleep 100000"
assert_contains "settings-file bind source checked too" "$MM_STDERR" "/nonexistent/other"
assert_no_leftovers "$B"

# Bind from the settings file.
mm_settings "$B" "[Files]
BindReadOnly=$SRC:/srv"
assert_exit 0 mm start "$B" --no-boot --command="sleep 100000"
assert_exit 0 mm shell "$B" cat /srv/file
assert_eq "BindReadOnly= from the settings file" hello "$MM_STDOUT"
assert_exit 1 mm shell "$B" sh -c 'echo x > /srv/file'
assert_exit 0 mm terminate "$B"
assert_true "machine gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$B' ]"

# ReadOnly=: the root refuses writes, /run (tmpfs) does not.
C=$(mm_name ro)
mm_busybox_image "$C"
assert_exit 0 mm start "$C" --no-boot --command="sleep 100000" --read-only
assert_exit 1 mm shell "$C" sh -c 'echo x > /written'
assert_contains "--read-only root refuses writes" "$MM_STDERR" "Read-only file system"
assert_exit 0 mm shell "$C" sh -c 'echo x > /run/written'
assert_exit 0 mm terminate "$C"
assert_true "machine gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$C' ]"
mm_settings "$C" "[Files]
ReadOnly=yes"
assert_exit 0 mm start "$C" --no-boot --command="sleep 100000"
assert_exit 1 mm shell "$C" sh -c 'echo x > /written'
assert_contains "ReadOnly=yes from the settings file" "$MM_STDERR" "Read-only file system"
assert_true "nothing written to the image" test ! -e "$MM_IMAGES/$C/written"
assert_exit 0 mm terminate "$C"
assert_true "machine gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$C' ]"

cleanup_files
HOSTSUB=
RO=
mm_finish
