/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The usage cache (image-usage.c) with its real worker processes and event loop (root only): a first ask
 * answers "unknown" at once and starts one walk; asking again and again starts no other; at most
 * IMAGE_USAGE_WALKS_MAX walks at once, the others queued and run in turn; the value is the walk's; a new
 * directory under an old name is measured anew; a tree beyond the limits stays unknown; a walk holds none
 * of the daemon's other fds; the daemon's exit leaves no walk behind. */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include "image-usage.h"
#include "image.h"
#include "manager.h"
#include "util.h"

static unsigned passed, failed;
static char dir[] = "/var/tmp/test-image-usage.XXXXXX";

#define CHECK(cond, ...)                                                                                    \
        do {                                                                                                \
                if (cond) {                                                                                 \
                        passed++;                                                                           \
                } else {                                                                                    \
                        failed++;                                                                           \
                        printf("FAIL %s:%d: ", __FILE__, __LINE__);                                         \
                        printf(__VA_ARGS__);                                                                \
                        printf("\n");                                                                       \
                }                                                                                           \
        } while (0)

static Manager manager;

static void make_image(const char *name, unsigned files, unsigned depth)
{
        char path[256], f[32];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (mkdir(path, 0755) < 0)
                abort();
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (unsigned n = 0; fd >= 0 && n < files; n++) {
                snprintf(f, sizeof f, "f%u", n);
                int ffd = openat(fd, f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (ffd >= 0 && write(ffd, "data", 4) == 4)
                        close(ffd);
        }
        for (unsigned n = 0; fd >= 0 && n < depth; n++) {
                int sub = mkdirat(fd, "d", 0755) < 0 ? -1 : openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(fd);
                fd = sub;
        }
        if (fd < 0)
                abort();
        close(fd);
}

static uint64_t ask(const char *name)
{
        Image *i = NULL;
        if (image_load(dir, name, &i) < 0)
                return 0;
        uint64_t u = image_usage_get(&manager, i);
        image_free(i);
        return u;
}

static uint64_t walk_now(const char *name)
{
        char path[256];
        ImageUsage u = {};
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = fd < 0 ? -errno : image_usage_at(fd, NULL, &u);
        if (fd >= 0)
                close(fd);
        return r < 0 ? 0 : u.bytes;
}

/* Runs the loop until every name in the list is known, or 20 s. */
static bool settle(const char *const *names, size_t n)
{
        uint64_t end = now_usec(CLOCK_MONOTONIC) + 20 * 1000 * 1000;
        while (now_usec(CLOCK_MONOTONIC) < end) {
                bool all = true;
                for (size_t i = 0; i < n; i++)
                        all = all && ask(names[i]) != UINT64_MAX;
                if (all)
                        return true;
                (void)sd_event_run(manager.event, 100 * 1000);
        }
        return false;
}

static unsigned walkers_alive(void)
{
        char cmd[128], buf[64] = "";
        snprintf(cmd, sizeof cmd, "ps -o comm= --ppid %d | grep -c '^mm-image-usage$'", (int)getpid());
        FILE *p = popen(cmd, "re");
        if (!p)
                return 99;
        if (!fgets(buf, sizeof buf, p))
                buf[0] = 0;
        pclose(p);
        return (unsigned)atoi(buf);
}

static void cleanup(void)
{
        (void)rm_rf_dir(dir);
}

int main(void)
{
        if (geteuid() != 0) {
                printf("SKIP: needs root\n");
                return 77;
        }
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (!mkdtemp(dir) || sd_event_new(&manager.event) < 0)
                return perror("setup"), 1;
        atexit(cleanup);
        manager.image_path = dir;
        const char *names[] = {"a", "b", "c", "d", "e"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                make_image(names[i], 200 * (unsigned)(i + 1), 3);
        make_image("deep", 10, IMAGE_DEPTH_MAX + 1);

        /* A pipe the daemon holds: a walk must not keep its write end open. */
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return perror("pipe"), 1;

        CHECK(ask("a") == UINT64_MAX, "the first ask answers unknown at once");
        CHECK(image_usage_walks_started() == 1, "and starts one walk: %u", image_usage_walks_started());
        for (int i = 0; i < 100; i++)
                (void)ask("a");
        CHECK(image_usage_walks_started() == 1, "100 asks more start no other walk: %u",
              image_usage_walks_started());
        close(p[1]);
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        CHECK(poll(&pfd, 1, 2000) == 1 && (pfd.revents & POLLHUP), "the walk holds none of our other fds");
        close(p[0]);

        for (size_t i = 1; i < ELEMENTSOF(names); i++)
                CHECK(ask(names[i]) == UINT64_MAX, "%s unknown at first", names[i]);
        CHECK(ask("deep") == UINT64_MAX, "deep unknown at first");
        CHECK(image_usage_walks_started() == IMAGE_USAGE_WALKS_MAX, "%u walks at once, the others queued: %u",
              IMAGE_USAGE_WALKS_MAX, image_usage_walks_started());
        CHECK(walkers_alive() <= IMAGE_USAGE_WALKS_MAX, "at most %u walker processes", IMAGE_USAGE_WALKS_MAX);

        CHECK(settle(names, ELEMENTSOF(names)), "every image measured in the end");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                uint64_t cached = ask(names[i]), direct = walk_now(names[i]);
                CHECK(cached == direct, "%s: cached %" PRIu64 " is the walk's %" PRIu64, names[i], cached, direct);
        }
        /* The queue drains on its own: deep's walk ran too, and stopped at the depth limit. */
        for (int i = 0; i < 50 && image_usage_walks_started() < ELEMENTSOF(names) + 1; i++)
                (void)sd_event_run(manager.event, 100 * 1000);
        for (int i = 0; i < 50 && walkers_alive() > 0; i++)
                (void)sd_event_run(manager.event, 100 * 1000);
        CHECK(ask("deep") == UINT64_MAX, "a tree deeper than %u levels stays unknown", IMAGE_DEPTH_MAX);
        unsigned started = image_usage_walks_started();
        CHECK(started == ELEMENTSOF(names) + 1, "one walk per image: %u", started);
        for (int i = 0; i < 100; i++)
                for (size_t j = 0; j < ELEMENTSOF(names); j++)
                        (void)ask(names[j]);
        CHECK(image_usage_walks_started() == started, "fresh values start no walk: %u",
              image_usage_walks_started());

        /* Another directory under the name: its own value, not the old one's. */
        char from[256], to[256];
        snprintf(from, sizeof from, "%s/a", dir);
        snprintf(to, sizeof to, "%s/a-old", dir);
        CHECK(rename(from, to) == 0, "rename a away");
        make_image("a", 3000, 0);
        CHECK(ask("a") == UINT64_MAX, "the new a is unknown at first");
        const char *a[] = {"a"};
        CHECK(settle(a, 1) && ask("a") == walk_now("a"), "then measured: %" PRIu64, ask("a"));

        /* The daemon exits: every walk is gone with it. */
        make_image("big", 60000, 0);
        CHECK(ask("big") == UINT64_MAX && walkers_alive() == 1, "a walk runs");
        CHECK(sd_event_exit(manager.event, 0) >= 0 && sd_event_run(manager.event, 0) >= 0, "exit");
        CHECK(walkers_alive() == 0, "no walk after the exit");
        manager.event = sd_event_unref(manager.event);
        printf("%u passed, %u failed\n", passed, failed);
        return failed ? 1 : 0;
}
