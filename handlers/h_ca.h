/* h_ca.h: GET /mdm/ca serves the MDM CA certificate: DER as
 * application/x-x509-ca-cert (what iOS installs from Safari), or PEM with
 * ?format=pem.  Step 1 of OTA enrollment. */
#ifndef MDMD_H_CA_H
#define MDMD_H_CA_H

struct req;
void h_ca_cert(struct req *req, void *app);

#endif
