/* linattn tests - the .npy reader and writer, and hostile files. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "fault.h"

/* Build a .npy image: version, header text (padded), payload of n floats. */
static size_t image(unsigned char *buf, int version, const char *hdr, size_t nfloat)
{
    size_t hl = strlen(hdr), off = version == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)version;
    buf[7] = 0;
    if (version == 1) { buf[8] = hl & 0xff; buf[9] = (hl >> 8) & 0xff; }
    else { buf[8] = hl & 0xff; buf[9] = (hl >> 8) & 0xff; buf[10] = 0; buf[11] = 0; }
    memcpy(buf + off, hdr, hl);
    for (size_t i = 0; i < nfloat; i++) {
        float x = (float)i * 0.5f;
        memcpy(buf + off + hl + 4 * i, &x, 4);
    }
    return off + hl + 4 * nfloat;
}

static unsigned char buf[1 << 16];

START_TEST(test_parse_valid)
{
    linattn_array a;
    size_t n = image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 6);
    ck_assert_int_eq(linattn_npy_parse(buf, n, &a), 0);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_int_eq(a.shape[0], 2);
    ck_assert_int_eq(a.shape[1], 3);
    ck_assert_uint_eq(a.count, 6);
    ck_assert(a.data[5] == 2.5f);
    linattn_array_free(&a);
    ck_assert_ptr_null(a.data);
    /* version 2, double quotes, 1-D tuple, keys in another order */
    n = image(buf, 2, "{\"shape\": (4,), \"fortran_order\": False, \"descr\": \"<f4\"}", 4);
    ck_assert_int_eq(linattn_npy_parse(buf, n, &a), 0);
    ck_assert_int_eq(a.ndim, 1);
    ck_assert_int_eq(a.shape[0], 4);
    linattn_array_free(&a);
    /* scalar */
    n = image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 1);
    ck_assert_int_eq(linattn_npy_parse(buf, n, &a), 0);
    ck_assert_int_eq(a.ndim, 0);
    ck_assert_uint_eq(a.count, 1);
    linattn_array_free(&a);
}
END_TEST

typedef struct bad_npy { int version; const char *hdr; size_t nfloat; } bad_npy;
static const bad_npy BAD[] = {
    {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 4},
    {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 2},
    {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 2},
    {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 2},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 2},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 2},
    {1, "{'descr': '<f4', 'fortran_order': False }", 0},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 2},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,2,2,2,2,2,2,2,2), }", 512},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 0},
    /* fuzz_npy contract: empty, but the other dimensions overflow size_t bytes */
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }", 0},
    {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4), }", 0},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) } trailing", 2},
    {1, "['descr', '<f4']", 0},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", 0},
    {1, "{'descr: '<f4'", 0},
    {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 2},
};

START_TEST(test_parse_bad)
{
    linattn_array a;
    const bad_npy *b = &BAD[_i];
    size_t n = image(buf, b->version, b->hdr, b->nfloat);
    if (b->version == 3) { /* version 3 is utf-8 and allowed: make it bad by version 4 */
        buf[6] = 4;
    }
    memset(&a, 0x55, sizeof a);
    ck_assert_msg(linattn_npy_parse(buf, n, &a) == LINATTN_EFORMAT, "case %d accepted: %s",
                  _i, b->hdr);
    ck_assert_ptr_null(a.data);
    ck_assert(strlen(linattn_last_error()) > 0);
}
END_TEST

START_TEST(test_truncations)
{
    /* every prefix of a valid file is rejected, never read past its end */
    const size_t n = image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 3);
    for (size_t len = 0; len < n; len++) {
        unsigned char *copy = malloc(len ? len : 1);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, buf, len);
        linattn_array a;
        ck_assert_int_eq(linattn_npy_parse(copy, len, &a), LINATTN_EFORMAT);
        free(copy);
    }
    linattn_array a;
    ck_assert_int_eq(linattn_npy_parse(NULL, 10, &a), LINATTN_ENULL);
    ck_assert_int_eq(linattn_npy_parse(buf, n, NULL), LINATTN_ENULL);
}
END_TEST

/* Inputs found by the fuzz target tests/fuzz/fuzz_npy.c (make fuzz), byte for
 * byte as it saved them, each with the code the parser must now return. */
typedef struct fuzz_case { const char *bytes; size_t len; int rc; } fuzz_case;
#define FUZZ_CASE(s, rc) {s, sizeof s - 1, rc}
static const fuzz_case FUZZ[] = {
    /* shape (0, 2^32, 2^32) with no payload was accepted with count 0: the
     * nonzero dimensions overflow size_t bytes (NumPy refuses such arrays) */
    FUZZ_CASE("\x93NUMPY\x01\x00\x76\x00"
              "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }"
              "                                     \n",
              LINATTN_EFORMAT),
};

START_TEST(test_fuzz_regressions)
{
    const fuzz_case *f = &FUZZ[_i];
    unsigned char *copy = malloc(f->len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, f->bytes, f->len);
    linattn_array a;
    memset(&a, 0x55, sizeof a);
    ck_assert_int_eq(linattn_npy_parse(copy, f->len, &a), f->rc);
    if (f->rc) {
        ck_assert_ptr_null(a.data);
        ck_assert_int_eq(a.ndim, 0);
    }
    linattn_array_free(&a);
    free(copy);
}
END_TEST

START_TEST(test_empty_arrays)
{
    /* empty arrays stay valid while their nonzero dimensions fit */
    static const char *const shapes[] = {"(0,)", "(3, 0, 1000)", "(0, 1048576, 1048576)"};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        char hdr[128];
        snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s}",
                 shapes[i]);
        const size_t n = image(buf, 1, hdr, 0);
        linattn_array a;
        ck_assert_msg(linattn_npy_parse(buf, n, &a) == 0, "%s: %s", shapes[i],
                      linattn_last_error());
        ck_assert_uint_eq(a.count, 0);
        ck_assert_ptr_nonnull(a.data);
        linattn_array_free(&a);
    }
}
END_TEST

START_TEST(test_roundtrip)
{
    char path[] = "/tmp/linattn-npy-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    for (int ndim = 0; ndim <= 4; ndim++) {
        int64_t shape[4] = {3, 1, 5, 2};
        size_t count = 1;
        for (int d = 0; d < ndim; d++) count *= (size_t)shape[d];
        float *x = tu_alloc(count);
        tu_fill(x, count, -1e3, 1e3);
        ck_assert_int_eq(linattn_npy_save(path, x, ndim, shape), 0);
        linattn_array a;
        ck_assert_int_eq(linattn_npy_load(path, &a), 0);
        ck_assert_int_eq(a.ndim, ndim);
        for (int d = 0; d < ndim; d++) ck_assert_int_eq(a.shape[d], shape[d]);
        ck_assert(!memcmp(a.data, x, sizeof(float) * count));
        linattn_tensor t;
        ck_assert_int_eq(linattn_array_tensor(&a, &t), 0);
        ck_assert_int_eq(t.ndim, ndim);
        linattn_array_free(&a);
        free(x);
    }
    /* the header is 64-byte aligned as numpy writes it */
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char pre[10];
    ck_assert_uint_eq(fread(pre, 1, 10, f), 10);
    fclose(f);
    ck_assert_int_eq((10 + pre[8] + 256 * pre[9]) % 64, 0);
    unlink(path);
    linattn_array a;
    ck_assert_int_eq(linattn_npy_load("/nonexistent/dir/x.npy", &a), LINATTN_EIO);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "/nonexistent/dir/x.npy"));
    float one = 1.0f;
    ck_assert_int_eq(linattn_npy_save("/nonexistent/dir/x.npy", &one, 0, NULL), LINATTN_EIO);
    int64_t neg = -1;
    ck_assert_int_eq(linattn_npy_save("/tmp/x.npy", &one, 1, &neg), LINATTN_ESIZE);
}
END_TEST

/* A file of a version 1.0 header for shape, then payload bytes of zeros
 * (written sparse: only the header is written, the size set by ftruncate);
 * 0, or -1 if the file system cannot hold a file that large. */
static int write_claim(const char *path, const char *shape, long long payload)
{
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    const size_t n = image(buf, 1, hdr, 0);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    int rc = fflush(f) || ftruncate(fileno(f), (off_t)(n + payload)) ? -1 : 0;
    ck_assert_int_eq(fclose(f), 0);
    return rc;
}

/* Load under a fault setting, which is switched off again. */
static int load_with_fault(const char *spec, const char *path, linattn_array *a)
{
    ck_assert_int_eq(linattn_test_fault_set(spec), LINATTN_OK);
    const int rc = linattn_npy_load(path, a);
    linattn_test_fault_set(NULL);
    return rc;
}

static void assert_error_has(const char *what)
{
    ck_assert_msg(strstr(linattn_last_error(), what), "'%s' not in '%s'", what,
                  linattn_last_error());
}

START_TEST(test_load_checks_size_first)
{
    /* The header is checked against the file's size before anything is read
     * or allocated for the payload: with one allocation allowed (the
     * header's), a 1 MiB payload where the shape needs 8 bytes, and a shape
     * that needs 4 GiB with 16 bytes there, are EFORMAT naming both sizes.
     * The loader used to read the whole file into a growing buffer first
     * (ENOMEM here; an 8 GiB file was read, then "out of memory"). */
    char path[] = "/tmp/linattn-npy-XXXXXX";
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    linattn_array a;
    ck_assert_int_eq(write_claim(path, "(2,)", 1 << 20), 0);
    ck_assert_int_eq(load_with_fault("malloc:2+", path, &a), LINATTN_EFORMAT);
    assert_error_has(path);
    assert_error_has("payload is 1048576 bytes, shape needs 8");
    ck_assert_ptr_null(a.data);
    ck_assert_int_eq(write_claim(path, "(1024, 1024, 1024)", 16), 0);
    ck_assert_int_eq(load_with_fault("malloc:2+", path, &a), LINATTN_EFORMAT);
    assert_error_has("payload is 16 bytes, shape needs 4294967296");
    ck_assert_int_eq(a.ndim, 0);
    /* a header longer than the file */
    const size_t n = image(buf, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 1);
    buf[9] = 0x01; /* header length 256 + 58: longer than the file */
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(load_with_fault("malloc:1+", path, &a), LINATTN_EFORMAT);
    buf[9] = 0;
    buf[10] = 0x01; /* header length 65536 + 58: over the limit */
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(load_with_fault("malloc:1+", path, &a), LINATTN_EFORMAT);
    unlink(path);
    /* not a regular file */
    ck_assert_int_eq(linattn_npy_load("/tmp", &a), LINATTN_EIO);
    assert_error_has("/tmp: ");
}
END_TEST

START_TEST(test_load_enomem_names_bytes)
{
    /* When the array cannot be allocated, the message names the bytes it
     * needs, the shape and the file (it used to say "out of memory" only). */
    char path[] = "/tmp/linattn-npy-XXXXXX";
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    const int64_t shape[3] = {3, 5, 7};
    float x[105];
    tu_fill(x, 105, -1, 1);
    ck_assert_int_eq(linattn_npy_save(path, x, 3, shape), 0);
    linattn_array a;
    int named = 0;
    for (int n = 1; n < 10; n++) {
        char spec[32];
        snprintf(spec, sizeof spec, "malloc:%d", n);
        const int rc = load_with_fault(spec, path, &a);
        if (!rc) {
            linattn_array_free(&a);
            break;
        }
        ck_assert_int_eq(rc, LINATTN_ENOMEM);
        ck_assert_ptr_null(a.data);
        assert_error_has(path);
        named += strstr(linattn_last_error(), ": needs 420 bytes for [3, 5, 7] float32: out of "
                                              "memory") != NULL;
    }
    ck_assert_int_eq(named, 1);
    /* the same for an image in memory */
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    const size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_int_eq(linattn_test_fault_set("malloc:1"), LINATTN_OK);
    ck_assert_int_eq(linattn_npy_parse(buf, len, &a), LINATTN_ENOMEM);
    linattn_test_fault_set(NULL);
    assert_error_has(".npy: needs 420 bytes for [3, 5, 7] float32: out of memory");
    /* 8 GiB claimed and present (a sparse file), the allocation made to fail:
     * nothing of the payload is read first */
    if ((uint64_t)SIZE_MAX / 4 >= 1ull << 31 && sizeof(off_t) >= 8 &&
        write_claim(path, "(2, 1073741824)", 1ll << 33) == 0) {
        ck_assert_int_eq(load_with_fault("malloc:2", path, &a), LINATTN_ENOMEM);
        assert_error_has(": needs 8589934592 bytes for [2, 1073741824] float32: out of memory");
    }
    unlink(path);
}
END_TEST

START_TEST(test_save_names_reason)
{
    /* a failed write says why (it used to say "write error" only) */
    const int64_t shape[1] = {4096};
    float *x = calloc(4096, sizeof *x);
    ck_assert_ptr_nonnull(x);
    if (access("/dev/full", W_OK) == 0) {
        ck_assert_int_eq(linattn_npy_save("/dev/full", x, 1, shape), LINATTN_EIO);
        assert_error_has(strerror(ENOSPC));
    }
    ck_assert_int_eq(linattn_npy_save("/nonexistent/dir/x.npy", x, 1, shape), LINATTN_EIO);
    assert_error_has(strerror(ENOENT));
    free(x);
}
END_TEST

/* ---- '<f2' (float16) files ---------------------------------------------- */

/* A .npy image whose payload is the n float16 patterns h, little-endian. */
static size_t image16(unsigned char *b, int version, const char *hdr, const uint16_t *h,
                      size_t n)
{
    const size_t off = image(b, version, hdr, 0);
    for (size_t i = 0; i < n; i++) {
        b[off + 2 * i] = (unsigned char)(h[i] & 0xff);
        b[off + 2 * i + 1] = (unsigned char)(h[i] >> 8);
    }
    return off + 2 * n;
}

/* The value of a float16 pattern, worked out here from the format's
 * definition (not by the library's converter). */
static double f16_value(uint16_t h)
{
    const int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp((double)m, -24);
    else v = ldexp((double)(1024 + m), e - 25);
    return sign ? -v : v;
}

/* zeros of both signs, subnormals, normals, the extremes, Inf, NaN */
static const uint16_t F16S[12] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00,
                                  0xc000, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x3555};

static void assert_f16_values(const linattn_array *a, const uint16_t *h, size_t n)
{
    ck_assert_int_eq(a->file_dtype, LINATTN_F16);
    ck_assert_uint_eq(a->count, n);
    for (size_t i = 0; i < n; i++) {
        const double want = f16_value(h[i]);
        if (isnan(want)) {
            ck_assert_msg(isnan(a->data[i]), "element %zu: %g, want NaN", i, a->data[i]);
            continue;
        }
        ck_assert_msg((double)a->data[i] == want && !signbit(a->data[i]) == !signbit(want),
                      "element %zu (0x%04x): %.9g, want %.9g", i, h[i], a->data[i], want);
    }
}

START_TEST(test_parse_f16)
{
    /* '<f2' files load widened exactly to float32, under every header form
     * that '<f4' files may take (NumPy has written '<f2' for float16 since
     * its first .npy format); the loader refused them before. */
    static const struct { int version; const char *hdr; size_t n; } ok[] = {
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }\n", 12},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (12,)}", 12},
        {2, "{\"shape\": (2, 2, 3), \"fortran_order\": False, \"descr\": \"<f2\"}", 12},
        {3, "{'fortran_order': False, 'descr': '<f2', 'shape': (1, 1, 1, 12), }   \n", 12},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': ()}", 1},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (0, 7)}", 0},
    };
    for (size_t c = 0; c < sizeof ok / sizeof *ok; c++) {
        linattn_array a;
        const size_t n = image16(buf, ok[c].version, ok[c].hdr, F16S, ok[c].n);
        ck_assert_msg(linattn_npy_parse(buf, n, &a) == 0, "%s: %s", ok[c].hdr,
                      linattn_last_error());
        assert_f16_values(&a, F16S, ok[c].n);
        linattn_array_free(&a);
    }
    /* every one of the 65536 patterns */
    uint16_t *all = malloc(65536 * sizeof *all);
    unsigned char *big = malloc(65536 * 2 + 128);
    ck_assert(all && big);
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    linattn_array a;
    const size_t n = image16(big, 1, "{'descr': '<f2', 'fortran_order': False, "
                             "'shape': (256, 256), }", all, 65536);
    ck_assert_int_eq(linattn_npy_parse(big, n, &a), 0);
    assert_f16_values(&a, all, 65536);
    linattn_array_free(&a);
    free(all);
    free(big);
    /* '<f4' files say so */
    const size_t m = image(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 2);
    ck_assert_int_eq(linattn_npy_parse(buf, m, &a), 0);
    ck_assert_int_eq(a.file_dtype, LINATTN_F32);
    linattn_array_free(&a);
    /* other 2-byte types and byte orders stay refused */
    static const char *const bad[] = {"'>f2'", "'|f2'", "'<i2'", "'<u2'", "'<e'", "'<f8'"};
    for (size_t c = 0; c < sizeof bad / sizeof *bad; c++) {
        char hdr[96];
        snprintf(hdr, sizeof hdr, "{'descr': %s, 'fortran_order': False, 'shape': (2,)}",
                 bad[c]);
        const size_t k = image16(buf, 1, hdr, F16S, 2);
        ck_assert_int_eq(linattn_npy_parse(buf, k, &a), LINATTN_EFORMAT);
        assert_error_has("need '<f4' or '<f2'");
        ck_assert_ptr_null(a.data);
    }
}
END_TEST

START_TEST(test_truncated_f16)
{
    /* A '<f2' payload must be exactly 2 bytes an element: every prefix of
     * a valid image, one byte more, and a float32-sized payload (what a
     * parser reading 4 bytes an element would want) are EFORMAT. */
    const char *hdr = "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }";
    const size_t n = image16(buf, 1, hdr, F16S, 3);
    linattn_array a;
    for (size_t len = 0; len < n; len++) {
        unsigned char *copy = malloc(len ? len : 1);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, buf, len);
        ck_assert_int_eq(linattn_npy_parse(copy, len, &a), LINATTN_EFORMAT);
        ck_assert_ptr_null(a.data);
        free(copy);
    }
    ck_assert_int_eq(linattn_npy_parse(buf, n + 1, &a), LINATTN_EFORMAT);
    assert_error_has("payload is 7 bytes, shape needs 6 ('<f2')");
    const size_t n4 = image16(buf, 1, hdr, F16S, 6);
    ck_assert_int_eq(linattn_npy_parse(buf, n4, &a), LINATTN_EFORMAT);
    assert_error_has("payload is 12 bytes, shape needs 6 ('<f2')");
    /* the same from files: truncated by one byte, and whole */
    char path[] = "/tmp/linattn-npy-XXXXXX";
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    for (int cut = 1; cut >= 0; cut--) {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, n - (size_t)cut, f), n - (size_t)cut);
        ck_assert_int_eq(fclose(f), 0);
        const int rc = linattn_npy_load(path, &a);
        if (cut) {
            ck_assert_int_eq(rc, LINATTN_EFORMAT);
            assert_error_has(path);
            assert_error_has("payload is 5 bytes, shape needs 6 ('<f2')");
            ck_assert_ptr_null(a.data);
        } else {
            ck_assert_msg(rc == 0, "%s", linattn_last_error());
            assert_f16_values(&a, F16S, 3);
            linattn_array_free(&a);
        }
    }
    unlink(path);
}
END_TEST

START_TEST(test_save_dtype)
{
    /* f16 data is written as '<f2' with its bits unchanged, f32 as '<f4',
     * bf16 as '<f4' holding each value exactly (NumPy has no bfloat16). */
    char path[] = "/tmp/linattn-npy-XXXXXX";
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    const int64_t shape[2] = {3, 4};
    linattn_array a;
    ck_assert_int_eq(linattn_npy_save_dtype(path, F16S, LINATTN_F16, 2, shape), 0);
    ck_assert_int_eq(linattn_npy_load(path, &a), 0);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_int_eq(a.shape[0], 3);
    assert_f16_values(&a, F16S, 12);
    linattn_array_free(&a);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    const size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const size_t hl = (size_t)buf[8] | (size_t)buf[9] << 8;
    ck_assert_int_eq((10 + hl) % 64, 0);
    ck_assert_uint_eq(len, 10 + hl + 24);
    char text[512];
    snprintf(text, sizeof text, "%.*s", (int)hl, (const char *)buf + 10);
    ck_assert_ptr_nonnull(strstr(text, "'descr': '<f2'"));
    for (size_t i = 0; i < 12; i++)
        ck_assert_uint_eq(buf[10 + hl + 2 * i] | buf[10 + hl + 2 * i + 1] << 8, F16S[i]);
    /* bf16: the upper halves of float32 values */
    uint16_t bf[12];
    for (size_t i = 0; i < 12; i++) bf[i] = (uint16_t)(F16S[i] ^ 0x4123);
    ck_assert_int_eq(linattn_npy_save_dtype(path, bf, LINATTN_BF16, 2, shape), 0);
    ck_assert_int_eq(linattn_npy_load(path, &a), 0);
    ck_assert_int_eq(a.file_dtype, LINATTN_F32);
    for (size_t i = 0; i < 12; i++) {
        uint32_t u;
        memcpy(&u, &a.data[i], sizeof u);
        ck_assert_uint_eq(u, (uint32_t)bf[i] << 16);
    }
    linattn_array_free(&a);
    /* f32 as linattn_npy_save writes it */
    float x[12];
    tu_fill(x, 12, -5, 5);
    ck_assert_int_eq(linattn_npy_save_dtype(path, x, LINATTN_F32, 2, shape), 0);
    ck_assert_int_eq(linattn_npy_load(path, &a), 0);
    ck_assert_int_eq(a.file_dtype, LINATTN_F32);
    ck_assert(!memcmp(a.data, x, sizeof x));
    linattn_array_free(&a);
    ck_assert_int_eq(linattn_npy_save_dtype(path, x, (linattn_dtype)7, 2, shape), LINATTN_EINVAL);
    ck_assert_int_eq(linattn_npy_save_dtype(path, NULL, LINATTN_F16, 2, shape), LINATTN_ENULL);
    unlink(path);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_set_timeout(tc, 300); /* file I/O only; generous for a loaded machine */
    tcase_add_test(tc, test_parse_valid);
    tcase_add_loop_test(tc, test_parse_bad, 0, (int)(sizeof BAD / sizeof *BAD));
    tcase_add_test(tc, test_truncations);
    tcase_add_loop_test(tc, test_fuzz_regressions, 0, (int)(sizeof FUZZ / sizeof *FUZZ));
    tcase_add_test(tc, test_empty_arrays);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_load_checks_size_first);
    tcase_add_test(tc, test_load_enomem_names_bytes);
    tcase_add_test(tc, test_save_names_reason);
    tcase_add_test(tc, test_parse_f16);
    tcase_add_test(tc, test_truncated_f16);
    tcase_add_test(tc, test_save_dtype);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_main(suite()); }
