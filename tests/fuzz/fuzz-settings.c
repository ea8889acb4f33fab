/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* settings_parse_string() on arbitrary bytes, then everything a caller does with the result. */
#include "log.h"
#include "settings.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        /* Unknown-key warnings on every input would drown libFuzzer's own output. */
        log_set_max_level(LOG_CRIT);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        _cleanup_(settings_freep) Settings *s = NULL;
        _cleanup_free_ char *error = NULL;
        int r = settings_parse_string("fuzz.machine", text, &s, &error);
        if (r < 0) {
                /* Every parse failure other than OOM must explain itself. */
                if (r == -EINVAL && !error)
                        abort();
                return 0;
        }
        if (!s || error)
                abort();

        _cleanup_(settings_freep) Settings *merged = settings_new();
        if (!merged || settings_merge(merged, s) < 0 || settings_apply_defaults(merged, "fuzz") < 0)
                return 0;

        char buf[32];
        (void)format_size(merged->memory_max, buf, sizeof buf);
        (void)network_mode_to_string(merged->network_mode);
        return 0;
}
