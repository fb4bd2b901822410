/* guard.h: expiry guards.  The APNs push certificate, the MDM CA, the TLS
 * server certificate and the SCEP RA certificate are checked at startup and
 * every hour: days left are kept for /metrics (mdmd_cert_expiry_days), a
 * warning is logged from GUARD_WARN_DAYS out, and a cert_expiring event is
 * written to mdm:events once per threshold crossed (30, 14, 7, 3, 1, 0 days:
 * the smallest one the certificate is within; mdm:expiry:<what>:<notAfter>:<t>
 * remembers it was sent).  Borrows base, store and push (NULL: no push
 * certificate); paths are copied from cf.  Single-threaded. */
#ifndef MDMD_GUARD_H
#define MDMD_GUARD_H

#include <stdint.h>

struct event_base;
struct store;
struct push;
struct conf;
struct guard;

#define GUARD_WARN_DAYS 30

enum guard_cert { GUARD_APNS, GUARD_CA, GUARD_SERVER, GUARD_SCEP_RA, GUARD_N };
extern const char *const guard_cert_names[GUARD_N]; /* "apns", "ca", "server", "scep_ra" */

struct guard *guard_new(struct event_base *base, struct store *store, const struct push *push,
                        const struct conf *cf);
void guard_free(struct guard *g); /* NULL-safe */
/* Days left (floor; negative once expired) of cert c; 0 when unknown. */
int guard_days_left(const struct guard *g, int c, int *known);

#endif
