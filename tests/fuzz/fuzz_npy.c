/* linattn fuzz target - the .npy parser on arbitrary bytes.
 * Built only with configure --enable-fuzz (libFuzzer, ASan, UBSan); run with
 * "make fuzz".  Besides memory errors, leaks and undefined behaviour, it
 * aborts when the parser breaks its own contract:
 *   - on failure: a nonzero code, a message, and *out zeroed;
 *   - on success: count is the product of the shape, the product of the
 *     nonzero dimensions fits in size_t bytes (as NumPy requires, so that
 *     strides computed from the shape cannot overflow even when the array is
 *     empty), the payload is the last 4*count bytes of the input ('<f4') or
 *     2*count ('<f2', file_dtype LINATTN_F16) and data holds exactly those
 *     bits (f16 widened exactly), and the array views as a tensor whenever
 *     its rank is at most LINATTN_MAX_DIMS. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h" /* linattn.h and linattn_clear_error */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_npy: contract broken: %s\n", why);
    abort();
}

static int is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    linattn_array a;
    linattn_tensor t;
    /* a private copy, so that reads past the end are caught even for size 0 */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    memset(&a, 0x5a, sizeof a);
    linattn_clear_error();
    const int rc = linattn_npy_parse(buf, size, &a);
    if (rc) {
        if (!is_zero(&a, sizeof a)) fail("array not zeroed on failure");
        if (!linattn_last_error()[0]) fail("failure without a message");
        free(buf);
        return 0;
    }
    if (!a.data) fail("success without data");
    if (a.ndim < 0 || a.ndim > 8) fail("rank out of range");
    uint64_t count = 1, nonzero = 1;
    for (int d = 0; d < a.ndim; d++) {
        if (a.shape[d] < 0) fail("negative dimension");
        count *= (uint64_t)a.shape[d];
        if (!a.shape[d]) continue;
        if (nonzero > (uint64_t)(SIZE_MAX / 4) / (uint64_t)a.shape[d])
            fail("product of the nonzero dimensions overflows");
        nonzero *= (uint64_t)a.shape[d];
    }
    if (count != a.count) fail("count is not the product of the shape");
    if (a.file_dtype != LINATTN_F32 && a.file_dtype != LINATTN_F16) fail("file_dtype unknown");
    const size_t es = a.file_dtype == LINATTN_F16 ? 2 : 4;
    if (a.count > size / es) fail("count larger than the input");
    const size_t off = size - es * a.count;
    for (size_t i = 0; i < a.count; i++) {
        const unsigned char *b = buf + off + es * i;
        uint32_t u, got;
        if (es == 2) {
            const uint16_t h = (uint16_t)(b[0] | b[1] << 8);
            float x;
            if (linattn_convert(&h, LINATTN_F16, &x, LINATTN_F32, 1)) fail("convert failed");
            memcpy(&u, &x, sizeof u);
        } else {
            u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        }
        memcpy(&got, &a.data[i], sizeof got);
        if (got != u) fail("data differs from the payload");
    }
    const int trc = linattn_array_tensor(&a, &t);
    if (a.ndim <= LINATTN_MAX_DIMS) {
        if (trc) fail("array of rank <= LINATTN_MAX_DIMS refused as a tensor");
        if (t.data != a.data || t.ndim != a.ndim) fail("tensor does not view the array");
        for (int d = 0; d < a.ndim; d++)
            if (t.shape[d] != a.shape[d]) fail("tensor shape differs");
    } else if (trc != LINATTN_ESHAPE) {
        fail("array of rank > LINATTN_MAX_DIMS not refused with LINATTN_ESHAPE");
    }
    linattn_array_free(&a);
    if (!is_zero(&a, sizeof a)) fail("array not zeroed by linattn_array_free");
    free(buf);
    return 0;
}
