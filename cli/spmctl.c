/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * spmctl: the admin CLI of spmtierd. It speaks only the public varlink interface
 * io.spmtier.daemon (daemon/io.spmtier.daemon.varlink) through the blocking varlink client,
 * and shares no code with the daemon (STYLE.md R17): every verb is one row of verbs[], turns
 * its arguments into call parameters, and prints the reply as a table (default) or as the
 * reply's JSON (--json).
 *
 * Exit codes (documented in spmctl(8)):
 *   0  success
 *   1  the daemon answered with an error (no such job, bad config on reload, ...)
 *   2  usage error (bad option, argument, size or duration)
 *   3  spmtierd is not running, or the connection failed or broke
 *   4  permission denied (by the daemon, or on the socket itself)
 *   5  the daemon did not answer within --timeout
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "spmtier/json-util.h"
#include "spmtier/macro.h"
#include "spmctl-util.h"
#include "varlink.h"

#define IFACE "io.spmtier.daemon"
#define DEFAULT_SOCKET "/run/spmtierd/io.spmtier.daemon"

enum {
        EXIT_OK = 0,
        EXIT_DAEMON_ERROR = 1,
        EXIT_USAGE = 2,
        EXIT_NOT_RUNNING = 3,
        EXIT_DENIED = 4,
        EXIT_TIMEOUT = 5,
};

/* Verb-specific options; verbs[] lists which each verb takes, anything else is a usage
 * error so that a misplaced option is never silently ignored. */
enum {
        OPT_UID = 1U << 0,
        OPT_GPUS = 1U << 1,
        OPT_QUOTA = 1U << 2,
        OPT_POLICY = 1U << 3,
        OPT_TTL = 1U << 4,
        OPT_PID = 1U << 5,
        OPT_JOB = 1U << 6,
        OPT_GPU = 1U << 7,
        OPT_COUNT = 1U << 8,
};

struct context {
        const char *socket;
        bool json;
        uint64_t timeout_usec;
        unsigned opts_given; /* OPT_* seen on the command line */
        /* The call's parameters: verb options land here under their IDL names (they mean
         * the same in every method that takes them); verbs add their positional args. */
        struct json_object *params;
        int64_t job;    /* --job, also for messages */
        uint64_t count; /* --count (monitor) */

        struct varlink_client *client;
};

/* Parses a GPU list "0,1,3" into a JSON array. */
static int parse_gpus(const char *s, struct json_object **ret) {
        _cleanup_json_ struct json_object *a = json_object_new_array();
        _cleanup_free_ char *copy = strdup(s);
        char *saveptr = NULL;

        if (!a || !copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, ",", &saveptr); w; w = strtok_r(NULL, ",", &saveptr)) {
                uint64_t g;
                if (parse_uint(w, INT32_MAX, &g) < 0)
                        return -EINVAL;
                if (json_object_array_add(a, json_object_new_int64((int64_t) g)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

/* ---- output helpers ---------------------------------------------------------------------- */

static int64_t now_realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct json_object *j_get(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        if (!o || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

static bool j_is_null(struct json_object *o, const char *key) {
        return !j_get(o, key);
}

static int64_t j_int(struct json_object *o, const char *key) {
        return json_object_get_int64(j_get(o, key));
}

static double j_double(struct json_object *o, const char *key) {
        return json_object_get_double(j_get(o, key));
}

static bool j_bool(struct json_object *o, const char *key) {
        return json_object_get_boolean(j_get(o, key));
}

static const char *j_str(struct json_object *o, const char *key) {
        struct json_object *v = j_get(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static const char *j_text(struct json_object *o) {
        return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* "0,1" from a JSON int array. */
static const char *join_ints(char *buf, size_t size, struct json_object *a) {
        size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
        size_t len = 0;

        buf[0] = 0;
        if (n == 0) {
                snprintf(buf, size, "-");
                return buf;
        }
        for (size_t i = 0; i < n && len < size; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s%" PRIi64, i ? "," : "",
                                         json_object_get_int64(json_object_array_get_idx(a, i)));
        return buf;
}

/* A tiny column-aligned table: cells are copied; the last column is not padded. */
struct table {
        size_t n_columns, n_cells;
        char **cells;
};

static void table_done(struct table *t) {
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
}

static int table_add(struct table *t, const char *fmt, ...) _printf_(2, 3);
static int table_add(struct table *t, const char *fmt, ...) {
        va_list ap;
        char *s, **n;

        n = realloc(t->cells, (t->n_cells + 1) * sizeof(char *));
        if (!n)
                return -ENOMEM;
        t->cells = n;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return -ENOMEM;
        t->cells[t->n_cells++] = s;
        return 0;
}

/* Adds the header row: the column names, NULL-terminated. */
static void table_header(struct table *t, ...) {
        va_list ap;
        const char *h;

        va_start(ap, t);
        while ((h = va_arg(ap, const char *)))
                (void) table_add(t, "%s", h);
        va_end(ap);
}

static void table_print(const struct table *t) {
        size_t w[32] = {};

        for (size_t i = 0; i < t->n_cells; i++) {
                size_t c = i % t->n_columns, l = strlen(t->cells[i]);
                if (c < ELEMENTSOF(w) && l > w[c])
                        w[c] = l;
        }
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t c = i % t->n_columns;
                if (c + 1 == t->n_columns || i + 1 == t->n_cells)
                        printf("%s\n", t->cells[i]);
                else
                        printf("%-*s  ", (int) w[c], t->cells[i]);
        }
}

/* ---- talking to the daemon --------------------------------------------------------------- */

static int connect_daemon(struct context *ctx) {
        int r;

        if (ctx->client)
                return EXIT_OK;
        r = varlink_client_connect(ctx->socket, ctx->timeout_usec, &ctx->client);
        switch (r) {
        case 0:
                return EXIT_OK;
        case -ENOENT:
                fprintf(stderr, "spmtierd is not running (no socket at %s)\n", ctx->socket);
                return EXIT_NOT_RUNNING;
        case -ECONNREFUSED:
                fprintf(stderr, "spmtierd is not running (nobody listens on %s)\n", ctx->socket);
                return EXIT_NOT_RUNNING;
        case -EACCES:
        case -EPERM:
                fprintf(stderr, "Permission denied connecting to spmtierd at %s\n", ctx->socket);
                return EXIT_DENIED;
        case -ETIMEDOUT:
                fprintf(stderr, "Timed out connecting to spmtierd at %s\n", ctx->socket);
                return EXIT_TIMEOUT;
        default:
                fprintf(stderr, "Cannot connect to spmtierd at %s: %s\n", ctx->socket,
                        strerror(-r));
                return EXIT_NOT_RUNNING;
        }
}

static int transport_error(struct context *ctx, const char *method, int r) {
        if (r == -ETIMEDOUT) {
                fprintf(stderr, "spmtierd did not answer %s within %.1fs\n", method,
                        ctx->timeout_usec / 1e6);
                return EXIT_TIMEOUT;
        }
        if (r == -ECONNRESET || r == -EPIPE)
                fprintf(stderr, "spmtierd closed the connection during %s\n", method);
        else
                fprintf(stderr, "Talking to spmtierd failed during %s: %s\n", method,
                        strerror(-r));
        return EXIT_NOT_RUNNING;
}

/* Turns an error reply into a message on stderr (and the reply on stdout with --json) and
 * an exit code. */
static int report_error(struct context *ctx, const char *error, struct json_object *p) {
        const char *name = strrchr(error, '.') ? strrchr(error, '.') + 1 : error;
        bool denied = strcmp(name, "PermissionDenied") == 0;

        if (ctx->json) {
                _cleanup_json_ struct json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "error", json_object_new_string(error));
                        json_object_object_add(o, "parameters", json_object_get(p));
                        printf("%s\n", j_text(o));
                }
        }

        if (denied)
                fprintf(stderr, "Permission denied: %s%s%s\n",
                        j_str(p, "reason")[0] ? j_str(p, "reason") : "not allowed",
                        j_str(p, "method")[0] ? " for " : "", j_str(p, "method"));
        else if (strcmp(name, "NoSuchJob") == 0)
                fprintf(stderr, "No such job: %" PRIi64 "\n", j_int(p, "id"));
        else if (strcmp(name, "NoSuchProcess") == 0)
                fprintf(stderr, "No such process attached: pid %" PRIi64 "\n", j_int(p, "pid"));
        else if (strcmp(name, "NoSuchGpu") == 0)
                fprintf(stderr, "No such GPU: %" PRIi64 "\n", j_int(p, "gpu"));
        else if (strcmp(name, "NoSuchRange") == 0)
                fprintf(stderr, "No such range: pid %" PRIi64 " 0x%" PRIx64 "+0x%" PRIx64 "\n",
                        j_int(p, "pid"), (uint64_t) j_int(p, "start"),
                        (uint64_t) j_int(p, "length"));
        else if (strcmp(name, "ProcessAttached") == 0)
                fprintf(stderr, "Process %" PRIi64 " is already attached to job %" PRIi64 "\n",
                        j_int(p, "pid"), j_int(p, "job"));
        else if (strcmp(name, "UnknownPolicy") == 0)
                fprintf(stderr, "Unknown policy \"%s\" (available: %s)\n", j_str(p, "name"),
                        j_text(j_get(p, "available")));
        else if (strcmp(name, "InvalidConfig") == 0) {
                if (j_int(p, "line") > 0)
                        fprintf(stderr, "Configuration refused, the old one stays: %s:%" PRIi64
                                ": %s\n", j_str(p, "file"), j_int(p, "line"), j_str(p, "message"));
                else
                        fprintf(stderr, "Configuration refused, the old one stays: %s: %s\n",
                                j_str(p, "file"), j_str(p, "message"));
        } else if (strcmp(name, "InvalidValue") == 0)
                fprintf(stderr, "Invalid value for %s: %s\n", j_str(p, "parameter"),
                        j_str(p, "message"));
        else if (strcmp(name, "LimitExceeded") == 0)
                fprintf(stderr, "Limit exceeded: %s (limit %" PRIi64 ")\n", j_str(p, "what"),
                        j_int(p, "limit"));
        else if (strcmp(name, "NoGpu") == 0)
                fprintf(stderr, "This node has no GPU spmtierd can manage\n");
        else if (strcmp(name, "InternalError") == 0)
                fprintf(stderr, "spmtierd failed: %s (%s)\n", j_str(p, "message"),
                        strerror((int) llabs(j_int(p, "errno"))));
        else if (strcmp(name, "InvalidParameter") == 0)
                fprintf(stderr, "spmtierd rejected parameter \"%s\"\n", j_str(p, "parameter"));
        else if (strcmp(name, "MethodNotFound") == 0 || strcmp(name, "InterfaceNotFound") == 0)
                fprintf(stderr, "spmtierd does not know %s (is it older than spmctl?)\n",
                        j_str(p, "method")[0] ? j_str(p, "method") : j_str(p, "interface"));
        else
                fprintf(stderr, "spmtierd: %s %s\n", error, j_text(p));
        return denied ? EXIT_DENIED : EXIT_DAEMON_ERROR;
}

/* Calls IFACE.method with ctx->params; on success *ret gets the reply's parameters. Returns
 * an exit code; errors are reported. */
static int call(struct context *ctx, const char *method, struct json_object **ret) {
        _cleanup_json_ struct json_object *reply = NULL;
        char full[128];
        const char *error = NULL;
        int r;

        r = connect_daemon(ctx);
        if (r != EXIT_OK)
                return r;
        snprintf(full, sizeof(full), IFACE ".%s", method);
        r = varlink_client_call(ctx->client, full, ctx->params, &reply, &error);
        if (r < 0)
                return transport_error(ctx, method, r);
        if (error)
                return report_error(ctx, error, reply);
        *ret = TAKE_PTR(reply);
        return EXIT_OK;
}

/* Prints the reply as JSON when --json was given. Returns true if it did. */
static bool print_json(struct context *ctx, struct json_object *reply) {
        if (!ctx->json)
                return false;
        printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PRETTY |
                                                                     JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE));
        return true;
}

/* Calls a List* method. Returns an exit code; *ret_items gets the reply's array `key`, or
 * NULL when nothing is left to print: --json printed the reply, or the list was empty and
 * `empty` was printed. */
static int call_list(struct context *ctx, const char *method, const char *key, const char *empty, struct json_object **ret_reply,
                     struct json_object **ret_items) {
        struct json_object *items;
        int r;

        *ret_items = NULL;
        r = call(ctx, method, ret_reply);
        if (r != EXIT_OK || print_json(ctx, *ret_reply))
                return r;
        items = j_get(*ret_reply, key);
        if (!items || json_object_array_length(items) == 0)
                printf("%s\n", empty);
        else
                *ret_items = items;
        return EXIT_OK;
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;
        fputs("spmctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'spmctl --help'.\n", stderr);
        return EXIT_USAGE;
}

static int arg_uint(const char *what, const char *s, uint64_t max, int64_t *ret) {
        uint64_t v;
        if (parse_uint(s, max, &v) < 0)
                return usage_error("invalid %s \"%s\"", what, s);
        *ret = (int64_t) v;
        return EXIT_OK;
}

static int arg_size(const char *what, const char *s, int64_t *ret) {
        uint64_t v;
        if (parse_size(s, &v) < 0 || v > INT64_MAX)
                return usage_error("invalid %s \"%s\" (a size like 4096, 512M, 64G)", what, s);
        *ret = (int64_t) v;
        return EXIT_OK;
}

/* Parses arg as an integer (what names it in errors) and stores it as params[key] (and in
 * *ret when not NULL). Returns an exit code. */
static int param_uint(struct context *ctx, const char *what, const char *key, const char *arg,
                      uint64_t max, int64_t *ret) {
        int64_t v = 0;
        int r;

        r = arg_uint(what, arg, max, &v);
        if (r != EXIT_OK)
                return r;
        json_object_object_add(ctx->params, key, json_object_new_int64(v));
        if (ret)
                *ret = v;
        return EXIT_OK;
}

/* ---- verbs ------------------------------------------------------------------------------- */

static int verb_status(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        struct json_object *st, *c, *gpus;
        char b1[32], b2[32], b3[32];
        struct table t = { .n_columns = 8 };
        int r;

        r = call(ctx, "GetStatus", &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        st = j_get(reply, "status");
        c = j_get(st, "counters");
        printf("spmtierd %s: %s\n", j_str(st, "version"), j_str(st, "status"));
        gpus = j_get(st, "gpus");
        if (j_bool(st, "has_gpu"))
                printf("   Machine: %s, %zu GPUs\n", j_str(st, "machine"),
                       gpus ? json_object_array_length(gpus) : 0);
        else
                printf("   Machine: %s (no GPU: jobs and hints are kept, nothing moves)\n",
                       j_str(st, "machine"));
        printf(" Collector: %s, mover: %s\n", j_str(st, "collector"), j_str(st, "mover"));
        printf("    Frozen: %s\n", j_bool(st, "frozen") ? "yes (no migrations)" : "no");
        printf("     Epoch: %" PRIi64 " (every %s)\n", j_int(st, "epoch"),
               format_duration(b1, j_int(st, "epoch_usec")));
        printf("    Uptime: %s\n", format_duration(b1, j_int(st, "uptime_usec")));
        printf("      Jobs: %" PRIi64 ", processes %" PRIi64 ", regions %" PRIi64
               ", hints %" PRIi64 "\n", j_int(st, "jobs"), j_int(st, "processes"),
               j_int(st, "regions"), j_int(st, "hints"));
        printf("Migrations: %" PRIi64 " (%" PRIi64 " failed): %s to GPU, %s to RAM, "
               "benefit %s\n", j_int(c, "migrations"), j_int(c, "failures"),
               format_bytes(b1, j_int(c, "bytes_to_gpu")), format_bytes(b2, j_int(c, "bytes_to_ram")),
               format_duration(b3, (int64_t) j_double(c, "benefit_usec")));
        printf("    Epochs: %" PRIi64 ", observations %" PRIi64 " (%" PRIi64 " ignored), "
               "quarantines %" PRIi64 "\n", j_int(c, "epochs"), j_int(c, "observations"),
               j_int(c, "observations_ignored"), j_int(c, "quarantines"));
        printf("    Config: ");
        struct json_object *files = j_get(st, "config_files");
        size_t nf = files ? json_object_array_length(files) : 0;
        for (size_t i = 0; i < nf; i++)
                printf("%s%s", i ? ", " : "", json_object_get_string(json_object_array_get_idx(files, i)));
        printf("%s (last reload: %s)\n", nf ? "" : "(built-in defaults)",
               j_str(st, "last_reload")[0] ? j_str(st, "last_reload") : "none");
        printf("     State: %s\n", j_str(st, "state_error")[0] ? j_str(st, "state_error") : "saved");

        if (gpus && json_object_array_length(gpus) > 0) {
                printf("\n");
                /* DRIVER-USED and FILL-LIMIT come from the kfd-sysfs collector ("-" without it). */
                table_header(&t, "GPU", "LOCATION", "CAPACITY", "USED", "DRIVER-USED", "FILL-LIMIT",
                             "IN", "OUT", NULL);
                for (size_t i = 0; i < json_object_array_length(gpus); i++) {
                        struct json_object *g = json_object_array_get_idx(gpus, i);
                        bool kfd = j_get(g, "driver_vram_used") != NULL;
                        table_add(&t, "%" PRIi64, j_int(g, "index"));
                        table_add(&t, "%s", j_str(g, "location"));
                        table_add(&t, "%s", format_bytes(b1, j_int(g, "capacity")));
                        table_add(&t, "%s", format_bytes(b1, j_int(g, "used")));
                        table_add(&t, "%s", kfd ? format_bytes(b1, j_int(g, "driver_vram_used")) : "-");
                        table_add(&t, "%s", kfd ? format_bytes(b1, j_int(g, "fill_limit")) : "-");
                        table_add(&t, "%s", format_bytes(b1, j_int(g, "bytes_in")));
                        table_add(&t, "%s", format_bytes(b1, j_int(g, "bytes_out")));
                }
                table_print(&t);
                table_done(&t);
        }
        return EXIT_OK;
}

/* Jobs that ended (the daemon keeps the last 256 of the past 24 h), newest last. */
static void print_finished_jobs(struct json_object *finished, int64_t now) {
        struct table t = { .n_columns = 9 };
        char b1[32], b2[32], gl[128];

        table_header(&t, "JOB", "UID", "GPUS", "ENDED", "AGO", "RAN", "MIGRATIONS", "TO-GPU",
                     "TO-RAM", NULL);
        for (size_t i = 0; i < json_object_array_length(finished); i++) {
                struct json_object *j = json_object_array_get_idx(finished, i), *c = j_get(j, "counters");
                table_add(&t, "%" PRIi64, j_int(j, "id"));
                table_add(&t, "%" PRIi64, j_int(j, "uid"));
                table_add(&t, "%s", join_ints(gl, sizeof(gl), j_get(j, "gpus")));
                table_add(&t, "%s", j_str(j, "ended"));
                table_add(&t, "%s", format_duration(b1, MAX(now - j_int(j, "ended_realtime_usec"), 0)));
                table_add(&t, "%s", format_duration(b2, j_int(j, "duration_usec")));
                table_add(&t, "%" PRIi64, j_int(c, "migrations"));
                table_add(&t, "%s", format_bytes(b1, j_int(c, "bytes_to_gpu")));
                table_add(&t, "%s", format_bytes(b2, j_int(c, "bytes_to_ram")));
        }
        table_print(&t);
        table_done(&t);
}

static int verb_jobs(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        struct json_object *jobs, *finished;
        struct table t = { .n_columns = 11 };
        char b1[32], b2[32], gl[128], pl[256];
        int64_t now = now_realtime_usec();
        size_t n;
        int r;

        r = call_list(ctx, "ListJobs", "jobs", "No jobs.", &reply, &jobs);
        if (r != EXIT_OK || !reply || ctx->json)
                return r;
        finished = j_get(reply, "finished");
        if (jobs) {
                n = json_object_array_length(jobs);
                table_header(&t, "JOB", "UID", "GPUS", "QUOTA", "POLICY", "FROZEN", "PIDS", "EXPIRES",
                             "MIGRATIONS", "TO-GPU", "TO-RAM", NULL);
                for (size_t i = 0; i < n; i++) {
                        struct json_object *j = json_object_array_get_idx(jobs, i), *c = j_get(j, "counters");
                        table_add(&t, "%" PRIi64, j_int(j, "id"));
                        table_add(&t, "%" PRIi64, j_int(j, "uid"));
                        table_add(&t, "%s", join_ints(gl, sizeof(gl), j_get(j, "gpus")));
                        table_add(&t, "%s", j_is_null(j, "vram_quota") ? "-" : format_bytes(b1, j_int(j, "vram_quota")));
                        table_add(&t, "%s", j_str(j, "policy"));
                        table_add(&t, "%s", j_bool(j, "frozen") ? "yes" : "no");
                        table_add(&t, "%s", join_ints(pl, sizeof(pl), j_get(j, "pids")));
                        table_add(&t, "in %s", format_duration(b1, MAX(j_int(j, "expires_realtime_usec") - now, 0)));
                        table_add(&t, "%" PRIi64, j_int(c, "migrations"));
                        table_add(&t, "%s", format_bytes(b1, j_int(c, "bytes_to_gpu")));
                        table_add(&t, "%s", format_bytes(b2, j_int(c, "bytes_to_ram")));
                }
                table_print(&t);
                table_done(&t);
        }
        if (finished && json_object_array_length(finished) > 0) {
                printf("\nFinished:\n");
                print_finished_jobs(finished, now);
        }
        return EXIT_OK;
}

static void print_job_counters(struct json_object *c) {
        char b1[32], b2[32], b3[32];
        printf("%" PRIi64 " migrations (%" PRIi64 " failed), %s to GPU, %s to RAM, "
               "modelled benefit %s, %" PRIi64 " hints\n", j_int(c, "migrations"),
               j_int(c, "failures"), format_bytes(b1, j_int(c, "bytes_to_gpu")),
               format_bytes(b2, j_int(c, "bytes_to_ram")),
               format_duration(b3, (int64_t) j_double(c, "benefit_usec")), j_int(c, "hints"));
}

static int verb_job_start(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        struct json_object *job;
        char b1[32], b2[32], gl[128];
        int64_t id = 0;
        int r;

        r = param_uint(ctx, "job id", "id", argv[1], INT64_MAX, &id);
        if (r != EXIT_OK)
                return r;
        if (!(ctx->opts_given & OPT_GPUS))
                return usage_error("job-start needs --gpus LIST (e.g. --gpus 0,1)");
        if (!(ctx->opts_given & OPT_UID))
                json_object_object_add(ctx->params, "uid", json_object_new_int64(getuid()));
        r = call(ctx, "RegisterJob", &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        job = j_get(reply, "job");
        printf("Job %" PRIi64 " %s: uid %" PRIi64 ", GPUs %s, VRAM quota %s, policy %s, "
               "lease %s.\n", j_int(job, "id"), j_bool(reply, "created") ? "registered" : "renewed",
               j_int(job, "uid"), join_ints(gl, sizeof(gl), j_get(job, "gpus")),
               j_is_null(job, "vram_quota") ? "none" : format_bytes(b1, j_int(job, "vram_quota")),
               j_str(job, "policy"), format_duration(b2, j_int(job, "ttl_usec")));
        return EXIT_OK;
}

static int verb_job_end(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        struct json_object *s;
        char b1[32];
        int64_t id = 0;
        int r;

        r = param_uint(ctx, "job id", "id", argv[1], INT64_MAX, &id);
        if (r != EXIT_OK)
                return r;
        r = call(ctx, "UnregisterJob", &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        s = j_get(reply, "summary");
        printf("Job %" PRIi64 " (uid %" PRIi64 ") %s after %s: ", j_int(s, "id"), j_int(s, "uid"),
               j_str(s, "ended"), format_duration(b1, j_int(s, "duration_usec")));
        print_job_counters(j_get(s, "counters"));
        return EXIT_OK;
}

static int verb_ranges(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        struct json_object *ranges;
        struct table t = { .n_columns = 10 };
        char b1[32];
        size_t n;
        int r;

        r = call_list(ctx, "ListRanges", "ranges", "No ranges.", &reply, &ranges);
        if (r != EXIT_OK || !ranges)
                return r;
        n = json_object_array_length(ranges);
        table_header(&t, "PID", "JOB", "START", "LENGTH", "LOCATION", "PREFERRED", "HINT",
                     "MOVES", "QUARANTINED", "HEAT (accesses/epoch)", NULL);
        for (size_t i = 0; i < n; i++) {
                struct json_object *g = json_object_array_get_idx(ranges, i);
                char heat[256] = "";
                size_t len = 0;

                json_object_object_foreach(j_get(g, "heat"), k, v)
                        if (len < sizeof(heat))
                                len += (size_t) snprintf(heat + len, sizeof(heat) - len, "%s%s=%.0f",
                                                         len ? " " : "", k, json_object_get_double(v));
                table_add(&t, "%" PRIi64, j_int(g, "pid"));
                table_add(&t, "%" PRIi64, j_int(g, "job"));
                table_add(&t, "0x%" PRIx64, (uint64_t) j_int(g, "start"));
                table_add(&t, "%s", format_bytes(b1, j_int(g, "length")));
                table_add(&t, "%s", j_str(g, "location"));
                table_add(&t, "%s", j_is_null(g, "preferred") ? "-" : j_str(g, "preferred"));
                table_add(&t, "%s", j_str(g, "hint"));
                table_add(&t, "%" PRIi64, j_int(g, "moves"));
                table_add(&t, "%s", j_bool(g, "quarantined") ? "yes" : "no");
                table_add(&t, "%s", len ? heat : "-");
        }
        table_print(&t);
        table_done(&t);
        return EXIT_OK;
}

/* Hint kinds as the IDL spells them; the CLI also takes '-' for '_' (pin-gpu). */
static const char *const hint_kinds[] = { "hot", "cold", "pin_gpu", "pin_ram", "streaming", "none" };

static int verb_hint(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        _cleanup_free_ char *kind = NULL;
        int64_t pid = 0, start = 0, length = 0;
        bool known = false;
        int r;

        if ((r = param_uint(ctx, "pid", "pid", argv[1], INT32_MAX, &pid)) != EXIT_OK ||
            (r = param_uint(ctx, "start address", "start", argv[2], INT64_MAX, &start)) != EXIT_OK ||
            (r = arg_size("length", argv[3], &length)) != EXIT_OK)
                return r;
        kind = strdup(argv[4]);
        if (!kind)
                return EXIT_DAEMON_ERROR;
        for (char *p = kind; *p; p++)
                if (*p == '-')
                        *p = '_';
        for (size_t i = 0; i < ELEMENTSOF(hint_kinds); i++)
                known = known || strcmp(kind, hint_kinds[i]) == 0;
        if (!known)
                return usage_error("unknown hint kind \"%s\" (hot, cold, pin-gpu, pin-ram, "
                                   "streaming, none)", argv[4]);
        json_object_object_add(ctx->params, "length", json_object_new_int64(length));
        json_object_object_add(ctx->params, "kind", json_object_new_string(kind));
        r = call(ctx, "Hint", &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        if (strcmp(kind, "none") == 0)
                printf("Hints cleared on pid %" PRIi64 " 0x%" PRIx64 "+%s.\n", pid,
                       (uint64_t) start, argv[3]);
        else
                printf("Hint %s set on pid %" PRIi64 " 0x%" PRIx64 "+%s.\n", argv[4], pid,
                       (uint64_t) start, argv[3]);
        return EXIT_OK;
}

static int verb_hints(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        struct json_object *hints;
        struct table t = { .n_columns = 6 };
        char b1[32];
        int64_t now = now_realtime_usec();
        size_t n;
        int r;

        r = call_list(ctx, "ListHints", "hints", "No hints.", &reply, &hints);
        if (r != EXIT_OK || !hints)
                return r;
        n = json_object_array_length(hints);
        table_header(&t, "PID", "START", "LENGTH", "KIND", "GPU", "EXPIRES", NULL);
        for (size_t i = 0; i < n; i++) {
                struct json_object *h = json_object_array_get_idx(hints, i);
                table_add(&t, "%" PRIi64, j_int(h, "pid"));
                table_add(&t, "0x%" PRIx64, (uint64_t) j_int(h, "start"));
                table_add(&t, "%s", format_bytes(b1, j_int(h, "length")));
                table_add(&t, "%s", j_str(h, "kind"));
                if (j_is_null(h, "gpu"))
                        table_add(&t, "-");
                else
                        table_add(&t, "%" PRIi64, j_int(h, "gpu"));
                if (j_is_null(h, "expires_realtime_usec"))
                        table_add(&t, "never");
                else
                        table_add(&t, "in %s", format_duration(b1, MAX(j_int(h, "expires_realtime_usec") - now, 0)));
        }
        table_print(&t);
        table_done(&t);
        return EXIT_OK;
}

static int verb_attach(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        int64_t job = 0, pid = 0;
        int r;

        if ((r = param_uint(ctx, "job id", "job", argv[1], INT64_MAX, &job)) != EXIT_OK ||
            (r = param_uint(ctx, "pid", "pid", argv[2], INT32_MAX, &pid)) != EXIT_OK)
                return r;
        r = call(ctx, "AttachProcess", &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        printf("Process %" PRIi64 " attached to job %" PRIi64 ".\n", pid, job);
        return EXIT_OK;
}

static int verb_detach(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        int64_t pid = 0;
        int r;

        r = param_uint(ctx, "pid", "pid", argv[1], INT32_MAX, &pid);
        if (r != EXIT_OK)
                return r;
        r = call(ctx, "DetachProcess", &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        printf("Process %" PRIi64 " detached.\n", pid);
        return EXIT_OK;
}

/* Engine settings `spmctl policy KEY=VALUE` accepts; names as in the IDL (a '-' may stand
 * for '_'). *_usec take durations, *_bytes sizes. */
static const struct {
        const char *name;
        enum { SET_INT, SET_USEC, SET_BYTES, SET_FLOAT } type;
} policy_settings[] = {
        { "epoch_usec", SET_USEC },
        { "half_life_usec", SET_USEC },
        { "hysteresis", SET_FLOAT },
        { "min_residency_epochs", SET_INT },
        { "pingpong_trips", SET_INT },
        { "pingpong_window_epochs", SET_INT },
        { "quarantine_epochs", SET_INT },
        { "migrate_budget_bytes", SET_BYTES },
};

static int parse_setting(struct json_object *settings, const char *arg) {
        _cleanup_free_ char *key = strdup(arg);
        char *value, *end;
        int64_t v = 0;
        uint64_t u;

        if (!key)
                return EXIT_DAEMON_ERROR;
        value = strchr(key, '=');
        *value++ = 0;
        for (char *p = key; *p; p++)
                if (*p == '-')
                        *p = '_';
        for (size_t i = 0; i < ELEMENTSOF(policy_settings); i++) {
                if (strcmp(key, policy_settings[i].name) != 0)
                        continue;
                switch (policy_settings[i].type) {
                case SET_FLOAT: {
                        double d;
                        errno = 0;
                        d = strtod(value, &end);
                        if (errno || end == value || *end || !isfinite(d))
                                return usage_error("invalid number for %s: \"%s\"", key, value);
                        json_object_object_add(settings, key, json_object_new_double(d));
                        return EXIT_OK;
                }
                case SET_USEC:
                        if (parse_duration(value, &u) < 0 || u > INT64_MAX)
                                return usage_error("invalid duration for %s: \"%s\" (e.g. 100ms, 2s)",
                                                   key, value);
                        v = (int64_t) u;
                        break;
                case SET_BYTES:
                        if (arg_size(key, value, &v) != EXIT_OK)
                                return EXIT_USAGE;
                        break;
                default:
                        if (arg_uint(key, value, INT64_MAX, &v) != EXIT_OK)
                                return EXIT_USAGE;
                        break;
                }
                json_object_object_add(settings, key, json_object_new_int64(v));
                return EXIT_OK;
        }
        return usage_error("unknown policy setting \"%s\"", key);
}

static int verb_policy(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL, *settings = json_object_new_object();
        struct json_object *p, *s, *avail;
        char b1[32];
        bool set = false;
        int r;

        if (!settings)
                return EXIT_DAEMON_ERROR;
        for (int i = 1; i < argc; i++) {
                if (strchr(argv[i], '=')) {
                        r = parse_setting(settings, argv[i]);
                        if (r != EXIT_OK)
                                return r;
                } else if (!j_get(ctx->params, "name"))
                        json_object_object_add(ctx->params, "name", json_object_new_string(argv[i]));
                else
                        return usage_error("policy takes one NAME and KEY=VALUE settings");
                set = true;
        }
        if (json_object_object_length(settings) > 0)
                json_object_object_add(ctx->params, "settings", json_object_get(settings));
        r = call(ctx, set ? "SetPolicy" : "GetPolicy", &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        p = j_get(reply, "policy");
        s = j_get(p, "settings");
        printf("Policy: %s%s\n", j_str(p, "name"), j_bool(p, "frozen") ? " (frozen)" : "");
        json_object_object_foreach(s, k, v) {
                size_t l = strlen(k);
                if (!v)
                        continue;
                if (l > 5 && strcmp(k + l - 5, "_usec") == 0)
                        printf("  %s=%s\n", k, format_duration(b1, json_object_get_int64(v)));
                else if (l > 6 && strcmp(k + l - 6, "_bytes") == 0)
                        printf("  %s=%s\n", k, format_bytes(b1, json_object_get_int64(v)));
                else
                        printf("  %s=%s\n", k, json_object_get_string(v));
        }
        avail = j_get(p, "available");
        printf("Available:");
        for (size_t i = 0; avail && i < json_object_array_length(avail); i++)
                printf(" %s", json_object_get_string(json_object_array_get_idx(avail, i)));
        printf("\n");
        return EXIT_OK;
}

static int verb_drain(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        char b1[32];
        int64_t gpu = 0;
        int r;

        r = param_uint(ctx, "GPU index", "gpu", argv[1], INT32_MAX, &gpu);
        if (r != EXIT_OK)
                return r;
        r = call(ctx, "Drain", &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        printf("Drained GPU %" PRIi64 ": %" PRIi64 " moves, %s back to RAM, %" PRIi64 " failures.\n",
               gpu, j_int(reply, "moves"), format_bytes(b1, j_int(reply, "bytes")),
               j_int(reply, "failures"));
        return j_int(reply, "failures") > 0 ? EXIT_DAEMON_ERROR : EXIT_OK;
}

static int freeze_thaw(struct context *ctx, const char *method, const char *done) {
        _cleanup_json_ struct json_object *reply = NULL;
        int r;

        r = call(ctx, method, &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        if (ctx->opts_given & OPT_JOB)
                printf("Migrations of job %" PRIi64 " %s.\n", ctx->job, done);
        else
                printf("Migrations on this node %s.\n", done);
        return EXIT_OK;
}

static int verb_freeze(struct context *ctx, int argc, char **argv) {
        return freeze_thaw(ctx, "Freeze", "frozen");
}

static int verb_thaw(struct context *ctx, int argc, char **argv) {
        return freeze_thaw(ctx, "Thaw", "thawed");
}

static int verb_reload(struct context *ctx, int argc, char **argv) {
        _cleanup_json_ struct json_object *reply = NULL;
        struct json_object *files;
        size_t n;
        int r;

        r = call(ctx, "Reload", &reply);
        if (r != EXIT_OK || print_json(ctx, reply))
                return r;
        files = j_get(reply, "config_files");
        n = files ? json_object_array_length(files) : 0;
        printf("Configuration reloaded");
        for (size_t i = 0; i < n; i++)
                printf("%s%s", i ? ", " : " from ", json_object_get_string(json_object_array_get_idx(files, i)));
        printf("%s.\n", n ? "" : " (no files, built-in defaults)");
        return EXIT_OK;
}

static void print_event(struct json_object *e) {
        struct json_object *m = j_get(e, "move");
        int64_t t = j_int(e, "realtime_usec");
        time_t secs = (time_t) (t / 1000000);
        struct tm tm;
        char ts[32], b1[32];

        if (!localtime_r(&secs, &tm) || !strftime(ts, sizeof(ts), "%H:%M:%S", &tm))
                snprintf(ts, sizeof(ts), "?");
        printf("%s.%03d epoch %-6" PRIi64 " %-10s", ts, (int) (t / 1000 % 1000), j_int(e, "epoch"),
               j_str(e, "kind"));
        if (!j_is_null(e, "job"))
                printf(" job %" PRIi64, j_int(e, "job"));
        if (m)
                printf(" pid %" PRIi64 " 0x%" PRIx64 "+%s %s->%s (%s; benefit %.0fus, cost %.0fus)",
                       j_int(m, "pid"), (uint64_t) j_int(m, "start"),
                       format_bytes(b1, j_int(m, "length")), j_str(m, "from"), j_str(m, "to"),
                       j_str(m, "reason"), j_double(m, "benefit_usec"), j_double(m, "cost_usec"));
        if (!j_is_null(e, "status"))
                printf(" status %" PRIi64 "%s%s", j_int(e, "status"),
                       j_int(e, "status") < 0 ? " " : "",
                       j_int(e, "status") < 0 ? strerror((int) -j_int(e, "status")) : "");
        if (!j_is_null(e, "moved_bytes"))
                printf(" moved %s", format_bytes(b1, j_int(e, "moved_bytes")));
        if (j_str(e, "message")[0])
                printf(" %s", j_str(e, "message"));
        printf("\n");
}

static int verb_monitor(struct context *ctx, int argc, char **argv) {
        uint64_t seen = 0;
        int r;

        r = connect_daemon(ctx);
        if (r != EXIT_OK)
                return r;
        r = varlink_client_send(ctx->client, IFACE ".Monitor", ctx->params, VARLINK_CALL_MORE);
        if (r < 0)
                return transport_error(ctx, "Monitor", r);
        for (;;) {
                _cleanup_json_ struct json_object *reply = NULL;
                const char *error = NULL;
                struct json_object *e;

                r = varlink_client_read(ctx->client, &reply, &error);
                if (r < 0)
                        return transport_error(ctx, "Monitor", r);
                if (error)
                        return report_error(ctx, error, reply);
                /* Events come when the daemon has something to say: after the first reply
                 * the stream may be quiet for as long as nothing happens. */
                varlink_client_set_timeout(ctx->client, VARLINK_TIMEOUT_INFINITY);
                e = j_get(reply, "event");
                if (strcmp(j_str(e, "kind"), "subscribed") != 0)
                        seen++;
                if (ctx->json)
                        printf("%s\n", j_text(reply));
                else
                        print_event(e);
                fflush(stdout);
                if (r == 0)
                        return EXIT_OK;
                if ((ctx->opts_given & OPT_COUNT) && seen >= ctx->count)
                        return EXIT_OK;
        }
}

/* ---- verb table and main ----------------------------------------------------------------- */

struct verb {
        const char *name;
        int min_args, max_args; /* not counting the verb; -1 = unlimited */
        unsigned opts;          /* OPT_* the verb takes */
        int (*run)(struct context *ctx, int argc, char **argv);
        const char *args;
        const char *help;
};

static const struct verb verbs[] = {
        { "status", 0, 0, 0, verb_status, "", "Show the daemon's state, counters and GPUs" },
        { "jobs", 0, 0, OPT_UID, verb_jobs, "[--uid UID]", "List job leases" },
        { "job-start", 1, 1, OPT_UID | OPT_GPUS | OPT_QUOTA | OPT_POLICY | OPT_TTL, verb_job_start,
          "ID --gpus LIST [--uid UID] [--vram-quota SIZE] [--policy NAME] [--ttl TIME]",
          "Register (or renew) a job lease" },
        { "job-end", 1, 1, 0, verb_job_end, "ID", "End a job and print its summary" },
        { "attach", 2, 2, 0, verb_attach, "JOB PID", "Attach a process to a job" },
        { "detach", 1, 1, 0, verb_detach, "PID", "Detach a process from its job" },
        { "ranges", 0, 0, OPT_PID | OPT_JOB, verb_ranges, "[--pid PID] [--job ID]",
          "List tracked memory ranges, their location and heat" },
        { "hint", 4, 4, OPT_GPU | OPT_TTL, verb_hint,
          "PID START LENGTH KIND [--gpu N] [--ttl TIME]",
          "Hint a range: hot, cold, pin-gpu, pin-ram, streaming, none (clears)" },
        { "hints", 0, 0, OPT_PID | OPT_JOB, verb_hints, "[--pid PID] [--job ID]", "List hints" },
        { "policy", 0, -1, OPT_JOB, verb_policy, "[--job ID] [NAME] [SETTING=VALUE...]",
          "Show the policy, or set it (node-wide settings or a job's policy)" },
        { "drain", 1, 1, OPT_JOB, verb_drain, "GPU [--job ID]",
          "Move everything on a GPU back to system RAM now" },
        { "freeze", 0, 0, OPT_JOB, verb_freeze, "[--job ID]", "Stop all migrations now" },
        { "thaw", 0, 0, OPT_JOB, verb_thaw, "[--job ID]", "Allow migrations again" },
        { "reload", 0, 0, 0, verb_reload, "",
          "Re-read the configuration; returns when it is applied or refused" },
        { "monitor", 0, 0, OPT_JOB | OPT_COUNT, verb_monitor, "[--job ID] [--count N]",
          "Stream decisions and migration results" },
};

static void help(void) {
        printf("spmctl [OPTIONS...] COMMAND [ARGS...]\n\n"
               "Control spmtierd, the SPM memory-tiering daemon.\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-10s %s\n  %10s   %s\n", verbs[i].name, verbs[i].args, "", verbs[i].help);
        printf("\nOptions:\n"
               "  -h --help           Show this help\n"
               "     --version        Show the version\n"
               "     --socket PATH    The daemon's socket (default: $SPMTIER_SOCKET, else\n"
               "                      " DEFAULT_SOCKET ")\n"
               "     --json           Print the daemon's reply as JSON (monitor: JSON lines)\n"
               "     --timeout TIME   Give up waiting for the daemon after TIME (default 45s)\n"
               "\nSizes: 4096, 512M, 64G (1024-based). Times: 30s, 100ms, 5min, 2h; bare numbers\n"
               "are seconds. Exit status: 0 ok, 1 daemon error, 2 usage, 3 not running,\n"
               "4 permission denied, 5 timeout. See spmctl(8).\n");
}

static const char *opt_name(unsigned opt) {
        static const char *const names[] = { "--uid", "--gpus", "--vram-quota", "--policy",
                                             "--ttl", "--pid", "--job", "--gpu", "--count" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (opt == 1U << i)
                        return names[i];
        return "?";
}

/* An integer verb option: recorded in opts_given and stored as params[key] (and in *ret). */
static int opt_uint(struct context *ctx, unsigned opt, const char *key, const char *arg,
                    uint64_t max, int64_t *ret) {
        char what[32];

        ctx->opts_given |= opt;
        snprintf(what, sizeof(what), "--%s", key);
        return param_uint(ctx, what, key, arg, max, ret);
}

static int parse_argv(struct context *ctx, int argc, char **argv) {
        enum { ARG_VERSION = 0x100, ARG_SOCKET, ARG_JSON, ARG_TIMEOUT, ARG_UID, ARG_GPUS,
               ARG_QUOTA, ARG_POLICY, ARG_TTL, ARG_PID, ARG_JOB, ARG_GPU, ARG_COUNT };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "json", no_argument, NULL, ARG_JSON },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "uid", required_argument, NULL, ARG_UID },
                { "gpus", required_argument, NULL, ARG_GPUS },
                { "vram-quota", required_argument, NULL, ARG_QUOTA },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "ttl", required_argument, NULL, ARG_TTL },
                { "pid", required_argument, NULL, ARG_PID },
                { "job", required_argument, NULL, ARG_JOB },
                { "gpu", required_argument, NULL, ARG_GPU },
                { "count", required_argument, NULL, ARG_COUNT },
                {}
        };
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                r = EXIT_OK;
                switch (c) {
                case 'h':
                        help();
                        return -1;
                case ARG_VERSION:
                        printf("spmctl %s\n", SPMTIER_VERSION);
                        return -1;
                case ARG_SOCKET:
                        if (!*optarg)
                                return usage_error("--socket needs a path");
                        ctx->socket = optarg;
                        break;
                case ARG_JSON:
                        ctx->json = true;
                        break;
                case ARG_TIMEOUT:
                        if (parse_duration(optarg, &ctx->timeout_usec) < 0 || ctx->timeout_usec == 0)
                                return usage_error("invalid --timeout \"%s\" (e.g. 5s, 500ms)", optarg);
                        break;
                case ARG_UID:
                        r = opt_uint(ctx, OPT_UID, "uid", optarg, UINT32_MAX - 1, NULL);
                        break;
                case ARG_GPUS: {
                        struct json_object *gpus = NULL;
                        ctx->opts_given |= OPT_GPUS;
                        if (parse_gpus(optarg, &gpus) < 0)
                                return usage_error("invalid --gpus \"%s\" (e.g. 0,1)", optarg);
                        json_object_object_add(ctx->params, "gpus", gpus);
                        break;
                }
                case ARG_QUOTA: {
                        int64_t v = 0;
                        ctx->opts_given |= OPT_QUOTA;
                        r = arg_size("--vram-quota", optarg, &v);
                        json_object_object_add(ctx->params, "vram_quota", json_object_new_int64(v));
                        break;
                }
                case ARG_POLICY:
                        ctx->opts_given |= OPT_POLICY;
                        json_object_object_add(ctx->params, "policy", json_object_new_string(optarg));
                        break;
                case ARG_TTL: {
                        uint64_t ttl;
                        ctx->opts_given |= OPT_TTL;
                        if (parse_duration(optarg, &ttl) < 0 || ttl > INT64_MAX)
                                return usage_error("invalid --ttl \"%s\" (e.g. 30s, 2h)", optarg);
                        json_object_object_add(ctx->params, "ttl_usec", json_object_new_int64((int64_t) ttl));
                        break;
                }
                case ARG_PID:
                        r = opt_uint(ctx, OPT_PID, "pid", optarg, INT32_MAX, NULL);
                        break;
                case ARG_JOB:
                        r = opt_uint(ctx, OPT_JOB, "job", optarg, INT64_MAX, &ctx->job);
                        break;
                case ARG_GPU:
                        r = opt_uint(ctx, OPT_GPU, "gpu", optarg, INT32_MAX, NULL);
                        break;
                case ARG_COUNT: {
                        int64_t v = 0;
                        ctx->opts_given |= OPT_COUNT;
                        r = arg_uint("--count", optarg, INT64_MAX, &v);
                        ctx->count = (uint64_t) v;
                        break;
                }
                case ':':
                        return usage_error("option %s needs an argument", argv[optind - 1]);
                default:
                        return usage_error("unknown option %s", argv[optind - 1]);
                }
                if (r != EXIT_OK)
                        return r;
        }
        return EXIT_OK;
}

/* Moves options after positional arguments to the front (stable), so that both
 * "spmctl --json status" and "spmctl status --json" work while "+" in getopt keeps
 * option-looking text after "--" untouched. */
static void hoist_options(int argc, char **argv) {
        static const char *const takes_arg[] = { "--socket", "--timeout", "--uid", "--gpus",
                                                 "--vram-quota", "--policy", "--ttl", "--pid",
                                                 "--job", "--gpu", "--count" };
        char **opts = calloc((size_t) argc, sizeof(char *)), **pos = calloc((size_t) argc, sizeof(char *));
        int no = 0, np = 0, i;

        if (!opts || !pos)
                goto out;
        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        break;
                if (argv[i][0] == '-' && argv[i][1]) {
                        bool arg = false;
                        opts[no++] = argv[i];
                        for (size_t k = 0; k < ELEMENTSOF(takes_arg); k++)
                                arg = arg || strcmp(argv[i], takes_arg[k]) == 0;
                        if (arg && i + 1 < argc)
                                opts[no++] = argv[++i];
                } else
                        pos[np++] = argv[i];
        }
        /* "--" ends options: it and everything after it stay positional, in order. */
        if (i < argc)
                opts[no++] = argv[i++];
        for (; i < argc; i++)
                pos[np++] = argv[i];
        memcpy(argv + 1, opts, (size_t) no * sizeof(char *));
        memcpy(argv + 1 + no, pos, (size_t) np * sizeof(char *));
out:
        free(opts);
        free(pos);
}

int main(int argc, char **argv) {
        struct context ctx = {
                .timeout_usec = VARLINK_DEFAULT_TIMEOUT_USEC,
        };
        const struct verb *verb = NULL;
        const char *env;
        int r, nargs;

        /* A monitor piped into head(1) must end quietly, not die from SIGPIPE mid-line. */
        signal(SIGPIPE, SIG_IGN);

        ctx.params = json_object_new_object();
        if (!ctx.params) {
                fprintf(stderr, "Out of memory\n");
                return EXIT_DAEMON_ERROR;
        }
        hoist_options(argc, argv);
        r = parse_argv(&ctx, argc, argv);
        if (r != EXIT_OK)
                goto finish;

        env = getenv("SPMTIER_SOCKET");
        if (!ctx.socket)
                ctx.socket = env && *env ? env : DEFAULT_SOCKET;

        if (optind >= argc) {
                r = usage_error("missing command");
                goto finish;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(argv[optind], verbs[i].name) == 0)
                        verb = &verbs[i];
        if (!verb) {
                r = usage_error("unknown command \"%s\"", argv[optind]);
                goto finish;
        }
        nargs = argc - optind - 1;
        if (nargs < verb->min_args || (verb->max_args >= 0 && nargs > verb->max_args)) {
                r = usage_error("%s takes: %s %s", verb->name, verb->name, verb->args);
                goto finish;
        }
        if (ctx.opts_given & ~verb->opts) {
                unsigned bad = ctx.opts_given & ~verb->opts;
                r = usage_error("%s does not take %s", verb->name, opt_name(bad & -bad));
                goto finish;
        }
        r = verb->run(&ctx, nargs + 1, argv + optind);
        if (fflush(stdout) != 0 && r == EXIT_OK)
                r = EXIT_DAEMON_ERROR;
finish:
        varlink_client_free(ctx.client);
        json_object_put(ctx.params);
        return r < 0 ? EXIT_OK : r;
}
