/* Results packed for history (store_result_pack/unpack, issue 16): every
 * input comes back byte for byte, plists get smaller, and what is not packed
 * or does not unpack is left to the caller as it is. */
#include "../../store/store.h"
#include "../harness.h"

#include <stdlib.h>
#include <string.h>

static int round_trip(const char *in, size_t len, size_t *packed)
{
    size_t plen, ulen = 0;
    char *p = store_result_pack(in, len, &plen);
    char *u = store_result_unpack(p, plen, &ulen);
    int ok = u != NULL ? ulen == len && memcmp(u, in, len) == 0 && u[ulen] == '\0'
                       : plen == len && memcmp(p, in, len) == 0; /* kept as sent */
    *packed = plen;
    free(p);
    free(u);
    return ok;
}

static const char devinfo[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST "
    "1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist "
    "version=\"1.0\">\n<dict>\n\t<key>CommandUUID</key>\n\t<string>3F2504E0-4F89-41D3-9A0C-"
    "0305E82C3301</string>\n\t<key>QueryResponses</key>\n\t<dict>\n\t\t<key>DeviceName</key>\n"
    "\t\t<string>Kim's iPhone</string>\n\t\t<key>OSVersion</key>\n\t\t<string>17.5.1</string>\n"
    "\t\t<key>SerialNumber</key>\n\t\t<string>F2LZK1QWERTY</string>\n\t\t<key>BatteryLevel</key>"
    "\n\t\t<real>0.5</real>\n\t</dict>\n\t<key>Status</key>\n\t<string>Acknowledged</string>\n"
    "\t<key>UDID</key>\n\t<string>00008030-001A2B3C4D5E6F7A</string>\n</dict>\n</plist>\n";

TEST(xml_plist_round_trips_smaller)
{
    size_t n;
    CHECK(round_trip(devinfo, sizeof(devinfo) - 1, &n));
    CHECK(n < (sizeof(devinfo) - 1) / 3); /* the dictionary knows this shape */
}

TEST(odd_inputs_round_trip)
{
    size_t n;
    char rnd[3000];
    srand(16);
    for (size_t i = 0; i < sizeof(rnd); i++)
        rnd[i] = (char)(rand() & 0xff);
    CHECK(round_trip("", 0, &n));
    CHECK(round_trip("x", 1, &n));
    CHECK(round_trip(rnd, sizeof(rnd), &n)); /* incompressible: kept as sent */
    CHECK(n == sizeof(rnd));
    memcpy(rnd, STORE_RESULT_MAGIC, STORE_RESULT_MAGIC_LEN); /* looks packed: packed anyway */
    CHECK(round_trip(rnd, sizeof(rnd), &n));
    char nul[64] = {0};
    CHECK(round_trip(nul, sizeof(nul), &n));
}

TEST(large_result_round_trips)
{
    size_t len = 300000, n, off = 0;
    char *big = malloc(len);
    while (off < len) { /* an InstalledApplicationList-like answer */
        size_t k = len - off < sizeof(devinfo) - 1 ? len - off : sizeof(devinfo) - 1;
        memcpy(big + off, devinfo, k);
        off += k;
    }
    CHECK(round_trip(big, len, &n));
    CHECK(n < len / 10);
    free(big);
}

TEST(unpacked_and_corrupt_values_left_alone)
{
    size_t plen, ulen = 0;
    CHECK(store_result_unpack(devinfo, sizeof(devinfo) - 1, &ulen) == NULL); /* stored as sent */
    char *p = store_result_pack(devinfo, sizeof(devinfo) - 1, &plen);
    CHECK(memcmp(p, STORE_RESULT_MAGIC, STORE_RESULT_MAGIC_LEN) == 0);
    p[plen / 2] ^= 0x5a;
    p[plen / 2 + 1] ^= 0x33;
    /* Garbage in a frame: refused or decoded, never read out of bounds
     * (the ASan tree runs this). */
    free(store_result_unpack(p, plen, &ulen));
    CHECK(store_result_unpack(p, STORE_RESULT_MAGIC_LEN + 3, &ulen) == NULL); /* truncated */
    free(p);
}

int main(void)
{
    RUN(xml_plist_round_trips_smaller);
    RUN(odd_inputs_round_trip);
    RUN(large_result_round_trips);
    RUN(unpacked_and_corrupt_values_left_alone);
    return harness_done();
}
