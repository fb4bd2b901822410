#include "enroll.h"

#include <stdlib.h>
#include <string.h>

#include "../../ca/ca.h"
#include "../../core/app.h"
#include "../../core/http.h"

void enroll_ca_cert(struct req *req, void *app)
{
    struct app *a = app;
    char *format = req_query_param(req, "format");
    size_t len;

    if (format != NULL && strcmp(format, "pem") == 0) {
        const char *pem = ca_cert_pem(a->ca);
        req_respond(req, 200, "application/x-pem-file", pem, strlen(pem));
    } else if (format == NULL || strcmp(format, "der") == 0) {
        const unsigned char *der = ca_cert_der(a->ca, &len);
        req_add_header(req, "Content-Disposition", "attachment; filename=\"mdm-ca.crt\"");
        req_respond(req, 200, "application/x-x509-ca-cert", der, len);
    } else {
        req_fail(req, 400, "format must be der or pem");
    }
    free(format);
}
