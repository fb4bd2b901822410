#include "routes.h"

#include "h_ca.h"
#include "h_health.h"

const struct http_route routes_public[] = {
    {HTTP_M_GET | HTTP_M_HEAD, "/healthz", h_health},
    {HTTP_M_GET | HTTP_M_HEAD, "/mdm/ca", h_ca_cert},
    {0, NULL, NULL},
};

const struct http_route routes_mdm[] = {
    {0, NULL, NULL},
};
