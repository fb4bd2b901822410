/* mobileconfig.c: enrollment profiles as plists (see apple.h). */
#include "apple.h"

#include <stdlib.h>
#include <string.h>

#include "../../core/util.h"

/* The attributes the device signs in phase 1 (Apple's OTA document names
 * them; DEVICE_NAME is what the enrollment record shows). */
static const char *const mobileconfig_attributes[] = {"UDID", "VERSION", "PRODUCT",    "SERIAL",
                                                      "IMEI", "MEID",    "DEVICE_NAME"};

static void mobileconfig_str(plist_t d, const char *k, const char *v)
{
    plist_dict_set_item(d, k, plist_new_string(v));
}

/* The keys CommonPayloadKeys requires (PayloadIdentifier, PayloadUUID,
 * PayloadType, PayloadVersion 1) plus a display name. */
static plist_t mobileconfig_payload(const char *type, const char *identifier, const char *name,
                                    char uuid[MOBILECONFIG_UUID_LEN])
{
    char local[MOBILECONFIG_UUID_LEN];
    char *u = uuid != NULL ? uuid : local;
    plist_t p = plist_new_dict();
    util_uuid(u);
    mobileconfig_str(p, "PayloadType", type);
    plist_dict_set_item(p, "PayloadVersion", plist_new_uint(1));
    mobileconfig_str(p, "PayloadIdentifier", identifier);
    mobileconfig_str(p, "PayloadUUID", u);
    if (name != NULL)
        mobileconfig_str(p, "PayloadDisplayName", name);
    return p;
}

plist_t mobileconfig_new(const char *identifier, const char *name, const char *description)
{
    plist_t p = mobileconfig_payload("Configuration", identifier, name, NULL);
    mobileconfig_str(p, "PayloadDescription", description);
    plist_dict_set_item(p, "PayloadContent", plist_new_array());
    return p;
}

void mobileconfig_add(plist_t profile, plist_t payload)
{
    plist_array_append_item(plist_dict_get_item(profile, "PayloadContent"), payload);
}

plist_t mobileconfig_profile_service(const char *identifier, const char *url, const char *challenge)
{
    plist_t p = mobileconfig_payload("Profile Service", identifier, "Device enrollment", NULL);
    plist_t c = plist_new_dict(), attrs = plist_new_array();
    mobileconfig_str(p, "PayloadDescription",
                     "Enrolls this device in mobile device management: it sends its identifiers, "
                     "receives an identity, then the management profile.");
    mobileconfig_str(c, "URL", url);
    for (size_t i = 0; i < ARRAY_LEN(mobileconfig_attributes); i++)
        plist_array_append_item(attrs, plist_new_string(mobileconfig_attributes[i]));
    plist_dict_set_item(c, "DeviceAttributes", attrs);
    mobileconfig_str(c, "Challenge", challenge);
    plist_dict_set_item(p, "PayloadContent", c);
    return p;
}

plist_t mobileconfig_pkcs12(const char *identifier, const char *name, const void *p12, size_t len,
                            const char *password, const char *filename,
                            char uuid[MOBILECONFIG_UUID_LEN])
{
    plist_t p = mobileconfig_payload("com.apple.security.pkcs12", identifier, name, uuid);
    plist_dict_set_item(p, "PayloadContent", plist_new_data(p12, len));
    mobileconfig_str(p, "Password", password);
    mobileconfig_str(p, "PayloadCertificateFileName", filename);
    return p;
}

plist_t mobileconfig_root(const char *identifier, const char *name, const void *der, size_t len,
                          const char *filename)
{
    plist_t p = mobileconfig_payload("com.apple.security.root", identifier, name, NULL);
    plist_dict_set_item(p, "PayloadContent", plist_new_data(der, len));
    mobileconfig_str(p, "PayloadCertificateFileName", filename);
    return p;
}

plist_t mobileconfig_mdm(const struct mobileconfig_mdm *m)
{
    plist_t p =
        mobileconfig_payload("com.apple.mdm", m->identifier, "Mobile device management", NULL);
    plist_t caps = plist_new_array();
    mobileconfig_str(p, "IdentityCertificateUUID", m->identity_uuid);
    mobileconfig_str(p, "Topic", m->topic);
    mobileconfig_str(p, "ServerURL", m->server_url);
    mobileconfig_str(p, "CheckInURL", m->checkin_url);
    plist_dict_set_item(p, "AccessRights", plist_new_uint(MOBILECONFIG_ACCESS_ALL));
    plist_dict_set_item(p, "CheckOutWhenRemoved", plist_new_bool(1));
    plist_dict_set_item(p, "SignMessage", plist_new_bool(0));
    plist_array_append_item(caps, plist_new_string("com.apple.mdm.per-user-connections"));
    plist_dict_set_item(p, "ServerCapabilities", caps);
    return p;
}

char *mobileconfig_xml(plist_t p, size_t *len)
{
    char *xml = NULL;
    uint32_t n = 0;
    plist_to_xml(p, &xml, &n);
    if (xml == NULL)
        n = 0;
    char *out = xstrndup(xml != NULL ? xml : "", n);
    free(xml);
    *len = n;
    return out;
}

char *mobileconfig_id_prefix(const char *url)
{
    const char *h = strstr(url, "://");
    h = h != NULL ? h + 3 : url;
    int v6 = *h == '[';
    h += v6;
    size_t n = strcspn(h, v6 ? "]" : ":/");
    char *out = xasprintf("mdmd.%.*s", (int)n, h);
    /* Identifiers are reverse-DNS-like: keep letters, digits, '.', '-'. */
    for (char *c = out; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '-'))
            *c = '-';
    return out;
}
