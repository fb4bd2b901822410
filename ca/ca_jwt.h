/* ca_jwt.h: JSON Web Tokens (RFC 7519) signed RS256 (RFC 7518 3.1), for
 * GetToken's com.apple.maid service type: Apple's identity service checks
 * them with the public key of the certificate registered in Apple Business or
 * School Manager.  Reads the key file at each call (blocking): run it on the
 * crypto worker.  Thread-safe. */
#ifndef MDMD_CA_JWT_H
#define MDMD_CA_JWT_H

#include <stddef.h>

/* "<base64url header>.<base64url claims>.<base64url signature>", header
 * {"alg":"RS256","typ":"JWT"}, claims_json as given (compact JSON text),
 * signed with the RSA private key in the PEM file key_path.  Caller frees;
 * NULL on error (logged: unreadable key, not RSA). */
char *ca_jwt_rs256(const char *key_path, const char *claims_json);

#endif
