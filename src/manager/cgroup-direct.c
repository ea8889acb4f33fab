/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Direct mode: no systemd to ask, so the container's cgroup is a directory we make below our own cgroup in
 * every hierarchy we are in, and limits are written straight to the controller files. */

#include <inttypes.h>
#include <libmount/libmount.h>
#include <sys/stat.h>

#include "cgroup-internal.h"
#include "log.h"
#include "names.h"

static void mnt_free_tablep(struct libmnt_table **t)
{
        mnt_unref_table(*t);
}

static void mnt_free_iterp(struct libmnt_iter **i)
{
        mnt_free_iter(*i);
}

/* Whether a cgroup (v1) mount carries every controller of the list; "name=X" is a mount option too. */
static bool mount_has_controllers(struct libmnt_fs *fs, const char *controllers)
{
        const char *opts = mnt_fs_get_fs_options(fs);
        if (!opts)
                return false;

        _cleanup_free_ char *copy = strdup(controllers);
        if (!copy)
                return false;
        for (char *save = NULL, *c = strtok_r(copy, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(c, '=');
                char *value = NULL;
                size_t valsz = 0;
                if (eq)
                        *eq = 0;
                if (mnt_optstr_get_option(opts, c, &value, &valsz) != 0)
                        return false;
                if (eq && (valsz != strlen(eq + 1) || strncmp(value, eq + 1, valsz) != 0))
                        return false;
        }
        return true;
}

/* Where our cgroup `path` of a hierarchy appears in the mount table; -ENOENT if the hierarchy (or that part
 * of it) is not mounted. A mount whose root is a sub-cgroup shows only that subtree. */
static int find_own_dir(struct libmnt_table *t, const char *controllers, const char *path, char **ret)
{
        _cleanup_(mnt_free_iterp) struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
        if (!it)
                return -ENOMEM;

        struct libmnt_fs *fs;
        while (mnt_table_next_fs(t, it, &fs) == 0) {
                const char *type = mnt_fs_get_fstype(fs), *target = mnt_fs_get_target(fs);
                const char *root = mnt_fs_get_root(fs) ?: "/";
                if (!type || !target)
                        continue;
                if (controllers ? !streq(type, "cgroup") || !mount_has_controllers(fs, controllers)
                                : !streq(type, "cgroup2"))
                        continue;

                const char *rest = path;
                if (!streq(root, "/")) {
                        size_t l = strlen(root);
                        if (strncmp(path, root, l) != 0 || (path[l] != 0 && path[l] != '/'))
                                continue;
                        rest = path + l;
                }
                if (streq(rest, "/"))
                        rest = "";
                return asprintf(ret, "%s%s", streq(target, "/") ? "" : target, rest) < 0 ? -ENOMEM : 0;
        }
        return -ENOENT;
}

/* Our own cgroup in one hierarchy we are in. */
typedef struct OwnCGroup {
        char *controllers; /* NULL for cgroup2 */
        char *dir;         /* host path of <own>/machine.slice */
        char *path;        /* the same from the hierarchy's root */
        bool made;         /* machine.slice made (or checked) by this daemon: its controllers are enabled */
} OwnCGroup;

/* Where we are does not change while we run: found once, not per start (a start is latency-bound, and
 * parsing the mount table is a good part of a millisecond). */
static OwnCGroup *own_cgroups;
static size_t n_own_cgroups;

static int own_cgroup_add(const char *controllers, const char *own, const char *path)
{
        OwnCGroup *n = realloc(own_cgroups, (n_own_cgroups + 1) * sizeof(OwnCGroup));
        if (!n)
                return -ENOMEM;
        own_cgroups = n;
        const char *sep = streq(path, "/") ? "" : path;
        OwnCGroup o = {.controllers = controllers ? strdup(controllers) : NULL};
        if ((controllers && !o.controllers) || asprintf(&o.dir, "%s/" CGROUP_DIRECT_SLICE, own) < 0) {
                free(o.controllers);
                return -ENOMEM;
        }
        if (asprintf(&o.path, "%s/" CGROUP_DIRECT_SLICE, sep) < 0) {
                free(o.controllers);
                free(o.dir);
                return -ENOMEM;
        }
        own_cgroups[n_own_cgroups++] = o;
        return 0;
}

/* Like systemd, which realizes a unit's cgroup only in the v1 hierarchies of the controllers it needs: the
 * limits (memory, pids, cpu), usage (cpuacct) and the device policy (devices). In the others (blkio,
 * cpuset, freezer, name=systemd, ...) the guest stays in the daemon's cgroup. Each hierarchy costs a
 * mkdir, an rmdir and, worst, an attach per start: a v1 cgroup.procs write takes the kernel's global
 * cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period and every fork and exit in
 * progress, and with a host full of booting guests that blocked the daemon's loop for seconds. cgroup2
 * (the freezer and process tracking) is always used. */
static bool v1_hierarchy_used(const char *controllers)
{
        static const char *const used[] = {"memory", "pids", "cpu", "cpuacct", "devices"};
        for (size_t i = 0; i < ELEMENTSOF(used); i++)
                if (cgroup_controller_list_contains(controllers, used[i]))
                        return true;
        return false;
}

/* Calls fn for every hierarchy in /proc/self/cgroup, with the mount table to find it in. */
static int foreach_own_hierarchy(int (*fn)(struct libmnt_table *t, const char *controllers, const char *path,
                                           void *userdata),
                                 void *userdata)
{
        _cleanup_free_ char *self = NULL;
        int r = read_full_file("/proc/self/cgroup", &self, NULL);
        if (r < 0)
                return log_error_errno(r, "read /proc/self/cgroup: %m");
        _cleanup_(mnt_free_tablep) struct libmnt_table *t = mnt_new_table_from_file("/proc/self/mountinfo");
        if (!t)
                return log_error_errno(ENOMEM, "parse /proc/self/mountinfo: %m");

        for (char *save = NULL, *line = strtok_r(self, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                _cleanup_free_ char *controllers = NULL, *path = NULL;
                if (cgroup_parse_proc_line(line, &controllers, &path) < 0) {
                        log_debug("/proc/self/cgroup: ignoring \"%s\"", line);
                        continue;
                }
                r = fn(t, controllers, path, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_own_hierarchy(struct libmnt_table *t, const char *controllers, const char *path, void *userdata)
{
        _cleanup_free_ char *own = NULL;
        if (strstr(path, "/..")) {
                /* We sit outside our cgroup namespace's root: nothing of it is reachable. */
                log_debug("cgroup hierarchy %s: own cgroup %s is outside our view, skipping",
                          controllers ?: "cgroup2", path);
                return 0;
        }
        if (controllers && !v1_hierarchy_used(controllers)) {
                log_debug("cgroup hierarchy %s: no controller we use, skipping", controllers);
                return 0;
        }
        int r = find_own_dir(t, controllers, path, &own);
        if (r == -ENOENT) {
                log_debug("cgroup hierarchy %s: not mounted, skipping", controllers ?: "cgroup2");
                return 0;
        }
        return r < 0 ? r : own_cgroup_add(controllers, own, path);
}

static int own_cgroups_discover(void)
{
        if (n_own_cgroups > 0)
                return 0;
        int r = foreach_own_hierarchy(add_own_hierarchy, NULL);
        if (r < 0)
                return r;
        if (n_own_cgroups == 0)
                return log_error_errno(EOPNOTSUPP, "no mounted cgroup hierarchy found: %m");
        return 0;
}

typedef struct FixedPath {
        CGroup *cg;
        const char *path;
} FixedPath;

static int add_fixed_hierarchy(struct libmnt_table *t, const char *controllers, const char *path, void *userdata)
{
        FixedPath *f = userdata;
        _cleanup_free_ char *root = NULL, *dir = NULL, *rel = NULL;
        int r = find_own_dir(t, controllers, "/", &root);
        if (r == -ENOENT)
                return 0; /* only part of this hierarchy is visible to us */
        if (r < 0)
                return r;
        if (asprintf(&dir, "%s%s", root, f->path) < 0 || !(rel = strdup(f->path)))
                return -ENOMEM;
        if (access(dir, F_OK) < 0)
                return 0; /* a hierarchy the manager does not put this unit in */
        return cgroup_add_hierarchy(f->cg, controllers, dir, rel);
}

int cgroup_discover(CGroup *cg, const char *fixed_path)
{
        int r;
        if (fixed_path) {
                r = foreach_own_hierarchy(add_fixed_hierarchy, &(FixedPath){.cg = cg, .path = fixed_path});
                if (r < 0)
                        return r;
                if (cg->n_hierarchies == 0)
                        return log_error_errno(EOPNOTSUPP, "no mounted cgroup hierarchy found: %m");
                return 0;
        }

        r = own_cgroups_discover();
        if (r < 0)
                return r;
        _cleanup_free_ char *leaf = NULL;
        if (machine_scope_unit_name(cg->name, &leaf) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n_own_cgroups; i++) {
                _cleanup_free_ char *dir = NULL, *rel = NULL;
                if (asprintf(&dir, "%s/%s", own_cgroups[i].dir, leaf) < 0 ||
                    asprintf(&rel, "%s/%s", own_cgroups[i].path, leaf) < 0)
                        return -ENOMEM;
                r = cgroup_add_hierarchy(cg, own_cgroups[i].controllers, dir, rel);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* machine.slice below our own cgroup, the parent of every container's cgroup, as systemd's machine.slice
 * is beside its services: the guests together weigh as much as the daemon in the cpu controller. With
 * the containers as our cgroup's direct children, each guest would weigh as much as the daemon, and 200
 * booting guests would leave it 1/200 of the CPU to serve their starts. */
static int make_slice(OwnCGroup *o)
{
        static const char *const wanted[] = {"memory", "pids", "cpu", NULL};
        if (mkdir(o->dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "mkdir %s: %m", o->dir);
        if (o->controllers && cgroup_controller_list_contains(o->controllers, "cpuset")) {
                int r = cgroup_copy_cpuset_from_parent(o->dir);
                if (r < 0)
                        return r;
        }
        if (!o->controllers) {
                /* On cgroup2 the limits exist only where the parents enable the controllers for their
                 * children. Our own cgroup can do that only if it holds no processes itself (or is the
                 * root): best effort, the limit writes later say whether a controller is missing. */
                _cleanup_free_ char *own = strdup(o->dir);
                char *slash = own ? strrchr(own, '/') : NULL;
                if (slash && slash != own) {
                        *slash = 0;
                        cgroup_enable_subtree_controllers(own, wanted, LOG_WARNING);
                }
                cgroup_enable_subtree_controllers(o->dir, wanted, LOG_WARNING);
        }
        o->made = true;
        return 0;
}

static OwnCGroup *own_cgroup_of(CGroupHierarchy *h)
{
        for (size_t i = 0; i < n_own_cgroups; i++)
                if (streq_ptr(own_cgroups[i].controllers, h->controllers))
                        return &own_cgroups[i];
        return NULL;
}

/* Also one a killed daemon left: below our own cgroup, machine.slice is ours whoever made it. */
void cgroup_direct_remove_slice(void)
{
        for (size_t i = 0; i < n_own_cgroups; i++)
                if (rmdir(own_cgroups[i].dir) < 0 && errno != ENOENT && errno != EBUSY)
                        log_full_errno(LOG_DEBUG, errno, "rmdir %s: %m", own_cgroups[i].dir);
}

/* The v1 devices controller (hybrid hosts): like systemd-nspawn's DeviceAllow=, the guest may open only
 * the nodes of its /dev and ptys, and mknod anything (opening it is what counts). Set on the container's
 * dir, above the guest's cgroup namespace root (payload): a child never gets more than its parent allows,
 * so a guest root that mounts the devices hierarchy can only narrow the list. */
static int restrict_devices(CGroupHierarchy *h)
{
        static const char *const allow[] = { "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                                              "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",
                                              "c 10:200 rwm", "c 10:229 rwm", "c *:* m", "b *:* m" };
        int r = cgroup_write(h, "devices.deny", "a");
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(allow); i++)
                r = cgroup_write(h, "devices.allow", allow[i]);
        return r;
}

static int make_dir(CGroup *cg, CGroupHierarchy *h)
{
        if (mkdir(h->dir, 0755) >= 0)
                return 0;
        OwnCGroup *o = errno == ENOENT ? own_cgroup_of(h) : NULL;
        if (!o)
                return log_machine_error_errno(cg->name, errno, "mkdir %s: %m", h->dir);
        int r = make_slice(o);
        if (r < 0)
                return r;
        if (mkdir(h->dir, 0755) < 0)
                return log_machine_error_errno(cg->name, errno, "mkdir %s: %m", h->dir);
        return 0;
}

static int make_dirs(CGroup *cg)
{
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                CGroupHierarchy *h = &cg->hierarchies[i];
                int r = make_dir(cg, h);
                if (r < 0)
                        return r;
                if (!h->controllers) {
                        OwnCGroup *o = own_cgroup_of(h);
                        if (o && !o->made) {
                                /* The slice was there already (a previous daemon's): its controllers may
                                 * not be. */
                                r = make_slice(o);
                                if (r < 0)
                                        return r;
                        }
                }
                if (h->controllers && cgroup_controller_list_contains(h->controllers, "cpuset")) {
                        r = cgroup_copy_cpuset_from_parent(h->dir);
                        if (r < 0)
                                return r;
                }
                if (h->controllers && cgroup_controller_list_contains(h->controllers, "devices")) {
                        r = restrict_devices(h);
                        if (r < 0)
                                return log_machine_error_errno(cg->name, r, "restrict devices in %s: %m", h->dir);
                }
        }
        /* After the limits' dirs: payload inherits the devices list and cpuset from them. */
        int r = cgroup_make_payload(cg);
        if (r >= 0)
                cgroup_enable_payload_controllers(cg);
        return r;
}

static int set_limits(CGroup *cg, const CGroupLimits *limits, bool fresh);

int cgroup_direct_prepare(const char *name, CGroup **ret)
{
        if (!name || !*name || strchr(name, '/') || streq(name, "..") || streq(name, "."))
                return -EINVAL;

        _cleanup_(cgroup_freep) CGroup *cg = cgroup_new(CGROUP_BACKEND_DIRECT, name);
        if (!cg)
                return -ENOMEM;
        int r = cgroup_discover(cg, NULL);
        if (r < 0)
                return r;

        /* A leftover from a crashed daemon is replaced if nothing runs in it. */
        for (size_t i = 0; i < cg->n_hierarchies && !cg->leftover; i++)
                cg->leftover = access(cg->hierarchies[i].dir, F_OK) >= 0;
        if (cg->leftover) {
                r = cgroup_is_empty(cg);
                if (r < 0)
                        return log_machine_error_errno(name, r, "check for an existing cgroup: %m");
                if (r == 0)
                        return log_machine_error_errno(name, EEXIST, "cgroup %s is in use: %m", cgroup_path(cg));
        }

        /* Known before it exists, so that a state file written now records it; deserializing drops it
         * again if the daemon died before making it. */
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                CGroupHierarchy *h = &cg->hierarchies[i];
                if (asprintf(&h->payload, "%s/" CGROUP_PAYLOAD, h->dir) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

int cgroup_direct_realize(CGroup *cg, const CGroupLimits *limits)
{
        int r;
        /* Made afresh: v1 devices cannot be restricted again on a dir that has children (payload/), and
         * whatever the last guest left below it goes too. */
        if (cg->leftover) {
                r = cgroup_remove_dirs(cg);
                if (r < 0)
                        return log_machine_error_errno(cg->name, r, "remove the leftover cgroup %s: %m",
                                                       cgroup_path(cg));
        }

        r = make_dirs(cg);
        if (r >= 0 && limits)
                r = set_limits(cg, limits, true);
        if (r >= 0) {
                r = cgroup_open_unified(cg);
                if (r < 0)
                        log_machine_error_errno(cg->name, r, "open %s: %m", cgroup_payload_path(cg));
        }
        if (r < 0)
                (void)cgroup_remove_dirs(cg);
        return r;
}

int cgroup_direct_create(const char *name, const CGroupLimits *limits, CGroup **ret)
{
        _cleanup_(cgroup_freep) CGroup *cg = NULL;
        int r = cgroup_direct_prepare(name, &cg);
        if (r < 0)
                return r;
        r = cgroup_direct_realize(cg, limits);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cg);
        return 0;
}

static bool has_file(CGroupHierarchy *h, const char *file)
{
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", h->dir, file) < 0)
                return false;
        return access(p, F_OK) >= 0;
}

static int write_limit(CGroup *cg, CGroupHierarchy *h, const char *file, uint64_t v, const char *unlimited)
{
        int r = v == UINT64_MAX ? cgroup_write(h, file, unlimited) : cgroup_write_u64(h, file, v);
        if (r < 0)
                return log_machine_error_errno(cg->name, r, "write %s/%s: %m", h->dir, file);
        return 0;
}

static int no_controller(CGroup *cg, const char *controller)
{
        return log_machine_error_errno(
            cg->name, EOPNOTSUPP,
            "cannot enforce the limit: no cgroup hierarchy offers the %s controller: %m", controller);
}

static int set_memory_max(CGroup *cg, uint64_t max)
{
        CGroupHierarchy *h = cgroup_find_controller(cg, "memory");
        if (!h)
                return max == UINT64_MAX ? 0 : no_controller(cg, "memory");

        /* MemoryMax bounds RAM and swap together, so a guest cannot dodge its OOM kill by swapping. */
        if (!h->controllers) {
                int r = write_limit(cg, h, "memory.max", max, "max");
                if (r >= 0 && has_file(h, "memory.swap.max"))
                        r = write_limit(cg, h, "memory.swap.max", max == UINT64_MAX ? max : 0, "max");
                return r;
        }

        /* v1 wants memsw >= limit at every moment: raise memsw first, lower it last. */
        bool memsw = has_file(h, "memory.memsw.limit_in_bytes");
        uint64_t cur = UINT64_MAX;
        (void)cgroup_read_u64(h, "memory.limit_in_bytes", &cur);
        int r = 0;
        if (memsw && max > cur)
                r = write_limit(cg, h, "memory.memsw.limit_in_bytes", max, "-1");
        if (r >= 0)
                r = write_limit(cg, h, "memory.limit_in_bytes", max, "-1");
        if (r >= 0 && memsw && max <= cur)
                r = write_limit(cg, h, "memory.memsw.limit_in_bytes", max, "-1");
        return r;
}

static int set_tasks_max(CGroup *cg, uint64_t max)
{
        CGroupHierarchy *h = cgroup_find_controller(cg, "pids");
        if (!h)
                return max == UINT64_MAX ? 0 : no_controller(cg, "pids");
        return write_limit(cg, h, "pids.max", max, "max");
}

static int set_cpu_quota(CGroup *cg, uint64_t per_sec_usec)
{
        CGroupHierarchy *h = cgroup_find_controller(cg, "cpu");
        if (!h)
                return per_sec_usec == UINT64_MAX ? 0 : no_controller(cg, "cpu");

        uint64_t quota = per_sec_usec == UINT64_MAX
                             ? UINT64_MAX
                             : cgroup_cpu_quota_to_period_quota(per_sec_usec, CGROUP_CPU_PERIOD_USEC);
        if (!h->controllers) {
                char buf[64];
                if (quota == UINT64_MAX)
                        snprintf(buf, sizeof(buf), "max %" PRIu64, CGROUP_CPU_PERIOD_USEC);
                else
                        snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64, quota, CGROUP_CPU_PERIOD_USEC);
                int r = cgroup_write(h, "cpu.max", buf);
                if (r < 0)
                        return log_machine_error_errno(cg->name, r, "write %s/cpu.max: %m", h->dir);
                return 0;
        }
        int r = write_limit(cg, h, "cpu.cfs_period_us", CGROUP_CPU_PERIOD_USEC, "-1");
        if (r >= 0)
                r = write_limit(cg, h, "cpu.cfs_quota_us", quota, "-1");
        return r;
}

/* fresh: a cgroup just made is unlimited, so only the limits that are set need writing. */
static int set_limits(CGroup *cg, const CGroupLimits *limits, bool fresh)
{
        int r = 0;
        if (!fresh || limits->memory_max != UINT64_MAX)
                r = set_memory_max(cg, limits->memory_max);
        if (r >= 0 && (!fresh || limits->tasks_max != UINT64_MAX))
                r = set_tasks_max(cg, limits->tasks_max);
        if (r >= 0 && (!fresh || limits->cpu_quota_per_sec_usec != UINT64_MAX))
                r = set_cpu_quota(cg, limits->cpu_quota_per_sec_usec);
        return r;
}

int cgroup_direct_boost_setup(CGroup *cg, bool on)
{
        CGroupHierarchy *h = cgroup_find_controller(cg, "cpu");
        if (!h)
                return 0;
        /* The highest weight while the set-up runs, the default (no CPUWeight= setting exists) after. */
        int r = h->controllers ? cgroup_write_u64(h, "cpu.shares", on ? 262144 : 1024)
                               : cgroup_write_u64(h, "cpu.weight", on ? 10000 : 100);
        if (r < 0)
                log_machine_warning_errno(cg->name, r, "set the CPU weight of %s for the set-up: %m", h->dir);
        return r;
}

int cgroup_direct_set_limits(CGroup *cg, const CGroupLimits *limits)
{
        return set_limits(cg, limits, false);
}

int cgroup_direct_destroy(CGroup *cg)
{
        int r = cgroup_is_empty(cg);
        if (r < 0)
                return log_machine_error_errno(cg->name, r, "check cgroup %s for processes: %m",
                                               cgroup_path(cg));
        if (r == 0)
                return -EBUSY;
        r = cgroup_remove_dirs(cg);
        if (r < 0)
                return log_machine_error_errno(cg->name, r, "remove cgroup %s: %m", cgroup_path(cg));
        return 0;
}
