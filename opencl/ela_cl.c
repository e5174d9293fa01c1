/* linattn - host side of ela on OpenCL (kernel in ela.cl): the state on the
 * device, a sequence table, one launch per call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clpriv.h"
#include "ela_cl_src.h" /* generated from ela.cl: linattn_ela_cl_src */

#define A LINATTN_KARG

static int given(const linattn_cl_arg *x) { return x->host || x->mem; }

static int run(linattn_clrun *r, const linattn_cl_ela *a, cl_kernel kern, cl_long *stab)
{
    int rc;
    linattn_cl *cl = r->cl;
    cl_mem q, k, v, o, S, z, c, st;
    const size_t nfv = (size_t)a->nseq * a->H * a->F * a->V, nf = (size_t)a->nseq * a->H * a->F;
    const int has_c = a->safe && (given(&a->c0) || given(&a->ct));
    if ((rc = linattn_clrun_resolve(r, &a->q, 1, &q)) ||
        (rc = linattn_clrun_resolve(r, &a->k, 1, &k)) ||
        (rc = linattn_clrun_resolve(r, &a->v, 1, &v)) ||
        (rc = linattn_clrun_resolve(r, &a->o, 0, &o)) ||
        (rc = linattn_clrun_state_in(r, &a->s0, nfv, a->step, &S)) ||
        (rc = linattn_clrun_state_in(r, &a->z0, nf, a->step, &z)) ||
        (rc = has_c ? linattn_clrun_state_in(r, &a->c0, nf, a->step, &c)
                    : linattn_clrun_resolve(r, &a->c0, 1, &c)) ||
        (rc = linattn_clrun_alloc(r, sizeof(cl_long) * 2 * (size_t)a->nseq, 0, &st)))
        return rc;
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(cl->queue, st, CL_TRUE, 0,
                                                        sizeof(cl_long) * 2 * (size_t)a->nseq, stab,
                                                        0, NULL, NULL), "clEnqueueWriteBuffer");
    const cl_int H = (cl_int)a->H, feature = a->feature, safe = a->safe, bidir = a->bidir;
    const cl_int c_in = a->safe && given(&a->c0), c_out = a->safe && given(&a->ct);
    const cl_int zero_c = given(&a->s0);
    const float s = a->qk_scale;
    const linattn_karg args[] = {A(st), A(q), A(k), A(v), A(H), A(feature), A(safe), A(bidir),
                                 A(c_in), A(c_out), A(zero_c), A(s), A(S), A(z), A(c), A(o)};
    if ((rc = linattn_clrun_args(kern, args, 16, "ela_seq"))) return rc;
    const size_t local[2] = {LINATTN_CL_WG, 1};
    const size_t global[2] = {(size_t)a->nseq * LINATTN_CL_WG, (size_t)a->H};
    if ((rc = linattn_clrun_launch(cl, kern, 2, global, local, "ela_seq"))) return rc;
    if ((rc = linattn_clrun_state_out(r, S, &a->st, nfv, a->step)) ||
        (rc = linattn_clrun_state_out(r, z, &a->zt, nf, a->step)) ||
        (c_out && (rc = linattn_clrun_state_out(r, c, &a->ct, nf, a->step))))
        return rc;
    return linattn_clrun_out(r, o, &a->o);
}

int linattn_cl_ela_run(linattn_cl *cl, const linattn_cl_ela *a)
{
    int rc;
    cl_kernel kern;
    linattn_clrun r = {.cl = cl};
    cl_long *stab = linattn_clrun_seqtab(a->cu, a->nseq, a->T, a->step);
    if (!stab) return linattn_fail(LINATTN_ENOMEM, "ela: out of memory");
    pthread_mutex_lock(&cl->lock);
    static const char *const names[] = {"ela_seq"};
    char opts[64];
    snprintf(opts, sizeof opts, "-DK=%d -DV=%d", a->K, a->V);
    rc = linattn_cl_kernels(cl, linattn_ela_cl_src, opts, names, 1, &kern);
    if (!rc) rc = run(&r, a, kern, stab);
    rc = linattn_clrun_end(&r, rc);
    free(stab);
    return rc;
}
