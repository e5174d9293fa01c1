/* linattn - host side of ela on OpenCL (kernel in ela.cl): the state on the
 * device, a sequence table, one launch per call. */
#include <stdlib.h>
#include <string.h>
#include "clpriv.h"
#include "ela_cl_src.h" /* generated from ela.cl: linattn_ela_cl_src */

#define A LINATTN_KARG

static int given(const linattn_cl_arg *x) { return x->host || x->mem; }

/* The state the kernel updates: the caller's (step, in place), or a fresh
 * buffer filled from the initial state or with zeros (forward). */
static int state(linattn_clrun *r, const linattn_cl_ela *a, const linattn_cl_arg *in,
                 size_t count, cl_mem *out)
{
    int rc;
    if (a->step) return linattn_clrun_resolve(r, in, 1, out);
    const size_t bytes = count * sizeof(float);
    if ((rc = linattn_clrun_alloc(r, bytes, !in->mem && !in->host, out))) return rc;
    if (in->mem)
        LINATTN_CL_CHECK(linattn_clapi.clEnqueueCopyBuffer(r->cl->queue, in->mem, *out, 0, 0,
                                                           bytes, 0, NULL, NULL),
                         "clEnqueueCopyBuffer");
    else if (in->host)
        LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(r->cl->queue, *out, CL_TRUE, 0, bytes,
                                                            in->host, 0, NULL, NULL),
                         "clEnqueueWriteBuffer");
    return LINATTN_OK;
}

/* The final state to its output (forward), or back to a host state (step). */
static int state_out(linattn_clrun *r, const linattn_cl_ela *a, cl_mem S,
                     const linattn_cl_arg *out, size_t count)
{
    if (!given(out)) return LINATTN_OK;
    if (a->step || !out->mem) return linattn_clrun_out(r, S, out);
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueCopyBuffer(r->cl->queue, S, out->mem, 0, 0,
                                                       count * sizeof(float), 0, NULL, NULL),
                     "clEnqueueCopyBuffer");
    return LINATTN_OK;
}

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
        (rc = linattn_clrun_resolve(r, &a->o, 0, &o)) || (rc = state(r, a, &a->s0, nfv, &S)) ||
        (rc = state(r, a, &a->z0, nf, &z)) ||
        (rc = has_c ? state(r, a, &a->c0, nf, &c) : linattn_clrun_resolve(r, &a->c0, 1, &c)) ||
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
    if ((rc = state_out(r, a, S, &a->st, nfv)) || (rc = state_out(r, a, z, &a->zt, nf)) ||
        (c_out && (rc = state_out(r, a, c, &a->ct, nf))))
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
    rc = linattn_cl_kprog_get(cl, cl->ela, &cl->nela, linattn_ela_cl_src, "ela_seq", a->K, a->V,
                              &kern);
    if (!rc) rc = run(&r, a, kern, stab);
    rc = linattn_clrun_end(&r, rc);
    free(stab);
    return rc;
}
