/* mdm_schema.h: the MDM commands Apple defines, with their top-level keys
 * (type and whether required), derived from Apple's schema at build time of
 * the source (see test/gen_schema.sh).  Static data; nothing to free. */
#ifndef MDMD_MDM_SCHEMA_H
#define MDMD_MDM_SCHEMA_H

#include <stddef.h>

struct mdm_key {
    const char *name;        /* NULL ends a key list */
    char type;               /* s string, i integer, b boolean, r real, d data,
                                t date, a array, D dictionary, ? unknown */
    int required;
};

struct mdm_command {
    const char *request_type;
    const struct mdm_key *keys;
};

const struct mdm_command *mdm_schema_find(const char *request_type);  /* NULL: unknown */
size_t mdm_schema_count(void);
const struct mdm_command *mdm_schema_at(size_t i);                      /* sorted by name */

#endif
