/* h_provision.h: what a device gets right after it enrolls (the end of the
 * seed's D.2): on its first TokenUpdate, InstallProfile for every
 * configuration profile assigned to its user (the record's `user`, set by
 * enrollment) or to everyone, InstallProvisioningProfile for every assigned
 * provisioning profile, InstallApplication for every assigned app, then
 * DeviceInformation; all queued in order by one Lua script call, then the
 * device is woken.  A device enrolled without a user gets the "everyone"
 * content.  Single-threaded, on the loop. */
#ifndef MDMD_H_PROVISION_H
#define MDMD_H_PROVISION_H

struct app;

typedef void h_provision_done_fn(void *arg);

/* Queues the commands for udid (validated by the caller), then calls done
 * exactly once, possibly before this returns.  A failure is logged and not
 * retried: the enrollment stands and an admin can queue the commands. */
void h_provision_start(struct app *app, const char *udid, h_provision_done_fn *done, void *arg);

/* The DeviceInformation queries sent after enrollment, NULL-terminated. */
extern const char *const h_provision_queries[];

#endif
