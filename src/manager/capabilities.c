/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "capabilities.h"

#include <errno.h>
#include <sys/capability.h>

#define CAP_BIT(c) (UINT64_C(1) << (c))

uint64_t capability_default_set(bool private_network)
{
        uint64_t set = CAP_BIT(CAP_AUDIT_CONTROL) | CAP_BIT(CAP_AUDIT_WRITE) | CAP_BIT(CAP_CHOWN) |
                       CAP_BIT(CAP_DAC_OVERRIDE) | CAP_BIT(CAP_DAC_READ_SEARCH) | CAP_BIT(CAP_FOWNER) |
                       CAP_BIT(CAP_FSETID) | CAP_BIT(CAP_IPC_OWNER) | CAP_BIT(CAP_KILL) | CAP_BIT(CAP_LEASE) |
                       CAP_BIT(CAP_LINUX_IMMUTABLE) | CAP_BIT(CAP_MKNOD) | CAP_BIT(CAP_NET_BIND_SERVICE) |
                       CAP_BIT(CAP_NET_BROADCAST) | CAP_BIT(CAP_NET_RAW) | CAP_BIT(CAP_SETFCAP) |
                       CAP_BIT(CAP_SETGID) | CAP_BIT(CAP_SETPCAP) | CAP_BIT(CAP_SETUID) |
                       CAP_BIT(CAP_SYS_ADMIN) | CAP_BIT(CAP_SYS_BOOT) | CAP_BIT(CAP_SYS_CHROOT) |
                       CAP_BIT(CAP_SYS_NICE) | CAP_BIT(CAP_SYS_PTRACE) | CAP_BIT(CAP_SYS_RESOURCE) |
                       CAP_BIT(CAP_SYS_TTY_CONFIG);

        /* Administering a network namespace of its own cannot touch the host's interfaces. */
        if (private_network)
                set |= CAP_BIT(CAP_NET_ADMIN);
        return set;
}

int capability_bounding_set_limit(uint64_t keep)
{
        /* cap_max_bits() is what the running kernel knows, which may be more than our headers do. */
        unsigned max = cap_max_bits();

        for (unsigned c = 0; c < max && c < 64; c++) {
                if (keep & CAP_BIT(c))
                        continue;
                if (cap_drop_bound((cap_value_t) c) < 0)
                        return -errno;
        }
        return 0;
}

int capability_limit(uint64_t keep)
{
        int r = capability_bounding_set_limit(keep);
        if (r < 0)
                return r;

        cap_t caps = cap_get_proc();
        if (!caps)
                return -errno;
        unsigned max = cap_max_bits();
        for (unsigned c = 0; c < max && c < 64; c++) {
                cap_value_t v = (cap_value_t) c;
                if (keep & CAP_BIT(c))
                        continue;
                if (cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_CLEAR) < 0 ||
                    cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_CLEAR) < 0 ||
                    cap_set_flag(caps, CAP_INHERITABLE, 1, &v, CAP_CLEAR) < 0) {
                        r = -errno;
                        break;
                }
        }
        if (r >= 0 && cap_set_proc(caps) < 0)
                r = -errno;
        cap_free(caps);
        if (r >= 0 && cap_reset_ambient() < 0)
                r = -errno;
        return r;
}

int capability_from_name(const char *name)
{
        cap_value_t v;

        if (cap_from_name(name, &v) < 0)
                return -EINVAL;
        return (int) v;
}
