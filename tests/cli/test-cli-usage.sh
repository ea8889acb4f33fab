#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# machinemgr argument parsing and exit codes: no daemon, no root. Bad usage must exit 2 before any
# bus call; MACHINEMGR_ADDRESS points at a socket that does not exist, so a bus call would exit 1.
set -u
M="$1"
MACHINEMGR_ADDRESS=unix:path=/nonexistent/machinemgr-test
export MACHINEMGR_ADDRESS
failed=0

# expect CODE PATTERN ARGS...: exit status CODE, stderr matching PATTERN (grep -E; "" for any)
expect() {
        code=$1 pattern=$2
        shift 2
        err=$("$M" "$@" 2>&1 >/dev/null)
        rc=$?
        if [ "$rc" -ne "$code" ]; then
                echo "FAIL: machinemgr $*: exit $rc, expected $code ($err)"
                failed=1
        elif [ -n "$pattern" ] && ! printf '%s\n' "$err" | grep -Eq -- "$pattern"; then
                echo "FAIL: machinemgr $*: stderr '$err' does not match '$pattern'"
                failed=1
        else
                echo "ok: machinemgr $* -> $rc"
        fi
}

expect 0 "" --help
expect 0 "" --version
expect 2 "no verb" 
expect 2 "unknown verb 'frobnicate'" frobnicate
expect 2 "unrecognized option" --frobnicate list
expect 2 "bad/name: invalid machine name" start 'bad/name'
expect 2 "invalid machine name" status ..
expect 2 "-x: invalid machine name" status -- -x
expect 2 "missing argument" shell -- /bin/true
expect 2 "invalid machine name" poweroff ok .hidden
expect 2 "invalid value for --memory: 'abc'" start foo --memory=abc
expect 2 "--cpu-quota" start foo --cpu-quota=lots
expect 2 "--tasks-max" start foo --tasks-max=0
expect 2 "--network" start foo --network=wifi
expect 2 "--port" start foo --port=tcp:notaport
expect 2 "--command" start foo '--command=/bin/sh -c "unbalanced'
expect 2 "--setenv" start foo --setenv=NOEQUALS
expect 2 "exactly one machine" start a b --no-boot --wait
expect 2 "--signal" kill foo --signal=NOSUCHSIG
expect 2 "--kill-whom" kill foo --kill-whom=everyone
expect 2 "--output" -o yaml list
expect 2 "too many arguments" list extra
expect 2 "missing argument" status
expect 2 "missing argument" set-limit foo
expect 2 "unknown limit" set-limit foo Bogus=1
expect 2 "invalid value" set-limit foo MemoryMax=lots
expect 1 "failed to connect to unix:path=/nonexistent: " --address=unix:path=/nonexistent list
expect 1 "failed to connect to machinemgrd at unix:path=/nonexistent/machinemgr-test" list
expect 1 "failed to connect" start foo --memory=1G --cpu-quota=150% --tasks-max=100 --port=8080:80 \
        --bind=/tmp:/mnt --setenv=A=b --no-boot --command="/bin/echo 'a b'"
exit $failed
