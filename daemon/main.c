/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spmtierd: the spmtier memory-tiering daemon. See spmtierd(8).
 *
 *   spmtierd [--config FILE] [--state-dir DIR] [--socket PATH] [--check-config]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "manager.h"
#include "settings.h"

static const char *arg_config;
static const char *arg_state_dir;
static const char *arg_socket;
static bool arg_check_config;

static void help(void) {
        printf("spmtierd [OPTIONS]\n\n"
               "GPU memory tiering daemon (io.spmtier.daemon over varlink).\n\n"
               "  -h --help            show this help\n"
               "     --version         show the version\n"
               "  -c --config FILE     read FILE and FILE.d/*.conf instead of\n"
               "                       /etc/spmtierd.conf and spmtierd.conf.d/ drop-ins\n"
               "     --check-config    print the normalised configuration and exit\n"
               "  -s --state-dir DIR   persist jobs and hints in DIR\n"
               "                       (default: $STATE_DIRECTORY, else %s)\n"
               "     --socket PATH     listen on PATH unless socket-activated\n"
               "                       (default: $SPMTIER_SOCKET, else %s)\n",
               SPMTIERD_DEFAULT_STATE_DIR, SPMTIERD_DEFAULT_SOCKET);
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_VERSION = 0x100, ARG_CHECK_CONFIG, ARG_SOCKET };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "state-dir", required_argument, NULL, 's' },
                { "socket", required_argument, NULL, ARG_SOCKET },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hc:s:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts("spmtierd 0.1.0");
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        arg_check_config = true;
                        break;
                case 's':
                        arg_state_dir = optarg;
                        break;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "spmtierd takes no positional arguments\n");
                return -EINVAL;
        }
        return 1;
}

/* $STATE_DIRECTORY may list several directories separated by ':'; ours is the first. */
static char *state_dir_from_env(void) {
        const char *e = getenv("STATE_DIRECTORY");

        if (!e || !*e)
                return NULL;
        return strndup(e, strcspn(e, ":"));
}

static int check_config(void) {
        struct spmtierd_settings s = {};
        struct config_error err = {};
        char **files = NULL;
        int r;

        r = spmtierd_settings_load(arg_config, &s, &files, &err);
        if (r < 0) {
                if (r == -EINVAL || err.file[0])
                        fprintf(stderr, "%s:%u: %s\n", err.file, err.line, err.message);
                else
                        fprintf(stderr, "spmtierd: cannot read the configuration: %s\n",
                                strerror(-r));
                return EXIT_FAILURE;
        }
        printf("# spmtierd configuration in effect, read from:");
        if (!files[0])
                printf(" (no file: compiled defaults)");
        for (char **f = files; *f; f++)
                printf(" %s", *f);
        printf("\n");
        spmtierd_settings_print(&s, stdout);
        strv_free(files);
        spmtierd_settings_done(&s);
        return EXIT_SUCCESS;
}

/* As spmctl: 2 is a usage error, 1 a failure at run time. */
#define EXIT_USAGE 2

int main(int argc, char **argv) {
        _cleanup_(manager_freep) struct manager *m = NULL;
        _cleanup_free_ char *env_state = NULL;
        struct manager_args args = {};
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        if (arg_check_config)
                return check_config();

        env_state = state_dir_from_env();
        args.config_path = arg_config;
        args.state_dir = arg_state_dir ? arg_state_dir
                         : env_state   ? env_state
                                       : SPMTIERD_DEFAULT_STATE_DIR;
        args.socket_path = arg_socket                ? arg_socket
                           : getenv("SPMTIER_SOCKET") ? getenv("SPMTIER_SOCKET")
                                                     : SPMTIERD_DEFAULT_SOCKET;
        r = manager_new(&args, &m);
        if (r < 0)
                return EXIT_FAILURE;
        r = manager_start(m);
        if (r < 0)
                return EXIT_FAILURE;
        r = manager_run(m);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
