/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Min-cost flow on a DAG with integer capacities and (possibly negative) integer costs:
 * successive shortest paths with node potentials (primal-dual). Each phase runs Dijkstra on
 * reduced costs, then pushes a blocking flow along all shortest paths at once, so the number
 * of phases is the number of distinct shortest-path lengths, not the flow value.
 *
 * Arcs must go from a lower to a higher node id (the DAG's topological order); that lets the
 * initial potentials come from one pass even with negative costs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spm_mcf;

/* A graph with n nodes (0..n-1). Returns 0, -EINVAL, -ENOMEM. */
int spm_mcf_new(uint32_t n_nodes, struct spm_mcf **ret);
struct spm_mcf *spm_mcf_free(struct spm_mcf *g);
static inline void spm_mcf_freep(struct spm_mcf **g) {
        if (*g)
                *g = spm_mcf_free(*g);
}

/* Adds an arc from -> to (from < to) with capacity cap >= 0 and cost per unit. Returns the
 * arc's id (>= 0), -EINVAL or -ENOMEM. */
int64_t spm_mcf_add_arc(struct spm_mcf *g, uint32_t from, uint32_t to, int64_t cap, int64_t cost);

/* Sends up to max_flow units from s to t at minimum cost. With only_negative, stops as soon
 * as the cheapest remaining path costs >= 0 (the min-cost flow of any value <= max_flow).
 * Returns 0 and the flow and its cost, -EINVAL (bad nodes, called twice), -ENOMEM. */
int spm_mcf_solve(struct spm_mcf *g, uint32_t s, uint32_t t, int64_t max_flow,
                  bool only_negative, int64_t *ret_flow, int64_t *ret_cost);

/* Flow on an arc after solving. */
int64_t spm_mcf_flow(const struct spm_mcf *g, int64_t arc);

/* Phases (Dijkstra runs) the last solve took. */
uint64_t spm_mcf_phases(const struct spm_mcf *g);
