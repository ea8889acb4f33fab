/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Systemd mode on a host whose PID 1 is systemd (e.g. inside `systemd-nspawn --boot`): the scope is created
 * around a process with the limits as unit properties, limits change at run time, and it goes away. */

#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>

#include "cgroup-internal.h"
#include "log.h"
#include "names.h"

#define MiB (UINT64_C(1024) * 1024)

static pid_t child = -1;
static CGroup *cg;

#define ASSERT(expr)                                                                                        \
        do {                                                                                                \
                if (!(expr)) {                                                                              \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr);        \
                        if (child > 0)                                                                      \
                                kill(child, SIGKILL);                                                       \
                        if (cg)                                                                             \
                                cgroup_kill(cg, SIGKILL);                                                   \
                        exit(1);                                                                            \
                }                                                                                           \
        } while (0)

static uint64_t unit_property(sd_bus *bus, const char *unit, const char *iface, const char *prop)
{
        _cleanup_free_ char *path = NULL;
        ASSERT(sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &path) >= 0);
        uint64_t v = 0;
        ASSERT(sd_bus_get_property_trivial(bus, "org.freedesktop.systemd1", path, iface, prop, NULL, 't',
                                           &v) >= 0);
        return v;
}

static void check_limits(sd_bus *bus, const char *unit, uint64_t mem, uint64_t cpu, uint64_t tasks)
{
        const char *iface = "org.freedesktop.systemd1.Scope";
        ASSERT(unit_property(bus, unit, iface, "MemoryMax") == mem);
        ASSERT(unit_property(bus, unit, iface, "CPUQuotaPerSecUSec") == cpu);
        ASSERT(unit_property(bus, unit, iface, "TasksMax") == tasks);
}

int main(void)
{
        if (geteuid() != 0 || access("/run/systemd/system", F_OK) < 0) {
                fprintf(stderr, "needs root on a systemd host, skipping\n");
                return 77;
        }
        log_set_program("test-cgroup-systemd");

        sd_bus *bus = NULL;
        ASSERT(sd_bus_open_system(&bus) >= 0);

        child = fork();
        ASSERT(child >= 0);
        if (child == 0) {
                pause();
                _exit(0);
        }

        char name[64], expected[192];
        _cleanup_free_ char *escaped = NULL;
        snprintf(name, sizeof(name), "cgtest-%d", (int)getpid());
        /* The unit name escapes the '-' of the machine name (machine-cgtest\x2d123.scope). */
        ASSERT(machine_scope_unit_name(name, &escaped) >= 0);
        snprintf(expected, sizeof(expected), "/machine.slice/%s", escaped);

        CGroupLimits limits = {.memory_max = 64 * MiB, .cpu_quota_per_sec_usec = 200000, .tasks_max = 20};
        _cleanup_free_ char *error = NULL;
        ASSERT(cgroup_systemd_create(bus, name, "cgroup test", child, &limits, &cg, &error) >= 0);
        _cleanup_free_ char *unit = strdup(cgroup_unit(cg));
        ASSERT(unit);
        fprintf(stderr, "scope %s at %s (%s)\n", unit, cgroup_path(cg), strempty(cgroup_unified_path(cg)));
        ASSERT(streq(cgroup_path(cg), expected));
        ASSERT(cgroup_backend(cg) == CGROUP_BACKEND_SYSTEMD);
        ASSERT(cgroup_attach(cg, child) >= 0);
        /* Moved from the scope into payload/ in every hierarchy: the scope itself holds no process. */
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                _cleanup_free_ char *p = NULL, *q = NULL, *procs = NULL, *scope_procs = NULL;
                ASSERT(cg->hierarchies[i].payload);
                ASSERT(asprintf(&p, "%s/cgroup.procs", cg->hierarchies[i].payload) >= 0);
                ASSERT(read_full_file(p, &procs, NULL) >= 0);
                ASSERT(atoi(procs) == child);
                ASSERT(asprintf(&q, "%s/cgroup.procs", cg->hierarchies[i].dir) >= 0);
                ASSERT(read_full_file(q, &scope_procs, NULL) >= 0);
                ASSERT(scope_procs[0] == 0);
        }
        check_limits(bus, unit, 64 * MiB, 200000, 20);

        CGroupUsage u;
        ASSERT(cgroup_get_usage(cg, &u) >= 0);
        fprintf(stderr, "usage: memory %" PRIu64 " cpu %" PRIu64 " tasks %" PRIu64 "\n", u.memory_current,
                u.cpu_usage_nsec, u.tasks_current);

        /* The same name again: systemd refuses, and the reason reaches the caller. */
        CGroup *dup = NULL;
        _cleanup_free_ char *dup_error = NULL;
        ASSERT(cgroup_systemd_create(bus, name, "dup", getpid(), NULL, &dup, &dup_error) < 0);
        fprintf(stderr, "duplicate refused: %s\n", strempty(dup_error));
        ASSERT(dup_error && strstr(dup_error, unit));

        CGroupLimits changed = {
            .memory_max = 128 * MiB, .cpu_quota_per_sec_usec = UINT64_MAX, .tasks_max = 50};
        ASSERT(cgroup_set_limits(cg, &changed) >= 0);
        check_limits(bus, unit, 128 * MiB, UINT64_MAX, 50);

        /* A restarted daemon: state file round trip, then the bus again. */
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        ASSERT(f && cgroup_serialize(cg, f) >= 0 && fclose(f) == 0);
        CGroup *copy = NULL;
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '=');
                *eq = 0;
                ASSERT(cgroup_deserialize_item(&copy, name, line, eq + 1) == 1);
        }
        ASSERT(cgroup_deserialize_done(copy) >= 0 && cgroup_set_bus(copy, bus) >= 0);
        cgroup_free(cg);
        cg = copy;
        ASSERT(streq(cgroup_unit(cg), unit) && streq(cgroup_path(cg), expected));

        ASSERT(cgroup_destroy(cg) == -EBUSY);
        ASSERT(cgroup_kill(cg, SIGKILL) >= 0);
        siginfo_t si = {};
        ASSERT(waitid(P_PID, (id_t)child, &si, WEXITED) >= 0 && si.si_status == SIGKILL);
        child = -1;
        for (int i = 0; i < 200 && cgroup_is_empty(cg) == 0; i++)
                usleep(10000);
        /* -EBUSY until systemd is done with the empty scope (the daemon retries the same way). */
        int destroyed = -EBUSY;
        for (int i = 0; i < 500 && destroyed == -EBUSY; i++) {
                destroyed = cgroup_destroy(cg);
                if (destroyed == -EBUSY)
                        usleep(10000);
        }
        ASSERT(destroyed >= 0);
        for (size_t i = 0; i < cg->n_hierarchies; i++)
                ASSERT(access(cg->hierarchies[i].dir, F_OK) < 0);
        cg = cgroup_free(cg);
        sd_bus_flush_close_unref(bus);
        fprintf(stderr, "systemd cgroup test passed\n");
        return 0;
}
