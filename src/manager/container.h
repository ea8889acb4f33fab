/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Launching a container's PID 1 (SPEC §4). The daemon clone3()s the child directly: there is no
 * intermediate supervisor process. The child waits on a sync socket until the parent has put it in its
 * cgroups (and set up its network), then builds the guest's mounts, pivots, drops capabilities, loads
 * seccomp and execs init. A failing step writes "step: strerror" to the sync socket and exits; a
 * successful exec closes the socket (CLOEXEC), so the parent reads EOF. */

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-id128.h>

#include "settings.h"

typedef struct ContainerConfig {
        const char *name;
        const char *root;      /* host path of the rootfs directory */
        sd_id128_t uuid;       /* container_uuid= */
        const char *hostname;
        char **argv;           /* what PID 1 execs: the guest's init path (resolved inside the guest) ... */
        int exec_fd;           /* ... or, if >= 0, this O_PATH fd (machinemgr-init from the host) via execveat */
        char **environment;    /* extra VAR=value, after container=, container_uuid=, NOTIFY_SOCKET= */
        const char *console_path; /* host path of the console pty slave, bind-mounted to /dev/console */
        const char *run_host_dir; /* host directory bind-mounted at /run/host (holds the notify socket) */
        bool private_network;  /* new netns (Mode=none/veth/bridge); false for Mode=host */
        bool host0;            /* Mode=veth/bridge: pre_start moves "host0" in; the child brings it up */
        char **addresses;      /* "ADDR/PREFIX" for host0 */
        int resolv_conf;       /* NETNS_RESOLV_CONF_*: 0 leaves the guest's /etc/resolv.conf alone */
        bool read_only;        /* rootfs mounted read-only */
        bool ephemeral;        /* rootfs: overlayfs over the image, upper layer on a tmpfs (binds.h) */
        const BindMount *binds; /* Bind=/BindReadOnly=, mounted after /run (binds.h) */
        size_t n_binds;
        uint64_t capabilities; /* bounding set to keep, bit mask of CAP_* */
        char **syscall_filter; /* extra "name"/"~name" entries on top of the default deny list */
        int cgroup2_fd;        /* for CLONE_INTO_CGROUP, or -1 */

        /* PrivateUsers= (userns.h): uid_range > 0 = a new user namespace mapping 0 -> uid_shift for
         * uid_range ids, the rootfs an idmapped mount of it. 0 = the host's user namespace. */
        uint32_t uid_shift, uid_range;
        /* Set in the child only (uid_range > 0): the detached idmapped rootfs made by the parent. */
        int root_tree_fd;
        /* Set in the child only (uid_range > 0): one detached idmapped tree per bind, made by the parent
         * (read-only ones already read-only), in the order of binds. */
        const int *bind_tree_fds;

        /* Called in the parent between clone and letting the child go on: attach cgroups, create veths,
         * write uid maps. A negative return kills the child and fails the spawn. */
        int (*pre_start)(pid_t pid, void *userdata);
        void *userdata;
        /* The caller lets the child go on itself (container_send_go), after work it does not want to wait
         * for in pre_start (systemd's job for the scope). */
        bool defer_go;
        /* Set up the child in the daemon's memory (CLONE_VM | CLONE_VFORK, see container.c) instead of a
         * fork of it. Only for a guest without a memory limit; ignored with defer_go. */
        bool share_vm;
        /* The guest's reboot(2) calls go to a listener that the caller receives through
         * container_sync_read_full() and must serve for the guest's whole life (reboot-watch.h): without
         * one, the guest's reboot(2) fails with ENOSYS. */
        bool watch_reboot;
} ContainerConfig;

typedef struct ContainerProcess {
        pid_t pid;     /* in the daemon's pid namespace */
        int pidfd;     /* from clone3(CLONE_PIDFD) */
        int sync_fd;   /* read end: data = "step: error" from a failed set-up, EOF = init exec'd */
        bool shared_vm; /* set up by the shared-memory spawn, not a fork */
} ContainerProcess;

/* Clones the child and runs pre_start; does not wait for the exec. On error nothing is left running. */
int container_spawn(const ContainerConfig *c, ContainerProcess *ret, char **ret_error);

/* Blocking helper (tests, tools): waits on sync_fd. 0 when init exec'd; -errno with *ret_error set
 * ("mount /proc: Permission denied") when set-up failed. */
int container_wait_exec(ContainerProcess *p, char **ret_error);

/* With defer_go: the child may go on to exec (it is in its cgroups and has its network). */
int container_send_go(int sync_fd);

/* Reads what is on sync_fd now, for an event loop: 1 = still waiting, 0 = exec'd, <0 = failed. */
int container_sync_read(int sync_fd, char **ret_error);
/* The same, and 2 (still waiting) when the child handed over its seccomp filter's reboot(2) listener
 * (reboot-watch.h): then in *ret_listener (a previous one there is closed). */
int container_sync_read_full(int sync_fd, char **ret_error, int *ret_listener);

/* Default bounding set (SPEC §4; like systemd-nspawn's default). */
uint64_t container_default_capabilities(bool private_network);

/* Path of the guest's init, checked inside the rootfs with RESOLVE_IN_ROOT: /usr/lib/systemd/systemd,
 * /lib/systemd/systemd, /sbin/init. -ENOENT if none (-> org.machinemgr1.Error.NoInit). */
int container_find_init(const char *root, char **ret_path);

/* Runs a command inside a running container (`machinemgr shell`): joins the cgroups (host paths of
 * cgroup.procs files, NULL-terminated, may be NULL) and every namespace of leader_pidfd, then forks
 * into the pid namespace (CLONE_INTO_CGROUP with cgroup2_fd when >= 0). The command runs as user
 * (NULL or "root", a name or uid looked up in the guest's /etc/passwd) in a new session with the
 * container's bounding set (capabilities) and default seccomp filter, stdin/stdout/stderr from the
 * given fds (stdin becomes the controlling tty if it is one), env plus HOME/USER/LOGNAME/SHELL/PATH
 * when missing; argv NULL or empty means the user's login shell. Returns at once: *ret_pid and *ret_pidfd
 * are those of a helper process that exits with the command's exit status (128+signal if it was killed; 127 if
 * it could not be executed, the reason written to stderr_fd).
 * The helper is not dumpable and holds nothing of the daemon's; it becomes the guest's root (uid_shift
 * with a user namespace) with no more than capabilities before it opens any file of the guest's, and
 * reads /etc/passwd and /etc/group only as regular files of at most 4 MiB, within 10 s. If they cannot
 * be used, root is entered with root's defaults (/root, /bin/sh, no supplementary groups; a warning on
 * stderr_fd), any other user not at all (exit 1, the reason on stderr_fd). Its oom_score_adj is 0 and
 * its fd limit the guests' (container_set_guest_nofile()). */
int container_enter(int leader_pidfd, const char *cgroup_procs_paths[], int cgroup2_fd, const char *user,
                    char **argv, char **env, int stdin_fd, int stdout_fd, int stderr_fd, uint64_t capabilities,
                    pid_t *ret_pid, int *ret_pidfd);

/* The fd limit guests (and shell sessions) start with: the daemon raises its own to serve many machines,
 * guests get original, the limit the daemon was started with, the soft one at most FD_SETSIZE (1024) as
 * systemd gives what it starts. Called once at start-up, before the daemon raises its own. */
struct rlimit;
void container_set_guest_nofile(const struct rlimit *original);

/* O_PATH fd of a running guest's root directory (/proc/LEADER/root), checked to still belong to the
 * leader after opening. */
int container_open_root(pid_t leader, int leader_pidfd);

/* GetOSRelease: a child of ours reads the guest's /etc/os-release (else /usr/lib/os-release) through the
 * guest's root as uid (the guest's root: uid_shift, or 0 without capabilities for a guest without a user
 * namespace), not dumpable and outside the guest's namespaces; only a regular file of at most
 * CONTAINER_OS_RELEASE_MAX is read (guest_open()). Returns the child's pidfd (the caller reaps it, and
 * kills it when it takes too long) and a non-blocking socket that becomes readable with the answer. */
#define CONTAINER_OS_RELEASE_MAX (64U * 1024U)
int container_read_os_release(pid_t leader, int leader_pidfd, uid_t uid, int *ret_pidfd, int *ret_fd);
/* The answer on fd: 0 and the file's text (*ret, NUL-terminated, *ret_size bytes, may hold NULs),
 * -EAGAIN if none yet, -EPIPE if the reader ended without one, or the reader's error (-EBADFD: not a
 * regular file, -EFBIG: larger than CONTAINER_OS_RELEASE_MAX, -ENOENT: none). */
int container_os_release_receive(int fd, char **ret, size_t *ret_size);
