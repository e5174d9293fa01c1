/* linattn - host side of view_copy (view.cl): a tensor moved between its
 * strided view in a device buffer and a dense copy, on the device. */
#include "clpriv.h"
#include "view_cl_src.h" /* generated from view.cl: linattn_view_cl_src */

#define A LINATTN_KARG
#define LOCAL 256

static cl_long4 pad4(const int64_t *x, int ndim, int64_t fill)
{
    cl_long4 v;
    for (int d = 0; d < 4; d++) v.s[d] = (cl_long)fill;
    for (int d = 0; d < ndim; d++) v.s[4 - ndim + d] = (cl_long)x[d];
    return v;
}

int linattn_cl_view_copy(linattn_cl *cl, void *src, int64_t soff, const int64_t *sstr,
                         linattn_dtype sdt, void *dst, int64_t doff, const int64_t *dstr,
                         linattn_dtype ddt, const int64_t *shape, int ndim, int flat)
{
    int rc;
    cl_kernel kn[3];
    linattn_clrun r = {.cl = cl};
    cl_long n = 1;
    for (int d = 0; d < ndim; d++) n *= (cl_long)shape[d];
    const cl_mem s = src, t = dst;
    const cl_long so = (cl_long)soff, dof = (cl_long)doff;
    const cl_long4 ss = pad4(sstr, ndim, 0), ds = pad4(dstr, ndim, 0), sh = pad4(shape, ndim, 1);
    const int which = sdt != LINATTN_F32 ? 1 : ddt != LINATTN_F32 ? 2 : 0;
    const cl_int bf = (which == 1 ? sdt : ddt) == LINATTN_BF16;
    pthread_mutex_lock(&cl->lock);
    static const char *const names[3] = {"view_copy", "view_from16", "view_to16"};
    rc = linattn_cl_kernels(cl, linattn_view_cl_src, "", names, 3, kn);
    if (!rc) {
        const cl_int fl = flat;
        /* (view_copy takes all but bf) */
        const linattn_karg args[] = {A(s),  A(so), A(ss), A(t),  A(dof),
                                     A(ds), A(sh), A(n),  A(fl), A(bf)};
        const size_t ls = LOCAL;
        const size_t gs = ((size_t)(n < (1 << 22) ? n : (1 << 22)) + LOCAL - 1) / LOCAL * LOCAL;
        if (!(rc = linattn_clrun_args(kn[which], args, which ? 10 : 9, names[which])))
            rc = linattn_clrun_launch(cl, kn[which], 1, &gs, &ls, names[which]);
    }
    return linattn_clrun_end(&r, rc);
}
