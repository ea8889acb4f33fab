#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Load (issue 6 §4): MM_LOAD_N (100) busybox containers started concurrently over D-Bus, all listed,
# all stopped, nothing left; the daemon's RSS and PSS per container reported.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

N=${MM_LOAD_N:-100}
mm_setup
mm_daemon_start
names=()
for ((i = 0; i < N; i++)); do
        names+=("$(mm_name "l$i")")
        mm_busybox_image "${names[i]}"
done

mem() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$MM_DAEMON_PID/$2"; }
RSS0=$(mem VmRSS status)
PSS0=$(mem Pss smaps_rollup)
START=$(date +%s%N)
printf '%s\n' "${names[@]}" | xargs -P "$N" -I{} busctl --address="unix:path=$MM_RUN/private" --timeout=120 \
        call org.machinemgr1 /org/machinemgr1 org.machinemgr1.Manager StartMachine 'sa{sv}' {} 2 \
        Boot b false Command as 2 /bin/sleep 1000 >"$MM_TMP/starts" 2>&1 || true
MS=$((($(date +%s%N) - START) / 1000000))
assert_eq "$N StartMachine replies are object paths" "$N" "$(grep -c '^o ' "$MM_TMP/starts" || true)"
assert_exit 0 mm list --no-legend
assert_eq "$N machines listed" "$N" "$(grep -c "^$MM_PREFIX" <<<"$MM_STDOUT" || true)"
RSS1=$(mem VmRSS status)
PSS1=$(mem Pss smaps_rollup)
echo "# $N concurrent starts in $MS ms; daemon RSS $RSS0 -> $RSS1 kB ($(((RSS1 - RSS0) / N)) kB/container), PSS $PSS0 -> $PSS1 kB ($(((PSS1 - PSS0) / N)) kB/container)"
echo "# open fds of the daemon: $(ls /proc/"$MM_DAEMON_PID"/fd | wc -l)"

printf '%s\n' "${names[@]}" | xargs -P "$N" -I{} busctl --address="unix:path=$MM_RUN/private" --timeout=120 \
        call org.machinemgr1 /org/machinemgr1 org.machinemgr1.Manager TerminateMachine s {} >"$MM_TMP/stops" 2>&1 || true
assert_true "all state files gone" mm_wait_for 60 sh -c "[ -z \"\$(ls -A '$MM_RUN/machines')\" ]"
assert_exit 0 mm list --no-legend
assert_eq "nothing listed after stopping all" "" "$MM_STDOUT"
left=$(_mm_leftovers "$MM_PREFIX*")
assert_eq "no leftovers of the $N machines" "" "$left"
echo "# daemon RSS after stopping all: $(mem VmRSS status) kB, fds $(ls /proc/"$MM_DAEMON_PID"/fd | wc -l)"
mm_finish
