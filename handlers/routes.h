/* routes.h: the route table of each listener.  The 1-way listener serves
 * enrollment, the admin REST API and the console; the MDM listener serves
 * only the check-in and command endpoints. */
#ifndef MDMD_ROUTES_H
#define MDMD_ROUTES_H

#include "../core/http.h"

extern const struct http_route routes_public[];
extern const struct http_route routes_mdm[];
extern const struct http_route routes_scep[]; /* the optional plain-HTTP listener */

#endif
