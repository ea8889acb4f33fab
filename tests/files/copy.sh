#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# copy-to / copy-from a running guest: files and trees round-trip with owners, modes and times; bad
# paths get the SPEC's exit codes; guest symlinks (to /, to ../.., to /etc) never make the daemon read
# or write outside the guest's root.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start

F=$(mm_name copy)
mm_start_busybox "$F" >/dev/null
IMG=$MM_IMAGES/$F
H=$MM_TMP/host
mkdir -p "$H/tree/sub" "$H/tree/empty"
echo hello >"$H/file"
chown 1234:5678 "$H/file"
chmod 0640 "$H/file"
touch -d '2001-02-03 04:05:06' "$H/file"
echo a >"$H/tree/a"
echo b >"$H/tree/sub/b"
chmod 0700 "$H/tree/sub"
ln -s a "$H/tree/link"
mkfifo "$H/tree/fifo"

meta() { stat -c '%a %u %g %Y %s' "$@"; }

# copy-to: a file and a tree.
assert_exit 0 mm copy-to "$F" "$H/file" /root/file
assert_exit 0 mm shell "$F" cat /root/file
assert_eq "copy-to: content" hello "$MM_STDOUT"
assert_eq "copy-to: owner, mode, mtime" "$(meta "$H/file")" "$(meta "$IMG/root/file")"
assert_exit 0 mm copy-to "$F" "$H/tree" /root/tree
assert_exit 0 mm shell "$F" cat /root/tree/sub/b
assert_eq "copy-to: tree content" b "$MM_STDOUT"
assert_eq "copy-to: symlink kept" a "$(readlink "$IMG/root/tree/link")"
assert_true "copy-to: fifo kept" test -p "$IMG/root/tree/fifo"
assert_eq "copy-to: directory mode" 700 "$(stat -c %a "$IMG/root/tree/sub")"
# A relative host path, the same guest path by default, and "DIR/" as a destination.
assert_exit 0 sh -c "cd '$H' && MACHINEMGR_ADDRESS='unix:path=$MM_RUN/private' '$MM_BUILD_ROOT/tools/machinemgr' copy-to '$F' file /tmp/"
assert_true "copy-to: into DIR/" test -f "$IMG/tmp/file"

# copy-from: round trip.
assert_exit 0 mm copy-from "$F" /root/tree "$MM_TMP/back"
# diff calls two fifos different; they are checked apart.
assert_exit 0 diff -r --no-dereference -x fifo "$H/tree" "$MM_TMP/back"
assert_eq "copy-from: tree round trip" "" "$MM_STDOUT"
assert_true "copy-from: fifo round trip" test -p "$MM_TMP/back/fifo"
assert_eq "copy-from: directory metadata" "$(meta "$H/tree/sub")" "$(meta "$MM_TMP/back/sub")"
assert_exit 0 mm copy-from "$F" /root/file "$MM_TMP/backfile"
assert_eq "copy-from: file metadata" "$(meta "$H/file")" "$(meta "$MM_TMP/backfile")"
mkdir "$MM_TMP/into"
assert_exit 0 mm copy-from "$F" /root/file "$MM_TMP/into"
assert_true "copy-from: into an existing host directory" cmp -s "$H/file" "$MM_TMP/into/file"

# Errors: missing source (2), existing destination (2), relative guest path (2), no such machine (3).
assert_exit 2 mm copy-to "$F" "$H/nonexistent" /root/x
assert_contains "missing host source named" "$MM_STDERR" "$H/nonexistent"
assert_exit 2 mm copy-from "$F" /nonexistent "$MM_TMP/x"
assert_contains "missing guest source named" "$MM_STDERR" "/nonexistent"
assert_exit 2 mm copy-to "$F" "$H/file" /root/file
assert_contains "existing destination refused" "$MM_STDERR" "exists"
assert_exit 2 mm copy-to "$F" "$H/file" /no/such/dir/file
assert_exit 2 mm copy-to "$F" "$H/file" relative/path
assert_exit 3 mm copy-to "$(mm_name nosuch)" "$H/file" /root/x
assert_exit 3 mm copy-from "$(mm_name nosuch)" /etc/passwd "$MM_TMP/x"

# Escapes. Host canaries; guest symlinks to /, ../../.., /etc and a host-looking absolute path.
CANARY=$MM_TMP/canary
mkdir -p "$CANARY"
echo secret >"$CANARY/secret"
canary_before=$(ls -la --time-style=full-iso "$CANARY"; cat "$CANARY/secret")
assert_exit 0 mm shell "$F" sh -c "ln -s / /evil && ln -s ../../../../../.. /evil2 && ln -s /etc /evil3 &&
        mkdir -p /root/evtree && ln -s / /root/evtree/out && ln -s '$CANARY/secret' /root/evtree/abs"

assert_exit 2 mm copy-to "$F" "$H/file" "/evil$CANARY/planted"
assert_exit 2 mm copy-to "$F" "$H/file" "/evil2$CANARY/planted"
assert_exit 2 mm copy-to "$F" "$H/file" "/evil2$CANARY/secret"
assert_eq "copy-to through guest symlinks did not touch the host" "$canary_before" \
        "$(ls -la --time-style=full-iso "$CANARY"; cat "$CANARY/secret")"
assert_exit 0 mm copy-to "$F" "$H/file" /evil2/planted
assert_true "../.. symlink resolved at the guest's root" test -f "$IMG/planted"
assert_true "... and not at the host's" test ! -e /planted
assert_exit 0 mm copy-to "$F" "$H/file" /evil3/planted-etc
assert_true "/etc symlink resolved in the guest" test -f "$IMG/etc/planted-etc"
assert_true "... not on the host" test ! -e /etc/planted-etc

assert_exit 2 mm copy-from "$F" "/evil$CANARY/secret" "$MM_TMP/stolen"
assert_exit 2 mm copy-from "$F" "/evil2$CANARY/secret" "$MM_TMP/stolen"
assert_exit 2 mm copy-from "$F" "/root/evtree/abs" "$MM_TMP/stolen"
assert_true "copy-from through guest symlinks read nothing of the host" test ! -e "$MM_TMP/stolen"
assert_exit 0 mm copy-from "$F" /evil2/etc/passwd "$MM_TMP/passwd"
assert_true "copy-from /evil2/etc/passwd is the guest's file" cmp -s "$IMG/etc/passwd" "$MM_TMP/passwd"
assert_exit 0 mm copy-from "$F" /root/evtree "$MM_TMP/evtree"
assert_true "symlinks inside a copied tree stay symlinks" test -L "$MM_TMP/evtree/out" -a -L "$MM_TMP/evtree/abs"
assert_eq "nothing of the host copied through them" "out abs" \
        "$(cd "$MM_TMP/evtree" && find . -mindepth 1 -printf '%P ' | xargs -n1 | sort -r | xargs)"

assert_exit 0 mm terminate "$F"
assert_true "machine gone" mm_wait_for 10 sh -c "! [ -e '$MM_RUN/machines/$F' ]"
rm -f /planted /etc/planted-etc 2>/dev/null || true
mm_finish
