/* linattn - argument checks shared by every operator.
 * Each check records a message naming the argument and returns a distinct
 * status code; callers check everything before touching any output. */
#include <stdint.h>
#include "internal.h"

/* Reject non-positive sizes and element counts whose byte size overflows. */
static int check_dims(const linattn_tensor *t, const char *name)
{
    uint64_t bytes = linattn_dtype_size(t->dtype);
    if (!bytes)
        return linattn_fail(LINATTN_EINVAL, "%s: unknown element type (dtype %d)", name,
                            (int)t->dtype);
    for (int d = 0; d < t->ndim; d++) {
        const int64_t n = t->shape[d];
        if (n <= 0)
            return linattn_fail(LINATTN_ESIZE, "%s: dimension %d is %lld (must be > 0)",
                                name, d, (long long)n);
        if ((uint64_t)n > (uint64_t)PTRDIFF_MAX / bytes)
            return linattn_fail(LINATTN_EOVERFLOW,
                                "%s: %d-dimensional shape overflows the address space",
                                name, t->ndim);
        bytes *= (uint64_t)n;
    }
    if (bytes > (uint64_t)SIZE_MAX)
        return linattn_fail(LINATTN_EOVERFLOW, "%s: byte count overflows size_t", name);
    return LINATTN_OK;
}

/* A view's offset and strides: none negative, its reach within ptrdiff_t. */
static int check_view(const linattn_tensor *t, const char *name)
{
    if (t->offset < 0)
        return linattn_fail(LINATTN_EINVAL, "%s: offset %lld is negative", name,
                            (long long)t->offset);
    uint64_t reach = (uint64_t)t->offset;
    const uint64_t lim = (uint64_t)PTRDIFF_MAX / linattn_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) {
        if (t->strides[d] < 0)
            return linattn_fail(LINATTN_EINVAL, "%s: strides[%d] is %lld (must be >= 0)", name,
                                d, (long long)t->strides[d]);
        const uint64_t ext = (uint64_t)(t->shape[d] - 1), st = (uint64_t)t->strides[d];
        if (st && ext > (lim - reach) / st)
            return linattn_fail(LINATTN_EOVERFLOW, "%s: strides reach past the address space",
                                name);
        reach += ext * st;
    }
    for (int d = t->ndim; d < LINATTN_MAX_DIMS; d++)
        if (t->strides[d])
            return linattn_fail(LINATTN_EINVAL, "%s: strides[%d] set beyond rank %d", name, d,
                                t->ndim);
    return LINATTN_OK;
}

int linattn_check_written(const linattn_tensor *t, const char *name)
{
    int64_t s[LINATTN_MAX_DIMS];
    int ord[LINATTN_MAX_DIMS], n = 0;
    if (!linattn_given(t) || linattn_dense(t)) return LINATTN_OK;
    linattn_strides(t, s);
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] > 1) ord[n++] = d;
    for (int i = 1; i < n; i++) /* by stride, ascending */
        for (int j = i; j > 0 && s[ord[j]] < s[ord[j - 1]]; j--) {
            const int x = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = x;
        }
    /* each stride must step over everything the smaller ones reach */
    int64_t reach = 0;
    for (int i = 0; i < n; i++) {
        const int d = ord[i];
        if (s[d] <= reach)
            return linattn_fail(LINATTN_EINVAL,
                                "%s: strides overlap (dimension %d's stride %lld revisits "
                                "elements; a tensor written must not)", name, d,
                                (long long)s[d]);
        reach += s[d] * (t->shape[d] - 1);
    }
    return LINATTN_OK;
}

int linattn_check_f32_states(linattn_tensor *const *ts, const char *const *names, int n,
                             unsigned states, const char *op)
{
    for (int i = 0; i < n; i++)
        if ((states >> i & 1u) && linattn_given(ts[i]) && ts[i]->dtype != LINATTN_F32)
            return linattn_fail(LINATTN_EUNSUPPORTED,
                                "%s: %s keeps its state in float32 (a 16-bit store loses the "
                                "small writes of long memories; see linattn(3))", names[i], op);
    return LINATTN_OK;
}

int linattn_check_present(const linattn_tensor *t, const char *name)
{
    if (t->data && t->buf)
        return linattn_fail(LINATTN_EINVAL, "%s: both data and buf are set", name);
    if (!t->data && !t->buf)
        return linattn_fail(LINATTN_ENULL, "%s: data pointer is NULL", name);
    return LINATTN_OK;
}

int linattn_check_lead(const linattn_tensor *t, const char *name, int ndim, int64_t *out)
{
    int rc = linattn_check_present(t, name);
    if (rc) return rc;
    if (t->ndim != ndim)
        return linattn_fail(LINATTN_ESHAPE, "%s: rank %d, expected %d", name, t->ndim, ndim);
    if ((rc = check_dims(t, name)) || (rc = check_view(t, name))) return rc;
    for (int d = 0; d < ndim; d++) out[d] = t->shape[d];
    return LINATTN_OK;
}

int linattn_check_tensor(const linattn_tensor *t, const char *name, int ndim,
                         const int64_t *shape)
{
    int rc = linattn_check_present(t, name);
    if (rc) return rc;
    if (t->ndim != ndim)
        return linattn_fail(LINATTN_ESHAPE, "%s: rank %d, expected %d", name, t->ndim, ndim);
    if ((rc = check_dims(t, name)) || (rc = check_view(t, name))) return rc;
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d])
            return linattn_fail(LINATTN_ESHAPE,
                                "%s: dimension %d is %lld, expected %lld", name, d,
                                (long long)t->shape[d], (long long)shape[d]);
    return LINATTN_OK;
}

int linattn_check_seqlens(const int64_t *cu, int64_t n, int64_t B, int64_t T)
{
    if (n < 1)
        return linattn_fail(LINATTN_ESEQLENS, "cu_seqlens: n_seqs is %lld (must be >= 1)",
                            (long long)n);
    if (B != 1)
        return linattn_fail(LINATTN_ESEQLENS,
                            "cu_seqlens: packed sequences need B == 1 (B is %lld)",
                            (long long)B);
    if (cu[0] != 0)
        return linattn_fail(LINATTN_ESEQLENS, "cu_seqlens[0] is %lld (must be 0)",
                            (long long)cu[0]);
    for (int64_t i = 1; i <= n; i++)
        if (cu[i] <= cu[i - 1])
            return linattn_fail(LINATTN_ESEQLENS,
                                "cu_seqlens[%lld] = %lld is not above cu_seqlens[%lld] = %lld",
                                (long long)i, (long long)cu[i], (long long)(i - 1),
                                (long long)cu[i - 1]);
    if (cu[n] != T)
        return linattn_fail(LINATTN_ESEQLENS, "cu_seqlens[%lld] = %lld (must equal T = %lld)",
                            (long long)n, (long long)cu[n], (long long)T);
    return LINATTN_OK;
}

int linattn_check_heads(int64_t K, int64_t V)
{
    if (K > LINATTN_MAX_HEAD_DIM)
        return linattn_fail(LINATTN_EHEADDIM, "q: key head size %lld above %d", (long long)K,
                            LINATTN_MAX_HEAD_DIM);
    if (V > LINATTN_MAX_HEAD_DIM)
        return linattn_fail(LINATTN_EHEADDIM, "v: value head size %lld above %d", (long long)V,
                            LINATTN_MAX_HEAD_DIM);
    return LINATTN_OK;
}

int linattn_check_qkv(const linattn_tensor *q, const linattn_tensor *k, const linattn_tensor *v,
                      int ndim, int64_t *s, int64_t *V, linattn_heads *heads)
{
    int rc;
    int64_t sq[LINATTN_MAX_DIMS], sk[LINATTN_MAX_DIMS], sh[LINATTN_MAX_DIMS];
    if ((rc = linattn_check_lead(q, "q", ndim, sq))) return rc;
    if (!heads) {
        if ((rc = linattn_check_tensor(k, "k", ndim, sq))) return rc;
    } else {
        if ((rc = linattn_check_lead(k, "k", ndim, sk))) return rc;
        for (int d = 0; d < ndim; d++)
            if (d != ndim - 2 && sk[d] != sq[d])
                return linattn_fail(LINATTN_ESHAPE, "k: dimension %d is %lld, q's is %lld", d,
                                    (long long)sk[d], (long long)sq[d]);
    }
    if ((rc = linattn_check_lead(v, "v", ndim, sh))) return rc;
    /* the dimensions q and v share: all but the head size, and the heads too
     * unless heads may be shared */
    const int same = heads ? ndim - 2 : ndim - 1;
    for (int d = 0; d < same; d++)
        if (sh[d] != sq[d])
            return linattn_fail(LINATTN_ESHAPE, "v: dimension %d is %lld, q's is %lld", d,
                                (long long)sh[d], (long long)sq[d]);
    if (heads) {
        const int64_t Hq = sq[ndim - 2], Hk = sk[ndim - 2], H = sh[ndim - 2];
        if (H % Hk)
            return linattn_fail(LINATTN_ESHAPE,
                                "k: %lld key heads do not divide v's %lld value heads",
                                (long long)Hk, (long long)H);
        if (Hq != Hk && Hq % H)
            return linattn_fail(LINATTN_ESHAPE,
                                "q: %lld query heads are neither k's %lld nor a multiple of "
                                "v's %lld", (long long)Hq, (long long)Hk, (long long)H);
        *heads = (linattn_heads){.q = Hq, .k = Hk, .v = H, .o = Hq != Hk ? Hq : H};
    }
    for (int d = 0; d < ndim - 1; d++) s[d] = sh[d];
    s[ndim - 1] = sq[ndim - 1];
    *V = sh[ndim - 1];
    return linattn_check_heads(s[ndim - 1], *V);
}

int linattn_check_pair(const linattn_tensor *a, const linattn_tensor *b, const char *na,
                       const char *nb, int nda, const int64_t *sha, int ndb,
                       const int64_t *shb, int required)
{
    int rc;
    const int ga = linattn_given(a), gb = linattn_given(b);
    if (!ga && !gb) {
        if (required) return linattn_fail(LINATTN_ENULL, "%s: data pointer is NULL", na);
        return LINATTN_OK;
    }
    if (!ga || !gb) {
        if (required) /* a required tensor missing is a NULL pointer, as anywhere */
            return linattn_fail(LINATTN_ENULL, "%s: data pointer is NULL", ga ? nb : na);
        return linattn_fail(LINATTN_EINVAL, "%s/%s: give both or neither", ga ? nb : na,
                            ga ? na : nb);
    }
    if ((rc = linattn_check_tensor(a, na, nda, sha))) return rc;
    return linattn_check_tensor(b, nb, ndb, shb);
}

int linattn_check_sequences(const int64_t *cu, int64_t n, int64_t B, int64_t T, int64_t *nseq)
{
    int rc;
    if (cu) {
        if ((rc = linattn_check_seqlens(cu, n, B, T))) return rc;
        *nseq = n;
        return LINATTN_OK;
    }
    if (n)
        return linattn_fail(LINATTN_EINVAL, "n_seqs: %lld given without cu_seqlens", (long long)n);
    *nseq = B;
    return LINATTN_OK;
}

int linattn_check_call(const void *ctx, const void *io)
{
    if (!ctx) return linattn_fail(LINATTN_ENULL, "ctx: NULL");
    if (!io) return linattn_fail(LINATTN_ENULL, "io: NULL");
    return LINATTN_OK;
}
