/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A notification sender for the hostile-guest battery (tests/security/hostile-*.sh), linked statically
 * so that it runs in busybox guests:
 *
 *   guest-notify [-n COUNT] [-s SOCKET] MESSAGE [-- CMD ARGS…]
 *
 * sends MESSAGE as one datagram COUNT times (default 1) to SOCKET (default $NOTIFY_SOCKET, else
 * /run/host/notify; a leading '@' is an abstract address), then execs CMD if given, so that a guest's
 * init can be "exec guest-notify 'READY=1' -- sleep 100000" and stay PID 1 (or chain several:
 * "guest-notify A -- guest-notify B -- sleep 100000"). In MESSAGE, "\n", "\r", "\t", "\\" and "\xHH"
 * (any byte) are escapes, so one datagram can carry several assignments. After a first successful send,
 * errors are counted, not fatal. Sends block while the receiver's queue is full, as a flooding guest's
 * would. Prints on stderr how many were sent. Exit status: 1 if not even one datagram could be sent and
 * no CMD is given. */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void usage(void)
{
        fprintf(stderr, "usage: guest-notify [-n COUNT] [-s SOCKET] MESSAGE [-- CMD ARGS...]\n");
        exit(2);
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes the escapes in place and returns the length: "\xHH" may put any byte (a NUL too) into the
 * datagram, so the result is counted, not terminated. */
static size_t unescape(char *s)
{
        char *w = s;
        for (const char *r = s; *r; r++) {
                if (*r != '\\' || !r[1]) {
                        *w++ = *r;
                        continue;
                }
                switch (*++r) {
                case 'n': *w++ = '\n'; break;
                case 'r': *w++ = '\r'; break;
                case 't': *w++ = '\t'; break;
                case '\\': *w++ = '\\'; break;
                case 'x':
                        if (hex_digit(r[1]) >= 0 && hex_digit(r[2]) >= 0) {
                                *w++ = (char)(hex_digit(r[1]) * 16 + hex_digit(r[2]));
                                r += 2;
                                break;
                        }
                        /* fall through */
                default: *w++ = '\\'; *w++ = *r; break;
                }
        }
        return (size_t)(w - s);
}

int main(int argc, char *argv[])
{
        const char *path = NULL;
        unsigned long count = 1;
        int opt;

        while ((opt = getopt(argc, argv, "+n:s:")) != -1) {
                char *end;
                switch (opt) {
                case 'n':
                        errno = 0;
                        count = strtoul(optarg, &end, 10);
                        if (errno || *end || end == optarg)
                                usage();
                        break;
                case 's': path = optarg; break;
                default: usage();
                }
        }
        if (optind >= argc)
                usage();
        char *msg = argv[optind++];
        char **cmd = NULL;
        if (optind < argc) {
                if (strcmp(argv[optind], "--") != 0 || optind + 1 >= argc)
                        usage();
                cmd = argv + optind + 1;
        }
        if (!path)
                path = getenv("NOTIFY_SOCKET");
        if (!path || !*path)
                path = "/run/host/notify";

        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t plen = strlen(path);
        if (plen >= sizeof sa.sun_path) {
                fprintf(stderr, "guest-notify: socket path too long: %s\n", path);
                return 2;
        }
        memcpy(sa.sun_path, path, plen);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = 0;
        socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] != '@'));
        size_t len = unescape(msg);

        unsigned long sent = 0, failed = 0;
        int last_errno = 0;
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                last_errno = errno;
        for (unsigned long i = 0; fd >= 0 && i < count; i++) {
                if (sendto(fd, msg, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) >= 0) {
                        sent++;
                        continue;
                }
                last_errno = errno;
                failed++;
                if (sent == 0)
                        break;
        }
        if (fd >= 0)
                close(fd);
        fprintf(stderr, "guest-notify: sent %lu of %lu to %s (%lu failed%s%s)\n", sent, count, path, failed,
                last_errno ? ", last: " : "", last_errno ? strerror(last_errno) : "");

        if (cmd) {
                execvp(cmd[0], cmd);
                fprintf(stderr, "guest-notify: exec %s: %s\n", cmd[0], strerror(errno));
                return 127;
        }
        return sent > 0 ? 0 : 1;
}
