/* Fuzz target: what a device sends to the check-in and command endpoints.
 * The body goes through the same steps as in mdm.c, mdm_checkin.c and
 * mdm_connect.c: plist parse (XML or binary), the string keys the server
 * reads, the record fields it keeps, and the JSON it makes of results. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/shape.h"
#include "../../handlers/mdm/mdm.h"
#include "../../store/store.h"
#include "../../core/util.h"
#include "../../handlers/apple/apple.h"

static const char *const fuzz_map[][2] = {
    {"DeviceName", "device_name"},     {"OSVersion", "os_version"},
    {"BatteryLevel", "battery_level"}, {"IsSupervised", "supervised"},
    {"DeviceCapacity", "capacity_gb"}, {NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* apple_plist_parse's own XML reader must give what libplist gives
 * whenever it takes the text at all, and only what shape_plist() lets
 * through, under the default limits and under tiny ones (apple_xml.c). */
static void fuzz_fast_xml(const uint8_t *data, size_t len)
{
    static const struct shape_limits dflt = {64, 100000, 8388608}, tiny = {3, 12, 6};
    char why[128];
    if (len > APPLE_XML_FAST_MAX || memchr(data, '\0', len) != NULL)
        return;
    plist_t t = apple_plist_xml_fast((const char *)data, len, &tiny);
    if (t != NULL && shape_plist(data, len, &tiny, why, sizeof(why)) != SHAPE_OK)
        abort();
    plist_free(t);
    plist_t f = apple_plist_xml_fast((const char *)data, len, &dflt), l = NULL;
    if (f == NULL)
        return;
    if (shape_plist(data, len, &dflt, why, sizeof(why)) != SHAPE_OK)
        abort();
    plist_from_xml((const char *)data, (uint32_t)len, &l);
    char *a = NULL, *b = NULL;
    uint32_t na = 0, nb = 0;
    plist_to_xml(f, &a, &na);
    if (l != NULL)
        plist_to_xml(l, &b, &nb);
    if (b == NULL || na != nb || memcmp(a, b, na) != 0)
        abort();
    free(a);
    free(b);
    plist_free(f);
    plist_free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    fuzz_fast_xml(data, len);
    plist_t p = apple_plist_parse(data, len, NULL, 0);
    if (p == NULL)
        return 0;
    static const char *const keys[] = {"MessageType", "UDID",      "Status",
                                       "CommandUUID", "PushMagic", "Topic"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *s = apple_plist_dict_string(p, keys[i]);
        if (s != NULL)
            (void)util_udid_valid(s, strlen(s));
        free(s);
    }
    struct mdm_msg *m = calloc(1, sizeof(*m));
    m->body = p; /* mdm_done frees it */
    mdm_fields_from(m, p, fuzz_map);
    if (plist_get_node_type(p) == PLIST_DICT)
        mdm_fields_from(m, plist_dict_get_item(p, "QueryResponses"), fuzz_map);
    json_t *j = apple_plist_to_json(p);
    char *s = json_dumps(j, JSON_COMPACT);
    free(s);
    json_decref(j);
    mdm_done(m);
    return 0;
}
