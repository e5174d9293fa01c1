/* linattn - OpenCL programs: built from the sources embedded at build time,
 * once per context and shape class (K, V, chunk), optionally cached on disk
 * in LINATTN_CL_CACHE_DIR. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "clpriv.h"
#include "delta_cl_src.h" /* generated from delta.cl: linattn_delta_cl_src */

/* FNV-1a, 64 bits: names a cached binary after everything it depends on. */
static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull;
}

static int cache_path(const linattn_cl *cl, const char *src, const char *opts, char *path, size_t n)
{
    const char *dir = getenv("LINATTN_CL_CACHE_DIR");
    if (!dir || !*dir) return 0;
    char drv[128] = "";
    linattn_clapi.clGetDeviceInfo(cl->dev, CL_DRIVER_VERSION, sizeof drv, drv, NULL);
    drv[sizeof drv - 1] = '\0';
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, src);
    h = fnv(h, opts);
    h = fnv(h, cl->info.name);
    h = fnv(h, cl->info.version);
    h = fnv(h, cl->info.platform_name);
    h = fnv(h, drv);
    return snprintf(path, n, "%s/linattn-%016llx.clbin", dir, (unsigned long long)h) < (int)n;
}

/* A program from a cached binary, or NULL (then it is built from source). */
static cl_program load_cached(linattn_cl *cl, const char *path, const char *opts)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *bin = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (bin = linattn_malloc((size_t)len)) &&
        fread(bin, 1, (size_t)len, f) != (size_t)len) {
        free(bin);
        bin = NULL;
    }
    fclose(f);
    if (!bin) return NULL;
    const size_t size = (size_t)len;
    const unsigned char *b = bin;
    cl_int st, err;
    cl_program p = linattn_clapi.clCreateProgramWithBinary(cl->ctx, 1, &cl->dev, &size, &b, &st, &err);
    free(bin);
    if (!p) return NULL;
    if (st != CL_SUCCESS || linattn_clapi.clBuildProgram(p, 1, &cl->dev, opts, NULL, NULL) != CL_SUCCESS) {
        linattn_clapi.clReleaseProgram(p);
        return NULL;
    }
    if (cl->verbose) fprintf(stderr, "linattn: OpenCL program loaded from %s\n", path);
    return p;
}

/* Store the binary; failures only cost a rebuild next time (said when verbose). */
static void store_cached(linattn_cl *cl, cl_program p, const char *path)
{
    size_t size = 0;
    if (linattn_clapi.clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) !=
            CL_SUCCESS || !size)
        return;
    unsigned char *bin = linattn_malloc(size);
    if (!bin) return;
    char tmp[4200];
    int ok = linattn_clapi.clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) ==
             CL_SUCCESS;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = ok ? fopen(tmp, "wb") : NULL;
    ok = f && fwrite(bin, 1, size, f) == size;
    if (f && fclose(f) != 0) ok = 0;
    if (ok) ok = rename(tmp, path) == 0; /* atomic: readers never see half a file */
    if (!ok) {
        if (f) remove(tmp);
        if (cl->verbose)
            fprintf(stderr, "linattn: could not write the OpenCL cache %s (%s)\n", path,
                    strerror(errno));
    }
    free(bin);
}

int linattn_cl_build(linattn_cl *cl, const char *src, const char *opts, cl_program *out)
{
    char path[4096];
    cl_int err;
    /* LINATTN_FAULT=cl_build (tests): the compiler rejects the source */
    const int fault = linattn_fault_on(LINATTN_FAULT_CL_BUILD);
    const char *srcs[2] = {"#error LINATTN_FAULT=cl_build\n", src};
    const int cached = !fault && cache_path(cl, src, opts, path, sizeof path);
    if (cached && (*out = load_cached(cl, path, opts))) return LINATTN_OK;
    if (cl->verbose) fprintf(stderr, "linattn: building OpenCL program %s on %s\n", opts, cl->desc);
    cl_program p = linattn_clapi.clCreateProgramWithSource(cl->ctx, fault ? 2 : 1, fault ? srcs : &src,
                                                           NULL, &err);
    if (!p) return linattn_cl_fail(err, "clCreateProgramWithSource");
    err = linattn_clapi.clBuildProgram(p, 1, &cl->dev, opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[4096] = "";
        linattn_clapi.clGetProgramBuildInfo(p, cl->dev, CL_PROGRAM_BUILD_LOG, sizeof log, log, NULL);
        log[sizeof log - 1] = '\0';
        fprintf(stderr, "linattn: OpenCL program build failed on %s (options %s):\n%s\n",
                cl->desc, opts, log);
        linattn_clapi.clReleaseProgram(p);
        return linattn_fail(LINATTN_EDEVICE, "clBuildProgram on %s: %s (%d); build log on stderr",
                            cl->desc, linattn_clerr(err), (int)err);
    }
    if (cached) store_cached(cl, p, path);
    *out = p;
    return LINATTN_OK;
}

static int kernel(linattn_cl_prog *pr, const char *name, cl_kernel *out)
{
    cl_int err;
    *out = linattn_clapi.clCreateKernel(pr->prog, name, &err);
    if (!*out) return linattn_cl_fail(err, name);
    return LINATTN_OK;
}

static void release(linattn_cl_prog *pr)
{
    cl_kernel *ks[] = {&pr->prep, &pr->state, &pr->out, &pr->step, &pr->kla};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        if (*ks[i]) linattn_clapi.clReleaseKernel(*ks[i]);
    if (pr->prog) linattn_clapi.clReleaseProgram(pr->prog);
    memset(pr, 0, sizeof *pr);
}

int linattn_cl_program(linattn_cl *cl, int K, int V, int C, int BV, linattn_cl_prog **out)
{
    int rc;
    for (int i = 0; i < cl->nprog; i++)
        if (cl->progs[i].K == K && cl->progs[i].V == V && cl->progs[i].C == C &&
            cl->progs[i].BV == BV) {
            *out = &cl->progs[i];
            return LINATTN_OK;
        }
    if (cl->nprog == LINATTN_CL_MAX_PROGS) { /* forget the oldest shape class */
        release(&cl->progs[0]);
        memmove(cl->progs, cl->progs + 1, sizeof cl->progs[0] * (LINATTN_CL_MAX_PROGS - 1));
        cl->nprog--;
    }
    linattn_cl_prog *pr = &cl->progs[cl->nprog];
    memset(pr, 0, sizeof *pr);
    char opts[160];
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DK=%d -DV=%d -DCH=%d -DBV=%d", K, V, C, BV);
    if ((rc = linattn_cl_build(cl, linattn_delta_cl_src, opts, &pr->prog))) return rc;
    pr->K = K; pr->V = V; pr->C = C; pr->BV = BV;
    if ((rc = kernel(pr, "delta_prep", &pr->prep)) || (rc = kernel(pr, "delta_state", &pr->state)) ||
        (rc = kernel(pr, "delta_out", &pr->out)) || (rc = kernel(pr, "delta_step", &pr->step)) ||
        (rc = kernel(pr, "kla_beta", &pr->kla))) {
        release(pr);
        return rc;
    }
    cl->nprog++;
    *out = pr;
    return LINATTN_OK;
}

static void kprog_release(linattn_cl_kprog *p)
{
    for (int i = 0; i < LINATTN_CL_MAX_KERNELS; i++)
        if (p->kernels[i]) linattn_clapi.clReleaseKernel(p->kernels[i]);
    if (p->prog) linattn_clapi.clReleaseProgram(p->prog);
    memset(p, 0, sizeof *p);
}

int linattn_cl_kprog_getn(linattn_cl *cl, linattn_cl_kprog *progs, int *n, const char *src,
                          const char *const *names, int nk, int K, int V, cl_kernel *out)
{
    int rc;
    cl_int err;
    for (int i = 0; i < *n; i++)
        if (progs[i].K == K && progs[i].V == V) {
            memcpy(out, progs[i].kernels, sizeof *out * (size_t)nk);
            return LINATTN_OK;
        }
    if (*n == LINATTN_CL_MAX_PROGS) { /* forget the oldest shape */
        kprog_release(&progs[0]);
        memmove(progs, progs + 1, sizeof progs[0] * (LINATTN_CL_MAX_PROGS - 1));
        (*n)--;
    }
    linattn_cl_kprog *p = &progs[*n];
    char opts[96];
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DK=%d -DV=%d", K, V);
    if ((rc = linattn_cl_build(cl, src, opts, &p->prog))) return rc;
    for (int i = 0; i < nk; i++)
        if (!(p->kernels[i] = linattn_clapi.clCreateKernel(p->prog, names[i], &err))) {
            kprog_release(p);
            return linattn_cl_fail(err, names[i]);
        }
    p->kernel = p->kernels[0];
    p->K = K;
    p->V = V;
    (*n)++;
    memcpy(out, p->kernels, sizeof *out * (size_t)nk);
    return LINATTN_OK;
}

int linattn_cl_kprog_get(linattn_cl *cl, linattn_cl_kprog *progs, int *n, const char *src,
                         const char *name, int K, int V, cl_kernel *out)
{
    return linattn_cl_kprog_getn(cl, progs, n, src, &name, 1, K, V, out);
}

void linattn_cl_programs_release(linattn_cl *cl)
{
    for (int i = 0; i < cl->nprog; i++) release(&cl->progs[i]);
    cl->nprog = 0;
    for (int i = 0; i < cl->ngka; i++) kprog_release(&cl->gka[i]);
    cl->ngka = 0;
    for (int i = 0; i < cl->nkalman; i++) kprog_release(&cl->kalman[i]);
    cl->nkalman = 0;
    for (int i = 0; i < cl->nela; i++) kprog_release(&cl->ela[i]);
    cl->nela = 0;
    for (int i = 0; i < cl->nvalues; i++) kprog_release(&cl->values[i]);
    cl->nvalues = 0;
    linattn_cl_softmax_release(cl);
}
