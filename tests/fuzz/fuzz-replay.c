/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Replays files (or every file of directories) through a fuzz target's
 * LLVMFuzzerTestOneInput, so `make check` runs the committed corpus with any compiler, no
 * libFuzzer needed. Exits 1 if no input was found: an empty corpus is a broken test.
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spmtier/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ uint8_t *buf = NULL;
        long len;

        if (!f || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fprintf(stderr, "%s: cannot read\n", path);
                return -1;
        }
        buf = malloc((size_t) len + 1);   /* +1: never malloc(0) */
        if (!buf || fread(buf, 1, (size_t) len, f) != (size_t) len) {
                fprintf(stderr, "%s: cannot read\n", path);
                return -1;
        }
        printf("replay %s (%ld bytes)\n", path, len);
        fflush(stdout);
        LLVMFuzzerTestOneInput(buf, (size_t) len);
        return 0;
}

int main(int argc, char **argv) {
        unsigned n = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %m\n", argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (replay_file(argv[i]) < 0)
                                return 1;
                        n++;
                        continue;
                }
                struct dirent **list;
                int k = scandir(argv[i], &list, NULL, alphasort);
                if (k < 0) {
                        fprintf(stderr, "%s: %m\n", argv[i]);
                        return 1;
                }
                for (int j = 0; j < k; j++) {
                        char path[4096];
                        int bad = 0;
                        if (list[j]->d_name[0] != '.') {
                                snprintf(path, sizeof(path), "%s/%s", argv[i], list[j]->d_name);
                                bad = replay_file(path) < 0;
                                n++;
                        }
                        free(list[j]);
                        if (bad) {
                                for (j++; j < k; j++)
                                        free(list[j]);
                                free(list);
                                return 1;
                        }
                }
                free(list);
        }
        if (n == 0) {
                fprintf(stderr, "no corpus input found\n");
                return 1;
        }
        printf("%u inputs replayed\n", n);
        return 0;
}
