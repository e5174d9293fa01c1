/* linattn tests - say what ran: linattn_ctx_last_form/_reason and the
 * verbose line name the form each call ran, forced or chosen by auto.
 * auto's choice is checked by its result: bit for bit the result of the
 * form it names, forced (each form is deterministic on one thread), and
 * not the other form's where the two differ. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"

/* Shape: large enough that auto measures the forms (T = 1024, H = 8). */
enum { B = 1, T = 1024, H = 8, K = 16, V = 16 };
#define NQ ((size_t)B * T * H * K)
#define NV ((size_t)B * T * H * V)

typedef struct data {
    float *q, *k, *v, *o;
} data;

static data make(void)
{
    data d = {tu_alloc(NQ), tu_alloc(NQ), tu_alloc(NV), tu_alloc(NV)};
    tu_fill(d.q, NQ, -1, 1);
    tu_fill(d.k, NQ, -1, 1);
    tu_fill(d.v, NV, -1, 1);
    return d;
}

static void drop(data *d)
{
    free(d->q);
    free(d->k);
    free(d->v);
    free(d->o);
}

/* op 0: ela, 1: gka; its output in d->o (poisoned first). */
static int run(linattn_ctx *ctx, int op, const data *d, linattn_algo algo)
{
    tu_poison(d->o, NV);
    if (op == 0) {
        linattn_ela_io io;
        memset(&io, 0, sizeof io);
        io.q = linattn_tensor_4d(d->q, B, T, H, K);
        io.k = linattn_tensor_4d(d->k, B, T, H, K);
        io.v = linattn_tensor_4d(d->v, B, T, H, V);
        io.o = linattn_tensor_4d(d->o, B, T, H, V);
        linattn_ela_opts o;
        linattn_ela_opts_init(&o);
        o.algo = algo;
        return linattn_ela_forward(ctx, &io, &o);
    }
    linattn_gka_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_4d(d->q, B, T, H, K);
    io.k = linattn_tensor_4d(d->k, B, T, H, K);
    io.v = linattn_tensor_4d(d->v, B, T, H, V);
    io.o = linattn_tensor_4d(d->o, B, T, H, V);
    linattn_gka_opts o;
    linattn_gka_opts_init(&o);
    o.algo = algo;
    o.iters = 4;
    return linattn_gka_forward(ctx, &io, &o);
}

static const char *const opname[] = {"ela", "gka"};

START_TEST(test_forced_and_auto)
{
    const int op = _i;
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    data d = make();
    float *out[2] = {tu_alloc(NV), tu_alloc(NV)};
    for (int i = 0; i < n; i++) {
        if (!strcmp(isas[i], "opencl")) continue; /* test_opencl_and_step */
        linattn_ctx *ctx = tu_ctx(isas[i], 1);
        ck_assert_str_eq(linattn_ctx_last_form(ctx), "");
        const linattn_algo forms[2] = {LINATTN_ALGO_RECURRENT, LINATTN_ALGO_CHUNK};
        static const char *const names[2] = {"recurrent", "chunk"};
        int have[2] = {0, 0};
        for (int f = 0; f < 2; f++) {
            const int rc = run(ctx, op, &d, forms[f]);
            if (rc == LINATTN_EUNSUPPORTED && f == 1) continue; /* gka's chunk form: no BLAS */
            ck_assert_msg(rc == 0, "%s %s: %s", opname[op], isas[i], linattn_last_error());
            ck_assert_str_eq(linattn_ctx_last_form(ctx), names[f]);
            ck_assert_str_eq(linattn_ctx_last_reason(ctx), "forced by opts.algo");
            memcpy(out[f], d.o, sizeof(float) * NV);
            have[f] = 1;
        }
        ck_assert_int_eq(run(ctx, op, &d, LINATTN_ALGO_AUTO), 0);
        const char *form = linattn_ctx_last_form(ctx), *why = linattn_ctx_last_reason(ctx);
        ck_assert_msg(!strncmp(why, "auto: ", 6), "%s %s: reason '%s'", opname[op], isas[i], why);
        const int f = !strcmp(form, "chunk");
        ck_assert_msg(f || !strcmp(form, "recurrent"), "form '%s'", form);
        ck_assert_msg(have[f], "%s %s: auto ran %s, which cannot be forced", opname[op], isas[i],
                      form);
        ck_assert_msg(!memcmp(d.o, out[f], sizeof(float) * NV),
                      "%s %s: auto said %s (%s) but its result is not that form's", opname[op],
                      isas[i], form, why);
        if (have[!f] && memcmp(out[0], out[1], sizeof(float) * NV))
            ck_assert_msg(memcmp(d.o, out[!f], sizeof(float) * NV), "matches both");
        /* a second call reuses the measurement: the same choice */
        ck_assert_int_eq(run(ctx, op, &d, LINATTN_ALGO_AUTO), 0);
        ck_assert_str_eq(linattn_ctx_last_form(ctx), form);
        linattn_ctx_destroy(ctx);
    }
    free(out[0]);
    free(out[1]);
    drop(&d);
}
END_TEST

/* Verbose mode: one line per call naming operator, backend, form and why. */
START_TEST(test_verbose_line)
{
    data d = make();
    char path[] = "/tmp/linattn-form-XXXXXX";
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    const int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fd, 2), 0);
    linattn_config cfg;
    linattn_config_init(&cfg);
    cfg.backend = LINATTN_BACKEND_CPU;
    cfg.threads = 1;
    cfg.verbose = 1;
    linattn_ctx *ctx = NULL;
    int rc = linattn_ctx_create(&cfg, &ctx);
    if (!rc) rc = run(ctx, 0, &d, LINATTN_ALGO_RECURRENT);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_int_eq(rc, 0);
    char buf[8192] = "";
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    const size_t got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = 0;
    fclose(f);
    close(fd);
    unlink(path);
    char want[128];
    snprintf(want, sizeof want,
             "linattn: ela forward ran on cpu (%s): recurrent, forced by opts.algo\n",
             linattn_ctx_isa(ctx));
    ck_assert_msg(strstr(buf, want), "verbose output lacks '%s':\n%s", want, buf);
    linattn_ctx_destroy(ctx);
    drop(&d);
}
END_TEST

/* What ran on OpenCL: ela's chunk form asked for runs (and says so), the
 * recurrence asked for runs; the step of every operator runs the recurrence. */
START_TEST(test_opencl_and_step)
{
    data d = make();
    if (tu_opencl()) {
        linattn_ctx *cl = tu_ctx("opencl", 1);
        ck_assert_int_eq(run(cl, 0, &d, LINATTN_ALGO_CHUNK), 0);
        ck_assert_str_eq(linattn_ctx_last_form(cl), "chunk");
        ck_assert_msg(strstr(linattn_ctx_last_reason(cl), "OpenCL"), "%s",
                      linattn_ctx_last_reason(cl));
        ck_assert_int_eq(run(cl, 0, &d, LINATTN_ALGO_RECURRENT), 0);
        ck_assert_str_eq(linattn_ctx_last_form(cl), "recurrent");
        linattn_ctx_destroy(cl);
    }
    linattn_ctx *ctx = tu_ctx("ref", 1);
    ck_assert_int_eq(run(ctx, 1, &d, LINATTN_ALGO_CHUNK), 0);
    ck_assert_str_eq(linattn_ctx_last_form(ctx), "reference");
    linattn_ctx_destroy(ctx);
    /* a failed call leaves the last form as it was */
    ctx = tu_ctx("scalar", 1);
    ck_assert_int_eq(run(ctx, 0, &d, LINATTN_ALGO_RECURRENT), 0);
    linattn_ela_opts o;
    linattn_ela_opts_init(&o);
    linattn_ela_io bad;
    memset(&bad, 0, sizeof bad);
    ck_assert_int_ne(linattn_ela_forward(ctx, &bad, &o), 0);
    ck_assert_str_eq(linattn_ctx_last_form(ctx), "recurrent");
    linattn_ctx_destroy(ctx);
    drop(&d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("form");
    TCase *tc = tcase_create("form");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_forced_and_auto, 0, 2);
    tcase_add_test(tc, test_verbose_line);
    tcase_add_test(tc, test_opencl_and_step);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
