/* store_ddm.c: the declarative-management scripts (store_ddm.h). */
#include "store_ddm.h"
#include "../core/util.h"

#include <string.h>

#include "store_int.h"
#include "store_mdm.h"

extern const char store_lua_ddm_tokens[], store_lua_ddm_items[], store_lua_ddm_fetch[],
    store_lua_ddm_status[], store_lua_ddm_status_get[], store_lua_ddm_fleet[],
    store_lua_ddm_decl_put[], store_lua_ddm_decl_get[], store_lua_ddm_decl_list[],
    store_lua_ddm_decl_del[], store_lua_ddm_set_put[], store_lua_ddm_set_get[],
    store_lua_ddm_set_list[], store_lua_ddm_set_del[], store_lua_ddm_set_assign[],
    store_lua_ddm_notify[], store_lua_ddm_asset_put[], store_lua_ddm_asset_get[],
    store_lua_ddm_asset_list[], store_lua_ddm_asset_del[], store_lua_ddm_asset_fetch[];

static const char *const store_ddm_lua[STORE_DDM_N] = {
    [STORE_DDM_TOKENS] = store_lua_ddm_tokens,
    [STORE_DDM_ITEMS] = store_lua_ddm_items,
    [STORE_DDM_FETCH] = store_lua_ddm_fetch,
    [STORE_DDM_STATUS] = store_lua_ddm_status,
    [STORE_DDM_STATUS_GET] = store_lua_ddm_status_get,
    [STORE_DDM_FLEET] = store_lua_ddm_fleet,
    [STORE_DDM_DECL_PUT] = store_lua_ddm_decl_put,
    [STORE_DDM_DECL_GET] = store_lua_ddm_decl_get,
    [STORE_DDM_DECL_LIST] = store_lua_ddm_decl_list,
    [STORE_DDM_DECL_DEL] = store_lua_ddm_decl_del,
    [STORE_DDM_SET_PUT] = store_lua_ddm_set_put,
    [STORE_DDM_SET_GET] = store_lua_ddm_set_get,
    [STORE_DDM_SET_LIST] = store_lua_ddm_set_list,
    [STORE_DDM_SET_DEL] = store_lua_ddm_set_del,
    [STORE_DDM_SET_ASSIGN] = store_lua_ddm_set_assign,
    [STORE_DDM_NOTIFY] = store_lua_ddm_notify,
    [STORE_DDM_ASSET_PUT] = store_lua_ddm_asset_put,
    [STORE_DDM_ASSET_GET] = store_lua_ddm_asset_get,
    [STORE_DDM_ASSET_LIST] = store_lua_ddm_asset_list,
    [STORE_DDM_ASSET_DEL] = store_lua_ddm_asset_del,
    [STORE_DDM_ASSET_FETCH] = store_lua_ddm_asset_fetch,
};

#define STORE_DDM_DEPTH 8 /* the scripts nest three deep */

static json_t *store_ddm_json(const redisReply *r, int depth)
{
    switch (r->type) {
    case REDIS_REPLY_INTEGER: return json_integer(r->integer);
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: return json_stringn_nocheck(r->str, r->len);
    case REDIS_REPLY_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < r->elements && depth < STORE_DDM_DEPTH; i++)
            json_array_append_new(a, store_ddm_json(r->element[i], depth + 1));
        return a;
    }
    default: return json_null();
    }
}

static void store_ddm_reply(struct store_op *op, int err, const redisReply *r)
{
    store_ddm_fn *cb = op->cb.ddm;
    err = store_reply_error(err, r);
    json_t *j = err == MDMD_OK ? store_ddm_json(r, 0) : NULL;
    cb(op->arg, err, j);
    json_decref(j);
}

struct store_op *store_ddm(struct store *s, int script, int argc, const char *const *argv,
                           const size_t *lens, store_ddm_fn *cb, void *arg)
{
    struct store_argv a;
    store_argv_init(&a);
    for (int i = 0; i < argc; i++)
        store_argv_push(&a, argv[i], lens != NULL ? lens[i] : strlen(argv[i]));
    return store_argv_script(s, store_ddm_lua[script], script == STORE_DDM_NOTIFY ? 1 : 0, &a,
                             store_ddm_reply, (union store_cb){.ddm = cb}, arg);
}

int store_ddm_ident(json_t *reply)
{
    static const struct {
        const char *s;
        int ident;
    } map[] = {{"ok", STORE_ID_OK},
               {"unknown", STORE_ID_UNKNOWN},
               {"checked_out", STORE_ID_CHECKED_OUT},
               {"cert_mismatch", STORE_ID_CERT_MISMATCH},
               {"revoked", STORE_ID_REVOKED}};
    const char *s = json_string_value(json_array_get(reply, 0));
    for (size_t i = 0; s != NULL && i < ARRAY_LEN(map); i++)
        if (strcmp(s, map[i].s) == 0)
            return map[i].ident;
    return STORE_ID_UNKNOWN;
}
