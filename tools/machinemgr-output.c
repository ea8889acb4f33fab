/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Output helpers: a table whose columns are as wide as their widest cell, JSON strings, and human
 * formatting of times and sizes. */

#include <stdarg.h>
#include <time.h>

#include "machinemgr.h"

struct Table {
        size_t n_columns;
        char **cells; /* row-major; the first row is the header */
        size_t n_cells;
};

Table *table_new(size_t n_columns, ...)
{
        Table *t = calloc(1, sizeof(Table));
        va_list ap;

        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->cells = calloc(n_columns, sizeof(char *));
        if (!t->cells) {
                free(t);
                return NULL;
        }
        va_start(ap, n_columns);
        for (size_t i = 0; i < n_columns; i++)
                t->cells[t->n_cells++] = strdup(va_arg(ap, const char *));
        va_end(ap);
        for (size_t i = 0; i < n_columns; i++)
                if (!t->cells[i]) {
                        table_free(t);
                        return NULL;
                }
        return t;
}

void table_free(Table *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
}

int table_add_row(Table *t, ...)
{
        char **cells = reallocarray(t->cells, t->n_cells + t->n_columns, sizeof(char *));
        va_list ap;
        int r = 0;

        if (!cells)
                return -ENOMEM;
        t->cells = cells;
        va_start(ap, t);
        for (size_t i = 0; i < t->n_columns; i++) {
                const char *s = va_arg(ap, const char *);
                char *copy = strdup(s ?: "-");
                if (!copy)
                        r = -ENOMEM;
                t->cells[t->n_cells + i] = copy;
        }
        va_end(ap);
        t->n_cells += t->n_columns; /* even on failure, so that table_free() frees what was copied */
        return r;
}

size_t table_rows(const Table *t)
{
        return t->n_cells / t->n_columns - 1;
}

void table_print(const Table *t, FILE *f)
{
        size_t width[t->n_columns];

        memset(width, 0, sizeof width);
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t l = strlen(t->cells[i]);
                if (l > width[i % t->n_columns])
                        width[i % t->n_columns] = l;
        }

        for (size_t i = arg.no_legend ? t->n_columns : 0; i < t->n_cells; i++) {
                size_t col = i % t->n_columns;
                if (col == t->n_columns - 1)
                        fprintf(f, "%s\n", t->cells[i]); /* no trailing blanks */
                else
                        fprintf(f, "%-*s ", (int)width[col], t->cells[i]);
        }
}

void json_print_string(FILE *f, const char *s)
{
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *)strempty(s); *p; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(f, "\\%c", *p);
                else if (*p == '\n')
                        fputs("\\n", f);
                else if (*p == '\t')
                        fputs("\\t", f);
                else if (*p < 0x20 || *p == 0x7f)
                        fprintf(f, "\\u%04x", *p);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

char *format_timestamp(char *buf, size_t len, uint64_t usec)
{
        time_t sec = (time_t)(usec / 1000000);
        struct tm tm;

        if (usec == 0 || usec == UINT64_MAX || !localtime_r(&sec, &tm) ||
            strftime(buf, len, "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, len, "n/a");
        return buf;
}

char *format_timespan(char *buf, size_t len, uint64_t usec)
{
        uint64_t s = usec / 1000000;

        if (s >= 86400)
                snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h", s / 86400, s % 86400 / 3600);
        else if (s >= 3600)
                snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "min", s / 3600, s % 3600 / 60);
        else if (s >= 60)
                snprintf(buf, len, "%" PRIu64 "min %" PRIu64 "s", s / 60, s % 60);
        else
                snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 "s", s, usec % 1000000 / 1000);
        return buf;
}

char *format_bytes(char *buf, size_t len, uint64_t bytes)
{
        static const char suffix[] = "KMGTPE";
        double v = (double)bytes;
        size_t i = 0;

        if (bytes < 1024) {
                snprintf(buf, len, "%" PRIu64 "B", bytes);
                return buf;
        }
        while (v >= 1024 && i < sizeof suffix - 1) {
                v /= 1024;
                i++;
        }
        snprintf(buf, len, "%.1f%c", v, suffix[i - 1]);
        return buf;
}
