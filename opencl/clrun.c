/* linattn - what every operator's host code needs for one call on the
 * device: temporary buffers, host tensors copied in, kernel arguments,
 * launches.  Called with cl->lock held. */
#include <stdio.h>
#include <time.h>
#include "clpriv.h"
#include "fault.h"

/* Temporaries outlive their call: clrun_free keeps them (at most
 * LINATTN_CL_SPARE buffers and a quarter of the device's memory, 2 GiB at
 * most; the oldest go first), and clrun_alloc takes the smallest kept one of
 * at least the size asked and at most twice it, so that a call repeated with
 * the same shapes (a decode loop, a benchmark, a server's prefills) creates
 * no buffer: on NVIDIA's OpenCL creating and releasing the scratch of a
 * prefill cost about 0.3-0.5 ms a call.  LINATTN_CL_KEEP=0 (read when the
 * device is opened) keeps none.  cl->lock is held. */
static size_t spare_cap(const linattn_cl *cl)
{
    const uint64_t q = cl->info.global_mem / 4, most = (uint64_t)2 << 30;
    return cl->keep ? (size_t)(q < most ? q : most) : 0;
}

/* kept buffer i out of the list (released: drop = 1) */
static cl_mem spare_remove(linattn_cl *cl, int i, int drop)
{
    cl_mem m = cl->spare[i];
    if (drop) linattn_cl_free(m);
    cl->spare_total -= cl->spare_bytes[i];
    for (int j = i + 1; j < cl->nspare; j++) {
        cl->spare[j - 1] = cl->spare[j];
        cl->spare_bytes[j - 1] = cl->spare_bytes[j];
    }
    cl->nspare--;
    return m;
}

int linattn_cl_spare_release(linattn_cl *cl)
{
    const int n = cl->nspare;
    while (cl->nspare) spare_remove(cl, cl->nspare - 1, 1);
    return n;
}

/* the smallest kept buffer of bytes .. 2 bytes, out of the list; its size
 * in *bytes */
static int spare_take(linattn_cl *cl, size_t *bytes, cl_mem *out)
{
    int best = -1;
    for (int i = 0; i < cl->nspare; i++)
        if (cl->spare_bytes[i] >= *bytes && cl->spare_bytes[i] / 2 <= *bytes &&
            (best < 0 || cl->spare_bytes[i] < cl->spare_bytes[best]))
            best = i;
    if (best < 0) return 0;
    *bytes = cl->spare_bytes[best];
    *out = spare_remove(cl, best, 0);
    return 1;
}

static void spare_put(linattn_cl *cl, cl_mem m, size_t bytes)
{
    const size_t cap = spare_cap(cl);
    if (bytes > cap) {
        linattn_cl_free(m);
        return;
    }
    while (cl->nspare && (cl->nspare == LINATTN_CL_SPARE || cl->spare_total + bytes > cap))
        spare_remove(cl, 0, 1);
    cl->spare[cl->nspare] = m;
    cl->spare_bytes[cl->nspare++] = bytes;
    cl->spare_total += bytes;
}

int linattn_clrun_alloc(linattn_clrun *r, size_t bytes, int zero, cl_mem *out)
{
    void *m;
    if (r->ntmp == LINATTN_CLRUN_MAX)
        return linattn_fail(LINATTN_ENOMEM, "OpenCL: too many temporary buffers in one call");
    cl_mem kept;
    size_t kb = bytes ? bytes : 4;
    if (!linattn_fault_on(LINATTN_FAULT_CL_OOM) && spare_take(r->cl, &kb, &kept)) {
        int rc = zero ? linattn_cl_zero_locked(r->cl, kept, bytes) : LINATTN_OK;
        if (rc) return rc;
        m = kept;
    } else {
        int rc = linattn_cl_alloc_locked(r->cl, bytes, zero, &m);
        if (rc == LINATTN_ENOMEM && linattn_cl_spare_release(r->cl)) /* the kept ones' room */
            rc = linattn_cl_alloc_locked(r->cl, bytes, zero, &m);
        if (rc) return rc;
    }
    r->tmpb[r->ntmp] = kb; /* the size asked, or the kept buffer's */
    r->tmp[r->ntmp++] = m;
    *out = m;
    return LINATTN_OK;
}

void linattn_clrun_free(linattn_clrun *r)
{
    for (int i = 0; i < r->ntmp; i++) spare_put(r->cl, r->tmp[i], r->tmpb[i]);
    r->ntmp = 0;
}

int linattn_clrun_resolve(linattn_clrun *r, const linattn_cl_arg *a, int in, cl_mem *out)
{
    int rc;
    if (a->mem) {
        *out = a->mem;
        return LINATTN_OK;
    }
    if (!a->host && in) {
        *out = r->cl->dummy;
        return LINATTN_OK;
    }
    const size_t bytes = a->count * linattn_dtype_size(a->dtype);
    if ((rc = linattn_clrun_alloc(r, bytes, 0, out))) return rc;
    if (in)
        LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(r->cl->queue, *out, CL_TRUE, 0,
                                                            bytes, a->host,
                                                            0, NULL, NULL),
                         "clEnqueueWriteBuffer");
    return LINATTN_OK;
}

int linattn_clrun_args(cl_kernel k, const linattn_karg *args, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        LINATTN_CL_CHECK(linattn_clapi.clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].p), name);
    return LINATTN_OK;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* LINATTN_CL_PROFILE set and not "0" when the device was opened (tuning):
 * every launch waits for the queue before and after and prints its wall
 * time on stderr. */
int linattn_clrun_launch(linattn_cl *cl, cl_kernel k, cl_uint dims, const size_t *global,
                         const size_t *local, const char *name)
{
    const int prof = cl->profile;
    double t0 = 0.0;
    if (prof) {
        linattn_clapi.clFinish(cl->queue);
        t0 = now_ms();
    }
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueNDRangeKernel(cl->queue, k, dims, NULL, global, local,
                                                          0, NULL, NULL), name);
    if (prof) {
        linattn_clapi.clFinish(cl->queue);
        fprintf(stderr, "linattn-cl-profile %s %.4f ms\n", name, now_ms() - t0);
    }
    return LINATTN_OK;
}

int linattn_clrun_queue(linattn_cl *cl, int i, cl_command_queue *out)
{
    cl_int err;
    if (i == 0) {
        *out = cl->queue;
        return LINATTN_OK;
    }
    if (!cl->aux[i - 1]) {
        cl->aux[i - 1] = linattn_clapi.clCreateCommandQueue(cl->ctx, cl->dev, 0, &err);
        if (!cl->aux[i - 1]) return linattn_cl_fail(err, "clCreateCommandQueue");
    }
    *out = cl->aux[i - 1];
    return LINATTN_OK;
}

int linattn_clrun_launch_on(linattn_cl *cl, cl_command_queue q, cl_kernel k, cl_uint dims,
                            const size_t *global, const size_t *local, cl_uint nwait,
                            const cl_event *wait, cl_event *ev, const char *name)
{
    if (q == cl->queue && !nwait && !ev) return linattn_clrun_launch(cl, k, dims, global, local, name);
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueNDRangeKernel(q, k, dims, NULL, global, local, nwait,
                                                          nwait ? wait : NULL, ev), name);
    return LINATTN_OK;
}

int linattn_clrun_out(linattn_clrun *r, cl_mem mem, const linattn_cl_arg *a)
{
    if (a->mem || !a->host) return LINATTN_OK;
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueReadBuffer(r->cl->queue, mem, CL_TRUE, 0,
                                                       a->count * linattn_dtype_size(a->dtype),
                                                       (void *)a->host,
                                                       0, NULL, NULL),
                     "clEnqueueReadBuffer");
    return LINATTN_OK;
}

int linattn_clrun_end(linattn_clrun *r, int rc)
{
    const cl_int err = linattn_clapi.clFinish(r->cl->queue); /* nothing may still use what we free */
    if (!rc && err != CL_SUCCESS) rc = linattn_cl_fail(err, "clFinish");
    linattn_clrun_free(r);
    pthread_mutex_unlock(&r->cl->lock);
    return rc;
}

cl_long *linattn_clrun_seqtab(const int64_t *cu, int64_t nseq, int64_t T, int step)
{
    cl_long *tab = linattn_malloc(sizeof *tab * 2 * (size_t)nseq);
    if (!tab) return NULL;
    for (int64_t n = 0; n < nseq; n++) {
        const int64_t b = cu ? 0 : n, t0 = cu ? cu[n] : 0;
        const int64_t t1 = step ? 1 : cu ? cu[n + 1] : T;
        tab[2 * n] = step ? n : b * T + t0;
        tab[2 * n + 1] = t1 - t0;
    }
    return tab;
}

int linattn_clrun_state_in(linattn_clrun *r, const linattn_cl_arg *in, size_t count, int step,
                           cl_mem *out)
{
    int rc;
    if (step) return linattn_clrun_resolve(r, in, 1, out);
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

int linattn_clrun_state_out(linattn_clrun *r, cl_mem S, const linattn_cl_arg *out, size_t count,
                            int step)
{
    if (step || !out->mem) return linattn_clrun_out(r, S, out);
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueCopyBuffer(r->cl->queue, S, out->mem, 0, 0,
                                                       count * sizeof(float), 0, NULL, NULL),
                     "clEnqueueCopyBuffer");
    return LINATTN_OK;
}
