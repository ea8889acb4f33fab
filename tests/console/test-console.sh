#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the console test program ($1) against a journald, starting one only if none serves the socket.
set -u
[ "$(id -u)" = 0 ] || { echo "needs root, skipping"; exit 77; }
. "$(dirname "$0")/journald.sh"
trap journald_cleanup EXIT
journald_ensure || exit 77
"$1"
