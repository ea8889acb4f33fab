/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A UDP echo server and client for the port forwarding tests. Static, so it runs in a busybox guest
 * (busybox nc serves one UDP peer only, and the guest has no python or socat).
 *
 *   udp-echo serve PORT              echoes every datagram to its sender, on [::] (IPv4 too)
 *   udp-echo send ADDR PORT TEXT [SRCPORT]
 *                                    sends TEXT from one socket (bound to SRCPORT if given, so that
 *                                    two runs are the same client), prints the reply (2 s timeout)
 *   udp-echo flows ADDR PORT N       sends one datagram from each of N sockets (N client ports), counts
 *                                    the replies and prints that count (all sockets kept open until done)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int serve(const char *port)
{
        int fd = socket(AF_INET6, SOCK_DGRAM, 0), zero = 0;
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port)),
                                  .sin6_addr = in6addr_any};
        if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0 ||
            bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                perror("udp-echo: bind");
                return 1;
        }
        for (;;) {
                char buf[65536];
                struct sockaddr_storage from;
                socklen_t len = sizeof from;
                ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
                if (n < 0 && errno != EINTR) {
                        perror("udp-echo: recvfrom");
                        return 1;
                }
                if (n >= 0)
                        (void)sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
        }
}

/* A socket connected to ADDR:PORT, so only the forwarder's replies reach it. */
static int client(const char *addr, const char *port, const char *src_port)
{
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = in.sin_port};
        struct sockaddr *sa = (struct sockaddr *)&in;
        socklen_t len = sizeof in;
        if (inet_pton(AF_INET6, addr, &in6.sin6_addr) == 1) {
                sa = (struct sockaddr *)&in6;
                len = sizeof in6;
        } else if (inet_pton(AF_INET, addr, &in.sin_addr) != 1) {
                fprintf(stderr, "udp-echo: bad address %s\n", addr);
                exit(2);
        }
        int fd = socket(sa->sa_family, SOCK_DGRAM, 0), one = 1;
        if (fd >= 0 && src_port) {
                struct sockaddr_in6 b6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(src_port))};
                struct sockaddr_in b4 = {.sin_family = AF_INET, .sin_port = b6.sin6_port};
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                if (sa->sa_family == AF_INET6 ? bind(fd, (struct sockaddr *)&b6, sizeof b6)
                                              : bind(fd, (struct sockaddr *)&b4, sizeof b4)) {
                        perror("udp-echo: bind");
                        exit(1);
                }
        }
        if (fd < 0 || connect(fd, sa, len) < 0) {
                perror("udp-echo: connect");
                exit(1);
        }
        return fd;
}

static int send_one(const char *addr, const char *port, const char *text, const char *src_port)
{
        int fd = client(addr, port, src_port);
        char buf[65536];
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (send(fd, text, strlen(text), 0) < 0) {
                perror("udp-echo: send");
                return 1;
        }
        if (poll(&p, 1, 2000) != 1)
                return 1;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0)
                return 1;
        printf("%.*s\n", (int)n, buf);
        return 0;
}

static int flows(const char *addr, const char *port, int n)
{
        int *fds = calloc((size_t)n, sizeof *fds), answered = 0;
        struct pollfd *p = calloc((size_t)n, sizeof *p);
        if (!fds || !p)
                return 1;
        for (int i = 0; i < n; i++) {
                fds[i] = client(addr, port, NULL);
                (void)send(fds[i], "flow", 4, 0);
                p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        }
        /* Until every socket had its reply, or nothing came for a second. */
        while (answered < n && poll(p, (nfds_t)n, 1000) > 0)
                for (int i = 0; i < n; i++)
                        if (p[i].revents & POLLIN) {
                                char buf[16];
                                if (recv(fds[i], buf, sizeof buf, 0) > 0)
                                        answered++;
                                p[i].fd = -1;
                        }
        printf("%d\n", answered);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc == 3 && strcmp(argv[1], "serve") == 0)
                return serve(argv[2]);
        if ((argc == 5 || argc == 6) && strcmp(argv[1], "send") == 0)
                return send_one(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
        if (argc == 5 && strcmp(argv[1], "flows") == 0)
                return flows(argv[2], argv[3], atoi(argv[4]));
        fprintf(stderr, "usage: udp-echo serve PORT | send ADDR PORT TEXT [SRCPORT] | flows ADDR PORT N\n");
        return 2;
}
