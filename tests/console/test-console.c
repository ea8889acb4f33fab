/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The console module against a real pty and a real journald: what a guest writes on the slave must come out
 * of the journal byte-exact, in order, with the right fields; attach clients see output and feed input;
 * an idle or closed console costs no CPU. Needs root and a journald (see journald.sh). The last tests
 * replace the journal's socket (in a mount namespace of their own) by one they read or leave full: the loop
 * must not wait for a full journal, the lines must all arrive once it has room, and each console gets
 * 10000 lines or 4 MiB per 30 s with a "lines suppressed" entry after. */

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>
#include <termios.h>
#include <time.h>

#include "console.h"
#include "log.h"
#include "util.h"

static unsigned n_passed, n_failed;
static char name_prefix[64];

#define CHECK(cond, ...)                                                                                    \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        fprintf(stderr, "  FAIL %s:%d: %s: ", __func__, __LINE__, #cond);                   \
                        fprintf(stderr, __VA_ARGS__);                                                       \
                        fputc('\n', stderr);                                                                \
                        return false;                                                                       \
                }                                                                                           \
        } while (0)

typedef struct Entry {
        char *message;
        size_t len;
        char *priority, *identifier, *machine, *object_pid;
        uint64_t realtime;
} Entry;

typedef struct Entries {
        Entry *e;
        size_t n;
} Entries;

static void entries_free(Entries *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->e[i].message);
                free(l->e[i].priority);
                free(l->e[i].identifier);
                free(l->e[i].machine);
                free(l->e[i].object_pid);
        }
        free(l->e);
        l->e = NULL;
        l->n = 0;
}

static void console_freep(Console **c)
{
        console_free(*c);
}

static char *field_dup(sd_journal *j, const char *field, size_t *ret_len)
{
        const void *d;
        size_t l, fl = strlen(field) + 1;
        if (sd_journal_get_data(j, field, &d, &l) < 0 || l < fl)
                return NULL;
        char *s = malloc(l - fl + 1);
        if (!s)
                abort();
        memcpy(s, (const char *)d + fl, l - fl);
        s[l - fl] = 0;
        if (ret_len)
                *ret_len = l - fl;
        return s;
}

static int journal_read(const char *machine, Entries *ret)
{
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        char match[128];
        Entries l = {};

        int r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return r;
        (void)sd_journal_set_data_threshold(j, 0);
        snprintf(match, sizeof match, "MACHINEMGR_MACHINE=%s", machine);
        r = sd_journal_add_match(j, match, 0);
        if (r < 0)
                return r;
        /* Only the console's lines, not the daemon's own messages about the machine. */
        snprintf(match, sizeof match, "SYSLOG_IDENTIFIER=%s", machine);
        r = sd_journal_add_match(j, match, 0);
        if (r < 0)
                return r;
        SD_JOURNAL_FOREACH(j)
        {
                Entry *n = realloc(l.e, (l.n + 1) * sizeof(Entry));
                if (!n)
                        abort();
                l.e = n;
                Entry *e = &l.e[l.n++];
                *e = (Entry){};
                e->message = field_dup(j, "MESSAGE", &e->len);
                e->priority = field_dup(j, "PRIORITY", NULL);
                e->identifier = field_dup(j, "SYSLOG_IDENTIFIER", NULL);
                e->machine = field_dup(j, "MACHINEMGR_MACHINE", NULL);
                e->object_pid = field_dup(j, "OBJECT_PID", NULL);
                (void)sd_journal_get_realtime_usec(j, &e->realtime);
        }
        *ret = l;
        return 0;
}

/* journald processes datagrams asynchronously: poll until at least n entries show up. */
static int journal_wait(const char *machine, size_t n, Entries *ret)
{
        for (int i = 0; i < 100; i++) {
                int r = journal_read(machine, ret);
                if (r < 0)
                        return r;
                if (ret->n >= n)
                        return 0;
                entries_free(ret);
                usleep(100 * 1000);
        }
        return journal_read(machine, ret);
}

static uint64_t cpu_usec(void)
{
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u + ru.ru_utime.tv_usec +
               ru.ru_stime.tv_usec;
}

static void run_loop(sd_event *e, uint64_t usec)
{
        uint64_t end = now_usec(CLOCK_MONOTONIC) + usec;
        for (uint64_t t; (t = now_usec(CLOCK_MONOTONIC)) < end;)
                (void)sd_event_run(e, end - t);
}

/* Writes like a guest, running the daemon's loop whenever the pty is full. */
static bool slave_write(sd_event *e, int fd, const void *buf, size_t len)
{
        while (len > 0) {
                ssize_t k = write(fd, buf, len);
                if (k < 0 && errno == EAGAIN) {
                        (void)sd_event_run(e, 10 * 1000);
                        continue;
                }
                if (k < 0)
                        return false;
                buf = (const char *)buf + k;
                len -= (size_t)k;
        }
        return true;
}

static int open_slave(Console *c)
{
        return open(console_slave_path(c), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
}

static void make_name(char *buf, size_t size, const char *what)
{
        snprintf(buf, size, "%s-%s", name_prefix, what);
}

/* A started console named after the test, with the guest's end open: what most tests begin with. */
static bool console_setup(const char *what, char name[static 128], sd_event **e, Console **c, int *slave)
{
        make_name(name, 128, what);
        CHECK(sd_event_new(e) >= 0, "sd_event_new");
        CHECK(console_new(*e, name, c) >= 0, "console_new");
        console_set_leader(*c, getpid());
        CHECK(console_start(*c) >= 0, "console_start");
        *slave = open_slave(*c);
        CHECK(*slave >= 0, "open slave: %m");
        return true;
}

/* Expected lines, matched against consecutive journal entries: a line longer than one entry may take
 * several, whose concatenation must be the line. */
typedef struct Expect {
        const char *data;
        size_t len;
} Expect;

static bool match_entries(const Entries *l, const Expect *x, size_t nx, pid_t leader, const char *machine)
{
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)leader);
        size_t i = 0;
        for (size_t k = 0; k < nx; k++) {
                size_t got = 0, pieces = 0;
                while (got < x[k].len || (x[k].len == 0 && pieces == 0)) {
                        CHECK(i < l->n, "line %zu: journal ended after %zu entries", k, l->n);
                        const Entry *e = &l->e[i++];
                        CHECK(e->message, "entry %zu has no MESSAGE", i - 1);
                        CHECK(streq_ptr(e->priority, "6"), "entry %zu PRIORITY=%s", i - 1,
                              strempty(e->priority));
                        CHECK(streq_ptr(e->identifier, machine), "entry %zu SYSLOG_IDENTIFIER=%s", i - 1,
                              strempty(e->identifier));
                        CHECK(streq_ptr(e->object_pid, pid), "entry %zu OBJECT_PID=%s", i - 1,
                              strempty(e->object_pid));
                        CHECK(got + e->len <= x[k].len, "line %zu: entry %zu too long (%zu) '%.40s'", k,
                              i - 1, e->len, e->message);
                        CHECK(memcmp(e->message, x[k].data + got, e->len) == 0,
                              "line %zu: entry %zu differs: '%.60s' vs '%.60s'", k, i - 1, e->message,
                              x[k].data + got);
                        got += e->len;
                        pieces++;
                }
                if (x[k].len > 8192)
                        CHECK(pieces > 1, "line %zu of %zu bytes not split", k, x[k].len);
        }
        CHECK(i == l->n, "%zu unexpected extra entries, first '%.60s'", l->n - i, l->e[i].message);
        return true;
}

static bool test_lines(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(console_freep) Console *c = NULL;
        _cleanup_close_ int slave = -1;
        _cleanup_free_ char *longline = NULL;
        _cleanup_free_ char *many = NULL;
        Expect x[1100];
        size_t nx = 0;
        char name[128];

        make_name(name, sizeof name, "lines");
        CHECK(sd_event_new(&e) >= 0, "sd_event_new");
        CHECK(console_new(e, name, &c) >= 0, "console_new");
        console_set_leader(c, getpid());
        CHECK(console_start(c) >= 0, "console_start");
        CHECK(strncmp(console_slave_path(c), "/dev/pts/", 9) == 0, "slave path %s", console_slave_path(c));
        CHECK(fcntl(console_master_fd(c), F_GETFD) & FD_CLOEXEC, "master not CLOEXEC");
        slave = open_slave(c);
        CHECK(slave >= 0, "open slave: %m");

        struct winsize ws;
        CHECK(ioctl(slave, TIOCGWINSZ, &ws) >= 0 && ws.ws_col == 80 && ws.ws_row == 24, "window size");

        static const char plain[] = "plain line";
        static const char colour[] = "\x1b[1;31mred\x1b[0m and \x1b[32mgreen\x1b[0m";
        static const char crlf[] = "written with crlf";
        x[nx++] = (Expect){plain, strlen(plain)};
        x[nx++] = (Expect){colour, strlen(colour)};
        x[nx++] = (Expect){"", 0};
        x[nx++] = (Expect){crlf, strlen(crlf)};
        CHECK(slave_write(e, slave, "plain line\n", 11), "write");
        CHECK(slave_write(e, slave, colour, strlen(colour)) && slave_write(e, slave, "\n\n", 2), "write");
        CHECK(slave_write(e, slave, "written with crlf\r\n", 19), "write");

        longline = malloc(20000);
        for (size_t i = 0; i < 20000; i++)
                longline[i] = 'a' + i % 26;
        x[nx++] = (Expect){longline, 20000};
        CHECK(slave_write(e, slave, longline, 20000) && slave_write(e, slave, "\n", 1), "write long");

        /* Many lines in few writes, as fast as the pty takes them. */
        const size_t n_many = 1000;
        many = malloc(n_many * 32);
        size_t off = 0;
        for (size_t i = 0; i < n_many; i++) {
                int k = sprintf(many + off, "fast line %zu\n", i);
                x[nx++] = (Expect){many + off, (size_t)k - 1};
                off += (size_t)k;
        }
        CHECK(slave_write(e, slave, many, off), "write many");

        static const char partial[] = "login: ";
        x[nx++] = (Expect){partial, strlen(partial)};
        CHECK(slave_write(e, slave, partial, strlen(partial)), "write partial");
        uint64_t partial_written = now_usec(CLOCK_REALTIME);

        run_loop(e, 600 * 1000);

        /* The ring has the newest lines for `status`. */
        _cleanup_strv_free_ char **last = NULL;
        CHECK(console_last_lines(c, 3, &last) >= 0, "console_last_lines");
        CHECK(strv_length(last) == 3 && streq(last[0], "fast line 998") && streq(last[1], "fast line 999") &&
                  streq(last[2], "login: "),
              "last lines: %s | %s | %s", strempty(last[0]), strempty(last[1]), strempty(last[2]));
        strv_free(last);
        last = NULL;
        CHECK(console_last_lines(c, 64, &last) >= 0 && strv_length(last) == 64, "64 last lines");

        Entries l = {};
        CHECK(journal_wait(name, nx + 4 /* the long line's pieces */, &l) >= 0, "read journal");
        bool ok = match_entries(&l, x, nx, getpid(), name);
        if (ok) {
                /* The partial line waits for more, but not forever. */
                int64_t delay = (int64_t)(l.e[l.n - 1].realtime - partial_written);
                if (delay < 150 * 1000 || delay > 2000 * 1000) {
                        fprintf(stderr, "  FAIL %s: partial line logged after %lld us\n", __func__,
                                (long long)delay);
                        ok = false;
                }
        }
        entries_free(&l);
        return ok;
}

static bool test_flush(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(console_freep) Console *c = NULL;
        _cleanup_close_ int slave = -1;
        char name[128];

        if (!console_setup("flush", name, &e, &c, &slave))
                return false;

        /* The guest's last words, never seen by the loop: console_flush must get them all. */
        CHECK(slave_write(e, slave, "last line\nno newline", 20), "write");
        slave = safe_close(slave);
        console_flush(c);

        Entries l = {};
        CHECK(journal_wait(name, 2, &l) >= 0, "read journal");
        Expect x[] = {{"last line", 9}, {"no newline", 10}};
        bool ok = match_entries(&l, x, ELEMENTSOF(x), getpid(), name);
        entries_free(&l);
        return ok;
}

static bool read_until(int fd, sd_event *e, const char *want, char *buf, size_t size)
{
        size_t len = 0;
        for (int i = 0; i < 200; i++) {
                /* Only the tail matters: keep room by dropping older bytes. */
                if (len > size / 2) {
                        memmove(buf, buf + len - 256, 256);
                        len = 256;
                }
                ssize_t k = read(fd, buf + len, size - 1 - len);
                if (k > 0) {
                        len += (size_t)k;
                        buf[len] = 0;
                        if (strstr(buf, want))
                                return true;
                } else if (k == 0)
                        break;
                (void)sd_event_run(e, 10 * 1000);
        }
        buf[len] = 0;
        return false;
}

static bool test_attach(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(console_freep) Console *c = NULL;
        _cleanup_close_ int slave = -1, a = -1, b = -1, slow = -1, dead = -1;
        char name[128], buf[8192];

        if (!console_setup("attach", name, &e, &c, &slave))
                return false;
        /* What a client types would otherwise be echoed back into the console log. */
        struct termios t;
        CHECK(tcgetattr(slave, &t) >= 0, "tcgetattr");
        t.c_lflag &= ~ECHO;
        CHECK(tcsetattr(slave, TCSANOW, &t) >= 0, "tcsetattr");

        CHECK(console_attach(c, &a) >= 0 && console_attach(c, &b) >= 0, "console_attach");
        CHECK(console_attach(c, &slow) >= 0 && console_attach(c, &dead) >= 0, "console_attach");
        CHECK(fcntl(a, F_GETFD) & FD_CLOEXEC, "client fd not CLOEXEC");
        CHECK(fcntl(a, F_SETFL, O_NONBLOCK) >= 0 && fcntl(b, F_SETFL, O_NONBLOCK) >= 0, "fcntl");
        dead = safe_close(dead);

        CHECK(slave_write(e, slave, "to clients\n", 11), "write");
        CHECK(read_until(a, e, "to clients\r\n", buf, sizeof buf), "client a got '%s'", buf);
        CHECK(read_until(b, e, "to clients\r\n", buf, sizeof buf), "client b got '%s'", buf);

        /* Input from either client reaches the guest. */
        CHECK(write(a, "typed by a\n", 11) == 11 && write(b, "typed by b\n", 11) == 11, "client write");
        CHECK(read_until(slave, e, "typed by b\n", buf, sizeof buf), "slave got '%s'", buf);
        CHECK(strstr(buf, "typed by a\n"), "slave got '%s'", buf);

        /* A client that never reads must not hold up the guest, the journal or the other clients: past its
         * 1 MiB of socket buffer it is dropped. */
        static char chunk[1000];
        memset(chunk, 'x', sizeof chunk - 1);
        chunk[sizeof chunk - 1] = '\n';
        size_t total = 0;
        for (int i = 0; i < 3000; i++) {
                CHECK(slave_write(e, slave, chunk, sizeof chunk), "write flood");
                total += sizeof chunk;
                /* Client a keeps up; b and slow do not read. */
                while (read(a, buf, sizeof buf) > 0)
                        ;
        }
        run_loop(e, 300 * 1000);
        /* The slow clients were dropped: after what its socket buffer held it sees EOF. */
        CHECK(fcntl(slow, F_SETFL, O_NONBLOCK) >= 0, "fcntl");
        size_t got = 0;
        ssize_t k;
        while ((k = read(slow, buf, sizeof buf)) > 0)
                got += (size_t)k;
        CHECK(k == 0 && got < total, "slow client not dropped (read %zd, got %zu of %zu)", k, got, total);
        got = 0;
        while ((k = read(b, buf, sizeof buf)) > 0)
                got += (size_t)k;
        CHECK(k == 0 && got < total, "client b not dropped (read %zd, got %zu of %zu)", k, got, total);

        CHECK(slave_write(e, slave, "after flood\n", 12), "write");
        CHECK(read_until(a, e, "after flood\r\n", buf, sizeof buf), "client a got '%.100s'", buf);

        Entries l = {};
        CHECK(journal_wait(name, 3002, &l) >= 0, "read journal");
        bool ok = l.n == 3002 && l.e[0].len == 10 && memcmp(l.e[0].message, "to clients", 10) == 0 &&
                  l.e[3001].len == 11 && memcmp(l.e[3001].message, "after flood", 11) == 0;
        if (!ok)
                fprintf(stderr, "  FAIL %s: %zu journal entries, want 3002\n", __func__, l.n);
        entries_free(&l);
        return ok;
}

static bool loop_is_idle(sd_event *e, const char *what)
{
        uint64_t cpu0 = cpu_usec();
        run_loop(e, 1000 * 1000);
        uint64_t used = cpu_usec() - cpu0;
        printf("  %s: %llu us CPU in 1 s of loop\n", what, (unsigned long long)used);
        CHECK(used < 50 * 1000, "%s: loop used %llu us CPU in 1 s", what, (unsigned long long)used);
        return true;
}

static bool test_no_spin(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(console_freep) Console *c = NULL;
        _cleanup_close_ int slave = -1;
        char name[128];

        make_name(name, sizeof name, "idle");
        CHECK(sd_event_new(&e) >= 0, "sd_event_new");
        CHECK(console_new(e, name, &c) >= 0, "console_new");
        console_set_leader(c, getpid());
        CHECK(console_start(c) >= 0, "console_start");

        if (!loop_is_idle(e, "slave never opened"))
                return false;

        slave = open_slave(c);
        CHECK(slave >= 0, "open slave: %m");
        CHECK(slave_write(e, slave, "before close\n", 13), "write");
        if (!loop_is_idle(e, "slave open, idle"))
                return false;
        slave = safe_close(slave);
        if (!loop_is_idle(e, "slave closed"))
                return false;

        /* The guest opens its console again (a reboot, a new getty): lines flow again. */
        slave = open_slave(c);
        CHECK(slave >= 0, "reopen slave: %m");
        CHECK(slave_write(e, slave, "after reopen\n", 13), "write");
        run_loop(e, 100 * 1000);

        Entries l = {};
        CHECK(journal_wait(name, 2, &l) >= 0, "read journal");
        Expect x[] = {{"before close", 12}, {"after reopen", 12}};
        bool ok = match_entries(&l, x, ELEMENTSOF(x), getpid(), name);
        entries_free(&l);
        return ok;
}

static bool test_adopt(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(console_freep) Console *c = NULL;
        _cleanup_close_ int slave = -1, fd = -1;
        char name[128];

        if (!console_setup("adopt", name, &e, &c, &slave))
                return false;
        CHECK(slave_write(e, slave, "old daemon\n", 11), "write");
        run_loop(e, 50 * 1000);

        /* The daemon restarts: the fd store kept the master, the guest kept writing meanwhile. */
        fd = fcntl(console_master_fd(c), F_DUPFD, 3);
        CHECK(fd >= 0, "dup: %m");
        c = console_free(c);
        CHECK(slave_write(e, slave, "while restarting\n", 17), "write");

        CHECK(console_new_from_fd(e, name, fd, &c) >= 0, "console_new_from_fd");
        TAKE_FD(fd);
        CHECK(fcntl(console_master_fd(c), F_GETFD) & FD_CLOEXEC, "adopted master not CLOEXEC");
        console_set_leader(c, getpid());
        CHECK(console_start(c) >= 0, "console_start");
        CHECK(slave_write(e, slave, "new daemon\n", 11), "write");
        run_loop(e, 100 * 1000);

        int bad = open("/dev/null", O_RDWR | O_CLOEXEC);
        Console *d = NULL;
        CHECK(console_new_from_fd(e, name, bad, &d) < 0, "adopted /dev/null as a console");
        safe_close(bad);

        Entries l = {};
        CHECK(journal_wait(name, 3, &l) >= 0, "read journal");
        Expect x[] = {{"old daemon", 10}, {"while restarting", 16}, {"new daemon", 10}};
        bool ok = match_entries(&l, x, ELEMENTSOF(x), getpid(), name);
        entries_free(&l);
        return ok;
}

/* ---- against a journal of our own: a full journal, the rate limit ---- */

/* journald's socket, replaced in a mount namespace of this process by one the test reads (or not). */
static int fake_journal = -1;

/* A new socket bound over journald's path: also what a restarted journald looks like to the daemon. */
static bool fake_journal_bind(void)
{
        char path[] = "/tmp/console-test-journal-XXXXXX";
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = mkstemp(path);
        CHECK(fd >= 0, "mkstemp: %m");
        close(fd);
        unlink(path);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        safe_close(fake_journal);
        fake_journal = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        CHECK(fake_journal >= 0 && bind(fake_journal, (struct sockaddr *)&sa, sizeof sa) >= 0, "bind: %m");
        (void)umount2("/run/systemd/journal/socket", MNT_DETACH);
        CHECK(mount(path, "/run/systemd/journal/socket", NULL, MS_BIND, NULL) >= 0, "bind socket: %m");
        unlink(path);
        return true;
}

static bool fake_journal_setup(void)
{
        CHECK(unshare(CLONE_NEWNS) >= 0, "unshare: %m");
        CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) >= 0, "make / private: %m");
        return fake_journal_bind();
}

typedef struct Datagram {
        char message[8192];
        size_t message_len;
        char priority[8], machine[128], identifier[128], dropped[32];
} Datagram;

static void copy_field(char *dst, size_t size, const char *v, size_t len)
{
        len = len < size - 1 ? len : size - 1;
        memcpy(dst, v, len);
        dst[len] = 0;
}

/* One datagram of the native protocol ("NAME=value\n" fields; the console never sends the binary form). */
static int fake_journal_read(Datagram *d)
{
        static char buf[16384];
        ssize_t n = recv(fake_journal, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
                return 0;
        *d = (Datagram){};
        for (char *p = buf, *end = buf + n; p < end;) {
                char *nl = memchr(p, '\n', (size_t)(end - p));
                char *eq = memchr(p, '=', (size_t)((nl ? nl : end) - p));
                size_t len = (size_t)((nl ? nl : end) - p);
                if (eq) {
                        size_t k = (size_t)(eq - p), vl = len - k - 1;
                        if (k == 7 && memcmp(p, "MESSAGE", 7) == 0) {
                                copy_field(d->message, sizeof d->message, eq + 1, vl);
                                d->message_len = vl;
                        } else if (k == 8 && memcmp(p, "PRIORITY", 8) == 0)
                                copy_field(d->priority, sizeof d->priority, eq + 1, vl);
                        else if (k == 18 && memcmp(p, "MACHINEMGR_MACHINE", 18) == 0)
                                copy_field(d->machine, sizeof d->machine, eq + 1, vl);
                        else if (k == 17 && memcmp(p, "SYSLOG_IDENTIFIER", 17) == 0)
                                copy_field(d->identifier, sizeof d->identifier, eq + 1, vl);
                        else if (k == 9 && memcmp(p, "N_DROPPED", 9) == 0)
                                copy_field(d->dropped, sizeof d->dropped, eq + 1, vl);
                }
                p += len + 1;
        }
        return 1;
}

/* Writes without blocking: what the pty takes now. */
static size_t slave_try_write(int fd, const char *buf, size_t len)
{
        ssize_t k = write(fd, buf, len);
        return k > 0 ? (size_t)k : 0;
}

static bool test_journal_restart(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(console_freep) Console *c = NULL;
        _cleanup_close_ int slave = -1;
        char name[128];
        Datagram d = {};

        if (!console_setup("restart", name, &e, &c, &slave))
                return false;
        CHECK(slave_write(e, slave, "before restart\n", 15), "write");
        run_loop(e, 100 * 1000);
        CHECK(fake_journal_read(&d) > 0 && streq(d.message, "before restart"), "got '%s'", d.message);

        /* journald restarts: the old socket is gone, the path has a new one. The next line goes there. */
        if (!fake_journal_bind())
                return false;
        CHECK(slave_write(e, slave, "after restart\n", 14), "write");
        run_loop(e, 100 * 1000);
        d = (Datagram){};
        CHECK(fake_journal_read(&d) > 0 && streq(d.message, "after restart"), "got '%s'", d.message);
        return true;
}

static bool test_journal_full(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(console_freep) Console *c = NULL;
        _cleanup_close_ int slave = -1;
        _cleanup_free_ char *text = NULL;
        char name[128];
        const unsigned n_lines = 8000;

        if (!console_setup("full", name, &e, &c, &slave))
                return false;

        text = malloc(n_lines * 32);
        size_t len = 0, written = 0;
        for (unsigned i = 0; i < n_lines; i++)
                len += (size_t)sprintf(text + len, "queued line %u\n", i);

        /* The journal reads nothing for a second: the loop must not wait for it, the guest must. */
        uint64_t end = now_usec(CLOCK_MONOTONIC) + 1000 * 1000, longest = 0;
        while (now_usec(CLOCK_MONOTONIC) < end) {
                written += slave_try_write(slave, text + written, len - written);
                uint64_t t0 = now_usec(CLOCK_MONOTONIC);
                (void)sd_event_run(e, 10 * 1000);
                uint64_t t = now_usec(CLOCK_MONOTONIC) - t0;
                longest = t > longest ? t : longest;
        }
        printf("  journal not reading: longest loop iteration %llu us, guest wrote %zu of %zu bytes\n",
               (unsigned long long)longest, written, len);
        CHECK(longest < 50 * 1000, "a loop iteration took %llu us with the journal full",
              (unsigned long long)longest);
        CHECK(written < len, "the guest was never held back (%zu bytes written)", written);

        /* The journal catches up: every line arrives, in order, once. */
        unsigned next = 0;
        Datagram d;
        end = now_usec(CLOCK_MONOTONIC) + 20 * 1000 * 1000;
        while (next < n_lines && now_usec(CLOCK_MONOTONIC) < end) {
                written += slave_try_write(slave, text + written, len - written);
                (void)sd_event_run(e, 1000);
                while (fake_journal_read(&d) > 0) {
                        char want[32];
                        snprintf(want, sizeof want, "queued line %u", next);
                        CHECK(streq(d.message, want), "got '%s', want '%s'", d.message, want);
                        CHECK(streq(d.priority, "6") && streq(d.machine, name) && streq(d.identifier, name),
                              "fields of '%s': %s %s %s", d.message, d.priority, d.machine, d.identifier);
                        next++;
                }
        }
        CHECK(next == n_lines, "%u of %u lines arrived", next, n_lines);
        return true;
}

/* Lines of size len until the burst is spent, then some more; returns the entries the journal got. */
static bool ratelimit_flood(sd_event *e, Console *c, int slave, size_t line_len, unsigned n_lines,
                            unsigned *ret_logged, Datagram *ret_notice)
{
        _cleanup_free_ char *line = malloc(line_len + 1);
        unsigned written = 0, logged = 0;
        size_t off = 0;
        Datagram d;

        CHECK(line, "malloc");
        memset(line, 'r', line_len);
        line[line_len] = '\n';
        *ret_notice = (Datagram){};
        /* 35 s: past the end of the 30-s interval that began with the first line. */
        uint64_t end = now_usec(CLOCK_MONOTONIC) + 35 * 1000 * 1000;
        while (now_usec(CLOCK_MONOTONIC) < end && !ret_notice->priority[0]) {
                while (written < n_lines) {
                        size_t k = slave_try_write(slave, line + off, line_len + 1 - off);
                        if (k == 0)
                                break;
                        off += k;
                        if (off == line_len + 1) {
                                off = 0;
                                written++;
                        }
                }
                (void)sd_event_run(e, 10 * 1000);
                while (fake_journal_read(&d) > 0) {
                        if (streq(d.priority, "4"))
                                *ret_notice = d;
                        else
                                logged++;
                }
        }
        CHECK(written == n_lines, "the guest could write only %u of %u lines", written, n_lines);
        *ret_logged = logged;
        return true;
}

static bool test_ratelimit(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(console_freep) Console *c = NULL;
        _cleanup_close_ int slave = -1, client = -1;
        char name[128];
        unsigned logged;
        Datagram notice, d;

        if (!console_setup("ratelimit", name, &e, &c, &slave))
                return false;
        CHECK(console_attach(c, &client) >= 0 && fcntl(client, F_SETFL, O_NONBLOCK) >= 0, "attach");

        /* 10000 lines per interval, then one notice with the count when it ends. */
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        if (!ratelimit_flood(e, c, slave, 10, 12500, &logged, &notice))
                return false;
        printf("  short lines: %u logged, notice after %.1f s: '%s' N_DROPPED=%s\n", logged,
               (double)(now_usec(CLOCK_MONOTONIC) - t0) / 1e6, notice.message, notice.dropped);
        CHECK(logged == 10000, "%u lines logged, want 10000", logged);
        CHECK(strstr(notice.message, "2500 console lines suppressed") && streq(notice.dropped, "2500") &&
                      streq(notice.machine, name),
              "notice '%s' N_DROPPED=%s MACHINEMGR_MACHINE=%s", notice.message, notice.dropped, notice.machine);
        /* The attached client saw every line, logged or not. */
        size_t got = 0;
        char buf[65536];
        for (ssize_t k; (k = read(client, buf, sizeof buf)) > 0;)
                got += (size_t)k;
        CHECK(got == 12500 * 12, "the client got %zu bytes of %u", got, 12500 * 12);

        /* A new interval: lines are logged again. */
        CHECK(slave_write(e, slave, "next interval\n", 14), "write");
        run_loop(e, 100 * 1000);
        CHECK(fake_journal_read(&d) > 0 && streq(d.message, "next interval"), "after the interval: '%s'",
              d.message);
        return true;
}

static bool test_ratelimit_bytes(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(console_freep) Console *c = NULL;
        _cleanup_close_ int slave = -1;
        char name[128];
        unsigned logged;
        Datagram notice;

        if (!console_setup("ratelimit-bytes", name, &e, &c, &slave))
                return false;

        /* 4 MiB per interval: 1048 lines of 4000 bytes. */
        if (!ratelimit_flood(e, c, slave, 4000, 1200, &logged, &notice))
                return false;
        printf("  4000-byte lines: %u logged, notice '%s'\n", logged, notice.message);
        CHECK(logged == 4 * 1024 * 1024 / 4000, "%u lines logged, want %u", logged, 4 * 1024 * 1024 / 4000);
        CHECK(streq(notice.dropped, "152"), "notice N_DROPPED=%s", notice.dropped);
        return true;
}

static void run(const char *name, bool (*f)(void))
{
        printf("%s...\n", name);
        fflush(stdout);
        if (f()) {
                n_passed++;
                printf("  ok\n");
        } else
                n_failed++;
        fflush(stdout);
}

int main(void)
{
        if (geteuid() != 0 || access("/run/systemd/journal/socket", W_OK) < 0) {
                printf("needs root and a running journald, skipping\n");
                return 77;
        }
        if (getenv("CONSOLE_TEST_DEBUG"))
                log_set_max_level(LOG_DEBUG);
        snprintf(name_prefix, sizeof name_prefix, "console-test-%d-%llu", (int)getpid(),
                 (unsigned long long)now_usec(CLOCK_REALTIME));

        run("lines", test_lines);
        run("flush", test_flush);
        run("attach", test_attach);
        run("no-spin", test_no_spin);
        run("adopt", test_adopt);
        /* Last: from here on this process's journal socket is the test's own. */
        if (!fake_journal_setup()) {
                printf("could not replace the journal socket\n");
                return 1;
        }
        run("journal-restart", test_journal_restart);
        run("journal-full", test_journal_full);
        run("ratelimit", test_ratelimit);
        run("ratelimit-bytes", test_ratelimit_bytes);

        printf("%u passed, %u failed\n", n_passed, n_failed);
        return n_failed == 0 ? 0 : 1;
}
