/*
 * rnn2c_runtime.h - integer kernels for rnn2c generated models.
 *
 * Hand-written; copied verbatim next to every generated model. C99, freestanding: only
 * <stdint.h> and <stddef.h>, no heap, no floating point, no mutable globals. Every function is
 * `static inline`, so a program that links several models has no symbol clashes.
 *
 * Number formats (see the README's quantization spec):
 *   Q3.12  int16 gate pre-activation, real = q / 4096, range [-8, 8)
 *   Q0.15  int16 gate / activation output, real = q / 32768
 *   Q0.7   int8 hidden state, real = q / 128, zero point 0
 *   Q0.15  int16 hidden state with --activations int16, real = q / 32768
 *   cell   int16 LSTM cell state with `cell_frac_bits` fractional bits
 *
 * The NumPy module rnn2c/export/fixedpoint.py mirrors each function here; the generated C is
 * checked against it bit for bit.
 *
 * Accumulator bound: every int32 accumulator starts at a folded bias and adds at most `cols`
 * products w*x with |w| <= 127 and |x| <= 128 (|x| <= 32768 for int16 inputs). The exporter
 * checks, for every row, |bias| + max|x| * sum(|w|) <= INT32_MAX, and refuses the model
 * otherwise, so no partial sum can overflow. Requantization multiplies an int32 by a multiplier < 2^31 in 64 bits: |product| <
 * 2^62, plus a rounding term <= 2^61, below 2^63.
 */
#ifndef RNN2C_RUNTIME_H
#define RNN2C_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

/* The kernels rely on >> of a negative signed value being an arithmetic shift (true for gcc,
 * clang, armcc, IAR); refuse to build where the preprocessor says otherwise. */
#if ((-1) >> 1) != -1
#error "rnn2c_runtime.h requires arithmetic right shift of negative integers"
#endif

#define RNN2C_Q12_ONE ((int32_t)4096)        /* 1.0 in Q3.12 */
#define RNN2C_Q15_ONE ((int32_t)32768)       /* 1.0 in Q0.15 */
#define RNN2C_REQUANT_LIMIT ((int32_t)1 << 24) /* requantized values are clamped to +-2^24 */
#define RNN2C_TABLE_LAST 256                 /* tables hold 257 points: 256 intervals */
#define RNN2C_TANH_STEP_BITS 7               /* tanh table step: 1/32 = 128 Q3.12 units */
#define RNN2C_EXP_STEP_BITS 8                /* exp table step: 1/16 = 256 Q3.12 units */
#define RNN2C_EXP_LIMIT_Q12 ((int32_t)16 << 12) /* exp(-x) taken as 0 for x >= 16 */

/* tanh(i / 32) in Q0.15 for i = 0..256 (514 bytes of flash). */
static const int16_t rnn2c_tanh_table[RNN2C_TABLE_LAST + 1] = {
    0, 1024, 2045, 3063, 4075, 5079, 6073, 7056, 8025, 8980, 9919, 10840,
    11743, 12625, 13486, 14326, 15143, 15936, 16706, 17452, 18173, 18870, 19542, 20189,
    20813, 21411, 21986, 22538, 23066, 23571, 24054, 24516, 24956, 25376, 25776, 26157,
    26519, 26864, 27191, 27502, 27797, 28076, 28341, 28592, 28830, 29055, 29268, 29470,
    29660, 29840, 30010, 30170, 30322, 30465, 30600, 30727, 30847, 30960, 31067, 31167,
    31262, 31351, 31435, 31515, 31589, 31659, 31726, 31788, 31846, 31901, 31953, 32002,
    32048, 32091, 32132, 32170, 32206, 32240, 32271, 32301, 32329, 32356, 32381, 32404,
    32426, 32447, 32466, 32484, 32501, 32517, 32532, 32547, 32560, 32573, 32584, 32596,
    32606, 32616, 32625, 32634, 32642, 32649, 32657, 32663, 32670, 32676, 32681, 32686,
    32691, 32696, 32700, 32704, 32708, 32712, 32715, 32718, 32721, 32724, 32727, 32729,
    32732, 32734, 32736, 32738, 32740, 32741, 32743, 32745, 32746, 32747, 32749, 32750,
    32751, 32752, 32753, 32754, 32755, 32755, 32756, 32757, 32758, 32758, 32759, 32759,
    32760, 32760, 32761, 32761, 32762, 32762, 32762, 32763, 32763, 32763, 32764, 32764,
    32764, 32764, 32765, 32765, 32765, 32765, 32765, 32766, 32766, 32766, 32766, 32766,
    32766, 32766, 32766, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767
};

/* exp(-i / 16) in unsigned Q1.15 for i = 0..256 (514 bytes of flash). */
static const uint16_t rnn2c_exp_table[RNN2C_TABLE_LAST + 1] = {
    32768, 30783, 28918, 27166, 25520, 23974, 22521, 21157, 19875, 18671, 17539, 16477,
    15479, 14541, 13660, 12832, 12055, 11324, 10638, 9994, 9388, 8819, 8285, 7783,
    7312, 6869, 6452, 6061, 5694, 5349, 5025, 4721, 4435, 4166, 3914, 3676,
    3454, 3244, 3048, 2863, 2690, 2527, 2374, 2230, 2095, 1968, 1849, 1737,
    1631, 1533, 1440, 1352, 1271, 1194, 1121, 1053, 990, 930, 873, 820,
    771, 724, 680, 639, 600, 564, 530, 498, 467, 439, 412, 387,
    364, 342, 321, 302, 283, 266, 250, 235, 221, 207, 195, 183,
    172, 162, 152, 143, 134, 126, 118, 111, 104, 98, 92, 86,
    81, 76, 72, 67, 63, 59, 56, 52, 49, 46, 43, 41,
    38, 36, 34, 32, 30, 28, 26, 25, 23, 22, 21, 19,
    18, 17, 16, 15, 14, 13, 12, 12, 11, 10, 10, 9,
    9, 8, 8, 7, 7, 6, 6, 6, 5, 5, 5, 4,
    4, 4, 4, 3, 3, 3, 3, 3, 2, 2, 2, 2,
    2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0
};

/* ---------------------------------------------------------------- scalar helpers */

static inline int32_t rnn2c_sat_s16(int32_t x)
{
    return x > INT16_MAX ? INT16_MAX : (x < INT16_MIN ? INT16_MIN : x);
}

static inline int8_t rnn2c_sat_s8(int32_t x)
{
    return (int8_t)(x > INT8_MAX ? INT8_MAX : (x < INT8_MIN ? INT8_MIN : x));
}

/* (x + 2^(shift-1)) >> shift: divide by 2^shift, round half up. shift >= 1. The callers keep
 * |x| <= 2^30 so the rounding term cannot overflow. */
static inline int32_t rnn2c_rshift_round(int32_t x, int shift)
{
    return (x + ((int32_t)1 << (shift - 1))) >> shift;
}

/* acc * multiplier * 2^-shift, rounded half up, clamped to +-RNN2C_REQUANT_LIMIT.
 * multiplier is Q31 in [2^30, 2^31) (or 0), 1 <= shift <= 62. */
static inline int32_t rnn2c_requantize(int32_t acc, int32_t multiplier, int shift)
{
    const int64_t prod = (int64_t)acc * (int64_t)multiplier;
    const int64_t r = (prod + ((int64_t)1 << (shift - 1))) >> shift;
    if (r > RNN2C_REQUANT_LIMIT) {
        return RNN2C_REQUANT_LIMIT;
    }
    if (r < -RNN2C_REQUANT_LIMIT) {
        return -RNN2C_REQUANT_LIMIT;
    }
    return (int32_t)r;
}

/* Linear interpolation in a 257-point table at a >= 0 with `step_bits` fractional bits. */
static inline int32_t rnn2c_interp_s16(const int16_t *table, int32_t a, int step_bits)
{
    const int32_t idx = a >> step_bits;
    const int32_t frac = a & (((int32_t)1 << step_bits) - 1);
    const int32_t next = idx < RNN2C_TABLE_LAST ? idx + 1 : RNN2C_TABLE_LAST;
    const int32_t lo = table[idx];
    const int32_t hi = table[next];
    return lo + (((hi - lo) * frac + ((int32_t)1 << (step_bits - 1))) >> step_bits);
}

/* tanh: Q3.12 in (saturated to int16), Q0.15 out. */
static inline int32_t rnn2c_tanh_q15(int32_t x_q12)
{
    const int32_t x = rnn2c_sat_s16(x_q12);
    const int32_t y = rnn2c_interp_s16(rnn2c_tanh_table, x < 0 ? -x : x, RNN2C_TANH_STEP_BITS);
    return x < 0 ? -y : y;
}

/* sigmoid(x) = (1 + tanh(x / 2)) / 2: Q3.12 in (saturated to int16), Q0.15 out in [0, 32767]. */
static inline int32_t rnn2c_sigmoid_q15(int32_t x_q12)
{
    const int32_t x = rnn2c_sat_s16(x_q12);
    const int32_t y =
        rnn2c_interp_s16(rnn2c_tanh_table, x < 0 ? -x : x, RNN2C_TANH_STEP_BITS + 1);
    return (RNN2C_Q15_ONE + (x < 0 ? -y : y)) >> 1;
}

/* exp(-d) for Q3.12 d >= 0, unsigned Q1.15 out (0..32768). */
static inline int32_t rnn2c_exp_neg_q15(int32_t d_q12)
{
    int32_t idx;
    int32_t frac;
    int32_t lo;
    int32_t hi;
    if (d_q12 >= RNN2C_EXP_LIMIT_Q12) {
        return 0;
    }
    idx = d_q12 >> RNN2C_EXP_STEP_BITS;
    frac = d_q12 & (((int32_t)1 << RNN2C_EXP_STEP_BITS) - 1);
    lo = rnn2c_exp_table[idx];
    hi = rnn2c_exp_table[idx + 1];
    return lo + (((hi - lo) * frac + ((int32_t)1 << (RNN2C_EXP_STEP_BITS - 1))) >>
                 RNN2C_EXP_STEP_BITS);
}

/* Q0.15 -> Q0.7 int8 hidden state. */
static inline int8_t rnn2c_q15_to_state(int32_t x_q15)
{
    return rnn2c_sat_s8(rnn2c_rshift_round(x_q15, 8));
}

/* int16 value with frac_bits fractional bits -> Q3.12 (rounded, saturated). */
static inline int32_t rnn2c_q12_from_frac(int32_t x, int frac_bits)
{
    if (frac_bits > 12) {
        return rnn2c_rshift_round(x, frac_bits - 12);
    }
    return rnn2c_sat_s16(x * ((int32_t)1 << (12 - frac_bits)));
}

/* ---------------------------------------------------------------- fully connected */

/* Quantization parameters of one int8 weight matrix, per output row (per gate row). */
typedef struct {
    const int8_t *weight;      /* rows x cols, row-major: the order the inner loop reads */
    const int32_t *bias;       /* rows: bias and input zero point folded at export */
    const int32_t *multiplier; /* rows: Q31 requantization multipliers */
    const int8_t *shift;       /* rows: requantization right shifts, 1..62 */
    uint16_t rows;
    uint16_t cols;
} rnn2c_fc_s8_t;

/* out[r] = requantize(bias[r] + sum_c weight[r][c] * x[c]) for rows [row_begin, row_end),
 * on an int8 input vector. */
static inline void rnn2c_fc_s8(const rnn2c_fc_s8_t *fc, const int8_t *x, int32_t *out,
                               uint16_t row_begin, uint16_t row_end)
{
    uint16_t r;
    uint16_t c;
    for (r = row_begin; r < row_end; ++r) {
        const int8_t *w = fc->weight + (size_t)r * fc->cols;
        int32_t acc = fc->bias[r];
        for (c = 0; c < fc->cols; ++c) {
            acc += (int32_t)w[c] * (int32_t)x[c];
        }
        out[r] = rnn2c_requantize(acc, fc->multiplier[r], fc->shift[r]);
    }
}

/* As rnn2c_fc_s8, on an int16 input vector (int16 activations). The exporter bounds
 * |bias| + 32768 * sum(|w|) <= INT32_MAX for these. */
static inline void rnn2c_fc_s8_s16(const rnn2c_fc_s8_t *fc, const int16_t *x, int32_t *out,
                                   uint16_t row_begin, uint16_t row_end)
{
    uint16_t r;
    uint16_t c;
    for (r = row_begin; r < row_end; ++r) {
        const int8_t *w = fc->weight + (size_t)r * fc->cols;
        int32_t acc = fc->bias[r];
        for (c = 0; c < fc->cols; ++c) {
            acc += (int32_t)w[c] * (int32_t)x[c];
        }
        out[r] = rnn2c_requantize(acc, fc->multiplier[r], fc->shift[r]);
    }
}

/*
 * Recurrent layers run in two calls: the input projection (rnn2c_fc_s8 or rnn2c_fc_s8_s16,
 * by the type of the layer's input) into acc[0 .. G*U), then the cell (_s8 for an int8 Q0.7
 * state, _s16 for an int16 Q0.15 state), which adds the recurrent part and updates the state.
 */

/* ---------------------------------------------------------------- GRU */

typedef struct {
    rnn2c_fc_s8_t input;     /* 3U x F, rows z | r | candidate; input zero point folded */
    rnn2c_fc_s8_t recurrent; /* 3U x U on the state */
    uint16_t units;
    uint8_t reset_after;     /* 1: r gates (W_h h + b_h) (Keras default); 0: W_h (r * h) */
} rnn2c_gru_s8_t;

/* z and r (Q0.15) into acc[0 .. 2U) from input (acc) and recurrent (acc + 3U) parts. */
static inline void rnn2c_gru_gates(uint16_t u, int32_t *acc)
{
    const int32_t *gh = acc + 3 * u;
    uint16_t j;
    for (j = 0; j < 2 * u; ++j) {
        acc[j] = rnn2c_sigmoid_q15(acc[j] + gh[j]);
    }
}

/* Candidate of unit j (Q0.15) once gates and the recurrent candidate part are in acc. */
static inline int32_t rnn2c_gru_candidate(const rnn2c_gru_s8_t *p, const int32_t *acc, uint16_t j)
{
    const uint16_t u = p->units;
    int32_t rec = acc[5 * u + j];
    if (p->reset_after) {
        /* r (Q0.15) * recurrent candidate (Q3.12, |.| <= 2^24): 64-bit product */
        rec = (int32_t)(((int64_t)acc[u + j] * rec + ((int64_t)1 << 14)) >> 15);
    }
    return rnn2c_tanh_q15(acc[2 * u + j] + rec);
}

/* h = z * h + (1 - z) * candidate in Q0.15: a convex combination, so |sum| <= 2^30. */
static inline int32_t rnn2c_gru_blend_q15(int32_t z, int32_t h_q15, int32_t cand)
{
    return rnn2c_rshift_round(z * h_q15 + (RNN2C_Q15_ONE - z) * cand, 15);
}

/* GRU cell, int8 Q0.7 state. acc: 6U int32 (input projection first); rh: U int8 scratch. */
static inline void rnn2c_gru_cell_s8(const rnn2c_gru_s8_t *p, int8_t *h, int32_t *acc, int8_t *rh)
{
    const uint16_t u = p->units;
    uint16_t j;
    rnn2c_fc_s8(&p->recurrent, h, acc + 3 * u, 0, (uint16_t)((p->reset_after ? 3 : 2) * u));
    rnn2c_gru_gates(u, acc);
    if (!p->reset_after) {
        for (j = 0; j < u; ++j) {
            rh[j] = rnn2c_sat_s8(rnn2c_rshift_round(acc[u + j] * (int32_t)h[j], 15));
        }
        rnn2c_fc_s8(&p->recurrent, rh, acc + 3 * u, (uint16_t)(2 * u), (uint16_t)(3 * u));
    }
    for (j = 0; j < u; ++j) {
        const int32_t cand = rnn2c_gru_candidate(p, acc, j);
        h[j] = rnn2c_q15_to_state(rnn2c_gru_blend_q15(acc[j], (int32_t)h[j] * 256, cand));
    }
}

/* GRU cell, int16 Q0.15 state. acc: 6U int32 (input projection first); rh: U int16 scratch. */
static inline void rnn2c_gru_cell_s16(const rnn2c_gru_s8_t *p, int16_t *h, int32_t *acc,
                                      int16_t *rh)
{
    const uint16_t u = p->units;
    uint16_t j;
    rnn2c_fc_s8_s16(&p->recurrent, h, acc + 3 * u, 0, (uint16_t)((p->reset_after ? 3 : 2) * u));
    rnn2c_gru_gates(u, acc);
    if (!p->reset_after) {
        for (j = 0; j < u; ++j) {
            rh[j] = (int16_t)rnn2c_sat_s16(rnn2c_rshift_round(acc[u + j] * (int32_t)h[j], 15));
        }
        rnn2c_fc_s8_s16(&p->recurrent, rh, acc + 3 * u, (uint16_t)(2 * u), (uint16_t)(3 * u));
    }
    for (j = 0; j < u; ++j) {
        const int32_t cand = rnn2c_gru_candidate(p, acc, j);
        h[j] = (int16_t)rnn2c_sat_s16(rnn2c_gru_blend_q15(acc[j], (int32_t)h[j], cand));
    }
}

/* ---------------------------------------------------------------- LSTM */

typedef struct {
    rnn2c_fc_s8_t input;     /* 4U x F, rows i | f | g | o */
    rnn2c_fc_s8_t recurrent; /* 4U x U on the state */
    uint16_t units;
    uint8_t cell_frac_bits;  /* fractional bits of the int16 cell state */
} rnn2c_lstm_s8_t;

/* Update cell j from the gate sums in acc (input part + recurrent part at acc + 4U);
 * returns o * tanh(c) in Q0.30. */
static inline int32_t rnn2c_lstm_unit(const rnn2c_lstm_s8_t *p, const int32_t *acc, int16_t *c,
                                      uint16_t j)
{
    const uint16_t u = p->units;
    const int32_t *gh = acc + 4 * u;
    const int cell_shift = 30 - (int)p->cell_frac_bits; /* Q0.30 product -> cell format */
    const int32_t i_gate = rnn2c_sigmoid_q15(acc[j] + gh[j]);
    const int32_t f_gate = rnn2c_sigmoid_q15(acc[u + j] + gh[u + j]);
    const int32_t g_cand = rnn2c_tanh_q15(acc[2 * u + j] + gh[2 * u + j]);
    const int32_t o_gate = rnn2c_sigmoid_q15(acc[3 * u + j] + gh[3 * u + j]);
    /* c = f * c + i * g; each product is below 2^30 in magnitude */
    const int32_t cell = rnn2c_sat_s16(rnn2c_rshift_round(f_gate * (int32_t)c[j], 15) +
                                       rnn2c_rshift_round(i_gate * g_cand, cell_shift));
    c[j] = (int16_t)cell;
    return o_gate * rnn2c_tanh_q15(rnn2c_q12_from_frac(cell, p->cell_frac_bits));
}

/* LSTM cell, int8 Q0.7 state. acc: 8U int32 (input projection first). */
static inline void rnn2c_lstm_cell_s8(const rnn2c_lstm_s8_t *p, int8_t *h, int16_t *c,
                                      int32_t *acc)
{
    const uint16_t u = p->units;
    uint16_t j;
    rnn2c_fc_s8(&p->recurrent, h, acc + 4 * u, 0, (uint16_t)(4 * u));
    for (j = 0; j < u; ++j) {
        h[j] = rnn2c_sat_s8(rnn2c_rshift_round(rnn2c_lstm_unit(p, acc, c, j), 23)); /* -> Q0.7 */
    }
}

/* LSTM cell, int16 Q0.15 state. acc: 8U int32 (input projection first). */
static inline void rnn2c_lstm_cell_s16(const rnn2c_lstm_s8_t *p, int16_t *h, int16_t *c,
                                       int32_t *acc)
{
    const uint16_t u = p->units;
    uint16_t j;
    rnn2c_fc_s8_s16(&p->recurrent, h, acc + 4 * u, 0, (uint16_t)(4 * u));
    for (j = 0; j < u; ++j) {
        h[j] = (int16_t)rnn2c_sat_s16(rnn2c_rshift_round(rnn2c_lstm_unit(p, acc, c, j), 15));
    }
}

/* ---------------------------------------------------------------- SimpleRNN */

typedef struct {
    rnn2c_fc_s8_t input;     /* U x F */
    rnn2c_fc_s8_t recurrent; /* U x U on the state */
    uint16_t units;
} rnn2c_rnn_s8_t;

/* SimpleRNN cell h = tanh(W x + U h + b), int8 Q0.7 state. acc: 2U int32 (projection first). */
static inline void rnn2c_rnn_cell_s8(const rnn2c_rnn_s8_t *p, int8_t *h, int32_t *acc)
{
    const uint16_t u = p->units;
    uint16_t j;
    rnn2c_fc_s8(&p->recurrent, h, acc + u, 0, u);
    for (j = 0; j < u; ++j) {
        h[j] = rnn2c_q15_to_state(rnn2c_tanh_q15(acc[j] + acc[u + j]));
    }
}

/* SimpleRNN cell, int16 Q0.15 state. acc: 2U int32 (projection first). */
static inline void rnn2c_rnn_cell_s16(const rnn2c_rnn_s8_t *p, int16_t *h, int32_t *acc)
{
    const uint16_t u = p->units;
    uint16_t j;
    rnn2c_fc_s8_s16(&p->recurrent, h, acc + u, 0, u);
    for (j = 0; j < u; ++j) {
        h[j] = (int16_t)rnn2c_tanh_q15(acc[j] + acc[u + j]);
    }
}

/* ---------------------------------------------------------------- Dense */

enum {
    RNN2C_ACT_LINEAR = 0,  /* requantized to the output scale */
    RNN2C_ACT_RELU = 1,    /* as linear, clamped at the output zero point */
    RNN2C_ACT_SIGMOID = 2, /* Q3.12 -> table -> scale 1/256, zero point -128 */
    RNN2C_ACT_TANH = 3,    /* Q3.12 -> table -> scale 1/128, zero point 0 */
    RNN2C_ACT_SOFTMAX = 4  /* Q3.12 logits -> exp table -> scale 1/256, zero point -128 */
};

typedef struct {
    rnn2c_fc_s8_t fc;
    int8_t output_zero_point;
    uint8_t activation; /* RNN2C_ACT_* */
} rnn2c_dense_s8_t;

/* y = activation(acc) as int8, where acc holds the projection W x + b (rnn2c_fc_s8 or
 * rnn2c_fc_s8_s16 on p->fc). acc is clobbered. */
static inline void rnn2c_dense_output_s8(const rnn2c_dense_s8_t *p, int32_t *acc, int8_t *y)
{
    const uint16_t n = p->fc.rows;
    uint16_t j;
    if (p->activation == RNN2C_ACT_SOFTMAX) {
        int32_t max = acc[0];
        int32_t total = 0;
        for (j = 1; j < n; ++j) {
            max = acc[j] > max ? acc[j] : max;
        }
        for (j = 0; j < n; ++j) {
            acc[j] = rnn2c_exp_neg_q15(max - acc[j]); /* <= 32768 each */
            total += acc[j];                          /* >= 32768: exp(0) is in it */
        }
        for (j = 0; j < n; ++j) {
            const int32_t p256 = (acc[j] * 256 + total / 2) / total; /* 0..256 */
            y[j] = (int8_t)((p256 > 255 ? 255 : p256) - 128);
        }
        return;
    }
    for (j = 0; j < n; ++j) {
        int32_t v;
        switch (p->activation) {
        case RNN2C_ACT_SIGMOID:
            v = rnn2c_rshift_round(rnn2c_sigmoid_q15(acc[j]), 7) - 128;
            break;
        case RNN2C_ACT_TANH:
            v = rnn2c_rshift_round(rnn2c_tanh_q15(acc[j]), 8);
            break;
        case RNN2C_ACT_RELU:
            v = acc[j] + p->output_zero_point;
            v = v < p->output_zero_point ? p->output_zero_point : v;
            break;
        default:
            v = acc[j] + p->output_zero_point;
            break;
        }
        y[j] = rnn2c_sat_s8(v);
    }
}

#endif /* RNN2C_RUNTIME_H */
