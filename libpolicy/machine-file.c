/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Machine profiles as text, so that every number can be overridden: `key = value` lines, '#'
 * comments (profile files tag each number [V]/[S]/[D]/[A] there), from a profile file or from
 * `--set key=value`. Keys:
 *
 *   base = mi250x-gcd            start from a built-in profile (first line of a file)
 *   name, kind (device-coherent | device-private | numa), xnack (true | false)
 *   granule, capacity.LOC        bytes, with an optional K/M/G (1024) or KB/MB/GB (1000) suffix
 *   migrate_gbps, migrate_call_usec, fault_usec, epoch_usec
 *   bw.ACC.LOC (GB/s), lat.ACC.LOC (ns), dep_fraction.ACC, home.ACC = LOC
 *
 * ACC is cpu, gpuN or gpu* (every GPU); LOC is a location name (ram, gpuN, nodeN), or home
 * (the accessor's own location).
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/machine.h"
#include "spmtier/macro.h"

static const char *const kind_names[_SPM_MEM_KIND_MAX] = {
        [SPM_MEM_DEVICE_COHERENT] = "device-coherent",
        [SPM_MEM_DEVICE_PRIVATE] = "device-private",
        [SPM_MEM_NUMA] = "numa",
};

static int parse_double(const char *v, double *ret) {
        char *end;
        double d;

        errno = 0;
        d = strtod(v, &end);
        if (errno != 0 || end == v || *end != '\0' || !isfinite(d))
                return -EINVAL;
        *ret = d;
        return 0;
}

static int parse_bytes(const char *v, uint64_t *ret) {
        char *end;
        double d;
        uint64_t mul = 1;

        errno = 0;
        d = strtod(v, &end);
        if (errno != 0 || end == v || !(d >= 0))
                return -EINVAL;
        if (*end == 'K' || *end == 'M' || *end == 'G' || *end == 'T') {
                unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 40;
                bool decimal = end[1] == 'B';

                mul = decimal ? (uint64_t) pow(1000, shift / 10) : 1ULL << shift;
                end += decimal ? 2 : 1;
        }
        if (*end != '\0' || d * (double) mul >= 1.8e19)
                return -EINVAL;
        *ret = (uint64_t) llround(d * (double) mul);
        return 0;
}

/* Accessor list for a name: cpu, gpuN, gpu*. Returns a bitmask or 0. */
static uint32_t accessors(const struct spm_machine *m, const char *name) {
        if (strcmp(name, "gpu*") == 0)
                return ((1u << m->n_accessors) - 1) & ~1u;
        int a = spm_accessor_from_name(name, m->n_gpus);
        return a < 0 ? 0 : 1u << a;
}

static int location(const struct spm_machine *m, unsigned a, const char *name) {
        if (strcmp(name, "home") == 0)
                return m->home[a];
        return spm_machine_loc_from_name(m, name);
}

/* Sets loc_name and default topology for n_gpus (non-NUMA: ram + one VRAM per GPU). */
static void resize(struct spm_machine *m, unsigned n_gpus) {
        m->n_gpus = n_gpus;
        m->n_accessors = n_gpus + 1;
        if (m->kind != SPM_MEM_NUMA) {
                m->n_locs = n_gpus + 1;
                snprintf(m->loc_name[SPM_LOC_SYSMEM], sizeof(m->loc_name[0]), "ram");
                m->home[SPM_ACC_CPU] = SPM_LOC_SYSMEM;
                for (unsigned g = 0; g < n_gpus; g++) {
                        snprintf(m->loc_name[SPM_LOC_GPU(g)], sizeof(m->loc_name[0]), "gpu%u", g);
                        m->home[SPM_ACC_GPU(g)] = (uint8_t) SPM_LOC_GPU(g);
                }
        }
}

int spm_machine_set(struct spm_machine *m, const char *key, const char *value,
                    const char **ret_error) {
        char k[64], part1[32] = "", part2[32] = "";
        double d;
        uint64_t b;

#define FAIL(msg) do { *ret_error = (msg); return -EINVAL; } while (0)
        if (strlen(key) >= sizeof(k))
                FAIL("key too long");
        snprintf(k, sizeof(k), "%s", key);
        char *dot = strchr(k, '.');
        if (dot) {
                *dot = '\0';
                char *dot2 = strchr(dot + 1, '.');
                if (dot2)
                        *dot2 = '\0';
                if (strlen(dot + 1) >= sizeof(part1) || (dot2 && strlen(dot2 + 1) >= sizeof(part2)))
                        FAIL("key too long");
                snprintf(part1, sizeof(part1), "%s", dot + 1);
                if (dot2)
                        snprintf(part2, sizeof(part2), "%s", dot2 + 1);
        }

        if (strcmp(k, "base") == 0) {
                if (spm_machine_profile(value, m) < 0)
                        FAIL("unknown base profile");
        } else if (strcmp(k, "name") == 0) {
                if (strlen(value) >= sizeof(m->name) || !*value)
                        FAIL("name must be 1-31 characters");
                snprintf(m->name, sizeof(m->name), "%s", value);
        } else if (strcmp(k, "kind") == 0) {
                unsigned i;
                for (i = 0; i < _SPM_MEM_KIND_MAX; i++)
                        if (strcmp(value, kind_names[i]) == 0)
                                break;
                if (i == _SPM_MEM_KIND_MAX)
                        FAIL("kind is device-coherent, device-private or numa");
                m->kind = (enum spm_memory_kind) i;
        } else if (strcmp(k, "xnack") == 0) {
                if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
                        m->xnack = true;
                else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
                        m->xnack = false;
                else
                        FAIL("xnack is true or false");
        } else if (strcmp(k, "n_gpus") == 0) {
                if (parse_bytes(value, &b) < 0 || b < 1 || b > SPM_MAX_GPUS)
                        FAIL("n_gpus is 1-8");
                resize(m, (unsigned) b);
        } else if (strcmp(k, "granule") == 0) {
                if (parse_bytes(value, &b) < 0 || !IS_POWER_OF_2(b) || b < 4096)
                        FAIL("granule is a power of two >= 4K");
                m->granule = b;
        } else if (strcmp(k, "migrate_gbps") == 0 || strcmp(k, "migrate_call_usec") == 0 ||
                   strcmp(k, "fault_usec") == 0 || strcmp(k, "epoch_usec") == 0) {
                if (parse_double(value, &d) < 0 || d < 0)
                        FAIL("not a non-negative number");
                if (k[0] == 'm' && k[8] == 'g')
                        m->migrate_gbps = d;
                else if (k[0] == 'm')
                        m->migrate_call_usec = d;
                else if (k[0] == 'f')
                        m->fault_usec = d;
                else
                        m->epoch_usec = d;
        } else if (strcmp(k, "capacity") == 0) {
                int l = spm_machine_loc_from_name(m, part1);
                if (l < 0 || part2[0])
                        FAIL("capacity.LOC: unknown location");
                if (parse_bytes(value, &b) < 0)
                        FAIL("not a byte count");
                m->capacity[l] = b;
        } else if (strcmp(k, "bw") == 0 || strcmp(k, "lat") == 0 || strcmp(k, "home") == 0 ||
                   strcmp(k, "dep_fraction") == 0) {
                uint32_t mask = accessors(m, part1);
                bool two = k[0] == 'b' || k[0] == 'l';
                if (!mask)
                        FAIL("unknown accessor (cpu, gpuN, gpu*)");
                if (two != (part2[0] != '\0'))
                        FAIL(two ? "expected KEY.ACC.LOC" : "expected KEY.ACC");
                if (k[0] == 'h') {
                        int l = spm_machine_loc_from_name(m, value);
                        if (l < 0)
                                FAIL("unknown location");
                        for (unsigned a = 0; a < m->n_accessors; a++)
                                if (mask & (1u << a))
                                        m->home[a] = (uint8_t) l;
                        return 0;
                }
                if (parse_double(value, &d) < 0 || d < 0)
                        FAIL("not a non-negative number");
                for (unsigned a = 0; a < m->n_accessors; a++) {
                        if (!(mask & (1u << a)))
                                continue;
                        if (k[0] == 'd') {
                                if (d > 1)
                                        FAIL("dep_fraction is 0..1");
                                m->dep_fraction[a] = d;
                                continue;
                        }
                        int l = location(m, a, part2);
                        if (l < 0)
                                FAIL("unknown location");
                        if (k[0] == 'b')
                                m->bw_gbps[a][l] = d;
                        else
                                m->lat_ns[a][l] = d;
                }
        } else
                FAIL("unknown key");
        return 0;
#undef FAIL
}

int spm_machine_set_assignment(struct spm_machine *m, const char *assignment,
                               const char **ret_error) {
        char buf[256];
        char *eq;

        if (strlen(assignment) >= sizeof(buf)) {
                *ret_error = "too long";
                return -EINVAL;
        }
        snprintf(buf, sizeof(buf), "%s", assignment);
        eq = strchr(buf, '=');
        if (!eq) {
                *ret_error = "expected KEY=VALUE";
                return -EINVAL;
        }
        *eq = '\0';
        /* Trim blanks around key and value. */
        char *key = buf, *value = eq + 1;
        while (*key == ' ' || *key == '\t')
                key++;
        for (char *e = eq; e > key && (e[-1] == ' ' || e[-1] == '\t'); e--)
                e[-1] = '\0';
        while (*value == ' ' || *value == '\t')
                value++;
        for (char *e = value + strlen(value); e > value && (e[-1] == ' ' || e[-1] == '\t'); e--)
                e[-1] = '\0';
        return spm_machine_set(m, key, value, ret_error);
}

int spm_machine_load(const char *path, struct spm_machine *m, char *error, size_t error_size) {
        _cleanup_fclose_ FILE *f = NULL;
        struct spm_machine n = *m;
        char line[512];
        unsigned long lineno = 0;

        f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                snprintf(error, error_size, "%s: %s", path, strerror(-r));
                return r;
        }
        while (fgets(line, sizeof(line), f)) {
                const char *why;

                lineno++;
                if (!strchr(line, '\n') && !feof(f)) {
                        snprintf(error, error_size, "%s:%lu: line too long", path, lineno);
                        return -EINVAL;
                }
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = '\0';
                line[strcspn(line, "\r\n")] = '\0';
                if (line[strspn(line, " \t")] == '\0')
                        continue;
                if (spm_machine_set_assignment(&n, line, &why) < 0) {
                        snprintf(error, error_size, "%s:%lu: %s: %s", path, lineno,
                                 line + strspn(line, " \t"), why);
                        return -EINVAL;
                }
        }
        if (ferror(f)) {
                snprintf(error, error_size, "%s: read error", path);
                return -EIO;
        }
        if (spm_machine_validate(&n) < 0) {
                snprintf(error, error_size, "%s: the profile is inconsistent (a bandwidth or "
                         "capacity is zero, or an index is out of range)", path);
                return -EINVAL;
        }
        *m = n;
        return 0;
}

void spm_machine_dump(FILE *f, const struct spm_machine *m) {
        char acc[SPM_MAX_ACCESSORS][8];

        fprintf(f, "name = %s\nkind = %s\nxnack = %s\nn_gpus = %u\ngranule = %llu\n", m->name,
                (unsigned) m->kind < _SPM_MEM_KIND_MAX ? kind_names[m->kind] : "?",
                m->xnack ? "true" : "false", m->n_gpus, (unsigned long long) m->granule);
        fprintf(f, "migrate_gbps = %g\nmigrate_call_usec = %g\nfault_usec = %g\nepoch_usec = %g\n",
                m->migrate_gbps, m->migrate_call_usec, m->fault_usec, m->epoch_usec);
        for (unsigned l = 0; l < m->n_locs; l++)
                fprintf(f, "capacity.%s = %llu\n", m->loc_name[l],
                        (unsigned long long) m->capacity[l]);
        for (unsigned a = 0; a < m->n_accessors; a++) {
                if (a == SPM_ACC_CPU)
                        snprintf(acc[a], sizeof(acc[a]), "cpu");
                else
                        snprintf(acc[a], sizeof(acc[a]), "gpu%u", a - 1);
                fprintf(f, "home.%s = %s\ndep_fraction.%s = %g\n", acc[a], m->loc_name[m->home[a]],
                        acc[a], m->dep_fraction[a]);
                for (unsigned l = 0; l < m->n_locs; l++)
                        fprintf(f, "bw.%s.%s = %g\nlat.%s.%s = %g\n", acc[a], m->loc_name[l],
                                m->bw_gbps[a][l], acc[a], m->loc_name[l], m->lat_ns[a][l]);
        }
}
