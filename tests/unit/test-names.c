/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every rule of SPEC §9 for machine names, with accepted and rejected examples. */
#include "names.h"
#include "util.h"

static unsigned passed, failed;

#define CHECK(expr)                                                                                         \
        do {                                                                                                \
                if (expr)                                                                                   \
                        passed++;                                                                           \
                else {                                                                                      \
                        failed++;                                                                           \
                        fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #expr);                    \
                }                                                                                           \
        } while (0)

static void check_name(const char *name, bool expected)
{
        bool got = machine_name_is_valid(name);
        if (got == expected) {
                passed++;
                return;
        }
        failed++;
        fprintf(stderr, "FAIL: machine_name_is_valid(\"");
        for (const unsigned char *c = (const unsigned char *)name; c && *c; c++)
                fprintf(stderr, *c >= 0x20 && *c < 0x7f ? "%c" : "\\x%02x", *c);
        fprintf(stderr, "\") = %s, expected %s\n", got ? "true" : "false", expected ? "true" : "false");
}

static void test_accepted(void)
{
        static const char *const good[] = {
            "debian",           "a",        "A",       "0",      "web-1",
            "my_box",           "a.b",      "a..b",    "foo.",   "foo-",
            "trailing.dot.",    "Fedora40", "x-y_z.w", "ümlaut", "日本語",
            "emoji😀",           "\xc2\xa9", /* © two-byte */
            "\xe2\x82\xac",                 /* € three-byte */
            "\xf0\x9f\x98\x80",             /* 😀 four-byte */
            "\xf4\x8f\xbf\xbf",             /* U+10FFFF */
            "\xef\xbf\xbd",                 /* U+FFFD */
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                check_name(good[i], true);
}

static void test_rejected(void)
{
        static const char *const bad[] = {
            "",
            ".",
            "..",
            ".hidden",
            "-flag",
            "-",
            "a/b",
            "/",
            "../x",
            "a b",
            " a",
            "a ",
            "a\tb",
            "a\nb",
            "a\rb",
            "\x01",
            "a\x1f",
            "a\x7f",             /* DEL */
            "a:b",               /* see names.c */
            "a\xc2\x85",         /* U+0085 NEL, a C1 control */
            "a\xc2\xa0\x62",     /* U+00A0 no-break space */
            "a\xe3\x80\x80\x62", /* U+3000 ideographic space */
            "a\xe2\x80\x8b\x62", /* U+200B zero-width space */
            "\xef\xbb\xbf\x61",  /* U+FEFF BOM */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                check_name(bad[i], false);
        check_name(NULL, false);
}

static void test_utf8(void)
{
        static const char *const bad[] = {
            "\x80",                 /* lone continuation byte */
            "a\xbf",                /* lone continuation byte after ASCII */
            "\xc0\xaf",             /* overlong '/' */
            "\xc1\xbf",             /* overlong 2-byte */
            "\xe0\x80\xaf",         /* overlong 3-byte '/' */
            "\xe0\x9f\xbf",         /* overlong 3-byte, just below U+0800 */
            "\xf0\x80\x80\xaf",     /* overlong 4-byte '/' */
            "\xf0\x8f\xbf\xbf",     /* overlong 4-byte, just below U+10000 */
            "\xed\xa0\x80",         /* U+D800, a surrogate */
            "\xed\xbf\xbf",         /* U+DFFF, a surrogate */
            "\xf4\x90\x80\x80",     /* U+110000, above the Unicode range */
            "\xf5\x80\x80\x80",     /* lead byte never valid */
            "\xf8\x88\x80\x80\x80", /* 5-byte form */
            "\xfe",
            "\xff",         /* never valid */
            "a\xc3",        /* truncated 2-byte at the end */
            "\xe2\x82",     /* truncated 3-byte */
            "\xf0\x9f\x98", /* truncated 4-byte */
            "\xe2\x82\x61", /* truncated 3-byte followed by ASCII */
            "\xc3\xc3\xa9", /* lead byte where a continuation should be */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                check_name(bad[i], false);
                CHECK(!utf8_is_valid(bad[i]));
        }
        CHECK(utf8_is_valid(""));
        CHECK(utf8_is_valid("plain"));
        CHECK(utf8_is_valid("\xed\x9f\xbf"));     /* U+D7FF, just below the surrogates */
        CHECK(utf8_is_valid("\xee\x80\x80"));     /* U+E000, just above */
        CHECK(utf8_is_valid("\xe0\xa0\x80"));     /* U+0800, smallest 3-byte */
        CHECK(utf8_is_valid("\xf0\x90\x80\x80")); /* U+10000, smallest 4-byte */
}

static void test_length(void)
{
        char name[MACHINE_NAME_MAX + 2];

        memset(name, 'a', sizeof name);
        name[MACHINE_NAME_MAX] = 0;
        check_name(name, true); /* 64 bytes */
        name[MACHINE_NAME_MAX] = 'a';
        name[MACHINE_NAME_MAX + 1] = 0;
        check_name(name, false); /* 65 bytes */

        /* The limit is in bytes, not characters: 21 three-byte characters + 1 = 64 bytes, 22 = 66. */
        char utf8[80] = "";
        for (int i = 0; i < 21; i++)
                strcat(utf8, "\xe2\x82\xac");
        strcat(utf8, "x");
        check_name(utf8, true);
        strcat(utf8, "\xe2\x82\xac");
        check_name(utf8, false);
}

static void test_scope_unit_name(void)
{
        char *u = NULL;

        CHECK(machine_scope_unit_name("debian", &u) == 0 && streq(u, "machine-debian.scope"));
        free(u);
        CHECK(machine_scope_unit_name("web-1", &u) == 0 && streq(u, "machine-web\\x2d1.scope"));
        free(u);
        CHECK(machine_scope_unit_name("a.b_c", &u) == 0 && streq(u, "machine-a.b_c.scope"));
        free(u);
        CHECK(machine_scope_unit_name("\xc3\xbc", &u) == 0 && streq(u, "machine-\\xc3\\xbc.scope"));
        free(u);
        u = NULL;
        CHECK(machine_scope_unit_name("../x", &u) == -EINVAL && !u);
}

int main(void)
{
        test_accepted();
        test_rejected();
        test_utf8();
        test_length();
        test_scope_unit_name();

        printf("%u passed, %u failed\n", passed, failed);
        return failed > 0;
}
