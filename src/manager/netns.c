/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "netns.h"

#include <errno.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

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
                return -ENODEV;
        default:
                return -EIO;
        }
}

int netns_loopback_up(void)
{
        __attribute__((cleanup(nl_socket_freep))) struct nl_sock *sk = NULL;
        __attribute__((cleanup(rtnl_link_putp))) struct rtnl_link *lo = NULL;
        __attribute__((cleanup(rtnl_link_putp))) struct rtnl_link *change = NULL;
        int r;

        sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return nl_to_errno(r);

        r = rtnl_link_get_kernel(sk, 0, "lo", &lo);
        if (r < 0)
                return nl_to_errno(r);

        change = rtnl_link_alloc();
        if (!change)
                return -ENOMEM;
        rtnl_link_set_flags(change, IFF_UP);

        r = rtnl_link_change(sk, lo, change, 0);
        if (r < 0)
                return nl_to_errno(r);
        return 0;
}
