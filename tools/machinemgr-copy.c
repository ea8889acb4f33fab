/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "machinemgr-copy.h"

#include <sys/stat.h>

#include "machinemgr.h"
#include "names.h"

/* A copy of a big tree takes as long as it takes: the daemon's worker does it, we only wait. */
#define COPY_CALL_TIMEOUT_USEC (24ULL * 3600 * 1000000)

int copy_check(char **args)
{
        if (!machine_name_is_valid(args[1])) {
                cli_error(args[1], "invalid machine name");
                return -EINVAL;
        }
        /* copy-to: args[3] is in the guest; copy-from: args[2] is. */
        const char *guest = streq(args[0], "copy-to") ? args[3] : args[2];
        if (guest && guest[0] != '/') {
                cli_error(args[1], "%s: the path in the guest must be absolute: %s", args[0], guest);
                return -EINVAL;
        }
        if (!*args[2] || (args[3] && !*args[3])) {
                cli_error(args[1], "%s: empty path", args[0]);
                return -EINVAL;
        }
        return 0;
}

static int host_path_absolute(const char *path, char **ret)
{
        if (path[0] == '/')
                return (*ret = strdup(path)) ? 0 : -ENOMEM;
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        if (!cwd)
                return -errno;
        return asprintf(ret, "%s%s%s", cwd, streq(cwd, "/") ? "" : "/", path) < 0 ? -ENOMEM : 0;
}

static int call_copy(sd_bus *bus, const char *name, const char *what, const char *member, const char *src,
                     const char *dst)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r = sd_bus_message_new_method_call(bus, &m, MM_SERVICE, MM_PATH, MM_MANAGER, member);
        if (r >= 0)
                r = sd_bus_message_append(m, "sss", name, src, dst);
        if (r < 0)
                return cli_bus_parse_error(r);
        r = sd_bus_call(bus, m, COPY_CALL_TIMEOUT_USEC, &error, NULL);
        return r < 0 ? cli_bus_error(name, what, &error, r) : 0;
}

int verb_copy_to(sd_bus *bus, char **args)
{
        _cleanup_free_ char *host = NULL;
        int r = host_path_absolute(args[2], &host);
        if (r < 0) {
                cli_error(args[1], "copy-to: %s: %s", args[2], strerror(-r));
                return r;
        }
        return call_copy(bus, args[1], "copy-to", "CopyToMachine", host, args[3] ?: host);
}

int verb_copy_from(sd_bus *bus, char **args)
{
        _cleanup_free_ char *host = NULL;
        struct stat st;
        int r = host_path_absolute(args[3] ?: args[2], &host);
        if (r < 0) {
                cli_error(args[1], "copy-from: %s: %s", args[3] ?: args[2], strerror(-r));
                return r;
        }
        /* Like cp: into an existing directory. */
        if (args[3] && host[strlen(host) - 1] != '/' && stat(host, &st) >= 0 && S_ISDIR(st.st_mode)) {
                char *s;
                if (asprintf(&s, "%s/", host) < 0)
                        return -ENOMEM;
                free(host);
                host = s;
        }
        return call_copy(bus, args[1], "copy-from", "CopyFromMachine", args[2], host);
}
