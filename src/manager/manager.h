/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's single owner object: the event loop, the bus connections, and every machine. */

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cgroup.h"
#include "fdstore.h"

typedef struct Machine Machine;
typedef struct ExitRecord ExitRecord;
typedef struct PrivateConnection PrivateConnection;

typedef struct Manager {
        sd_event *event;
        sd_bus *system_bus; /* systemd mode, or any host with a system bus; NULL otherwise */
        /* A second system bus connection for systemd's jobs (scopes are started asynchronously through it,
         * see machine_start_scope), so that synchronous calls to systemd never pump the connection our own
         * clients' method calls arrive on. */
        sd_bus *systemd_bus;

        int private_fd;              /* listening socket RUNTIME_DIR/private */
        sd_event_source *private_source;
        PrivateConnection *connections;
        unsigned connection_counter;

        Machine *machines;    /* list */
        ExitRecord *exits;    /* how each machine's last run ended, until its next start */

        CGroupBackend cgroup_backend;
        char *runtime_dir;    /* /run/machinemgr */
        char *machines_dir;   /* RUNTIME_DIR/machines: one state file per running machine */
        char *host_dir;       /* RUNTIME_DIR/host: one dir per machine, bound at the guest's /run/host */
        char *image_path;     /* /var/lib/machines */
        int init_fd;          /* O_PATH machinemgr-init, exec'd as PID 1 of Boot=no guests */

        FdStore *fdstore; /* direct mode's fd holder, when no service manager keeps fds for us */
        /* fds handed back by the fd store at start-up, until a machine claims them */
        char **stored_names;
        int *stored_fds;
        size_t n_stored;

        bool exiting;
} Manager;

int manager_new(Manager **ret);
Manager *manager_free(Manager *m);
int manager_startup(Manager *m);  /* bus, private socket, re-adoption */

Machine *manager_get_machine(Manager *m, const char *name);
Machine *manager_get_listed_machine(Manager *m, const char *name); /* machine_is_listed() ones only */

/* The service manager's fd store keeps console pty masters across daemon restarts (SPEC §9). All three are
 * no-ops when not running under a service manager that has one. */
/* owner_pidfd: the machine's leader (direct mode's holder drops the fd once it exits). */
/* Each machine keeps two fds there: its console's pty master, and its notify socket (so that what the guest
 * sends while no daemon runs — READY=1 — waits in the socket's queue for the next one). */
typedef enum FdStoreKind {
        FDSTORE_CONSOLE = 'c',
        FDSTORE_NOTIFY = 'n',
        FDSTORE_REBOOT = 'r', /* the guest's reboot(2) listener (reboot-watch.h) */
} FdStoreKind;
int manager_fdstore_put(Manager *m, const char *machine, FdStoreKind kind, int fd, int owner_pidfd);
void manager_fdstore_remove(Manager *m, const char *machine); /* every kind */
int manager_fdstore_take(Manager *m, const char *machine, FdStoreKind kind); /* the fd, or -ENOENT */

/* How a machine's last run ended (DBUS.md GetMachineExit). */
struct ExitRecord {
        char *name;
        char *result; /* exited, killed, failed, unknown */
        int status;
        uint64_t timestamp;
        char *message;
        ExitRecord *next;
};
void manager_record_exit(Manager *m, const char *name, const char *result, int status, const char *message);
ExitRecord *manager_find_exit(Manager *m, const char *name);
void manager_forget_exit(Manager *m, const char *name);

/* Every connection we serve (system bus + private ones): signals go to all of them. */
typedef int (*manager_bus_func)(sd_bus *bus, void *userdata);
void manager_foreach_bus(Manager *m, manager_bus_func f, void *userdata);

/* D-Bus faces (manager-dbus.c, machine-dbus.c, bus-private.c) */
int manager_bus_add_objects(Manager *m, sd_bus *bus);
int bus_private_listen(Manager *m);
int bus_check_root(sd_bus_message *msg, sd_bus_error *error);
int bus_emit_machine_new(Manager *m, Machine *machine);
int bus_emit_machine_removed(Manager *m, Machine *machine);
int bus_emit_machine_changed(Machine *machine, const char *property);
/* So that machinectl, journalctl -M and systemctl -M see the machine (systemd mode). */
void bus_register_machined(Machine *machine);
typedef struct MachineError MachineError;
/* Sets error to the D-Bus error of a failed machine_start (r without a MachineError: its errno). */
int bus_error_from_machine(sd_bus_error *error, const MachineError *e, int r);
int machine_bus_path(const char *name, char **ret);

/* One accepted connection on the private socket. */
struct PrivateConnection {
        Manager *manager;
        sd_bus *bus;
        /* Set once the peer has sent its first message. Until then it gets no signals: a client that says
         * Hello fails with EIO on any message that arrives before the Hello reply. */
        bool spoke;
        sd_event_source *demote_source; /* moves the connection to normal priority after its handshake */
        sd_event_source *drop_source;   /* set once it is to be disconnected (see bus_private_connection_check) */
        PrivateConnection *next;
};
PrivateConnection *bus_private_connection_free(PrivateConnection *c);
/* false when c is being disconnected (its write queue is over the bound): send it nothing more. */
bool bus_private_connection_check(PrivateConnection *c);
