/* h_health.h: GET /healthz on the 1-way listener.  200 with
 * {"status":"ok","redis":"up"} when a live PING answers, 503 with
 * {"status":"degraded","redis":"down","error":...} when it does not. */
#ifndef MDMD_H_HEALTH_H
#define MDMD_H_HEALTH_H

struct req;
void h_health(struct req *req, void *app);

#endif
