/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "portfwd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* What one direction may hold in its pipe: the default pipe size, so a splice into it never blocks. */
#define PUMP_CAP (64 * 1024)
/* A guest that never answers must not let a client pile up fds in the daemon without bound. */
#define CONNECTIONS_MAX 256

typedef struct Pump {
        int pipe[2];
        size_t pending; /* bytes in the pipe */
        bool eof;       /* source read end reached */
        bool done;      /* everything forwarded and the destination shut down for writing */
} Pump;

typedef struct Connection Connection;
struct Connection {
        PortForwarder *owner;
        int fd[2]; /* 0: the accepted client, 1: the guest side */
        sd_event_source *source[2];
        Pump pump[2]; /* pump[i] moves fd[i] -> fd[1 - i] */
        bool connected;
        Connection *next;
};

struct PortForwarder {
        sd_event *event;
        uint16_t port;
        int listen_fd[2]; /* IPv4, IPv6 */
        sd_event_source *listen_source[2];
        PortForwardOpen open_target;
        void *userdata;
        Connection *connections;
        unsigned n_connections;
};

static void connection_free(Connection *c)
{
        for (Connection **p = &c->owner->connections; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        c->owner->n_connections--;
        for (int i = 0; i < 2; i++) {
                sd_event_source_disable_unref(c->source[i]);
                safe_close(c->fd[i]);
                safe_close(c->pump[i].pipe[0]);
                safe_close(c->pump[i].pipe[1]);
        }
        free(c);
}

/* Moves what can be moved now without blocking. */
static int pump_run(Pump *p, int from, int to)
{
        for (;;) {
                bool progress = false;
                if (!p->eof && p->pending < PUMP_CAP) {
                        ssize_t n = splice(from, NULL, p->pipe[1], NULL, PUMP_CAP - p->pending,
                                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                        if (n > 0)
                                p->pending += (size_t)n;
                        else if (n == 0)
                                p->eof = true;
                        else if (errno != EAGAIN && errno != EINTR)
                                return -errno;
                        progress = n >= 0;
                }
                if (p->pending > 0) {
                        ssize_t n = splice(p->pipe[0], NULL, to, NULL, p->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                        if (n > 0) {
                                p->pending -= (size_t)n;
                                progress = true;
                        } else if (n < 0 && errno != EAGAIN && errno != EINTR)
                                return -errno;
                }
                if (!progress)
                        break;
        }
        if (p->eof && p->pending == 0 && !p->done) {
                /* Half-close: the other side learns that this direction is finished. */
                (void)shutdown(to, SHUT_WR);
                p->done = true;
        }
        return 0;
}

/* Level-triggered interest per socket; a socket with nothing to wait for is disabled, or its HUP would
 * wake the loop forever. */
static int connection_update_events(Connection *c)
{
        for (int i = 0; i < 2; i++) {
                uint32_t events = 0;
                if (!c->pump[i].eof && c->pump[i].pending < PUMP_CAP)
                        events |= EPOLLIN;
                if (c->pump[1 - i].pending > 0)
                        events |= EPOLLOUT;
                int r = events ? sd_event_source_set_io_events(c->source[i], events) : 0;
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->source[i], events ? SD_EVENT_ON : SD_EVENT_OFF);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int connection_start_pumps(Connection *c)
{
        int error = 0;
        socklen_t len = sizeof error;
        if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                return -errno;
        if (error != 0)
                return -error;
        for (int i = 0; i < 2; i++)
                if (pipe2(c->pump[i].pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                        return -errno;
        c->connected = true;
        return 0;
}

static int connection_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Connection *c = userdata;
        int r = 0;

        if (!c->connected)
                r = connection_start_pumps(c);
        for (int i = 0; r >= 0 && i < 2; i++)
                r = pump_run(&c->pump[i], c->fd[i], c->fd[1 - i]);
        if (r >= 0 && c->pump[0].done && c->pump[1].done)
                r = 1;
        if (r == 0)
                r = connection_update_events(c);
        if (r != 0) {
                /* Resets and refused connections are the peers' business: not worth a log line each. */
                if (r < 0 && r != -ECONNRESET && r != -EPIPE && r != -ECONNREFUSED)
                        log_warning_errno(r, "Port %u: forwarding a connection: %m", c->owner->port);
                connection_free(c);
        }
        return 0;
}

static int connection_new(PortForwarder *f, int client_fd)
{
        Connection *c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(client_fd);
                return -ENOMEM;
        }
        *c = (Connection){.owner = f, .fd = {client_fd, -1}, .pump = {{.pipe = {-1, -1}}, {.pipe = {-1, -1}}}};
        c->next = f->connections;
        f->connections = c;
        f->n_connections++;

        int r = c->fd[1] = f->open_target(f->userdata);
        if (r >= 0)
                r = sd_event_add_io(f->event, &c->source[1], c->fd[1], EPOLLOUT, connection_on_io, c);
        if (r >= 0)
                r = sd_event_add_io(f->event, &c->source[0], c->fd[0], 0, connection_on_io, c);
        if (r >= 0)
                /* Nothing to read from the client before the guest side is connected. */
                r = sd_event_source_set_enabled(c->source[0], SD_EVENT_OFF);
        if (r < 0)
                connection_free(c);
        return r;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        PortForwarder *f = userdata;
        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning_errno(-errno, "Port %u: accept: %m", f->port);
                        return 0;
                }
                if (f->n_connections >= CONNECTIONS_MAX) {
                        safe_close(cfd);
                        continue;
                }
                int r = connection_new(f, cfd);
                if (r < 0)
                        log_warning_errno(r, "Port %u: connect to the guest: %m", f->port);
        }
}

static int listen_on(int family, uint16_t port)
{
        _cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        int one = 1;
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return -errno;
        if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
                return -errno;

        union {
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t len;
        if (family == AF_INET) {
                sa.in = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port),
                                             .sin_addr.s_addr = htonl(INADDR_ANY)};
                len = sizeof sa.in;
        } else {
                sa.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(port),
                                               .sin6_addr = in6addr_any};
                len = sizeof sa.in6;
        }
        if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, SOMAXCONN) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int portfwd_new(sd_event *event, uint16_t host_port, PortForwardOpen open_target, void *userdata,
                PortForwarder **ret)
{
        PortForwarder *f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        *f = (PortForwarder){.event = sd_event_ref(event), .port = host_port, .listen_fd = {-1, -1},
                             .open_target = open_target, .userdata = userdata};

        static const int families[2] = {AF_INET, AF_INET6};
        int r = 0;
        for (int i = 0; r >= 0 && i < 2; i++) {
                r = f->listen_fd[i] = listen_on(families[i], host_port);
                /* A host without IPv6 still forwards IPv4. */
                if (r == -EAFNOSUPPORT && families[i] == AF_INET6) {
                        f->listen_fd[i] = -1;
                        r = 0;
                        continue;
                }
                if (r >= 0)
                        r = sd_event_add_io(event, &f->listen_source[i], f->listen_fd[i], EPOLLIN, on_accept, f);
        }
        if (r < 0) {
                portfwd_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

PortForwarder *portfwd_free(PortForwarder *f)
{
        if (!f)
                return NULL;
        while (f->connections)
                connection_free(f->connections);
        for (int i = 0; i < 2; i++) {
                sd_event_source_disable_unref(f->listen_source[i]);
                safe_close(f->listen_fd[i]);
        }
        sd_event_unref(f->event);
        free(f);
        return NULL;
}
