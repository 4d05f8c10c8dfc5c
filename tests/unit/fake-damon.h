/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A fake DAMON sysfs admin tree for unit tests (see fake-tree.h). */

#include "fake-tree.h"

#define CTX "kdamonds/0/contexts/0"

/* Fills root (a fake tree) as the 6.12 kernel shows DAMON sysfs after nr_kdamonds=1,
 * nr_contexts=1, nr_targets=2, nr_schemes=2: the fake cannot create directories on writes,
 * so they exist up front. Returns root. */
static inline char *fake_damon_in(char *root, bool filters) {
        fake_file(root, "0\n", "kdamonds/nr_kdamonds");
        fake_file(root, "off\n", "kdamonds/0/state");
        fake_file(root, "4242\n", "kdamonds/0/pid");
        fake_file(root, "0\n", "kdamonds/0/contexts/nr_contexts");
        fake_file(root, "vaddr\nfvaddr\npaddr\n", CTX "/avail_operations");
        fake_file(root, "vaddr\n", CTX "/operations");
        fake_file(root, "5000\n", CTX "/monitoring_attrs/intervals/sample_us");
        fake_file(root, "100000\n", CTX "/monitoring_attrs/intervals/aggr_us");
        fake_file(root, "60000000\n", CTX "/monitoring_attrs/intervals/update_us");
        fake_file(root, "10\n", CTX "/monitoring_attrs/nr_regions/min");
        fake_file(root, "1000\n", CTX "/monitoring_attrs/nr_regions/max");
        fake_file(root, "0\n", CTX "/targets/nr_targets");
        fake_file(root, "0\n", CTX "/schemes/nr_schemes");
        for (int i = 0; i < 2; i++) {
                fake_file(root, "0\n", CTX "/targets/%d/pid_target", i);
                fake_file(root, "stat\n", CTX "/schemes/%d/action", i);
                for (int k = 0; k < 3; k++) {
                        static const char *const names[] = { "sz", "nr_accesses", "age" };

                        fake_file(root, "0\n", CTX "/schemes/%d/access_pattern/%s/min", i,
                                  names[k]);
                        fake_file(root, "0\n", CTX "/schemes/%d/access_pattern/%s/max", i,
                                  names[k]);
                }
                fake_file(root, "0\n", CTX "/schemes/%d/tried_regions/total_bytes", i);
                if (filters) {
                        fake_file(root, "0\n", CTX "/schemes/%d/filters/nr_filters", i);
                        fake_file(root, "anon\n", CTX "/schemes/%d/filters/0/type", i);
                        fake_file(root, "0\n", CTX "/schemes/%d/filters/0/damon_target_idx", i);
                        fake_file(root, "N\n", CTX "/schemes/%d/filters/0/matching", i);
                }
        }
        return root;
}

static inline void add_region(const char *root, int scheme, int idx, uint64_t start, uint64_t end,
                       unsigned nr, unsigned age) {
        char b[64];

        snprintf(b, sizeof(b), "%llu\n", (unsigned long long) start);
        fake_file(root, b, CTX "/schemes/%d/tried_regions/%d/start", scheme, idx);
        snprintf(b, sizeof(b), "%llu\n", (unsigned long long) end);
        fake_file(root, b, CTX "/schemes/%d/tried_regions/%d/end", scheme, idx);
        snprintf(b, sizeof(b), "%u\n", nr);
        fake_file(root, b, CTX "/schemes/%d/tried_regions/%d/nr_accesses", scheme, idx);
        snprintf(b, sizeof(b), "%u\n", age);
        fake_file(root, b, CTX "/schemes/%d/tried_regions/%d/age", scheme, idx);
}


/* A fresh fake tree holding only the DAMON admin files. */
static inline char *fake_damon(bool filters) {
        return fake_damon_in(fake_tree_new(), filters);
}
