/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backend-independent half of the cgroup interface. Both backends end up with the same thing, a set of
 * directories (one per mounted hierarchy) holding the container: a systemd scope is just a cgroup systemd
 * made for us. So everything that only reads or writes those directories (usage, limits read-back, kill,
 * emptiness, the state file) lives here; creation, limit changes and removal go to the backend. */

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "cgroup-internal.h"
#include "log.h"

/* v1 memory shows "no limit" as PAGE_COUNTER_MAX pages, i.e. LONG_MAX rounded down to the page size. */
#define V1_MEMORY_UNLIMITED_MIN UINT64_C(0x7FFFFFFFFFFF0000)

CGroup *cgroup_new(CGroupBackend backend, const char *name)
{
        CGroup *cg = calloc(1, sizeof(CGroup));
        if (!cg)
                return NULL;
        cg->backend = backend;
        cg->unified_fd = -1;
        cg->name = strdup(name);
        if (!cg->name)
                return cgroup_free(cg);
        return cg;
}

CGroup *cgroup_free(CGroup *cg)
{
        if (!cg)
                return NULL;
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                free(cg->hierarchies[i].controllers);
                free(cg->hierarchies[i].dir);
                free(cg->hierarchies[i].path);
                free(cg->hierarchies[i].payload);
        }
        free(cg->hierarchies);
        safe_close(cg->unified_fd);
        free(cg->name);
        free(cg->unit);
        sd_bus_unref(cg->bus);
        free(cg);
        return NULL;
}

int cgroup_add_hierarchy(CGroup *cg, const char *controllers, const char *dir, const char *path)
{
        CGroupHierarchy *n = realloc(cg->hierarchies, (cg->n_hierarchies + 1) * sizeof(CGroupHierarchy));
        if (!n)
                return -ENOMEM;
        cg->hierarchies = n;

        CGroupHierarchy h = {
            .controllers = controllers ? strdup(controllers) : NULL,
            .dir = dir ? strdup(dir) : NULL,
            .path = path ? strdup(path) : NULL,
        };
        if ((controllers && !h.controllers) || (dir && !h.dir) || (path && !h.path)) {
                free(h.controllers);
                free(h.dir);
                free(h.path);
                return -ENOMEM;
        }
        cg->hierarchies[cg->n_hierarchies++] = h;
        return 0;
}

CGroupHierarchy *cgroup_find_unified(CGroup *cg)
{
        for (size_t i = 0; i < cg->n_hierarchies; i++)
                if (!cg->hierarchies[i].controllers)
                        return &cg->hierarchies[i];
        return NULL;
}

static bool unified_has_controller(CGroupHierarchy *h, const char *controller)
{
        _cleanup_free_ char *p = NULL, *list = NULL;
        if (asprintf(&p, "%s/cgroup.controllers", h->dir) < 0)
                return false;
        if (read_one_line_file(p, &list) < 0)
                return false;
        return cgroup_list_contains(list, " ", controller);
}

CGroupHierarchy *cgroup_find_controller(CGroup *cg, const char *controller)
{
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                CGroupHierarchy *h = &cg->hierarchies[i];
                if (h->controllers ? cgroup_controller_list_contains(h->controllers, controller)
                                   : unified_has_controller(h, controller))
                        return h;
        }
        return NULL;
}

/* Where processes go: the payload, or for a cgroup recorded by an older daemon the container's dir itself. */
static const char *procs_dir(CGroupHierarchy *h)
{
        return h->payload ?: h->dir;
}

int cgroup_open_unified(CGroup *cg)
{
        /* The clone fd: the guest's init must start in payload so that its cgroup namespace is rooted there. */
        CGroupHierarchy *h = cgroup_find_unified(cg);
        if (!h)
                return 0;
        int fd = open(procs_dir(h), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        safe_close(cg->unified_fd);
        cg->unified_fd = fd;
        return 0;
}

static int hierarchy_file(CGroupHierarchy *h, const char *file, char **ret)
{
        return asprintf(ret, "%s/%s", h->dir, file) < 0 ? -ENOMEM : 0;
}

int cgroup_write(CGroupHierarchy *h, const char *file, const char *value)
{
        _cleanup_free_ char *p = NULL;
        int r = hierarchy_file(h, file, &p);
        if (r < 0)
                return r;
        return write_string_file(p, value);
}

int cgroup_write_u64(CGroupHierarchy *h, const char *file, uint64_t value)
{
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRIu64, value);
        return cgroup_write(h, file, buf);
}

static int cgroup_read(CGroupHierarchy *h, const char *file, char **ret)
{
        _cleanup_free_ char *p = NULL;
        int r = hierarchy_file(h, file, &p);
        if (r < 0)
                return r;
        return read_full_file(p, ret, NULL);
}

int cgroup_read_u64(CGroupHierarchy *h, const char *file, uint64_t *ret)
{
        _cleanup_free_ char *s = NULL;
        int r = cgroup_read(h, file, &s);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = 0;
        return cgroup_parse_limit(s, ret);
}

bool cgroup_list_contains(const char *list, const char *separators, const char *word)
{
        size_t l = strlen(word);
        for (const char *p = list; p && *p;) {
                size_t n = strcspn(p, separators);
                if (n == l && strncmp(p, word, l) == 0)
                        return true;
                p += n;
                p += strspn(p, separators);
        }
        return false;
}

bool cgroup_controller_list_contains(const char *list, const char *controller)
{
        return cgroup_list_contains(list, ",", controller);
}

int cgroup_parse_proc_line(const char *line, char **ret_controllers, char **ret_path)
{
        const char *c = strchr(line, ':');
        if (!c || c == line)
                return -EINVAL;
        const char *p = strchr(c + 1, ':');
        if (!p || p[1] != '/')
                return -EINVAL;

        size_t n = (size_t)(p - c - 1);
        _cleanup_free_ char *controllers = NULL;
        if (n > 0) {
                controllers = strndup(c + 1, n);
                if (!controllers)
                        return -ENOMEM;
        } else if (strncmp(line, "0:", 2) != 0)
                return -EINVAL; /* only the cgroup2 line has an empty controller list */

        char *path = strndup(p + 1, strcspn(p + 1, "\n"));
        if (!path)
                return -ENOMEM;
        *ret_controllers = TAKE_PTR(controllers);
        *ret_path = path;
        return 0;
}

int cgroup_parse_keyed(const char *text, const char *key, uint64_t *ret)
{
        size_t l = strlen(key);
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, key, l) != 0 || p[l] != ' ')
                        continue;
                _cleanup_free_ char *v = strndup(p + l + 1, strcspn(p + l + 1, "\n"));
                if (!v)
                        return -ENOMEM;
                return safe_atou64(v, ret);
        }
        return -ENOENT;
}

int cgroup_parse_limit(const char *s, uint64_t *ret)
{
        if (streq(s, "max") || streq(s, "-1")) {
                *ret = UINT64_MAX;
                return 0;
        }
        uint64_t v;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        *ret = v >= V1_MEMORY_UNLIMITED_MIN ? UINT64_MAX : v;
        return 0;
}

uint64_t cgroup_cpu_quota_to_period_quota(uint64_t per_sec_usec, uint64_t period_usec)
{
        /* The kernel refuses quotas under 1 ms; round up like systemd does rather than fail. */
        if (per_sec_usec > UINT64_MAX / period_usec)
                return UINT64_MAX;
        uint64_t q = (per_sec_usec * period_usec + 999999) / 1000000;
        return q < 1000 ? 1000 : q;
}

/* --- dispatch --- */

int cgroup_clone_fd(CGroup *cg)
{
        return cg->unified_fd;
}

int cgroup_attach(CGroup *cg, pid_t pid)
{
        /* Both backends: after CLONE_INTO_CGROUP or StartTransientUnit(PIDs=) the pid is already in some
         * hierarchies; the rest are plain directories either way. */
        return cgroup_attach_dirs(cg, pid);
}

int cgroup_set_limits(CGroup *cg, const CGroupLimits *limits)
{
        switch (cg->backend) {
        case CGROUP_BACKEND_SYSTEMD:
                return cgroup_systemd_set_limits(cg, limits);
        case CGROUP_BACKEND_DIRECT:
        default:
                return cgroup_direct_set_limits(cg, limits);
        }
}

int cgroup_destroy(CGroup *cg)
{
        switch (cg->backend) {
        case CGROUP_BACKEND_SYSTEMD:
                return cgroup_systemd_destroy(cg);
        case CGROUP_BACKEND_DIRECT:
        default:
                return cgroup_direct_destroy(cg);
        }
}

CGroupBackend cgroup_backend(CGroup *cg)
{
        return cg->backend;
}

const char *cgroup_unit(CGroup *cg)
{
        return cg->unit;
}

const char *cgroup_unified_path(CGroup *cg)
{
        CGroupHierarchy *h = cgroup_find_unified(cg);
        return h ? h->dir : NULL;
}

const char *cgroup_payload_path(CGroup *cg)
{
        CGroupHierarchy *h = cgroup_find_unified(cg);
        return h ? procs_dir(h) : NULL;
}

const char *cgroup_path(CGroup *cg)
{
        /* The cgroup2 path when there is one; else the first v1 hierarchy's (name=systemd on most hosts). */
        CGroupHierarchy *h = cgroup_find_unified(cg);
        if (!h && cg->n_hierarchies > 0)
                h = &cg->hierarchies[0];
        return h ? h->path : NULL;
}

/* --- reading limits and usage --- */

static uint64_t read_memory_max(CGroup *cg)
{
        uint64_t v = UINT64_MAX;
        CGroupHierarchy *h = cgroup_find_controller(cg, "memory");
        if (h)
                (void)cgroup_read_u64(h, h->controllers ? "memory.limit_in_bytes" : "memory.max", &v);
        return v;
}

static uint64_t read_cpu_quota(CGroup *cg)
{
        CGroupHierarchy *h = cgroup_find_controller(cg, "cpu");
        if (!h)
                return UINT64_MAX;

        uint64_t quota = UINT64_MAX, period = 0;
        if (h->controllers) {
                if (cgroup_read_u64(h, "cpu.cfs_quota_us", &quota) < 0 ||
                    cgroup_read_u64(h, "cpu.cfs_period_us", &period) < 0)
                        return UINT64_MAX;
        } else {
                _cleanup_free_ char *s = NULL;
                char q[32];
                if (cgroup_read(h, "cpu.max", &s) < 0 || sscanf(s, "%31s %" SCNu64, q, &period) != 2 ||
                    cgroup_parse_limit(q, &quota) < 0)
                        return UINT64_MAX;
        }
        if (quota == UINT64_MAX || period == 0)
                return UINT64_MAX;
        return quota * 1000000 / period;
}

int cgroup_get_limits(CGroup *cg, CGroupLimits *ret)
{
        uint64_t tasks = UINT64_MAX;
        CGroupHierarchy *h = cgroup_find_controller(cg, "pids");
        if (h)
                (void)cgroup_read_u64(h, "pids.max", &tasks);

        *ret = (CGroupLimits){
            .memory_max = read_memory_max(cg),
            .cpu_quota_per_sec_usec = read_cpu_quota(cg),
            .tasks_max = tasks,
        };
        return 0;
}

static uint64_t read_cpu_usage(CGroup *cg)
{
        /* cpu.stat's usage_usec is kept on every non-root cgroup2 directory, controller or not. */
        uint64_t v;
        CGroupHierarchy *u = cgroup_find_unified(cg);
        _cleanup_free_ char *stat = NULL;
        if (u && cgroup_read(u, "cpu.stat", &stat) >= 0 && cgroup_parse_keyed(stat, "usage_usec", &v) >= 0)
                return v * 1000;

        CGroupHierarchy *h = cgroup_find_controller(cg, "cpuacct");
        if (h && h->controllers && cgroup_read_u64(h, "cpuacct.usage", &v) >= 0)
                return v;
        return UINT64_MAX;
}

int cgroup_get_usage(CGroup *cg, CGroupUsage *ret)
{
        uint64_t mem = UINT64_MAX, tasks = UINT64_MAX;
        CGroupHierarchy *h = cgroup_find_controller(cg, "memory");
        if (h)
                (void)cgroup_read_u64(h, h->controllers ? "memory.usage_in_bytes" : "memory.current", &mem);
        h = cgroup_find_controller(cg, "pids");
        if (h)
                (void)cgroup_read_u64(h, "pids.current", &tasks);

        *ret = (CGroupUsage){
            .memory_current = mem,
            .cpu_usage_nsec = read_cpu_usage(cg),
            .tasks_current = tasks,
        };
        return 0;
}

/* --- processes --- */

/* Calls fn on every directory of the subtree, children before their parent. */
static int walk_tree(const char *dir, int (*fn)(const char *dir, void *userdata), void *userdata)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
                return -errno;

        int ret = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *sub = NULL;
                if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0)
                        return -ENOMEM;
                int r = walk_tree(sub, fn, userdata);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        int r = fn(dir, userdata);
        return ret < 0 ? ret : r;
}

typedef struct SignalSweep {
        int sig;
        unsigned n_signalled;
} SignalSweep;

static int signal_procs(const char *dir, void *userdata)
{
        SignalSweep *s = userdata;
        _cleanup_free_ char *p = NULL, *procs = NULL;
        if (asprintf(&p, "%s/cgroup.procs", dir) < 0)
                return -ENOMEM;
        int r = read_full_file(p, &procs, NULL);
        if (r < 0)
                return r == -ENOENT ? 0 : r;

        for (char *save = NULL, *w = strtok_r(procs, "\n", &save); w; w = strtok_r(NULL, "\n", &save)) {
                int pid;
                if (safe_atoi(w, &pid) < 0 || pid <= 0)
                        continue;
                if (kill(pid, s->sig) < 0) {
                        if (errno != ESRCH)
                                return -errno;
                } else
                        s->n_signalled++;
        }
        return 0;
}

static void freeze(CGroup *cg, bool frozen)
{
        /* Stops forks while pids are signalled one by one; without a freezer the sweep is repeated. */
        CGroupHierarchy *u = cgroup_find_unified(cg);
        if (u && cgroup_write(u, "cgroup.freeze", frozen ? "1" : "0") >= 0)
                return;
        CGroupHierarchy *h = cgroup_find_controller(cg, "freezer");
        if (h && h->controllers)
                (void)cgroup_write(h, "freezer.state", frozen ? "FROZEN" : "THAWED");
}

static int signal_all(CGroup *cg, int sig)
{
        int ret = 0;
        freeze(cg, true);
        for (unsigned round = 0; round < 8; round++) {
                SignalSweep s = {.sig = sig};
                for (size_t i = 0; i < cg->n_hierarchies; i++) {
                        int r = walk_tree(cg->hierarchies[i].dir, signal_procs, &s);
                        if (r < 0 && r != -ENOENT && ret == 0)
                                ret = r;
                }
                if (s.n_signalled == 0 || sig != SIGKILL)
                        break;
        }
        /* SIGCONT so that stopped processes act on the signal, as systemd does. */
        if (sig != SIGKILL && sig != SIGCONT) {
                SignalSweep s = {.sig = SIGCONT};
                for (size_t i = 0; i < cg->n_hierarchies; i++)
                        (void)walk_tree(cg->hierarchies[i].dir, signal_procs, &s);
        }
        freeze(cg, false);
        return ret;
}

int cgroup_kill(CGroup *cg, int sig)
{
        if (sig == SIGKILL) {
                CGroupHierarchy *u = cgroup_find_unified(cg);
                if (u && cgroup_write(u, "cgroup.kill", "1") >= 0)
                        return 0;
        }
        return signal_all(cg, sig);
}

static int check_no_procs(const char *dir, void *userdata)
{
        _cleanup_free_ char *p = NULL, *procs = NULL;
        if (asprintf(&p, "%s/cgroup.procs", dir) < 0)
                return -ENOMEM;
        int r = read_full_file(p, &procs, NULL);
        if (r < 0)
                return r;
        return procs[0] ? -EBUSY : 0;
}

int cgroup_is_empty(CGroup *cg)
{
        CGroupHierarchy *u = cgroup_find_unified(cg);
        if (u) {
                /* Every process is in some cgroup of every hierarchy, and ours are all put in the cgroup2
                 * one too: its populated flag covers the whole tree, no v1 walk needed. */
                _cleanup_free_ char *events = NULL;
                uint64_t populated;
                if (cgroup_read(u, "cgroup.events", &events) >= 0 &&
                    cgroup_parse_keyed(events, "populated", &populated) >= 0)
                        return populated ? 0 : 1;
        }
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                int r = walk_tree(cg->hierarchies[i].dir, check_no_procs, NULL);
                if (r == -EBUSY)
                        return 0;
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 1;
}

/* True when pid's cgroup in the hierarchy is path or below it. */
static bool pid_in_hierarchy(const char *proc_cgroup, CGroupHierarchy *h, const char *want)
{
        _cleanup_free_ char *copy = strdup(proc_cgroup);
        if (!copy)
                return false;
        for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                _cleanup_free_ char *controllers = NULL, *path = NULL;
                if (cgroup_parse_proc_line(line, &controllers, &path) < 0)
                        continue;
                if (!streq_ptr(controllers, h->controllers))
                        continue;
                size_t l = strlen(want);
                return strncmp(path, want, l) == 0 && (path[l] == 0 || path[l] == '/');
        }
        return false;
}

int cgroup_attach_dirs(CGroup *cg, pid_t pid)
{
        _cleanup_free_ char *p = NULL, *proc_cgroup = NULL;
        if (asprintf(&p, "/proc/%d/cgroup", (int)pid) < 0)
                return -ENOMEM;
        int r = read_full_file(p, &proc_cgroup, NULL);
        if (r < 0)
                return r;

        char buf[32];
        snprintf(buf, sizeof(buf), "%d", (int)pid);
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                CGroupHierarchy *h = &cg->hierarchies[i];
                _cleanup_free_ char *want = NULL, *procs = NULL;
                if (h->payload ? asprintf(&want, "%s/" CGROUP_PAYLOAD, streq(h->path, "/") ? "" : h->path) < 0
                               : !(want = strdup(h->path)))
                        return -ENOMEM;
                /* Never pull a process back out of a sub-cgroup the guest has put it in. A process in
                 * the container's dir itself (systemd made the scope with it) still moves to payload. */
                if (pid_in_hierarchy(proc_cgroup, h, want))
                        continue;
                if (asprintf(&procs, "%s/cgroup.procs", procs_dir(h)) < 0)
                        return -ENOMEM;
                r = write_string_file(procs, buf);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int rmdir_one(const char *dir, void *userdata)
{
        /* A process that was just reaped can keep a cgroup busy for a moment after cgroup.procs is empty. */
        for (unsigned attempt = 0;; attempt++) {
                if (rmdir(dir) >= 0 || errno == ENOENT)
                        return 0;
                if (errno != EBUSY || attempt >= 50)
                        return -errno;
                nanosleep(&(struct timespec){.tv_nsec = 2 * 1000 * 1000}, NULL);
        }
}

/* Nearly always there is nothing but payload/ below the dir: two rmdir()s, no directory listing. */
static int remove_hierarchy_dirs(CGroupHierarchy *h)
{
        if ((!h->payload || rmdir(h->payload) >= 0 || errno == ENOENT) && (rmdir(h->dir) >= 0 || errno == ENOENT))
                return 0;
        return walk_tree(h->dir, rmdir_one, NULL);
}

int cgroup_remove_dirs(CGroup *cg)
{
        int ret = 0;
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                int r = remove_hierarchy_dirs(&cg->hierarchies[i]);
                if (r < 0 && r != -ENOENT && ret == 0)
                        ret = r;
        }
        return ret;
}

/* --- the payload sub-cgroup --- */

static int parent_dir(const char *dir, char **ret)
{
        char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        char *slash = strrchr(p, '/');
        if (slash && slash != p)
                *slash = 0;
        *ret = p;
        return 0;
}

/* v1 cpuset children start with empty cpus/mems, and a task cannot join such a cgroup. */
int cgroup_copy_cpuset_from_parent(const char *dir)
{
        static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
        _cleanup_free_ char *parent = NULL;
        int r = parent_dir(dir, &parent);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *from = NULL, *to = NULL, *value = NULL;
                if (asprintf(&from, "%s/%s", parent, files[i]) < 0 || asprintf(&to, "%s/%s", dir, files[i]) < 0)
                        return -ENOMEM;
                r = read_one_line_file(from, &value);
                if (r < 0)
                        return log_error_errno(r, "read %s: %m", from);
                r = write_string_file(to, value);
                if (r < 0)
                        return log_error_errno(r, "write %s: %m", to);
        }
        return 0;
}

void cgroup_enable_subtree_controllers(const char *dir, const char *const *wanted, int level)
{
        _cleanup_free_ char *available = NULL, *enabled = NULL, *p = NULL, *q = NULL;
        if (asprintf(&p, "%s/cgroup.controllers", dir) < 0 || asprintf(&q, "%s/cgroup.subtree_control", dir) < 0)
                return;
        if (read_one_line_file(p, &available) < 0 || read_one_line_file(q, &enabled) < 0)
                return;

        for (char *save = NULL, *c = strtok_r(available, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
                bool want = !wanted;
                for (const char *const *w = wanted; w && *w; w++)
                        want = want || streq(*w, c);
                if (!want || cgroup_list_contains(enabled, " ", c))
                        continue;
                char op[64];
                snprintf(op, sizeof(op), "+%s", c);
                int r = write_string_file(q, op);
                if (r < 0)
                        log_full_errno(level, r, "enable %s in %s: %m", c, q);
        }
}

int cgroup_make_payload(CGroup *cg)
{
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                CGroupHierarchy *h = &cg->hierarchies[i];
                _cleanup_free_ char *payload = NULL;
                if (asprintf(&payload, "%s/" CGROUP_PAYLOAD, h->dir) < 0)
                        return -ENOMEM;
                if (mkdir(payload, 0755) < 0 && errno != EEXIST)
                        return log_machine_error_errno(cg->name, errno, "mkdir %s: %m", payload);
                if (h->controllers && cgroup_controller_list_contains(h->controllers, "cpuset")) {
                        int r = cgroup_copy_cpuset_from_parent(payload);
                        if (r < 0)
                                return r;
                }
                free(h->payload);
                h->payload = TAKE_PTR(payload);
        }
        return 0;
}

void cgroup_enable_payload_controllers(CGroup *cg)
{
        /* The guest sees on its root (payload) the controllers it would have seen on the scope, so that a
         * guest systemd can manage resources below it. Only valid once the scope itself holds no process. */
        CGroupHierarchy *h = cgroup_find_unified(cg);
        if (h && h->payload)
                cgroup_enable_subtree_controllers(h->dir, NULL, LOG_DEBUG);
}

/* --- state file --- */

static const char *backend_to_string(CGroupBackend b)
{
        return b == CGROUP_BACKEND_SYSTEMD ? "systemd" : "direct";
}

int cgroup_serialize(CGroup *cg, FILE *f)
{
        fprintf(f, "CGROUP_BACKEND=%s\n", backend_to_string(cg->backend));
        if (cg->unit)
                fprintf(f, "CGROUP_UNIT=%s\n", cg->unit);
        /* Absolute directories: a restarted daemon may live in a different cgroup than the one that
         * created these. Each HIERARCHY line starts a record that DIR and PATH complete. */
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                CGroupHierarchy *h = &cg->hierarchies[i];
                fprintf(f, "CGROUP_HIERARCHY=%s\nCGROUP_DIR=%s\nCGROUP_PATH=%s\n",
                        h->controllers ?: "cgroup2", h->dir, strempty(h->path));
                if (h->payload)
                        fprintf(f, "CGROUP_PAYLOAD=%s\n", h->payload);
        }
        return ferror(f) ? -EIO : 0;
}

static int set_string(char **field, const char *value)
{
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

int cgroup_deserialize_item(CGroup **cgp, const char *name, const char *key, const char *value)
{
        if (strncmp(key, "CGROUP_", 7) != 0)
                return 0;
        if (!*cgp) {
                *cgp = cgroup_new(CGROUP_BACKEND_DIRECT, name);
                if (!*cgp)
                        return -ENOMEM;
        }
        CGroup *cg = *cgp;
        CGroupHierarchy *last = cg->n_hierarchies > 0 ? &cg->hierarchies[cg->n_hierarchies - 1] : NULL;
        int r = 0;

        if (streq(key, "CGROUP_BACKEND")) {
                if (streq(value, "systemd"))
                        cg->backend = CGROUP_BACKEND_SYSTEMD;
                else if (streq(value, "direct"))
                        cg->backend = CGROUP_BACKEND_DIRECT;
                else
                        return -EINVAL;
        } else if (streq(key, "CGROUP_UNIT"))
                r = set_string(&cg->unit, value);
        else if (streq(key, "CGROUP_HIERARCHY"))
                r = cgroup_add_hierarchy(cg, streq(value, "cgroup2") ? NULL : value, NULL, NULL);
        else if (streq(key, "CGROUP_DIR")) {
                if (!last || value[0] != '/')
                        return -EINVAL;
                r = set_string(&last->dir, value);
        } else if (streq(key, "CGROUP_PATH")) {
                if (!last)
                        return -EINVAL;
                r = set_string(&last->path, value);
        } else if (streq(key, "CGROUP_PAYLOAD")) {
                if (!last || value[0] != '/')
                        return -EINVAL;
                r = set_string(&last->payload, value);
        } else
                return 0;
        return r < 0 ? r : 1;
}

int cgroup_deserialize_done(CGroup *cg)
{
        /* Forget hierarchies whose directory is gone (or was never recorded); the rest is the cgroup. */
        size_t kept = 0;
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                CGroupHierarchy *h = &cg->hierarchies[i];
                struct stat st;
                if (h->dir && h->path && stat(h->dir, &st) >= 0 && S_ISDIR(st.st_mode)) {
                        /* Without its payload (which nothing but us removes) the guest's processes can
                         * only be in dir itself: kill and removal work on dir's whole subtree anyway. */
                        if (h->payload && (stat(h->payload, &st) < 0 || !S_ISDIR(st.st_mode))) {
                                log_machine_debug(cg->name, "cgroup %s: gone", h->payload);
                                h->payload = mfree(h->payload);
                        }
                        cg->hierarchies[kept++] = *h;
                        continue;
                }
                log_machine_debug(cg->name, "cgroup %s: gone, dropping it", strempty(h->dir));
                free(h->controllers);
                free(h->dir);
                free(h->path);
                free(h->payload);
        }
        cg->n_hierarchies = kept;
        if (kept == 0)
                return -ENOENT;
        return cgroup_open_unified(cg);
}

int cgroup_procs_paths(CGroup *cg, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                char *p;
                if (asprintf(&p, "%s/cgroup.procs", procs_dir(&cg->hierarchies[i])) < 0)
                        return -ENOMEM;
                if (strv_push(&l, p) < 0) {
                        free(p);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}
