/* linattn - the kalman filter in float (linattn_kalman(3)) as
 * function bodies compiled once per ISA.  The includer defines the names
 * (KALMAN_REC_NAME, KALMAN_SUM_NAME) and a small vector layer:
 *
 *   KF_W            lanes per vector          KF_T          the vector type
 *   KF_LD(p)        load KF_W floats (p 16-byte aligned at least)
 *   KF_ST(p, x)     store                     KF_SET(x)     broadcast
 *   KF_ADD, KF_MUL  a+b, a*b                  KF_FMA(a,b,c) a*b + c
 *   KF_MAX(a, b)                              KF_RCP(x)     1/x, to a few ulp
 *
 * lib/scalar.c gives the scalar one-lane layer (KF_RCP exact);
 * simd/<isa>/kalman_<isa>.c give the vector ones (KF_RCP: the hardware
 * estimate refined by Newton steps).  Vectors run across channels, so the
 * sums over the S states of a channel stay in one register and in order;
 * channels past the last full vector take the scalar path, exact division.
 *
 * Inside a job the state is transposed to [S][LINATTN_KALMAN_BLOCK] so a
 * vector of channels of one state is contiguous. */
#include <string.h>
#include "kernels.h"

#if !defined(KALMAN_REC_NAME) || !defined(KALMAN_SUM_NAME) || !defined(KF_W)
#error "define KALMAN_REC_NAME, KALMAN_SUM_NAME and the KF_ vector layer first"
#endif

#define KF_BLK LINATTN_KALMAN_BLOCK
#define KF_EPS 1e-12f

/* The transposed per-job arrays inside work. */
typedef struct kf_arrays {
    float *lam, *eta;               /* [S][KF_BLK], in work */
    float *a, *a2, *p;              /* [S][KF_BLK], the job's ct */
    float *k, *k2, *q, *q2;         /* [S]: this token's map and readout */
} kf_arrays;

static void kf_setup(const linattn_kalman_job *jb, kf_arrays *w, int with_state)
{
    const int S = jb->S, n = jb->n;
    const size_t sz = (size_t)S * KF_BLK;
    w->lam = jb->work;
    w->eta = w->lam + sz;
    w->k = w->eta + sz;
    w->k2 = w->k + S;
    w->q = w->k2 + S;
    w->q2 = w->q + S;
    w->a = (float *)jb->ct;
    w->a2 = w->a + sz;
    w->p = w->a2 + sz;
    if (!with_state) return;
    for (int s = 0; s < S; s++) /* written in order: the reads stride by S */
        for (int c = 0; c < n; c++) {
            const size_t i = (size_t)s * KF_BLK + c, j = (size_t)c * S + s;
            w->lam[i] = jb->lam_in ? jb->lam_in[j] : 1.0f;
            w->eta[i] = jb->eta_in ? jb->eta_in[j] : 0.0f;
        }
}

static void kf_token_maps(const linattn_kalman_job *jb, const kf_arrays *w, int64_t t)
{
    const float *k = jb->k + t * jb->S, *q = jb->q + t * jb->S;
    for (int s = 0; s < jb->S; s++) {
        w->k[s] = k[s];
        w->k2[s] = k[s] * k[s];
        w->q[s] = q[s];
        w->q2[s] = q[s] * q[s];
    }
}

/* Rows a few tokens ahead: the token stride is M floats, past what the
 * hardware prefetchers follow once M is large. */
static void kf_prefetch(const linattn_kalman_job *jb, int64_t t)
{
#if defined(__GNUC__)
    if (t + 8 < jb->T) {
        const int64_t o = (t + 8) * jb->sm;
        for (int c = 0; c < jb->n; c += 16) {
            __builtin_prefetch(jb->v + o + c);
            __builtin_prefetch(jb->lv + o + c);
        }
    }
#else
    (void)jb;
    (void)t;
#endif
}

void KALMAN_REC_NAME(const linattn_kalman_job *jb)
{
    const int S = jb->S, n = jb->n, nv = n / KF_W * KF_W;
    kf_arrays w;
    kf_setup(jb, &w, 1);
    for (int64_t t = 0; t < jb->T; t++) {
        const float *lvt = jb->lv + t * jb->sm, *vt = jb->v + t * jb->sm;
        float *yt = jb->y + t * jb->sm;
        kf_token_maps(jb, &w, t);
        kf_prefetch(jb, t);
        for (int c = 0; c < nv; c += KF_W) {
            const KF_T lv = KF_LD(lvt + c), obs = KF_MUL(lv, KF_LD(vt + c));
            KF_T y = KF_SET(0.0f), yv = KF_SET(0.0f);
            for (int s = 0; s < S; s++) {
                const size_t i = (size_t)s * KF_BLK + c;
                KF_T lam = KF_LD(w.lam + i), eta = KF_LD(w.eta + i);
                const KF_T inv = KF_RCP(KF_FMA(KF_LD(w.p + i), lam, KF_LD(w.a2 + i)));
                lam = KF_FMA(lam, inv, KF_MUL(lv, KF_SET(w.k2[s])));
                eta = KF_FMA(KF_MUL(KF_LD(w.a + i), inv), eta, KF_MUL(obs, KF_SET(w.k[s])));
                KF_ST(w.lam + i, lam);
                KF_ST(w.eta + i, eta);
                const KF_T r = KF_RCP(KF_MAX(lam, KF_SET(KF_EPS)));
                y = KF_FMA(KF_MUL(eta, r), KF_SET(w.q[s]), y);
                yv = KF_FMA(r, KF_SET(w.q2[s]), yv);
            }
            KF_ST(yt + c, y);
            if (jb->yvar) KF_ST(jb->yvar + t * jb->sm + c, yv);
        }
        for (int c = nv; c < n; c++) { /* the channels past the last vector */
            const float lv = lvt[c], obs = lv * vt[c];
            float y = 0.0f, yv = 0.0f;
            for (int s = 0; s < S; s++) {
                const size_t i = (size_t)s * KF_BLK + c;
                float lam = w.lam[i], eta = w.eta[i];
                const float inv = 1.0f / (w.p[i] * lam + w.a2[i]);
                lam = lam * inv + lv * w.k2[s];
                eta = w.a[i] * inv * eta + obs * w.k[s];
                w.lam[i] = lam;
                w.eta[i] = eta;
                const float r = 1.0f / (lam > KF_EPS ? lam : KF_EPS);
                y += eta * r * w.q[s];
                yv += r * w.q2[s];
            }
            yt[c] = y;
            if (jb->yvar) jb->yvar[t * jb->sm + c] = yv;
        }
    }
    for (int c = 0; c < n; c++)
        for (int s = 0; s < S; s++) {
            jb->lam[(size_t)c * S + s] = w.lam[(size_t)s * KF_BLK + c];
            jb->eta[(size_t)c * S + s] = w.eta[(size_t)s * KF_BLK + c];
        }
}

/* One token composed onto the map (P, q, s) of every lane of vector c..
 * (paper form of the leaf, [[1 + p phi, a2 phi], [p, a2]] and the row
 * [r p, r a2, a]), then everything divided by the new trace. */
#define KF_COMPOSE(T_, LD_, ST_, SET_, ADD_, MUL_, FMA_, RCP_, base, lv, obs)               \
    do {                                                                                   \
        for (int s = 0; s < S; s++) {                                                      \
            const size_t i = (size_t)s * KF_BLK + (base);                                  \
            const T_ a = LD_(w.a + i), a2 = LD_(w.a2 + i), p = LD_(w.p + i);               \
            const T_ phi = MUL_(lv, SET_(w.k2[s])), r = MUL_(obs, SET_(w.k[s]));           \
            const T_ A = FMA_(p, phi, SET_(1.0f)), B = MUL_(a2, phi);                      \
            const T_ P11 = LD_(m[0] + i), P12 = LD_(m[1] + i);                             \
            const T_ P21 = LD_(m[2] + i), P22 = LD_(m[3] + i);                             \
            const T_ n11 = FMA_(A, P11, MUL_(B, P21)), n12 = FMA_(A, P12, MUL_(B, P22));   \
            const T_ n21 = FMA_(p, P11, MUL_(a2, P21)), n22 = FMA_(p, P12, MUL_(a2, P22)); \
            const T_ q1 = FMA_(r, n21, MUL_(a, LD_(m[4] + i)));                            \
            const T_ q2 = FMA_(r, n22, MUL_(a, LD_(m[5] + i)));                            \
            const T_ sc = MUL_(a, LD_(m[6] + i));                                          \
            const T_ tr = RCP_(ADD_(n11, n22));                                            \
            ST_(m[0] + i, MUL_(n11, tr));                                                  \
            ST_(m[1] + i, MUL_(n12, tr));                                                  \
            ST_(m[2] + i, MUL_(n21, tr));                                                  \
            ST_(m[3] + i, MUL_(n22, tr));                                                  \
            ST_(m[4] + i, MUL_(q1, tr));                                                   \
            ST_(m[5] + i, MUL_(q2, tr));                                                   \
            ST_(m[6] + i, MUL_(sc, tr));                                                   \
        }                                                                                  \
    } while (0)

#define KF_S_LD(p) (*(p))
#define KF_S_ST(p, x) (*(p) = (x))
#define KF_S_SET(x) (x)
#define KF_S_ADD(a, b) ((a) + (b))
#define KF_S_MUL(a, b) ((a) * (b))
#define KF_S_FMA(a, b, c) ((a) * (b) + (c))
#define KF_S_RCP(x) (1.0f / (x))

void KALMAN_SUM_NAME(const linattn_kalman_job *jb, float *sum)
{
    const int S = jb->S, n = jb->n, nv = n / KF_W * KF_W;
    const size_t sz = (size_t)S * KF_BLK;
    kf_arrays w;
    float *m[7];
    kf_setup(jb, &w, 0);
    for (int i = 0; i < 7; i++) m[i] = sum + i * sz;
    for (size_t i = 0; i < sz; i++) { /* the identity map */
        m[0][i] = m[3][i] = m[6][i] = 1.0f;
        m[1][i] = m[2][i] = m[4][i] = m[5][i] = 0.0f;
    }
    for (int64_t t = 0; t < jb->T; t++) {
        const float *lvt = jb->lv + t * jb->sm, *vt = jb->v + t * jb->sm;
        kf_token_maps(jb, &w, t);
        kf_prefetch(jb, t);
        for (int c = 0; c < nv; c += KF_W) {
            const KF_T lv = KF_LD(lvt + c), obs = KF_MUL(lv, KF_LD(vt + c));
            KF_COMPOSE(KF_T, KF_LD, KF_ST, KF_SET, KF_ADD, KF_MUL, KF_FMA, KF_RCP, c, lv, obs);
        }
        for (int c = nv; c < n; c++) {
            const float lv = lvt[c], obs = lv * vt[c];
            KF_COMPOSE(float, KF_S_LD, KF_S_ST, KF_S_SET, KF_S_ADD, KF_S_MUL, KF_S_FMA, KF_S_RCP,
                       c, lv, obs);
        }
    }
}
