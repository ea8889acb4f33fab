/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The image model against a real filesystem (root only): clone fidelity, usage (the walk, its limits, its
 * cache with real workers), rename, remove, read-only, locks, names. Works in a temp dir under /var/tmp (the image filesystem of this host, with inode flags). */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "image-usage.h"
#include "image.h"
#include "manager.h"
#include "util.h"

static unsigned passed, failed;
static char dir[] = "/var/tmp/test-image.XXXXXX";

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

static char *pj(const char *a, const char *b)
{
        char *p;
        if (asprintf(&p, "%s/%s", a, b) < 0)
                abort();
        return p;
}

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");
        if (!f)
                abort();
        fputs(text, f);
        fclose(f);
}

/* An access ACL with a named user (uid 1000: r), as the kernel stores it in system.posix_acl_access. */
static int set_acl(const char *path)
{
        struct __attribute__((packed)) {
                uint32_t version;
                struct __attribute__((packed)) {
                        uint16_t tag, perm;
                        uint32_t id;
                } e[5];
        } acl = {2,
                 {{0x01, 6, UINT32_MAX},
                  {0x02, 4, 1000},
                  {0x04, 4, UINT32_MAX},
                  {0x10, 4, UINT32_MAX},
                  {0x20, 0, UINT32_MAX}}};
        return setxattr(path, "system.posix_acl_access", &acl, sizeof acl, 0);
}

static void make_source(const char *images)
{
        char *src = pj(images, "src");
        struct timespec ts[2] = {{1000000000, 0}, {1100000000, 123456789}};
        int r = 0;
        r |= mkdir(src, 0755);
        r |= chdir(src);
        write_file("a", "hello hardlinked world\n");
        r |= chown("a", 1234, 5678);
        r |= chmod("a", 0640);
        r |= setxattr("a", "user.test", "value", 5, 0);
        r |= set_acl("a");
        r |= link("a", "b");
        r |= mkdir("sub", 0751);
        r |= chown("sub", 42, 43);
        r |= link("a", "sub/c");
        r |= symlink("/etc/passwd", "abs-link");
        r |= symlink("a", "rel-link");
        r |= lchown("abs-link", 7, 8);
        r |= mknod("null", S_IFCHR | 0666, makedev(1, 3));
        r |= mkfifo("fifo", 0600);
        r |= mknod("sock", S_IFSOCK | 0755, 0);
        r |= utimensat(AT_FDCWD, "a", ts, 0);
        r |= utimensat(AT_FDCWD, "abs-link", ts, AT_SYMLINK_NOFOLLOW);
        r |= utimensat(AT_FDCWD, "sub", ts, 0);
        /* 4 MiB of which only the last byte is data: a copy that fills holes would show in usage. */
        int fd = open("sparse", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        r |= fd < 0 || pwrite(fd, "x", 1, 4 << 20) != 1;
        safe_close(fd);
        r |= chdir("/");
        char *settings = pj(images, "src.machine");
        write_file(settings, "[Exec]\nBoot=no\n");
        free(settings);
        free(src);
        if (r)
                perror("make_source"), abort();
}

static int compare_xattrs(const char *a, const char *b)
{
        char la[4096], lb[4096];
        ssize_t na = llistxattr(a, la, sizeof la), nb = llistxattr(b, lb, sizeof lb);
        if (na != nb || (na > 0 && memcmp(la, lb, (size_t)na) != 0))
                return -1;
        for (char *k = la; na > 0 && k < la + na; k += strlen(k) + 1) {
                char va[4096], vb[4096];
                ssize_t x = lgetxattr(a, k, va, sizeof va), y = lgetxattr(b, k, vb, sizeof vb);
                if (x != y || x < 0 || memcmp(va, vb, (size_t)x) != 0)
                        return -1;
        }
        return 0;
}

static void compare_entry(const char *a, const char *b, const char *name)
{
        char *pa = pj(a, name), *pb = pj(b, name);
        struct stat sa, sb;
        CHECK(lstat(pa, &sa) == 0 && lstat(pb, &sb) == 0, "%s: missing in the copy", name);
        CHECK(sa.st_mode == sb.st_mode, "%s: mode %o != %o", name, sa.st_mode, sb.st_mode);
        CHECK(sa.st_uid == sb.st_uid && sa.st_gid == sb.st_gid, "%s: owner differs", name);
        CHECK(sa.st_size == sb.st_size && sa.st_rdev == sb.st_rdev, "%s: size or device differs", name);
        CHECK(sa.st_nlink == sb.st_nlink || S_ISDIR(sa.st_mode), "%s: nlink %lu != %lu", name,
              (unsigned long)sa.st_nlink, (unsigned long)sb.st_nlink);
        CHECK(sa.st_mtim.tv_sec == sb.st_mtim.tv_sec && sa.st_mtim.tv_nsec == sb.st_mtim.tv_nsec,
              "%s: mtime", name);
        CHECK(compare_xattrs(pa, pb) == 0, "%s: xattrs differ", name);
        if (S_ISLNK(sa.st_mode)) {
                char ta[256] = "", tb[256] = "";
                CHECK(readlink(pa, ta, 255) > 0 && readlink(pb, tb, 255) > 0 && streq(ta, tb), "%s: target",
                      name);
        }
        free(pa);
        free(pb);
}

static void test_clone(const char *images)
{
        ImageError e = {};
        int r = image_clone(images, "src", "dst", false, &e);
        CHECK(r == 0, "clone: %d %s", r, e.text);
        char *a = pj(images, "src"), *b = pj(images, "dst");
        const char *names[] = {".",        "a",    "b",    "sub",  "sub/c", "abs-link",
                               "rel-link", "null", "fifo", "sock", "sparse"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                compare_entry(a, b, names[i]);
        struct stat s1, s2, s3;
        char *p1 = pj(b, "a"), *p2 = pj(b, "b"), *p3 = pj(b, "sub/c");
        CHECK(stat(p1, &s1) == 0 && stat(p2, &s2) == 0 && stat(p3, &s3) == 0 && s1.st_ino == s2.st_ino &&
                  s1.st_ino == s3.st_ino,
              "hardlinks are one inode in the copy");
        CHECK(s1.st_nlink == 3, "hardlink count %lu", (unsigned long)s1.st_nlink);
        char *m = pj(images, "dst.machine");
        CHECK(access(m, F_OK) == 0, "clone copies the .machine file");
        free(m);
        free(p1);
        free(p2);
        free(p3);
        free(a);
        free(b);

        memset(&e, 0, sizeof e);
        CHECK(image_clone(images, "src", "dst", false, &e) == -EEXIST, "clone onto an existing image: %s",
              e.text);
        CHECK(image_clone(images, "nope", "x", false, NULL) == -ENOENT, "clone of a missing image");
        CHECK(image_clone(images, "src", "../evil", false, NULL) == -EINVAL, "clone to an invalid name");
        CHECK(image_clone(images, "src", ".hidden", false, NULL) == -EINVAL, "clone to a hidden name");
}

/* The usage walk of image NAME with these limits (NULL: the defaults); UINT64_MAX unless complete. */
static uint64_t usage_of(const char *images, const char *name, const ImageUsageLimits *limits,
                         ImageUsageStop *ret_stop)
{
        char *p = pj(images, name);
        ImageUsage u = {};
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = fd < 0 ? -errno : image_usage_at(fd, limits, &u);
        free(p);
        if (fd >= 0)
                close(fd);
        if (ret_stop)
                *ret_stop = u.stop;
        return r < 0 || u.stop != IMAGE_USAGE_COMPLETE ? UINT64_MAX : u.bytes;
}

static void test_usage(const char *images)
{
        Image *i = NULL, *j = NULL;
        CHECK(image_load(images, "src", &i) == 0, "load src");
        CHECK(image_load(images, "dst", &j) == 0, "load dst");
        if (!i || !j)
                return;
        uint64_t src = usage_of(images, "src", NULL, NULL), dst = usage_of(images, "dst", NULL, NULL);
        /* One 4 KiB-ish data block each for a (three names), sparse, dirs: far below 4 MiB, counted once. */
        CHECK(src > 0 && src < 1024 * 1024, "usage of src %" PRIu64, src);
        CHECK(dst <= src + 8192, "usage of the copy %" PRIu64 " vs %" PRIu64 " (holes kept)", dst, src);
        CHECK(i->mtime > 0 && i->crtime > 0, "timestamps known (crtime %" PRIu64 ")", i->crtime);
        CHECK(!i->read_only, "src is writable");
        /* A second name of a file must not change the usage. */
        char *a = pj(i->path, "a"), *d = pj(i->path, "d");
        CHECK(link(a, d) == 0, "link");
        CHECK(usage_of(images, "src", NULL, NULL) == src, "hardlink counted once");
        unlink(d);
        free(a);
        free(d);
        image_free(i);
        image_free(j);
}

static void make_chain(const char *top, unsigned levels)
{
        int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (unsigned n = 0; fd >= 0 && n < levels; n++) {
                int sub = mkdirat(fd, "d", 0755) < 0 ? -1 : openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(fd);
                fd = sub;
        }
        CHECK(fd >= 0, "made a chain of %u directories", levels);
        if (fd >= 0)
                close(fd);
}

/* What a guest can make of its tree: every limit of the walk is hit, says which, and nothing is followed
 * out of the tree. */
static void test_usage_limits(const char *images)
{
        ImageUsageStop stop;
        char *top = pj(images, "hostile"), *deep = pj(images, "deep");
        CHECK(mkdir(top, 0755) == 0 && mkdir(deep, 0755) == 0, "mkdir");

        /* The default depth limit exactly, then one more level. */
        make_chain(deep, IMAGE_DEPTH_MAX);
        CHECK(usage_of(images, "deep", NULL, &stop) != UINT64_MAX, "a chain of %u levels is measured (%s)",
              IMAGE_DEPTH_MAX, image_usage_stop_to_string(stop));
        /* Past PATH_MAX: one level more through relative steps. */
        int fd = open(deep, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (unsigned n = 0; fd >= 0 && n < IMAGE_DEPTH_MAX; n++) {
                int sub = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(fd);
                fd = sub;
        }
        CHECK(fd >= 0 && mkdirat(fd, "d", 0755) == 0, "one level more");
        if (fd >= 0)
                close(fd);
        CHECK(usage_of(images, "deep", NULL, &stop) == UINT64_MAX && stop == IMAGE_USAGE_TOO_DEEP,
              "one level more is not measured: %s", image_usage_stop_to_string(stop));

        /* 1100 files, two of them hardlinked, a symlink to a big file outside, a mount point. */
        int dfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char name[32];
        for (unsigned n = 0; dfd >= 0 && n < 1100; n++) {
                snprintf(name, sizeof name, "f%u", n);
                int f = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (f >= 0)
                        close(f);
        }
        CHECK(dfd >= 0 && linkat(dfd, "f0", dfd, "g0", 0) == 0 && linkat(dfd, "f1", dfd, "g1", 0) == 0,
              "hardlinks");
        uint64_t base = usage_of(images, "hostile", NULL, NULL);
        CHECK(base != UINT64_MAX, "1100 files measured");
        char *big = pj(images, "big");
        int bfd = open(big, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        CHECK(bfd >= 0 && fallocate(bfd, 0, 0, 4 << 20) == 0, "a 4 MiB file outside");
        if (bfd >= 0)
                close(bfd);
        CHECK(dfd >= 0 && symlinkat(big, dfd, "link") == 0, "symlink to it");
        CHECK(dfd >= 0 && mkdirat(dfd, "mnt", 0755) == 0, "mkdir mnt");
        char *mnt = pj(top, "mnt");
        bool mounted = mount("tmpfs", mnt, "tmpfs", 0, "size=8m") == 0;
        CHECK(mounted, "tmpfs on mnt: %m");
        char *inside = pj(mnt, "data");
        int ifd = mounted ? open(inside, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : -1;
        CHECK(ifd >= 0 && fallocate(ifd, 0, 0, 4 << 20) == 0, "4 MiB in the mount");
        if (ifd >= 0)
                close(ifd);
        uint64_t with = usage_of(images, "hostile", NULL, NULL);
        CHECK(with != UINT64_MAX && with < base + (1 << 20),
              "symlink not followed, mount not crossed: %" PRIu64 " vs %" PRIu64, with, base);
        if (mounted)
                umount2(mnt, MNT_DETACH);

        ImageUsageLimits l = {.depth_max = 8, .entries_max = 100, .hardlinks_max = 1000};
        CHECK(usage_of(images, "hostile", &l, &stop) == UINT64_MAX && stop == IMAGE_USAGE_TOO_MANY_ENTRIES,
              "entries limit: %s", image_usage_stop_to_string(stop));
        l = (ImageUsageLimits){.depth_max = 8, .entries_max = 10000, .hardlinks_max = 1};
        CHECK(usage_of(images, "hostile", &l, &stop) == UINT64_MAX && stop == IMAGE_USAGE_TOO_MANY_HARDLINKS,
              "hardlinks limit: %s", image_usage_stop_to_string(stop));
        l = (ImageUsageLimits){.depth_max = 8, .entries_max = 10000, .hardlinks_max = 1000, .deadline = 1};
        CHECK(usage_of(images, "hostile", &l, &stop) == UINT64_MAX && stop == IMAGE_USAGE_TIMEOUT,
              "time limit: %s", image_usage_stop_to_string(stop));
        l.deadline = 0;
        uint64_t limited = usage_of(images, "hostile", &l, &stop);
        CHECK(limited != UINT64_MAX && limited == usage_of(images, "hostile", NULL, NULL),
              "within every limit: the same as with the defaults");

        if (dfd >= 0)
                close(dfd);
        unlink(big);
        free(inside);
        free(mnt);
        free(big);
        (void)rm_rf_dir(top);
        (void)rm_rf_dir(deep);
        free(top);
        free(deep);
}

/* What a guest can leave in its image: a chain deeper than a clone copies is refused with nothing left,
 * and removed whole (a recursive removal ran out of fds or stack). */
static void test_deep_trees(const char *images)
{
        ImageError e = {};
        char *chain = pj(images, "chain");
        CHECK(mkdir(chain, 0755) == 0, "mkdir chain");
        make_chain(chain, 3 * IMAGE_DEPTH_MAX);
        CHECK(image_clone(images, "chain", "chain2", false, &e) == -ELOOP, "clone of a chain of %u: %s",
              3 * IMAGE_DEPTH_MAX, e.text);
        char *copy = pj(images, "chain2");
        CHECK(access(copy, F_OK) < 0 && errno == ENOENT, "no copy left");
        memset(&e, 0, sizeof e);
        CHECK(image_remove(images, "chain", &e) == 0, "remove a chain of %u: %s", 3 * IMAGE_DEPTH_MAX, e.text);
        CHECK(access(chain, F_OK) < 0 && errno == ENOENT, "chain gone");
        DIR *d = opendir(images);
        unsigned hidden = 0;
        for (struct dirent *de; d && (de = readdir(d));)
                hidden += strncmp(de->d_name, ".#", 2) == 0;
        if (d)
                closedir(d);
        CHECK(hidden == 0, "no temp or removal dirs left: %u", hidden);
        free(copy);
        free(chain);
}

static void test_read_only(const char *images)
{
        Image *i = NULL;
        CHECK(image_clone(images, "src", "ro", true, NULL) == 0, "read-only clone");
        CHECK(image_load(images, "ro", &i) == 0 && i->read_only, "read-only flag shown");
        char *p = pj(i ? i->path : images, "newfile");
        CHECK(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) < 0 && errno == EPERM,
              "writing into it fails: %m");
        free(p);
        image_free(i);
        i = NULL;
        CHECK(image_set_read_only(images, "ro", false) == 0, "mark writable");
        CHECK(image_load(images, "ro", &i) == 0 && !i->read_only, "writable shown");
        image_free(i);
        i = NULL;
        CHECK(image_set_read_only(images, "ro", true) == 0, "mark read-only again");
        CHECK(image_rename(images, "ro", "ro2", NULL) == 0, "rename a read-only image");
        CHECK(image_load(images, "ro2", &i) == 0 && i->read_only, "still read-only after rename");
        image_free(i);
        CHECK(image_remove(images, "ro2", NULL) == 0, "remove a read-only image");
        CHECK(image_set_read_only(images, "missing", true) == -ENOENT, "read-only of a missing image");
}

static void test_rename_remove(const char *images)
{
        char *old_m = pj(images, "dst.machine"), *new_m = pj(images, "moved.machine"),
             *old_d = pj(images, "dst");
        ImageError e = {};
        CHECK(image_rename(images, "dst", "src", &e) == -EEXIST, "rename onto an existing image");
        CHECK(image_rename(images, "dst", "a/b", NULL) == -EINVAL, "rename to an invalid name");
        CHECK(image_rename(images, "nope", "x", NULL) == -ENOENT, "rename of a missing image");
        CHECK(image_rename(images, "dst", "moved", NULL) == 0, "rename");
        CHECK(access(old_d, F_OK) < 0 && access(old_m, F_OK) < 0 && access(new_m, F_OK) == 0,
              "the .machine file moved along");
        CHECK(image_remove(images, "moved", NULL) == 0, "remove");
        CHECK(access(new_m, F_OK) < 0, "the .machine file is removed");
        CHECK(image_remove(images, "moved", NULL) == -ENOENT, "remove of a missing image");
        free(old_m);
        free(new_m);
        free(old_d);
}

static void test_list_and_lock(const char *images)
{
        Image **l = NULL;
        size_t n = 0;
        int fd = -1, fd2 = -1;
        CHECK(image_lock(images, "src", &fd) == 0, "lock");
        CHECK(image_lock(images, "src", &fd2) == -EBUSY, "second lock is refused");
        CHECK(image_list(images, &l, &n) == 0 && n == 1 && streq(l[0]->name, "src"),
              "list shows src only (not the lock file, not .machine files): %zu", n);
        image_list_free(l, n);
        fd = image_unlock(images, "src", fd);
        CHECK(image_lock(images, "src", &fd2) == 0, "lock again after unlock");
        fd2 = image_unlock(images, "src", fd2);
        char *lck = pj(images, ".#src.lck");
        CHECK(access(lck, F_OK) < 0, "lock file removed on unlock");
        free(lck);
        CHECK(image_lock(images, "-bad", &fd) == -EINVAL, "lock of an invalid name");
        CHECK(image_list("/nonexistent-image-path", &l, &n) == 0 && n == 0,
              "missing image path is empty");
}

static Manager manager;

static void make_image(const char *name, unsigned files, unsigned depth)
{
        char f[32];
        char *path = pj(dir, name);
        if (mkdir(path, 0755) < 0)
                abort();
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (unsigned n = 0; fd >= 0 && n < files; n++) {
                snprintf(f, sizeof f, "f%u", n);
                int ffd = openat(fd, f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (ffd >= 0 && write(ffd, "data", 4) == 4)
                        close(ffd);
        }
        if (fd >= 0)
                close(fd);
        make_chain(path, depth);
        free(path);
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

/* The usage cache (image-usage.c) with its real worker processes and an event loop: a first ask answers
 * "unknown" at once and starts one walk; asking again and again starts no other; at most
 * IMAGE_USAGE_WALKS_MAX walks at once, the others queued and run in turn; the value is the walk's; a new
 * directory under an old name is measured anew; a tree beyond the limits stays unknown; a walk holds none
 * of the daemon's other fds; the daemon's exit leaves no walk behind. */
static void test_usage_cache(void)
{
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (sd_event_new(&manager.event) < 0)
                abort();
        manager.image_path = dir;
        const char *names[] = {"c-a", "c-b", "c-c", "c-d", "c-e"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                make_image(names[i], 200 * (unsigned)(i + 1), 3);
        make_image("c-deep", 10, IMAGE_DEPTH_MAX + 1);

        /* A pipe the daemon holds: a walk must not keep its write end open. */
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                abort();

        CHECK(ask("c-a") == UINT64_MAX, "the first ask answers unknown at once");
        CHECK(image_usage_walks_started() == 1, "and starts one walk: %u", image_usage_walks_started());
        for (int i = 0; i < 100; i++)
                (void)ask("c-a");
        CHECK(image_usage_walks_started() == 1, "100 asks more start no other walk: %u",
              image_usage_walks_started());
        close(p[1]);
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        CHECK(poll(&pfd, 1, 2000) == 1 && (pfd.revents & POLLHUP), "the walk holds none of our other fds");
        close(p[0]);

        for (size_t i = 1; i < ELEMENTSOF(names); i++)
                CHECK(ask(names[i]) == UINT64_MAX, "%s unknown at first", names[i]);
        CHECK(ask("c-deep") == UINT64_MAX, "c-deep unknown at first");
        CHECK(image_usage_walks_started() == IMAGE_USAGE_WALKS_MAX, "%u walks at once, the others queued: %u",
              IMAGE_USAGE_WALKS_MAX, image_usage_walks_started());
        CHECK(walkers_alive() <= IMAGE_USAGE_WALKS_MAX, "at most %u walker processes", IMAGE_USAGE_WALKS_MAX);

        CHECK(settle(names, ELEMENTSOF(names)), "every image measured in the end");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                uint64_t cached = ask(names[i]), direct = usage_of(dir, names[i], NULL, NULL);
                CHECK(cached == direct, "%s: cached %" PRIu64 " is the walk's %" PRIu64, names[i], cached, direct);
        }
        /* The queue drains on its own: deep's walk ran too, and stopped at the depth limit. */
        for (int i = 0; i < 50 && image_usage_walks_started() < ELEMENTSOF(names) + 1; i++)
                (void)sd_event_run(manager.event, 100 * 1000);
        for (int i = 0; i < 50 && walkers_alive() > 0; i++)
                (void)sd_event_run(manager.event, 100 * 1000);
        CHECK(ask("c-deep") == UINT64_MAX, "a tree deeper than %u levels stays unknown", IMAGE_DEPTH_MAX);
        unsigned started = image_usage_walks_started();
        CHECK(started == ELEMENTSOF(names) + 1, "one walk per image: %u", started);
        for (int i = 0; i < 100; i++)
                for (size_t j = 0; j < ELEMENTSOF(names); j++)
                        (void)ask(names[j]);
        CHECK(image_usage_walks_started() == started, "fresh values start no walk: %u",
              image_usage_walks_started());

        /* Another directory under the name: its own value, not the old one's. */
        char from[256], to[256];
        snprintf(from, sizeof from, "%s/c-a", dir);
        snprintf(to, sizeof to, "%s/c-a-old", dir);
        CHECK(rename(from, to) == 0, "rename c-a away");
        make_image("c-a", 3000, 0);
        CHECK(ask("c-a") == UINT64_MAX, "the new c-a is unknown at first");
        const char *a[] = {"c-a"};
        CHECK(settle(a, 1) && ask("c-a") == usage_of(dir, "c-a", NULL, NULL), "then measured: %" PRIu64, ask("c-a"));

        /* The daemon exits: every walk is gone with it. */
        make_image("c-big", 60000, 0);
        CHECK(ask("c-big") == UINT64_MAX && walkers_alive() == 1, "a walk runs");
        CHECK(sd_event_exit(manager.event, 0) >= 0 && sd_event_run(manager.event, 0) >= 0, "exit");
        CHECK(walkers_alive() == 0, "no walk after the exit");
        manager.event = sd_event_unref(manager.event);
}

static void cleanup(void)
{
        char *ro = pj(dir, "ro");
        (void)image_set_read_only(dir, "ro", false);
        free(ro);
        (void)rm_rf_dir(dir);
}

int main(void)
{
        if (geteuid() != 0) {
                printf("SKIP: needs root\n");
                return 77;
        }
        /* The usage test mounts a tmpfs: in a mount namespace of our own, so that nothing is left behind. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return perror("mount namespace"), 1;
        if (!mkdtemp(dir))
                return perror("mkdtemp"), 1;
        atexit(cleanup);
        make_source(dir);
        test_clone(dir);
        test_usage(dir);
        test_usage_limits(dir);
        test_deep_trees(dir);
        test_read_only(dir);
        test_rename_remove(dir);
        test_list_and_lock(dir);
        test_usage_cache();
        printf("%u passed, %u failed\n", passed, failed);
        return failed ? 1 : 0;
}
