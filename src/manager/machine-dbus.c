/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.machinemgr1.Machine: one object per running machine, found by path (fallback vtable). */
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bus-names.h"
#include "container.h"
#include "log.h"
#include "machine.h"
#include "manager.h"
#include "network.h"
#include "util.h"

int bus_kill_machine(Machine *machine, sd_bus_message *message, const char *whom, int signo, sd_bus_error *error);
int bus_shell_machine(Machine *machine, sd_bus_message *message, sd_bus_error *error);
int machine_bus_add_objects(Manager *m, sd_bus *bus);

static int machine_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                               sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ char *name = NULL;
        int r = sd_bus_path_decode(path, "/org/machinemgr1/machine", &name);
        if (r <= 0)
                return r;
        Machine *machine = manager_get_machine(m, name);
        if (!machine)
                return 0;
        *found = machine;
        return 1;
}

static int machine_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                   sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = NULL;
        for (Machine *i = m->machines; i; i = i->next) {
                char *p;
                int r = machine_bus_path(i->name, &p);
                if (r < 0)
                        return r;
                if ((r = strv_push(&l, p)) < 0) {
                        free(p);
                        return r;
                }
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

static uint64_t limit_to_bus(uint64_t v)
{
        return v >= LIMIT_INFINITY ? UINT64_MAX : v;
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Machine *m = userdata;
        const char *v = streq(property, "Name")            ? m->name
                        : streq(property, "State")         ? machine_state_to_string(m->state)
                        : streq(property, "Unit")          ? m->unit
                        : streq(property, "RootDirectory") ? m->root
                        : streq(property, "Class")         ? "container"
                                                           : strempty(m->status_text);
        return sd_bus_message_append(reply, "s", v);
}

static int property_get_id(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Machine *m = userdata;
        return sd_bus_message_append_array(reply, 'y', m->id.bytes, sizeof m->id.bytes);
}

static int property_get_leader(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Machine *m = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t)m->leader);
}

static int property_get_network_interfaces(sd_bus *bus, const char *path, const char *interface,
                                           const char *property, sd_bus_message *reply, void *userdata,
                                           sd_bus_error *error)
{
        return network_machine_append_ifindexes(userdata, reply);
}

static int property_get_addresses(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return network_machine_append_addresses(userdata, reply);
}

static int property_get_u64(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Machine *m = userdata;
        uint64_t v = UINT64_MAX;

        if (streq(property, "Timestamp"))
                v = m->timestamp;
        else if (streq(property, "MemoryMax"))
                v = limit_to_bus(m->settings->memory_max);
        else if (streq(property, "TasksMax"))
                v = limit_to_bus(m->settings->tasks_max);
        else if (streq(property, "CPUQuotaPerSecUSec"))
                v = limit_to_bus(m->settings->cpu_quota_per_sec_usec);
        else {
                CGroupUsage u = {UINT64_MAX, UINT64_MAX, UINT64_MAX};
                if (m->cgroup)
                        (void)cgroup_get_usage(m->cgroup, &u);
                v = streq(property, "MemoryCurrent")  ? u.memory_current
                    : streq(property, "CPUUsageNSec") ? u.cpu_usage_nsec
                                                      : u.tasks_current;
        }
        return sd_bus_message_append(reply, "t", v);
}

/* Machine methods act on the object found by path; they share the root check. */
static int machine_method(sd_bus_message *message, Machine *m, int (*action)(Machine *), sd_bus_error *error)
{
        int r = bus_check_root(message, error);
        if (r < 0)
                return r;
        r = action(m);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: %m", m->name);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_poweroff(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        return machine_method(message, userdata, machine_poweroff, error);
}

static int method_reboot(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        return machine_method(message, userdata, machine_reboot, error);
}

static int method_terminate(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        return machine_method(message, userdata, machine_terminate, error);
}

static int method_kill(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        const char *whom;
        int32_t signo;
        int r = bus_check_root(message, error);
        if (r < 0)
                return r;
        if ((r = sd_bus_message_read(message, "si", &whom, &signo)) < 0)
                return r;
        return bus_kill_machine(userdata, message, whom, signo, error);
}

/* os-release is read through the image root, never following a symlink out of it. */
static int open_os_release(Machine *m)
{
        _cleanup_close_ int root = open(m->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return -errno;
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        const char *paths[] = {"etc/os-release", "usr/lib/os-release"};
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                int fd = (int)syscall(SYS_openat2, root, paths[i], &how, sizeof how);
                if (fd >= 0)
                        return fd;
        }
        return -ENOENT;
}

static int method_get_os_release(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        Machine *m = userdata;
        int fd = open_os_release(m);
        if (fd < 0)
                return sd_bus_error_set_errnof(error, fd, "%s: no os-release in the image: %m", m->name);
        _cleanup_fclose_ FILE *f = fdopen(fd, "re");
        if (!f) {
                safe_close(fd);
                return -errno;
        }
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{ss}");
        char line[1024];
        while (r >= 0 && fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = 0;
                char *eq = strchr(line, '=');
                if (!eq || line[0] == '#')
                        continue;
                *eq = 0;
                char *v = eq + 1;
                size_t l = strlen(v);
                if (l >= 2 && (v[0] == '"' || v[0] == '\'') && v[l - 1] == v[0]) {
                        v[l - 1] = 0;
                        v++;
                }
                r = sd_bus_message_append(reply, "{ss}", line, v);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_set_limits(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        Machine *m = userdata;
        MachineLimits l = {LIMIT_UNSET, LIMIT_UNSET, LIMIT_UNSET};
        int r = bus_check_root(message, error);
        if (r < 0)
                return r;
        if ((r = sd_bus_message_enter_container(message, 'a', "{sv}")) < 0)
                return r;
        while ((r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
                const char *key;
                uint64_t v;
                if ((r = sd_bus_message_read(message, "s", &key)) < 0)
                        return r;
                uint64_t *target = streq(key, "MemoryMax")            ? &l.memory_max
                                   : streq(key, "CPUQuotaPerSecUSec") ? &l.cpu_quota_per_sec_usec
                                   : streq(key, "TasksMax")           ? &l.tasks_max
                                                                      : NULL;
                if (!target)
                        return sd_bus_error_setf(error, "org.machinemgr1.Error.InvalidArgument",
                                                 "Unknown limit '%s' (MemoryMax, CPUQuotaPerSecUSec, TasksMax).",
                                                 key);
                if (sd_bus_message_read(message, "v", "t", &v) < 0)
                        return sd_bus_error_setf(error, "org.machinemgr1.Error.InvalidArgument",
                                                 "Limit '%s' must be of type t.", key);
                if (v == 0)
                        return sd_bus_error_setf(error, "org.machinemgr1.Error.InvalidArgument",
                                                 "%s must be greater than 0.", key);
                /* On the bus UINT64_MAX means no limit; in Settings that is LIMIT_INFINITY (UINT64_MAX is unset). */
                *target = v == UINT64_MAX ? LIMIT_INFINITY : v;
                if ((r = sd_bus_message_exit_container(message)) < 0)
                        return r;
        }
        if (r < 0 || (r = sd_bus_message_exit_container(message)) < 0)
                return r;
        r = machine_set_limits(m, &l);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: set limits: %m", m->name);
        return sd_bus_reply_method_return(message, NULL);
}

static const sd_bus_vtable machine_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Id", "ay", property_get_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Leader", "u", property_get_leader, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Unit", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RootDirectory", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Class", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Timestamp", "t", property_get_u64, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StatusText", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NetworkInterfaces", "ai", property_get_network_interfaces, 0, 0),
        SD_BUS_PROPERTY("Addresses", "a(iay)", property_get_addresses, 0, 0),
        SD_BUS_PROPERTY("MemoryMax", "t", property_get_u64, 0, 0),
        SD_BUS_PROPERTY("MemoryCurrent", "t", property_get_u64, 0, 0),
        SD_BUS_PROPERTY("CPUUsageNSec", "t", property_get_u64, 0, 0),
        SD_BUS_PROPERTY("CPUQuotaPerSecUSec", "t", property_get_u64, 0, 0),
        SD_BUS_PROPERTY("TasksMax", "t", property_get_u64, 0, 0),
        SD_BUS_PROPERTY("TasksCurrent", "t", property_get_u64, 0, 0),
        SD_BUS_METHOD("PowerOff", "", "", method_poweroff, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Reboot", "", "", method_reboot, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Terminate", "", "", method_terminate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Kill", "si", "", method_kill, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetOSRelease", "", "a{ss}", method_get_os_release, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("SetLimits", "a{sv}", "", method_set_limits, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int machine_bus_add_objects(Manager *m, sd_bus *bus)
{
        int r = sd_bus_add_fallback_vtable(bus, NULL, "/org/machinemgr1/machine", "org.machinemgr1.Machine",
                                           machine_vtable, machine_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(bus, NULL, "/org/machinemgr1/machine", machine_node_enumerator, m);
}

static int emit_changed(sd_bus *bus, void *userdata)
{
        const char **a = userdata;
        return sd_bus_emit_properties_changed(bus, a[0], "org.machinemgr1.Machine", a[1], NULL);
}

int bus_emit_machine_changed(Machine *machine, const char *property)
{
        _cleanup_free_ char *path = NULL;
        int r = machine_bus_path(machine->name, &path);
        if (r < 0)
                return r;
        const char *args[] = {path, property};
        manager_foreach_bus(machine->manager, emit_changed, args);
        return 0;
}

/* A command running inside a machine for ShellMachine: the method reply waits for its exit. */
typedef struct ShellSession {
        sd_bus_message *message;
        sd_event_source *source;
        int pidfd;
} ShellSession;

static void shell_session_free(ShellSession *s)
{
        sd_event_source_disable_unref(s->source);
        sd_bus_message_unref(s->message);
        safe_close(s->pidfd);
        free(s);
}

static int on_shell_exit(sd_event_source *source, const siginfo_t *si, void *userdata)
{
        ShellSession *s = userdata;
        int status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
        sd_bus_reply_method_return(s->message, "i", (int32_t)status);
        shell_session_free(s);
        return 0;
}

int bus_shell_machine(Machine *machine, sd_bus_message *message, sd_bus_error *error)
{
        const char *user;
        _cleanup_strv_free_ char **argv = NULL, **env = NULL;
        int fds[3];
        int r = sd_bus_message_read(message, "s", &user);
        if (r < 0 || (r = sd_bus_message_read_strv(message, &argv)) < 0 ||
            (r = sd_bus_message_read_strv(message, &env)) < 0 ||
            (r = sd_bus_message_read(message, "hhh", &fds[0], &fds[1], &fds[2])) < 0)
                return r;
        if (strv_length(argv) == 0)
                return sd_bus_error_setf(error, "org.machinemgr1.Error.InvalidArgument", "No command given.");
        if (machine->leader_pidfd < 0)
                return sd_bus_error_setf(error, "org.machinemgr1.Error.NoSuchMachine", "%s is not running.",
                                         machine->name);

        ShellSession *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        pid_t pid;
        _cleanup_strv_free_ char **procs = NULL;
        if (machine->cgroup && (r = cgroup_procs_paths(machine->cgroup, &procs)) < 0) {
                free(s);
                return r;
        }
        /* The helper joins every hierarchy itself, before it forks the command: attaching it from here
         * afterwards would leave the command outside the machine's limits. */
        r = container_enter(machine->leader_pidfd, (const char **)procs,
                            machine->cgroup ? cgroup_clone_fd(machine->cgroup) : -1, *user ? user : NULL, argv,
                            env, fds[0], fds[1], fds[2],
                            container_default_capabilities(machine->settings->network_mode != NETWORK_HOST), &pid,
                            &s->pidfd);
        if (r < 0) {
                free(s);
                return sd_bus_error_set_errnof(error, r, "%s: enter the machine: %m", machine->name);
        }
        r = sd_event_add_child_pidfd(machine->manager->event, &s->source, s->pidfd, WEXITED, on_shell_exit, s);
        if (r < 0) {
                (void)syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
                shell_session_free(s);
                return r;
        }
        s->message = sd_bus_message_ref(message);
        return 1;
}

int bus_error_from_machine(sd_bus_error *error, const MachineError *e, int r)
{
        static const char *const names[] = {
                [MACHINE_ERROR_START_FAILED] = MM_ERROR_START_FAILED,
                [MACHINE_ERROR_NO_INIT] = MM_ERROR_NO_INIT,
                [MACHINE_ERROR_NO_SUCH_IMAGE] = MM_ERROR_NO_SUCH_IMAGE,
                [MACHINE_ERROR_IMAGE_BUSY] = MM_ERROR_IMAGE_BUSY,
                [MACHINE_ERROR_INVALID_ARGUMENT] = MM_ERROR_INVALID_ARGUMENT,
        };
        if (!e || !e->message)
                return sd_bus_error_set_errno(error, r);
        return sd_bus_error_set(error, names[e->kind], e->message);
}

static int on_machined_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e)
                log_machine_warning_errno(userdata, 0, "Register with systemd-machined: %s", e->message ?: e->name);
        free(userdata);
        return 0;
}

/* machined follows the scope and forgets the machine when the scope goes; no unregistration needed. Best
 * effort: a host without machined still runs containers. */
void bus_register_machined(Machine *m)
{
        if (!m->manager->system_bus)
                return;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        char *name = strdup(m->name);
        if (!name)
                return;
        int r = sd_bus_message_new_method_call(m->manager->system_bus, &call, "org.freedesktop.machine1",
                                               "/org/freedesktop/machine1", "org.freedesktop.machine1.Manager",
                                               "RegisterMachine");
        if (r >= 0)
                r = sd_bus_message_append(call, "s", m->name);
        if (r >= 0)
                r = sd_bus_message_append_array(call, 'y', m->id.bytes, sizeof m->id.bytes);
        if (r >= 0)
                r = sd_bus_message_append(call, "ssus", "machinemgr", "container", (uint32_t)m->leader, m->root);
        if (r >= 0)
                r = sd_bus_call_async(m->manager->system_bus, NULL, call, on_machined_reply, name, 0);
        if (r < 0) {
                log_machine_warning_errno(m->name, r, "Register with systemd-machined: %m");
                free(name);
        }
}
