/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Read-only verbs: list, show, status. */

#include <net/if.h>
#include <signal.h>

#include "machinemgr.h"

/* One property of a machine, already formatted both ways. */
typedef struct Property {
        char *name;
        char *text; /* for KEY=VALUE and status */
        char *json;
} Property;

typedef struct PropertyList {
        Property *items;
        size_t n;
} PropertyList;

static void property_list_done(PropertyList *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].name);
                free(l->items[i].text);
                free(l->items[i].json);
        }
        free(l->items);
        *l = (PropertyList){};
}

static const char *property_get(const PropertyList *l, const char *name)
{
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->items[i].name, name))
                        return l->items[i].text;
        return NULL;
}

static uint64_t property_get_u64(const PropertyList *l, const char *name)
{
        const char *v = property_get(l, name);
        uint64_t u;

        if (!v || safe_atou64(v, &u) < 0)
                return UINT64_MAX; /* "infinity" or missing */
        return u;
}

/* Appends one basic value to the text and JSON streams. */
static int format_basic(sd_bus_message *m, char type, const char *name, FILE *text, FILE *json)
{
        union {
                const char *s;
                uint8_t y;
                int b;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
                double d;
        } v;
        int r = sd_bus_message_read_basic(m, type, &v);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;

        switch (type) {
        case 's':
        case 'o':
        case 'g':
                fputs(v.s, text);
                json_print_string(json, v.s);
                return 0;
        case 'b':
                fputs(v.b ? "yes" : "no", text);
                fputs(v.b ? "true" : "false", json);
                return 0;
        case 'y':
                fprintf(text, "%u", v.y);
                fprintf(json, "%u", v.y);
                return 0;
        case 'n':
                fprintf(text, "%d", v.n);
                fprintf(json, "%d", v.n);
                return 0;
        case 'q':
                fprintf(text, "%u", v.q);
                fprintf(json, "%u", v.q);
                return 0;
        case 'i':
        case 'h':
                fprintf(text, "%" PRIi32, v.i);
                fprintf(json, "%" PRIi32, v.i);
                return 0;
        case 'u':
                fprintf(text, "%" PRIu32, v.u);
                fprintf(json, "%" PRIu32, v.u);
                return 0;
        case 'x':
                fprintf(text, "%" PRIi64, v.x);
                fprintf(json, "%" PRIi64, v.x);
                return 0;
        case 't':
                /* Limits use UINT64_MAX for "no limit"; say so, as systemctl show does. */
                if (v.t == UINT64_MAX && name)
                        fputs("infinity", text);
                else
                        fprintf(text, "%" PRIu64, v.t);
                fprintf(json, "%" PRIu64, v.t);
                return 0;
        case 'd':
                fprintf(text, "%g", v.d);
                fprintf(json, "%g", v.d);
                return 0;
        default:
                return -EBADMSG;
        }
}

/* Byte arrays are IDs (Id: 32 hex digits, like sd_id128_to_string) more often than anything else. */
static int format_bytes_hex(sd_bus_message *m, FILE *text, FILE *json)
{
        const void *p;
        size_t n;
        int r = sd_bus_message_read_array(m, 'y', &p, &n);
        if (r < 0)
                return r;
        fputc('"', json);
        for (size_t i = 0; i < n; i++) {
                fprintf(text, "%02x", ((const uint8_t *)p)[i]);
                fprintf(json, "%02x", ((const uint8_t *)p)[i]);
        }
        fputc('"', json);
        return 0;
}

static int format_variant(sd_bus_message *m, const char *name, char **ret_text, char **ret_json)
{
        _cleanup_free_ char *text_buf = NULL, *json_buf = NULL;
        size_t text_len, json_len;
        const char *contents;
        char type;
        int r;

        FILE *text = open_memstream(&text_buf, &text_len);
        FILE *json = open_memstream(&json_buf, &json_len);
        if (!text || !json) {
                if (text)
                        fclose(text);
                if (json)
                        fclose(json);
                return -ENOMEM;
        }

        r = sd_bus_message_peek_type(m, NULL, &contents);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                goto finish;

        type = contents[0];
        if (streq(contents, "ay"))
                r = format_bytes_hex(m, text, json);
        else if (streq(contents, "a(iay)"))
                r = format_addresses(m, text, json);
        else if (type == 'a' && strlen(contents) == 2 && !strchr("{(av", contents[1])) {
                bool first = true;

                r = sd_bus_message_enter_container(m, 'a', contents + 1);
                fputc('[', json);
                while (r >= 0 && !sd_bus_message_at_end(m, false)) {
                        if (!first) {
                                fputc(' ', text);
                                fputc(',', json);
                        }
                        first = false;
                        r = format_basic(m, contents[1], NULL, text, json);
                }
                fputc(']', json);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        } else if (strlen(contents) == 1)
                r = format_basic(m, type, name, text, json);
        else {
                /* Nothing the Machine interface has today; keep going rather than fail the whole show. */
                fprintf(text, "[%s]", contents);
                fputs("null", json);
                r = sd_bus_message_skip(m, contents);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);

finish:
        fclose(text);
        fclose(json);
        if (r < 0)
                return r;
        *ret_text = TAKE_PTR(text_buf);
        *ret_json = TAKE_PTR(json_buf);
        return 0;
}

static int read_properties(sd_bus_message *reply, PropertyList *ret)
{
        PropertyList l = {};
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *name;
                Property *items;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        break;
                items = reallocarray(l.items, l.n + 1, sizeof(Property));
                if (!items) {
                        r = -ENOMEM;
                        break;
                }
                l.items = items;
                l.items[l.n] = (Property){ .name = strdup(name) };
                if (!l.items[l.n].name) {
                        r = -ENOMEM;
                        break;
                }
                l.n++;
                r = format_variant(reply, name, &l.items[l.n - 1].text, &l.items[l.n - 1].json);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0) {
                property_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

/* Fills *ret with the machine's properties; logs and returns the mapped errno on failure. */
static int get_machine_properties(sd_bus *bus, const char *name, PropertyList *ret, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = bus_machine_path(bus, name, &path, error);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, MM_SERVICE, path, "org.freedesktop.DBus.Properties", "GetAll", error,
                               &reply, "s", MM_MACHINE);
        if (r < 0)
                return r;
        r = read_properties(reply, ret);
        if (r < 0)
                return cli_bus_parse_error(r);
        return 0;
}

static bool property_wanted(const char *name)
{
        return !arg.properties || strv_contains(arg.properties, name);
}

static void print_properties_json(const PropertyList *l)
{
        bool first = true;

        fputc('{', stdout);
        for (size_t i = 0; i < l->n; i++) {
                if (!property_wanted(l->items[i].name))
                        continue;
                if (!first)
                        fputc(',', stdout);
                first = false;
                json_print_string(stdout, l->items[i].name);
                printf(":%s", l->items[i].json);
        }
        fputs("}\n", stdout);
}

int verb_show(sd_bus *bus, char **args)
{
        int ret = 0;

        STRV_FOREACH(name, args + 1) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                PropertyList l = {};
                int r = get_machine_properties(bus, *name, &l, &error);
                if (r < 0) {
                        if (r != -EBADMSG)
                                r = cli_bus_error(*name, "failed to get properties", &error, r);
                        if (ret == 0)
                                ret = r;
                        continue;
                }

                if (arg.output == OUTPUT_JSON)
                        print_properties_json(&l);
                else {
                        if (name != args + 1)
                                putchar('\n');
                        for (size_t i = 0; i < l.n; i++)
                                if (property_wanted(l.items[i].name))
                                        printf("%s=%s\n", l.items[i].name, l.items[i].text);
                }
                property_list_done(&l);
        }
        return ret;
}

/* ---- status ---- */

static void print_leader(uint64_t leader)
{
        _cleanup_free_ char *comm = NULL;
        char path[64];

        if (leader == 0 || leader == UINT64_MAX)
                return;
        /* The pid is only meaningful locally; over -H it would name some other process here. */
        snprintf(path, sizeof path, "/proc/%" PRIu64 "/comm", leader);
        if (!arg.host && read_one_line_file(path, &comm) >= 0)
                printf("      Leader: %" PRIu64 " (%s)\n", leader, comm);
        else
                printf("      Leader: %" PRIu64 "\n", leader);
}

static void print_since(const char *label, uint64_t ts)
{
        char a[64], b[64];
        uint64_t now = now_usec(CLOCK_REALTIME);

        if (ts == 0 || ts == UINT64_MAX)
                return;
        if (now >= ts)
                printf("%12s: %s; %s ago\n", label, format_timestamp(a, sizeof a, ts),
                       format_timespan(b, sizeof b, now - ts));
        else
                printf("%12s: %s\n", label, format_timestamp(a, sizeof a, ts));
}

static void print_interfaces(const char *list)
{
        _cleanup_free_ char *copy = NULL;
        char *save = NULL;
        bool first = true;

        if (!list || !*list || !(copy = strdup(list)))
                return;
        printf("       Iface:");
        for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                char ifname[IF_NAMESIZE];
                unsigned idx;

                if (safe_atou(w, &idx) >= 0 && !arg.host && if_indextoname(idx, ifname))
                        printf("%s%s", first ? " " : ", ", ifname);
                else
                        printf("%s%s", first ? " " : ", ", w);
                first = false;
        }
        putchar('\n');
}

static void print_usage_line(const char *label, const char *current, const char *limit_label, const char *limit)
{
        if (!current && !limit)
                return;
        printf("%12s: %s", label, current ?: "n/a");
        if (limit)
                printf(" (%s: %s)", limit_label, limit);
        putchar('\n');
}

static void print_resources(const PropertyList *l)
{
        uint64_t mem = property_get_u64(l, "MemoryCurrent"), mem_max = property_get_u64(l, "MemoryMax");
        uint64_t cpu = property_get_u64(l, "CPUUsageNSec"), quota = property_get_u64(l, "CPUQuotaPerSecUSec");
        uint64_t tasks = property_get_u64(l, "TasksCurrent"), tasks_max = property_get_u64(l, "TasksMax");
        char a[32], b[32];

        print_usage_line("Memory", mem != UINT64_MAX ? format_bytes(a, sizeof a, mem) : NULL, "max",
                         mem_max != UINT64_MAX ? format_bytes(b, sizeof b, mem_max) : "infinity");

        if (quota != UINT64_MAX)
                snprintf(b, sizeof b, "%" PRIu64 "%%", quota / 10000);
        print_usage_line("CPU", cpu != UINT64_MAX ? format_timespan(a, sizeof a, cpu / 1000) : NULL, "quota",
                         quota != UINT64_MAX ? b : NULL);

        if (tasks != UINT64_MAX)
                snprintf(a, sizeof a, "%" PRIu64, tasks);
        if (tasks_max != UINT64_MAX)
                snprintf(b, sizeof b, "%" PRIu64, tasks_max);
        print_usage_line("Tasks", tasks != UINT64_MAX ? a : NULL, "limit",
                         tasks_max != UINT64_MAX ? b : "infinity");
}

static void print_status_running(const char *name, const PropertyList *l)
{
        const char *v;

        printf("%s\n", name);
        printf("       State: %s\n", strempty(property_get(l, "State")));
        if ((v = property_get(l, "Id")) && *v)
                printf("          Id: %s\n", v);
        print_leader(property_get_u64(l, "Leader"));
        print_since("Since", property_get_u64(l, "Timestamp"));
        if ((v = property_get(l, "Unit")) && *v)
                printf("        Unit: %s\n", v);
        if ((v = property_get(l, "RootDirectory")) && *v)
                printf("        Root: %s\n", v);
        print_interfaces(property_get(l, "NetworkInterfaces"));
        if ((v = property_get(l, "Addresses")) && *v)
                printf("     Address: %s\n", v);
        if ((v = property_get(l, "StatusText")) && *v)
                printf("      Status: \"%s\"\n", v);
        print_resources(l);
}

/* "exited with status 1", "killed by signal KILL", "failed: pivot_root: Invalid argument" */
static void format_exit(char *buf, size_t len, const char *result, int status, const char *message)
{
        if (streq(result, "exited"))
                snprintf(buf, len, "exited with status %d", status);
        else if (streq(result, "killed"))
                snprintf(buf, len, "killed by signal SIG%s", sigabbrev_np(status) ?: "?");
        else if (streq(result, "poweroff"))
                snprintf(buf, len, "powered off by the guest");
        else if (streq(result, "failed"))
                snprintf(buf, len, "failed: %s%s%s", message, *message ? ": " : "", strerror(status));
        else
                snprintf(buf, len, "%s%s%s", result, *message ? ": " : "", message);
}

int machine_exit_describe(const char *result, int status, const char *message, char **ret)
{
        char buf[512];

        format_exit(buf, sizeof buf, result, status, message);
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static int status_stopped(sd_bus *bus, const char *name, sd_bus_error *error)
{
        _cleanup_free_ char *result = NULL, *message = NULL;
        uint64_t ts;
        int status, r;
        char buf[512];

        r = bus_machine_exit(bus, name, &result, &status, &ts, &message, error);
        if (r < 0)
                return r;

        format_exit(buf, sizeof buf, result, status, message);
        if (arg.output == OUTPUT_JSON) {
                fputs("{\"Name\":", stdout);
                json_print_string(stdout, name);
                fputs(",\"State\":\"stopped\",\"Result\":", stdout);
                json_print_string(stdout, result);
                printf(",\"Status\":%d,\"Timestamp\":%" PRIu64 ",\"Message\":", status, ts);
                json_print_string(stdout, message);
                fputs("}\n", stdout);
                return 0;
        }
        printf("%s\n       State: stopped\n", name);
        printf("      Result: %s\n", buf);
        print_since("Stopped", ts);
        return 0;
}

static int status_one(sd_bus *bus, const char *name)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        PropertyList l = {};
        int r;

        r = get_machine_properties(bus, name, &l, &error);
        if (r == -EBADMSG)
                return r;
        if (r < 0 && !sd_bus_error_has_names(&error, MM_ERROR_NO_SUCH_MACHINE))
                return cli_bus_error(name, "failed to get status", &error, r);
        if (r >= 0) {
                if (arg.output == OUTPUT_JSON)
                        print_properties_json(&l);
                else
                        print_status_running(name, &l);
                property_list_done(&l);
        } else {
                /* Not running: how did its last run end? */
                sd_bus_error_free(&error);
                r = status_stopped(bus, name, &error);
                if (r < 0)
                        return cli_bus_error(name, "failed to get status", &error, r);
        }

        if (arg.output != OUTPUT_JSON && !arg.host)
                (void)show_journal_lines(name, arg.lines >= 0 ? arg.lines : 10, false, "  ");
        return 0;
}

int verb_status(sd_bus *bus, char **args)
{
        int ret = 0;

        STRV_FOREACH(name, args + 1) {
                if (name != args + 1 && arg.output != OUTPUT_JSON)
                        putchar('\n');
                int r = status_one(bus, *name);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

/* ---- list ---- */

/* Rows are kept flat, four strings each: name, state, leader ("" if none), unit. */
#define LIST_FIELDS 5

static int list_append(char ***rows, const char *name, const char *state, const char *leader, const char *unit,
                       const char *addresses)
{
        if (strv_extend(rows, name) < 0 || strv_extend(rows, state) < 0 || strv_extend(rows, leader) < 0 ||
            strv_extend(rows, unit) < 0 || strv_extend(rows, addresses) < 0)
                return -ENOMEM;
        return 0;
}

static bool list_has(char **rows, const char *name)
{
        for (size_t i = 0; rows && rows[i]; i += LIST_FIELDS)
                if (streq(rows[i], name))
                        return true;
        return false;
}

static int list_machines(sd_bus *bus, char ***rows)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name, *state, *unit, *path;
        uint32_t leader;
        int r;

        r = sd_bus_call_method(bus, MM_SERVICE, MM_PATH, MM_MANAGER, "ListMachines", &error, &reply, "");
        if (r < 0)
                return cli_bus_error(NULL, "failed to list machines", &error, r);

        r = sd_bus_message_enter_container(reply, 'a', "(sssuo)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssuo)", &name, &state, &unit, &leader, &path)) > 0) {
                char pid[16] = "";
                _cleanup_free_ char *addresses = NULL;

                if (leader > 0)
                        snprintf(pid, sizeof pid, "%" PRIu32, leader);
                /* Best effort: a daemon without the property, or a machine just gone, shows none. */
                (void)machine_get_addresses(bus, path, &addresses);
                r = list_append(rows, name, state, pid, unit, strempty(addresses));
        }
        if (r < 0)
                return cli_bus_parse_error(r);
        return 0;
}

static int list_images(sd_bus *bus, char ***rows)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name, *type, *path;
        uint64_t crtime, mtime, usage;
        int ro, r;

        r = sd_bus_call_method(bus, MM_SERVICE, MM_PATH, MM_MANAGER, "ListImages", &error, &reply, "");
        if (r < 0) {
                /* A daemon without image support: --all simply lists what is running. */
                if (sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_METHOD))
                        return 0;
                return cli_bus_error(NULL, "failed to list images", &error, r);
        }

        r = sd_bus_message_enter_container(reply, 'a', "(ssbttto)");
        while (r >= 0 &&
               (r = sd_bus_message_read(reply, "(ssbttto)", &name, &type, &ro, &crtime, &mtime, &usage, &path)) > 0)
                if (!list_has(*rows, name))
                        r = list_append(rows, name, "stopped", "", "", "");
        if (r < 0)
                return cli_bus_parse_error(r);
        return 0;
}

static void list_print_json(char **rows)
{
        fputc('[', stdout);
        for (size_t i = 0; rows && rows[i]; i += LIST_FIELDS) {
                fputs(i > 0 ? ",{\"name\":" : "{\"name\":", stdout);
                json_print_string(stdout, rows[i]);
                fputs(",\"state\":", stdout);
                json_print_string(stdout, rows[i + 1]);
                printf(",\"leader\":%s,\"unit\":", rows[i + 2][0] ? rows[i + 2] : "null");
                if (rows[i + 3][0])
                        json_print_string(stdout, rows[i + 3]);
                else
                        fputs("null", stdout);
                fputs(",\"addresses\":[", stdout);
                _cleanup_free_ char *copy = strdup(rows[i + 4]);
                char *save = NULL;
                bool first = true;
                for (char *w = copy ? strtok_r(copy, " ", &save) : NULL; w; w = strtok_r(NULL, " ", &save)) {
                        if (!first)
                                fputc(',', stdout);
                        json_print_string(stdout, w);
                        first = false;
                }
                fputs("]}", stdout);
        }
        fputs("]\n", stdout);
}

static int list_print_table(char **rows)
{
        _cleanup_table_ Table *t = table_new(5, "NAME", "STATE", "LEADER", "UNIT", "ADDRESSES");
        size_t n;

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; rows && rows[i]; i += LIST_FIELDS)
                if (table_add_row(t, rows[i], rows[i + 1], rows[i + 2][0] ? rows[i + 2] : NULL,
                                  rows[i + 3][0] ? rows[i + 3] : NULL, rows[i + 4][0] ? rows[i + 4] : NULL) < 0)
                        return -ENOMEM;

        n = table_rows(t);
        if (n > 0 || !arg.no_legend)
                table_print(t, stdout);
        if (!arg.no_legend)
                printf("\n%zu machine%s listed.\n", n, n == 1 ? "" : "s");
        return 0;
}

int verb_list(sd_bus *bus, char **args)
{
        _cleanup_strv_free_ char **rows = NULL;
        int r;

        r = list_machines(bus, &rows);
        if (r >= 0 && arg.all)
                r = list_images(bus, &rows);
        if (r < 0)
                return r;

        if (arg.output == OUTPUT_JSON) {
                list_print_json(rows);
                return 0;
        }
        return list_print_table(rows);
}
