/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"
#include "bus-names.h"
#include "cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "log.h"
#include "machine.h"
#include "names.h"
#include "util.h"

int manager_new(Manager **ret)
{
        Manager *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->private_fd = -1;
        m->init_fd = -1;
        int r = sd_event_default(&m->event);
        if (r < 0) {
                free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        while (m->machines)
                machine_free(m->machines);
        /* Guests left running for the next daemon keep it busy, so it stays then. */
        cgroup_direct_remove_slice();
        while (m->exits) {
                ExitRecord *e = m->exits;
                m->exits = e->next;
                free(e->name);
                free(e->result);
                free(e->message);
                free(e);
        }
        for (size_t i = 0; i < m->n_stored; i++)
                safe_close(m->stored_fds[i]);
        free(m->stored_fds);
        strv_free(m->stored_names);
        while (m->connections)
                bus_private_connection_free(m->connections);
        fdstore_free(m->fdstore);
        sd_event_source_disable_unref(m->private_source);
        safe_close(m->private_fd);
        safe_close(m->init_fd);
        sd_bus_flush_close_unref(m->system_bus);
        sd_bus_flush_close_unref(m->systemd_bus);
        sd_event_unref(m->event);
        free(m->runtime_dir);
        free(m->machines_dir);
        free(m->host_dir);
        free(m->image_path);
        free(m);
        return NULL;
}

Machine *manager_get_machine(Manager *m, const char *name)
{
        for (Machine *i = m->machines; i; i = i->next)
                if (streq(i->name, name))
                        return i;
        return NULL;
}

Machine *manager_get_listed_machine(Manager *m, const char *name)
{
        Machine *i = manager_get_machine(m, name);
        return i && machine_is_listed(i) ? i : NULL;
}

ExitRecord *manager_find_exit(Manager *m, const char *name)
{
        for (ExitRecord *e = m->exits; e; e = e->next)
                if (streq(e->name, name))
                        return e;
        return NULL;
}

void manager_forget_exit(Manager *m, const char *name)
{
        for (ExitRecord **p = &m->exits; *p; p = &(*p)->next) {
                ExitRecord *e = *p;
                if (!streq(e->name, name))
                        continue;
                *p = e->next;
                free(e->name);
                free(e->result);
                free(e->message);
                free(e);
                return;
        }
}

void manager_record_exit(Manager *m, const char *name, const char *result, int status, const char *message)
{
        manager_forget_exit(m, name);
        ExitRecord *e = calloc(1, sizeof *e);
        if (!e)
                return;
        e->name = strdup(name);
        e->result = strdup(result);
        e->message = message ? strdup(message) : NULL;
        if (!e->name || !e->result || (message && !e->message)) {
                free(e->name);
                free(e->result);
                free(e->message);
                free(e);
                return;
        }
        e->status = status;
        e->timestamp = now_usec(CLOCK_REALTIME);
        e->next = m->exits;
        m->exits = e;
}

void manager_foreach_bus(Manager *m, manager_bus_func f, void *userdata)
{
        if (m->system_bus)
                f(m->system_bus, userdata);
        for (PrivateConnection *c = m->connections; c; c = c->next)
                if (c->spoke && bus_private_connection_check(c)) {
                        f(c->bus, userdata);
                        (void)bus_private_connection_check(c);
                }
}

/* FDNAME= allows printable ASCII only; machine names may be UTF-8, so they are hex-encoded. */
static int fdstore_name(FdStoreKind kind, const char *machine, char **ret)
{
        size_t l = strlen(machine);
        char *s = malloc(3 + 2 * l);
        if (!s)
                return -ENOMEM;
        s[0] = (char)kind;
        s[1] = '-';
        for (size_t i = 0; i < l; i++)
                sprintf(s + 2 + 2 * i, "%02x", (unsigned char)machine[i]);
        *ret = s;
        return 0;
}

static bool have_service_fdstore(void)
{
        return getenv("NOTIFY_SOCKET") != NULL;
}

/* fd < 0: remove. */
static int fdstore_send(Manager *m, const char *name, int fd, int owner_pidfd)
{
        int r = -ENOTCONN;
        if (m->fdstore)
                r = fd >= 0 ? fdstore_put(m->fdstore, name, fd, owner_pidfd) : fdstore_remove(m->fdstore, name);
        if (r >= 0 || fd < 0) /* a holder that went away holds nothing to remove */
                return r;
        /* The holder exits when it has nothing to hold; it may have just done so. Start another. */
        m->fdstore = fdstore_free(m->fdstore);
        r = fdstore_connect(m->runtime_dir, &m->fdstore);
        if (r >= 0)
                r = fd >= 0 ? fdstore_put(m->fdstore, name, fd, owner_pidfd) : fdstore_remove(m->fdstore, name);
        return r;
}

static void manager_fdstore_remove_one(Manager *m, const char *machine, FdStoreKind kind);

int manager_fdstore_put(Manager *m, const char *machine, FdStoreKind kind, int fd, int owner_pidfd)
{
        _cleanup_free_ char *name = NULL, *msg = NULL;
        int r;
        if (fdstore_name(kind, machine, &name) < 0)
                return -ENOMEM;
        if (have_service_fdstore()) {
                /* In an envelope: the store would drop a bare pty master at its first EPOLLHUP. Each put
                 * is a new envelope, which the store would keep beside the last one (a machine's every
                 * reboot puts again): the name's earlier entry goes first. */
                manager_fdstore_remove_one(m, machine, kind);
                _cleanup_close_ int envelope = -1;
                if (asprintf(&msg, "FDSTORE=1\nFDNAME=%s", name) < 0)
                        return -ENOMEM;
                r = fdstore_wrap_fd(fd, &envelope);
                if (r >= 0)
                        r = sd_pid_notify_with_fds(0, false, msg, &envelope, 1);
        } else
                r = fdstore_send(m, name, fd, owner_pidfd);
        if (r < 0)
                log_machine_warning_errno(machine, r, "Put %s into the fd store: %m",
                                          kind == FDSTORE_CONSOLE  ? "the console"
                                          : kind == FDSTORE_NOTIFY ? "the notify socket"
                                                                   : "the reboot listener");
        return r;
}

static void manager_fdstore_remove_one(Manager *m, const char *machine, FdStoreKind kind)
{
        _cleanup_free_ char *name = NULL, *msg = NULL;
        if (fdstore_name(kind, machine, &name) < 0)
                return;
        if (!have_service_fdstore()) {
                (void)fdstore_send(m, name, -1, -1);
                return;
        }
        if (asprintf(&msg, "FDSTOREREMOVE=1\nFDNAME=%s", name) >= 0)
                (void)sd_notify(false, msg);
}

void manager_fdstore_remove(Manager *m, const char *machine)
{
        manager_fdstore_remove_one(m, machine, FDSTORE_CONSOLE);
        manager_fdstore_remove_one(m, machine, FDSTORE_NOTIFY);
        manager_fdstore_remove_one(m, machine, FDSTORE_REBOOT);
}

int manager_fdstore_take(Manager *m, const char *machine, FdStoreKind kind)
{
        _cleanup_free_ char *name = NULL;
        if (fdstore_name(kind, machine, &name) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_stored; i++)
                if (m->stored_fds[i] >= 0 && streq(m->stored_names[i], name))
                        return TAKE_FD(m->stored_fds[i]);
        return -ENOENT;
}

static void manager_collect_stored_fds(Manager *m)
{
        if (!have_service_fdstore()) {
                int r = fdstore_connect(m->runtime_dir, &m->fdstore);
                if (r < 0) {
                        log_warning_errno(r, "Start the fd holder: %m (consoles will not survive a restart)");
                        return;
                }
                r = fdstore_get_all(m->fdstore, &m->stored_names, &m->stored_fds, &m->n_stored);
                if (r < 0)
                        log_warning_errno(r, "Fetch fds from the fd holder: %m");
                return;
        }
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);
        if (n <= 0) {
                strv_free(names);
                return;
        }
        m->stored_fds = calloc(n, sizeof(int));
        if (!m->stored_fds) {
                strv_free(names);
                return;
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i, console_fd;
                /* The store hands back the envelope (see fdstore.h); the store keeps its copy. */
                int r = fdstore_unwrap_fd(fd, &console_fd);
                if (r >= 0) {
                        safe_close(fd);
                        fd = console_fd;
                } else if (r != -ENOTSOCK)
                        log_warning_errno(r, "Open fd store entry %s: %m", names[i]);
                m->stored_fds[i] = fd;
        }
        m->stored_names = names;
        m->n_stored = n;
}

/* A stored console whose machine did not come back is of no use: drop it from the store too. */
static void manager_release_unclaimed_fds(Manager *m)
{
        for (size_t i = 0; i < m->n_stored; i++) {
                if (m->stored_fds[i] < 0)
                        continue;
                if (have_service_fdstore()) {
                        _cleanup_free_ char *msg = NULL;
                        if (asprintf(&msg, "FDSTOREREMOVE=1\nFDNAME=%s", m->stored_names[i]) >= 0)
                                (void)sd_notify(false, msg);
                } else if (m->fdstore)
                        (void)fdstore_remove(m->fdstore, m->stored_names[i]);
                m->stored_fds[i] = safe_close(m->stored_fds[i]);
        }
}

static int manager_open_init(Manager *m)
{
        /* Tests and uninstalled builds point at the build tree; installed daemons use libexecdir. */
        const char *candidates[] = {getenv("MACHINEMGR_INIT_PATH"), MACHINEMGR_INIT_PATH, BUILD_INIT_PATH};
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                if (!candidates[i])
                        continue;
                m->init_fd = open(candidates[i], O_PATH | O_CLOEXEC);
                if (m->init_fd >= 0)
                        return 0;
        }
        return log_warning_errno(ENOENT, "machinemgr-init not found: Boot=no machines cannot start.");
}

static int manager_connect_system_bus(Manager *m)
{
        if (access("/run/dbus/system_bus_socket", F_OK) < 0)
                return 0;
        int r = sd_bus_open_system(&m->system_bus);
        if (r < 0)
                return log_warning_errno(r, "Connect to the system bus: %m (serving the private socket only)");
        r = manager_bus_add_objects(m, m->system_bus);
        if (r < 0)
                return log_error_errno(r, "Register objects on the system bus: %m");
        r = sd_bus_request_name(m->system_bus, MM_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Acquire bus name org.machinemgr1: %m");
        r = sd_bus_attach_event(m->system_bus, m->event, 0);
        if (r < 0)
                return log_error_errno(r, "Attach system bus to the event loop: %m");
        return 0;
}

/* A per-machine runtime dir without a machine is what a daemon killed early in a start leaves. */
static void manager_sweep_host_dirs(Manager *m)
{
        _cleanup_closedir_ DIR *d = opendir(m->host_dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || manager_get_machine(m, de->d_name))
                        continue;
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", m->host_dir, de->d_name) < 0)
                        return;
                log_machine_info(de->d_name, "Removing runtime directory left by an interrupted start.");
                (void)rm_rf_dir(p);
        }
}

/* Every state file is a machine that was running when the previous daemon went away. */
static void manager_adopt_all(Manager *m)
{
        _cleanup_closedir_ DIR *d = opendir(m->machines_dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                /* .#NAME.XXXXXX: an atomic state-file write cut short by a kill of the daemon (no machine
                 * name starts with a dot). */
                if (de->d_type == DT_REG && strncmp(de->d_name, ".#", 2) == 0) {
                        (void)unlinkat(dirfd(d), de->d_name, 0);
                        continue;
                }
                if (de->d_type != DT_REG || !machine_name_is_valid(de->d_name))
                        continue;
                int r = machine_adopt(m, de->d_name);
                if (r < 0)
                        log_machine_error_errno(de->d_name, r, "Re-adopt: %m");
        }
}

int manager_startup(Manager *m)
{
        int r;
        if (asprintf(&m->machines_dir, "%s/machines", m->runtime_dir) < 0 ||
            asprintf(&m->host_dir, "%s/host", m->runtime_dir) < 0)
                return log_oom();
        if ((r = mkdir_p(m->machines_dir, 0700)) < 0 || (r = mkdir_p(m->host_dir, 0755)) < 0)
                return log_error_errno(r, "Create %s: %m", m->runtime_dir);

        (void)manager_open_init(m);
        r = bus_private_listen(m);
        if (r < 0)
                return r;
        r = manager_connect_system_bus(m);
        if (r < 0)
                return r;
        /* Systemd mode when PID 1 is systemd and its bus answers; never a user's choice (SPEC §2), but
         * MACHINEMGR_CGROUP_BACKEND=direct forces direct mode for tests of it on a systemd host. */
        const char *force = getenv("MACHINEMGR_CGROUP_BACKEND");
        m->cgroup_backend = sd_booted() > 0 && m->system_bus && !streq_ptr(force, "direct") ? CGROUP_BACKEND_SYSTEMD
                                                                                            : CGROUP_BACKEND_DIRECT;
        if (m->cgroup_backend == CGROUP_BACKEND_SYSTEMD) {
                r = sd_bus_open_system(&m->systemd_bus);
                if (r >= 0)
                        /* Scopes are started asynchronously (machine_start_scope): replies and JobRemoved
                         * arrive through the loop. */
                        r = sd_bus_attach_event(m->systemd_bus, m->event, SD_EVENT_PRIORITY_NORMAL);
                if (r < 0)
                        return log_error_errno(r, "Open a connection to systemd: %m");
        }
        log_info("Running in %s mode.", m->cgroup_backend == CGROUP_BACKEND_SYSTEMD ? "systemd" : "direct");
        manager_collect_stored_fds(m);
        manager_adopt_all(m);
        manager_sweep_host_dirs(m);
        manager_release_unclaimed_fds(m);
        return 0;
}
