/* Fuzz target: what a device sends to the check-in and command endpoints.
 * The body goes through the same steps as in h_mdm.c, h_checkin.c and
 * h_connect.c: plist parse (XML or binary), the string keys the server
 * reads, the record fields it keeps, and the JSON it makes of results. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/h_mdm.h"
#include "../../handlers/plist_json.h"

static const char *const fuzz_map[][2] = {
    {"DeviceName", "device_name"}, {"OSVersion", "os_version"}, {"BatteryLevel", "battery_level"},
    {"IsSupervised", "supervised"}, {"DeviceCapacity", "capacity_gb"}, {NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    plist_t p = pj_parse(data, len, NULL, 0);
    if (p == NULL)
        return 0;
    static const char *const keys[] = {"MessageType", "UDID", "Status", "CommandUUID",
                                       "PushMagic", "Topic"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *s = pj_dict_string(p, keys[i]);
        if (s != NULL)
            (void)util_udid_valid(s, strlen(s));
        free(s);
    }
    struct h_mdm *m = calloc(1, sizeof(*m));
    m->body = p;    /* h_mdm_done frees it */
    h_mdm_fields_from(m, p, fuzz_map);
    if (plist_get_node_type(p) == PLIST_DICT)
        h_mdm_fields_from(m, plist_dict_get_item(p, "QueryResponses"), fuzz_map);
    json_t *j = pj_to_json(p);
    char *s = json_dumps(j, JSON_COMPACT);
    free(s);
    json_decref(j);
    h_mdm_done(m);
    return 0;
}
