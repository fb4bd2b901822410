/* enroll_job.c: what enrollment computes on the crypto worker: a key and
 * certificate for the device, its PKCS12, the profile around it, and the
 * profile's CMS signature.  RSA key generation takes tens to hundreds of
 * milliseconds, which the loop must never wait for; the rest is cheaper but
 * rides along so that one job gives one answer. */
#include "enroll_int.h"

#include <stdlib.h>
#include <string.h>

#include "../../core/log.h"
#include "../../core/util.h"
#include "../apple/apple.h"

struct enroll_identity { /* a new identity, as the profile carries it */
    unsigned char *p12;
    size_t len;
    char password[CA_PASSWORD_LEN];
    char uuid[MOBILECONFIG_UUID_LEN]; /* PayloadUUID of its payload */
};

static void enroll_identity_wipe(struct enroll_identity *id)
{
    if (id->p12 != NULL)
        explicit_bzero(id->p12, id->len);
    free(id->p12);
    explicit_bzero(id->password, sizeof(id->password));
}

/* Key (on this thread), certificate with CN = udid, PKCS12 bundle with the CA
 * as its chain and a random password.  Sets j->fp.  0 or -1 (logged by ca). */
static int enroll_job_identity(struct enroll_job *j, int days, struct enroll_identity *id)
{
    EVP_PKEY *key = ca_keygen(j->key_type);
    X509 *cert = key != NULL ? ca_issue_device_cert(j->ca, key, j->udid, days) : NULL;
    X509 *chain[1] = {ca_cert(j->ca)};
    int ok =
        cert != NULL && ca_cert_fingerprint(cert, j->fp) == 0 &&
        ca_random_password(id->password, sizeof(id->password)) == 0 &&
        ca_pkcs12(key, cert, chain, 1, j->udid, id->password, j->p12_mode, &id->p12, &id->len) == 0;
    ca_cert_free(cert);
    ca_pkey_free(key);
    return ok ? 0 : -1;
}

static plist_t enroll_job_service(const struct enroll_job *j)
{
    char *id = xasprintf("%s.profile-service", j->id_prefix);
    plist_t p = mobileconfig_profile_service(id, j->url, j->challenge);
    free(id);
    return p;
}

static plist_t enroll_job_phase1(const struct enroll_job *j, struct enroll_identity *id)
{
    char *pid = xasprintf("%s.ota", j->id_prefix);
    char *iid = xasprintf("%s.ota.identity", j->id_prefix);
    char *file = xasprintf("%s-enrollment.p12", j->udid);
    plist_t p = mobileconfig_new(pid, "Enrollment identity",
                                 "A temporary identity this device signs its enrollment "
                                 "request with.");
    mobileconfig_add(p, mobileconfig_pkcs12(iid, "Enrollment identity", id->p12, id->len,
                                            id->password, file, id->uuid));
    free(pid);
    free(iid);
    free(file);
    return p;
}

static plist_t enroll_job_phase2(const struct enroll_job *j, struct enroll_identity *id)
{
    size_t ca_len;
    const unsigned char *ca_der = ca_cert_der(j->ca, &ca_len);
    char *pid = xasprintf("%s.mdm", j->id_prefix), *rid = xasprintf("%s.mdm.ca", j->id_prefix);
    char *iid = xasprintf("%s.mdm.identity", j->id_prefix);
    char *mid = xasprintf("%s.mdm.mdm", j->id_prefix);
    char *file = xasprintf("%s.p12", j->udid);
    plist_t p = mobileconfig_new(pid, "Device management",
                                 "Lets this organization manage the device: install settings "
                                 "and apps, query its state, lock or erase it.");
    mobileconfig_add(
        p, mobileconfig_root(rid, "MDM certificate authority", ca_der, ca_len, "mdm-ca.cer"));
    mobileconfig_add(p, mobileconfig_pkcs12(iid, "Device identity", id->p12, id->len, id->password,
                                            file, id->uuid));
    struct mobileconfig_mdm m = {mid, id->uuid, j->topic, j->url, j->checkin_url};
    mobileconfig_add(p, mobileconfig_mdm(&m));
    free(pid);
    free(rid);
    free(iid);
    free(mid);
    free(file);
    return p;
}

/* Signs the profile as XML; the CA goes along so the device sees the chain. */
static int enroll_job_sign(struct enroll_job *j, plist_t profile)
{
    size_t len;
    char *xml = mobileconfig_xml(profile, &len);
    X509 *extra[1] = {ca_cert(j->ca)};
    int rc = ca_cms_sign(j->sign_cert, j->sign_key, extra, 1, xml, len, &j->der, &j->der_len);
    explicit_bzero(xml, len); /* it holds a PKCS12 password */
    free(xml);
    return rc;
}

void enroll_job_run(struct enroll_job *j)
{
    struct enroll_identity id;
    plist_t profile = NULL;
    memset(&id, 0, sizeof(id));
    if (j->kind == ENROLL_SERVICE)
        profile = enroll_job_service(j);
    else if (enroll_job_identity(j, j->kind == ENROLL_PHASE1 ? ENROLL_OTA_DAYS : j->days, &id) == 0)
        profile = j->kind == ENROLL_PHASE1 ? enroll_job_phase1(j, &id) : enroll_job_phase2(j, &id);
    j->ok = profile != NULL && enroll_job_sign(j, profile) == 0;
    if (!j->ok)
        log_err("event=enroll_profile_failed kind=%d udid=%s", (int)j->kind,
                j->udid[0] ? j->udid : "-");
    plist_free(profile);
    enroll_identity_wipe(&id);
}

void enroll_job_clear(struct enroll_job *j)
{
    free(j->id_prefix);
    free(j->url);
    free(j->checkin_url);
    free(j->topic);
    free(j->der);
    explicit_bzero(j->challenge, sizeof(j->challenge));
    memset(j, 0, sizeof(*j));
}
