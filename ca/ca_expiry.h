/* ca_expiry.h: when certificates expire, for the expiry guards
 * (handlers/guard).  Pure functions, any thread. */
#ifndef MDMD_CA_EXPIRY_H
#define MDMD_CA_EXPIRY_H

#include "../core/util.h"

#include <stdint.h>

/* The notAfter of the first certificate in the PEM file at path, in seconds
 * since the epoch.  0, or -1 when the file has no readable certificate. */
int ca_expiry_file(const char *path, int64_t *not_after_s) MDMD_MUSTCHECK;

#endif
