/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tests of the container runtime.
 *   test-runtime unit           no root needed: capability set, seccomp policy, init lookup
 *   test-runtime busybox PROBE  root: a busybox guest, observable isolation (SPEC §4)
 *   test-runtime boot           root: boots a copy of the Debian probe image with systemd as PID 1
 * The root tests make a scratch cgroup below our own in the unified hierarchy and remove it again. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "capabilities.h"
#include "container.h"
#include "seccomp-policy.h"
#include "util.h"

/* A Debian 12 rootfs with systemd: $MM_DEBIAN_ROOTFS (CI sets it to tools/mkimage-debian's cache), else
 * the developer's probe image. */
#define DEBIAN_IMAGE_DEFAULT "/var/cache/machinemgr/probe/debian"
#define DEBIAN_COPY "/var/tmp/machinemgr-runtime-test-debian"

static int failures;

#define CHECK(cond, ...)                                                                                     \
        do {                                                                                                 \
                if (cond)                                                                                    \
                        printf("ok: " __VA_ARGS__);                                                          \
                else {                                                                                       \
                        printf("FAIL (%s:%d): ", __FILE__, __LINE__);                                        \
                        printf(__VA_ARGS__);                                                                 \
                        failures++;                                                                          \
                }                                                                                            \
                printf("\n");                                                                                \
        } while (0)

static double ms_since(uint64_t start)
{
        return (double) (now_usec(CLOCK_MONOTONIC) - start) / 1000.0;
}

/* ---------------- unit ---------------- */

static int write_file_at(const char *dir, const char *name, const char *content, mode_t mode)
{
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || write(fd, content, strlen(content)) < 0)
                return -errno;
        return 0;
}

static void test_unit(void)
{
        uint64_t caps = container_default_capabilities(false);
        CHECK(!(caps & (UINT64_C(1) << CAP_SYS_MODULE)) && !(caps & (UINT64_C(1) << CAP_SYS_RAWIO)) &&
                      !(caps & (UINT64_C(1) << CAP_SYS_TIME)) && !(caps & (UINT64_C(1) << CAP_SYSLOG)) &&
                      !(caps & (UINT64_C(1) << CAP_BPF)) && !(caps & (UINT64_C(1) << CAP_NET_ADMIN)),
              "default bounding set lacks module/rawio/time/syslog/bpf/net_admin");
        CHECK(container_default_capabilities(true) & (UINT64_C(1) << CAP_NET_ADMIN),
              "CAP_NET_ADMIN kept with a private netns");
        CHECK(caps & (UINT64_C(1) << CAP_SYS_ADMIN), "CAP_SYS_ADMIN kept (systemd needs it)");
        CHECK(capability_from_name("cap_sys_admin") == CAP_SYS_ADMIN, "capability_from_name");

        scmp_filter_ctx ctx = NULL;
        const char *bad = NULL;
        char *extra_ok[] = { (char *) "keyctl", (char *) "~mount", NULL };
        CHECK(seccomp_policy_build(extra_ok, &ctx, &bad) == 0, "seccomp policy with extra entries builds");
        if (ctx)
                seccomp_release(ctx);
        char *extra_bad[] = { (char *) "~no_such_call", NULL };
        ctx = NULL;
        CHECK(seccomp_policy_build(extra_bad, &ctx, &bad) == -EINVAL && bad && streq(bad, "~no_such_call"),
              "unknown system call rejected and named");
        CHECK(seccomp_policy_denies_by_default("keyctl") && seccomp_policy_denies_by_default("kexec_load") &&
                      !seccomp_policy_denies_by_default("mount"),
              "default deny list");

        char tmpl[] = "/tmp/test-runtime-init-XXXXXX";
        const char *root = mkdtemp(tmpl);
        _cleanup_free_ char *path = NULL;
        CHECK(root && container_find_init(root, &path) == -ENOENT, "no init -> ENOENT");

        /* A symlink to a host binary must not be found through the host's root. */
        _cleanup_free_ char *sbin = NULL, *link = NULL, *bin = NULL;
        (void) asprintf(&sbin, "%s/sbin", root);
        (void) asprintf(&link, "%s/sbin/init", root);
        (void) asprintf(&bin, "%s/bin", root);
        (void) mkdir(sbin, 0755);
        (void) symlink("/bin/true", link);
        CHECK(container_find_init(root, &path) == -ENOENT, "init symlink to a host path is resolved in the root");

        (void) mkdir(bin, 0755);
        (void) write_file_at(bin, "true", "#!/bin/sh\n", 0755);
        CHECK(container_find_init(root, &path) == 0 && streq(path, "/sbin/init"), "init found via in-root symlink");

        (void) unlink(link);
        (void) write_file_at(sbin, "init", "", 0644);
        free(TAKE_PTR(path));
        CHECK(container_find_init(root, &path) == -ENOENT, "non-executable init ignored");

        _cleanup_free_ char *cmd = NULL;
        (void) asprintf(&cmd, "rm -rf '%s'", root);
        (void) system(cmd);
}

/* ---------------- shared fixture for the root tests ---------------- */

typedef struct Fixture {
        char dir[64];           /* scratch dir: rootfs/, run/ */
        char rootfs[128];
        char run_host[128];
        char cgroup[PATH_MAX];  /* our scratch cgroup2 directory */
        int cgroup_fd;
        int pty_master;
        char console[64];
        int notify_fd;
        pthread_t console_thread;
        volatile bool stop;
        FILE *console_log;
} Fixture;

/* The guest blocks once the pty buffer is full: someone must always read the console. */
static void *console_drain(void *userdata)
{
        Fixture *f = userdata;
        char buf[4096];

        while (!f->stop) {
                struct pollfd p = { .fd = f->pty_master, .events = POLLIN };
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t n = read(f->pty_master, buf, sizeof(buf));
                if (n <= 0) {
                        usleep(10000);
                        continue;
                }
                if (f->console_log)
                        fwrite(buf, 1, (size_t) n, f->console_log);
        }
        return NULL;
}

static int own_unified_cgroup(char **ret)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        char line[PATH_MAX];

        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = 0;
                        *ret = strdup(line + 3);
                        return *ret ? 0 : -ENOMEM;
                }
        return -ENOENT;
}

static const char *unified_mount(void)
{
        struct stat st;
        return stat("/sys/fs/cgroup/unified", &st) == 0 ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup";
}

static int fixture_setup(Fixture *f, const char *rootfs)
{
        _cleanup_free_ char *own = NULL;

        *f = (Fixture) { .cgroup_fd = -1, .pty_master = -1, .notify_fd = -1 };
        strcpy(f->dir, "/var/tmp/test-runtime-XXXXXX");
        if (!mkdtemp(f->dir))
                return -errno;
        snprintf(f->rootfs, sizeof(f->rootfs), "%s/rootfs", f->dir);
        snprintf(f->run_host, sizeof(f->run_host), "%s/run", f->dir);
        if (mkdir(f->run_host, 0755) < 0)
                return -errno;
        if (rootfs)
                snprintf(f->rootfs, sizeof(f->rootfs), "%s", rootfs);
        else if (mkdir(f->rootfs, 0755) < 0)
                return -errno;

        if (own_unified_cgroup(&own) < 0)
                return -ENOENT;
        snprintf(f->cgroup, sizeof(f->cgroup), "%s%s/test-runtime-%d", unified_mount(), streq(own, "/") ? "" : own,
                 getpid());
        if (mkdir(f->cgroup, 0755) < 0)
                return -errno;
        f->cgroup_fd = open(f->cgroup, O_DIRECTORY | O_CLOEXEC);
        if (f->cgroup_fd < 0)
                return -errno;

        f->pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (f->pty_master < 0 || grantpt(f->pty_master) < 0 || unlockpt(f->pty_master) < 0 ||
            ptsname_r(f->pty_master, f->console, sizeof(f->console)) != 0)
                return -errno;

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t) snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s/notify", f->run_host) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        f->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (f->notify_fd < 0 || bind(f->notify_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;

        _cleanup_free_ char *log = NULL;
        (void) asprintf(&log, "%s/console.log", f->dir);
        f->console_log = fopen(log, "we");
        return -pthread_create(&f->console_thread, NULL, console_drain, f);
}

static int rmdir_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        if (type == FTW_DP)
                (void) rmdir(path);
        return 0;
}

static void fixture_teardown(Fixture *f, bool remove_rootfs)
{
        if (f->console_thread) {
                f->stop = true;
                pthread_join(f->console_thread, NULL);
        }
        if (f->console_log)
                fclose(f->console_log);
        safe_close(f->pty_master);
        safe_close(f->notify_fd);
        safe_close(f->cgroup_fd);
        /* The guest's own sub-cgroups (systemd makes init.scope, system.slice/...) go first. */
        if (f->cgroup[0])
                (void) nftw(f->cgroup, rmdir_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        if (f->dir[0] && !getenv("TEST_RUNTIME_KEEP")) {
                _cleanup_free_ char *cmd = NULL;
                (void) asprintf(&cmd, "rm -rf --one-file-system '%s'", f->dir);
                (void) system(cmd);
                (void) remove_rootfs;
        }
}

/* Which spawn container_spawn() uses: a fork of this process, or the shared-memory one (container.c). */
static bool spawn_share_vm;

static ContainerConfig fixture_config(Fixture *f, char **argv)
{
        return (ContainerConfig) {
                .name = "test",
                .root = f->rootfs,
                .uuid = SD_ID128_MAKE(4a, 1c, 3e, 8f, 92, 55, 46, 1b, 9e, 0d, 12, 34, 56, 78, 9a, bc),
                .hostname = "guest-test",
                .argv = argv,
                .exec_fd = -1,
                .console_path = f->console,
                .run_host_dir = f->run_host,
                .private_network = true,
                .capabilities = container_default_capabilities(true),
                .cgroup2_fd = f->cgroup_fd,
                .share_vm = spawn_share_vm,
        };
}

/* Exit status of the pidfd's process, or -ETIMEDOUT (then it is killed). */
static int wait_exit(int pidfd, int timeout_ms, siginfo_t *ret_si)
{
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        siginfo_t si = {};

        if (poll(&p, 1, timeout_ms) == 0) {
                (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                (void) waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED);
                return -ETIMEDOUT;
        }
        if (waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED) < 0)
                return -errno;
        if (ret_si)
                *ret_si = si;
        return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

/* ---------------- busybox ---------------- */

typedef struct PreStartProbe {
        int r;              /* what pre_start returns */
        pid_t pid;          /* what it was given */
        ino_t pidns, own_pidns;
} PreStartProbe;

static int probe_pre_start(pid_t pid, void *userdata)
{
        PreStartProbe *probe = userdata;
        char path[64];
        struct stat st;

        probe->pid = pid;
        snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int) pid);
        if (stat(path, &st) == 0)
                probe->pidns = st.st_ino;
        if (stat("/proc/self/ns/pid", &st) == 0)
                probe->own_pidns = st.st_ino;
        return probe->r;
}

static int make_busybox_rootfs(const char *root, const char *probe)
{
        _cleanup_free_ char *cmd = NULL;

        if (asprintf(&cmd,
                     "set -e; cd '%s'; mkdir -p bin sbin etc proc sys dev run tmp out; "
                     "cp /bin/busybox bin/busybox; cp '%s' probe; "
                     "for a in $(bin/busybox --list); do [ -e bin/$a ] || ln -s busybox bin/$a; done; "
                     "echo 'root:x:0:0:root:/:/bin/sh' > etc/passwd",
                     root, probe) < 0)
                return -ENOMEM;
        return system(cmd) == 0 ? 0 : -EIO;
}

static int read_guest_file(Fixture *f, const char *name, char **ret)
{
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/out/%s", f->rootfs, name) < 0)
                return -ENOMEM;
        return read_one_line_file(p, ret);
}

static int spawn_and_wait(ContainerConfig *c, ContainerProcess *p, double *ret_ms, char **ret_error)
{
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        int r = container_spawn(c, p, ret_error);
        if (r < 0)
                return r;
        r = container_wait_exec(p, ret_error);
        if (ret_ms)
                *ret_ms = ms_since(start);
        return r;
}

static void test_exit_status(Fixture *f)
{
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "exit 7", NULL };
        ContainerConfig c = fixture_config(f, argv);
        ContainerProcess p = { .pidfd = -1, .sync_fd = -1 };
        _cleanup_free_ char *error = NULL;
        double ms = 0;

        int r = spawn_and_wait(&c, &p, &ms, &error);
        CHECK(r == 0, "spawn busybox sh (%s), set-up until exec %.2f ms", strempty(error), ms);
        if (r == 0)
                CHECK(wait_exit(p.pidfd, 10000, NULL) == 7, "exit status 7 via waitid(P_PIDFD)");
        safe_close(p.pidfd);
        safe_close(p.sync_fd);

        /* Set-up cost, averaged: the number the benchmark against unshare/nspawn/LXC is about. */
        const int n = 20;
        double total = 0;
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        char *argv_true[] = { (char *) "/bin/true", NULL };
        c.argv = argv_true;
        for (int i = 0; i < n; i++) {
                ContainerProcess q = { .pidfd = -1, .sync_fd = -1 };
                double one = 0;
                if (spawn_and_wait(&c, &q, &one, NULL) == 0)
                        total += one;
                (void) wait_exit(q.pidfd, 10000, NULL);
                safe_close(q.pidfd);
                safe_close(q.sync_fd);
        }
        printf("timing: container_spawn until exec %.2f ms avg, start->exit of /bin/true %.2f ms avg (%d runs)\n",
               total / n, ms_since(start) / n, n);
}

static void check_namespaces(pid_t pid)
{
        static const char *const ns[] = { "pid", "mnt", "uts", "ipc", "net", "cgroup" };

        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                _cleanup_free_ char *guest = NULL, *host = NULL;
                struct stat a, b;
                (void) asprintf(&guest, "/proc/%d/ns/%s", pid, ns[i]);
                (void) asprintf(&host, "/proc/self/ns/%s", ns[i]);
                CHECK(stat(guest, &a) == 0 && stat(host, &b) == 0 && a.st_ino != b.st_ino,
                      "%s namespace differs from the host's", ns[i]);
        }
}

static void test_isolation(Fixture *f)
{
        static const char script[] =
                "hostname > /out/hostname; "
                "ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' ' > /out/pids; "
                "grep CapBnd /proc/self/status | cut -f2 > /out/capbnd; "
                "(echo b > /proc/sysrq-trigger) 2>/dev/null; echo $? > /out/sysrq; "
                "(echo evil > /proc/sys/kernel/hostname) 2>/dev/null; echo $? > /out/sysctl; "
                "/probe keyctl > /out/keyctl; "
                "[ \"$container\" = machinemgr ] && echo \"$container_uuid $NOTIFY_SOCKET\" > /out/env; "
                "stat -f -c %t /sys/fs/cgroup > /out/cgroupfs; "
                "mkdir -p /tmp/cg1; mount -t cgroup -o none,name=mmtest,release_agent=/evil cgroup /tmp/cg1 "
                "2>/dev/null; echo $? > /out/cgroup1; umount /tmp/cg1 2>/dev/null; "
                "if mount -t cgroup -o memory cgroup /tmp/cg1 2>/dev/null; then "
                "(echo /evil > /tmp/cg1/release_agent) 2>/dev/null; echo $? > /out/agent; umount /tmp/cg1; "
                "else echo no-v1 > /out/agent; fi; "
                "while [ ! -e /go ]; do usleep 10000; done";
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, NULL };
        ContainerConfig c = fixture_config(f, argv);
        ContainerProcess p = { .pidfd = -1, .sync_fd = -1 };
        _cleanup_free_ char *error = NULL;

        int r = spawn_and_wait(&c, &p, NULL, &error);
        CHECK(r == 0, "spawn isolation probe (%s)", strempty(error));
        if (r < 0)
                return;

        check_namespaces(p.pid);
        (void) write_file_at(f->rootfs, "go", "", 0644);
        CHECK(wait_exit(p.pidfd, 10000, NULL) == 0, "isolation probe exits 0");
        safe_close(p.pidfd);
        safe_close(p.sync_fd);

        _cleanup_free_ char *hostname = NULL, *pids = NULL, *capbnd = NULL, *sysrq = NULL, *sysctl = NULL,
                            *keyctl = NULL, *env = NULL, *cgroupfs = NULL, *cgroup1 = NULL, *agent = NULL;
        CHECK(read_guest_file(f, "hostname", &hostname) >= 0 && streq(hostname, "guest-test"), "hostname is %s",
              strempty(hostname));

        /* Only the guest's own processes: PID 1 (sh) and the pipeline, all small numbers. */
        bool only_guest = read_guest_file(f, "pids", &pids) >= 0 && strncmp(pids, "1 ", 2) == 0;
        for (char *t = pids ? strtok(pids, " ") : NULL; t; t = strtok(NULL, " "))
                if (atoi(t) > 20)
                        only_guest = false;
        CHECK(only_guest, "/proc shows only the guest's PIDs");

        uint64_t bnd = 0;
        bool read_ok = read_guest_file(f, "capbnd", &capbnd) >= 0 && sscanf(capbnd, "%" SCNx64, &bnd) == 1;
        CHECK(read_ok && !(bnd & (UINT64_C(1) << CAP_SYS_MODULE)) && (bnd & (UINT64_C(1) << CAP_SYS_ADMIN)),
              "CapBnd %s: no CAP_SYS_MODULE, has CAP_SYS_ADMIN", strempty(capbnd));
        CHECK(read_guest_file(f, "sysrq", &sysrq) >= 0 && !streq(sysrq, "0"), "writing /proc/sysrq-trigger fails");
        CHECK(read_guest_file(f, "sysctl", &sysctl) >= 0 && !streq(sysctl, "0"),
              "writing /proc/sys/kernel/hostname fails");
        CHECK(read_guest_file(f, "keyctl", &keyctl) >= 0 && streq(keyctl, "EPERM"), "keyctl() -> %s",
              strempty(keyctl));
        CHECK(read_guest_file(f, "env", &env) >= 0 &&
                      streq(env, "4a1c3e8f-9255-461b-9e0d-123456789abc /run/host/notify"),
              "container=, container_uuid=, NOTIFY_SOCKET= set (%s)", strempty(env));
        CHECK(read_guest_file(f, "cgroupfs", &cgroupfs) >= 0 && streq(cgroupfs, "63677270"),
              "/sys/fs/cgroup is cgroup2 (%s)", strempty(cgroupfs));
        /* A new cgroup v1 hierarchy could carry a release_agent run by the host's kernel as root. */
        CHECK(read_guest_file(f, "cgroup1", &cgroup1) >= 0 && !streq(cgroup1, "0"),
              "mounting a cgroup v1 hierarchy with release_agent= fails");
        CHECK(read_guest_file(f, "agent", &agent) >= 0 && !streq(agent, "0"),
              "writing release_agent of an existing v1 hierarchy fails (%s)", strempty(agent));
}

static void test_exec_fd(Fixture *f, const char *probe)
{
        char *argv[] = { (char *) "probe", (char *) "exit", (char *) "3", NULL };
        ContainerConfig c = fixture_config(f, argv);
        ContainerProcess p = { .pidfd = -1, .sync_fd = -1 };

        c.exec_fd = open(probe, O_PATH | O_CLOEXEC);
        c.private_network = false;
        c.read_only = true;
        int r = spawn_and_wait(&c, &p, NULL, NULL);
        CHECK(r == 0 && wait_exit(p.pidfd, 10000, NULL) == 3, "execveat(exec_fd) of a host binary, read-only root");
        safe_close(c.exec_fd);
        safe_close(p.pidfd);
        safe_close(p.sync_fd);
}

static void test_failure(Fixture *f)
{
        char *argv[] = { (char *) "/bin/sh", NULL };
        ContainerConfig c = fixture_config(f, argv);
        ContainerProcess p = { .pidfd = -1, .sync_fd = -1 };
        _cleanup_free_ char *error = NULL;

        c.root = "/nonexistent-rootfs";
        int r = spawn_and_wait(&c, &p, NULL, &error);
        CHECK(r == -ENOENT && error && streq(error, "bind /nonexistent-rootfs: No such file or directory"),
              "missing rootfs reported as \"%s\"", strempty(error));
        if (p.pidfd >= 0)
                (void) wait_exit(p.pidfd, 10000, NULL);
        safe_close(p.pidfd);
        safe_close(p.sync_fd);

        char *argv_missing[] = { (char *) "/no/such/init", NULL };
        c = fixture_config(f, argv_missing);
        p = (ContainerProcess) { .pidfd = -1, .sync_fd = -1 };
        free(TAKE_PTR(error));
        r = spawn_and_wait(&c, &p, NULL, &error);
        CHECK(r == -ENOENT && error && streq(error, "exec: No such file or directory"), "missing init: \"%s\"",
              strempty(error));
        if (p.pidfd >= 0)
                (void) wait_exit(p.pidfd, 10000, NULL);
        safe_close(p.pidfd);
        safe_close(p.sync_fd);

        /* A parent step that fails (in the shared-memory spawn it runs on the worker thread): the spawn
         * fails with the step's error, and the waiting child is gone, not left behind. */
        PreStartProbe probe = { .r = -EADDRINUSE };
        c = fixture_config(f, argv);
        c.pre_start = probe_pre_start;
        c.userdata = &probe;
        p = (ContainerProcess) { .pidfd = -1, .sync_fd = -1 };
        free(TAKE_PTR(error));
        r = container_spawn(&c, &p, &error);
        CHECK(r == -EADDRINUSE && error && streq(error, "pre_start: Address already in use"),
              "failing pre_start reported as \"%s\" (%d)", strempty(error), r);
        CHECK(probe.pid > 0 && kill(probe.pid, 0) < 0 && errno == ESRCH,
              "the child pre_start saw (PID %d) was killed and reaped", (int) probe.pid);
}

/* pre_start runs while the child waits: the pid it gets is the child's, in its own namespaces. */
static void test_pre_start(Fixture *f)
{
        char *argv[] = { (char *) "/bin/true", NULL };
        ContainerConfig c = fixture_config(f, argv);
        ContainerProcess p = { .pidfd = -1, .sync_fd = -1 };
        PreStartProbe probe = {};
        _cleanup_free_ char *error = NULL;

        c.pre_start = probe_pre_start;
        c.userdata = &probe;
        int r = spawn_and_wait(&c, &p, NULL, &error);
        CHECK(r == 0, "spawn with a pre_start (%s)", strempty(error));
        CHECK(probe.pid > 0 && probe.pid == p.pid, "pre_start got the child's PID (%d, spawn returned %d)",
              (int) probe.pid, (int) p.pid);
        CHECK(probe.pidns != 0 && probe.pidns != probe.own_pidns,
              "at pre_start the child is already in its own pid namespace");
        if (p.pidfd >= 0)
                CHECK(wait_exit(p.pidfd, 10000, NULL) == 0, "the child exits 0");
        safe_close(p.pidfd);
        safe_close(p.sync_fd);
}

static unsigned count_dir(const char *path)
{
        unsigned n = 0;
        DIR *d = opendir(path);
        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

/* Many spawns leave nothing in the spawning process: no fd, no thread (the shared-memory spawn's
 * worker is joined), every child reaped. */
static void test_no_leaks(Fixture *f)
{
        char *argv[] = { (char *) "/bin/true", NULL };
        unsigned fds = count_dir("/proc/self/fd"), threads = count_dir("/proc/self/task");
        int ok = 0;

        for (int i = 0; i < 30; i++) {
                ContainerConfig c = fixture_config(f, argv);
                ContainerProcess p = { .pidfd = -1, .sync_fd = -1 };
                if (spawn_and_wait(&c, &p, NULL, NULL) == 0 && wait_exit(p.pidfd, 10000, NULL) == 0)
                        ok++;
                safe_close(p.pidfd);
                safe_close(p.sync_fd);
        }
        CHECK(ok == 30, "30 spawns of /bin/true exited 0 (%d did)", ok);
        CHECK(count_dir("/proc/self/fd") == fds, "no fd left over (%u before, %u after)", fds,
              count_dir("/proc/self/fd"));
        CHECK(count_dir("/proc/self/task") == threads, "no thread left over (%u before, %u after)", threads,
              count_dir("/proc/self/task"));
}

static void test_enter(Fixture *f)
{
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) "while [ ! -e /go2 ]; do usleep 10000; done",
                         NULL };
        ContainerConfig c = fixture_config(f, argv);
        ContainerProcess p = { .pidfd = -1, .sync_fd = -1 };

        if (spawn_and_wait(&c, &p, NULL, NULL) < 0) {
                CHECK(false, "spawn for container_enter");
                return;
        }

        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return;
        char *cmd[] = { (char *) "/bin/sh", (char *) "-c",
                        (char *) "echo $(hostname) $$ $HOME; /probe keyctl; exit 5", NULL };
        pid_t pid;
        int pidfd = -1;
        int r = container_enter(p.pidfd, NULL, f->cgroup_fd, NULL, cmd, NULL, STDIN_FILENO, pipefd[1], pipefd[1],
                                container_default_capabilities(true), &pid, &pidfd);
        safe_close(pipefd[1]);
        char out[256] = {};
        size_t len = 0;
        ssize_t n;
        while (r >= 0 && len < sizeof(out) - 1 && (n = read(pipefd[0], out + len, sizeof(out) - 1 - len)) > 0)
                len += (size_t) n;
        safe_close(pipefd[0]);
        CHECK(r >= 0 && wait_exit(pidfd, 10000, NULL) == 5, "container_enter: exit status 5");
        /* Inside the guest's pid namespace: a small PID, never the guest's init (1). */
        char host[64] = "", home[64] = "", keyctl[64] = "";
        int guest_pid = 0;
        CHECK(sscanf(out, "%63s %d %63s %63s", host, &guest_pid, home, keyctl) == 4 && streq(host, "guest-test") &&
                      guest_pid > 1 && guest_pid < 20 && streq(home, "/") && streq(keyctl, "EPERM"),
              "container_enter: hostname, pid namespace, HOME, seccomp (%s)", out);
        safe_close(pidfd);

        (void) write_file_at(f->rootfs, "go2", "", 0644);
        (void) wait_exit(p.pidfd, 10000, NULL);
        safe_close(p.pidfd);
        safe_close(p.sync_fd);
}

static void test_busybox(const char *probe)
{
        Fixture f;
        int r = fixture_setup(&f, NULL);
        if (r < 0) {
                CHECK(false, "fixture set-up: %s", strerror(-r));
                fixture_teardown(&f, true);
                return;
        }
        r = make_busybox_rootfs(f.rootfs, probe);
        CHECK(r == 0, "busybox rootfs in %s", f.rootfs);
        /* Every check with both spawns: a fork of the daemon, and the shared-memory one. */
        for (int shared = 0; r == 0 && shared <= 1; shared++) {
                spawn_share_vm = shared;
                printf("# %s spawn\n", shared ? "shared-memory (CLONE_VM | CLONE_VFORK)" : "forked");
                test_exit_status(&f);
                test_isolation(&f);
                test_exec_fd(&f, probe);
                test_failure(&f);
                test_pre_start(&f);
                test_no_leaks(&f);
        }
        if (r == 0)
                test_enter(&f);
        fixture_teardown(&f, true);
}

/* ---------------- boot ---------------- */

static void notify_read(Fixture *f, bool *ready, char *status, size_t status_size)
{
        char buf[4096];
        ssize_t n;

        while ((n = recv(f->notify_fd, buf, sizeof(buf) - 1, 0)) > 0) {
                buf[n] = 0;
                for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
                        if (streq(l, "READY=1"))
                                *ready = true;
                        else if (strncmp(l, "STATUS=", 7) == 0)
                                snprintf(status, status_size, "%s", l + 7);
                }
        }
}

static int run_capture(const char *cmd, char *out, size_t size)
{
        FILE *p = popen(cmd, "re");
        if (!p)
                return -errno;
        size_t n = fread(out, 1, size - 1, p);
        out[n] = 0;
        out[strcspn(out, "\n")] = 0;
        return pclose(p);
}

static void test_boot(void)
{
        struct stat st;
        const char *image = getenv("MM_DEBIAN_ROOTFS") ?: DEBIAN_IMAGE_DEFAULT;
        char path[PATH_MAX], copy_cmd[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/usr/lib/systemd/systemd", image);
        if (stat(path, &st) < 0) {
                printf("SKIP: no Debian image at %s (set MM_DEBIAN_ROOTFS)\n", image);
                exit(77);
        }
        /* The copy is kept out of the timing. */
        snprintf(copy_cmd, sizeof copy_cmd, "cp -a '%s' " DEBIAN_COPY, image);
        if (stat(DEBIAN_COPY, &st) < 0 && system(copy_cmd) != 0) {
                CHECK(false, "copy the Debian image");
                return;
        }

        Fixture f;
        int r = fixture_setup(&f, DEBIAN_COPY);
        if (r < 0) {
                CHECK(false, "fixture set-up: %s", strerror(-r));
                fixture_teardown(&f, false);
                return;
        }

        _cleanup_free_ char *init = NULL;
        CHECK(container_find_init(f.rootfs, &init) == 0, "init found: %s", strempty(init));
        char *argv[] = { init, NULL };
        ContainerConfig c = fixture_config(&f, argv);
        c.hostname = "debian-test";
        ContainerProcess p = { .pidfd = -1, .sync_fd = -1 };
        _cleanup_free_ char *error = NULL;
        double setup_ms = 0;
        uint64_t start = now_usec(CLOCK_MONOTONIC);

        r = spawn_and_wait(&c, &p, &setup_ms, &error);
        CHECK(r == 0, "spawn systemd (%s), set-up until exec %.2f ms", strempty(error), setup_ms);
        if (r < 0)
                goto finish;

        bool ready = false;
        char status[256] = "";
        while (!ready && ms_since(start) < 60000) {
                struct pollfd pfd[2] = { { .fd = f.notify_fd, .events = POLLIN }, { .fd = p.pidfd, .events = POLLIN } };
                (void) poll(pfd, 2, 500);
                notify_read(&f, &ready, status, sizeof(status));
                if (pfd[1].revents)
                        break;
        }
        double boot_ms = ms_since(start);
        CHECK(ready, "READY=1 after %.0f ms (STATUS=%s)", boot_ms, status);

        char cmd[256], state[256] = "";
        snprintf(cmd, sizeof(cmd), "timeout 60 nsenter -t %d -a systemctl is-system-running --wait 2>&1", p.pid);
        (void) run_capture(cmd, state, sizeof(state));
        CHECK(streq(state, "running") || streq(state, "degraded"), "systemctl is-system-running: %s", state);
        if (!streq(state, "running")) {
                snprintf(cmd, sizeof(cmd), "nsenter -t %d -a systemctl --failed --no-legend --no-pager", p.pid);
                (void) system(cmd);
        }

        uint64_t off = now_usec(CLOCK_MONOTONIC);
        (void) syscall(SYS_pidfd_send_signal, p.pidfd, SIGRTMIN + 4, NULL, 0);
        siginfo_t si = {};
        r = wait_exit(p.pidfd, 60000, &si);
        CHECK(r >= 0, "powered off with SIGRTMIN+4 after %.0f ms (code %d status %d)", ms_since(off), si.si_code,
              si.si_status);
        printf("timing: set-up until exec %.2f ms, exec until READY=1 %.0f ms\n", setup_ms, boot_ms - setup_ms);

finish:
        if (r < 0 && p.pidfd >= 0)
                (void) wait_exit(p.pidfd, 0, NULL);
        safe_close(p.pidfd);
        safe_close(p.sync_fd);
        if (getenv("TEST_RUNTIME_KEEP")) {
                _cleanup_free_ char *log = NULL;
                (void) asprintf(&log, "%s/console.log", f.dir);
                printf("console log: %s\n", log);
        }
        fixture_teardown(&f, false);
        if (!getenv("TEST_RUNTIME_KEEP_DEBIAN"))
                (void) system("rm -rf --one-file-system " DEBIAN_COPY);
}

int main(int argc, char *argv[])
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc >= 2 && streq(argv[1], "unit"))
                test_unit();
        else if (geteuid() != 0) {
                printf("SKIP: needs root\n");
                return 77;
        } else if (argc >= 3 && streq(argv[1], "busybox"))
                test_busybox(argv[2]);
        else if (argc >= 2 && streq(argv[1], "boot"))
                test_boot();
        else {
                fprintf(stderr, "usage: %s unit | busybox PROBE | boot\n", argv[0]);
                return 2;
        }
        printf("%d failure(s)\n", failures);
        return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
