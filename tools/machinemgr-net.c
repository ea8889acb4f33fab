/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Machine's Addresses property (a(iay): family, address bytes) as text for list, status and show. */

#include <arpa/inet.h>
#include <sys/socket.h>

#include "machinemgr.h"

int format_addresses(sd_bus_message *m, FILE *text, FILE *json)
{
        bool first = true;
        int32_t family;
        int r = sd_bus_message_enter_container(m, 'a', "(iay)");

        fputc('[', json);
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "iay")) > 0) {
                const void *p;
                size_t n;
                char buf[INET6_ADDRSTRLEN];

                r = sd_bus_message_read(m, "i", &family);
                if (r >= 0)
                        r = sd_bus_message_read_array(m, 'y', &p, &n);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        break;
                if (n != (family == AF_INET ? 4u : family == AF_INET6 ? 16u : 0u) ||
                    !inet_ntop(family, p, buf, sizeof buf))
                        continue; /* a family this CLI does not know: nothing sensible to print */
                fprintf(text, "%s%s", first ? "" : " ", buf);
                if (!first)
                        fputc(',', json);
                json_print_string(json, buf);
                first = false;
        }
        fputc(']', json);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r;
}

int machine_get_addresses(sd_bus *bus, const char *path, char **ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *text_buf = NULL, *json_buf = NULL;
        size_t text_len, json_len;

        int r = sd_bus_get_property(bus, MM_SERVICE, path, MM_MACHINE, "Addresses", NULL, &reply, "a(iay)");
        if (r < 0)
                return r;
        FILE *text = open_memstream(&text_buf, &text_len);
        FILE *json = open_memstream(&json_buf, &json_len);
        if (!text || !json) {
                if (text)
                        fclose(text);
                if (json)
                        fclose(json);
                return -ENOMEM;
        }
        r = format_addresses(reply, text, json);
        fclose(text);
        fclose(json);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(text_buf);
        return 0;
}
