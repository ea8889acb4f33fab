/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "console.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#include "log.h"
#include "names.h"
#include "util.h"

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL

/* One journal entry per line, up to this many bytes; longer lines are split into several entries.
 * 4 KiB holds any real console line (the kernel's printk records stop at 1 KiB, systemd's status lines
 * and a 4K-column terminal fit too) while a byte flood without newlines still becomes readable entries
 * instead of one unbounded allocation. It is also about what one pty read returns. */
#define CONSOLE_LINE_MAX 4096u
#define CONSOLE_RING_SIZE 64u
/* A prompt ("login: ") never gets a newline: it is logged after this delay. */
#define CONSOLE_PARTIAL_FLUSH_USEC (200 * USEC_PER_MSEC)
#define CONSOLE_PARTIAL_FLUSH_ACCURACY_USEC (50 * USEC_PER_MSEC) /* sd-event's default would be 250 ms */

/* What one guest may put in the journal: each guest gets what journald gives each service by default
 * (RateLimitIntervalSec=30s, RateLimitBurst=10000), which is also what an nspawn container gets, its
 * console being its service's stdout. A booting distribution writes a few hundred lines, a chatty
 * foreground Command= a few lines a second: both fit. The byte bound (average 400 bytes a line) keeps a
 * flood of 4 KiB pieces from writing 40 MiB per interval. Past either, lines are counted, not logged,
 * and one "N console lines suppressed" entry says so when the interval ends. */
#define CONSOLE_RATELIMIT_INTERVAL_USEC (30 * USEC_PER_SEC)
#define CONSOLE_RATELIMIT_LINES 10000u
#define CONSOLE_RATELIMIT_BYTES (4u * 1024 * 1024)

/* Bytes read from one console per dispatch before the loop serves everyone else: a busy console costs
 * other clients at most this much work (well under a millisecond) at a time. */
#define CONSOLE_READ_BUDGET (64u * 1024)
/* A guest over its journal limit is read one budget per this slot (640 KiB/s): what it writes then
 * goes only to attached clients and the status ring, and a flood must not cost the daemon a whole CPU.
 * The guest's writes block meanwhile, as on a slow serial line; nothing is lost. */
#define CONSOLE_PACE_USEC (100 * USEC_PER_MSEC)
/* console_flush() may run while a guest still writes: bounded, so a flood cannot hang us. */
#define CONSOLE_FLUSH_BUDGET (1024u * 1024)
/* What an attached client may fall behind by: its socket's send buffer. Past that it is disconnected;
 * neither the guest nor the journal ever waits for a client. 1 MiB absorbs a terminal that lags during
 * a burst; a client over its limit is fed at the paced rate, which any reader keeps up with. */
#define CONSOLE_CLIENT_BUFFER (1024 * 1024)
/* Without a journal (not started yet, or restarting), reconnecting is tried at most this often. */
#define CONSOLE_JOURNAL_RETRY_USEC (1 * USEC_PER_SEC)

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define MESSAGE_PREFIX "MESSAGE="
#define MESSAGE_PREFIX_LEN (sizeof(MESSAGE_PREFIX) - 1)
/* The fields after MESSAGE, each "NAME=value\n": PRIORITY, MACHINEMGR_MACHINE, SYSLOG_IDENTIFIER,
 * OBJECT_PID. */
#define CONSOLE_FIELDS_MAX (32 + 2 * (32 + MACHINE_NAME_MAX) + 32)

typedef struct ConsoleClient ConsoleClient;
struct ConsoleClient {
        Console *console;
        int fd;
        sd_event_source *source;
        ConsoleClient *next;
};

struct Console {
        sd_event *event;
        char *machine;
        int master_fd;
        char *slave_path;
        pid_t leader;

        sd_event_source *master_source;
        sd_event_source *flush_timer;
        sd_event_source *more_source; /* read budget exhausted: continue on the next loop iteration */
        sd_event_source *pace_timer;  /* over the limit: continue at the next pace slot */
        uint64_t pace_begin;          /* over the limit: the current slot of CONSOLE_PACE_USEC … */
        size_t pace_bytes;            /* … and what was read in it */

        char *field_machine;    /* "MACHINEMGR_MACHINE=NAME" */
        char *field_identifier; /* "SYSLOG_IDENTIFIER=NAME" */
        char field_pid[32];     /* "OBJECT_PID=N" */

        /* Read from the master, not yet cut into lines (the journal was full). */
        char read_buf[CONSOLE_LINE_MAX];
        size_t read_pos, read_end;

        /* "MESSAGE=" followed by the line being assembled; when the line is complete the other fields
         * are appended after it, so the buffer is the whole datagram of the journal's native protocol. */
        char message[MESSAGE_PREFIX_LEN + CONSOLE_LINE_MAX + 1 + CONSOLE_FIELDS_MAX];
        size_t line_len;
        bool line_continued; /* the current line's start was already sent (split or partial flush) */

        /* The journal's native socket, connected so that a full journald makes it non-writable (EPOLLOUT
         * then says when to go on) instead of blocking the loop as sd_journal_sendv() would. */
        int journal_fd;
        sd_event_source *journal_source;
        size_t pending_len;          /* message[0, pending_len) is a datagram the journal had no room for */
        uint64_t journal_retry_usec; /* no journal: the next connect attempt */
        bool journal_failed;
        bool flushing;       /* console_flush(): no waiting for the journal, lines it has no room for are lost */
        unsigned flush_lost; /* … this many */

        /* The rate limit's interval, like journald's per service. */
        sd_event_source *ratelimit_timer;
        uint64_t rl_begin;
        unsigned rl_lines;
        size_t rl_bytes;
        uint64_t rl_suppressed, rl_suppressed_bytes;
        /* An ended interval's count whose entry the journal had no room for yet. */
        uint64_t notice_lines, notice_bytes;

        char *ring[CONSOLE_RING_SIZE];
        unsigned ring_next, ring_count;

        ConsoleClient *clients;
        /* Client input not yet accepted by the pty; while non-empty, clients are not read. */
        char input[4096];
        size_t input_len;
};

static int console_alloc(sd_event *e, const char *machine_name, int master_fd, Console **ret)
{
        /* The journal datagram has room for names of valid length only. */
        if (strlen(machine_name) > MACHINE_NAME_MAX)
                return -EINVAL;
        Console *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        c->master_fd = master_fd;
        c->journal_fd = -1;
        c->event = sd_event_ref(e);
        memcpy(c->message, MESSAGE_PREFIX, MESSAGE_PREFIX_LEN);
        c->machine = strdup(machine_name);
        if (!c->machine || asprintf(&c->field_machine, "MACHINEMGR_MACHINE=%s", machine_name) < 0 ||
            asprintf(&c->field_identifier, "SYSLOG_IDENTIFIER=%s", machine_name) < 0) {
                c->master_fd = -1; /* the caller still owns it on failure */
                console_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static int console_set_slave_path(Console *c)
{
        char path[64];
        if (ptsname_r(c->master_fd, path, sizeof path) != 0)
                return negative_errno();
        c->slave_path = strdup(path);
        return c->slave_path ? 0 : -ENOMEM;
}

/* Termios and window size go through the master (the kernel applies them to the slave), so the daemon
 * never opens the slave: a slave open in the daemon would keep the pty from ever reporting that the
 * guest closed its console, and would not survive a daemon restart anyway. */
static int console_setup_tty(int master_fd)
{
        struct termios t;
        if (tcgetattr(master_fd, &t) < 0)
                return negative_errno();

        /* A normal cooked tty, as a getty and systemd expect. ONLCR stays on so an attached terminal
         * (in raw mode) renders "\n" correctly; the "\r" it adds is stripped before the journal.
         * No IXON: a stray ^S from an attached client must not freeze the guest's console output. */
        t.c_iflag = ICRNL | IUTF8;
        t.c_oflag = OPOST | ONLCR;
        t.c_cflag = (t.c_cflag & ~(CSIZE | PARENB)) | CS8 | CREAD;
        t.c_lflag = ISIG | ICANON | IEXTEN | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE;
        if (tcsetattr(master_fd, TCSANOW, &t) < 0)
                return negative_errno();

        struct winsize ws = {.ws_row = 24, .ws_col = 80};
        if (ioctl(master_fd, TIOCSWINSZ, &ws) < 0)
                return negative_errno();
        return 0;
}

int console_new(sd_event *e, const char *machine_name, Console **ret)
{
        _cleanup_close_ int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return log_machine_error_errno(machine_name, errno, "open console pty: %m");
        if (grantpt(fd) < 0 || unlockpt(fd) < 0)
                return log_machine_error_errno(machine_name, errno, "unlock console pty: %m");

        int r = console_setup_tty(fd);
        if (r < 0)
                return log_machine_error_errno(machine_name, r, "set up console tty: %m");

        Console *c;
        r = console_alloc(e, machine_name, fd, &c);
        if (r < 0)
                return log_machine_error_errno(machine_name, r, "allocate console: %m");
        TAKE_FD(fd);

        r = console_set_slave_path(c);
        if (r < 0) {
                log_machine_error_errno(machine_name, r, "get console pty name: %m");
                console_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int console_new_from_fd(sd_event *e, const char *machine_name, int master_fd, Console **ret)
{
        /* The fd store hands fds back without our flags; the guest's termios are left as they are. */
        int flags = fcntl(master_fd, F_GETFL);
        if (flags < 0 || fcntl(master_fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
            fcntl(master_fd, F_SETFD, FD_CLOEXEC) < 0)
                return log_machine_error_errno(machine_name, errno, "set console fd flags: %m");

        Console *c;
        int r = console_alloc(e, machine_name, master_fd, &c);
        if (r < 0)
                return log_machine_error_errno(machine_name, r, "allocate console: %m");

        r = console_set_slave_path(c);
        if (r < 0) {
                log_machine_error_errno(machine_name, r, "adopt console: not a pty master: %m");
                c->master_fd = -1;
                console_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

const char *console_slave_path(Console *c)
{
        return c->slave_path;
}

int console_master_fd(Console *c)
{
        return c->master_fd;
}

void console_set_leader(Console *c, pid_t leader)
{
        c->leader = leader;
        if (leader > 0)
                snprintf(c->field_pid, sizeof c->field_pid, "OBJECT_PID=%d", (int)leader);
        else
                c->field_pid[0] = 0;
}

static void console_ring_push(Console *c, const char *line, size_t len)
{
        /* On ENOMEM the ring just misses a line; the journal has it. */
        char *copy = strndup(line, len);
        if (!copy)
                return;
        free(c->ring[c->ring_next]);
        c->ring[c->ring_next] = copy;
        c->ring_next = (c->ring_next + 1) % CONSOLE_RING_SIZE;
        if (c->ring_count < CONSOLE_RING_SIZE)
                c->ring_count++;
}

/* ---- the journal's native protocol, non-blocking ---- */

static int console_on_journal(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static void console_journal_close(Console *c)
{
        c->journal_source = sd_event_source_disable_unref(c->journal_source);
        c->journal_fd = safe_close(c->journal_fd);
}

static int console_journal_open(Console *c)
{
        if (c->journal_fd >= 0)
                return 0;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now < c->journal_retry_usec)
                return -ENOTCONN;
        c->journal_retry_usec = now + CONSOLE_JOURNAL_RETRY_USEC;

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        static const struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET};
        if (connect(fd, (const struct sockaddr *)&sa, sizeof sa) < 0)
                /* No journald (yet): lines are lost, as sd_journal_sendv() loses them. */
                return negative_errno();

        int r = sd_event_add_io(c->event, &c->journal_source, fd, EPOLLOUT, console_on_journal, c);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(c->journal_source, "console-journal");
        (void)sd_event_source_set_enabled(c->journal_source, SD_EVENT_OFF);
        c->journal_fd = TAKE_FD(fd);
        return 0;
}

/* Sends one datagram. 0: sent, or lost because there is no journal to send it to; -EAGAIN: the journal
 * has no room now (c->journal_source, enabled, says when it has). */
static int console_journal_write(Console *c, const char *buf, size_t len)
{
        for (unsigned attempt = 0; attempt < 2; attempt++) {
                int r = console_journal_open(c);
                if (r < 0)
                        return 0;
                if (send(c->journal_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
                        c->journal_failed = false;
                        return 0;
                }
                r = negative_errno();
                if (r == -EAGAIN) {
                        (void)sd_event_source_set_enabled(c->journal_source, SD_EVENT_ON);
                        return r;
                }
                console_journal_close(c);
                /* journald restarted: the path has a new socket, ours points at the old one. */
                if (r == -ECONNREFUSED || r == -ENOTCONN || r == -EPIPE) {
                        c->journal_retry_usec = 0;
                        continue;
                }
                /* Warn once: with the journal broken, every console line would repeat the same message. */
                if (!c->journal_failed)
                        log_machine_warning_errno(c->machine, r, "send console line to journal: %m");
                c->journal_failed = true;
                return 0;
        }
        return 0;
}

/* "N console lines suppressed", like journald's "Suppressed N messages from UNIT", as the daemon's own
 * message about the machine. Kept in notice_lines until the journal takes it. */
static int console_send_notice(Console *c)
{
        if (c->notice_lines == 0)
                return 0;
        char buf[512 + 3 * MACHINE_NAME_MAX];
        int k = snprintf(buf, sizeof buf,
                         MESSAGE_PREFIX "%s: %" PRIu64 " console lines suppressed (%" PRIu64 " bytes): more than "
                                        "%u lines or %u MiB in %llu s\n"
                                        "PRIORITY=%d\nN_DROPPED=%" PRIu64 "\n%s\nSYSLOG_IDENTIFIER=%s\n%s%s",
                         c->machine, c->notice_lines, c->notice_bytes, CONSOLE_RATELIMIT_LINES,
                         CONSOLE_RATELIMIT_BYTES >> 20, CONSOLE_RATELIMIT_INTERVAL_USEC / USEC_PER_SEC,
                         LOG_WARNING, c->notice_lines, c->field_machine, program_invocation_short_name,
                         c->field_pid, c->field_pid[0] ? "\n" : "");
        if (k < 0 || (size_t)k >= sizeof buf)
                return 0;
        int r = console_journal_write(c, buf, (size_t)k);
        if (r < 0 && !c->flushing)
                return r;
        c->notice_lines = c->notice_bytes = 0;
        return 0;
}

/* ---- the per-guest rate limit ---- */

static void console_ratelimit_restart(Console *c, uint64_t now)
{
        c->notice_lines += c->rl_suppressed;
        c->notice_bytes += c->rl_suppressed_bytes;
        c->rl_suppressed = c->rl_suppressed_bytes = 0;
        c->rl_begin = now;
        c->rl_lines = 0;
        c->rl_bytes = 0;
        if (c->ratelimit_timer)
                (void)sd_event_source_set_enabled(c->ratelimit_timer, SD_EVENT_OFF);
        /* After a datagram the journal has no room for, the notice goes next (console_on_journal). */
        if (c->pending_len == 0)
                (void)console_send_notice(c);
}

static int console_on_ratelimit_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        console_ratelimit_restart(userdata, usec);
        return 0;
}

static void console_ratelimit_arm(Console *c)
{
        uint64_t end = c->rl_begin + CONSOLE_RATELIMIT_INTERVAL_USEC;
        int r = c->ratelimit_timer ? sd_event_source_set_time(c->ratelimit_timer, end)
                                   : sd_event_add_time(c->event, &c->ratelimit_timer, CLOCK_MONOTONIC, end,
                                                       USEC_PER_SEC, console_on_ratelimit_timer, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->ratelimit_timer, SD_EVENT_ONESHOT);
        /* Without the timer the count is reported with the first line after the interval. */
        if (r < 0)
                log_machine_debug(c->machine, "arm console rate limit timer: %s", strerror(-r));
}

/* Whether a journal entry of len bytes is within the guest's budget; counts it either way. */
static bool console_ratelimit_pass(Console *c, size_t len)
{
        uint64_t now;
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                now = now_usec(CLOCK_MONOTONIC);
        if (now >= c->rl_begin + CONSOLE_RATELIMIT_INTERVAL_USEC)
                console_ratelimit_restart(c, now);
        if (c->rl_lines < CONSOLE_RATELIMIT_LINES && c->rl_bytes + len <= CONSOLE_RATELIMIT_BYTES) {
                c->rl_lines++;
                c->rl_bytes += len;
                return true;
        }
        if (c->rl_suppressed++ == 0)
                console_ratelimit_arm(c);
        c->rl_suppressed_bytes += len;
        return false;
}

static bool console_over_limit(Console *c)
{
        return c->rl_suppressed > 0;
}

/* ---- lines ---- */

/* Completes the datagram in c->message (the fields after the line) and sends it. -EAGAIN: it stays in
 * c->message (pending_len) until the journal has room; nothing else may touch c->message until then. */
static int console_send(Console *c, size_t len)
{
        console_ring_push(c, c->message + MESSAGE_PREFIX_LEN, len);
        if (!console_ratelimit_pass(c, len))
                return 0;

        char *p = c->message + MESSAGE_PREFIX_LEN + len;
        p = stpcpy(p, "\nPRIORITY=6\n");
        p = stpcpy(stpcpy(p, c->field_machine), "\n");
        p = stpcpy(stpcpy(p, c->field_identifier), "\n");
        if (c->field_pid[0])
                p = stpcpy(stpcpy(p, c->field_pid), "\n");

        size_t n = (size_t)(p - c->message);
        int r = console_journal_write(c, c->message, n);
        if (r < 0 && c->flushing) {
                c->flush_lost++;
                return 0;
        }
        if (r < 0)
                c->pending_len = n;
        return r;
}

/* The flush delay counts from the first byte of the line now being assembled. */
static void console_disarm_flush(Console *c)
{
        if (c->flush_timer)
                (void)sd_event_source_set_enabled(c->flush_timer, SD_EVENT_OFF);
}

static int console_emit_line(Console *c)
{
        size_t len = c->line_len;
        int r = 0;
        /* The tty's ONLCR (and guests writing "\r\n") leave carriage returns that mean nothing here. */
        while (len > 0 && c->message[MESSAGE_PREFIX_LEN + len - 1] == '\r')
                len--;
        /* A newline right after a split or a flushed partial line ends that line, it is no empty line. */
        if (len > 0 || !c->line_continued)
                r = console_send(c, len);
        c->line_len = 0;
        c->line_continued = false;
        console_disarm_flush(c);
        return r;
}

static int console_emit_piece(Console *c)
{
        if (c->line_len == 0)
                return 0;
        int r = console_send(c, c->line_len);
        c->line_len = 0;
        c->line_continued = true;
        console_disarm_flush(c);
        return r;
}

static void console_arm_flush(Console *c)
{
        if (!c->flush_timer)
                return;
        int enabled = SD_EVENT_OFF;
        (void)sd_event_source_get_enabled(c->flush_timer, &enabled);
        /* Armed by the first byte of a partial line, not re-armed per byte: a slow trickle of output
         * still reaches the journal within the delay. */
        if (c->line_len == 0 || enabled != SD_EVENT_OFF || c->pending_len > 0)
                return;
        if (sd_event_source_set_time_relative(c->flush_timer, CONSOLE_PARTIAL_FLUSH_USEC) < 0 ||
            sd_event_source_set_enabled(c->flush_timer, SD_EVENT_ONESHOT) < 0)
                (void)console_emit_piece(c); /* no timer: better an early piece than a late line */
}

/* Cuts what was read into lines and pieces. -EAGAIN: the journal is full, the rest waits in read_buf. */
static int console_consume(Console *c)
{
        while (c->read_pos < c->read_end) {
                const char *buf = c->read_buf + c->read_pos;
                size_t n = c->read_end - c->read_pos;
                size_t room = CONSOLE_LINE_MAX - c->line_len;
                const char *nl = memchr(buf, '\n', n);
                size_t take = nl ? (size_t)(nl - buf) : n;
                int r = 0;

                if (take >= room) {
                        memcpy(c->message + MESSAGE_PREFIX_LEN + c->line_len, buf, room);
                        c->line_len += room;
                        c->read_pos += room;
                        r = console_emit_piece(c);
                } else {
                        memcpy(c->message + MESSAGE_PREFIX_LEN + c->line_len, buf, take);
                        c->line_len += take;
                        c->read_pos += take;
                        if (nl) {
                                c->read_pos++;
                                r = console_emit_line(c);
                        }
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static ConsoleClient *console_client_free(ConsoleClient *cl)
{
        if (!cl)
                return NULL;
        ConsoleClient *next = cl->next;
        sd_event_source_disable_unref(cl->source);
        safe_close(cl->fd);
        free(cl);
        return next;
}

static void console_client_drop(Console *c, ConsoleClient *cl, const char *why)
{
        log_machine_debug(c->machine, "console client dropped: %s", why);
        for (ConsoleClient **p = &c->clients; *p; p = &(*p)->next)
                if (*p == cl) {
                        *p = console_client_free(cl);
                        return;
                }
}

static void console_clients_write(Console *c, const char *buf, size_t n)
{
        ConsoleClient *next;
        for (ConsoleClient *cl = c->clients; cl; cl = next) {
                next = cl->next;
                /* The socket buffer (CONSOLE_CLIENT_BUFFER) is a client's whole budget: one that falls
                 * that far behind is dropped, the guest and the journal never wait for it. */
                ssize_t k = send(cl->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        k = send(cl->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0 || (size_t)k < n)
                        console_client_drop(c, cl, k < 0 ? strerror(errno) : "too slow");
        }
}

enum {
        CONSOLE_DRAINED, /* nothing more to read for now */
        CONSOLE_MORE,    /* the budget ran out with data left */
        CONSOLE_BLOCKED, /* the journal is full */
};

/* Reads up to budget bytes (a little more: whole reads), adding what it read to *done. */
static int console_read_master(Console *c, size_t budget, size_t *done)
{
        size_t start = *done;

        for (;;) {
                /* What an earlier call read but could not log goes first. */
                if (console_consume(c) < 0)
                        return CONSOLE_BLOCKED;
                if (*done - start >= budget)
                        return CONSOLE_MORE;

                ssize_t n = read(c->master_fd, c->read_buf, sizeof c->read_buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* EIO: no slave is open (the guest has not opened its console yet, or closed
                         * it). The master is edge-triggered, so this does not spin: the next wake-up
                         * comes when the guest writes again. */
                        if (errno == EAGAIN || errno == EIO)
                                return CONSOLE_DRAINED;
                        return negative_errno();
                }
                if (n == 0)
                        return CONSOLE_DRAINED;
                c->read_pos = 0;
                c->read_end = (size_t)n;
                *done += (size_t)n;
                console_clients_write(c, c->read_buf, (size_t)n);
        }
}

static void console_process(Console *c);

static int console_on_more(sd_event_source *s, void *userdata)
{
        console_process(userdata);
        return 0;
}

static bool console_pacing(Console *c)
{
        int enabled = SD_EVENT_OFF;
        if (c->pace_timer)
                (void)sd_event_source_get_enabled(c->pace_timer, &enabled);
        return enabled != SD_EVENT_OFF;
}

static int console_on_pace(sd_event_source *s, uint64_t usec, void *userdata)
{
        console_process(userdata);
        return 0;
}

/* What may be read now: the dispatch budget, or while the guest is over its journal limit what is left
 * of the current pace slot's (0: wait for the next slot). */
static size_t console_allowance(Console *c)
{
        if (!console_over_limit(c))
                return CONSOLE_READ_BUDGET;
        uint64_t now;
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                now = now_usec(CLOCK_MONOTONIC);
        if (now >= c->pace_begin + CONSOLE_PACE_USEC) {
                c->pace_begin = now;
                c->pace_bytes = 0;
        }
        return c->pace_bytes < CONSOLE_READ_BUDGET ? CONSOLE_READ_BUDGET - c->pace_bytes : 0;
}

/* Continues on the next loop iteration, or when over the limit at the next pace slot. */
static void console_schedule_more(Console *c)
{
        int r;
        if (console_over_limit(c)) {
                uint64_t next = c->pace_begin + CONSOLE_PACE_USEC;
                r = c->pace_timer ? sd_event_source_set_time(c->pace_timer, next)
                                  : sd_event_add_time(c->event, &c->pace_timer, CLOCK_MONOTONIC, next,
                                                      10 * USEC_PER_MSEC, console_on_pace, c);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->pace_timer, SD_EVENT_ONESHOT);
        } else {
                r = c->more_source ? 0 : sd_event_add_defer(c->event, &c->more_source, console_on_more, c);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->more_source, SD_EVENT_ONESHOT);
        }
        if (r < 0) {
                /* Without the continuation data would sit unread on an edge-triggered fd until the guest
                 * writes again, so take a big bite now instead. */
                size_t done = 0;
                (void)console_read_master(c, CONSOLE_FLUSH_BUDGET, &done);
        }
}

/* Reads and logs what the budget allows, unless the journal is full or the guest's pace says wait. */
static void console_process(Console *c)
{
        if (c->pending_len > 0 || console_pacing(c))
                return;
        size_t allowance = console_allowance(c);
        if (allowance == 0) {
                /* The master is edge-triggered: what is not read now is read at the next slot. */
                console_schedule_more(c);
                return;
        }
        size_t done = 0;
        int r = console_read_master(c, allowance, &done);
        if (console_over_limit(c))
                c->pace_bytes += done;
        if (r < 0) {
                log_machine_error_errno(c->machine, r, "read console: %m");
                (void)sd_event_source_set_enabled(c->master_source, SD_EVENT_OFF);
                (void)console_emit_piece(c);
                return;
        }
        if (r == CONSOLE_MORE)
                console_schedule_more(c);
        console_arm_flush(c);
}

static int console_on_journal(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Console *c = userdata;

        if (c->pending_len > 0) {
                if (console_journal_write(c, c->message, c->pending_len) < 0)
                        return 0;
                c->pending_len = 0;
        }
        if (console_send_notice(c) < 0)
                return 0;
        if (c->journal_source)
                (void)sd_event_source_set_enabled(c->journal_source, SD_EVENT_OFF);
        console_process(c);
        return 0;
}

static void console_clients_pause(Console *c, bool pause)
{
        for (ConsoleClient *cl = c->clients; cl; cl = cl->next)
                (void)sd_event_source_set_io_events(cl->source, pause ? 0 : EPOLLIN);
}

static void console_update_master_events(Console *c)
{
        uint32_t events = EPOLLIN | EPOLLET | (c->input_len > 0 ? EPOLLOUT : 0);
        if (c->master_source)
                (void)sd_event_source_set_io_events(c->master_source, events);
        console_clients_pause(c, c->input_len > 0);
}

static void console_write_input(Console *c)
{
        while (c->input_len > 0) {
                ssize_t k = write(c->master_fd, c->input, c->input_len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        /* Nobody in the guest reads the console (EIO): typed input has no one to go to. */
                        log_machine_debug(c->machine, "write console input: %m");
                        c->input_len = 0;
                        break;
                }
                memmove(c->input, c->input + k, c->input_len - (size_t)k);
                c->input_len -= (size_t)k;
        }
        console_update_master_events(c);
}

static int console_on_master(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Console *c = userdata;

        if (revents & EPOLLOUT)
                console_write_input(c);
        console_process(c);
        return 0;
}

static int console_on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Console *c = userdata;
        /* A full journal: console_process() re-arms the delay once it has room again. */
        if (c->pending_len == 0)
                (void)console_emit_piece(c);
        return 0;
}

int console_start(Console *c)
{
        int r = sd_event_add_io(c->event, &c->master_source, c->master_fd, EPOLLIN | EPOLLET,
                                console_on_master, c);
        if (r < 0)
                return log_machine_error_errno(c->machine, r, "watch console: %m");
        (void)sd_event_source_set_description(c->master_source, "console");

        r = sd_event_add_time_relative(c->event, &c->flush_timer, CLOCK_MONOTONIC,
                                       CONSOLE_PARTIAL_FLUSH_USEC, CONSOLE_PARTIAL_FLUSH_ACCURACY_USEC,
                                       console_on_flush_timer, c);
        if (r < 0)
                return log_machine_error_errno(c->machine, r, "add console flush timer: %m");
        (void)sd_event_source_set_enabled(c->flush_timer, SD_EVENT_OFF);
        return 0;
}

static int console_on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        ConsoleClient *cl = userdata;
        Console *c = cl->console;

        /* Input waiting for the guest: the clients stay unread until it has room (see pause). */
        if (c->input_len == sizeof c->input)
                return 0;
        ssize_t n = read(fd, c->input + c->input_len, sizeof c->input - c->input_len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                console_client_drop(c, cl, n == 0 ? "closed" : strerror(errno));
                return 0;
        }
        c->input_len += (size_t)n;
        console_write_input(c);
        return 0;
}

int console_attach(Console *c, int *ret_fd)
{
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return log_machine_error_errno(c->machine, errno, "create console client socket: %m");
        _cleanup_close_ int ours = pair[0], theirs = pair[1];

        /* Forced: the default limit (net.core.wmem_max) is 208 KiB. Kernel memory, bounded per client. */
        int size = CONSOLE_CLIENT_BUFFER;
        if (setsockopt(ours, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
                (void)setsockopt(ours, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);

        /* The client end is for a program that just reads and writes; give it ordinary blocking I/O. */
        int flags = fcntl(theirs, F_GETFL);
        if (flags < 0 || fcntl(theirs, F_SETFL, flags & ~O_NONBLOCK) < 0)
                return log_machine_error_errno(c->machine, errno, "set console client socket flags: %m");

        ConsoleClient *cl = calloc(1, sizeof *cl);
        if (!cl)
                return log_machine_error_errno(c->machine, ENOMEM, "attach console: %m");
        cl->console = c;
        cl->fd = ours;

        int r = sd_event_add_io(c->event, &cl->source, ours, c->input_len > 0 ? 0 : EPOLLIN,
                                console_on_client, cl);
        if (r < 0) {
                free(cl);
                return log_machine_error_errno(c->machine, r, "watch console client: %m");
        }
        TAKE_FD(ours);
        cl->next = c->clients;
        c->clients = cl;
        *ret_fd = TAKE_FD(theirs);
        return 0;
}

int console_last_lines(Console *c, unsigned n, char ***ret)
{
        if (n > c->ring_count)
                n = c->ring_count;

        char **l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        unsigned first = (c->ring_next + CONSOLE_RING_SIZE - n) % CONSOLE_RING_SIZE;
        for (unsigned i = 0; i < n; i++) {
                l[i] = strdup(c->ring[(first + i) % CONSOLE_RING_SIZE]);
                if (!l[i]) {
                        strv_free(l);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 0;
}

void console_flush(Console *c)
{
        if (!c || c->master_fd < 0)
                return;
        /* The machine is going away: no waiting for the journal, what it has no room for is lost. */
        c->flushing = true;
        if (c->pending_len > 0 && console_journal_write(c, c->message, c->pending_len) < 0)
                c->flush_lost++;
        c->pending_len = 0;
        (void)console_send_notice(c);
        size_t done = 0;
        int r = console_read_master(c, CONSOLE_FLUSH_BUDGET, &done);
        if (r < 0)
                log_machine_warning_errno(c->machine, r, "read console: %m");
        (void)console_emit_piece(c);
        c->flushing = false;
        if (c->journal_source)
                (void)sd_event_source_set_enabled(c->journal_source, SD_EVENT_OFF);
        if (c->flush_lost > 0)
                log_machine_warning_errno(c->machine, EAGAIN, "%u console lines lost, the journal had no room: %m",
                                          c->flush_lost);
        c->flush_lost = 0;
        /* After a reboot the console goes on; what the budget left goes in the next iteration. */
        if (r == CONSOLE_MORE)
                console_schedule_more(c);
}

Console *console_free(Console *c)
{
        if (!c)
                return NULL;
        while (c->clients)
                c->clients = console_client_free(c->clients);
        sd_event_source_disable_unref(c->master_source);
        sd_event_source_disable_unref(c->flush_timer);
        sd_event_source_disable_unref(c->more_source);
        sd_event_source_disable_unref(c->pace_timer);
        sd_event_source_disable_unref(c->ratelimit_timer);
        console_journal_close(c);
        safe_close(c->master_fd);
        sd_event_unref(c->event);
        for (unsigned i = 0; i < CONSOLE_RING_SIZE; i++)
                free(c->ring[i]);
        free(c->field_machine);
        free(c->field_identifier);
        free(c->slave_path);
        free(c->machine);
        free(c);
        return NULL;
}
