/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The usage cache and its walks; see image-usage.h. */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/ioprio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "image-usage.h"
#include "log.h"
#include "operation.h"
#include "util.h"

/* What the worker reports: one write of a fixed size, read at its exit. */
typedef struct WalkReport {
        int32_t error;
        uint32_t stop;
        uint64_t bytes;
        uint64_t entries;
} WalkReport;

typedef struct UsageEntry UsageEntry;
typedef struct UsageWalker UsageWalker;

struct UsageEntry {
        char *name;
        dev_t dev; /* the directory the value is of */
        ino_t ino;
        uint64_t bytes;    /* UINT64_MAX: unknown */
        uint64_t measured; /* CLOCK_MONOTONIC µs when the last walk ended; 0: never */
        uint64_t asked;    /* when last asked for: entries nobody asks for are forgotten */
        uint64_t queued;   /* when it started waiting for a free walk slot; 0: not waiting */
        int last_outcome;  /* of the walk before: the log says a change of outcome once, not every walk */
        UsageWalker *walker;
        UsageEntry *next;
};

struct UsageWalker {
        UsageEntry *entry; /* NULL once the entry is gone: the result is dropped */
        dev_t dev;
        ino_t ino;
        int pidfd;
        int result_fd;
        uint64_t started;
        sd_event_source *exit_source;
        sd_event_source *timer_source;
};

static struct {
        Manager *manager;
        UsageEntry *entries;
        unsigned n_entries;
        unsigned n_walkers;
        unsigned n_started;
        sd_event_source *exit_source;
} cache;

unsigned image_usage_walks_started(void)
{
        return cache.n_started;
}

static void walker_free(UsageWalker *w)
{
        if (!w)
                return;
        if (w->entry)
                w->entry->walker = NULL;
        sd_event_source_disable_unref(w->exit_source);
        sd_event_source_disable_unref(w->timer_source);
        safe_close(w->result_fd);
        safe_close(w->pidfd);
        cache.n_walkers--;
        free(w);
}

/* The daemon exits: no walk outlives it, nothing is left for a leak checker. */
static void walker_kill(UsageWalker *w)
{
        (void)syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
        (void)waitid(P_PIDFD, (id_t)w->pidfd, NULL, WEXITED);
        walker_free(w);
}

static void entry_free(UsageEntry *e)
{
        if (e->walker)
                e->walker->entry = NULL;
        free(e->name);
        free(e);
        cache.n_entries--;
}

/* ---- the worker ---- */

/* Everything but the walk's own two fds: a copy of a client's socket or a console's pty would keep them
 * open for as long as the walk runs. */
static void close_all_but(int a, int b)
{
        int lo = a < b ? a : b, hi = a < b ? b : a;
        if (lo > 3)
                (void)close_range(3, (unsigned)lo - 1, 0);
        if (hi > lo + 1)
                (void)close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
        (void)close_range((unsigned)hi + 1, ~0U, 0);
}

typedef struct WalkJob {
        int dirfd;
        uint64_t deadline;
} WalkJob;

static void walk_run(int result_fd, void *userdata)
{
        WalkJob *j = userdata;
        WalkReport report = {};
        ImageUsage u = {};
        ImageUsageLimits limits = {
            .depth_max = IMAGE_DEPTH_MAX,
            .entries_max = IMAGE_USAGE_ENTRIES_MAX,
            .hardlinks_max = IMAGE_USAGE_HARDLINKS_MAX,
            .deadline = j->deadline,
        };

        close_all_but(j->dirfd, result_fd);
        (void)prctl(PR_SET_NAME, "mm-image-usage");
        /* Behind the daemon (same cgroup) and the guests for CPU and disk: it only answers a question. */
        (void)!nice(10);
        (void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7));
        int r = image_usage_at(j->dirfd, &limits, &u);
        report.error = r < 0 ? r : 0;
        report.stop = u.stop;
        report.bytes = u.bytes;
        report.entries = u.entries;
        _exit(write(result_fd, &report, sizeof report) == sizeof report ? EXIT_SUCCESS : EXIT_FAILURE);
}

/* ---- results ---- */

static void walk_log(UsageEntry *e, const WalkReport *rep, int outcome, uint64_t took)
{
        if (outcome == e->last_outcome)
                return;
        e->last_outcome = outcome;
        if (rep->error < 0)
                log_warning_errno(rep->error, "Image %s: usage walk failed, usage unknown: %m", e->name);
        else if (outcome < 0)
                log_warning("Image %s: usage walk killed or ended without a result after %" PRIu64
                            " ms, usage unknown.",
                            e->name, took / 1000);
        else if (rep->stop != IMAGE_USAGE_COMPLETE)
                log_notice("Image %s: usage unknown: the walk stopped at a limit (%s) after %" PRIu64
                           " entries.",
                           e->name, image_usage_stop_to_string((ImageUsageStop)rep->stop), rep->entries);
        else
                log_debug("Image %s: usage %" PRIu64 " bytes, %" PRIu64 " entries, %" PRIu64 " ms.", e->name,
                          rep->bytes, rep->entries, took / 1000);
}

static void walk_next(void);

static void walk_done(UsageWalker *w, bool exited)
{
        WalkReport rep = {.error = -EIO};
        UsageEntry *e = w->entry;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        bool got = exited && read(w->result_fd, &rep, sizeof rep) == (ssize_t)sizeof rep;
        if (e && e->dev == w->dev && e->ino == w->ino) {
                e->bytes = got && rep.error >= 0 && rep.stop == IMAGE_USAGE_COMPLETE ? rep.bytes : UINT64_MAX;
                e->measured = now;
                /* The outcome for the log: -1 killed or no report, else the error or the limit hit. */
                walk_log(e, &rep, !got ? -1 : rep.error < 0 ? 100 - rep.error : (int)rep.stop,
                         now - w->started);
        } else if (e && !e->queued)
                e->queued = now;
        walker_free(w);
        walk_next();
}

static int on_walk_exit(sd_event_source *s, const siginfo_t *si, void *userdata)
{
        walk_done(userdata, si->si_code == CLD_EXITED && si->si_status == EXIT_SUCCESS);
        return 0;
}

/* A walk stuck in one system call (a hung filesystem) cannot see its deadline: it is killed. */
static int on_walk_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        UsageWalker *w = userdata;
        (void)syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
        return 0;
}

/* ---- starting walks ---- */

static int open_entry_dir(UsageEntry *e)
{
        _cleanup_free_ char *path = NULL;
        struct stat st;
        if (asprintf(&path, "%s/%s", cache.manager->image_path, e->name) < 0)
                return -ENOMEM;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || st.st_dev != e->dev || st.st_ino != e->ino) {
                safe_close(fd);
                return -ESTALE; /* replaced since it was asked for: the next ask measures the new one */
        }
        return fd;
}

static int walk_start(UsageEntry *e)
{
        _cleanup_close_ int dirfd = open_entry_dir(e);
        if (dirfd < 0)
                return dirfd;
        UsageWalker *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (UsageWalker){.entry = e, .dev = e->dev, .ino = e->ino, .pidfd = -1, .result_fd = -1};
        w->started = now_usec(CLOCK_MONOTONIC);
        cache.n_walkers++;
        WalkJob job = {dirfd, w->started + IMAGE_USAGE_WALK_USEC}; /* read by the worker, in its copy */
        int r = worker_fork(walk_run, &job, &w->pidfd, &w->result_fd);
        if (r >= 0)
                r = sd_event_add_child_pidfd(cache.manager->event, &w->exit_source, w->pidfd, WEXITED,
                                             on_walk_exit, w);
        if (r >= 0)
                r = sd_event_add_time(cache.manager->event, &w->timer_source, CLOCK_MONOTONIC,
                                      w->started + IMAGE_USAGE_WALK_USEC + 5 * 1000 * 1000, 0, on_walk_timeout,
                                      w);
        if (r < 0) {
                if (w->pidfd >= 0)
                        walker_kill(w);
                else
                        walker_free(w);
                return r;
        }
        e->walker = w;
        e->queued = 0;
        cache.n_started++;
        return 0;
}

/* A walk that cannot start counts as one that failed: retried when the value is stale again. */
static void walk_start_or_give_up(UsageEntry *e)
{
        int r = walk_start(e);
        if (r >= 0)
                return;
        e->queued = 0;
        e->measured = now_usec(CLOCK_MONOTONIC);
        e->bytes = UINT64_MAX;
        if (r != -ESTALE && r != -ENOENT)
                log_warning_errno(r, "Image %s: cannot start a usage walk: %m", e->name);
}

/* The image that has waited longest gets the free slot. */
static void walk_next(void)
{
        while (cache.n_walkers < IMAGE_USAGE_WALKS_MAX) {
                UsageEntry *next = NULL;
                for (UsageEntry *e = cache.entries; e; e = e->next)
                        if (e->queued > 0 && (!next || e->queued < next->queued))
                                next = e;
                if (!next)
                        return;
                walk_start_or_give_up(next);
        }
}

/* ---- the cache ---- */

static int on_daemon_exit(sd_event_source *s, void *userdata)
{
        while (cache.entries) {
                UsageEntry *e = cache.entries;
                cache.entries = e->next;
                if (e->walker)
                        walker_kill(e->walker);
                entry_free(e);
        }
        cache.exit_source = sd_event_source_disable_unref(cache.exit_source);
        cache.manager = NULL;
        return 0;
}

static int cache_init(Manager *m)
{
        if (cache.manager)
                return 0;
        int r = sd_event_add_exit(m->event, &cache.exit_source, on_daemon_exit, NULL);
        if (r < 0)
                return r;
        cache.manager = m;
        return 0;
}

/* Looks NAME up, forgetting on the way the entries nobody asked for in a while. */
static UsageEntry *cache_find(const char *name, uint64_t now)
{
        UsageEntry *found = NULL;
        for (UsageEntry **p = &cache.entries; *p;) {
                UsageEntry *e = *p;
                if (streq(e->name, name))
                        found = e;
                else if (!e->walker && !e->queued && now - e->asked > IMAGE_USAGE_FORGET_USEC) {
                        *p = e->next;
                        entry_free(e);
                        continue;
                }
                p = &e->next;
        }
        return found;
}

static UsageEntry *cache_add(const char *name)
{
        if (cache.n_entries >= IMAGE_USAGE_CACHE_MAX)
                return NULL;
        UsageEntry *e = calloc(1, sizeof *e);
        if (!e || !(e->name = strdup(name))) {
                free(e);
                return NULL;
        }
        e->bytes = UINT64_MAX;
        e->next = cache.entries;
        cache.entries = e;
        cache.n_entries++;
        return e;
}

uint64_t image_usage_get(Manager *m, const Image *i)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (cache_init(m) < 0)
                return UINT64_MAX;
        UsageEntry *e = cache_find(i->name, now) ?: cache_add(i->name);
        if (!e)
                return UINT64_MAX;
        if (e->dev != i->dev || e->ino != i->ino) {
                /* Another directory under this name (renamed, removed, cloned to): the value was of the old
                 * one. A walk of the old one still running ends as it would; walk_done() drops its result
                 * and queues the new directory's walk. */
                e->dev = i->dev;
                e->ino = i->ino;
                e->bytes = UINT64_MAX;
                e->measured = 0;
                e->last_outcome = 0;
        }
        e->asked = now;
        bool stale = e->measured == 0 || now - e->measured >= IMAGE_USAGE_FRESH_USEC;
        if (stale && !e->walker && !e->queued) {
                if (cache.n_walkers < IMAGE_USAGE_WALKS_MAX)
                        walk_start_or_give_up(e);
                else
                        e->queued = now;
        }
        return e->bytes;
}
