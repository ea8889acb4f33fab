/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The private socket RUNTIME_DIR/private: direct sd-bus connections, no bus daemon needed, so the CLI and
 * `busctl --address=unix:path=…` work on hosts without a system bus. */
#include <inttypes.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "log.h"
#include "manager.h"
#include "util.h"

/* What a peer that does not read can make us hold is bounded twice. In the kernel: sd-bus raises the
 * socket's send buffer to 8 MiB (16 MiB of skbs, not counted in our RSS), which we lower again to
 * PRIVATE_SNDBUF (larger messages are written in parts, as sd-bus does anyway). In sd-bus: it queues without end (up to 384k
 * messages) once the socket is full; past PRIVATE_WQUEUE_MAX queued messages the peer is disconnected.
 * Unsolicited output is our signals (the largest, a PropertiesChanged with a StatusText of at most
 * 1 KiB, is under 2 KiB); replies come one per request. So a peer that stops reading costs about 1 MiB
 * of kernel memory and at most a few MiB of ours, while one that falls behind during a burst (200
 * machines starting at once emit about 1000 signals) is not cut off. sd-bus counts messages, not bytes. */
#define PRIVATE_SNDBUF (256 * 1024)
#define PRIVATE_WQUEUE_MAX 1024u

PrivateConnection *bus_private_connection_free(PrivateConnection *c)
{
        if (!c)
                return NULL;
        for (PrivateConnection **p = &c->manager->connections; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        sd_event_source_disable_unref(c->demote_source);
        sd_event_source_disable_unref(c->drop_source);
        /* Never sd_bus_flush(): it waits without a timeout for a peer that does not read (and for one that
         * never finished its handshake), and the daemon has one thread. What is still queued is lost. */
        sd_bus_close_unref(c->bus);
        free(c);
        return NULL;
}

static int on_drop(sd_event_source *s, void *userdata)
{
        bus_private_connection_free(userdata);
        return 0;
}

bool bus_private_connection_check(PrivateConnection *c)
{
        uint64_t n = 0;
        if (c->drop_source)
                return false;
        if (sd_bus_get_n_queued_write(c->bus, &n) < 0 || n <= PRIVATE_WQUEUE_MAX)
                return true;
        struct ucred peer = { .pid = 0, .uid = (uid_t)-1 };
        socklen_t len = sizeof peer;
        (void)getsockopt(sd_bus_get_fd(c->bus), SOL_SOCKET, SO_PEERCRED, &peer, &len);
        log_warning("Disconnecting private bus client (PID %d, UID %u): %" PRIu64 " messages queued that it "
                    "does not read (limit %u).",
                    (int)peer.pid, (unsigned)peer.uid, n, PRIVATE_WQUEUE_MAX);
        /* Not here: we may be inside this connection's own dispatch, whose callbacks hold c. */
        int r = sd_event_add_defer(c->manager->event, &c->drop_source, on_drop, c);
        if (r >= 0)
                r = sd_event_source_set_priority(c->drop_source, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0) {
                log_warning_errno(r, "Schedule the disconnect: %m (closing at once)");
                c->drop_source = sd_event_source_disable_unref(c->drop_source);
                bus_private_connection_free(c);
        }
        return false;
}

/* A new connection is served before everything else until its first message. Its authentication takes
 * several round trips, and sd-bus gives up on it (on both ends) after 90 s: in a burst of 200 starts on a
 * host saturated by booting guests, connections that waited their turn behind the starts queued before
 * them timed out ("Transport endpoint is not connected") before the daemon ever saw their request. */
#define PRIORITY_HANDSHAKE SD_EVENT_PRIORITY_IMPORTANT

static int on_demote(sd_event_source *s, void *userdata)
{
        PrivateConnection *c = userdata;
        c->demote_source = sd_event_source_disable_unref(c->demote_source);
        int r = sd_bus_detach_event(c->bus);
        if (r >= 0)
                r = sd_bus_attach_event(c->bus, c->manager->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                log_warning_errno(r, "Reattach private connection: %m");
                bus_private_connection_free(c);
        }
        return 0;
}

static int on_disconnected(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        bus_private_connection_free(userdata);
        return 0;
}

/* busctl (and other bus clients) say Hello first even on a direct connection; a bus daemon would answer
 * with a unique name, so we do too. */
static int method_hello(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        PrivateConnection *c = userdata;
        char name[32];
        snprintf(name, sizeof name, ":1.%u", ++c->manager->connection_counter);
        return sd_bus_reply_method_return(message, "s", name);
}

static int method_add_match(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        /* Direct connections get every signal anyway; accept match rules so bus-minded clients work. */
        return sd_bus_reply_method_return(message, NULL);
}

static const sd_bus_vtable dbus_driver_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Hello", "", "s", method_hello, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("AddMatch", "s", "", method_add_match, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("RemoveMatch", "s", "", method_add_match, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int on_any_message(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        PrivateConnection *c = userdata;
        /* Not from inside the bus's own dispatch: detaching it there would pull its sources from under it. */
        if (!c->spoke && !c->demote_source &&
            sd_event_add_defer(c->manager->event, &c->demote_source, on_demote, c) < 0)
                log_warning("Private connection stays at handshake priority.");
        c->spoke = true;
        /* Each request adds at most one reply: a peer that sends and never reads is caught here. */
        (void)bus_private_connection_check(c);
        return 0; /* not handled: dispatch goes on */
}

static int private_connection_setup(PrivateConnection *c, int fd)
{
        Manager *m = c->manager;
        sd_id128_t id;
        int r = sd_id128_randomize(&id);
        if (r < 0)
                return r;
        if ((r = sd_bus_new(&c->bus)) < 0 || (r = sd_bus_set_fd(c->bus, fd, fd)) < 0)
                return r;
        /* Else sd-bus flushes it when the loop exits, waiting for ever for a peer that does not read. */
        if ((r = sd_bus_set_close_on_exit(c->bus, 0)) < 0)
                return r;
        if ((r = sd_bus_set_server(c->bus, 1, id)) < 0 || (r = sd_bus_negotiate_fds(c->bus, 1)) < 0 ||
            (r = sd_bus_negotiate_creds(c->bus, 1, SD_BUS_CREDS_PID | SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID)) < 0)
                return r;
        r = sd_bus_add_object_vtable(c->bus, NULL, "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     dbus_driver_vtable, c);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(c->bus, NULL, "org.freedesktop.DBus.Local", NULL, "org.freedesktop.DBus.Local",
                                "Disconnected", on_disconnected, c);
        if (r < 0)
                return r;
        if ((r = sd_bus_add_filter(c->bus, NULL, on_any_message, c)) < 0)
                return r;
        if ((r = manager_bus_add_objects(m, c->bus)) < 0)
                return r;
        if ((r = sd_bus_start(c->bus)) < 0)
                return r;
        /* After sd_bus_start(), which raised it. */
        int sndbuf = PRIVATE_SNDBUF;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) < 0)
                return -errno;
        return sd_bus_attach_event(c->bus, m->event, PRIORITY_HANDSHAKE);
}

static void private_accept_one(Manager *m, int nfd)
{
        PrivateConnection *c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(nfd);
                return;
        }
        c->manager = m;
        c->next = m->connections;
        m->connections = c;
        int r = private_connection_setup(c, nfd);
        if (r < 0) {
                log_warning_errno(r, "Set up private connection: %m");
                if (!c->bus)
                        safe_close(nfd);
                bus_private_connection_free(c);
        }
}

/* Every waiting connection at once: their handshakes then run before the requests already queued. */
static int on_private_connection(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        for (;;) {
                int nfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (nfd < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warning_errno(errno, "accept on private socket: %m");
                        if (errno != EINTR)
                                return 0;
                        continue;
                }
                private_accept_one(userdata, nfd);
        }
}

int bus_private_listen(Manager *m)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/private", m->runtime_dir) >= sizeof sa.sun_path)
                return log_error_errno(ENAMETOOLONG, "Private socket path too long");

        m->private_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (m->private_fd < 0)
                return log_error_errno(errno, "socket: %m");
        (void)unlink(sa.sun_path);
        if (bind(m->private_fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return log_error_errno(errno, "bind %s: %m", sa.sun_path);
        /* Anyone may connect and read; the daemon checks the caller's uid on every change. */
        if (chmod(sa.sun_path, 0666) < 0)
                return log_error_errno(errno, "chmod %s: %m", sa.sun_path);
        if (listen(m->private_fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "listen %s: %m", sa.sun_path);
        int r = sd_event_add_io(m->event, &m->private_source, m->private_fd, EPOLLIN, on_private_connection, m);
        if (r >= 0)
                r = sd_event_source_set_priority(m->private_source, PRIORITY_HANDSHAKE);
        if (r < 0)
                return log_error_errno(r, "Watch private socket: %m");
        return 0;
}

int bus_check_root(sd_bus_message *msg, sd_bus_error *error)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        int r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r >= 0)
                r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot determine the caller's credentials: %m");
        if (uid != 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "Only root may change machines (caller's uid is not 0).");
        return 0;
}
