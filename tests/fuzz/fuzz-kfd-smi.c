/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Fuzzes the SMI stream parser the kfd-smi collector uses: arbitrary bytes, fed in reads whose
 * sizes come from the input (byte 0: 1..64, or everything at once), as a hostile or broken
 * kernel stream would arrive. Invariants: the parser never keeps more than one line, and every
 * counted line ended with a '\n'.
 */

#include <stdlib.h>
#include <string.h>

#include "spmtier/kfd-model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void count(void *userdata, const struct kfd_event *ev) {
        char line[KFD_EV_MSG_SIZE];
        /* Whatever parsed must format again without overflowing. */
        if (kfd_smi_format(ev, line, sizeof(line)) >= (int) sizeof(line))
                abort();
        (*(unsigned *) userdata)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct kfd_smi_parser p;
        unsigned events = 0, returned = 0;
        size_t newlines = 0;

        if (size == 0)
                return 0;
        size_t chunk = data[0] % 65 ? data[0] % 65 : size;
        data++;
        size--;
        for (size_t i = 0; i < size; i++)
                newlines += data[i] == '\n';
        kfd_smi_parser_init(&p);
        for (size_t off = 0; off < size; off += chunk)
                returned += kfd_smi_parser_feed(&p, (const char *) data + off,
                                                chunk < size - off ? chunk : size - off, count, &events);
        if (p.len >= sizeof(p.line) || p.events != events || returned != events ||
            p.events + p.unknown + p.garbage + p.overlong_lines > newlines)
                abort();
        struct kfd_event ev;
        (void) kfd_smi_parse_line((const char *) data, size, &ev);
        return 0;
}
