/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* machinemgrd: one process, one event loop, every container. */
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "container.h"
#include "fdstore.h"
#include "log.h"
#include "manager.h"
#include "util.h"

#define DEFAULT_RUNTIME_DIR "/run/machinemgr"
#define DEFAULT_IMAGE_PATH "/var/lib/machines"
#define CONFIG_FILE "/etc/machinemgr/machinemgrd.conf"

static char *arg_runtime_dir;
static char *arg_image_path;

static void help(void)
{
        printf("machinemgrd [OPTIONS]\n\n"
               "The machinemgr daemon: supervises system containers.\n\n"
               "  -h --help               Show this help\n"
               "     --version            Show the version\n"
               "     --runtime-dir=DIR    State and sockets (default " DEFAULT_RUNTIME_DIR ")\n"
               "     --image-path=DIR     Where images live (default " DEFAULT_IMAGE_PATH
               ", or ImagePath= in " CONFIG_FILE ")\n"
               "  -v --verbose            Log debug messages\n");
}

/* machinemgrd.conf: [Daemon] ImagePath=DIR. The command line wins. */
static int read_config(void)
{
        _cleanup_fclose_ FILE *f = fopen(CONFIG_FILE, "re");
        if (!f)
                return errno == ENOENT ? 0 : log_warning_errno(errno, "Open %s: %m", CONFIG_FILE);
        char line[4096];
        unsigned n = 0;
        while (fgets(line, sizeof line, f)) {
                n++;
                line[strcspn(line, "\r\n")] = 0;
                char *l = line + strspn(line, " \t");
                if (!*l || *l == '#' || *l == ';' || *l == '[')
                        continue;
                if (strncmp(l, "ImagePath=", 10) == 0 && !arg_image_path) {
                        if (l[10] != '/')
                                return log_error_errno(EINVAL, "%s:%u: ImagePath= must be absolute", CONFIG_FILE, n);
                        arg_image_path = strdup(l + 10);
                        if (!arg_image_path)
                                return log_oom();
                } else if (strncmp(l, "ImagePath=", 10) != 0)
                        log_warning("%s:%u: Unknown setting '%s', ignoring.", CONFIG_FILE, n, l);
        }
        return 0;
}

static int parse_argv(int argc, char *argv[])
{
        enum { ARG_VERSION = 0x100, ARG_RUNTIME_DIR, ARG_IMAGE_PATH };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR},
                {"image-path", required_argument, NULL, ARG_IMAGE_PATH},
                {"verbose", no_argument, NULL, 'v'},
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts("machinemgrd " PACKAGE_VERSION);
                        return 0;
                case ARG_RUNTIME_DIR:
                case ARG_IMAGE_PATH:
                        if (optarg[0] != '/') {
                                log_error("--%s= needs an absolute path.", options[c == ARG_RUNTIME_DIR ? 2 : 3].name);
                                return -EINVAL;
                        }
                        free(c == ARG_RUNTIME_DIR ? arg_runtime_dir : arg_image_path);
                        *(c == ARG_RUNTIME_DIR ? &arg_runtime_dir : &arg_image_path) = strdup(optarg);
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                log_error("Unexpected argument '%s'.", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        /* Containers outlive the daemon on purpose: the next instance re-adopts them. */
        log_info("Received %s, exiting; machines keep running.", sigabbrev_np(si->ssi_signo) ?: "signal");
        m->exiting = true;
        return sd_event_exit(m->event, 0);
}

int main(int argc, char *argv[])
{
        /* The fd holder is this binary too (see fdstore.h): it gets its listening socket as fd 3. */
        if (argc == 2 && streq(argv[1], "--fd-holder"))
                return fdstore_holder_run(3);

        log_set_program("machinemgrd");
        int r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if ((r = read_config()) < 0)
                return 1;

        /* sd-event child sources need SIGCHLD blocked; the exit signals are handled by the loop too. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* About five fds per machine plus one per client: a service's default soft limit of 1024 would run
         * out near 200 machines. Raise ours to the hard limit; guests get the original. */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) >= 0) {
                container_set_guest_nofile(&nofile);
                struct rlimit raised = {.rlim_cur = nofile.rlim_max, .rlim_max = nofile.rlim_max};
                if (nofile.rlim_cur < nofile.rlim_max)
                        (void)setrlimit(RLIMIT_NOFILE, &raised);
        }

        Manager *m;
        if ((r = manager_new(&m)) < 0) {
                log_error_errno(r, "Allocate event loop: %m");
                return 1;
        }
        m->runtime_dir = arg_runtime_dir ?: strdup(DEFAULT_RUNTIME_DIR);
        m->image_path = arg_image_path ?: strdup(DEFAULT_IMAGE_PATH);
        if (!m->runtime_dir || !m->image_path) {
                manager_free(m);
                return 1;
        }
        if (sd_event_add_signal(m->event, NULL, SIGTERM, on_exit_signal, m) < 0 ||
            sd_event_add_signal(m->event, NULL, SIGINT, on_exit_signal, m) < 0) {
                manager_free(m);
                return 1;
        }
        r = manager_startup(m);
        if (r < 0) {
                manager_free(m);
                return 1;
        }
        log_info("Ready: private socket %s/private, images in %s.", m->runtime_dir, m->image_path);
        (void)sd_notify(false, "READY=1\nSTATUS=Supervising machines.");
        r = sd_event_loop(m->event);
        (void)sd_notify(false, "STOPPING=1");
        manager_free(m);
        return r < 0 ? 1 : 0;
}
