/* h_enroll_int.h: the crypto-worker job of enrollment, shared by h_enroll.c
 * (the HTTP flow, on the loop) and h_enroll_job.c (the job, on a worker
 * thread).  Not for use outside these two files. */
#ifndef MDMD_H_ENROLL_INT_H
#define MDMD_H_ENROLL_INT_H

#include <stddef.h>

#include "../ca/ca.h"

#define H_ENROLL_CHALLENGE_LEN 33    /* 32 characters (about 185 bits) + NUL */
#define H_ENROLL_UDID_MAX 65
#define H_ENROLL_OTA_DAYS 1          /* the OTA identity only has to last until phase 2 */

enum h_enroll_kind {
    H_ENROLL_SERVICE,                /* the Profile Service profile (after login) */
    H_ENROLL_PHASE1,                 /* the OTA identity profile */
    H_ENROLL_PHASE2,                 /* the MDM profile */
};

/* Inputs are copied on the loop before worker_submit(); the job reads only
 * them (the CA and the signing identity are read-only and outlive it), and
 * writes only the outputs, which the loop reads in the done callback. */
struct h_enroll_job {
    enum h_enroll_kind kind;
    const struct ca *ca;
    X509 *sign_cert;                 /* borrowed: the profile-signing identity */
    EVP_PKEY *sign_key;
    char *id_prefix;                 /* PayloadIdentifier prefix (mobileconfig_id_prefix) */
    char *url;                       /* SERVICE: where the device POSTs; PHASE2: ServerURL */
    char *checkin_url;               /* PHASE2 */
    char *topic;                     /* PHASE2 */
    char challenge[H_ENROLL_CHALLENGE_LEN];  /* SERVICE */
    char udid[H_ENROLL_UDID_MAX];    /* PHASE1/2: CN of the identity */
    char key_type[16];               /* device_key_type */
    char p12_mode[16];               /* pkcs12_mode */
    int days;                        /* PHASE2: cert_validity_days */
    /* outputs */
    int ok;                          /* 1 when der holds the signed profile */
    unsigned char *der;              /* the CMS-signed profile (free()) */
    size_t der_len;
    char fp[CA_FINGERPRINT_LEN];     /* PHASE1/2: the issued identity */
};

void h_enroll_job_run(struct h_enroll_job *j);    /* on a worker thread */
void h_enroll_job_clear(struct h_enroll_job *j);  /* frees inputs and outputs */

#endif
