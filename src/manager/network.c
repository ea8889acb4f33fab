/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "network.h"
#include "bus-names.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "machine.h"
#include "portfwd.h"
#include "util.h"

typedef struct ForwardTarget {
        Machine *machine;
        uint16_t guest_port;
        PortForwarder *forwarder;
} ForwardTarget;

typedef struct MachineNetwork {
        char ifname[IFNAMSIZ]; /* host end of the veth; empty: none */
        ForwardTarget *forwards;
        size_t n_forwards;
} MachineNetwork;

static void nl_socket_freep(struct nl_sock **s)
{
        if (*s)
                nl_socket_free(*s);
}
#define _cleanup_nl_sock_ _cleanup_(nl_socket_freep)

static void rtnl_link_putp(struct rtnl_link **l)
{
        if (*l)
                rtnl_link_put(*l);
}
#define _cleanup_link_ _cleanup_(rtnl_link_putp)

static void nl_cache_freep(struct nl_cache **c)
{
        if (*c)
                nl_cache_free(*c);
}

static int nl_errno(int nlerr)
{
        switch (-nlerr) {
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_PERM:
                return -EPERM;
        case NLE_EXIST:
                return -EEXIST;
        case NLE_OBJ_NOTFOUND:
        case NLE_NODEV:
                return -ENODEV;
        case NLE_INVAL:
                return -EINVAL;
        case NLE_BUSY:
                return -EBUSY;
        case NLE_RANGE:
                return -ERANGE;
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
                return nl_errno(r);
        }
        *ret = sk;
        return 0;
}

static bool ifname_char_ok(char c)
{
        return c > ' ' && c < 0x7f && c != '/' && c != ':' && c != '%';
}

void network_host_ifname(const char *machine_name, char *buf)
{
        size_t len = strlen(machine_name);
        bool ok = len + strlen("ve-") < IFNAMSIZ;
        for (size_t i = 0; ok && i < len; i++)
                ok = ifname_char_ok(machine_name[i]);
        if (ok) {
                snprintf(buf, IFNAMSIZ, "ve-%s", machine_name);
                return;
        }
        /* Too long or unusable: a readable prefix plus a hash of the whole name keeps names apart. */
        char prefix[6];
        size_t k = 0;
        for (size_t i = 0; i < len && k < sizeof prefix - 1; i++)
                if (ifname_char_ok(machine_name[i]))
                        prefix[k++] = machine_name[i];
        prefix[k] = 0;
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t i = 0; i < len; i++)
                h = (h ^ (uint8_t)machine_name[i]) * 16777619u;
        snprintf(buf, IFNAMSIZ, "ve-%s-%06x", prefix, (unsigned)(h & 0xffffff));
}

bool network_address_is_valid(const char *s)
{
        const char *slash = strchr(s, '/');
        if (!slash || slash == s || strlen(slash + 1) == 0 || strlen(slash + 1) > 3)
                return false;
        _cleanup_free_ char *addr = strndup(s, (size_t)(slash - s));
        unsigned char buf[sizeof(struct in6_addr)];
        unsigned prefix;
        if (!addr || safe_atou(slash + 1, &prefix) < 0)
                return false;
        if (inet_pton(AF_INET, addr, buf) == 1)
                return prefix <= 32;
        return inet_pton(AF_INET6, addr, buf) == 1 && prefix <= 128;
}

static int check_bridge(const char *bridge, char **ret_message)
{
        _cleanup_nl_sock_ struct nl_sock *sk = NULL;
        _cleanup_link_ struct rtnl_link *link = NULL;
        int r = rtnl_open(&sk);
        if (r < 0)
                return asprintf(ret_message, "look up bridge '%s': %s", bridge, strerror(-r)) < 0 ? -ENOMEM : r;
        r = strlen(bridge) < IFNAMSIZ ? rtnl_link_get_kernel(sk, 0, bridge, &link) : -NLE_OBJ_NOTFOUND;
        if (r < 0)
                return asprintf(ret_message, "Bridge '%s' does not exist.", bridge) < 0 ? -ENOMEM : -EINVAL;
        if (!streq_ptr(rtnl_link_get_type(link), "bridge"))
                return asprintf(ret_message, "'%s' is not a bridge (type %s).", bridge,
                                rtnl_link_get_type(link) ?: "none") < 0
                               ? -ENOMEM
                               : -EINVAL;
        return 0;
}

static const char *port_protocol_name(int protocol)
{
        return protocol == IPPROTO_UDP ? "udp" : "tcp";
}

static int refuse(char **ret_message, const char *format, ...) _printf_(2, 3);
static int refuse(char **ret_message, const char *format, ...)
{
        va_list ap;
        va_start(ap, format);
        int r = vasprintf(ret_message, format, ap);
        va_end(ap);
        return r < 0 ? -ENOMEM : -EINVAL;
}

int network_check_settings(const Settings *s, char **ret_message)
{
        bool veth = s->network_mode == NETWORK_VETH || s->network_mode == NETWORK_BRIDGE;

        if (s->network_mode == NETWORK_BRIDGE && !s->bridge)
                return refuse(ret_message, "Network mode 'bridge' needs a bridge (Bridge=, --bridge=).");
        if (s->bridge && s->network_mode != NETWORK_BRIDGE)
                return refuse(ret_message, "Bridge=%s is only used with Network mode 'bridge' (mode is '%s').",
                              s->bridge, network_mode_to_string(s->network_mode));
        if (s->addresses && !veth)
                return refuse(ret_message, "Address= needs Network mode 'veth' or 'bridge' (mode is '%s').",
                              network_mode_to_string(s->network_mode));
        STRV_FOREACH(a, s->addresses)
        if (!network_address_is_valid(*a))
                return refuse(ret_message, "Invalid address '%s', expected ADDRESS/PREFIX.", *a);
        if (s->n_ports > 0 && s->network_mode == NETWORK_HOST)
                return refuse(ret_message, "Port forwarding needs a private network (Network mode 'none', "
                                           "'veth' or 'bridge'), not 'host'.");
        for (size_t i = 0; i < s->n_ports; i++) {
                if (s->ports[i].protocol != IPPROTO_TCP && s->ports[i].protocol != IPPROTO_UDP)
                        return refuse(ret_message, "Port %u: unknown protocol.", s->ports[i].host_port);
                if (s->ports[i].host_port == 0 || s->ports[i].guest_port == 0)
                        return refuse(ret_message, "Port 0 cannot be forwarded.");
                /* tcp:53 and udp:53 are different ports. */
                for (size_t j = 0; j < i; j++)
                        if (s->ports[j].host_port == s->ports[i].host_port &&
                            s->ports[j].protocol == s->ports[i].protocol)
                                return refuse(ret_message, "Host port %s:%u is forwarded twice.",
                                              port_protocol_name(s->ports[i].protocol), s->ports[i].host_port);
        }
        if (s->network_mode == NETWORK_BRIDGE)
                return check_bridge(s->bridge, ret_message);
        return 0;
}

static MachineNetwork *machine_network(Machine *m)
{
        if (!m->network)
                m->network = calloc(1, sizeof(MachineNetwork));
        return m->network;
}

/* ---- network namespace of the guest, entered briefly by the (single-threaded) daemon ---- */

static int netns_enter(int pidfd, int *ret_saved)
{
        int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (saved < 0)
                return -errno;
        if (setns(pidfd, CLONE_NEWNET) < 0) {
                int r = -errno;
                safe_close(saved);
                return r;
        }
        *ret_saved = saved;
        return 0;
}

static void netns_leave(int saved)
{
        /* Staying in a guest's netns would put every later socket of the daemon there. */
        if (setns(saved, CLONE_NEWNET) < 0) {
                log_error_errno(-errno, "Return to the daemon's network namespace: %m");
                abort();
        }
        safe_close(saved);
}

/* The guest's first Address= (a local address of its netns), else its loopback. */
static int guest_target(Machine *m, uint16_t port, struct sockaddr_storage *ret, socklen_t *ret_len)
{
        const char *a = m->settings->addresses ? m->settings->addresses[0] : "127.0.0.1/8";
        _cleanup_free_ char *addr = strndup(a, strcspn(a, "/"));
        if (!addr)
                return -ENOMEM;
        struct sockaddr_in *in = (struct sockaddr_in *)ret;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;
        memset(ret, 0, sizeof *ret);
        if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                *ret_len = sizeof *in;
                return 0;
        }
        if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                *ret_len = sizeof *in6;
                return 0;
        }
        return -EINVAL;
}

/* The connection (TCP) or flow socket (UDP) to the guest is made from inside its netns, so it needs no
 * route on the host side (Mode=veth works with an unconfigured ve-NAME, Mode=none over the guest's
 * loopback). */
static int open_guest_connection(int type, void *userdata)
{
        ForwardTarget *t = userdata;
        Machine *m = t->machine;
        struct sockaddr_storage sa;
        socklen_t len;
        int saved = -1, r;

        if (m->leader_pidfd < 0)
                return -ESRCH;
        r = guest_target(m, t->guest_port, &sa, &len);
        if (r < 0)
                return r;
        r = netns_enter(m->leader_pidfd, &saved);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(sa.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        r = -errno;
        netns_leave(saved);
        if (fd < 0)
                return r;
        if (connect(fd, (struct sockaddr *)&sa, len) < 0 && errno != EINPROGRESS)
                return -errno;
        return TAKE_FD(fd);
}

static void forwards_free(MachineNetwork *n)
{
        for (size_t i = 0; i < n->n_forwards; i++)
                portfwd_free(n->forwards[i].forwarder);
        n->forwards = mfree(n->forwards);
        n->n_forwards = 0;
}

static int forwards_open(Machine *m, char **ret_failure)
{
        MachineNetwork *n = m->network;
        const Settings *s = m->settings;

        /* A reboot keeps the forwarders (and the host ports bound), but not the flows into the old netns. */
        if (n->n_forwards > 0) {
                for (size_t i = 0; i < n->n_forwards; i++)
                        portfwd_drop_flows(n->forwards[i].forwarder);
                return 0;
        }
        if (s->n_ports == 0)
                return 0;
        n->forwards = calloc(s->n_ports, sizeof(ForwardTarget));
        if (!n->forwards)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_ports; i++) {
                ForwardTarget *t = &n->forwards[n->n_forwards];
                *t = (ForwardTarget){.machine = m, .guest_port = s->ports[i].guest_port};
                int r = portfwd_new(m->manager->event, s->ports[i].protocol, s->ports[i].host_port,
                                    open_guest_connection, t, &t->forwarder);
                if (r < 0) {
                        forwards_free(n);
                        if (ret_failure)
                                (void)asprintf(ret_failure, "forward host port %s:%u: %s",
                                               port_protocol_name(s->ports[i].protocol), s->ports[i].host_port,
                                               strerror(-r));
                        return r;
                }
                n->n_forwards++;
        }
        return 0;
}

static int link_delete(struct nl_sock *sk, const char *ifname)
{
        _cleanup_link_ struct rtnl_link *link = rtnl_link_alloc();
        if (!link)
                return -ENOMEM;
        rtnl_link_set_name(link, ifname);
        int r = rtnl_link_delete(sk, link);
        return r < 0 ? nl_errno(r) : 0;
}

/* A veth of this name is ours from the previous run of the same machine (a reboot: the kernel may
 * still be tearing the old netns down). Anything else of that name is someone else's: refuse. */
static int link_remove_stale(struct nl_sock *sk, const char *ifname)
{
        _cleanup_link_ struct rtnl_link *old = NULL;
        if (rtnl_link_get_kernel(sk, 0, ifname, &old) < 0)
                return 0;
        if (!streq_ptr(rtnl_link_get_type(old), "veth"))
                return -EEXIST;
        int r = link_delete(sk, ifname);
        return r == -ENODEV ? 0 : r;
}

static int veth_create(Machine *m, pid_t pid, char **ret_failure)
{
        MachineNetwork *n = m->network;
        _cleanup_nl_sock_ struct nl_sock *sk = NULL;
        _cleanup_link_ struct rtnl_link *host = NULL, *change = NULL;
        char ifname[IFNAMSIZ];
        const char *step;
        int r;

        network_host_ifname(m->name, ifname);
        step = "open rtnetlink";
        r = rtnl_open(&sk);
        if (r >= 0) {
                step = "host interface name taken";
                r = link_remove_stale(sk, ifname);
        }
        if (r >= 0) {
                step = "create veth";
                r = rtnl_link_veth_add(sk, ifname, HOST0_IFNAME, pid);
                r = r < 0 ? nl_errno(r) : 0;
        }
        if (r >= 0) {
                memcpy(n->ifname, ifname, sizeof ifname); /* from here on, cleanup deletes it */
                step = "look up host end";
                r = rtnl_link_get_kernel(sk, 0, ifname, &host);
                r = r < 0 ? nl_errno(r) : 0;
        }
        if (r >= 0 && m->settings->network_mode == NETWORK_BRIDGE) {
                step = "add to bridge";
                _cleanup_link_ struct rtnl_link *br = NULL;
                r = rtnl_link_get_kernel(sk, 0, m->settings->bridge, &br);
                if (r >= 0)
                        r = rtnl_link_enslave_ifindex(sk, rtnl_link_get_ifindex(br), rtnl_link_get_ifindex(host));
                r = r < 0 ? nl_errno(r) : 0;
        }
        if (r >= 0) {
                step = "bring up host end";
                change = rtnl_link_alloc();
                if (!change)
                        r = -ENOMEM;
                else {
                        rtnl_link_set_flags(change, IFF_UP);
                        r = rtnl_link_change(sk, host, change, 0);
                        r = r < 0 ? nl_errno(r) : 0;
                }
        }
        if (r < 0)
                (void)asprintf(ret_failure, "%s %s%s%s: %s", step, ifname,
                               m->settings->network_mode == NETWORK_BRIDGE ? " -> " : "",
                               m->settings->network_mode == NETWORK_BRIDGE ? m->settings->bridge : "", strerror(-r));
        return r;
}

int network_machine_pre_start(Machine *m, pid_t pid)
{
        const Settings *s = m->settings;
        bool veth = s->network_mode == NETWORK_VETH || s->network_mode == NETWORK_BRIDGE;
        _cleanup_free_ char *failure = NULL;
        int r = 0;

        if (!veth && s->n_ports == 0)
                return 0;
        if (!machine_network(m))
                return -ENOMEM;
        if (veth)
                r = veth_create(m, pid, &failure);
        if (r >= 0)
                r = forwards_open(m, &failure);
        if (r < 0) {
                log_machine_error_errno(m->name, r, "Set up network: %s", failure ?: strerror(-r));
                network_machine_stop(m);
                free(m->spawn_failure);
                m->spawn_failure = TAKE_PTR(failure);
        }
        return r;
}

void network_machine_stop(Machine *m)
{
        MachineNetwork *n = m->network;
        if (!n)
                return;
        forwards_free(n);
        if (n->ifname[0]) {
                _cleanup_nl_sock_ struct nl_sock *sk = NULL;
                _cleanup_link_ struct rtnl_link *left = NULL;
                /* The kernel deletes the pair with the guest's netns too, but asynchronously: delete it
                 * now, so a stopped machine leaves nothing behind the moment it is reported gone. */
                int r = rtnl_open(&sk);
                if (r >= 0)
                        r = link_delete(sk, n->ifname);
                if (r >= 0 || r == -ENODEV)
                        r = rtnl_link_get_kernel(sk, 0, n->ifname, &left) >= 0 ? -EBUSY : 0;
                if (r < 0)
                        log_machine_warning_errno(m->name, r, "Remove host interface %s: %m", n->ifname);
                else
                        log_machine_debug(m->name, "Removed host interface %s.", n->ifname);
        }
        m->network = mfree(n);
}

void network_machine_free(Machine *m)
{
        if (!m->network)
                return;
        forwards_free(m->network);
        m->network = mfree(m->network);
}

/* Only the runtime part: the network settings are persisted with the rest of the settings. NET_MODE,
 * NET_ADDRESS and NET_PORT are still read from an older daemon's state file. */
void network_machine_serialize(Machine *m, FILE *f)
{
        if (m->network && m->network->ifname[0])
                fprintf(f, "NET_IFNAME=%s\n", m->network->ifname);
}

int network_machine_deserialize_item(Machine *m, const char *key, const char *value)
{
        Settings *s = m->settings;
        if (streq(key, "NET_MODE")) {
                int mode = parse_network_mode(value);
                if (mode >= 0)
                        s->network_mode = mode;
        } else if (streq(key, "NET_IFNAME")) {
                if (strlen(value) >= IFNAMSIZ || !machine_network(m))
                        return strlen(value) >= IFNAMSIZ ? 0 : -ENOMEM;
                strcpy(m->network->ifname, value);
        } else if (streq(key, "NET_ADDRESS"))
                return strv_extend(&s->addresses, value);
        else if (streq(key, "NET_PORT")) {
                PortForward p;
                if (parse_port(value, &p) < 0)
                        return 0;
                PortForward *ports = reallocarray(s->ports, s->n_ports + 1, sizeof(PortForward));
                if (!ports)
                        return -ENOMEM;
                s->ports = ports;
                s->ports[s->n_ports++] = p;
        }
        return 0;
}

int network_machine_adopt(Machine *m)
{
        _cleanup_free_ char *failure = NULL;
        if (m->settings->n_ports == 0)
                return 0;
        if (!machine_network(m))
                return -ENOMEM;
        int r = forwards_open(m, &failure);
        if (r < 0)
                log_machine_warning_errno(m->name, r, "Re-create port forwards: %s", failure ?: strerror(-r));
        return r;
}

int network_machine_append_ifindexes(Machine *m, sd_bus_message *reply)
{
        int r = sd_bus_message_open_container(reply, 'a', "i");
        if (r >= 0 && m->network && m->network->ifname[0]) {
                unsigned idx = if_nametoindex(m->network->ifname);
                if (idx > 0)
                        r = sd_bus_message_append(reply, "i", (int32_t)idx);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

typedef struct AddressDump {
        sd_bus_message *reply;
        int error;
} AddressDump;

static void append_address(struct nl_object *obj, void *userdata)
{
        AddressDump *d = userdata;
        struct rtnl_addr *a = (struct rtnl_addr *)obj;
        struct nl_addr *local = rtnl_addr_get_local(a);
        /* Loopback and link-local addresses say nothing about how to reach the guest. */
        if (d->error < 0 || !local || rtnl_addr_get_scope(a) >= RT_SCOPE_LINK)
                return;
        int r = sd_bus_message_open_container(d->reply, 'r', "iay");
        if (r >= 0)
                r = sd_bus_message_append(d->reply, "i", (int32_t)rtnl_addr_get_family(a));
        if (r >= 0)
                r = sd_bus_message_append_array(d->reply, 'y', nl_addr_get_binary_addr(local), nl_addr_get_len(local));
        if (r >= 0)
                r = sd_bus_message_close_container(d->reply);
        if (r < 0)
                d->error = r;
}

/* Best effort: a guest being torn down simply has no addresses to show. */
static int guest_address_cache(Machine *m, struct nl_cache **ret)
{
        _cleanup_nl_sock_ struct nl_sock *sk = nl_socket_alloc();
        int saved = -1, r;
        if (!sk)
                return -ENOMEM;
        r = netns_enter(m->leader_pidfd, &saved);
        if (r < 0)
                return r;
        r = nl_connect(sk, NETLINK_ROUTE);
        netns_leave(saved);
        if (r < 0)
                return nl_errno(r);
        r = rtnl_addr_alloc_cache(sk, ret);
        return r < 0 ? nl_errno(r) : 0;
}

int network_machine_append_addresses(Machine *m, sd_bus_message *reply)
{
        _cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
        int r = sd_bus_message_open_container(reply, 'a', "(iay)");
        if (r < 0)
                return r;
        bool private_net = m->settings->network_mode != NETWORK_HOST;
        if (private_net && m->leader_pidfd >= 0 && guest_address_cache(m, &cache) >= 0) {
                AddressDump d = {.reply = reply};
                nl_cache_foreach(cache, append_address, &d);
                if (d.error < 0)
                        return d.error;
        }
        return sd_bus_message_close_container(reply);
}


static int read_ports(sd_bus_message *message, Settings *s, sd_bus_error *error)
{
        const char *proto;
        uint16_t host_port, guest_port;
        int r = sd_bus_message_enter_container(message, 'v', "a(sqq)");
        if (r >= 0)
                r = sd_bus_message_enter_container(message, 'a', "(sqq)");
        if (r < 0)
                return r;
        free(s->ports);
        s->ports = NULL;
        s->n_ports = 0;
        while ((r = sd_bus_message_read(message, "(sqq)", &proto, &host_port, &guest_port)) > 0) {
                if (!streq(proto, "tcp") && !streq(proto, "udp"))
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                                 "Invalid port protocol '%s', expected tcp or udp.", proto);
                if (host_port == 0 || guest_port == 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                                 "Invalid port forward %s:%u:%u: ports are 1…65535.", proto,
                                                 host_port, guest_port);
                PortForward *ports = reallocarray(s->ports, s->n_ports + 1, sizeof(PortForward));
                if (!ports)
                        return -ENOMEM;
                s->ports = ports;
                s->ports[s->n_ports++] = (PortForward){
                        .protocol = streq(proto, "udp") ? IPPROTO_UDP : IPPROTO_TCP,
                        .host_port = host_port,
                        .guest_port = guest_port,
                };
        }
        if (r < 0)
                return r;
        if ((r = sd_bus_message_exit_container(message)) < 0)
                return r;
        return sd_bus_message_exit_container(message);
}

static int read_string(sd_bus_message *message, char **ret)
{
        const char *str;
        int r = sd_bus_message_read(message, "v", "s", &str);
        if (r < 0)
                return r;
        char *copy = strdup(str);
        if (!copy)
                return -ENOMEM;
        free(*ret);
        *ret = copy;
        return 0;
}

int network_read_start_option(sd_bus_message *message, const char *key, Settings *s, sd_bus_error *error)
{
        _cleanup_free_ char *str = NULL;
        int r;

        if (streq(key, "Network") || streq(key, "ResolvConf")) {
                if ((r = read_string(message, &str)) < 0)
                        return r;
                bool network = streq(key, "Network");
                int mode = network ? parse_network_mode(str) : parse_resolv_conf(str);
                if (mode < 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "Invalid %s '%s', expected %s.",
                                                 network ? "network mode" : "ResolvConf", str,
                                                 network ? "none, veth, bridge or host"
                                                         : "copy-host, bind-host or off");
                if (network)
                        s->network_mode = mode;
                else
                        s->resolv_conf = mode;
                return 1;
        }
        if (streq(key, "Bridge")) {
                if ((r = read_string(message, &s->bridge)) < 0)
                        return r;
                if (!*s->bridge || strlen(s->bridge) >= IFNAMSIZ)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "Invalid bridge name '%s'.",
                                                 s->bridge);
                return 1;
        }
        if (streq(key, "Address")) {
                _cleanup_strv_free_ char **l = NULL;
                if ((r = sd_bus_message_enter_container(message, 'v', "as")) < 0 ||
                    (r = sd_bus_message_read_strv(message, &l)) < 0 ||
                    (r = sd_bus_message_exit_container(message)) < 0)
                        return r;
                STRV_FOREACH(a, l)
                if (!network_address_is_valid(*a))
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                                 "Invalid address '%s', expected ADDRESS/PREFIX.", *a);
                strv_free(s->addresses);
                s->addresses = TAKE_PTR(l);
                return 1;
        }
        if (streq(key, "Port")) {
                r = read_ports(message, s, error);
                return r < 0 ? r : 1;
        }
        return 0;
}
