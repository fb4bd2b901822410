/* apple_checkin.c: check-in messages against the table derived from Apple's
 * schema (mdm_checkin_schema.c): the type of every key a message carries,
 * and answers built only from keys the schema defines.  Pure. */
#include "apple.h"

#include <stdio.h>
#include <string.h>

static int apple_checkin_type_is(char want, plist_t v)
{
    plist_type t = plist_get_node_type(v);
    switch (want) {
    case 's': return t == PLIST_STRING;
    case 'b': return t == PLIST_BOOLEAN;
    case 'd': return t == PLIST_DATA;
    case 'D': return t == PLIST_DICT;
    case 'a': return t == PLIST_ARRAY;
    case 'i': return t == PLIST_UINT;
    case 'r': return t == PLIST_REAL || t == PLIST_UINT;
    case 't': return t == PLIST_DATE;
    default: return 1;
    }
}

static const char *apple_checkin_type_name(char t)
{
    switch (t) {
    case 's': return "string";
    case 'b': return "boolean";
    case 'd': return "data";
    case 'D': return "dictionary";
    case 'a': return "array";
    case 'i': return "integer";
    case 'r': return "real";
    case 't': return "date";
    default: return "?";
    }
}

int apple_checkin_check(plist_t body, const char *message_type, char *why, size_t n)
{
    const struct mdm_checkin_message *m = mdm_checkin_schema_find(message_type);
    if (m == NULL) {
        snprintf(why, n, "unknown MessageType");
        return -1;
    }
    for (const struct mdm_checkin_key *k = m->keys; k->name != NULL; k++) {
        plist_t parent = k->parent == NULL ? body : plist_dict_get_item(body, k->parent);
        if (k->response || parent == NULL || plist_get_node_type(parent) != PLIST_DICT)
            continue;
        plist_t v = plist_dict_get_item(parent, k->name);
        if (v != NULL && !apple_checkin_type_is(k->type, v)) {
            snprintf(why, n, "%s must be %s", k->name, apple_checkin_type_name(k->type));
            return -1;
        }
    }
    return 0;
}

int apple_checkin_answer_set(plist_t dict, const char *message_type, const char *parent,
                             const char *name, plist_t value)
{
    const struct mdm_checkin_key *k = mdm_checkin_schema_key(message_type, name, parent, 1);
    if (k == NULL || !apple_checkin_type_is(k->type, value)) {
        plist_free(value);
        return -1;
    }
    plist_dict_set_item(dict, name, value);
    return 0;
}
