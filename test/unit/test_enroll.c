/* Enrollment's pure parts: the login form decoder and the profiles
 * (mobileconfig), without a loop, Redis or TLS. */
#include <stdlib.h>
#include <string.h>

#include "../../handlers/enroll/enroll.h"
#include "../../handlers/apple/apple.h"
#include "../harness.h"

static char *form(const char *body, const char *key)
{
    return enroll_form_value(body, strlen(body), key);
}

TEST(form_values)
{
    char *v = form("username=alice&password=correct+horse%21%2B", "password");
    CHECK(v != NULL && strcmp(v, "correct horse!+") == 0);
    free(v);
    v = form("username=alice&password=x", "username");
    CHECK(v != NULL && strcmp(v, "alice") == 0);
    free(v);
    v = form("xusername=bob&username=", "username"); /* a longer key is another key */
    CHECK(v != NULL && strcmp(v, "") == 0);
    free(v);
    CHECK(form("username=alice", "password") == NULL);
    CHECK(form("password=a%00b", "password") == NULL); /* no NUL inside a password */
    v = form("password=100%&x=1", "password");         /* a stray % stays as it is */
    CHECK(v != NULL && strcmp(v, "100%") == 0);
    free(v);
    v = form("password=%4", "password");
    CHECK(v != NULL && strcmp(v, "%4") == 0);
    free(v);
}

static const char *str(plist_t d, const char *k)
{
    plist_t v = plist_dict_get_item(d, k);
    return v != NULL && plist_get_node_type(v) == PLIST_STRING ? plist_get_string_ptr(v, NULL)
                                                               : NULL;
}

TEST(profile_service)
{
    plist_t p = mobileconfig_profile_service("mdmd.h.profile-service", "https://h/enroll/ota", "C");
    plist_t c = plist_dict_get_item(p, "PayloadContent");
    CHECK(strcmp(str(p, "PayloadType"), "Profile Service") == 0);
    CHECK(strlen(str(p, "PayloadUUID")) == 36);
    CHECK(c != NULL && plist_get_node_type(c) == PLIST_DICT);
    CHECK(strcmp(str(c, "URL"), "https://h/enroll/ota") == 0 &&
          strcmp(str(c, "Challenge"), "C") == 0);
    CHECK(plist_array_get_size(plist_dict_get_item(c, "DeviceAttributes")) == 7);
    plist_free(p);
}

TEST(mdm_profile)
{
    char uuid[MOBILECONFIG_UUID_LEN];
    plist_t p = mobileconfig_new("x.mdm", "n", "d");
    mobileconfig_add(p, mobileconfig_pkcs12("x.id", "i", "p12", 3, "pw", "f.p12", uuid));
    struct mobileconfig_mdm m = {"x.mdm.mdm", uuid, "com.apple.mgmt.t", "https://h/mdm/connect",
                                 "https://h/mdm/checkin"};
    mobileconfig_add(p, mobileconfig_mdm(&m));
    plist_t items = plist_dict_get_item(p, "PayloadContent");
    CHECK(strcmp(str(p, "PayloadType"), "Configuration") == 0);
    CHECK(plist_array_get_size(items) == 2);
    plist_t id = plist_array_get_item(items, 0), mdm = plist_array_get_item(items, 1);
    CHECK(strcmp(str(id, "PayloadUUID"), uuid) == 0 && strcmp(str(id, "Password"), "pw") == 0);
    CHECK(strcmp(str(mdm, "IdentityCertificateUUID"), uuid) == 0);
    uint64_t rights = 0;
    plist_get_uint_val(plist_dict_get_item(mdm, "AccessRights"), &rights);
    CHECK(rights == 8191);
    size_t len;
    char *xml = mobileconfig_xml(p, &len);
    CHECK(len > 0 && strlen(xml) == len && strstr(xml, "com.apple.mdm") != NULL);
    free(xml);
    plist_free(p);
}

TEST(id_prefix)
{
    char *a = mobileconfig_id_prefix("https://mdm.example.com:8443");
    char *b = mobileconfig_id_prefix("https://[::1]:8443/x");
    char *c = mobileconfig_id_prefix("https://we!rd_host/");
    CHECK(strcmp(a, "mdmd.mdm.example.com") == 0);
    CHECK(strcmp(b, "mdmd.--1") == 0);
    CHECK(strcmp(c, "mdmd.we-rd-host") == 0);
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    RUN(form_values);
    RUN(profile_service);
    RUN(mdm_profile);
    RUN(id_prefix);
    return harness_done();
}
