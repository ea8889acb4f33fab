/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "container.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "capabilities.h"
#include "mount-setup.h"
#include "netns.h"
#include "seccomp-policy.h"
#include "userns.h"
#include "util.h"

#define GUEST_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* A guest's /etc/passwd or /etc/group is read whole; beyond this (some 50,000 accounts) it is refused. */
#define GUEST_ACCOUNTS_MAX (4U * 1024U * 1024U)

/* Sync socket messages from child to parent: the errno as an int32_t, then "step: strerror". */
typedef struct SyncError {
        int32_t error;
        char text[508];
} SyncError;

/* A child with a pidfd, born in cgroup_fd's cgroup when that is >= 0. */
static struct clone_args clone_args_pidfd(uint64_t flags, int cgroup_fd, int *ret_pidfd)
{
        struct clone_args args = {
                .flags = flags | CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = SIGCHLD,
        };

        if (cgroup_fd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t) cgroup_fd;
        }
        return args;
}

static pid_t clone3_pidfd(uint64_t flags, int cgroup_fd, int *ret_pidfd)
{
        struct clone_args args = clone_args_pidfd(flags, cgroup_fd, ret_pidfd);
        return (pid_t) syscall(SYS_clone3, &args, sizeof(args));
}

static void kill_and_reap(int pidfd)
{
        siginfo_t si;

        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        (void) waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED);
}

static struct rlimit guest_nofile = {.rlim_cur = RLIM_INFINITY}; /* rlim_cur infinity: leave alone */

void container_set_guest_nofile(const struct rlimit *original)
{
        guest_nofile = *original;
        /* A daemon started with a high soft limit (its unit's LimitNOFILE=N sets both) cannot tell what
         * its guests should have had: they get the soft limit systemd gives what it starts, FD_SETSIZE,
         * which select() still needs; the hard limit stays, for whoever wants more. */
        if (guest_nofile.rlim_cur > FD_SETSIZE)
                guest_nofile.rlim_cur = FD_SETSIZE;
}

/* The daemon blocks the signals sd-event handles and may ignore others, and runs with a raised fd limit;
 * all of it survives exec, none of it is the guest's business. */
static void reset_signals(void)
{
        sigset_t all;

        for (int sig = 1; sig < _NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        if (guest_nofile.rlim_cur != RLIM_INFINITY)
                (void) setrlimit(RLIMIT_NOFILE, &guest_nofile);
}

/* ---- child side: runs in the new namespaces, reports failures over the sync socket ---- */

_Noreturn static void child_fail(int sync_fd, const char *step, int error)
{
        SyncError e = { .error = abs(error) };
        int n = snprintf(e.text, sizeof(e.text), "%s: %s", step, strerror(abs(error)));

        (void) send(sync_fd, &e, offsetof(SyncError, text) + (size_t) n, MSG_NOSIGNAL);
        _exit(EXIT_FAILURE);
}

static int child_push_env(char ***env, const char *fmt, const char *value)
{
        char *s;

        if (asprintf(&s, fmt, value) < 0)
                return -ENOMEM;
        return strv_push(env, s);
}

static char **guest_environment(const ContainerConfig *c)
{
        char uuid[SD_ID128_UUID_STRING_MAX];
        char **env = NULL;

        if (child_push_env(&env, "container=%s", "machinemgr") < 0 ||
            child_push_env(&env, "container_uuid=%s", sd_id128_to_uuid_string(c->uuid, uuid)) < 0 ||
            (c->run_host_dir && child_push_env(&env, "NOTIFY_SOCKET=%s", "/run/host/notify") < 0) ||
            child_push_env(&env, "PATH=%s", GUEST_PATH) < 0 || child_push_env(&env, "TERM=%s", "vt220") < 0 ||
            child_push_env(&env, "HOME=%s", "/") < 0)
                return NULL;
        STRV_FOREACH(e, c->environment)
        if (strv_extend(&env, *e) < 0)
                return NULL;
        return env;
}

static int child_console(void)
{
        int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* We are a session leader without a tty (setsid), so this does not steal anyone's. */
        if (ioctl(fd, TIOCSCTTY, 0) < 0)
                return -errno;
        for (int i = 0; i < 3; i++)
                if (dup2(fd, i) < 0)
                        return -errno;
        if (fd > 2)
                close(fd);
        return 0;
}

/* The kernel's limit of fds in one SCM_RIGHTS message (SCM_MAX_FD): the rootfs and the binds. */
#define GO_MAX_FDS 253

/* The parent readies the child in two steps, so that the child's mounts overlap with the parent's
 * cgroup and network work: "m" once the user namespace's maps are written (the child may then create
 * files and mounts), with the idmapped rootfs and one idmapped tree per bind source; "g" once the child
 * is in its cgroups and has its network interfaces. Stores the fds that came with the message in fds[],
 * returns how many. */
static size_t child_wait_for(int sync_fd, int fds[static GO_MAX_FDS])
{
        char go;
        struct iovec iov = { .iov_base = &go, .iov_len = 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * GO_MAX_FDS)];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        size_t n = 0;

        /* EOF: the parent gave up (pre_start failed, or it died) — nothing to report to. */
        if (recvmsg(sync_fd, &mh, MSG_CMSG_CLOEXEC) != 1)
                _exit(EXIT_FAILURE);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
        if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
                n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                memcpy(fds, CMSG_DATA(cmsg), n * sizeof(int));
        }
        return n;
}

typedef struct GoFds {
        int fds[GO_MAX_FDS];
        size_t n;
} GoFds;

static void close_go_fds(GoFds *g)
{
        for (size_t i = 0; i < GO_MAX_FDS; i++)
                safe_close(g->fds[i]);
}

static int send_sync(int sync_fd, const char *what, const int *fds, size_t n_fds)
{
        struct iovec iov = { .iov_base = (char *) what, .iov_len = 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * GO_MAX_FDS)];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (n_fds > GO_MAX_FDS)
                return -E2BIG;
        if (n_fds > 0) {
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
                *cmsg = (struct cmsghdr) { .cmsg_level = SOL_SOCKET, .cmsg_type = SCM_RIGHTS,
                                           .cmsg_len = CMSG_LEN(sizeof(int) * n_fds) };
                memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
        }
        return sendmsg(sync_fd, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

_Noreturn static void child_run(const ContainerConfig *c, int sync_fd, char **env)
{
        const char *step = NULL, *bad = NULL;
        int root_fd = -1, r;

        reset_signals();
        /* The daemon's other fds (consoles, bus, other containers' pidfds) must not reach the guest. */
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                child_fail(sync_fd, "close_range", errno);
        umask(0);

        /* With a user namespace, our maps are written once "m" arrives; only then may we act. */
        ContainerConfig cc = *c;
        static int go_fds[GO_MAX_FDS];
        size_t n_go_fds = child_wait_for(sync_fd, go_fds);
        cc.root_tree_fd = n_go_fds > 0 ? go_fds[0] : -1;
        cc.bind_tree_fds = n_go_fds > 1 ? go_fds + 1 : NULL;
        if (c->uid_range > 0 && n_go_fds != 1 + c->n_binds)
                child_fail(sync_fd, "receive the idmapped rootfs and bind sources", EBADF);
        c = &cc;

        if (setsid() < 0)
                child_fail(sync_fd, "setsid", errno);

        r = mount_setup_guest(c, &root_fd, &step);
        if (r < 0)
                child_fail(sync_fd, step, r);

        const char *hostname = c->hostname ?: c->name;
        if (hostname && sethostname(hostname, strlen(hostname)) < 0)
                child_fail(sync_fd, "sethostname", errno);

        if (c->private_network) {
                r = netns_loopback_up();
                if (r < 0)
                        child_fail(sync_fd, "bring up lo", r);
        }

        r = netns_setup_resolv_conf(root_fd, c->resolv_conf);
        if (r < 0)
                child_fail(sync_fd, "set up /etc/resolv.conf", r);

        if (child_wait_for(sync_fd, go_fds) != 0)
                child_fail(sync_fd, "sync with the daemon", EPROTO);
        /* Only now are we in our cgroups: the new cgroup namespace is rooted at them, and so is the
         * guest's cgroup2 mount. */
        if (unshare(CLONE_NEWCGROUP) < 0)
                child_fail(sync_fd, "unshare cgroup namespace", errno);
        r = mount_setup_cgroup(root_fd, &step);
        if (r < 0)
                child_fail(sync_fd, step, r);
        if (c->host0) {
                r = netns_setup_host0(c->addresses, &step);
                if (r < 0)
                        child_fail(sync_fd, step, r);
        }
        r = mount_pivot_root(root_fd);
        if (r < 0)
                child_fail(sync_fd, "pivot_root", r);
        umask(0022);

        if (c->console_path) {
                r = child_console();
                if (r < 0)
                        child_fail(sync_fd, "open /dev/console", r);
        }

        r = capability_bounding_set_limit(c->capabilities);
        if (r < 0)
                child_fail(sync_fd, "drop capabilities", r);

        /* Last before exec: from here on, our own set-up calls would be filtered too. The filter's reboot(2)
         * listener goes to the daemon (reboot-watch.h), queued ahead of the EOF our exec makes. */
        int listener = -1;
        r = c->watch_reboot ? seccomp_policy_apply_watching_reboot(c->syscall_filter, &listener, &bad)
                            : seccomp_policy_apply(c->syscall_filter, &bad);
        if (r < 0)
                child_fail(sync_fd, bad ? "seccomp: unknown system call" : "load seccomp filter", r);
        if (listener >= 0) {
                r = send_sync(sync_fd, "w", &listener, 1);
                if (r < 0)
                        child_fail(sync_fd, "hand over the reboot listener", r);
                safe_close(listener);
        }

        if (c->exec_fd >= 0)
                syscall(SYS_execveat, c->exec_fd, "", c->argv, env, AT_EMPTY_PATH);
        else
                execve(c->argv[0], c->argv, env);
        child_fail(sync_fd, c->exec_fd >= 0 ? "execveat" : "exec", errno);
}

/* ---- parent side ---- */

/* The parent's half of PrivateUsers=: maps, then what the child cannot do itself inside its user
 * namespace — idmap the rootfs and the bind sources (needs CAP_SYS_ADMIN over the host's file system,
 * and the daemon's view of the host's paths) and hand the guest's root the console pty (owned by the
 * daemon's root, which is unmapped, i.e. nobody, in the guest). tree_fds[0] is the rootfs, then one per
 * bind; all are closed by the caller. */
static int spawn_userns(const ContainerConfig *c, pid_t pid, int *tree_fds, const char **ret_step)
{
        int r = userns_write_maps(pid, c->uid_shift, c->uid_range);
        if (r < 0) {
                *ret_step = "write uid/gid maps";
                return r;
        }
        if (c->console_path && chown(c->console_path, c->uid_shift, c->uid_shift + 5 /* tty */) < 0) {
                *ret_step = "chown the console pty";
                return -errno;
        }
        r = userns_idmapped_tree(pid, c->root);
        if (r < 0) {
                /* EINVAL: overlayfs, NFS, FUSE, ... cannot be idmapped, and the image is never chowned. */
                *ret_step = r == -EINVAL ? "idmap the rootfs (does its file system support idmapped mounts? "
                                           "PrivateUsers=no runs the guest privileged instead)"
                                         : "idmap the rootfs";
                return r;
        }
        tree_fds[0] = r;
        for (size_t i = 0; i < c->n_binds; i++) {
                r = userns_idmapped_bind(pid, c->binds[i].source, c->binds[i].read_only);
                if (r < 0) {
                        static char step[PATH_MAX + 32];
                        snprintf(step, sizeof(step), "idmap bind source %s", c->binds[i].source);
                        *ret_step = step;
                        return r;
                }
                tree_fds[1 + i] = r;
        }
        return 0;
}

/* The daemon's oom_score_adj (OOMScoreAdjust= of its unit) protects the daemon, not its guests. Written by
 * a process with CAP_SYS_RESOURCE, so 0 is the floor too: a guest cannot lower it again. For the child of
 * the shared-memory spawn this touches the child alone: the kernel skips a task in vfork (CLONE_VFORK,
 * vfork_done set) when it hands a new value on to the processes sharing its memory (__set_oom_adj). */
static int oom_score_adj_reset(const char *path)
{
        return write_string_file(path, "0");
}

static int oom_score_adj_reset_pid(pid_t pid)
{
        char p[64];

        snprintf(p, sizeof(p), "/proc/%d/oom_score_adj", (int) pid);
        return oom_score_adj_reset(p);
}

/* The parent's steps while the child waits: maps and idmapped trees, "m", pre_start (cgroups,
 * network), "g". tree->fds are the parent's copies of the trees, closed by the caller. */
static int spawn_parent_steps(const ContainerConfig *c, pid_t pid, int parent_fd, GoFds *tree, const char **ret_step)
{
        int r = 0;

        *ret_step = "reset oom_score_adj";
        r = oom_score_adj_reset_pid(pid);
        if (r >= 0 && c->uid_range > 0) {
                *ret_step = "sync";
                r = spawn_userns(c, pid, tree->fds, ret_step);
        }
        if (r >= 0)
                r = send_sync(parent_fd, "m", tree->fds, tree->n);
        if (r >= 0 && c->pre_start) {
                *ret_step = "pre_start";
                r = c->pre_start(pid, c->userdata);
        }
        if (r >= 0 && !c->defer_go) {
                *ret_step = "sync";
                r = send_sync(parent_fd, "g", NULL, 0);
        }
        return r;
}

/* ---- the shared-memory spawn ----
 *
 * A fork of the daemon costs most of a start on a virtualised host: clone3() copies the page tables
 * (~0.9 ms here), then the child and the daemon each take a copy-on-write fault (~19 µs) for every
 * page they write (docs/BENCHMARKS.md). So where it is safe the child is cloned with CLONE_VM |
 * CLONE_VFORK onto a stack of its own: it runs in the daemon's memory until it execs init, while the
 * daemon's thread sleeps in clone3(). The parent's steps, which must run outside the child's user
 * namespace while the child waits, are done meanwhile by a short-lived worker thread.
 *
 * What keeps this sound:
 * - The child uses the sleeping thread's TLS (errno, malloc's thread cache) and never runs at the same
 *   time as it. The worker has its own; once it exists, glibc's malloc takes its arena locks.
 * - Signal dispositions and the fd table are the child's own copies (no CLONE_SIGHAND/CLONE_FILES).
 * - The environment is built before the clone; what the set-up allocates it frees again.
 * - Nothing of ours kills the child while it runs here (it could hold a malloc lock): a failed parent
 *   step shuts the sync socket down instead, and the child exits at its next wait.
 * - Not used with a memory limit: a set-up step that ran the guest's memory cgroup out of memory would
 *   have the kernel kill every process sharing the child's memory, the daemon included. Nor in
 *   systemd mode, where the loop itself must run (the scope's job) before the child may go on. */

#define SPAWN_STACK_SIZE (256 * 1024)

typedef struct SpawnJob {
        const ContainerConfig *c;
        int sync_fd;      /* child side */
        int parent_fd;
        char **env;
        pid_t pid;        /* written by clone3() (CLONE_PARENT_SETTID) before the child runs */
        GoFds *tree;
        const char *step;
        int r;
} SpawnJob;

/* Not under AddressSanitizer: its run-time would share its own state with the child too (shadow memory
 * of the reused stack, locks it takes in a dying child's _exit()), which deadlocked the daemon. The
 * sanitizer build forks; the child's code is the same either way. */
#if defined(__SANITIZE_ADDRESS__)
#define MM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MM_ASAN 1
#endif
#endif

#if defined(__x86_64__) && !defined(MM_ASAN)
#define HAVE_SHARED_VM_SPAWN 1
/* clone3() with a new stack: the child calls fn(arg) there and exits with its return value. Assembly,
 * because glibc has no clone3() wrapper and a child returning from syscall() would write over the
 * frames the sleeping parent returns through. */
static long clone3_on_stack(struct clone_args *args, int (*fn)(void *), void *arg)
{
        register long r_fn __asm__("r12") = (long) fn;
        register long r_arg __asm__("r13") = (long) arg;
        long ret = SYS_clone3;

        __asm__ volatile("syscall\n\t"
                         "test %%rax, %%rax\n\t"
                         "jnz 1f\n\t"
                         "xor %%ebp, %%ebp\n\t"
                         "mov %%r13, %%rdi\n\t"
                         "call *%%r12\n\t"
                         "mov %%eax, %%edi\n\t"
                         "mov %[nr_exit], %%eax\n\t"
                         "syscall\n\t"
                         "hlt\n"
                         "1:"
                         : "+a"(ret)
                         : "D"(args), "S"(sizeof(*args)), "r"(r_fn), "r"(r_arg), [nr_exit] "i"(SYS_exit)
                         : "rcx", "r11", "memory", "cc");
        return ret;
}

static int shared_vm_child(void *arg)
{
        SpawnJob *j = arg;

        /* Our copy of the daemon's end (the fd table is copied, only the memory shared): held here, a daemon
         * that dies while we wait would never give us our EOF, and we would keep its clients' sockets
         * open with us. A forked child closes it too. */
        (void) close(j->parent_fd);
        /* Tells the worker we run: our pid is known from here on. */
        if (send(j->sync_fd, "r", 1, MSG_NOSIGNAL) != 1)
                return EXIT_FAILURE;
        child_run(j->c, j->sync_fd, j->env);
}

static void *shared_vm_worker(void *arg)
{
        SpawnJob *j = arg;
        char ready;

        if (recv(j->parent_fd, &ready, 1, 0) != 1 || ready != 'r') {
                j->r = -EPROTO; /* j->step is still "sync" */
                return NULL;
        }
        j->r = spawn_parent_steps(j->c, j->pid, j->parent_fd, j->tree, &j->step);
        if (j->r < 0)
                /* The child is at a wait: EOF there makes it exit, which wakes the sleeping daemon. */
                (void) shutdown(j->parent_fd, SHUT_WR);
        return NULL;
}

/* One stack for every child: the daemon sleeps while a child runs on it, and after the child's exec or
 * exit nothing uses it. Allocated once, with a guard page below. */
static void *spawn_stack(void)
{
        static void *stack;

        if (!stack) {
                void *p = mmap(NULL, SPAWN_STACK_SIZE + 4096, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
                if (p == MAP_FAILED)
                        return NULL;
                if (mprotect(p, 4096, PROT_NONE) < 0) {
                        munmap(p, SPAWN_STACK_SIZE + 4096);
                        return NULL;
                }
                stack = (char *) p + 4096;
        }
        return stack;
}

/* Returns the child's pid (it has exec'd or exited by then; j->r says how the parent's steps went) or
 * -errno. j->sync_fd is closed either way. */
static pid_t spawn_shared_vm(struct clone_args *args, SpawnJob *j)
{
        void *stack = spawn_stack();
        pthread_t worker;
        bool have_worker = false;
        long pid = -ENOMEM;

        if (stack) {
                args->flags |= CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID;
                args->parent_tid = (uint64_t) (uintptr_t) &j->pid;
                args->stack = (uint64_t) (uintptr_t) stack;
                args->stack_size = SPAWN_STACK_SIZE;
                int r = pthread_create(&worker, NULL, shared_vm_worker, j);
                have_worker = r == 0;
                pid = r > 0 ? -r : clone3_on_stack(args, shared_vm_child, j);
        }
        /* The child has exec'd or exited, or there is none. Our copy of its end goes before the join: a
         * worker still waiting for "r" then reads EOF. */
        j->sync_fd = safe_close(j->sync_fd);
        if (have_worker)
                (void) pthread_join(worker, NULL);
        return (pid_t) pid;
}
#else
#define HAVE_SHARED_VM_SPAWN 0
static pid_t spawn_shared_vm(struct clone_args *args, SpawnJob *j)
{
        j->sync_fd = safe_close(j->sync_fd);
        return -EOPNOTSUPP;
}
#endif

int container_spawn(const ContainerConfig *c, ContainerProcess *ret, char **ret_error)
{
        _cleanup_close_ int parent_fd = -1, child_fd = -1;
        _cleanup_strv_free_ char **env = NULL;
        int pair[2], pidfd = -1, r;

        if (!c->root || !c->argv || !c->argv[0])
                return -EINVAL;
        if (c->uid_range > 0 && 1 + c->n_binds > GO_MAX_FDS) {
                if (ret_error)
                        (void) asprintf(ret_error, "PrivateUsers= allows at most %d bind mounts", GO_MAX_FDS - 1);
                return -E2BIG;
        }
        env = guest_environment(c);
        if (!env)
                return -ENOMEM;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
                r = -errno;
                if (ret_error)
                        (void) asprintf(ret_error, "socketpair: %s", strerror(-r));
                return r;
        }
        parent_fd = pair[0];
        child_fd = pair[1];

        /* Compile the seccomp filter here, once per profile, not in every child: the child inherits the
         * BPF and only loads it. On failure the child compiles it itself and reports the error. */
        (void) seccomp_policy_prepare(c->syscall_filter, NULL);

        /* CLONE_NEWUSER together with the others: the kernel creates the user namespace first, so the
         * mount, pid, net, ... namespaces are owned by it and the guest may mount proc, sysfs, tmpfs. */
        struct clone_args args = clone_args_pidfd(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                                          (c->private_network ? CLONE_NEWNET : 0) |
                                                          (c->uid_range > 0 ? CLONE_NEWUSER : 0),
                                                  c->cgroup2_fd, &pidfd);

        _cleanup_(close_go_fds) GoFds tree = { .n = c->uid_range > 0 ? 1 + c->n_binds : 0 };
        for (size_t i = 0; i < GO_MAX_FDS; i++)
                tree.fds[i] = -1;
        const char *step = "sync";
        pid_t pid;
        bool shared_vm = HAVE_SHARED_VM_SPAWN && c->share_vm && !c->defer_go;

        if (shared_vm) {
                SpawnJob j = { .c = c, .sync_fd = TAKE_FD(child_fd), .parent_fd = parent_fd, .env = env,
                               .tree = &tree, .step = "sync" };
                pid = spawn_shared_vm(&args, &j);
                if (pid < 0) {
                        if (ret_error)
                                (void) asprintf(ret_error, "clone3: %s", strerror(-pid));
                        return pid;
                }
                step = j.step;
                r = j.r;
        } else {
                pid = (pid_t) syscall(SYS_clone3, &args, sizeof(args));
                if (pid < 0) {
                        r = -errno;
                        if (ret_error)
                                (void) asprintf(ret_error, "clone3: %s", strerror(-r));
                        return r;
                }
                if (pid == 0) {
                        safe_close(parent_fd);
                        child_run(c, child_fd, env);
                }
                child_fd = safe_close(child_fd);
                r = spawn_parent_steps(c, pid, parent_fd, &tree, &step);
        }
        if (r < 0) {
                /* A child that failed first said why (and our next message then found it gone). */
                _cleanup_free_ char *child_error = NULL;
                int cr = container_sync_read(parent_fd, &child_error);
                kill_and_reap(pidfd);
                safe_close(pidfd);
                if (cr < 0 && child_error) {
                        r = cr;
                        if (ret_error)
                                *ret_error = TAKE_PTR(child_error);
                } else if (ret_error)
                        (void) asprintf(ret_error, "%s: %s", step, strerror(-r));
                return r;
        }

        *ret = (ContainerProcess) { .pid = pid, .pidfd = pidfd, .sync_fd = TAKE_FD(parent_fd), .shared_vm = shared_vm };
        return 0;
}

int container_send_go(int sync_fd)
{
        return send_sync(sync_fd, "g", NULL, 0);
}

static ssize_t recv_sync(int sync_fd, SyncError *e, int *ret_fd)
{
        struct iovec iov = { .iov_base = e, .iov_len = sizeof(*e) };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };

        *ret_fd = -1;
        ssize_t n = recvmsg(sync_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return -errno;
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
        if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
            cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(ret_fd, CMSG_DATA(cmsg), sizeof(int));
        return n;
}

int container_sync_read(int sync_fd, char **ret_error)
{
        int r = container_sync_read_full(sync_fd, ret_error, NULL);
        return r == 2 ? 1 : r; /* a listener nobody asked for: closed, still waiting */
}

int container_sync_read_full(int sync_fd, char **ret_error, int *ret_listener)
{
        SyncError e;
        int fd;
        ssize_t n = recv_sync(sync_fd, &e, &fd);

        /* A child that exits with our "g" unread resets the connection; the error is reported once,
         * and what the child said before it is still queued behind it. */
        if (n == -ECONNRESET)
                n = recv_sync(sync_fd, &e, &fd);

        if (n < 0)
                return n == -EAGAIN ? 1 : (int) n;
        if (n == 0)
                return 0;
        if (n == 1 && *(const char *) &e == 'w' && fd >= 0) {
                if (ret_listener) {
                        safe_close(*ret_listener);
                        *ret_listener = fd;
                } else
                        safe_close(fd);
                return 2;
        }
        safe_close(fd);
        if ((size_t) n <= offsetof(SyncError, text) || e.error <= 0) {
                if (ret_error)
                        *ret_error = strdup("sync: malformed message from the container");
                return -EIO;
        }
        if (ret_error)
                *ret_error = strndup(e.text, (size_t) n - offsetof(SyncError, text));
        return -e.error;
}

int container_wait_exec(ContainerProcess *p, char **ret_error)
{
        for (;;) {
                struct pollfd pfd = { .fd = p->sync_fd, .events = POLLIN };

                if (poll(&pfd, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                int r = container_sync_read(p->sync_fd, ret_error);
                if (r != 1)
                        return r;
        }
}

uint64_t container_default_capabilities(bool private_network)
{
        return capability_default_set(private_network);
}

int container_find_init(const char *root, char **ret_path)
{
        static const char *const candidates[] = { "/usr/lib/systemd/systemd", "/lib/systemd/systemd", "/sbin/init" };

        _cleanup_close_ int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return -errno;

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                struct stat st;
                _cleanup_close_ int fd = openat_in_root(root_fd, candidates[i], O_PATH);
                if (fd < 0)
                        continue;
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111))
                        continue;
                char *p = strdup(candidates[i]);
                if (!p)
                        return -ENOMEM;
                *ret_path = p;
                return 0;
        }
        return -ENOENT;
}

/* ---- processes that touch a running guest: shell sessions, the os-release reader ---- */

/* Closes every fd >= 3 except those in keep (-1 entries ignored). */
static void close_all_fds_except(const int *keep, size_t n)
{
        unsigned next = 3;

        for (;;) {
                unsigned lowest = UINT_MAX;
                for (size_t i = 0; i < n; i++)
                        if (keep[i] >= 0 && (unsigned) keep[i] >= next && (unsigned) keep[i] < lowest)
                                lowest = (unsigned) keep[i];
                if (lowest == UINT_MAX) {
                        (void) syscall(SYS_close_range, next, ~0U, 0U);
                        return;
                }
                if (lowest > next)
                        (void) syscall(SYS_close_range, next, lowest - 1, 0U);
                next = lowest + 1;
        }
}

/* First thing in every process of ours that will touch a guest: not dumpable, so that the guest's root —
 * which holds CAP_SYS_PTRACE in the user namespace such a process joins — can neither ptrace it nor open
 * its /proc files (runc's CVE-2016-9962, lxc-attach); then nothing of the daemon's but keep (which may
 * include 0-2). The command a shell session execs becomes dumpable again; it is then the guest's own. */
static void guest_toucher_init(const int *keep, size_t n)
{
        (void) prctl(PR_SET_DUMPABLE, 0);
        close_all_fds_except(keep, n);
}

int container_open_root(pid_t leader, int leader_pidfd)
{
        char p[64];

        if (leader <= 0 || leader_pidfd < 0)
                return -ESRCH;
        snprintf(p, sizeof(p), "/proc/%d/root", (int) leader);
        _cleanup_close_ int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* The pid is still our leader's: it was alive after the open. */
        if (syscall(SYS_pidfd_send_signal, leader_pidfd, 0, NULL, 0) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* ---- entering a running container ---- */

typedef struct GuestUser {
        uid_t uid;
        gid_t gid;
        char *name, *home, *shell;
        gid_t groups[NGROUPS_MAX];
        size_t n_groups;
} GuestUser;

/* What a helper waits for at most while it reads the guest's files: they are opened non-blocking and
 * type-checked, but a FUSE or NFS mount of the guest's can still stall a read. */
#define ENTER_FILES_TIMEOUT_SEC 10

static void on_enter_files_timeout(int sig)
{
        static const char msg[] = "machinemgr: reading the guest's /etc/passwd and /etc/group timed out\n";

        (void) !write(STDERR_FILENO, msg, sizeof(msg) - 1);
        _exit(EXIT_FAILURE);
}

/* The guest's /etc/passwd or /etc/group, as a stream over a bounded copy: read as the guest's root,
 * through the guest's root directory, only if it is a regular file of at most GUEST_ACCOUNTS_MAX. */
static int open_guest_accounts(int proc_fd, const char *path, FILE **ret)
{
        _cleanup_close_ int fd = guest_open(proc_fd, AT_FDCWD, path, O_RDONLY, 0);
        _cleanup_free_ char *buf = NULL;
        size_t size;

        if (fd < 0)
                return fd;
        int r = read_fd_bounded(fd, GUEST_ACCOUNTS_MAX, &buf, &size);
        if (r < 0)
                return r;
        FILE *f = fmemopen(NULL, size + 1, "w+e");
        if (!f)
                return -errno;
        if (fwrite(buf, 1, size, f) != size || fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -EIO;
        }
        *ret = f;
        return 0;
}

static void warn_guest_file(const char *path, int r, const char *what)
{
        dprintf(STDERR_FILENO, "machinemgr: the guest's %s: %s; %s\n", path, guest_open_strerror(r), what);
}

/* Reads the guest's /etc/passwd directly: getpwnam() would consult the guest's nsswitch.conf and could
 * dlopen() the guest's NSS modules into a process of ours. A passwd file that cannot be used (not a
 * regular file, too large, unreadable) is an error for anyone but root, who is entered with root's
 * defaults — so that an admin can still get into a guest whose passwd is broken, and mend it. */
static int guest_user_lookup(int proc_fd, const char *user, GuestUser *ret)
{
        bool is_root = !user || streq(user, "root") || streq(user, "0");
        unsigned uid;
        bool by_uid = user && safe_atou(user, &uid) >= 0;
        struct passwd *pw;
        _cleanup_fclose_ FILE *f = NULL;

        int r = open_guest_accounts(proc_fd, "/etc/passwd", &f);
        if (r < 0 && r != -ENOENT) {
                if (!is_root)
                        return r;
                warn_guest_file("/etc/passwd", r, "entering as root with root's defaults");
        }
        while (f && (pw = fgetpwent(f))) {
                if (is_root ? pw->pw_uid != 0 : by_uid ? pw->pw_uid != uid : !streq(pw->pw_name, user))
                        continue;
                *ret = (GuestUser) { .uid = pw->pw_uid, .gid = pw->pw_gid, .name = strdup(pw->pw_name),
                                     .home = strdup(pw->pw_dir), .shell = strdup(pw->pw_shell) };
                if (!ret->name || !ret->home || !ret->shell)
                        return -ENOMEM;
                return 0;
        }
        /* An image without a passwd entry for root can still be entered as root. */
        if (!is_root)
                return -ESRCH;
        *ret = (GuestUser) { .name = strdup("root"), .home = strdup("/root"), .shell = strdup("/bin/sh") };
        return ret->name && ret->home && ret->shell ? 0 : -ENOMEM;
}

/* Supplementary groups from the guest's /etc/group; the same rules as for passwd (root goes on without). */
static int guest_user_groups(int proc_fd, GuestUser *u)
{
        struct group *gr;
        _cleanup_fclose_ FILE *f = NULL;

        int r = open_guest_accounts(proc_fd, "/etc/group", &f);
        if (r < 0 && r != -ENOENT) {
                if (u->uid != 0)
                        return r;
                warn_guest_file("/etc/group", r, "no supplementary groups");
        }
        while (f && (gr = fgetgrent(f)) && u->n_groups < NGROUPS_MAX)
                for (char **m = gr->gr_mem; m && *m; m++)
                        if (streq(*m, u->name) && gr->gr_gid != u->gid) {
                                u->groups[u->n_groups++] = gr->gr_gid;
                                break;
                        }
        return 0;
}

static int guest_user_become(const GuestUser *u)
{
        if (setgroups(u->n_groups, u->groups) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
            setresuid(u->uid, u->uid, u->uid) < 0)
                return -errno;
        return 0;
}

static char **enter_environment(char **env, const GuestUser *u)
{
        _cleanup_strv_free_ char **l = strv_copy(env);
        const struct {
                const char *key, *value;
        } defaults[] = {
                { "PATH", GUEST_PATH }, { "HOME", u->home }, { "USER", u->name },
                { "LOGNAME", u->name }, { "SHELL", u->shell },
        };

        if (!l && env)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(defaults); i++) {
                size_t k = strlen(defaults[i].key);
                bool present = false;

                STRV_FOREACH(e, l)
                if (strncmp(*e, defaults[i].key, k) == 0 && (*e)[k] == '=')
                        present = true;
                if (!present && child_push_env(&l, defaults[i].key, NULL) < 0)
                        return NULL;
                if (!present) {
                        char **last = l + strv_length(l) - 1;
                        free(*last);
                        if (asprintf(last, "%s=%s", defaults[i].key, defaults[i].value) < 0) {
                                *last = NULL;
                                return NULL;
                        }
                }
        }
        return TAKE_PTR(l);
}

_Noreturn static void enter_fail(const char *step, int error, int status)
{
        dprintf(STDERR_FILENO, "machinemgr: %s: %s\n", step, strerror(abs(error)));
        _exit(status);
}

_Noreturn static void enter_fail_guest_file(const char *path, int error)
{
        dprintf(STDERR_FILENO, "machinemgr: the guest's %s: %s\n", path, guest_open_strerror(error));
        _exit(EXIT_FAILURE);
}

/* The command itself, in the container's pid namespace, already the guest's root (with no more than its
 * capabilities, under its seccomp filter) and still not dumpable until the exec. */
_Noreturn static void enter_exec(const GuestUser *u, char **argv, char **env)
{
        int r;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);

        if (setsid() < 0)
                enter_fail("setsid", errno, EXIT_FAILURE);
        if (isatty(STDIN_FILENO) && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
                enter_fail("set controlling tty", errno, EXIT_FAILURE);

        _cleanup_strv_free_ char **envp = enter_environment(env, u);
        if (!envp)
                enter_fail("environment", ENOMEM, EXIT_FAILURE);

        r = guest_user_become(u);
        if (r < 0)
                enter_fail("change user", r, EXIT_FAILURE);
        if (chdir(u->home) < 0)
                (void) chdir("/");

        umask(0022);
        environ = envp;
        if (argv && argv[0])
                execvp(argv[0], argv);
        else {
                const char *base = strrchr(u->shell, '/');
                _cleanup_free_ char *login = NULL;
                if (asprintf(&login, "-%s", base ? base + 1 : u->shell) < 0)
                        enter_fail("environment", ENOMEM, EXIT_FAILURE);
                execv(u->shell, (char *[]) { login, NULL });
        }
        enter_fail(argv && argv[0] ? argv[0] : u->shell, errno, errno == ENOENT ? 127 : 126);
}

/* 0/1/2 from the caller's fds, which may themselves be any of 0/1/2. */
static int install_stdio(int stdin_fd, int stdout_fd, int stderr_fd)
{
        int fds[3] = { stdin_fd, stdout_fd, stderr_fd }, high[3];

        for (int i = 0; i < 3; i++) {
                high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
                if (high[i] < 0)
                        return -errno;
        }
        for (int i = 0; i < 3; i++) {
                if (dup2(high[i], i) < 0)
                        return -errno;
                close(high[i]);
        }
        return 0;
}

static int join_cgroups(const char *cgroup_procs_paths[])
{
        for (const char **p = cgroup_procs_paths; p && *p; p++) {
                int r = write_string_file(*p, "0");
                if (r < 0)
                        return r;
        }
        return 0;
}

#ifndef PIDFD_GET_USER_NAMESPACE
#define PIDFD_GET_USER_NAMESPACE _IO(0xFF, 9) /* Linux 6.11; Debian 12's headers predate it */
#endif

static int leader_has_own_userns(int leader_pidfd)
{
        struct stat ours, theirs;

        _cleanup_close_ int fd = ioctl(leader_pidfd, PIDFD_GET_USER_NAMESPACE, 0);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &theirs) < 0 || stat("/proc/self/ns/user", &ours) < 0)
                return -errno;
        return ours.st_dev != theirs.st_dev || ours.st_ino != theirs.st_ino;
}

/* Outside the pid namespace (so invisible to the guest's processes): joins the container's cgroups and
 * namespaces, becomes the guest's root with the guest's capabilities, looks the user up in the guest's
 * files, then forks the command into the pid namespace and exits with its status, so the caller's
 * waitid() on us tells the command's result. */
_Noreturn static void enter_helper(int leader_pidfd, const char *cgroup_procs_paths[], int cgroup2_fd,
                                   const char *user, char **argv, char **env, int stdin_fd, int stdout_fd,
                                   int stderr_fd, uint64_t capabilities)
{
        GuestUser u = {};
        int r, status;

        guest_toucher_init((const int[]) { leader_pidfd, cgroup2_fd, stdin_fd, stdout_fd, stderr_fd }, 5);
        r = install_stdio(stdin_fd, stdout_fd, stderr_fd);
        if (r < 0)
                _exit(EXIT_FAILURE);
        close_all_fds_except((const int[]) { leader_pidfd, cgroup2_fd }, 2);

        reset_signals();
        r = oom_score_adj_reset("/proc/self/oom_score_adj");
        if (r < 0)
                enter_fail("reset oom_score_adj", r, EXIT_FAILURE);
        /* The host's procfs, to reopen the guest's files through once we are in its mount namespace. */
        _cleanup_close_ int proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd < 0)
                enter_fail("open /proc", errno, EXIT_FAILURE);

        r = join_cgroups(cgroup_procs_paths);
        if (r < 0)
                enter_fail("join cgroup", r, EXIT_FAILURE);
        /* The user namespace too when the container has its own (setns() refuses to "join" the one we
         * are in). Joined in the same call: the kernel switches it first, so the others are joined
         * with the capabilities we get in it. */
        r = leader_has_own_userns(leader_pidfd);
        if (r < 0)
                enter_fail("inspect user namespace", r, EXIT_FAILURE);
        if (setns(leader_pidfd, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID |
                                        CLONE_NEWCGROUP | (r > 0 ? CLONE_NEWUSER : 0)) < 0)
                enter_fail("join namespaces", errno, EXIT_FAILURE);
        /* Root of the guest's user namespace (uid_shift on the host), before any of its files is opened. */
        r = userns_become_root();
        if (r < 0)
                enter_fail("become the guest's root", r, EXIT_FAILURE);
        /* Inherited by the command; loading it needs CAP_SYS_ADMIN, which the guest's set may lack. */
        r = seccomp_policy_apply(NULL, NULL);
        if (r < 0)
                enter_fail("load seccomp filter", r, EXIT_FAILURE);
        r = capability_limit(capabilities);
        if (r < 0)
                enter_fail("drop capabilities", r, EXIT_FAILURE);

        (void) signal(SIGALRM, on_enter_files_timeout);
        alarm(ENTER_FILES_TIMEOUT_SEC);
        r = guest_user_lookup(proc_fd, user, &u);
        if (r == -ESRCH)
                enter_fail(user, ENOENT, EXIT_FAILURE);
        if (r < 0)
                enter_fail_guest_file("/etc/passwd", r);
        r = guest_user_groups(proc_fd, &u);
        if (r < 0)
                enter_fail_guest_file("/etc/group", r);
        alarm(0);
        (void) signal(SIGALRM, SIG_DFL);
        proc_fd = safe_close(proc_fd);

        int pidfd = -1;
        pid_t pid = clone3_pidfd(0, cgroup2_fd, &pidfd);
        if (pid < 0)
                enter_fail("clone3", errno, EXIT_FAILURE);
        if (pid == 0)
                enter_exec(&u, argv, env);

        (void) syscall(SYS_close_range, 3U, ~0U, 0U);
        /* Our stdio belongs to the command now; holding it would delay the caller's EOF. */
        for (int i = 0; i < 3; i++)
                close(i);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        _exit(EXIT_FAILURE);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int container_enter(int leader_pidfd, const char *cgroup_procs_paths[], int cgroup2_fd, const char *user,
                    char **argv, char **env, int stdin_fd, int stdout_fd, int stderr_fd, uint64_t capabilities,
                    pid_t *ret_pid, int *ret_pidfd)
{
        int pidfd = -1;
        (void) seccomp_policy_prepare(NULL, NULL); /* see container_spawn() */
        pid_t pid = clone3_pidfd(0, -1, &pidfd);

        if (pid < 0)
                return -errno;
        if (pid == 0)
                enter_helper(leader_pidfd, cgroup_procs_paths, cgroup2_fd, user, argv, env, stdin_fd, stdout_fd,
                             stderr_fd, capabilities);

        *ret_pid = pid;
        *ret_pidfd = pidfd;
        return 0;
}

/* ---- reading the guest's os-release ---- */

/* Not joined to the guest's namespaces: it reads through the guest's root (/proc/LEADER/root), as the
 * guest's root (uid_shift; for a guest without a user namespace root without any capability), so it can
 * read what the guest's root can read and nothing else; not dumpable and not in the guest's pid namespace,
 * so no process of the guest can reach it. Sends one message: the errno as an int32_t, then the file. */
_Noreturn static void os_release_reader(int root_fd, int sock, uid_t uid)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int r;

        guest_toucher_init((const int[]) { root_fd, sock }, 2);
        reset_signals();
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);

        if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                r = -errno;
        else
                r = uid == 0 ? capability_limit(0) : 0; /* a new uid lost them already */
        if (r >= 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                r = -errno;
        if (r >= 0) {
                static const char *const paths[] = { "etc/os-release", "usr/lib/os-release" };
                _cleanup_close_ int fd = -ENOENT;
                for (size_t i = 0; i < ELEMENTSOF(paths) && fd == -ENOENT; i++)
                        fd = guest_open(-1, root_fd, paths[i], O_RDONLY, 0);
                r = fd < 0 ? fd : read_fd_bounded(fd, CONTAINER_OS_RELEASE_MAX, &buf, &size);
        }

        int32_t error = r < 0 ? -r : 0;
        struct iovec iov[2] = { { .iov_base = &error, .iov_len = sizeof(error) },
                                { .iov_base = buf, .iov_len = r < 0 ? 0 : size } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
        _exit(sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

int container_read_os_release(pid_t leader, int leader_pidfd, uid_t uid, int *ret_pidfd, int *ret_fd)
{
        int pair[2], pidfd = -1;

        _cleanup_close_ int root_fd = container_open_root(leader, leader_pidfd);
        if (root_fd < 0)
                return root_fd;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return -errno;
        _cleanup_close_ int ours = pair[0], theirs = pair[1];
        /* The whole file in one message. */
        int bufsize = (int) CONTAINER_OS_RELEASE_MAX + 4096;
        if (setsockopt(theirs, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize)) < 0 ||
            setsockopt(ours, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize)) < 0)
                return -errno;

        pid_t pid = clone3_pidfd(0, -1, &pidfd);
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int flags = fcntl(theirs, F_GETFL);
                if (flags < 0 || fcntl(theirs, F_SETFL, flags & ~O_NONBLOCK) < 0)
                        _exit(EXIT_FAILURE);
                os_release_reader(root_fd, theirs, uid);
        }
        *ret_pidfd = pidfd;
        *ret_fd = TAKE_FD(ours);
        return 0;
}

int container_os_release_receive(int fd, char **ret, size_t *ret_size)
{
        int32_t error;
        _cleanup_free_ char *buf = malloc(CONTAINER_OS_RELEASE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        struct iovec iov[2] = { { .iov_base = &error, .iov_len = sizeof(error) },
                                { .iov_base = buf, .iov_len = CONTAINER_OS_RELEASE_MAX } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (n < 0)
                return -errno;
        if (n == 0)
                return -EPIPE; /* the reader died without an answer */
        if ((size_t) n < sizeof(error) || (mh.msg_flags & MSG_TRUNC) || error < 0)
                return -EBADMSG;
        if (error > 0)
                return -error;
        *ret_size = (size_t) n - sizeof(error);
        buf[*ret_size] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}
