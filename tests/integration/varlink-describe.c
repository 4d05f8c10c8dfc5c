/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Writes the interface description of every interface a varlink service lists in GetInfo
 * to OUTDIR/<interface>.varlink, one name per line on stdout, so a test can feed them to
 * another implementation's IDL parser (varlink-go-interface-generator):
 *
 *   varlink-describe unix:PATH OUTDIR
 */

#include <stdio.h>
#include <string.h>

#include "spmtier/json-util.h"
#include "varlink.h"

int main(int argc, char **argv) {
        _cleanup_(varlink_client_freep) struct varlink_client *c = NULL;
        _cleanup_json_ struct json_object *info = NULL;
        struct json_object *list;
        const char *error = NULL;
        int r;

        if (argc != 3) {
                fprintf(stderr, "usage: %s ADDRESS OUTDIR\n", argv[0]);
                return 2;
        }
        r = varlink_client_connect(argv[1], 10 * 1000000ULL, &c);
        if (r >= 0)
                r = varlink_client_call(c, "org.varlink.service.GetInfo", NULL, &info, &error);
        if (r < 0 || error || !json_object_object_get_ex(info, "interfaces", &list) ||
            !json_object_is_type(list, json_type_array)) {
                fprintf(stderr, "GetInfo on %s failed: %s\n", argv[1], r < 0 ? strerror(-r) : error ? error : "no interfaces");
                return 1;
        }
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                _cleanup_json_ struct json_object *in = json_object_new_object(), *out = NULL;
                const char *name = json_object_get_string(json_object_array_get_idx(list, i));
                struct json_object *d;
                char path[4096];
                FILE *f;

                json_object_object_add(in, "interface", json_object_new_string(name));
                r = varlink_client_call(c, "org.varlink.service.GetInterfaceDescription", in, &out, &error);
                if (r < 0 || error || !json_object_object_get_ex(out, "description", &d)) {
                        fprintf(stderr, "GetInterfaceDescription %s failed: %s\n", name,
                                r < 0 ? strerror(-r) : error ? error : "no description");
                        return 1;
                }
                snprintf(path, sizeof(path), "%s/%s.varlink", argv[2], name);
                f = fopen(path, "we");
                if (!f || fputs(json_object_get_string(d), f) < 0 || fclose(f) != 0) {
                        fprintf(stderr, "%s: cannot write\n", path);
                        return 1;
                }
                printf("%s\n", name);
        }
        return 0;
}
