/* Built with -fsanitize=thread by test/integration/tsan.sh: SIGHUP's
 * apple_plist_set_limits() on the loop while the crypto worker runs apple_plist_parse() and
 * apple_plist_json_load() on a large body.  ThreadSanitizer reports any unguarded
 * access to the limits; the program itself always exits 0. */
#include <pthread.h>
#include <string.h>

#include "../../core/shape.h"
#include "../../handlers/apple/apple.h"

/* util.c logs through this; the log module itself is not under test. */
void log_at(int lvl, const char *fmt, ...)
{
    (void)lvl;
    (void)fmt;
}

static const char xml[] = "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>"
                          "<key>a</key><string>b</string></dict></plist>";
static const char js[] = "{\"a\": [1, 2, {\"b\": \"c\"}]}";

static void *limits_race_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        plist_free(apple_plist_parse(xml, strlen(xml), NULL, 0));
        json_decref(apple_plist_json_load(js, strlen(js), NULL, 0));
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    struct shape_limits l = {64, 100000, 8388608};
    pthread_create(&t, NULL, limits_race_worker, NULL);
    for (int i = 0; i < 2000; i++) {
        l.max_nodes = 1000 + (size_t)i;
        apple_plist_set_limits(&l, 64);
    }
    pthread_join(t, NULL);
    return 0;
}
