#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPEC §5: machinemgr -H [USER@]HOST works over SSH (sd-bus's ssh transport,
# systemd-stdio-bridge on the far side), here to root on loopback.
set -euo pipefail
source "$MM_TESTS_DIR/lib-host.sh"

NAME=debian

setup_ssh() {
        install -d -m 0700 /root/.ssh
        [[ -f /root/.ssh/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519
        cat /root/.ssh/id_ed25519.pub >>/root/.ssh/authorized_keys
        chmod 0600 /root/.ssh/authorized_keys
        printf 'Host 127.0.0.1\n  StrictHostKeyChecking accept-new\n  BatchMode yes\n' >/root/.ssh/config
        systemctl start ssh.service
}

defer mm_force_stop "$NAME"
check "ssh server set up" setup_ssh
check_eventually "ssh root@127.0.0.1 works" 30 ssh root@127.0.0.1 true
check "start the guest locally" start_guest "$NAME"

out="$(timeout 60 machinemgr -H root@127.0.0.1 list 2>&1)" || true
check_match "machinemgr -H root@127.0.0.1 list shows it" "$NAME +running" "$out"
out="$(timeout 60 machinemgr -H root@127.0.0.1 show "$NAME" -p State 2>&1)" || true
check_eq "machinemgr -H … show -p State" "State=running" "$out"
check "machinemgr -H … poweroff --wait" timeout 120 machinemgr -H root@127.0.0.1 poweroff "$NAME" --wait
check_eventually "guest gone" 30 unit_gone "machine-$NAME.scope"

finish
