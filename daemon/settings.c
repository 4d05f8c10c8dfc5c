/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"
#include "spmtier/machine.h"
#include "spmtier/macro.h"

#define OFF(f) offsetof(struct spmtierd_settings, f)

const char *const spmtierd_policy_names[] = { "spmtier", "none", NULL };
const char *const spmtierd_collector_names[] = { "replay", "damon", "kfd-smi", "kfd-sysfs", NULL };
const char *const spmtierd_mover_names[] = { "sim", "numa", "kfd-svm", NULL };

static bool name_in(const char *const *names, const char *v) {
        for (; *names; names++)
                if (strcmp(*names, v) == 0)
                        return true;
        return false;
}

static int name_error(const struct config_item *it, const char *v, const char *const *names,
                      char *msg, size_t size) {
        size_t k = (size_t) snprintf(msg, size, "%s=%s is not one of:", it->key, v);

        for (; *names && k < size; names++)
                k += (size_t) snprintf(msg + k, size - k, " %s", *names);
        return -EINVAL;
}

static int parse_choice(const struct config_item *it, const char *v, void *data, char *msg,
                        size_t size, const char *const *names) {
        if (!name_in(names, v))
                return name_error(it, v, names, msg, size);
        return config_type_string.parse(it, v, data, msg, size);
}

static int parse_profile(const struct config_item *it, const char *v, void *data, char *msg,
                         size_t size) {
        static const char *const special[] = { "auto", "none", "numa-sysfs", NULL };

        if (name_in(special, v))
                return config_type_string.parse(it, v, data, msg, size);
        return parse_choice(it, v, data, msg, size, spm_machine_profile_names);
}

static int parse_policy(const struct config_item *it, const char *v, void *data, char *msg,
                        size_t size) {
        return parse_choice(it, v, data, msg, size, spmtierd_policy_names);
}

static int parse_mover(const struct config_item *it, const char *v, void *data, char *msg,
                       size_t size) {
        return parse_choice(it, v, data, msg, size, spmtierd_mover_names);
}

static int parse_collectors(const struct config_item *it, const char *v, void *data, char *msg,
                            size_t size) {
        char ***l = data;
        size_t before = 0;
        int r;

        while (*l && (*l)[before])
                before++;
        r = config_type_strv.parse(it, v, data, msg, size);
        if (r < 0)
                return r;
        for (size_t i = before; (*l)[i]; i++) {
                if (!name_in(spmtierd_collector_names, (*l)[i]))
                        return name_error(it, (*l)[i], spmtierd_collector_names, msg, size);
                for (size_t j = 0; j < i; j++)
                        if (strcmp((*l)[i], (*l)[j]) == 0)
                                return snprintf(msg, size, "%s= lists %s twice", it->key,
                                                (*l)[i]), -EINVAL;
        }
        return 0;
}

/* Granules are what KFD accepts: a power of two from 4 KiB to 1 GiB (0 = the machine's). */
static int parse_granule(const struct config_item *it, const char *v, void *data, char *msg,
                         size_t size) {
        uint64_t g;
        int r = config_type_size.parse(it, v, &g, msg, size);

        if (r < 0)
                return r;
        if (g != 0 && (!IS_POWER_OF_2(g) || g < 4096 || g > (1ULL << 30)))
                return snprintf(msg, size, "%s=%s must be 0 or a power of two from 4K to 1G",
                                it->key, v), -EINVAL;
        *(uint64_t *) data = g;
        return 0;
}

/* FastNode=: "auto" (-1) or a NUMA node id. */
static int parse_fast_node(const struct config_item *it, const char *v, void *data, char *msg,
                           size_t size) {
        unsigned id;
        int r;

        if (strcmp(v, "auto") == 0) {
                *(int *) data = -1;
                return 0;
        }
        r = config_type_unsigned.parse(it, v, &id, msg, size);
        if (r < 0 || id >= SPM_TOPO_MAX_NODES)
                return snprintf(msg, size, "%s=%s is neither auto nor a NUMA node id 0..%d",
                                it->key, v, SPM_TOPO_MAX_NODES - 1), -EINVAL;
        *(int *) data = (int) id;
        return 0;
}

static void format_fast_node(const struct config_item *it, const void *data, FILE *f) {
        int id = *(const int *) data;

        if (id < 0)
                fputs("auto", f);
        else
                fprintf(f, "%d", id);
}

/* NodeCapacity=: a list of NODE:SIZE words; a later word for the same node wins. */
static int parse_node_capacity(const struct config_item *it, const char *v, void *data,
                               char *msg, size_t size) {
        uint64_t *cap = data, next[SPM_TOPO_MAX_NODES];
        _cleanup_free_ char *copy = strdup(v);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        memcpy(next, cap, sizeof(next));
        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                char *colon = strchr(w, ':'), *end;
                unsigned long id;
                uint64_t bytes;

                errno = 0;
                id = colon && colon > w ? strtoul(w, &end, 10) : ULONG_MAX;
                if (id == ULONG_MAX || errno || end != colon || !isdigit((unsigned char) *w) ||
                    id >= SPM_TOPO_MAX_NODES)
                        return snprintf(msg, size, "%s= wants NODE:SIZE words with a node id "
                                        "0..%d, got \"%s\"", it->key, SPM_TOPO_MAX_NODES - 1,
                                        w), -EINVAL;
                if (config_type_size.parse(it, colon + 1, &bytes, msg, size) < 0)
                        return -EINVAL;
                if (bytes == 0)
                        return snprintf(msg, size, "%s= node %lu: a capacity must be above 0 "
                                        "(an empty assignment resets the list)", it->key, id),
                               -EINVAL;
                next[id] = bytes;
        }
        memcpy(cap, next, sizeof(next));
        return 0;
}

static void format_node_capacity(const struct config_item *it, const void *data, FILE *f) {
        const uint64_t *cap = data;
        bool first = true;

        for (int id = 0; id < SPM_TOPO_MAX_NODES; id++) {
                if (!cap[id])
                        continue;
                fprintf(f, "%s%d:", first ? "" : " ", id);
                config_format_size(it, &cap[id], f);
                first = false;
        }
}

static void clear_node_capacity(void *data) {
        memset(data, 0, sizeof(uint64_t) * SPM_TOPO_MAX_NODES);
}

static const struct config_type type_profile = {
        "profile", parse_profile, config_format_string, config_clear_string, false,
};
static const struct config_type type_policy = {
        "policy", parse_policy, config_format_string, config_clear_string, false,
};
static const struct config_type type_mover = {
        "mover", parse_mover, config_format_string, config_clear_string, false,
};
static const struct config_type type_collectors = {
        "collectors", parse_collectors, config_format_strv, config_clear_strv, true,
};
static const struct config_type type_granule = {
        "granule", parse_granule, config_format_size, NULL, false,
};

static const struct config_type type_fast_node = {
        "node", parse_fast_node, format_fast_node, NULL, false,
};
static const struct config_type type_node_capacity = {
        "capacities", parse_node_capacity, format_node_capacity, clear_node_capacity, true,
};

#define ITEM(sec, k, t, f, u, d, lo, hi, h) \
        { .section = sec, .key = k, .type = t, .offset = OFF(f), .unit = u, .def = d, \
          .min = lo, .max = hi, .help = h }

const struct config_item spmtierd_config_table[] = {
        ITEM("Daemon", "LogLevel", &config_type_loglevel, log_level, "level", "info", 0, 0,
             "most verbose priority logged: emerg, alert, crit, err, warning, notice, info, debug"),
        ITEM("Daemon", "AdminGroup", &config_type_string, admin_group, "group", "", 0, 0,
             "members of this group (name or gid) may call admin methods; empty = root only"),
        ITEM("Daemon", "ProcRoot", &config_type_path, proc_root, "path", "/proc", 0, 0,
             "where /proc is (tests point it at a fake tree)"),
        ITEM("Daemon", "SysRoot", &config_type_path, sys_root, "path", "/sys", 0, 0,
             "where /sys is; GPUs are found under class/kfd/kfd/topology/nodes"),
        ITEM("Daemon", "KfdDevice", &config_type_path, kfd_device, "path", "/dev/kfd", 0, 0,
             "the KFD device the kfd-smi collector opens for SMI events"),
        ITEM("Daemon", "FakeKfdRoot", &config_type_path, fake_kfd_root, "path", "", 0, 0,
             "root of a fake KFD node (docs/fakekfd.md): SMI events come from its run/smi "
             "FIFOs instead of the ioctl; empty = real hardware"),
        ITEM("Daemon", "DefaultLeaseSec", &config_type_usec, lease_usec, "time span", "1d",
             1e6, 3.2e13, "lease of a job registered without a TTL (1s..1y)"),

        ITEM("Machine", "Profile", &type_profile, profile, "name", "auto", 0, 0,
             "machine model: auto (detect KFD GPUs), none, mi250x-gcd, mi300a-node, "
             "numa-sysfs (NUMA nodes and HMAT from SysRoot; use with Mover=numa)"),
        ITEM("Machine", "GPUs", &config_type_unsigned, gpus, "count", "0", 0, 8,
             "GPUs to manage; 0 = as detected (auto) or the profile's count"),
        ITEM("Machine", "FastNode", &type_fast_node, fast_node, "node", "auto", 0, 0,
             "numa-sysfs: the NUMA node that gets the CPU's hot data (location 0); auto = the "
             "highest HMAT bandwidth, else the lowest memory tier, else the first node with "
             "CPUs"),
        ITEM("Machine", "NodeCapacity", &type_node_capacity, node_capacity, "NODE:bytes",
             "", 0, 0, "numa-sysfs: bytes the engine may place on a node, e.g. 0:64G 2:512G "
             "(a list; empty resets); unlisted nodes = their MemTotal"),

        ITEM("Policy", "Default", &type_policy, default_policy, "name", "spmtier", 0, 0,
             "policy of jobs registered without one: spmtier or none"),
        ITEM("Policy", "EpochSec", &config_type_usec, epoch_usec, "time span", "10ms",
             1000, 6e7, "length of a policy epoch (1ms..1min)"),
        ITEM("Policy", "HalfLifeSec", &config_type_usec, half_life_usec, "time span", "0",
             0, 3.6e9, "half-life of access heat; 0 = 4 epochs"),
        ITEM("Policy", "Hysteresis", &config_type_double, hysteresis, "factor", "1.25",
             1, 100, "a move's benefit must exceed its cost by this factor"),
        ITEM("Policy", "MinResidencyEpochs", &config_type_unsigned, min_residency_epochs,
             "epochs", "2", 0, 1e6, "a region stays where it moved at least this long"),
        ITEM("Policy", "PingPongTrips", &config_type_unsigned, pingpong_trips, "trips", "2",
             1, 1000, "round trips within the window that quarantine a region"),
        ITEM("Policy", "PingPongWindowEpochs", &config_type_unsigned, pingpong_window_epochs,
             "epochs", "32", 1, 1e6, "window in which round trips are counted"),
        ITEM("Policy", "QuarantineEpochs", &config_type_unsigned, quarantine_epochs, "epochs",
             "64", 0, 1e6, "how long a ping-ponging region stays put"),
        ITEM("Policy", "MigrateBudget", &config_type_size, migrate_budget, "bytes", "0", 0, 0,
             "bytes per link and direction per epoch; 0 = the machine's bandwidth x epoch"),
        ITEM("Policy", "Granule", &type_granule, granule, "bytes", "0", 0, 0,
             "region granularity, a power of two 4K..1G; 0 = the machine's (2M)"),
        ITEM("Policy", "MaxRegionsPerRange", &config_type_unsigned, max_regions_per_range,
             "regions", "4096", 1, 1e7, "split limit per declared range"),

        ITEM("Collect", "Collectors", &type_collectors, collectors, "names", "", 0, 0,
             "observation sources, in order (a list; empty resets): replay, damon (CPU "
             "accesses of the jobs' processes from DAMON; a NUMA profile), kfd-smi (GPU "
             "faults and driver migrations from KFD SMI events), kfd-sysfs (per-process KFD "
             "fault and migration counters and each GPU's VRAM use from sysfs)"),

        ITEM("Replay", "Trace", &config_type_path, replay_trace, "path", "", 0, 0,
             "trace the replay collector feeds, one trace epoch per policy epoch"),
        ITEM("Replay", "Loop", &config_type_bool, replay_loop, "boolean", "no", 0, 0,
             "start the trace over at its end"),

        ITEM("Move", "Mover", &type_mover, mover, "name", "sim", 0, 0,
             "what carries out the plan: sim (the machine model), numa (move_pages on the "
             "job's pids; needs a NUMA machine profile) or kfd-svm (the agents in the job "
             "processes, through KFD SVM)"),
        ITEM("Move", "CommandTimeoutSec", &config_type_usec, command_timeout_usec, "time span",
             "5s", 1e4, 3.6e9, "kfd-svm: a command the agent has not reported by then fails"),
        ITEM("Move", "SimFailEvery", &config_type_unsigned, sim_fail_every, "moves", "0", 0, 0,
             "the sim mover fails every Nth move with EBUSY (testing); 0 = never"),

        ITEM("Metrics", "Path", &config_type_path, metrics_path, "path", "", 0, 0,
             "Prometheus textfile written atomically; empty = off"),
        ITEM("Metrics", "IntervalSec", &config_type_usec, metrics_interval_usec, "time span",
             "15s", 1e5, 8.64e10, "how often the textfile is rewritten (100ms..1d)"),

        ITEM("Limits", "MaxJobs", &config_type_unsigned, max_jobs, "jobs", "4096", 1, 1e6,
             "jobs registered at once"),
        ITEM("Limits", "MaxProcessesPerJob", &config_type_unsigned, max_pids_per_job,
             "processes", "4096", 1, 1e6, "processes attached to one job"),
        ITEM("Limits", "MaxHintsPerJob", &config_type_unsigned, max_hints_per_job, "hints",
             "4096", 1, 1e6, "hints kept per job"),
        ITEM("Limits", "MaxMonitors", &config_type_unsigned, max_monitors, "streams", "64",
             1, 1e4, "concurrent Monitor streams"),
        ITEM("Limits", "MaxConnections", &config_type_unsigned, max_connections,
             "connections", "4096", 1, 1e6, "varlink connections at once"),
        ITEM("Limits", "MaxConnectionsPerUser", &config_type_unsigned,
             max_connections_per_user, "connections", "1024", 1, 1e6,
             "varlink connections of one uid at once"),
        {}
};

void spmtierd_settings_done(struct spmtierd_settings *s) {
        config_free(spmtierd_config_table, s);
}

int spmtierd_settings_load(const char *path, struct spmtierd_settings *ret, char ***ret_files,
                           struct config_error *err) {
        static const char *const default_dirs[] = {
                "/etc/spmtierd.conf.d", "/run/spmtierd.conf.d",
                "/usr/local/lib/spmtierd.conf.d", "/usr/lib/spmtierd.conf.d", NULL,
        };
        struct spmtierd_settings s = {};
        _cleanup_free_ char *dropin = NULL;
        const char *dirs[2] = {};
        int r;

        if (path) {
                if (asprintf(&dropin, "%s.d", path) < 0)
                        return -ENOMEM;
                dirs[0] = dropin;
        }
        r = config_load(spmtierd_config_table, &s, path ? path : SPMTIERD_CONFIG_FILE,
                        /* main_required= */ path != NULL, path ? dirs : default_dirs,
                        ret_files, err);
        if (r < 0) {
                spmtierd_settings_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

void spmtierd_settings_print(const struct spmtierd_settings *s, FILE *f) {
        config_print(spmtierd_config_table, s, f);
}
