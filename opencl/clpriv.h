/* linattn - state shared by the files of the OpenCL backend. */
#ifndef LINATTN_CLPRIV_H
#define LINATTN_CLPRIV_H

#include <pthread.h>
#include "internal.h"
#include "opencl.h"
#include "clapi.h"

#define LINATTN_CL_WG 256      /* work-group size the kernels are written for */
#define LINATTN_CL_MAX_PROGS 16

/* One program built for a shape class, with its kernels. */
typedef struct linattn_cl_prog {
    int K, V, C, BV;
    cl_program prog;
    cl_kernel prep, state, out, step, kla;
} linattn_cl_prog;

/* A program of one operator family built for (K, V), with its kernels. */
#define LINATTN_CL_MAX_KERNELS 4
typedef struct linattn_cl_kprog {
    int K, V;
    cl_program prog;
    cl_kernel kernel; /* the first of kernels[] */
    cl_kernel kernels[LINATTN_CL_MAX_KERNELS];
} linattn_cl_kprog;

/* The softmax program of one (K, V) with its kernels (softmax_cl.c). */
typedef struct linattn_cl_smprog {
    int K, V;
    cl_program prog;
    cl_kernel fwd, split, merge, append;
} linattn_cl_smprog;

struct linattn_cl {
    cl_device_id dev;
    cl_context ctx;
    cl_command_queue queue;
    linattn_device_info info;
    char desc[300];
    int verbose;
    pthread_mutex_t lock;      /* one call at a time on the queue and kernels */
    cl_mem dummy;              /* bound to absent tensor arguments */
    int nprog;
    linattn_cl_prog progs[LINATTN_CL_MAX_PROGS];
    int ngka;
    linattn_cl_kprog gka[LINATTN_CL_MAX_PROGS];
    int nkalman;
    linattn_cl_kprog kalman[LINATTN_CL_MAX_PROGS];
    int nela;
    linattn_cl_kprog ela[LINATTN_CL_MAX_PROGS];
    int nsoftmax;
    linattn_cl_smprog softmax[LINATTN_CL_MAX_PROGS];
    int nvalues;
    linattn_cl_kprog values[LINATTN_CL_MAX_PROGS]; /* the value check (one program) */
};

/* Record an OpenCL failure: "what: CL_ERROR_NAME (code)". */
int linattn_cl_fail(cl_int err, const char *what);
#define LINATTN_CL_CHECK(call, what)                                                          \
    do {                                                                                      \
        cl_int e_ = (call);                                                                   \
        if (e_ != CL_SUCCESS) return linattn_cl_fail(e_, what);                               \
    } while (0)

#define LINATTN_CL_CHECK_RC(rc, call, what)                                                   \
    do {                                                                                      \
        cl_int e_ = (call);                                                                   \
        if (e_ != CL_SUCCESS) (rc) = linattn_cl_fail(e_, what);                               \
    } while (0)

/* device.c: linattn_cl_alloc for callers holding cl->lock. */
int linattn_cl_alloc_locked(linattn_cl *cl, size_t bytes, int zero, void **mem);

/* clrun.c: one call on the device (with cl->lock held). */
#define LINATTN_CLRUN_MAX 24
typedef struct linattn_clrun {
    linattn_cl *cl;
    cl_mem tmp[LINATTN_CLRUN_MAX]; /* buffers this call allocated */
    int ntmp;
} linattn_clrun;
int linattn_clrun_alloc(linattn_clrun *r, size_t bytes, int zero, cl_mem *out);
void linattn_clrun_free(linattn_clrun *r);
/* The device buffer of an argument: its own, a fresh copy of its host data
 * (in = 1), or fresh space for an output (in = 0); absent: the dummy. */
int linattn_clrun_resolve(linattn_clrun *r, const linattn_cl_arg *a, int in, cl_mem *out);
/* Copy an output back to its host tensor (nothing for a buffer tensor). */
int linattn_clrun_out(linattn_clrun *r, cl_mem mem, const linattn_cl_arg *a);
/* The end of a call begun under cl->lock: wait for the device (its failure
 * counts only if rc is 0), free the temporaries, unlock; returns rc. */
int linattn_clrun_end(linattn_clrun *r, int rc);
/* Per sequence {first token row (b*T + t), tokens} (step: row n, 1 token);
 * NULL when out of memory. */
cl_long *linattn_clrun_seqtab(const int64_t *cu, int64_t nseq, int64_t T, int step);
typedef struct linattn_karg { size_t size; const void *p; } linattn_karg;
#define LINATTN_KARG(x) {sizeof(x), &(x)}
int linattn_clrun_args(cl_kernel k, const linattn_karg *args, int n, const char *name);
int linattn_clrun_launch(linattn_cl *cl, cl_kernel k, cl_uint dims, const size_t *global,
                         const size_t *local, const char *name);

/* program.c: build a program from source (or the disk cache); on failure
 * the build log goes to stderr. */
int linattn_cl_build(linattn_cl *cl, const char *src, const char *opts, cl_program *out);
/* program.c: the program for (K, V, C, BV), built (or loaded from the disk
 * cache) on first use; call with cl->lock held. */
int linattn_cl_program(linattn_cl *cl, int K, int V, int C, int BV, linattn_cl_prog **out);
void linattn_cl_programs_release(linattn_cl *cl);
/* softmax_cl.c: release the softmax programs (from linattn_cl_programs_release). */
void linattn_cl_softmax_release(linattn_cl *cl);
/* program.c: the kernel `name` of source src built for (K, V), kept in the
 * list progs (of n, at most LINATTN_CL_MAX_PROGS); cl->lock held. */
int linattn_cl_kprog_get(linattn_cl *cl, linattn_cl_kprog *progs, int *n, const char *src,
                         const char *name, int K, int V, cl_kernel *out);
/* The same for nk kernels of one program (out[i] is names[i]). */
int linattn_cl_kprog_getn(linattn_cl *cl, linattn_cl_kprog *progs, int *n, const char *src,
                          const char *const *names, int nk, int K, int V, cl_kernel *out);

#endif
