/* handler_env.h: what the handler fuzz targets share (test only): one app
 * as main builds it (configuration defaults, a CA and server certificate in
 * a scratch directory, the crypto worker, wake without APNs) over the fake
 * store, the MDM and public route tables behind http_test_server_new(), and
 * a device certificate to stand for the TLS client identity. */
#ifndef MDMD_HANDLER_ENV_H
#define MDMD_HANDLER_ENV_H

#include <stddef.h>

#include "../../core/http.h"

enum henv_listener { HENV_MDM, HENV_PUBLIC };

#define HENV_UDID "FUZZ-UDID-0001" /* the device certificate's CN */
extern const char henv_api_key[];  /* "Authorization: Bearer <key>" is an admin */

/* Built on first use, kept for the process. */
void henv_init(void);
X509 *henv_device_cert(void);

/* Runs t on the listener's routes with the fake store in mode (fake_store.h),
 * then the loop until the answer is there and nothing the request started
 * (store ops, worker jobs) is left.  Aborts (a crash for libFuzzer) when the
 * answer is malformed: a status outside the set the handlers may answer, a
 * JSON Content-Type with a body that is not JSON, no answer at all.  Returns
 * the status, or -1 when t was no request. */
int henv_run(enum henv_listener l, int mode, const struct http_test_req *t);

#endif
