/* mdm_user.c: user channels (mdm.h): UserAuthenticate with the policy of
 * user_channel, and TokenUpdate on a channel.  A channel acts with its
 * device's identity (the same certificate) and has its own record, queue,
 * NotNow marks and history under the device's hash tag (docs/REDIS.md). */
#include "mdm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/app.h"
#include "../../core/conf.h"
#include "../../core/http.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "../../store/store_checkin.h"
#include "../apple/apple.h"

/* Shared iPad's UserID on every user channel (Apple: "to indicate that
 * authentication doesn't occur"): the user is then UserShortName. */
#define MDM_USER_NO_ID "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

/* The user part of the request's channel, or NULL (caller frees). */
static char *mdm_user_of(plist_t body)
{
    char *user = apple_plist_dict_string(body, "UserID");
    if (user != NULL && strcmp(user, MDM_USER_NO_ID) != 0)
        return user;
    free(user);
    user = apple_plist_dict_string(body, "UserShortName");
    return user != NULL ? user : apple_plist_dict_string(body, "EnrollmentUserID");
}

int mdm_user_channel(struct mdm_msg *m)
{
    char id[UTIL_CHANNEL_MAX];
    char *user = mdm_user_of(m->body);
    if (user == NULL)
        return 0;
    int n = snprintf(id, sizeof(id), "%s:%s", m->udid, user);
    free(user);
    if (n <= 0 || (size_t)n >= sizeof(id) || !util_channel_valid(id, (size_t)n)) {
        log_warn("event=user_channel_refused udid=%s reason=user_malformed", m->udid);
        req_fail(m->req, 400, "malformed UserID, UserShortName or EnrollmentUserID");
        mdm_done(m);
        return -1;
    }
    memcpy(m->udid, id, (size_t)n + 1);
    return 1;
}

/* Apple (userauthenticate.yaml, notes): the first request gets a
 * DigestChallenge; a zero-length one means no AuthToken is needed, and the
 * device then sends no second request.  mdmd issues no challenges (Apple
 * does not say how the device makes its digest, so none could be checked):
 * a DigestResponse can only be answered as one that does not check out,
 * which Apple's text says is a 200 with an empty AuthToken. */
static void mdm_user_on_ident(void *arg, int err, int ident, const char *const *v,
                              const size_t *len, size_t n)
{
    struct mdm_msg *m = arg;
    if (mdm_refuse(m, err, ident)) {
        mdm_done(m);
        return;
    }
    int second = plist_dict_get_item(m->body, "DigestResponse") != NULL;
    plist_t a = plist_new_dict();
    plist_dict_set_item(a, second ? "AuthToken" : "DigestChallenge", plist_new_string(""));
    log_info("event=user_authenticate udid=%s step=%s", m->udid,
             second ? "digest_response_refused" : "empty_challenge");
    mdm_answer(m, a);
    mdm_done(m);
}

void mdm_user_authenticate(struct mdm_msg *m)
{
    if (!m->app->cf->user_channel_accept) {
        /* Apple: 410 when the server is not going to manage the user; the
         * device asks again at the user's next login. */
        log_info("event=user_authenticate udid=%s step=declined status=410", m->udid);
        req_respond(m->req, 410, NULL, NULL, 0);
        mdm_done(m);
        return;
    }
    char *user = apple_plist_dict_string(m->body, "UserID");
    int ok = user != NULL && *user != '\0';
    free(user);
    if (!ok) {
        req_fail(m->req, 400, "UserAuthenticate needs UserID");
        mdm_done(m);
        return;
    }
    struct store_device_msg msg = mdm_device_msg(m);
    store_ident_check(m->app->store, &msg, mdm_user_on_ident, m);
}

static const char *const mdm_user_token_map[][2] = {
    {"PushMagic", "push_magic"},        {"Topic", "topic"}, {"UserShortName", "user_short_name"},
    {"UserLongName", "user_long_name"}, {NULL, NULL},
};

static void mdm_user_on_token(void *arg, int err, int ident, int enrolled_now)
{
    struct mdm_msg *m = arg;
    if (!mdm_refuse(m, err, ident)) {
        if (enrolled_now)
            log_info("event=user_channel_enrolled udid=%s", m->udid);
        req_respond(m->req, 200, NULL, NULL, 0);
    }
    mdm_done(m);
}

void mdm_user_token_update(struct mdm_msg *m)
{
    if (!m->app->cf->user_channel_accept) {
        /* user_channel decline: no channel, but nothing for the device to
         * retry either. */
        log_info("event=user_channel_token_ignored udid=%s reason=user_channel_decline", m->udid);
        req_respond(m->req, 200, NULL, NULL, 0);
        mdm_done(m);
        return;
    }
    char *token = mdm_checkin_data_hex(m->body, "Token", MDM_CHECKIN_TOKEN_LEN);
    if (token == NULL || plist_dict_get_item(m->body, "PushMagic") == NULL) {
        free(token);
        req_fail(m->req, 400, "TokenUpdate needs Token (32 bytes) and PushMagic");
        mdm_done(m);
        return;
    }
    mdm_field_take(m, "token", token);
    mdm_fields_from(m, m->body, mdm_user_token_map);
    struct store_device_msg msg = mdm_device_msg(m);
    store_user_token_update(m->app->store, &msg, mdm_user_on_token, m);
}
