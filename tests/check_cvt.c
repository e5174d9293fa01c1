/* linattn tests - the conversion slots of the kernel table (f16 and bf16
 * to float32 and back) of every ISA this build and CPU have, against the
 * scalar code of lib/half.c, bit for bit (NaN payloads included: the
 * vector code hands groups holding a NaN to the scalar code):
 *   - all 65536 patterns of each type to float32, and back (each one
 *     round-trips exactly);
 *   - float32 to each type: every rounding edge (each finite half value,
 *     the midpoints to its neighbours and a float32 step either side),
 *     overflow, subnormals, Inf and NaN scattered among ordinary values,
 *     and random float32 patterns;
 *   - odd lengths and offsets (the tails), elements past n untouched;
 *   - linattn_convert (the ISA chosen once for the process) likewise.
 * It reaches the kernel table, so it links the library's internal copy. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "testutil.h"

#define NPAT 65536
#define POISON16 0xa5a5u

static const char *isa_names[8];
static int n_isas;

typedef struct cvt {
    linattn_cvt_in_fn in;
    linattn_cvt_out_fn out;
    linattn_cvt_in_fn ref_in;
    linattn_cvt_out_fn ref_out;
    const char *isa, *name;
} cvt;

/* loop index i: ISA i / 2, f16 (even) or bf16 (odd) */
static cvt cvt_of(int i)
{
    linattn_kernels k;
    ck_assert_int_eq(linattn_kernels_select(&k, isa_names[i / 2]), 0);
    ck_assert_str_eq(k.isa, isa_names[i / 2]);
    const int bf = i % 2;
    return (cvt){bf ? k.bf16_in : k.f16_in, bf ? k.bf16_out : k.f16_out,
                 bf ? linattn_bf16_in_scalar : linattn_f16_in_scalar,
                 bf ? linattn_bf16_out_scalar : linattn_f16_out_scalar, isa_names[i / 2],
                 bf ? "bf16" : "f16"};
}

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

static uint16_t *alloc16(size_t n)
{
    uint16_t *p = malloc(n * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++) p[i] = POISON16;
    return p;
}

/* float32 x[0..n) to the type with c.out and the scalar code: same bits */
static void check_out(const cvt *c, const float *x, size_t n)
{
    uint16_t *got = alloc16(n), *want = alloc16(n);
    c->out(x, got, n);
    c->ref_out(x, want, n);
    size_t i = 0; /* the first difference (one assertion: Check logs each one) */
    while (i < n && got[i] == want[i]) i++;
    if (i < n)
        ck_abort_msg("%s %s out(%08x) at %zu: %04x, want %04x", c->isa, c->name, bits(x[i]), i,
                     got[i], want[i]);
    free(got);
    free(want);
}

START_TEST(test_patterns)
{
    const cvt c = cvt_of(_i);
    /* one element in, so that the vectors start unaligned */
    uint16_t *h = alloc16(NPAT + 1), *back = alloc16(NPAT + 1);
    float *f = tu_alloc(NPAT + 1), *want = tu_alloc(NPAT + 1);
    for (uint32_t i = 0; i < NPAT; i++) h[i + 1] = (uint16_t)i;
    tu_poison(f, NPAT + 1);
    tu_poison(want, NPAT + 1);
    c.in(h + 1, f + 1, NPAT);
    c.ref_in(h + 1, want + 1, NPAT);
    uint32_t i = 0;
    while (i < NPAT && bits(f[i + 1]) == bits(want[i + 1])) i++;
    if (i < NPAT)
        ck_abort_msg("%s %s in(%04x): %08x, want %08x", c.isa, c.name, i, bits(f[i + 1]),
                     bits(want[i + 1]));
    ck_assert(isnan(f[0]));
    c.out(f + 1, back + 1, NPAT);
    for (i = 0; i < NPAT && back[i + 1] == i;) i++;
    if (i < NPAT) ck_abort_msg("%s %s: %04x comes back as %04x", c.isa, c.name, i, back[i + 1]);
    ck_assert_uint_eq(back[0], POISON16);
    free(h);
    free(back);
    free(f);
    free(want);
}
END_TEST

START_TEST(test_rounding)
{
    const cvt c = cvt_of(_i);
    const uint32_t inf = _i % 2 ? 0x7f80u : 0x7c00u;
    /* every finite non-negative half value v, its midpoint m to the next, and
     * a float32 step either side of m and above v; both signs */
    const size_t n = (size_t)inf * 10;
    float *x = tu_alloc(n);
    uint16_t h[2];
    float v[2];
    for (uint32_t i = 0; i < inf; i++) {
        h[0] = (uint16_t)i;
        h[1] = (uint16_t)(i + 1);
        c.ref_in(h, v, 2);
        const float mid = (float)(((double)v[0] + v[1]) / 2); /* exact */
        const float p[5] = {v[0], mid, nextafterf(mid, 0), nextafterf(mid, INFINITY),
                            nextafterf(v[0], INFINITY)};
        for (int j = 0; j < 5; j++) {
            x[i * 10 + (size_t)j] = p[j];
            x[i * 10 + 5 + (size_t)j] = -p[j];
        }
    }
    check_out(&c, x, n);
    free(x);
}
END_TEST

START_TEST(test_edges_random)
{
    const cvt c = cvt_of(_i);
    static const uint32_t edge[] = {
        0x7f800000u, 0xff800000u, 0x7f7fffffu, 0xff7fffffu, 0x477ff000u, 0x477fefffu,
        0x477fe000u, 0x47800000u, 0x7f7f8000u, 0x7f7f7fffu, 0x7f7f8001u, 0x00000000u,
        0x80000000u, 0x33800000u, 0x33000000u, 0x33000001u, 0x32ffffffu, 0x33c00000u,
        0x38800000u, 0x387fffffu, 0x38000000u, 0x00000001u, 0x80000001u, 0x00800000u,
        0x007fffffu, 0x00400000u, 0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u,
        0x7fbfffffu, 0x7f802000u, 0x7fffffffu, 0xffffffffu, 0x7f804000u, 0x7f810000u,
        0x3f808000u, 0x3f818000u, 0x3f801000u, 0x3f803000u, 0x3f800fffu, 0x3f801001u};
    const size_t ne = sizeof edge / sizeof *edge, n = 1u << 20;
    float *x = tu_alloc(n);
    /* the edges alone, then random patterns and ordinary values with an
     * edge every ~20 elements (NaN inside otherwise ordinary groups) */
    for (size_t i = 0; i < ne; i++) x[i] = flt(edge[i]);
    check_out(&c, x, ne);
    for (size_t i = 0; i < n; i++) {
        const double u = tu_uniform(0, 1);
        if (u < 0.05) x[i] = flt(edge[(size_t)tu_uniform(0, (double)ne) % ne]);
        else if (u < 0.5) x[i] = flt((uint32_t)tu_uniform(0, 4294967296.0));
        else x[i] = (float)tu_uniform(-70000, 70000) * (float)pow(2, -(int)tu_uniform(0, 40));
    }
    check_out(&c, x, n);
    free(x);
}
END_TEST

START_TEST(test_tails)
{
    const cvt c = cvt_of(_i);
    enum { MAXN = 70, OFF = 4 };
    uint16_t src[MAXN + OFF];
    float x[MAXN + OFF + 1], want[MAXN + OFF + 1];
    for (size_t off = 0; off < OFF; off++)
        for (size_t n = 0; n <= MAXN; n++) {
            for (size_t i = 0; i < MAXN + OFF; i++)
                src[i] = (uint16_t)tu_uniform(0, 65536); /* NaN now and then */
            tu_poison(x, MAXN + OFF + 1);
            tu_poison(want, MAXN + OFF + 1);
            c.in(src + off, x + off, n);
            c.ref_in(src + off, want + off, n);
            ck_assert_int_eq(memcmp(x, want, sizeof x), 0); /* poison around kept */
            uint16_t got[MAXN + OFF + 1], ref[MAXN + OFF + 1];
            for (size_t i = 0; i < MAXN + OFF + 1; i++) got[i] = ref[i] = POISON16;
            c.out(x + off, got + off, n);
            c.ref_out(x + off, ref + off, n);
            ck_assert_int_eq(memcmp(got, ref, sizeof got), 0);
            ck_assert_int_eq(memcmp(got + off, src + off, n * 2), 0);
        }
}
END_TEST

/* linattn_convert (whichever ISA it chose) equals the scalar code */
START_TEST(test_convert)
{
    const int bf = _i;
    const linattn_dtype d = bf ? LINATTN_BF16 : LINATTN_F16;
    const size_t n = NPAT + 37;
    uint16_t *h = alloc16(n), *got = alloc16(n), *want = alloc16(n);
    float *f = tu_alloc(n), *fw = tu_alloc(n);
    for (size_t i = 0; i < n; i++) h[i] = (uint16_t)(i * 40503u);
    tu_poison(f, n);
    ck_assert_int_eq(linattn_convert(h, d, f, LINATTN_F32, n), 0);
    (bf ? linattn_bf16_in_scalar : linattn_f16_in_scalar)(h, fw, n);
    ck_assert_int_eq(memcmp(f, fw, n * sizeof *f), 0);
    for (size_t i = 0; i < n; i++) f[i] = flt((uint32_t)tu_uniform(0, 4294967296.0));
    ck_assert_int_eq(linattn_convert(f, LINATTN_F32, got, d, n), 0);
    (bf ? linattn_bf16_out_scalar : linattn_f16_out_scalar)(f, want, n);
    ck_assert_int_eq(memcmp(got, want, n * sizeof *got), 0);
    free(h);
    free(got);
    free(want);
    free(f);
    free(fw);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cvt");
    TCase *tc = tcase_create("conversions");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_patterns, 0, 2 * n_isas);
    tcase_add_loop_test(tc, test_rounding, 0, 2 * n_isas);
    tcase_add_loop_test(tc, test_edges_random, 0, 2 * n_isas);
    tcase_add_loop_test(tc, test_tails, 0, 2 * n_isas);
    tcase_add_loop_test(tc, test_convert, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    static char buf[256]; /* the compiled ISAs this CPU runs (not OpenCL: no runtime here) */
    snprintf(buf, sizeof buf, "%s", linattn_isa_compiled());
    for (char *t = strtok(buf, " "); t && n_isas < 8; t = strtok(NULL, " "))
        if (linattn_isa_usable(t)) isa_names[n_isas++] = t;
    printf("check_cvt: conversions of ISAs:");
    for (int i = 0; i < n_isas; i++) printf(" %s", isa_names[i]);
    printf(" (of: %s)\n", linattn_isa_compiled());
    return tu_main(suite());
}
