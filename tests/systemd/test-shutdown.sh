#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The host's shutdown with containers running: one under machinemgr@NAME.service
# would be the clean path (unit-instance covers it); here a guest started by
# hand is left running, so the shutdown has to stop its machine-NAME.scope
# (KillSignal=SIGRTMIN+4: the guest powers off). The harness powers the host
# off after this script and fails the test if that needs SIGKILL (a hang).
set -euo pipefail
source "$MM_TESTS_DIR/lib-host.sh"

NAME=debian
SCOPE="machine-$NAME.scope"

check "start the guest by hand" start_guest "$NAME"
check_eq "scope is active" active "$(systemctl show -P ActiveState "$SCOPE")"
check_eq "scope stops with the guest's power-off signal" "$(kill -l RTMIN+4)" "$(unit_prop "$SCOPE" KillSignal)"
check_eq "and is bounded" 30s "$(unit_prop "$SCOPE" TimeoutStopUSec)"
note "leaving $NAME running: the harness's host power-off must stop it"

finish
