/* linattn - what the context's OpenCL device can do, measured with our
 * own kernels (limits.cl): the reference points of linattn-bench. */
#include <stdlib.h>
#include <time.h>
#include "clpriv.h"
#include "limits_cl_src.h" /* generated from limits.cl: linattn_limits_cl_src */

#define REPS 5

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of REPS runs of a kernel (after one warm-up). */
static int time_kernel(linattn_cl *cl, cl_kernel k, cl_uint dims, const size_t *global,
                       const size_t *local, double *sec)
{
    double t[REPS];
    for (int r = -1; r < REPS; r++) {
        const double t0 = now();
        LINATTN_CL_CHECK(linattn_clapi.clEnqueueNDRangeKernel(cl->queue, k, dims, NULL, global,
                                                              local, 0, NULL, NULL), "limits kernel");
        LINATTN_CL_CHECK(linattn_clapi.clFinish(cl->queue), "clFinish");
        if (r >= 0) t[r] = now() - t0;
    }
    qsort(t, REPS, sizeof t[0], cmp);
    *sec = t[REPS / 2];
    return LINATTN_OK;
}

static int sgemm(linattn_cl *cl, cl_program p, double *gflops)
{
    int rc = LINATTN_OK;
    cl_int err;
    cl_mem m[3] = {NULL, NULL, NULL};
    cl_kernel k = linattn_clapi.clCreateKernel(p, "limits_sgemm", &err);
    if (!k) return linattn_cl_fail(err, "limits_sgemm");
    /* grow N until one product takes 20 ms (or N = 4096) */
    for (cl_int N = 512; N <= 4096 && !rc; N *= 2) {
        const size_t bytes = (size_t)N * N * sizeof(float);
        for (int i = 0; i < 3 && !rc; i++) rc = linattn_cl_alloc_locked(cl, bytes, 1, (void **)&m[i]);
        double sec = 0.0;
        const size_t local[2] = {256, 1}, global[2] = {(size_t)N / 64 * 256, (size_t)N / 64};
        if (!rc) {
            err = linattn_clapi.clSetKernelArg(k, 0, sizeof m[0], &m[0]);
            if (!err) err = linattn_clapi.clSetKernelArg(k, 1, sizeof m[1], &m[1]);
            if (!err) err = linattn_clapi.clSetKernelArg(k, 2, sizeof m[2], &m[2]);
            if (!err) err = linattn_clapi.clSetKernelArg(k, 3, sizeof N, &N);
            rc = err ? linattn_cl_fail(err, "clSetKernelArg") : time_kernel(cl, k, 2, global, local, &sec);
        }
        for (int i = 0; i < 3; i++) {
            linattn_cl_free(m[i]);
            m[i] = NULL;
        }
        if (!rc) *gflops = 2.0 * N * N * (double)N / sec * 1e-9;
        if (sec > 0.02) break;
    }
    linattn_clapi.clReleaseKernel(k);
    return rc;
}

static int copy(linattn_cl *cl, cl_program p, double *gbs)
{
    int rc;
    cl_int err;
    cl_mem a = NULL, b = NULL;
    size_t bytes = (size_t)1 << 28;
    while (bytes > cl->info.max_alloc || bytes > cl->info.global_mem / 4) bytes /= 2;
    cl_kernel k = linattn_clapi.clCreateKernel(p, "limits_copy", &err);
    if (!k) return linattn_cl_fail(err, "limits_copy");
    if (!(rc = linattn_cl_alloc_locked(cl, bytes, 1, (void **)&a)) &&
        !(rc = linattn_cl_alloc_locked(cl, bytes, 1, (void **)&b))) {
        const cl_long n = (cl_long)(bytes / 16);
        size_t local = 256, global = (size_t)cl->info.compute_units * 2048;
        if (global > (size_t)n) global = (size_t)n / 256 * 256;
        double sec = 0.0;
        err = linattn_clapi.clSetKernelArg(k, 0, sizeof a, &a);
        if (!err) err = linattn_clapi.clSetKernelArg(k, 1, sizeof b, &b);
        if (!err) err = linattn_clapi.clSetKernelArg(k, 2, sizeof n, &n);
        rc = err ? linattn_cl_fail(err, "clSetKernelArg") : time_kernel(cl, k, 1, &global, &local, &sec);
        if (!rc) *gbs = 2.0 * (double)bytes / sec * 1e-9;
    }
    linattn_cl_free(a);
    linattn_cl_free(b);
    linattn_clapi.clReleaseKernel(k);
    return rc;
}

int linattn_opencl_limits(linattn_ctx *ctx, double *sgemm_gflops, double *copy_gbs)
{
    if (!ctx) return linattn_fail(LINATTN_ENULL, "ctx: NULL");
    if (!sgemm_gflops || !copy_gbs) return linattn_fail(LINATTN_ENULL, "output pointer: NULL");
    if (!ctx->cl) return linattn_fail(LINATTN_EUNSUPPORTED, "ctx: not an OpenCL context");
    linattn_cl *cl = ctx->cl;
    cl_program p;
    pthread_mutex_lock(&cl->lock);
    int rc = linattn_cl_build(cl, linattn_limits_cl_src, "-cl-std=CL1.2", &p);
    if (!rc) {
        rc = sgemm(cl, p, sgemm_gflops);
        if (!rc) rc = copy(cl, p, copy_gbs);
        linattn_clapi.clReleaseProgram(p);
    }
    pthread_mutex_unlock(&cl->lock);
    return rc;
}
