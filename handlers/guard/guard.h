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
struct push_cert;
struct conf;
struct guard;

#define GUARD_WARN_DAYS 30

enum guard_cert { GUARD_APNS, GUARD_CA, GUARD_SERVER, GUARD_SCEP_RA, GUARD_N };
extern const char *const guard_cert_names[GUARD_N]; /* "apns", "ca", "server", "scep_ra" */

struct guard *guard_new(struct event_base *base, struct store *store, const struct push *push,
                        const struct conf *cf);
void guard_free(struct guard *g); /* NULL-safe */
/* A renewed push certificate (push_cert_load()) replaces the running one
 * only if its topic is the enrolled devices' (the most common topic among
 * the GUARD_TOPIC_SAMPLE devices seen last; none enrolled: any topic), or
 * force: a renewal under another Apple ID strands every device, which keep
 * the old topic until they enroll again.  cb runs once, from the loop:
 * status 0 installed, 409 refused (fleet_topic and new_topic name both), 503
 * the store did not answer (nothing changed).  c is taken in every case. */
#define GUARD_TOPIC_SAMPLE 500
typedef void guard_renew_fn(void *arg, int status, const char *fleet_topic, const char *new_topic);
void guard_push_renew(struct guard *g, struct push *p, struct push_cert *c, int force,
                      guard_renew_fn *cb, void *arg);

/* Days left (floor; negative once expired) of cert c; 0 when unknown. */
int guard_days_left(const struct guard *g, int c, int *known);

#endif
