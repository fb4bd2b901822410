/* Declarative management's pure parts: the declaration table derived from
 * Apple's schema and the checks and server tokens on it (handlers/apple),
 * without a loop, Redis or TLS. */
#include <stdlib.h>
#include <string.h>

#include "../../handlers/apple/apple.h"
#include "../harness.h"

/* 0 when s passes; else err holds the message. */
static int check_json(const char *s, char *err, size_t n)
{
    json_t *d = json_loads(s, 0, NULL);
    int rc = d != NULL ? ddm_check_declaration(d, err, n) : -2;
    json_decref(d);
    return rc;
}

static int refused_with(const char *s, const char *want)
{
    char err[400] = "";
    return check_json(s, err, sizeof(err)) == -1 && strstr(err, want) != NULL;
}

TEST(table_sorted_and_found)
{
    CHECK(ddm_schema_count() > 40);
    for (size_t i = 1; i < ddm_schema_count(); i++)
        CHECK(strcmp(ddm_schema_at(i - 1)->type, ddm_schema_at(i)->type) < 0);
    const struct ddm_type *t =
        ddm_schema_find("com.apple.configuration.softwareupdate.enforcement.specific");
    CHECK(t != NULL && strcmp(t->kind, "configuration") == 0);
    CHECK(ddm_schema_find("com.apple.activation.simple") != NULL &&
          strcmp(ddm_schema_find("com.apple.activation.simple")->kind, "activation") == 0);
    CHECK(ddm_schema_find("com.apple.asset.data") != NULL);
    CHECK(ddm_schema_find("com.apple.configuration.coffee") == NULL);
    CHECK(ddm_schema_status_item("softwareupdate.install-state"));
    CHECK(ddm_schema_status_item("management.declarations"));
    CHECK(!ddm_schema_status_item("device.operating-system"));
}

TEST(valid_declarations_pass)
{
    char err[400];
    CHECK(check_json("{\"Type\":\"com.apple.configuration.softwareupdate.enforcement.specific\","
                     "\"Identifier\":\"a\",\"Payload\":{\"TargetOSVersion\":\"18.1\","
                     "\"TargetLocalDateTime\":\"2026-12-31T18:00:00\"}}",
                     err, sizeof(err)) == 0);
    CHECK(check_json("{\"Type\":\"com.apple.configuration.passcode.settings\",\"Identifier\":\"p\","
                     "\"Payload\":{\"MinimumLength\":16,\"RequireAlphanumericPasscode\":true}}",
                     err, sizeof(err)) == 0);
    CHECK(check_json("{\"Type\":\"com.apple.activation.simple\",\"Identifier\":\"x\",\"Payload\":"
                     "{\"StandardConfigurations\":[\"a\",\"p\"]}}",
                     err, sizeof(err)) == 0);
    /* ServerToken may come along (it is ignored: mdmd makes it). */
    CHECK(check_json("{\"Type\":\"com.apple.configuration.passcode.settings\",\"Identifier\":\"p\","
                     "\"ServerToken\":\"x\",\"Payload\":{}}",
                     err, sizeof(err)) == 0);
}

TEST(refusals_name_the_key)
{
    CHECK(refused_with("{\"Type\":\"com.apple.configuration.softwareupdate.enforcement.specific\","
                       "\"Identifier\":\"a\",\"Payload\":{\"TargetOSVersion\":\"18.1\"}}",
                       "Payload.TargetLocalDateTime is required"));
    CHECK(
        refused_with("{\"Type\":\"com.apple.configuration.passcode.settings\",\"Identifier\":\"p\","
                     "\"Payload\":{\"MinimumLength\":17}}",
                     "Payload.MinimumLength must be between 0 and 16"));
    CHECK(
        refused_with("{\"Type\":\"com.apple.configuration.passcode.settings\",\"Identifier\":\"p\","
                     "\"Payload\":{\"MinimumLength\":true}}",
                     "Payload.MinimumLength must be an integer"));
    CHECK(refused_with("{\"Type\":\"com.apple.configuration.management.test\",\"Identifier\":\"t\","
                       "\"Payload\":{\"Echo\":\"x\",\"ReturnStatus\":\"Maybe\"}}",
                       "Payload.ReturnStatus must be one of: Installed, Failed, Unlocked"));
    CHECK(refused_with("{\"Type\":\"com.apple.asset.data\",\"Identifier\":\"d\",\"Payload\":"
                       "{\"Reference\":{\"DataURL\":7}}}",
                       "Payload.Reference.DataURL must be a string"));
    CHECK(refused_with("{\"Type\":\"com.apple.activation.simple\",\"Identifier\":\"x\",\"Payload\":"
                       "{\"StandardConfigurations\":[\"a\",5]}}",
                       "Payload.StandardConfigurations[1] must be a string"));
    CHECK(
        refused_with("{\"Type\":\"com.apple.configuration.passcode.settings\",\"Identifier\":\"p\","
                     "\"Payload\":{\"MinLength\":4}}",
                     "Payload.MinLength is not a key"));
    CHECK(
        refused_with("{\"Type\":\"com.apple.configuration.passcode.settings\",\"Identifier\":\"p\","
                     "\"Extra\":1}",
                     "Extra is not a key of a declaration"));
    CHECK(refused_with("{\"Identifier\":\"p\"}", "Type is required"));
    CHECK(refused_with("{\"Type\":\"com.apple.configuration.passcode.settings\"}",
                       "Identifier is required"));
    CHECK(refused_with("[1]", "a declaration is a JSON object"));
}

TEST(server_token_follows_content)
{
    char t1[33], t2[33], t3[33];
    json_t *a =
        json_loads("{\"Type\":\"T\",\"Identifier\":\"i\",\"Payload\":{\"a\":1,\"b\":2}}", 0, NULL);
    /* Same content, keys in another order and a ServerToken: the same token. */
    json_t *b = json_loads("{\"ServerToken\":\"zz\",\"Payload\":{\"b\":2,\"a\":1},\"Identifier\":"
                           "\"i\",\"Type\":\"T\"}",
                           0, NULL);
    json_t *c =
        json_loads("{\"Type\":\"T\",\"Identifier\":\"i\",\"Payload\":{\"a\":1,\"b\":3}}", 0, NULL);
    ddm_check_token(a, t1);
    ddm_check_token(b, t2);
    ddm_check_token(c, t3);
    CHECK(strlen(t1) == 32 && strcmp(t1, t2) == 0 && strcmp(t1, t3) != 0);
    char tok[33];
    char *s = ddm_check_canonical(b, tok);
    CHECK(strcmp(tok, t1) == 0);
    CHECK(s != NULL && strstr(s, "\"ServerToken\":\"") != NULL && strstr(s, t1) != NULL &&
          strstr(s, "zz") == NULL);
    free(s);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

int main(void)
{
    RUN(table_sorted_and_found);
    RUN(valid_declarations_pass);
    RUN(refusals_name_the_key);
    RUN(server_token_follows_content);
    return harness_done();
}
