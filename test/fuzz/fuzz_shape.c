/* Fuzz target: the shape check against libplist itself.  Whatever
 * shape_plist() lets through, apple_plist_parse() (the function every entry point
 * calls) must parse without crashing, and the tree libplist builds must be
 * within the limits the check claimed: a scanner that libplist disagrees with
 * (markup it skips, references it follows differently) would let depth or
 * nodes through unseen.  Small limits, so the fuzzer reaches them. */
#include <stdint.h>
#include <stdlib.h>

#include "../../core/shape.h"
#include "../../handlers/apple/apple.h"

static const struct shape_limits fuzz_lim = {8, 2000, 4096};

/* Containers nested (the top one counts) and nodes (keys count), bounded
 * recursion: the check keeps the depth at most fuzz_lim.max_depth. */
static void fuzz_measure(plist_t p, size_t depth, size_t *max_depth, size_t *nodes)
{
    plist_type t = plist_get_node_type(p);
    (*nodes)++;
    if (t != PLIST_ARRAY && t != PLIST_DICT)
        return;
    if (++depth > *max_depth)
        *max_depth = depth;
    if (depth > fuzz_lim.max_depth)
        abort(); /* deeper than the check allowed: stop before our own stack is at risk */
    if (t == PLIST_ARRAY) {
        for (uint32_t i = 0; i < plist_array_get_size(p); i++)
            fuzz_measure(plist_array_get_item(p, i), depth, max_depth, nodes);
        return;
    }
    plist_dict_iter it = NULL;
    plist_dict_new_iter(p, &it);
    for (;;) {
        char *key = NULL;
        plist_t v = NULL;
        plist_dict_next_item(p, it, &key, &v);
        free(key);
        if (v == NULL)
            break;
        (*nodes)++;
        fuzz_measure(v, depth, max_depth, nodes);
    }
    free(it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static int init;
    char why[128];
    if (!init) {
        apple_plist_set_limits(&fuzz_lim, 8);
        init = 1;
    }
    plist_t p = apple_plist_parse(data, len, why, sizeof(why));
    if (p == NULL)
        return 0;
    size_t depth = 0, nodes = 0;
    fuzz_measure(p, 0, &depth, &nodes);
    if (nodes > fuzz_lim.max_nodes + 1)
        abort(); /* more nodes than the check counted */
    json_t *j = apple_plist_to_json(p);
    json_decref(j);
    plist_free(p);
    return 0;
}
