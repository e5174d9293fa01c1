/* linattn tests - the argument contract of every entry point, table driven:
 * each operator's forward and step is described once (its tensors, their
 * shapes, which are outputs, which come in pairs), and the same mutations
 * are walked over every tensor on every backend.  Each bad argument must
 * give its own status code, a message naming the argument, and leave every
 * output as it was; then the NaN/Inf policy of linattn(3) is checked. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define SENTINEL 12345.0f
#define MAXS LINATTN_OP_MAX_TENSORS

/* Fixtures of the delta family's other head counts: one key head, two
 * value heads, four query heads sharing them (so o has four), and g per
 * key channel (set by test_contract_heads). */
static int g_heads;

/* Sizes of the fixtures: one per symbolic dimension letter (linattn_ops(3));
 * the derived ones (N, F, and J, Q, O unless g_heads) follow from the table. */
static void fixture_dims(const linattn_op_info *op, int64_t *dims)
{
    static const struct { char l; int64_t n; } D[] = {{'B', 2}, {'T', 5}, {'H', 2}, {'K', 4},
                                                      {'V', 3}, {'M', 5}, {'S', 4}};
    linattn_op_args a;
    memset(dims, 0, sizeof(int64_t) * LINATTN_OP_LETTERS);
    for (size_t i = 0; i < sizeof D / sizeof *D; i++) dims[D[i].l - 'A'] = D[i].n;
    if (g_heads) {
        dims['J' - 'A'] = 1;
        dims['Q' - 'A'] = 4;
        dims['G' - 'A'] = dims['K' - 'A'];
    }
    linattn_op_args_init(op, &a);
    linattn_op_dims(op, &a, dims);
}

/* The entry points come from the library's operator table. */
static const char *label(const linattn_op_info *op)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s %s", op->name, op->entry);
    return buf;
}
#define NSPECS (linattn_op_count())

/* Packed sequences the forwards are called with (none unless a case sets them). */
static const int64_t *g_cu;
static int64_t g_nseq;

/* Call op on tensors t (table order).  A step that needs a KV cache gets a
 * fresh one of 3 tokens, whose length must not change when the call fails. */
static int call(linattn_ctx *c, const linattn_op_info *op, const linattn_tensor *t)
{
    linattn_op_args a;
    linattn_op_args_init(op, &a);
    memcpy(a.t, t, sizeof a.t);
    a.cu_seqlens = g_cu;
    a.n_seqs = g_nseq;
    if (!op->cache || !c) return linattn_op_call(c, op, &a);
    int64_t dims[LINATTN_OP_LETTERS];
    fixture_dims(op, dims);
    const int64_t B = dims['B' - 'A'], H = dims['J' - 'A'], K = dims['K' - 'A'],
                  V = dims['V' - 'A']; /* the cache holds the key/value heads */
    int rc = linattn_kvcache_create(c, B, H, K, V, 8, &a.cache);
    ck_assert_int_eq(rc, 0);
    float *kb = tu_alloc((size_t)(B * 3 * H * K)), *vb = tu_alloc((size_t)(B * 3 * H * V));
    tu_fill(kb, (size_t)(B * 3 * H * K), -1, 1);
    tu_fill(vb, (size_t)(B * 3 * H * V), -1, 1);
    const linattn_tensor kt = linattn_tensor_4d(kb, B, 3, H, K);
    const linattn_tensor vt = linattn_tensor_4d(vb, B, 3, H, V);
    ck_assert_int_eq(linattn_kvcache_append(c, a.cache, &kt, &vt), 0);
    rc = linattn_op_call(c, op, &a);
    ck_assert_int_eq(linattn_kvcache_length(a.cache), rc ? 3 : 4);
    linattn_kvcache_destroy(a.cache);
    free(kb);
    free(vb);
    return rc;
}

/* ---- fixtures ------------------------------------------------------------- */

typedef struct fixture {
    const linattn_op_info *sp;
    float *data[MAXS];
    size_t count[MAXS];
    linattn_tensor t[MAXS];
} fixture;

static int written(const linattn_op_tensor *s) { return s->role != LINATTN_ROLE_IN; }

static void fixture_make(fixture *f, const linattn_op_info *sp)
{
    int64_t dims[LINATTN_OP_LETTERS];
    memset(f, 0, sizeof *f);
    f->sp = sp;
    fixture_dims(sp, dims);
    for (int i = 0; i < sp->ntensors; i++) {
        int64_t sh[4];
        size_t n = 1;
        const int nd = linattn_op_rank(sp, i, dims);
        /* optional tensors that nothing sizes (the serving rows hW, hC) stay absent */
        if (sp->tensors[i].optional && linattn_op_shape(sp, i, dims, sh)) continue;
        ck_assert_int_eq(linattn_op_shape(sp, i, dims, sh), 0);
        for (int d = 0; d < nd; d++) n *= (size_t)sh[d];
        f->data[i] = tu_alloc(n);
        f->count[i] = n;
        f->t[i] = linattn_tensor_4d(f->data[i], sh[0], sh[1], sh[2], sh[3]);
        f->t[i].ndim = nd;
    }
}

/* Inputs (and in-place states) fresh random within their typical values,
 * outputs the sentinel. */
static void fixture_fill(fixture *f)
{
    for (int i = 0; i < f->sp->ntensors; i++) {
        const linattn_op_tensor *s = &f->sp->tensors[i];
        if (s->role == LINATTN_ROLE_OUT)
            for (size_t j = 0; j < f->count[i]; j++) f->data[i][j] = SENTINEL;
        else
            tu_fill(f->data[i], f->count[i], s->fill_lo, s->fill_hi);
    }
}

static void fixture_free(fixture *f)
{
    for (int i = 0; i < f->sp->ntensors; i++) free(f->data[i]);
}

/* Every tensor the call may write still holds what it held before. */
static int unchanged(const fixture *f, float *const *before)
{
    for (int i = 0; i < f->sp->ntensors; i++)
        if (written(&f->sp->tensors[i]) && f->count[i] &&
            memcmp(before[i], f->data[i], f->count[i] * sizeof(float)))
            return 0;
    return 1;
}

/* ---- the mutations -------------------------------------------------------- */

enum { MU_NULL, MU_RANK, MU_DIM, MU_ZERO, MU_NEG, MU_HUGE, MU_LAST, NMU };
static const char *const MU_NAME[NMU] = {"NULL data", "rank + 1", "a dimension + 1",
                                         "a zero dimension", "a negative dimension",
                                         "an overflowing dimension", "head size above the limit"};

/* Apply mutation mu to tensor i; the status it must give (0: skip). */
static int mutate(linattn_tensor *t, const linattn_op_info *op, int i, int mu)
{
    const linattn_op_tensor *s = &op->tensors[i];
    const int lead = i == 0; /* its sizes define the others': a mismatch is named elsewhere */
    int needed = 0;          /* another tensor of the fixture needs this one */
    for (int j = 0; j < op->ntensors; j++) needed |= op->tensors[j].needs == i;
    switch (mu) {
    case MU_NULL:
        t->data = NULL;
        return !s->optional ? LINATTN_ENULL : s->pair >= 0 || needed ? LINATTN_EINVAL : 0;
    case MU_RANK:
        if (t->ndim == 4) return 0;
        t->shape[t->ndim++] = 1;
        return LINATTN_ESHAPE;
    case MU_DIM:
        if (lead) return 0;
        t->shape[0] += 1;
        return LINATTN_ESHAPE;
    case MU_ZERO:
        t->shape[t->ndim - 1] = 0;
        return LINATTN_ESIZE;
    case MU_NEG:
        t->shape[0] = -3;
        return LINATTN_ESIZE;
    case MU_HUGE:
        t->shape[0] = (int64_t)1 << 62;
        return LINATTN_EOVERFLOW;
    default: /* the head size of q: only where it is the last dim of a lead q */
        if (!lead || strcmp(s->name, "q") || s->dims[s->ndim - 1] != 'K') return 0;
        return 1; /* set up by the caller: q and k both widened */
    }
}

static linattn_ctx *backend_ctx(int b)
{
    static const char *const names[] = {"ref", "scalar", "opencl"};
    if (b == 2 && !tu_opencl()) return NULL;
    return tu_ctx(names[b], 2);
}

/* Walk every mutation over every tensor of one spec on one context. */
static void contract(const linattn_op_info *sp, linattn_ctx *c)
{
    fixture f;
    fixture_make(&f, sp);
    float *before[MAXS];
    for (int i = 0; i < sp->ntensors; i++) before[i] = tu_alloc(f.count[i]);
    fixture_fill(&f);
    ck_assert_msg(call(c, sp, f.t) == 0, "%s: the valid fixture fails: %s", label(sp),
                  linattn_last_error());
    int cases = 0;
    for (int i = 0; i < sp->ntensors; i++)
        for (int mu = 0; mu < NMU && f.t[i].data; mu++) { /* absent: the serving rows */
            fixture_fill(&f);
            for (int j = 0; j < sp->ntensors; j++)
                if (f.count[j]) memcpy(before[j], f.data[j], f.count[j] * sizeof(float));
            linattn_tensor t[MAXS];
            memcpy(t, f.t, sizeof t);
            int expect = mutate(&t[i], sp, i, mu);
            if (expect == 1) { /* K beyond LINATTN_MAX_HEAD_DIM for q and k alike */
                t[0].shape[t[0].ndim - 1] = LINATTN_MAX_HEAD_DIM + 1;
                t[1].shape[t[1].ndim - 1] = LINATTN_MAX_HEAD_DIM + 1;
                expect = LINATTN_EHEADDIM;
            }
            if (!expect) continue;
            const int rc = call(c, sp, t);
            const char *msg = linattn_last_error();
            const char *who = mu == MU_LAST ? "q" : sp->tensors[i].name;
            ck_assert_msg(rc == expect, "%s, %s with %s: status %d (%s), expected %d", label(sp),
                          sp->tensors[i].name, MU_NAME[mu], rc, msg, expect);
            ck_assert_msg(strstr(msg, who) != NULL, "%s, %s with %s: message '%s' names no %s",
                          label(sp), sp->tensors[i].name, MU_NAME[mu], msg, who);
            ck_assert_msg(unchanged(&f, before), "%s, %s with %s: an output was written",
                          label(sp), sp->tensors[i].name, MU_NAME[mu]);
            cases++;
        }
    /* packed sequences: cu_seqlens with B != 1, n_seqs without cu_seqlens, n_seqs 0 */
    if (sp->packed) {
        static const int64_t cu[3] = {0, 2, 5};
        static const struct { const int64_t *cu; int64_t n; int expect; const char *who; } P[] = {
            {cu, 2, LINATTN_ESEQLENS, "cu_seqlens"},
            {NULL, 2, LINATTN_EINVAL, "n_seqs"},
            {cu, 0, LINATTN_ESEQLENS, "n_seqs"},
        };
        for (int j = 0; j < 3; j++) {
            fixture_fill(&f);
            for (int i = 0; i < sp->ntensors; i++)
                if (f.count[i]) memcpy(before[i], f.data[i], f.count[i] * sizeof(float));
            g_cu = P[j].cu;
            g_nseq = P[j].n;
            const int rc = call(c, sp, f.t);
            g_cu = NULL;
            g_nseq = 0;
            ck_assert_msg(rc == P[j].expect && strstr(linattn_last_error(), P[j].who),
                          "%s, packed case %d: status %d (%s)", label(sp), j, rc,
                          linattn_last_error());
            ck_assert_msg(unchanged(&f, before), "%s, packed case %d: an output was written",
                          label(sp), j);
            cases++;
        }
    }
    /* NULL context and io: never a crash */
    ck_assert_int_eq(call(NULL, sp, f.t), LINATTN_ENULL);
    cases++;
    printf("contract: %s%s: %d bad-argument cases\n", label(sp), g_heads ? " (heads)" : "",
           cases);
    for (int i = 0; i < sp->ntensors; i++) free(before[i]);
    fixture_free(&f);
    linattn_ctx_destroy(c);
}

START_TEST(test_contract)
{
    linattn_ctx *c = backend_ctx(_i % 3);
    if (c) contract(linattn_op_at(_i / 3), c); /* no OpenCL device: reported by tu_report */
}
END_TEST

/* The delta family with Hq, Hk and H all different and g per key channel:
 * on the reference, which takes them everywhere (the table's shapes of q,
 * k, v, g and o are what it accepts, and every mutation of them is refused
 * as above). */
START_TEST(test_contract_heads)
{
    const linattn_op_info *sp = linattn_op_at(_i);
    if (strcmp(sp->family, "delta")) return;
    int64_t dims[LINATTN_OP_LETTERS], sh[LINATTN_MAX_DIMS];
    g_heads = 1;
    fixture_dims(sp, dims);
    const int o = linattn_op_tensor_index(sp, "o"), g = linattn_op_tensor_index(sp, "g");
    ck_assert_int_eq(dims['O' - 'A'], 4); /* query heads sharing a state: o has Q heads */
    ck_assert_int_eq(linattn_op_shape(sp, o, dims, sh), 0);
    ck_assert_int_eq(sh[sp->tensors[o].ndim - 2], 4);
    ck_assert_int_eq(linattn_op_rank(sp, g, dims), sp->tensors[g].ndim + 1);
    ck_assert_int_eq(linattn_op_shape(sp, g, dims, sh), 0);
    ck_assert_int_eq(sh[sp->tensors[g].ndim], dims['K' - 'A']);
    contract(sp, tu_ctx("ref", 2));
    g_heads = 0;
}
END_TEST

/* The NaN/Inf policy (linattn(3)): a NaN or Inf in q, k or v is propagated,
 * never refused, and never crashes: the call succeeds, and with a NaN some
 * output that depends on it is NaN (an Inf may legitimately vanish, e.g. a
 * score of -inf weighs 0); range-checked arguments (kalman's lam_v, decay,
 * noise, lam0 and the gates of the delta family and gka) refuse it with
 * LINATTN_ERANGE (test_values). */
START_TEST(test_nan_propagates)
{
    const linattn_op_info *sp = linattn_op_at(_i / 3);
    linattn_ctx *c = backend_ctx(_i % 3);
    if (!c) return;
    fixture f;
    fixture_make(&f, sp);
    static const float bad[2] = {NAN, INFINITY};
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < sp->ntensors; i++) {
            const char *nm = sp->tensors[i].name;
            if (strcmp(nm, "q") && strcmp(nm, "k") && strcmp(nm, "v")) continue;
            fixture_fill(&f);
            f.data[i][0] = bad[b];
            ck_assert_msg(call(c, sp, f.t) == 0, "%s: %s[0] = %g refused: %s", label(sp), nm,
                          (double)bad[b], linattn_last_error());
            int finite = 1;
            for (int j = 0; j < sp->ntensors; j++)
                if (sp->tensors[j].role == LINATTN_ROLE_OUT)
                    for (size_t e = 0; e < f.count[j]; e++) finite &= isfinite(f.data[j][e]) != 0;
            ck_assert_msg(b == 1 || !finite, "%s: %s[0] = NaN left every output finite",
                          label(sp), nm);
        }
    fixture_free(&f);
    linattn_ctx_destroy(c);
}
END_TEST

/* ---- the value ranges ------------------------------------------------------ */

/* The values a ranged tensor refuses: NaN, +-Inf, and just outside each
 * finite end (the end itself when it is open); returns how many. */
static int bad_values(const linattn_op_tensor *r, float *out)
{
    int n = 0;
    out[n++] = NAN;
    out[n++] = INFINITY;
    out[n++] = -INFINITY;
    if (r->lo > -FLT_MAX) out[n++] = r->lo_open ? r->lo : r->lo - 0.5f;
    if (r->hi < FLT_MAX) out[n++] = r->hi_open ? r->hi : r->hi + 0.5f;
    return n;
}

/* Call with every tensor copied into a device buffer of c, then every
 * tensor read back into the fixture; the message kept in msg. */
static int call_buffers(linattn_ctx *c, fixture *f, char *msg, size_t len)
{
    linattn_buffer *b[MAXS];
    linattn_tensor t[MAXS];
    for (int i = 0; i < f->sp->ntensors; i++) {
        b[i] = NULL;
        t[i] = f->t[i];
        if (!f->t[i].data) continue; /* absent: the serving rows */
        ck_assert_int_eq(linattn_buffer_create(c, f->count[i], &b[i]), 0);
        ck_assert_int_eq(linattn_buffer_write(b[i], 0, f->data[i], f->count[i]), 0);
        t[i] = linattn_tensor_buffer(b[i], f->t[i].ndim, f->t[i].shape);
    }
    const int rc = call(c, f->sp, t);
    snprintf(msg, len, "%s", linattn_last_error());
    for (int i = 0; i < f->sp->ntensors; i++) {
        if (!b[i]) continue;
        ck_assert_int_eq(linattn_buffer_read(b[i], 0, f->data[i], f->count[i]), 0);
        linattn_buffer_destroy(b[i]);
    }
    return rc;
}

/* Backend 0 ref, 1 scalar, 2 OpenCL with host tensors, 3 OpenCL with every
 * tensor in a device buffer. */
static int call_on(linattn_ctx *c, int dev, fixture *f, char *msg, size_t len)
{
    if (dev) return call_buffers(c, f, msg, len);
    const int rc = call(c, f->sp, f->t);
    snprintf(msg, len, "%s", linattn_last_error());
    return rc;
}

/* "name[i,j,..]" of flat index at in tensor t. */
static void index_name(char *want, size_t cap, const char *name, const linattn_tensor *t,
                       size_t at)
{
    int len = snprintf(want, cap, "%s[", name);
    size_t rest = at, sub[4];
    for (int d = t->ndim - 1; d >= 0; d--) {
        sub[d] = rest % (size_t)t->shape[d];
        rest /= (size_t)t->shape[d];
    }
    for (int d = 0; d < t->ndim; d++)
        len += snprintf(want + len, cap - (size_t)len, "%s%zu", d ? "," : "", sub[d]);
    snprintf(want + len, cap - (size_t)len, "]");
}

/* Every ranged tensor of the operator table (linattn_ops(3)): each value it
 * refuses, at a random index, gives LINATTN_ERANGE naming the culprit and
 * writes nothing; the ends of a closed range are accepted.  The table's
 * ranges are what the library enforces. */
START_TEST(test_values)
{
    const linattn_op_info *sp = linattn_op_at(_i / 4);
    const int dev = _i % 4 == 3;
    int ranged = 0;
    for (int i = 0; i < sp->ntensors; i++) ranged |= sp->tensors[i].ranged;
    if (!ranged) return;
    linattn_ctx *c = backend_ctx(_i % 4 < 2 ? _i % 4 : 2);
    if (!c) return;
    fixture f;
    fixture_make(&f, sp);
    float *before[MAXS];
    char msg[256], want[64];
    for (int i = 0; i < sp->ntensors; i++) before[i] = tu_alloc(f.count[i]);
    int cases = 0;
    for (int i = 0; i < sp->ntensors; i++) {
        const linattn_op_tensor *r = &sp->tensors[i];
        if (!r->ranged) continue;
        float bad[5];
        const int nb = bad_values(r, bad);
        for (int v = 0; v < nb; v++) {
            fixture_fill(&f);
            const size_t at = (size_t)tu_uniform(0, (double)f.count[i]) % f.count[i];
            f.data[i][at] = bad[v];
            for (int j = 0; j < sp->ntensors; j++)
                if (f.count[j]) memcpy(before[j], f.data[j], f.count[j] * sizeof(float));
            const int rc = call_on(c, dev, &f, msg, sizeof msg);
            index_name(want, sizeof want, r->name, &f.t[i], at);
            ck_assert_msg(rc == LINATTN_ERANGE, "%s%s: %s = %g: status %d (%s)", label(sp),
                          dev ? " (buffers)" : "", want, (double)bad[v], rc, msg);
            ck_assert_msg(strstr(msg, want) != NULL, "%s%s: %g: message '%s' does not name %s",
                          label(sp), dev ? " (buffers)" : "", (double)bad[v], msg, want);
            ck_assert_msg(unchanged(&f, before), "%s%s: %s = %g: an output was written",
                          label(sp), dev ? " (buffers)" : "", want, (double)bad[v]);
            cases++;
        }
        /* the ends of a closed range are accepted, over the whole tensor */
        const float ends[2] = {r->lo, r->hi};
        const int open[2] = {r->lo_open, r->hi_open};
        for (int e = 0; e < 2; e++) {
            if (open[e] || fabsf(ends[e]) >= FLT_MAX) continue;
            fixture_fill(&f);
            for (size_t j = 0; j < f.count[i]; j++) f.data[i][j] = ends[e];
            const int rc = call_on(c, dev, &f, msg, sizeof msg);
            ck_assert_msg(rc == 0, "%s%s: %s = %g everywhere refused: %s", label(sp),
                          dev ? " (buffers)" : "", r->name, (double)ends[e], msg);
            cases++;
        }
    }
    printf("values: %s%s: %d cases\n", label(sp), dev ? " (buffers)" : "", cases);
    for (int i = 0; i < sp->ntensors; i++) free(before[i]);
    fixture_free(&f);
    linattn_ctx_destroy(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("contract");
    TCase *tc = tcase_create("contract");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_contract, 0, 3 * NSPECS);
    tcase_add_loop_test(tc, test_contract_heads, 0, NSPECS);
    tcase_add_loop_test(tc, test_nan_propagates, 0, 3 * NSPECS);
    tcase_add_loop_test(tc, test_values, 0, 4 * NSPECS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
