/* h_provision.h: what a device gets right after it enrolls (the end of the
 * seed's D.2): on its first TokenUpdate, InstallProfile for every
 * configuration profile assigned to its user (the record's `user`, set by
 * enrollment) or to everyone, InstallProvisioningProfile for every assigned
 * provisioning profile, InstallApplication for every assigned app, then
 * DeviceInformation; all queued in order by one Lua script call, then the
 * device is woken.  A device enrolled without a user gets the "everyone"
 * content.  Single-threaded, on the loop.
 *
 * Nothing is forgotten when Redis fails in between: the TokenUpdate script
 * that marks the device enrolled also marks its provisioning pending, and
 * the script that queues the commands clears the mark, so it runs exactly
 * once.  A pending device is provisioned at its next TokenUpdate, or by the
 * retry timer after provision_retry_s. */
#ifndef MDMD_H_PROVISION_H
#define MDMD_H_PROVISION_H

struct app;

typedef void h_provision_done_fn(void *arg);

/* Queues the commands for udid (validated by the caller) if its
 * provisioning is pending, then calls done exactly once, possibly before
 * this returns.  A failure is logged; the mark stays, for a retry. */
void h_provision_start(struct app *app, const char *udid, h_provision_done_fn *done, void *arg);

/* The retry timer: every provision_retry_s, provisions up to 20 devices
 * pending for longer than that.  Stop before the store is freed. */
void h_provision_retry_start(struct app *app);
void h_provision_retry_stop(void);

/* The DeviceInformation queries sent after enrollment, NULL-terminated. */
extern const char *const h_provision_queries[];

#endif
