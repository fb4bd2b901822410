/* ca_mac.h: message authentication for what mdmd sends out (webhook
 * signatures).  Pure functions, any thread. */
#ifndef MDMD_CA_MAC_H
#define MDMD_CA_MAC_H

#include <stddef.h>

/* HMAC-SHA256 of data under key, as 64 lowercase hex digits and a NUL. */
void ca_mac_hmac_sha256_hex(const char *key, size_t keylen, const void *data, size_t n,
                            char out[65]);

#endif
