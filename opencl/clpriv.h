/* linattn - state shared by the files of the OpenCL backend. */
#ifndef LINATTN_CLPRIV_H
#define LINATTN_CLPRIV_H

#include <pthread.h>
#include "internal.h"
#include "opencl.h"
#include "clapi.h"

#define LINATTN_CL_WG 256      /* work-group size the kernels are written for */
#define LINATTN_CL_PROGS 32    /* programs kept per context (least recently used out) */
#define LINATTN_CL_KERNELS 12  /* kernels of one program, at most */

/* A program of the cache (program.c): its key, the source (an embedded
 * string, compared by address) and the build options, and the kernels
 * asked of it so far, by name. */
typedef struct linattn_cl_prog {
    const char *src;
    char opts[120];
    uint64_t used; /* cl->clock at the last lookup */
    cl_program prog;
    int nk;
    const char *names[LINATTN_CL_KERNELS];
    cl_kernel kernels[LINATTN_CL_KERNELS];
} linattn_cl_prog;

#define LINATTN_CL_SPARE 16
struct linattn_cl {
    cl_device_id dev;
    cl_context ctx;
    cl_command_queue queue;
    cl_command_queue aux[2];   /* more queues of the context, made on first use */
    linattn_device_info info;
    char desc[300];
    int verbose;
    int profile;      /* LINATTN_CL_PROFILE, read when the device is opened */
    pthread_mutex_t lock;      /* one call at a time on the queue and kernels */
    cl_mem dummy;              /* bound to absent tensor arguments */
    cl_mem vflag;              /* the value check's flags (values_cl.c), made on first use */
    int vflag_dirty;           /* vflag may hold set flags: zero it before the next check */
    cl_mem spare[LINATTN_CL_SPARE]; /* temporaries of earlier calls, kept for the next (clrun.c) */
    size_t spare_bytes[LINATTN_CL_SPARE], spare_total;
    int nspare;
    int keep;         /* LINATTN_CL_KEEP (not "0"): keep temporaries between calls */
    int nv_cc;        /* NVIDIA compute capability x 10 (cl_nv_device_attribute_query), else 0 */
    uint64_t clock;            /* program lookups so far */
    int nprog;
    linattn_cl_prog progs[LINATTN_CL_PROGS];
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
/* Zero the first bytes / 4 floats of m and wait; on failure m is released. */
int linattn_cl_zero_locked(linattn_cl *cl, cl_mem m, size_t bytes);

/* clrun.c: one call on the device (with cl->lock held). */
#define LINATTN_CLRUN_MAX 40
typedef struct linattn_clrun {
    linattn_cl *cl;
    cl_mem tmp[LINATTN_CLRUN_MAX]; /* buffers this call allocated */
    size_t tmpb[LINATTN_CLRUN_MAX]; /* their sizes */
    int ntmp;
} linattn_clrun;
int linattn_clrun_alloc(linattn_clrun *r, size_t bytes, int zero, cl_mem *out);
void linattn_clrun_free(linattn_clrun *r);
/* Release every temporary kept between calls; returns how many went. */
int linattn_cl_spare_release(linattn_cl *cl);
/* The device buffer of an argument: its own, a fresh copy of its host data
 * (in = 1), or fresh space for an output (in = 0); absent: the dummy. */
int linattn_clrun_resolve(linattn_clrun *r, const linattn_cl_arg *a, int in, cl_mem *out);
/* The state a kernel updates in place: with step, the caller's own (in,
 * resolved as an input); else a fresh buffer of count floats filled from in
 * (a device copy or a host write) or with zeros when in is absent. */
int linattn_clrun_state_in(linattn_clrun *r, const linattn_cl_arg *in, size_t count, int step,
                           cl_mem *out);
/* The final state S (count floats) to out: nothing when out is absent; read
 * back to a host tensor; into a buffer tensor by a device copy, except with
 * step (the state was the caller's, updated in place). */
int linattn_clrun_state_out(linattn_clrun *r, cl_mem S, const linattn_cl_arg *out, size_t count,
                            int step);
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
/* Queue i of the context: 0 its own, 1 or 2 another of the same device and
 * context, made on first use (kernels on different queues may run at the
 * same time; events order them). */
int linattn_clrun_queue(linattn_cl *cl, int i, cl_command_queue *out);
/* A launch on queue q after the events wait[0..nwait), giving *ev (when ev
 * is not NULL).  No profiling: callers that profile use one queue. */
int linattn_clrun_launch_on(linattn_cl *cl, cl_command_queue q, cl_kernel k, cl_uint dims,
                            const size_t *global, const size_t *local, cl_uint nwait,
                            const cl_event *wait, cl_event *ev, const char *name);

/* values_cl.c: the value check vc (vc->n buffers) enqueued into a fresh
 * buffer of flags (*flag: [0] set when any value is out of range, [1 + i]
 * when one of buffer i is), no wait: kernels enqueued after it read
 * flag[0] and write nothing when it is set.  values_read then reads the
 * flags back (waiting) into vc->bad[] and vc->read: LINATTN_ERANGE (a
 * placeholder message, values.c names the culprit) when one is set. */
int linattn_clrun_values_enqueue(linattn_clrun *r, const linattn_cl_vcheck *vc, cl_mem *flag);
int linattn_clrun_values_read(linattn_clrun *r, cl_mem flag, linattn_cl_vcheck *vc);

/* program.c: build a program from source (or the disk cache); on failure
 * the build log goes to stderr. */
int linattn_cl_build(linattn_cl *cl, const char *src, const char *opts, cl_program *out);
/* program.c: the kernels names[0..n-1] (into out) of the program of source
 * src built with options opts (after "-cl-std=CL1.2"), built or loaded from
 * the disk cache on first use; call with cl->lock held.  A later lookup may
 * release them: look up every kernel of a call at once. */
int linattn_cl_kernels(linattn_cl *cl, const char *src, const char *opts,
                       const char *const *names, int n, cl_kernel *out);
/* The same from the newest program of src already built, whatever its
 * options (for kernels that do not depend on them); else built with opts. */
int linattn_cl_kernels_any(linattn_cl *cl, const char *src, const char *opts,
                           const char *const *names, int n, cl_kernel *out);
void linattn_cl_programs_release(linattn_cl *cl);

#endif
