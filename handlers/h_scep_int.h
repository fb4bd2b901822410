/* h_scep_int.h: shared by h_scep.c (SCEP) and h_scep_profile.c (profiles);
 * not for use outside these two files. */
#ifndef MDMD_H_SCEP_INT_H
#define MDMD_H_SCEP_INT_H

#include "../ca/ca_scep.h"

#define H_SCEP_CT_PROFILE "application/x-apple-aspen-config"
#define H_SCEP_CHALLENGE_LEN 33          /* 32 random characters (~185 bits) + NUL */

struct h_scep_signer {
    X509 *cert;                          /* signs profiles: the TLS server identity */
    EVP_PKEY *key;
    struct h_scep_signer *older;         /* replaced by a reload; jobs may still use it */
};

struct h_scep_keys {
    struct ca_scep *sc;                  /* the SCEP responder */
    struct h_scep_signer *signer;        /* the current profile signer */
    struct worker *worker;               /* borrowed: makes a new RA */
    int ra_ok;                           /* written by the RA job */
};

#endif
