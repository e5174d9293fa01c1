/* linattn tests - the argument contract: every bad argument gives its own
 * status code, a message naming the argument, and leaves outputs untouched. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

enum { B = 2, T = 5, H = 2, K = 4, V = 3 };
#define NQ (B * T * H * K)
#define NV (B * T * H * V)
#define NG (B * T * H)
#define NS (B * H * K * V)
#define SENTINEL 12345.0f

typedef struct fix {
    float q[NQ], k[NQ], v[NV], g[NG], beta[NG], h0[NS], o[NV], ht[NS];
    linattn_delta_io io;
    linattn_delta_opts opts;
    int64_t cu[4];
} fix;

static void fix_init(fix *f)
{
    tu_fill(f->q, NQ, -1, 1);
    tu_fill(f->k, NQ, -1, 1);
    tu_fill(f->v, NV, -1, 1);
    tu_fill(f->g, NG, -1, 0);
    tu_fill(f->beta, NG, 0, 1);
    tu_fill(f->h0, NS, -1, 1);
    for (int i = 0; i < NV; i++) f->o[i] = SENTINEL;
    for (int i = 0; i < NS; i++) f->ht[i] = SENTINEL;
    memset(&f->io, 0, sizeof f->io);
    f->io.q = linattn_tensor_4d(f->q, B, T, H, K);
    f->io.k = linattn_tensor_4d(f->k, B, T, H, K);
    f->io.v = linattn_tensor_4d(f->v, B, T, H, V);
    f->io.g = linattn_tensor_3d(f->g, B, T, H);
    f->io.beta = linattn_tensor_3d(f->beta, B, T, H);
    f->io.h0 = linattn_tensor_4d(f->h0, B, H, K, V);
    f->io.o = linattn_tensor_4d(f->o, B, T, H, V);
    f->io.hT = linattn_tensor_4d(f->ht, B, H, K, V);
    linattn_delta_opts_init(&f->opts);
}

static int untouched(const fix *f)
{
    for (int i = 0; i < NV; i++) if (f->o[i] != SENTINEL) return 0;
    for (int i = 0; i < NS; i++) if (f->ht[i] != SENTINEL) return 0;
    return 1;
}

/* One bad-argument case: a mutation of the valid fixture and what it must give. */
typedef struct bad_case {
    const char *what;  /* also a word the message must contain */
    int expect;
    void (*mutate)(fix *f);
} bad_case;

static void m_q_null(fix *f) { f->io.q.data = NULL; }
static void m_k_null(fix *f) { f->io.k.data = NULL; }
static void m_v_null(fix *f) { f->io.v.data = NULL; }
static void m_o_null(fix *f) { f->io.o.data = NULL; }
static void m_q_rank(fix *f) { f->io.q.ndim = 3; }
static void m_q_rank5(fix *f) { f->io.q.ndim = 7; }
static void m_k_shape(fix *f) { f->io.k.shape[3] = K + 1; }
static void m_v_shape(fix *f) { f->io.v.shape[1] = T + 1; }
static void m_o_shape(fix *f) { f->io.o.shape[3] = V + 1; }
static void m_g_shape(fix *f) { f->io.g.shape[2] = H + 1; }
static void m_g_rank(fix *f) { f->io.g.ndim = 2; }
/* per key channel: [B,T,H,K] takes K channels, no other count */
static void m_g_chan(fix *f) { f->io.g.ndim = 4; f->io.g.shape[3] = K + 1; }
static void m_h0_shape(fix *f) { f->io.h0.shape[0] = B + 1; }
static void m_ht_shape(fix *f) { f->io.hT.shape[2] = K + 1; }
static void m_zero_b(fix *f) { f->io.q.shape[0] = 0; }
static void m_neg_t(fix *f) { f->io.q.shape[1] = -3; }
static void m_zero_v(fix *f) { f->io.v.shape[3] = 0; }
static void m_overflow(fix *f)
{
    f->io.q.shape[0] = (int64_t)1 << 40;
    f->io.q.shape[1] = (int64_t)1 << 40;
}
static void m_overflow_v(fix *f)
{
    f->io.q.shape[1] = (int64_t)1 << 62;
}
static void m_big_k(fix *f)
{
    f->io.q.shape[3] = f->io.k.shape[3] = LINATTN_MAX_HEAD_DIM + 1;
}
static void m_big_v(fix *f)
{
    f->io.v.shape[3] = f->io.o.shape[3] = f->io.h0.shape[3] = f->io.hT.shape[3] =
        LINATTN_MAX_HEAD_DIM * 4;
}
static void m_cu_batch(fix *f)
{
    f->cu[0] = 0; f->cu[1] = 2; f->cu[2] = T;
    f->io.cu_seqlens = f->cu; f->io.n_seqs = 2;
}
static void pack(fix *f)
{
    /* reshape the valid data as one packed row: B=1, T'=B*T */
    f->io.q.shape[0] = f->io.k.shape[0] = f->io.v.shape[0] = f->io.o.shape[0] = 1;
    f->io.g.shape[0] = f->io.beta.shape[0] = 1;
    f->io.q.shape[1] = f->io.k.shape[1] = f->io.v.shape[1] = f->io.o.shape[1] = B * T;
    f->io.g.shape[1] = f->io.beta.shape[1] = B * T;
    f->io.cu_seqlens = f->cu;
    f->io.n_seqs = 2;
}
static void m_cu_start(fix *f) { pack(f); f->cu[0] = 1; f->cu[1] = 4; f->cu[2] = B * T; }
static void m_cu_order(fix *f) { pack(f); f->cu[0] = 0; f->cu[1] = 0; f->cu[2] = B * T; }
static void m_cu_end(fix *f) { pack(f); f->cu[0] = 0; f->cu[1] = 4; f->cu[2] = B * T - 1; }
static void m_cu_n(fix *f) { pack(f); f->io.n_seqs = 0; }
static void m_n_nocu(fix *f) { f->io.n_seqs = 2; }
static void m_eps_neg(fix *f) { f->opts.eps = -1.0f; }
static void m_eps_nan(fix *f) { f->opts.eps = NAN; }
static void m_scale_inf(fix *f) { f->opts.scale = INFINITY; }
static void m_chunk_neg(fix *f) { f->opts.chunk = -1; }
static void m_chunk_big(fix *f) { f->opts.chunk = LINATTN_MAX_CHUNK + 1; }
static void m_algo(fix *f) { f->opts.algo = (linattn_algo)7; }

static const bad_case FORWARD[] = {
    {"q", LINATTN_ENULL, m_q_null},          {"k", LINATTN_ENULL, m_k_null},
    {"v", LINATTN_ENULL, m_v_null},          {"o", LINATTN_ENULL, m_o_null},
    {"q", LINATTN_ESHAPE, m_q_rank},         {"q", LINATTN_ESHAPE, m_q_rank5},
    {"k", LINATTN_ESHAPE, m_k_shape},        {"v", LINATTN_ESHAPE, m_v_shape},
    {"o", LINATTN_ESHAPE, m_o_shape},        {"g", LINATTN_ESHAPE, m_g_shape},
    {"g", LINATTN_ESHAPE, m_g_rank},         {"g", LINATTN_ESHAPE, m_g_chan},
    {"h0", LINATTN_ESHAPE, m_h0_shape},
    {"hT", LINATTN_ESHAPE, m_ht_shape},      {"q", LINATTN_ESIZE, m_zero_b},
    {"q", LINATTN_ESIZE, m_neg_t},           {"v", LINATTN_ESIZE, m_zero_v},
    {"q", LINATTN_EOVERFLOW, m_overflow},    {"q", LINATTN_EOVERFLOW, m_overflow_v},
    {"key", LINATTN_EHEADDIM, m_big_k},      {"value", LINATTN_EHEADDIM, m_big_v},
    {"cu_seqlens", LINATTN_ESEQLENS, m_cu_batch},
    {"cu_seqlens", LINATTN_ESEQLENS, m_cu_start},
    {"cu_seqlens", LINATTN_ESEQLENS, m_cu_order},
    {"cu_seqlens", LINATTN_ESEQLENS, m_cu_end},
    {"cu_seqlens", LINATTN_ESEQLENS, m_cu_n}, {"n_seqs", LINATTN_EINVAL, m_n_nocu},
    {"eps", LINATTN_ERANGE, m_eps_neg},      {"eps", LINATTN_ERANGE, m_eps_nan},
    {"scale", LINATTN_ERANGE, m_scale_inf},  {"chunk", LINATTN_ERANGE, m_chunk_neg},
    {"chunk", LINATTN_ERANGE, m_chunk_big},  {"algo", LINATTN_EINVAL, m_algo},
};
#define NFORWARD ((int)(sizeof FORWARD / sizeof *FORWARD))

static int call(int op, linattn_ctx *ctx, fix *f)
{
    if (op == 2) f->io.beta = linattn_tensor_none();
    return tu_delta_run(op, ctx, &f->io, &f->opts);
}

/* loop index = op * NFORWARD + case; each runs on the ref and cpu backends,
 * and on OpenCL when a device is usable */
START_TEST(test_forward_bad)
{
    const int op = _i / NFORWARD;
    const bad_case *c = &FORWARD[_i % NFORWARD];
    static const char *const backends[] = {"ref", "scalar", "opencl"};
    for (int b = 0; b < 2 + tu_opencl(); b++) {
        linattn_ctx *ctx = tu_ctx(backends[b], 2);
        fix *f = malloc(sizeof *f);
        ck_assert_ptr_nonnull(f);
        fix_init(f);
        ck_assert_int_eq(call(op, ctx, f), 0); /* the fixture itself is valid */
        fix_init(f);
        c->mutate(f);
        const int rc = call(op, ctx, f);
        ck_assert_msg(rc == c->expect, "op %d case %d (%s): got %d (%s), want %d", op,
                      _i % NFORWARD, c->what, rc, linattn_last_error(), c->expect);
        ck_assert_msg(strstr(linattn_last_error(), c->what) != NULL,
                      "message '%s' does not name '%s'", linattn_last_error(), c->what);
        ck_assert_msg(untouched(f), "outputs written after a failed check (%s)", c->what);
        free(f);
        linattn_ctx_destroy(ctx);
    }
}
END_TEST

START_TEST(test_beta_rules)
{
    linattn_ctx *ctx = tu_ctx("scalar", 1);
    fix *f = malloc(sizeof *f);
    ck_assert_ptr_nonnull(f);
    fix_init(f);
    ck_assert_int_eq(linattn_gla_forward(ctx, &f->io, NULL), LINATTN_EINVAL);
    ck_assert(untouched(f));
    f->io.beta = linattn_tensor_none();
    ck_assert_int_eq(linattn_gdn_forward(ctx, &f->io, NULL), LINATTN_ENULL);
    ck_assert_int_eq(linattn_kla_forward(ctx, &f->io, NULL), LINATTN_ENULL);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "eta"));
    ck_assert(untouched(f));
    ck_assert_int_eq(linattn_delta_forward(ctx, (linattn_delta_op)3, &f->io, NULL), LINATTN_EINVAL);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "op"));
    ck_assert(untouched(f));
    ck_assert_int_eq(linattn_gdn_forward(NULL, &f->io, NULL), LINATTN_ENULL);
    ck_assert_int_eq(linattn_gdn_forward(ctx, NULL, NULL), LINATTN_ENULL);
    free(f);
    linattn_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_step_bad)
{
    float q[B * H * K], v[B * H * V], g[B * H], be[B * H], st[NS], o[B * H * V];
    linattn_ctx *ctx = tu_ctx("scalar", 1);
    for (int c = 0; c < 8; c++) {
        tu_fill(q, B * H * K, -1, 1);
        tu_fill(v, B * H * V, -1, 1);
        tu_fill(g, B * H, -1, 0);
        tu_fill(be, B * H, 0, 1);
        tu_fill(st, NS, -1, 1);
        for (int i = 0; i < B * H * V; i++) o[i] = SENTINEL;
        float st0[NS];
        memcpy(st0, st, sizeof st);
        linattn_delta_step_io io = {
            .q = linattn_tensor_3d(q, B, H, K), .k = linattn_tensor_3d(q, B, H, K),
            .v = linattn_tensor_3d(v, B, H, V), .g = linattn_tensor_2d(g, B, H),
            .beta = linattn_tensor_2d(be, B, H), .state_h = linattn_tensor_4d(st, B, H, K, V),
            .o = linattn_tensor_3d(o, B, H, V)};
        int want;
        const char *name;
        switch (c) {
        case 0: io.q.data = NULL; want = LINATTN_ENULL; name = "q"; break;
        case 1: io.state_h.data = NULL; want = LINATTN_ENULL; name = "state_h"; break;
        case 2: io.state_h.shape[3] = V + 1; want = LINATTN_ESHAPE; name = "state_h"; break;
        case 3: io.o.shape[2] = V + 1; want = LINATTN_ESHAPE; name = "o"; break;
        case 4: io.g.shape[1] = H + 1; want = LINATTN_ESHAPE; name = "g"; break;
        case 5: io.v.shape[0] = B + 1; want = LINATTN_ESHAPE; name = "v"; break;
        case 6: io.q.ndim = 4; want = LINATTN_ESHAPE; name = "q"; break;
        default: io.beta.data = NULL; want = LINATTN_ENULL; name = "beta"; break;
        }
        const int rc = linattn_gdn_step(ctx, &io, NULL);
        ck_assert_msg(rc == want, "step case %d: got %d (%s)", c, rc, linattn_last_error());
        ck_assert_ptr_nonnull(strstr(linattn_last_error(), name));
        for (int i = 0; i < B * H * V; i++) ck_assert(o[i] == SENTINEL);
        ck_assert(!memcmp(st, st0, sizeof st));
    }
    linattn_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_context_bad)
{
    linattn_ctx *ctx = NULL;
    linattn_config cfg;
    ck_assert_int_eq(linattn_ctx_create(NULL, NULL), LINATTN_ENULL);
    linattn_config_init(&cfg);
    cfg.backend = (linattn_backend)42;
    ck_assert_int_eq(linattn_ctx_create(&cfg, &ctx), LINATTN_EINVAL);
    ck_assert_ptr_null(ctx);
    linattn_config_init(&cfg);
    cfg.threads = -1;
    ck_assert_int_eq(linattn_ctx_create(&cfg, &ctx), LINATTN_ERANGE);
    linattn_config_init(&cfg);
    cfg.isa = "bogus";
    ck_assert_int_eq(linattn_ctx_create(&cfg, &ctx), LINATTN_EINVAL);
#if defined(__x86_64__)
    cfg.isa = "neon";
#else
    cfg.isa = "avx2";
#endif
    ck_assert_int_eq(linattn_ctx_create(&cfg, &ctx), LINATTN_EUNSUPPORTED);
    ck_assert_ptr_null(ctx);
    linattn_ctx_destroy(NULL); /* harmless */
}
END_TEST

/* linattn_struct_size knows every struct the public header defines, by the
 * sizes this test was compiled with, and nothing else. */
START_TEST(test_struct_sizes)
{
    const char *dir = getenv("srcdir");
    char path[4096], line[512], name[128], brace;
    snprintf(path, sizeof path, "%s/lib/linattn.h", dir && *dir ? dir : ".");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "typedef struct %127[a-z_0-9] %c", name, &brace) == 2 && brace == '{') {
            ck_assert_msg(linattn_struct_size(name) > 0, "%s: unknown to linattn_struct_size", name);
            n++;
        }
    fclose(f);
    ck_assert_int_ge(n, 20);
    ck_assert_uint_eq(linattn_struct_size("linattn_tensor"), sizeof(linattn_tensor));
    ck_assert_uint_eq(linattn_struct_size("linattn_delta_io"), sizeof(linattn_delta_io));
    ck_assert_uint_eq(linattn_struct_size("linattn_op_args"), sizeof(linattn_op_args));
    ck_assert_uint_eq(linattn_struct_size("linattn_config"), sizeof(linattn_config));
    ck_assert_uint_eq(linattn_struct_size("linattn_ctx"), 0); /* opaque */
    ck_assert_uint_eq(linattn_struct_size("nonsense"), 0);
    ck_assert_uint_eq(linattn_struct_size(NULL), 0);
}
END_TEST

START_TEST(test_strerror)
{
    /* every code has its own name */
    for (int a = LINATTN_EINVAL; a <= LINATTN_OK; a++) {
        ck_assert_ptr_nonnull(strstr(linattn_strerror(a), "LINATTN_"));
        for (int b = LINATTN_EINVAL; b < a; b++)
            ck_assert_str_ne(linattn_strerror(a), linattn_strerror(b));
    }
    ck_assert_ptr_nonnull(strstr(linattn_strerror(-999), "unknown"));
    ck_assert_int_eq(linattn_version(), LINATTN_VERSION_MAJOR * 10000 +
                                            LINATTN_VERSION_MINOR * 100 + LINATTN_VERSION_PATCH);
    ck_assert_ptr_nonnull(linattn_version_string());
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("args");
    TCase *tc = tcase_create("args");
    /* test_forward_bad creates OpenCL contexts: the first program build is
     * slow on a loaded machine */
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_forward_bad, 0, 3 * NFORWARD);
    tcase_add_test(tc, test_beta_rules);
    tcase_add_test(tc, test_step_bad);
    tcase_add_test(tc, test_context_bad);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_struct_sizes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_main(suite()); }
