#include "ca_expiry.h"

#include <openssl/asn1.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <time.h>

int ca_expiry_file(const char *path, int64_t *not_after_s)
{
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    struct tm tm;
    int rc = -1;
    if (x != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
        *not_after_s = (int64_t)timegm(&tm);
        rc = 0;
    }
    X509_free(x);
    if (f != NULL)
        fclose(f);
    return rc;
}
