/*
 * rnn2c_ref.h - the reference kernels of rnn2c_runtime.h (which includes it, after the ISA
 * header it selects; not a header of its own).
 *
 * Every kernel an ISA header may replace is defined here in portable C99 as rnn2c_ref_<name>,
 * in every build. After each one, its public name rnn2c_<name> (the one the layer code calls)
 * falls back to it unless the ISA header defined its own: so an ISA header defines only what
 * it does better, under the same names, and the reference stays beside it for the kernel
 * tests (tests/test_kernels.py calls rnn2c_ref_<name> and rnn2c_<name> on the same buffers,
 * over edge shapes, on every host path and on emulated Cortex-M0+/M3/M4/M7). A reference that
 * is built from other kernels calls their public names, defined above it: each kernel is
 * checked against its own reference, one at a time.
 *
 * The kernels, lowest first:
 *   rnn2c_sat_s16, _sat_s8, _sat17   saturation                  ARMv7-M, ARM DSP: SSAT;
 *                                                               RISC-V: _sat_s8
 *   rnn2c_udiv_small                 a short unsigned division   ARMv6-M: shift and subtract
 *   rnn2c_interp_s16                 table interpolation         ARM DSP: SMLAD
 *   RNN2C_SIGNED(y, x)               y with the sign of x        ARMv6-M: a branch
 *   RNN2C_VPOS(i)                    where vector element i is   x86: (v0, v2, v1, v3)
 *   rnn2c_vec_s8, _vec_s16           a layer's int16 vector      x86; RISC-V: _vec_s8
 *   rnn2c_mac1 .. rnn2c_mac4         1 to 4 rows over the vector ARMv6-M, ARM DSP, x86
 *   rnn2c_mac_rows                   1 to 4 rows (rnn2c_macR)    -
 *   rnn2c_mac_rows_small             the same, a head's one pass ARM DSP
 *   rnn2c_mac1_s4 .. rnn2c_mac4_s4   1 to 4 rows of int4 weights ARM DSP
 *   rnn2c_mac_rows_s4                1 to 4 rows (rnn2c_macR_s4) -
 *   rnn2c_softmax_s8                 softmax of requantized rows x86
 *   rnn2c_dot_prep, rnn2c_dot_s8     an int8 dot product         ARM DSP
 *   rnn2c_wsum4                      4 weighted column sums      ARM DSP
 *   rnn2c_gru_pair_acc               two GRU units' rows         ARMv7-M, RISC-V
 *   rnn2c_gru_gates                  a GRU unit's gate arithmetic RISC-V
 *   rnn2c_lstm_gates                 an LSTM unit's gate arithmetic RISC-V
 *   rnn2c_isa_gru_s8 .. _lstm_s16    a layer's step over an ISA's own copy of its weights
 *                                    (the reference has none)    x86
 */
#ifndef RNN2C_REF_H
#define RNN2C_REF_H

/* ---------------------------------------------------------------- saturation */

RNN2C_INLINE int32_t rnn2c_ref_sat_s16(int32_t x)
{
    return x > INT16_MAX ? INT16_MAX : (x < INT16_MIN ? INT16_MIN : x);
}

RNN2C_INLINE int8_t rnn2c_ref_sat_s8(int32_t x)
{
    return (int8_t)(x > INT8_MAX ? INT8_MAX : (x < INT8_MIN ? INT8_MIN : x));
}

/* Saturate to 17 bits: [-65536, 65535]. */
RNN2C_INLINE int32_t rnn2c_ref_sat17(int32_t x)
{
    return x > 65535 ? 65535 : (x < -65536 ? -65536 : x);
}

#ifndef rnn2c_sat_s16
#define rnn2c_sat_s16 rnn2c_ref_sat_s16
#define rnn2c_sat_s8 rnn2c_ref_sat_s8
#define rnn2c_sat17 rnn2c_ref_sat17
#endif

/* ---------------------------------------------------------------- division */

/* num / den (den > 0) where the quotient is below 2^bits (the softmax's 0..256: 9 bits; the
 * attention context's 0..128: 8). */
RNN2C_INLINE uint32_t rnn2c_ref_udiv_small(uint32_t num, uint32_t den, int bits)
{
    (void)bits;
    return num / den;
}

#ifndef rnn2c_udiv_small
#define rnn2c_udiv_small rnn2c_ref_udiv_small
#endif

/* ---------------------------------------------------------------- interpolation */

/* Linear interpolation in a table at a >= 0 with `step_bits` fractional bits; the caller keeps
 * (a >> step_bits) + 1 inside the table. */
RNN2C_INLINE int32_t rnn2c_ref_interp_s16(const int16_t *table, int32_t a, int step_bits)
{
    const int16_t *at = table + (a >> step_bits);
    const int32_t frac = a & (((int32_t)1 << step_bits) - 1);
    const int32_t lo = at[0];
    return lo + (((at[1] - lo) * frac + ((int32_t)1 << (step_bits - 1))) >> step_bits);
}

#ifndef rnn2c_interp_s16
#define rnn2c_interp_s16 rnn2c_ref_interp_s16
#endif

/* ---------------------------------------------------------------- sign */

/* y with the sign of x, without a branch: s = x >> 31 is 0 or -1, and (y ^ s) - s is y or -y
 * (two data-processing instructions on Thumb-2, whose second operand may be shifted). */
#define RNN2C_REF_SIGNED(y, x) (((y) ^ ((x) >> 31)) - ((x) >> 31))

#ifndef RNN2C_SIGNED
#define RNN2C_SIGNED RNN2C_REF_SIGNED
#endif

/* ---------------------------------------------------------------- the int16 vector */

/* Where vector element i lives: in order. */
#define RNN2C_REF_VPOS(i) (i)

#ifndef RNN2C_VPOS
#define RNN2C_VPOS RNN2C_REF_VPOS
#endif

/* v[0 .. n4) = x << shift, zero padded from n. */
RNN2C_INLINE void rnn2c_ref_vec_s8(int16_t *v, const int8_t *x, uint32_t n, uint32_t n4,
                                   uint32_t shift)
{
    uint32_t i = 0;
    for (; i < n; ++i) {
        v[RNN2C_REF_VPOS(i)] = (int16_t)((int32_t)x[i] * ((int32_t)1 << shift));
    }
    for (; i < n4; ++i) {
        v[RNN2C_REF_VPOS(i)] = 0;
    }
}

/* v[0 .. n4) = x >> rshift (rounded half up), zero padded from n. */
RNN2C_INLINE void rnn2c_ref_vec_s16(int16_t *v, const int16_t *x, uint32_t n, uint32_t n4,
                                    uint32_t rshift)
{
    uint32_t i = 0;
    for (; i < n; ++i) {
        v[RNN2C_REF_VPOS(i)] = (int16_t)rnn2c_down(x[i], rshift);
    }
    for (; i < n4; ++i) {
        v[RNN2C_REF_VPOS(i)] = 0;
    }
}

#ifndef rnn2c_vec_s8
#define rnn2c_vec_s8 rnn2c_ref_vec_s8
#define rnn2c_vec_s16 rnn2c_ref_vec_s16
#endif

/* ---------------------------------------------------------------- multiply-accumulate */

/*
 * rnn2c_macR: R rows at once over `groups` groups of 4 vector columns. For every group the
 * weights hold one 32-bit word per row, bytes (c0, c2, c1, c3); each kernel adds the row's
 * products to *aK and returns the weight pointer past its block. Every implementation adds the
 * same integers (in another order; no partial sum can overflow, see rnn2c_runtime.h). The
 * loops are RNN2C_MAC_KERNELS (rnn2c_runtime.h), shared with the ISAs' C forms.
 */
#define RNN2C_REF_ROW(acc, wp) /* four multiply-accumulates into acc (MLA on Thumb-2) */    \
    do {                                                                                      \
        (acc) += (int32_t)(wp)[0] * v0;                                                       \
        (acc) += (int32_t)(wp)[1] * v2;                                                       \
        (acc) += (int32_t)(wp)[2] * v1;                                                       \
        (acc) += (int32_t)(wp)[3] * v3;                                                       \
    } while (0)

RNN2C_MAC_KERNELS(rnn2c_ref_mac, RNN2C_MAC_GROUP, RNN2C_REF_ROW)

#ifndef rnn2c_mac4
#define rnn2c_mac4 rnn2c_ref_mac4
#define rnn2c_mac3 rnn2c_ref_mac3
#define rnn2c_mac2 rnn2c_ref_mac2
#define rnn2c_mac1 rnn2c_ref_mac1
#endif

/* `rows` (1..4) rows at once; a[0 .. rows) accumulate. */
RNN2C_INLINE const int8_t *rnn2c_ref_mac_rows(const int8_t *w, const int16_t *v, uint32_t groups,
                                              uint32_t rows, int32_t *a)
{
    switch (rows) {
    case 4:
        return rnn2c_mac4(w, v, groups, a, a + 1, a + 2, a + 3);
    case 3:
        return rnn2c_mac3(w, v, groups, a, a + 1, a + 2);
    case 2:
        return rnn2c_mac2(w, v, groups, a, a + 1);
    default:
        return rnn2c_mac1(w, v, groups, a);
    }
}

#ifndef rnn2c_mac_rows
#define rnn2c_mac_rows rnn2c_ref_mac_rows
#endif

/* The rows of a Dense layer of one pass (a head, <= 4 rows), where an ISA has a shorter loop
 * for it: the same sums. */
RNN2C_INLINE const int8_t *rnn2c_ref_mac_rows_small(const int8_t *w, const int16_t *v,
                                                    uint32_t groups, uint32_t rows, int32_t *a)
{
    return rnn2c_mac_rows(w, v, groups, rows, a);
}

#ifndef rnn2c_mac_rows_small
#define rnn2c_mac_rows_small rnn2c_ref_mac_rows_small
#endif

/* ---------------------------------------------------------------- int4 multiply-accumulate */

/* The reference (int4 weights, rnn2c_runtime.h's RNN2C_MAC_S4_KERNELS): the vector in order. */
#define RNN2C_REF_S4_GROUP4                                                                   \
    const int32_t v0 = v[0];                                                      \
    const int32_t v1 = v[1];                                                      \
    const int32_t v2 = v[2];                                                      \
    const int32_t v3 = v[3]
#define RNN2C_REF_S4_GROUP8                                                                   \
    RNN2C_REF_S4_GROUP4;                                                                      \
    const int32_t v4 = v[4];                                                      \
    const int32_t v5 = v[5];                                                      \
    const int32_t v6 = v[6];                                                      \
    const int32_t v7 = v[7]

RNN2C_MAC_S4_KERNELS(rnn2c_ref_mac, RNN2C_REF_S4_GROUP8, RNN2C_S4_ROW8, RNN2C_REF_S4_GROUP4,
                     RNN2C_S4_ROW4)

#ifndef rnn2c_mac4_s4
#define rnn2c_mac4_s4 rnn2c_ref_mac4_s4
#define rnn2c_mac3_s4 rnn2c_ref_mac3_s4
#define rnn2c_mac2_s4 rnn2c_ref_mac2_s4
#define rnn2c_mac1_s4 rnn2c_ref_mac1_s4
#endif

/* `rows` (1..4) rows of int4 weights at once; a[0 .. rows) accumulate. */
RNN2C_INLINE const int8_t *rnn2c_ref_mac_rows_s4(const int8_t *w, const int16_t *v,
                                                 uint32_t groups, uint32_t rows, int32_t *a)
{
    switch (rows) {
    case 4:
        return rnn2c_mac4_s4(w, v, groups, a, a + 1, a + 2, a + 3);
    case 3:
        return rnn2c_mac3_s4(w, v, groups, a, a + 1, a + 2);
    case 2:
        return rnn2c_mac2_s4(w, v, groups, a, a + 1);
    default:
        return rnn2c_mac1_s4(w, v, groups, a);
    }
}

#ifndef rnn2c_mac_rows_s4
#define rnn2c_mac_rows_s4 rnn2c_ref_mac_rows_s4
#endif

/* A layer's rows over int8 (w4 = 0) or int4 (w4 = 1) weights: the layer struct's w4. */
#define RNN2C_MACW(n, w4, ...) ((w4) ? rnn2c_mac##n##_s4(__VA_ARGS__) : rnn2c_mac##n(__VA_ARGS__))
#define rnn2c_mac_rows_w(w4, w, v, groups, rows, a)                                           \
    ((w4) ? rnn2c_mac_rows_s4(w, v, groups, rows, a) : rnn2c_mac_rows(w, v, groups, rows, a))

/* ---------------------------------------------------------------- softmax */

/* softmax over the n requantized rows in acc (Q3.12 logits) into int8 probabilities (scale
 * 1/256, zero point -128): exp(-(max - x)) from the exp table, each divided by their total. */
RNN2C_INLINE void rnn2c_ref_softmax_s8(int32_t *acc, uint16_t n, int8_t *y)
{
    int32_t max = acc[0];
    int32_t total = 0;
    uint16_t j;
    for (j = 1; j < n; ++j) {
        max = acc[j] > max ? acc[j] : max;
    }
    for (j = 0; j < n; ++j) {
        acc[j] = rnn2c_exp_neg_q15(max - acc[j]); /* <= 32768 each */
        total += acc[j];                          /* >= 32768: exp(0) is in it */
    }
    for (j = 0; j < n; ++j) {
        const int32_t p256 =
            (int32_t)rnn2c_udiv_small((uint32_t)(acc[j] * 256 + total / 2), (uint32_t)total, 9);
        y[j] = (int8_t)((p256 > 255 ? 255 : p256) - 128); /* 0..256 */
    }
}

#ifndef rnn2c_softmax_s8
#define rnn2c_softmax_s8 rnn2c_ref_softmax_s8
#endif

/* ---------------------------------------------------------------- dot products (seq2seq) */

/* x[0 .. n) in the form rnn2c_dot_s8 reads it, into `prep` (n halfwords): the reference reads x
 * itself. */
RNN2C_INLINE void rnn2c_ref_dot_prep(const int8_t *x, int n, int32_t *prep)
{
    (void)x;
    (void)n;
    (void)prep;
}

/* acc + sum a[k] x[k] over k < n (int8 a and x; prep: rnn2c_dot_prep of x). */
RNN2C_INLINE int32_t rnn2c_ref_dot_s8(const int8_t *a, const int8_t *x, const int32_t *prep,
                                      int n, int32_t acc)
{
    int k;
    (void)prep;
    for (k = 0; k < n; ++k) {
        acc += (int32_t)a[k] * x[k];
    }
    return acc;
}

/* s[j] = sum over the n rows of v (a row every `stride` bytes) of w[r] * v[r][j], j = 0..3
 * (|w| < 2^15; the caller keeps each sum inside int32). Where an ISA's 4 columns at a time beat
 * one at a time, it sets RNN2C_WSUM4_COLUMNS to 1 and the attention uses it. */
RNN2C_INLINE void rnn2c_ref_wsum4(const int8_t *v, int stride, const int32_t *w, int n,
                                  int32_t *s)
{
    int32_t a0 = 0;
    int32_t a1 = 0;
    int32_t a2 = 0;
    int32_t a3 = 0;
    int r;
    for (r = 0; r < n; ++r, v += stride) {
        a0 += w[r] * v[0];
        a1 += w[r] * v[1];
        a2 += w[r] * v[2];
        a3 += w[r] * v[3];
    }
    s[0] = a0;
    s[1] = a1;
    s[2] = a2;
    s[3] = a3;
}

#ifndef rnn2c_dot_s8
#define rnn2c_dot_prep rnn2c_ref_dot_prep
#define rnn2c_dot_s8 rnn2c_ref_dot_s8
#endif
#ifndef rnn2c_wsum4
#define rnn2c_wsum4 rnn2c_ref_wsum4
#define RNN2C_WSUM4_COLUMNS 0
#endif

/* ---------------------------------------------------------------- GRU units in pairs */

/* The rows of GRU (reset_after=1) units j (weights at wa) and j + 1 (the next unit's block):
 * a[0..3] and b[0..3] (z, r, candidate over x, candidate over h) start from bias[0..7] and
 * accumulate over the x_groups, then the h_groups of v. Where an ISA's pass over two units
 * beats two passes over one, it sets RNN2C_GRU_PAIRS to 1 and the GRU step uses it. */
RNN2C_INLINE void rnn2c_ref_gru_pair_acc(const int8_t *wa, const int16_t *v, uint32_t x_groups,
                                         uint32_t h_groups, const int32_t *bias, int32_t *a,
                                         int32_t *b)
{
    const int16_t *vh = v + 4 * (size_t)x_groups;
    uint32_t k;
    for (k = 0; k < 4; ++k) {
        a[k] = bias[k];
        b[k] = bias[4 + k];
    }
    wa = rnn2c_mac3(wa, v, x_groups, a, a + 1, a + 2);
    wa = rnn2c_mac3(wa, vh, h_groups, a, a + 1, a + 3);
    wa = rnn2c_mac3(wa, v, x_groups, b, b + 1, b + 2);
    (void)rnn2c_mac3(wa, vh, h_groups, b, b + 1, b + 3);
}

#ifndef rnn2c_gru_pair_acc
#define rnn2c_gru_pair_acc rnn2c_ref_gru_pair_acc
#define RNN2C_GRU_PAIRS 0
#endif

/* ---------------------------------------------------------------- GRU gate arithmetic */

/* What the gate kernels are built from (not kernels themselves): tanh and sigmoid from the
 * table, a row's requantization, the GRU's blend. */

/* |x| of an int16 value, clamped where tanh (table step 2^-step_bits) reaches 32767. */
RNN2C_INLINE int32_t rnn2c_tanh_arg(int32_t x, int step_bits)
{
    const int32_t a = x < 0 ? -x : x;
    const int32_t last = (int32_t)RNN2C_TANH_CLAMP << step_bits;
    return a < last ? a : last;
}

/* tanh: Q3.12 in (saturated to int16), Q0.15 out. */
RNN2C_INLINE int32_t rnn2c_tanh_q15(int32_t x_q12)
{
    const int32_t x = rnn2c_sat_s16(x_q12);
    const int32_t y = rnn2c_interp_s16(rnn2c_tanh_table, rnn2c_tanh_arg(x, RNN2C_TANH_STEP_BITS),
                                       RNN2C_TANH_STEP_BITS);
    return RNN2C_SIGNED(y, x);
}

/* sigmoid(x) = (1 + tanh(x / 2)) / 2: Q3.12 in (saturated to int16), Q0.15 out in [0, 32767].
 * |x| <= 32768 after the saturation, so the table index |x| >> 8 is at most 128 and the clamp
 * of rnn2c_tanh_arg (at 171) never applies: it is left out. */
RNN2C_INLINE int32_t rnn2c_sigmoid_q15(int32_t x_q12)
{
    const int32_t x = rnn2c_sat_s16(x_q12);
    const int32_t y =
        rnn2c_interp_s16(rnn2c_tanh_table, RNN2C_SIGNED(x, x), RNN2C_TANH_STEP_BITS + 1);
    return (RNN2C_Q15_ONE + RNN2C_SIGNED(y, x)) >> 1;
}

/* A row kind's requantization: round(sat17(acc >> shift_in) * multiplier / 2^shift_out): 32-bit only, |result| < 2^30. The
 * exporter picks shift_in so that the saturation only touches accumulators whose result the
 * consumer saturates anyway. */
RNN2C_INLINE int32_t rnn2c_rqs(int32_t acc, int32_t multiplier, rnn2c_shift_t s)
{
    const int32_t t = rnn2c_sat17(acc >> s.shift_in);
    return (t * multiplier + ((int32_t)1 << (s.shift_out - 1))) >> s.shift_out;
}

/* A gate: requantized row -> sigmoid or tanh (Q0.15). */
RNN2C_INLINE int32_t rnn2c_sigmoid_rq(int32_t acc, int32_t multiplier, rnn2c_shift_t s)
{
    return rnn2c_sigmoid_q15(rnn2c_rqs(acc, multiplier, s));
}

RNN2C_INLINE int32_t rnn2c_tanh_rq(int32_t acc, int32_t multiplier, rnn2c_shift_t s)
{
    return rnn2c_tanh_q15(rnn2c_rqs(acc, multiplier, s));
}

/* h = z * h + (1 - z) * candidate in Q0.15: a convex combination, so |sum| <= 2^30. Computed
 * as z * (h - candidate) + 2^15 * candidate, the same integer with one multiplication. */
RNN2C_INLINE int32_t rnn2c_gru_blend_sum(int32_t z, int32_t h_q15, int32_t cand)
{
    return z * (h_q15 - cand) + cand * RNN2C_Q15_ONE;
}

/* The gate arithmetic of one GRU (reset_after=1) unit from its four accumulators (bias
 * included), m its 4 multipliers and sh the layer's 4 row-kind shifts: the new state in Q0.15
 * times 2^15, before rounding (rnn2c_gru_blend_sum). The candidate's recurrent part is
 * saturated to 17 bits, so r times it fits int32. */
RNN2C_INLINE int32_t rnn2c_ref_gru_gates(const int16_t *m, const rnn2c_shift_t *sh, int32_t z,
                                         int32_t r, int32_t cx, int32_t ch, int32_t h_q15)
{
    z = rnn2c_sigmoid_rq(z, m[0], sh[0]);
    r = rnn2c_sigmoid_rq(r, m[1], sh[1]);
    ch = rnn2c_sat17(rnn2c_rqs(ch, m[3], sh[3]));
    cx = rnn2c_rqs(cx, m[2], sh[2]) + ((r * ch + ((int32_t)1 << 14)) >> 15);
    return rnn2c_gru_blend_sum(z, h_q15, rnn2c_tanh_q15(cx));
}

#ifndef rnn2c_gru_gates
#define rnn2c_gru_gates rnn2c_ref_gru_gates
#endif

/* ---------------------------------------------------------------- LSTM gate arithmetic */

/* int16 value with frac_bits fractional bits -> Q3.12 (rounded, saturated). */
RNN2C_INLINE int32_t rnn2c_q12_from_frac(int32_t x, int frac_bits)
{
    if (frac_bits > 12) {
        return rnn2c_rshift_round(x, frac_bits - 12);
    }
    return rnn2c_sat_s16(x * ((int32_t)1 << (12 - frac_bits)));
}

/* The gate arithmetic of one LSTM unit from its four accumulators (bias included), m its 4
 * multipliers and sh the layer's 4 gate shifts: the cell *c (frac_bits fractional bits,
 * 0..15) updated, o * tanh(c) returned in Q0.30. */
RNN2C_INLINE int32_t rnn2c_ref_lstm_gates(const int16_t *m, const rnn2c_shift_t *sh,
                                          int32_t i_gate, int32_t f_gate, int32_t g_cand,
                                          int32_t o_gate, int16_t *c, int frac_bits)
{
    const int cell_shift = 30 - frac_bits; /* Q0.30 product -> cell format */
    int32_t cell;
    i_gate = rnn2c_sigmoid_rq(i_gate, m[0], sh[0]);
    f_gate = rnn2c_sigmoid_rq(f_gate, m[1], sh[1]);
    g_cand = rnn2c_tanh_rq(g_cand, m[2], sh[2]);
    o_gate = rnn2c_sigmoid_rq(o_gate, m[3], sh[3]);
    /* c = f * c + i * g; each product is below 2^30 in magnitude */
    cell = rnn2c_sat_s16(rnn2c_rshift_round(f_gate * (int32_t)*c, 15) +
                         rnn2c_rshift_round(i_gate * g_cand, cell_shift));
    *c = (int16_t)cell;
    return o_gate * rnn2c_tanh_q15(rnn2c_q12_from_frac(cell, frac_bits));
}

#ifndef rnn2c_lstm_gates
#define rnn2c_lstm_gates rnn2c_ref_lstm_gates
#endif

/* ---------------------------------------------------------------- audio front end: FFT */

/* One radix-2 butterfly of rnn2c_ref_fft_q15 on (x, y) with twiddle w (Q15), in place:
 * t = y * w rounded from Q15, x = (x + t) >> 1, y = (x - t) >> 1. */
RNN2C_INLINE void rnn2c_ref_bfly_q15(int32_t *xr, int32_t *xi, int32_t *yr, int32_t *yi,
                                     int32_t wr, int32_t wi)
{
    const int32_t tr = (*yr * wr - *yi * wi + (1 << 14)) >> 15;
    const int32_t ti = (*yr * wi + *yi * wr + (1 << 14)) >> 15;
    *yr = (*xr - tr) >> 1;
    *yi = (*xi - ti) >> 1;
    *xr = (*xr + tr) >> 1;
    *xi = (*xi + ti) >> 1;
}

/* The stages of an m-point complex radix-2 FFT (m a power of two), in place on re/im
 * (bit-reversed order in, natural order out), each stage scaled by 1/2: a butterfly gives
 * (a + t) >> 1 and (a - t) >> 1, t = b * W rounded from Q15. cs/sn: cos and -sin of
 * 2 pi k / (2m), k < m, Q15 (the real FFT's table: a stage of butterflies `half` apart reads
 * every (m / half)-th). Components stay within +-46341 (the real FFT's input is int16), so
 * every product and sum fits an int32. export/audio.py (fft_stages_int) is its NumPy twin.
 *
 * Two stages per pass where two are left (half and 2 half): the four elements a, a + half,
 * a + 2 half, a + 3 half (a mod 4 half < half) take the first stage's butterflies (a, a + half)
 * and (a + 2 half, a + 3 half), twiddle j = a mod half, then the second's (a, a + 2 half) and
 * (a + half, a + 3 half), twiddles j and j + half; no other butterfly of the two stages
 * touches them, so this is the radix-2 order's arithmetic exactly, with half the loads and
 * stores (M4: 31,106 -> 26,059 instructions at m = 256). */
RNN2C_INLINE void rnn2c_ref_fft_q15(int32_t *re, int32_t *im, int m, const int16_t *cs,
                                    const int16_t *sn)
{
    int half = 1;
    int step = m; /* m / half */
    int j, a;
    for (; 4 * half <= m; half <<= 2, step >>= 2) { /* two stages a pass */
        for (j = 0; j < half; ++j) {
            const int32_t w1r = cs[j * step], w1i = sn[j * step];
            const int32_t w2r = cs[j * (step >> 1)], w2i = sn[j * (step >> 1)];
            const int32_t w3r = cs[(j + half) * (step >> 1)];
            const int32_t w3i = sn[(j + half) * (step >> 1)];
            for (a = j; a < m; a += 4 * half) {
                int32_t x0r = re[a], x0i = im[a];
                int32_t x1r = re[a + half], x1i = im[a + half];
                int32_t x2r = re[a + 2 * half], x2i = im[a + 2 * half];
                int32_t x3r = re[a + 3 * half], x3i = im[a + 3 * half];
                rnn2c_ref_bfly_q15(&x0r, &x0i, &x1r, &x1i, w1r, w1i);
                rnn2c_ref_bfly_q15(&x2r, &x2i, &x3r, &x3i, w1r, w1i);
                rnn2c_ref_bfly_q15(&x0r, &x0i, &x2r, &x2i, w2r, w2i);
                rnn2c_ref_bfly_q15(&x1r, &x1i, &x3r, &x3i, w3r, w3i);
                re[a] = x0r;
                im[a] = x0i;
                re[a + half] = x1r;
                im[a + half] = x1i;
                re[a + 2 * half] = x2r;
                im[a + 2 * half] = x2i;
                re[a + 3 * half] = x3r;
                im[a + 3 * half] = x3i;
            }
        }
    }
    if (half < m) { /* an odd number of stages: the last one alone */
        for (j = 0; j < half; ++j) {
            const int32_t wr = cs[j * step], wi = sn[j * step];
            for (a = j; a < m; a += 2 * half) {
                int32_t xr = re[a], xi = im[a], yr = re[a + half], yi = im[a + half];
                rnn2c_ref_bfly_q15(&xr, &xi, &yr, &yi, wr, wi);
                re[a] = xr;
                im[a] = xi;
                re[a + half] = yr;
                im[a + half] = yi;
            }
        }
    }
}

#ifndef rnn2c_fft_q15
#define rnn2c_fft_q15 rnn2c_ref_fft_q15
#endif

/* A mel band's energy: the sum of power[k] * w[k] over its n bins (power: the FFT's uint32
 * bin powers; w: the band's Q15 weights, at most 32768) in uint64. */
RNN2C_INLINE uint64_t rnn2c_ref_mel_u64(const uint32_t *power, const uint16_t *w, int n)
{
    uint64_t e = 0;
    int k;
    for (k = 0; k < n; ++k) {
        e += (uint64_t)power[k] * w[k];
    }
    return e;
}

#ifndef rnn2c_mel_u64
#define rnn2c_mel_u64 rnn2c_ref_mel_u64
#endif

/* ---------------------------------------------------------------- an ISA's own weights */

/* A GRU (reset_after) or LSTM layer may carry an ISA's own copy of its weights, in the layout
 * that ISA's kernels read: RNN2C_ISA_MEMBER is that member of rnn2c_gru_t / rnn2c_lstm_t and
 * RNN2C_ISA_INIT(data) its initializer, which the generated C writes after the struct's last
 * field (data: NULL, or the copy, which the ISA's template fragment defines under its own
 * guard); rnn2c_isa_gru_s8(p, v, h) etc. run the step from that copy and are 1, or are 0 (no
 * copy) and the layer's kernel runs. The reference has no copy: no member, and 0. */
#ifndef RNN2C_ISA_MEMBER
#define RNN2C_ISA_MEMBER
#define RNN2C_ISA_INIT(data)
#define rnn2c_isa_gru_s8(p, v, h) 0
#define rnn2c_isa_gru_s16(p, v, h) 0
#define rnn2c_isa_lstm_s8(p, v, h, c) 0
#define rnn2c_isa_lstm_s16(p, v, h, c) 0
#endif

#endif /* RNN2C_REF_H */
