/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cgroup code's pure parsing helpers and the state-file format; no root, no cgroupfs. */

#include <inttypes.h>

#include "cgroup-internal.h"

#define ASSERT(expr)                                                                                        \
        do {                                                                                                \
                if (!(expr)) {                                                                              \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr);        \
                        exit(1);                                                                            \
                }                                                                                           \
        } while (0)

static void test_lists(void)
{
        ASSERT(cgroup_controller_list_contains("cpu,cpuacct", "cpu"));
        ASSERT(cgroup_controller_list_contains("cpu,cpuacct", "cpuacct"));
        ASSERT(!cgroup_controller_list_contains("cpuacct", "cpu"));
        ASSERT(!cgroup_controller_list_contains("cpuset", "cpu"));
        ASSERT(cgroup_controller_list_contains("name=systemd", "name=systemd"));
        ASSERT(!cgroup_controller_list_contains("", "cpu"));
        ASSERT(cgroup_list_contains("cpuset cpu io memory pids", " ", "pids"));
        ASSERT(!cgroup_list_contains("cpuset io memory", " ", "cpu"));
}

static void check_line(const char *line, const char *controllers, const char *path)
{
        _cleanup_free_ char *c = NULL, *p = NULL;
        ASSERT(cgroup_parse_proc_line(line, &c, &p) == 0);
        ASSERT(streq_ptr(c, controllers));
        ASSERT(streq(p, path));
}

static void test_proc_lines(void)
{
        check_line("0::/", NULL, "/");
        check_line("0::/system.slice/foo.service\n", NULL, "/system.slice/foo.service");
        check_line("4:memory:/process_api/609f", "memory", "/process_api/609f");
        check_line("1:cpu,cpuacct:/a:b", "cpu,cpuacct", "/a:b");
        check_line("9:name=systemd:/", "name=systemd", "/");

        char *c = NULL, *p = NULL;
        ASSERT(cgroup_parse_proc_line("", &c, &p) < 0);
        ASSERT(cgroup_parse_proc_line("garbage", &c, &p) < 0);
        ASSERT(cgroup_parse_proc_line("3::/", &c, &p) < 0);
        ASSERT(cgroup_parse_proc_line("3:memory:relative", &c, &p) < 0);
        ASSERT(!c && !p);
}

static void test_keyed(void)
{
        const char *stat = "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n";
        uint64_t v;
        ASSERT(cgroup_parse_keyed(stat, "usage_usec", &v) == 0 && v == 123456);
        ASSERT(cgroup_parse_keyed(stat, "system_usec", &v) == 0 && v == 23456);
        ASSERT(cgroup_parse_keyed(stat, "usage", &v) == -ENOENT);
        ASSERT(cgroup_parse_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3", "oom_kill", &v) == 0 &&
               v == 3);
        ASSERT(cgroup_parse_keyed("populated 1\nfrozen 0\n", "populated", &v) == 0 && v == 1);
        ASSERT(cgroup_parse_keyed("", "populated", &v) == -ENOENT);
}

static void test_limits(void)
{
        uint64_t v;
        ASSERT(cgroup_parse_limit("max", &v) == 0 && v == UINT64_MAX);
        ASSERT(cgroup_parse_limit("-1", &v) == 0 && v == UINT64_MAX);
        ASSERT(cgroup_parse_limit("9223372036854771712", &v) == 0 &&
               v == UINT64_MAX); /* v1 "unlimited", 4K */
        ASSERT(cgroup_parse_limit("9223372036854710272", &v) == 0 && v == UINT64_MAX); /* ... 64K pages */
        ASSERT(cgroup_parse_limit("67108864", &v) == 0 && v == 67108864);
        ASSERT(cgroup_parse_limit("0", &v) == 0 && v == 0);
        ASSERT(cgroup_parse_limit("12abc", &v) < 0);
        ASSERT(cgroup_parse_limit("", &v) < 0);

        ASSERT(cgroup_cpu_quota_to_period_quota(200000, 100000) == 20000);   /* 20% */
        ASSERT(cgroup_cpu_quota_to_period_quota(1500000, 100000) == 150000); /* 150% */
        ASSERT(cgroup_cpu_quota_to_period_quota(1, 100000) == 1000);         /* kernel minimum */
        ASSERT(cgroup_cpu_quota_to_period_quota(UINT64_MAX / 2, 100000) == UINT64_MAX);
}

static void test_state_round_trip(void)
{
        _cleanup_(cgroup_freep) CGroup *cg = cgroup_new(CGROUP_BACKEND_DIRECT, "foo");
        ASSERT(cg);
        ASSERT(cgroup_add_hierarchy(cg, "name=systemd", "/sys/fs/cgroup/systemd/machine-foo.scope",
                                    "/machine-foo.scope") == 0);
        ASSERT(cgroup_add_hierarchy(cg, "memory", "/sys/fs/cgroup/memory/a b/machine-foo.scope",
                                    "/a b/machine-foo.scope") == 0);
        ASSERT(cgroup_add_hierarchy(cg, NULL, "/sys/fs/cgroup/unified/machine-foo.scope",
                                    "/machine-foo.scope") == 0);

        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        ASSERT(f);
        ASSERT(cgroup_serialize(cg, f) == 0);
        ASSERT(fclose(f) == 0);
        ASSERT(strstr(buf, "CGROUP_BACKEND=direct\n"));
        ASSERT(
            strstr(buf, "CGROUP_HIERARCHY=cgroup2\nCGROUP_DIR=/sys/fs/cgroup/unified/machine-foo.scope\n"));

        _cleanup_(cgroup_freep) CGroup *copy = NULL;
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '=');
                ASSERT(eq);
                *eq = 0;
                ASSERT(cgroup_deserialize_item(&copy, "foo", line, eq + 1) == 1);
        }
        ASSERT(copy && copy->n_hierarchies == 3);
        for (size_t i = 0; i < 3; i++) {
                ASSERT(streq_ptr(copy->hierarchies[i].controllers, cg->hierarchies[i].controllers));
                ASSERT(streq(copy->hierarchies[i].dir, cg->hierarchies[i].dir));
                ASSERT(streq(copy->hierarchies[i].path, cg->hierarchies[i].path));
        }
        ASSERT(streq(cgroup_unified_path(copy), "/sys/fs/cgroup/unified/machine-foo.scope"));
        ASSERT(streq(cgroup_path(copy), "/machine-foo.scope"));

        ASSERT(cgroup_deserialize_item(&copy, "foo", "NAME", "foo") == 0);
        ASSERT(cgroup_deserialize_item(&copy, "foo", "CGROUP_FUTURE_KEY", "x") == 0);
        ASSERT(cgroup_deserialize_item(&copy, "foo", "CGROUP_BACKEND", "bogus") == -EINVAL);
        ASSERT(cgroup_deserialize_item(&copy, "foo", "CGROUP_DIR", "relative") == -EINVAL);

        CGroup *none = NULL;
        ASSERT(cgroup_deserialize_item(&none, "foo", "LEADER", "1") == 0 && !none);
        ASSERT(cgroup_deserialize_item(&none, "foo", "CGROUP_DIR", "/x") == -EINVAL);
        cgroup_free(none);
}

int main(void)
{
        test_lists();
        test_proc_lines();
        test_keyed();
        test_limits();
        test_state_round_trip();
        return 0;
}
