/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Fuzzes spmtierd's config parser (daemon/config.c with the real key table): any bytes must
 * parse or fail with an error naming a line inside the input, never crash or leak; whatever
 * parses must print and re-parse to the same text (the --check-config round trip).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print(const struct spmtierd_settings *s) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                abort();
        spmtierd_settings_print(s, f);
        fclose(f);
        return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct spmtierd_settings s = {}, again = {};
        struct config_error err = {};
        unsigned lines = 1;

        if (size > 65536)
                return 0;
        for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';
        if (config_defaults(spmtierd_config_table, &s, &err) < 0)
                abort();
        int r = config_parse_buffer(spmtierd_config_table, &s, "fuzz.conf", (const char *) data,
                                    size, &err);
        if (r < 0) {
                /* An error names this file and a line that exists. */
                if (strcmp(err.file, "fuzz.conf") != 0 || err.line == 0 || err.line > lines ||
                    err.message[0] == '\0')
                        abort();
        } else {
                char *a = print(&s);
                if (config_defaults(spmtierd_config_table, &again, &err) < 0 ||
                    config_parse_buffer(spmtierd_config_table, &again, "printed.conf", a,
                                        strlen(a), &err) < 0)
                        abort();
                char *b = print(&again);
                if (strcmp(a, b) != 0)
                        abort();
                free(a);
                free(b);
        }
        spmtierd_settings_done(&s);
        spmtierd_settings_done(&again);
        return 0;
}
