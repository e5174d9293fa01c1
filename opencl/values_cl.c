/* linattn - host side of the value check on OpenCL (values.cl): one launch
 * per buffer, one flag array read back for all of them. */
#include "clpriv.h"
#include "values_cl_src.h" /* generated from values.cl: linattn_values_cl_src */

#define A LINATTN_KARG
#define LOCAL 64
#define MAX_CHECK 8

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static int check(linattn_clrun *r, cl_kernel kn, void *const *mem, const size_t *count,
                 const linattn_cl_range *range, int n, int *bad)
{
    int rc;
    cl_mem flag;
    cl_int f[MAX_CHECK] = {0};
    if (n > MAX_CHECK) return linattn_fail(LINATTN_EINVAL, "value check: too many tensors");
    if ((rc = linattn_clrun_alloc(r, sizeof f, 1, &flag))) return rc;
    for (int i = 0; i < n; i++) {
        const cl_mem x = mem[i];
        const cl_long cnt = (cl_long)count[i];
        const cl_float lo = range[i].lo, hi = range[i].hi;
        const cl_int lo_open = range[i].lo_open, hi_open = range[i].hi_open, at = i;
        const linattn_karg args[] = {A(x), A(cnt), A(lo), A(hi), A(lo_open), A(hi_open),
                                     A(flag), A(at)};
        const size_t ls = LOCAL, gs = round_up(count[i] < 65536 ? count[i] : 65536, LOCAL);
        if ((rc = linattn_clrun_args(kn, args, 8, "values_check")) ||
            (rc = linattn_clrun_launch(r->cl, kn, 1, &gs, &ls, "values_check")))
            return rc;
    }
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueReadBuffer(r->cl->queue, flag, CL_TRUE, 0,
                                                       sizeof(cl_int) * (size_t)n, f, 0, NULL,
                                                       NULL), "clEnqueueReadBuffer");
    for (int i = 0; i < n; i++) bad[i] = f[i] != 0;
    return LINATTN_OK;
}

int linattn_cl_values_check(linattn_cl *cl, void *const *mem, const size_t *count,
                            const linattn_cl_range *range, int n, int *bad)
{
    int rc;
    cl_kernel kn;
    linattn_clrun r = {.cl = cl};
    pthread_mutex_lock(&cl->lock);
    static const char *const name = "values_check";
    rc = linattn_cl_kernels(cl, linattn_values_cl_src, "", &name, 1, &kn);
    if (!rc) rc = check(&r, kn, mem, count, range, n, bad);
    return linattn_clrun_end(&r, rc);
}
