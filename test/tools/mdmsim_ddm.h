/* mdmsim_ddm.h: the simulated device's declarative management (Apple's
 * declarative/protocol and status).  A DeclarativeManagement command (or
 * --ddm-sync, once) makes the device sync at the end of its cycle: tokens;
 * when the DeclarationsToken moved, declaration-items, then each declaration
 * whose ServerToken it does not hold; then a full status report with the
 * items a phone sends (device.*, softwareupdate.*, management.declarations).
 * A management.test with ReturnStatus Failed is reported invalid; a
 * softwareupdate.enforcement.specific above the device's version goes
 * downloading, prepared, installing, then installed (the version moves), one
 * stage per sync.  Included by mdmsim.c only. */
#ifndef MDMSIM_DDM_H
#define MDMSIM_DDM_H

#include "mdmsim_core.h"

enum { SIM_DDM_TOKENS = 1, SIM_DDM_ITEMS, SIM_DDM_FETCH, SIM_DDM_STATUS };

static void sim_dev_send(struct sim_dev *d, enum sim_state st, plist_t report);
static void sim_cycle_end(struct sim_dev *d);
static void sim_proto_error(struct sim_dev *d, const char *why, const char *uuid);

static const char *const sim_ddm_kinds[][3] = {
    {"activation", "Activations", "activations"},
    {"asset", "Assets", "assets"},
    {"configuration", "Configurations", "configurations"},
    {"management", "Management", "management"},
};

static const char *sim_ddm_os(const struct sim_dev *d)
{
    return d->os_version[0] ? d->os_version : SIM_OS_VERSION;
}

static void sim_ddm_send(struct sim_dev *d, int step, const char *endpoint, const char *data)
{
    plist_t m = plist_new_dict();
    sim_pl_str(m, "MessageType", "DeclarativeManagement");
    sim_pl_str(m, "UDID", d->udid);
    sim_pl_str(m, "Endpoint", endpoint);
    if (d->sim->o.ddm_user != NULL)
        sim_pl_str(m, "UserID", d->sim->o.ddm_user);
    if (data != NULL)
        sim_pl_data(m, "Data", data, strlen(data));
    d->ddm_step = step;
    sim_dev_send(d, SIM_ST_DDM, m);
}

/* Starts a sync; the cycle ends when it is done. */
static void sim_ddm_start(struct sim_dev *d)
{
    d->ddm_pending = 0;
    d->sim->st.ddm_syncs++;
    if (d->ddm_applied == NULL)
        d->ddm_applied = json_object();
    sim_ddm_send(d, SIM_DDM_TOKENS, "tokens", NULL);
}

/* 1 when a < b as dotted versions (17.5 < 18.1 < 18.1.1). */
static int sim_ddm_older(const char *a, const char *b)
{
    while (*a || *b) {
        long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
        if (x != y)
            return x < y;
        a += *a == '.';
        b += *b == '.';
        if (!*a && !*b)
            break;
    }
    return 0;
}

/* The applied enforcement that asks for a newer OS than the device's, if any. */
static json_t *sim_ddm_su_target(struct sim_dev *d)
{
    const char *k;
    json_t *v;
    json_object_foreach(d->ddm_applied, k, v)
    {
        const char *type = json_string_value(json_object_get(v, "Type"));
        const char *target =
            json_string_value(json_object_get(json_object_get(v, "Payload"), "TargetOSVersion"));
        if (type != NULL &&
            strcmp(type, "com.apple.configuration.softwareupdate.enforcement.specific") == 0 &&
            target != NULL && sim_ddm_older(sim_ddm_os(d), target))
            return v;
    }
    return NULL;
}

static json_t *sim_ddm_softwareupdate(struct sim_dev *d)
{
    static const char *const stages[] = {"none", "downloading", "prepared", "installing"};
    json_t *su = json_object(), *t = sim_ddm_su_target(d);
    if (t == NULL) {
        d->ddm_su_stage = 0;
        json_object_set_new(su, "install-state", json_string("none"));
        return su;
    }
    json_t *p = json_object_get(t, "Payload");
    if (d->ddm_su_stage < 3) {
        d->ddm_su_stage++;
        json_object_set_new(su, "install-state", json_string(stages[d->ddm_su_stage]));
        json_object_set_new(su, "pending-version",
                            json_pack("{s:O, s:s, s:O}", "os-version",
                                      json_object_get(p, "TargetOSVersion"), "build-version",
                                      "22C152", "target-local-date-time",
                                      json_object_get(p, "TargetLocalDateTime")));
        json_object_set_new(su, "install-reason", json_pack("{s:[s]}", "reason", "declaration"));
        return su;
    }
    /* Installed: the device runs the target now. */
    snprintf(d->os_version, sizeof(d->os_version), "%s",
             json_string_value(json_object_get(p, "TargetOSVersion")));
    d->ddm_su_stage = 0;
    json_object_set_new(su, "install-state", json_string("none"));
    return su;
}

/* Configurations are active when an applied activation names them. */
static int sim_ddm_activated(struct sim_dev *d, const char *id)
{
    const char *k;
    json_t *v, *e;
    size_t i;
    json_object_foreach(d->ddm_applied, k, v)
    {
        if (strncmp(k, "activation/", 11) != 0)
            continue;
        json_array_foreach(json_object_get(json_object_get(v, "Payload"), "StandardConfigurations"),
                           i, e)
        {
            if (json_is_string(e) && strcmp(json_string_value(e), id) == 0)
                return 1;
        }
    }
    return 0;
}

static json_t *sim_ddm_declarations(struct sim_dev *d)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    for (size_t i = 0; i < ARRAY_LEN(sim_ddm_kinds); i++)
        json_object_set_new(out, sim_ddm_kinds[i][2], json_array());
    json_object_foreach(d->ddm_applied, k, v)
    {
        const char *slash = strchr(k, '/'), *id = slash ? slash + 1 : k;
        const char *ret =
            json_string_value(json_object_get(json_object_get(v, "Payload"), "ReturnStatus"));
        int failed = ret != NULL && strcmp(ret, "Failed") == 0;
        int active = strncmp(k, "configuration/", 14) != 0 || sim_ddm_activated(d, id);
        json_t *e = json_pack("{s:s, s:O, s:b, s:s}", "identifier", id, "server-token",
                              json_object_get(v, "ServerToken"), "active", active && !failed,
                              "valid", failed ? "invalid" : "valid");
        if (failed)
            json_object_set_new(e, "reasons",
                                json_pack("[{s:s, s:s}]", "code", "Error.ConfigurationFailed",
                                          "description", "management.test asked to fail"));
        for (size_t i = 0; slash && i < ARRAY_LEN(sim_ddm_kinds); i++)
            if (strncmp(k, sim_ddm_kinds[i][0], (size_t)(slash - k)) == 0 &&
                strlen(sim_ddm_kinds[i][0]) == (size_t)(slash - k))
                json_array_append(json_object_get(out, sim_ddm_kinds[i][2]), e);
        json_decref(e);
    }
    return out;
}

static void sim_ddm_report(struct sim_dev *d)
{
    char serial[16];
    sim_fmt_serial(d, serial);
    json_t *su = sim_ddm_softwareupdate(d);
    json_t *dev =
        json_pack("{s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}", "identifier", "udid",
                  d->udid, "serial-number", serial, "model", "family", "iPhone", "identifier",
                  SIM_PRODUCT, "marketing-name", "iPhone 14 Pro", "operating-system", "family",
                  "iOS", "version", sim_ddm_os(d), "build-version", SIM_BUILD_VERSION);
    json_t *rep = json_pack("{s:{s:o, s:o, s:{s:o}}, s:[], s:b}", "StatusItems", "device", dev,
                            "softwareupdate", su, "management", "declarations",
                            sim_ddm_declarations(d), "Errors", "FullReport", 1);
    char *s = json_dumps(rep, JSON_COMPACT);
    d->sim->st.ddm_reports++;
    sim_ddm_send(d, SIM_DDM_STATUS, "status", s);
    free(s);
    json_decref(rep);
}

static void sim_ddm_fetch_next(struct sim_dev *d)
{
    char ep[512];
    json_t *it = json_array_get(d->ddm_items, d->ddm_next);
    if (it == NULL) {
        sim_ddm_report(d);
        return;
    }
    snprintf(ep, sizeof(ep), "declaration/%s/%s", json_string_value(json_object_get(it, "kind")),
             json_string_value(json_object_get(it, "Identifier")));
    sim_ddm_send(d, SIM_DDM_FETCH, ep, NULL);
}

/* declaration-items: forget what the server no longer has, fetch what changed. */
static void sim_ddm_on_items(struct sim_dev *d, json_t *r)
{
    json_t *decls = json_object_get(r, "Declarations"), *keep = json_object(), *e;
    size_t i;
    json_decref(d->ddm_items);
    d->ddm_items = json_array();
    d->ddm_next = 0;
    for (size_t k = 0; k < ARRAY_LEN(sim_ddm_kinds); k++)
        json_array_foreach(json_object_get(decls, sim_ddm_kinds[k][1]), i, e)
        {
            const char *id = json_string_value(json_object_get(e, "Identifier"));
            const char *tok = json_string_value(json_object_get(e, "ServerToken"));
            if (id == NULL || tok == NULL)
                continue;
            char *key = xasprintf("%s/%s", sim_ddm_kinds[k][0], id);
            json_t *have = json_object_get(d->ddm_applied, key);
            const char *htok = json_string_value(json_object_get(have, "ServerToken"));
            if (htok != NULL && strcmp(htok, tok) == 0)
                json_object_set(keep, key, have);
            else
                json_array_append_new(
                    d->ddm_items,
                    json_pack("{s:s, s:s}", "kind", sim_ddm_kinds[k][0], "Identifier", id));
            free(key);
        }
    json_decref(d->ddm_applied);
    d->ddm_applied = keep;
    sim_ddm_fetch_next(d);
}

static void sim_ddm_on_decl(struct sim_dev *d, json_t *r)
{
    json_t *it = json_array_get(d->ddm_items, d->ddm_next++);
    char *key = xasprintf("%s/%s", json_string_value(json_object_get(it, "kind")),
                          json_string_value(json_object_get(it, "Identifier")));
    json_object_set(d->ddm_applied, key, r);
    d->sim->st.ddm_fetched++;
    free(key);
    sim_ddm_fetch_next(d);
}

/* The server's answer to a DDM check-in. */
static void sim_ddm_reply(struct sim_dev *d, const char *body, size_t len)
{
    json_t *r = NULL;
    if (d->ddm_step != SIM_DDM_STATUS) {
        r = json_loadb(body, len, 0, NULL);
        if (!json_is_object(r)) {
            json_decref(r);
            sim_proto_error(d, "DDM answer is not a JSON object", NULL);
            return;
        }
    }
    switch (d->ddm_step) {
    case SIM_DDM_TOKENS: {
        const char *t = json_string_value(
            json_object_get(json_object_get(r, "SyncTokens"), "DeclarationsToken"));
        if (t == NULL) {
            sim_proto_error(d, "TokensResponse without SyncTokens.DeclarationsToken", NULL);
            break;
        }
        snprintf(d->ddm_new, sizeof(d->ddm_new), "%s", t);
        if (strcmp(d->ddm_new, d->ddm_token) == 0 && d->ddm_synced && d->ddm_su_stage == 0 &&
            sim_ddm_su_target(d) == NULL)
            sim_cycle_end(d); /* nothing moved */
        else if (strcmp(d->ddm_new, d->ddm_token) == 0 && d->ddm_synced)
            sim_ddm_report(d); /* an update in progress moves on */
        else
            sim_ddm_send(d, SIM_DDM_ITEMS, "declaration-items", NULL);
        break;
    }
    case SIM_DDM_ITEMS: sim_ddm_on_items(d, r); break;
    case SIM_DDM_FETCH: sim_ddm_on_decl(d, r); break;
    default:
        snprintf(d->ddm_token, sizeof(d->ddm_token), "%s", d->ddm_new);
        d->ddm_synced = 1;
        sim_cycle_end(d);
    }
    json_decref(r);
}

static void sim_ddm_free(struct sim_dev *d)
{
    json_decref(d->ddm_items);
    json_decref(d->ddm_applied);
    d->ddm_items = d->ddm_applied = NULL;
}

#endif
