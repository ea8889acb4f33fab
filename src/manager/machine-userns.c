/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "machine-userns.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "log.h"
#include "settings.h"
#include "userns.h"
#include "util.h"


static char *userns_dir(Machine *m)
{
        char *dir;
        return asprintf(&dir, "%s/userns", m->manager->runtime_dir) < 0 ? NULL : dir;
}

int userns_machine_prepare(Machine *m, MachineError *error)
{
        uint32_t base = 0, size = 0;
        int mode = parse_private_users(m->settings->private_users ?: "no", &base, &size);

        if (mode < 0)
                return machine_error(error, MACHINE_ERROR_INVALID_ARGUMENT, "%s: invalid PrivateUsers=%s", m->name,
                                     m->settings->private_users);
        if (mode == PRIVATE_USERS_NO) {
                m->uid_shift = m->uid_range = 0;
                return 0;
        }
        /* Ephemeral= is an overlay made by the guest's root over the idmapped tree; Network=host gets the
         * host's /sys bound read-only (mount-setup.c): neither needs a refusal any more. */
        if (mode == PRIVATE_USERS_PICK)
                base = size = 0;
        /* A reboot keeps the range the machine has: its files and processes were made with it. */
        if (m->uid_range > 0) {
                base = m->uid_shift;
                size = m->uid_range;
        }

        _cleanup_free_ char *dir = userns_dir(m);
        if (!dir)
                return -ENOMEM;
        int r = userns_range_allocate(dir, m->name, base, size, &m->uid_shift, &m->uid_range);
        if (r == -EBUSY)
                return machine_error(error, MACHINE_ERROR_INVALID_ARGUMENT,
                                     "%s: PrivateUsers=%s overlaps the id range of another machine", m->name,
                                     m->settings->private_users);
        if (r == -ENOSPC)
                return machine_error(error, MACHINE_ERROR_START_FAILED, "%s: allocate a user namespace range: no "
                                     "free range left in the pool", m->name);
        if (r < 0)
                return machine_error(error, MACHINE_ERROR_START_FAILED, "%s: allocate a user namespace range in %s: %s",
                                     m->name, dir, strerror(-r));
        log_machine_info(m->name, "User namespace: uid/gid 0 -> %" PRIu32 " (%" PRIu32 " ids).", m->uid_shift,
                         m->uid_range);
        return 0;
}

int userns_machine_pre_start(Machine *m)
{
        if (m->uid_range == 0 || !m->cgroup)
                return 0;
        /* Only payload, the guest's cgroup namespace root: the limits on the scope above stay root's. */
        const char *path = cgroup_payload_path(m->cgroup);
        if (!path)
                return 0;
        /* systemd's Delegate= would chown only for a unit with User=; a transient scope has none, so we
         * do the same chown in both modes. */
        int r = userns_chown_cgroup(path, m->uid_shift, m->uid_shift);
        if (r < 0)
                return log_machine_error_errno(m->name, r, "Delegate cgroup %s to uid %" PRIu32 ": %m", path,
                                               m->uid_shift);
        return 0;
}

void userns_machine_stop(Machine *m)
{
        _cleanup_free_ char *dir = userns_dir(m);
        if (!dir)
                return;
        int r = userns_range_release(dir, m->name);
        if (r < 0)
                log_machine_warning_errno(m->name, r, "Release user namespace range in %s: %m", dir);
        m->uid_shift = m->uid_range = 0;
}

void userns_machine_serialize(Machine *m, FILE *f)
{
        if (m->uid_range > 0)
                fprintf(f, "USERNS_SHIFT=%" PRIu32 "\nUSERNS_RANGE=%" PRIu32 "\n", m->uid_shift, m->uid_range);
}

int userns_machine_deserialize_item(Machine *m, const char *key, const char *value)
{
        unsigned u;
        if (safe_atou(value, &u) < 0)
                return 0;
        if (streq(key, "USERNS_SHIFT"))
                m->uid_shift = u;
        else if (streq(key, "USERNS_RANGE"))
                m->uid_range = u;
        return 0;
}
