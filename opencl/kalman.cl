/* linattn - OpenCL C 1.2 kernels of Kalman linear attention (kalman),
 * linattn_kalman(3).  Built per S (passed as K).  No barriers, no
 * local memory: every work-item is independent.
 *
 * Time is cut into pieces (one piece per sequence: the plain recurrence).
 *   kalman_sum    one work-item per (lane, piece): the piece's composed map
 *                 (7 numbers, trace normalised) for every piece but the last
 *                 of its sequence
 *   kalman_enter  one work-item per (sequence, lane): walks the pieces,
 *                 writing the state entering each one
 *   kalman_seq    one work-item per (channel, piece): the recurrence over
 *                 the piece, the S lanes of the channel in registers, so the
 *                 sums over s for y and yvar need no communication
 * ptab per piece: {first row (b*T + t), tokens, sequence, last of it}. */

#define NS K
#define EPS 1e-12f

__kernel void kalman_sum(__global const long *ptab, __global const float *v,
                         __global const float *lv, __global const float *k,
                         __global const float *a_, __global const float *p_, long M,
                         __global float *sums)
{
    const long lane = get_global_id(0), g = get_global_id(1), MS = M * NS;
    if (lane >= MS || ptab[4 * g + 3]) return;
    const long m = lane / NS, row0 = ptab[4 * g], len = ptab[4 * g + 1];
    const int s = (int)(lane % NS);
    const float a = a_[lane], a2 = fmax(a * a, EPS), p = fmax(p_[lane], EPS);
    float P11 = 1.0f, P12 = 0.0f, P21 = 0.0f, P22 = 1.0f, q1 = 0.0f, q2 = 0.0f, sc = 1.0f;
    for (long t = 0; t < len; t++) {
        const long row = row0 + t;
        const float l = lv[row * M + m], ks = k[row * NS + s];
        const float phi = l * ks * ks, r = l * v[row * M + m] * ks;
        const float A = p * phi + 1.0f, B = a2 * phi;
        const float n11 = A * P11 + B * P21, n12 = A * P12 + B * P22;
        const float n21 = p * P11 + a2 * P21, n22 = p * P12 + a2 * P22;
        const float tr = 1.0f / (n11 + n22);
        q1 = (r * n21 + a * q1) * tr;
        q2 = (r * n22 + a * q2) * tr;
        sc = a * sc * tr;
        P11 = n11 * tr;
        P12 = n12 * tr;
        P21 = n21 * tr;
        P22 = n22 * tr;
    }
    __global float *o = sums + g * 7 * MS + lane;
    o[0] = P11;
    o[MS] = P12;
    o[2 * MS] = P21;
    o[3 * MS] = P22;
    o[4 * MS] = q1;
    o[5 * MS] = q2;
    o[6 * MS] = sc;
}

/* first[n]: the first piece of sequence n (first[nseq] = pieces). */
__kernel void kalman_enter(__global const long *first, __global const float *lam0,
                           __global const float *eta0, int has_h0, __global const float *sums,
                           long M, __global float *elam, __global float *eeta)
{
    const long lane = get_global_id(0), n = get_global_id(1), MS = M * NS;
    if (lane >= MS) return;
    float lam = has_h0 ? lam0[n * MS + lane] : 1.0f, eta = has_h0 ? eta0[n * MS + lane] : 0.0f;
    for (long g = first[n]; g < first[n + 1]; g++) {
        elam[g * MS + lane] = lam;
        eeta[g * MS + lane] = eta;
        if (g + 1 == first[n + 1]) break;
        __global const float *m = sums + g * 7 * MS + lane;
        const float den = m[2 * MS] * lam + m[3 * MS];
        const float nl = (m[0] * lam + m[MS]) / den;
        eta = (m[4 * MS] * lam + m[5 * MS] + m[6 * MS] * eta) / den;
        lam = nl;
    }
}

/* The entering state of piece g: lin/ein at (in_piece ? g : sequence) * M*S
 * (has_in 0: 1 and 0).  The last piece of a sequence writes the final state
 * to lout/eout at sequence * M*S when has_out. */
__kernel void kalman_seq(__global const long *ptab, __global const float *v,
                         __global const float *lv, __global const float *k,
                         __global const float *q, __global const float *a_,
                         __global const float *p_, long M, __global const float *lin,
                         __global const float *ein, int has_in, int in_piece,
                         __global float *lout, __global float *eout, int has_out,
                         __global float *y, __global float *yvar, int has_yvar)
{
    const long m = get_global_id(0), g = get_global_id(1), MS = M * NS;
    if (m >= M) return;
    const long row0 = ptab[4 * g], len = ptab[4 * g + 1], n = ptab[4 * g + 2];
    const long base = m * NS, in0 = (in_piece ? g : n) * MS + base;
    float lam[NS], eta[NS], a[NS], p[NS];
    for (int s = 0; s < NS; s++) {
        lam[s] = has_in ? lin[in0 + s] : 1.0f;
        eta[s] = has_in ? ein[in0 + s] : 0.0f;
        a[s] = a_[base + s];
        p[s] = fmax(p_[base + s], EPS);
    }
    for (long t = 0; t < len; t++) {
        const long row = row0 + t;
        const float l = lv[row * M + m], obs = l * v[row * M + m];
        __global const float *kt = k + row * NS, *qt = q + row * NS;
        float ys = 0.0f, yv = 0.0f;
        for (int s = 0; s < NS; s++) {
            const float ks = kt[s], qs = qt[s];
            const float inv = 1.0f / (p[s] * lam[s] + fmax(a[s] * a[s], EPS));
            lam[s] = lam[s] * inv + l * ks * ks;
            eta[s] = a[s] * inv * eta[s] + obs * ks;
            const float r = 1.0f / fmax(lam[s], EPS);
            ys += eta[s] * r * qs;
            yv += r * qs * qs;
        }
        y[row * M + m] = ys;
        if (has_yvar) yvar[row * M + m] = yv;
    }
    if (has_out && ptab[4 * g + 3])
        for (int s = 0; s < NS; s++) {
            lout[n * MS + base + s] = lam[s];
            eout[n * MS + base + s] = eta[s];
        }
}
