/* test_pw.c: password hashing (ca/ca_pw.c) and user name rules. */
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca.h"
#include "../../core/log.h"
#include "../../store/store_users.h"
#include "../../core/util.h"
#include "../harness.h"

static char hash1[CA_PW_HASH_MAX], hash2[CA_PW_HASH_MAX];

TEST(pw_hash_format)
{
    CHECK(ca_pw_hash("correct horse", CA_PW_ITERATIONS, hash1) == 0);
    CHECK(strncmp(hash1, "pbkdf2-sha256$600000$", 21) == 0);
    /* salt: 16 bytes = 24 base64 characters; hash: 32 bytes = 44. */
    const char *salt = hash1 + 21, *d = strchr(salt, '$');
    CHECK(d != NULL && d - salt == 24);
    CHECK(d != NULL && strlen(d + 1) == 44);
    CHECK(ca_pw_iterations(hash1) == 600000);
}

TEST(pw_verify)
{
    CHECK(ca_pw_verify("correct horse", hash1) == 1);
    CHECK(ca_pw_verify("correct horsf", hash1) == 0);
    CHECK(ca_pw_verify("", hash1) == 0);
    CHECK(ca_pw_verify("correct horse", NULL) == 0);
}

TEST(pw_salted)
{
    /* Same password, fresh salt: a different stored form, both verify. */
    CHECK(ca_pw_hash("correct horse", CA_PW_ITERATIONS, hash2) == 0);
    CHECK(strcmp(hash1, hash2) != 0);
    CHECK(ca_pw_verify("correct horse", hash2) == 1);
}

TEST(pw_iterations_bounds)
{
    char h[CA_PW_HASH_MAX];
    CHECK(ca_pw_hash("x", CA_PW_ITERATIONS - 1, h) == -1);
    CHECK(ca_pw_hash("x", CA_PW_MAX_ITERATIONS + 1, h) == -1);
}

TEST(pw_malformed)
{
    char h[CA_PW_HASH_MAX];
    CHECK(ca_pw_verify("x", "") == 0);
    CHECK(ca_pw_verify("x", "plain") == 0);
    CHECK(ca_pw_iterations("pbkdf2-sha256$0$AAAAAAAAAAAAAAAAAAAAAA==$"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") == -1);
    CHECK(ca_pw_iterations("pbkdf2-sha256$600000$AAAA$AAAA") == -1);
    CHECK(ca_pw_iterations("pbkdf2-sha1$600000$AAAAAAAAAAAAAAAAAAAAAA==$"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") == -1);
    /* A flipped hash character must not verify. */
    memcpy(h, hash1, sizeof(h));
    size_t n = strlen(h);
    h[n - 3] = h[n - 3] == 'A' ? 'B' : 'A';
    CHECK(ca_pw_verify("correct horse", h) == 0);
    CHECK(ca_pw_iterations(h) == 600000);
}

TEST(user_names)
{
    CHECK(store_users_name_ok("alice"));
    CHECK(store_users_name_ok("a.b_c-d@example.com"));
    CHECK(!store_users_name_ok(""));
    CHECK(!store_users_name_ok("has space"));
    CHECK(!store_users_name_ok("colon:x"));
    CHECK(!store_users_name_ok("{tag}"));
    char long_name[70];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    CHECK(!store_users_name_ok(long_name));
    long_name[64] = '\0';
    CHECK(store_users_name_ok(long_name));
    CHECK(store_users_role_ok("admin") && store_users_role_ok("user"));
    CHECK(!store_users_role_ok("root") && !store_users_role_ok(""));
}

int main(void)
{
    log_level = LOG_LVL_ERR;
    RUN(pw_hash_format);
    RUN(pw_verify);
    RUN(pw_salted);
    RUN(pw_iterations_bounds);
    RUN(pw_malformed);
    RUN(user_names);
    return harness_done();
}
