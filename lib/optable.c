/* linattn - the operator table: every entry point described once (tensors,
 * dimensions, ranges, options), and one call that runs any of them.  Adding
 * an operator adds its rows here; tools and tests read them. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define BIG FLT_MAX
#define IN LINATTN_ROLE_IN
#define OUT LINATTN_ROLE_OUT
#define INOUT LINATTN_ROLE_INOUT

/* A tensor: name, dims, role, optional, pair, needs (TN) or its range, one of
 * values.c's (TR), then the typical values. */
#define TN(nm, dm, rl, opt, pr, nd, fl, fh)                                                 \
    {.name = nm, .ndim = (int)sizeof(dm) - 1, .dims = dm, .role = rl, .optional = opt,       \
     .pair = pr, .needs = nd, .fill_lo = fl, .fill_hi = fh}
#define TR(nm, dm, rl, opt, pr, rg, fl, fh) TR_(nm, dm, 0, rl, opt, pr, rg, fl, fh)
/* ... with an optional trailing dimension, letter tl (linattn_op_tensor.tail) */
#define TRT(nm, dm, tl, rl, opt, pr, rg, fl, fh) TR_(nm, dm, tl, rl, opt, pr, rg, fl, fh)
#define TR_(nm, dm, tl, rl, opt, pr, l, h, lop, hop, fl, fh)                                \
    {.name = nm, .ndim = (int)sizeof(dm) - 1, .dims = dm, .tail = tl, .role = rl,            \
     .optional = opt, .pair = pr, .needs = -1, .ranged = 1, .lo = l, .hi = h, .lo_open = lop, \
     .hi_open = hop, .fill_lo = fl, .fill_hi = fh}
#define OPT(nm, ty, l, h, d) {.name = nm, .type = ty, .lo = l, .hi = h, .def = d}
#define OPTNZ(nm, ty, l, h, d) {.name = nm, .type = ty, .lo = l, .hi = h, .def = d, .nonzero = 1}

/* Ranges shared by several operators. */
#define LOGDECAY(nm, dm) TR(nm, dm, IN, 1, -1, LINATTN_RANGE_LOGDECAY_NUMS, -1, 0)
#define UNIT(nm, dm, opt) TR(nm, dm, IN, opt, -1, LINATTN_RANGE_UNIT_NUMS, 0, 1)
#define QKV(d4) TN("q", d4 "K", IN, 0, -1, -1, -1, 1), TN("k", d4 "K", IN, 0, -1, -1, -1, 1), \
                TN("v", d4 "V", IN, 0, -1, -1, -1, 1)

#define O_SCALE OPT("scale", LINATTN_OPT_FLOAT, -BIG, BIG, 0)
#define O_CHUNK OPT("chunk", LINATTN_OPT_INT, 0, LINATTN_MAX_CHUNK, 0)
#define O_ALGO OPT("algo", LINATTN_OPT_ALGO, 0, 2, 0)
#define O_EPS OPT("eps", LINATTN_OPT_FLOAT, 0, BIG, 1e-6)
#define O_RIDGE OPTNZ("ridge", LINATTN_OPT_FLOAT, 0, BIG, 0.02)
#define O_ITERS OPT("iters", LINATTN_OPT_INT, 1, 1000, 30)
#define O_QKSCALE OPT("qk_scale", LINATTN_OPT_FLOAT, -BIG, BIG, 0)
#define O_FEATURE OPT("feature", LINATTN_OPT_FEATURE, 0, 4, 0)
#define O_FLAG(nm) OPT(nm, LINATTN_OPT_FLAG, 0, 1, 0)
#define O_QKNORM O_FLAG("qk_l2norm")
#define O_LOGITS O_FLAG("beta_logits")
#define O_HEADMAP OPT("head_map", LINATTN_OPT_INT, 0, 1, 0)

/* The delta family: the forward's tensors with the write strength W (gdn's
 * beta, kla's eta) or none (gla) over leading dims ld ("BT" or "B"): q has
 * Q query heads, k J key heads (J divides H), v H value heads, o O heads;
 * g is per head or, with its tail G = K, per key channel. */
#define DELTA_QKVG(ld) TN("q", ld "QK", IN, 0, -1, -1, -1, 1), TN("k", ld "JK", IN, 0, -1, -1, -1, 1), \
                       TN("v", ld "HV", IN, 0, -1, -1, -1, 1),                             \
                       TRT("g", ld "H", 'G', IN, 1, -1, LINATTN_RANGE_LOGDECAY_NUMS, -1, 0)
#define DELTA_O(ld) TN("o", ld "OV", OUT, 0, -1, -1, 0, 0)
/* softmax: q with H query heads, k and v with J key/value heads (J divides H) */
#define QJKJV(d) TN("q", d "HK", IN, 0, -1, -1, -1, 1), TN("k", d "JK", IN, 0, -1, -1, -1, 1), \
                 TN("v", d "JV", IN, 0, -1, -1, -1, 1)
/* serving outputs after hT: rollback rows hW [W,H,K,V] (W = N times the
 * window) and checkpoint rows hC [C,H,K,V] (linattn_gdn(3), SERVING) */
#define DELTA_SERVE TN("hW", "WHKV", OUT, 1, -1, -1, 0, 0), TN("hC", "CHKV", OUT, 1, -1, -1, 0, 0)
#define DELTA_FWD(W)                                                                        \
    DELTA_QKVG("BT"), W, TN("h0", "NHKV", IN, 1, -1, -1, -1, 1), DELTA_O("BT"),                  \
        TN("hT", "NHKV", OUT, 1, -1, -1, 0, 0), DELTA_SERVE
#define DELTA_STEP(W) DELTA_QKVG("B"), W, TN("state_h", "BHKV", INOUT, 0, -1, -1, -1, 1), DELTA_O("B")
/* beta's published range is the one for beta_logits off (any finite
 * value with it on); the table's ranges do not depend on options. */
#define GDN_BETA(dm) TR("beta", dm, IN, 0, -1, LINATTN_RANGE_STEP_NUMS, 0, 1)
#define KLA_ETA(dm) TR("eta", dm, IN, 0, -1, LINATTN_RANGE_STEP_NUMS, 0, 1)

static const linattn_op_info TABLE[] = {
    {.name = "gdn", .entry = "forward", .family = "delta", .page = "linattn_gdn(3)", .packed = 1,
     .ntensors = 10, .tensors = {DELTA_FWD(GDN_BETA("BTH"))},
     .noptions = 6, .options = {O_ALGO, O_CHUNK, O_SCALE, O_QKNORM, O_LOGITS, O_HEADMAP}},
    {.name = "gdn", .entry = "step", .family = "delta", .page = "linattn_gdn(3)",
     .ntensors = 7, .tensors = {DELTA_STEP(GDN_BETA("BH"))},
     .noptions = 4, .options = {O_SCALE, O_QKNORM, O_LOGITS, O_HEADMAP}},
    {.name = "kla", .entry = "forward", .family = "delta", .page = "linattn_gdn(3)", .packed = 1,
     .ntensors = 10, .tensors = {DELTA_FWD(KLA_ETA("BTH"))},
     .noptions = 6, .options = {O_ALGO, O_CHUNK, O_SCALE, O_EPS, O_QKNORM, O_HEADMAP}},
    {.name = "kla", .entry = "step", .family = "delta", .page = "linattn_gdn(3)",
     .ntensors = 7, .tensors = {DELTA_STEP(KLA_ETA("BH"))},
     .noptions = 4, .options = {O_SCALE, O_EPS, O_QKNORM, O_HEADMAP}},
    {.name = "gla", .entry = "forward", .f32_states = 1, .family = "delta", .page = "linattn_gdn(3)", .packed = 1,
     .ntensors = 9,
     .tensors = {DELTA_QKVG("BT"), TN("h0", "NHKV", IN, 1, -1, -1, -1, 1), DELTA_O("BT"),
                 TN("hT", "NHKV", OUT, 1, -1, -1, 0, 0), DELTA_SERVE},
     .noptions = 5, .options = {O_ALGO, O_CHUNK, O_SCALE, O_QKNORM, O_HEADMAP}},
    {.name = "gla", .entry = "step", .f32_states = 1, .family = "delta", .page = "linattn_gdn(3)",
     .ntensors = 6,
     .tensors = {DELTA_QKVG("B"), TN("state_h", "BHKV", INOUT, 0, -1, -1, -1, 1), DELTA_O("B")},
     .noptions = 3, .options = {O_SCALE, O_QKNORM, O_HEADMAP}},
    {.name = "gka", .entry = "forward", .f32_states = 1, .family = "gka", .page = "linattn_gka(3)", .packed = 1,
     .ntensors = 11,
     .tensors = {QKV("BTH"), LOGDECAY("g", "BTH"),
                 TR("beta", "BTH", IN, 1, -1, LINATTN_RANGE_FINITE_NUMS, 0, 1), UNIT("alpha", "BTH", 1),
                 TN("kk0", "NHKK", IN, 1, 7, -1, 0, 1), TN("kv0", "NHKV", IN, 1, 6, -1, -1, 1),
                 TN("o", "BTHV", OUT, 0, -1, -1, 0, 0), TN("kkT", "NHKK", OUT, 1, 10, -1, 0, 0),
                 TN("kvT", "NHKV", OUT, 1, 9, -1, 0, 0)},
     .noptions = 5, .options = {O_ALGO, O_CHUNK, O_SCALE, O_RIDGE, O_ITERS}},
    {.name = "gka", .entry = "step", .f32_states = 1, .family = "gka", .page = "linattn_gka(3)",
     .ntensors = 9,
     .tensors = {QKV("BH"), LOGDECAY("g", "BH"),
                 TR("beta", "BH", IN, 1, -1, LINATTN_RANGE_FINITE_NUMS, 0, 1), UNIT("alpha", "BH", 1),
                 TN("state_kk", "BHKK", INOUT, 0, -1, -1, 0, 1),
                 TN("state_kv", "BHKV", INOUT, 0, -1, -1, -1, 1), TN("o", "BHV", OUT, 0, -1, -1, 0, 0)},
     .noptions = 3, .options = {O_SCALE, O_RIDGE, O_ITERS}},
    {.name = "kalman", .entry = "forward", .family = "kalman", .page = "linattn_kalman(3)",
     .packed = 1, .ntensors = 12,
     .tensors = {TN("v", "BTM", IN, 0, -1, -1, -1, 1),
                 TR("lam_v", "BTM", IN, 0, -1, LINATTN_RANGE_POS_NUMS, 0.5f, 2),
                 TN("k", "BTS", IN, 0, -1, -1, -1, 1), TN("q", "BTS", IN, 0, -1, -1, -1, 1),
                 TR("decay", "MS", IN, 0, -1, LINATTN_RANGE_OPEN_UNIT_NUMS, 0.5f, 0.99f),
                 TR("noise", "MS", IN, 0, -1, LINATTN_RANGE_NONNEG_NUMS, 0.001f, 0.1f),
                 TR("lam0", "NMS", IN, 1, 7, LINATTN_RANGE_POS_NUMS, 0.5f, 2),
                 TN("eta0", "NMS", IN, 1, 6, -1, -1, 1), TN("y", "BTM", OUT, 0, -1, -1, 0, 0),
                 TN("yvar", "BTM", OUT, 1, -1, -1, 0, 0), TN("lamT", "NMS", OUT, 1, 11, -1, 0, 0),
                 TN("etaT", "NMS", OUT, 1, 10, -1, 0, 0)},
     .noptions = 2, .options = {O_ALGO, OPT("chunk", LINATTN_OPT_INT, 0, 1e9, 0)}},
    {.name = "kalman", .entry = "step", .family = "kalman", .page = "linattn_kalman(3)",
     .ntensors = 10,
     .tensors = {TN("v", "BM", IN, 0, -1, -1, -1, 1),
                 TR("lam_v", "BM", IN, 0, -1, LINATTN_RANGE_POS_NUMS, 0.5f, 2),
                 TN("k", "BS", IN, 0, -1, -1, -1, 1), TN("q", "BS", IN, 0, -1, -1, -1, 1),
                 TR("decay", "MS", IN, 0, -1, LINATTN_RANGE_OPEN_UNIT_NUMS, 0.5f, 0.99f),
                 TR("noise", "MS", IN, 0, -1, LINATTN_RANGE_NONNEG_NUMS, 0.001f, 0.1f),
                 TR("state_lam", "BMS", INOUT, 0, -1, LINATTN_RANGE_POS_NUMS, 0.5f, 2),
                 TN("state_eta", "BMS", INOUT, 0, -1, -1, -1, 1), TN("y", "BM", OUT, 0, -1, -1, 0, 0),
                 TN("yvar", "BM", OUT, 1, -1, -1, 0, 0)},
     .noptions = 0},
    {.name = "ela", .entry = "forward", .f32_states = 1, .family = "ela", .page = "linattn_ela(3)", .packed = 1,
     .ntensors = 10,
     .tensors = {QKV("BTH"), TN("s0", "NHFV", IN, 1, 4, -1, 0, 1), TN("z0", "NHF", IN, 1, 3, -1, 1, 2),
                 TN("c0", "NHF", IN, 1, -1, 3, -1, 1), TN("o", "BTHV", OUT, 0, -1, -1, 0, 0),
                 TN("sT", "NHFV", OUT, 1, 8, -1, 0, 0), TN("zT", "NHF", OUT, 1, 7, -1, 0, 0),
                 TN("cT", "NHF", OUT, 1, -1, 7, 0, 0)},
     .noptions = 6,
     .options = {O_ALGO, O_CHUNK, O_QKSCALE, O_FEATURE, O_FLAG("bidirectional"),
                 O_FLAG("plain_exp")}},
    {.name = "ela", .entry = "step", .f32_states = 1, .family = "ela", .page = "linattn_ela(3)",
     .ntensors = 7,
     .tensors = {QKV("BH"), TN("state_s", "BHFV", INOUT, 0, -1, -1, 0, 1),
                 TN("state_z", "BHF", INOUT, 0, -1, -1, 1, 2),
                 TN("state_c", "BHF", INOUT, 1, -1, -1, -1, 1), TN("o", "BHV", OUT, 0, -1, -1, 0, 0)},
     .noptions = 3, .options = {O_QKSCALE, O_FEATURE, O_FLAG("plain_exp")}},
    {.name = "softmax", .entry = "forward", .family = "softmax", .page = "linattn_softmax(3)",
     .packed = 1, .ntensors = 4, .tensors = {QJKJV("BT"), TN("o", "BTHV", OUT, 0, -1, -1, 0, 0)},
     .noptions = 2, .options = {O_CHUNK, O_SCALE}},
    {.name = "softmax", .entry = "step", .family = "softmax", .page = "linattn_softmax(3)",
     .cache = 1, .ntensors = 4, .tensors = {QJKJV("B"), TN("o", "BHV", OUT, 0, -1, -1, 0, 0)},
     .noptions = 1, .options = {O_SCALE}},
};
#define NOPS ((int)(sizeof TABLE / sizeof *TABLE))

int linattn_op_count(void) { return NOPS; }

const linattn_op_info *linattn_op_at(int i) { return i >= 0 && i < NOPS ? &TABLE[i] : NULL; }

const linattn_op_info *linattn_op_find(const char *name, const char *entry)
{
    if (!name || !entry) {
        linattn_fail(LINATTN_ENULL, "linattn_op_find: name or entry is NULL");
        return NULL;
    }
    for (int i = 0; i < NOPS; i++)
        if (!strcmp(TABLE[i].name, name) && !strcmp(TABLE[i].entry, entry)) return &TABLE[i];
    char list[160] = "";
    for (int i = 0; i < NOPS; i += 2)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 TABLE[i].name);
    linattn_fail(LINATTN_EINVAL, "no operator '%s' with entry '%s' (operators: %s; entries: "
                 "forward, step)", name, entry, list);
    return NULL;
}

int linattn_op_tensor_index(const linattn_op_info *op, const char *name)
{
    for (int i = 0; op && name && i < op->ntensors; i++)
        if (!strcmp(op->tensors[i].name, name)) return i;
    return -1;
}

int linattn_op_option_index(const linattn_op_info *op, const char *name)
{
    for (int i = 0; op && name && i < op->noptions; i++)
        if (!strcmp(op->options[i].name, name)) return i;
    return -1;
}

void linattn_op_args_init(const linattn_op_info *op, linattn_op_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; op && i < op->noptions; i++) a->opt[i] = op->options[i].def;
}

int linattn_op_option_parse(const linattn_op_info *op, int i, const char *text, double *out)
{
    if (!op || !text || !out) return linattn_fail(LINATTN_ENULL, "option: NULL argument");
    if (i < 0 || i >= op->noptions)
        return linattn_fail(LINATTN_EINVAL, "%s %s: no option %d", op->name, op->entry, i);
    const linattn_op_option *o = &op->options[i];
    if (o->type == LINATTN_OPT_ALGO) {
        static const char *const names[] = {"auto", "recurrent", "chunk"};
        for (int j = 0; j < 3; j++)
            if (!strcmp(text, names[j])) return *out = j, LINATTN_OK;
        return linattn_fail(LINATTN_EINVAL, "%s %s: expected auto, recurrent or chunk", o->name,
                            text);
    }
    if (o->type == LINATTN_OPT_FEATURE) {
        linattn_ela_feature f;
        if (linattn_ela_feature_parse(text, &f)) return LINATTN_EINVAL;
        return *out = (double)f, LINATTN_OK;
    }
    char *end;
    const double x = strtod(text, &end);
    const int integral = o->type != LINATTN_OPT_FLOAT;
    if (end == text || *end || !isfinite(x) || (integral && x != floor(x)) || x < o->lo ||
        x > o->hi || (o->nonzero && x == 0) || (!integral && fabs(x) > FLT_MAX)) {
        if (o->type == LINATTN_OPT_FLAG)
            return linattn_fail(LINATTN_ERANGE, "%s %s: expected 0 or 1", o->name, text);
        if (integral)
            return linattn_fail(LINATTN_ERANGE, "%s %s: expected an integer %.0f..%.0f", o->name,
                                text, o->lo, o->hi);
        if (o->lo == 0)
            return linattn_fail(LINATTN_ERANGE, "%s %s: expected a finite number %s 0", o->name,
                                text, o->nonzero ? ">" : ">=");
        return linattn_fail(LINATTN_ERANGE, "%s %s: expected a finite number", o->name, text);
    }
    *out = x;
    return LINATTN_OK;
}

static int letter(char c) { return c >= 'A' && c <= 'Z' ? c - 'A' : -1; }

void linattn_op_dims(const linattn_op_info *op, const linattn_op_args *a,
                     int64_t dims[LINATTN_OP_LETTERS])
{
    if (!op || !a || !dims) return;
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_op_tensor *d = &op->tensors[i];
        const linattn_tensor *t = &a->t[i];
        const int tail = d->tail && t->ndim == d->ndim + 1;
        if (!linattn_given(t) || (t->ndim != d->ndim && !tail)) continue;
        for (int j = 0; j < t->ndim; j++) {
            const int l = letter(j < d->ndim ? d->dims[j] : d->tail);
            if (l >= 0 && dims[l] <= 0 && t->shape[j] > 0) dims[l] = t->shape[j];
        }
    }
#define L_(c) dims[(c) - 'A']
    if (L_('N') <= 0) L_('N') = a->cu_seqlens ? a->n_seqs : L_('B');
    if (L_('J') <= 0) L_('J') = L_('H'); /* key heads: one a value head */
    if (L_('Q') <= 0) L_('Q') = L_('J'); /* query heads: one a key head */
    if (L_('O') <= 0) L_('O') = L_('Q') != L_('J') ? L_('Q') : L_('H');
#undef L_
    const int fo = linattn_op_option_index(op, "feature");
    if (fo >= 0 && dims['F' - 'A'] <= 0 && dims['K' - 'A'] > 0) {
        const int64_t F = linattn_ela_feature_dim((linattn_ela_feature)a->opt[fo], dims['K' - 'A']);
        dims['F' - 'A'] = F > 0 ? F : 0;
    }
}

int linattn_op_shape(const linattn_op_info *op, int i, const int64_t dims[LINATTN_OP_LETTERS],
                     int64_t shape[LINATTN_MAX_DIMS])
{
    if (!op || !dims || !shape) return linattn_fail(LINATTN_ENULL, "linattn_op_shape: NULL argument");
    if (i < 0 || i >= op->ntensors)
        return linattn_fail(LINATTN_EINVAL, "%s %s: no tensor %d", op->name, op->entry, i);
    const linattn_op_tensor *d = &op->tensors[i];
    for (int j = 0; j < LINATTN_MAX_DIMS; j++) shape[j] = 1;
    for (int j = 0; j < d->ndim; j++) {
        const int l = letter(d->dims[j]);
        if (l < 0 || dims[l] <= 0)
            return linattn_fail(LINATTN_ESHAPE, "%s: dimension %d (%c) is not known", d->name, j,
                                d->dims[j]);
        shape[j] = dims[l];
    }
    const int l = letter(d->tail);
    if (l >= 0 && dims[l] > 0 && d->ndim < LINATTN_MAX_DIMS) shape[d->ndim] = dims[l];
    return LINATTN_OK;
}

int linattn_op_rank(const linattn_op_info *op, int i, const int64_t dims[LINATTN_OP_LETTERS])
{
    if (!op || !dims || i < 0 || i >= op->ntensors) return 0;
    const linattn_op_tensor *d = &op->tensors[i];
    const int l = letter(d->tail);
    return d->ndim + (l >= 0 && dims[l] > 0 && d->ndim < LINATTN_MAX_DIMS);
}

/* ---- calls: the table's order into each entry point's structs ------------- */

#define T(i) (a->t[i])

/* Option `name` of the call into *dst, when the entry point has it. */
static void take_f(const linattn_op_info *op, const linattn_op_args *a, const char *name,
                   float *dst)
{
    const int i = linattn_op_option_index(op, name);
    if (i >= 0) *dst = (float)a->opt[i];
}
static void take_i(const linattn_op_info *op, const linattn_op_args *a, const char *name, int *dst)
{
    const int i = linattn_op_option_index(op, name);
    if (i >= 0) *dst = (int)a->opt[i];
}
/* algo and chunk, which every forward with a chunked form takes */
static void take_form(const linattn_op_info *op, const linattn_op_args *a, linattn_algo *algo,
                      int *chunk)
{
    int x = (int)*algo;
    take_i(op, a, "algo", &x);
    *algo = (linattn_algo)x;
    take_i(op, a, "chunk", chunk);
}

static int call_delta(linattn_ctx *c, const linattn_op_info *info, int variant, int step,
                      const linattn_op_args *a)
{
    const linattn_delta_op op = (linattn_delta_op)variant;
    const int w = op != LINATTN_OP_GLA; /* a write strength tensor at index 4 */
    linattn_delta_opts o;
    linattn_delta_opts_init(&o);
    take_form(info, a, &o.algo, &o.chunk);
    take_f(info, a, "scale", &o.scale);
    take_f(info, a, "eps", &o.eps);
    take_i(info, a, "qk_l2norm", &o.qk_l2norm);
    take_i(info, a, "beta_logits", &o.beta_logits);
    take_i(info, a, "head_map", &o.head_map);
    if (!step) {
        linattn_delta_io io = {.q = T(0), .k = T(1), .v = T(2), .g = T(3),
                               .beta = w ? T(4) : linattn_tensor_none(), .h0 = T(4 + w),
                               .o = T(5 + w), .hT = T(6 + w), .cu_seqlens = a->cu_seqlens,
                               .n_seqs = a->n_seqs, .hW = T(7 + w), .hC = T(8 + w),
                               .state_indices = a->state_indices,
                               .has_initial_state = a->has_initial_state,
                               .checkpoint_every = a->checkpoint_every,
                               .checkpoint_offsets = a->checkpoint_offsets};
        return linattn_delta_forward(c, op, &io, &o);
    }
    linattn_delta_step_io io = {.q = T(0), .k = T(1), .v = T(2), .g = T(3),
                                .beta = w ? T(4) : linattn_tensor_none(), .state_h = T(4 + w),
                                .o = T(5 + w), .state_indices = a->state_indices,
                                .has_initial_state = a->has_initial_state};
    return linattn_delta_step(c, op, &io, &o);
}

static int call_gka(linattn_ctx *c, const linattn_op_info *info, int variant, int step,
                    const linattn_op_args *a)
{
    (void)variant;
    linattn_gka_opts o;
    linattn_gka_opts_init(&o);
    take_form(info, a, &o.algo, &o.chunk);
    take_f(info, a, "scale", &o.scale);
    take_f(info, a, "ridge", &o.ridge);
    take_i(info, a, "iters", &o.iters);
    if (step) {
        linattn_gka_step_io io = {.q = T(0), .k = T(1), .v = T(2), .g = T(3), .beta = T(4),
                                  .alpha = T(5), .state_kk = T(6), .state_kv = T(7), .o = T(8),
                                  .state_indices = a->state_indices,
                                  .has_initial_state = a->has_initial_state};
        return linattn_gka_step(c, &io, &o);
    }
    linattn_gka_io io = {.q = T(0), .k = T(1), .v = T(2), .g = T(3), .beta = T(4),
                         .alpha = T(5), .kk0 = T(6), .kv0 = T(7), .o = T(8), .kkT = T(9),
                         .kvT = T(10), .cu_seqlens = a->cu_seqlens, .n_seqs = a->n_seqs,
                         .state_indices = a->state_indices,
                         .has_initial_state = a->has_initial_state};
    return linattn_gka_forward(c, &io, &o);
}

static int call_kalman(linattn_ctx *c, const linattn_op_info *info, int variant, int step,
                       const linattn_op_args *a)
{
    (void)variant;
    linattn_kalman_opts o;
    linattn_kalman_opts_init(&o);
    take_form(info, a, &o.algo, &o.chunk);
    if (step) {
        linattn_kalman_step_io io = {.v = T(0), .lam_v = T(1), .k = T(2), .q = T(3),
                                     .decay = T(4), .noise = T(5), .state_lam = T(6),
                                     .state_eta = T(7), .y = T(8), .yvar = T(9),
                                     .state_indices = a->state_indices,
                                     .has_initial_state = a->has_initial_state};
        return linattn_kalman_step(c, &io, &o);
    }
    linattn_kalman_io io = {.v = T(0), .lam_v = T(1), .k = T(2), .q = T(3), .decay = T(4),
                            .noise = T(5), .lam0 = T(6), .eta0 = T(7), .y = T(8), .yvar = T(9),
                            .lamT = T(10), .etaT = T(11), .cu_seqlens = a->cu_seqlens,
                            .n_seqs = a->n_seqs, .state_indices = a->state_indices,
                            .has_initial_state = a->has_initial_state};
    return linattn_kalman_forward(c, &io, &o);
}

static int call_ela(linattn_ctx *c, const linattn_op_info *info, int variant, int step,
                    const linattn_op_args *a)
{
    (void)variant;
    linattn_ela_opts o;
    int feature = (int)LINATTN_FEATURE_EXP;
    linattn_ela_opts_init(&o);
    take_form(info, a, &o.algo, &o.chunk);
    take_f(info, a, "qk_scale", &o.qk_scale);
    take_i(info, a, "feature", &feature);
    o.feature = (linattn_ela_feature)feature;
    take_i(info, a, "bidirectional", &o.bidirectional);
    take_i(info, a, "plain_exp", &o.plain_exp);
    if (step) {
        linattn_ela_step_io io = {.q = T(0), .k = T(1), .v = T(2), .state_s = T(3),
                                  .state_z = T(4), .state_c = T(5), .o = T(6),
                                  .state_indices = a->state_indices,
                                  .has_initial_state = a->has_initial_state};
        return linattn_ela_step(c, &io, &o);
    }
    linattn_ela_io io = {.q = T(0), .k = T(1), .v = T(2), .s0 = T(3), .z0 = T(4), .c0 = T(5),
                         .o = T(6), .sT = T(7), .zT = T(8), .cT = T(9),
                         .cu_seqlens = a->cu_seqlens, .n_seqs = a->n_seqs,
                         .state_indices = a->state_indices,
                         .has_initial_state = a->has_initial_state};
    return linattn_ela_forward(c, &io, &o);
}

static int call_softmax(linattn_ctx *c, const linattn_op_info *info, int variant, int step,
                        const linattn_op_args *a)
{
    (void)variant;
    linattn_softmax_opts o;
    linattn_softmax_opts_init(&o);
    take_i(info, a, "chunk", &o.chunk);
    take_f(info, a, "scale", &o.scale);
    if (step) {
        linattn_softmax_step_io io = {.q = T(0), .k = T(1), .v = T(2), .o = T(3)};
        return linattn_softmax_step(c, a->cache, &io, &o);
    }
    linattn_softmax_io io = {.q = T(0), .k = T(1), .v = T(2), .o = T(3),
                             .cu_seqlens = a->cu_seqlens, .n_seqs = a->n_seqs};
    return linattn_softmax_forward(c, &io, &o);
}

/* How each row of TABLE is run, in the same order. */
typedef struct op_impl {
    int (*call)(linattn_ctx *c, const linattn_op_info *op, int variant, int step,
                const linattn_op_args *a);
    int variant;
} op_impl;

static const op_impl IMPL[] = {
    {call_delta, LINATTN_OP_GDN}, {call_delta, LINATTN_OP_GDN},
    {call_delta, LINATTN_OP_KLA}, {call_delta, LINATTN_OP_KLA},
    {call_delta, LINATTN_OP_GLA}, {call_delta, LINATTN_OP_GLA},
    {call_gka, 0},     {call_gka, 0},
    {call_kalman, 0},  {call_kalman, 0},
    {call_ela, 0},     {call_ela, 0},
    {call_softmax, 0}, {call_softmax, 0},
};
_Static_assert(sizeof IMPL / sizeof *IMPL == sizeof TABLE / sizeof *TABLE,
               "one implementation per row of the operator table");

int linattn_op_call(linattn_ctx *ctx, const linattn_op_info *op, const linattn_op_args *a)
{
    if (!op || !a) return linattn_fail(LINATTN_ENULL, "linattn_op_call: op or args is NULL");
    for (int i = 0; i < NOPS; i++)
        if (op == &TABLE[i]) return IMPL[i].call(ctx, op, IMPL[i].variant, !strcmp(op->entry, "step"), a);
    return linattn_fail(LINATTN_EINVAL, "linattn_op_call: op is not an entry of the table");
}
