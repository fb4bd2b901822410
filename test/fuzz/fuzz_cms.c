/* Fuzz target: CMS-signed messages as devices send them during enrollment
 * (ca_cms_verify, with and without a trust store). */
#include <stdint.h>
#include <stdlib.h>

#include "../../ca/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    unsigned char *content = NULL;
    size_t clen = 0;
    X509 *signer = NULL;
    if (ca_cms_verify(data, len, NULL, &content, &clen, &signer) == 0) {
        free(content);
        ca_cert_free(signer);
    }
    return 0;
}
