/* Fuzz target: declarations as PUT /v1/declarations/{id} takes them.  The
 * JSON is checked against Apple's schema for its Type (ddm_check.c, the
 * generated ddm_schema.c: nested keys, arrays, allowed values, ranges), then,
 * when it passes, made into what devices get, with its server token. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../handlers/apple/apple.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char err[400], token[33];
    json_t *j = json_loadb((const char *)data, len, 0, NULL);
    if (j == NULL)
        return 0;
    if (ddm_check_declaration(j, err, sizeof(err)) == 0)
        free(ddm_check_canonical(j, token));
    json_decref(j);
    return 0;
}
