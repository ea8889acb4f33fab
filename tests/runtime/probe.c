/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs inside the busybox test guest (no shared libraries there, hence static) and reports what the
 * guest may do that busybox cannot show: "probe keyctl" prints EPERM when the seccomp filter denies it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
        if (argc >= 2 && strcmp(argv[1], "keyctl") == 0) {
                /* KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3): harmless when allowed. */
                long r = syscall(SYS_keyctl, 0, -3, 0);
                printf("%s\n", r < 0 && errno == EPERM ? "EPERM" : r < 0 ? strerror(errno) : "allowed");
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "exit") == 0)
                return atoi(argv[2]);
        fprintf(stderr, "usage: probe keyctl | exit N\n");
        return 2;
}
