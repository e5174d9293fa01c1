/* linattn tests - strided tensors (linattn(3), STRIDED TENSORS).  For every
 * entry point of the operator table, on every backend (reference, each ISA,
 * OpenCL with host tensors and with device buffers), a call whose tensors
 * are all strided views equals the call with dense tensors bit for bit, and
 * no float outside an output's view is touched.  The floats between the
 * views of inputs are NaN, so a kernel that read one would show it.
 * Layouts: every dimension padded (row strides larger than dense), the last
 * two dimensions swapped in memory (the last stride is not 1: a transposed
 * state), and q, k, v as views of one fused projection per token.  Bad views
 * are refused naming the argument, with nothing written. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testop.h"
#include "testutil.h"

#define SENTINEL (-12345.5f) /* the floats around an output's view */

enum { PAD, SWAP, FUSED, NLAYOUTS };
static const char *const LAYOUTS[] = {"padded", "swapped", "fused"};

/* One tensor's storage: the view's floats somewhere in a larger array. */
typedef struct store {
    float *mem;
    size_t n;
    int64_t strides[LINATTN_MAX_DIMS], offset;
    linattn_buffer *buf;
} store;

static size_t view_index(const linattn_tensor *t, const int64_t *st, int64_t off, size_t e)
{
    int64_t at = off;
    for (int d = t->ndim - 1; d >= 0; d--) {
        at += (int64_t)(e % (size_t)t->shape[d]) * st[d];
        e /= (size_t)t->shape[d];
    }
    return (size_t)at;
}

static size_t count_of(const linattn_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* Strides and offset of tensor t in the layout (not FUSED). */
static void layout(const linattn_tensor *t, int lay, store *s)
{
    int64_t ext[LINATTN_MAX_DIMS], ord[LINATTN_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        ext[d] = t->shape[d] + (lay == PAD ? 1 + d % 2 : 0);
        ord[d] = d;
    }
    if (lay == SWAP && t->ndim >= 2) {
        ord[t->ndim - 1] = t->ndim - 2;
        ord[t->ndim - 2] = t->ndim - 1;
    }
    int64_t acc = 1;
    for (int i = t->ndim - 1; i >= 0; i--) { /* memory order: ord[0] outermost */
        s->strides[ord[i]] = acc;
        acc *= ext[ord[i]];
    }
    s->offset = 5;
    s->n = (size_t)(acc + 9);
}

/* Fill the storage: the dense values at the view, filler elsewhere. */
static void store_fill(store *s, const linattn_tensor *t, const float *dense, float filler)
{
    s->mem = tu_alloc(s->n);
    for (size_t i = 0; i < s->n; i++) s->mem[i] = filler;
    const size_t n = count_of(t);
    for (size_t e = 0; e < n; e++) s->mem[view_index(t, s->strides, s->offset, e)] = dense[e];
}

static linattn_tensor view_of(const linattn_tensor *t, const store *s)
{
    linattn_tensor v = *t;
    v.data = s->buf ? NULL : s->mem;
    v.buf = s->buf;
    memcpy(v.strides, s->strides, sizeof v.strides);
    v.offset = s->offset;
    return v;
}

/* The op's q, k, v side by side per token in one array: [lead.., W] with
 * W the sum of their last two dimensions' sizes (all three share the
 * leading ones: B, T or B). */
static int fused(const linattn_op_info *op, int *iq, int *ik, int *iv)
{
    *iq = linattn_op_tensor_index(op, "q");
    *ik = linattn_op_tensor_index(op, "k");
    *iv = linattn_op_tensor_index(op, "v");
    return *iq >= 0 && *ik >= 0 && *iv >= 0;
}

static void fused_layout(const tu_op *p, int iq, int ik, int iv, store *s)
{
    const int idx[3] = {iq, ik, iv};
    const linattn_tensor *t0 = &p->a.t[iq];
    const int nd = t0->ndim;
    int64_t w[3], W = 0, rows = 1;
    for (int j = 0; j < 3; j++) {
        const linattn_tensor *t = &p->a.t[idx[j]];
        w[j] = t->shape[nd - 2] * t->shape[nd - 1];
        W += w[j];
    }
    for (int d = 0; d < nd - 2; d++) rows *= t0->shape[d];
    int64_t off = 3;
    for (int j = 0; j < 3; j++) {
        const linattn_tensor *t = &p->a.t[idx[j]];
        store *x = &s[idx[j]];
        int64_t acc = W;
        for (int d = nd - 3; d >= 0; d--) {
            x->strides[d] = acc;
            acc *= t->shape[d];
        }
        x->strides[nd - 2] = t->shape[nd - 1];
        x->strides[nd - 1] = 1;
        x->offset = off;
        off += w[j];
        x->n = (size_t)(rows * W + 7);
    }
}

/* One entry point, one backend, one layout, host (dev = 0) or device
 * buffers (dev = 1). */
static void check_op(const linattn_op_info *op, const char *isa, int lay, int dev)
{
    int64_t dims[LINATTN_OP_LETTERS];
    tu_op_sizes(dims, 2, 13, 2, 8, 12, 10, 3);
    tu_op p;
    tu_op_make(&p, op, dims, TU_OP_ALL, 1, 0);
    linattn_ctx *c = tu_ctx(isa, 2);
    const int n = op->ntensors;
    int iq = -1, ik = -1, iv = -1;
    store s[LINATTN_OP_MAX_TENSORS];
    memset(s, 0, sizeof s);
    const int fuse = lay == FUSED && fused(op, &iq, &ik, &iv);
    if (fuse) fused_layout(&p, iq, ik, iv, s);
    float *kb = NULL, *vb = NULL;
    if (op->cache) tu_op_cache_data(&p, &kb, &vb);
    /* the views, built from the dense inputs before the dense run changes states */
    linattn_op_args a = p.a;
    float *shared = NULL;
    for (int i = 0; i < n; i++) {
        const linattn_tensor *t = &p.a.t[i];
        if (!p.data[i]) continue;
        const int out = op->tensors[i].role == LINATTN_ROLE_OUT;
        const int in_fused = fuse && (i == iq || i == ik || i == iv);
        if (!in_fused) layout(t, lay == FUSED ? PAD : lay, &s[i]);
        if (in_fused && shared) {
            s[i].mem = shared;
            for (size_t e = 0; e < count_of(t); e++)
                shared[view_index(t, s[i].strides, s[i].offset, e)] = p.data[i][e];
        } else {
            store_fill(&s[i], t, p.data[i], out ? SENTINEL : NAN);
            if (in_fused) shared = s[i].mem;
        }
    }
    for (int i = 0; i < n; i++) {
        if (!p.data[i]) continue;
        const int in_fused = fuse && (i == iq || i == ik || i == iv);
        if (dev && (!in_fused || i == iq)) {
            ck_assert_int_eq(linattn_buffer_create(c, s[i].n, &s[i].buf), 0);
            ck_assert_int_eq(linattn_buffer_write(s[i].buf, 0, s[i].mem, s[i].n), 0);
        }
        if (dev && in_fused && i != iq) s[i].buf = s[iq].buf;
        a.t[i] = view_of(&p.a.t[i], &s[i]);
    }
    /* dense run */
    if (op->cache) p.a.cache = tu_op_cache(c, &p, kb, vb);
    int rc = linattn_op_call(c, op, &p.a);
    ck_assert_msg(rc == 0, "%s dense on %s: %s", tu_op_name(op), isa, linattn_last_error());
    /* strided run */
    if (op->cache) a.cache = tu_op_cache(c, &p, kb, vb);
    rc = linattn_op_call(c, op, &a);
    ck_assert_msg(rc == 0, "%s %s views on %s%s: %s", tu_op_name(op), LAYOUTS[lay], isa,
                  dev ? " (buffers)" : "", linattn_last_error());
    for (int i = 0; i < n; i++) {
        const linattn_tensor *t = &p.a.t[i];
        if (!p.data[i] || op->tensors[i].role == LINATTN_ROLE_IN) continue;
        if (dev) ck_assert_int_eq(linattn_buffer_read(s[i].buf, 0, s[i].mem, s[i].n), 0);
        const size_t cnt = count_of(t);
        char *hit = calloc(s[i].n, 1);
        ck_assert_ptr_nonnull(hit);
        for (size_t e = 0; e < cnt; e++) {
            const size_t at = view_index(t, s[i].strides, s[i].offset, e);
            hit[at] = 1;
            ck_assert_msg(!memcmp(&s[i].mem[at], &p.data[i][e], sizeof(float)),
                          "%s %s: %s[%zu] = %g, dense %g (%s views on %s%s)", tu_op_name(op),
                          op->tensors[i].name, op->tensors[i].name, e, (double)s[i].mem[at],
                          (double)p.data[i][e], LAYOUTS[lay], isa, dev ? ", buffers" : "");
        }
        if (op->tensors[i].role == LINATTN_ROLE_OUT)
            for (size_t j = 0; j < s[i].n; j++)
                ck_assert_msg(hit[j] || s[i].mem[j] == SENTINEL,
                              "%s: %s written outside its view at float %zu (%s, %s)",
                              tu_op_name(op), op->tensors[i].name, j, LAYOUTS[lay], isa);
        free(hit);
    }
    if (op->cache) {
        linattn_kvcache_destroy(p.a.cache);
        linattn_kvcache_destroy(a.cache);
    }
    for (int i = 0; i < n; i++) {
        const int in_fused = fuse && (i == iq || i == ik || i == iv);
        if (in_fused && i != iq) continue;
        if (s[i].buf) linattn_buffer_destroy(s[i].buf);
        free(s[i].mem);
    }
    free(kb);
    free(vb);
    linattn_ctx_destroy(c);
    tu_op_free(&p);
}

/* loop index: entry point */
START_TEST(test_views)
{
    const linattn_op_info *op = linattn_op_at(_i);
    const char *isas[8];
    const int ni = tu_isas(isas, 7);
    isas[ni] = "ref";
    for (int b = 0; b <= ni; b++)
        for (int lay = 0; lay < NLAYOUTS; lay++) {
            check_op(op, isas[b], lay, 0);
            if (!strcmp(isas[b], "opencl")) check_op(op, isas[b], lay, 1);
        }
}
END_TEST

/* ---- bad views: refused, named, nothing written --------------------------- */

static void expect_bad(linattn_ctx *c, const linattn_op_info *op, tu_op *p, int i,
                       int code, const char *what)
{
    linattn_op_args a = p->a;
    const int io = linattn_op_tensor_index(op, "o");
    const size_t no = 1000000;
    /* o (with the case's strides): a fresh array the call must not touch */
    float *o = tu_alloc(no);
    for (size_t j = 0; j < no; j++) o[j] = SENTINEL;
    a.t[io].data = o;
    const int rc = linattn_op_call(c, op, &a);
    ck_assert_msg(rc == code, "%s %s: got %d (%s), want %d", tu_op_name(op), what, rc,
                  linattn_last_error(), code);
    (void)i;
    size_t touched = 0; /* counted, then one assertion (Check logs each one) */
    for (size_t j = 0; j < no; j++) touched += o[j] != SENTINEL;
    ck_assert_msg(touched == 0, "%s %s: %zu floats of o written", tu_op_name(op), what, touched);
    free(o);
}

START_TEST(test_bad_views)
{
    const linattn_op_info *op = linattn_op_find("gdn", "forward");
    const char *isas[8];
    const int ni = tu_isas(isas, 7);
    isas[ni] = "ref";
    for (int b = 0; b <= ni; b++) {
        int64_t dims[LINATTN_OP_LETTERS];
        tu_op_sizes(dims, 2, 9, 2, 8, 8, 0, 0);
        tu_op p;
        tu_op_make(&p, op, dims, TU_OP_ALL, 1, 0);
        linattn_ctx *c = tu_ctx(isas[b], 2);
        const int io = linattn_op_tensor_index(op, "o"), iq = 0;
        tu_op q = p;
        /* negative stride on q */
        q.a.t[iq].strides[0] = -1;
        q.a.t[iq].strides[1] = 1; q.a.t[iq].strides[2] = 1; q.a.t[iq].strides[3] = 1;
        expect_bad(c, op, &q, iq, LINATTN_EINVAL, "negative stride");
        ck_assert_msg(strstr(linattn_last_error(), "q") != NULL, "%s", linattn_last_error());
        /* o with a stride of 0 over T: elements written twice */
        q = p;
        q.a.t[io].strides[0] = 13 * 2 * 8; q.a.t[io].strides[1] = 0;
        q.a.t[io].strides[2] = 8; q.a.t[io].strides[3] = 1;
        expect_bad(c, op, &q, io, LINATTN_EINVAL, "overlapping o");
        ck_assert_msg(strstr(linattn_last_error(), "o:") != NULL, "%s", linattn_last_error());
        /* a negative offset */
        q = p;
        q.a.t[iq].offset = -3;
        expect_bad(c, op, &q, iq, LINATTN_EINVAL, "negative offset");
        /* a buffer view past the end of its buffer */
        linattn_buffer *buf;
        const size_t nq = (size_t)(2 * 9 * 2 * 8);
        ck_assert_int_eq(linattn_buffer_create(c, nq, &buf), 0);
        q = p;
        q.a.t[iq].data = NULL;
        q.a.t[iq].buf = buf;
        q.a.t[iq].offset = 1; /* dense from float 1: one float too far */
        expect_bad(c, op, &q, iq, LINATTN_ESHAPE, "view past its buffer");
        ck_assert_msg(strstr(linattn_last_error(), "q:") != NULL, "%s", linattn_last_error());
        linattn_buffer_destroy(buf);
        linattn_ctx_destroy(c);
        tu_op_free(&p);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("views");
    TCase *tc = tcase_create("views");
    /* each entry point: ~(ISAs + 2) x 3 layouts x 2 small calls; generous for a busy
     * 2-core machine */
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_views, 0, linattn_op_count());
    tcase_add_test(tc, test_bad_views);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(suite());
}
