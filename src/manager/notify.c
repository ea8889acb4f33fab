/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notify.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "log.h"
#include "util.h"

/* Linux 6.16: with it off, the kernel refuses SCM_RIGHTS to the socket (sendmsg() fails with EPERM). */
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

/* Where SO_PASSRIGHTS is missing, descriptors that came along anyway are received (up to this many; the
 * kernel discards the rest and sets MSG_CTRUNC) and closed at once. */
#define NOTIFY_FDS_MAX 16u
#define NOTIFY_READ_PAUSE_USEC (100 * 1000u)
/* sd-event's default accuracy (250 ms) would stretch the 100 ms intervals. */
#define NOTIFY_TIMER_ACCURACY_USEC (10 * 1000u)
#define USEC_PER_SEC 1000000ull

/* Token bucket in millionths of a token: refilled by the elapsed µs times the rate. */
typedef struct TokenBucket {
        uint64_t rate, burst; /* tokens per second, maximum */
        uint64_t micro;       /* current tokens × 1e6 */
        uint64_t last_usec;
} TokenBucket;

struct Notify {
        int fd;
        sd_event *event;
        sd_event_source *io_source;
        sd_event_source *resume_timer; /* read rate spent: watches the socket again */
        sd_event_source *status_timer; /* the coalesced STATUS= is due */
        notify_handler_t handler;
        void *userdata;
        char *machine; /* for log lines, from the socket's path */
        pid_t sender;

        TokenBucket reads, accepted;

        char status_pending[NOTIFY_STATUS_MAX + 1];
        char status_sent[NOTIFY_STATUS_MAX + 1];
        bool status_dirty, status_ever_sent;
        uint64_t status_sent_usec;

        /* Drops since the last log line about them. */
        unsigned n_foreign, n_suppressed, n_malformed;
        pid_t last_foreign_pid;
        uint64_t log_next_usec;
};

static void bucket_init(TokenBucket *b, uint64_t rate, uint64_t burst)
{
        *b = (TokenBucket){ .rate = rate, .burst = burst, .micro = burst * USEC_PER_SEC };
}

static void bucket_refill(TokenBucket *b, uint64_t now)
{
        uint64_t full = b->burst * USEC_PER_SEC;
        if (now > b->last_usec) {
                uint64_t elapsed = now - b->last_usec;
                /* Compared before multiplying: a bucket idle for hours must not overflow. */
                b->micro = elapsed >= full / b->rate ? full : b->micro + elapsed * b->rate;
                if (b->micro > full)
                        b->micro = full;
        }
        b->last_usec = now;
}

static bool bucket_has(TokenBucket *b, uint64_t now)
{
        bucket_refill(b, now);
        return b->micro >= USEC_PER_SEC;
}

static bool bucket_take(TokenBucket *b, uint64_t now)
{
        if (!bucket_has(b, now))
                return false;
        b->micro -= USEC_PER_SEC;
        return true;
}

static uint64_t notify_now(Notify *n)
{
        uint64_t now;
        if (sd_event_now(n->event, CLOCK_MONOTONIC, &now) < 0)
                now = now_usec(CLOCK_MONOTONIC);
        return now;
}

/* One line for all drops since the last one, so a flood costs one line per interval, not one per datagram. */
static void notify_log_drops(Notify *n, uint64_t now, bool force)
{
        if (n->n_foreign + n->n_suppressed + n->n_malformed == 0 || (!force && now < n->log_next_usec))
                return;
        char foreign[96] = "", suppressed[96] = "", malformed[96] = "";
        if (n->n_foreign > 0)
                snprintf(foreign, sizeof foreign, " %u not from the guest's init (last from PID %d);", n->n_foreign,
                         (int)n->last_foreign_pid);
        if (n->n_suppressed > 0)
                snprintf(suppressed, sizeof suppressed, " %u suppressed (over %u/s, burst %u);", n->n_suppressed,
                         NOTIFY_ACCEPT_RATE, NOTIFY_ACCEPT_BURST);
        if (n->n_malformed > 0)
                snprintf(malformed, sizeof malformed, " %u malformed (oversized, with fds or NUL bytes);",
                         n->n_malformed);
        log_machine_warning_errno(n->machine, 0, "Notifications dropped:%s%s%s", foreign, suppressed, malformed);
        n->n_foreign = n->n_suppressed = n->n_malformed = 0;
        n->log_next_usec = now + NOTIFY_LOG_INTERVAL_USEC;
}

/* UTF-8 sequence length at s (at most avail bytes), or 0 when it is not a valid one. Overlong forms,
 * surrogates, code points above U+10FFFF and non-characters are invalid: sd-bus refuses all of them in a
 * string, and a StatusText it cannot send would fail every GetAll of the machine. */
static size_t utf8_valid_len(const unsigned char *s, size_t avail, uint32_t *ret)
{
        size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || len > avail)
                return 0;
        uint32_t c = len == 1 ? s[0] : len == 2 ? s[0] & 0x1f : len == 3 ? s[0] & 0x0f : s[0] & 0x07;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }
        static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || (c >= 0xfdd0 && c <= 0xfdef) ||
            (c & 0xfffe) == 0xfffe)
                return 0;
        *ret = c;
        return len;
}

/* TEXT as it may be shown anywhere (bus, terminal, state file): at most NOTIFY_STATUS_MAX bytes, never a
 * sequence cut in half, control characters (C0, DEL, C1) and invalid bytes as '?'. */
static void status_sanitize(char dst[static NOTIFY_STATUS_MAX + 1], const char *src)
{
        const unsigned char *s = (const unsigned char *)src;
        size_t avail = strlen(src), out = 0;
        while (avail > 0) {
                uint32_t c = 0;
                size_t len = utf8_valid_len(s, avail, &c);
                bool bad = len == 0 || c < 0x20 || (c >= 0x7f && c < 0xa0);
                size_t step = bad ? 1 : len, emit = bad ? 1 : len;
                if (out + emit > NOTIFY_STATUS_MAX)
                        break;
                if (bad)
                        dst[out] = '?';
                else
                        memcpy(dst + out, s, len);
                out += emit;
                s += step;
                avail -= step;
        }
        dst[out] = 0;
}

static void notify_status_flush(Notify *n, uint64_t now)
{
        if (!n->status_dirty)
                return;
        memcpy(n->status_sent, n->status_pending, sizeof n->status_sent);
        n->status_dirty = false;
        n->status_ever_sent = true;
        n->status_sent_usec = now;
        n->handler("STATUS", n->status_sent, n->userdata);
}

static int notify_on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Notify *n = userdata;
        notify_status_flush(n, notify_now(n));
        return 0;
}

/* The handler sees the first change at once, then at most one per interval: the latest at its end. */
static void notify_status_update(Notify *n, const char *value, uint64_t now)
{
        status_sanitize(n->status_pending, value);
        n->status_dirty = !n->status_ever_sent || !streq(n->status_pending, n->status_sent);
        if (!n->status_dirty)
                return;
        uint64_t due = n->status_sent_usec + NOTIFY_STATUS_INTERVAL_USEC;
        if (!n->status_ever_sent || now >= due) {
                notify_status_flush(n, now);
                return;
        }
        int enabled = SD_EVENT_OFF;
        if (n->status_timer && sd_event_source_get_enabled(n->status_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;
        int r;
        if (!n->status_timer)
                r = sd_event_add_time(n->event, &n->status_timer, CLOCK_MONOTONIC, due, NOTIFY_TIMER_ACCURACY_USEC,
                                      notify_on_status_timer, n);
        else if ((r = sd_event_source_set_time(n->status_timer, due)) >= 0)
                r = sd_event_source_set_enabled(n->status_timer, SD_EVENT_ONESHOT);
        if (r < 0) /* late rather than lost */
                notify_status_flush(n, now);
}

static void notify_dispatch(Notify *n, char *buf, bool status_allowed, uint64_t now)
{
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (streq(line, "READY=1"))
                        n->handler("READY", "1", n->userdata);
                else if (streq(line, "STOPPING=1"))
                        n->handler("STOPPING", "1", n->userdata);
                else if (status_allowed && strncmp(line, "STATUS=", 7) == 0)
                        notify_status_update(n, line + 7, now);
        }
}

/* Closes whatever descriptors came along and returns the sender's credentials, if the kernel gave any. */
static bool notify_scan_control(struct msghdr *mh, struct ucred *ret_cred, bool *ret_fds)
{
        bool have_cred = false;
        *ret_fds = false;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                        continue;
                if (c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int fd;
                                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                                safe_close(fd);
                        }
                        *ret_fds = true;
                } else if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
                        memcpy(ret_cred, CMSG_DATA(c), sizeof *ret_cred);
                        have_cred = true;
                }
        }
        return have_cred;
}

/* 1: a datagram was read (and handled or dropped), 0: the socket is empty. */
static int notify_receive_one(Notify *n, uint64_t now)
{
        char buf[NOTIFY_DATAGRAM_MAX + 1];
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * NOTIFY_FDS_MAX)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = NOTIFY_DATAGRAM_MAX };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof control,
        };
        ssize_t k = recvmsg(n->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
        if (k < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_machine_warning_errno(n->machine, errno, "Read notify socket: %m");
                return 0;
        }

        struct ucred cred = {};
        bool fds;
        bool have_cred = notify_scan_control(&mh, &cred, &fds);
        if (!have_cred || n->sender <= 0 || cred.pid != n->sender) {
                n->n_foreign++;
                n->last_foreign_pid = have_cred ? cred.pid : 0;
                return 1;
        }
        if (fds || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)k > NOTIFY_DATAGRAM_MAX ||
            memchr(buf, 0, (size_t)k)) {
                n->n_malformed++;
                return 1;
        }
        buf[k] = 0;
        bool status_allowed = bucket_take(&n->accepted, now);
        if (!status_allowed)
                n->n_suppressed++;
        notify_dispatch(n, buf, status_allowed, now);
        return 1;
}

static int notify_on_resume(sd_event_source *s, uint64_t usec, void *userdata)
{
        Notify *n = userdata;
        int r = sd_event_source_set_enabled(n->io_source, SD_EVENT_ON);
        if (r < 0)
                log_machine_warning_errno(n->machine, r, "Watch notify socket again: %m");
        return 0;
}

/* Read rate spent: the socket's queue fills and the guest's senders wait, at no cost to us. */
static void notify_pause(Notify *n, uint64_t now)
{
        uint64_t when = now + NOTIFY_READ_PAUSE_USEC;
        int r;
        if (!n->resume_timer)
                r = sd_event_add_time(n->event, &n->resume_timer, CLOCK_MONOTONIC, when, NOTIFY_TIMER_ACCURACY_USEC,
                                      notify_on_resume, n);
        else if ((r = sd_event_source_set_time(n->resume_timer, when)) >= 0)
                r = sd_event_source_set_enabled(n->resume_timer, SD_EVENT_ONESHOT);
        if (r >= 0)
                r = sd_event_source_set_enabled(n->io_source, SD_EVENT_OFF);
        if (r < 0) /* still bounded by the per-dispatch budget */
                log_machine_warning_errno(n->machine, r, "Pause notify socket: %m");
}

static int notify_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Notify *n = userdata;
        uint64_t now = notify_now(n);
        /* A budget per iteration: sd-event calls again while the socket stays readable, after the other
         * sources that are pending. */
        for (unsigned i = 0; i < NOTIFY_DISPATCH_BUDGET; i++) {
                if (!bucket_has(&n->reads, now)) {
                        notify_pause(n, now);
                        break;
                }
                if (notify_receive_one(n, now) == 0)
                        break;
                (void)bucket_take(&n->reads, now);
        }
        notify_log_drops(n, now, false);
        return 0;
}

/* "…/host/NAME/notify" → "NAME", for log lines. */
static char *notify_machine_from_socket(int fd)
{
        struct sockaddr_un sa = {};
        socklen_t len = sizeof sa;
        if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || len <= offsetof(struct sockaddr_un, sun_path) ||
            sa.sun_path[0] == 0)
                return strdup("?");
        size_t path_len = (size_t)len - offsetof(struct sockaddr_un, sun_path);
        sa.sun_path[path_len < sizeof sa.sun_path ? path_len : sizeof sa.sun_path - 1] = 0;
        char *slash = strrchr(sa.sun_path, '/');
        if (!slash)
                return strdup("?");
        *slash = 0;
        slash = strrchr(sa.sun_path, '/');
        return strdup(slash ? slash + 1 : sa.sun_path);
}

/* Without SO_PASSCRED the kernel attaches no credentials to what is sent from now on, and we would drop
 * everything; a socket kept from an older daemon may lack it. */
static int notify_setup_socket(int fd)
{
        int one = 1, zero = 0;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
                return -errno;
        /* Best effort: older kernels lack it, and notify_scan_control() closes what comes. */
        (void)setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof zero);
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;
        return 0;
}

int notify_new_from_fd(sd_event *e, int fd, notify_handler_t handler, void *userdata, Notify **ret)
{
        int type = 0;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM) {
                safe_close(fd);
                return -ENOTSOCK;
        }
        Notify *n = calloc(1, sizeof *n);
        if (!n) {
                safe_close(fd);
                return -ENOMEM;
        }
        n->fd = fd;
        n->event = sd_event_ref(e);
        n->handler = handler;
        n->userdata = userdata;
        bucket_init(&n->reads, NOTIFY_READ_RATE, NOTIFY_READ_RATE);
        bucket_init(&n->accepted, NOTIFY_ACCEPT_RATE, NOTIFY_ACCEPT_BURST);
        n->reads.last_usec = n->accepted.last_usec = notify_now(n);
        int r = (n->machine = notify_machine_from_socket(fd)) ? 0 : -ENOMEM;
        if (r >= 0)
                r = notify_setup_socket(fd);
        if (r >= 0)
                r = sd_event_add_io(e, &n->io_source, fd, EPOLLIN, notify_on_io, n);
        if (r < 0) {
                notify_free(n);
                return r;
        }
        *ret = n;
        return 0;
}

int notify_new(sd_event *e, const char *dir, notify_handler_t handler, void *userdata, Notify **ret)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", dir) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* Before the bind: the credentials of a datagram are attached when it is sent, so one that a guest
         * sends before SO_PASSCRED would be dropped (and, kept in the fd store, after a restart too). */
        int r = notify_setup_socket(fd);
        if (r < 0)
                return r;
        /* A socket left by a previous daemon instance is dead: replace it at the same path, which the
         * guest sees through its /run/host bind mount. */
        (void)unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return -errno;
        /* Anyone in the guest may connect; only the sender set by notify_set_sender() is listened to. */
        if (chmod(sa.sun_path, 0777) < 0)
                return -errno;
        return notify_new_from_fd(e, TAKE_FD(fd), handler, userdata, ret);
}

int notify_fd(Notify *n)
{
        return n ? n->fd : -EBADF;
}

void notify_set_sender(Notify *n, pid_t leader)
{
        if (n)
                n->sender = leader;
}

Notify *notify_free(Notify *n)
{
        if (!n)
                return NULL;
        if (n->event)
                notify_log_drops(n, notify_now(n), true);
        sd_event_source_disable_unref(n->io_source);
        sd_event_source_disable_unref(n->resume_timer);
        sd_event_source_disable_unref(n->status_timer);
        sd_event_unref(n->event);
        safe_close(n->fd);
        free(n->machine);
        free(n);
        return NULL;
}
