/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "reboot-watch.h"

#include <linux/reboot.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

struct RebootWatch {
        int fd;
        ino_t pidns; /* the guest's pid namespace */
        sd_event_source *source;
        reboot_watch_handler_t handler;
        void *userdata;
};

static ino_t pid_namespace_of(pid_t pid)
{
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)pid);
        return stat(path, &st) < 0 ? 0 : st.st_ino;
}

static GuestRebootKind reboot_kind(uint64_t cmd)
{
        switch ((unsigned)cmd) {
        case LINUX_REBOOT_CMD_RESTART:
        case LINUX_REBOOT_CMD_RESTART2:
                return GUEST_REBOOT_RESTART;
        case LINUX_REBOOT_CMD_POWER_OFF:
        case LINUX_REBOOT_CMD_HALT:
                return GUEST_REBOOT_POWEROFF;
        default:
                return GUEST_REBOOT_NONE;
        }
}

/* 1: one handled, 0: none pending, <0: the listener is unusable. */
static int reboot_watch_handle_one(RebootWatch *w)
{
        struct seccomp_notif req = {};
        if (ioctl(w->fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
                /* ENOENT: the caller died (or was interrupted) before we got to it. */
                return errno == ENOENT || errno == EINTR ? 1 : errno == EAGAIN ? 0 : -errno;

        /* The filter passes nothing but reboot(2) with LINUX_REBOOT_MAGIC1, on every arch it knows; cmd is
         * a register, so what we read is what the kernel will act on. */
        GuestRebootKind kind = reboot_kind(req.data.args[2]);
        /* The pid is checked to still be the caller's after its namespace is looked up. */
        if (pid_namespace_of((pid_t)req.pid) != w->pidns || ioctl(w->fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) < 0)
                kind = GUEST_REBOOT_NONE;
        struct seccomp_notif_resp resp = {.id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
        if (ioctl(w->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
                return -errno;
        if (kind != GUEST_REBOOT_NONE)
                w->handler(kind, w->userdata);
        return 1;
}

static int reboot_watch_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        RebootWatch *w = userdata;
        for (unsigned i = 0; i < REBOOT_WATCH_BUDGET; i++) {
                int r = reboot_watch_handle_one(w);
                if (r == 0)
                        break;
                if (r < 0) {
                        log_warning_errno(r, "Read the guest's reboot notifications: %m");
                        return sd_event_source_set_enabled(s, SD_EVENT_OFF);
                }
        }
        /* No process has the filter any more: nothing will come. */
        if ((revents & EPOLLHUP) && !(revents & EPOLLIN))
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

int reboot_watch_new(sd_event *e, int listener_fd, pid_t leader, reboot_watch_handler_t handler, void *userdata,
                     RebootWatch **ret)
{
        ino_t pidns = pid_namespace_of(leader);
        if (pidns == 0) {
                safe_close(listener_fd);
                return -ESRCH;
        }
        RebootWatch *w = calloc(1, sizeof *w);
        if (!w) {
                safe_close(listener_fd);
                return -ENOMEM;
        }
        *w = (RebootWatch){.fd = listener_fd, .pidns = pidns, .handler = handler, .userdata = userdata};
        int r = sd_event_add_io(e, &w->source, w->fd, EPOLLIN, reboot_watch_on_io, w);
        if (r < 0) {
                reboot_watch_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

int reboot_watch_fd(RebootWatch *w)
{
        return w ? w->fd : -EBADF;
}

RebootWatch *reboot_watch_free(RebootWatch *w)
{
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->source);
        safe_close(w->fd);
        free(w);
        return NULL;
}
