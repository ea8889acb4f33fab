/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* machinemgr image verbs: the D-Bus ones (list-images, image-status, clone, rename, remove, read-only) and
 * the local helpers (create, import-tar, export-tar) that write an image into a hidden temp directory next
 * to its destination and rename it into place only when complete. */
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "machinemgr-image.h"
#include "machinemgr.h"
#include "names.h"

#define MM_IMAGE MM_BUS_IMAGE_INTERFACE
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif
/* A clone or removal of a big tree takes as long as the disk needs: do not give up after sd-bus's 25 s. */
#define IMAGE_CALL_TIMEOUT_USEC (24ULL * 3600 * 1000000)

ImageArgs image_arg = {.distribution = "debian", .release = "bookworm"};

/* ---- D-Bus verbs ---- */

static int call_manager(sd_bus *bus, const char *name, const char *what, sd_bus_message **reply,
                        const char *member, const char *types, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r = sd_bus_message_new_method_call(bus, &m, MM_SERVICE, MM_PATH, MM_MANAGER, member);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0)
                return cli_bus_parse_error(r);
        r = sd_bus_call(bus, m, IMAGE_CALL_TIMEOUT_USEC, &error, reply);
        return r < 0 ? cli_bus_error(name, what, &error, r) : 0;
}

typedef struct ImageRow {
        const char *name, *type;
        int read_only;
        uint64_t crtime, mtime, usage;
        const char *path;
} ImageRow;

static void image_row_json(const ImageRow *i, bool first)
{
        printf("%s{\"name\":", first ? "" : ",");
        json_print_string(stdout, i->name);
        printf(",\"type\":");
        json_print_string(stdout, i->type);
        printf(",\"read_only\":%s,\"usage\":%" PRIu64 ",\"created\":%" PRIu64 ",\"modified\":%" PRIu64 "}",
               i->read_only ? "true" : "false", i->usage, i->crtime, i->mtime);
}

static int image_row_table(Table *t, const ImageRow *i)
{
        char usage[32], created[64], modified[64];
        return table_add_row(t, i->name, i->type, i->read_only ? "yes" : "no",
                             i->usage == UINT64_MAX ? NULL : format_bytes(usage, sizeof usage, i->usage),
                             format_timestamp(created, sizeof created, i->crtime),
                             format_timestamp(modified, sizeof modified, i->mtime));
}

int verb_list_images(sd_bus *bus, char **args)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_table_ Table *t = table_new(6, "NAME", "TYPE", "RO", "USAGE", "CREATED", "MODIFIED");
        ImageRow i;
        int r = call_manager(bus, NULL, "list images", &reply, "ListImages", "");
        if (r < 0)
                return r;
        if (!t)
                return -ENOMEM;
        if ((r = sd_bus_message_enter_container(reply, 'a', "(ssbttto)")) < 0)
                return cli_bus_parse_error(r);
        if (arg.output == OUTPUT_JSON)
                printf("[");
        for (bool first = true; (r = sd_bus_message_read(reply, "(ssbttto)", &i.name, &i.type, &i.read_only,
                                                         &i.crtime, &i.mtime, &i.usage, &i.path)) > 0;
             first = false) {
                if (arg.output == OUTPUT_JSON)
                        image_row_json(&i, first);
                else if (image_row_table(t, &i) < 0)
                        return -ENOMEM;
        }
        if (r < 0)
                return cli_bus_parse_error(r);
        if (arg.output == OUTPUT_JSON)
                printf("]\n");
        else if (table_rows(t) > 0 || !arg.no_legend)
                table_print(t, stdout);
        return 0;
}

static int image_status_one(sd_bus *bus, const char *name)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *type = NULL, *path = NULL;
        const char *object;
        uint64_t crtime = 0, mtime = 0, usage = UINT64_MAX;
        int ro = 0;
        int r = call_manager(bus, name, "image status", &reply, "GetImage", "s", name);
        if (r < 0)
                return r;
        if ((r = sd_bus_message_read(reply, "o", &object)) < 0)
                return cli_bus_parse_error(r);
        if ((r = sd_bus_get_property_string(bus, MM_SERVICE, object, MM_IMAGE, "Type", &error, &type)) >=
                0 &&
            (r = sd_bus_get_property_string(bus, MM_SERVICE, object, MM_IMAGE, "Path", &error, &path)) >=
                0 &&
            (r = sd_bus_get_property_trivial(bus, MM_SERVICE, object, MM_IMAGE, "ReadOnly", &error, 'b',
                                             &ro)) >= 0 &&
            (r = sd_bus_get_property_trivial(bus, MM_SERVICE, object, MM_IMAGE, "CreationTimestamp", &error,
                                             't', &crtime)) >= 0 &&
            (r = sd_bus_get_property_trivial(bus, MM_SERVICE, object, MM_IMAGE, "ModificationTimestamp",
                                             &error, 't', &mtime)) >= 0)
                r = sd_bus_get_property_trivial(bus, MM_SERVICE, object, MM_IMAGE, "Usage", &error, 't',
                                                &usage);
        if (r < 0)
                return cli_bus_error(name, "image status", &error, r);
        char b[32], c[64], m[64];
        printf("%s\n       Type: %s\n       Path: %s\n  Read-only: %s\n      Usage: %s\n    Created: %s\n"
               "   Modified: %s\n",
               name, type, path, ro ? "yes" : "no",
               usage == UINT64_MAX ? "-" : format_bytes(b, sizeof b, usage),
               format_timestamp(c, sizeof c, crtime), format_timestamp(m, sizeof m, mtime));
        return 0;
}

int verb_image_status(sd_bus *bus, char **args)
{
        int ret = 0;
        STRV_FOREACH(name, args + 1)
        {
                int r = image_status_one(bus, *name);
                if (r < 0 && ret == 0)
                        ret = r;
                if (name[1])
                        printf("\n");
        }
        return ret;
}

int verb_rename(sd_bus *bus, char **args)
{
        return call_manager(bus, args[1], "rename", NULL, "RenameImage", "ss", args[1], args[2]);
}

int verb_remove(sd_bus *bus, char **args)
{
        int ret = 0;
        STRV_FOREACH(name, args + 1)
        {
                int r = call_manager(bus, *name, "remove", NULL, "RemoveImage", "s", *name);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

int verb_read_only(sd_bus *bus, char **args)
{
        int b = args[2] ? parse_boolean(args[2]) : 1;
        if (b < 0) {
                cli_error(args[1], "read-only: invalid boolean '%s'", args[2]);
                return -EINVAL;
        }
        return call_manager(bus, args[1], "read-only", NULL, "MarkImageReadOnly", "sb", args[1], b);
}

/* ---- progress: bytes done and rate on a terminal, nothing otherwise ---- */

typedef struct Progress {
        const char *label;
        bool on;
        uint64_t done, total; /* total 0: unknown */
        uint64_t start, last;
} Progress;

static uint64_t now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void progress_init(Progress *p, const char *label, uint64_t total)
{
        *p = (Progress){.label = label, .total = total, .start = now_us()};
        p->on = !arg.quiet && isatty(STDOUT_FILENO);
}

static void progress_show(Progress *p, bool final)
{
        uint64_t now = now_us();
        if (!p->on || (!final && now - p->last < 200000))
                return;
        char done[32], rate[32], total[32];
        double secs = (double)(now - p->start) / 1e6;
        format_bytes(done, sizeof done, p->done);
        format_bytes(rate, sizeof rate, secs > 0 ? (uint64_t)((double)p->done / secs) : 0);
        /* A walked tree's size is an estimate (directories grow while being filled): never past 100%. */
        if (p->total > 0)
                printf("\r\033[K%s: %s of %s (%u%%), %s/s", p->label, done,
                       format_bytes(total, sizeof total, p->total),
                       (unsigned)(MIN(p->done, p->total) * 100 / p->total), rate);
        else
                printf("\r\033[K%s: %s, %s/s", p->label, done, rate);
        printf(final ? "\n" : "");
        fflush(stdout);
        p->last = now;
}

/* Copies in to out until EOF, counting. */
static int pump(int in, int out, Progress *p)
{
        static char buf[128 * 1024];
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : 0;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t)(n - off));
                        if (w < 0 && errno != EINTR)
                                return -errno;
                        off += w > 0 ? w : 0;
                }
                if (p) {
                        p->done += (uint64_t)n;
                        progress_show(p, false);
                }
        }
}

/* ---- clone: the daemon's worker copies; the CLI watches its temporary directory grow ---- */

/* Allocated bytes under a directory (du's measure, the same for the source and the copy). Best effort:
 * the copy changes under our feet, so whatever cannot be read is skipped. */
static uint64_t tree_bytes_at(int dfd)
{
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        uint64_t sum = 0;
        if (!d) {
                safe_close(dfd);
                return 0;
        }
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;
                if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                sum += (uint64_t)st.st_blocks * 512;
                if (!S_ISDIR(st.st_mode))
                        continue;
                int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0)
                        sum += tree_bytes_at(sub);
        }
        return sum;
}

static uint64_t tree_bytes(const char *path)
{
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? 0 : tree_bytes_at(fd);
}

/* The daemon copies into "DIR/.#DST.XXXXXX" (mkdtemp) and renames it when complete; lock files
 * (".#DST.lck") and removals (".#DST.removing-…") do not match that pattern. */
static uint64_t clone_temp_bytes(const char *dir, const char *dst)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        _cleanup_free_ char *prefix = NULL;
        uint64_t sum = 0;
        if (!d || asprintf(&prefix, ".#%s.", dst) < 0)
                return 0;
        size_t l = strlen(prefix);
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_type != DT_DIR || strncmp(de->d_name, prefix, l) != 0 || strlen(de->d_name + l) != 6)
                        continue;
                int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd >= 0)
                        sum += tree_bytes_at(fd);
        }
        return sum;
}

/* The source image's directory as the daemon sees it, when that is also ours: no -H, no TCP address,
 * and the path exists here. Anything else: no progress, never a wrong one. */
static int clone_local_source(sd_bus *bus, const char *src, char **ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        const char *object;
        struct stat st;
        if (arg.host || (arg.address && strncmp(arg.address, "unix:", 5) != 0))
                return -EREMOTE;
        int r = sd_bus_call_method(bus, MM_SERVICE, MM_PATH, MM_MANAGER, "GetImage", &error, &reply, "s", src);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &object);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, MM_SERVICE, object, MM_IMAGE, "Path", &error, &path);
        if (r < 0)
                return r;
        if (path[0] != '/' || lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
                return -EREMOTE;
        *ret = TAKE_PTR(path);
        return 0;
}

typedef struct PendingCall {
        bool done;
        int error;
        sd_bus_error bus_error;
} PendingCall;

static int on_call_done(sd_bus_message *reply, void *userdata, sd_bus_error *unused)
{
        PendingCall *c = userdata;
        c->done = true;
        if (sd_bus_message_is_method_error(reply, NULL)) {
                c->error = -sd_bus_message_get_errno(reply) ?: -EIO;
                (void)sd_bus_error_copy(&c->bus_error, sd_bus_message_get_error(reply));
        }
        return 0;
}

/* CloneImage without waiting blind: the call is sent asynchronously, and while it is pending the size of
 * the temporary copy is shown against the source's. */
static int clone_with_progress(sd_bus *bus, const char *src, const char *dst, const char *src_path)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *dir_buf = strdup(src_path);
        PendingCall call = {.bus_error = SD_BUS_ERROR_NULL};
        Progress p;
        if (!dir_buf)
                return -ENOMEM;
        const char *dir = dirname(dir_buf);
        progress_init(&p, "Cloning", tree_bytes(src_path));
        int r = sd_bus_message_new_method_call(bus, &m, MM_SERVICE, MM_PATH, MM_MANAGER, "CloneImage");
        if (r >= 0)
                r = sd_bus_message_append(m, "ssb", src, dst, arg.read_only > 0);
        if (r < 0)
                return cli_bus_parse_error(r);
        r = sd_bus_call_async(bus, &slot, m, on_call_done, &call, IMAGE_CALL_TIMEOUT_USEC);
        if (r < 0) {
                cli_error(src, "clone: %s", strerror(-r));
                return r;
        }
        /* Walking the copy costs time on a big tree: poll at most every 0.5 s, and at most a fifth of it. */
        uint64_t next_poll = now_us() + 500000;
        while (!call.done) {
                r = sd_bus_process(bus, NULL);
                if (r > 0)
                        continue;
                if (r >= 0 && now_us() >= next_poll) {
                        uint64_t t0 = now_us();
                        /* Never backwards: the copy is renamed away just before the reply comes. */
                        p.done = MAX(p.done, clone_temp_bytes(dir, dst));
                        progress_show(&p, false);
                        next_poll = now_us() + MAX(500000, 4 * (now_us() - t0));
                }
                if (r >= 0)
                        r = sd_bus_wait(bus, 250000);
                if (r < 0 && r != -EINTR) {
                        if (p.last)
                                printf("\r\033[K");
                        cli_error(src, "clone: %s", strerror(-r));
                        return r;
                }
        }
        if (call.error < 0) {
                if (p.last) /* the unfinished progress line goes, the error takes its place */
                        printf("\r\033[K");
                fflush(stdout);
                r = cli_bus_error(src, "clone", &call.bus_error, call.error);
                sd_bus_error_free(&call.bus_error);
                return r;
        }
        p.done = MAX(p.done, p.total);
        progress_show(&p, true);
        return 0;
}

int verb_clone(sd_bus *bus, char **args)
{
        _cleanup_free_ char *src_path = NULL;
        /* Progress only on a terminal, and only where the copy can be seen. */
        if (!arg.quiet && isatty(STDOUT_FILENO) && clone_local_source(bus, args[1], &src_path) >= 0)
                return clone_with_progress(bus, args[1], args[2], src_path);
        return call_manager(bus, args[1], "clone", NULL, "CloneImage", "ssb", args[1], args[2],
                            arg.read_only > 0);
}

/* ---- child processes ---- */

static int spawn(char **argv, int in, int out, pid_t *ret)
{
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if ((in >= 0 && dup2(in, STDIN_FILENO) < 0) || (out >= 0 && dup2(out, STDOUT_FILENO) < 0))
                        _exit(127);
                execvp(argv[0], argv);
                fprintf(stderr, "machinemgr: %s: %m\n", argv[0]);
                _exit(127);
        }
        *ret = pid;
        return 0;
}

static int wait_child(pid_t pid, const char *name, const char *what)
{
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status))
                cli_error(name, "%s exited with status %d", what, WEXITSTATUS(status));
        else
                cli_error(name, "%s killed by signal %s", what, strsignal(WTERMSIG(status)));
        return -EIO;
}

static int run_and_wait(char **argv, const char *name)
{
        pid_t pid = 0;
        int r = spawn(argv, -1, -1, &pid);
        if (r < 0) {
                cli_error(name, "%s: %s", argv[0], strerror(-r));
                return r;
        }
        return wait_child(pid, name, argv[0]);
}

/* Runs argv with a pipe on stdin (to_child) or stdout, pumping fd through it. */
static int run_piped(char **argv, int fd, bool to_child, const char *name, Progress *p)
{
        int pp[2];
        pid_t pid = 0;
        if (pipe2(pp, O_CLOEXEC) < 0)
                return -errno;
        int r = spawn(argv, to_child ? pp[0] : -1, to_child ? -1 : pp[1], &pid);
        safe_close(to_child ? pp[0] : pp[1]);
        int mine = to_child ? pp[1] : pp[0];
        if (r < 0) {
                safe_close(mine);
                cli_error(name, "%s: %s", argv[0], strerror(-r));
                return r;
        }
        int pr = to_child ? pump(fd, mine, p) : pump(mine, fd, p);
        safe_close(mine);
        r = wait_child(pid, name, argv[0]);
        if (r >= 0 && pr < 0 && pr != -EPIPE) {
                cli_error(name, "copying data: %s", strerror(-pr));
                r = pr;
        }
        progress_show(p, true);
        return r;
}

/* ---- local image helpers ---- */

static const char *image_path(void)
{
        const char *p = getenv("MACHINEMGR_IMAGE_PATH");
        return p && *p ? p : "/var/lib/machines";
}

/* A hidden temp dir next to the destination, so the final rename is atomic and nothing half-made is listed.
 */
static int prepare_target(const char *name, char **ret_final, char **ret_tmp)
{
        _cleanup_free_ char *final = NULL, *tmp = NULL;
        if (!machine_name_is_valid(name)) {
                cli_error(name, "invalid image name");
                return -EINVAL;
        }
        if (asprintf(&final, "%s/%s", image_path(), name) < 0 ||
            asprintf(&tmp, "%s/.#%s.XXXXXX", image_path(), name) < 0)
                return -ENOMEM;
        if (access(final, F_OK) >= 0 || errno != ENOENT) {
                cli_error(name, "image %s already exists", final);
                return -EINVAL;
        }
        int r = mkdir_p(image_path(), 0700);
        if (r < 0 || !mkdtemp(tmp) || chmod(tmp, 0755) < 0) {
                r = r < 0 ? r : -errno;
                cli_error(name, "create a temporary directory in %s: %s", image_path(), strerror(-r));
                return r;
        }
        *ret_final = TAKE_PTR(final);
        *ret_tmp = TAKE_PTR(tmp);
        return 0;
}

static int finish_target(const char *name, const char *tmp, const char *final, int r)
{
        if (r >= 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
                r = -errno;
                cli_error(name, "rename into place: %s", strerror(-r));
        }
        if (r < 0)
                (void)rm_rf_dir(tmp);
        return r;
}

static int write_text(const char *root, const char *rel, const char *text)
{
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", root, rel) < 0)
                return -ENOMEM;
        return write_file_atomic(p, text);
}

/* Every applet busybox has, as a symlink in /bin: one PATH entry finds them all. */
static int busybox_applets(const char *root, const char *busybox)
{
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "%s --list", busybox);
        FILE *f = popen(cmd, "re");
        char line[256];
        int r = 0;
        if (!f)
                return -errno;
        while (r >= 0 && fgets(line, sizeof line, f)) {
                _cleanup_free_ char *link = NULL;
                line[strcspn(line, "\n")] = 0;
                if (!*line || streq(line, "busybox") || strchr(line, '/'))
                        continue;
                if (asprintf(&link, "%s/bin/%s", root, line) < 0)
                        r = -ENOMEM;
                else if (symlink("busybox", link) < 0 && errno != EEXIST)
                        r = -errno;
        }
        int status = pclose(f);
        return r < 0 ? r : status == 0 ? 0 : -EIO;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
        _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (in < 0 || out < 0)
                return -errno;
        return pump(in, out, NULL);
}

/* A dynamically linked busybox would need the host's libc inside the guest: it has a PT_INTERP. */
static int elf_is_static(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        Elf64_Ehdr eh;
        if (fd < 0)
                return -errno;
        if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
            eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
                return -ENOEXEC;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                Elf64_Phdr ph;
                if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph)
                        return -ENOEXEC;
                if (ph.p_type == PT_INTERP)
                        return 0;
        }
        return 1;
}

/* The same tree as tools/mkimage-busybox: no init of its own, so it runs with Boot=no. */
static int create_busybox(const char *name, const char *root)
{
        static const struct {
                const char *path;
                mode_t mode;
        } dirs[] = {
                {"bin", 0755}, {"sbin", 0755}, {"etc", 0755},  {"proc", 0755},    {"sys", 0755},
                {"dev", 0755}, {"run", 0755},  {"tmp", 01777}, {"root", 0700},    {"var", 0755},
                {"var/tmp", 01777}, {"usr", 0755}, {"usr/bin", 0755}, {"usr/sbin", 0755},
        };
        const char *busybox = "/bin/busybox";
        _cleanup_free_ char *dst = NULL, *env = NULL;
        int r = elf_is_static(busybox);
        if (r <= 0) {
                cli_error(name, "create: %s %s (install busybox-static)", busybox,
                          r == 0 ? "is dynamically linked" : r == -ENOENT ? "not found" : strerror(-r));
                return r == 0 ? -EINVAL : r;
        }
        r = 0;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *d = NULL;
                /* chmod after mkdir: the umask must not take the sticky /tmp's bits away. */
                r = asprintf(&d, "%s/%s", root, dirs[i].path) < 0 ? -ENOMEM : mkdir_p(d, 0755);
                if (r >= 0 && chmod(d, dirs[i].mode) < 0)
                        r = -errno;
        }
        if (r < 0 || asprintf(&dst, "%s/bin/busybox", root) < 0 || asprintf(&env, "%s/usr/bin/env", root) < 0)
                goto fail;
        if ((r = copy_file(busybox, dst, 0755)) < 0 || (r = busybox_applets(root, busybox)) < 0)
                goto fail;
        /* Scripts with a "#!/usr/bin/env" line run too. */
        if (symlink("../../bin/env", env) < 0) {
                r = -errno;
                goto fail;
        }
        if ((r = write_text(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")) < 0 ||
            (r = write_text(root, "etc/group", "root:x:0:\n")) < 0 ||
            (r = write_text(root, "etc/os-release", "ID=busybox\nNAME=\"BusyBox\"\nPRETTY_NAME=\"BusyBox\"\n")) < 0)
                goto fail;
        return 0;
fail:
        r = r < 0 ? r : -ENOMEM;
        cli_error(name, "create busybox image: %s", strerror(-r));
        return r;
}

static int create_debian(const char *name, const char *root)
{
        char *argv[] = {(char *)"mmdebstrap",
                        (char *)"--variant=minbase",
                        (char *)"--include=systemd,systemd-sysv,dbus",
                        (char *)image_arg.release,
                        (char *)root,
                        NULL,
                        NULL};
        /* On a terminal mmdebstrap shows its own progress; elsewhere only its errors. */
        if (arg.quiet || !isatty(STDOUT_FILENO)) {
                memmove(argv + 2, argv + 1, 4 * sizeof *argv);
                argv[1] = (char *)"--quiet";
        }
        return run_and_wait(argv, name);
}

/* No init in a busybox image: with Boot=no, "machinemgr start NAME" works out of the box (machinemgr-init
 * runs the default shell). A settings file that is already there is the user's and stays. */
static int busybox_settings(const char *name)
{
        _cleanup_free_ char *settings = NULL;
        if (asprintf(&settings, "%s/%s.machine", image_path(), name) < 0)
                return -ENOMEM;
        if (access(settings, F_OK) >= 0 || errno != ENOENT)
                return 0;
        int r = write_file_atomic(settings, "[Exec]\nBoot=no\n");
        if (r < 0)
                cli_error(name, "create: write %s: %s", settings, strerror(-r));
        return r;
}

int verb_create(sd_bus *bus, char **args)
{
        _cleanup_free_ char *final = NULL, *tmp = NULL;
        const char *name = args[1];
        if (!image_arg.busybox && !streq(image_arg.distribution, "debian")) {
                cli_error(name, "create: unsupported distribution '%s' (debian, or --busybox)",
                          image_arg.distribution);
                return -EINVAL;
        }
        int r = prepare_target(name, &final, &tmp);
        if (r < 0)
                return r;
        r = image_arg.busybox ? create_busybox(name, tmp) : create_debian(name, tmp);
        r = finish_target(name, tmp, final, r);
        if (r >= 0 && image_arg.busybox)
                r = busybox_settings(name);
        return r;
}

/* tar's -I program for FILE's compression, NULL for a plain tarball. */
static const char *compressor(const char *file)
{
        static const struct {
                const char *suffix, *program;
        } table[] = {{".gz", "gzip"}, {".tgz", "gzip"}, {".xz", "xz"},
                     {".txz", "xz"},  {".zst", "zstd"}, {".tzst", "zstd"}};
        size_t l = strlen(file);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                size_t s = strlen(table[i].suffix);
                if (l > s && streq(file + l - s, table[i].suffix))
                        return table[i].program;
        }
        return NULL;
}

/* Owners as numbers and xattrs/ACLs kept both ways, so the tree round-trips exactly. */
#define TAR_ARGS "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-f", "-"

int verb_import_tar(sd_bus *bus, char **args)
{
        _cleanup_free_ char *final = NULL, *tmp = NULL;
        const char *file = args[1], *name = args[2], *comp = compressor(file);
        struct stat st;
        Progress p;
        _cleanup_close_ int in = open(file, O_RDONLY | O_CLOEXEC);
        if (in < 0 || fstat(in, &st) < 0) {
                int r = errno == ENOENT ? -ERRNO_NO_SUCH : -errno;
                cli_error(name, "import-tar: %s: %m", file);
                return r;
        }
        int r = prepare_target(name, &final, &tmp);
        if (r < 0)
                return r;
        char *argv[] = {"tar", "-x", "-p", "-C", tmp, TAR_ARGS, comp ? "-I" : NULL, (char *)comp, NULL};
        progress_init(&p, "Importing", S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
        r = run_piped(argv, in, true, name, &p);
        return finish_target(name, tmp, final, r);
}

int verb_export_tar(sd_bus *bus, char **args)
{
        _cleanup_free_ char *root = NULL;
        const char *name = args[1], *file = args[2], *comp = compressor(file);
        struct stat st;
        Progress p;
        if (!machine_name_is_valid(name)) {
                cli_error(name, "invalid image name");
                return -EINVAL;
        }
        if (asprintf(&root, "%s/%s", image_path(), name) < 0)
                return -ENOMEM;
        if (lstat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
                cli_error(name, "no such image");
                return -ERRNO_NO_SUCH;
        }
        _cleanup_close_ int out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0) {
                int r = -errno;
                cli_error(name, "export-tar: %s: %m", file);
                return r;
        }
        char *argv[] = {"tar", "-c", "-C", root, TAR_ARGS, comp ? "-I" : NULL, (char *)comp, ".", NULL};
        if (!comp)
                memmove(argv + 10, argv + 12,
                        2 * sizeof *argv); /* "." and NULL up over the unused -I slot */
        progress_init(&p, "Exporting", 0);
        int r = run_piped(argv, out, false, name, &p);
        if (r < 0)
                (void)unlink(file);
        return r;
}
