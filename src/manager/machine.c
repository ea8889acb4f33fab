/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "machine.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "container.h"
#include "host-limits.h"
#include "image.h"
#include "machine-state.h"
#include "machine-userns.h"
#include "log.h"
#include "names.h"
#include "netns.h"
#include "network.h"
#include "util.h"

/* How long teardown waits for the kernel to empty the cgroups after init died (pid namespace teardown is
 * asynchronous for the v1 hierarchies' process lists). */
#define CLEANUP_RETRY_USEC (20 * 1000)
#define CLEANUP_MAX_TRIES 250

static int machine_spawn(Machine *m, MachineError *error);
static void machine_finalize(Machine *m);
static int machine_kill_everything(Machine *m);
static void machine_reply_start(Machine *m, const char *failure);

const char *machine_state_to_string(MachineState s)
{
        static const char *const table[] = {
                [MACHINE_STARTING] = "starting",
                [MACHINE_RUNNING] = "running",
                [MACHINE_STOPPING] = "stopping",
        };
        return table[s];
}

static const int machine_error_errno[] = {
        [MACHINE_ERROR_START_FAILED] = EIO,
        [MACHINE_ERROR_NO_INIT] = ENOEXEC,
        [MACHINE_ERROR_NO_SUCH_IMAGE] = ENOENT,
        [MACHINE_ERROR_IMAGE_BUSY] = EBUSY,
        [MACHINE_ERROR_INVALID_ARGUMENT] = EINVAL,
};

int machine_error(MachineError *e, MachineErrorKind kind, const char *format, ...)
{
        if (e && !e->message) {
                va_list ap;
                va_start(ap, format);
                if (vasprintf(&e->message, format, ap) < 0)
                        e->message = NULL;
                va_end(ap);
                e->kind = kind;
        }
        return -machine_error_errno[kind];
}

void machine_error_done(MachineError *e)
{
        e->message = mfree(e->message);
}

bool machine_is_listed(const Machine *m)
{
        return m->announced || !m->finalizing;
}

int machine_state_from_string(const char *s)
{
        for (MachineState i = MACHINE_STARTING; i <= MACHINE_STOPPING; i++)
                if (streq(s, machine_state_to_string(i)))
                        return i;
        return -EINVAL;
}

/* Tests kill the daemon at named steps (MACHINEMGR_TEST_CRASH_AT=STEP) to prove that a restarted daemon
 * finds every machine whole, wherever its predecessor died. */
static void machine_crash_point(Machine *m, const char *step)
{
        const char *at = getenv("MACHINEMGR_TEST_CRASH_AT");
        if (!at || !streq(at, step))
                return;
        log_machine_warning_errno(m->name, 0, "Test crash point %s reached: killing the daemon.", step);
        (void)raise(SIGKILL);
}

static int pidfd_send(int pidfd, int sig)
{
        return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

static int pid_starttime(pid_t pid, uint64_t *ret)
{
        char path[64];
        _cleanup_free_ char *stat = NULL;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        int r = read_one_line_file(path, &stat);
        if (r < 0)
                return r;
        /* comm (field 2) may contain spaces and parentheses: count fields after the last ')'. */
        char *p = strrchr(stat, ')');
        if (!p)
                return -EIO;
        for (int field = 2; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EIO;
        }
        return safe_atou64(strndupa(p + 1, strcspn(p + 1, " ")), ret);
}

int machine_new(Manager *manager, const char *name, Machine **ret)
{
        Machine *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->manager = manager;
        m->leader_pidfd = -1;
        m->sync_fd = -1;
        m->image_lock_fd = -1;
        m->name = strdup(name);
        if (!m->name || machine_scope_unit_name(name, &m->unit) < 0 ||
            asprintf(&m->host_dir, "%s/%s", manager->host_dir, name) < 0 ||
            asprintf(&m->state_file, "%s/%s", manager->machines_dir, name) < 0 ||
            asprintf(&m->root, "%s/%s", manager->image_path, name) < 0) {
                machine_free(m);
                return -ENOMEM;
        }
        m->next = manager->machines;
        manager->machines = m;
        *ret = m;
        return 0;
}

static void machine_unlink(Machine *m)
{
        for (Machine **p = &m->manager->machines; *p; p = &(*p)->next)
                if (*p == m) {
                        *p = m->next;
                        break;
                }
}

static void machine_release_process(Machine *m)
{
        m->scope_start = cgroup_systemd_start_cancel(m->scope_start);
        m->leader_source = sd_event_source_disable_unref(m->leader_source);
        m->exit_probe = sd_event_source_disable_unref(m->exit_probe);
        m->sync_source = sd_event_source_disable_unref(m->sync_source);
        m->leader_pidfd = safe_close(m->leader_pidfd);
        m->sync_fd = safe_close(m->sync_fd);
        m->reboot_watch = reboot_watch_free(m->reboot_watch);
        m->leader = 0;
}

Machine *machine_free(Machine *m)
{
        if (!m)
                return NULL;
        machine_unlink(m);
        machine_release_process(m);
        m->cleanup_timer = sd_event_source_disable_unref(m->cleanup_timer);
        m->save_timer = sd_event_source_disable_unref(m->save_timer);
        safe_close(m->image_lock_fd); /* the lock file stays for a re-adopting daemon to take again */
        machine_reply_start(m, "the machine went away before its init ran");
        console_free(m->console);
        notify_free(m->notify);
        network_machine_free(m);
        if (m->cgroup)
                cgroup_free(m->cgroup);
        settings_free(m->settings);
        free(m->status_text);
        free(m->spawn_failure);
        free(m->name);
        free(m->unit);
        free(m->host_dir);
        free(m->state_file);
        free(m->root);
        free(m);
        return NULL;
}

static void machine_set_state(Machine *m, MachineState s)
{
        if (m->state == s)
                return;
        m->state = s;
        (void)machine_state_save(m);
        bus_emit_machine_changed(m, "State");
}

#define STATUS_SAVE_DELAY_USEC (1000 * 1000)

static int machine_on_save_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Machine *m = userdata;
        m->save_timer = sd_event_source_disable_unref(m->save_timer);
        (void)machine_state_save(m);
        return 0;
}

/* StatusText survives a restart too, but a guest changing it often costs one state file write a second. */
static void machine_save_soon(Machine *m)
{
        if (m->save_timer)
                return;
        if (sd_event_add_time_relative(m->manager->event, &m->save_timer, CLOCK_MONOTONIC, STATUS_SAVE_DELAY_USEC,
                                       0, machine_on_save_timer, m) < 0)
                (void)machine_state_save(m);
}

static void machine_on_notify(const char *key, const char *value, void *userdata)
{
        Machine *m = userdata;

        if (streq(key, "READY") && streq(value, "1") && m->state == MACHINE_STARTING) {
                log_machine_info(m->name, "Guest is ready.");
                machine_set_state(m, MACHINE_RUNNING);
        } else if (streq(key, "STATUS")) {
                char *s = strdup(value);
                if (!s)
                        return;
                free(m->status_text);
                m->status_text = s;
                bus_emit_machine_changed(m, "StatusText");
                machine_save_soon(m);
        } else if (streq(key, "STOPPING") && streq(value, "1") && m->state != MACHINE_STOPPING)
                machine_set_state(m, MACHINE_STOPPING);
}

/* The caller of machine_start learns the outcome of the set-up here, once. */
static void machine_reply_start(Machine *m, const char *failure)
{
        machine_start_done_t done = m->start_done;
        if (!done)
                return;
        m->start_done = NULL;
        done(m, failure, m->start_userdata);
}

/* Drains the sync socket; returns the set-up error text if the child reported one. */
static void machine_on_guest_reboot(GuestRebootKind kind, void *userdata)
{
        Machine *m = userdata;
        m->guest_reboot = kind;
}

/* The new init's reboot(2) listener, kept in the fd store at once: without a listener the guest's reboot(2)
 * would fail (ENOSYS). */
static void machine_watch_reboots(Machine *m, int listener)
{
        m->reboot_watch = reboot_watch_free(m->reboot_watch);
        int r = reboot_watch_new(m->manager->event, listener, m->leader, machine_on_guest_reboot, m,
                                 &m->reboot_watch);
        if (r < 0) {
                log_machine_warning_errno(m->name, r, "Watch the guest's reboot(2) calls: %m");
                return;
        }
        (void)manager_fdstore_put(m->manager, m->name, FDSTORE_REBOOT, reboot_watch_fd(m->reboot_watch),
                                  m->leader_pidfd);
}

static char *machine_read_sync(Machine *m, int *ret_state)
{
        char *failure = NULL;
        int listener = -1, r;
        while ((r = container_sync_read_full(m->sync_fd, &failure, &listener)) == 2)
                machine_watch_reboots(m, TAKE_FD(listener));
        *ret_state = r;
        if (r <= 0) {
                m->sync_source = sd_event_source_disable_unref(m->sync_source);
                m->sync_fd = safe_close(m->sync_fd);
        }
        if (r < 0 && !failure)
                (void)asprintf(&failure, "set-up: %s", strerror(-r));
        return failure;
}

static int machine_on_sync(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Machine *m = userdata;
        int state;
        _cleanup_free_ char *failure = machine_read_sync(m, &state);

        if (state > 0)
                return 0;
        if (state == 0) {
                /* The set-up time is what benchmarks (tools/bench/boot.py) read: it is our share of a start. */
                log_machine_info(m->name, "Started %s as PID %d (set-up %.2f ms, %s).",
                                 m->settings->boot ? "init" : "payload", (int)m->leader,
                                 (double)(now_usec(CLOCK_MONOTONIC) - m->spawn_begin_usec) / 1000.0,
                                 m->spawn_shared_vm ? "shared-memory spawn" : "forked");
                if (m->manager->cgroup_backend == CGROUP_BACKEND_DIRECT && m->cgroup)
                        (void)cgroup_direct_boost_setup(m->cgroup, false);
                machine_crash_point(m, m->announced ? "reboot-exec" : "start-exec");
                machine_reply_start(m, NULL);
                if (m->manager->cgroup_backend == CGROUP_BACKEND_SYSTEMD)
                        bus_register_machined(m);
                if (!m->announced) {
                        /* Only a machine whose init runs is announced: a failed start never was one. */
                        m->announced = true;
                        bus_emit_machine_new(m->manager, m);
                }
                return 0;
        }
        log_machine_error_errno(m->name, 0, "Start failed: %s", failure);
        manager_record_exit(m->manager, m->name, "failed", -state, failure);
        machine_reply_start(m, failure);
        /* The child exits right after reporting: the leader handler tears down. */
        return 0;
}

static void machine_log_exit(Machine *m, const char *result, int status)
{
        if (streq(result, "exited"))
                log_machine_info(m->name, "Init exited with status %d.", status);
        else if (streq(result, "killed"))
                log_machine_info(m->name, "Init was killed by signal %s (%d).", sigabbrev_np(status) ?: "?",
                                 status);
        else if (streq(result, "poweroff"))
                log_machine_info(m->name, "The guest powered itself off (init ended by SIGINT from reboot(2)).");
        else
                log_machine_info(m->name, "Init is gone (exit status not observable after re-adoption).");
}

static int machine_spawn_logged(Machine *m)
{
        log_machine_info(m->name, "Rebooting.");
        MachineError error = {};
        int r = machine_spawn(m, &error);
        if (r < 0)
                log_machine_error_errno(m->name, r, "Reboot failed: %s", error.message ?: strerror(-r));
        machine_error_done(&error);
        return r;
}

static int machine_wait_cgroup_gone(Machine *m);

/* The same machine again, after its init ended for a reboot: fresh cgroup and process, same console,
 * notify socket, settings and bus object. */
static int machine_respawn(Machine *m)
{
        machine_crash_point(m, "reboot-gone");
        m->stopping_for_reboot = false;
        machine_release_process(m);
        if (m->console)
                console_flush(m->console);
        if (m->cgroup) {
                (void)cgroup_kill(m->cgroup, SIGKILL);
                int r = cgroup_destroy(m->cgroup);
                if (r == -EBUSY) {
                        m->respawn_pending = true;
                        r = machine_wait_cgroup_gone(m);
                        if (r >= 0)
                                return 0;
                        m->respawn_pending = false;
                }
                if (r < 0)
                        return log_machine_error_errno(m->name, r, "Reboot failed: remove the old cgroup: %m");
                m->cgroup = cgroup_free(m->cgroup);
        }
        return machine_spawn_logged(m);
}

static void machine_leader_gone(Machine *m, const char *result, int status)
{
        /* A failed start was recorded (with its reason) by the sync handler; keep that record. */
        int sync_state = 1;
        if (m->sync_fd >= 0) {
                _cleanup_free_ char *failure = machine_read_sync(m, &sync_state);
                if (sync_state == 0)
                        machine_reply_start(m, NULL); /* exec'd, and already gone (e.g. /bin/true) */
                else if (sync_state < 0) {
                        log_machine_error_errno(m->name, 0, "Start failed: %s", failure);
                        manager_record_exit(m->manager, m->name, "failed", -sync_state, failure);
                        machine_reply_start(m, failure);
                }
        }
        ExitRecord *rec = manager_find_exit(m->manager, m->name);
        bool start_failed = rec && streq(rec->result, "failed") && rec->timestamp >= m->timestamp;

        /* The kernel ends a PID namespace's init with SIGINT when something in it calls reboot(2) to power
         * off or halt (SIGHUP: restart), and no SIGINT from outside can kill an init (only signals it
         * handles reach it). So this is a clean power-off, recorded as such; status keeps the signal. */
        const char *message = NULL;
        if (streq(result, "killed") && status == SIGINT) {
                result = "poweroff";
                message = "init ended by SIGINT: the guest called reboot(2) to power off or halt";
        }
        if (!start_failed) {
                machine_log_exit(m, result, status);
                machine_reply_start(m, NULL);
                manager_record_exit(m->manager, m->name, result, status, message);
        }

        /* A guest's reboot(2) ends its init with SIGHUP; a Reboot() of a Boot=no guest asked for the
         * same. Either way: the same machine comes back with the same settings. */
        bool reboot = !start_failed && m->state != MACHINE_STOPPING && streq(result, "killed") && status == SIGHUP;
        /* An adopted leader's status does not tell a reboot: the kernel reports the pid namespace's reboot(2)
         * to the parent it had, and PIDFD_GET_INFO shows init's own exit (0). What its reboot(2) asked for
         * does (reboot-watch.h); without a listener, a reboot we asked for is taken at its word. */
        if (m->adopted && !start_failed && !m->stop_requested)
                reboot = m->guest_reboot == GUEST_REBOOT_RESTART ||
                         (m->guest_reboot == GUEST_REBOOT_NONE && m->reboot_requested);
        m->reboot_requested = false;
        if ((m->stopping_for_reboot || reboot) && !m->settings_partial && machine_respawn(m) >= 0)
                return;
        machine_finalize(m);
}

static int machine_on_child(sd_event_source *s, const siginfo_t *si, void *userdata)
{
        Machine *m = userdata;
        if (si->si_code == CLD_EXITED)
                machine_leader_gone(m, "exited", si->si_status);
        else
                machine_leader_gone(m, "killed", si->si_status);
        return 0;
}

/* Adopted leaders are not our children: a readable pidfd is all we learn. */
/* Linux 6.15's PIDFD_GET_INFO tells the exit status of any process we hold a pidfd of, once it has been
 * reaped; older kernels' headers (and kernels) lack it. */
struct mm_pidfd_info {
        uint64_t mask, cgroupid;
        uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
        int32_t exit_code;
};
#define MM_PIDFD_GET_INFO _IOWR(0xFF, 11, struct mm_pidfd_info)
#define MM_PIDFD_INFO_EXIT (1ULL << 3)
#define ADOPTED_EXIT_PROBE_USEC (50 * 1000)
#define ADOPTED_EXIT_PROBE_TRIES 100

/* 1 with *ret_wstatus when the kernel tells, 0 when not (yet), -errno when it never will. */
static int pidfd_exit_status(int pidfd, int *ret_wstatus)
{
        struct mm_pidfd_info info = {.mask = MM_PIDFD_INFO_EXIT};
        if (ioctl(pidfd, MM_PIDFD_GET_INFO, &info) < 0)
                return errno == ESRCH ? 0 : -errno;
        if (!(info.mask & MM_PIDFD_INFO_EXIT))
                return 0;
        *ret_wstatus = info.exit_code;
        return 1;
}

/* Whoever inherited the adopted leader (the host's init) reaps it a moment after its exit; until then its
 * status is not known. Polled briefly, then given up as unknown. */
static int machine_on_adopted_exit_probe(sd_event_source *s, uint64_t usec, void *userdata)
{
        Machine *m = userdata;
        int status = 0, r = pidfd_exit_status(m->leader_pidfd, &status);
        if (r == 0 && ++m->exit_probe_tries < ADOPTED_EXIT_PROBE_TRIES) {
                (void)sd_event_source_set_time_relative(s, ADOPTED_EXIT_PROBE_USEC);
                return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        m->exit_probe = sd_event_source_disable_unref(m->exit_probe);
        if (r <= 0)
                machine_leader_gone(m, "unknown", 0);
        else if (WIFEXITED(status))
                machine_leader_gone(m, "exited", WEXITSTATUS(status));
        else
                machine_leader_gone(m, "killed", WTERMSIG(status));
        return 0;
}

static int machine_on_adopted_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Machine *m = userdata;
        /* The pidfd stays readable: one probe timer instead. */
        (void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
        m->exit_probe_tries = 0;
        int r = sd_event_add_time_relative(m->manager->event, &m->exit_probe, CLOCK_MONOTONIC, 0, 0,
                                           machine_on_adopted_exit_probe, m);
        if (r < 0)
                machine_leader_gone(m, "unknown", 0);
        return 0;
}

static void machine_remove_files(Machine *m)
{
        if (m->image_lock_fd >= 0)
                m->image_lock_fd = image_unlock(m->manager->image_path, m->name, m->image_lock_fd);
        network_machine_stop(m);
        userns_machine_stop(m);
        (void)unlink(m->state_file);
        int r = rm_rf_dir(m->host_dir);
        if (r < 0)
                log_machine_warning_errno(m->name, r, "Remove %s: %m", m->host_dir);
}

static void machine_finish(Machine *m)
{
        m->notify = notify_free(m->notify);
        manager_fdstore_remove(m->manager, m->name);
        machine_remove_files(m);
        if (m->announced)
                bus_emit_machine_removed(m->manager, m);
        machine_free(m);
}

static int machine_on_cleanup_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Machine *m = userdata;
        int r = cgroup_destroy(m->cgroup);
        if (r == -EBUSY && ++m->cleanup_tries < CLEANUP_MAX_TRIES) {
                (void)cgroup_kill(m->cgroup, SIGKILL);
                sd_event_source_set_time_relative(s, CLEANUP_RETRY_USEC);
                return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_machine_warning_errno(m->name, r, "Remove cgroup %s: %m", strempty(cgroup_path(m->cgroup)));
        m->cleanup_timer = sd_event_source_disable_unref(m->cleanup_timer);
        if (m->respawn_pending) {
                m->respawn_pending = false;
                if (r >= 0) {
                        m->cgroup = cgroup_free(m->cgroup);
                        if (machine_spawn_logged(m) >= 0)
                                return 0;
                }
                machine_finalize(m);
                return 0;
        }
        machine_finish(m);
        return 0;
}

/* Retries removing the cgroup from a timer: processes outside the pid namespace (a shell session's helper)
 * can outlive init by a moment, and the kernel empties v1 cgroups asynchronously. */
static int machine_wait_cgroup_gone(Machine *m)
{
        m->cleanup_tries = 0;
        return sd_event_add_time_relative(m->manager->event, &m->cleanup_timer, CLOCK_MONOTONIC,
                                          CLEANUP_RETRY_USEC, 0, machine_on_cleanup_timer, m);
}

/* Everything the machine had goes: processes, cgroups, runtime files, the bus object. */
static void machine_finalize(Machine *m)
{
        m->finalizing = true;
        machine_release_process(m);
        if (m->console)
                console_flush(m->console);

        if (!m->cgroup) {
                machine_finish(m);
                return;
        }
        (void)cgroup_kill(m->cgroup, SIGKILL);
        int r = cgroup_destroy(m->cgroup);
        if (r != -EBUSY) {
                if (r < 0)
                        log_machine_warning_errno(m->name, r, "Remove cgroup %s: %m",
                                                  strempty(cgroup_path(m->cgroup)));
                machine_finish(m);
                return;
        }
        if (machine_wait_cgroup_gone(m) < 0)
                machine_finish(m);
}

static void limits_from_settings(const Settings *s, CGroupLimits *l)
{
        l->memory_max = s->memory_max >= LIMIT_INFINITY ? UINT64_MAX : s->memory_max;
        l->cpu_quota_per_sec_usec =
                s->cpu_quota_per_sec_usec >= LIMIT_INFINITY ? UINT64_MAX : s->cpu_quota_per_sec_usec;
        l->tasks_max = s->tasks_max >= LIMIT_INFINITY ? UINT64_MAX : s->tasks_max;
}

static int machine_pre_start(pid_t pid, void *userdata)
{
        Machine *m = userdata;
        machine_crash_point(m, m->announced ? "reboot-cloned" : "start-cloned");
        int net_r = network_machine_pre_start(m, pid);
        if (net_r < 0)
                return net_r;
        /* Systemd mode: the scope is made around the waiting child from the event loop (machine_on_scope). */
        if (m->manager->cgroup_backend == CGROUP_BACKEND_SYSTEMD)
                return 0;
        int r = cgroup_attach(m->cgroup, pid);
        if (r < 0)
                return log_machine_error_errno(m->name, r, "Attach PID %d to cgroup: %m", (int)pid);
        return userns_machine_pre_start(m);
}

/* The child gave up when we stopped talking to it; its exit ends the machine (machine_leader_gone), with
 * this failure on record. */
static void machine_fail_waiting_child(Machine *m, int r, const char *failure)
{
        log_machine_error_errno(m->name, 0, "Start failed: %s", failure);
        manager_record_exit(m->manager, m->name, "failed", -r, failure);
        machine_reply_start(m, failure);
        m->sync_source = sd_event_source_disable_unref(m->sync_source);
        m->sync_fd = safe_close(m->sync_fd);
        (void)pidfd_send(m->leader_pidfd, SIGKILL);
}

static void machine_on_scope(CGroup *cg, int r, const char *error, void *userdata)
{
        Machine *m = userdata;
        m->scope_start = NULL;
        if (r >= 0) {
                m->cgroup = cg;
                r = userns_machine_pre_start(m);
                if (r >= 0)
                        r = container_send_go(m->sync_fd);
                if (r >= 0) {
                        (void)machine_state_save(m);
                        return;
                }
                error = NULL;
        }
        _cleanup_free_ char *failure = NULL;
        if (asprintf(&failure, "%s", error ?: strerror(-r)) < 0)
                failure = NULL;
        machine_fail_waiting_child(m, r, failure ?: "start the scope");
}

/* Systemd mode: StartTransientUnit for the scope is sent now; the child, already cloned, builds its mounts
 * meanwhile and goes on once the scope holds it. The loop serves other clients while systemd works. */
static int machine_start_scope(Machine *m, MachineError *error)
{
        CGroupLimits limits;
        _cleanup_free_ char *description = NULL;
        limits_from_settings(m->settings, &limits);
        if (asprintf(&description, "Container %s", m->name) < 0)
                return -ENOMEM;
        int r = cgroup_systemd_create_async(m->manager->systemd_bus, m->name, description, m->leader, &limits,
                                            m->settings->kill_signal, machine_on_scope, m, &m->scope_start);
        if (r < 0)
                return machine_error(error, MACHINE_ERROR_START_FAILED, "%s: start %s: %s", m->name,
                                     m->unit ?: "the scope", strerror(-r));
        return 0;
}

static int machine_build_argv(Machine *m, char ***ret_argv, int *ret_exec_fd, MachineError *error)
{
        _cleanup_strv_free_ char **argv = NULL;
        if (m->settings->boot) {
                _cleanup_free_ char *init = NULL;
                int r = container_find_init(m->root, &init);
                if (r < 0)
                        return machine_error(error, MACHINE_ERROR_NO_INIT,
                                             "%s: the image has no init to boot (looked for "
                                             "/usr/lib/systemd/systemd, /lib/systemd/systemd, /sbin/init): %s",
                                             m->name, strerror(-r));
                if (strv_extend(&argv, init) < 0)
                        return -ENOMEM;
                *ret_exec_fd = -1;
        } else {
                if (m->manager->init_fd < 0)
                        return machine_error(error, MACHINE_ERROR_START_FAILED,
                                             "%s: machinemgr-init is not installed", m->name);
                if (strv_extend(&argv, "machinemgr-init") < 0 || strv_extend(&argv, "--") < 0)
                        return -ENOMEM;
                if (m->settings->command)
                        STRV_FOREACH(a, m->settings->command) if (strv_extend(&argv, *a) < 0) return -ENOMEM;
                if (!m->settings->command && strv_extend(&argv, "/bin/sh") < 0)
                        return -ENOMEM;
                *ret_exec_fd = m->manager->init_fd;
        }
        *ret_argv = TAKE_PTR(argv);
        return 0;
}

/* Clones the guest's init. Used for the first start and for reboots. */
static int machine_spawn(Machine *m, MachineError *error)
{
        _cleanup_strv_free_ char **argv = NULL;
        int exec_fd = -1, r;

        m->spawn_begin_usec = now_usec(CLOCK_MONOTONIC);
        r = machine_build_argv(m, &argv, &exec_fd, error);
        if (r < 0)
                return r;
        r = userns_machine_prepare(m, error);
        if (r < 0)
                return r;

        if (m->manager->cgroup_backend == CGROUP_BACKEND_DIRECT) {
                CGroupLimits limits;
                limits_from_settings(m->settings, &limits);
                r = cgroup_direct_prepare(m->name, &m->cgroup);
                if (r < 0)
                        return machine_error(error, MACHINE_ERROR_START_FAILED, "%s: create cgroup: %s", m->name,
                                             strerror(-r));
                /* Recorded before any of it exists: a daemon killed from here on leaves a state file whose
                 * leader is not (yet) known, and the next daemon kills and removes whatever of the cgroup
                 * was made instead of leaving an orphan — or an unsupervised guest — behind. */
                m->leader = 0;
                (void)machine_state_save(m);
                r = cgroup_direct_realize(m->cgroup, &limits);
                if (r < 0) {
                        m->cgroup = cgroup_free(m->cgroup);
                        return machine_error(error, MACHINE_ERROR_START_FAILED, "%s: create cgroup: %s", m->name,
                                             strerror(-r));
                }
                (void)cgroup_direct_boost_setup(m->cgroup, true);
                machine_crash_point(m, m->announced ? "reboot-cgroup" : "start-cgroup");
        }

        ContainerConfig c = {
                .name = m->name,
                .root = m->root,
                .uuid = m->id,
                .hostname = m->settings->hostname ?: m->name,
                .argv = argv,
                .exec_fd = exec_fd,
                .environment = m->settings->environment,
                .console_path = console_slave_path(m->console),
                .run_host_dir = m->host_dir,
                .private_network = m->settings->network_mode != NETWORK_HOST,
                .host0 = m->settings->network_mode == NETWORK_VETH || m->settings->network_mode == NETWORK_BRIDGE,
                .addresses = m->settings->addresses,
                .resolv_conf = m->settings->resolv_conf == RESOLV_CONF_COPY_HOST   ? NETNS_RESOLV_CONF_COPY
                               : m->settings->resolv_conf == RESOLV_CONF_BIND_HOST ? NETNS_RESOLV_CONF_BIND
                                                                                   : NETNS_RESOLV_CONF_LEAVE,
                .read_only = m->settings->read_only > 0,
                .ephemeral = m->settings->ephemeral > 0,
                .binds = m->settings->binds,
                .n_binds = m->settings->n_binds,
                .capabilities = container_default_capabilities(m->settings->network_mode != NETWORK_HOST),
                .syscall_filter = m->settings->syscall_filter,
                .cgroup2_fd = m->cgroup ? cgroup_clone_fd(m->cgroup) : -1,
                .pre_start = machine_pre_start,
                .userdata = m,
                .defer_go = m->manager->cgroup_backend == CGROUP_BACKEND_SYSTEMD,
                .share_vm = m->settings->memory_max >= LIMIT_INFINITY,
                .watch_reboot = true,
        };
        c.capabilities = (c.capabilities | m->settings->capability_add) & ~m->settings->capability_drop;
        c.uid_shift = m->uid_shift;
        c.uid_range = m->uid_range;

        ContainerProcess p;
        _cleanup_free_ char *failure = NULL;
        r = container_spawn(&c, &p, &failure);
        if (r < 0) {
                if (m->cgroup) {
                        (void)cgroup_destroy(m->cgroup);
                        m->cgroup = cgroup_free(m->cgroup);
                }
                const char *why = m->spawn_failure ?: failure;
                r = machine_error(error, MACHINE_ERROR_START_FAILED, "%s: %s", m->name, why ?: strerror(-r));
                m->spawn_failure = mfree(m->spawn_failure);
                return r;
        }
        m->leader = p.pid;
        m->guest_reboot = GUEST_REBOOT_NONE;
        notify_set_sender(m->notify, m->leader);
        m->leader_pidfd = p.pidfd;
        m->sync_fd = p.sync_fd;
        m->spawn_shared_vm = p.shared_vm;
        m->adopted = false;
        (void)pid_starttime(m->leader, &m->leader_starttime);
        m->timestamp = now_usec(CLOCK_REALTIME);
        m->state = MACHINE_STARTING;

        r = sd_event_add_io(m->manager->event, &m->sync_source, m->sync_fd, EPOLLIN, machine_on_sync, m);
        if (r >= 0)
                r = sd_event_add_child_pidfd(m->manager->event, &m->leader_source, m->leader_pidfd, WEXITED,
                                             machine_on_child, m);
        if (r >= 0 && m->manager->cgroup_backend == CGROUP_BACKEND_SYSTEMD)
                r = machine_start_scope(m, error);
        if (r < 0) {
                (void)pidfd_send(m->leader_pidfd, SIGKILL);
                return machine_error(error, MACHINE_ERROR_START_FAILED, "%s: watch init: %s", m->name,
                                     strerror(-r));
        }
        console_set_leader(m->console, m->leader);
        /* After every spawn (reboots too): the holder ties both to the current leader. */
        (void)manager_fdstore_put(m->manager, m->name, FDSTORE_CONSOLE, console_master_fd(m->console),
                                  m->leader_pidfd);
        (void)manager_fdstore_put(m->manager, m->name, FDSTORE_NOTIFY, notify_fd(m->notify), m->leader_pidfd);
        (void)machine_state_save(m);
        bus_emit_machine_changed(m, "Leader");
        return 0;
}

static int machine_check_image(Machine *m, MachineError *error)
{
        struct stat st;
        if (stat(m->root, &st) < 0 || !S_ISDIR(st.st_mode))
                return machine_error(error, MACHINE_ERROR_NO_SUCH_IMAGE, "%s: no image at %s", m->name,
                                         m->root);
        return 0;
}

int machine_start(Machine *m, machine_start_done_t done, void *userdata, MachineError *error)
{
        int r = machine_check_image(m, error);
        if (r < 0)
                return r;

        /* Many guests share the host's per-user limits: warn before one comes up degraded (host-limits.h). */
        unsigned booted = 0, starting = 0;
        for (Machine *i = m->manager->machines; i; i = i->next)
                if (i != m && i->settings && i->settings->boot > 0) {
                        booted++;
                        starting += i->state == MACHINE_STARTING;
                }
        _cleanup_free_ char *limit_failure = NULL;
        r = host_limits_check_start(m->name, booted, starting, m->settings->boot > 0, &limit_failure);
        if (r < 0) {
                /* Recorded, so `machinemgr status NAME` says why even when the caller dropped the error. */
                r = machine_error(error, MACHINE_ERROR_START_FAILED, "%s: host limit: %s", m->name, limit_failure);
                manager_record_exit(m->manager, m->name, "failed", E2BIG, error->message);
                return r;
        }

        r = image_lock(m->manager->image_path, m->name, &m->image_lock_fd);
        if (r == -EBUSY)
                return machine_error(error, MACHINE_ERROR_IMAGE_BUSY,
                                         "%s: the image is in use (locked by another machine or image operation)",
                                         m->name);
        if (r < 0)
                return machine_error(error, MACHINE_ERROR_START_FAILED, "%s: lock image: %s", m->name,
                                         strerror(-r));

        sd_id128_randomize(&m->id);
        manager_forget_exit(m->manager, m->name);

        r = mkdir_p(m->host_dir, 0755);
        if (r >= 0)
                r = notify_new(m->manager->event, m->host_dir, machine_on_notify, m, &m->notify);
        if (r >= 0)
                r = console_new(m->manager->event, m->name, &m->console);
        if (r >= 0)
                r = console_start(m->console);
        if (r < 0) {
                machine_remove_files(m);
                return machine_error(error, MACHINE_ERROR_START_FAILED, "%s: prepare console: %s",
                                         m->name, strerror(-r));
        }

        r = machine_spawn(m, error);
        if (r < 0) {
                manager_record_exit(m->manager, m->name, "failed", -r, error->message);
                machine_remove_files(m);
                return r;
        }
        m->start_done = done;
        m->start_userdata = userdata;
        return 0;
}

int machine_poweroff(Machine *m)
{
        if (m->leader_pidfd < 0)
                return -ESRCH;
        int sig = m->settings->kill_signal ?: SIGRTMIN + 4;
        int r = pidfd_send(m->leader_pidfd, sig);
        if (r < 0)
                return r;
        log_machine_info(m->name, "Powering off (signal %d to init).", sig);
        m->stop_requested = true;
        machine_set_state(m, MACHINE_STOPPING);
        return 0;
}

int machine_reboot(Machine *m)
{
        if (m->leader_pidfd < 0)
                return -ESRCH;
        if (m->settings_partial)
                return -EOPNOTSUPP;
        if (!m->settings->boot) {
                /* machinemgr-init has no reboot of its own: start the payload afresh. */
                log_machine_info(m->name, "Rebooting (killing the payload to start it again).");
                m->stopping_for_reboot = true;
                return machine_kill_everything(m);
        }
        /* systemd takes SIGINT as ctrl-alt-del: it reboots, its reboot(2) ends init with SIGHUP. */
        log_machine_info(m->name, "Rebooting (SIGINT to init).");
        m->reboot_requested = true;
        return pidfd_send(m->leader_pidfd, SIGINT);
}

/* Killing PID 1 of the pid namespace takes every process of the namespace with it. */
static int machine_kill_everything(Machine *m)
{
        int r = pidfd_send(m->leader_pidfd, SIGKILL);
        if (m->cgroup)
                (void)cgroup_kill(m->cgroup, SIGKILL);
        return r;
}

int machine_terminate(Machine *m)
{
        if (m->leader_pidfd < 0)
                return -ESRCH;
        log_machine_info(m->name, "Terminating.");
        /* Also the end of a reboot still under way. */
        m->stopping_for_reboot = m->reboot_requested = false;
        m->stop_requested = true;
        machine_set_state(m, MACHINE_STOPPING);
        return machine_kill_everything(m);
}

int machine_kill(Machine *m, const char *whom, int signo)
{
        if (m->leader_pidfd < 0)
                return -ESRCH;
        if (streq(whom, "leader"))
                return pidfd_send(m->leader_pidfd, signo);
        if (!m->cgroup)
                return -ESRCH;
        return cgroup_kill(m->cgroup, signo);
}

int machine_set_limits(Machine *m, const MachineLimits *limits)
{
        if (!m->cgroup)
                return -ESRCH;
        /* The cgroup gets the whole set: a limit not given here is the one the machine has, never "none". */
        Settings next = *m->settings;
        if (limits->memory_max != LIMIT_UNSET)
                next.memory_max = limits->memory_max;
        if (limits->cpu_quota_per_sec_usec != LIMIT_UNSET)
                next.cpu_quota_per_sec_usec = limits->cpu_quota_per_sec_usec;
        if (limits->tasks_max != LIMIT_UNSET)
                next.tasks_max = limits->tasks_max;
        CGroupLimits l;
        limits_from_settings(&next, &l);
        int r = cgroup_set_limits(m->cgroup, &l);
        if (r < 0)
                return r;
        m->settings->memory_max = next.memory_max;
        m->settings->cpu_quota_per_sec_usec = next.cpu_quota_per_sec_usec;
        m->settings->tasks_max = next.tasks_max;
        return machine_state_save(m);
}

/* A state file an older machinemgrd wrote (KEY=VALUE lines): it kept the runtime state but only a few
 * settings. Such a machine is supervised to its end, but never started again on a reboot: its Command,
 * binds, limits… are not known, and guessing them is how a guest came back as host root. */
static int machine_load_legacy_item(Machine *m, const char *key, const char *value)
{
        uint64_t u;
        int i;
        if (streq(key, "ID"))
                return sd_id128_from_string(value, &m->id);
        if (streq(key, "STATE") && (i = machine_state_from_string(value)) >= 0)
                m->state = i;
        else if (streq(key, "LEADER") && safe_atoi(value, &i) >= 0)
                m->leader = i;
        else if (streq(key, "LEADER_STARTTIME"))
                (void)safe_atou64(value, &m->leader_starttime);
        else if (streq(key, "TIMESTAMP"))
                (void)safe_atou64(value, &m->timestamp);
        else if (streq(key, "BOOT") && safe_atoi(value, &i) >= 0)
                m->settings->boot = i;
        else if (streq(key, "KILL_SIGNAL") && safe_atoi(value, &i) >= 0)
                m->settings->kill_signal = i;
        else if (streq(key, "MEMORY_MAX") && safe_atou64(value, &u) >= 0)
                m->settings->memory_max = u;
        else if (streq(key, "CPU_QUOTA") && safe_atou64(value, &u) >= 0)
                m->settings->cpu_quota_per_sec_usec = u;
        else if (streq(key, "TASKS_MAX") && safe_atou64(value, &u) >= 0)
                m->settings->tasks_max = u;
        else if (strncmp(key, "USERNS_", 7) == 0)
                return userns_machine_deserialize_item(m, key, value);
        else if (strncmp(key, "NET_", 4) == 0)
                return network_machine_deserialize_item(m, key, value);
        else if (strncmp(key, "CGROUP", 6) == 0)
                return cgroup_deserialize_item(&m->cgroup, m->name, key, value);
        return 0;
}

static int machine_load_legacy(Machine *m)
{
        _cleanup_fclose_ FILE *f = fopen(m->state_file, "re");
        if (!f)
                return -errno;
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        int r = 0;
        settings_free(m->settings);
        if (!(m->settings = settings_new()))
                return -ENOMEM;
        while (r >= 0 && getline(&line, &size, f) > 0) {
                line[strcspn(line, "\n")] = 0;
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq = 0;
                r = machine_load_legacy_item(m, line, eq + 1);
        }
        m->settings_partial = true;
        if (r >= 0)
                r = settings_apply_defaults(m->settings, m->name);
        return r;
}

static int machine_adopt_leader(Machine *m)
{
        uint64_t starttime;
        if (m->leader <= 1)
                return -ESRCH;
        m->leader_pidfd = (int)syscall(SYS_pidfd_open, m->leader, 0);
        if (m->leader_pidfd < 0)
                return -errno;
        /* The pid may have been reused since the state file was written. */
        if (pid_starttime(m->leader, &starttime) < 0 || starttime != m->leader_starttime)
                return -ESRCH;
        m->adopted = true;
        return sd_event_add_io(m->manager->event, &m->leader_source, m->leader_pidfd, EPOLLIN,
                               machine_on_adopted_exit, m);
}

static int machine_load(Machine *m)
{
        int r = machine_state_load(m);
        if (r != -EBADMSG)
                return r;
        log_machine_warning_errno(m->name, 0, "State file %s is from an older machinemgrd: the machine is "
                                  "supervised until it stops, but not restarted on a reboot.", m->state_file);
        return machine_load_legacy(m);
}

static void machine_adopt_console(Machine *m)
{
        int console_fd = manager_fdstore_take(m->manager, m->name, FDSTORE_CONSOLE);
        if (console_fd < 0) {
                /* Without a service manager's fd store the pty master died with the previous daemon. */
                log_machine_info(m->name, "Console output of this run is not logged any more (no fd store).");
                return;
        }
        int r = console_new_from_fd(m->manager->event, m->name, console_fd, &m->console);
        if (r >= 0) {
                console_set_leader(m->console, m->leader);
                r = console_start(m->console);
        }
        if (r < 0)
                log_machine_warning_errno(m->name, r, "Re-attach console: %m");
}

/* The socket the guest has had all along, with what its init sent while no daemon ran (READY=1) still
 * queued in it; a fresh one where the fd store had none (then a READY=1 sent meanwhile is lost). */
static void machine_adopt_notify(Machine *m)
{
        int fd = manager_fdstore_take(m->manager, m->name, FDSTORE_NOTIFY);
        int r = fd >= 0 ? notify_new_from_fd(m->manager->event, fd, machine_on_notify, m, &m->notify)
                        : notify_new(m->manager->event, m->host_dir, machine_on_notify, m, &m->notify);
        if (r < 0) {
                log_machine_warning_errno(m->name, r, "Re-create notify socket: %m");
                return;
        }
        if (fd < 0 && m->state == MACHINE_STARTING)
                log_machine_warning_errno(m->name, 0, "No notify socket kept from the previous daemon: a "
                                          "READY=1 sent meanwhile is lost.");
        notify_set_sender(m->notify, m->leader);
}

static void machine_adopt_reboot_watch(Machine *m)
{
        int fd = manager_fdstore_take(m->manager, m->name, FDSTORE_REBOOT);
        int r = fd < 0 ? fd
                       : reboot_watch_new(m->manager->event, fd, m->leader, machine_on_guest_reboot, m,
                                          &m->reboot_watch);
        if (r < 0)
                log_machine_warning_errno(m->name, r, "No reboot(2) listener kept from the previous daemon (%m): "
                                          "a reboot the guest starts itself will end the machine.");
}

int machine_adopt(Manager *manager, const char *name)
{
        Machine *m;
        int r = machine_new(manager, name, &m);
        if (r < 0)
                return r;
        r = machine_load(m);
        if (r >= 0 && m->cgroup)
                r = cgroup_deserialize_done(m->cgroup);
        if (r >= 0)
                r = machine_adopt_leader(m);
        if (r < 0) {
                log_machine_info(m->name, "Not running any more (%s): cleaning up.", strerror(-r));
                manager_record_exit(manager, m->name, "unknown", 0, "ended while machinemgrd was not running");
                if (!m->settings && !(m->settings = settings_new())) {
                        machine_free(m);
                        return -ENOMEM;
                }
                machine_finalize(m);
                return 0;
        }
        machine_adopt_notify(m);
        machine_adopt_reboot_watch(m);
        r = image_lock(manager->image_path, m->name, &m->image_lock_fd);
        if (r < 0)
                log_machine_warning_errno(m->name, r, "Re-take the image lock: %m");
        if (m->cgroup && cgroup_backend(m->cgroup) == CGROUP_BACKEND_SYSTEMD)
                (void)cgroup_set_bus(m->cgroup, manager->systemd_bus);
        /* The last daemon may have died between a guest's clone and its exec. */
        if (m->cgroup && cgroup_backend(m->cgroup) == CGROUP_BACKEND_DIRECT)
                (void)cgroup_direct_boost_setup(m->cgroup, false);
        machine_adopt_console(m);
        (void)network_machine_adopt(m);
        log_machine_info(m->name, "Re-adopted running machine, leader PID %d.", (int)m->leader);
        machine_crash_point(m, "adopt");
        m->announced = true;
        bus_emit_machine_new(manager, m);
        return 1;
}
