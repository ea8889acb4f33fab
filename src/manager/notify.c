/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notify.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "log.h"
#include "util.h"

#define NOTIFY_DATAGRAM_MAX 4096

struct Notify {
        int fd;
        sd_event_source *source;
        notify_handler_t handler;
        void *userdata;
};

static void notify_dispatch_line(Notify *n, char *line)
{
        char *eq = strchr(line, '=');
        if (!eq || eq == line)
                return;
        *eq = 0;
        n->handler(line, eq + 1, n->userdata);
}

static int notify_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Notify *n = userdata;
        char buf[NOTIFY_DATAGRAM_MAX + 1];

        for (;;) {
                ssize_t k = recv(fd, buf, NOTIFY_DATAGRAM_MAX, MSG_DONTWAIT | MSG_TRUNC);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        log_warning_errno(errno, "read notify socket: %m");
                        return 0;
                }
                if (k > NOTIFY_DATAGRAM_MAX) /* truncated: not worth guessing what it meant */
                        continue;
                buf[k] = 0;
                char *save = NULL;
                for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        notify_dispatch_line(n, line);
        }
}

int notify_new(sd_event *e, const char *dir, notify_handler_t handler, void *userdata, Notify **ret)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", dir) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;

        Notify *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        n->handler = handler;
        n->userdata = userdata;
        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (n->fd < 0) {
                int r = -errno;
                notify_free(n);
                return r;
        }
        /* A socket left by a previous daemon instance is dead: replace it at the same path, which the
         * guest sees through its /run/host bind mount. */
        (void)unlink(sa.sun_path);
        int r = 0;
        if (bind(n->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                r = -errno;
        /* Guest services running as other users may notify too (systemd's own NotifyAccess rules apply
         * inside the guest; here only the guest can reach the directory). */
        if (r == 0 && chmod(sa.sun_path, 0777) < 0)
                r = -errno;
        if (r == 0)
                r = sd_event_add_io(e, &n->source, n->fd, EPOLLIN, notify_on_io, n);
        if (r < 0) {
                notify_free(n);
                return r;
        }
        *ret = n;
        return 0;
}

Notify *notify_free(Notify *n)
{
        if (!n)
                return NULL;
        sd_event_source_disable_unref(n->source);
        safe_close(n->fd);
        free(n);
        return NULL;
}
