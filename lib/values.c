/* linattn - the value policy of every operator's ranged inputs (linattn(3)):
 * log-decays, write strengths, mix gates, kalman's precisions, decays and
 * noises must lie in their documented ranges (NaN and Inf never do).  Each
 * entry point passes a table {tensor, name, range} and gets LINATTN_ERANGE
 * naming the first culprit with its index, before anything is written.
 * Host tensors are checked here in one vectorised pass; tensors in device
 * buffers by a kernel (values.cl), the culprit then read back. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

/* Every range as [lo, hi] with either end open; the OpenCL check kernel
 * takes the same four numbers. */
typedef struct range_def {
    float lo, hi;
    int lo_open, hi_open;
    const char *text;
} range_def;

static const range_def RANGES[LINATTN_NRANGES] = {
    [LINATTN_RANGE_LOGDECAY] = {LINATTN_RANGE_LOGDECAY_NUMS, "finite and <= 0"},
    [LINATTN_RANGE_STEP] = {LINATTN_RANGE_STEP_NUMS, "in [0, 2]"},
    [LINATTN_RANGE_FINITE] = {LINATTN_RANGE_FINITE_NUMS, "finite"},
    [LINATTN_RANGE_UNIT] = {LINATTN_RANGE_UNIT_NUMS, "in [0, 1]"},
    [LINATTN_RANGE_OPEN_UNIT] = {LINATTN_RANGE_OPEN_UNIT_NUMS, "in (0, 1)"},
    [LINATTN_RANGE_NONNEG] = {LINATTN_RANGE_NONNEG_NUMS, "finite and >= 0"},
    [LINATTN_RANGE_POS] = {LINATTN_RANGE_POS_NUMS, "finite and > 0"},
};

static int out_of_range(float x, const range_def *r)
{
    const int lo = r->lo_open ? x > r->lo : x >= r->lo;
    const int hi = r->hi_open ? x < r->hi : x <= r->hi;
    return !(lo && hi); /* NaN fails both */
}

static size_t count_of(const linattn_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* 1 if any of x[0..n) is out of range: branch-free loops the compiler
 * vectorises (this runs on every call, the decode step included). */
#define ANY_BAD(LO, HI)                                                                        \
    do {                                                                                       \
        _Pragma("omp simd reduction(| : bad)") for (size_t i = 0; i < n; i++) bad |=           \
            !(x[i] LO lo) | !(x[i] HI hi);                                                     \
    } while (0)
static int any_bad(const float *x, size_t n, const range_def *r)
{
    int bad = 0;
    const float lo = r->lo, hi = r->hi;
    switch (r->lo_open * 2 + r->hi_open) {
    case 0: ANY_BAD(>=, <=); break;
    case 1: ANY_BAD(>=, <); break;
    case 2: ANY_BAD(>, <=); break;
    default: ANY_BAD(>, <);
    }
    return bad;
}

/* The first element of x out of range, or count: blocks of 4096 with the
 * vector test, the scalar one only in a block that has a culprit. */
static size_t first_bad(const float *x, size_t count, const range_def *r)
{
    for (size_t b = 0; b < count; b += 4096) {
        const size_t n = count - b < 4096 ? count - b : 4096;
        if (!any_bad(x + b, n, r)) continue;
        for (size_t i = b; i < b + n; i++)
            if (out_of_range(x[i], r)) return i;
    }
    return count;
}

/* A strided host view (linattn(3)): element e (C order) and the first out
 * of range, row by row (the vector test where the row is contiguous). */
static float view_at(const linattn_tensor *t, size_t e)
{
    int64_t s[LINATTN_MAX_DIMS];
    linattn_strides(t, s);
    const float *x = linattn_host(t);
    for (int d = t->ndim - 1; d >= 0; d--) {
        x += (int64_t)(e % (size_t)t->shape[d]) * s[d];
        e /= (size_t)t->shape[d];
    }
    return *x;
}

static size_t first_bad_view(const linattn_tensor *t, const range_def *r)
{
    int64_t s[LINATTN_MAX_DIMS];
    linattn_strides(t, s);
    const size_t n = (size_t)t->shape[t->ndim - 1], cn = count_of(t);
    const int64_t sx = s[t->ndim - 1];
    for (size_t row = 0; row * n < cn; row++) {
        const float *x = linattn_host(t);
        size_t rest = row;
        for (int d = t->ndim - 2; d >= 0; d--) {
            x += (int64_t)(rest % (size_t)t->shape[d]) * s[d];
            rest /= (size_t)t->shape[d];
        }
        if (sx == 1) {
            const size_t j = first_bad(x, n, r);
            if (j < n) return row * n + j;
        } else {
            for (size_t j = 0; j < n; j++)
                if (out_of_range(x[(int64_t)j * sx], r)) return row * n + j;
        }
    }
    return cn;
}

/* "name[i0,i1,...] = x: must be <range>" */
static int report_bad(const linattn_tensor *t, const char *name, size_t i, float x,
                      const range_def *r)
{
    char idx[96];
    int len = 0;
    size_t rest = i;
    int64_t sub[LINATTN_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        sub[d] = (int64_t)(rest % (size_t)t->shape[d]);
        rest /= (size_t)t->shape[d];
    }
    for (int d = 0; d < t->ndim && len < (int)sizeof idx - 24; d++)
        len += snprintf(idx + len, sizeof idx - (size_t)len, "%s%lld", d ? "," : "",
                        (long long)sub[d]);
    return linattn_fail(LINATTN_ERANGE, "%s[%s] = %g: must be %s", name, idx, (double)x, r->text);
}

/* The culprit of a device tensor the check kernel flagged: read it back. */
static int report_device(const linattn_tensor *t, const char *name, const range_def *r)
{
    const size_t n = count_of(t);
    float *h = linattn_malloc(sizeof(float) * n);
    int rc;
    if (!h) return linattn_fail(LINATTN_ERANGE, "%s: a value is not %s", name, r->text);
    if (!(rc = linattn_buffer_read(t->buf, 0, h, n))) {
        const size_t i = first_bad(h, n, r);
        rc = i < n ? report_bad(t, name, i, h[i], r)
                   : linattn_fail(LINATTN_ERANGE, "%s: a value is not %s", name, r->text);
    }
    free(h);
    return rc;
}

/* The device tensors of c[] into vc (dev[i]: c[i] is one), then every
 * host tensor checked here, in table order.  *host_bad: the index of the
 * first host culprit (reported), else n. */
static int list_and_check_host(const linattn_ctx *ctx, const linattn_value_check *c, int n,
                               linattn_cl_vcheck *vc, int *dev, int *host_bad)
{
    if (n > LINATTN_MAX_VALUE_CHECKS || n > LINATTN_CL_VCHECK_MAX)
        return linattn_fail(LINATTN_EINVAL, "value check: %d tensors (at most %d)", n,
                            LINATTN_MAX_VALUE_CHECKS);
    vc->n = vc->read = 0;
    *host_bad = n;
    for (int i = 0; i < n; i++) {
        dev[i] = 0;
        if (!linattn_given(c[i].t) || !(c[i].t->buf && ctx->cl)) continue;
        const range_def *r = &RANGES[c[i].range];
        dev[i] = 1;
        vc->mem[vc->n] = linattn_cl_arg_of(c[i].t).mem;
        vc->count[vc->n] = count_of(c[i].t);
        vc->bad[vc->n] = 0;
        vc->range[vc->n++] = (linattn_cl_range){r->lo, r->hi, r->lo_open, r->hi_open};
    }
    for (int i = 0; i < n; i++) {
        const range_def *r = &RANGES[c[i].range];
        if (!linattn_given(c[i].t) || dev[i]) continue;
        const float *x = linattn_host(c[i].t);
        const size_t cn = count_of(c[i].t);
        const size_t j = linattn_dense(c[i].t) ? first_bad(x, cn, r) : first_bad_view(c[i].t, r);
        if (j < cn) {
            *host_bad = i;
            return report_bad(c[i].t, c[i].name, j, view_at(c[i].t, j), r);
        }
    }
    return LINATTN_OK;
}

/* The first device tensor before c[upto] the flags name (table order),
 * reported. */
static int report_flagged(const linattn_value_check *c, int upto, const int *dev,
                          const linattn_cl_vcheck *vc)
{
    for (int i = 0, d = 0; i < upto; i++) {
        if (!dev[i]) continue;
        if (vc->bad[d++]) return report_device(c[i].t, c[i].name, &RANGES[c[i].range]);
    }
    return LINATTN_OK;
}

int linattn_check_values(const linattn_ctx *ctx, const linattn_value_check *c, int n)
{
    int rc, dev[LINATTN_MAX_VALUE_CHECKS], host_bad, before = 0;
    linattn_cl_vcheck vc;
    rc = list_and_check_host(ctx, c, n, &vc, dev, &host_bad);
    for (int i = 0; i < host_bad && i < n; i++) before += dev[i];
    if (!before) return rc; /* no device tensor before the first host culprit */
    int r2;
    if ((r2 = linattn_cl_values_check(ctx->cl, &vc)) || (r2 = report_flagged(c, host_bad, dev, &vc)))
        return r2;
    /* a host culprit after clean device tensors: report it again */
    return rc ? list_and_check_host(ctx, c, n, &vc, dev, &host_bad) : LINATTN_OK;
}

int linattn_check_values_deferred(const linattn_ctx *ctx, const linattn_value_check *c, int n,
                                  linattn_value_pending *p)
{
    int host_bad;
    p->c = c;
    p->n = n;
    const int rc = list_and_check_host(ctx, c, n, &p->vc, p->dev, &host_bad);
    for (int i = 0; rc && i < host_bad && i < n; i++)
        if (p->dev[i]) return linattn_check_values(ctx, c, n); /* table order */
    return rc;
}

int linattn_check_values_finish(linattn_value_pending *p, int rc)
{
    if (!p->vc.read) return rc;
    const int r = report_flagged(p->c, p->n, p->dev, &p->vc);
    return r ? r : rc;
}
