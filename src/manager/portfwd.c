/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "portfwd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* What one direction may hold in its pipe: the default pipe size, so a splice into it never blocks. */
#define PUMP_CAP (64 * 1024)
/* Bytes one direction of a connection moves per dispatch (two pipe-fulls, well under a millisecond):
 * then the loop serves everyone else, and the sockets, level-triggered, bring the connection back in
 * the next iteration. Without it a reader as fast as the writer kept the loop for a whole transfer. */
#define PUMP_DISPATCH_BUDGET (128 * 1024)
/* A guest that never answers must not let a client pile up fds in the daemon without bound. */
#define CONNECTIONS_MAX 256
/* … nor may one client address take all of them: the 33rd connection from one address (one /64 for
 * IPv6, where a client has that many addresses) is closed at once. Above what one browser or NAT'ed
 * office opens at a time, far below the port's 256. */
#define CONNECTIONS_PER_SOURCE_MAX 32
/* Connections accepted per dispatch of a listening socket; the rest wait for the next iteration. */
#define ACCEPT_BATCH 32
#define USEC_PER_SEC 1000000ULL
/* A connection that moves no byte either way for this long is closed: it frees the slot of a client
 * that went away without a word (no FIN, no RST) and of one stalled by a peer that never reads. Long-
 * lived quiet sessions (ssh) keep it alive with application keepalives (ServerAliveInterval).
 * MACHINEMGR_TCP_IDLE_SEC overrides it (tests). */
#define PORTFWD_TCP_IDLE_USEC (10 * 60 * USEC_PER_SEC)
/* A guest that never completes the handshake (a full accept queue drops SYNs, a firewall) must not hold
 * slots for the kernel's two minutes of SYN retries: three tries (1 + 2 + 4 s) fit in 10 s.
 * MACHINEMGR_TCP_CONNECT_SEC overrides it (tests). */
#define PORTFWD_TCP_CONNECT_USEC (10 * USEC_PER_SEC)
/* Datagrams handled per wakeup of one socket, and the bytes they may add up to: a busy flow must not
 * starve the rest of the loop. */
#define UDP_BATCH 32
#define UDP_BATCH_BYTES (256 * 1024)
/* When the flows are all taken, a client address with this many flows (client ports) already replaces
 * its own least recently used flow, never another client's. Soft state: while there is room one address
 * may have them all (a NAT'ed network), and an evicted flow comes back with its next datagram. */
#define UDP_FLOWS_PER_SOURCE_MAX 32
/* Refused connections are logged at most once per this interval per forwarder, with their count. */
#define REFUSED_LOG_INTERVAL_USEC (60 * USEC_PER_SEC)

typedef union SockaddrUnion {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
} SockaddrUnion;

typedef struct Pump {
        int pipe[2];
        size_t pending; /* bytes in the pipe */
        bool eof;       /* source read end reached */
        bool done;      /* everything forwarded and the destination shut down for writing */
} Pump;

typedef struct Connection Connection;
struct Connection {
        PortForwarder *owner;
        SockaddrUnion peer; /* the client */
        int fd[2];          /* 0: the accepted client, 1: the guest side */
        sd_event_source *source[2];
        sd_event_source *timer; /* connect timeout, then idle timeout */
        uint64_t last_active;   /* CLOCK_MONOTONIC µs: created, or the last byte moved */
        Pump pump[2];           /* pump[i] moves fd[i] -> fd[1 - i] */
        bool connected;
        Connection *next;
};

/* One UDP client (address and port) talking to the guest through a socket of its own. */
typedef struct Flow Flow;
struct Flow {
        PortForwarder *owner;
        int host_index; /* which of owner->listen_fd the client's datagrams arrive on */
        SockaddrUnion client;
        socklen_t client_len;
        /* The address the client sent to, so that replies come from it (on a host with several
         * addresses the routing table might otherwise pick another one, which the client would drop). */
        union {
                struct in_pktinfo in;
                struct in6_pktinfo in6;
        } local;
        bool have_local;
        int fd; /* connected to the guest, in its netns */
        sd_event_source *source, *timer;
        uint64_t last_used; /* CLOCK_MONOTONIC µs */
        Flow *next;         /* most recently used first */
};

struct PortForwarder {
        sd_event *event;
        int protocol;
        uint16_t port;
        int listen_fd[2]; /* IPv4, IPv6: listening (TCP) or bound (UDP) */
        sd_event_source *listen_source[2];
        PortForwardOpen open_target;
        void *userdata;
        Connection *connections;
        unsigned n_connections;
        uint64_t tcp_idle_usec, tcp_connect_usec;
        unsigned n_refused;         /* connections refused since the last log line about it */
        uint64_t refused_logged;    /* CLOCK_MONOTONIC µs of that line */
        Flow *flows;
        unsigned n_flows;
        uint64_t idle_usec;
        bool open_failed; /* the last flow could not be opened: logged once until one opens again */
};

/* The same client for the per-source limits: one IPv4 address, or one IPv6 /64. */
static bool same_source(const SockaddrUnion *a, const SockaddrUnion *b)
{
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        if (a->sa.sa_family == AF_INET)
                return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 8) == 0;
}

static uint64_t event_now(sd_event *e)
{
        uint64_t now;
        if (sd_event_now(e, CLOCK_MONOTONIC, &now) < 0)
                now = now_usec(CLOCK_MONOTONIC);
        return now;
}

static void connection_free(Connection *c)
{
        for (Connection **p = &c->owner->connections; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        c->owner->n_connections--;
        sd_event_source_disable_unref(c->timer);
        for (int i = 0; i < 2; i++) {
                sd_event_source_disable_unref(c->source[i]);
                safe_close(c->fd[i]);
                safe_close(c->pump[i].pipe[0]);
                safe_close(c->pump[i].pipe[1]);
        }
        free(c);
}

/* Moves what can be moved now without blocking, up to the dispatch budget; marks the connection active
 * when a byte moved. */
static int pump_run(Connection *c, Pump *p, int from, int to)
{
        size_t moved = 0;
        while (moved < PUMP_DISPATCH_BUDGET) {
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
                                moved += (size_t)n;
                                progress = true;
                        } else if (n < 0 && errno != EAGAIN && errno != EINTR)
                                return -errno;
                }
                if (!progress)
                        break;
        }
        if (moved > 0)
                c->last_active = event_now(c->owner->event);
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

static uint64_t connection_deadline(Connection *c)
{
        return c->last_active + (c->connected ? c->owner->tcp_idle_usec : c->owner->tcp_connect_usec);
}

/* Re-armed lazily: traffic only updates last_active, the timer moves when it fires too early. */
static int connection_on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Connection *c = userdata;
        uint64_t deadline = connection_deadline(c);
        if (usec < deadline && sd_event_source_set_time(s, deadline) >= 0 &&
            sd_event_source_set_enabled(s, SD_EVENT_ONESHOT) >= 0)
                return 0;
        log_debug("Port %u: closing a connection: %s", c->owner->port,
                  c->connected ? "idle" : "the guest did not accept it in time");
        connection_free(c);
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
        /* From the connect timeout to the idle timeout, which may be the shorter one. */
        c->last_active = event_now(c->owner->event);
        return sd_event_source_set_time(c->timer, connection_deadline(c));
}

static int connection_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Connection *c = userdata;
        int r = 0;

        if (!c->connected)
                r = connection_start_pumps(c);
        for (int i = 0; r >= 0 && i < 2; i++)
                r = pump_run(c, &c->pump[i], c->fd[i], c->fd[1 - i]);
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

static int connection_new(PortForwarder *f, int client_fd, const SockaddrUnion *peer)
{
        Connection *c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(client_fd);
                return -ENOMEM;
        }
        *c = (Connection){.owner = f, .peer = *peer, .fd = {client_fd, -1},
                          .pump = {{.pipe = {-1, -1}}, {.pipe = {-1, -1}}}, .last_active = event_now(f->event)};
        c->next = f->connections;
        f->connections = c;
        f->n_connections++;

        int r = c->fd[1] = f->open_target(SOCK_STREAM, f->userdata);
        if (r >= 0)
                r = sd_event_add_io(f->event, &c->source[1], c->fd[1], EPOLLOUT, connection_on_io, c);
        if (r >= 0)
                r = sd_event_add_io(f->event, &c->source[0], c->fd[0], 0, connection_on_io, c);
        if (r >= 0)
                /* Nothing to read from the client before the guest side is connected. */
                r = sd_event_source_set_enabled(c->source[0], SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(f->event, &c->timer, CLOCK_MONOTONIC, connection_deadline(c), USEC_PER_SEC,
                                      connection_on_timer, c);
        if (r < 0)
                connection_free(c);
        return r;
}

static unsigned connections_from(PortForwarder *f, const SockaddrUnion *peer)
{
        unsigned n = 0;
        for (Connection *c = f->connections; c; c = c->next)
                n += same_source(&c->peer, peer);
        return n;
}

/* Closed with a reset: the client learns at once, and no TIME_WAIT is left on our side. */
static void connection_refuse(PortForwarder *f, int fd, const SockaddrUnion *peer)
{
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        safe_close(fd);

        f->n_refused++;
        uint64_t now = event_now(f->event);
        if (f->refused_logged != 0 && now < f->refused_logged + REFUSED_LOG_INTERVAL_USEC)
                return;
        char addr[INET6_ADDRSTRLEN] = "?";
        (void)inet_ntop(peer->sa.sa_family,
                        peer->sa.sa_family == AF_INET ? (const void *)&peer->in.sin_addr : (const void *)&peer->in6.sin6_addr,
                        addr, sizeof addr);
        log_warning("Port %u: refused %u connection(s), the last from %s: at most %u per port and %u per client address.",
                    f->port, f->n_refused, addr, CONNECTIONS_MAX, CONNECTIONS_PER_SOURCE_MAX);
        f->n_refused = 0;
        f->refused_logged = now;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        PortForwarder *f = userdata;
        /* Level-triggered: what is left in the accept queue comes back in the next iteration. */
        for (unsigned k = 0; k < ACCEPT_BATCH; k++) {
                SockaddrUnion peer = {};
                socklen_t len = sizeof peer;
                int cfd = accept4(fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning_errno(-errno, "Port %u: accept: %m", f->port);
                        return 0;
                }
                if (f->n_connections >= CONNECTIONS_MAX ||
                    connections_from(f, &peer) >= CONNECTIONS_PER_SOURCE_MAX) {
                        connection_refuse(f, cfd, &peer);
                        continue;
                }
                int r = connection_new(f, cfd, &peer);
                if (r < 0)
                        log_warning_errno(r, "Port %u: connect to the guest: %m", f->port);
        }
        return 0;
}

/* ---- UDP ---- */

/* One buffer for every datagram: the daemon is single-threaded and each one is passed on at once. */
static uint8_t datagram[65536];

static void flow_free(Flow *fl)
{
        for (Flow **p = &fl->owner->flows; *p; p = &(*p)->next)
                if (*p == fl) {
                        *p = fl->next;
                        break;
                }
        fl->owner->n_flows--;
        sd_event_source_disable_unref(fl->source);
        sd_event_source_disable_unref(fl->timer);
        safe_close(fl->fd);
        free(fl);
}

static void flow_touch(Flow *fl)
{
        (void)sd_event_now(fl->owner->event, CLOCK_MONOTONIC, &fl->last_used);
}

/* Re-armed lazily: traffic only updates last_used, the timer moves when it fires too early. */
static int flow_on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Flow *fl = userdata;
        uint64_t deadline = fl->last_used + fl->owner->idle_usec;
        if (usec < deadline && sd_event_source_set_time(s, deadline) >= 0 &&
            sd_event_source_set_enabled(s, SD_EVENT_ONESHOT) >= 0)
                return 0;
        flow_free(fl);
        return 0;
}

static bool flow_matches(const Flow *fl, int host_index, const SockaddrUnion *client, socklen_t len)
{
        return fl->host_index == host_index && fl->client_len == len && memcmp(&fl->client, client, len) == 0;
}

/* The destination address of a received datagram, from its IP_PKTINFO / IPV6_PKTINFO message. */
static void flow_set_local(Flow *fl, struct msghdr *mh)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
                    c->cmsg_len == CMSG_LEN(sizeof(struct in_pktinfo))) {
                        memcpy(&fl->local.in, CMSG_DATA(c), sizeof fl->local.in);
                        fl->have_local = true;
                } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                           c->cmsg_len == CMSG_LEN(sizeof(struct in6_pktinfo))) {
                        memcpy(&fl->local.in6, CMSG_DATA(c), sizeof fl->local.in6);
                        fl->have_local = true;
                }
        }
}

/* A reply from the guest goes to the flow's client, from the address the client sent to. */
static int flow_send_to_client(Flow *fl, size_t len)
{
        union {
                struct cmsghdr align;
                uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        } control = {};
        struct iovec iov = {.iov_base = datagram, .iov_len = len};
        struct msghdr mh = {.msg_name = &fl->client, .msg_namelen = fl->client_len, .msg_iov = &iov,
                            .msg_iovlen = 1};
        if (fl->have_local) {
                bool v4 = fl->client.sa.sa_family == AF_INET;
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(v4 ? sizeof(struct in_pktinfo) : sizeof(struct in6_pktinfo));
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                if (v4) {
                        /* ipi_spec_dst is the source to use; the interface is the routing table's. */
                        struct in_pktinfo pi = {.ipi_spec_dst = fl->local.in.ipi_addr};
                        *c = (struct cmsghdr){.cmsg_level = IPPROTO_IP, .cmsg_type = IP_PKTINFO,
                                              .cmsg_len = CMSG_LEN(sizeof pi)};
                        memcpy(CMSG_DATA(c), &pi, sizeof pi);
                } else {
                        /* The interface too: a link-local address means nothing without it. */
                        *c = (struct cmsghdr){.cmsg_level = IPPROTO_IPV6, .cmsg_type = IPV6_PKTINFO,
                                              .cmsg_len = CMSG_LEN(sizeof fl->local.in6)};
                        memcpy(CMSG_DATA(c), &fl->local.in6, sizeof fl->local.in6);
                }
        }
        int fd = fl->owner->listen_fd[fl->host_index];
        if (sendmsg(fd, &mh, MSG_DONTWAIT) >= 0)
                return 0;
        /* A client that sent to a broadcast address cannot be answered from it: let routing choose. */
        if (errno == EINVAL && mh.msg_control) {
                mh.msg_control = NULL;
                mh.msg_controllen = 0;
                if (sendmsg(fd, &mh, MSG_DONTWAIT) >= 0)
                        return 0;
        }
        return -errno;
}

static int flow_on_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Flow *fl = userdata;
        size_t bytes = 0;
        for (int k = 0; k < UDP_BATCH && bytes < UDP_BATCH_BYTES; k++) {
                ssize_t n = recv(fd, datagram, sizeof datagram, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        /* ICMP errors from the guest (nothing listening yet, …) are the guest's business:
                         * UDP has no way to pass them on, and the flow stays usable. */
                        if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
                                continue;
                        log_full_errno(LOG_DEBUG, -errno, "Port udp:%u: receive from the guest: %m", fl->owner->port);
                        break;
                }
                flow_touch(fl);
                bytes += (size_t)n;
                int r = flow_send_to_client(fl, (size_t)n);
                /* A full socket buffer drops the datagram, as any UDP hop may. */
                if (r < 0 && r != -EAGAIN)
                        log_full_errno(LOG_DEBUG, r, "Port udp:%u: send a reply to a client: %m", fl->owner->port);
        }
        return 0;
}

static int flow_new(PortForwarder *f, int host_index, const SockaddrUnion *client, socklen_t len, Flow **ret)
{
        /* The guest side first: a guest that cannot be reached must not cost another client its flow. */
        _cleanup_close_ int fd = f->open_target(SOCK_DGRAM, f->userdata);
        if (fd < 0)
                return fd;
        if (f->n_flows >= PORTFWD_UDP_FLOWS_MAX) {
                /* Full: a client address with many flows (ports) already makes room from its own, the
                 * least recently used of them, so it cannot push out other clients; anyone else takes
                 * the least recently used flow of all (the last one). */
                Flow *own_last = NULL, *last = NULL;
                unsigned own = 0;
                for (Flow *fl = f->flows; fl; fl = fl->next) {
                        if (same_source(&fl->client, client)) {
                                own++;
                                own_last = fl;
                        }
                        last = fl;
                }
                flow_free(own >= UDP_FLOWS_PER_SOURCE_MAX ? own_last : last);
        }
        Flow *fl = calloc(1, sizeof *fl);
        if (!fl)
                return -ENOMEM;
        *fl = (Flow){.owner = f, .host_index = host_index, .client_len = len, .fd = TAKE_FD(fd)};
        memcpy(&fl->client, client, len);
        fl->next = f->flows;
        f->flows = fl;
        f->n_flows++;
        flow_touch(fl);

        int r = sd_event_add_io(f->event, &fl->source, fl->fd, EPOLLIN, flow_on_reply, fl);
        if (r >= 0)
                r = sd_event_add_time(f->event, &fl->timer, CLOCK_MONOTONIC, fl->last_used + f->idle_usec,
                                      USEC_PER_SEC, flow_on_timer, fl);
        if (r < 0) {
                flow_free(fl);
                return r;
        }
        *ret = fl;
        return 0;
}

/* The flow of this client, moved to the front (most recently used), or a new one. */
static int flow_get(PortForwarder *f, int host_index, const SockaddrUnion *client, socklen_t len, Flow **ret)
{
        for (Flow **p = &f->flows; *p; p = &(*p)->next)
                if (flow_matches(*p, host_index, client, len)) {
                        Flow *fl = *p;
                        *p = fl->next;
                        fl->next = f->flows;
                        f->flows = fl;
                        flow_touch(fl);
                        *ret = fl;
                        return 0;
                }
        return flow_new(f, host_index, client, len, ret);
}

static int on_datagram(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        PortForwarder *f = userdata;
        int host_index = fd == f->listen_fd[0] ? 0 : 1;
        size_t bytes = 0;
        for (int k = 0; k < UDP_BATCH && bytes < UDP_BATCH_BYTES; k++) {
                union {
                        struct cmsghdr align;
                        uint8_t buf[CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
                } control;
                SockaddrUnion client = {};
                struct iovec iov = {.iov_base = datagram, .iov_len = sizeof datagram};
                struct msghdr mh = {.msg_name = &client, .msg_namelen = sizeof client, .msg_iov = &iov,
                                    .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
                ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warning_errno(-errno, "Port udp:%u: receive: %m", f->port);
                        return 0;
                }
                bytes += (size_t)n;
                Flow *fl = NULL;
                int r = flow_get(f, host_index, &client, mh.msg_namelen, &fl);
                if (r < 0) {
                        /* Every datagram of a client would fail the same way: one line until it works. */
                        if (!f->open_failed)
                                log_warning_errno(r, "Port udp:%u: open a flow to the guest: %m", f->port);
                        f->open_failed = true;
                        continue;
                }
                f->open_failed = false;
                flow_set_local(fl, &mh);
                ssize_t w = send(fl->fd, datagram, (size_t)n, MSG_DONTWAIT);
                /* A pending ICMP error of an earlier datagram is reported instead of sending this one. */
                if (w < 0 && errno == ECONNREFUSED)
                        w = send(fl->fd, datagram, (size_t)n, MSG_DONTWAIT);
                if (w < 0 && errno != EAGAIN && errno != ECONNREFUSED)
                        log_full_errno(LOG_DEBUG, -errno, "Port udp:%u: send to the guest: %m", f->port);
        }
        return 0;
}

/* A timeout from the daemon's environment (for tests), else the default. */
static uint64_t env_timeout_usec(const char *name, uint64_t def)
{
        const char *e = getenv(name);
        unsigned sec;
        if (e && safe_atou(e, &sec) >= 0 && sec > 0)
                return (uint64_t)sec * USEC_PER_SEC;
        return def;
}

/* ---- sockets on the host side ---- */

static int listen_on(int protocol, int family, uint16_t port)
{
        bool udp = protocol == IPPROTO_UDP;
        _cleanup_close_ int fd = socket(family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                        protocol);
        int one = 1;
        if (fd < 0)
                return -errno;
        /* TCP: rebinding while old connections sit in TIME_WAIT. Never for UDP, where it would let a
         * second socket share the port and silently take half of the datagrams. */
        if (!udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return -errno;
        if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
                return -errno;
        if (udp && setsockopt(fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
                              family == AF_INET ? IP_PKTINFO : IPV6_RECVPKTINFO, &one, sizeof one) < 0)
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
        if (bind(fd, (struct sockaddr *)&sa, len) < 0 || (!udp && listen(fd, SOMAXCONN) < 0))
                return -errno;
        return TAKE_FD(fd);
}

int portfwd_new(sd_event *event, int protocol, uint16_t host_port, PortForwardOpen open_target, void *userdata,
                PortForwarder **ret)
{
        if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
                return -EPROTONOSUPPORT;
        PortForwarder *f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        *f = (PortForwarder){.event = sd_event_ref(event), .protocol = protocol, .port = host_port,
                             .listen_fd = {-1, -1}, .open_target = open_target, .userdata = userdata,
                             .idle_usec = env_timeout_usec("MACHINEMGR_UDP_IDLE_SEC", PORTFWD_UDP_IDLE_USEC),
                             .tcp_idle_usec = env_timeout_usec("MACHINEMGR_TCP_IDLE_SEC", PORTFWD_TCP_IDLE_USEC),
                             .tcp_connect_usec = env_timeout_usec("MACHINEMGR_TCP_CONNECT_SEC",
                                                                  PORTFWD_TCP_CONNECT_USEC)};

        static const int families[2] = {AF_INET, AF_INET6};
        int r = 0;
        for (int i = 0; r >= 0 && i < 2; i++) {
                r = f->listen_fd[i] = listen_on(protocol, families[i], host_port);
                /* A host without IPv6 still forwards IPv4. */
                if (r == -EAFNOSUPPORT && families[i] == AF_INET6) {
                        f->listen_fd[i] = -1;
                        r = 0;
                        continue;
                }
                if (r >= 0)
                        r = sd_event_add_io(event, &f->listen_source[i], f->listen_fd[i], EPOLLIN,
                                            protocol == IPPROTO_UDP ? on_datagram : on_accept, f);
        }
        if (r < 0) {
                portfwd_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

void portfwd_drop_flows(PortForwarder *f)
{
        while (f->flows)
                flow_free(f->flows);
}

PortForwarder *portfwd_free(PortForwarder *f)
{
        if (!f)
                return NULL;
        while (f->connections)
                connection_free(f->connections);
        portfwd_drop_flows(f);
        for (int i = 0; i < 2; i++) {
                sd_event_source_disable_unref(f->listen_source[i]);
                safe_close(f->listen_fd[i]);
        }
        sd_event_unref(f->event);
        free(f);
        return NULL;
}
