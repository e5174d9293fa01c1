/* linattn - host side of gka on OpenCL (kernel in gka.cl): the state on the
 * device, a sequence table, one launch per call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clpriv.h"
#include "gka_cl_src.h" /* generated from gka.cl: linattn_gka_cl_src */

#define A LINATTN_KARG

static int run(linattn_clrun *r, const linattn_cl_gka *a, cl_kernel kern, cl_long *stab)
{
    int rc;
    linattn_cl *cl = r->cl;
    cl_mem q, k, v, g, beta, alpha, o, Skk, Skv, om, st;
    const size_t nkk = (size_t)a->nseq * a->H * a->K * a->K;
    const size_t nkv = (size_t)a->nseq * a->H * a->K * a->V;
    if ((rc = linattn_clrun_resolve(r, &a->q, 1, &q)) || (rc = linattn_clrun_resolve(r, &a->k, 1, &k)) ||
        (rc = linattn_clrun_resolve(r, &a->v, 1, &v)) || (rc = linattn_clrun_resolve(r, &a->g, 1, &g)) ||
        (rc = linattn_clrun_resolve(r, &a->beta, 1, &beta)) ||
        (rc = linattn_clrun_resolve(r, &a->alpha, 1, &alpha)) ||
        (rc = linattn_clrun_resolve(r, &a->o, 0, &o)) ||
        (rc = linattn_clrun_state_in(r, &a->h0kk, nkk, a->step, &Skk)) ||
        (rc = linattn_clrun_state_in(r, &a->h0kv, nkv, a->step, &Skv)) ||
        (rc = linattn_clrun_alloc(r, sizeof(float) * (size_t)a->iters, 0, &om)) ||
        (rc = linattn_clrun_alloc(r, sizeof(cl_long) * 2 * (size_t)a->nseq, 0, &st)))
        return rc;
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(cl->queue, om, CL_TRUE, 0,
                                                        sizeof(float) * (size_t)a->iters,
                                                        a->omega, 0, NULL, NULL), "clEnqueueWriteBuffer");
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(cl->queue, st, CL_TRUE, 0,
                                                        sizeof(cl_long) * 2 * (size_t)a->nseq, stab,
                                                        0, NULL, NULL), "clEnqueueWriteBuffer");
    const cl_int H = (cl_int)a->H, has_g = a->g.host || a->g.mem;
    const cl_int has_beta = a->beta.host || a->beta.mem, has_alpha = a->alpha.host || a->alpha.mem;
    const cl_int iters = a->iters;
    const float scale = a->scale, ridge = a->ridge;
    const linattn_karg args[] = {A(st), A(q), A(k), A(v), A(g), A(beta), A(alpha), A(H),
                                 A(has_g), A(has_beta), A(has_alpha), A(Skk), A(Skv), A(o),
                                 A(om), A(iters), A(scale), A(ridge)};
    if ((rc = linattn_clrun_args(kern, args, 18, "gka_seq"))) return rc;
    const size_t local[2] = {LINATTN_CL_WG, 1};
    const size_t global[2] = {(size_t)a->nseq * LINATTN_CL_WG, (size_t)a->H};
    if ((rc = linattn_clrun_launch(cl, kern, 2, global, local, "gka_seq"))) return rc;
    if ((rc = linattn_clrun_state_out(r, Skk, &a->htkk, nkk, a->step)) ||
        (rc = linattn_clrun_state_out(r, Skv, &a->htkv, nkv, a->step)))
        return rc;
    return linattn_clrun_out(r, o, &a->o);
}

int linattn_cl_gka_run(linattn_cl *cl, const linattn_cl_gka *a)
{
    int rc;
    cl_kernel kern;
    linattn_clrun r = {.cl = cl};
    cl_long *stab = linattn_clrun_seqtab(a->cu, a->nseq, a->T, a->step);
    if (!stab) return linattn_fail(LINATTN_ENOMEM, "gka: out of memory");
    pthread_mutex_lock(&cl->lock);
    static const char *const names[] = {"gka_seq"};
    char opts[64];
    snprintf(opts, sizeof opts, "-DK=%d -DV=%d", a->K, a->V);
    rc = linattn_cl_kernels(cl, linattn_gka_cl_src, opts, names, 1, &kern);
    if (!rc) rc = run(&r, a, kern, stab);
    rc = linattn_clrun_end(&r, rc);
    free(stab);
    return rc;
}
