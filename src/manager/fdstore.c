/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fdstore.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "log.h"
#include "util.h"

#define FDSTORE_MSG_MAX 512
#define HOLDER_MAX_CLIENTS 16

struct FdStore {
        int fd;
};

#define FDSTORE_FDS_MAX 2

/* One message with up to FDSTORE_FDS_MAX fds (SCM_RIGHTS); negative entries are skipped. */
static int send_with_fds(int sock, const char *text, const int *fds, size_t n_fds)
{
        struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * FDSTORE_FDS_MAX)];
        } control = {};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        int valid[FDSTORE_FDS_MAX];
        size_t n = 0;
        for (size_t i = 0; i < n_fds && n < FDSTORE_FDS_MAX; i++)
                if (fds[i] >= 0)
                        valid[n++] = fds[i];
        if (n > 0) {
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n);
                memcpy(CMSG_DATA(c), valid, sizeof(int) * n);
        }
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int send_with_fd(int sock, const char *text, int fd)
{
        return send_with_fds(sock, text, &fd, 1);
}

/* One message; ret_fds[] gets the passed fds in order, -1 where none came. Returns the length, 0 on EOF. */
static ssize_t recv_with_fds(int sock, char *buf, size_t size, int ret_fds[FDSTORE_FDS_MAX])
{
        struct iovec iov = {.iov_base = buf, .iov_len = size - 1};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * FDSTORE_FDS_MAX)];
        } control = {};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                            .msg_controllen = sizeof control.buf};
        for (size_t i = 0; i < FDSTORE_FDS_MAX; i++)
                ret_fds[i] = -1;
        ssize_t k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (k < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        memcpy(ret_fds, CMSG_DATA(c), sizeof(int) * (n < FDSTORE_FDS_MAX ? n : FDSTORE_FDS_MAX));
                }
        buf[k] = 0;
        return k;
}

static ssize_t recv_with_fd(int sock, char *buf, size_t size, int *ret_fd)
{
        int fds[FDSTORE_FDS_MAX];
        ssize_t k = recv_with_fds(sock, buf, size, fds);
        *ret_fd = fds[0];
        for (size_t i = 1; i < FDSTORE_FDS_MAX; i++)
                safe_close(fds[i]);
        return k;
}

/* ---- the holder ---- */

typedef struct Held {
        char *name;
        int fd;
        int owner_pidfd; /* the machine's leader: when it exits, nobody will ever need the fd again */
} Held;

static Held *held;
static size_t n_held;

static void holder_remove(const char *name)
{
        for (size_t i = 0; i < n_held; i++)
                if (streq(held[i].name, name)) {
                        safe_close(held[i].fd);
                        safe_close(held[i].owner_pidfd);
                        free(held[i].name);
                        held[i] = held[--n_held];
                        return;
                }
}

static void holder_put(const char *name, int fd, int owner_pidfd)
{
        holder_remove(name);
        Held *n = realloc(held, (n_held + 1) * sizeof *held);
        char *copy = strdup(name);
        if (!n || !copy) {
                free(copy);
                if (n)
                        held = n;
                safe_close(fd);
                safe_close(owner_pidfd);
                return;
        }
        held = n;
        held[n_held++] = (Held){copy, fd, owner_pidfd};
}

/* Returns false once the client has gone (EOF or error). */
static bool holder_serve(int client)
{
        char buf[FDSTORE_MSG_MAX];
        int fds[FDSTORE_FDS_MAX];
        ssize_t k = recv_with_fds(client, buf, sizeof buf, fds);
        if (k <= 0)
                return k == -EAGAIN || k == -EINTR;
        if (strncmp(buf, "PUT ", 4) == 0 && fds[0] >= 0)
                holder_put(buf + 4, TAKE_FD(fds[0]), TAKE_FD(fds[1]));
        else if (strncmp(buf, "REMOVE ", 7) == 0)
                holder_remove(buf + 7);
        else if (streq(buf, "GET")) {
                for (size_t i = 0; i < n_held; i++) {
                        char msg[FDSTORE_MSG_MAX];
                        snprintf(msg, sizeof msg, "FD %s", held[i].name);
                        (void)send_with_fd(client, msg, held[i].fd);
                }
                (void)send_with_fd(client, "END", -1);
        }
        for (size_t i = 0; i < FDSTORE_FDS_MAX; i++)
                safe_close(fds[i]);
        return true;
}

/* A machine whose leader is gone (stopped while the daemon was down, or the daemon never came back) will
 * never be re-adopted: its console is dropped, so an emptied holder can exit. */
static void holder_drop_dead_owners(void)
{
        for (size_t i = 0; i < n_held;) {
                struct pollfd p = {.fd = held[i].owner_pidfd, .events = POLLIN};
                if (held[i].owner_pidfd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
                        _cleanup_free_ char *name = strdup(held[i].name);
                        if (name)
                                holder_remove(name);
                        continue;
                }
                i++;
        }
}

int fdstore_holder_run(int listen_fd)
{
        int clients[HOLDER_MAX_CLIENTS];
        size_t n_clients = 0;
        bool had_client = false;

        (void)prctl(PR_SET_NAME, "mm-fdstore");
        for (;;) {
                holder_drop_dead_owners();
                /* Nothing held and nobody to hand anything to: no reason to exist. */
                if (had_client && n_clients == 0 && n_held == 0)
                        return 0;

                /* listen socket, clients, then every held fd's owner pidfd (readable once it exits) */
                size_t n = 0;
                struct pollfd p[1 + HOLDER_MAX_CLIENTS + n_held];
                p[n++] = (struct pollfd){.fd = listen_fd, .events = n_clients < HOLDER_MAX_CLIENTS ? POLLIN : 0};
                for (size_t i = 0; i < n_clients; i++)
                        p[n++] = (struct pollfd){.fd = clients[i], .events = POLLIN};
                for (size_t i = 0; i < n_held; i++)
                        p[n++] = (struct pollfd){.fd = held[i].owner_pidfd, .events = POLLIN};
                if (poll(p, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                size_t kept = 0;
                for (size_t i = 0; i < n_clients; i++) {
                        short revents = p[1 + i].revents;
                        bool alive = true;
                        if (revents & POLLIN)
                                alive = holder_serve(clients[i]);
                        else if (revents & (POLLHUP | POLLERR))
                                alive = false;
                        if (alive)
                                clients[kept++] = clients[i];
                        else
                                safe_close(clients[i]);
                }
                n_clients = kept;
                if (p[0].revents & POLLIN) {
                        int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        if (c >= 0) {
                                clients[n_clients++] = c;
                                had_client = true;
                        }
                }
        }
}

/* ---- the daemon's side ---- */

static int socket_address(const char *runtime_dir, struct sockaddr_un *sa)
{
        *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
        if ((size_t)snprintf(sa->sun_path, sizeof sa->sun_path, "%s/fdstore", runtime_dir) >= sizeof sa->sun_path)
                return -ENAMETOOLONG;
        return 0;
}

/* Binds the socket ourselves, so that connecting right after the spawn cannot race the holder. The holder
 * is double-forked: it must not be our child (a daemon restart must not touch it) nor a zombie of ours. */
static int holder_spawn(const struct sockaddr_un *sa)
{
        _cleanup_close_ int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (lfd < 0)
                return -errno;
        (void)unlink(sa->sun_path);
        if (bind(lfd, (const struct sockaddr *)sa, sizeof *sa) < 0 || chmod(sa->sun_path, 0600) < 0 ||
            listen(lfd, 8) < 0)
                return -errno;

        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (fork() != 0)
                        _exit(0);
                setsid();
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (dup2(lfd, 3) < 0)
                        _exit(1);
                int null = open("/dev/null", O_RDWR);
                if (null >= 0) { /* it never writes; and must not keep the daemon's log file open */
                        dup2(null, 0);
                        dup2(null, 1);
                        dup2(null, 2);
                }
                close_range(4, ~0U, 0);
                execl("/proc/self/exe", "machinemgrd", "--fd-holder", NULL);
                _exit(fdstore_holder_run(3));
        }
        (void)waitpid(pid, NULL, 0);
        return 0;
}

int fdstore_connect(const char *runtime_dir, FdStore **ret)
{
        struct sockaddr_un sa;
        int r = socket_address(runtime_dir, &sa);
        if (r < 0)
                return r;
        for (int attempt = 0; attempt < 2; attempt++) {
                _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
                if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
                        FdStore *s = malloc(sizeof *s);
                        if (!s)
                                return -ENOMEM;
                        s->fd = TAKE_FD(fd);
                        *ret = s;
                        return 0;
                }
                if (errno != ECONNREFUSED && errno != ENOENT)
                        return -errno;
                if (attempt == 0 && (r = holder_spawn(&sa)) < 0)
                        return r;
        }
        return -ECONNREFUSED;
}

int fdstore_put(FdStore *s, const char *name, int fd, int owner_pidfd)
{
        char msg[FDSTORE_MSG_MAX];
        if ((size_t)snprintf(msg, sizeof msg, "PUT %s", name) >= sizeof msg)
                return -ENAMETOOLONG;
        int fds[] = {fd, owner_pidfd};
        return send_with_fds(s->fd, msg, fds, ELEMENTSOF(fds));
}

int fdstore_remove(FdStore *s, const char *name)
{
        char msg[FDSTORE_MSG_MAX];
        if ((size_t)snprintf(msg, sizeof msg, "REMOVE %s", name) >= sizeof msg)
                return -ENAMETOOLONG;
        return send_with_fd(s->fd, msg, -1);
}

int fdstore_get_all(FdStore *s, char ***ret_names, int **ret_fds, size_t *ret_n)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ int *fds = NULL;
        size_t n = 0;
        int r = send_with_fd(s->fd, "GET", -1);
        if (r < 0)
                return r;
        for (;;) {
                char buf[FDSTORE_MSG_MAX];
                int fd;
                ssize_t k = recv_with_fd(s->fd, buf, sizeof buf, &fd);
                if (k <= 0) {
                        r = k < 0 ? (int)k : -ECONNRESET;
                        break;
                }
                if (streq(buf, "END")) {
                        r = 0;
                        break;
                }
                if (strncmp(buf, "FD ", 3) != 0 || fd < 0) {
                        safe_close(fd);
                        continue;
                }
                int *nf = realloc(fds, (n + 1) * sizeof(int));
                if (!nf || strv_extend(&names, buf + 3) < 0) {
                        if (nf)
                                fds = nf;
                        safe_close(fd);
                        r = -ENOMEM;
                        break;
                }
                fds = nf;
                fds[n++] = fd;
        }
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        safe_close(fds[i]);
                return r;
        }
        *ret_names = TAKE_PTR(names);
        *ret_fds = TAKE_PTR(fds);
        *ret_n = n;
        return 0;
}

FdStore *fdstore_free(FdStore *s)
{
        if (!s)
                return NULL;
        safe_close(s->fd);
        free(s);
        return NULL;
}

/* ---- envelopes for the service manager's fd store (see fdstore.h) ---- */

int fdstore_wrap_fd(int fd, int *ret_envelope)
{
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        /* The message waits in pair[0]'s queue; the sending end is not needed once it is there. */
        int r = send_with_fd(pair[1], "fd", fd);
        safe_close(pair[1]);
        if (r < 0) {
                safe_close(pair[0]);
                return r;
        }
        *ret_envelope = pair[0];
        return 0;
}

int fdstore_unwrap_fd(int envelope, int *ret_fd)
{
        struct stat st;
        if (fstat(envelope, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return -ENOTSOCK;

        char buf[8];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                            .msg_controllen = sizeof control.buf};
        /* MSG_PEEK installs a copy of the passed fd and leaves the message queued, so the envelope
         * still in the store is good for the next restart too. */
        if (recvmsg(envelope, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0)
                return -errno;
        int fd = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        if (fd < 0)
                return -EBADMSG;
        *ret_fd = fd;
        return 0;
}
