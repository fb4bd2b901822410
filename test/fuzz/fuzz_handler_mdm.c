/* Fuzz target: device bodies through the real MDM handlers (mdm_checkin,
 * mdm_connect, mdm_any), from the route table, over the fake store.
 * Input: byte 0 picks the fake store's answers (fake_store.h), byte 1 the
 * endpoint and whether a client certificate (CN FUZZ-UDID-0001) came; the
 * rest is the body, parsed on the loop up to 8 KB and on the crypto worker
 * beyond, as in mdmd. */
#include <stddef.h>
#include <stdint.h>

#include "handler_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static const char *const paths[] = {"/mdm/checkin", "/mdm/connect", "/mdm", "/mdm/checkin"};
    if (len < 2)
        return 0;
    int route = data[1] & 3;
    struct http_test_req t = {
        .method = "PUT",
        .target = paths[route],
        .headers = "Content-Type: application/x-apple-aspen-mdm",
        .body = data + 2,
        .len = len - 2,
        .cert = (data[1] & 4) == 0 ? henv_device_cert() : NULL,
    };
    (void)henv_run(HENV_MDM, data[0], &t);
    return 0;
}
