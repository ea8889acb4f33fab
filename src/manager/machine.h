/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One container and its lifecycle. The state machine lives here and only here:
 *
 *   (new) --spawn--> STARTING --READY=1--> RUNNING --poweroff/reboot/terminate--> STOPPING
 *     ^                 |                     |                                      |
 *     |                 +---- init exits -----+--------------------------------------+--> (gone)
 *     +------ init exits by SIGHUP (the guest rebooted) : respawn with the same settings
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "cgroup.h"
#include "console.h"
#include "manager.h"
#include "notify.h"
#include "reboot-watch.h"
#include "settings.h"

typedef enum MachineState {
        MACHINE_STARTING,
        MACHINE_RUNNING,
        MACHINE_STOPPING,
} MachineState;

/* Why a start failed; the bus face names it (bus_error_from_machine). */
typedef enum MachineErrorKind {
        MACHINE_ERROR_START_FAILED,
        MACHINE_ERROR_NO_INIT,
        MACHINE_ERROR_NO_SUCH_IMAGE,
        MACHINE_ERROR_IMAGE_BUSY,
        MACHINE_ERROR_INVALID_ARGUMENT,
} MachineErrorKind;

typedef struct MachineError {
        MachineErrorKind kind;
        char *message; /* "NAME: step: reason" */
} MachineError;

/* Fills e (the first failure is kept) and returns the negative errno that goes with the kind. */
int machine_error(MachineError *e, MachineErrorKind kind, const char *format, ...)
        __attribute__((format(printf, 3, 4)));
void machine_error_done(MachineError *e);

/* failure NULL: init exec'd. */
typedef void (*machine_start_done_t)(Machine *m, const char *failure, void *userdata);

struct Machine {
        Manager *manager;
        char *name;
        sd_id128_t id;
        MachineState state;
        char *root;        /* image directory */
        char *unit;        /* machine-NAME.scope */
        char *host_dir;    /* RUNTIME_DIR/host/NAME */
        char *state_file;  /* RUNTIME_DIR/machines/NAME */
        uint64_t timestamp; /* µs since the epoch, when the current run started */
        uint64_t spawn_begin_usec; /* CLOCK_MONOTONIC when the spawn began: set-up time (clone -> exec) in the log */
        bool spawn_shared_vm;      /* that spawn used the shared-memory spawn (container.c), not a fork */
        char *status_text;

        Settings *settings; /* merged: start options over the .machine file, defaults applied */

        pid_t leader;
        int leader_pidfd;
        uint64_t leader_starttime; /* /proc/PID/stat field 22: guards re-adoption against pid reuse */
        bool adopted;              /* not our child: its exit status only through PIDFD_GET_INFO (6.15) */
        sd_event_source *leader_source;
        sd_event_source *exit_probe; /* an adopted leader's exit status, once its new parent reaped it */
        unsigned exit_probe_tries;

        int sync_fd; /* from container_spawn, until init exec'd */
        sd_event_source *sync_source;
        machine_start_done_t start_done; /* the caller of machine_start waiting for the exec */
        void *start_userdata;
        char *spawn_failure;           /* why pre_start failed */
        CGroupSystemdStart *scope_start; /* systemd mode: the scope's start job, while the child waits for it */

        sd_event_source *cleanup_timer; /* retries cgroup removal while the kernel tears processes down */
        sd_event_source *save_timer;    /* a StatusText change waiting to be written to the state file */
        unsigned cleanup_tries;

        int image_lock_fd; /* flock on IMAGE_PATH/.#NAME.lck: one machine per image, no image ops meanwhile */
        CGroup *cgroup;
        struct MachineNetwork *network; /* network.c: host end of the veth, port forwarders */
        Console *console;
        Notify *notify;
        RebootWatch *reboot_watch;   /* the current init's reboot(2) calls */
        GuestRebootKind guest_reboot; /* the last one its pid namespace made */

        uint32_t uid_shift, uid_range; /* PrivateUsers= range, 0 = none (machine-userns.c) */
        bool stopping_for_reboot;
        bool reboot_requested; /* Reboot() asked the guest's init to reboot */
        bool stop_requested;   /* PowerOff() or Terminate(): whatever the guest does, it stays down */
        bool announced;        /* MachineNew sent: its init ran (or it was re-adopted) */
        bool finalizing;       /* its teardown has begun (machine_finalize) */
        /* Re-adopted from an older daemon's state file, which lacked most settings: never respawned. */
        bool settings_partial;
        bool respawn_pending; /* a reboot waits for the old cgroup to empty (cleanup_timer) */
        Machine *next;
};

int machine_new(Manager *manager, const char *name, Machine **ret);
Machine *machine_free(Machine *m);

/* Starts the container; done (may be NULL) is called once init has exec'd or its set-up failed, or the
 * machine went away before. Errors that can be known before cloning are returned right away, with error
 * filled in (and done never called). */
int machine_start(Machine *m, machine_start_done_t done, void *userdata, MachineError *error);

int machine_poweroff(Machine *m);
int machine_reboot(Machine *m);
int machine_terminate(Machine *m);
int machine_kill(Machine *m, const char *whom, int signo);
/* Limits as in Settings: LIMIT_UNSET leaves one as it is, LIMIT_INFINITY lifts it. */
typedef struct MachineLimits {
        uint64_t memory_max, cpu_quota_per_sec_usec, tasks_max;
} MachineLimits;
int machine_set_limits(Machine *m, const MachineLimits *limits);

/* Re-adoption after a daemon restart: 1 adopted, 0 gone (cleaned up), <0 error. */
int machine_adopt(Manager *manager, const char *name);

const char *machine_state_to_string(MachineState s);
int machine_state_from_string(const char *s);
/* Whether the bus shows it: not a machine that never ran and is being removed (a failed re-adoption's). */
bool machine_is_listed(const Machine *m);
