/* linattn tests - 16-bit element types (linattn(3), HALF PRECISION).
 * Conversions: every f16 and bf16 pattern survives a trip through float32
 * (NaN as NaN of the same sign), and float32 to a half type rounds to
 * nearest even (checked against a double-precision rounding on edge cases
 * and random patterns).  Operators: for every entry of the operator table
 * on every backend, a call with every tensor in f16 or bf16 (and one with
 * only the states so) equals, bit for bit, the float32 call on the same
 * rounded inputs with its outputs rounded once; and it is within the
 * documented bound of the double reference.  Decode with a half state over
 * many tokens stays within the drift bound linattn(3) states. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testop.h"
#include "testutil.h"

static const linattn_dtype HALVES[2] = {LINATTN_F16, LINATTN_BF16};

static uint32_t bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static float flt(uint32_t x)
{
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static float h2f(uint16_t h, linattn_dtype d)
{
    float f;
    ck_assert_int_eq(linattn_convert(&h, d, &f, LINATTN_F32, 1), 0);
    return f;
}

static uint16_t f2h(float f, linattn_dtype d)
{
    uint16_t h;
    ck_assert_int_eq(linattn_convert(&f, LINATTN_F32, &h, d, 1), 0);
    return h;
}

/* ---- conversions ----------------------------------------------------------- */

START_TEST(test_roundtrip_all)
{
    const linattn_dtype d = HALVES[_i];
    uint16_t *h = malloc(65536 * 2), *back = malloc(65536 * 2);
    float *f = malloc(65536 * sizeof(float));
    ck_assert(h && back && f);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    ck_assert_int_eq(linattn_convert(h, d, f, LINATTN_F32, 65536), 0);
    ck_assert_int_eq(linattn_convert(f, LINATTN_F32, back, d, 65536), 0);
    for (uint32_t i = 0; i < 65536; i++) {
        /* one at a time (the scalar path) gives the same as the array */
        ck_assert_uint_eq(bits(h2f(h[i], d)), bits(f[i]));
        if (isnan(f[i])) {
            const float b = h2f(back[i], d);
            ck_assert_msg(isnan(b) && signbit(b) == signbit(f[i]), "%s %04x: NaN lost",
                          linattn_dtype_name(d), i);
        } else {
            ck_assert_msg(back[i] == h[i], "%s %04x -> %g -> %04x", linattn_dtype_name(d), i,
                          (double)f[i], back[i]);
        }
    }
    free(h);
    free(back);
    free(f);
}
END_TEST

/* The value of every pattern 0 .. n - 1 of d (one array conversion; the
 * patterns' values are checked by test_roundtrip_all). */
static double *pattern_values(linattn_dtype d, uint32_t n)
{
    uint16_t *h = malloc(n * sizeof *h);
    float *f = malloc(n * sizeof *f);
    double *v = malloc(n * sizeof *v);
    ck_assert(h && f && v);
    for (uint32_t i = 0; i < n; i++) h[i] = (uint16_t)i;
    ck_assert_int_eq(linattn_convert(h, d, f, LINATTN_F32, n), 0);
    for (uint32_t i = 0; i < n; i++) v[i] = f[i];
    free(h);
    free(f);
    return v;
}

/* The half value nearest x, ties to the even pattern, by double arithmetic:
 * val holds the values of the finite patterns 0 .. inf - 1 in order (the
 * positive ones are increasing). */
static uint16_t ref_round(float x, uint16_t inf, const double *val)
{
    const uint16_t sign = signbit(x) ? 0x8000 : 0;
    const double a = fabs((double)x);
    if (isinf(x)) return sign | inf;
    /* binary search for the largest pattern p with value(p) <= a */
    uint32_t lo = 0, hi = inf; /* value(inf) > a */
    while (hi - lo > 1) {
        const uint32_t mid = (lo + hi) / 2;
        if (val[mid] <= a) lo = mid;
        else hi = mid;
    }
    /* the next value up; past the largest finite one, the overflow
     * threshold is where a value one step further would sit */
    const double vl = val[lo], vh = hi == inf ? vl + (vl - val[lo - 1]) : val[hi];
    const double dl = a - vl, dh = vh - a;
    uint32_t r = dl < dh ? lo : dh < dl ? hi : (lo % 2 == 0 ? lo : hi);
    return (uint16_t)(sign | r);
}

/* x[0..n) rounded to d in one array conversion (the vector paths) against
 * ref_round, and every 64th one alone (the scalar path) against the array */
static void check_round(const float *x, size_t n, linattn_dtype d, uint16_t inf,
                        const double *val)
{
    uint16_t *got = malloc(n * sizeof *got);
    ck_assert(got);
    ck_assert_int_eq(linattn_convert(x, LINATTN_F32, got, d, n), 0);
    for (size_t j = 0; j < n; j++) {
        if (j % 64 == 0) ck_assert_uint_eq(f2h(x[j], d), got[j]);
        if (isnan(x[j])) { /* a NaN pattern: exponent all ones, mantissa not 0 */
            ck_assert_msg((got[j] & 0x7fff) > inf, "%s(NaN %08x): %04x", linattn_dtype_name(d),
                          bits(x[j]), got[j]);
            continue;
        }
        const uint16_t want = ref_round(x[j], inf, val);
        ck_assert_msg(got[j] == want, "%s(%a = %08x): %04x, want %04x", linattn_dtype_name(d),
                      (double)x[j], bits(x[j]), got[j], want);
    }
    free(got);
}

START_TEST(test_rounding)
{
    const linattn_dtype d = HALVES[_i];
    const uint16_t inf = d == LINATTN_F16 ? 0x7c00 : 0x7f80;
    double *val = pattern_values(d, (uint32_t)inf + 1);
    enum { NRAND = 200000, NEDGE = 20 };
    const size_t n = 10 * (size_t)inf + NEDGE + NRAND;
    float *x = malloc(n * sizeof *x);
    ck_assert(x);
    size_t m = 0;
    /* around every finite half value: the midpoints to its neighbours and one
     * float32 step either side of them (ties, just above, just below) */
    for (uint32_t h = 0; h < inf; h++) {
        const double v = val[h], w = val[h + 1];
        const float mid = (float)((v + w) / 2); /* exact in float32 */
        const float pts[5] = {(float)v, mid, nextafterf(mid, 0), nextafterf(mid, INFINITY),
                              nextafterf((float)v, INFINITY)};
        for (int j = 0; j < 5; j++) {
            x[m++] = pts[j];
            x[m++] = -pts[j];
        }
    }
    /* overflow: the largest finite value, the tie above it, Inf, NaN */
    const float big = (float)val[inf - 1];
    const float edge[NEDGE] = {big, nextafterf(big, INFINITY), FLT_MAX, INFINITY, -INFINITY,
                               65519.996f, 65520.0f, 0.0f, -0.0f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f,
                               0x1p-149f, 0x1p-126f, 0x1.fffffep-127f, NAN, -NAN,
                               flt(0x7f800001u), flt(0xff800001u), flt(0x7fc00000u)};
    for (size_t j = 0; j < NEDGE; j++) x[m++] = edge[j];
    /* random float32 patterns */
    for (int j = 0; j < NRAND; j++) x[m++] = flt((uint32_t)(tu_uniform(0, 4294967296.0)));
    ck_assert_uint_eq(m, n);
    check_round(x, n, d, inf, val);
    free(x);
    free(val);
}
END_TEST

START_TEST(test_convert_args)
{
    float f = 1.0f;
    uint16_t h;
    ck_assert_int_eq(linattn_convert(&f, (linattn_dtype)7, &h, LINATTN_F16, 1), LINATTN_EINVAL);
    ck_assert_int_eq(linattn_convert(&f, LINATTN_F32, &h, (linattn_dtype)-1, 1), LINATTN_EINVAL);
    ck_assert_int_eq(linattn_convert(NULL, LINATTN_F32, &h, LINATTN_F16, 1), LINATTN_ENULL);
    ck_assert_int_eq(linattn_convert(&f, LINATTN_F32, NULL, LINATTN_F16, 1), LINATTN_ENULL);
    ck_assert_int_eq(linattn_convert(NULL, LINATTN_F32, NULL, LINATTN_F16, 0), 0);
    ck_assert_uint_eq(linattn_dtype_size(LINATTN_BF16), 2);
    ck_assert_uint_eq(linattn_dtype_size((linattn_dtype)9), 0);
    ck_assert_ptr_null(linattn_dtype_name((linattn_dtype)9));
    /* a tensor of an unknown dtype is refused, naming it */
    linattn_ctx *c = tu_ctx("scalar", 1);
    const linattn_op_info *op = linattn_op_find("gla", "forward");
    int64_t dims[LINATTN_OP_LETTERS];
    tu_op_sizes(dims, 1, 3, 1, 4, 4, 0, 0);
    tu_op p;
    tu_op_make(&p, op, dims, TU_OP_REQUIRED, 1, 0);
    p.a.t[1].dtype = (linattn_dtype)5;
    ck_assert_int_eq(linattn_op_call(c, op, &p.a), LINATTN_EINVAL);
    ck_assert_msg(strstr(linattn_last_error(), "k:") != NULL, "%s", linattn_last_error());
    tu_op_free(&p);
    linattn_ctx_destroy(c);
}
END_TEST

/* ---- operators ------------------------------------------------------------- */

static size_t count_of(const linattn_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* A carried state: in place (a step's), or a forward's over N sequences. */
static int is_state(const linattn_op_tensor *t)
{
    return t->role == LINATTN_ROLE_INOUT || t->dims[0] == 'N';
}

/* One entry point on one backend in dtype d: all tensors (states_only = 0)
 * or only the states (1) in d, host tensors or (dev) device buffers. */
/* OpenCL's default step runs delta_step (a column a work-item) on a float32
 * state and delta_stepw (4 columns) on a dense 16-bit one, and delta_stepw
 * may take half as many row groups for a 16-bit state (K / 16 rounded up
 * to a power of two in [8, 32], against K / 8, where the device has groups
 * enough); they sum the rows in different orders.  The 16-bit result is
 * the float32 one rounded once when both run one kernel of one shape:
 * unless a test forces them, force delta_stepw's and K / 16's row groups
 * for both calls.  Returns what it set (1 the kernel, 2 the row groups)
 * for same_step_kernel_end. */
static int same_step_kernel(const char *isa, int64_t K)
{
    int set = 0;
    if (strcmp(isa, "opencl")) return 0;
    if (!getenv("LINATTN_CL_STEPW")) {
        setenv("LINATTN_CL_STEPW", "4", 1);
        set |= 1;
    }
    if (!getenv("LINATTN_CL_STEPRG")) {
        int rg = 8;
        while (rg < 32 && rg * 16 < K) rg *= 2;
        setenv("LINATTN_CL_STEPRG", rg == 8 ? "8" : rg == 16 ? "16" : "32", 1);
        set |= 2;
    }
    return set;
}

static void same_step_kernel_end(int set)
{
    if (set & 1) unsetenv("LINATTN_CL_STEPW");
    if (set & 2) unsetenv("LINATTN_CL_STEPRG");
}

static void check_op(const linattn_op_info *op, const char *isa, linattn_dtype d,
                     int states_only, int dev)
{
    int64_t dims[LINATTN_OP_LETTERS];
    tu_op_sizes(dims, 2, 11, 2, 8, 12, 10, 3);
    const int forced = same_step_kernel(isa, dims['K' - 'A']);
    tu_op p;
    tu_op_make(&p, op, dims, TU_OP_ALL, 1, 0);
    linattn_ctx *c = tu_ctx(isa, 2), *r = tu_ctx("ref", 1);
    const int n = op->ntensors;
    int conv[LINATTN_OP_MAX_TENSORS] = {0};
    uint16_t *h[LINATTN_OP_MAX_TENSORS] = {0};
    linattn_buffer *buf[LINATTN_OP_MAX_TENSORS] = {0};
    float *in0[LINATTN_OP_MAX_TENSORS] = {0}; /* rounded inputs, kept for the ref run */
    linattn_op_args a = p.a;
    float *kb = NULL, *vb = NULL;
    if (op->cache) tu_op_cache_data(&p, &kb, &vb);
    for (int i = 0; i < n; i++) {
        if (!p.data[i]) continue;
        const linattn_op_tensor *ti = &op->tensors[i];
        conv[i] = (!states_only || is_state(ti)) && !(op->f32_states && is_state(ti));
        const size_t cnt = count_of(&p.a.t[i]);
        if (!conv[i]) continue;
        h[i] = malloc(cnt * 2 + 2);
        ck_assert_ptr_nonnull(h[i]);
        if (ti->role != LINATTN_ROLE_OUT) { /* round the input; the f32 call takes the same */
            ck_assert_int_eq(linattn_convert(p.data[i], LINATTN_F32, h[i], d, cnt), 0);
            ck_assert_int_eq(linattn_convert(h[i], d, p.data[i], LINATTN_F32, cnt), 0);
        } else {
            memset(h[i], 0xff, cnt * 2); /* poison: NaN in both types */
        }
        a.t[i] = linattn_tensor_nd(h[i], d, p.a.t[i].ndim, p.a.t[i].shape);
        if (dev) {
            ck_assert_int_eq(linattn_buffer_create(c, (cnt + 1) / 2, &buf[i]), 0);
            ck_assert_int_eq(linattn_buffer_write(buf[i], 0, (const float *)h[i], (cnt + 1) / 2),
                             0);
            a.t[i].data = NULL;
            a.t[i].buf = buf[i];
        }
    }
    float *own[LINATTN_OP_MAX_TENSORS] = {0}; /* the half call's float32 outputs and states */
    for (int i = 0; i < n; i++) { /* the rounded inputs and states, before any run */
        if (!p.data[i]) continue;
        const size_t cnt = count_of(&p.a.t[i]);
        if (op->tensors[i].role != LINATTN_ROLE_OUT) {
            in0[i] = tu_alloc(cnt);
            memcpy(in0[i], p.data[i], cnt * sizeof(float));
        }
        if (!conv[i] && op->tensors[i].role != LINATTN_ROLE_IN) {
            own[i] = tu_alloc(cnt);
            if (in0[i]) memcpy(own[i], in0[i], cnt * sizeof(float));
            else tu_poison(own[i], cnt);
            a.t[i].data = own[i];
        }
    }
    /* float32 call on the rounded inputs */
    if (op->cache) p.a.cache = tu_op_cache(c, &p, kb, vb);
    ck_assert_msg(linattn_op_call(c, op, &p.a) == 0, "%s f32 on %s: %s", tu_op_name(op), isa,
                  linattn_last_error());
    /* the half call */
    if (op->cache) a.cache = tu_op_cache(c, &p, kb, vb);
    ck_assert_msg(linattn_op_call(c, op, &a) == 0, "%s %s on %s%s: %s", tu_op_name(op),
                  linattn_dtype_name(d), isa, dev ? " (buffers)" : "", linattn_last_error());
    /* the reference on the rounded inputs */
    tu_op q = p;
    float *refo[LINATTN_OP_MAX_TENSORS] = {0};
    linattn_op_args ra = p.a;
    for (int i = 0; i < n; i++) {
        if (!p.data[i]) continue;
        const size_t cnt = count_of(&p.a.t[i]);
        refo[i] = tu_alloc(cnt);
        if (in0[i]) memcpy(refo[i], in0[i], cnt * sizeof(float));
        else tu_poison(refo[i], cnt);
        ra.t[i].data = refo[i];
    }
    (void)q;
    if (op->cache) ra.cache = tu_op_cache(r, &p, kb, vb);
    ck_assert_msg(linattn_op_call(r, op, &ra) == 0, "%s ref: %s", tu_op_name(op),
                  linattn_last_error());
    const double u = d == LINATTN_F16 ? 0x1p-11 : 0x1p-8;
    for (int i = 0; i < n; i++) {
        if (!p.data[i] || op->tensors[i].role == LINATTN_ROLE_IN) continue;
        const size_t cnt = count_of(&p.a.t[i]);
        float *got = tu_alloc(cnt);
        if (conv[i]) {
            if (dev) ck_assert_int_eq(linattn_buffer_read(buf[i], 0, (float *)h[i], (cnt + 1) / 2), 0);
            ck_assert_int_eq(linattn_convert(h[i], d, got, LINATTN_F32, cnt), 0);
            /* bit for bit: the float32 result rounded once */
            uint16_t *want = malloc(cnt * 2 + 2);
            ck_assert_int_eq(linattn_convert(p.data[i], LINATTN_F32, want, d, cnt), 0);
            for (size_t e = 0; e < cnt; e++)
                ck_assert_msg(want[e] == h[i][e],
                              "%s %s %s[%zu] on %s: %04x, f32 rounded %04x", tu_op_name(op),
                              linattn_dtype_name(d), op->tensors[i].name, e, isa, h[i][e],
                              want[e]);
            free(want);
        } else {
            memcpy(got, own[i], cnt * sizeof(float));
            ck_assert_msg(!memcmp(own[i], p.data[i], cnt * sizeof(float)),
                          "%s %s on %s: float32 %s differs from the float32 call's",
                          tu_op_name(op), linattn_dtype_name(d), isa, op->tensors[i].name);
        }
        /* against the reference: rounding once plus the float32 path's error */
        const double err = tu_relerr(got, refo[i], cnt);
        const double tol = u * (conv[i] ? 1.0 : 0.0) + 5e-4;
        ck_assert_msg(err <= tol, "%s %s %s on %s: %.3g vs reference (bound %.3g)", tu_op_name(op),
                      linattn_dtype_name(d), op->tensors[i].name, isa, err, tol);
        free(got);
    }
    if (op->cache) {
        linattn_kvcache_destroy(p.a.cache);
        linattn_kvcache_destroy(a.cache);
        linattn_kvcache_destroy(ra.cache);
    }
    for (int i = 0; i < n; i++) {
        free(h[i]);
        free(in0[i]);
        free(refo[i]);
        free(own[i]);
        if (buf[i]) linattn_buffer_destroy(buf[i]);
    }
    free(kb);
    free(vb);
    linattn_ctx_destroy(c);
    linattn_ctx_destroy(r);
    tu_op_free(&p);
    same_step_kernel_end(forced);
}

/* loop index: entry point */
START_TEST(test_ops)
{
    const linattn_op_info *op = linattn_op_at(_i);
    const char *isas[8];
    const int ni = tu_isas(isas, 7);
    for (int b = 0; b < ni; b++)
        for (int k = 0; k < 2; k++) {
            check_op(op, isas[b], HALVES[k], 0, 0);
            check_op(op, isas[b], HALVES[k], 1, 0);
            if (!strcmp(isas[b], "opencl")) check_op(op, isas[b], HALVES[k], 0, 1);
        }
}
END_TEST

/* ---- the delta family's step with a 16-bit state in the kernels ------------ */

/* [B,T,heads,X], or [B,heads,X] when T is 0 (a step's) */
static void bt_dims(int64_t *s, int64_t B, int64_t T, int64_t heads, int64_t X)
{
    int n = 0;
    s[n++] = B;
    if (T) s[n++] = T;
    s[n++] = heads;
    s[n++] = X;
}

/* Relative error (2-norm) of x against ref over ref's finite elements;
 * infinite where x is not finite and ref is, or x is finite where ref is not. */
static double relerr_nonfinite(const float *x, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(ref[i]) != isfinite(x[i])) return INFINITY;
        if (!isfinite(ref[i])) continue;
        const double e = (double)x[i] - ref[i];
        num += e * e;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* 1: step_case puts no special values in the state (-1e6 would dominate
 * the norm of the error against the reference: bf16 keeps it) */
static int plain_state;

/* 1: step_case's 16-bit state dense (no gaps, offset 0), as the OpenCL step
 * kernels take it in place; a strided one goes through float32 there */
static int dense_state;

/* A step (or, T > 0, a forward over T tokens from h0 = hT) of op on a
 * strided 16-bit state: B sequences, H value heads (Hq = nq H query heads
 * sharing them), K x V state, g per key channel (gk).  The state's rows
 * are ld = V + 5 elements apart, its heads K ld + 3, its sequences
 * H (K ld + 3) + 7, from an offset of 11 (dense_state: none of these gaps);
 * the gaps hold a sentinel that must survive.  Equal bit for bit to the float32 call on the widened state
 * with its state rounded once, outputs included; the float32 call near the
 * double reference's. */
static void step_case_scaled(const char *isa, int op, linattn_dtype d, int64_t B, int64_t H,
                             int nq, int64_t K, int64_t V, int gk, int64_t T, float tiny)
{
    const int forced = same_step_kernel(isa, K);
    const int dn = dense_state;
    const int64_t Hq = nq * H, ld = dn ? V : V + 5, sh = K * ld + (dn ? 0 : 3);
    const int64_t sb = H * sh + (dn ? 0 : 7), off = dn ? 0 : 11;
    const int64_t TT = T ? T : 1;
    const size_t nqk = (size_t)(B * TT * Hq * K), nk = (size_t)(B * TT * H * K);
    const size_t nv = (size_t)(B * TT * H * V), no = (size_t)(B * TT * Hq * V);
    const size_t ng = (size_t)(B * TT * H * (gk ? K : 1)), nb = (size_t)(B * TT * H);
    const size_t ns = (size_t)(B * H * K * V), nh = (size_t)(off + B * sb);
    float *q = tu_alloc(nqk), *k = tu_alloc(nk), *v = tu_alloc(nv), *g = tu_alloc(ng);
    float *beta = tu_alloc(nb), *o32 = tu_alloc(no), *o16 = tu_alloc(no), *s32 = tu_alloc(ns);
    uint16_t *hs = malloc(nh * 2), *want = malloc(ns * 2);
    ck_assert(hs && want);
    tu_fill(q, nqk, -1.0, 1.0);
    tu_fill(k, nk, -1.0, 1.0);
    tu_l2norm_rows(k, nk / (size_t)K, (int)K);
    tu_fill(v, nv, -1.0, 1.0);
    tu_fill(g, ng, -0.5, 0.0);
    tu_fill(beta, nb, 0.1, 1.0);
    tu_fill(s32, ns, -2.0, 2.0);
    if (tiny != 1.0f) { /* state and v scaled down: most of the state subnormal */
        for (size_t e = 0; e < ns; e++) s32[e] *= tiny;
        for (size_t e = 0; e < nv; e++) v[e] *= tiny;
    }
    if (V > 9 && !plain_state) { /* special values: their columns go NaN or Inf (the kernels' NaN path) */
        s32[3] = NAN;
        s32[ns - 2] = INFINITY;
        s32[V + 7] = -1e6f;
    }
    tu_poison(o32, no);
    tu_poison(o16, no);
    for (size_t e = 0; e < nh; e++) hs[e] = 0x1234; /* the gaps' sentinel */
    /* the state rounded to d, into the view and back into the float32 one */
    for (int64_t n = 0; n < B; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < K; i++) {
                float *r = s32 + ((n * H + h) * K + i) * V;
                uint16_t *x = hs + off + n * sb + h * sh + i * ld;
                ck_assert_int_eq(linattn_convert(r, LINATTN_F32, x, d, (size_t)V), 0);
                ck_assert_int_eq(linattn_convert(x, d, r, LINATTN_F32, (size_t)V), 0);
            }
    float *sref = tu_alloc(ns), *oref = tu_alloc(no); /* the reference's, from the same state */
    memcpy(sref, s32, ns * sizeof(float));
    tu_poison(oref, no);
    linattn_ctx *c = tu_ctx(isa, 2), *rc_ = tu_ctx("ref", 1);
    const int r = T ? 4 : 3;
    int64_t qs[4], ks[4], vs[4], os[4];
    const int64_t st[4] = {B, H, K, V};
    bt_dims(qs, B, T, Hq, K);
    bt_dims(ks, B, T, H, K);
    bt_dims(vs, B, T, H, V);
    bt_dims(os, B, T, Hq, V);
    linattn_tensor tq = linattn_tensor_nd(q, LINATTN_F32, r, qs);
    linattn_tensor tk = linattn_tensor_nd(k, LINATTN_F32, r, ks);
    linattn_tensor tv = linattn_tensor_nd(v, LINATTN_F32, r, vs);
    linattn_tensor tg = linattn_tensor_nd(g, LINATTN_F32, r - 1 + gk, ks);
    linattn_tensor tb = op == LINATTN_OP_GLA ? (linattn_tensor){0}
                                             : linattn_tensor_nd(beta, LINATTN_F32, r - 1, vs);
    linattn_tensor s32t = linattn_tensor_nd(s32, LINATTN_F32, 4, st);
    linattn_tensor s16t = linattn_tensor_nd(hs, d, 4, st);
    s16t.strides[0] = sb;
    s16t.strides[1] = sh;
    s16t.strides[2] = ld;
    s16t.strides[3] = 1;
    s16t.offset = off;
    for (int half = 0; half < 3; half++) { /* float32, 16-bit, the reference */
        const linattn_tensor ts = half == 2 ? linattn_tensor_nd(sref, LINATTN_F32, 4, st)
                                  : half ? s16t : s32t;
        float *od = half == 2 ? oref : half ? o16 : o32;
        linattn_tensor to = linattn_tensor_nd(od, LINATTN_F32, r, os);
        linattn_ctx *cc = half == 2 ? rc_ : c;
        int rc;
        if (T) {
            const linattn_delta_io io = {.q = tq, .k = tk, .v = tv, .g = tg, .beta = tb,
                                         .h0 = ts, .o = to, .hT = ts};
            rc = linattn_delta_forward(cc, (linattn_delta_op)op, &io, NULL);
        } else {
            const linattn_delta_step_io io = {.q = tq, .k = tk, .v = tv, .g = tg, .beta = tb,
                                              .state_h = ts, .o = to};
            rc = linattn_delta_step(cc, (linattn_delta_op)op, &io, NULL);
        }
        ck_assert_msg(rc == 0, "op %d %s on %s: %s", op, linattn_dtype_name(d), isa,
                      linattn_last_error());
    }
    const char *what = T ? "forward" : "step";
    /* the float32 call against the double reference (its NaN and Inf where the reference's) */
    const double eo = relerr_nonfinite(o32, oref, no), es = relerr_nonfinite(s32, sref, ns);
    const double tol = T ? 5e-4 : 1e-4;
    ck_assert_msg(eo <= tol && es <= tol,
                  "op %d %s on %s B=%lld H=%lld nq=%d K=%lld V=%lld gk=%d vs reference: o %.3g "
                  "state %.3g (bound %.3g)", op, what, isa, (long long)B, (long long)H, nq,
                  (long long)K, (long long)V, gk, eo, es, tol);
    ck_assert_int_eq(linattn_convert(s32, LINATTN_F32, want, d, ns), 0);
    for (size_t e = 0; e < no; e++)
        ck_assert_msg(bits(o16[e]) == bits(o32[e]),
                      "op %d %s %s on %s B=%lld H=%lld nq=%d K=%lld V=%lld gk=%d: o[%zu] %a, "
                      "float32 state %a", op, what, linattn_dtype_name(d), isa, (long long)B,
                      (long long)H, nq, (long long)K, (long long)V, gk, e, (double)o16[e],
                      (double)o32[e]);
    for (int64_t n = 0; n < B; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < K; i++)
                for (int64_t j = 0; j < V; j++) {
                    const uint16_t got = hs[off + n * sb + h * sh + i * ld + j];
                    const uint16_t w = want[((n * H + h) * K + i) * V + j];
                    ck_assert_msg(got == w,
                                  "op %d %s %s on %s B=%lld H=%lld nq=%d K=%lld V=%lld gk=%d: "
                                  "state[%lld,%lld,%lld,%lld] %04x, float32 rounded %04x", op,
                                  what, linattn_dtype_name(d), isa, (long long)B, (long long)H,
                                  nq, (long long)K, (long long)V, gk, (long long)n,
                                  (long long)h, (long long)i, (long long)j, got, w);
                    hs[off + n * sb + h * sh + i * ld + j] = 0x1234; /* checked */
                }
    for (size_t e = 0; e < nh; e++) /* the gaps (and now every element) */
        ck_assert_msg(hs[e] == 0x1234, "op %d %s on %s: state view's gap [%zu] written", op,
                      linattn_dtype_name(d), isa, e);
    linattn_ctx_destroy(c);
    linattn_ctx_destroy(rc_);
    free(q); free(k); free(v); free(g); free(beta); free(o32); free(o16); free(s32);
    free(hs); free(want); free(sref); free(oref);
    same_step_kernel_end(forced);
}

static void step_case(const char *isa, int op, linattn_dtype d, int64_t B, int64_t H, int nq,
                      int64_t K, int64_t V, int gk, int64_t T)
{
    step_case_scaled(isa, op, d, B, H, nq, K, V, gk, T, 1.0f);
}

/* loop index: op (gdn, kla; gla keeps a float32 state) x dtype.  Shapes around the kernels' edges:
 * B = 1..5, H not a multiple of any vector width, V not a multiple of 4, 8
 * or 16 (and one full 128 x 128 head), query heads sharing the state
 * (2 and 4), g per key channel, K at the kernels' bound for the 16-bit
 * state (256) and above it (the scratch path), and a few short forwards
 * from h0 = hT; two threads split a lone head's columns. */
START_TEST(test_step_shapes)
{
    const int op = _i / 2;
    const linattn_dtype d = HALVES[_i % 2];
    const char *isas[8];
    const int ni = tu_isas(isas, 7);
    for (int b = 0; b < ni; b++) {
        if (!strcmp(isas[b], "opencl")) continue; /* the CPU kernels */
        for (int64_t B = 1; B <= 5; B++) {
            step_case(isas[b], op, d, B, 3, 1, 16, 12 + 13 * B, 0, 0);
            step_case(isas[b], op, d, B, 1 + B % 2, 1 + (int)(B % 2), 24, 9 * B, (B & 2) != 0, 0);
        }
        step_case(isas[b], op, d, 1, 1, 1, 33, 70, 0, 0);
        step_case(isas[b], op, d, 2, 2, 1, 128, 128, 0, 0);
        step_case(isas[b], op, d, 1, 2, 4, 20, 37, 1, 0);
        step_case(isas[b], op, d, 2, 1, 4, 20, 19, 0, 0);
        step_case(isas[b], op, d, 1, 1, 1, 256, 21, 1, 0);
        step_case(isas[b], op, d, 1, 1, 1, 260, 21, 0, 0);
        step_case(isas[b], op, d, 2, 3, 1, 16, 45, 0, 3);
        step_case(isas[b], op, d, 1, 2, 2, 32, 20, 1, 130);
    }
}
END_TEST

/* loop index: op x dtype.  A state (and v) scaled to straddle the dtype's
 * smallest normal (bf16 2^-125, f16 2^-14 times [-2, 2]): subnormal and
 * normal elements side by side in every vector, next to NaN and Inf.  Bit for
 * bit as the float32 call rounded once.  f16: the kernels' rounding of
 * subnormal results (vcvtps2ph) is lib/half.c's.  bf16: the kernels run with
 * FTZ and DAZ (linattn(3)), so a subnormal float32 state element counts as
 * zero in both calls and no rounding ever sees a subnormal input; the
 * 16-bit state's subnormals must behave the same (read as zero, never
 * stored from arithmetic). */
START_TEST(test_step_subnormal)
{
    const int op = _i / 2;
    const linattn_dtype d = HALVES[_i % 2];
    const float tiny = d == LINATTN_BF16 ? 0x1p-125f : 0x1p-14f;
    const char *isas[8];
    const int ni = tu_isas(isas, 7);
    for (int b = 0; b < ni; b++) {
        if (!strcmp(isas[b], "opencl")) continue; /* the CPU kernels */
        step_case_scaled(isas[b], op, d, 2, 2, 1, 32, 128, 0, 0, tiny);
        step_case_scaled(isas[b], op, d, 1, 2, 2, 16, 96, 1, 0, tiny);
        step_case_scaled(isas[b], op, d, 1, 1, 4, 24, 70, 0, 0, tiny);
        step_case_scaled(isas[b], op, d, 1, 1, 1, 16, 64, 1, 3, tiny);
    }
}
END_TEST

/* OpenCL's step kernels, each forced (LINATTN_CL_STEPW, read at each call):
 * delta_step (1), 4 and 8 columns per work-item, and the default choice
 * (NULL: step_case then forces 4 columns for both calls, so that their
 * sums run in the same order).  With 4 or 8 columns a 16-bit state with
 * one query head a state takes delta_stepw2 (two passes) unless the last
 * variant forces delta_stepw (LINATTN_CL_STEP2=0); the float32 call and
 * the shapes with nq > 1 take delta_stepw.  V = 20 takes 4 columns when 8
 * are asked, V = 21 always delta_step. */
static const char *const STEPW[] = {"1", "4", "8", NULL, "4"};
#define NSTEPW ((int)(sizeof STEPW / sizeof *STEPW))
static const struct { int64_t B, H; int nq; int64_t K, V; int gk; } CLSTEP[] = {
    {1, 2, 1, 64, 64, 0},  {2, 3, 2, 128, 96, 1}, {3, 1, 4, 256, 128, 0}, {4, 2, 1, 128, 128, 1},
    {5, 1, 1, 64, 96, 0},  {2, 1, 1, 33, 20, 1},  {1, 2, 2, 24, 21, 0},   {1, 1, 1, 256, 64, 1},
};

/* loop index: variant * 2 + dtype; gdn and kla take the shapes in turn,
 * each with a dense state (the 16-bit kernels: delta_stepw2 where nq = 1)
 * and, in the default variant, a strided one (widened to float32 for the
 * kernel, whose variants check_delta runs) */
START_TEST(test_step_opencl)
{
    if (!tu_opencl()) return;
    const char *w = STEPW[_i / 2];
    const linattn_dtype d = HALVES[_i % 2];
    if (w) setenv("LINATTN_CL_STEPW", w, 1);
    else unsetenv("LINATTN_CL_STEPW");
    if (_i / 2 == NSTEPW - 1) setenv("LINATTN_CL_STEP2", "0", 1);
    for (size_t n = 0; n < 2 * sizeof CLSTEP / sizeof *CLSTEP; n++) {
        const size_t m = n / 2;
        plain_state = 1;
        dense_state = (int)(n % 2);
        if (!dense_state && w) continue;
        step_case("opencl", (int)(m % 2), d, CLSTEP[m].B, CLSTEP[m].H, CLSTEP[m].nq, CLSTEP[m].K,
                  CLSTEP[m].V, CLSTEP[m].gk, 0);
    }
    plain_state = 0; /* and once with NaN, Inf and -1e6 in the state, dense */
    dense_state = 1;
    step_case("opencl", 0, d, 2, 2, 1, 64, 64, 1, 0);
    step_case("opencl", 0, d, 2, 2, 2, 64, 64, 1, 0);
    dense_state = 0;
    unsetenv("LINATTN_CL_STEPW"); /* CK_FORK=no runs the next test in this process */
    unsetenv("LINATTN_CL_STEP2");
}
END_TEST

/* ---- decode drift with a half state --------------------------------------- */

#define DRIFT_REPS 512 /* per-token inputs made once, used in turn */
#define DRIFT_WINDOW 1000

/* Every step entry of the table (softmax's has no state), B=1, H=2,
 * K=V=32 (kalman M=32 S=4), for LINATTN_TEST_DRIFT_TOKENS tokens (default
 * 10^5): outputs with the states stored in d against the same run with
 * float32 states; the worst relative error (2-norm over windows of 1000
 * tokens) stays under the bound linattn(3) documents.  Log-decays g in
 * [glo, 0]: glo = -0.1 (short memories) or -0.001 (long ones). */
static void drift(const linattn_op_info *op, linattn_dtype d, double glo)
{
    const char *env = getenv("LINATTN_TEST_DRIFT_TOKENS");
    const long ntok = env ? atol(env) : 100000;
    int64_t dims[LINATTN_OP_LETTERS];
    tu_op_sizes(dims, 1, 1, 2, 32, 32, 32, 4);
    tu_op p;
    tu_op_make(&p, op, dims, TU_OP_ALL, DRIFT_REPS, 0);
    linattn_ctx *c = tu_ctx("scalar", 1);
    const int n = op->ntensors, ig = linattn_op_tensor_index(op, "g");
    if (ig >= 0) tu_fill(p.data[ig], p.count[ig] * DRIFT_REPS, glo, 0);
    uint16_t *hs[LINATTN_OP_MAX_TENSORS] = {0};
    float *o16[LINATTN_OP_MAX_TENSORS] = {0};
    linattn_op_args a = p.a, b = p.a;
    for (int i = 0; i < n; i++) {
        if (!p.data[i]) continue;
        if (op->tensors[i].role == LINATTN_ROLE_INOUT) { /* the state: one copy each */
            hs[i] = malloc(p.count[i] * 2);
            ck_assert_int_eq(linattn_convert(p.data[i], LINATTN_F32, hs[i], d, p.count[i]), 0);
            ck_assert_int_eq(linattn_convert(hs[i], d, p.data[i], LINATTN_F32, p.count[i]), 0);
            b.t[i] = linattn_tensor_nd(hs[i], d, p.a.t[i].ndim, p.a.t[i].shape);
        } else if (op->tensors[i].role == LINATTN_ROLE_OUT) {
            o16[i] = tu_alloc(p.count[i]);
            b.t[i].data = o16[i];
        }
    }
    double num = 0, den = 0, worst = 0;
    for (long t = 0; t < ntok; t++) {
        const size_t r = (size_t)(t % DRIFT_REPS);
        for (int i = 0; i < n; i++)
            if (p.data[i] && tu_op_per_token(&p, i) && op->tensors[i].role == LINATTN_ROLE_IN) {
                a.t[i].data = p.data[i] + r * p.count[i];
                b.t[i].data = a.t[i].data;
            }
        ck_assert_msg(linattn_op_call(c, op, &a) == 0, "%s", linattn_last_error());
        ck_assert_msg(linattn_op_call(c, op, &b) == 0, "%s", linattn_last_error());
        for (int i = 0; i < n; i++) {
            if (!o16[i]) continue;
            const float *x = a.t[i].data;
            for (size_t j = 0; j < p.count[i]; j++) {
                num += (double)(o16[i][j] - x[j]) * (o16[i][j] - x[j]);
                den += (double)x[j] * x[j];
            }
        }
        if ((t + 1) % DRIFT_WINDOW == 0) {
            const double e = den > 0 ? sqrt(num / den) : 0;
            if (e > worst) worst = e;
            num = den = 0;
        }
    }
    const double bound = d == LINATTN_F16 ? 4e-3 : 3.2e-2; /* linattn(3) */
    printf("decode drift, %-7s %-4s state, g in [%g, 0], %ld tokens: worst window %.3g "
           "(bound %.3g)\n", op->name, linattn_dtype_name(d), glo, ntok, worst, bound);
    ck_assert_msg(worst <= bound, "%s, %s state: drift %.3g over %ld tokens (bound %.3g)",
                  op->name, linattn_dtype_name(d), worst, ntok, bound);
    for (int i = 0; i < n; i++) {
        free(hs[i]);
        free(o16[i]);
    }
    linattn_ctx_destroy(c);
    tu_op_free(&p);
}

/* loop index: entry * 4 + dtype * 2 + memory.  Entries whose states stay
 * float32 are tested by test_f32_states instead. */
START_TEST(test_drift)
{
    const linattn_op_info *op = linattn_op_at(_i / 4);
    if (strcmp(op->entry, "step") || op->cache || op->f32_states) return;
    drift(op, HALVES[_i / 2 % 2], _i % 2 ? -1e-3 : -0.1);
}
END_TEST

/* gla, gka, ela: a state in a 16-bit type is refused naming it, on every
 * backend, nothing written (their writes add up without the delta rule's
 * correction: measured with this file's drift() before deciding, a bf16
 * state drifted by 19% (gla), 78% (gka) and 2000% (ela, no decay) over
 * 10^5 tokens). */
START_TEST(test_f32_states)
{
    const linattn_op_info *op = linattn_op_at(_i);
    const char *isas[8];
    const int ni = tu_isas(isas, 7);
    isas[ni] = "ref";
    ck_assert_int_eq(op->f32_states, !strcmp(op->name, "gla") || !strcmp(op->name, "gka") ||
                                         !strcmp(op->name, "ela"));
    if (!op->f32_states) return;
    int64_t dims[LINATTN_OP_LETTERS];
    tu_op_sizes(dims, 1, 4, 1, 8, 8, 0, 0);
    for (int b = 0; b <= ni; b++)
        for (int i = 0; i < op->ntensors; i++) {
            if (!is_state(&op->tensors[i])) continue;
            tu_op p;
            tu_op_make(&p, op, dims, TU_OP_ALL, 1, 0);
            linattn_ctx *c = tu_ctx(isas[b], 1);
            const size_t cnt = p.count[i];
            uint16_t *h = calloc(cnt, 2);
            linattn_op_args a = p.a;
            a.t[i] = linattn_tensor_nd(h, LINATTN_BF16, p.a.t[i].ndim, p.a.t[i].shape);
            const int rc = linattn_op_call(c, op, &a);
            ck_assert_msg(rc == LINATTN_EUNSUPPORTED && strstr(linattn_last_error(),
                                                                op->tensors[i].name),
                          "%s %s bf16 on %s: %d (%s)", tu_op_name(op), op->tensors[i].name,
                          isas[b], rc, linattn_last_error());
            for (int j = 0; j < op->ntensors; j++) /* outputs untouched: still poison */
                if (p.data[j] && op->tensors[j].role == LINATTN_ROLE_OUT)
                    for (size_t e = 0; e < p.count[j]; e++) ck_assert(isnan(p.data[j][e]));
            free(h);
            linattn_ctx_destroy(c);
            tu_op_free(&p);
        }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("half");
    TCase *tc = tcase_create("conversions");
    tcase_set_timeout(tc, 300); /* 2 x (65536 + ~10^6) conversions */
    tcase_add_loop_test(tc, test_roundtrip_all, 0, 2);
    tcase_add_loop_test(tc, test_rounding, 0, 2);
    tcase_add_test(tc, test_convert_args);
    suite_add_tcase(s, tc);
    tc = tcase_create("operators");
    tcase_set_timeout(tc, 600); /* per entry: ISAs x 2 dtypes x 3 small calls + the ref */
    tcase_add_loop_test(tc, test_ops, 0, linattn_op_count());
    tcase_add_loop_test(tc, test_f32_states, 0, linattn_op_count());
    tcase_add_loop_test(tc, test_step_shapes, 0, 4);
    suite_add_tcase(s, tc);
    tc = tcase_create("subnormal");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_step_subnormal, 0, 4);
    suite_add_tcase(s, tc);
    tc = tcase_create("opencl step");
    tcase_set_timeout(tc, 600); /* per variant and dtype: 16 kernel builds on PoCL */
    tcase_add_loop_test(tc, test_step_opencl, 0, 2 * NSTEPW);
    suite_add_tcase(s, tc);
    tc = tcase_create("drift");
    tcase_set_timeout(tc, 900); /* per entry: 2 x 10^5 steps of 2 heads of 32 x 32 */
    tcase_add_loop_test(tc, test_drift, 0, 4 * linattn_op_count());
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(suite());
}
