/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Escape battery: run as root inside a privileged guest. Each attempt prints one line:
 *
 *   BLOCKED name: detail    the attempt failed the way it must
 *   ESCAPED name: detail    the attempt got through although it must not (the test fails)
 *   KNOWN name: detail      expected success: a property of privileged containers (root keeps
 *                           CAP_SYS_ADMIN of the initial user namespace), documented in docs/SECURITY.md
 *   NOTE name: detail       information only
 *
 * Nothing harmful is done on success: kernel-wide files are only opened O_WRONLY (never written), the
 * module/kexec/bpf calls get invalid arguments, so that EPERM (seccomp or a missing capability) can be
 * told apart from the kernel's own EINVAL/EFAULT/EBADF.
 *
 * Usage: attack HOST_PID BLOCKDEV_MAJOR BLOCKDEV_MINOR HOST_CANARY_PATH */

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int n_escaped;

#define BLOCKED(name, ...) report("BLOCKED", name, __VA_ARGS__)
#define KNOWN(name, ...) report("KNOWN", name, __VA_ARGS__)
#define NOTE(name, ...) report("NOTE", name, __VA_ARGS__)
#define ESCAPED(name, ...) (n_escaped++, report("ESCAPED", name, __VA_ARGS__))

__attribute__((format(printf, 3, 4))) static void report(const char *verdict, const char *name, const char *fmt, ...)
{
        va_list ap;
        printf("%s %s: ", verdict, name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

/* A system call that must fail with EPERM (seccomp or capability); any other result means it reached
 * the kernel's argument checks, i.e. nothing stopped it. */
static void expect_eperm(const char *name, long rc, int err)
{
        if (rc >= 0)
                ESCAPED(name, "succeeded (rc %ld)", rc);
        else if (err == EPERM)
                BLOCKED(name, "EPERM");
        else
                ESCAPED(name, "not filtered: reached the kernel, which said %s", strerrorname_np(err));
}

#define TRY_EPERM(name, call)                              \
        do {                                               \
                errno = 0;                                 \
                long rc_ = (long) (call);                  \
                expect_eperm(name, rc_, errno);            \
        } while (0)

/* A file that must not be openable for writing. */
static void expect_no_write(const char *name, const char *path)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                close(fd);
                ESCAPED(name, "open(%s, O_WRONLY) succeeded", path);
        } else
                BLOCKED(name, "open(%s, O_WRONLY): %s", path, strerrorname_np(errno));
}

/* A file opened O_WRONLY only to learn whether it could be written; never written. */
/* True in a user namespace of our own: uid 0 here is not uid 0 of the host (uid_map is not the identity). */
static bool in_own_userns(void)
{
        char buf[128] = "";
        int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        unsigned long inside, outside, count;
        if (k <= 0 || sscanf(buf, "%lu %lu %lu", &inside, &outside, &count) != 3)
                return false;
        return !(inside == 0 && outside == 0 && count == 4294967295UL);
}

static int can_open_write(const char *path)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}

static void fresh_mounts(void)
{
        int r;

        mkdir("/tmp/atk", 0700);
        mkdir("/tmp/atk/proc", 0700);
        mkdir("/tmp/atk/sys", 0700);
        mkdir("/tmp/atk/cg2", 0700);

        /* A fresh procfs of our own pid namespace comes without the masks of /proc. */
        if (mount("proc", "/tmp/atk/proc", "proc", 0, NULL) < 0)
                BLOCKED("mount-proc", "mount proc: %s", strerrorname_np(errno));
        else {
                r = can_open_write("/tmp/atk/proc/sysrq-trigger");
                if (r == 0)
                        KNOWN("mount-proc", "a new procfs is writable: /proc/sysrq-trigger and /proc/sys/kernel/* "
                                            "(core_pattern: %s) open O_WRONLY (not written)",
                              can_open_write("/tmp/atk/proc/sys/kernel/core_pattern") == 0 ? "writable" : "not writable");
                else
                        BLOCKED("mount-proc", "new procfs, sysrq-trigger O_WRONLY: %s", strerrorname_np(-r));
                umount2("/tmp/atk/proc", MNT_DETACH);
        }

        /* The read-only /proc/sys can simply be remounted read-write by a CAP_SYS_ADMIN root. */
        if (mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL) < 0)
                BLOCKED("remount-proc-sys-rw", "%s", strerrorname_np(errno));
        else {
                r = can_open_write("/proc/sys/kernel/core_pattern");
                /* What matters is whether a host-wide sysctl became writable, not the remount itself. */
                if (r == 0)
                        KNOWN("remount-proc-sys-rw", "remount,bind,rw of /proc/sys succeeded; core_pattern O_WRONLY: ok");
                else
                        BLOCKED("remount-proc-sys-rw", "remount succeeded, but core_pattern O_WRONLY: %s",
                                strerrorname_np(-r));
                (void) mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
        }

        if (mount("sysfs", "/tmp/atk/sys", "sysfs", 0, NULL) < 0)
                BLOCKED("mount-sysfs", "mount sysfs: %s", strerrorname_np(errno));
        else {
                r = can_open_write("/tmp/atk/sys/kernel/mm/transparent_hugepage/enabled");
                if (r == 0)
                        KNOWN("mount-sysfs", "a new sysfs is writable (kernel/mm/transparent_hugepage/enabled "
                                             "opens O_WRONLY; not written)");
                else
                        BLOCKED("mount-sysfs", "new sysfs, O_WRONLY: %s", strerrorname_np(-r));
                umount2("/tmp/atk/sys", MNT_DETACH);
        }

        /* cgroup2: allowed, but the cgroup namespace roots it at the container's own cgroup. */
        if (mount("cgroup2", "/tmp/atk/cg2", "cgroup2", 0, NULL) < 0)
                BLOCKED("mount-cgroup2", "%s", strerrorname_np(errno));
        else {
                struct stat a, b;
                /* One cgroup2 superblock: the same inode means the same cgroup, i.e. the new mount is
                 * rooted where the daemon's /sys/fs/cgroup is, at the container's cgroup. */
                if (stat("/tmp/atk/cg2", &a) < 0 || stat("/sys/fs/cgroup", &b) < 0 || a.st_ino != b.st_ino ||
                    a.st_dev != b.st_dev)
                        ESCAPED("mount-cgroup2", "the new mount is rooted elsewhere than the container's cgroup");
                else
                        BLOCKED("mount-cgroup2", "mountable, but rooted at the container's own cgroup "
                                                 "(no host cgroups visible)");
                umount2("/tmp/atk/cg2", MNT_DETACH);
        }
}

static int write_str(const char *path, const char *s)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, s, strlen(s));
        int e = errno;
        close(fd);
        return n < 0 ? -e : 0;
}

static int read_str(const char *path, char *buf, size_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        int e = errno;
        close(fd);
        if (n < 0)
                return -e;
        buf[n] = 0;
        return 0;
}

static void cgroup_v1(void)
{
        char buf[256];
        int r;

        mkdir("/tmp/atk/v1new", 0700);
        mkdir("/tmp/atk/v1mem", 0700);
        mkdir("/tmp/atk/v1pids", 0700);

        /* CVE-2022-0492: a new hierarchy would come with a writable release_agent at its root. */
        if (mount("cgroup", "/tmp/atk/v1new", "cgroup", 0, "none,name=mmattack") < 0)
                BLOCKED("cgroup1-new-hierarchy", "mount -o none,name=mmattack: %s", strerrorname_np(errno));
        else {
                r = can_open_write("/tmp/atk/v1new/release_agent");
                ESCAPED("cgroup1-new-hierarchy", "created a new v1 hierarchy; release_agent O_WRONLY: %s",
                        r == 0 ? "ok" : strerrorname_np(-r));
                umount2("/tmp/atk/v1new", MNT_DETACH);
        }

        /* On an existing hierarchy the kernel ignores differing options: the host checks that its
         * release_agent files stayed empty. */
        if (mount("cgroup", "/tmp/atk/v1mem", "cgroup", 0, "memory,release_agent=/tmp/atk/x") < 0)
                BLOCKED("cgroup1-release-agent-option", "mount -o memory,release_agent=: %s", strerrorname_np(errno));
        else {
                NOTE("cgroup1-release-agent-option", "mount -o memory,release_agent= accepted (existing "
                     "hierarchy: the option is ignored; the host checks its release_agent files)");
                umount2("/tmp/atk/v1mem", MNT_DETACH);
        }

        /* An existing hierarchy can be mounted: it is rooted at our own cgroup, no release_agent there. */
        if (mount("cgroup", "/tmp/atk/v1mem", "cgroup", 0, "memory") < 0)
                BLOCKED("cgroup1-release-agent-file", "mount -o memory: %s", strerrorname_np(errno));
        else {
                r = write_str("/tmp/atk/v1mem/release_agent", "/tmp/atk/x");
                if (r == 0)
                        ESCAPED("cgroup1-release-agent-file", "wrote release_agent");
                else
                        BLOCKED("cgroup1-release-agent-file", "existing memory hierarchy mountable; release_agent "
                                                              "write: %s", strerrorname_np(-r));
                /* notify_on_release without a release_agent runs nothing. */
                r = write_str("/tmp/atk/v1mem/notify_on_release", "1");
                NOTE("cgroup1-notify-on-release", "own cgroup's notify_on_release write: %s (harmless without a "
                     "release_agent)", r == 0 ? "ok" : strerrorname_np(-r));
                umount2("/tmp/atk/v1mem", MNT_DETACH);
        }

        /* The limits live on the container's cgroup; the guest's cgroup namespace root must be a child of it
         * (payload/, as in systemd-nspawn), whose own pids.max is "max" and bounded by the parent's. A
         * number there means the configured TasksMax sits on the root, within the guest's reach. */
        if (mount("cgroup", "/tmp/atk/v1pids", "cgroup", 0, "pids") < 0)
                BLOCKED("raise-own-tasksmax", "mount -o pids: %s", strerrorname_np(errno));
        else {
                r = read_str("/tmp/atk/v1pids/pids.max", buf, sizeof(buf));
                if (r < 0)
                        BLOCKED("raise-own-tasksmax", "read pids.max: %s", strerrorname_np(-r));
                else {
                        /* Writing back the current value is harmless; success means "max" would work too. */
                        r = write_str("/tmp/atk/v1pids/pids.max", buf);
                        if (r == 0 && strncmp(buf, "max", 3) == 0)
                                BLOCKED("raise-own-tasksmax", "namespace root's pids.max is max (writable): the "
                                        "limit is on a parent cgroup out of reach");
                        else if (r == 0)
                                ESCAPED("raise-own-tasksmax", "pids.max of the container's own cgroup is writable "
                                        "from inside (wrote back %.*s)", (int) strcspn(buf, "\n"), buf);
                        else
                                BLOCKED("raise-own-tasksmax", "pids.max write: %s", strerrorname_np(-r));
                }
                umount2("/tmp/atk/v1pids", MNT_DETACH);
        }
}

static void devices(unsigned maj, unsigned min)
{
        char buf[512];
        dev_t dev = makedev(maj, min);

        /* The device is a loop device the test set up on the host over a scratch file starting with
         * "MMDEVCANARY": reading it back means the guest can read any host block device (the host's
         * own disk is not used: this VM refuses even the host's root to open it). */

        unlink("/dev/atk-blk");
        if (mknod("/dev/atk-blk", S_IFBLK | 0600, dev) < 0) {
                BLOCKED("mknod-host-blockdev", "mknod b %u:%u: %s", maj, min, strerrorname_np(errno));
                return;
        }
        int fd = open("/dev/atk-blk", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                BLOCKED("read-host-blockdev", "mknod ok, open b %u:%u: %s", maj, min, strerrorname_np(errno));
        else {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n > 0 && memcmp(buf, "MMDEVCANARY", 11) == 0)
                        ESCAPED("read-host-blockdev", "read the host block device %u:%u (canary seen)", maj, min);
                else if (n > 0)
                        ESCAPED("read-host-blockdev", "read %zd bytes of host block device %u:%u", n, maj, min);
                else
                        BLOCKED("read-host-blockdev", "open ok, read: %s", strerrorname_np(errno));
                close(fd);
        }

        /* With the v1 devices controller in force: can the guest lift it from its own cgroup? */
        mkdir("/tmp/atk/v1dev", 0700);
        if (mount("cgroup", "/tmp/atk/v1dev", "cgroup", 0, "devices") < 0)
                NOTE("devices-cgroup-lift", "mount -o devices: %s", strerrorname_np(errno));
        else {
                int r = write_str("/tmp/atk/v1dev/devices.allow", "a *:* rwm");
                if (r < 0)
                        BLOCKED("devices-cgroup-lift", "devices.allow write in own cgroup: %s", strerrorname_np(-r));
                else {
                        fd = open("/dev/atk-blk", O_RDONLY | O_CLOEXEC);
                        if (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
                                KNOWN("devices-cgroup-lift", "CAP_SYS_ADMIN root re-allowed all devices in its "
                                      "own v1 devices cgroup and read the host block device");
                        else
                                BLOCKED("devices-cgroup-lift", "devices.allow accepted but open/read: %s",
                                        strerrorname_np(errno));
                        if (fd >= 0)
                                close(fd);
                }
                umount2("/tmp/atk/v1dev", MNT_DETACH);
        }
        unlink("/dev/atk-blk");

        /* /dev/mem needs CAP_SYS_RAWIO, which is not in the bounding set. */
        unlink("/dev/atk-mem");
        if (mknod("/dev/atk-mem", S_IFCHR | 0600, makedev(1, 1)) == 0) {
                fd = open("/dev/atk-mem", O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                        close(fd);
                        ESCAPED("open-dev-mem", "opened /dev/mem");
                } else
                        BLOCKED("open-dev-mem", "%s%s", strerrorname_np(errno),
                                errno == ENXIO ? " (no /dev/mem in this kernel)" : "");
                unlink("/dev/atk-mem");
        } else
                BLOCKED("open-dev-mem", "mknod: %s", strerrorname_np(errno));
}

static void kernel_calls(void)
{
        struct timespec ts;
        struct timeval tv;
        struct timex tx = { .modes = 0 };

        TRY_EPERM("init_module", syscall(SYS_init_module, NULL, 0, ""));
        TRY_EPERM("finit_module", syscall(SYS_finit_module, -1, "", 0));
        TRY_EPERM("delete_module", syscall(SYS_delete_module, "mm_no_such_module", 0));
        TRY_EPERM("kexec_load", syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xdeadbeefUL));
        TRY_EPERM("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, 0xdeadbeefUL));
        TRY_EPERM("bpf", syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, NULL, 0));
        TRY_EPERM("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
        TRY_EPERM("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, O_RDONLY));
        TRY_EPERM("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -2 /* process */, 0));
        TRY_EPERM("add_key", syscall(SYS_add_key, "user", "mm-attack", "x", 1, -2));
        TRY_EPERM("request_key", syscall(SYS_request_key, "user", "mm-attack", NULL, 0));
        TRY_EPERM("swapon", syscall(SYS_swapon, "/mm-no-such-file", 0));
        TRY_EPERM("swapoff", syscall(SYS_swapoff, "/mm-no-such-file"));
        TRY_EPERM("syslog", syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0));
        TRY_EPERM("acct", syscall(SYS_acct, "/mm-no-such-file"));
        TRY_EPERM("iopl", syscall(SYS_iopl, 3));
        TRY_EPERM("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
        TRY_EPERM("lookup_dcookie", syscall(SYS_lookup_dcookie, 0ULL, NULL, 0));
        /* Clocks: the current time, so that a success would change nothing noticeable. */
        clock_gettime(CLOCK_REALTIME, &ts);
        TRY_EPERM("clock_settime", syscall(SYS_clock_settime, CLOCK_REALTIME, &ts));
        gettimeofday(&tv, NULL);
        TRY_EPERM("settimeofday", syscall(SYS_settimeofday, &tv, NULL));
        TRY_EPERM("adjtimex", syscall(SYS_adjtimex, &tx));
        TRY_EPERM("clock_adjtime", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx));
}

static void host_process(pid_t host_pid)
{
        char path[64];
        struct stat st;

        snprintf(path, sizeof(path), "/proc/%d", (int) host_pid);
        if (stat(path, &st) == 0) {
                /* The number may exist in our namespace by chance: then it must not be the host's sleeper. */
                char comm[64] = "";
                snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) host_pid);
                read_str(path, comm, sizeof(comm));
                if (strstr(comm, "mm-host-sleeper"))
                        ESCAPED("host-pid-visible", "the host's sleeper %d is in the guest's /proc", (int) host_pid);
                else
                        BLOCKED("host-pid-visible", "pid %d exists in the guest but is a guest process", (int) host_pid);
        } else
                BLOCKED("host-pid-visible", "/proc/%d: %s", (int) host_pid, strerrorname_np(errno));

        if (ptrace(PTRACE_ATTACH, host_pid, NULL, NULL) == 0) {
                ESCAPED("ptrace-host", "attached to host pid %d", (int) host_pid);
                ptrace(PTRACE_DETACH, host_pid, NULL, NULL);
        } else
                BLOCKED("ptrace-host", "PTRACE_ATTACH %d: %s", (int) host_pid, strerrorname_np(errno));

        if (kill(host_pid, 0) == 0)
                NOTE("kill-host", "kill(%d, 0) succeeded: a guest process of that number", (int) host_pid);
        else
                BLOCKED("kill-host", "kill(%d, 0): %s", (int) host_pid, strerrorname_np(errno));

        int pfd = (int) syscall(SYS_pidfd_open, host_pid, 0);
        if (pfd >= 0) {
                close(pfd);
                NOTE("pidfd-host", "pidfd_open(%d) succeeded: a guest process of that number", (int) host_pid);
        } else
                BLOCKED("pidfd-host", "pidfd_open(%d): %s", (int) host_pid, strerrorname_np(errno));

        /* setns: the guest's /proc/1 is its own init; a host pid's ns files are unreachable. */
        snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int) host_pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                close(fd);
                NOTE("setns-host-pid", "%s opened: a guest process of that number", path);
        } else
                BLOCKED("setns-host-pid", "open %s: %s", path, strerrorname_np(errno));

        fd = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                NOTE("setns-pid1", "open /proc/1/ns/mnt: %s", strerrorname_np(errno));
        else {
                struct stat a, b;
                fstat(fd, &a);
                stat("/proc/self/ns/mnt", &b);
                if (setns(fd, CLONE_NEWNS) == 0 && a.st_ino == b.st_ino)
                        BLOCKED("setns-pid1", "/proc/1 is the guest's own init: setns lands in our own mount ns");
                else if (a.st_ino != b.st_ino)
                        ESCAPED("setns-pid1", "/proc/1/ns/mnt is a different mount namespace");
                else
                        BLOCKED("setns-pid1", "setns: %s", strerrorname_np(errno));
                close(fd);
        }
}

static void capabilities(void)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0) {
                NOTE("capset-raise", "capget: %s", strerrorname_np(errno));
                return;
        }
        static const int outside[] = { CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_TIME, CAP_MAC_ADMIN, CAP_SYSLOG,
                                       CAP_BPF, CAP_PERFMON };
        for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
                int c = outside[i];
                char name[32];
                snprintf(name, sizeof(name), "bounding-cap-%d", c);
                if (prctl(PR_CAPBSET_READ, c) == 1)
                        ESCAPED(name, "capability %d is in the bounding set", c);
                else
                        BLOCKED(name, "capability %d not in the bounding set", c);
        }
        struct __user_cap_data_struct e[2];
        memcpy(e, d, sizeof(e));
        e[CAP_SYS_MODULE / 32].permitted |= 1U << (CAP_SYS_MODULE % 32);
        e[CAP_SYS_MODULE / 32].effective |= 1U << (CAP_SYS_MODULE % 32);
        if (syscall(SYS_capset, &h, e) == 0)
                ESCAPED("capset-raise", "raised CAP_SYS_MODULE");
        else
                BLOCKED("capset-raise", "capset(+CAP_SYS_MODULE): %s", strerrorname_np(errno));
        memcpy(e, d, sizeof(e));
        e[CAP_SYS_MODULE / 32].inheritable |= 1U << (CAP_SYS_MODULE % 32);
        if (syscall(SYS_capset, &h, e) == 0)
                ESCAPED("capset-inheritable", "added CAP_SYS_MODULE to the inheritable set");
        else
                BLOCKED("capset-inheritable", "capset(inheritable +CAP_SYS_MODULE): %s", strerrorname_np(errno));
        if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) == 1) {
                if (in_own_userns())
                        BLOCKED("cap-sys-admin", "CAP_SYS_ADMIN only over the guest's own user namespace");
                else
                        KNOWN("cap-sys-admin", "CAP_SYS_ADMIN (initial user namespace) is in the bounding set");
        }
}

static void root_escape(const char *canary)
{
        struct stat st;

        /* Classic chroot escape: chroot into a subdir while keeping the cwd outside, then walk up. */
        pid_t pid = fork();
        if (pid == 0) {
                mkdir("/tmp/atk/jail", 0700);
                if (chroot("/tmp/atk/jail") < 0)
                        _exit(2);
                for (int i = 0; i < 64; i++)
                        if (chdir("..") < 0)
                                _exit(3);
                if (chroot(".") < 0)
                        _exit(4);
                _exit(stat(canary, &st) == 0 ? 10 : 0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 10)
                ESCAPED("chroot-escape", "the host's %s is reachable", canary);
        else
                BLOCKED("chroot-escape", "walked up to the guest's root; host canary not visible (status %d)",
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);

        if (stat(canary, &st) == 0)
                ESCAPED("host-canary", "%s visible in the guest", canary);
        else
                BLOCKED("host-canary", "%s: %s", canary, strerrorname_np(errno));

        /* The old root was detached by pivot_root: no host mount point (field 5 of mountinfo) is left. */
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[1024], mnt[512];
        int host_like = 0;
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1 &&
                    (strncmp(mnt, "/var/tmp/", 9) == 0 || strncmp(mnt, "/work", 5) == 0 ||
                     strncmp(mnt, "/sys/fs/cgroup/", 15) == 0))
                        host_like++;
        if (f)
                fclose(f);
        if (host_like)
                ESCAPED("host-mounts", "%d host mount points in the guest's mountinfo", host_like);
        else
                BLOCKED("host-mounts", "no host mount points in the guest's mountinfo");

        /* The provided read-only and masked entries. */
        expect_no_write("ro-sysrq-trigger", "/proc/sysrq-trigger");
        expect_no_write("ro-proc-sys-hostname", "/proc/sys/kernel/hostname");
        expect_no_write("ro-proc-sys-core-pattern", "/proc/sys/kernel/core_pattern");
        expect_no_write("ro-sys-mm", "/sys/kernel/mm/transparent_hugepage/enabled");
        expect_no_write("ro-sys-power", "/sys/power/state");
        char buf[16];
        int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
        if (n > 0)
                ESCAPED("masked-kcore", "/proc/kcore readable");
        else
                BLOCKED("masked-kcore", "/proc/kcore: %s", fd < 0 ? strerrorname_np(errno) : "empty (masked)");
        if (fd >= 0)
                close(fd);
}

int main(int argc, char **argv)
{
        if (argc != 5) {
                fprintf(stderr, "usage: %s HOST_PID BLOCKDEV_MAJOR BLOCKDEV_MINOR HOST_CANARY\n", argv[0]);
                return 2;
        }
        pid_t host_pid = (pid_t) atoi(argv[1]);

        capabilities();
        kernel_calls();
        host_process(host_pid);
        root_escape(argv[4]);
        fresh_mounts();
        cgroup_v1();
        devices((unsigned) atoi(argv[2]), (unsigned) atoi(argv[3]));
        rmdir("/tmp/atk/jail");
        printf("DONE escaped=%d\n", n_escaped);
        return 0;
}
