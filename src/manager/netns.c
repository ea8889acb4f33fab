/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

static void nl_socket_freep(struct nl_sock **s)
{
        if (*s)
                nl_socket_free(*s);
}

static void rtnl_link_putp(struct rtnl_link **l)
{
        if (*l)
                rtnl_link_put(*l);
}

/* libnl returns its own error codes; the caller wants an errno for "STEP: strerror". */
static int nl_to_errno(int nlerr)
{
        switch (-nlerr) {
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_PERM:
                return -EPERM;
        case NLE_OBJ_NOTFOUND:
        case NLE_NODEV:
                return -ENODEV;
        case NLE_EXIST:
                return -EEXIST;
        case NLE_INVAL:
                return -EINVAL;
        case NLE_AF_NOSUPPORT:
                return -EAFNOSUPPORT;
        default:
                return -EIO;
        }
}

static int rtnl_open(struct nl_sock **ret)
{
        struct nl_sock *sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        int r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(sk);
                return nl_to_errno(r);
        }
        *ret = sk;
        return 0;
}

static int link_set_up(struct nl_sock *sk, struct rtnl_link *link)
{
        __attribute__((cleanup(rtnl_link_putp))) struct rtnl_link *change = rtnl_link_alloc();
        if (!change)
                return -ENOMEM;
        rtnl_link_set_flags(change, IFF_UP);
        int r = rtnl_link_change(sk, link, change, 0);
        return r < 0 ? nl_to_errno(r) : 0;
}

/* Runs in the container's child between clone and exec, the latency-critical part of a start: every
 * library page it touches there is a page fault on the child's fresh copy of the daemon, and a netlink
 * round trip through libnl touched enough of them to cost ~0.7 ms. Setting IFF_UP on lo is one ioctl. */
int netns_loopback_up(void)
{
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct ifreq ifr = {.ifr_name = "lo"};
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        if (ifr.ifr_flags & IFF_UP)
                return 0;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                return -errno;
        return 0;
}

static void nl_addr_putp(struct nl_addr **a)
{
        if (*a)
                nl_addr_put(*a);
}

static void rtnl_addr_putp(struct rtnl_addr **a)
{
        if (*a)
                rtnl_addr_put(*a);
}

static int host0_add_address(struct nl_sock *sk, int ifindex, const char *address)
{
        __attribute__((cleanup(nl_addr_putp))) struct nl_addr *local = NULL;
        __attribute__((cleanup(rtnl_addr_putp))) struct rtnl_addr *a = NULL;
        int r = nl_addr_parse(address, AF_UNSPEC, &local);
        if (r < 0)
                return nl_to_errno(r);
        a = rtnl_addr_alloc();
        if (!a)
                return -ENOMEM;
        rtnl_addr_set_ifindex(a, ifindex);
        r = rtnl_addr_set_local(a, local);
        if (r < 0)
                return nl_to_errno(r);
        rtnl_addr_set_prefixlen(a, nl_addr_get_prefixlen(local));
        if (nl_addr_get_family(local) == AF_INET6)
                rtnl_addr_set_flags(a, IFA_F_NODAD);
        r = rtnl_addr_add(sk, a, 0);
        return r < 0 ? nl_to_errno(r) : 0;
}

int netns_setup_host0(char **addresses, const char **ret_step)
{
        static char step[128];
        __attribute__((cleanup(nl_socket_freep))) struct nl_sock *sk = NULL;
        __attribute__((cleanup(rtnl_link_putp))) struct rtnl_link *link = NULL;

        *ret_step = "open rtnetlink in the guest";
        int r = rtnl_open(&sk);
        if (r < 0)
                return r;

        *ret_step = "find host0";
        r = rtnl_link_get_kernel(sk, 0, "host0", &link);
        if (r < 0)
                return nl_to_errno(r);

        STRV_FOREACH(a, addresses) {
                snprintf(step, sizeof step, "add address %s to host0", *a);
                *ret_step = step;
                r = host0_add_address(sk, rtnl_link_get_ifindex(link), *a);
                if (r < 0)
                        return r;
        }

        *ret_step = "bring up host0";
        return link_set_up(sk, link);
}

/* The guest's file, never following a symlink in the image out of (or within) its root, and only ever a
 * regular file: a FIFO there would block the set-up (and with it the daemon, see container.c), a device's
 * open runs its driver outside the guest's device policy. Created when missing. */
static int open_guest_resolv_conf(int root_fd, int flags)
{
        return guest_open(-1, root_fd, "etc/resolv.conf", flags, GUEST_OPEN_NOFOLLOW | GUEST_OPEN_CREATE);
}

/* Nothing to do (and no failure) for an image that cannot or should not take the file: a symlink (a
 * resolver manager's stub), no /etc, a read-only root, or whatever the guest put there that is not a
 * regular file (left as it is, like a symlink) or holds a lease on it. */
static bool resolv_conf_skippable(int r)
{
        return r == -ELOOP || r == -ENOENT || r == -EROFS || r == -ENOTDIR || r == -EISDIR || r == -EBADFD ||
               r == -EWOULDBLOCK;
}

static int resolv_conf_copy(int root_fd)
{
        _cleanup_free_ char *contents = NULL;
        size_t size;
        int r = read_full_file("/etc/resolv.conf", &contents, &size);
        if (r == -ENOENT)
                return 0; /* the host has none: leave the guest's */
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open_guest_resolv_conf(root_fd, O_WRONLY | O_TRUNC);
        if (fd < 0)
                return resolv_conf_skippable(fd) ? 0 : fd;
        for (size_t done = 0; done < size;) {
                ssize_t n = write(fd, contents + done, size - done);
                if (n < 0)
                        return -errno;
                done += (size_t)n;
        }
        return 0;
}

static int resolv_conf_bind(int root_fd)
{
        _cleanup_close_ int target = open_guest_resolv_conf(root_fd, O_PATH);
        if (target < 0)
                return resolv_conf_skippable(target) ? 0 : target;

        _cleanup_close_ int tree = open_tree(AT_FDCWD, "/etc/resolv.conf", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0)
                return errno == ENOENT ? 0 : -errno;
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
                return -errno;
        if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

int netns_setup_resolv_conf(int root_fd, int mode)
{
        switch (mode) {
        case NETNS_RESOLV_CONF_COPY:
                return resolv_conf_copy(root_fd);
        case NETNS_RESOLV_CONF_BIND:
                return resolv_conf_bind(root_fd);
        default:
                return 0;
        }
}
