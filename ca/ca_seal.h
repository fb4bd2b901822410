/* ca_seal.h: secrets at rest (escrowed bootstrap tokens): AES-256-GCM under
 * keys of their own, kept in one key file (docs/SECURITY.md).
 *
 * The key file holds one "<id> <key>" line per key (16 and 64 hex digits),
 * the newest first; it is created with one key, mode 0600, when absent.
 * Sealing uses the newest key; opening finds the key by the id in the sealed
 * text, so tokens sealed before a rotation still open.  The file is read at
 * each call (small, local, and seldom: one call per bootstrap-token message),
 * so a rotation needs no restart.  Pure functions otherwise; usable on the
 * loop or a worker. */
#ifndef MDMD_CA_SEAL_H
#define MDMD_CA_SEAL_H

#include <stddef.h>

#include "../core/util.h"

#define CA_SEAL_ID_LEN 17 /* 16 hex digits + NUL */

/* Creates path with one new key when it does not exist (mode 0600); checks
 * it otherwise.  0, or -1 (logged). */
int ca_seal_keyfile_init(const char *path) MDMD_MUSTCHECK;
/* Puts a new key first; the others stay, to open what they sealed.  id
 * receives the new key's id.  0, or -1 (logged). */
int ca_seal_rotate(const char *path, char id[CA_SEAL_ID_LEN]) MDMD_MUSTCHECK;

/* Drops every key but the newest and those whose ids are in keep; *dropped
 * says how many went.  0, or -1 (logged). */
int ca_seal_prune(const char *path, const char *const *keep, size_t nkeep,
                  int *dropped) MDMD_MUSTCHECK;
/* The key id of a sealed text into id; 0, or -1 when it is not one. */
int ca_seal_key_id(const char *sealed, char id[CA_SEAL_ID_LEN]) MDMD_MUSTCHECK;

/* "s1:<key id>:<base64 of nonce | ciphertext | tag>", bound to context (the
 * UDID: a sealed value copied to another device does not open).  Caller
 * frees; NULL on error (logged). */
char *ca_seal(const char *path, const char *context, const void *in, size_t len);
/* The plaintext (caller frees, *len its size), or NULL: unknown key id,
 * tampered or malformed text, other context (logged without the text). */
unsigned char *ca_unseal(const char *path, const char *context, const char *sealed, size_t *len);

#endif
