/* enroll_int.h: what the files of handlers/enroll/ share; nothing outside
 * the module includes it. */
#ifndef MDMD_ENROLL_INT_H
#define MDMD_ENROLL_INT_H

#include <stddef.h>

#include "../../ca/ca.h"
#include "../../ca/ca_scep.h"

/* The crypto-worker job of enrollment, shared by enroll.c
 * (the HTTP flow, on the loop) and enroll_job.c (the job, on a worker
 * thread).  Not for use outside these two files. */

#define ENROLL_CHALLENGE_LEN 33 /* 32 characters (about 185 bits) + NUL */
#define ENROLL_UDID_MAX 65
#define ENROLL_OTA_DAYS 1 /* the OTA identity only has to last until phase 2 */

enum enroll_kind {
    ENROLL_SERVICE, /* the Profile Service profile (after login) */
    ENROLL_PHASE1,  /* the OTA identity profile */
    ENROLL_PHASE2,  /* the MDM profile */
};

/* Inputs are copied on the loop before worker_submit(); the job reads only
 * them (the CA and the signing identity are read-only and outlive it), and
 * writes only the outputs, which the loop reads in the done callback. */
struct enroll_job {
    enum enroll_kind kind;
    const struct ca *ca;
    X509 *sign_cert; /* borrowed: the profile-signing identity */
    EVP_PKEY *sign_key;
    char *id_prefix;                      /* PayloadIdentifier prefix (mobileconfig_id_prefix) */
    char *url;                            /* SERVICE: where the device POSTs; PHASE2: ServerURL */
    char *checkin_url;                    /* PHASE2 */
    char *topic;                          /* PHASE2 */
    char challenge[ENROLL_CHALLENGE_LEN]; /* SERVICE */
    char udid[ENROLL_UDID_MAX];           /* PHASE1/2: CN of the identity */
    char key_type[16];                    /* device_key_type */
    char p12_mode[16];                    /* pkcs12_mode */
    int days;                             /* PHASE2: cert_validity_days */
    /* outputs */
    int ok;             /* 1 when der holds the signed profile */
    unsigned char *der; /* the CMS-signed profile (free()) */
    size_t der_len;
    char fp[CA_FINGERPRINT_LEN]; /* PHASE1/2: the issued identity */
};

void enroll_job_run(struct enroll_job *j);   /* on a worker thread */
void enroll_job_clear(struct enroll_job *j); /* frees inputs and outputs */

/* Shared by enroll_scep.c (SCEP) and enroll_scep_profile.c (profiles);
 * not for use outside these two files. */

#define ENROLL_SCEP_CT_PROFILE "application/x-apple-aspen-config"
#define ENROLL_SCEP_CHALLENGE_LEN 33 /* 32 random characters (~185 bits) + NUL */

struct enroll_scep_signer {
    X509 *cert; /* signs profiles: the TLS server identity */
    EVP_PKEY *key;
    struct enroll_scep_signer *older; /* replaced by a reload; jobs may still use it */
};

struct enroll_scep_keys {
    struct ca_scep *sc;                /* the SCEP responder */
    struct enroll_scep_signer *signer; /* the current profile signer */
    struct worker *worker;             /* borrowed: makes a new RA */
    int ra_ok;                         /* written by the RA job */
};

#endif
