/* Fuzz target: request bodies through the real REST and enrollment
 * handlers, from the public route table, over the fake store: POST
 * /v1/commands as JSON and as a raw plist, profile and provisioning-profile
 * uploads, the OTA enrollment reply (CMS) and /v1/push.  (Not /v1/users:
 * each password costs 600,000 PBKDF2 rounds, a second an input.)
 * Input: byte 0 picks the fake store's answers (fake_store.h), byte 1 the
 * endpoint; the rest is the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "handler_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static const struct {
    const char *target;
    const char *ctype;
    int auth;
} fuzz_routes[] = {
    {"/v1/commands", "application/json", 1},
    {"/v1/commands?udids=" HENV_UDID, "application/x-plist", 1},
    {"/v1/profiles", "application/x-apple-aspen-config", 1},
    {"/v1/provisioning-profiles", "application/octet-stream", 1},
    {"/enroll/ota", "application/pkcs7-signature", 0},
    {"/v1/push", "application/json", 1},
    {"/v1/commands?filter=all_enrolled", "application/xml", 1},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char headers[256];
    if (len < 2)
        return 0;
    size_t r = data[1] % (sizeof(fuzz_routes) / sizeof(fuzz_routes[0]));
    snprintf(headers, sizeof(headers), "Content-Type: %s%s%s", fuzz_routes[r].ctype,
             fuzz_routes[r].auth ? "\nAuthorization: Bearer " : "",
             fuzz_routes[r].auth ? henv_api_key : "");
    struct http_test_req t = {
        .method = "POST",
        .target = fuzz_routes[r].target,
        .headers = headers,
        .body = data + 2,
        .len = len - 2,
    };
    (void)henv_run(HENV_PUBLIC, data[0], &t);
    return 0;
}
