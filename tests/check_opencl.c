/* linattn tests - the OpenCL backend's own contract: device selection,
 * missing runtime, buffers (device-resident tensors) on every backend,
 * the program cache on disk, the device limits.  (Operator results on
 * OpenCL are compared with the reference in check_delta and check_args.) */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"

static linattn_ctx *ctx_dev(linattn_backend be, const char *device, int *rc)
{
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.backend = be;
    cfg.device = device;
    *rc = linattn_ctx_create(&cfg, &ctx);
    return ctx;
}

/* ---- device selection ---------------------------------------------------- */

START_TEST(test_device_spec_errors)
{
    int rc;
    static const char *const bad[] = {"gpu", "opencl1", "opencl:", "opencl:x", "opencl:1",
                                      "opencl:0.0x", "cpu0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        linattn_ctx *c = ctx_dev(LINATTN_BACKEND_AUTO, bad[i], &rc);
        ck_assert_ptr_null(c);
        /* malformed: EINVAL; "opencl:1"-like names with no device: ENODEV when
         * no runtime is there to say more */
        ck_assert_msg(rc == LINATTN_EINVAL || rc == LINATTN_ENODEV, "%s: %d (%s)", bad[i], rc,
                      linattn_last_error());
        ck_assert_msg(strstr(linattn_last_error(), bad[i]) || rc == LINATTN_ENODEV,
                      "message '%s' does not name '%s'", linattn_last_error(), bad[i]);
    }
    ck_assert_ptr_null(ctx_dev(LINATTN_BACKEND_AUTO, "opencl:99.0", &rc));
    ck_assert_int_eq(rc, LINATTN_ENODEV);
    ck_assert_ptr_null(ctx_dev(LINATTN_BACKEND_OPENCL, "cpu", &rc));
    ck_assert_int_eq(rc, LINATTN_EINVAL);
    /* cpu is always honoured */
    linattn_ctx *c = ctx_dev(LINATTN_BACKEND_AUTO, "cpu", &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(linattn_ctx_backend(c), LINATTN_BACKEND_CPU);
    ck_assert_str_eq(linattn_ctx_device(c), "cpu");
    linattn_ctx_destroy(c);
}
END_TEST

/* auto picks an OpenCL GPU/accelerator when one is usable, else the CPU;
 * a CPU-type OpenCL device (PoCL) is never chosen by auto. */
START_TEST(test_auto_choice)
{
    linattn_device_info d[32];
    int n = 0, gpu = 0, rc;
    unsetenv("LINATTN_DEVICE");
    unsetenv("LINATTN_ISA");
    if (linattn_opencl_devices(d, 32, &n) == LINATTN_OK)
        for (int i = 0; i < n && i < 32; i++) {
            ck_assert_msg(d[i].name[0] != '\0', "device %d.%d has no name", d[i].platform,
                          d[i].device);
            ck_assert(d[i].usable || d[i].note[0]);
            gpu |= d[i].usable && d[i].is_gpu;
        }
    linattn_ctx *c = ctx_dev(LINATTN_BACKEND_AUTO, NULL, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(linattn_ctx_backend(c), gpu ? LINATTN_BACKEND_OPENCL : LINATTN_BACKEND_CPU);
    linattn_ctx_destroy(c);
    if (tu_opencl()) {
        /* every listed usable device can be opened by its P.D name */
        for (int i = 0; i < n && i < 32; i++) {
            if (!d[i].usable) continue;
            char spec[32];
            snprintf(spec, sizeof spec, "opencl:%d.%d", d[i].platform, d[i].device);
            c = ctx_dev(LINATTN_BACKEND_AUTO, spec, &rc);
            ck_assert_msg(rc == 0, "%s: %s", spec, linattn_last_error());
            ck_assert(strstr(linattn_ctx_device(c), spec) == linattn_ctx_device(c));
            linattn_ctx_destroy(c);
        }
    }
}
END_TEST

/* No OpenCL runtime: auto runs on the CPU, forcing OpenCL is ENODEV.  The
 * runtime is looked up once per process, so this runs in a child.  With
 * CK_FORK=no (qemu-user, which cannot fork here) it runs in this process,
 * which must then have found no runtime (else the test fails: it cannot
 * unload one). */
static void missing_runtime_checks(void)
{
    setenv("LINATTN_OPENCL_LIB", "/nonexistent/libOpenCL.so.1", 1);
    unsetenv("LINATTN_DEVICE");
    int rc, n = -1;
    linattn_ctx *c = ctx_dev(LINATTN_BACKEND_AUTO, NULL, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(linattn_ctx_backend(c), LINATTN_BACKEND_CPU);
    linattn_ctx_destroy(c);
    ck_assert_ptr_null(ctx_dev(LINATTN_BACKEND_OPENCL, NULL, &rc));
    ck_assert_int_eq(rc, LINATTN_ENODEV);
    ck_assert_ptr_null(ctx_dev(LINATTN_BACKEND_AUTO, "opencl", &rc));
    ck_assert_int_eq(rc, LINATTN_ENODEV);
    ck_assert_int_eq(linattn_opencl_devices(NULL, 0, &n), LINATTN_ENODEV);
    ck_assert_int_eq(n, 0);
}

START_TEST(test_missing_runtime)
{
    const char *nofork = getenv("CK_FORK");
    if (nofork && !strcmp(nofork, "no")) {
        int n;
        ck_assert_msg(linattn_opencl_devices(NULL, 0, &n) == LINATTN_ENODEV, "CK_FORK=no in a "
                      "process that found an OpenCL runtime: run this suite with forking to "
                      "test a missing runtime");
        missing_runtime_checks();
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("LINATTN_OPENCL_LIB", "/nonexistent/libOpenCL.so.1", 1);
        unsetenv("LINATTN_DEVICE");
        int rc, bad = 0, n = -1;
        linattn_ctx *c = ctx_dev(LINATTN_BACKEND_AUTO, NULL, &rc);
        if (rc || linattn_ctx_backend(c) != LINATTN_BACKEND_CPU) bad |= 1;
        linattn_ctx_destroy(c);
        if (ctx_dev(LINATTN_BACKEND_OPENCL, NULL, &rc) || rc != LINATTN_ENODEV) bad |= 2;
        if (linattn_opencl_built() && !strstr(linattn_last_error(), "/nonexistent")) bad |= 4;
        if (ctx_dev(LINATTN_BACKEND_AUTO, "opencl", &rc) || rc != LINATTN_ENODEV) bad |= 8;
        if (linattn_opencl_devices(NULL, 0, &n) != LINATTN_ENODEV || n != 0) bad |= 16;
        /* auto runs an operator on the CPU: a gla forward of one token */
        c = ctx_dev(LINATTN_BACKEND_AUTO, NULL, &rc);
        float q[16] = {1}, k[16] = {1}, v[16] = {2}, o[16];
        for (int i = 0; i < 16; i++) o[i] = -1;
        linattn_delta_io io = {0};
        io.q = linattn_tensor_4d(q, 1, 1, 1, 16);
        io.k = linattn_tensor_4d(k, 1, 1, 1, 16);
        io.v = linattn_tensor_4d(v, 1, 1, 1, 16);
        io.o = linattn_tensor_4d(o, 1, 1, 1, 16);
        if (rc || linattn_gla_forward(c, &io, NULL) || o[0] != 0.5f || o[1] != 0) bad |= 32;
        linattn_ctx_destroy(c);
        if (bad) fprintf(stderr, "missing runtime: failures %#x (%s)\n", bad, linattn_last_error());
        fflush(NULL);
        _exit(bad);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}
END_TEST

/* ---- buffers --------------------------------------------------------------- */

/* Contexts to try: the CPU one, and OpenCL when usable. */
static int contexts(linattn_ctx **c)
{
    int n = 0;
    c[n++] = tu_ctx("scalar", 2);
    if (tu_opencl()) c[n++] = tu_ctx("opencl", 1);
    return n;
}

START_TEST(test_buffer_io)
{
    linattn_ctx *ctxs[2];
    const int nc = contexts(ctxs);
    for (int i = 0; i < nc; i++) {
        linattn_buffer *b = NULL;
        const size_t n = 1000;
        float *x = tu_alloc(n), *y = tu_alloc(n);
        ck_assert_int_eq(linattn_buffer_create(ctxs[i], 0, &b), LINATTN_ESIZE);
        ck_assert_ptr_null(b);
        ck_assert_int_eq(linattn_buffer_create(NULL, n, &b), LINATTN_ENULL);
        ck_assert_int_eq(linattn_buffer_create(ctxs[i], n, NULL), LINATTN_ENULL);
        ck_assert_int_eq(linattn_buffer_create(ctxs[i], SIZE_MAX / 2, &b), LINATTN_EOVERFLOW);
        ck_assert_int_eq(linattn_buffer_create(ctxs[i], n, &b), 0);
        ck_assert_uint_eq(linattn_buffer_count(b), n);
        tu_poison(y, n);
        ck_assert_int_eq(linattn_buffer_read(b, 0, y, n), 0);
        for (size_t j = 0; j < n; j++) ck_assert_msg(y[j] == 0.0f, "new buffer not zero at %zu", j);
        tu_fill(x, n, -1, 1);
        ck_assert_int_eq(linattn_buffer_write(b, 0, x, n), 0);
        ck_assert_int_eq(linattn_buffer_write(b, 10, x, 5), 0); /* x[0..5) at 10 */
        tu_poison(y, n);
        ck_assert_int_eq(linattn_buffer_read(b, 0, y, n), 0);
        for (size_t j = 0; j < n; j++) {
            const float want = j >= 10 && j < 15 ? x[j - 10] : x[j];
            ck_assert_msg(y[j] == want, "ctx %d: float %zu is %g, want %g", i, j, y[j], want);
        }
        ck_assert_int_eq(linattn_buffer_read(b, 990, y, 11), LINATTN_ERANGE);
        ck_assert_int_eq(linattn_buffer_write(b, 1001, x, 0), LINATTN_ERANGE);
        ck_assert_int_eq(linattn_buffer_read(b, SIZE_MAX, y, 2), LINATTN_ERANGE);
        ck_assert_int_eq(linattn_buffer_read(b, 0, NULL, 1), LINATTN_ENULL);
        ck_assert_int_eq(linattn_buffer_write(NULL, 0, x, 1), LINATTN_ENULL);
        ck_assert_int_eq(linattn_buffer_read(b, 1000, y, 0), 0);
        linattn_buffer_destroy(b);
        linattn_buffer_destroy(NULL);
        free(x);
        free(y);
        linattn_ctx_destroy(ctxs[i]);
    }
}
END_TEST

/* Copy a tensor's data into a new buffer of ctx and point the tensor at it. */
static linattn_buffer *to_buf(linattn_ctx *ctx, linattn_tensor *t)
{
    if (!t->data) return NULL;
    size_t n = 1;
    linattn_buffer *b = NULL;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    ck_assert_int_eq(linattn_buffer_create(ctx, n, &b), 0);
    ck_assert_int_eq(linattn_buffer_write(b, 0, t->data, n), 0);
    *t = linattn_tensor_buffer(b, t->ndim, t->shape);
    return b;
}

static void from_buf(linattn_buffer *b, float *dst, size_t n)
{
    ck_assert_int_eq(linattn_buffer_read(b, 0, dst, n), 0);
}

/* Forward with every tensor in a buffer equals forward on host tensors, bit
 * for bit, for each op and context. */
START_TEST(test_forward_buffers)
{
    const int op = _i;
    linattn_ctx *ctxs[2];
    const int nc = contexts(ctxs);
    for (int i = 0; i < nc; i++) {
        tu_delta p;
        tu_delta_make(&p, op, 2, 70, 2, 32, 48, 1, -0.5);
        if (op == 2) { free(p.beta); p.beta = NULL; }
        const size_t no = 2 * 70 * 2 * 48, ns = 2 * 2 * 32 * 48;
        float *o2 = tu_alloc(no), *h2 = tu_alloc(ns);
        linattn_delta_io io = tu_delta_io(&p, p.o, p.ht);
        if (op == 2) io.beta = linattn_tensor_none();
        ck_assert_int_eq(tu_delta_run(op, ctxs[i], &io, NULL), 0);
        linattn_delta_io jo = tu_delta_io(&p, o2, h2);
        if (op == 2) jo.beta = linattn_tensor_none();
        tu_poison(o2, no);
        tu_poison(h2, ns);
        linattn_tensor *ts[] = {&jo.q, &jo.k, &jo.v, &jo.g, &jo.beta, &jo.h0, &jo.o, &jo.hT};
        linattn_buffer *bs[8];
        for (int t = 0; t < 8; t++) bs[t] = to_buf(ctxs[i], ts[t]);
        ck_assert_int_eq(tu_delta_run(op, ctxs[i], &jo, NULL), 0);
        from_buf(bs[6], o2, no);
        from_buf(bs[7], h2, ns);
        ck_assert_msg(!memcmp(o2, p.o, no * sizeof(float)), "op %d ctx %d: o differs", op, i);
        ck_assert_msg(!memcmp(h2, p.ht, ns * sizeof(float)), "op %d ctx %d: ht differs", op, i);
        /* h0 and ht may be one buffer: the state advances in place */
        jo.hT = jo.h0;
        ck_assert_int_eq(tu_delta_run(op, ctxs[i], &jo, NULL), 0);
        from_buf(bs[5], h2, ns);
        ck_assert_msg(!memcmp(h2, p.ht, ns * sizeof(float)), "op %d ctx %d: in-place ht", op, i);
        for (int t = 0; t < 8; t++) linattn_buffer_destroy(bs[t]);
        free(o2);
        free(h2);
        tu_delta_free(&p);
        linattn_ctx_destroy(ctxs[i]);
    }
}
END_TEST

/* A decode loop with the state resident in a buffer equals the same loop
 * on a host state, bit for bit. */
START_TEST(test_step_state_buffer)
{
    const int op = _i;
    const int64_t B = 3, H = 2, K = 40, V = 24, steps = 6;
    linattn_ctx *ctxs[2];
    const int nc = contexts(ctxs);
    for (int i = 0; i < nc; i++) {
        const size_t nk = B * H * K, nv = B * H * V, ng = B * H, ns = B * H * K * V;
        float *q = tu_alloc(nk), *k = tu_alloc(nk), *v = tu_alloc(nv), *g = tu_alloc(ng);
        float *be = tu_alloc(ng), *o1 = tu_alloc(nv), *o2 = tu_alloc(nv);
        float *s1 = tu_alloc(ns), *s2 = tu_alloc(ns);
        tu_fill(s1, ns, -0.5, 0.5);
        memcpy(s2, s1, ns * sizeof(float));
        linattn_buffer *sb = NULL;
        ck_assert_int_eq(linattn_buffer_create(ctxs[i], ns, &sb), 0);
        ck_assert_int_eq(linattn_buffer_write(sb, 0, s2, ns), 0);
        for (int t = 0; t < steps; t++) {
            tu_fill(q, nk, -1, 1);
            tu_fill(k, nk, -1, 1);
            tu_l2norm_rows(q, B * H, (int)K);
            tu_l2norm_rows(k, B * H, (int)K);
            tu_fill(v, nv, -1, 1);
            tu_fill(g, ng, -0.5, 0);
            tu_fill(be, ng, 0.05, 1);
            linattn_delta_step_io io = {
                .q = linattn_tensor_3d(q, B, H, K), .k = linattn_tensor_3d(k, B, H, K),
                .v = linattn_tensor_3d(v, B, H, V), .g = linattn_tensor_2d(g, B, H),
                .beta = op == 2 ? linattn_tensor_none() : linattn_tensor_2d(be, B, H),
                .state_h = linattn_tensor_4d(s1, B, H, K, V), .o = linattn_tensor_3d(o1, B, H, V)};
            tu_poison(o1, nv);
            ck_assert_int_eq(tu_delta_step(op, ctxs[i], &io, NULL), 0);
            io.state_h = linattn_tensor_buffer(sb, 4, (int64_t[]){B, H, K, V});
            io.o.data = o2;
            tu_poison(o2, nv);
            ck_assert_int_eq(tu_delta_step(op, ctxs[i], &io, NULL), 0);
            ck_assert_msg(!memcmp(o1, o2, nv * sizeof(float)), "op %d ctx %d step %d: o differs",
                          op, i, t);
        }
        from_buf(sb, s2, ns);
        ck_assert_msg(!memcmp(s1, s2, ns * sizeof(float)), "op %d ctx %d: state differs", op, i);
        linattn_buffer_destroy(sb);
        free(q); free(k); free(v); free(g); free(be); free(o1); free(o2); free(s1); free(s2);
        linattn_ctx_destroy(ctxs[i]);
    }
}
END_TEST

/* Buffers in the wrong place are refused before anything is written. */
START_TEST(test_buffer_misuse)
{
    linattn_ctx *ctxs[2];
    const int nc = contexts(ctxs);
    linattn_ctx *other = tu_ctx("scalar", 1);
    for (int i = 0; i < nc; i++) {
        tu_delta p;
        tu_delta_make(&p, 0, 1, 10, 2, 16, 16, 0, -0.5);
        linattn_delta_io io = tu_delta_io(&p, p.o, NULL);
        linattn_buffer *foreign = NULL, *small = NULL;
        ck_assert_int_eq(linattn_buffer_create(other, 1 * 10 * 2 * 16, &foreign), 0);
        ck_assert_int_eq(linattn_buffer_create(ctxs[i], 1 * 10 * 2 * 16 - 1, &small), 0);
        linattn_delta_io j = io;
        j.k = linattn_tensor_buffer(foreign, 4, io.k.shape);
        ck_assert_int_eq(tu_delta_run(0, ctxs[i], &j, NULL), LINATTN_EINVAL);
        ck_assert_ptr_nonnull(strstr(linattn_last_error(), "k:"));
        j = io;
        j.v = linattn_tensor_buffer(small, 4, io.v.shape);
        ck_assert_int_eq(tu_delta_run(0, ctxs[i], &j, NULL), LINATTN_ESHAPE);
        ck_assert_ptr_nonnull(strstr(linattn_last_error(), "v:"));
        j = io;
        j.q.buf = small;
        ck_assert_int_eq(tu_delta_run(0, ctxs[i], &j, NULL), LINATTN_EINVAL);
        ck_assert_ptr_nonnull(strstr(linattn_last_error(), "q:"));
        for (size_t t = 0; t < 10 * 2 * 16; t++) ck_assert_msg(p.o[t] != p.o[t], "o written");
        linattn_buffer_destroy(foreign);
        linattn_buffer_destroy(small);
        tu_delta_free(&p);
        linattn_ctx_destroy(ctxs[i]);
    }
    linattn_ctx_destroy(other);
}
END_TEST

/* ---- program cache, limits -------------------------------------------------- */

static int count_cache_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".clbin")) n++;
    closedir(d);
    return n;
}

START_TEST(test_program_cache)
{
    if (!tu_opencl()) {
        /* OpenCL left out: no device, or LINATTN_DEVICE=cpu, which an OpenCL
         * context must refuse */
        int rc;
        const char *env = getenv("LINATTN_DEVICE");
        ck_assert_ptr_null(ctx_dev(LINATTN_BACKEND_OPENCL, NULL, &rc));
        ck_assert_int_eq(rc, env && !strcmp(env, "cpu") ? LINATTN_EINVAL : LINATTN_ENODEV);
        return;
    }
    char dir[] = "/tmp/linattn-clcache-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("LINATTN_CL_CACHE_DIR", dir, 1);
    tu_delta p;
    tu_delta_make(&p, 0, 1, 100, 2, 16, 32, 1, -0.5);
    const size_t no = 100 * 2 * 32;
    float *o[3];
    for (int round = 0; round < 3; round++) {
        o[round] = tu_alloc(no);
        tu_poison(o[round], no);
        if (round == 2) { /* a damaged cache entry is rebuilt, not trusted */
            DIR *d = opendir(dir);
            for (struct dirent *e; d && (e = readdir(d));)
                if (strstr(e->d_name, ".clbin")) {
                    char path[512];
                    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                    FILE *f = fopen(path, "wb");
                    ck_assert_ptr_nonnull(f);
                    fputs("not a program binary", f);
                    fclose(f);
                }
            if (d) closedir(d);
        }
        linattn_ctx *c = tu_ctx("opencl", 1);
        linattn_delta_io io = tu_delta_io(&p, o[round], NULL);
        ck_assert_int_eq(tu_delta_run(0, c, &io, NULL), 0);
        linattn_ctx_destroy(c);
        ck_assert_int_ge(count_cache_files(dir), 1);
        ck_assert_msg(!memcmp(o[round], o[0], no * sizeof(float)), "round %d differs", round);
    }
    unsetenv("LINATTN_CL_CACHE_DIR");
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.') remove(path);
    }
    if (d) closedir(d);
    rmdir(dir);
    for (int r = 0; r < 3; r++) free(o[r]);
    tu_delta_free(&p);
}
END_TEST

START_TEST(test_limits)
{
    double gf = -1, bw = -1;
    linattn_ctx *c = tu_ctx("scalar", 1);
    ck_assert_int_eq(linattn_opencl_limits(c, &gf, &bw), LINATTN_EUNSUPPORTED);
    ck_assert_int_eq(linattn_opencl_limits(NULL, &gf, &bw), LINATTN_ENULL);
    linattn_ctx_destroy(c);
    if (!tu_opencl()) return;
    c = tu_ctx("opencl", 1);
    ck_assert_int_eq(linattn_opencl_limits(c, NULL, &bw), LINATTN_ENULL);
    ck_assert_int_eq(linattn_opencl_limits(c, &gf, &bw), 0);
    ck_assert_msg(gf > 0.0 && gf < 1e7 && bw > 0.0 && bw < 1e6, "limits %g GFLOP/s %g GB/s", gf, bw);
    linattn_ctx_destroy(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("opencl");
    TCase *tc = tcase_create("opencl");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_device_spec_errors);
    tcase_add_test(tc, test_auto_choice);
    tcase_add_test(tc, test_missing_runtime);
    tcase_add_test(tc, test_buffer_io);
    tcase_add_loop_test(tc, test_forward_buffers, 0, 3);
    tcase_add_loop_test(tc, test_step_state_buffer, 0, 3);
    tcase_add_test(tc, test_buffer_misuse);
    tcase_add_test(tc, test_program_cache);
    tcase_add_test(tc, test_limits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
