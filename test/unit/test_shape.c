/* Shape limits (core/shape.c) and apple_plist_parse/apple_plist_json_load in front of the
 * parsers: deep, wide, exploding and cyclic plists (XML and binary), long
 * strings, deep JSON; real-looking messages pass. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/shape.h"
#include "../../core/util.h"
#include "../../handlers/apple/apple.h"
#include "../harness.h"

static const struct shape_limits lim = {32, 200000, 8388608};
static char why[160];

/* A binary plist of n objects (each already encoded with 4-byte refs). */
static unsigned char *bp_build(unsigned char **objs, size_t *lens, size_t n, size_t *outlen)
{
    size_t total = 8 + 4 * n + 32;
    for (size_t i = 0; i < n; i++)
        total += lens[i];
    unsigned char *b = xmalloc(total), *p = b + 8;
    memcpy(b, "bplist00", 8);
    uint32_t *offs = xmalloc(n * sizeof(*offs));
    for (size_t i = 0; i < n; i++) {
        offs[i] = (uint32_t)(p - b);
        memcpy(p, objs[i], lens[i]);
        p += lens[i];
    }
    size_t table = (size_t)(p - b);
    for (size_t i = 0; i < n; i++) {
        p[0] = (unsigned char)(offs[i] >> 24);
        p[1] = (unsigned char)(offs[i] >> 16);
        p[2] = (unsigned char)(offs[i] >> 8);
        p[3] = (unsigned char)offs[i];
        p += 4;
    }
    memset(p, 0, 32);
    p[6] = 4;
    p[7] = 4;
    for (int k = 0; k < 8; k++) {
        p[8 + k] = (unsigned char)((uint64_t)n >> (56 - 8 * k));
        p[24 + k] = (unsigned char)((uint64_t)table >> (56 - 8 * k));
    }
    free(offs);
    *outlen = total;
    return b;
}

static void ref4(unsigned char *p, uint32_t r)
{
    p[0] = (unsigned char)(r >> 24);
    p[1] = (unsigned char)(r >> 16);
    p[2] = (unsigned char)(r >> 8);
    p[3] = (unsigned char)r;
}

/* n arrays: object i is [i + 1] (chain) or [i + 1, i + 1] (fan-out); the
 * last object is true.  cyc: the first array also holds itself. */
static unsigned char *bp_chain(size_t n, int fan, int cyc, size_t *outlen)
{
    unsigned char **objs = xcalloc(n + 1, sizeof(*objs));
    size_t *lens = xcalloc(n + 1, sizeof(*lens));
    for (size_t i = 0; i < n; i++) {
        size_t k = fan || (cyc && i == 0) ? 2 : 1;
        objs[i] = xmalloc(1 + 4 * k);
        objs[i][0] = (unsigned char)(0xa0 | k);
        ref4(objs[i] + 1, (uint32_t)(i + 1));
        if (k == 2)
            ref4(objs[i] + 5, fan ? (uint32_t)(i + 1) : 0);
        lens[i] = 1 + 4 * k;
    }
    objs[n] = xmalloc(1);
    objs[n][0] = 0x09;
    lens[n] = 1;
    unsigned char *b = bp_build(objs, lens, n + 1, outlen);
    for (size_t i = 0; i <= n; i++)
        free(objs[i]);
    free(objs);
    free(lens);
    return b;
}

static char *xml_nest(size_t depth, const char *open, const char *close, size_t *len)
{
    const char *head = "<?xml version=\"1.0\"?><plist version=\"1.0\">";
    size_t ol = strlen(open), cl = strlen(close), hl = strlen(head);
    char *s = xmalloc(hl + depth * (ol + cl) + 16), *p = s;
    memcpy(p, head, hl);
    p += hl;
    for (size_t i = 0; i < depth; i++, p += ol)
        memcpy(p, open, ol);
    for (size_t i = 0; i < depth; i++, p += cl)
        memcpy(p, close, cl);
    strcpy(p, "</plist>");
    *len = (size_t)(p - s) + 8;
    return s;
}

TEST(real_messages_pass)
{
    static const char tok[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD "
        "PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist "
        "version=\"1.0\"><dict><key>MessageType</key><string>TokenUpdate</string><key>Token"
        "</key><data>R+juwGLC9ynsFwPBs+GPGXHYXwC+dkRdNAgLqnAbX1E=</data><!-- a <comment> -->"
        "<key>A</key><array><dict><key>B</key><true/></dict></array></dict></plist>\n";
    CHECK(shape_plist(tok, strlen(tok), &lim, why, sizeof(why)) == SHAPE_OK);
    plist_t p = apple_plist_parse(tok, strlen(tok), why, sizeof(why));
    CHECK(p != NULL);
    plist_free(p);
    size_t n;
    unsigned char *b = bp_chain(20, 0, 0, &n);
    CHECK(shape_plist(b, n, &lim, why, sizeof(why)) == SHAPE_OK);
    p = apple_plist_parse(b, n, why, sizeof(why));
    CHECK(p != NULL);
    plist_free(p);
    free(b);
}

/* Without the check, apple_plist_parse of this overflowed the stack (libplist 2.2). */
TEST(deep_binary_refused_before_libplist)
{
    size_t n;
    unsigned char *b = bp_chain(200000, 0, 0, &n);
    CHECK(shape_plist(b, n, &lim, why, sizeof(why)) == SHAPE_TOO_DEEP);
    CHECK(strstr(why, "max_plist_depth=32") != NULL);
    CHECK(apple_plist_parse(b, n, why, sizeof(why)) == NULL);
    CHECK(strstr(why, "max_plist_depth") != NULL);
    free(b);
}

TEST(deep_xml_refused)
{
    size_t n;
    char *s = xml_nest(100000, "<array>", "</array>", &n);
    CHECK(shape_plist(s, n, &lim, why, sizeof(why)) == SHAPE_TOO_DEEP);
    CHECK(apple_plist_parse(s, n, why, sizeof(why)) == NULL && strstr(why, "max_plist_depth"));
    free(s);
    s = xml_nest(32, "<array>", "</array>", &n); /* exactly at the limit */
    CHECK(shape_plist(s, n, &lim, why, sizeof(why)) == SHAPE_OK);
    free(s);
    s = xml_nest(33, "<array>", "</array>", &n); /* no leaf: found by fuzz_shape */
    CHECK(shape_plist(s, n, &lim, why, sizeof(why)) == SHAPE_TOO_DEEP);
    free(s);
    s = xml_nest(33, "<dict><key>k</key>", "</dict>", &n);
    CHECK(shape_plist(s, n, &lim, why, sizeof(why)) == SHAPE_TOO_DEEP);
    free(s);
}

TEST(xml_tricks_refused)
{
    /* Markup hidden in a quoted attribute, an internal DTD subset, an
     * unterminated comment: refused, not skipped. */
    static const char *const bad[] = {
        "<plist><dict a=\"<array>\"></dict></plist>",
        "<!DOCTYPE plist [<!ENTITY a \"b\">]><plist><true/></plist>",
        "<plist><!-- <array> </plist>",
        "<plist></array></array></plist>",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        CHECK(shape_plist(bad[i], strlen(bad[i]), &lim, why, sizeof(why)) == SHAPE_MALFORMED);
}

TEST(wide_refused)
{
    const struct shape_limits small = {32, 1000, 8388608};
    size_t n;
    char *s =
        xml_nest(1, "<array><true/><true/><true/><true/><true/><true/><true/>", "</array>", &n);
    CHECK(shape_plist(s, n, &small, why, sizeof(why)) == SHAPE_OK);
    free(s);
    /* 2^26 nodes from 26 objects: counted as the tree libplist would build. */
    unsigned char *b = bp_chain(25, 1, 0, &n);
    CHECK(shape_plist(b, n, &lim, why, sizeof(why)) == SHAPE_TOO_MANY);
    CHECK(strstr(why, "max_plist_nodes=200000") != NULL);
    free(b);
}

/* One pass: 10 MB of <true/> is measured in well under a second (a search
 * for "<!--" per tag once made it quadratic: minutes). */
TEST(xml_scan_is_linear)
{
    const struct shape_limits huge = {32, 100000000, 8388608};
    size_t n = 1400000;
    char *s = xmalloc(n * 7 + 64);
    strcpy(s, "<plist><array>");
    char *p = s + strlen(s);
    for (size_t i = 0; i < n; i++, p += 7)
        memcpy(p, "<true/>", 7);
    strcpy(p, "</array></plist>");
    int64_t t0 = util_mono_ms();
    CHECK(shape_plist(s, strlen(s), &huge, why, sizeof(why)) == SHAPE_OK);
    CHECK(util_mono_ms() - t0 < 1000);
    free(s);
}

TEST(cycle_refused)
{
    size_t n;
    unsigned char *b = bp_chain(3, 0, 1, &n);
    CHECK(shape_plist(b, n, &lim, why, sizeof(why)) == SHAPE_CYCLE);
    CHECK(apple_plist_parse(b, n, why, sizeof(why)) == NULL && strstr(why, "cycle") != NULL);
    free(b);
}

TEST(bad_binary_refused)
{
    size_t n;
    unsigned char *b = bp_chain(3, 0, 0, &n);
    for (size_t cut = 1; cut < n; cut++) /* every truncation */
        CHECK(shape_plist(b, cut, &lim, why, sizeof(why)) != SHAPE_OK || cut < 8);
    b[9] = 0xa1; /* a ref past the object table */
    b[10] = b[11] = b[12] = 0xff;
    CHECK(shape_plist(b, n, &lim, why, sizeof(why)) == SHAPE_MALFORMED);
    free(b);
}

TEST(long_string_refused)
{
    const struct shape_limits small = {32, 1000, 64};
    char s[256];
    snprintf(s, sizeof(s), "<plist><string>%0100d</string></plist>", 0);
    CHECK(shape_plist(s, strlen(s), &small, why, sizeof(why)) == SHAPE_TOO_LONG);
    CHECK(strstr(why, "max_plist_string=64") != NULL);
}

TEST(json_limits)
{
    size_t depth = 100000;
    char *s = xmalloc(2 * depth);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    CHECK(shape_json(s, 2 * depth, &lim, why, sizeof(why)) == SHAPE_TOO_DEEP);
    CHECK(apple_plist_json_load(s, 2 * depth, why, sizeof(why)) == NULL);
    CHECK(strstr(why, "max_json_depth") != NULL);
    free(s);
    static const char ok[] = "{\"udids\": [\"a\", \"b\"], \"command\": {\"RequestType\": "
                             "\"DeviceLock\", \"n\": [1, 2.5, true, null, \"]}\"]}}";
    json_t *j = apple_plist_json_load(ok, strlen(ok), why, sizeof(why));
    CHECK(j != NULL);
    json_decref(j);
}

/* libplist's XML reader on xml, made XML again; NULL if it refuses. */
static char *xml_libplist(const char *xml)
{
    plist_t p = NULL;
    char *out = NULL;
    uint32_t n = 0;
    plist_from_xml(xml, (uint32_t)strlen(xml), &p);
    if (p != NULL)
        plist_to_xml(p, &out, &n);
    plist_free(p);
    return out;
}

/* apple_plist_xml_fast (the reader apple_plist_parse tries first) gives
 * what libplist gives on the plain subset, and declines everything else
 * (entities, CDATA, comments, CR, data, dates, odd numbers, duplicate keys,
 * a prolog written otherwise), which libplist then reads as before. */
TEST(fast_xml_reader_agrees_with_libplist)
{
    static const char pre[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC "
                              "\"-//Apple//DTD PLIST 1.0//EN\" "
                              "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n";
    static const char *const same[] = {
        "<plist version=\"1.0\">\n<dict>\n\t<key>Status</key>\n\t<string>Idle</string>\n"
        "\t<key>UDID</key>\n\t<string>ABC-1</string>\n</dict>\n</plist>\n",
        "<plist version=\"1.0\"><dict><key>QueryResponses</key><dict><key>BatteryLevel</key>"
        "<real>0.8100000023841858</real><key>Cap</key><real>-119.5</real><key>N</key>"
        "<integer>0</integer><key>M</key><integer>123456789012345678</integer><key>S</key>"
        "<true/><key>T</key><false></false><key>E</key><string/><key>\xc3\xa9 x</key>"
        "<string> sp\xc3\xa9 \t</string></dict><key>A</key><array><dict/><array/><array>"
        "<string>a</string></array><true></true></array></dict></plist>",
        "<plist><array/></plist>",
    };
    static const char *const declined[] = {
        "<plist version=\"1.0\"><dict><key>A</key><string>a &amp; b</string></dict></plist>",
        "<plist version=\"1.0\"><dict><key>A</key><string><![CDATA[x]]></string></dict></plist>",
        "<plist version=\"1.0\"><!-- c --><dict/></plist>",
        "<plist version=\"1.0\"><dict><key>A</key><string>a\r\nb</string></dict></plist>",
        "<plist version=\"1.0\"><dict><key>T</key><data>AAEC</data></dict></plist>",
        "<plist version=\"1.0\"><dict><key>T</key><date>2024-01-01T00:00:00Z</date></dict>"
        "</plist>",
        "<plist version=\"1.0\"><dict><key>I</key><integer>010</integer></dict></plist>",
        "<plist version=\"1.0\"><dict><key>I</key><integer>-1</integer></dict></plist>",
        "<plist version=\"1.0\"><dict><key>I</key><integer>18446744073709551615</integer>"
        "</dict></plist>",
        "<plist version=\"1.0\"><dict><key>R</key><real>1e5</real></dict></plist>",
        "<plist version=\"1.0\"><dict><key>R</key><real>.5</real></dict></plist>",
        "<plist version=\"1.0\"><dict><key>K</key><string>1</string><key>K</key>"
        "<string>2</string></dict></plist>",
        "<plist version=\"1.0\"><dict><key>A</key><string a=\"1\">x</string></dict></plist>",
        "<plist version=\"1.1\"><dict/></plist>",
        "<plist version=\"1.0\"><dict/></plist> x",
        "<plist version=\"1.0\"><dict><key>A</key></dict></plist>",
    };
    char buf[4096];
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        for (int with_pre = 0; with_pre < 2; with_pre++) {
            snprintf(buf, sizeof(buf), "%s%s", with_pre ? pre : "", same[i]);
            plist_t f = apple_plist_xml_fast(buf, strlen(buf), &lim);
            char *want = xml_libplist(buf), *got = NULL;
            uint32_t n = 0;
            CHECK(f != NULL && want != NULL);
            if (f != NULL)
                plist_to_xml(f, &got, &n);
            CHECK(got != NULL && want != NULL && strcmp(got, want) == 0);
            free(got);
            free(want);
            plist_free(f);
        }
    }
    for (size_t i = 0; i < sizeof(declined) / sizeof(declined[0]); i++) {
        snprintf(buf, sizeof(buf), "%s%s", pre, declined[i]);
        plist_t f = apple_plist_xml_fast(buf, strlen(buf), &lim);
        if (f != NULL)
            fprintf(stderr, "fast reader took: %s\n", declined[i]);
        CHECK(f == NULL);
        plist_free(f);
    }
    /* Over a limit, it declines too, and shape_plist() refuses with its
     * reason, as it did before the fast reader. */
    struct shape_limits tiny = {2, 7, 4};
    static const char *const over[] = {
        "<plist><dict><key>A</key><dict><key>B</key><array><true/></array></dict></dict></plist>",
        "<plist><array><true/><true/><true/><true/><true/><true/><true/></array></plist>",
        "<plist><dict><key>A</key><string>abcde</string></dict></plist>",
        "<plist><dict><key>ABCDE</key><string>a</string></dict></plist>",
        "<plist><array>      <true/></array></plist>",
        "<plist><array><integer>12345</integer></array></plist>",
    };
    static const char *const at[] = {
        "<plist><dict><key>A</key><array><true/></array></dict></plist>",
        "<plist><array><true/><true/><true/><true/><true/><dict/></array></plist>",
        "<plist><dict><key>ABCD</key><string>abcd</string></dict></plist>",
        "<plist><array>    <integer>1234</integer></array></plist>",
    };
    for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
        plist_t f = apple_plist_xml_fast(over[i], strlen(over[i]), &tiny);
        CHECK(f == NULL && shape_plist(over[i], strlen(over[i]), &tiny, why, sizeof(why)) != 0);
        plist_free(f);
    }
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        plist_t f = apple_plist_xml_fast(at[i], strlen(at[i]), &tiny);
        CHECK(f != NULL && shape_plist(at[i], strlen(at[i]), &tiny, why, sizeof(why)) == 0);
        plist_free(f);
    }
    /* Declined, the plist still comes through apple_plist_parse (libplist). */
    snprintf(buf, sizeof(buf), "%s%s", pre, declined[0]);
    plist_t p = apple_plist_parse(buf, strlen(buf), why, sizeof(why));
    char *s = apple_plist_dict_string(p, "A");
    CHECK(s != NULL && strcmp(s, "a & b") == 0);
    free(s);
    plist_free(p);
}

int main(void)
{
    RUN(real_messages_pass);
    RUN(deep_binary_refused_before_libplist);
    RUN(deep_xml_refused);
    RUN(xml_tricks_refused);
    RUN(wide_refused);
    RUN(xml_scan_is_linear);
    RUN(cycle_refused);
    RUN(bad_binary_refused);
    RUN(long_string_refused);
    RUN(json_limits);
    RUN(fast_xml_reader_agrees_with_libplist);
    return harness_done();
}
