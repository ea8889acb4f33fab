/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.machinemgr1.Manager: the bus face of the Manager. Only argument handling and replies live here; the
 * work is machine.c's. */
#include <signal.h>

#include "binds.h"
#include "bus-names.h"
#include "container.h"
#include "copy.h"
#include "image-dbus.h"
#include "log.h"
#include "machine.h"
#include "manager.h"
#include "names.h"
#include "network.h"
#include "util.h"


int machine_bus_path(const char *name, char **ret)
{
        return sd_bus_path_encode(MM_BUS_MACHINE_PREFIX, name, ret);
}

static int check_name(const char *name, sd_bus_error *error)
{
        if (!machine_name_is_valid(name))
                return sd_bus_error_setf(error, MM_ERROR_INVALID_NAME, "Invalid machine name '%s'.", name);
        return 0;
}

/* Looks a running machine up by the name argument, with the errors callers expect. */
static int lookup_machine(Manager *m, const char *name, Machine **ret, sd_bus_error *error)
{
        int r = check_name(name, error);
        if (r < 0)
                return r;
        *ret = manager_get_listed_machine(m, name);
        if (!*ret)
                return sd_bus_error_setf(error, MM_ERROR_NO_SUCH_MACHINE, "No machine '%s' is running.", name);
        return 0;
}

/* The common head of every Manager method that changes a running machine: root only, then the machine by
 * the leading name argument. */
static int read_machine_for_change(sd_bus_message *message, Manager *m, Machine **ret, sd_bus_error *error)
{
        const char *name;
        int r = bus_check_root(message, error);
        if (r < 0)
                return r;
        if ((r = sd_bus_message_read(message, "s", &name)) < 0)
                return r;
        return lookup_machine(m, name, ret, error);
}

static int method_list_machines(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssuo)");
        for (Machine *i = m->machines; r >= 0 && i; i = i->next) {
                _cleanup_free_ char *path = NULL;
                if (!machine_is_listed(i))
                        continue;
                r = machine_bus_path(i->name, &path);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(sssuo)", i->name, machine_state_to_string(i->state),
                                                  i->unit, (uint32_t)i->leader, path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_machine(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        const char *name;
        Machine *machine;
        _cleanup_free_ char *path = NULL;
        int r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        r = lookup_machine(userdata, name, &machine, error);
        if (r < 0)
                return r;
        r = machine_bus_path(name, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "o", path);
}

static int read_strv(sd_bus_message *message, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        int r = sd_bus_message_read_strv(message, &l);
        if (r < 0)
                return r;
        strv_free(*ret);
        *ret = TAKE_PTR(l);
        return 0;
}

static int read_limit(sd_bus_message *message, uint64_t *ret)
{
        uint64_t v;
        int r = sd_bus_message_read(message, "t", &v);
        if (r < 0)
                return r;
        *ret = v == UINT64_MAX ? LIMIT_INFINITY : v;
        return 0;
}

/* One a{sv} entry of StartMachine's options into Settings. Returns -EINVAL with `error` set for a bad value. */
static int read_start_option(sd_bus_message *message, const char *key, Settings *s, sd_bus_error *error)
{
        int r, b;
        const char *str;

        if (streq(key, "MemoryMax") || streq(key, "CPUQuotaPerSecUSec")) {
                uint64_t *target = streq(key, "MemoryMax") ? &s->memory_max : &s->cpu_quota_per_sec_usec;
                if ((r = sd_bus_message_enter_container(message, 'v', "t")) < 0 || (r = read_limit(message, target)) < 0)
                        return r;
                /* Zero would freeze or OOM-kill the guest at once: as the settings file, refuse it. */
                if (*target == 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "%s must be greater than 0.", key);
                return sd_bus_message_exit_container(message);
        }
        if (streq(key, "TasksMax")) {
                if ((r = sd_bus_message_enter_container(message, 'v', "t")) < 0 ||
                    (r = read_limit(message, &s->tasks_max)) < 0)
                        return r;
                if (s->tasks_max == 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "TasksMax must be at least 1.");
                return sd_bus_message_exit_container(message);
        }
        if (streq(key, "Boot") || streq(key, "Ephemeral") || streq(key, "ReadOnly")) {
                if ((r = sd_bus_message_read(message, "v", "b", &b)) < 0)
                        return r;
                if (streq(key, "Boot"))
                        s->boot = b;
                else if (streq(key, "Ephemeral"))
                        s->ephemeral = b;
                else
                        s->read_only = b;
                return 0;
        }
        if (streq(key, "Command") || streq(key, "Environment")) {
                if ((r = sd_bus_message_enter_container(message, 'v', "as")) < 0)
                        return r;
                r = read_strv(message, streq(key, "Command") ? &s->command : &s->environment);
                if (r < 0)
                        return r;
                if (streq(key, "Command") && strv_length(s->command) == 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "Command must not be empty.");
                STRV_FOREACH(e, streq(key, "Environment") ? s->environment : NULL)
                if (!strchr(*e, '=') || **e == '=')
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                                 "Environment entry '%s' is not VAR=value.", *e);
                return sd_bus_message_exit_container(message);
        }
        if (streq(key, "Bind"))
                return bus_read_binds(message, s, error);
        if (streq(key, "Hostname")) {
                if ((r = sd_bus_message_read(message, "v", "s", &str)) < 0)
                        return r;
                if (!*str || strlen(str) > 64)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "Invalid hostname '%s'.", str);
                free(s->hostname);
                return (s->hostname = strdup(str)) ? 0 : -ENOMEM;
        }
        if (streq(key, "PrivateUsers")) {
                if ((r = sd_bus_message_read(message, "v", "s", &str)) < 0)
                        return r;
                if (parse_private_users(str, NULL, NULL) < 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                                 "Invalid PrivateUsers '%s' (no, pick or UID[:RANGE]).", str);
                free(s->private_users);
                return (s->private_users = strdup(str)) ? 0 : -ENOMEM;
        }
        /* Network, Bridge, Address, Port, ResolvConf */
        r = network_read_start_option(message, key, s, error);
        if (r != 0)
                return r < 0 ? r : 0;
        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "Unknown or unsupported start option '%s'.", key);
}

static int read_start_options(sd_bus_message *message, Settings *s, sd_bus_error *error)
{
        int r = sd_bus_message_enter_container(message, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
                const char *key;
                if ((r = sd_bus_message_read(message, "s", &key)) < 0)
                        return r;
                r = read_start_option(message, key, s, error);
                if (r < 0) {
                        if (!sd_bus_error_is_set(error))
                                sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                                  "Start option '%s' has the wrong type.", key);
                        return r;
                }
                if ((r = sd_bus_message_exit_container(message)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(message);
}

/* Start options first, then the NAME.machine file fills what they leave unset (SPEC §3). */
static int resolve_settings(Manager *m, const char *name, Settings *options, sd_bus_error *error)
{
        char *dirs[] = {(char *)"/etc/machinemgr", m->runtime_dir, NULL};
        _cleanup_free_ char *path = NULL;
        int r = settings_find_file(name, m->image_path, dirs, &path);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: find settings file: %m", name);
        if (path) {
                _cleanup_(settings_freep) Settings *file = NULL;
                _cleanup_free_ char *msg = NULL;
                r = settings_load_file(path, &file, &msg);
                if (r < 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "%s: %s", name,
                                                 msg ?: strerror(-r));
                r = settings_merge(options, file);
                if (r < 0)
                        return r;
        }
        r = settings_apply_defaults(options, name);
        if (r < 0)
                return r;
        _cleanup_free_ char *net_msg = NULL;
        r = network_check_settings(options, &net_msg);
        if (r < 0)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "%s: %s", name, net_msg ?: strerror(-r));
        return 0;
}

static void on_start_done(Machine *machine, const char *failure, void *userdata)
{
        sd_bus_message *message = userdata;
        _cleanup_free_ char *path = NULL;
        if (failure)
                (void)sd_bus_reply_method_errorf(message, MM_ERROR_START_FAILED, "%s: %s", machine->name, failure);
        else if (machine_bus_path(machine->name, &path) >= 0)
                (void)sd_bus_reply_method_return(message, "o", path);
        sd_bus_message_unref(message);
}

static int method_start_machine(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *name;
        int r = bus_check_root(message, error);
        if (r < 0)
                return r;
        if ((r = sd_bus_message_read(message, "s", &name)) < 0)
                return r;
        if ((r = check_name(name, error)) < 0)
                return r;

        _cleanup_(settings_freep) Settings *s = settings_new();
        if (!s)
                return -ENOMEM;
        if ((r = read_start_options(message, s, error)) < 0)
                return r;
        if (manager_get_machine(m, name))
                return sd_bus_error_setf(error, MM_ERROR_MACHINE_EXISTS, "Machine '%s' is already running.", name);
        if ((r = resolve_settings(m, name, s, error)) < 0)
                return r;
        if ((r = binds_check_sources(name, s->binds, s->n_binds, error)) < 0)
                return r;

        Machine *machine;
        if ((r = machine_new(m, name, &machine)) < 0)
                return r;
        machine->settings = TAKE_PTR(s);
        MachineError failure = {};
        r = machine_start(machine, on_start_done, sd_bus_message_ref(message), &failure);
        if (r < 0) {
                sd_bus_message_unref(message);
                r = bus_error_from_machine(error, &failure, r);
                machine_error_done(&failure);
                machine_free(machine);
                return r;
        }
        return 1; /* replied to once init exec'd */
}

/* PowerOffMachine/RebootMachine/TerminateMachine share everything but the action. */
static int machine_action(sd_bus_message *message, Manager *m, int (*action)(Machine *), sd_bus_error *error)
{
        Machine *machine;
        int r = read_machine_for_change(message, m, &machine, error);
        if (r < 0)
                return r;
        r = action(machine);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: %m", machine->name);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_poweroff_machine(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        return machine_action(message, userdata, machine_poweroff, error);
}

static int method_reboot_machine(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        return machine_action(message, userdata, machine_reboot, error);
}

static int method_terminate_machine(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        return machine_action(message, userdata, machine_terminate, error);
}

int bus_kill_machine(Machine *machine, sd_bus_message *message, const char *whom, int signo, sd_bus_error *error);
int bus_kill_machine(Machine *machine, sd_bus_message *message, const char *whom, int signo, sd_bus_error *error)
{
        if (!streq(whom, "leader") && !streq(whom, "all") && *whom)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "Invalid kill target '%s' (leader, all).",
                                         whom);
        if (signo <= 0 || signo >= _NSIG)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "Invalid signal %d.", signo);
        int r = machine_kill(machine, *whom ? whom : "all", signo);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: kill: %m", machine->name);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_kill_machine(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        const char *whom;
        int32_t signo;
        Machine *machine;
        int r = read_machine_for_change(message, userdata, &machine, error);
        if (r < 0)
                return r;
        if ((r = sd_bus_message_read(message, "si", &whom, &signo)) < 0)
                return r;
        return bus_kill_machine(machine, message, whom, signo, error);
}

static int method_get_machine_console(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        Machine *machine;
        int r = read_machine_for_change(message, userdata, &machine, error);
        if (r < 0)
                return r;
        if (!machine->console)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                         "%s: the console was lost when machinemgrd restarted.", machine->name);
        _cleanup_close_ int fd = -1;
        r = console_attach(machine->console, &fd);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: attach console: %m", machine->name);
        return sd_bus_reply_method_return(message, "h", fd);
}

static int method_get_machine_exit(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        const char *name;
        int r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        if ((r = check_name(name, error)) < 0)
                return r;
        ExitRecord *e = manager_find_exit(userdata, name);
        if (!e)
                return sd_bus_error_setf(error, MM_ERROR_NO_SUCH_MACHINE, "No run of machine '%s' has ended.", name);
        return sd_bus_reply_method_return(message, "sits", e->result, (int32_t)e->status, e->timestamp,
                                          strempty(e->message));
}

int bus_shell_machine(Machine *machine, sd_bus_message *message, sd_bus_error *error);

static int method_shell_machine(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        Machine *machine;
        int r = read_machine_for_change(message, userdata, &machine, error);
        if (r < 0)
                return r;
        return bus_shell_machine(machine, message, error);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("ListMachines", "", "a(sssuo)", method_list_machines, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetMachine", "s", "o", method_get_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("StartMachine", "sa{sv}", "o", method_start_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("PowerOffMachine", "s", "", method_poweroff_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("RebootMachine", "s", "", method_reboot_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("TerminateMachine", "s", "", method_terminate_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("KillMachine", "ssi", "", method_kill_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetMachineConsole", "s", "h", method_get_machine_console, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("ShellMachine", "ssasashhh", "i", method_shell_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetMachineExit", "s", "sits", method_get_machine_exit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("ListImages", "", "a(ssbttto)", method_list_images, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetImage", "s", "o", method_get_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("CloneImage", "ssb", "", method_clone_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("RenameImage", "ss", "", method_rename_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("RemoveImage", "s", "", method_remove_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("MarkImageReadOnly", "sb", "", method_mark_image_read_only, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("CopyToMachine", "sss", "", method_copy_to_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("CopyFromMachine", "sss", "", method_copy_from_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL("MachineNew", "so", 0),
        SD_BUS_SIGNAL("MachineRemoved", "so", 0),
        SD_BUS_VTABLE_END,
};

int machine_bus_add_objects(Manager *m, sd_bus *bus);

int manager_bus_add_objects(Manager *m, sd_bus *bus)
{
        int r = sd_bus_add_object_vtable(bus, NULL, MM_BUS_PATH, MM_BUS_MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return r;
        r = sd_bus_add_object_manager(bus, NULL, MM_BUS_PATH);
        if (r < 0)
                return r;
        r = image_bus_add_objects(m, bus);
        if (r < 0)
                return r;
        return machine_bus_add_objects(m, bus);
}

typedef struct SignalArgs {
        const char *member;
        const char *name;
        const char *path;
} SignalArgs;

static int emit_signal(sd_bus *bus, void *userdata)
{
        SignalArgs *a = userdata;
        return sd_bus_emit_signal(bus, MM_BUS_PATH, MM_BUS_MANAGER_INTERFACE, a->member, "so", a->name,
                                  a->path);
}

static int emit_machine_signal(Manager *m, Machine *machine, const char *member)
{
        _cleanup_free_ char *path = NULL;
        int r = machine_bus_path(machine->name, &path);
        if (r < 0)
                return r;
        SignalArgs a = {member, machine->name, path};
        manager_foreach_bus(m, emit_signal, &a);
        return 0;
}

int bus_emit_machine_new(Manager *m, Machine *machine)
{
        return emit_machine_signal(m, machine, "MachineNew");
}

int bus_emit_machine_removed(Manager *m, Machine *machine)
{
        return emit_machine_signal(m, machine, "MachineRemoved");
}
