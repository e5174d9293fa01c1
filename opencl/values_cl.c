/* linattn - host side of the value check on OpenCL (values.cl): the flags
 * of a check, up to four buffers per launch, enqueued without waiting; the
 * flags read back once, by the check alone or after a device call's kernels
 * (linattn_cl_vcheck).  The flags live in one buffer per context (cl->vflag,
 * under cl->lock), zero between calls: it is zeroed when made and again only
 * after a check that may have set a flag (a culprit, or a call that failed
 * before its read), so a decode step enqueues no fill. */
#include "clpriv.h"
#include "values_cl_src.h" /* generated from values.cl: linattn_values_cl_src */

#define A LINATTN_KARG
#define LOCAL 64
#define PER_LAUNCH 4 /* buffers values_check takes */

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

int linattn_clrun_values_enqueue(linattn_clrun *r, const linattn_cl_vcheck *vc, cl_mem *flag)
{
    int rc;
    cl_kernel kn;
    static const char *const name = "values_check";
    static const cl_int zero = 0;
    if (vc->n > LINATTN_CL_VCHECK_MAX)
        return linattn_fail(LINATTN_EINVAL, "value check: too many tensors");
    linattn_cl *cl = r->cl;
    const size_t bytes = sizeof(cl_int) * (1 + LINATTN_CL_VCHECK_MAX);
    if ((rc = linattn_cl_kernels(cl, linattn_values_cl_src, "", &name, 1, &kn))) return rc;
    if (!cl->vflag) {
        void *m;
        if ((rc = linattn_cl_alloc_locked(cl, bytes, 0, &m))) return rc;
        cl->vflag = m;
        cl->vflag_dirty = 1;
    }
    if (cl->vflag_dirty)
        LINATTN_CL_CHECK(linattn_clapi.clEnqueueFillBuffer(cl->queue, cl->vflag, &zero, sizeof zero,
                                                           0, bytes, 0, NULL, NULL),
                         "clEnqueueFillBuffer");
    *flag = cl->vflag;
    cl->vflag_dirty = 1; /* until the read finds every flag clear */
    for (int at = 0; at < vc->n; at += PER_LAUNCH) {
        const int nb = vc->n - at < PER_LAUNCH ? vc->n - at : PER_LAUNCH;
        cl_mem x[PER_LAUNCH];
        cl_long cnt[PER_LAUNCH];
        cl_float4 rg[PER_LAUNCH];
        size_t most = 1;
        for (int b = 0; b < PER_LAUNCH; b++) {
            const int i = at + (b < nb ? b : 0);
            const linattn_cl_range *g = &vc->range[i];
            x[b] = b < nb ? (cl_mem)vc->mem[i] : r->cl->dummy;
            cnt[b] = b < nb ? (cl_long)vc->count[i] : 0;
            rg[b] = (cl_float4){{g->lo, g->hi, (cl_float)g->lo_open, (cl_float)g->hi_open}};
            if (b < nb && vc->count[i] > most) most = vc->count[i];
        }
        const cl_int a = at;
        const linattn_karg args[] = {A(x[0]), A(cnt[0]), A(rg[0]), A(x[1]), A(cnt[1]), A(rg[1]),
                                     A(x[2]), A(cnt[2]), A(rg[2]), A(x[3]), A(cnt[3]), A(rg[3]),
                                     A(*flag), A(a)};
        const size_t ls[2] = {LOCAL, 1};
        const size_t gs[2] = {round_up(most < 65536 ? most : 65536, LOCAL), (size_t)nb};
        if ((rc = linattn_clrun_args(kn, args, 14, "values_check")) ||
            (rc = linattn_clrun_launch(r->cl, kn, 2, gs, ls, "values_check")))
            return rc;
    }
    return LINATTN_OK;
}

int linattn_clrun_values_read(linattn_clrun *r, cl_mem flag, linattn_cl_vcheck *vc)
{
    cl_int f[1 + LINATTN_CL_VCHECK_MAX] = {0};
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueReadBuffer(r->cl->queue, flag, CL_TRUE, 0,
                                                       sizeof(cl_int) * (size_t)(1 + vc->n), f, 0,
                                                       NULL, NULL),
                     "clEnqueueReadBuffer");
    for (int i = 0; i < vc->n; i++) vc->bad[i] = f[1 + i] != 0;
    vc->read = 1;
    if (!f[0]) r->cl->vflag_dirty = 0; /* flag is cl->vflag: every flag clear */
    return f[0] ? linattn_fail(LINATTN_ERANGE, "a value is out of range") : LINATTN_OK;
}

int linattn_cl_values_check(linattn_cl *cl, linattn_cl_vcheck *vc)
{
    int rc;
    cl_mem flag;
    linattn_clrun r = {.cl = cl};
    pthread_mutex_lock(&cl->lock);
    if (!(rc = linattn_clrun_values_enqueue(&r, vc, &flag)))
        rc = linattn_clrun_values_read(&r, flag, vc);
    if (rc == LINATTN_ERANGE) rc = LINATTN_OK; /* the flags are the answer */
    return linattn_clrun_end(&r, rc);
}
