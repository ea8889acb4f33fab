/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by cgroup.c (backend-independent parts), cgroup-direct.c and cgroup-systemd.c. Not for other
 * callers. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "cgroup.h"
#include "util.h"

typedef struct CGroupHierarchy {
        char *controllers; /* NULL for cgroup2, else the v1 list as in /proc/self/cgroup: "cpu,cpuacct" */
        char *dir;         /* absolute host path of the container's cgroup directory */
        char *path;        /* the same cgroup relative to the hierarchy root, for status output */
        /* dir/payload, where the guest runs; NULL when there is none (state from an older daemon). The limits
         * stay on dir: the guest's cgroup namespace is rooted at payload, so a privileged guest that mounts
         * a hierarchy can only write payload's limits, and dir's still bound the whole subtree. */
        char *payload;
} CGroupHierarchy;

#define CGROUP_PAYLOAD "payload"
/* Direct mode: the parent of every container's cgroup, below the daemon's own. */
#define CGROUP_DIRECT_SLICE "machine.slice"

struct CGroup {
        CGroupBackend backend;
        char *name;
        CGroupHierarchy *hierarchies;
        size_t n_hierarchies;
        int unified_fd;
        /* direct backend: some of its directories existed before we made them (a crashed daemon's) */
        bool leftover;

        /* systemd backend only */
        char *unit;
        sd_bus *bus;
};

#define CGROUP_CPU_PERIOD_USEC UINT64_C(100000)

CGroup *cgroup_new(CGroupBackend backend, const char *name);
int cgroup_add_hierarchy(CGroup *cg, const char *controllers, const char *dir, const char *path);
int cgroup_open_unified(CGroup *cg);

/* The cgroup2 hierarchy, or the one v1 hierarchy that carries controller; NULL if neither has it. On cgroup2
 * a controller counts only when it is enabled for the container's directory. */
CGroupHierarchy *cgroup_find_controller(CGroup *cg, const char *controller);
CGroupHierarchy *cgroup_find_unified(CGroup *cg);
int cgroup_read_u64(CGroupHierarchy *h, const char *file, uint64_t *ret);
int cgroup_write(CGroupHierarchy *h, const char *file, const char *value);
int cgroup_write_u64(CGroupHierarchy *h, const char *file, uint64_t value);

/* Pure helpers, unit-tested. */
bool cgroup_list_contains(const char *list, const char *separators, const char *word);
bool cgroup_controller_list_contains(const char *list, const char *controller);
/* "ID:CONTROLLERS:PATH" from /proc/PID/cgroup; *ret_controllers is NULL for the cgroup2 line "0::PATH". */
int cgroup_parse_proc_line(const char *line, char **ret_controllers, char **ret_path);
/* Looks up "KEY VALUE" in a flat-keyed file (cpu.stat, memory.events, cgroup.events). */
int cgroup_parse_keyed(const char *text, const char *key, uint64_t *ret);
/* "max" (v2), "-1" (v1), and v1 memory's page-rounded "unlimited" all become UINT64_MAX. */
int cgroup_parse_limit(const char *s, uint64_t *ret);
uint64_t cgroup_cpu_quota_to_period_quota(uint64_t per_sec_usec, uint64_t period_usec);

/* One entry per mounted hierarchy we are in: <own cgroup>/machine-NAME.scope, or, given fixed_path (a path
 * from a hierarchy's root, e.g. a unit's ControlGroup), that path wherever it exists. */
int cgroup_discover(CGroup *cg, const char *fixed_path);

/* Makes dir/payload in every hierarchy (v1 cpuset: with the parent's cpus/mems) and records it. */
int cgroup_make_payload(CGroup *cg);
/* Gives payload the cgroup2 controllers its parent has; once no process is left in the parent itself. */
void cgroup_enable_payload_controllers(CGroup *cg);
/* Enables for dir's children every cgroup2 controller in wanted (NULL: all that dir has) that dir has and
 * does not enable yet; best effort, failures are logged at level (LOG_WARNING, LOG_DEBUG). dir must hold
 * no processes. */
void cgroup_enable_subtree_controllers(const char *dir, const char *const *wanted, int level);
int cgroup_copy_cpuset_from_parent(const char *dir);

int cgroup_direct_set_limits(CGroup *cg, const CGroupLimits *limits);
int cgroup_direct_destroy(CGroup *cg);
int cgroup_attach_dirs(CGroup *cg, pid_t pid);
/* Depth-first rmdir of every container directory; the guest's own sub-cgroups go first. */
int cgroup_remove_dirs(CGroup *cg);

int cgroup_systemd_set_limits(CGroup *cg, const CGroupLimits *limits);
int cgroup_systemd_destroy(CGroup *cg);
