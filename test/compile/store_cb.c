/* store_cb.c: compiled by test/integration/typed.sh, never linked.  With
 * -DWRONG it hands a store call a callback of another type: that must not
 * compile (-Werror), in the public calls and in the op machinery alike. */
#include "../../store/store_int.h"
#include "../../core/util.h"

static void typed_on_done(void *arg, int err)
{
    (void)arg, (void)err;
}

static void typed_on_job(void *arg, int err, const struct store_record *rec)
{
    (void)arg, (void)err, (void)rec;
}

#ifdef WRONG
struct store_op *typed_call(struct store *s);
struct store_op *typed_call(struct store *s)
{
    return store_job_get(s, "0", typed_on_done, NULL); /* a done callback for a job */
}
union store_cb typed_member(void);
union store_cb typed_member(void)
{
    return (union store_cb){.job = typed_on_done}; /* the wrong member */
}
#else
struct store_op *typed_call(struct store *s);
struct store_op *typed_call(struct store *s)
{
    store_job_get(s, "0", typed_on_job, NULL);
    return store_op_new(s, (union store_cb){.done = typed_on_done}, NULL);
}
#endif
