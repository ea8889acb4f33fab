/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "seccomp-policy.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/reboot.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

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

/* reboot(2)'s restart, power-off and halt commands go to the listener (reboot-watch.h); the rest of reboot(2)
 * (CAD on/off, bad magic) is the kernel's alone, as before. */
static int watch_reboot(scmp_filter_ctx ctx)
{
        static const unsigned cmds[] = {
                LINUX_REBOOT_CMD_RESTART,
                LINUX_REBOOT_CMD_RESTART2,
                LINUX_REBOOT_CMD_POWER_OFF,
                LINUX_REBOOT_CMD_HALT,
        };
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                /* Spelt out: clang warns about the fields SCMP_A0()'s initializer leaves out. */
                const struct scmp_arg_cmp args[] = {
                        { .arg = 0, .op = SCMP_CMP_EQ, .datum_a = (uint32_t) LINUX_REBOOT_MAGIC1, .datum_b = 0 },
                        { .arg = 2, .op = SCMP_CMP_EQ, .datum_a = cmds[i], .datum_b = 0 },
                };
                int r = seccomp_rule_add_array(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(reboot), ELEMENTSOF(args), args);
                if (r < 0)
                        return r;
        }
        return 0;
}

int seccomp_policy_build(char **extra, scmp_filter_ctx *ret, const char **ret_bad_name)
{
        return seccomp_policy_build_full(extra, false, ret, ret_bad_name);
}

int seccomp_policy_build_full(char **extra, bool watch, scmp_filter_ctx *ret, const char **ret_bad_name)
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
        /* SystemCallFilter=~reboot: nothing of it reaches the kernel, so there is nothing to watch. */
        if (watch && !strv_contains(extra, "~reboot")) {
                r = watch_reboot(ctx);
                if (r < 0)
                        return r;
        }

        *ret = ctx;
        ctx = NULL;
        return 0;
}

/* Compiled filters, one per distinct SystemCallFilter= list, kept for the daemon's lifetime.
 * libseccomp's compilation costs milliseconds (it dominated the start of a container when it ran in
 * every child); loading finished BPF is one system call. The children are fork()s of the daemon
 * (clone3 without CLONE_VM), so a filter compiled here before the clone is already in their memory.
 * The daemon is single-threaded: no locking. A handful of distinct profiles is expected. */
typedef struct CompiledFilter {
        char *key;                   /* the extra entries joined by '\n' ("" for the default policy) */
        struct sock_filter *insns;
        unsigned short len;
        struct CompiledFilter *next;
} CompiledFilter;

static CompiledFilter *compiled_filters;

static char *filter_key(char **extra, bool watch)
{
        size_t n = 2;
        for (char **e = extra; e && *e; e++)
                n += strlen(*e) + 1;
        char *key = malloc(n), *p = key;
        if (!key)
                return NULL;
        *p++ = watch ? 'w' : '-';
        for (char **e = extra; e && *e; e++)
                p = stpcpy(stpcpy(p, *e), "\n");
        *p = 0;
        return key;
}

static CompiledFilter *filter_find(const char *key)
{
        for (CompiledFilter *f = compiled_filters; f; f = f->next)
                if (streq(f->key, key))
                        return f;
        return NULL;
}

/* libseccomp 2.5 can only export BPF to an fd (seccomp_export_bpf_mem is 2.6): go through a memfd. */
static int filter_export(scmp_filter_ctx ctx, struct sock_filter **ret_insns, unsigned short *ret_len)
{
        _cleanup_close_ int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
        struct stat st;
        int r;

        if (fd < 0)
                return -errno;
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0 ||
            st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return -EINVAL;
        _cleanup_free_ struct sock_filter *insns = malloc((size_t) st.st_size);
        if (!insns)
                return -ENOMEM;
        ssize_t n = pread(fd, insns, (size_t) st.st_size, 0);
        if (n != st.st_size)
                return n < 0 ? -errno : -EIO;
        *ret_len = (unsigned short) (st.st_size / sizeof(struct sock_filter));
        *ret_insns = TAKE_PTR(insns);
        return 0;
}

static int seccomp_policy_prepare_one(char **extra, bool watch, const char **ret_bad_name)
{
        __attribute__((cleanup(seccomp_releasep))) scmp_filter_ctx ctx = NULL;
        _cleanup_free_ char *key = filter_key(extra, watch);
        struct sock_filter *insns = NULL;
        unsigned short len = 0;
        int r;

        if (!key)
                return -ENOMEM;
        if (filter_find(key))
                return 0;

        r = seccomp_policy_build_full(extra, watch, &ctx, ret_bad_name);
        if (r < 0)
                return r;
        r = filter_export(ctx, &insns, &len);
        if (r < 0)
                return r;

        CompiledFilter *f = malloc(sizeof(*f));
        if (!f) {
                free(insns);
                return -ENOMEM;
        }
        *f = (CompiledFilter) { .key = TAKE_PTR(key), .insns = insns, .len = len, .next = compiled_filters };
        compiled_filters = f;
        return 0;
}

/* Both variants: the guest's init gets the watching one, shell sessions the other (no listener would
 * answer theirs: their reboot(2) would fail with ENOSYS). */
int seccomp_policy_prepare(char **extra, const char **ret_bad_name)
{
        int r = seccomp_policy_prepare_one(extra, false, ret_bad_name);
        if (r >= 0)
                r = seccomp_policy_prepare_one(extra, true, ret_bad_name);
        return r;
}

static int seccomp_policy_load(char **extra, int *ret_listener, const char **ret_bad_name)
{
        __attribute__((cleanup(seccomp_releasep))) scmp_filter_ctx ctx = NULL;
        bool watch = ret_listener != NULL;
        _cleanup_free_ char *key = filter_key(extra, watch);
        int r;

        CompiledFilter *f = key ? filter_find(key) : NULL;
        if (f) {
                struct sock_fprog prog = { .len = f->len, .filter = f->insns };

                /* What seccomp_load() does with NNP off: we still hold CAP_SYS_ADMIN here. */
                r = (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                  watch ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &prog);
                if (r < 0)
                        return -errno;
                if (watch)
                        *ret_listener = r;
                return 0;
        }

        /* Not prepared by the parent: compile here (slower, same result). */
        r = seccomp_policy_build_full(extra, watch, &ctx, ret_bad_name);
        if (r < 0)
                return r;
        r = seccomp_load(ctx);
        if (r >= 0 && watch) {
                r = seccomp_notify_fd(ctx);
                if (r >= 0)
                        *ret_listener = r;
        }
        return r < 0 ? r : 0;
}

int seccomp_policy_apply(char **extra, const char **ret_bad_name)
{
        return seccomp_policy_load(extra, NULL, ret_bad_name);
}

int seccomp_policy_apply_watching_reboot(char **extra, int *ret_listener, const char **ret_bad_name)
{
        return seccomp_policy_load(extra, ret_listener, ret_bad_name);
}
