#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Ephemeral=: the guest writes to an overlayfs whose upper layer is a tmpfs in its own mount namespace.
# The image must be bit-for-bit unchanged afterwards, however the guest ended, and nothing may be left.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start

# Metadata of every entry (path, mode, size, mtime, owner, symlink target) and every file's content.
tree_sum() {
        (
                cd "$1"
                find . -printf '%p %m %s %T@ %U:%G %l\n' | LC_ALL=C sort
                find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
        ) | sha256sum
}

gone() {
        mm_wait_for 20 sh -c "! [ -e '$MM_RUN/machines/$1' ]"
}

E=$(mm_name eph)
mm_busybox_image "$E"
before=$(tree_sum "$MM_IMAGES/$E")
images_before=$(ls -A "$MM_IMAGES")

assert_exit 0 mm start "$E" --ephemeral --no-boot \
        --command="sh -c 'echo hi > /newfile && rm /bin/ls && echo x >> /etc/passwd && mkdir /newdir && sleep 100000'"
assert_true "payload wrote its files" mm_wait_for 10 mm shell "$E" test -e /newdir
assert_exit 0 mm shell "$E" cat /newfile
assert_eq "guest sees its own writes" hi "$MM_STDOUT"
assert_exit 1 mm shell "$E" test -e /bin/ls
assert_exit 0 mm shell "$E" sh -c 'mount | grep " on / "'
assert_contains "root is an overlay" "$MM_STDOUT" overlay
assert_eq "image untouched while running" "$before" "$(tree_sum "$MM_IMAGES/$E")"
assert_exit 0 mm terminate "$E"
assert_true "machine gone" gone "$E"
assert_eq "image unchanged after the ephemeral run" "$before" "$(tree_sum "$MM_IMAGES/$E")"
assert_eq "nothing new in the image directory" "$images_before" "$(ls -A "$MM_IMAGES")"
assert_no_leftovers "$E"

# The payload's own exit and a fresh start: the previous run's writes are gone.
assert_exit 0 mm start "$E" --ephemeral --no-boot --wait --command="sh -c 'test ! -e /newfile && test -e /bin/ls'"
assert_eq "image unchanged" "$before" "$(tree_sum "$MM_IMAGES/$E")"

# Across a SIGKILL of the daemon: re-adopted, then terminated; still nothing written or left.
mm_settings "$E" "[Files]
Ephemeral=yes"
assert_exit 0 mm start "$E" --no-boot --command="sh -c 'echo hi > /newfile && sleep 100000'"
assert_true "payload wrote its file" mm_wait_for 10 mm shell "$E" test -e /newfile
mm_daemon_kill9
mm_daemon_start
assert_true "re-adopted" mm_machine_listed "$E"
assert_exit 0 mm shell "$E" cat /newfile
assert_eq "Ephemeral=yes from the settings file, overlay survives the daemon" hi "$MM_STDOUT"
assert_exit 0 mm terminate "$E"
assert_true "machine gone" gone "$E"
rm -f "$MM_IMAGES/$E.machine"
assert_eq "image unchanged after re-adoption" "$before" "$(tree_sum "$MM_IMAGES/$E")"
assert_no_leftovers "$E"

# A read-only (immutable) image still runs ephemeral, writable.
assert_exit 0 mm read-only "$E" yes
assert_exit 0 mm start "$E" --ephemeral --no-boot --wait --command="sh -c 'echo x > /top && rm /etc/passwd'"
assert_exit 0 mm read-only "$E" no
assert_eq "read-only image unchanged" "$before" "$(tree_sum "$MM_IMAGES/$E")"
assert_no_leftovers "$E"

# Debian with systemd: boots to READY on the overlay; the image stays as it was.
D=$(mm_name deb)
if mm_debian_image "$D" >/dev/null 2>&1; then
        dbefore=$(tree_sum "$MM_IMAGES/$D")
        assert_exit 0 mm start "$D" --ephemeral --wait
        assert_exit 0 mm show "$D" -p State
        assert_eq "Debian ephemeral reached READY" State=running "$MM_STDOUT"
        assert_exit 0 mm shell "$D" sh -c 'touch /etc/eph-canary && apt-get --version >/dev/null'
        assert_exit 0 mm poweroff "$D" --wait
        assert_true "machine gone" gone "$D"
        assert_eq "Debian image unchanged by an ephemeral boot" "$dbefore" "$(tree_sum "$MM_IMAGES/$D")"
        assert_no_leftovers "$D"

        # ReadOnly=: systemd still reaches READY (documented: /tmp is the image's, read-only).
        assert_exit 0 mm start "$D" --read-only --wait
        assert_exit 1 mm shell "$D" touch /etc/ro-canary
        assert_exit 0 mm shell "$D" touch /run/ro-ok
        assert_exit 0 mm poweroff "$D" --wait
        assert_true "machine gone" gone "$D"
        assert_eq "Debian image unchanged by a read-only boot" "$dbefore" "$(tree_sum "$MM_IMAGES/$D")"
        assert_no_leftovers "$D"
else
        echo "# no Debian image (mkimage-debian failed): Debian part skipped"
fi

mm_finish
