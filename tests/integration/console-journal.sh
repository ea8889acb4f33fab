#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Console lines end up in the journal with MACHINEMGR_MACHINE=NAME and are shown by `logs NAME`.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

mm_setup
declare -F journald_ensure >/dev/null || mm_skip "tests/console/journald.sh missing"
journald_ensure || mm_skip "no journal available"
mm_daemon_start
A=$(mm_name con)
mm_busybox_image "$A"
MARK="mark-$$-$RANDOM"

assert_exit 0 mm start "$A" --no-boot --wait \
        --command="sh -c 'echo line1-$MARK; echo line2-$MARK; printf partial-$MARK'"

journal_has() {
        journalctl --no-pager -o cat "MACHINEMGR_MACHINE=$A" 2>/dev/null | grep -qF -- "$1"
}
assert_true "line 1 in the journal by MACHINEMGR_MACHINE=" mm_wait_for 10 journal_has "line1-$MARK"
assert_true "line 2 in the journal" mm_wait_for 5 journal_has "line2-$MARK"
assert_true "a partial last line is flushed too" mm_wait_for 5 journal_has "partial-$MARK"
fields=$(journalctl --no-pager -o export "MACHINEMGR_MACHINE=$A" 2>/dev/null | grep -a -E '^(PRIORITY|SYSLOG_IDENTIFIER)=' | sort -u || true)
assert_contains "SYSLOG_IDENTIFIER is the machine name" "$fields" "SYSLOG_IDENTIFIER=$A"
assert_contains "PRIORITY=6" "$fields" "PRIORITY=6"

assert_exit 0 mm logs "$A"
assert_contains "logs shows the console" "$MM_STDOUT" "line1-$MARK"
assert_contains "logs shows line 2" "$MM_STDOUT" "line2-$MARK"
assert_exit 0 mm logs "$A" -n 1
assert_not_contains "logs -n 1 shows only the last entries" "$MM_STDOUT" "line1-$MARK"

mm_finish
