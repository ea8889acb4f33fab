/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Direct-mode cgroups on the real host: limits land in the controller files and are enforced, usage is
 * readable, kill empties, destroy leaves nothing, the state file round-trips. Processes run in payload/
 * below the limits, and raising payload's own limits (what a guest root can do) gains nothing. Needs
 * root. */

#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "cgroup-internal.h"
#include "log.h"
#include "names.h"

#define MiB (UINT64_C(1024) * 1024)

static CGroup *live[16];
static char test_name[64];

/* Whatever fails, leave no process or cgroup behind. */
static void cleanup_all(void)
{
        for (size_t i = 0; i < ELEMENTSOF(live); i++) {
                if (!live[i])
                        continue;
                (void)cgroup_kill(live[i], SIGKILL);
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
                for (int t = 0; t < 200 && cgroup_is_empty(live[i]) == 0; t++) {
                        while (waitpid(-1, NULL, WNOHANG) > 0)
                                ;
                        usleep(10000);
                }
                (void)cgroup_destroy(live[i]);
                live[i] = cgroup_free(live[i]);
        }
        cgroup_direct_remove_slice();
}

#define ASSERT(expr)                                                                                        \
        do {                                                                                                \
                if (!(expr)) {                                                                              \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr);        \
                        cleanup_all();                                                                      \
                        exit(1);                                                                            \
                }                                                                                           \
        } while (0)

static void track(CGroup *cg)
{
        for (size_t i = 0; i < ELEMENTSOF(live); i++)
                if (!live[i]) {
                        live[i] = cg;
                        return;
                }
        ASSERT(!"too many cgroups");
}

static void untrack(CGroup *cg)
{
        for (size_t i = 0; i < ELEMENTSOF(live); i++)
                if (live[i] == cg)
                        live[i] = NULL;
}

static CGroup *create(const char *suffix, uint64_t mem, uint64_t cpu, uint64_t tasks)
{
        snprintf(test_name, sizeof(test_name), "cgtest-%d-%s", (int)getpid(), suffix);
        CGroupLimits l = {.memory_max = mem, .cpu_quota_per_sec_usec = cpu, .tasks_max = tasks};
        CGroup *cg = NULL;
        int r = cgroup_direct_create(test_name, &l, &cg);
        ASSERT(r >= 0);
        track(cg);
        return cg;
}

/* Starts fn in the cgroup: clone3(CLONE_INTO_CGROUP) when there is a cgroup2 dir, then cgroup_attach for the
 * rest; the child waits until it is fully attached. */
static pid_t spawn(CGroup *cg, int (*fn)(void *), void *arg)
{
        int p[2];
        ASSERT(pipe2(p, O_CLOEXEC) >= 0);

        struct clone_args args = {.exit_signal = SIGCHLD};
        if (cgroup_clone_fd(cg) >= 0) {
                args.flags = CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t)cgroup_clone_fd(cg);
        }
        pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
        ASSERT(pid >= 0);
        if (pid == 0) {
                char c;
                close(p[1]);
                if (read(p[0], &c, 1) != 1)
                        _exit(127);
                _exit(fn(arg));
        }
        close(p[0]);
        ASSERT(cgroup_attach(cg, pid) >= 0);
        ASSERT(write(p[1], "x", 1) == 1);
        close(p[1]);
        return pid;
}

static siginfo_t wait_child(pid_t pid)
{
        siginfo_t si = {};
        ASSERT(waitid(P_PID, (id_t)pid, &si, WEXITED) >= 0);
        return si;
}

static int sleeper(void *arg)
{
        pause();
        return 0;
}

/* Charges 4 MiB to the cgroup, says so on the pipe in arg, then sleeps. */
static int toucher(void *arg)
{
        int fd = *(int *)arg;
        char *p = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return 2;
        memset(p, 1, 4 * MiB);
        if (write(fd, "r", 1) != 1)
                return 3;
        pause();
        return 0;
}

static bool file_contains_pid(const char *dir, pid_t pid)
{
        _cleanup_free_ char *p = NULL, *s = NULL;
        ASSERT(asprintf(&p, "%s/cgroup.procs", dir) >= 0);
        ASSERT(read_full_file(p, &s, NULL) >= 0);
        char needle[32];
        snprintf(needle, sizeof(needle), "%d", (int)pid);
        for (char *save = NULL, *w = strtok_r(s, "\n", &save); w; w = strtok_r(NULL, "\n", &save))
                if (streq(w, needle))
                        return true;
        return false;
}

static uint64_t read_u64(CGroupHierarchy *h, const char *file)
{
        uint64_t v = 0;
        ASSERT(cgroup_read_u64(h, file, &v) >= 0);
        return v;
}

static void wait_empty(CGroup *cg)
{
        for (int i = 0; i < 500; i++) {
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
                int r = cgroup_is_empty(cg);
                ASSERT(r >= 0);
                if (r > 0)
                        return;
                usleep(10000);
        }
        ASSERT(!"cgroup did not become empty");
}

/* Looks for machine-NAME.scope anywhere near the top of every mounted cgroup hierarchy, independently of
 * what the CGroup object thinks it made. */
static bool find_dir(const char *dir, const char *leaf, int depth)
{
        if (depth > 4)
                return false;
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
                return false;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *sub = NULL;
                ASSERT(asprintf(&sub, "%s/%s", dir, de->d_name) >= 0);
                if (streq(de->d_name, leaf)) {
                        fprintf(stderr, "left behind: %s\n", sub);
                        return true;
                }
                if (find_dir(sub, leaf, depth + 1))
                        return true;
        }
        return false;
}

static void assert_gone(const char *name)
{
        _cleanup_free_ char *leaf = NULL;
        ASSERT(asprintf(&leaf, "machine-%s.scope", name) >= 0);
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mounts", "re");
        ASSERT(f);
        char dev[256], mnt[512], type[64];
        while (fscanf(f, "%255s %511s %63s %*[^\n]", dev, mnt, type) == 3)
                if (streq(type, "cgroup") || streq(type, "cgroup2"))
                        ASSERT(!find_dir(mnt, leaf, 0));
}

static void destroy(CGroup *cg)
{
        _cleanup_free_ char *name = strdup(test_name);
        ASSERT(cgroup_destroy(cg) >= 0);
        untrack(cg);
        cgroup_free(cg);
        assert_gone(name);
}

static void test_limits_and_usage(void)
{
        CGroup *cg = create("limits", 64 * MiB, 200000, 20);

        CGroupHierarchy *mem = cgroup_find_controller(cg, "memory");
        CGroupHierarchy *pids = cgroup_find_controller(cg, "pids");
        CGroupHierarchy *cpu = cgroup_find_controller(cg, "cpu");
        ASSERT(mem && pids && cpu);
        ASSERT(read_u64(mem, mem->controllers ? "memory.limit_in_bytes" : "memory.max") == 64 * MiB);
        ASSERT(read_u64(pids, "pids.max") == 20);
        if (cpu->controllers) {
                ASSERT(read_u64(cpu, "cpu.cfs_quota_us") == 20000);
                ASSERT(read_u64(cpu, "cpu.cfs_period_us") == 100000);
        }

        CGroupLimits l;
        ASSERT(cgroup_get_limits(cg, &l) >= 0);
        ASSERT(l.memory_max == 64 * MiB && l.tasks_max == 20 && l.cpu_quota_per_sec_usec == 200000);

        int ready[2];
        char c;
        ASSERT(pipe2(ready, O_CLOEXEC) >= 0);
        pid_t pid = spawn(cg, toucher, &ready[1]);
        ASSERT(read(ready[0], &c, 1) == 1);
        close(ready[0]);
        close(ready[1]);
        /* In payload in every hierarchy (cgroup2 by the clone fd, v1 by cgroup_attach), never in the dir
         * that carries the limits. */
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                CGroupHierarchy *hi = &cg->hierarchies[i];
                _cleanup_free_ char *want = NULL;
                ASSERT(asprintf(&want, "%s/payload", hi->dir) >= 0);
                ASSERT(streq_ptr(hi->payload, want));
                ASSERT(file_contains_pid(hi->payload, pid));
                ASSERT(!file_contains_pid(hi->dir, pid));
        }
        if (cgroup_find_unified(cg)) {
                _cleanup_free_ char *want = NULL;
                ASSERT(asprintf(&want, "%s/payload", cgroup_unified_path(cg)) >= 0);
                ASSERT(streq_ptr(cgroup_payload_path(cg), want));
        }
        _cleanup_strv_free_ char **procs_paths = NULL;
        ASSERT(cgroup_procs_paths(cg, &procs_paths) >= 0);
        STRV_FOREACH(pp, procs_paths)
                ASSERT(strstr(*pp, "/payload/cgroup.procs"));
        ASSERT(cgroup_is_empty(cg) == 0);

        /* Attaching again must not move the process out of a sub-cgroup its guest put it in. */
        CGroupHierarchy *h = cgroup_find_unified(cg) ?: &cg->hierarchies[0];
        _cleanup_free_ char *sub = NULL, *subsub = NULL, *procs = NULL, *pidstr = NULL;
        ASSERT(asprintf(&sub, "%s/init.scope", h->payload) >= 0 && asprintf(&subsub, "%s/deeper", sub) >= 0);
        ASSERT(asprintf(&procs, "%s/cgroup.procs", sub) >= 0 && asprintf(&pidstr, "%d", (int)pid) >= 0);
        ASSERT(mkdir(sub, 0755) >= 0 && mkdir(subsub, 0755) >= 0);
        ASSERT(write_string_file(procs, pidstr) >= 0);
        ASSERT(cgroup_attach(cg, pid) >= 0);
        ASSERT(file_contains_pid(sub, pid));

        CGroupUsage u;
        ASSERT(cgroup_get_usage(cg, &u) >= 0);
        fprintf(stderr, "usage: memory %" PRIu64 " cpu %" PRIu64 " tasks %" PRIu64 "\n", u.memory_current,
                u.cpu_usage_nsec, u.tasks_current);
        ASSERT(u.tasks_current == 1);
        ASSERT(u.memory_current >= 4 * MiB && u.memory_current < 64 * MiB);
        ASSERT(u.cpu_usage_nsec > 0 && u.cpu_usage_nsec < 10ULL * 1000000000);

        CGroupLimits raised = {
            .memory_max = 128 * MiB, .cpu_quota_per_sec_usec = UINT64_MAX, .tasks_max = UINT64_MAX};
        ASSERT(cgroup_set_limits(cg, &raised) >= 0);
        ASSERT(cgroup_get_limits(cg, &l) >= 0);
        ASSERT(l.memory_max == 128 * MiB && l.tasks_max == UINT64_MAX &&
               l.cpu_quota_per_sec_usec == UINT64_MAX);
        CGroupLimits lowered = {.memory_max = 32 * MiB, .cpu_quota_per_sec_usec = 1500000, .tasks_max = 5};
        ASSERT(cgroup_set_limits(cg, &lowered) >= 0);
        ASSERT(cgroup_get_limits(cg, &l) >= 0);
        ASSERT(l.memory_max == 32 * MiB && l.tasks_max == 5 && l.cpu_quota_per_sec_usec == 1500000);

        ASSERT(cgroup_destroy(cg) == -EBUSY);
        ASSERT(cgroup_kill(cg, SIGKILL) >= 0);
        siginfo_t si = wait_child(pid);
        ASSERT(si.si_code == CLD_KILLED && si.si_status == SIGKILL);
        wait_empty(cg);
        destroy(cg);
}

static int hog(void *arg)
{
        size_t size = 256 * MiB;
        char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return 2;
        for (size_t i = 0; i < size; i += 4096)
                p[i] = 1;
        return 0; /* survived: the limit did not hold */
}

/* v1 counts an OOM kill only in the victim's own memcg (payload), cgroup2 also in every ancestor. */
static uint64_t count_oom_kills(CGroupHierarchy *h)
{
        _cleanup_free_ char *p = NULL, *text = NULL;
        uint64_t n = 0;
        ASSERT(asprintf(&p, "%s/%s", h->controllers ? h->payload : h->dir,
                        h->controllers ? "memory.oom_control" : "memory.events") >= 0);
        ASSERT(read_full_file(p, &text, NULL) >= 0);
        ASSERT(cgroup_parse_keyed(text, "oom_kill", &n) >= 0);
        return n;
}

static void test_oom(void)
{
        CGroup *cg = create("oom", 64 * MiB, UINT64_MAX, UINT64_MAX);
        pid_t pid = spawn(cg, hog, NULL);
        siginfo_t si = wait_child(pid);
        ASSERT(si.si_code == CLD_KILLED && si.si_status == SIGKILL);

        CGroupHierarchy *mem = cgroup_find_controller(cg, "memory");
        uint64_t oom_kills = count_oom_kills(mem);
        ASSERT(oom_kills >= 1);
        /* memory.failcnt stays 0 on recent kernels; the peak shows the limit was reached, not passed. */
        uint64_t peak = read_u64(mem, mem->controllers ? "memory.max_usage_in_bytes" : "memory.peak");
        ASSERT(peak > 48 * MiB && peak <= 64 * MiB);
        fprintf(stderr, "oom: child killed by SIGKILL, oom_kill=%" PRIu64 "\n", oom_kills);
        wait_empty(cg);
        destroy(cg);
}

static int fork_loop(void *arg)
{
        for (int n = 0; n < 200; n++) {
                pid_t pid = fork();
                if (pid < 0)
                        return errno == EAGAIN ? n : 255;
                if (pid == 0) {
                        pause();
                        _exit(0);
                }
        }
        return 254;
}

static void test_tasks_max(void)
{
        CGroup *cg = create("tasks", UINT64_MAX, UINT64_MAX, 20);
        pid_t pid = spawn(cg, fork_loop, NULL);
        siginfo_t si = wait_child(pid);
        ASSERT(si.si_code == CLD_EXITED);
        fprintf(stderr, "tasks: %d forks succeeded before EAGAIN\n", si.si_status);
        ASSERT(si.si_status == 19); /* the loop itself is the 20th task */

        CGroupUsage u;
        ASSERT(cgroup_get_usage(cg, &u) >= 0);
        ASSERT(u.tasks_current == 19);
        ASSERT(cgroup_kill(cg, SIGKILL) >= 0);
        wait_empty(cg);
        destroy(cg);
}

/* What a privileged guest can do after mounting a hierarchy at its cgroup namespace root: raise payload's
 * own pids.max. The container's TasksMax still holds for the whole subtree. */
static void test_payload_tasks_max(void)
{
        CGroup *cg = create("ptasks", UINT64_MAX, UINT64_MAX, 20);
        CGroupHierarchy *h = cgroup_find_controller(cg, "pids");
        ASSERT(h && h->payload);
        _cleanup_free_ char *p = NULL;
        ASSERT(asprintf(&p, "%s/pids.max", h->payload) >= 0);
        ASSERT(write_string_file(p, "1000") >= 0);

        pid_t pid = spawn(cg, fork_loop, NULL);
        siginfo_t si = wait_child(pid);
        ASSERT(si.si_code == CLD_EXITED);
        fprintf(stderr, "payload tasks: pids.max 1000 in payload, %d forks succeeded\n", si.si_status);
        ASSERT(si.si_status == 19);
        ASSERT(read_u64(h, "pids.max") == 20);
        ASSERT(cgroup_kill(cg, SIGKILL) >= 0);
        wait_empty(cg);
        destroy(cg);
}

/* The same for memory: payload's limit raised to 1 GiB, the container's 64 MiB still OOM-kills. */
static void test_payload_oom(void)
{
        CGroup *cg = create("poom", 64 * MiB, UINT64_MAX, UINT64_MAX);
        CGroupHierarchy *h = cgroup_find_controller(cg, "memory");
        ASSERT(h && h->payload);
        /* v1 wants memsw >= limit: from unlimited, the limit goes first. */
        static const char *const v1[] = {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"};
        static const char *const v2[] = {"memory.max", "memory.swap.max"};
        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *p = NULL;
                ASSERT(asprintf(&p, "%s/%s", h->payload, h->controllers ? v1[i] : v2[i]) >= 0);
                if (access(p, F_OK) < 0)
                        continue; /* no swap accounting */
                ASSERT(write_string_file(p, "1073741824") >= 0);
        }

        pid_t pid = spawn(cg, hog, NULL);
        siginfo_t si = wait_child(pid);
        ASSERT(si.si_code == CLD_KILLED && si.si_status == SIGKILL);
        uint64_t peak = read_u64(h, h->controllers ? "memory.max_usage_in_bytes" : "memory.peak");
        fprintf(stderr, "payload oom: payload limit 1 GiB, killed at a peak of %" PRIu64 " MiB\n", peak / MiB);
        ASSERT(peak <= 64 * MiB);
        ASSERT(count_oom_kills(h) >= 1);
        wait_empty(cg);
        destroy(cg);
}

static int busy(void *arg)
{
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do
                clock_gettime(CLOCK_MONOTONIC, &now);
        while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 1000000000L);
        return 0;
}

static void test_cpu_quota(void)
{
        CGroup *cg = create("cpu", UINT64_MAX, 200000, UINT64_MAX);
        pid_t pid = spawn(cg, busy, NULL);
        siginfo_t si = wait_child(pid);
        ASSERT(si.si_code == CLD_EXITED && si.si_status == 0);

        CGroupUsage u;
        ASSERT(cgroup_get_usage(cg, &u) >= 0);
        fprintf(stderr, "cpu: %" PRIu64 " ms used in 1 s at CPUQuota=20%%\n", u.cpu_usage_nsec / 1000000);
        ASSERT(u.cpu_usage_nsec >= 100 * 1000000ULL && u.cpu_usage_nsec <= 300 * 1000000ULL);
        CGroupHierarchy *acct = cgroup_find_controller(cg, "cpuacct");
        if (acct && acct->controllers)
                ASSERT(read_u64(acct, "cpuacct.usage") <= 300 * 1000000ULL);
        destroy(cg);
}

/* The set-up's CPU weight: the highest while the guest's init is being set up, the default after. */
static void test_setup_boost(void)
{
        CGroup *cg = create("boost", UINT64_MAX, UINT64_MAX, UINT64_MAX);
        CGroupHierarchy *cpu = cgroup_find_controller(cg, "cpu");
        if (cpu) {
                const char *file = cpu->controllers ? "cpu.shares" : "cpu.weight";
                uint64_t high = cpu->controllers ? 262144 : 10000, normal = cpu->controllers ? 1024 : 100;
                ASSERT(read_u64(cpu, file) == normal);
                ASSERT(cgroup_direct_boost_setup(cg, true) >= 0);
                ASSERT(read_u64(cpu, file) == high);
                ASSERT(cgroup_direct_boost_setup(cg, false) >= 0);
                ASSERT(read_u64(cpu, file) == normal);
        } else
                ASSERT(cgroup_direct_boost_setup(cg, true) == 0);
        destroy(cg);
}

static void test_kill_signal(void)
{
        CGroup *cg = create("sig", UINT64_MAX, UINT64_MAX, UINT64_MAX);
        pid_t pids[3];
        for (size_t i = 0; i < ELEMENTSOF(pids); i++)
                pids[i] = spawn(cg, sleeper, NULL);
        ASSERT(cgroup_kill(cg, SIGTERM) >= 0);
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                siginfo_t si = wait_child(pids[i]);
                ASSERT(si.si_code == CLD_KILLED && si.si_status == SIGTERM);
        }
        wait_empty(cg);
        destroy(cg);
}

static void test_exists(void)
{
        CGroup *cg = create("exists", UINT64_MAX, UINT64_MAX, UINT64_MAX);
        pid_t pid = spawn(cg, sleeper, NULL);

        CGroup *again = NULL;
        ASSERT(cgroup_direct_create(test_name, NULL, &again) == -EEXIST);

        ASSERT(cgroup_kill(cg, SIGKILL) >= 0);
        wait_child(pid);
        wait_empty(cg);
        /* An empty leftover (a daemon that died before cleaning up) is taken over. */
        ASSERT(cgroup_direct_create(test_name, NULL, &again) >= 0);
        cgroup_free(again);
        destroy(cg);
}

static void test_serialize(void)
{
        CGroup *cg = create("state", 64 * MiB, UINT64_MAX, 20);
        pid_t pid = spawn(cg, sleeper, NULL);

        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        ASSERT(f);
        ASSERT(cgroup_serialize(cg, f) >= 0);
        ASSERT(fclose(f) == 0);

        CGroup *copy = NULL;
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '=');
                ASSERT(eq);
                *eq = 0;
                ASSERT(cgroup_deserialize_item(&copy, test_name, line, eq + 1) == 1);
        }
        ASSERT(cgroup_deserialize_item(&copy, test_name, "LEADER", "1") == 0);
        ASSERT(copy);
        track(copy);
        ASSERT(cgroup_deserialize_done(copy) >= 0);

        ASSERT(streq_ptr(cgroup_path(copy), cgroup_path(cg)));
        ASSERT(streq_ptr(cgroup_unified_path(copy), cgroup_unified_path(cg)));
        ASSERT(streq_ptr(cgroup_payload_path(copy), cgroup_payload_path(cg)));
        for (size_t i = 0; i < cg->n_hierarchies; i++)
                ASSERT(streq_ptr(copy->hierarchies[i].payload, cg->hierarchies[i].payload));
        ASSERT((cgroup_clone_fd(copy) >= 0) == (cgroup_clone_fd(cg) >= 0));
        ASSERT(copy->n_hierarchies == cg->n_hierarchies);
        CGroupLimits l;
        ASSERT(cgroup_get_limits(copy, &l) >= 0);
        ASSERT(l.memory_max == 64 * MiB && l.tasks_max == 20);
        ASSERT(cgroup_is_empty(copy) == 0);

        /* The original goes away as a killed daemon's would; the copy does all the rest. */
        untrack(cg);
        cgroup_free(cg);
        ASSERT(cgroup_kill(copy, SIGKILL) >= 0);
        wait_child(pid);
        wait_empty(copy);
        destroy(copy);

        CGroup *gone = NULL;
        ASSERT(cgroup_deserialize_item(&gone, "x", "CGROUP_HIERARCHY", "cgroup2") == 1);
        ASSERT(cgroup_deserialize_item(&gone, "x", "CGROUP_DIR", "/sys/fs/cgroup/nonexistent.scope") == 1);
        ASSERT(cgroup_deserialize_item(&gone, "x", "CGROUP_PATH", "/nonexistent.scope") == 1);
        ASSERT(cgroup_deserialize_done(gone) == -ENOENT);
        cgroup_free(gone);

        /* A state file from before payload/ existed: processes go to the dir itself. */
        CGroup *old = create("oldstate", UINT64_MAX, UINT64_MAX, UINT64_MAX);
        CGroup *oldcopy = NULL;
        for (size_t i = 0; i < old->n_hierarchies; i++) {
                CGroupHierarchy *h = &old->hierarchies[i];
                const char *hier = h->controllers ?: "cgroup2";
                ASSERT(cgroup_deserialize_item(&oldcopy, test_name, "CGROUP_HIERARCHY", hier) == 1);
                ASSERT(cgroup_deserialize_item(&oldcopy, test_name, "CGROUP_DIR", h->dir) == 1);
                ASSERT(cgroup_deserialize_item(&oldcopy, test_name, "CGROUP_PATH", h->path) == 1);
        }
        track(oldcopy);
        ASSERT(cgroup_deserialize_done(oldcopy) >= 0);
        ASSERT(streq_ptr(cgroup_payload_path(oldcopy), cgroup_unified_path(oldcopy)));
        untrack(oldcopy);
        cgroup_free(oldcopy);
        destroy(old);
}

/* The container's cgroup is <our cgroup>/machine.slice/machine-NAME.scope in every hierarchy, so the guests
 * together weigh as much as the daemon in the cpu controller; the slice goes once the last one has. */
static void test_slice(void)
{
        CGroup *cg = create("slice", UINT64_MAX, UINT64_MAX, UINT64_MAX);
        _cleanup_free_ char *self = NULL, *unit = NULL, *leaf = NULL;
        ASSERT(read_full_file("/proc/self/cgroup", &self, NULL) >= 0);
        ASSERT(machine_scope_unit_name(test_name, &unit) >= 0);
        ASSERT(asprintf(&leaf, "/machine.slice/%s", unit) >= 0);
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                CGroupHierarchy *h = &cg->hierarchies[i];
                _cleanup_free_ char *copy = strdup(self), *want = NULL;
                ASSERT(copy);
                for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && !want;
                     line = strtok_r(NULL, "\n", &save)) {
                        _cleanup_free_ char *controllers = NULL, *path = NULL;
                        ASSERT(cgroup_parse_proc_line(line, &controllers, &path) >= 0);
                        if (streq_ptr(controllers, h->controllers))
                                ASSERT(asprintf(&want, "%s%s", streq(path, "/") ? "" : path, leaf) >= 0);
                }
                ASSERT(want);
                if (!streq(h->path, want))
                        fprintf(stderr, "%s: %s, expected %s\n", h->controllers ?: "cgroup2", h->path, want);
                ASSERT(streq(h->path, want));
        }
        _cleanup_free_ char *slice = strdup(cg->hierarchies[0].dir);
        ASSERT(slice && strrchr(slice, '/'));
        *strrchr(slice, '/') = 0;
        destroy(cg);
        ASSERT(access(slice, F_OK) >= 0);
        cgroup_direct_remove_slice();
        ASSERT(access(slice, F_OK) < 0 && errno == ENOENT);
}

int main(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "needs root, skipping\n");
                return 77;
        }
        log_set_program("test-cgroup");
        /* Grandchildren of the fork loop are reparented here, so every process we made gets reaped. */
        ASSERT(prctl(PR_SET_CHILD_SUBREAPER, 1) >= 0);

        test_limits_and_usage();
        test_oom();
        test_tasks_max();
        test_payload_tasks_max();
        test_payload_oom();
        test_cpu_quota();
        test_setup_boost();
        test_kill_signal();
        test_exists();
        test_serialize();
        test_slice();
        cleanup_all();
        fprintf(stderr, "all cgroup tests passed\n");
        return 0;
}
