/* mdmsim_steps.h: --step SPEC, the check-in messages beyond Authenticate and
 * TokenUpdate, sent in order once the device is enrolled (before its Idle
 * polls), each answer printed on stdout as one line:
 *   step=N name=SPEC udid=U http=CODE [Key=value ...]
 * (the answer's plist keys; a dictionary's keys as Parent.Key; data as its
 * text when printable, else len:N).  Non-2xx answers are printed, not errors.
 *   user-auth:U        UserAuthenticate for UserID U (and the DigestResponse
 *                      request when the server sends a non-empty challenge)
 *   user-token:U       TokenUpdate on U's user channel (own token and magic)
 *   ipad-token:NAME    the same as Shared iPad sends it (all-F UserID,
 *                      UserShortName NAME)
 *   user-poll:U        Idle on U's channel (UserID U), then answers commands
 *                      (with UserID) until the server has none; prints how
 *                      many and their RequestTypes; --notnow-rate applies
 *   ipad-poll:NAME     the same as Shared iPad polls (all-F UserID,
 *                      UserShortName NAME)
 *   set-bootstrap:TEXT SetBootstrapToken with TEXT (empty: no token = clear)
 *   get-bootstrap      GetBootstrapToken
 *   get-token:TYPE     GetToken for TokenServiceType TYPE
 *   rts                ReturnToService
 *   awaiting           TokenUpdate with AwaitingConfiguration true
 *   raw:TYPE           a message of MessageType TYPE with UDID and Topic only
 *   bad-bootstrap      SetBootstrapToken whose BootstrapToken is a string */
#ifndef MDMSIM_STEPS_H
#define MDMSIM_STEPS_H

#include "mdmsim_core.h"

#define SIM_STEP_NO_USER_ID "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

/* In mdmsim.c. */
static int sim_http_put(struct sim_dev *d, const char *path, const char *ctype, plist_t body);
static void sim_session_end(struct sim_dev *d, int failed);
static void sim_dev_send(struct sim_dev *d, enum sim_state st, plist_t report);
static plist_t sim_msg_base(const struct sim_dev *d, const char *type);
static plist_t sim_msg_token_update(const struct sim_dev *d);
static void sim_notnow_clear(struct sim_dev *d);
static void sim_steps_done(struct sim_dev *d);

static const char *sim_step_arg(const char *spec)
{
    const char *c = strchr(spec, ':');
    return c != NULL ? c + 1 : "";
}

static int sim_step_is(const char *spec, const char *name)
{
    size_t n = strlen(name);
    return strncmp(spec, name, n) == 0 && (spec[n] == '\0' || spec[n] == ':');
}

static plist_t sim_step_user_token(const struct sim_dev *d, const char *user, int ipad)
{
    char label[SIM_CHAN_MAX + 32], magic[SIM_CHAN_MAX + 16];
    uint8_t tok[32];
    plist_t m = sim_msg_base(d, "TokenUpdate");
    snprintf(label, sizeof(label), "mdmsim-user-token:%s", user);
    sim_derive(label, d->udid, tok);
    snprintf(magic, sizeof(magic), "UMAGIC-%s", user);
    sim_pl_str(m, "UserID", ipad ? SIM_STEP_NO_USER_ID : user);
    sim_pl_str(m, "UserShortName", user);
    sim_pl_str(m, "UserLongName", "mdmsim user");
    sim_pl_data(m, "Token", tok, sizeof(tok));
    sim_pl_str(m, "PushMagic", magic);
    return m;
}

/* The keys that put a status report on the channel being polled. */
static void sim_step_user_keys(const struct sim_dev *d, plist_t m)
{
    const char *spec = d->sim->o.steps[d->step];
    int ipad = sim_step_is(spec, "ipad-poll");
    sim_pl_str(m, "UserID", ipad ? SIM_STEP_NO_USER_ID : d->chan_user);
    if (ipad)
        sim_pl_str(m, "UserShortName", d->chan_user);
}

static plist_t sim_step_msg(struct sim_dev *d, const char *spec)
{
    const char *arg = sim_step_arg(spec);
    plist_t m = NULL;
    if (sim_step_is(spec, "user-auth")) {
        m = sim_msg_base(d, "UserAuthenticate");
        sim_pl_str(m, "UserID", arg);
        if (d->step_second)
            sim_pl_str(m, "DigestResponse", "mdmsim-digest");
    } else if (sim_step_is(spec, "user-token") || sim_step_is(spec, "ipad-token")) {
        m = sim_step_user_token(d, arg, sim_step_is(spec, "ipad-token"));
    } else if (sim_step_is(spec, "set-bootstrap")) {
        m = sim_msg_base(d, "SetBootstrapToken");
        if (*arg != '\0')
            sim_pl_data(m, "BootstrapToken", arg, strlen(arg));
        sim_pl_bool(m, "AwaitingConfiguration", 0);
    } else if (sim_step_is(spec, "bad-bootstrap")) {
        m = sim_msg_base(d, "SetBootstrapToken");
        sim_pl_str(m, "BootstrapToken", "not data");
    } else if (sim_step_is(spec, "get-bootstrap")) {
        m = sim_msg_base(d, "GetBootstrapToken");
    } else if (sim_step_is(spec, "get-token")) {
        plist_t p = plist_new_dict();
        m = sim_msg_base(d, "GetToken");
        sim_pl_str(m, "TokenServiceType", arg);
        sim_pl_str(p, "PhoneUDID", d->udid);
        plist_dict_set_item(m, "TokenParameters", p);
    } else if (sim_step_is(spec, "rts")) {
        m = sim_msg_base(d, "ReturnToService");
    } else if (sim_step_is(spec, "awaiting")) {
        m = sim_msg_token_update(d);
        sim_pl_bool(m, "AwaitingConfiguration", 1);
    } else if (sim_step_is(spec, "raw")) {
        m = sim_msg_base(d, arg);
    } else {
        die("event=bad_option option=step value=\"%s\"", spec);
    }
    return m;
}

static void sim_step_next(struct sim_dev *d)
{
    struct sim *s = d->sim;
    if (d->step >= s->o.nsteps) {
        sim_steps_done(d);
        return;
    }
    const char *spec = s->o.steps[d->step];
    if (sim_step_is(spec, "user-poll") || sim_step_is(spec, "ipad-poll")) {
        snprintf(d->chan_user, sizeof(d->chan_user), "%s", sim_step_arg(spec));
        d->step_cmds = 0;
        d->step_types[0] = '\0';
        sim_notnow_clear(d);
        d->last_finished[0] = '\0';
        sim_dev_send(d, SIM_ST_IDLE, NULL);
        return;
    }
    plist_t m = sim_step_msg(d, spec);
    d->state = SIM_ST_STEP;
    int rc = sim_http_put(d, s->checkin_path, SIM_CT_CHECKIN, m);
    plist_free(m);
    if (rc != 0) {
        s->st.net_errors++;
        sim_session_end(d, 1);
    }
}

static void sim_step_print_value(const char *key, plist_t v)
{
    char *str = NULL;
    uint64_t n = 0;
    uint8_t b = 0;
    switch (plist_get_node_type(v)) {
    case PLIST_STRING: printf(" %s=%s", key, plist_get_string_ptr(v, NULL)); break;
    case PLIST_BOOLEAN:
        plist_get_bool_val(v, &b);
        printf(" %s=%s", key, b ? "true" : "false");
        break;
    case PLIST_DATA: {
        const char *p = plist_get_data_ptr(v, &n);
        int text = n > 0;
        for (uint64_t i = 0; i < n && text; i++)
            text = p[i] >= 0x21 && p[i] < 0x7f;
        if (text)
            printf(" %s=%.*s", key, (int)n, p);
        else
            printf(" %s=len:%llu", key, (unsigned long long)n);
        break;
    }
    default: printf(" %s=?", key); break;
    }
    free(str);
}

static void sim_step_print(const struct sim_dev *d, const char *spec, int code, const char *body,
                           size_t len)
{
    plist_t p = NULL;
    printf("step=%u name=%s udid=%s http=%d", d->step, spec, d->udid, code);
    if (len > 0 && len < UINT32_MAX)
        plist_from_memory(body, (uint32_t)len, &p);
    plist_dict_iter it = NULL;
    if (p != NULL && plist_get_node_type(p) == PLIST_DICT)
        plist_dict_new_iter(p, &it);
    for (char *k = NULL; it != NULL;) {
        plist_t v = NULL;
        plist_dict_next_item(p, it, &k, &v);
        if (k == NULL)
            break;
        plist_dict_iter it2 = NULL;
        if (plist_get_node_type(v) == PLIST_DICT)
            plist_dict_new_iter(v, &it2);
        for (char *k2 = NULL; it2 != NULL;) {
            plist_t v2 = NULL;
            char full[256];
            plist_dict_next_item(v, it2, &k2, &v2);
            if (k2 == NULL)
                break;
            snprintf(full, sizeof(full), "%s.%s", k, k2);
            sim_step_print_value(full, v2);
            free(k2);
        }
        free(it2);
        if (plist_get_node_type(v) != PLIST_DICT)
            sim_step_print_value(k, v);
        free(k);
        k = NULL;
    }
    free(it);
    plist_free(p);
    printf("\n");
    fflush(stdout);
}

/* Any HTTP answer to a step. */
static void sim_step_on_reply(struct sim_dev *d, int code, const char *body, size_t len)
{
    const char *spec = d->sim->o.steps[d->step];
    d->state = SIM_ST_NONE;
    sim_step_print(d, spec, code, body, len);
    if (code == 200 && sim_step_is(spec, "user-auth") && !d->step_second) {
        plist_t p = NULL;
        if (len > 0 && len < UINT32_MAX)
            plist_from_memory(body, (uint32_t)len, &p);
        const char *ch = sim_pl_get_str(p, "DigestChallenge");
        d->step_second = ch != NULL && *ch != '\0';
        plist_free(p);
        if (d->step_second) {
            sim_step_next(d);
            return;
        }
    }
    d->step_second = 0;
    d->step++;
    sim_step_next(d);
}

/* The channel's poll ended (nothing left): print what it got, go on. */
static void sim_step_poll_done(struct sim_dev *d)
{
    printf("step=%u name=%s udid=%s commands=%u types=%s\n", d->step, d->sim->o.steps[d->step],
           d->udid, d->step_cmds, d->step_types[0] != '\0' ? d->step_types : "-");
    fflush(stdout);
    d->chan_user[0] = '\0';
    sim_notnow_clear(d);
    d->last_finished[0] = '\0';
    d->step++;
    sim_step_next(d);
}

/* A command arrived on the channel being polled. */
static void sim_step_poll_cmd(struct sim_dev *d, const char *type)
{
    size_t n = strlen(d->step_types);
    d->step_cmds++;
    snprintf(d->step_types + n, sizeof(d->step_types) - n, "%s%s", n > 0 ? "," : "",
             type != NULL ? type : "-");
}

#endif
