/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "console.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <termios.h>

#include "log.h"
#include "util.h"

/* One journal entry per line, up to this many bytes; longer lines are split into several entries.
 * 4 KiB holds any real console line (the kernel's printk records stop at 1 KiB, systemd's status lines
 * and a 4K-column terminal fit too) while a byte flood without newlines still becomes readable entries
 * instead of one unbounded allocation. It is also about what one pty read returns. */
#define CONSOLE_LINE_MAX 4096u
#define CONSOLE_RING_SIZE 64u
/* A prompt ("login: ") never gets a newline: it is logged after this delay. */
#define CONSOLE_PARTIAL_FLUSH_USEC (200 * 1000u)
#define CONSOLE_PARTIAL_FLUSH_ACCURACY_USEC (50 * 1000u) /* sd-event's default would be 250 ms */
/* Reads per wake-up before we let the event loop serve other machines; a pty read is <= 4 KiB. */
#define CONSOLE_READ_BUDGET 64u
/* console_flush() may run while a guest still writes: bounded (4 MiB), so a flood cannot hang us. */
#define CONSOLE_FLUSH_BUDGET 1024u

#define MESSAGE_PREFIX "MESSAGE="
#define MESSAGE_PREFIX_LEN (sizeof(MESSAGE_PREFIX) - 1)

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

        char *field_machine;    /* "MACHINEMGR_MACHINE=NAME" */
        char *field_identifier; /* "SYSLOG_IDENTIFIER=NAME" */
        char field_pid[32];     /* "OBJECT_PID=N" */

        /* "MESSAGE=" followed by the line being assembled, so one iovec carries the whole field. */
        char message[MESSAGE_PREFIX_LEN + CONSOLE_LINE_MAX];
        size_t line_len;
        bool line_continued; /* the current line's start was already sent (split or partial flush) */
        bool journal_failed;

        char *ring[CONSOLE_RING_SIZE];
        unsigned ring_next, ring_count;

        ConsoleClient *clients;
        /* Client input not yet accepted by the pty; while non-empty, clients are not read. */
        char input[4096];
        size_t input_len;
};

static int console_on_master(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int console_alloc(sd_event *e, const char *machine_name, int master_fd, Console **ret)
{
        Console *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        c->master_fd = master_fd;
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

static void console_send(Console *c, size_t len)
{
        struct iovec iov[5];
        unsigned n = 0;

        iov[n++] = (struct iovec){c->message, MESSAGE_PREFIX_LEN + len};
        iov[n++] = (struct iovec){(char *)"PRIORITY=6", strlen("PRIORITY=6")};
        iov[n++] = (struct iovec){c->field_machine, strlen(c->field_machine)};
        iov[n++] = (struct iovec){c->field_identifier, strlen(c->field_identifier)};
        if (c->field_pid[0])
                iov[n++] = (struct iovec){c->field_pid, strlen(c->field_pid)};

        int r = sd_journal_sendv(iov, n);
        /* Warn once: with the journal gone, every console line would repeat the same message. */
        if (r < 0 && !c->journal_failed)
                log_machine_warning_errno(c->machine, r, "send console line to journal: %m");
        c->journal_failed = r < 0;

        console_ring_push(c, c->message + MESSAGE_PREFIX_LEN, len);
}

/* The flush delay counts from the first byte of the line now being assembled. */
static void console_disarm_flush(Console *c)
{
        if (c->flush_timer)
                (void)sd_event_source_set_enabled(c->flush_timer, SD_EVENT_OFF);
}

static void console_emit_line(Console *c)
{
        size_t len = c->line_len;
        /* The tty's ONLCR (and guests writing "\r\n") leave carriage returns that mean nothing here. */
        while (len > 0 && c->message[MESSAGE_PREFIX_LEN + len - 1] == '\r')
                len--;
        /* A newline right after a split or a flushed partial line ends that line, it is no empty line. */
        if (len > 0 || !c->line_continued)
                console_send(c, len);
        c->line_len = 0;
        c->line_continued = false;
        console_disarm_flush(c);
}

static void console_emit_piece(Console *c)
{
        if (c->line_len == 0)
                return;
        console_send(c, c->line_len);
        c->line_len = 0;
        c->line_continued = true;
        console_disarm_flush(c);
}

static void console_arm_flush(Console *c)
{
        if (!c->flush_timer)
                return;
        int enabled = SD_EVENT_OFF;
        (void)sd_event_source_get_enabled(c->flush_timer, &enabled);
        /* Armed by the first byte of a partial line, not re-armed per byte: a slow trickle of output
         * still reaches the journal within the delay. */
        if (c->line_len == 0 || enabled != SD_EVENT_OFF)
                return;
        if (sd_event_source_set_time_relative(c->flush_timer, CONSOLE_PARTIAL_FLUSH_USEC) < 0 ||
            sd_event_source_set_enabled(c->flush_timer, SD_EVENT_ONESHOT) < 0)
                console_emit_piece(c); /* no timer: better an early piece than a late line */
}

static void console_consume(Console *c, const char *buf, size_t n)
{
        while (n > 0) {
                size_t room = CONSOLE_LINE_MAX - c->line_len;
                const char *nl = memchr(buf, '\n', n);
                size_t take = nl ? (size_t)(nl - buf) : n;

                if (take >= room) {
                        memcpy(c->message + MESSAGE_PREFIX_LEN + c->line_len, buf, room);
                        c->line_len += room;
                        console_emit_piece(c);
                        buf += room;
                        n -= room;
                        continue;
                }
                memcpy(c->message + MESSAGE_PREFIX_LEN + c->line_len, buf, take);
                c->line_len += take;
                buf += take;
                n -= take;
                if (nl) {
                        console_emit_line(c);
                        buf++;
                        n--;
                }
        }
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
                /* The socket buffer (~200 KiB) is a client's whole budget: one that falls that far
                 * behind is dropped, the guest and the journal never wait for it. */
                ssize_t k = send(cl->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        k = send(cl->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0 || (size_t)k < n)
                        console_client_drop(c, cl, k < 0 ? strerror(errno) : "too slow");
        }
}

/* Returns 1 when the read budget ran out with data left, 0 when drained. */
static int console_read_master(Console *c, unsigned budget)
{
        char buf[CONSOLE_LINE_MAX];

        for (unsigned i = 0; i < budget; i++) {
                ssize_t n = read(c->master_fd, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* EIO: no slave is open (the guest has not opened its console yet, or closed
                         * it). The master is edge-triggered, so this does not spin: the next wake-up
                         * comes when the guest writes again. */
                        if (errno == EAGAIN || errno == EIO)
                                return 0;
                        return negative_errno();
                }
                if (n == 0)
                        return 0;
                console_consume(c, buf, (size_t)n);
                console_clients_write(c, buf, (size_t)n);
        }
        return 1;
}

static int console_on_more(sd_event_source *s, void *userdata)
{
        Console *c = userdata;
        return console_on_master(c->master_source, c->master_fd, EPOLLIN, c);
}

static void console_schedule_more(Console *c)
{
        int r = c->more_source ? 0 : sd_event_add_defer(c->event, &c->more_source, console_on_more, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->more_source, SD_EVENT_ONESHOT);
        if (r < 0)
                /* Without the deferred continuation data would sit unread on an edge-triggered fd until
                 * the guest writes again, so take a big bite now instead. */
                (void)console_read_master(c, CONSOLE_FLUSH_BUDGET);
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

        int r = console_read_master(c, CONSOLE_READ_BUDGET);
        if (r < 0) {
                log_machine_error_errno(c->machine, r, "read console: %m");
                (void)sd_event_source_set_enabled(c->master_source, SD_EVENT_OFF);
                console_emit_piece(c);
                return 0;
        }
        if (r > 0)
                console_schedule_more(c);
        console_arm_flush(c);
        return 0;
}

static int console_on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        console_emit_piece(userdata);
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
        int r = console_read_master(c, CONSOLE_FLUSH_BUDGET);
        if (r < 0)
                log_machine_warning_errno(c->machine, r, "read console: %m");
        console_emit_piece(c);
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
