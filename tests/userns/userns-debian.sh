#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The acceptance criterion of PrivateUsers=pick: a Debian systemd guest boots to READY=1 in its own
# user namespace, systemd reaches running (or degraded, with the failed units printed), its services
# run as the range's uids on the host, and what it writes to the image has normal ownership.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
mm_daemon_start
D=$(mm_name deb)
mm_debian_image "$D"

assert_exit 0 mm start "$D" --private-users=pick --wait
LEADER=$(mm_leader "$D" || true)
base=$(awk '{print $2}' "/proc/${LEADER:-0}/uid_map" 2>/dev/null || true)
assert_true "init's uid on the host is the range's base ($base)" \
        test "$(awk '/^Uid:/ {print $2}' "/proc/${LEADER:-0}/status")" = "$base" -a "${base:-0}" -ge 524288

rc=0
state=$(mm shell "$D" systemctl is-system-running --wait 2>&1) || rc=$?
if [[ "$state" == degraded ]]; then
        echo "# degraded; failed units:" >&2
        mm shell "$D" systemctl --failed --no-legend >&2 || true
        mm shell "$D" journalctl -b -p warning --no-pager >&2 || true
fi
assert_true "systemd in the guest is running or degraded (got '$state', rc $rc)" \
        test "$state" = running -o "$state" = degraded
assert_exit 0 mm shell "$D" sh -c 'id -u; stat -c %u /etc/shadow'
assert_eq "root inside, image files owned by 0" $'0\n0' "$MM_STDOUT"

assert_exit 0 mm poweroff "$D" --wait
assert_true "leader gone after poweroff" mm_wait_for 10 mm_pid_gone "$LEADER"
assert_eq "the guest wrote nothing owned by a shifted uid into the image" "" \
        "$(find "$MM_IMAGES/$D" -xdev -uid +65535 -print -quit)"
assert_eq "the range is released" "" "$(ls "$MM_RUN/userns" 2>/dev/null)"
assert_no_leftovers "$D"

mm_finish
