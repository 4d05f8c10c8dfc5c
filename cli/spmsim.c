/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spmsim: replays a trace on a machine model under placement policies (spmtier, the baselines,
 * the oracles) and reports modelled time, gap closed to the offline optimum, fast-hit ratio,
 * migrations, ping-pongs and faults.
 *
 * Exit status: 0 fine, 1 bad usage or input, 2 a consistency failure (a policy beat the
 * optimum or a bound, or the optimum's replay disagreed with it: a bug in one of them).
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "spmtier/json-util.h"
#include "spmtier/macro.h"
#include "spmtier/machine.h"
#include "spmtier/sim.h"

#define MAX_POLICIES 16
#define NO_HEADROOM 0.01   /* default within 1 % of the oracle */

static const char *arg_trace;
static const char *arg_profile = "mi250x-gcd";
static double arg_vram_fraction;
static const char *arg_policy = "all";
static bool arg_json;
static const char *arg_svg;
static long arg_explain = -1;        /* -1 off; else max lines */
static bool arg_print_profile;

/* All policies spmsim knows, in table order: ours, then the registry's baselines and oracles. */
static const struct spm_sim_policy *all_policies[MAX_POLICIES];
static size_t n_all_policies;

static void register_policies(void) {
        all_policies[n_all_policies++] = &spm_sim_policy_spmtier;
        for (const struct spm_sim_policy *const *p = spm_sim_baselines; *p; p++)
                if (n_all_policies < MAX_POLICIES)
                        all_policies[n_all_policies++] = *p;
}

static void help(void) {
        printf("spmsim --trace FILE [OPTIONS]\n\n"
               "Replays a trace on a machine model under placement policies and compares them.\n\n"
               "  --trace FILE           trace (spmtier-trace 1, plain or gzip'd)\n"
               "  --profile NAME|FILE    mi250x-gcd (default), mi300a-node, or a profile file\n"
               "  --set KEY=VALUE        override one profile number (repeatable)\n"
               "  --vram-fraction F      fast capacity = F x the footprint its users touch\n"
               "                         (0 < F <= 1; default: the machine's capacity)\n"
               "  --policy NAME|all      one policy or all (default); the default and the\n"
               "                         oracle always run (gap closed needs them)\n"
               "  --json                 one JSON object instead of the table\n"
               "  --svg FILE             placement over time and the policy comparison\n"
               "  --explain[=N]          print the spmtier engine's moves with reasons (at\n"
               "                         most N lines, default 40; 0 = all)\n"
               "  --print-profile        print the machine profile in effect and exit\n"
               "  --list-policies        list policies and exit\n");
}

static void explain_line(void *userdata, const char *line) {
        long *left = userdata;

        if (*left == 0)
                return;
        if (*left == 1) {
                printf("  ... (more moves not shown; --explain=0 shows all)\n");
                *left = 0;
                return;
        }
        if (*left > 0)
                (*left)--;
        printf("  %s\n", line);
}

struct row {
        const struct spm_sim_policy *policy;
        struct spm_sim_result res;
        bool shown;
};

static double gap_closed(double t_def, double t_pol, double t_opt) {
        return (t_def - t_pol) / (t_def - t_opt);
}

static bool no_headroom(double t_def, double t_opt) {
        return t_def <= (1 + NO_HEADROOM) * t_opt;
}

static void fmt_bytes(char *buf, size_t size, uint64_t b) {
        if (b >= (1ULL << 30))
                snprintf(buf, size, "%.1fG", (double) b / (1ULL << 30));
        else
                snprintf(buf, size, "%" PRIu64 "M", b >> 20);
}

/* ---- SVG ---- */

static void svg_color(unsigned loc, unsigned backing, double heat, char *buf, size_t size) {
        /* Hue by location (RAM blue, GPUs warm), lightness by heat. */
        static const int base[][3] = {
                { 214, 96, 77 }, { 244, 165, 54 }, { 190, 80, 160 }, { 120, 170, 60 },
                { 230, 120, 150 }, { 160, 120, 80 }, { 90, 180, 170 }, { 200, 200, 60 },
        };
        int rgb[3];

        if (loc == SPM_SIM_UNPOPULATED) {
                snprintf(buf, size, "#f4f4f4");
                return;
        }
        if (loc == backing) {
                rgb[0] = 49, rgb[1] = 104, rgb[2] = 170;
        } else {
                unsigned k = (loc - (loc > backing)) % ELEMENTSOF(base);
                rgb[0] = base[k][0], rgb[1] = base[k][1], rgb[2] = base[k][2];
        }
        double f = 0.25 + 0.75 * CLAMP(heat, 0.0, 1.0);   /* cold cells fade towards white */
        snprintf(buf, size, "#%02x%02x%02x", (int) (255 - (255 - rgb[0]) * f),
                 (int) (255 - (255 - rgb[1]) * f), (int) (255 - (255 - rgb[2]) * f));
}

static int write_svg(const char *path, const struct spm_machine *m, const struct spm_simtrace *t,
                     const struct spm_sim_layout *y, struct row *rows, size_t n_rows,
                     const struct row **panels, size_t n_panels, double t_def) {
        _cleanup_fclose_ FILE *f = fopen(path, "we");
        if (!f)
                return -errno;

        uint32_t R = t->n_regions, E = t->n_epochs;
        uint32_t rows_px = MIN(R, 160u), cols = MIN(E, 240u);
        double cw = 600.0 / cols, ch = 320.0 / rows_px;
        double panel_w = 640, width = 40 + panel_w * n_panels, height = 420 + 24.0 * n_rows + 60;

        /* Heat per cell: ops summed over the bin, log-scaled to the hottest cell. */
        _cleanup_free_ double *heat = calloc((size_t) rows_px * cols, sizeof(double));
        if (!heat)
                return -ENOMEM;
        for (uint32_t e = 0; e < E; e++)
                for (size_t i = t->epoch_start[e]; i < t->epoch_start[e + 1]; i++)
                        heat[(size_t) ((uint64_t) t->acc[i].region * rows_px / R) * cols +
                             (uint64_t) e * cols / E] += t->acc[i].ops;
        double hmax = 0;
        for (size_t i = 0; i < (size_t) rows_px * cols; i++)
                hmax = MAX(hmax, log1p(heat[i]));

        fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", width, height);
        fprintf(f, "<text x=\"20\" y=\"22\" font-size=\"15\">%s on %s, %u regions x %u epochs "
                "(colour: where a region is, blue = %s; darker = hotter; grey = untouched)</text>\n",
                arg_trace, m->name, R, E, m->loc_name[y->backing]);
        for (size_t p = 0; p < n_panels; p++) {
                const struct spm_sim_result *r = &panels[p]->res;
                double x0 = 20 + p * panel_w, y0 = 60;

                fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"13\">%s: %.1f ms</text>\n",
                        x0, y0 - 8, r->policy, r->time_usec / 1000);
                for (uint32_t br = 0; br < rows_px; br++) {
                        uint32_t region = (uint32_t) ((uint64_t) br * R / rows_px);
                        uint32_t run_start = 0;
                        char run_col[8] = "", col[8];

                        for (uint32_t bc = 0; bc <= cols; bc++) {
                                if (bc < cols) {
                                        uint32_t e = (uint32_t) ((uint64_t) bc * E / cols);
                                        double h = hmax > 0 ? log1p(heat[(size_t) br * cols + bc]) / hmax : 0;
                                        svg_color(r->placement[(size_t) region * E + e], y->backing,
                                                  h, col, sizeof(col));
                                }
                                if (bc == cols || strcmp(col, run_col) != 0) {
                                        if (bc > 0)
                                                fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                                                        "height=\"%.2f\" fill=\"%s\"/>\n",
                                                        x0 + run_start * cw, y0 + br * ch,
                                                        (bc - run_start) * cw, ch, run_col);
                                        run_start = bc;
                                        memcpy(run_col, col, sizeof(col));
                                }
                        }
                }
                fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" fill=\"#555\">epochs &#8594;  (regions "
                        "top to bottom in address order)</text>\n", x0, y0 + 336);
        }
        /* Per-policy comparison: modelled time as bars, relative to the default. */
        double y0 = 440, tmax = 0;
        for (size_t i = 0; i < n_rows; i++)
                if (rows[i].shown)
                        tmax = MAX(tmax, rows[i].res.time_usec);
        fprintf(f, "<text x=\"20\" y=\"%.0f\" font-size=\"14\">Modelled time (additive model; "
                "shorter is better; line = default)</text>\n", y0 - 12);
        size_t k = 0;
        for (size_t i = 0; i < n_rows; i++) {
                if (!rows[i].shown)
                        continue;
                double w = tmax > 0 ? 500 * rows[i].res.time_usec / tmax : 0;
                double yy = y0 + 24.0 * k++;
                fprintf(f, "<text x=\"20\" y=\"%.0f\">%s</text>\n<rect x=\"130\" y=\"%.0f\" "
                        "width=\"%.1f\" height=\"16\" fill=\"%s\"/>\n<text x=\"%.1f\" y=\"%.0f\">"
                        "%.1f ms</text>\n", yy + 13, rows[i].res.policy, yy, w,
                        strcmp(rows[i].res.policy, "spmtier") == 0 ? "#d6604d" : "#7a9cc6",
                        136 + w, yy + 13, rows[i].res.time_usec / 1000);
        }
        if (tmax > 0)
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"black\" "
                        "stroke-dasharray=\"4,3\"/>\n", 130 + 500 * t_def / tmax, y0 - 4,
                        130 + 500 * t_def / tmax, y0 + 24.0 * k);
        fprintf(f, "</svg>\n");
        return ferror(f) ? -EIO : 0;
}

/* ---- main ---- */

static int parse_args(int argc, char **argv, struct spm_machine *m) {
        enum { OPT_SET = 256, OPT_SVG, OPT_EXPLAIN, OPT_PRINT, OPT_LIST, OPT_FRACTION };
        static const struct option opts[] = {
                { "trace", required_argument, NULL, 't' },
                { "profile", required_argument, NULL, 'p' },
                { "set", required_argument, NULL, OPT_SET },
                { "vram-fraction", required_argument, NULL, OPT_FRACTION },
                { "policy", required_argument, NULL, 'P' },
                { "json", no_argument, NULL, 'j' },
                { "svg", required_argument, NULL, OPT_SVG },
                { "explain", optional_argument, NULL, OPT_EXPLAIN },
                { "print-profile", no_argument, NULL, OPT_PRINT },
                { "list-policies", no_argument, NULL, OPT_LIST },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *sets[64];
        size_t n_sets = 0;
        int c;

        while ((c = getopt_long(argc, argv, "t:p:P:jh", opts, NULL)) >= 0)
                switch (c) {
                case 't':
                        arg_trace = optarg;
                        break;
                case 'p':
                        arg_profile = optarg;
                        break;
                case OPT_SET:
                        if (n_sets == ELEMENTSOF(sets)) {
                                fprintf(stderr, "spmsim: too many --set\n");
                                return -EINVAL;
                        }
                        sets[n_sets++] = optarg;
                        break;
                case OPT_FRACTION: {
                        char *end;
                        arg_vram_fraction = strtod(optarg, &end);
                        if (*end || !(arg_vram_fraction > 0 && arg_vram_fraction <= 1)) {
                                fprintf(stderr, "spmsim: --vram-fraction: expected a number in (0, 1], got '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                }
                case 'P':
                        arg_policy = optarg;
                        break;
                case 'j':
                        arg_json = true;
                        break;
                case OPT_SVG:
                        arg_svg = optarg;
                        break;
                case OPT_EXPLAIN: {
                        char *end;
                        arg_explain = optarg ? strtol(optarg, &end, 10) : 40;
                        if ((optarg && *end) || arg_explain < 0) {
                                fprintf(stderr, "spmsim: --explain=N: N is a line count\n");
                                return -EINVAL;
                        }
                        if (arg_explain == 0)
                                arg_explain = -2;  /* unlimited */
                        break;
                }
                case OPT_PRINT:
                        arg_print_profile = true;
                        break;
                case OPT_LIST:
                        for (size_t i = 0; i < n_all_policies; i++)
                                printf("%-12s %s\n", all_policies[i]->name, all_policies[i]->description);
                        exit(0);
                case 'h':
                        help();
                        exit(0);
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "spmsim: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }

        char err[512];
        if (spm_machine_profile(arg_profile, m) < 0) {
                if (!strchr(arg_profile, '/') && !strstr(arg_profile, ".profile")) {
                        fprintf(stderr, "spmsim: unknown profile '%s' (built in: mi250x-gcd, "
                                "mi300a-node; or a profile file)\n", arg_profile);
                        return -EINVAL;
                }
                (void) spm_machine_profile("mi250x-gcd", m);
                if (spm_machine_load(arg_profile, m, err, sizeof(err)) < 0) {
                        fprintf(stderr, "spmsim: %s\n", err);
                        return -EINVAL;
                }
        }
        for (size_t i = 0; i < n_sets; i++) {
                const char *why;
                if (spm_machine_set_assignment(m, sets[i], &why) < 0) {
                        fprintf(stderr, "spmsim: --set %s: %s\n", sets[i], why);
                        return -EINVAL;
                }
        }
        if (spm_machine_validate(m) < 0) {
                fprintf(stderr, "spmsim: the profile is inconsistent after --set (a bandwidth or "
                        "capacity is zero, or an index is out of range)\n");
                return -EINVAL;
        }
        if (arg_print_profile)
                return 0;
        if (!arg_trace) {
                fprintf(stderr, "spmsim: --trace FILE is required (see --help)\n");
                return -EINVAL;
        }
        if (strcmp(arg_policy, "all") != 0) {
                bool found = false;
                for (size_t i = 0; i < n_all_policies; i++)
                        found |= strcmp(all_policies[i]->name, arg_policy) == 0;
                if (!found) {
                        fprintf(stderr, "spmsim: unknown policy '%s' (see --list-policies)\n", arg_policy);
                        return -EINVAL;
                }
        }
        return 0;
}

int main(int argc, char **argv) {
        struct spm_machine m;
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = NULL;
        struct spm_sim_optimum opt = {};
        struct row rows[MAX_POLICIES] = {};
        size_t n_rows = 0;
        char err[1024];
        int r, status = 0;

        register_policies();
        if (parse_args(argc, argv, &m) < 0)
                return 1;
        if (arg_print_profile) {
                spm_machine_dump(stdout, &m);
                return 0;
        }
        r = spm_simtrace_load(arg_trace, m.granule, &t, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "spmsim: %s\n", err);
                return 1;
        }
        for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++)
                if ((t->accessor_mask & (1u << a)) && a >= m.n_accessors) {
                        fprintf(stderr, "spmsim: %s: accessor gpu%u, but profile %s has %u GPUs\n",
                                arg_trace, a - 1, m.name, m.n_gpus);
                        return 1;
                }

        struct spm_sim_config c;
        spm_sim_config_defaults(&c);
        c.vram_fraction = arg_vram_fraction;
        struct spm_sim_layout y;
        spm_sim_layout(&m, t, &c, &y);

        r = spm_sim_optimum(&m, t, &c, &opt);
        if (r < 0) {
                fprintf(stderr, "spmsim: computing the optimum: %s\n", strerror(-r));
                return 1;
        }
        c.optimum = &opt;

        long explain_left = arg_explain == -2 ? -1 : arg_explain;
        bool want_all = strcmp(arg_policy, "all") == 0;
        for (size_t i = 0; i < n_all_policies; i++) {
                const struct spm_sim_policy *p = all_policies[i];
                bool shown = want_all || strcmp(p->name, arg_policy) == 0 ||
                             p == &spm_sim_policy_default || p == &spm_sim_policy_exact;
                struct spm_sim_config pc = c;

                if (!shown || (p == &spm_sim_policy_exact && !opt.exact))
                        continue;
                pc.record_placement = arg_svg != NULL;
                if (p == &spm_sim_policy_spmtier && arg_explain != -1 && !arg_json) {
                        pc.explain = explain_line;
                        pc.explain_userdata = &explain_left;
                        printf("What the spmtier engine moved, and why (epoch, range, from -> to, "
                               "reason, expected benefit over its horizon, copy cost):\n");
                }
                r = spm_sim_run(&m, t, &pc, p, &rows[n_rows].res);
                if (r < 0) {
                        fprintf(stderr, "spmsim: policy %s: %s\n", p->name, strerror(-r));
                        return 1;
                }
                if (pc.explain)
                        printf("\n");
                rows[n_rows].policy = p;
                rows[n_rows].shown = true;
                n_rows++;
        }

        double t_opt = opt.time_usec, t_def = 0;
        for (size_t i = 0; i < n_rows; i++)
                if (rows[i].policy == &spm_sim_policy_default)
                        t_def = rows[i].res.time_usec;
        const char *oracle_name = opt.exact ? "oracle" : "oracle-bound";
        bool headroom = !no_headroom(t_def, t_opt);

        /* Consistency: nothing beats the optimum; the optimum's replay costs what it said. */
        double eps = 1e-6 * t_opt + 1e-3;
        for (size_t i = 0; i < n_rows; i++) {
                const struct spm_sim_result *res = &rows[i].res;
                if (res->time_usec < t_opt - eps) {
                        fprintf(stderr, "spmsim: BUG: policy %s (%.6f ms) beats the %s (%.6f ms, "
                                "%s): one of them is wrong\n", res->policy, res->time_usec / 1000,
                                opt.exact ? "exact optimum" : "lower bound", t_opt / 1000, opt.method);
                        status = 2;
                }
                if (rows[i].policy == &spm_sim_policy_exact && fabs(res->time_usec - t_opt) > eps) {
                        fprintf(stderr, "spmsim: BUG: replaying the optimum costs %.6f ms, the "
                                "solver said %.6f ms\n", res->time_usec / 1000, t_opt / 1000);
                        status = 2;
                }
        }

        if (arg_json) {
                _cleanup_json_ struct json_object *o = json_object_new_object();
                struct json_object *pols = json_object_new_object();

                json_object_object_add(o, "trace", json_object_new_string(arg_trace));
                json_object_object_add(o, "profile", json_object_new_string(m.name));
                json_object_object_add(o, "vram_fraction", json_object_new_double(arg_vram_fraction));
                json_object_object_add(o, "policies", pols);
                for (size_t i = 0; i < n_rows; i++) {
                        const struct spm_sim_result *res = &rows[i].res;
                        struct json_object *p = json_object_new_object();

                        json_object_object_add(p, "time_s", json_object_new_double(res->time_usec / 1e6));
                        json_object_object_add(p, "gap_closed", headroom
                                ? json_object_new_double(gap_closed(t_def, res->time_usec, t_opt)) : NULL);
                        json_object_object_add(p, "migrated_bytes",
                                json_object_new_int64((int64_t) (res->bytes_to_fast + res->bytes_to_slow)));
                        json_object_object_add(p, "pingpongs", json_object_new_int64((int64_t) res->pingpongs));
                        json_object_object_add(p, "faults", json_object_new_int64((int64_t) res->faults));
                        json_object_object_add(p, "speedup", json_object_new_double(t_def / res->time_usec));
                        json_object_object_add(p, "roofline_s", json_object_new_double(res->roofline_usec / 1e6));
                        json_object_object_add(p, "fast_hit_ratio", json_object_new_double(spm_sim_result_fast_hit(res)));
                        json_object_object_add(p, "bytes_to_fast", json_object_new_int64((int64_t) res->bytes_to_fast));
                        json_object_object_add(p, "bytes_to_slow", json_object_new_int64((int64_t) res->bytes_to_slow));
                        json_object_object_add(p, "migrations", json_object_new_int64((int64_t) res->migrations));
                        json_object_object_add(pols, res->policy, p);
                }
                if (!opt.exact) {
                        struct json_object *p = json_object_new_object();
                        json_object_object_add(p, "time_s", json_object_new_double(t_opt / 1e6));
                        json_object_object_add(p, "gap_closed", headroom ? json_object_new_double(1.0) : NULL);
                        json_object_object_add(p, "migrated_bytes", json_object_new_int64((int64_t) opt.moved_bytes));
                        json_object_object_add(p, "pingpongs", json_object_new_int64(0));
                        json_object_object_add(p, "faults", json_object_new_int64(0));
                        json_object_object_add(pols, "oracle-bound", p);
                }
                json_object_object_add(o, "oracle", json_object_new_string(oracle_name));
                json_object_object_add(o, "oracle_method", json_object_new_string(opt.method));
                json_object_object_add(o, "no_headroom", json_object_new_boolean(!headroom));
                json_object_object_add(o, "consistent", json_object_new_boolean(status == 0));
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
        } else {
                char fp[16];
                fmt_bytes(fp, sizeof(fp), spm_simtrace_footprint(t, UINT32_MAX));
                printf("%s: %" PRIu64 " rows, %u regions (%s), %u epochs; profile %s; fast capacity",
                       arg_trace, t->rows, t->n_regions, fp, t->n_epochs, m.name);
                for (unsigned l = 0; l < m.n_locs; l++)
                        if (y.fast[l]) {
                                fmt_bytes(fp, sizeof(fp), y.cap[l] * t->granule);
                                printf(" %s=%s", m.loc_name[l], fp);
                        }
                printf("\n%s: %.3f ms (%s%s)%s\n\n", oracle_name, t_opt / 1000, opt.method,
                       opt.exact ? ", exact" : ", a lower bound: several fast locations pooled",
                       headroom ? "" : "; NO HEADROOM: the default is within 1 % of it");
                printf("%-12s %11s %8s %7s %8s %8s %8s %7s %6s %7s %11s\n", "policy", "time(ms)",
                       "speedup", "gap", "fast-hit", "to-fast", "to-slow", "migr", "pingp",
                       "faults", "roofline(ms)");
                for (size_t i = 0; i < n_rows; i++) {
                        const struct spm_sim_result *res = &rows[i].res;
                        char gap[16], tf[16], ts[16];

                        if (headroom)
                                snprintf(gap, sizeof(gap), "%.3f", gap_closed(t_def, res->time_usec, t_opt));
                        else
                                snprintf(gap, sizeof(gap), "%s",
                                         res->time_usec <= (1 + NO_HEADROOM) * t_def ? "n/h ok" : "n/h SLOW");
                        fmt_bytes(tf, sizeof(tf), res->bytes_to_fast);
                        fmt_bytes(ts, sizeof(ts), res->bytes_to_slow);
                        printf("%-12s %11.3f %7.3fx %7s %8.3f %8s %8s %7" PRIu64 " %6" PRIu64 " %7"
                               PRIu64 " %11.3f\n", res->policy, res->time_usec / 1000,
                               t_def / res->time_usec, gap, spm_sim_result_fast_hit(res), tf, ts,
                               res->migrations, res->pingpongs, res->faults, res->roofline_usec / 1000);
                }
                if (!opt.exact)
                        printf("%-12s %11.3f %7.3fx %7s\n", "oracle-bound", t_opt / 1000, t_def / t_opt,
                               headroom ? "1.000" : "n/h");
                printf("\ngap = (T_default - T) / (T_default - T_%s); fast-hit = accesses served "
                       "from the accessor's own memory; to-fast/to-slow = bytes migrated each way\n",
                       oracle_name);
        }

        if (arg_svg) {
                const struct row *panels[3];
                size_t n_panels = 0;
                const char *want[] = { "default", "spmtier", "oracle" };
                for (size_t w = 0; w < ELEMENTSOF(want); w++)
                        for (size_t i = 0; i < n_rows; i++)
                                if (strcmp(rows[i].res.policy, want[w]) == 0)
                                        panels[n_panels++] = &rows[i];
                if (n_panels == 0 && n_rows > 0)
                        panels[n_panels++] = &rows[0];
                r = write_svg(arg_svg, &m, t, &y, rows, n_rows, panels, n_panels, t_def);
                if (r < 0) {
                        fprintf(stderr, "spmsim: %s: %s\n", arg_svg, strerror(-r));
                        status = status ? status : 1;
                }
        }
        for (size_t i = 0; i < n_rows; i++)
                spm_sim_result_done(&rows[i].res);
        spm_sim_optimum_done(&opt);
        return status;
}
