/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "seccomp-policy.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static const char *const default_deny[] = {
        /* replacing or extending the host kernel */
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        /* kernel-wide programmable or observable state, not namespaced */
        "bpf", "perf_event_open", "lookup_dcookie", "syslog",
        /* escapes file system namespacing: handles resolve outside the guest's root */
        "open_by_handle_at",
        /* keyrings are not namespaced: a guest could read or poison the host's keys */
        "keyctl", "add_key", "request_key",
        /* host-global resources */
        "swapon", "swapoff", "acct", "iopl", "ioperm",
        /* the clock is shared with the host */
        "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64", "settimeofday",
        "adjtimex", "stime",
        /* obsolete and only ever useful to attackers */
        "uselib", "nfsservctl", "vm86", "vm86old",
};

static void seccomp_releasep(scmp_filter_ctx *ctx)
{
        if (*ctx)
                seccomp_release(*ctx);
}

int seccomp_policy_denies_by_default(const char *name)
{
        for (size_t i = 0; i < sizeof(default_deny) / sizeof(default_deny[0]); i++)
                if (strcmp(default_deny[i], name) == 0)
                        return 1;
        return 0;
}

static bool allowed_by_extra(char **extra, const char *name)
{
        for (char **e = extra; e && *e; e++)
                if (strcmp(*e, name) == 0)
                        return true;
        return false;
}

static int deny(scmp_filter_ctx ctx, const char *name, bool must_exist)
{
        int nr = seccomp_syscall_resolve_name(name);

        /* The default list names calls of other architectures (stime, vm86, ...): skip those. */
        if (nr == __NR_SCMP_ERROR)
                return must_exist ? -EINVAL : 0;
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
}

/* 32-bit binaries in a 64-bit guest must be filtered too, or they would bypass the list (and with an
 * unknown architecture libseccomp would kill them outright). */
static int add_compat_arches(scmp_filter_ctx ctx)
{
#if defined(__x86_64__)
        static const uint32_t arches[] = { SCMP_ARCH_X86, SCMP_ARCH_X32 };
#elif defined(__aarch64__)
        static const uint32_t arches[] = { SCMP_ARCH_ARM };
#else
        static const uint32_t arches[] = {};
#endif
        for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++) {
                int r = seccomp_arch_add(ctx, arches[i]);
                if (r < 0 && r != -EEXIST)
                        return r;
        }
        return 0;
}

int seccomp_policy_build(char **extra, scmp_filter_ctx *ret, const char **ret_bad_name)
{
        __attribute__((cleanup(seccomp_releasep))) scmp_filter_ctx ctx = NULL;
        int r;

        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;

        /* The guest's root keeps CAP_SYS_ADMIN and must be able to exec setuid binaries (su, sudo):
         * no_new_privs would break them. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r < 0)
                return r;
        r = add_compat_arches(ctx);
        if (r < 0)
                return r;

        for (size_t i = 0; i < sizeof(default_deny) / sizeof(default_deny[0]); i++) {
                if (allowed_by_extra(extra, default_deny[i]))
                        continue;
                r = deny(ctx, default_deny[i], false);
                if (r < 0)
                        return r;
        }

        for (char **e = extra; e && *e; e++) {
                bool is_deny = (*e)[0] == '~';
                const char *name = *e + is_deny;

                if (seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR) {
                        if (ret_bad_name)
                                *ret_bad_name = *e;
                        return -EINVAL;
                }
                if (is_deny) {
                        r = deny(ctx, name, true);
                        /* Already denied by the default list. */
                        if (r < 0 && r != -EEXIST)
                                return r;
                }
        }

        *ret = ctx;
        ctx = NULL;
        return 0;
}

int seccomp_policy_apply(char **extra, const char **ret_bad_name)
{
        __attribute__((cleanup(seccomp_releasep))) scmp_filter_ctx ctx = NULL;
        int r;

        r = seccomp_policy_build(extra, &ctx, ret_bad_name);
        if (r < 0)
                return r;
        return seccomp_load(ctx);
}
