#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs one libFuzzer target for a bounded time on a scratch copy of its seed corpus, so that new
# inputs never land in the source tree; any crash, leak or timeout makes libFuzzer exit non-zero.
# usage: run-fuzz.sh FUZZER SEED_DIR WORK_DIR SECONDS
set -eu
fuzzer=$1 seeds=$2 work=$3 seconds=$4

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
dict=$(dirname "$0")/$(basename "$fuzzer").dict
[ -f "$dict" ] && set -- -dict="$dict" || set --
exec "$fuzzer" "$work/corpus" -max_total_time="$seconds" -timeout=5 -max_len=8192 \
        -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$@"
