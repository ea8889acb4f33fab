/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.machinemgr1.Machine: one object per running machine, found by path (fallback vtable). */
#include <fcntl.h>
#include <sys/epoll.h>
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
        int r = sd_bus_path_decode(path, MM_BUS_MACHINE_PREFIX, &name);
        if (r <= 0)
                return r;
        Machine *machine = manager_get_listed_machine(m, name);
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
                if (!machine_is_listed(i))
                        continue;
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

/* GetOSRelease (open to every local user): the guest's file is read by a child of ours outside the loop
 * (container_read_os_release()), the reply sent from the loop when its answer comes, or an error after
 * OS_RELEASE_TIMEOUT_USEC (a read can still stall on a FUSE or NFS mount of the guest's). At most
 * OS_RELEASE_INFLIGHT_MAX readers run at once; the reply holds at most OS_RELEASE_KEYS_MAX entries of a
 * file of at most CONTAINER_OS_RELEASE_MAX bytes. */
#define OS_RELEASE_TIMEOUT_USEC (5 * 1000000ULL)
#define OS_RELEASE_INFLIGHT_MAX 16
#define OS_RELEASE_KEYS_MAX 256

typedef struct OsReleaseRequest {
        sd_bus_message *message; /* NULL once replied to */
        char *machine;
        int pidfd, fd;
        sd_event_source *child, *io, *timer;
} OsReleaseRequest;

static unsigned os_release_inflight;

static void os_release_request_free(OsReleaseRequest *q)
{
        sd_event_source_disable_unref(q->child);
        sd_event_source_disable_unref(q->io);
        sd_event_source_disable_unref(q->timer);
        sd_bus_message_unref(q->message);
        safe_close(q->fd);
        safe_close(q->pidfd);
        free(q->machine);
        free(q);
        os_release_inflight--;
}

static bool os_release_key_valid(const char *k, size_t n)
{
        if (n == 0 || (k[0] >= '0' && k[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
                      k[i] == '_'))
                        return false;
        return true;
}

/* KEY=value lines; one level of matching quotes is stripped, backslash escapes inside double quotes
 * undone. Lines that are not that, or not valid UTF-8, are skipped. */
static int os_release_append(sd_bus_message *reply, char *text, size_t size, const char *machine,
                             sd_bus_error *error)
{
        unsigned n = 0;
        int r = sd_bus_message_open_container(reply, 'a', "{ss}");

        for (char *line = text, *end = text + size, *next; r >= 0 && line < end; line = next) {
                char *nl = memchr(line, '\n', (size_t) (end - line));
                next = nl ? nl + 1 : end;
                size_t len = (size_t) ((nl ? nl : end) - line);
                char *eq = memchr(line, '=', len);
                if (!eq || !os_release_key_valid(line, (size_t) (eq - line)) || !utf8_is_valid_n(line, len))
                        continue;
                if (++n > OS_RELEASE_KEYS_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                 "%s: the guest's os-release has more than %u entries.", machine,
                                                 OS_RELEASE_KEYS_MAX);
                *eq = 0;
                line[len] = 0;
                char *v = eq + 1;
                size_t l = strlen(v);
                char quote = l >= 2 && (v[0] == '"' || v[0] == '\'') && v[l - 1] == v[0] ? v[0] : 0;
                if (quote) {
                        v[l - 1] = 0;
                        v++;
                }
                char *w = v;
                for (char *c = v; *c; c++) {
                        if (quote == '"' && c[0] == '\\' && c[1])
                                c++;
                        *w++ = *c;
                }
                *w = 0;
                r = sd_bus_message_append(reply, "{ss}", line, v);
        }
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static void os_release_reply(OsReleaseRequest *q, int r, char *text, size_t size)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        if (!q->message)
                return;
        if (r >= 0) {
                r = sd_bus_message_new_method_return(q->message, &reply);
                if (r >= 0)
                        r = os_release_append(reply, text, size, q->machine, &error);
                if (r >= 0 && !sd_bus_error_is_set(&error))
                        r = sd_bus_send(NULL, reply, NULL);
        } else if (r == -ETIMEDOUT)
                sd_bus_error_setf(&error, SD_BUS_ERROR_TIMEOUT, "%s: reading the guest's os-release timed out.",
                                  q->machine);
        else if (r == -EFBIG)
                sd_bus_error_setf(&error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                  "%s: the guest's os-release is larger than %u bytes.", q->machine,
                                  CONTAINER_OS_RELEASE_MAX);
        else
                sd_bus_error_set_errnof(&error, r, "%s: the guest's os-release: %s", q->machine,
                                        guest_open_strerror(r));
        if (r < 0 && !sd_bus_error_is_set(&error))
                sd_bus_error_set_errnof(&error, r, "%s: reply with the guest's os-release: %m", q->machine);
        if (sd_bus_error_is_set(&error))
                (void) sd_bus_reply_method_error(q->message, &error);
        q->message = sd_bus_message_unref(q->message);
}

static int on_os_release_answer(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        OsReleaseRequest *q = userdata;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r = container_os_release_receive(fd, &text, &size);
        if (r == -EAGAIN)
                return 0;
        os_release_reply(q, r, text, size);
        /* Done with the answer; the child source frees the request once the reader is reaped. */
        q->io = sd_event_source_disable_unref(q->io);
        q->timer = sd_event_source_disable_unref(q->timer);
        return 0;
}

static int on_os_release_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        OsReleaseRequest *q = userdata;
        os_release_reply(q, -ETIMEDOUT, NULL, 0);
        (void)syscall(SYS_pidfd_send_signal, q->pidfd, SIGKILL, NULL, 0);
        q->io = sd_event_source_disable_unref(q->io);
        q->timer = sd_event_source_disable_unref(q->timer);
        return 0;
}

static int on_os_release_reader_exit(sd_event_source *s, const siginfo_t *si, void *userdata)
{
        OsReleaseRequest *q = userdata;
        /* Its answer, if any, is queued already. */
        if (q->io)
                on_os_release_answer(q->io, q->fd, EPOLLIN, q);
        os_release_reply(q, -EPIPE, NULL, 0);
        os_release_request_free(q);
        return 0;
}

static int method_get_os_release(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        Machine *m = userdata;
        sd_event *e = m->manager->event;

        if (m->leader_pidfd < 0)
                return sd_bus_error_setf(error, MM_ERROR_NO_SUCH_MACHINE, "%s is not running.", m->name);
        if (os_release_inflight >= OS_RELEASE_INFLIGHT_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "%s: %u os-release reads are running already, try again.", m->name,
                                         OS_RELEASE_INFLIGHT_MAX);
        OsReleaseRequest *q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        os_release_inflight++;
        q->pidfd = q->fd = -1;
        q->machine = strdup(m->name);
        if (!q->machine) {
                os_release_request_free(q);
                return -ENOMEM;
        }
        int r = container_read_os_release(m->leader, m->leader_pidfd, m->uid_range > 0 ? m->uid_shift : 0, &q->pidfd,
                                          &q->fd);
        if (r < 0) {
                os_release_request_free(q);
                return sd_bus_error_set_errnof(error, r, "%s: read the guest's os-release: %m", m->name);
        }
        r = sd_event_add_child_pidfd(e, &q->child, q->pidfd, WEXITED, on_os_release_reader_exit, q);
        if (r < 0) {
                (void)syscall(SYS_pidfd_send_signal, q->pidfd, SIGKILL, NULL, 0);
                (void)waitid(P_PIDFD, (id_t)q->pidfd, &(siginfo_t){}, WEXITED);
                os_release_request_free(q);
                return r;
        }
        /* From here on the child source owns q: a failure below kills the reader, whose exit frees q. */
        if ((r = sd_event_add_io(e, &q->io, q->fd, EPOLLIN, on_os_release_answer, q)) < 0 ||
            (r = sd_event_add_time_relative(e, &q->timer, CLOCK_MONOTONIC, OS_RELEASE_TIMEOUT_USEC, 0,
                                            on_os_release_timeout, q)) < 0) {
                (void)syscall(SYS_pidfd_send_signal, q->pidfd, SIGKILL, NULL, 0);
                return r;
        }
        q->message = sd_bus_message_ref(message);
        return 1;
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
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                                 "Unknown limit '%s' (MemoryMax, CPUQuotaPerSecUSec, TasksMax).",
                                                 key);
                if (sd_bus_message_read(message, "v", "t", &v) < 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                                 "Limit '%s' must be of type t.", key);
                if (v == 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
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
        int r = sd_bus_add_fallback_vtable(bus, NULL, MM_BUS_MACHINE_PREFIX, MM_BUS_MACHINE_INTERFACE,
                                           machine_vtable, machine_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(bus, NULL, MM_BUS_MACHINE_PREFIX, machine_node_enumerator, m);
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
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "No command given.");
        if (machine->leader_pidfd < 0)
                return sd_bus_error_setf(error, MM_ERROR_NO_SUCH_MACHINE, "%s is not running.",
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
        /* The guest's own bounding set (Capability=, DropCapability= included): a session never has more
         * than the guest's root. */
        const Settings *set = machine->settings;
        uint64_t caps = (container_default_capabilities(set->network_mode != NETWORK_HOST) | set->capability_add) &
                        ~set->capability_drop;
        /* The helper joins every hierarchy itself, before it forks the command: attaching it from here
         * afterwards would leave the command outside the machine's limits. */
        r = container_enter(machine->leader_pidfd, (const char **)procs,
                            machine->cgroup ? cgroup_clone_fd(machine->cgroup) : -1, *user ? user : NULL, argv,
                            env, fds[0], fds[1], fds[2], caps, &pid, &s->pidfd);
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
