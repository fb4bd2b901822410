/* api_pushcert.c: the push certificate over REST.  GET says which one runs
 * (topic, notAfter); PUT installs a renewal (PEM: certificate and key) into
 * apns_cert_file/apns_key_file, refused with 409 when its topic is not the
 * enrolled devices' unless ?force=1 (guard_push_renew()). */
#include "api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../push/push.h"
#include "../guard/guard.h"

struct api_pushcert {
    struct req *req;
    char *upload; /* <apns_cert_file>.upload, the PEM as sent */
    char *cert_file, *key_file;
};

static int api_pushcert_write(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, len);
    int rc = n == (ssize_t)len && fsync(fd) == 0 ? 0 : -1;
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

/* The upload becomes apns_cert_file (and a copy apns_key_file: the loaders
 * take the certificates from one and the key from the other, skipping the
 * rest).  The key file first, so the pair on disk never mismatches for long. */
static int api_pushcert_commit(struct api_pushcert *x, const unsigned char *pem, size_t len)
{
    if (*x->key_file != '\0' && strcmp(x->key_file, x->cert_file) != 0) {
        char *tmp = xasprintf("%s.upload", x->key_file);
        int rc = api_pushcert_write(tmp, pem, len) == 0 && rename(tmp, x->key_file) == 0 ? 0 : -1;
        free(tmp);
        if (rc != 0)
            return -1;
    }
    return rename(x->upload, x->cert_file);
}

static void api_pushcert_on_renew(void *arg, int status, const char *fleet_topic,
                                  const char *new_topic)
{
    struct api_pushcert *x = arg;
    size_t len;
    const unsigned char *pem = req_body(x->req, &len);
    if (status == 0 && api_pushcert_commit(x, pem, len) != 0) {
        log_err("event=push_cert_write_failed path=%s errno=%d hint=\"installed in memory; "
                "the files still hold the old one\"",
                x->cert_file, errno);
        status = 500;
    }
    if (status == 0) {
        json_t *j = json_pack("{s:s, s:s}", "topic", new_topic, "fleet_topic", fleet_topic);
        api_json(x->req, 200, j);
    } else if (status == 409) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "error",
                              "the certificate's topic differs from the enrolled devices' topic: "
                              "they could no longer be pushed (force=1 installs it anyway)",
                              "fleet_topic", fleet_topic, "new_topic", new_topic);
        api_json(x->req, 409, j);
    } else {
        req_fail(x->req, status == 503 ? 503 : 500,
                 status == 503 ? "redis unavailable" : "certificate installed, files not written");
    }
    if (status != 0)
        unlink(x->upload);
    free(x->upload);
    free(x->cert_file);
    free(x->key_file);
    free(x);
}

static int api_pushcert_force(struct req *req)
{
    char *f = req_query_param(req, "force");
    int force = f != NULL && (strcmp(f, "1") == 0 || strcmp(f, "true") == 0);
    free(f);
    return force;
}

static void api_pushcert_put(struct req *req, struct app *a)
{
    const struct conf *cf = a->cf;
    size_t len;
    const unsigned char *pem = req_body(req, &len);
    if (a->push == NULL || *cf->apns_cert_file == '\0' || *cf->apns_p12_file != '\0') {
        log_info("event=push_cert_upload_refused reason=not_pem_configured");
        req_fail(req, 409, "uploads replace apns_cert_file (PEM); it is not what runs here");
        return;
    }
    if (len == 0 || strstr((const char *)pem, "-----BEGIN CERTIFICATE-----") == NULL ||
        strstr((const char *)pem, "PRIVATE KEY-----") == NULL) {
        log_info("event=push_cert_upload_refused reason=not_pem");
        req_fail(req, 400, "the body must be PEM: the certificate and its private key");
        return;
    }
    struct api_pushcert *x = xcalloc(1, sizeof(*x));
    x->req = req;
    x->upload = xasprintf("%s.upload", cf->apns_cert_file);
    x->cert_file = xstrdup(cf->apns_cert_file);
    x->key_file = xstrdup(cf->apns_key_file);
    struct conf tmp = *cf; /* the same settings, the upload's files */
    tmp.apns_cert_file = tmp.apns_key_file = x->upload;
    struct push_cert *c = NULL;
    if (api_pushcert_write(x->upload, pem, len) == 0)
        c = push_cert_load(&tmp);
    if (c == NULL) {
        log_info("event=push_cert_upload_refused reason=unusable");
        req_fail(req, 400, "not a usable MDM push certificate and key (the log says why)");
        x->req = NULL;
        unlink(x->upload);
        free(x->upload);
        free(x->cert_file);
        free(x->key_file);
        free(x);
        return;
    }
    guard_push_renew(a->guard, a->push, c, api_pushcert_force(req), api_pushcert_on_renew, x);
}

void api_push_cert(struct req *req, void *app)
{
    struct app *a = app;
    if (!api_authorized(req, app))
        return;
    if (req_method(req) == HTTP_M_PUT) {
        api_pushcert_put(req, a);
        return;
    }
    if (a->push == NULL) {
        req_fail(req, 404, "no push certificate configured");
        return;
    }
    api_json(req, 200,
             json_pack("{s:s, s:I}", "topic", push_topic(a->push), "not_after",
                       (json_int_t)push_not_after(a->push)));
}
