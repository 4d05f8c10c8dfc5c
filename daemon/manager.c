/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "fileio.h"
#include "log.h"
#include "manager.h"
#include "methods.h"
#include "metrics.h"
#include "spmtier/json-util.h"
#include "state.h"
#include "topology.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define HOUSEKEEPING_USEC USEC_PER_SEC
/* Past this many journaled hints a snapshot is cheaper to load than the journal. */
#define JOURNAL_MAX 65536U
/* How often a GPU is taken to read a granule it faulted on (kfd-smi's heat per fault). */
#define FAULT_READS 16

static uint64_t clock_usec(clockid_t c) {
        struct timespec ts;

        (void) clock_gettime(c, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t manager_now_realtime(void) {
        return clock_usec(CLOCK_REALTIME);
}

uint64_t manager_uptime_usec(const struct manager *m) {
        return clock_usec(CLOCK_MONOTONIC) - m->start_usec;
}

static void format_bytes(uint64_t b, char *buf, size_t size) {
        static const char *const units[] = { "B", "K", "M", "G", "T" };
        double v = (double) b;
        unsigned u = 0;

        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        snprintf(buf, size, u ? "%.1f%s" : "%.0f%s", v, units[u]);
}

/* ---- machine ---- */

/* Counts KFD topology nodes with SIMDs (GPUs; CPU nodes have simd_count 0). */
static unsigned detect_gpus(const char *sys_root) {
        char path[4096];
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        snprintf(path, sizeof(path), "%s/class/kfd/kfd/topology/nodes", sys_root);
        d = opendir(path);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char p[8192], line[256];
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof(p), "%s/%s/properties", path, de->d_name);
                f = fopen(p, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof(line), f)) {
                        unsigned long simd;
                        if (sscanf(line, "simd_count %lu", &simd) == 1 && simd > 0)
                                n++;
                }
                fclose(f);
        }
        closedir(d);
        return n;
}

/* Sets each GPU's VRAM from the topology (local_mem_size of GPU nodes, in node order): the
 * profile's figure is a model, the node says what it has. */
static void machine_read_vram(struct spm_machine *mm, const char *sys_root) {
        unsigned g = 0;

        for (unsigned node = 0; node < 64 && g < mm->n_gpus; node++) {
                char p[4096], line[256];
                unsigned long long simd = 0, size = 0, v;
                _cleanup_fclose_ FILE *f = NULL;

                snprintf(p, sizeof(p), "%s/class/kfd/kfd/topology/nodes/%u/properties", sys_root,
                         node);
                f = fopen(p, "re");
                if (!f)
                        break;
                while (fgets(line, sizeof(line), f)) {
                        if (sscanf(line, "simd_count %llu", &v) == 1)
                                simd = v;
                        else if (sscanf(line, "local_mem_size %llu", &v) == 1)
                                size = v;
                }
                if (simd == 0)
                        continue;
                if (size > 0)
                        mm->capacity[SPM_LOC_GPU(g)] = size;
                g++;
        }
}

/* Keeps the first n GPUs of a discrete-GPU profile. */
static void machine_restrict(struct spm_machine *mm, unsigned n) {
        if (mm->kind == SPM_MEM_NUMA || n == 0 || n >= mm->n_gpus)
                return;
        mm->n_gpus = n;
        mm->n_locs = n + 1;
        mm->n_accessors = n + 1;
}

static int manager_setup_machine(struct manager *m) {
        const struct spmtierd_settings *s = &m->settings;
        int r;

        m->has_gpu = false;
        if (strcmp(s->profile, "none") == 0) {
                snprintf(m->no_gpu_reason, sizeof(m->no_gpu_reason), "Profile=none");
                return 0;
        }
        if (strcmp(s->profile, "numa-sysfs") == 0) {
                /* CPU-side tiering over NUMA nodes (CXL, CPU-less memory): the fast node by
                 * HMAT is location 0; no GPU. */
                struct spm_topology topo;
                struct spm_topology_overrides o;
                const struct spm_numa_node *n;
                int loc_node[SPM_MAX_LOCS];

                r = spm_topology_read(s->sys_root, &topo);
                if (r < 0)
                        return log_error_errno(r, "Cannot read the NUMA topology under %s: %m",
                                               s->sys_root);
                spm_topology_overrides_init(&o);
                o.fast_node = s->fast_node;
                memcpy(o.capacity, s->node_capacity, sizeof(o.capacity));
                n = s->fast_node >= 0 ? spm_topology_node(&topo, s->fast_node) : NULL;
                if (s->fast_node >= 0 && (!n || !n->has_memory))
                        return log_error_errno(-ENOENT, "FastNode=%d: no memory node %d under "
                                               "%s/devices/system/node", s->fast_node,
                                               s->fast_node, s->sys_root);
                for (int id = 0; id < SPM_TOPO_MAX_NODES; id++) {
                        n = spm_topology_node(&topo, id);
                        if (s->node_capacity[id] && (!n || !n->has_memory))
                                log_warning("NodeCapacity= names node %d, which has no memory: "
                                            "ignored", id);
                }
                r = spm_topology_to_machine(&topo, &o, &m->machine, loc_node);
                if (r < 0)
                        return log_error_errno(r, "No NUMA machine from %s: %m", s->sys_root);
                m->has_gpu = true; /* the engine runs: its locations are the memory nodes */
                return 0;
        }
        if (strcmp(s->profile, "auto") == 0) {
                unsigned n = detect_gpus(s->sys_root);
                if (n == 0) {
                        snprintf(m->no_gpu_reason, sizeof(m->no_gpu_reason),
                                 "no GPU under %s/class/kfd/kfd/topology", s->sys_root);
                        return 0;
                }
                r = spm_machine_profile("mi250x-gcd", &m->machine);
                if (r < 0)
                        return r;
                machine_restrict(&m->machine, s->gpus ? MIN(s->gpus, n) : n);
                machine_read_vram(&m->machine, s->sys_root);
        } else {
                r = spm_machine_profile(s->profile, &m->machine);
                if (r < 0)
                        return r;
                machine_restrict(&m->machine, s->gpus);
        }
        m->has_gpu = true;
        return 0;
}

/* ---- engine ---- */

void manager_engine_config(const struct manager *m, struct spm_engine_config *c) {
        const struct spmtierd_settings *s = &m->settings;
        const struct policy_overrides *o = &m->registry.policy;

        spm_engine_config_defaults(&m->machine, c);
        c->epoch_usec = o->set & POLICY_SET_EPOCH ? o->epoch_usec : s->epoch_usec;
        if (o->set & POLICY_SET_HALF_LIFE)
                c->half_life_usec = o->half_life_usec;
        else if (s->half_life_usec)
                c->half_life_usec = s->half_life_usec;
        else
                c->half_life_usec = 4 * c->epoch_usec;
        c->hysteresis = o->set & POLICY_SET_HYSTERESIS ? o->hysteresis : s->hysteresis;
        c->min_residency_epochs = o->set & POLICY_SET_MIN_RESIDENCY ? o->min_residency_epochs
                                                                    : s->min_residency_epochs;
        c->pingpong_trips = o->set & POLICY_SET_PINGPONG_TRIPS ? o->pingpong_trips
                                                               : s->pingpong_trips;
        c->pingpong_window_epochs = o->set & POLICY_SET_PINGPONG_WINDOW
                                            ? o->pingpong_window_epochs
                                            : s->pingpong_window_epochs;
        c->quarantine_epochs = o->set & POLICY_SET_QUARANTINE ? o->quarantine_epochs
                                                              : s->quarantine_epochs;
        c->migrate_budget_bytes = o->set & POLICY_SET_BUDGET ? o->migrate_budget
                                                             : s->migrate_budget;
        if (s->granule)
                c->granule = s->granule;
        c->max_regions_per_range = s->max_regions_per_range;
        /* GPU faults are kfd-smi's only GPU signal, and a granule faults once, then stays
         * mapped: one fault stands for the granule read FAULT_READS times. */
        for (char **n = s->collectors; n && *n; n++)
                if (strcmp(*n, "kfd-smi") == 0)
                        c->fault_accesses = (double) c->granule / SPM_ACCESS_BYTES * FAULT_READS;
}

static bool job_is_frozen(const struct manager *m, const struct job *j) {
        return j->frozen || m->registry.frozen || strcmp(j->policy, "none") == 0;
}

static int engine_sync_job(struct manager *m, const struct job *j) {
        struct spm_job ej = {
                .id = j->id,
                .uid = j->uid,
                .gpu_mask = j->gpu_mask & ((1U << m->machine.n_gpus) - 1),
                .frozen = job_is_frozen(m, j),
        };

        if (!m->engine)
                return 0;
        for (unsigned g = 0; g < SPM_MAX_GPUS; g++)
                ej.vram_quota[g] = ej.gpu_mask & (1U << g) ? j->vram_quota : 0;
        return spm_engine_job_set(m->engine, &ej);
}

/* Hands the registry's hints of pid to the engine (after a restart, or when the pid's ranges
 * appear: the engine needs the range before a hint on it means anything). */
static void engine_apply_hints(struct manager *m, uint32_t pid) {
        struct job *j = registry_find_pid(&m->registry, pid);
        uint64_t now = manager_now_realtime();

        if (!m->engine || !j)
                return;
        for (size_t i = 0; i < j->n_hints; i++) {
                const struct job_hint *h = &j->hints[i];
                struct spm_hint eh = {
                        .pid = h->pid, .start = h->start, .len = h->length, .kind = h->kind,
                        .gpu = h->gpu < 0 ? 0 : (uint8_t) h->gpu,
                };
                if (h->pid != pid)
                        continue;
                if (h->expires_usec) {
                        if (h->expires_usec <= now)
                                continue;
                        eh.ttl_usec = h->expires_usec - now;
                }
                (void) spm_engine_hint(m->engine, &eh);
        }
}

static int manager_setup_engine(struct manager *m) {
        struct spm_engine_config c;
        int r;

        if (!m->has_gpu)
                return 0;
        manager_engine_config(m, &c);
        r = spm_engine_new(&m->machine, &c, &m->engine);
        if (r < 0)
                return log_error_errno(r, "Failed to create the policy engine for %s: %m",
                                       m->machine.name);
        /* On KFD the engine shares VRAM with the driver's own fault migrations and every
         * other BO: a plan that fills it to the byte makes prefetches fail silently. */
        for (unsigned g = 0; g < m->machine.n_gpus; g++) {
                m->gpu_fill[g] = m->machine.capacity[SPM_LOC_GPU(g)];
                if (strcmp(m->settings.mover, "kfd-svm") == 0) {
                        m->gpu_fill[g] = m->gpu_fill[g] / 16 * 15;
                        (void) spm_engine_set_capacity(m->engine, SPM_LOC_GPU(g),
                                                       m->gpu_fill[g]);
                }
        }
        return 0;
}

/* ---- state ---- */

static int manager_write_state(struct manager *m, bool durable) {
        int r;

        if (!m->loaded)
                return 0;
        r = state_save(&m->registry, m->state_dir, durable);
        if (r < 0) {
                snprintf(m->state_error, sizeof(m->state_error), "saving %s/%s: %s",
                         m->state_dir, STATE_FILE, strerror(-r));
                return log_error_errno(r, "Failed to save state to %s: %m", m->state_dir);
        }
        m->state_error[0] = '\0';
        m->state_dirty = false;
        m->state_unsynced = !durable;
        /* The snapshot holds every journaled hint now. */
        if (m->journal_fd >= 0 && m->journal_entries > 0) {
                r = state_journal_reset(m->journal_fd, durable);
                if (r < 0)
                        log_warning_errno(r, "Failed to empty the hint journal, ignoring: %m");
                else
                        m->journal_entries = 0;
        }
        return 0;
}

int manager_save_state(struct manager *m) {
        return manager_write_state(m, /* durable= */ false);
}

int manager_sync_state(struct manager *m) {
        return manager_write_state(m, /* durable= */ true);
}

static int manager_load_state(struct manager *m) {
        char msg[256] = "";
        int r;

        r = state_load(m->state_dir, &m->registry, msg, sizeof(msg));
        if (r == -EBADMSG) {
                log_error("State file %s/%s is corrupt (%s); moving it aside to %s.corrupt "
                          "and starting without jobs", m->state_dir, STATE_FILE, msg,
                          STATE_FILE);
                (void) state_move_aside(m->state_dir);
                r = 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read state from %s: %m", m->state_dir);
        m->loaded = true;
        m->journal_fd = state_journal_open(m->state_dir);
        if (m->journal_fd < 0)
                log_warning_errno(m->journal_fd, "Failed to open the hint journal; every hint "
                                  "rewrites the state file: %m");
        /* Start from one snapshot with an empty journal. */
        m->journal_entries = 1;
        r = manager_sync_state(m);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->registry.n_jobs; i++) {
                struct job *j = m->registry.jobs[i];
                int k = engine_sync_job(m, j);
                if (k < 0)
                        log_warning_errno(k, "Restored job %" PRIu64 " not accepted by the "
                                          "engine, ignoring: %m", j->id);
                for (size_t p = 0; m->engine && p < j->n_pids; p++)
                        (void) spm_engine_process_add(m->engine, j->id, j->pids[p]);
        }
        if (r > 0)
                log_info("Restored %zu jobs, %zu processes and %zu hints from %s",
                         m->registry.n_jobs, registry_n_pids(&m->registry),
                         registry_n_hints(&m->registry), m->state_dir);
        return 0;
}

/* ---- Monitor ---- */

static void monitor_drop(struct manager *m, size_t i) {
        varlink_call_unref(m->monitors[i].call);
        m->monitors[i] = m->monitors[--m->n_monitors];
}

static void on_monitor_disconnect(struct varlink_call *call, void *userdata) {
        struct manager *m = userdata;

        for (size_t i = 0; i < m->n_monitors; i++)
                if (m->monitors[i].call == call) {
                        monitor_drop(m, i);
                        return;
                }
}

int manager_add_monitor(struct manager *m, struct varlink_call *call, uint64_t job,
                        const struct auth_peer *peer) {
        struct monitor *a;

        if (m->n_monitors >= m->settings.max_monitors)
                return -EUSERS;
        a = realloc(m->monitors, (m->n_monitors + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        m->monitors = a;
        a[m->n_monitors++] = (struct monitor) { varlink_call_ref(call), job, *peer };
        varlink_call_set_disconnect_handler(call, on_monitor_disconnect, m);
        return 0;
}

void manager_emit(struct manager *m, struct json_object *event, uint64_t job) {
        const struct job *j = job == UINT64_MAX ? NULL : registry_find(&m->registry, job);
        _cleanup_json_ struct json_object *reply = NULL;

        if (m->n_monitors == 0)
                return;
        reply = json_object_new_object();
        if (!reply || json_object_object_add(reply, "event", json_object_get(event)) < 0)
                return;
        for (size_t i = 0; i < m->n_monitors;) {
                struct monitor *s = &m->monitors[i];
                bool may = s->peer.admin || (j && j->uid == s->peer.uid);
                if (!may || (s->job != UINT64_MAX && s->job != job)) {
                        i++;
                        continue;
                }
                int r = varlink_call_reply_continues(s->call, reply);
                if (r == -ENOTCONN || r == -ENOBUFS || r == -EALREADY) {
                        monitor_drop(m, i);
                        continue;
                }
                i++;
        }
}

static struct json_object *event_new(struct manager *m, const char *kind) {
        struct json_object *e = json_object_new_object();

        if (!e)
                return NULL;
        json_object_object_add(e, "kind", json_object_new_string(kind));
        json_object_object_add(e, "realtime_usec", json_object_new_int64(
                                                           (int64_t) manager_now_realtime()));
        json_object_object_add(e, "epoch", json_object_new_int64((int64_t) m->epoch));
        return e;
}

static void emit_message(struct manager *m, const char *kind, uint64_t job, const char *msg) {
        _cleanup_json_ struct json_object *e = event_new(m, kind);

        if (!e)
                return;
        if (job != UINT64_MAX)
                json_object_object_add(e, "job", json_object_new_int64((int64_t) job));
        json_object_object_add(e, "message", json_object_new_string(msg));
        manager_emit(m, e, job);
}

static void emit_move(struct manager *m, const char *kind, const struct spm_move *mv,
                      const int *status, const uint64_t *moved) {
        _cleanup_json_ struct json_object *e = event_new(m, kind);

        if (!e)
                return;
        json_object_object_add(e, "move", methods_build_move(m, mv));
        json_object_object_add(e, "job", json_object_new_int64((int64_t) mv->job_id));
        if (status)
                json_object_object_add(e, "status", json_object_new_int(*status));
        if (moved)
                json_object_object_add(e, "moved_bytes", json_object_new_int64((int64_t) *moved));
        manager_emit(m, e, mv->job_id);
}

/* ---- moves ---- */

static const char *loc_name(const struct manager *m, unsigned loc) {
        return loc < m->machine.n_locs ? m->machine.loc_name[loc] : "?";
}

static void on_move_done(void *userdata, const struct spm_move *mv, int status, uint64_t moved) {
        struct manager *m = userdata;
        struct job *j = registry_find(&m->registry, mv->job_id);
        char len[32];

        if (m->engine)
                (void) spm_engine_move_result(m->engine, mv, status, moved);
        format_bytes(moved, len, sizeof(len));
        if (status < 0) {
                m->counters.failures++;
                if (j)
                        j->counters.failures++;
                log_warning_errno(status, "Migration of pid %" PRIu32 " [0x%" PRIx64 "+%" PRIu64
                                  "] %s->%s failed: %m", mv->pid, mv->start, mv->length,
                                  loc_name(m, mv->from), loc_name(m, mv->to));
        } else {
                bool to_gpu = mv->to != SPM_LOC_SYSMEM;
                double share = mv->length ? (double) moved / (double) mv->length : 0;

                m->counters.migrations++;
                m->counters.benefit_usec += mv->benefit_usec * share;
                if (to_gpu)
                        m->counters.bytes_to_gpu += moved;
                else
                        m->counters.bytes_to_ram += moved;
                if (mv->to != SPM_LOC_SYSMEM && mv->to - 1 < SPM_MAX_GPUS)
                        m->counters.bytes_in[mv->to - 1] += moved;
                if (mv->from != SPM_LOC_SYSMEM && mv->from - 1 < SPM_MAX_GPUS)
                        m->counters.bytes_out[mv->from - 1] += moved;
                if (j) {
                        j->counters.migrations++;
                        j->counters.benefit_usec += mv->benefit_usec * share;
                        if (to_gpu)
                                j->counters.bytes_to_gpu += moved;
                        else
                                j->counters.bytes_to_ram += moved;
                }
                if (moved < mv->length)
                        log_info("Migration of pid %" PRIu32 " [0x%" PRIx64 "] %s->%s partial: "
                                 "%s of %" PRIu64 " bytes", mv->pid, mv->start,
                                 loc_name(m, mv->from), loc_name(m, mv->to), len, mv->length);
        }
        m->state_dirty = true;
        emit_move(m, "result", mv, &status, &moved);
}

/* A held range was pinned where it is (or not): nothing moved, the engine learns nothing. */
static void on_pin_done(void *userdata, const struct spm_move *mv, int status, uint64_t moved) {
        struct manager *m = userdata;

        (void) moved;
        if (status < 0)
                log_full_errno(LOG_INFO, status, "Pinning quarantined pid %" PRIu32 " [0x%"
                               PRIx64 "+%" PRIu64 "] in %s failed, ignoring: %m", mv->pid,
                               mv->start, mv->length, loc_name(m, mv->to));
}

/* The ping-pong detector's held ranges: pinned where they are (PREFERRED_LOC), so the driver's
 * faults and evictions stop moving them too. Movers without PREFERRED_LOC have nothing to do. */
static void manager_pin_held(struct manager *m, const struct spm_plan *plan) {
        _cleanup_free_ struct spm_move *v = NULL;
        size_t n = 0;

        if (plan->n_held == 0 || !m->mover || !m->mover_ops->submit_mode)
                return;
        v = calloc(plan->n_held, sizeof(*v));
        if (!v)
                return;
        for (size_t i = 0; i < plan->n_held; i++) {
                const struct spm_move *h = &plan->held[i];
                /* The engine settles a new quarantine even for a frozen job; frozen means
                 * the driver alone decides, so nothing is pinned either. */
                if (manager_job_frozen(m, h->job_id))
                        continue;
                log_info("Pinning quarantined pid %" PRIu32 " [0x%" PRIx64 "+%" PRIu64 "] in %s",
                         h->pid, h->start, h->length, loc_name(m, h->to));
                v[n++] = *h;
        }
        if (n == 0)
                return;
        int r = m->mover_ops->submit_mode(m->mover, v, n, SPM_MOVE_PIN, on_pin_done, m);
        if (r < 0)
                log_full_errno(LOG_INFO, r, "Mover %s refused %zu pins, ignoring: %m",
                               m->mover_ops->name, n);
}

/* Logs and publishes each decision with the numbers behind it (STYLE R11), then hands the
 * moves to the mover, carried out as mode says. */
static void manager_carry_out(struct manager *m, const struct spm_plan *plan,
                              enum spm_move_mode mode, const char *why) {
        struct spm_engine_config c;
        char len[32];
        int r;

        if (plan->n_moves > 0)
                manager_engine_config(m, &c);

        for (size_t i = 0; i < plan->n_moves; i++) {
                const struct spm_move *mv = &plan->moves[i];
                format_bytes(mv->length, len, sizeof(len));
                log_notice("%s pid %" PRIu32 " (job %" PRIu64 ") [0x%" PRIx64 " +%s] %s->%s: "
                           "%s, benefit %.1fus vs cost %.1fus (x%.2f hysteresis), epoch %" PRIu64,
                           why, mv->pid, mv->job_id, mv->start, len, loc_name(m, mv->from),
                           loc_name(m, mv->to), spm_reason_to_string(mv->reason),
                           mv->benefit_usec, mv->cost_usec, c.hysteresis, m->epoch);
                emit_move(m, "decision", mv, NULL, NULL);
        }
        if (plan->n_moves == 0 || !m->mover)
                return;
        if (mode != SPM_MOVE_PLACE && m->mover_ops->submit_mode)
                r = m->mover_ops->submit_mode(m->mover, plan->moves, plan->n_moves, mode,
                                              on_move_done, m);
        else
                r = m->mover_ops->submit(m->mover, plan->moves, plan->n_moves, on_move_done, m);
        if (r < 0) {
                log_error_errno(r, "Mover %s refused %zu moves: %m", m->mover_ops->name,
                                plan->n_moves);
                for (size_t i = 0; i < plan->n_moves; i++)
                        on_move_done(m, &plan->moves[i], r, 0);
        }
}

void manager_submit_moves(struct manager *m, const struct spm_plan *plan, enum spm_move_mode mode,
                          const char *why) {
        manager_carry_out(m, plan, mode, why);
}

bool manager_job_frozen(const struct manager *m, uint64_t job_id) {
        const struct job *j = registry_find(&m->registry, job_id);

        return m->registry.frozen || (j && job_is_frozen(m, j));
}

/* ---- collectors' sink ---- */

static int sink_process(void *userdata, uint32_t pid) {
        struct manager *m = userdata;
        struct job *j = registry_find(&m->registry, SPMTIERD_REPLAY_JOB);
        int r;

        if (!j)
                return -ENOENT;
        r = registry_attach(&m->registry, j, pid, NULL);
        if (r < 0)
                return r; /* -EEXIST: a real job owns that pid; leave it alone */
        return m->engine ? spm_engine_process_add(m->engine, j->id, pid) : 0;
}

static int sink_range(void *userdata, uint32_t pid, uint64_t start, uint64_t length) {
        struct manager *m = userdata;
        int r;

        if (!m->engine)
                return 0;
        r = spm_engine_range_add(m->engine, pid, start, length, SPM_LOC_SYSMEM);
        if (r >= 0)
                engine_apply_hints(m, pid);
        return r;
}

static int sink_observe(void *userdata, const struct spm_access *a) {
        struct manager *m = userdata;
        int r;

        if (!m->engine)
                return 0;
        r = spm_engine_observe(m->engine, a);
        if (r > 0)
                m->counters.observations++;
        else if (r == 0)
                m->counters.observations_ignored++;
        return r;
}

static int sink_gpu_fault(void *userdata, uint32_t pid, uint64_t addr, uint64_t len, unsigned gpu,
                          bool migrated) {
        struct manager *m = userdata;

        if (!m->engine)
                return 0;
        m->counters.observations++;
        return spm_engine_gpu_fault(m->engine, pid, addr, len, gpu, migrated);
}

static int sink_locate(void *userdata, uint32_t pid, uint64_t addr, uint64_t len, unsigned loc) {
        struct manager *m = userdata;

        return m->engine ? spm_engine_set_location(m->engine, pid, addr, len, loc) : 0;
}

static int sink_kfd_counters(void *userdata, const struct spm_kfd_sample *smp) {
        struct manager *m = userdata;
        struct kfd_gpu_view *v;

        if (smp->gpu >= SPM_MAX_GPUS)
                return -EINVAL;
        v = &m->kfd[smp->gpu];
        v->faults += smp->faults;
        v->pages_in += smp->pages_in;
        v->pages_out += smp->pages_out;
        return 0;
}

/* The driver's VRAM use of a GPU: the engine may fill what the other allocations (whatever
 * is in VRAM beyond the regions it placed) leave, less a sixteenth for the driver's own
 * fault migrations, and never more than it was configured with. */
static int sink_vram(void *userdata, unsigned gpu, uint64_t used, uint64_t total) {
        struct manager *m = userdata;
        struct spm_engine_stats st;
        struct kfd_gpu_view *v;
        uint64_t others, room, fill;

        if (gpu >= SPM_MAX_GPUS)
                return -EINVAL;
        v = &m->kfd[gpu];
        v->seen = true;
        v->driver_used = used;
        v->driver_total = total;
        if (!m->engine || gpu >= m->machine.n_gpus || total == 0)
                return 0;
        spm_engine_get_stats(m->engine, &st);
        others = used > st.used[SPM_LOC_GPU(gpu)] ? used - st.used[SPM_LOC_GPU(gpu)] : 0;
        room = total > others + total / 16 ? total - others - total / 16 : 0;
        fill = MIN(room, m->gpu_fill[gpu]);
        if (spm_engine_set_capacity(m->engine, SPM_LOC_GPU(gpu), fill) < 0)
                return -EINVAL;
        v->fill_limit = fill;
        return 0;
}

static int sink_hint(void *userdata, const struct spm_hint *h) {
        struct manager *m = userdata;
        struct job_hint jh = {
                .pid = h->pid, .start = h->start, .length = h->len, .kind = h->kind,
                .gpu = h->kind == SPM_HINT_HOT || h->kind == SPM_HINT_PIN_GPU ? h->gpu : -1,
        };

        return manager_hint(m, &jh, h->ttl_usec);
}

/* ---- collectors and mover ---- */

static void manager_free_backends(struct manager *m) {
        for (size_t i = 0; i < m->n_collectors; i++)
                m->collectors[i].ops->free(m->collectors[i].state);
        free(m->collectors);
        m->collectors = NULL;
        m->n_collectors = 0;
        if (m->mover)
                m->mover_ops->free(m->mover);
        m->mover = NULL;
        m->mover_ops = NULL;
}

static int manager_setup_backends(struct manager *m) {
        const struct spmtierd_settings *s = &m->settings;
        struct spm_collector_args cargs = {
                .trace_path = s->replay_trace, .loop = s->replay_loop,
                .proc_root = s->proc_root, .sys_root = s->sys_root,
                .n_gpus = m->has_gpu ? m->machine.n_gpus : 0,
                .machine = m->has_gpu ? &m->machine : NULL,
                .kfd_device = s->kfd_device, .fake_kfd_root = s->fake_kfd_root,
        };
        char msg[256];
        int r;

        for (char **n = s->collectors; n && *n; n++) {
                const struct spm_collector_ops *ops = spm_collector_find(*n);
                void *state;

                if (!ops)
                        return log_error_errno(EINVAL, "Unknown collector %s", *n);
                if (!m->has_gpu) {
                        log_info("Collector %s not started: %s", *n, m->no_gpu_reason);
                        continue;
                }
                msg[0] = '\0';
                r = ops->init(&cargs, &state, msg, sizeof(msg));
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        /* A collector that cannot start must not take the daemon down. */
                        log_error_errno(r, "Collector %s not started: %s", *n, msg);
                        continue;
                }
                struct collector_instance *a =
                        realloc(m->collectors, (m->n_collectors + 1) * sizeof(*a));
                if (!a) {
                        ops->free(state);
                        return -ENOMEM;
                }
                m->collectors = a;
                a[m->n_collectors++] = (struct collector_instance) { ops, state, false };
                log_info("Collector %s started", ops->name);
        }
        if (m->n_collectors > 0 && !registry_find(&m->registry, SPMTIERD_REPLAY_JOB)) {
                struct job_spec spec = {
                        .id = SPMTIERD_REPLAY_JOB, .uid = 0,
                        .gpu_mask = (1U << m->machine.n_gpus) - 1,
                        .vram_quota = JOB_QUOTA_UNLIMITED, .policy = s->default_policy,
                        .ttl_usec = JOB_TTL_INFINITE, .internal = true,
                };
                struct job *j;
                bool created;
                r = registry_register(&m->registry, &spec, manager_now_realtime(), &j, &created);
                if (r >= 0)
                        r = engine_sync_job(m, j);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up the replay job: %m");
        }

        if (!m->has_gpu)
                return 0;
        m->mover_ops = spm_mover_find(s->mover);
        if (!m->mover_ops)
                return log_error_errno(EINVAL, "Unknown mover %s", s->mover);
        struct spm_engine_config ec;
        manager_engine_config(m, &ec);
        m->agent_link = (struct spm_agent_link) { m, agents_send };
        struct spm_mover_args margs = {
                .machine = &m->machine, .fail_every = s->sim_fail_every,
                .proc_root = s->proc_root, .sys_root = s->sys_root, .agents = &m->agent_link,
                .budget_bytes = ec.migrate_budget_bytes, .epoch_usec = ec.epoch_usec,
                .timeout_usec = s->command_timeout_usec,
        };
        r = m->mover_ops->init(&margs, &m->mover, msg, sizeof(msg));
        if (r < 0) {
                m->mover = NULL;
                return log_error_errno(r, "Mover %s failed to start: %s", s->mover, msg);
        }
        if (m->engine && m->mover_ops->set_used) {
                struct spm_engine_stats st;
                spm_engine_get_stats(m->engine, &st);
                m->mover_ops->set_used(m->mover, st.used);
        }
        return 0;
}

/* ---- status ---- */

const char *manager_status_line(struct manager *m) {
        size_t pids = registry_n_pids(&m->registry);
        size_t jobs = m->registry.n_jobs;
        char vram[32];

        if (registry_find(&m->registry, SPMTIERD_REPLAY_JOB))
                jobs--;
        if (!m->has_gpu) {
                snprintf(m->status, sizeof(m->status),
                         "No GPU (%s): serving %zu jobs and %zu hints, planning no moves",
                         m->no_gpu_reason, jobs, registry_n_hints(&m->registry));
                return m->status;
        }
        struct spm_engine_stats st = {};
        uint64_t used = 0;
        if (m->engine)
                spm_engine_get_stats(m->engine, &st);
        for (unsigned l = 1; l < m->machine.n_locs; l++)
                used += st.used[l];
        format_bytes(used, vram, sizeof(vram));
        snprintf(m->status, sizeof(m->status),
                 "%s%zu jobs, %zu processes, %" PRIu64 " regions, %s in VRAM of %u GPUs; %" PRIu64
                 " migrations, %" PRIu64 " failed",
                 m->registry.frozen ? "FROZEN: " : "", jobs, pids, st.n_regions, vram,
                 m->machine.n_gpus, m->counters.migrations, m->counters.failures);
        return m->status;
}

/* Sends STATUS= when the line changed: the service manager keeps the last one anyway. */
static void manager_notify_status(struct manager *m) {
        const char *line = manager_status_line(m);

        if (strcmp(line, m->last_status) == 0)
                return;
        snprintf(m->last_status, sizeof(m->last_status), "%s", line);
        (void) sd_notifyf(0, "STATUS=%s", line);
}

/* ---- job operations ---- */

void manager_touch_job(struct manager *m, struct job *j) {
        if (!j->internal)
                registry_renew(j, 0, manager_now_realtime());
}

int manager_register_job(struct manager *m, const struct job_spec *spec, struct job **ret,
                         bool *ret_created) {
        struct job *j;
        bool created;
        int r;

        r = registry_register(&m->registry, spec, manager_now_realtime(), &j, &created);
        if (r < 0)
                return r;
        r = engine_sync_job(m, j);
        if (r < 0) {
                struct job *gone;
                if (created && registry_remove(&m->registry, spec->id, &gone) >= 0)
                        job_free(gone);
                return r;
        }
        (void) manager_save_state(m);
        log_info("Job %" PRIu64 " %s: uid %" PRIu32 ", GPUs 0x%" PRIx32 ", policy %s, lease %" PRIu64
                 "s", j->id, created ? "registered" : "renewed", j->uid, j->gpu_mask, j->policy,
                 j->ttl_usec / USEC_PER_SEC);
        char msg[128];
        snprintf(msg, sizeof(msg), "job %s", created ? "registered" : "renewed");
        emit_message(m, "job", j->id, msg);
        *ret = j;
        if (ret_created)
                *ret_created = created;
        return 0;
}

/* Finished jobs' summaries stay in ListJobs this long, and at most this many. */
#define FINISHED_KEEP_USEC (24 * 3600 * USEC_PER_SEC)
#define FINISHED_MAX 256

/* <state-dir>/jobs/<id>.json: the summary of finished job id. */
static int finished_path(const struct manager *m, uint64_t id, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s/jobs/%" PRIu64 ".json", m->state_dir, id);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

static uint64_t summary_u64(struct json_object *s, const char *key) {
        return (uint64_t) json_object_get_int64(json_object_object_get(s, key));
}

/* Drops summaries past FINISHED_MAX or older than FINISHED_KEEP_USEC, with their files
 * unless a later summary has the same id (Slurm requeues a job under its id). */
static void finished_prune(struct manager *m, uint64_t now) {
        size_t n = json_object_array_length(m->finished), drop = 0;
        char path[PATH_MAX];

        while (drop < n) {
                struct json_object *s = json_object_array_get_idx(m->finished, drop);
                uint64_t id = summary_u64(s, "id");
                bool again = false;

                if (n - drop <= FINISHED_MAX &&
                    summary_u64(s, "ended_realtime_usec") + FINISHED_KEEP_USEC > now)
                        break;
                for (size_t i = drop + 1; i < n && !again; i++)
                        again = summary_u64(json_object_array_get_idx(m->finished, i), "id") == id;
                if (!again && finished_path(m, id, path, sizeof(path)) >= 0)
                        (void) unlink(path);
                drop++;
        }
        if (drop > 0)
                (void) json_object_array_del_idx(m->finished, 0, drop);
}

/* Keeps a finished job's summary for ListJobs and writes it to the state directory (for
 * the Slurm epilog's records, and for admins after the daemon forgot it). */
static void finished_add(struct manager *m, uint64_t id, struct json_object *summary,
                         uint64_t now) {
        char path[PATH_MAX];
        const char *text;
        int r;

        if (json_object_array_add(m->finished, json_object_get(summary)) < 0)
                json_object_put(summary);
        finished_prune(m, now);

        r = finished_path(m, id, path, sizeof(path));
        if (r >= 0) {
                char *slash = strrchr(path, '/');
                *slash = '\0';      /* <state-dir>/jobs */
                if (mkdir(path, 0755) < 0 && errno != EEXIST)
                        r = -errno;
                *slash = '/';
        }
        if (r >= 0) {
                text = json_object_to_json_string_ext(summary, JSON_C_TO_STRING_PLAIN);
                r = write_file_atomic(path, text, strlen(text), 0644, false);
        }
        if (r < 0)
                log_warning("Failed to write job %" PRIu64 "'s summary to %s: %s", id, path,
                            strerror(-r));
}

int manager_end_job(struct manager *m, uint64_t id, const char *reason,
                    struct json_object **ret_summary) {
        _cleanup_(job_freep) struct job *j = NULL;
        _cleanup_json_ struct json_object *summary = NULL;
        uint64_t now = manager_now_realtime();
        int r;

        if (id == SPMTIERD_REPLAY_JOB && registry_find(&m->registry, id) &&
            registry_find(&m->registry, id)->internal)
                return -EPERM;
        r = registry_remove(&m->registry, id, &j);
        if (r < 0)
                return r;
        if (m->engine)
                (void) spm_engine_job_remove(m->engine, id);
        (void) manager_save_state(m);
        log_notice("Job %" PRIu64 " %s after %" PRIu64 "s: %" PRIu64 " migrations (%" PRIu64
                   " failed), %" PRIu64 " bytes to GPU, %" PRIu64 " bytes to RAM, modelled "
                   "benefit %.0fus", id, reason,
                   (now > j->registered_usec ? now - j->registered_usec : 0) / USEC_PER_SEC,
                   j->counters.migrations, j->counters.failures, j->counters.bytes_to_gpu,
                   j->counters.bytes_to_ram, j->counters.benefit_usec);
        emit_message(m, "job", id, reason);
        summary = methods_build_job_summary(j, reason, now);
        if (!summary)
                return -ENOMEM;
        if (!j->internal)
                finished_add(m, id, summary, now);
        if (ret_summary)
                *ret_summary = TAKE_PTR(summary);
        return 0;
}

int manager_attach(struct manager *m, struct job *j, uint32_t pid, struct job **ret_other) {
        int r = registry_attach(&m->registry, j, pid, ret_other);

        if (r < 0)
                return r;
        if (r == 0 && m->engine) {
                int k = spm_engine_process_add(m->engine, j->id, pid);
                if (k < 0 && k != -EEXIST) {
                        (void) registry_detach(&m->registry, pid);
                        return k;
                }
        }
        manager_touch_job(m, j);
        (void) manager_save_state(m);
        return 0;
}

int manager_detach(struct manager *m, uint32_t pid) {
        int r = registry_detach(&m->registry, pid);

        if (r < 0)
                return r;
        if (m->engine)
                (void) spm_engine_process_remove(m->engine, pid);
        (void) manager_save_state(m);
        return 0;
}

int manager_add_range(struct manager *m, uint32_t pid, uint64_t start, uint64_t length,
                      unsigned loc) {
        int r;

        if (!m->engine)
                return -ENODEV;
        r = spm_engine_range_add(m->engine, pid, start, length, loc);
        if (r >= 0)
                engine_apply_hints(m, pid);
        return r;
}

int manager_remove_range(struct manager *m, uint32_t pid, uint64_t start, uint64_t length) {
        if (!m->engine)
                return -ENODEV;
        return spm_engine_range_remove(m->engine, pid, start, length);
}

int manager_hint(struct manager *m, const struct job_hint *h, uint64_t ttl_usec) {
        struct job_hint stored = *h;
        struct job *j;
        int r;

        if (ttl_usec && !ADD_SAFE(&stored.expires_usec, manager_now_realtime(), ttl_usec))
                stored.expires_usec = 0;
        r = registry_hint(&m->registry, &stored);
        if (r < 0)
                return r;
        j = registry_find_pid(&m->registry, h->pid);
        if (m->engine) {
                struct spm_hint eh = {
                        .pid = h->pid, .start = h->start, .len = h->length, .kind = h->kind,
                        .gpu = h->gpu < 0 ? 0 : (uint8_t) h->gpu, .ttl_usec = ttl_usec,
                };
                /* -ENOENT: no range there yet; the hint is applied when one appears. */
                r = spm_engine_hint(m->engine, &eh);
                if (r == -EPERM || r == -EINVAL)
                        return r;
        }
        if (j && !j->internal) {
                manager_touch_job(m, j);
                /* The renewed lease reaches disk with the next snapshot, within a second. */
                m->state_dirty = true;
                if (m->journal_fd >= 0 && m->journal_entries < JOURNAL_MAX &&
                    state_journal_append(m->journal_fd, &stored) >= 0) {
                        m->journal_entries++;
                        m->state_unsynced = true;
                } else
                        (void) manager_save_state(m);
        }
        return 0;
}

int manager_set_job_policy(struct manager *m, struct job *j, const char *name) {
        snprintf(j->policy, sizeof(j->policy), "%s", name);
        (void) engine_sync_job(m, j);
        manager_touch_job(m, j);
        return manager_save_state(m);
}

int manager_set_policy_overrides(struct manager *m, const struct policy_overrides *o) {
        struct policy_overrides old = m->registry.policy;
        struct spm_engine_config c;
        int r;

        m->registry.policy = *o;
        if (m->engine) {
                manager_engine_config(m, &c);
                r = spm_engine_set_config(m->engine, &c);
                if (r < 0) {
                        m->registry.policy = old;
                        return r;
                }
        }
        if (m->epoch_timer)
                (void) sd_event_source_set_time_relative(m->epoch_timer,
                                                         o->set & POLICY_SET_EPOCH
                                                                 ? o->epoch_usec
                                                                 : m->settings.epoch_usec);
        log_notice("Node-wide policy settings changed");
        return manager_save_state(m);
}

int manager_freeze(struct manager *m, struct job *j, bool freeze) {
        if (j) {
                j->frozen = freeze;
                (void) engine_sync_job(m, j);
                manager_touch_job(m, j);
        } else {
                m->registry.frozen = freeze;
                for (size_t i = 0; i < m->registry.n_jobs; i++)
                        (void) engine_sync_job(m, m->registry.jobs[i]);
        }
        if (j)
                log_notice("%s job %" PRIu64, freeze ? "Froze" : "Thawed", j->id);
        else
                log_notice("%s all migrations", freeze ? "Froze" : "Thawed");
        emit_message(m, freeze ? "freeze" : "thaw", j ? j->id : UINT64_MAX,
                     j ? "job" : "node");
        manager_notify_status(m);
        return manager_save_state(m);
}

int manager_drain(struct manager *m, unsigned gpu, uint64_t job_id, unsigned *ret_moves,
                  uint64_t *ret_bytes, unsigned *ret_failures) {
        struct spm_plan plan;
        uint64_t failures_before = m->counters.failures;
        int r;

        if (!m->engine)
                return -ENODEV;
        if (gpu >= m->machine.n_gpus)
                return -EXDEV;
        spm_plan_init(&plan);
        r = spm_engine_drain(m->engine, gpu, job_id, &plan);
        if (r < 0) {
                spm_plan_done(&plan);
                return r;
        }
        log_notice("Draining GPU %u%s: %zu moves, %" PRIu64 " bytes", gpu,
                   job_id ? " of one job" : "", plan.n_moves, plan.bytes_planned);
        manager_carry_out(m, &plan, SPM_MOVE_PLACE, "Drain:");
        *ret_moves = (unsigned) plan.n_moves;
        *ret_bytes = plan.bytes_planned;
        *ret_failures = (unsigned) (m->counters.failures - failures_before);
        spm_plan_done(&plan);
        return 0;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return (x > y) - (x < y);
}

/* Tells the collectors that follow given processes (damon) which pids jobs have now. */
static void manager_track(struct manager *m) {
        _cleanup_free_ uint32_t *pids = NULL;
        size_t n = 0, n_alloc = 0;
        char msg[256];

        for (size_t i = 0; i < m->n_collectors; i++)
                if (m->collectors[i].ops->track)
                        n_alloc = 1;
        if (n_alloc == 0)
                return;
        n_alloc = registry_n_pids(&m->registry);
        pids = calloc(MAX(n_alloc, (size_t) 1), sizeof(*pids));
        if (!pids)
                return;
        for (size_t i = 0; i < m->registry.n_jobs; i++)
                for (size_t k = 0; k < m->registry.jobs[i]->n_pids && n < n_alloc; k++)
                        pids[n++] = m->registry.jobs[i]->pids[k];
        qsort(pids, n, sizeof(*pids), cmp_u32);
        for (size_t i = 0; i < m->n_collectors; i++) {
                struct collector_instance *c = &m->collectors[i];
                int r;

                if (c->ended || !c->ops->track)
                        continue;
                msg[0] = '\0';
                r = c->ops->track(c->state, pids, n, msg, sizeof(msg));
                if (r < 0)
                        log_warning_errno(r, "Collector %s cannot follow %zu processes: %s",
                                          c->ops->name, n, msg[0] ? msg : "error");
        }
}

/* ---- timers ---- */

static int on_epoch(sd_event_source *s, uint64_t usec, void *userdata) {
        struct manager *m = userdata;
        struct spm_collector_sink sink = { m, sink_process, sink_range, sink_observe, sink_hint,
                                           sink_gpu_fault, sink_locate, sink_kfd_counters,
                                           sink_vram };
        char msg[256];
        int r;

        m->epoch++;
        manager_track(m);
        for (size_t i = 0; i < m->n_collectors; i++) {
                struct collector_instance *c = &m->collectors[i];
                if (c->ended)
                        continue;
                msg[0] = '\0';
                r = c->ops->collect(c->state, &sink, msg, sizeof(msg));
                if (r == -ENODATA) {
                        c->ended = true;
                        log_info("Collector %s has no more data", c->ops->name);
                } else if (r < 0) {
                        c->ended = true;
                        log_error_errno(r, "Collector %s stopped: %s", c->ops->name,
                                        msg[0] ? msg : "error");
                }
        }
        if (m->mover && m->mover_ops->tick)
                m->mover_ops->tick(m->mover);
        if (m->engine) {
                r = spm_engine_epoch(m->engine, manager_uptime_usec(m), &m->plan);
                if (r < 0)
                        log_error_errno(r, "Policy epoch %" PRIu64 " failed: %m", m->epoch);
                else {
                        manager_carry_out(m, &m->plan, SPM_MOVE_PLACE, "Moving");
                        manager_pin_held(m, &m->plan);
                }
        }
        uint64_t period = m->registry.policy.set & POLICY_SET_EPOCH ? m->registry.policy.epoch_usec
                                                                    : m->settings.epoch_usec;
        (void) sd_event_source_set_time_relative(s, period);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_housekeeping(sd_event_source *s, uint64_t usec, void *userdata) {
        struct manager *m = userdata;
        uint64_t now = manager_now_realtime();
        struct job *j;

        while ((j = registry_first_expired(&m->registry, now)))
                (void) manager_end_job(m, j->id, "expired", NULL);
        if (registry_expire_hints(&m->registry, now) > 0)
                m->state_dirty = true;
        if (m->state_dirty || m->state_unsynced)
                (void) manager_sync_state(m);
        manager_notify_status(m);
        (void) sd_event_source_set_time_relative(s, HOUSEKEEPING_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int manager_write_metrics(struct manager *m);

static int on_metrics(sd_event_source *s, uint64_t usec, void *userdata) {
        struct manager *m = userdata;

        (void) manager_write_metrics(m);
        (void) sd_event_source_set_time_relative(s, m->settings.metrics_interval_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int manager_write_metrics(struct manager *m) {
        struct metrics_snapshot snap = {
                .epochs = m->epoch,
                .migrations = m->counters.migrations,
                .failures = m->counters.failures,
                .bytes_to_gpu = m->counters.bytes_to_gpu,
                .bytes_to_ram = m->counters.bytes_to_ram,
                .observations = m->counters.observations,
                .benefit_usec = m->counters.benefit_usec,
                .frozen = m->registry.frozen,
                .has_gpu = m->has_gpu,
                .jobs = (const struct job *const *) m->registry.jobs,
                .n_jobs = m->registry.n_jobs,
        };
        struct spm_engine_stats st = {};
        int r;

        if (!m->settings.metrics_path)
                return 0;
        if (m->engine)
                spm_engine_get_stats(m->engine, &st);
        snap.regions = st.n_regions;
        snap.n_gpus = m->has_gpu ? m->machine.n_gpus : 0;
        for (unsigned g = 0; g < snap.n_gpus; g++)
                snap.gpus[g] = (struct metrics_gpu) {
                        .index = g, .capacity = m->machine.capacity[SPM_LOC_GPU(g)],
                        .used = st.used[SPM_LOC_GPU(g)], .bytes_in = m->counters.bytes_in[g],
                        .bytes_out = m->counters.bytes_out[g],
                        .kfd_seen = m->kfd[g].seen, .driver_used = m->kfd[g].driver_used,
                        .driver_total = m->kfd[g].driver_total,
                        .fill_limit = m->kfd[g].fill_limit, .faults = m->kfd[g].faults,
                        .pages_in = m->kfd[g].pages_in, .pages_out = m->kfd[g].pages_out,
                };
        r = metrics_write(m->settings.metrics_path, &snap);
        if (r < 0)
                return log_warning_errno(r, "Failed to write metrics to %s, ignoring: %m",
                                         m->settings.metrics_path);
        return 0;
}

/* ---- config ---- */

static void manager_apply_settings(struct manager *m) {
        const struct spmtierd_settings *s = &m->settings;

        log_set_max_level(s->log_level);
        m->admin_gid = AUTH_NO_GROUP;
        if (s->admin_group) {
                char *end;
                unsigned long g = strtoul(s->admin_group, &end, 10);
                struct group *gr;
                if (*end == '\0' && end != s->admin_group)
                        m->admin_gid = (int64_t) g;
                else if ((gr = getgrnam(s->admin_group)))
                        m->admin_gid = gr->gr_gid;
                else
                        log_warning("AdminGroup=%s: no such group; only root may call admin "
                                    "methods", s->admin_group);
        }
        m->registry.limits = (struct job_limits) {
                .max_jobs = s->max_jobs, .max_pids_per_job = s->max_pids_per_job,
                .max_hints_per_job = s->max_hints_per_job,
        };
        if (m->varlink)
                varlink_server_set_connections_max(m->varlink, s->max_connections,
                                                   s->max_connections_per_user);
}

static void settings_swap(struct spmtierd_settings *a, struct spmtierd_settings *b) {
        struct spmtierd_settings t = *a;
        *a = *b;
        *b = t;
}

int manager_reload(struct manager *m, struct config_error *err) {
        struct spmtierd_settings s = {};
        char **files = NULL;
        int r;

        (void) sd_notify(0, "RELOADING=1\nSTATUS=Reloading configuration");
        r = spmtierd_settings_load(m->config_path, &s, &files, err);
        if (r < 0) {
                snprintf(m->last_reload, sizeof(m->last_reload), "failed: %s:%u: %s",
                         err->file, err->line, err->message);
                log_error("Reload refused, keeping the running configuration: %s:%u: %s",
                          err->file, err->line, err->message);
                (void) sd_notifyf(0, "READY=1\nSTATUS=%s", manager_status_line(m));
                return r;
        }
        if (strcmp(s.profile, m->settings.profile) != 0 || s.gpus != m->settings.gpus)
                log_warning("[Machine] changes take effect when spmtierd restarts");

        bool backends_changed = true;
        {
                char *a = NULL, *b = NULL;
                size_t na = 0, nb = 0;
                FILE *fa = open_memstream(&a, &na), *fb = open_memstream(&b, &nb);
                if (fa && fb) {
                        /* Collectors and the mover restart only when their settings change:
                         * a reload must not rewind a replay. */
                        config_format_strv(NULL, &s.collectors, fa);
                        fprintf(fa, "|%s|%d|%s|%u", s.replay_trace ? s.replay_trace : "",
                                s.replay_loop, s.mover, s.sim_fail_every);
                        config_format_strv(NULL, &m->settings.collectors, fb);
                        fprintf(fb, "|%s|%d|%s|%u",
                                m->settings.replay_trace ? m->settings.replay_trace : "",
                                m->settings.replay_loop, m->settings.mover,
                                m->settings.sim_fail_every);
                }
                if (fa)
                        fclose(fa);
                if (fb)
                        fclose(fb);
                backends_changed = !a || !b || strcmp(a, b) != 0;
                free(a);
                free(b);
        }

        settings_swap(&m->settings, &s);
        spmtierd_settings_done(&s);
        strv_free(m->config_files);
        m->config_files = files;
        manager_apply_settings(m);
        if (m->engine) {
                struct spm_engine_config c;
                manager_engine_config(m, &c);
                r = spm_engine_set_config(m->engine, &c);
                if (r < 0)
                        log_error_errno(r, "Engine refused the new policy settings, keeping "
                                        "the old ones: %m");
        }
        if (backends_changed) {
                manager_free_backends(m);
                r = manager_setup_backends(m);
                if (r < 0)
                        log_error_errno(r, "Collectors or mover did not restart: %m");
        }
        if (m->metrics_timer)
                (void) sd_event_source_set_enabled(m->metrics_timer, m->settings.metrics_path
                                                                             ? SD_EVENT_ONESHOT
                                                                             : SD_EVENT_OFF);
        snprintf(m->last_reload, sizeof(m->last_reload), "ok");
        size_t n_files = 0;
        while (files && files[n_files])
                n_files++;
        log_info("Configuration reloaded from %zu file(s)", n_files);
        emit_message(m, "reload", UINT64_MAX, "configuration reloaded");
        (void) sd_notifyf(0, "READY=1\nSTATUS=%s", manager_status_line(m));
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct config_error err = {};

        (void) manager_reload(userdata, &err);
        return 0;
}

static void on_varlink_log(void *userdata, int level, const char *msg) {
        log_full_errno(level, 0, "varlink: %s", msg);
}

/* ---- lifecycle ---- */

static int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

int manager_new(const struct manager_args *args, struct manager **ret) {
        _cleanup_(manager_freep) struct manager *m = NULL;
        struct config_error err = {};
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_error_errno(ENOMEM, "Out of memory");
        m->journal_fd = -EBADF;
        m->start_usec = clock_usec(CLOCK_MONOTONIC);
        spm_plan_init(&m->plan);
        snprintf(m->last_reload, sizeof(m->last_reload), "none since start");
        if ((args->config_path && !(m->config_path = strdup(args->config_path))) ||
            !(m->state_dir = strdup(args->state_dir)) ||
            !(m->socket_path = strdup(args->socket_path)))
                return log_error_errno(ENOMEM, "Out of memory");

        r = spmtierd_settings_load(m->config_path, &m->settings, &m->config_files, &err);
        if (r < 0)
                return log_error_errno(r, "Bad configuration: %s:%u: %s", err.file, err.line,
                                       err.message);
        registry_init(&m->registry, &(struct job_limits) { 1, 1, 1 });
        m->finished = json_object_new_array();
        if (!m->finished)
                return log_error_errno(ENOMEM, "Out of memory");
        manager_apply_settings(m);

        r = manager_setup_machine(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the machine model: %m");
        if (m->has_gpu && m->machine.kind == SPM_MEM_NUMA)
                for (unsigned l = 0; l < m->machine.n_locs; l++)
                        log_info("Machine %s: location %u %s, %" PRIu64 " MiB, CPU %.1f GB/s "
                                 "%.0f ns", m->machine.name, l, m->machine.loc_name[l],
                                 m->machine.capacity[l] >> 20, m->machine.bw_gbps[SPM_ACC_CPU][l],
                                 m->machine.lat_ns[SPM_ACC_CPU][l]);
        else if (m->has_gpu)
                log_info("Machine %s: %u GPUs", m->machine.name, m->machine.n_gpus);
        else
                log_notice("No GPU: %s. Serving jobs and hints; no migrations will be planned.",
                           m->no_gpu_reason);
        r = manager_setup_engine(m);
        if (r < 0)
                return r;

        r = mkdir_parents(m->state_dir);
        if (r >= 0 && mkdir(m->state_dir, 0700) < 0 && errno != EEXIST)
                r = -errno;
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m",
                                       m->state_dir);
        r = manager_load_state(m);
        if (r < 0)
                return r;
        r = manager_setup_backends(m);
        if (r < 0)
                return r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        *ret = TAKE_PTR(m);
        return 0;
}

struct manager *manager_free(struct manager *m) {
        if (!m)
                return NULL;
        m->stopping = true;
        while (m->n_monitors > 0)
                monitor_drop(m, m->n_monitors - 1);
        free(m->monitors);
        agents_free_all(m);
        m->varlink = varlink_server_free(m->varlink);
        sd_event_source_unref(m->epoch_timer);
        sd_event_source_unref(m->housekeeping_timer);
        sd_event_source_unref(m->metrics_timer);
        manager_free_backends(m);
        spm_plan_done(&m->plan);
        spm_engine_free(m->engine);
        registry_done(&m->registry);
        json_object_put(m->finished);
        spmtierd_settings_done(&m->settings);
        strv_free(m->config_files);
        free(m->config_path);
        free(m->state_dir);
        free(m->socket_path);
        sd_event_unref(m->event);
        safe_close(m->journal_fd);
        free(m);
        return NULL;
}

static int add_timer(struct manager *m, sd_event_source **ret, uint64_t usec,
                     sd_event_time_handler_t cb, const char *name, bool enabled) {
        int r = sd_event_add_time_relative(m->event, ret, CLOCK_MONOTONIC, usec, 1000, cb, m);

        if (r < 0)
                return log_error_errno(r, "Failed to add the %s timer: %m", name);
        (void) sd_event_source_set_description(*ret, name);
        (void) sd_event_source_set_exit_on_failure(*ret, true);
        if (!enabled)
                (void) sd_event_source_set_enabled(*ret, SD_EVENT_OFF);
        return 0;
}

int manager_start(struct manager *m) {
        static const struct varlink_server_info info = {
                .vendor = "spmtier", .product = "spmtierd", .version = "0.1.0",
                .url = "https://github.com/spmtier/spmtier",
        };
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m)) < 0)
                return log_error_errno(r, "Failed to add signal handlers: %m");
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog, ignoring: %m");

        r = varlink_server_new(m->event, &info, &m->varlink);
        if (r < 0)
                return log_error_errno(r, "Failed to create the varlink server: %m");
        varlink_server_set_log(m->varlink, on_varlink_log, m);
        varlink_server_set_connections_max(m->varlink, m->settings.max_connections,
                                           m->settings.max_connections_per_user);
        r = varlink_server_add_interface(m->varlink, &methods_interface, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", SPMTIERD_INTERFACE);
        r = varlink_server_add_interface(m->varlink, &agents_interface, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", agents_interface.name);
        r = varlink_server_listen_activation(m->varlink);
        if (r < 0)
                return log_error_errno(r, "Failed to adopt the activated socket: %m");
        if (r > 0)
                log_info("Serving %s on the socket passed by the service manager",
                         SPMTIERD_INTERFACE);
        else {
                r = mkdir_parents(m->socket_path);
                if (r < 0)
                        return log_error_errno(r, "Failed to create the directory of %s: %m",
                                               m->socket_path);
                /* Anyone may connect; SO_PEERCRED decides what they may do. */
                r = varlink_server_listen_path(m->varlink, m->socket_path, 0666);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on %s: %m", m->socket_path);
                log_info("Serving %s on %s", SPMTIERD_INTERFACE, m->socket_path);
        }

        if (m->engine &&
            (r = add_timer(m, &m->epoch_timer, m->settings.epoch_usec, on_epoch, "epoch", true)) < 0)
                return r;
        if (m->engine)
                (void) sd_event_source_set_enabled(m->epoch_timer, SD_EVENT_ONESHOT);
        if ((r = add_timer(m, &m->housekeeping_timer, HOUSEKEEPING_USEC, on_housekeeping,
                           "housekeeping", true)) < 0)
                return r;
        (void) sd_event_source_set_enabled(m->housekeeping_timer, SD_EVENT_ONESHOT);
        if ((r = add_timer(m, &m->metrics_timer, 0, on_metrics, "metrics",
                           m->settings.metrics_path != NULL)) < 0)
                return r;
        if (m->settings.metrics_path)
                (void) sd_event_source_set_enabled(m->metrics_timer, SD_EVENT_ONESHOT);

        (void) sd_notifyf(0, "READY=1\nSTATUS=%s", manager_status_line(m));
        log_info("spmtierd ready: %s", m->status);
        return 0;
}

int manager_run(struct manager *m) {
        int r = sd_event_loop(m->event);

        (void) sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
        log_info("Shutting down");
        (void) manager_sync_state(m);
        (void) manager_write_metrics(m);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
