/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shell and console: relaying the local terminal to a pty master or the daemon's console socket. */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include "machinemgr.h"

#define ESCAPE_CHAR 0x1d /* ^] */
#define ESCAPE_COUNT 3
#define ESCAPE_WINDOW_USEC 1000000ULL

struct Relay {
        sd_event *event;
        int fd; /* the far side: pty master or console socket, non-blocking */
        sd_event_source *stdin_source;
        sd_event_source *peer_source;
        char in_buf[4096]; /* stdin -> fd, waiting for the far side to take it */
        size_t in_len, in_off;
        bool escape_detach;
        uint64_t escapes[ESCAPE_COUNT];
        unsigned n_escapes;
        bool exit_on_eof;
        bool done;
};

int event_run_until(sd_event *e, const bool *done)
{
        while (!*done) {
                int r = sd_event_run(e, UINT64_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

bool relay_done(const Relay *r)
{
        return r->done;
}

/* stdout is ours to block on: a slow terminal should slow the guest, not lose its output. */
static int write_all_stdout(const char *p, size_t n)
{
        while (n > 0) {
                ssize_t k = write(STDOUT_FILENO, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pfd = { .fd = STDOUT_FILENO, .events = POLLOUT };
                                (void)poll(&pfd, 1, -1);
                                continue;
                        }
                        return -errno;
                }
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Three ^] within a second: the user wants out. */
static bool saw_escape(Relay *r, const char *p, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (p[i] != ESCAPE_CHAR) {
                        r->n_escapes = 0;
                        continue;
                }
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (r->n_escapes > 0 && now - r->escapes[0] > ESCAPE_WINDOW_USEC)
                        r->n_escapes = 0;
                r->escapes[r->n_escapes++] = now;
                if (r->n_escapes >= ESCAPE_COUNT)
                        return true;
        }
        return false;
}

static void relay_stop(Relay *r)
{
        r->done = true;
}

static int relay_flush_input(Relay *r)
{
        while (r->in_off < r->in_len) {
                ssize_t k = write(r->fd, r->in_buf + r->in_off, r->in_len - r->in_off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                r->in_off += (size_t)k;
        }
        bool pending = r->in_off < r->in_len;
        if (!pending)
                r->in_off = r->in_len = 0;
        /* Stop reading stdin while the far side is full; wake on EPOLLOUT instead. */
        (void)sd_event_source_set_enabled(r->stdin_source, pending ? SD_EVENT_OFF : SD_EVENT_ON);
        (void)sd_event_source_set_io_events(r->peer_source, EPOLLIN | (pending ? EPOLLOUT : 0));
        return 0;
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Relay *r = userdata;
        ssize_t n = read(STDIN_FILENO, r->in_buf, sizeof r->in_buf);

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n <= 0) {
                /* Local input ended; the guest may still have output for us. */
                (void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
                if (r->fd >= 0)
                        (void)shutdown(r->fd, SHUT_WR); /* a socket learns of the EOF; a pty ignores it */
                return 0;
        }
        if (r->escape_detach && saw_escape(r, r->in_buf, (size_t)n)) {
                relay_stop(r);
                return 0;
        }
        r->in_len = (size_t)n;
        r->in_off = 0;
        if (relay_flush_input(r) < 0)
                relay_stop(r);
        return 0;
}

/* Returns > 0 while there may be more to read, 0 on EOF or nothing-for-now. */
static int relay_read_peer(Relay *r, bool *eof)
{
        char buf[65536];
        ssize_t n = read(r->fd, buf, sizeof buf);

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n <= 0) {
                /* EIO: every slave fd of the pty is closed, i.e. the command is done. */
                *eof = true;
                return 0;
        }
        if (write_all_stdout(buf, (size_t)n) < 0)
                *eof = true;
        return 1;
}

static int on_peer(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Relay *r = userdata;
        bool eof = false;

        if (revents & EPOLLOUT && relay_flush_input(r) < 0)
                eof = true;
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                (void)relay_read_peer(r, &eof);
        if (eof) {
                (void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
                if (r->exit_on_eof)
                        relay_stop(r);
        }
        return 0;
}

void relay_drain(Relay *r)
{
        bool eof = false;

        while (!eof && relay_read_peer(r, &eof) > 0)
                ;
        relay_stop(r);
}

int relay_new(sd_event *e, int fd, bool escape_detach, Relay **ret)
{
        Relay *r = calloc(1, sizeof(Relay));
        int k;

        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(e);
        r->fd = fd;
        r->escape_detach = escape_detach;
        r->exit_on_eof = escape_detach;

        k = sd_event_add_io(e, &r->peer_source, fd, EPOLLIN, on_peer, r);
        /* stdin may be /dev/null or a file, which epoll refuses: then there is just no input. */
        if (k >= 0 && sd_event_add_io(e, &r->stdin_source, STDIN_FILENO, EPOLLIN, on_stdin, r) == -EPERM)
                r->stdin_source = NULL;
        if (k < 0) {
                relay_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

Relay *relay_free(Relay *r)
{
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->stdin_source);
        sd_event_source_disable_unref(r->peer_source);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}

int terminal_raw(int fd, void **ret_saved)
{
        struct termios *saved = malloc(sizeof(struct termios)), raw;

        if (!saved)
                return -ENOMEM;
        if (tcgetattr(fd, saved) < 0) {
                free(saved);
                return -errno;
        }
        raw = *saved;
        cfmakeraw(&raw);
        if (tcsetattr(fd, TCSANOW, &raw) < 0) {
                free(saved);
                return -errno;
        }
        *ret_saved = saved;
        return 0;
}

void terminal_restore(int fd, void *saved)
{
        if (!saved)
                return;
        (void)tcsetattr(fd, TCSADRAIN, saved);
        free(saved);
}

/* ---- shell ---- */

typedef struct ShellCall {
        Relay *relay;
        int status;
        int error;
        sd_bus_error bus_error;
} ShellCall;

static int on_shell_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        ShellCall *c = userdata;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                (void)sd_bus_error_copy(&c->bus_error, sd_bus_message_get_error(reply));
                c->error = -EIO;
        } else if ((r = sd_bus_message_read(reply, "i", &c->status)) < 0)
                c->error = r;
        relay_drain(c->relay);
        return 0;
}

static int on_winch(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        int *master = userdata;
        struct winsize ws;

        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) >= 0)
                (void)ioctl(*master, TIOCSWINSZ, &ws);
        return 0;
}

/* A pty pair whose slave end has the size of our terminal. */
static int open_pty(int *ret_master, int *ret_slave)
{
        _cleanup_close_ int master = -1, slave = -1;
        char name[64];
        struct winsize ws;

        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof name) != 0)
                return negative_errno();
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                return negative_errno();
        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) >= 0)
                (void)ioctl(slave, TIOCSWINSZ, &ws);
        *ret_master = TAKE_FD(master);
        *ret_slave = TAKE_FD(slave);
        return 0;
}

static int build_shell_call(sd_bus *bus, const char *name, int in, int out, int err, sd_bus_message **ret)
{
        static char *default_argv[] = { (char *)"/bin/sh", (char *)"-l", NULL };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_strv_free_ char **env = NULL;
        const char *term = getenv("TERM");
        int r;

        if (isatty(STDIN_FILENO) && term) {
                _cleanup_free_ char *t = NULL;
                if (asprintf(&t, "TERM=%s", term) < 0 || strv_push(&env, t) < 0)
                        return -ENOMEM;
                t = NULL;
        }

        r = sd_bus_message_new_method_call(bus, &m, MM_SERVICE, MM_PATH, MM_MANAGER, "ShellMachine");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", name, arg.uid ?: "");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, arg.command ?: default_argv);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, env);
        if (r >= 0)
                r = sd_bus_message_append(m, "hhh", in, out, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static int shell_plain(sd_bus *bus, const char *name)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int status, r;

        r = build_shell_call(bus, name, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, &m);
        if (r < 0) {
                cli_error(name, "failed to build the shell request: %s", strerror(-r));
                return r;
        }
        /* The command runs as long as it likes: no method timeout. */
        r = sd_bus_call(bus, m, UINT64_MAX, &error, &reply);
        if (r < 0)
                return cli_bus_error(name, "failed to run command", &error, r);
        r = sd_bus_message_read(reply, "i", &status);
        if (r < 0)
                return cli_bus_parse_error(r);
        return status & 0xff;
}

static int shell_tty(sd_bus *bus, const char *name)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(relay_freep) Relay *relay = NULL;
        _cleanup_close_ int master = -1, slave = -1;
        ShellCall call = { .bus_error = SD_BUS_ERROR_NULL };
        void *saved = NULL;
        sigset_t mask;
        int r;

        r = open_pty(&master, &slave);
        if (r < 0) {
                cli_error(name, "failed to allocate a pty: %s", strerror(-r));
                return r;
        }
        r = build_shell_call(bus, name, slave, slave, slave, &m);
        if (r >= 0)
                r = sd_event_default(&event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = relay_new(event, master, false, &relay);
        if (r >= 0) {
                sigemptyset(&mask);
                sigaddset(&mask, SIGWINCH);
                sigprocmask(SIG_BLOCK, &mask, NULL);
                r = sd_event_add_signal(event, NULL, SIGWINCH, on_winch, &master);
        }
        if (r >= 0) {
                call.relay = relay;
                r = sd_bus_call_async(bus, &slot, m, on_shell_reply, &call, UINT64_MAX);
        }
        if (r < 0) {
                cli_error(name, "failed to set up the shell: %s", strerror(-r));
                return r;
        }
        /* The daemon has its copy now; ours would keep the master from seeing EOF. */
        slave = safe_close(slave);

        if (terminal_raw(STDIN_FILENO, &saved) < 0)
                saved = NULL;
        r = event_run_until(event, &relay->done);
        terminal_restore(STDIN_FILENO, saved);

        if (r < 0) {
                cli_error(name, "failed relaying the terminal: %s", strerror(-r));
                sd_bus_error_free(&call.bus_error);
                return r;
        }
        if (call.error < 0) {
                r = sd_bus_error_is_set(&call.bus_error)
                            ? cli_bus_error(name, "failed to run command", &call.bus_error, call.error)
                            : cli_bus_parse_error(call.error);
                sd_bus_error_free(&call.bus_error);
                return r;
        }
        return call.status & 0xff;
}

int verb_shell(sd_bus *bus, char **args)
{
        return isatty(STDIN_FILENO) ? shell_tty(bus, args[1]) : shell_plain(bus, args[1]);
}

/* ---- console ---- */

static int console_relay(const char *name, int fd)
{
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(relay_freep) Relay *relay = NULL;
        bool tty = isatty(STDIN_FILENO);
        void *saved = NULL;
        int r;

        r = sd_event_default(&event);
        if (r >= 0)
                r = relay_new(event, fd, true, &relay);
        if (r < 0) {
                cli_error(name, "failed to attach to the console: %s", strerror(-r));
                return r;
        }

        if (!arg.quiet)
                fprintf(stderr, "Connected to machine %s. Press ^] three times within 1s to exit session.\n",
                        name);
        if (tty && terminal_raw(STDIN_FILENO, &saved) < 0)
                saved = NULL;
        r = event_run_until(event, &relay->done);
        terminal_restore(STDIN_FILENO, saved);
        if (!arg.quiet)
                fprintf(stderr, "\nConnection to machine %s terminated.\n", name);
        if (r < 0) {
                cli_error(name, "failed relaying the console: %s", strerror(-r));
                return r;
        }
        return 0;
}

int verb_console(sd_bus *bus, char **args)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int fd = -1;
        const char *name = args[1];
        int r, received;

        r = sd_bus_call_method(bus, MM_SERVICE, MM_PATH, MM_MANAGER, "GetMachineConsole", &error, &reply, "s",
                               name);
        if (r < 0)
                return cli_bus_error(name, "failed to get the console", &error, r);
        r = sd_bus_message_read(reply, "h", &received);
        if (r < 0)
                return cli_bus_parse_error(r);

        /* The received fd belongs to the message. */
        fd = fcntl(received, F_DUPFD_CLOEXEC, 3);
        if (fd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
                r = negative_errno();
                cli_error(name, "failed to set up the console fd: %s", strerror(-r));
                return r;
        }
        return console_relay(name, fd);
}
