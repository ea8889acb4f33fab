/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Verbs that change a machine's state: start (with --wait/--follow), poweroff, reboot, terminate, kill,
 * set-limit. */

#include <netinet/in.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include "machinemgr.h"
#include "names.h"

static uint64_t limit_to_bus(uint64_t v)
{
        return v == LIMIT_INFINITY ? UINT64_MAX : v;
}

/* m == NULL: only validate. */
static int append_limit(sd_bus_message *m, const char *key, uint64_t v)
{
        if (v == LIMIT_UNSET || !m)
                return 0;
        return sd_bus_message_append(m, "{sv}", key, "t", limit_to_bus(v));
}

static int append_string(sd_bus_message *m, const char *key, const char *v)
{
        return v ? sd_bus_message_append(m, "{sv}", key, "s", v) : 0;
}

static int append_bool(sd_bus_message *m, const char *key, int v)
{
        return v >= 0 ? sd_bus_message_append(m, "{sv}", key, "b", v) : 0;
}

static int append_strv(sd_bus_message *m, const char *key, char **l)
{
        int r;

        if (!l)
                return 0;
        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, l);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_binds(sd_bus_message *m)
{
        int r;

        if (arg.n_binds == 0)
                return 0;
        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "Bind");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(ssb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(ssb)");
        for (size_t i = 0; r >= 0 && i < arg.n_binds; i++)
                r = sd_bus_message_append(m, "(ssb)", arg.binds[i].source, arg.binds[i].destination,
                                          (int)arg.binds[i].read_only);
        for (int k = 0; r >= 0 && k < 3; k++)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_ports(sd_bus_message *m)
{
        int r;

        if (arg.n_ports == 0)
                return 0;
        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "Port");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(sqq)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sqq)");
        for (size_t i = 0; r >= 0 && i < arg.n_ports; i++)
                r = sd_bus_message_append(m, "(sqq)", arg.ports[i].protocol == IPPROTO_UDP ? "udp" : "tcp",
                                          arg.ports[i].host_port, arg.ports[i].guest_port);
        for (int k = 0; r >= 0 && k < 3; k++)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_start_options(sd_bus_message *m)
{
        int r = sd_bus_message_open_container(m, 'a', "{sv}");

        if (r >= 0)
                r = append_limit(m, "MemoryMax", arg.memory_max);
        if (r >= 0)
                r = append_limit(m, "CPUQuotaPerSecUSec", arg.cpu_quota);
        if (r >= 0)
                r = append_limit(m, "TasksMax", arg.tasks_max);
        if (r >= 0)
                r = append_string(m, "Network", arg.network);
        if (r >= 0)
                r = append_string(m, "Bridge", arg.bridge);
        if (r >= 0)
                r = append_binds(m);
        if (r >= 0)
                r = append_ports(m);
        if (r >= 0)
                r = append_bool(m, "Ephemeral", arg.ephemeral);
        if (r >= 0)
                r = append_bool(m, "ReadOnly", arg.read_only);
        if (r >= 0)
                r = append_bool(m, "Boot", arg.boot);
        if (r >= 0)
                r = append_strv(m, "Command", arg.command);
        if (r >= 0)
                r = append_strv(m, "Environment", arg.environment);
        if (r >= 0)
                r = append_string(m, "PrivateUsers", arg.private_users);
        if (r >= 0)
                r = append_string(m, "Hostname", arg.hostname);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* ---- waiting for a machine to become ready or go away ---- */

typedef struct Waiter {
        sd_bus *bus;
        sd_event *event;
        const char *name;
        bool until_removed; /* else until State=running */
        bool running;
        bool removed;
        bool poweroff_sent;
        bool done;
        int error;
        sd_bus_slot *slots[2];
} Waiter;

static void waiter_done(Waiter *w)
{
        for (size_t i = 0; i < ELEMENTSOF(w->slots); i++)
                w->slots[i] = sd_bus_slot_unref(w->slots[i]);
        w->event = sd_event_unref(w->event);
}

static void waiter_check_done(Waiter *w)
{
        if (w->removed || (!w->until_removed && w->running))
                w->done = true;
}

static void waiter_set_state(Waiter *w, const char *state)
{
        if (streq(state, "running"))
                w->running = true;
        waiter_check_done(w);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Waiter *w = userdata;
        const char *iface, *key, *state;
        int r;

        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0 || !streq(iface, MM_MACHINE))
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0 && streq(key, "State")) {
                        r = sd_bus_message_read(m, "v", "s", &state);
                        if (r >= 0)
                                waiter_set_state(w, state);
                } else if (r >= 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        /* An invalidated State (no value sent) is not expected from machinemgrd; ignore it. */
        return 0;
}

static int on_machine_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Waiter *w = userdata;
        const char *name, *path;

        if (sd_bus_message_read(m, "so", &name, &path) >= 0 && streq(name, w->name)) {
                w->removed = true;
                waiter_check_done(w);
        }
        return 0;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Waiter *w = userdata;
        int r;

        if (w->poweroff_sent)
                return 0;
        /* systemctl stop machinemgr@NAME: power the guest off cleanly and wait for it to go. */
        r = sd_bus_call_method_async(w->bus, NULL, MM_SERVICE, MM_PATH, MM_MANAGER, "PowerOffMachine", NULL, NULL,
                                     "s", w->name);
        if (r < 0) {
                cli_error(w->name, "failed to request power-off: %s", strerror(-r));
                w->error = r;
                w->done = true;
                return 0;
        }
        w->poweroff_sent = true;
        w->until_removed = true;
        return 0;
}

static int waiter_init(Waiter *w, sd_bus *bus, const char *name, bool handle_signals)
{
        _cleanup_free_ char *path = NULL;
        int r;

        *w = (Waiter){ .bus = bus, .name = name };
        r = sd_bus_path_encode(MM_MACHINE_PREFIX, name, &path);
        if (r < 0)
                return r;

        /* No sender filter: on the private socket messages carry none. Asynchronous: the bus handles
         * our AddMatch before the StartMachine that follows it, so waiting for its reply would only add
         * a round trip to every start (a failed AddMatch closes the connection, which we would see). */
        r = sd_bus_match_signal_async(bus, &w->slots[0], NULL, path, "org.freedesktop.DBus.Properties",
                                      "PropertiesChanged", on_properties_changed, NULL, w);
        if (r >= 0)
                r = sd_bus_match_signal_async(bus, &w->slots[1], NULL, MM_PATH, MM_MANAGER, "MachineRemoved",
                                              on_machine_removed, NULL, w);
        if (r >= 0)
                r = sd_event_default(&w->event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0 && handle_signals) {
                sigset_t mask;

                sigemptyset(&mask);
                sigaddset(&mask, SIGTERM);
                sigaddset(&mask, SIGINT);
                sigprocmask(SIG_BLOCK, &mask, NULL);
                r = sd_event_add_signal(w->event, NULL, SIGTERM, on_stop_signal, w);
                if (r >= 0)
                        r = sd_event_add_signal(w->event, NULL, SIGINT, on_stop_signal, w);
        }
        if (r < 0) {
                cli_error(name, "failed to subscribe to machine events: %s", strerror(-r));
                waiter_done(w);
        }
        return r;
}

static int waiter_run(Waiter *w)
{
        int r;

        waiter_check_done(w);
        r = event_run_until(w->event, &w->done);
        if (r < 0) {
                cli_error(w->name, "failed waiting for the machine: %s", strerror(-r));
                return r;
        }
        w->done = false; /* --follow waits a second time */
        return w->error;
}

/* The machine is gone: how did it end? Returns the exit status to report. */
static int report_exit(sd_bus *bus, const char *name, bool failed_if_gone, bool poweroff_requested)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *result = NULL, *message = NULL, *what = NULL;
        uint64_t ts;
        int status, r;

        r = bus_machine_exit(bus, name, &result, &status, &ts, &message, &error);
        if (r < 0) {
                cli_bus_error(name, "failed to get exit status", &error, r);
                return 1;
        }
        if (machine_exit_describe(result, status, message, &what) < 0)
                return 1;

        if (failed_if_gone) {
                cli_error(name, "machine went away before it was ready: %s", what);
                return 1;
        }
        if (streq(result, "exited")) {
                if (status != 0 && !arg.quiet)
                        cli_error(name, "%s", what);
                return status;
        }
        /* The guest powered itself off (machinemgrd's reading of init killed by SIGINT): a clean end, so
         * machinemgr@.service ends inactive instead of failed and Restart=on-failure leaves it alone. */
        if (streq(result, "poweroff"))
                return 0;
        if (streq(result, "killed") && poweroff_requested)
                return 0; /* an init that dies from the power-off signal did what was asked */
        cli_error(name, "%s", what);
        return streq(result, "killed") ? 128 + status : 1;
}

static int fetch_state(sd_bus *bus, const char *name, char **ret)
{
        _cleanup_free_ char *path = NULL;
        int r = sd_bus_path_encode(MM_MACHINE_PREFIX, name, &path);

        if (r < 0)
                return r;
        return sd_bus_get_property_string(bus, MM_SERVICE, path, MM_MACHINE, "State", NULL, ret);
}

static int start_one(sd_bus *bus, const char *name)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *state = NULL;
        bool wait = arg.wait || arg.follow;
        bool until_exit = arg.boot == 0 && arg.wait && !arg.follow;
        Waiter w = {};
        int r, ret;

        /* Subscribe before starting, so that a fast guest cannot become ready (or die) unseen. */
        if (wait) {
                r = waiter_init(&w, bus, name, arg.follow);
                if (r < 0)
                        return r;
                w.until_removed = until_exit;
        }

        r = sd_bus_message_new_method_call(bus, &m, MM_SERVICE, MM_PATH, MM_MANAGER, "StartMachine");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = append_start_options(m);
        if (r < 0) {
                waiter_done(&w);
                cli_error(name, "failed to build the start request: %s", strerror(-r));
                return r;
        }

        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0 && arg.follow && sd_bus_error_has_name(&error, MM_ERROR_MACHINE_EXISTS)) {
                /* machinemgr@NAME.service started for a machine that already runs (started by hand, or
                 * the service was restarted while the guest stayed up): follow that one instead of
                 * failing, so the service tracks the guest either way. */
                if (!arg.quiet)
                        fprintf(stderr, "%s is already running, following it.\n", name);
                sd_bus_error_free(&error);
                r = 0;
        }
        if (r < 0) {
                waiter_done(&w);
                return cli_bus_error(name, "failed to start", &error, r);
        }
        if (!wait)
                return 0;

        if (!until_exit && fetch_state(bus, name, &state) >= 0)
                waiter_set_state(&w, state);

        r = waiter_run(&w);
        if (r < 0) {
                waiter_done(&w);
                return r;
        }

        if (until_exit || w.removed) {
                ret = report_exit(bus, name, !until_exit && !w.running, w.poweroff_sent);
                waiter_done(&w);
                return ret;
        }

        if (!arg.quiet && !arg.follow)
                fprintf(stderr, "%s is running.\n", name);
        if (!arg.follow) {
                waiter_done(&w);
                return 0;
        }

        (void)sd_notify(false, "READY=1");
        w.until_removed = true;
        r = waiter_run(&w);
        ret = r < 0 ? r : report_exit(bus, name, false, w.poweroff_sent);
        waiter_done(&w);
        return ret;
}

int start_check(char **args)
{
        if ((arg.follow || (arg.wait && arg.boot == 0)) && strv_length(args) != 2) {
                cli_error(NULL, "start: --follow and --no-boot --wait take exactly one machine");
                return -EINVAL;
        }
        return 0;
}

int verb_start(sd_bus *bus, char **args)
{
        int ret = 0;

        STRV_FOREACH(name, args + 1) {
                int r = start_one(bus, *name);
                if (r != 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

/* ---- poweroff, reboot, terminate, kill ---- */

static int call_for_each(sd_bus *bus, char **names, const char *method, const char *what)
{
        int ret = 0;

        STRV_FOREACH(name, names) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int r;

                if (streq(method, "KillMachine"))
                        r = sd_bus_call_method(bus, MM_SERVICE, MM_PATH, MM_MANAGER, method, &error, NULL, "ssi",
                                               *name, arg.kill_whom ?: "all", arg.signal ?: SIGTERM);
                else
                        r = sd_bus_call_method(bus, MM_SERVICE, MM_PATH, MM_MANAGER, method, &error, NULL, "s",
                                               *name);
                if (r < 0) {
                        r = cli_bus_error(*name, what, &error, r);
                        if (ret == 0)
                                ret = r;
                }
        }
        return ret;
}

/* Waits for every machine in names that was asked to power off to be gone. */
typedef struct RemovalWait {
        char **pending;
        bool done;
} RemovalWait;

static int on_removed_any(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        RemovalWait *rw = userdata;
        const char *name, *path;
        size_t j = 0;

        if (!rw->pending || sd_bus_message_read(m, "so", &name, &path) < 0)
                return 0;
        for (size_t i = 0; rw->pending[i]; i++) {
                if (streq(rw->pending[i], name))
                        free(rw->pending[i]);
                else
                        rw->pending[j++] = rw->pending[i];
        }
        rw->pending[j] = NULL;
        rw->done = j == 0;
        return 0;
}

static int still_running(sd_bus *bus, const char *name)
{
        _cleanup_free_ char *state = NULL;
        return fetch_state(bus, name, &state) >= 0;
}

int verb_poweroff(sd_bus *bus, char **args)
{
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_strv_free_ char **pending = NULL;
        RemovalWait rw = {};
        int r, ret;

        if (arg.wait) {
                r = sd_event_default(&event);
                if (r >= 0)
                        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
                if (r >= 0)
                        r = sd_bus_match_signal(bus, &slot, NULL, MM_PATH, MM_MANAGER, "MachineRemoved",
                                                on_removed_any, &rw);
                if (r < 0) {
                        cli_error(NULL, "failed to subscribe to machine events: %s", strerror(-r));
                        return r;
                }
        }

        ret = call_for_each(bus, args + 1, "PowerOffMachine", "failed to power off");
        if (!arg.wait)
                return ret;

        /* Only wait for those still there: one may have gone before our match saw it. */
        STRV_FOREACH(name, args + 1)
                if (still_running(bus, *name) && strv_extend(&pending, *name) < 0)
                        return -ENOMEM;
        if (!pending)
                return ret;
        rw.pending = pending;
        r = event_run_until(event, &rw.done);
        if (r < 0) {
                cli_error(NULL, "failed waiting for power-off: %s", strerror(-r));
                return r;
        }
        return ret;
}

int verb_reboot(sd_bus *bus, char **args)
{
        return call_for_each(bus, args + 1, "RebootMachine", "failed to reboot");
}

int verb_terminate(sd_bus *bus, char **args)
{
        return call_for_each(bus, args + 1, "TerminateMachine", "failed to terminate");
}

int verb_kill(sd_bus *bus, char **args)
{
        return call_for_each(bus, args + 1, "KillMachine", "failed to send signal");
}

/* ---- set-limit ---- */

static int append_limit_assignment(sd_bus_message *m, const char *assignment)
{
        static const struct {
                const char *prefix;
                const char *key;
                int (*parse)(const char *, uint64_t *);
        } table[] = {
                { "MemoryMax=", "MemoryMax", parse_size },
                { "CPUQuota=", "CPUQuotaPerSecUSec", parse_cpu_quota },
                { "TasksMax=", "TasksMax", parse_tasks_max },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                size_t l = strlen(table[i].prefix);
                uint64_t v;

                if (strncmp(assignment, table[i].prefix, l) != 0)
                        continue;
                if (table[i].parse(assignment + l, &v) < 0) {
                        cli_error(NULL, "set-limit: invalid value in '%s'", assignment);
                        return -EINVAL;
                }
                return append_limit(m, table[i].key, v);
        }
        cli_error(NULL, "set-limit: unknown limit '%s' (expected MemoryMax=, CPUQuota= or TasksMax=)", assignment);
        return -EINVAL;
}

/* Before connecting, so that a typo changes nothing. */
int set_limit_check(char **args)
{
        if (!machine_name_is_valid(args[1])) {
                cli_error(args[1], "invalid machine name");
                return -EINVAL;
        }
        STRV_FOREACH(a, args + 2) {
                int r = append_limit_assignment(NULL, *a);
                if (r < 0)
                        return r;
        }
        return 0;
}

int verb_set_limit(sd_bus *bus, char **args)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *path = NULL;
        const char *name = args[1];
        int r;

        r = bus_machine_path(bus, name, &path, &error);
        if (r < 0)
                return cli_bus_error(name, "failed to set limits", &error, r);

        r = sd_bus_message_new_method_call(bus, &m, MM_SERVICE, path, MM_MACHINE, "SetLimits");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        STRV_FOREACH(a, args + 2)
                if (r >= 0)
                        r = append_limit_assignment(m, *a);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0) {
                cli_error(name, "failed to build the request: %s", strerror(-r));
                return r;
        }

        r = sd_bus_call(bus, m, 0, &error, NULL);
        if (r < 0)
                return cli_bus_error(name, "failed to set limits", &error, r);
        return 0;
}
