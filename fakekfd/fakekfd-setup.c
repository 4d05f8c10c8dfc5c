/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fakekfd-setup: creates the fake node and its sysfs tree under $FAKEKFD_ROOT (docs/fakekfd.md),
 * so a daemon can be started before the first GPU process. */
#include <stdio.h>
#include <string.h>

#include "fakekfd.h"

int main(int argc, char **argv) {
        if (argc > 1) {
                fprintf(stderr, "usage: FAKEKFD_ROOT=DIR %s\n", argv[0]);
                return 2;
        }
        int r = fakekfd_setup();
        if (r < 0) {
                fprintf(stderr, "fakekfd-setup: %s: %s\n", fakekfd_root() ? fakekfd_root() : "$FAKEKFD_ROOT unset",
                        strerror(-r));
                return 1;
        }
        printf("%s\n", fakekfd_root());
        return 0;
}
