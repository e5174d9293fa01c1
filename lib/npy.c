/* linattn - .npy reader and writer (float32 '<f4' and float16 '<f2',
 * little-endian, C order only; arrays are float32 in memory).
 * The parser takes untrusted bytes: every length and number is bounded, and
 * anything it does not understand is rejected with LINATTN_EFORMAT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "internal.h"

#define NPY_MAX_DIMS 8
#define NPY_MAX_HEADER 65536

typedef struct cursor { const char *p, *end; } cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) { c->p++; return 1; }
    return 0;
}

/* A quoted Python string; copies at most cap-1 characters into out. */
static int read_str(cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    const char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= cap) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int read_word(cursor *c, const char *w)
{
    skip_ws(c);
    const size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n)) return 0;
    c->p += n;
    return 1;
}

static int read_shape(cursor *c, linattn_array *a)
{
    if (!eat(c, '(')) return 0;
    a->ndim = 0;
    for (;;) {
        if (eat(c, ')')) return 1;
        skip_ws(c);
        int64_t v = 0;
        int digits = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return 0;
            v = v * 10 + (*c->p++ - '0');
            digits++;
        }
        if (!digits || a->ndim >= NPY_MAX_DIMS) return 0;
        a->shape[a->ndim++] = v;
        if (eat(c, ',')) continue;
        if (eat(c, ')')) return 1;
        return 0;
    }
}

/* Messages name the file (or ".npy" for an image in memory): "who: why". */
static int bad(const char *who, const char *why)
{
    return linattn_fail(LINATTN_EFORMAT, "%s: %s", who, why);
}

/* Parse the header dictionary; fills shape and ndim. */
static int parse_header(const char *who, const char *h, size_t len, linattn_array *a)
{
    cursor c = {h, h + len};
    int have_descr = 0, have_order = 0, have_shape = 0;
    char key[32], val[32];
    if (!eat(&c, '{')) return bad(who, "header is not a dictionary");
    for (;;) {
        if (eat(&c, '}')) break;
        if (!read_str(&c, key, sizeof key) || !eat(&c, ':')) return bad(who, "malformed header");
        if (!strcmp(key, "descr")) {
            if (!read_str(&c, val, sizeof val)) return bad(who, "malformed descr");
            if (!strcmp(val, "<f4")) a->file_dtype = LINATTN_F32;
            else if (!strcmp(val, "<f2")) a->file_dtype = LINATTN_F16;
            else
                return linattn_fail(LINATTN_EFORMAT, "%s: dtype '%s' (need '<f4' or '<f2', "
                                    "float32 or float16 little-endian)", who, val);
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (read_word(&c, "True")) return bad(who, "fortran_order True (need C order)");
            if (!read_word(&c, "False")) return bad(who, "malformed fortran_order");
            have_order = 1;
        } else if (!strcmp(key, "shape")) {
            if (!read_shape(&c, a)) return bad(who, "malformed shape");
            have_shape = 1;
        } else {
            return linattn_fail(LINATTN_EFORMAT, "%s: unknown header key '%s'", who, key);
        }
        if (eat(&c, '}')) break;
        if (!eat(&c, ',')) return bad(who, "malformed header");
    }
    if (!have_descr || !have_order || !have_shape)
        return bad(who, "header lacks descr, fortran_order or shape");
    skip_ws(&c);
    if (c.p != c.end) return bad(who, "trailing bytes after the header dictionary");
    return LINATTN_OK;
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* The preamble of an image whose first len bytes are at b (a file's first
 * bytes, or a whole image): the header's offset and length. */
static int read_preamble(const char *who, const unsigned char *b, size_t len, size_t *hoff,
                         size_t *hlen)
{
    if (len < 10 || memcmp(b, "\x93NUMPY", 6)) return bad(who, "missing magic string");
    if (b[6] == 1) {
        *hlen = (size_t)b[8] | (size_t)b[9] << 8;
        *hoff = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (len < 12) return bad(who, "truncated preamble");
        *hlen = le32(b + 8);
        *hoff = 12;
    } else {
        return bad(who, "unknown format version");
    }
    if (*hlen > NPY_MAX_HEADER)
        return linattn_fail(LINATTN_EFORMAT, "%s: header of %zu bytes (at most %d)", who, *hlen,
                            NPY_MAX_HEADER);
    return LINATTN_OK;
}

/* The header text: shape, ndim and count, checked as NumPy requires. */
static int read_header(const char *who, const char *h, size_t hlen, linattn_array *a)
{
    int rc = parse_header(who, h, hlen, a);
    if (rc) return rc;
    /* The product of the nonzero dimensions must fit in size_t bytes, as
     * NumPy requires: an empty array such as (0, 2^32, 2^32) would otherwise
     * pass with count 0, and strides computed from its shape overflow. */
    uint64_t count = 1, nonzero = 1;
    for (int d = 0; d < a->ndim; d++) {
        if (!a->shape[d]) { count = 0; continue; }
        if (nonzero > (uint64_t)(SIZE_MAX / 4) / (uint64_t)a->shape[d])
            return bad(who, "shape too large");
        nonzero *= (uint64_t)a->shape[d];
    }
    a->count = count ? (size_t)nonzero : 0;
    return LINATTN_OK;
}

/* Bytes of one element in the file: 4 ('<f4') or 2 ('<f2'). */
static size_t file_size(const linattn_array *a) { return a->file_dtype == LINATTN_F16 ? 2 : 4; }

/* The payload present must be the one the shape needs. */
static int check_payload(const char *who, uint64_t have, const linattn_array *a)
{
    const uint64_t need = (uint64_t)a->count * file_size(a);
    if (have != need)
        return linattn_fail(LINATTN_EFORMAT, "%s: payload is %llu bytes, shape needs %llu (%s)",
                            who, (unsigned long long)have, (unsigned long long)need,
                            a->file_dtype == LINATTN_F16 ? "'<f2'" : "'<f4'");
    return LINATTN_OK;
}

/* Allocate a->data for a->count floats; the message names the bytes. */
static int alloc_data(const char *who, linattn_array *a)
{
    a->data = linattn_malloc(a->count ? a->count * sizeof(float) : sizeof(float));
    if (a->data) return LINATTN_OK;
    char dims[8 * 22 + 1] = "";
    for (int d = 0; d < a->ndim; d++)
        snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%lld", d ? ", " : "",
                 (long long)a->shape[d]);
    return linattn_fail(LINATTN_ENOMEM, "%s: needs %llu bytes for [%s] float32: out of memory",
                        who, (unsigned long long)a->count * 4, dims);
}

/* The payload's little-endian elements at src (of the array's file dtype)
 * to the host's floats, f16 widened exactly; src may be dst (the f16 pass
 * runs backwards, so that each element is read before a float overwrites it). */
static void from_le(const linattn_array *a, float *dst, const void *src)
{
    const unsigned char *b = src;
    if (a->file_dtype == LINATTN_F16) {
        for (size_t i = a->count; i-- > 0;)
            dst[i] = linattn_f16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
        return;
    }
    for (size_t i = 0; i < a->count; i++) {
        const uint32_t u = le32(b + 4 * i);
        memcpy(&dst[i], &u, sizeof u);
    }
}

int linattn_npy_parse(const void *buf, size_t len, linattn_array *out)
{
    const char *const who = ".npy";
    const unsigned char *b = buf;
    linattn_array a;
    size_t hoff, hlen;
    int rc;
    if (!out) return linattn_fail(LINATTN_ENULL, "npy: output array is NULL");
    memset(out, 0, sizeof *out);
    if (!buf) return linattn_fail(LINATTN_ENULL, "npy: buffer is NULL");
    memset(&a, 0, sizeof a);
    if ((rc = read_preamble(who, b, len, &hoff, &hlen))) return rc;
    if (hlen > len - hoff) return bad(who, "truncated header");
    if ((rc = read_header(who, (const char *)b + hoff, hlen, &a))) return rc;
    const size_t off = hoff + hlen;
    if ((rc = check_payload(who, len - off, &a)) || (rc = alloc_data(who, &a))) return rc;
    from_le(&a, a.data, b + off);
    *out = a;
    return LINATTN_OK;
}

/* Read exactly n bytes; EFORMAT with both sizes when the file ends first. */
static int read_exact(const char *path, FILE *f, void *buf, size_t n)
{
    const size_t got = fread(buf, 1, n, f);
    if (got == n) return LINATTN_OK;
    if (ferror(f)) return linattn_fail(LINATTN_EIO, "%s: read error: %s", path, strerror(errno));
    return linattn_fail(LINATTN_EFORMAT, "%s: file ended after %zu of %zu bytes read", path, got,
                        n);
}

/* The header is read and checked against the file's size before anything
 * is allocated for the payload, which is then read straight into the array. */
static int load_file(const char *path, FILE *f, linattn_array *a)
{
    struct stat st;
    unsigned char pre[12];
    size_t hoff, hlen;
    int rc;
    if (fstat(fileno(f), &st)) return linattn_fail(LINATTN_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return linattn_fail(LINATTN_EIO, "%s: not a regular file", path);
    const uint64_t size = (uint64_t)st.st_size;
    const size_t npre = size < sizeof pre ? (size_t)size : sizeof pre;
    if ((rc = read_exact(path, f, pre, npre)) || (rc = read_preamble(path, pre, npre, &hoff, &hlen)))
        return rc;
    if (hlen > size - hoff)
        return linattn_fail(LINATTN_EFORMAT, "%s: header of %zu bytes, file has %llu after the "
                            "preamble", path, hlen, (unsigned long long)(size - hoff));
    char *h = linattn_malloc(hlen ? hlen : 1);
    if (!h) return linattn_fail(LINATTN_ENOMEM, "%s: needs %zu bytes for the header: out of "
                                "memory", path, hlen);
    if (fseek(f, (long)hoff, SEEK_SET))
        rc = linattn_fail(LINATTN_EIO, "%s: %s", path, strerror(errno));
    if (!rc) rc = read_exact(path, f, h, hlen);
    if (!rc) rc = read_header(path, h, hlen, a);
    free(h);
    if (!rc) rc = check_payload(path, size - hoff - hlen, a);
    if (!rc) rc = alloc_data(path, a);
    if (!rc) rc = read_exact(path, f, a->data, a->count * file_size(a));
    if (!rc) from_le(a, a->data, a->data);
    return rc;
}

int linattn_npy_load(const char *path, linattn_array *out)
{
    if (!out) return linattn_fail(LINATTN_ENULL, "npy: output array is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return linattn_fail(LINATTN_ENULL, "npy: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return linattn_fail(LINATTN_EIO, "%s: %s", path, strerror(errno));
    linattn_array a;
    memset(&a, 0, sizeof a);
    int rc = load_file(path, f, &a);
    fclose(f);
    if (rc) {
        free(a.data);
        return rc;
    }
    *out = a;
    return LINATTN_OK;
}

/* One element of data (dtype) as little-endian bytes of the file's type
 * ('<f2' for f16, '<f4' otherwise, bf16 widened exactly); returns the bytes. */
static size_t to_le(const void *data, linattn_dtype dtype, size_t i, unsigned char *b)
{
    uint32_t u;
    if (dtype == LINATTN_F16) {
        uint16_t h;
        memcpy(&h, (const char *)data + 2 * i, sizeof h);
        b[0] = h & 0xff;
        b[1] = (unsigned char)(h >> 8);
        return 2;
    }
    if (dtype == LINATTN_BF16) {
        uint16_t h;
        memcpy(&h, (const char *)data + 2 * i, sizeof h);
        u = (uint32_t)h << 16;
    } else {
        memcpy(&u, (const float *)data + i, sizeof u);
    }
    b[0] = u & 0xff;
    b[1] = (u >> 8) & 0xff;
    b[2] = (u >> 16) & 0xff;
    b[3] = (unsigned char)(u >> 24);
    return 4;
}

int linattn_npy_save_dtype(const char *path, const void *data, linattn_dtype dtype, int ndim,
                           const int64_t *shape)
{
    char hdr[512];
    int n;
    if (!path || !data || (ndim > 0 && !shape))
        return linattn_fail(LINATTN_ENULL, "npy: path, data or shape is NULL");
    if (!linattn_dtype_name(dtype))
        return linattn_fail(LINATTN_EINVAL, "npy: unknown dtype %d", (int)dtype);
    if (ndim < 0 || ndim > NPY_MAX_DIMS)
        return linattn_fail(LINATTN_ESHAPE, "npy: rank %d (must be 0..%d)", ndim, NPY_MAX_DIMS);
    uint64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return linattn_fail(LINATTN_ESIZE, "npy: negative dimension");
        if (shape[d] && count > (uint64_t)(SIZE_MAX / 4) / (uint64_t)shape[d])
            return linattn_fail(LINATTN_EOVERFLOW, "npy: shape too large");
        count *= (uint64_t)shape[d];
    }
    n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                 dtype == LINATTN_F16 ? "<f2" : "<f4");
    for (int d = 0; d < ndim; d++)
        n += snprintf(hdr + n, sizeof hdr - n, "%lld,%s", (long long)shape[d],
                      d + 1 < ndim ? " " : "");
    n += snprintf(hdr + n, sizeof hdr - n, "), }");
    while ((10 + n + 1) % 64) hdr[n++] = ' ';
    hdr[n++] = '\n';

    FILE *f = fopen(path, "wb");
    if (!f) return linattn_fail(LINATTN_EIO, "%s: %s", path, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < count; i++) {
        unsigned char b[4];
        const size_t nb = to_le(data, dtype, i, b);
        ok = fwrite(b, 1, nb, f) == nb;
    }
    int err = ok ? 0 : errno; /* the first failure's reason (a full disk shows at fclose) */
    if (fclose(f) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (!ok) return linattn_fail(LINATTN_EIO, "%s: write error: %s", path, strerror(err));
    return LINATTN_OK;
}

int linattn_npy_save(const char *path, const float *data, int ndim, const int64_t *shape)
{
    return linattn_npy_save_dtype(path, data, LINATTN_F32, ndim, shape);
}

void linattn_array_free(linattn_array *a)
{
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int linattn_array_tensor(const linattn_array *a, linattn_tensor *t)
{
    if (!a || !t) return linattn_fail(LINATTN_ENULL, "array or tensor is NULL");
    if (a->ndim > LINATTN_MAX_DIMS)
        return linattn_fail(LINATTN_ESHAPE, "array of rank %d (tensors have at most %d)",
                            a->ndim, LINATTN_MAX_DIMS);
    memset(t, 0, sizeof *t);
    t->data = a->data;
    t->ndim = a->ndim;
    for (int d = 0; d < a->ndim; d++) t->shape[d] = a->shape[d];
    return LINATTN_OK;
}
