/* Fuzz target: the admin REST JSON bodies.  POST /v1/commands parses JSON,
 * looks the RequestType up in Apple's table and converts the parameters to
 * a plist typed by the schema (apple_plist.c), then renders the XML sent to
 * devices.  The same path, without the network. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../handlers/apple/apple.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char err[256];
    json_t *j = json_loadb((const char *)data, len, 0, NULL);
    if (j == NULL)
        return 0;
    json_t *cmd = json_object_get(j, "command");
    const char *rt = json_string_value(json_object_get(cmd, "RequestType"));
    const struct mdm_command *c = rt != NULL ? mdm_schema_find(rt) : NULL;
    plist_t p =
        apple_plist_from_json(cmd != NULL ? cmd : j, c != NULL ? c->keys : NULL, err, sizeof(err));
    if (p != NULL) {
        char *xml = NULL;
        uint32_t n = 0;
        plist_to_xml(p, &xml, &n);
        plist_t back = apple_plist_parse(xml, n); /* what a device would parse */
        plist_free(back);
        free(xml);
        plist_free(p);
    }
    json_decref(j);
    return 0;
}
