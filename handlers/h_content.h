/* h_content.h: the admin REST API for what devices get after enrolling
 * (JSON, admin API key; README "Users and content"):
 *   POST /v1/profiles                   a .mobileconfig (XML, binary, or CMS-signed)
 *   POST /v1/provisioning-profiles      a .mobileprovision (CMS-signed plist)
 *   POST /v1/apps                       {"identifier", "manifest_url" | "itunes_store_id"}
 *   GET  on each collection: the list; GET/DELETE {collection}/{id};
 *   GET  /v1/profiles/{id}?raw=1        the stored bytes as uploaded
 *   PUT  {collection}/{id}/assignment   {"users":[...], "everyone":bool}
 * Uploads are checked and refused with a 400 that says why.  Uploading an id
 * again replaces its content and keeps its assignment. */
#ifndef MDMD_H_CONTENT_H
#define MDMD_H_CONTENT_H

struct req;

void h_content_profiles(struct req *req, void *app);       /* /v1/profiles */
void h_content_profile(struct req *req, void *app);        /* /v1/profiles/{id}[/assignment] */
void h_content_provprofiles(struct req *req, void *app);   /* /v1/provisioning-profiles */
void h_content_provprofile(struct req *req, void *app);
void h_content_apps(struct req *req, void *app);           /* /v1/apps */
void h_content_app(struct req *req, void *app);

/* 1 when id may name content: 1..200 characters of [A-Za-z0-9._@+-]. */
int h_content_id_ok(const char *id);

#endif
