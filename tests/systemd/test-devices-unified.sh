#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-devices.sh on a test host booted with cgroup2 only and bpf(2) allowed
# (meson.build passes SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 and
# --system-call-filter=bpf to the harness), where the host's systemd must
# enforce the policy with BPF. A script of its own so that the harness keeps
# its logs apart from the hybrid run's.
export MM_EXPECT_ENFORCEMENT=bpf
exec /bin/bash "$MM_TESTS_DIR/test-devices.sh" "$@"
