/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Systemd mode: the container's cgroup is the transient unit machine-NAME.scope in machine.slice, so systemd
 * knows what runs there, shows it in systemctl/journalctl, and applies the limits and the device policy as
 * unit properties. With Delegate=yes the subtree below the scope is ours (and the guest's), which is why the
 * generic code in cgroup.c can read usage, kill and check emptiness straight from the scope's directories,
 * and why the guest can run in the scope's payload/ child, below the limits systemd wrote on the scope. */

#include <signal.h>
#include <time.h>

#include "cgroup-internal.h"
#include "log.h"
#include "names.h"

#define SYSTEMD_DEST "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define JOB_TIMEOUT_USEC (30 * UINT64_C(1000000))
/* A Debian guest powers off in a few seconds; the host's shutdown must not wait systemd's default 90 s. */
#define SCOPE_STOP_TIMEOUT_USEC (30 * UINT64_C(1000000))

static void bus_message_unrefp(sd_bus_message **m)
{
        sd_bus_message_unref(*m);
}

static void bus_slot_unrefp(sd_bus_slot **s)
{
        sd_bus_slot_unref(*s);
}

static const char *bus_error_text(const sd_bus_error *error, int r)
{
        return sd_bus_error_is_set(error) && error->message ? error->message : strerror(r < 0 ? -r : r);
}

static int append_limits(sd_bus_message *m, const CGroupLimits *limits)
{
        int r = 0;
        if (limits->memory_max != UINT64_MAX) {
                r = sd_bus_message_append(m, "(sv)", "MemoryMax", "t", limits->memory_max);
                /* Like direct mode: swap does not extend MemoryMax (ignored by systemd on v1 hosts). */
                if (r >= 0)
                        r = sd_bus_message_append(m, "(sv)", "MemorySwapMax", "t", UINT64_C(0));
        } else
                r = sd_bus_message_append(m, "(sv)", "MemoryMax", "t", UINT64_MAX);
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "CPUQuotaPerSecUSec", "t",
                                          limits->cpu_quota_per_sec_usec);
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "TasksMax", "t", limits->tasks_max);
        return r;
}

typedef struct JobWait {
        const char *job;
        char *result;
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        JobWait *w = userdata;
        uint32_t id;
        const char *path, *unit, *result;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->job && streq(path, w->job) && !w->result)
                w->result = strdup(result);
        return 0;
}

static int wait_for_job(sd_bus *bus, JobWait *w)
{
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + JOB_TIMEOUT_USEC;
        while (!w->result) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* How stopping the scope ends the guest: the host's shutdown stops machine-NAME.scope (as does
 * `systemctl stop` of it, or machinectl terminate), and systemd's default SIGTERM would make the guest's
 * systemd re-execute itself rather than shut down, so the stop would hang until TimeoutStopSec and end in
 * SIGKILL. KillSignal= is the guest's power-off signal instead. KillMode=control-group, not nspawn's mixed:
 * a scope has no main process here (systemd < 255), so mixed would send nothing and go straight to SIGKILL.
 * Every guest process gets the signal; init takes it as "power off", and the others (which do not handle
 * it) end at once, so the guest's shutdown is quick. TimeoutStopSec bounds the wait before SIGKILL, so a
 * guest that ignores the signal cannot hold up the host's shutdown for long.
 * Ordering at shutdown (stop jobs run in reverse): machinemgr@NAME.service first (Before= it: it powers its
 * guest off gracefully through the daemon), then this scope, then machinemgrd (After= it): the daemon must
 * outlive the guest, since with it and its fd store gone the guest's console gives EIO and its systemd
 * shuts down at one console retry per second. The ordering costs nothing at start: the daemon only makes
 * scopes once it has sent READY=1, and the instance's start job is already running by then. */
static int append_stop_properties(sd_bus_message *m, const char *unit, int kill_signal)
{
        /* machine-ESCAPED.scope -> machinemgr@ESCAPED.service: instance names are escaped the same way. */
        _cleanup_free_ char *instance = NULL;
        size_t l = strlen(unit);
        if (asprintf(&instance, "machinemgr@%.*s.service", (int)(l - strlen("machine-") - strlen(".scope")),
                     unit + strlen("machine-")) < 0)
                return -ENOMEM;
        /* CollectMode: a scope that failed (a guest SIGKILLed after TimeoutStopSec) would otherwise stay
         * loaded until someone resets it, and every later start of the machine would fail ("already
         * loaded"); the machine's own record keeps the result. */
        return sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)", "KillSignal", "i",
                                     kill_signal > 0 ? kill_signal : SIGRTMIN + 4, "KillMode", "s", "control-group",
                                     "SendSIGKILL", "b", 1, "TimeoutStopUSec", "t", SCOPE_STOP_TIMEOUT_USEC,
                                     "After", "as", 1, "machinemgrd.service", "Before", "as", 1, instance,
                                     "CollectMode", "s", "inactive-or-failed");
}

/* The device policy of direct mode (restrict_devices() in cgroup-direct.c), as DevicePolicy=closed +
 * DeviceAllow= on the scope: a privileged guest (PrivateUsers=no) has CAP_MKNOD and could otherwise open
 * any host device it makes a node for. It goes on the scope, above payload/ (the guest's cgroup namespace
 * root), for the same reason as the limits: a guest root that reaches its own cgroup can only narrow what
 * its parent allows (v1 devices lists are inherited and bounded by the parent's; BPF device programs of
 * every ancestor all have to allow). Set for every guest, like direct mode: an unprivileged one cannot open
 * host devices anyway, and loses nothing. systemd picks the mechanism: the v1 devices controller on
 * hybrid/legacy hosts, a BPF_CGROUP_DEVICE program on unified ones. Where it can use neither (a systemd in
 * a container whose v1 hierarchies are read-only, such as the nspawn test host, or where bpf() is
 * filtered), systemd 252 leaves the devices controller out of what it supports when it starts and the
 * policy is only a property: it changes nothing at start or stop there, so it is safe to set
 * unconditionally (tests/systemd/test-devices.sh covers all three cases). If systemd refused a property the
 * start would fail rather than run the guest without a policy. /dev/char/MAJ:MIN entries are parsed without
 * a stat(), so a node missing on the host (tun, fuse not loaded) still has its entry; `m` for every
 * char/block node because making a node is harmless, opening it is what counts. */
static const struct {
        const char *node, *access;
} device_allow[] = {
        { "/dev/char/1:3", "rwm" },  { "/dev/char/1:5", "rwm" },   { "/dev/char/1:7", "rwm" },
        { "/dev/char/1:8", "rwm" },  { "/dev/char/1:9", "rwm" },   { "/dev/char/5:0", "rwm" },
        { "/dev/char/5:1", "rwm" },  { "/dev/char/5:2", "rwm" },   { "char-pts", "rwm" },
        { "/dev/char/10:200", "rwm" }, { "/dev/char/10:229", "rwm" }, { "char-*", "m" },
        { "block-*", "m" },
};

static int append_device_policy(sd_bus_message *m)
{
        int r = sd_bus_message_append(m, "(sv)", "DevicePolicy", "s", "closed");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "DeviceAllow");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(ss)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(ss)");
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(device_allow); i++)
                r = sd_bus_message_append(m, "(ss)", device_allow[i].node, device_allow[i].access);
        for (int i = 0; r >= 0 && i < 3; i++)
                r = sd_bus_message_close_container(m);
        return r;
}

static int build_start_message(sd_bus *bus, const char *unit, const char *description, pid_t pid,
                               const CGroupLimits *limits, int kill_signal, sd_bus_message **ret)
{
        _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                               "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)", "Slice", "s", "machine.slice",
                                          "Description", "s", strempty(description), "Delegate", "b", 1,
                                          "PIDs", "au", 1, (uint32_t)pid);
        if (r >= 0 && limits)
                r = append_limits(m, limits);
        if (r >= 0)
                r = append_stop_properties(m, unit, kill_signal);
        if (r >= 0)
                r = append_device_policy(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static int start_scope(sd_bus *bus, const char *unit, const char *description, pid_t pid,
                       const CGroupLimits *limits, int kill_signal, sd_bus_error *error, char **ret_result)
{
        /* Subscribe before the call: the job may finish before StartTransientUnit's reply is read. */
        JobWait w = {};
        _cleanup_(bus_slot_unrefp) sd_bus_slot *slot = NULL;
        int r = sd_bus_match_signal(bus, &slot, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "JobRemoved",
                                    on_job_removed, &w);
        if (r < 0)
                return r;

        _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        r = build_start_message(bus, unit, description, pid, limits, kill_signal, &m);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, error, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &w.job);
        if (r < 0)
                return r;
        r = wait_for_job(bus, &w);
        if (r < 0)
                return r;
        *ret_result = w.result;
        return 0;
}

static int get_control_group(sd_bus *bus, const char *unit, sd_bus_error *error, char **ret)
{
        _cleanup_(bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "GetUnit", error,
                                   &reply, "s", unit);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        return sd_bus_get_property_string(bus, SYSTEMD_DEST, path, "org.freedesktop.systemd1.Scope",
                                          "ControlGroup", error, ret);
}

static void set_error(char **ret_error, const char *what, const char *unit, const char *why)
{
        if (ret_error && asprintf(ret_error, "%s %s: %s", what, unit, why) < 0)
                *ret_error = NULL;
}

/* The scope has started with pid in it: find its directories and move pid down into payload/. */
static int scope_take_cgroup(CGroup *cg, const char *control_group, pid_t pid)
{
        int r = cgroup_discover(cg, control_group);
        if (r < 0)
                return log_machine_error_errno(cg->name, r, "find the cgroup of %s (%s): %m", cg->unit,
                                               control_group);

        /* The pid is still waiting before it unshares its cgroup namespace: move it to payload/ in every
         * hierarchy systemd made the scope in, so that the namespace is rooted below the scope's limits.
         * Delegate=yes makes the subtree ours; the scope's cgroup2 dir holds no process afterwards, as a
         * delegated cgroup with children must. */
        r = cgroup_make_payload(cg);
        if (r < 0)
                return r;
        r = cgroup_attach_dirs(cg, pid);
        if (r < 0)
                return log_machine_error_errno(cg->name, r, "move PID %d into %s/" CGROUP_PAYLOAD ": %m",
                                               (int)pid, control_group);
        cgroup_enable_payload_controllers(cg);
        r = cgroup_open_unified(cg);
        if (r < 0)
                return log_machine_error_errno(cg->name, r, "open %s: %m", cgroup_payload_path(cg));
        return 0;
}

int cgroup_systemd_create(sd_bus *bus, const char *name, const char *description, pid_t pid,
                          const CGroupLimits *limits, CGroup **ret, char **ret_error)
{
        return cgroup_systemd_create_full(bus, name, description, pid, limits, 0, ret, ret_error);
}

int cgroup_systemd_create_full(sd_bus *bus, const char *name, const char *description, pid_t pid,
                               const CGroupLimits *limits, int kill_signal, CGroup **ret, char **ret_error)
{
        _cleanup_(cgroup_freep) CGroup *cg = cgroup_new(CGROUP_BACKEND_SYSTEMD, name);
        if (!cg || machine_scope_unit_name(name, &cg->unit) < 0)
                return -ENOMEM;
        cg->bus = sd_bus_ref(bus);

        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *result = NULL, *control_group = NULL;
        int r = start_scope(bus, cg->unit, description, pid, limits, kill_signal, &error, &result);
        if (r < 0) {
                set_error(ret_error, "start", cg->unit, bus_error_text(&error, r));
                log_machine_error_errno(name, r, "start %s: %s", cg->unit, bus_error_text(&error, r));
                sd_bus_error_free(&error);
                return r;
        }
        if (!streq(result, "done")) {
                set_error(ret_error, "start", cg->unit, result);
                return log_machine_error_errno(name, EIO, "start %s: job result: %s", cg->unit, result);
        }

        r = get_control_group(bus, cg->unit, &error, &control_group);
        if (r < 0) {
                set_error(ret_error, "read ControlGroup of", cg->unit, bus_error_text(&error, r));
                log_machine_error_errno(name, r, "read ControlGroup of %s: %s", cg->unit,
                                        bus_error_text(&error, r));
                sd_bus_error_free(&error);
                return r;
        }
        r = scope_take_cgroup(cg, control_group, pid);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cg);
        return 0;
}

/* --- the same without blocking the caller's event loop --- */

struct CGroupSystemdStart {
        CGroup *cg;
        pid_t pid;
        char *job;
        /* JobRemoved seen before our job's path was known: "PATH RESULT" (systemd replies before the job
         * can finish, but a reply read late must not lose the signal). */
        char **early;
        sd_bus_slot *job_slot, *call_slot;
        CGroupSystemdDone done;
        void *userdata;
};

CGroupSystemdStart *cgroup_systemd_start_cancel(CGroupSystemdStart *s)
{
        if (!s)
                return NULL;
        sd_bus_slot_unref(s->job_slot);
        sd_bus_slot_unref(s->call_slot);
        cgroup_free(s->cg);
        free(s->job);
        strv_free(s->early);
        free(s);
        return NULL;
}

static void start_finish(CGroupSystemdStart *s, int r, const char *what, const char *why)
{
        _cleanup_free_ char *text = NULL;
        CGroup *cg = NULL;
        /* Not logged here: the caller logs the failure once, with the machine's start. */
        if (r < 0) {
                if (asprintf(&text, "%s %s: %s", what, s->cg->unit, why) < 0)
                        text = NULL;
        } else
                cg = TAKE_PTR(s->cg);
        CGroupSystemdDone done = s->done;
        void *userdata = s->userdata;
        cgroup_systemd_start_cancel(s);
        done(cg, r, text, userdata);
}

static int on_control_group(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        CGroupSystemdStart *s = userdata;
        const char *control_group;
        s->call_slot = sd_bus_slot_unref(s->call_slot);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e) {
                start_finish(s, -sd_bus_error_get_errno(e) ?: -EIO, "read ControlGroup of", bus_error_text(e, EIO));
                return 0;
        }
        int r = sd_bus_message_read(reply, "v", "s", &control_group);
        if (r < 0) {
                start_finish(s, r, "read ControlGroup of", strerror(-r));
                return 0;
        }
        r = scope_take_cgroup(s->cg, control_group, s->pid);
        start_finish(s, r, "set up the cgroup of", r < 0 ? strerror(-r) : "");
        return 0;
}

static void start_job_done(CGroupSystemdStart *s, const char *result)
{
        s->job_slot = sd_bus_slot_unref(s->job_slot);
        if (!streq(result, "done")) {
                start_finish(s, -EIO, "start", result);
                return;
        }
        /* The unit's object path is its name, escaped: no GetUnit round trip needed. */
        _cleanup_free_ char *path = NULL;
        int r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", s->cg->unit, &path);
        if (r >= 0)
                r = sd_bus_call_method_async(s->cg->bus, &s->call_slot, SYSTEMD_DEST, path,
                                             "org.freedesktop.DBus.Properties", "Get", on_control_group, s, "ss",
                                             "org.freedesktop.systemd1.Scope", "ControlGroup");
        if (r < 0)
                start_finish(s, r, "read ControlGroup of", strerror(-r));
}

static int on_job_removed_async(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        CGroupSystemdStart *s = userdata;
        uint32_t id;
        const char *path, *unit, *result;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (s->job) {
                if (streq(path, s->job))
                        start_job_done(s, result);
                return 0;
        }
        if (streq(unit, s->cg->unit)) {
                char *e = NULL;
                if (asprintf(&e, "%s %s", path, result) >= 0 && strv_push(&s->early, e) < 0)
                        free(e);
        }
        return 0;
}

static int on_start_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        CGroupSystemdStart *s = userdata;
        const char *job;
        s->call_slot = sd_bus_slot_unref(s->call_slot);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e) {
                start_finish(s, -sd_bus_error_get_errno(e) ?: -EIO, "start", bus_error_text(e, EIO));
                return 0;
        }
        int r = sd_bus_message_read(reply, "o", &job);
        if (r >= 0 && !(s->job = strdup(job)))
                r = -ENOMEM;
        if (r < 0) {
                start_finish(s, r, "start", strerror(-r));
                return 0;
        }
        size_t l = strlen(s->job);
        STRV_FOREACH(x, s->early)
        if (strncmp(*x, s->job, l) == 0 && (*x)[l] == ' ') {
                start_job_done(s, *x + l + 1);
                return 0;
        }
        return 0;
}

int cgroup_systemd_create_async(sd_bus *bus, const char *name, const char *description, pid_t pid,
                                const CGroupLimits *limits, int kill_signal, CGroupSystemdDone done,
                                void *userdata, CGroupSystemdStart **ret)
{
        CGroupSystemdStart *s = calloc(1, sizeof(CGroupSystemdStart));
        if (!s)
                return -ENOMEM;
        *s = (CGroupSystemdStart){.pid = pid, .done = done, .userdata = userdata};
        s->cg = cgroup_new(CGROUP_BACKEND_SYSTEMD, name);
        if (!s->cg || machine_scope_unit_name(name, &s->cg->unit) < 0) {
                cgroup_systemd_start_cancel(s);
                return -ENOMEM;
        }
        s->cg->bus = sd_bus_ref(bus);

        /* The match goes to the bus before the call, so it is in place before the job can finish. */
        _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_match_signal_async(bus, &s->job_slot, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                          "JobRemoved", on_job_removed_async, NULL, s);
        if (r >= 0)
                r = build_start_message(bus, s->cg->unit, description, pid, limits, kill_signal, &m);
        if (r >= 0)
                r = sd_bus_call_async(bus, &s->call_slot, m, on_start_reply, s, 0);
        if (r < 0) {
                log_machine_error_errno(name, r, "start %s: %m", s->cg->unit);
                cgroup_systemd_start_cancel(s);
                return r;
        }
        *ret = s;
        return 0;
}

int cgroup_set_bus(CGroup *cg, sd_bus *bus)
{
        sd_bus_unref(cg->bus);
        cg->bus = sd_bus_ref(bus);
        return 0;
}

int cgroup_systemd_set_limits(CGroup *cg, const CGroupLimits *limits)
{
        if (!cg->bus)
                return log_machine_error_errno(cg->name, ENOTCONN, "set limits on %s: no bus: %m", cg->unit);

        _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_message_new_method_call(cg->bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                               "SetUnitProperties");
        if (r >= 0)
                r = sd_bus_message_append(m, "sb", cg->unit, 1);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = append_limits(m, limits);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return log_machine_error_errno(cg->name, r, "build SetUnitProperties: %m");

        sd_bus_error error = SD_BUS_ERROR_NULL;
        r = sd_bus_call(cg->bus, m, 0, &error, NULL);
        if (r < 0)
                log_machine_error_errno(cg->name, r, "SetUnitProperties %s: %s", cg->unit,
                                        bus_error_text(&error, r));
        sd_bus_error_free(&error);
        return r;
}

/* Whether systemd is done with the scope: 1 once it is gone (collected), 0 while it is still loaded (one
 * it still shows active, which an empty scope should not be, is stopped), a negative errno when systemd
 * cannot be asked: at the host's shutdown the system bus stops before this daemon does. */
static int scope_gone(CGroup *cg)
{
        _cleanup_(bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *state = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *path;
        int r = sd_bus_call_method(cg->bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "GetUnit", &error,
                                   &reply, "s", cg->unit);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                r = sd_bus_get_property_string(cg->bus, SYSTEMD_DEST, path, "org.freedesktop.systemd1.Unit",
                                               "ActiveState", &error, &state);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit"))
                        r = 1;
                else
                        log_machine_full(LOG_DEBUG, r, cg->name, "look up %s: %s", cg->unit,
                                         bus_error_text(&error, r));
                sd_bus_error_free(&error);
                return r;
        }
        if (streq(state, "active") || streq(state, "reloading") || streq(state, "activating")) {
                r = sd_bus_call_method(cg->bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "StopUnit",
                                       &error, NULL, "ss", cg->unit, "fail");
                if (r < 0 && !sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit"))
                        log_machine_warning_errno(cg->name, r, "StopUnit %s: %s", cg->unit,
                                                  bus_error_text(&error, r));
                sd_bus_error_free(&error);
        }
        return 0;
}

int cgroup_systemd_destroy(CGroup *cg)
{
        int r = cgroup_is_empty(cg);
        if (r < 0)
                return log_machine_error_errno(cg->name, r, "check %s for processes: %m", cg->unit);
        if (r == 0)
                return -EBUSY;

        /* Nothing is removed while systemd still has the scope: it learns that the scope is empty from the
         * scope's cgroup.events, and systemd 252 reads that file only after the inotify event; a directory
         * removed before then hides the empty scope from it for good (a stop it runs, e.g. `systemctl stop`
         * or the host's shutdown, then waits out TimeoutStopSec and leaves the unit failed, and the next
         * start of the machine fails with "already loaded"). systemd trims the scope's directories when it
         * is done; the caller retries on -EBUSY until then. */
        if (cg->bus) {
                r = scope_gone(cg);
                if (r == 0)
                        return -EBUSY;
                if (r < 0)
                        return 0; /* systemd still has it, or trims it when it is done */
        }
        /* Whatever systemd did not trim (the guest's sub-cgroups in hierarchies it does not manage). */
        r = cgroup_remove_dirs(cg);
        if (r < 0)
                return log_machine_error_errno(cg->name, r, "remove the cgroup of %s: %m", cg->unit);
        return 0;
}
