/* linattn - .npy reader and writer (float32, little-endian, C order only).
 * The parser takes untrusted bytes: every length and number is bounded, and
 * anything it does not understand is rejected with LINATTN_EFORMAT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int bad(const char *why)
{
    return linattn_fail(LINATTN_EFORMAT, ".npy: %s", why);
}

/* Parse the header dictionary; fills shape and ndim. */
static int parse_header(const char *h, size_t len, linattn_array *a)
{
    cursor c = {h, h + len};
    int have_descr = 0, have_order = 0, have_shape = 0;
    char key[32], val[32];
    if (!eat(&c, '{')) return bad("header is not a dictionary");
    for (;;) {
        if (eat(&c, '}')) break;
        if (!read_str(&c, key, sizeof key) || !eat(&c, ':')) return bad("malformed header");
        if (!strcmp(key, "descr")) {
            if (!read_str(&c, val, sizeof val)) return bad("malformed descr");
            if (strcmp(val, "<f4"))
                return linattn_fail(LINATTN_EFORMAT, ".npy: dtype '%s' (need '<f4', float32 "
                                    "little-endian)", val);
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (read_word(&c, "True")) return bad("fortran_order True (need C order)");
            if (!read_word(&c, "False")) return bad("malformed fortran_order");
            have_order = 1;
        } else if (!strcmp(key, "shape")) {
            if (!read_shape(&c, a)) return bad("malformed shape");
            have_shape = 1;
        } else {
            return linattn_fail(LINATTN_EFORMAT, ".npy: unknown header key '%s'", key);
        }
        if (eat(&c, '}')) break;
        if (!eat(&c, ',')) return bad("malformed header");
    }
    if (!have_descr || !have_order || !have_shape) return bad("header lacks descr, fortran_order or shape");
    skip_ws(&c);
    if (c.p != c.end) return bad("trailing bytes after the header dictionary");
    return LINATTN_OK;
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int linattn_npy_parse(const void *buf, size_t len, linattn_array *out)
{
    const unsigned char *b = buf;
    linattn_array a;
    size_t hlen, off;
    int rc;
    if (!out) return linattn_fail(LINATTN_ENULL, "npy: output array is NULL");
    memset(out, 0, sizeof *out);
    if (!buf) return linattn_fail(LINATTN_ENULL, "npy: buffer is NULL");
    memset(&a, 0, sizeof a);
    if (len < 10 || memcmp(b, "\x93NUMPY", 6)) return bad("missing magic string");
    if (b[6] == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (len < 12) return bad("truncated preamble");
        hlen = le32(b + 8);
        off = 12;
    } else {
        return bad("unknown format version");
    }
    if (hlen > NPY_MAX_HEADER || hlen > len - off) return bad("truncated or oversized header");
    if ((rc = parse_header((const char *)b + off, hlen, &a))) return rc;
    off += hlen;

    /* The product of the nonzero dimensions must fit in size_t bytes, as
     * NumPy requires: an empty array such as (0, 2^32, 2^32) would otherwise
     * pass with count 0, and strides computed from its shape overflow. */
    uint64_t count = 1, nonzero = 1;
    for (int d = 0; d < a.ndim; d++) {
        if (!a.shape[d]) { count = 0; continue; }
        if (nonzero > (uint64_t)(SIZE_MAX / 4) / (uint64_t)a.shape[d])
            return bad("shape too large");
        nonzero *= (uint64_t)a.shape[d];
    }
    if (count) count = nonzero;
    if (count * 4 != len - off)
        return linattn_fail(LINATTN_EFORMAT, ".npy: payload is %zu bytes, shape needs %llu",
                            len - off, (unsigned long long)(count * 4));
    a.count = (size_t)count;
    a.data = linattn_malloc(count ? count * sizeof(float) : sizeof(float));
    if (!a.data) return linattn_fail(LINATTN_ENOMEM, "npy: out of memory for %zu floats", a.count);
    for (size_t i = 0; i < a.count; i++) {
        const uint32_t u = le32(b + off + 4 * i);
        memcpy(&a.data[i], &u, sizeof u);
    }
    *out = a;
    return LINATTN_OK;
}

int linattn_npy_load(const char *path, linattn_array *out)
{
    if (!out) return linattn_fail(LINATTN_ENULL, "npy: output array is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return linattn_fail(LINATTN_ENULL, "npy: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return linattn_fail(LINATTN_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = linattn_malloc(cap);
    int rc = LINATTN_OK;
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        unsigned char *nb = cap > SIZE_MAX / 2 ? NULL : linattn_realloc(buf, cap * 2);
        if (!nb) { free(buf); buf = NULL; break; }
        buf = nb;
        cap *= 2;
    }
    if (!buf) rc = linattn_fail(LINATTN_ENOMEM, "%s: out of memory", path);
    else if (ferror(f)) rc = linattn_fail(LINATTN_EIO, "%s: read error", path);
    fclose(f);
    if (rc) { free(buf); return rc; }
    rc = linattn_npy_parse(buf, len, out);
    free(buf);
    if (rc) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", linattn_last_error());
        linattn_fail(rc, "%s: %s", path, msg);
    }
    return rc;
}

int linattn_npy_save(const char *path, const float *data, int ndim, const int64_t *shape)
{
    char hdr[512];
    int n;
    if (!path || !data || (ndim > 0 && !shape))
        return linattn_fail(LINATTN_ENULL, "npy: path, data or shape is NULL");
    if (ndim < 0 || ndim > NPY_MAX_DIMS)
        return linattn_fail(LINATTN_ESHAPE, "npy: rank %d (must be 0..%d)", ndim, NPY_MAX_DIMS);
    uint64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return linattn_fail(LINATTN_ESIZE, "npy: negative dimension");
        if (shape[d] && count > (uint64_t)(SIZE_MAX / 4) / (uint64_t)shape[d])
            return linattn_fail(LINATTN_EOVERFLOW, "npy: shape too large");
        count *= (uint64_t)shape[d];
    }
    n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
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
        uint32_t u;
        memcpy(&u, &data[i], sizeof u);
        const unsigned char b[4] = {u & 0xff, (u >> 8) & 0xff, (u >> 16) & 0xff, u >> 24};
        ok = fwrite(b, 1, 4, f) == 4;
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) return linattn_fail(LINATTN_EIO, "%s: write error", path);
    return LINATTN_OK;
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
