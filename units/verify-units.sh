#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Check the unit files with `systemd-analyze verify` and the policy with xmllint-free
# sanity checks. Usage: verify-units.sh BUILD_UNITS_DIR SOURCE_UNITS_DIR
set -euo pipefail

build_dir="${1:?build dir}"
src_dir="${2:?source dir}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# verify checks that ExecStart= binaries exist; the configured paths point at the
# install location, which need not exist on the build machine, so point them at
# stand-ins of the same name under the temp dir.
prepare_units() {
        mkdir -p "$tmp/units" "$tmp/bin"
        cp "$build_dir/machinemgrd.service" "$build_dir/machinemgr@.service" \
                "$src_dir/machinemgr.target" "$tmp/units/"
        local exe
        for exe in machinemgrd machinemgr; do
                ln -s /bin/true "$tmp/bin/$exe"
        done
        sed -i -E "s#^ExecStart=[^ ]*/(machinemgrd?)( |\$)#ExecStart=$tmp/bin/\\1\\2#" \
                "$tmp/units/machinemgrd.service" "$tmp/units/machinemgr@.service"
        # A template is verified through an instance of it.
        ln -s "machinemgr@.service" "$tmp/units/machinemgr@verify.service"
}

# Fail on any message about our files (warnings included): unknown keys,
# bad values, missing dependencies. Messages about other units are noise.
verify() {
        local out rc=0
        out="$(cd "$tmp/units" && SYSTEMD_LOG_LEVEL=info systemd-analyze verify --man=no \
                machinemgrd.service machinemgr@verify.service machinemgr.target 2>&1)" || rc=$?
        printf '%s\n' "$out"
        if [[ $rc -ne 0 ]] || grep -E 'machinemgr' <<<"$out" | grep -qv '^$'; then
                echo "FAIL: systemd-analyze verify reported problems" >&2
                return 1
        fi
        echo "ok: systemd-analyze verify"
}

check_activation_file() {
        local f="$src_dir/org.machinemgr1.service"
        grep -qx 'Name=org.machinemgr1' "$f"
        grep -qx 'SystemdService=machinemgrd.service' "$f"
        grep -qx 'BusName=org.machinemgr1' "$build_dir/machinemgrd.service"
        echo "ok: activation file names org.machinemgr1 / machinemgrd.service"
}

check_policy() {
        local f="$src_dir/org.machinemgr1.conf"
        grep -q '<allow own="org.machinemgr1"/>' "$f"
        # The policy must be well-formed XML, or dbus-daemon ignores it (python3 is at hand).
        python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$f"
        echo "ok: policy is well-formed"
}

prepare_units
verify
check_activation_file
check_policy
