/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "names.h"

#include "util.h"

/* Decodes one UTF-8 sequence at s. Returns its length and the code point in *ret, or 0 if the sequence
 * is invalid: overlong, a surrogate, beyond U+10FFFF or truncated (the NUL terminator is never a
 * continuation byte, so truncation is caught without knowing the length). */
static size_t utf8_decode(const unsigned char *s, uint32_t *ret)
{
        static const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
        size_t len;
        uint32_t c;

        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        }
        if ((s[0] & 0xe0) == 0xc0) {
                len = 2;
                c = s[0] & 0x1f;
        } else if ((s[0] & 0xf0) == 0xe0) {
                len = 3;
                c = s[0] & 0x0f;
        } else if ((s[0] & 0xf8) == 0xf0) {
                len = 4;
                c = s[0] & 0x07;
        } else
                return 0;

        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }

        if (c < min_for_len[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                return 0;
        *ret = c;
        return len;
}

bool utf8_is_valid(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        while (*p) {
                uint32_t c;
                size_t n = utf8_decode(p, &c);
                if (n == 0)
                        return false;
                p += n;
        }
        return true;
}

/* C0, DEL and C1 controls, plus the Unicode spaces and invisible separators: a name that looks like
 * another name, or like two words, on a terminal is an accident waiting to happen. */
static bool code_point_is_forbidden(uint32_t c)
{
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
                return true;
        if (c == ' ' || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200f) || c == 0x2028 ||
            c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000 || c == 0xfeff)
                return true;
        /* '/' would make the name a path. ':' is rejected too although systemd allows it in unit names:
         * it is the separator in Bind=SRC:DST, Port=, PrivateUsers=UID:RANGE and in "NAME:PATH" style
         * CLI arguments, and it is not valid in a hostname (Hostname= defaults to NAME). */
        return c == '/' || c == ':';
}

bool machine_name_is_valid(const char *name)
{
        if (!name || !*name)
                return false;
        if (strlen(name) > MACHINE_NAME_MAX)
                return false;
        /* A leading '.' covers "." and ".." too; hidden files in the image directory are not images. */
        if (name[0] == '.' || name[0] == '-')
                return false;

        const unsigned char *p = (const unsigned char *)name;
        while (*p) {
                uint32_t c;
                size_t n = utf8_decode(p, &c);
                if (n == 0 || code_point_is_forbidden(c))
                        return false;
                p += n;
        }
        return true;
}

static bool unit_char_is_plain(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
               c == '_' || c == '.';
}

int machine_scope_unit_name(const char *name, char **ret)
{
        if (!machine_name_is_valid(name))
                return -EINVAL;

        /* '-' is the hierarchy separator in unit names, so systemd escapes it like any byte outside
         * [a-zA-Z0-9:_.]; each byte becomes at most 4 characters. */
        const char *prefix = "machine-", *suffix = ".scope";
        size_t len = strlen(prefix) + strlen(name) * 4 + strlen(suffix) + 1;
        char *s = malloc(len), *p;
        if (!s)
                return -ENOMEM;

        p = stpcpy(s, prefix);
        for (const char *c = name; *c; c++) {
                if (unit_char_is_plain(*c))
                        *p++ = *c;
                else
                        p += sprintf(p, "\\x%02x", (unsigned char)*c);
        }
        strcpy(p, suffix);
        *ret = s;
        return 0;
}
