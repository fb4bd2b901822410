/* mobileconfig.h: the profiles enrollment serves, built as plists.  Pure
 * functions without I/O or shared state, so the crypto worker may build a
 * profile while the loop builds another.
 *
 * Every key name and type comes from Apple's profile schema (mdm/profiles:
 * TopLevel, CommonPayloadKeys, com.apple.mdm, com.apple.security.pkcs12,
 * com.apple.security.root) or, for the Profile Service payload that the
 * schema does not describe, from Apple's "Over-the-Air Profile Delivery and
 * Configuration" (a bare top-level payload whose PayloadContent is a
 * dictionary: URL, DeviceAttributes, Challenge).  test/integration/enroll.sh
 * checks what mdmd serves against the schema files.
 *
 * Ownership: constructors return a new plist (plist_free); strings and bytes
 * passed in are copied. */
#ifndef MDMD_MOBILECONFIG_H
#define MDMD_MOBILECONFIG_H

#include <plist/plist.h>
#include <stddef.h>

#define MOBILECONFIG_UUID_LEN 37          /* 36 characters + NUL */
#define MOBILECONFIG_ACCESS_ALL 8191      /* every AccessRights bit Apple defines */

/* A top-level Configuration profile with no payloads yet. */
plist_t mobileconfig_new(const char *identifier, const char *name, const char *description);
/* Appends a payload to a profile's PayloadContent; takes ownership of it. */
void mobileconfig_add(plist_t profile, plist_t payload);

/* The Profile Service payload that starts over-the-air enrollment: the
 * device POSTs the attributes it is asked for, CMS-signed, to url. */
plist_t mobileconfig_profile_service(const char *identifier, const char *url,
                                     const char *challenge);

/* A com.apple.security.pkcs12 payload; its PayloadUUID is copied to uuid
 * (the com.apple.mdm payload points at it). */
plist_t mobileconfig_pkcs12(const char *identifier, const char *name, const void *p12, size_t len,
                            const char *password, const char *filename,
                            char uuid[MOBILECONFIG_UUID_LEN]);
/* A com.apple.security.root payload holding a DER certificate. */
plist_t mobileconfig_root(const char *identifier, const char *name, const void *der, size_t len,
                          const char *filename);

struct mobileconfig_mdm {
    const char *identifier;
    const char *identity_uuid;   /* PayloadUUID of the identity payload */
    const char *topic;           /* com.apple.mgmt.... */
    const char *server_url;      /* .../mdm/connect */
    const char *checkin_url;     /* .../mdm/checkin */
};
/* A com.apple.mdm payload: AccessRights all, CheckOutWhenRemoved true,
 * SignMessage false (the client certificate identifies the device),
 * ServerCapabilities [com.apple.mdm.per-user-connections]. */
plist_t mobileconfig_mdm(const struct mobileconfig_mdm *m);

/* p as an XML plist; caller frees; *len excludes the NUL. */
char *mobileconfig_xml(plist_t p, size_t *len);

/* "mdmd.<host of url>", for PayloadIdentifiers unique to this server
 * (a re-enrollment then replaces the profile it installed before).
 * Caller frees. */
char *mobileconfig_id_prefix(const char *url);

#endif
