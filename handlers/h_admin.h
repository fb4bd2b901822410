/* h_admin.h: the admin REST API (JSON) on the 1-way listener, behind
 * "Authorization: Bearer <api key>".  Missing or wrong key: 401 (this is not
 * a device endpoint).  Routes: see docs/API.md. */
#ifndef MDMD_H_ADMIN_H
#define MDMD_H_ADMIN_H

#include <jansson.h>

struct req;

void h_admin_commands(struct req *req, void *app);   /* POST /v1/commands */
void h_admin_devices(struct req *req, void *app);    /* GET /v1/devices */
void h_admin_device(struct req *req, void *app);     /* /v1/devices/{udid}[/commands] */
void h_admin_push(struct req *req, void *app);       /* POST /v1/push */

/* Answers with j as compact JSON; takes the reference. */
void h_admin_json(struct req *req, int status, json_t *j);

/* 503 for a store error (timeout or unavailable). */
void h_admin_fail(struct req *req, int err);

/* 1 if the request carries the API key or comes through the console's API
 * with a valid session and CSRF token (req_user() set, h_console.h);
 * otherwise answers 401 and returns 0. */
int h_admin_authorized(struct req *req, void *app);

#endif
