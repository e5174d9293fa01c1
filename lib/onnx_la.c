/* linattn - ONNX LinearAttention (opset 27) as a C entry point
 * (linattn_onnx(3)): the packed [B,T,H*D] tensors are viewed
 * as [B,T,H,D] by strides (no copies) and the call goes to gla (linear,
 * gated) or gdn (delta, gated_delta) of the delta family. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

static const char *const rule_names[] = {"linear", "gated", "delta", "gated_delta"};

void linattn_la_attrs_init(linattn_la_attrs *a)
{
    if (!a) return;
    memset(a, 0, sizeof *a);
    a->update_rule = LINATTN_LA_GATED_DELTA; /* ONNX's default */
    a->chunk_size = 64;                      /* ONNX's default */
    a->algo = LINATTN_ALGO_AUTO;
}

const char *linattn_la_rule_name(int rule)
{
    return rule >= 0 && rule < 4 ? rule_names[rule] : NULL;
}

int linattn_la_rule_parse(const char *name, int *out)
{
    if (!name) return linattn_fail(LINATTN_ENULL, "update_rule: NULL");
    for (int r = 0; r < 4; r++)
        if (!strcmp(name, rule_names[r])) {
            if (out) *out = r;
            return LINATTN_OK;
        }
    return linattn_fail(LINATTN_EINVAL, "update_rule: '%s' (one of linear, gated, delta, "
                                        "gated_delta)", name);
}

/* Rank and sizes (each > 0) of a given tensor. */
static int check_rank(const linattn_tensor *t, const char *name, int ndim)
{
    if (t->ndim != ndim)
        return linattn_fail(LINATTN_ESHAPE, "%s: rank %d, expected %d", name, t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] <= 0)
            return linattn_fail(LINATTN_ESIZE, "%s: dimension %d is %lld (must be > 0)", name,
                                d, (long long)t->shape[d]);
    for (int d = ndim; d < LINATTN_MAX_DIMS; d++) /* the views below rewrite them */
        if (t->strides[d])
            return linattn_fail(LINATTN_EINVAL, "%s: strides[%d] set beyond rank %d", name, d,
                                ndim);
    return LINATTN_OK;
}

/* t has rank ndim and its dimensions [0, n) equal want's; the message
 * shows the expected shape. */
static int check_shape(const linattn_tensor *t, const char *name, int ndim, int n,
                       const int64_t *want, const char *form)
{
    int rc = check_rank(t, name, ndim);
    if (rc) return rc;
    for (int d = 0; d < n; d++)
        if (t->shape[d] != want[d]) {
            char buf[96];
            int len = 0;
            for (int i = 0; i < n && len < (int)sizeof buf - 24; i++)
                len += snprintf(buf + len, sizeof buf - len, "%s%lld", i ? ", " : "",
                                (long long)want[i]);
            return linattn_fail(LINATTN_ESHAPE, "%s: dimension %d is %lld, expected %s = (%s)",
                                name, d, (long long)t->shape[d], form, buf);
        }
    return LINATTN_OK;
}

static int same_dtype(const linattn_tensor *t, const char *name, const linattn_tensor *ref,
                      const char *rname)
{
    if (!linattn_given(t) || !linattn_given(ref) || t->dtype == ref->dtype) return LINATTN_OK;
    const char *a = linattn_dtype_name(t->dtype), *b = linattn_dtype_name(ref->dtype);
    return linattn_fail(LINATTN_EINVAL, "%s: element type %s, %s's is %s (ONNX: one type %s)",
                        name, a ? a : "unknown", rname, b ? b : "unknown",
                        !strcmp(rname, "past_state") ? "S for the states"
                                                     : "T for the activations");
}

/* [B,T,H*D] seen as [B,T,H,D]: the same memory, the last stride split. */
static linattn_tensor split_heads(const linattn_tensor *t, int64_t H)
{
    int64_t s[LINATTN_MAX_DIMS];
    linattn_tensor v = *t;
    linattn_strides(t, s);
    const int64_t D = t->shape[2] / H;
    v.ndim = 4;
    v.shape[2] = H;
    v.shape[3] = D;
    v.strides[0] = s[0];
    v.strides[1] = s[1];
    v.strides[2] = s[2] * D;
    v.strides[3] = s[2];
    return v;
}

/* The inner call names q, k, v, g, beta, h0, o, hT: say the ONNX names. */
static int rename_failure(int rc, int rule)
{
    static const char *const ours[] = {"q", "k", "v", "g", "beta", "h0", "o", "hT"};
    static const char *const onnx[] = {"query", "key", "value", "decay", "beta",
                                       "past_state", "output", "present_state"};
    char msg[512];
    snprintf(msg, sizeof msg, "%s", linattn_last_error());
    const char *rest = msg, *name = NULL;
    for (int i = 0; i < 8 && !name; i++) {
        const size_t n = strlen(ours[i]);
        if (!strncmp(msg, ours[i], n) && (msg[n] == ':' || msg[n] == '[' || msg[n] == '/')) {
            name = onnx[i];
            rest = msg + n;
        }
    }
    return linattn_fail(rc, "%s%s (update_rule %s)", name ? name : "", rest, rule_names[rule]);
}

int linattn_linear_attention(linattn_ctx *ctx, const linattn_la_io *io,
                             const linattn_la_attrs *attrs)
{
    int rc;
    if ((rc = linattn_check_call(ctx, io))) return rc;
    if (!attrs) return linattn_fail(LINATTN_ENULL, "attrs: NULL");
    const linattn_la_attrs *a = attrs;
    const int rule = a->update_rule;
    if (rule < LINATTN_LA_LINEAR || rule > LINATTN_LA_GATED_DELTA)
        return linattn_fail(LINATTN_EINVAL, "attrs.update_rule: %d (0 linear, 1 gated, "
                                            "2 delta, 3 gated_delta)", rule);
    if (a->q_num_heads <= 0)
        return linattn_fail(LINATTN_ERANGE, "attrs.q_num_heads: %d (required, must be > 0)",
                            a->q_num_heads);
    if (a->kv_num_heads <= 0)
        return linattn_fail(LINATTN_ERANGE, "attrs.kv_num_heads: %d (required, must be > 0)",
                            a->kv_num_heads);
    if (a->q_num_heads % a->kv_num_heads)
        return linattn_fail(LINATTN_ERANGE, "attrs.q_num_heads: %d is not a multiple of "
                            "kv_num_heads %d", a->q_num_heads, a->kv_num_heads);
    if (!isfinite(a->scale))
        return linattn_fail(LINATTN_ERANGE, "attrs.scale: not finite");
    if (a->algo < LINATTN_ALGO_AUTO || a->algo > LINATTN_ALGO_CHUNK)
        return linattn_fail(LINATTN_EINVAL, "attrs.algo: unknown value %d", (int)a->algo);
    const int gated = rule == LINATTN_LA_GATED || rule == LINATTN_LA_GATED_DELTA;
    const int delta = rule == LINATTN_LA_DELTA || rule == LINATTN_LA_GATED_DELTA;
    if (gated != linattn_given(&io->decay))
        return linattn_fail(gated ? LINATTN_ENULL : LINATTN_EINVAL, "decay: update_rule %s %s",
                            rule_names[rule], gated ? "requires it" : "forbids it");
    if (delta != linattn_given(&io->beta))
        return linattn_fail(delta ? LINATTN_ENULL : LINATTN_EINVAL, "beta: update_rule %s %s",
                            rule_names[rule], delta ? "requires it" : "forbids it");
    const linattn_tensor *const req[] = {&io->query, &io->key, &io->value, &io->output};
    static const char *const reqn[] = {"query", "key", "value", "output"};
    for (int i = 0; i < 4; i++) {
        if (!linattn_given(req[i]))
            return linattn_fail(LINATTN_ENULL, "%s: data pointer is NULL", reqn[i]);
        if ((rc = check_rank(req[i], reqn[i], 3))) return rc;
    }
    const int64_t Hq = a->q_num_heads, H = a->kv_num_heads;
    const int64_t B = io->query.shape[0], T = io->query.shape[1];
    if (io->query.shape[2] % Hq)
        return linattn_fail(LINATTN_ESHAPE, "query: last dimension %lld is not a multiple of "
                            "q_num_heads %lld", (long long)io->query.shape[2], (long long)Hq);
    if (io->value.shape[2] % H)
        return linattn_fail(LINATTN_ESHAPE, "value: last dimension %lld is not a multiple of "
                            "kv_num_heads %lld", (long long)io->value.shape[2], (long long)H);
    const int64_t dk = io->query.shape[2] / Hq, dv = io->value.shape[2] / H;
    const int64_t ksh[3] = {B, T, H * dk}, vsh[3] = {B, T, H * dv}, osh[3] = {B, T, Hq * dv};
    const int64_t ssh[4] = {B, H, dk, dv};
    if ((rc = check_shape(&io->key, "key", 3, 3, ksh, "(B, T, kv_num_heads * d_k)")) ||
        (rc = check_shape(&io->value, "value", 3, 3, vsh, "(B, T, kv_num_heads * d_v)")))
        return rc;
    if ((rc = check_shape(&io->output, "output", 3, 3, osh, "(B, T, q_num_heads * d_v)")))
        return rc;
    if (linattn_given(&io->past_state) &&
        (rc = check_shape(&io->past_state, "past_state", 4, 4, ssh,
                          "(B, kv_num_heads, d_k, d_v)")))
        return rc;
    if (linattn_given(&io->present_state) &&
        (rc = check_shape(&io->present_state, "present_state", 4, 4, ssh,
                          "(B, kv_num_heads, d_k, d_v)")))
        return rc;
    const int decay_k = gated && io->decay.ndim == 3 && io->decay.shape[2] == H * dk && dk > 1;
    if (gated) {
        const int64_t dsh[2] = {B, T};
        if ((rc = check_shape(&io->decay, "decay", 3, 2, dsh, "(B, T, ...)"))) return rc;
        if (io->decay.shape[2] != H && io->decay.shape[2] != H * dk)
            return linattn_fail(LINATTN_ESHAPE, "decay: last dimension %lld (must be "
                                "kv_num_heads %lld or kv_num_heads * d_k %lld)",
                                (long long)io->decay.shape[2], (long long)H, (long long)(H * dk));
    }
    if (delta) {
        const int64_t bsh[2] = {B, T};
        if ((rc = check_shape(&io->beta, "beta", 3, 2, bsh, "(B, T, ...)"))) return rc;
        if (io->beta.shape[2] != H && io->beta.shape[2] != 1)
            return linattn_fail(LINATTN_ESHAPE, "beta: last dimension %lld (must be "
                                "kv_num_heads %lld or 1)", (long long)io->beta.shape[2],
                                (long long)H);
    }
    const linattn_tensor *const act[] = {&io->key, &io->value, &io->decay, &io->beta, &io->output};
    static const char *const actn[] = {"key", "value", "decay", "beta", "output"};
    for (int i = 0; i < 5; i++)
        if ((rc = same_dtype(act[i], actn[i], &io->query, "query"))) return rc;
    if ((rc = same_dtype(&io->present_state, "present_state", &io->past_state, "past_state")))
        return rc;

    /* the views: nothing is copied here */
    linattn_delta_io x = {
        .q = split_heads(&io->query, Hq), .k = split_heads(&io->key, H),
        .v = split_heads(&io->value, H), .o = split_heads(&io->output, Hq),
        .h0 = io->past_state, .hT = io->present_state,
    };
    if (gated) x.g = decay_k ? split_heads(&io->decay, H) : io->decay;
    if (delta) {
        x.beta = io->beta;
        if (io->beta.shape[2] != H) { /* (B, T, 1): every head reads element 0 */
            int64_t s[LINATTN_MAX_DIMS];
            linattn_strides(&io->beta, s);
            x.beta.shape[2] = H;
            x.beta.strides[0] = s[0];
            x.beta.strides[1] = s[1];
            x.beta.strides[2] = 0;
        }
    }
    linattn_delta_opts o;
    linattn_delta_opts_init(&o);
    o.algo = a->algo;
    o.scale = a->scale; /* 0: 1/sqrt(d_k), as ONNX */
    o.chunk = a->chunk_size < 1 ? 0
              : a->chunk_size > LINATTN_MAX_CHUNK ? LINATTN_MAX_CHUNK : a->chunk_size;
    rc = delta ? linattn_gdn_forward(ctx, &x, &o) : linattn_gla_forward(ctx, &x, &o);
    return rc ? rename_failure(rc, rule) : LINATTN_OK;
}
