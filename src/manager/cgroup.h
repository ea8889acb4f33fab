/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One cgroup interface over two backends, chosen once at daemon start:
 *   direct  (cgroup-direct.c):  mkdir below the daemon's own cgroup in every mounted hierarchy
 *                               (cgroup2, and the v1 memory/pids/cpu/cpuacct/... hierarchies of a
 *                               hybrid host); limits written to the controller files.
 *   systemd (cgroup-systemd.c): a transient machine-NAME.scope in machine.slice (Delegate=yes),
 *                               limits as unit properties.
 * Callers never look at hierarchies themselves. */

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct CGroupLimits {
        uint64_t memory_max;             /* bytes, UINT64_MAX = no limit */
        uint64_t cpu_quota_per_sec_usec; /* UINT64_MAX = no limit */
        uint64_t tasks_max;              /* UINT64_MAX = no limit */
} CGroupLimits;

typedef struct CGroupUsage {
        uint64_t memory_current; /* UINT64_MAX when unknown */
        uint64_t cpu_usage_nsec;
        uint64_t tasks_current;
} CGroupUsage;

typedef struct CGroup CGroup;
typedef struct sd_bus sd_bus;

typedef enum CGroupBackend {
        CGROUP_BACKEND_DIRECT,
        CGROUP_BACKEND_SYSTEMD,
} CGroupBackend;

/* Direct mode. Creates <own cgroup>/machine-NAME.scope in every hierarchy the daemon is in
 * (/proc/self/cgroup), applies limits. Fails with -EEXIST if it exists and is not empty. */
int cgroup_direct_create(const char *name, const CGroupLimits *limits, CGroup **ret);
/* The same in two steps, so that the caller can record the cgroup (cgroup_serialize) before anything of it
 * exists: a daemon killed while making it then leaves a state file from which the next one removes the
 * partial cgroup. prepare only looks (discovery, the -EEXIST check); realize makes the directories and
 * applies limits, removing what it made on failure. */
int cgroup_direct_prepare(const char *name, CGroup **ret);
int cgroup_direct_realize(CGroup *cg, const CGroupLimits *limits);
/* The guest's set-up (clone -> exec of its init) runs in the guest's own cgroup, where on a busy host it
 * would get one guest's share of the CPU among all the booting ones, while the daemon waits for it. With
 * on, the scope's CPU weight is the highest there is; off puts the default back once init has exec'd. */
int cgroup_direct_boost_setup(CGroup *cg, bool on);
/* Removes the direct mode's machine.slice if no container is left in it (at exit). */
void cgroup_direct_remove_slice(void);

/* Systemd mode. Starts the transient unit machine-NAME.scope in machine.slice (Delegate=yes, the limits as
 * unit properties) holding pid, and waits for its start job. On failure *ret_error (if given) gets systemd's
 * reason as text, to be passed on to the user. */
int cgroup_systemd_create(sd_bus *bus, const char *name, const char *description, pid_t pid,
                          const CGroupLimits *limits, CGroup **ret, char **ret_error);
/* The same, with the signal that powers the guest off (0: SIGRTMIN+4) as the scope's KillSignal=, so that
 * stopping the scope (host shutdown, systemctl stop) shuts the guest down instead of killing it. */
int cgroup_systemd_create_full(sd_bus *bus, const char *name, const char *description, pid_t pid,
                               const CGroupLimits *limits, int kill_signal, CGroup **ret, char **ret_error);
/* The same without waiting: returns once StartTransientUnit is sent, and calls done from the bus's event loop
 * with the new CGroup (owned by the callee) or NULL, a negative errno and systemd's reason as text. Until
 * then the start can be cancelled, which frees it without calling done. bus must be attached to an event
 * loop. */
typedef struct CGroupSystemdStart CGroupSystemdStart;
typedef void (*CGroupSystemdDone)(CGroup *cg, int r, const char *error, void *userdata);
int cgroup_systemd_create_async(sd_bus *bus, const char *name, const char *description, pid_t pid,
                                const CGroupLimits *limits, int kill_signal, CGroupSystemdDone done,
                                void *userdata, CGroupSystemdStart **ret);
CGroupSystemdStart *cgroup_systemd_start_cancel(CGroupSystemdStart *s);
/* A deserialized systemd-mode CGroup needs the bus again before set_limits/destroy. */
int cgroup_set_bus(CGroup *cg, sd_bus *bus);

CGroupBackend cgroup_backend(CGroup *cg);
const char *cgroup_unit(CGroup *cg); /* "machine-NAME.scope" in systemd mode, NULL in direct mode */

/* The cgroup_* functions log their own failures with the step that failed (tagged with the machine's
 * name); callers need not log them again. */

/* The container's cgroup (machine-NAME.scope) carries the limits; processes run in its payload/ child in
 * every hierarchy, which becomes the guest's cgroup namespace root. Usage, kill, emptiness and removal
 * cover the whole subtree. */

/* O_DIRECTORY fd of the container's cgroup2 payload directory, for clone3(CLONE_INTO_CGROUP); -1 if the
 * host has no cgroup2 hierarchy. Owned by the CGroup. */
int cgroup_clone_fd(CGroup *cg);

/* Puts pid into the container's payload cgroup in every hierarchy it is not in yet (the v1 hierarchies after
 * a CLONE_INTO_CGROUP clone; all of them in systemd mode, where the scope is created with this pid). */
int cgroup_attach(CGroup *cg, pid_t pid);

/* The host paths of the container's payload cgroup.procs files in every hierarchy, for a process that must
 * join them itself before it forks (shell sessions). A strv. */
int cgroup_procs_paths(CGroup *cg, char ***ret);

int cgroup_set_limits(CGroup *cg, const CGroupLimits *limits);
int cgroup_get_limits(CGroup *cg, CGroupLimits *ret);
int cgroup_get_usage(CGroup *cg, CGroupUsage *ret);

/* SIGKILL (or sig) to every process in the container's cgroup (cgroup.kill where available). */
int cgroup_kill(CGroup *cg, int sig);

/* 1 when no process is left in it (cgroup.events populated=0 / empty cgroup.procs everywhere). */
int cgroup_is_empty(CGroup *cg);

/* Removes the whole subtree (the guest's own sub-cgroups first) in every hierarchy. -EBUSY if processes
 * remain. */
int cgroup_destroy(CGroup *cg);

/* Host path of the container's cgroup in the cgroup2 hierarchy ("/sys/fs/cgroup/unified/..."), and the
 * path relative to the hierarchy root ("/process_api/x/machine-foo.scope"), for status output. */
const char *cgroup_unified_path(CGroup *cg);
const char *cgroup_path(CGroup *cg);
/* Host path of the cgroup2 directory the guest runs in and sees as its cgroup namespace root:
 * <unified path>/payload (the unified path itself for a cgroup an older daemon made). The directory to
 * delegate to a PrivateUsers guest; the limits stay above it, out of the guest's reach. */
const char *cgroup_payload_path(CGroup *cg);

/* The state file (/run/machinemgr/machines/NAME) keeps enough to find the cgroup again after a daemon
 * restart: serialize writes "CGROUP_...=..." lines; deserialize takes them back (unknown keys ignored). */
int cgroup_serialize(CGroup *cg, FILE *f);
/* Creates *cg on the first CGROUP_ key; returns 1 when the key was one of ours, 0 when it was not. */
int cgroup_deserialize_item(CGroup **cg, const char *name, const char *key, const char *value);
int cgroup_deserialize_done(CGroup *cg); /* opens fds; -ENOENT if the cgroup is gone */

CGroup *cgroup_free(CGroup *cg); /* frees memory and fds; never touches the hierarchy */
static inline void cgroup_freep(CGroup **cg)
{
        if (*cg)
                cgroup_free(*cg);
}
