#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# tools/mkimage-busybox makes a usable rootfs fast; tools/mkimage-debian's cache key and help.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

[[ $EUID -eq 0 ]] || mm_skip "needs root (chroot)"
MM_TMP=$(mktemp -d /var/tmp/mmimg.XXXXXX)
trap 'rm -rf --one-file-system "$MM_TMP"' EXIT
BB=$MM_SOURCE_ROOT/tools/mkimage-busybox
DEB=$MM_SOURCE_ROOT/tools/mkimage-debian

test_busybox() {
        local d=$MM_TMP/bb start end
        start=$(date +%s%N)
        assert_exit 0 "$BB" "$d"
        end=$(date +%s%N)
        assert_true "busybox image in under 2 s" test $(((end - start) / 1000000)) -lt 2000
        local a
        for a in sh ls cat echo sleep hostname ps mount id true false dd head tail yes seq kill; do
                [[ -L "$d/bin/$a" ]] || _mm_fail "applet link /bin/$a missing"
        done
        _mm_ok "applet links present"
        assert_eq "no /sbin/init (not bootable)" no "$([[ -e $d/sbin/init ]] && echo yes || echo no)"
        assert_contains "os-release" "$(cat "$d/etc/os-release")" "ID=busybox"
        assert_contains "passwd has root" "$(cat "$d/etc/passwd")" "root:x:0:0:"
        assert_contains "group has root" "$(cat "$d/etc/group")" "root:x:0:"
        local x
        for x in proc sys dev run tmp; do
                assert_eq "/$x is an empty dir" "" "$(ls -A "$d/$x")"
        done
        assert_eq "runs in a chroot" "uid=0(root) gid=0(root) 3" \
                "$(chroot "$d" /bin/sh -c 'echo $(id) $(seq 3 | tail -n 1)')"
        assert_exit 1 "$BB" "$d"
        assert_contains "refuses a non-empty dir" "$MM_STDERR" "not empty"
        assert_exit 0 "$BB" --help
        assert_contains "busybox --help" "$MM_STDOUT" "Usage:"
}

test_debian_cli() {
        local a b c
        assert_exit 0 "$DEB" --help
        assert_contains "debian --help mentions the cache" "$MM_STDOUT" "/var/cache/machinemgr/images"
        a=$("$DEB" --print-cache)
        b=$("$DEB" --print-cache --include=less,jq)
        c=$("$DEB" --print-cache --include=jq --include=less,jq)
        assert_ne "extra packages change the recipe" "$a" "$b"
        assert_eq "package order and duplicates do not" "$b" "$c"
        assert_exit 2 "$DEB"
}

test_busybox
test_debian_cli
echo "$MM_PASSED passed, $MM_FAILED failed"
[[ "$MM_FAILED" -eq 0 ]]
