/* The rest of the check-in protocol, the pure parts: the table derived from
 * Apple's schema against the server's handlers and answers, the key checks,
 * channel ids, and sealing secrets at rest (ca_seal). */
#include <plist/plist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../ca/ca_seal.h"
#include "../../core/util.h"
#include "../../handlers/apple/apple.h"
#include "../../handlers/mdm/mdm.h"
#include "../harness.h"

TEST(every_message_type_is_handled)
{
    CHECK(mdm_checkin_schema_count() >= 9);
    for (size_t i = 0; i < mdm_checkin_schema_count(); i++) {
        const char *t = mdm_checkin_schema_at(i)->message_type;
        if (!mdm_checkin_handles(t))
            fprintf(stderr, "MessageType %s has no handler\n", t);
        CHECK(mdm_checkin_handles(t));
    }
    CHECK(!mdm_checkin_handles("MakeCoffee"));
    CHECK(mdm_checkin_schema_find("ReturnToService") != NULL);
}

/* Every key the server answers with is one Apple's schema defines. */
TEST(answers_use_schema_keys)
{
    CHECK(mdm_checkin_schema_key("GetBootstrapToken", "BootstrapToken", NULL, 1) != NULL);
    CHECK(mdm_checkin_schema_key("GetToken", "TokenData", NULL, 1) != NULL);
    CHECK(mdm_checkin_schema_key("ReturnToService", "ReturnToService", NULL, 1) != NULL);
    const char *rts[] = {"Enabled", "WiFiProfileData", "MDMProfileData", "BootstrapToken"};
    for (size_t i = 0; i < sizeof(rts) / sizeof(rts[0]); i++)
        CHECK(mdm_checkin_schema_key("ReturnToService", rts[i], "ReturnToService", 1) != NULL);
    plist_t d = plist_new_dict();
    CHECK(apple_checkin_answer_set(d, "GetToken", NULL, "TokenData", plist_new_data("x", 1)) == 0);
    CHECK(apple_checkin_answer_set(d, "GetToken", NULL, "TokenDatum", plist_new_data("x", 1)) != 0);
    CHECK(apple_checkin_answer_set(d, "GetToken", NULL, "TokenData", plist_new_string("x")) != 0);
    CHECK(plist_dict_get_size(d) == 1);
    plist_free(d);
}

TEST(key_types_are_checked)
{
    char why[96];
    plist_t m = plist_new_dict();
    plist_dict_set_item(m, "MessageType", plist_new_string("SetBootstrapToken"));
    plist_dict_set_item(m, "BootstrapToken", plist_new_data("tok", 3));
    CHECK(apple_checkin_check(m, "SetBootstrapToken", why, sizeof(why)) == 0);
    plist_dict_set_item(m, "AwaitingConfiguration", plist_new_string("yes"));
    CHECK(apple_checkin_check(m, "SetBootstrapToken", why, sizeof(why)) != 0);
    CHECK(strstr(why, "AwaitingConfiguration") != NULL);
    CHECK(apple_checkin_check(m, "NoSuchMessage", why, sizeof(why)) != 0);
    plist_free(m);
    m = plist_new_dict();
    plist_t p = plist_new_dict();
    plist_dict_set_item(p, "PhoneUDID", plist_new_uint(5));
    plist_dict_set_item(m, "TokenParameters", p);
    CHECK(apple_checkin_check(m, "GetToken", why, sizeof(why)) != 0); /* one level down */
    plist_free(m);
}

TEST(channel_ids)
{
    CHECK(util_channel_valid("UDID-1", 6));
    CHECK(util_channel_valid("UDID-1:USER-A", 13));
    CHECK(util_channel_valid("UDID-1:alice@example.com", 24));
    CHECK(!util_channel_valid("UDID-1:", 7));
    CHECK(!util_channel_valid(":USER", 5));
    CHECK(!util_channel_valid("UDID-1:a:b", 10));
    CHECK(!util_channel_valid("UDID-1:a}b", 10));
    CHECK(!util_channel_valid("UDID-1:a b", 10));
    char big[200];
    memset(big, 'a', sizeof(big));
    memcpy(big, "U:", 2);
    CHECK(util_channel_valid(big, 2 + UTIL_CHANNEL_USER_MAX));
    CHECK(!util_channel_valid(big, 3 + UTIL_CHANNEL_USER_MAX));
}

TEST(seal_round_trip_and_tamper)
{
    char path[] = "/tmp/mdmd-seal-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    CHECK(ca_seal_keyfile_init(path) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    const char secret[] = "bootstrap-token-bytes";
    char *s = ca_seal(path, "UDID-1", secret, sizeof(secret) - 1);
    CHECK(s != NULL && strncmp(s, "s1:", 3) == 0 && strstr(s, "bootstrap") == NULL);
    size_t n = 0;
    unsigned char *p = ca_unseal(path, "UDID-1", s, &n);
    CHECK(p != NULL && n == sizeof(secret) - 1 && memcmp(p, secret, n) == 0);
    free(p);
    CHECK(ca_unseal(path, "UDID-2", s, &n) == NULL); /* bound to its UDID */
    char *t = xstrdup(s);
    /* A flipped tag bit, well before the end: the last base64 digit before
     * "==" carries 4 bits that decoding drops, so flipping there changed
     * nothing about 1 run in 4. */
    t[strlen(t) - 8] = t[strlen(t) - 8] == 'A' ? 'B' : 'A';
    CHECK(ca_unseal(path, "UDID-1", t, &n) == NULL);
    free(t);
    CHECK(ca_unseal(path, "UDID-1", "s1:0000000000000000:AAAA", &n) == NULL);
    CHECK(ca_unseal(path, "UDID-1", "plain", &n) == NULL);
    /* Rotation: new tokens under the new key, old ones still open. */
    char id[CA_SEAL_ID_LEN];
    CHECK(ca_seal_rotate(path, id) == 0);
    char *s2 = ca_seal(path, "UDID-1", secret, sizeof(secret) - 1);
    CHECK(s2 != NULL && strncmp(s2 + 3, id, 16) == 0 && strncmp(s + 3, id, 16) != 0);
    p = ca_unseal(path, "UDID-1", s, &n);
    CHECK(p != NULL && n == sizeof(secret) - 1);
    free(p);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    free(s);
    free(s2);
    unlink(path);
}

int main(void)
{
    RUN(every_message_type_is_handled);
    RUN(answers_use_schema_keys);
    RUN(key_types_are_checked);
    RUN(channel_ids);
    RUN(seal_round_trip_and_tamper);
    return harness_done();
}
