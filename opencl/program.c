/* linattn - OpenCL programs: built from the sources embedded at build time,
 * once per context and (source, options), kept in a bounded cache with
 * their kernels, optionally cached on disk in LINATTN_CL_CACHE_DIR. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "clpriv.h"

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
    const char *showlog = getenv("LINATTN_CL_BUILD_LOG"); /* tuning: print the compiler's log */
    if (showlog && *showlog && strcmp(showlog, "0")) {
        char log[8192] = "";
        linattn_clapi.clGetProgramBuildInfo(p, cl->dev, CL_PROGRAM_BUILD_LOG, sizeof log, log, NULL);
        log[sizeof log - 1] = '\0';
        fprintf(stderr, "linattn: OpenCL build log (options %s):\n%s\n", opts, log);
    }
    if (cached) store_cached(cl, p, path);
    *out = p;
    return LINATTN_OK;
}

/* ---- the program cache ----------------------------------------------------
 * One table per context of programs keyed by (source, options), each with
 * the kernels asked of it so far, by name.  Bounded: when it is full, the
 * least recently used program goes, kernels and all; that happens only in
 * a lookup of another program, and every call looks up all its kernels in
 * one lookup, so no call loses a kernel it holds. */

static void prog_release(linattn_cl_prog *p)
{
    for (int i = 0; i < p->nk; i++) linattn_clapi.clReleaseKernel(p->kernels[i]);
    if (p->prog) linattn_clapi.clReleaseProgram(p->prog);
    memset(p, 0, sizeof *p);
}

/* The kernel `name` of p, created on first use. */
static int prog_kernel(linattn_cl_prog *p, const char *name, cl_kernel *out)
{
    cl_int err;
    for (int i = 0; i < p->nk; i++)
        if (!strcmp(p->names[i], name)) {
            *out = p->kernels[i];
            return LINATTN_OK;
        }
    if (p->nk == LINATTN_CL_KERNELS)
        return linattn_fail(LINATTN_EINVAL, "OpenCL: more than %d kernels in one program",
                            LINATTN_CL_KERNELS);
    if (!(*out = linattn_clapi.clCreateKernel(p->prog, name, &err))) return linattn_cl_fail(err, name);
    p->names[p->nk] = name;
    p->kernels[p->nk++] = *out;
    return LINATTN_OK;
}

/* The entry of (src, opts), or with opts NULL the newest entry of src;
 * NULL when none. */
static linattn_cl_prog *find(linattn_cl *cl, const char *src, const char *opts)
{
    linattn_cl_prog *best = NULL;
    for (int i = 0; i < cl->nprog; i++) {
        linattn_cl_prog *p = &cl->progs[i];
        if (p->src != src || (opts && strcmp(p->opts, opts))) continue;
        if (opts) return p;
        if (!best || p->used > best->used) best = p;
    }
    return best;
}

/* A new entry for (src, opts), built now; the least recently used one
 * makes room when the table is full. */
static int add(linattn_cl *cl, const char *src, const char *opts, linattn_cl_prog **out)
{
    int rc;
    char full[sizeof cl->progs[0].opts + 144];
    if (strlen(opts) >= sizeof cl->progs[0].opts)
        return linattn_fail(LINATTN_EINVAL, "OpenCL: build options too long: %s", opts);
    if (cl->nprog == LINATTN_CL_PROGS) {
        int lru = 0;
        for (int i = 1; i < cl->nprog; i++)
            if (cl->progs[i].used < cl->progs[lru].used) lru = i;
        prog_release(&cl->progs[lru]);
        cl->progs[lru] = cl->progs[--cl->nprog];
        memset(&cl->progs[cl->nprog], 0, sizeof cl->progs[0]);
    }
    linattn_cl_prog *p = &cl->progs[cl->nprog];
    /* LINATTN_CL_BUILD_EXTRA (tuning): options appended, e.g. -cl-nv-verbose */
    const char *extra = getenv("LINATTN_CL_BUILD_EXTRA");
    snprintf(full, sizeof full, "-cl-std=CL1.2 %s %s", opts, extra ? extra : "");
    if ((rc = linattn_cl_build(cl, src, full, &p->prog))) return rc;
    p->src = src;
    strcpy(p->opts, opts);
    cl->nprog++;
    *out = p;
    return LINATTN_OK;
}

static int kernels(linattn_cl *cl, linattn_cl_prog *p, const char *const *names, int n,
                   cl_kernel *out)
{
    int rc;
    p->used = ++cl->clock;
    for (int i = 0; i < n; i++)
        if ((rc = prog_kernel(p, names[i], &out[i]))) return rc;
    return LINATTN_OK;
}

int linattn_cl_kernels(linattn_cl *cl, const char *src, const char *opts,
                       const char *const *names, int n, cl_kernel *out)
{
    int rc;
    linattn_cl_prog *p = find(cl, src, opts);
    if (!p && (rc = add(cl, src, opts, &p))) return rc;
    return kernels(cl, p, names, n, out);
}

int linattn_cl_kernels_any(linattn_cl *cl, const char *src, const char *opts,
                           const char *const *names, int n, cl_kernel *out)
{
    linattn_cl_prog *p = find(cl, src, NULL);
    return p ? kernels(cl, p, names, n, out) : linattn_cl_kernels(cl, src, opts, names, n, out);
}

void linattn_cl_programs_release(linattn_cl *cl)
{
    for (int i = 0; i < cl->nprog; i++) prog_release(&cl->progs[i]);
    cl->nprog = 0;
}
