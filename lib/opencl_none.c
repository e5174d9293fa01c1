/* linattn - the OpenCL backend's entry points in a build without OpenCL
 * (configure found no CL/cl.h or was given --without-opencl). */
#include "internal.h"

static int none(void)
{
    return linattn_fail(LINATTN_ENODEV, "this build has no OpenCL backend "
                                        "(configure found no OpenCL headers)");
}

int linattn_opencl_built(void) { return 0; }

int linattn_opencl_devices(linattn_device_info *out, int max, int *count)
{
    (void)out; (void)max;
    if (count) *count = 0;
    return none();
}

int linattn_cl_open(const char *spec, int verbose, linattn_cl **out)
{
    (void)spec; (void)verbose;
    *out = NULL;
    return none();
}

void linattn_cl_close(linattn_cl *cl) { (void)cl; }
const char *linattn_cl_describe(const linattn_cl *cl) { (void)cl; return "cpu"; }

int linattn_cl_is_gpu(const linattn_cl *cl) { (void)cl; return 0; }

int linattn_cl_alloc(linattn_cl *cl, size_t bytes, int zero, void **mem)
{
    (void)cl; (void)bytes; (void)zero;
    *mem = NULL;
    return none();
}

void linattn_cl_free(void *mem) { (void)mem; }

int linattn_cl_write(linattn_cl *cl, void *mem, size_t off, size_t bytes, const void *src)
{
    (void)cl; (void)mem; (void)off; (void)bytes; (void)src;
    return none();
}

int linattn_cl_read(linattn_cl *cl, void *mem, size_t off, size_t bytes, void *dst)
{
    (void)cl; (void)mem; (void)off; (void)bytes; (void)dst;
    return none();
}

int linattn_cl_delta_run(linattn_cl *cl, const linattn_cl_delta *a)
{
    (void)cl; (void)a;
    return none();
}

int linattn_opencl_limits(linattn_ctx *ctx, double *sgemm_gflops, double *copy_gbs)
{
    if (!ctx) return linattn_fail(LINATTN_ENULL, "ctx: NULL");
    if (!sgemm_gflops || !copy_gbs) return linattn_fail(LINATTN_ENULL, "output pointer: NULL");
    return linattn_fail(LINATTN_EUNSUPPORTED, "ctx: not an OpenCL context");
}

int linattn_cl_gka_run(linattn_cl *cl, const linattn_cl_gka *a)
{
    (void)cl; (void)a;
    return none();
}

int linattn_cl_kalman_run(linattn_cl *cl, const linattn_cl_kalman *a)
{
    (void)cl; (void)a;
    return none();
}

int linattn_cl_ela_run(linattn_cl *cl, const linattn_cl_ela *a)
{
    (void)cl; (void)a;
    return none();
}

int linattn_cl_kv_resize(linattn_cl *cl, linattn_cl_kv *kv, int64_t rows, int K, int V,
                         int64_t len, int64_t oldcap, int64_t newcap)
{
    (void)cl; (void)kv; (void)rows; (void)K; (void)V; (void)len; (void)oldcap; (void)newcap;
    return none();
}

void linattn_cl_kv_free(linattn_cl_kv *kv) { (void)kv; }

int linattn_cl_kv_run(linattn_cl *cl, linattn_cl_kv *kv, const linattn_cl_kvstep *a)
{
    (void)cl; (void)kv; (void)a;
    return none();
}

int linattn_cl_softmax_run(linattn_cl *cl, const linattn_cl_softmax *a)
{
    (void)cl; (void)a;
    return none();
}

int linattn_cl_values_check(linattn_cl *cl, linattn_cl_vcheck *vc)
{
    (void)cl; (void)vc;
    return none();
}

int linattn_cl_view_copy(linattn_cl *cl, void *src, int64_t soff, const int64_t *sstr,
                         linattn_dtype sdt, void *dst, int64_t doff, const int64_t *dstr,
                         linattn_dtype ddt, const int64_t *shape, int ndim, int flat)
{
    (void)cl; (void)src; (void)soff; (void)sstr; (void)dst; (void)doff; (void)dstr;
    (void)sdt; (void)ddt;
    (void)shape; (void)ndim; (void)flat;
    return none();
}

int linattn_cl_seg_addmul(linattn_cl *cl, void *o, void *oA, void *S, int64_t Bt, int64_t len,
                          int64_t Ho, int64_t H, int K, int V)
{
    (void)cl; (void)o; (void)oA; (void)S; (void)Bt; (void)len; (void)Ho; (void)H; (void)K; (void)V;
    return none();
}
