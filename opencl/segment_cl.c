/* linattn - host side of seg_addmul (segment.cl): a summarised segment's
 * outputs completed on its device, o += oA S (delta_segdev.c). */
#include "clpriv.h"
#include "segment_cl_src.h" /* generated from segment.cl: linattn_segment_cl_src */

#define A LINATTN_KARG

int linattn_cl_seg_addmul(linattn_cl *cl, void *o, void *oA, void *S, int64_t Bt, int64_t len,
                          int64_t Ho, int64_t H, int K, int V)
{
    int rc;
    cl_kernel kn;
    linattn_clrun r = {.cl = cl};
    const cl_mem om = o, am = oA, sm = S;
    const cl_long n = (cl_long)len;
    const cl_int ho = (cl_int)Ho, h = (cl_int)H, k = K, v = V;
    static const char *const names[1] = {"seg_addmul"};
    pthread_mutex_lock(&cl->lock);
    rc = linattn_cl_kernels(cl, linattn_segment_cl_src, "", names, 1, &kn);
    if (!rc) {
        const linattn_karg args[] = {A(om), A(am), A(sm), A(n), A(ho), A(h), A(k), A(v)};
        const size_t ls[3] = {256, 1, 1};
        const size_t gs[3] = {(size_t)(V + 63) / 64 * 256, (size_t)(len + 63) / 64,
                              (size_t)(Bt * Ho)};
        if (!(rc = linattn_clrun_args(kn, args, 8, names[0])))
            rc = linattn_clrun_launch(cl, kn, 3, gs, ls, names[0]);
    }
    return linattn_clrun_end(&r, rc);
}
