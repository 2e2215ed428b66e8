/*
 * rnn2c_runtime.h - integer kernels for rnn2c generated models.
 *
 * Hand-written; copied verbatim next to every generated model. C99, freestanding: <stdint.h> and
 * <stddef.h>, plus, where the compiler says the target has them, <arm_acle.h> (Cortex-M4/M7/M33
 * DSP instructions, __ARM_FEATURE_DSP) or <immintrin.h> (x86 AVX2, __AVX2__), both compiler
 * headers. No heap, no floating point, no mutable globals. Every function is `static inline`;
 * the two activation tables are the only objects with external linkage (weak, see below), so
 * a program that links several models has no clashes and one copy of the tables.
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
 * One matrix-vector product per layer: a layer copies its input and its state into one int16
 * vector v = [x << x_shift; h << h_shift] (each part padded with zeros to a multiple of 4; an int16
 * part is shifted right instead, rounded, when its weights need the resolution less), and
 * every gate row of a unit accumulates over v in one int32 from one bias (the input zero point
 * and the requantization rounding folded in at export). The weights are laid out at export in
 * the order the kernels read them: a pass computes R rows (the gates of one unit, or 4 rows of
 * a Dense layer) together, and for every 4 columns reads one 32-bit word per row holding the
 * columns (c0, c2, c1, c3), so that each input word is loaded once for R rows and, on a DSP
 * core, SXTB16 and SXTB16 ROR 8 give the weight pairs that match the input pairs (v0, v1) and
 * (v2, v3) for SMLAD. The implementations that read that layout give identical results: the
 * portable C, the ARM DSP path (__ARM_FEATURE_DSP), the ARMv6-M assembly loop, the ARMv7-M GRU
 * loop (two units per pass, Cortex-M3) and the x86 AVX2 path (__AVX2__, with AVX-512 VNNI where
 * the compiler targets it); on x86 the GRU (reset_after) and LSTM layers with the default
 * activations read an x86-only copy of their weights instead (int16; int8 for vpdpbusd with
 * AVX-512 VNNI where the layer's input and state are int8), with units across the vector lanes
 * (see "x86: units across lanes" below), which the generated C emits under #if
 * defined(__AVX2__) only. The tests build all of them and compare every output with the
 * reference.
 *
 * Accumulator bound: the exporter checks, for every row, |bias| + sum(|w| * max|v|) <=
 * INT32_MAX and refuses the model otherwise, so no partial sum can overflow in any order.
 * Requantization (rnn2c_rq) is 32-bit only: sat17(acc >> shift_in) * multiplier, with a 14-bit
 * multiplier, is below 2^30 in magnitude, and the rounding term is at most 2^30.
 */
#ifndef RNN2C_RUNTIME_H
#define RNN2C_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif
#if defined(__AVX2__)
#if defined(__cplusplus) && defined(__GNUC__) && !defined(__clang__)
/* g++'s AVX-512 intrinsics (12 at least) initialise a variable with itself
 * (_mm512_undefined_*), which g++ then reports as uninitialised wherever they are inlined, in
 * C++ only: a warning about the compiler's own header, silenced for that header alone. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#endif

/* gcc turns copy and clear loops into calls to memcpy/memset (-ftree-loop-distribute-patterns,
 * on from -O2): on Cortex-M that pulls 300-470 B of newlib into flash and its frames onto the
 * stack, for copies of a few dozen bytes. Keep them loops in the files that include this header
 * (define RNN2C_ALLOW_LIBCALLS to let gcc decide). */
#if defined(__GNUC__) && !defined(__clang__) && !defined(RNN2C_ALLOW_LIBCALLS)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

/* The kernels rely on >> of a negative signed value being an arithmetic shift (true for gcc,
 * clang, armcc, IAR); refuse to build where the preprocessor says otherwise. */
#if ((-1) >> 1) != -1
#error "rnn2c_runtime.h requires arithmetic right shift of negative integers"
#endif
/* The DSP and AVX2 paths read the weight words little-endian. */
#if (defined(__ARM_FEATURE_DSP) || defined(__AVX2__)) && defined(__BYTE_ORDER__) && \
    defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rnn2c_runtime.h: the DSP path expects a little-endian target"
#endif
#endif

/* Weight arrays start on a word boundary (the kernels read them a word at a time). */
#if defined(__GNUC__)
#define RNN2C_ALIGN4 __attribute__((aligned(4)))
#else
#define RNN2C_ALIGN4
#endif

/* Kernels inlined even at -Os / -O0 (gcc, clang and armclang; other compilers decide). */
#if defined(__GNUC__)
#define RNN2C_INLINE static inline __attribute__((always_inline))
#else
#define RNN2C_INLINE static inline
#endif

/* The activation tables: one definition per model object, weak, so that a program linking
 * several models keeps a single copy (gcc, clang, armclang; hidden: a shared library does not
 * export them). Other compilers get one static copy per model; define RNN2C_TABLES_STATIC to
 * force that. Compiled as C++ (a model .c renamed .cpp, or included from C++), the tables have
 * C language linkage, so that C and C++ model files share that one copy too, and their
 * definitions say extern "C": a const object at namespace scope is otherwise internal in C++,
 * and g++ refuses a weak internal one. */
#if defined(__GNUC__) && !defined(RNN2C_TABLES_STATIC) && !defined(_WIN32) && !defined(__CYGWIN__)
#define RNN2C_TABLE_DEF __attribute__((weak, visibility("hidden")))
#if defined(__cplusplus)
#define RNN2C_TABLE_LINKAGE extern "C"
#define RNN2C_TABLE_EXTERN extern "C"
#else
#define RNN2C_TABLE_LINKAGE
#define RNN2C_TABLE_EXTERN extern
#endif
RNN2C_TABLE_EXTERN const int16_t rnn2c_tanh_table[173];
RNN2C_TABLE_EXTERN const uint16_t rnn2c_exp_table[17];
#else
#define RNN2C_TABLE_DEF
#define RNN2C_TABLE_LINKAGE static
#endif

#define RNN2C_Q12_ONE ((int32_t)4096)        /* 1.0 in Q3.12 */
#define RNN2C_Q15_ONE ((int32_t)32768)       /* 1.0 in Q0.15 */
#define RNN2C_TANH_STEP_BITS 7               /* tanh table step: 1/32 = 128 Q3.12 units */
#define RNN2C_EXP_STEP_BITS 8                /* 2^-f table step: 1/16 = 256 Q12 units of f */
#define RNN2C_TANH_CLAMP 171 /* tanh(i / 32) rounds to 32767 from i = 171: |x| clamped there */
#define RNN2C_TANH_POINTS 173 /* ... and the table ends one point later: i + 1 is always in it */
#define RNN2C_EXP_POINTS 17   /* 2^(-i / 16), i = 0..16 */
#define RNN2C_EXP_LIMIT_Q12 ((int32_t)178 << 8) /* exp(-x) taken as 0 for x >= 178 / 16 */
#define RNN2C_LOG2E_Q14 ((int32_t)23638)        /* log2(e) in Q14 */

/* tanh(i / 32) in Q0.15 for i = 0..172 (346 bytes of flash). */
RNN2C_TABLE_LINKAGE const int16_t rnn2c_tanh_table[RNN2C_TANH_POINTS] RNN2C_TABLE_DEF = {
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
    32766, 32766, 32766, 32767, 32767
};

/* 2^(-i / 16) in unsigned Q1.15 for i = 0..16 (34 bytes of flash): exp(-x) = 2^(-x log2 e). */
RNN2C_TABLE_LINKAGE const uint16_t rnn2c_exp_table[RNN2C_EXP_POINTS] RNN2C_TABLE_DEF = {
    32768, 31379, 30048, 28774, 27554, 26386, 25268, 24196, 23170, 22188, 21247, 20347,
    19484, 18658, 17867, 17109, 16384
};

/* ---------------------------------------------------------------- scalar helpers */

/* One SSAT on ARMv7-M (gcc does not find it for every clamp on its own). */
#if defined(__GNUC__) && defined(__ARM_FEATURE_SAT)
#define RNN2C_SSAT(bits, x)                                                                   \
    do {                                                                                      \
        __asm__("ssat %0, #" #bits ", %1" : "=r"(x) : "r"(x));                                \
    } while (0)
#endif

RNN2C_INLINE int32_t rnn2c_sat_s16(int32_t x)
{
#if defined(RNN2C_SSAT)
    RNN2C_SSAT(16, x);
    return x;
#else
    return x > INT16_MAX ? INT16_MAX : (x < INT16_MIN ? INT16_MIN : x);
#endif
}

RNN2C_INLINE int8_t rnn2c_sat_s8(int32_t x)
{
#if defined(RNN2C_SSAT)
    RNN2C_SSAT(8, x);
    return (int8_t)x;
#else
    return (int8_t)(x > INT8_MAX ? INT8_MAX : (x < INT8_MIN ? INT8_MIN : x));
#endif
}

/* (x + 2^(shift-1)) >> shift: divide by 2^shift, round half up. shift >= 1. The callers keep
 * |x| <= 2^30 so the rounding term cannot overflow. */
RNN2C_INLINE int32_t rnn2c_rshift_round(int32_t x, int shift)
{
    return (x + ((int32_t)1 << (shift - 1))) >> shift;
}

/* num / den (den > 0) where the quotient is below 2^bits (the softmax's 0..256: 9 bits; the
 * attention context's 0..128: 8): on ARMv6-M, which has no divide instruction, `bits`
 * compare-and-subtract steps instead of a call to libgcc's __aeabi_uidiv (its frame adds to the
 * stack, its code to flash); elsewhere the division. */
RNN2C_INLINE uint32_t rnn2c_udiv_small(uint32_t num, uint32_t den, int bits)
{
#if defined(__thumb__) && !defined(__thumb2__)
    uint32_t q = 0;
    int i;
    for (i = bits - 1; i >= 0; --i) {
        if ((num >> i) >= den) { /* num >= den * 2^i, so den << i does not overflow */
            num -= den << i;
            q |= (uint32_t)1 << i;
        }
    }
    return q;
#else
    (void)bits;
    return num / den;
#endif
}

/* Linear interpolation in a table at a >= 0 with `step_bits` fractional bits; the caller keeps
 * (a >> step_bits) + 1 inside the table. */
RNN2C_INLINE int32_t rnn2c_interp_s16(const int16_t *table, int32_t a, int step_bits)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__BYTE_ORDER__) &&             \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* lo * (2^step_bits - frac) + hi * frac + 2^(step_bits-1), shifted: the same integer as below
     * (lo * 2^step_bits is a multiple of the divisor); one word load of (lo, hi) and one SMLAD */
    uint32_t pair;
    const int32_t frac = a & (((int32_t)1 << step_bits) - 1);
    __builtin_memcpy(&pair, table + (a >> step_bits), 4);
    return __smlad((int32_t)pair,
                   (int32_t)(((uint32_t)frac << 16) | (uint32_t)(((int32_t)1 << step_bits) - frac)),
                   (int32_t)1 << (step_bits - 1)) >>
           step_bits;
#else
    const int16_t *at = table + (a >> step_bits);
    const int32_t frac = a & (((int32_t)1 << step_bits) - 1);
    const int32_t lo = at[0];
    return lo + (((at[1] - lo) * frac + ((int32_t)1 << (step_bits - 1))) >> step_bits);
#endif
}

/* |x| of an int16 value, clamped where tanh (table step 2^-step_bits) reaches 32767. */
RNN2C_INLINE int32_t rnn2c_tanh_arg(int32_t x, int step_bits)
{
    const int32_t a = x < 0 ? -x : x;
    const int32_t last = (int32_t)RNN2C_TANH_CLAMP << step_bits;
    return a < last ? a : last;
}

/* y with the sign of x: without a branch where that is shorter (s = x >> 31 is 0 or -1, and
 * (y ^ s) - s is y or -y: two data-processing instructions on Thumb-2, whose second operand
 * may be shifted); on Thumb-1 (ARMv6-M) a compare and a branch over NEGS are fewer. */
#if defined(__thumb__) && !defined(__thumb2__)
#define RNN2C_SIGNED(y, x) ((x) < 0 ? -(y) : (y))
#else
#define RNN2C_SIGNED(y, x) (((y) ^ ((x) >> 31)) - ((x) >> 31))
#endif

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

/* exp(-d) for Q3.12 d >= 0, unsigned Q1.15 out (0..32768): y = d log2(e) in Q12 (below 2^17 for
 * d under the limit, so d * log2e_q14 < 2^31), exp(-d) = 2^-(y >> 12) * 2^-(fraction), the
 * fraction from the 17-point table (interpolated), the integer part a rounded right shift. */
RNN2C_INLINE int32_t rnn2c_exp_neg_q15(int32_t d_q12)
{
    int32_t y;
    int32_t n;
    int32_t idx;
    int32_t frac;
    int32_t lo;
    int32_t e;
    if (d_q12 >= RNN2C_EXP_LIMIT_Q12) {
        return 0;
    }
    y = (d_q12 * RNN2C_LOG2E_Q14 + ((int32_t)1 << 13)) >> 14;
    n = y >> 12;
    idx = (y >> RNN2C_EXP_STEP_BITS) & 15;
    frac = y & (((int32_t)1 << RNN2C_EXP_STEP_BITS) - 1);
    lo = rnn2c_exp_table[idx];
    e = lo + (((rnn2c_exp_table[idx + 1] - lo) * frac + ((int32_t)1 << (RNN2C_EXP_STEP_BITS - 1))) >>
              RNN2C_EXP_STEP_BITS);
    return (e + (((int32_t)1 << n) >> 1)) >> n;
}

/* Q0.15 -> Q0.7 int8 hidden state. */
RNN2C_INLINE int8_t rnn2c_q15_to_state(int32_t x_q15)
{
    return rnn2c_sat_s8(rnn2c_rshift_round(x_q15, 8));
}

/* int16 value with frac_bits fractional bits -> Q3.12 (rounded, saturated). */
RNN2C_INLINE int32_t rnn2c_q12_from_frac(int32_t x, int frac_bits)
{
    if (frac_bits > 12) {
        return rnn2c_rshift_round(x, frac_bits - 12);
    }
    return rnn2c_sat_s16(x * ((int32_t)1 << (12 - frac_bits)));
}

/* n bytes from p set to zero (the state's reset). A plain loop, which gcc and clang would turn
 * into a call to memset (160 B of newlib on Cortex-M, for a 32- to a few-hundred-byte state):
 * the empty assembly statement in the loop keeps it a loop. */
RNN2C_INLINE void rnn2c_zero(void *p, size_t n)
{
    unsigned char *b = (unsigned char *)p;
    size_t i;
    for (i = 0; i < n; ++i) {
        b[i] = 0;
#if defined(__GNUC__)
        __asm__("" : : "r"(b) : "memory");
#endif
    }
}

/* ---------------------------------------------------------------- requantization */

/* Requantization to the format a row's consumer needs (Q3.12 for a gate). A layer stores one
 * int16 multiplier per row and one rnn2c_shift_t per row kind (GRU: z, r, candidate over x,
 * candidate over h; LSTM: i, f, g, o; SimpleRNN and Dense: one), shared by the kind's rows. */
typedef struct {
    uint8_t shift_in;  /* 0..31; the rounding of acc >> shift_in is folded into the bias */
    uint8_t shift_out; /* 1..31 */
} rnn2c_shift_t;

/* One self-contained record (a Dense activation's output requantization). */
typedef struct {
    int16_t multiplier; /* in [0, 2^14) */
    uint8_t shift_in;
    uint8_t shift_out;
} rnn2c_rq_t;

/* Saturate to 17 bits: [-65536, 65535] (gcc makes it one SSAT on ARMv7-M). */
RNN2C_INLINE int32_t rnn2c_sat17(int32_t x)
{
#if defined(RNN2C_SSAT)
    RNN2C_SSAT(17, x);
    return x;
#else
    return x > 65535 ? 65535 : (x < -65536 ? -65536 : x);
#endif
}

/* round(sat17(acc >> shift_in) * multiplier / 2^shift_out): 32-bit only, |result| < 2^30. The
 * exporter picks shift_in so that the saturation only touches accumulators whose result the
 * consumer saturates anyway. */
RNN2C_INLINE int32_t rnn2c_rqs(int32_t acc, int32_t multiplier, rnn2c_shift_t s)
{
    const int32_t t = rnn2c_sat17(acc >> s.shift_in);
    return (t * multiplier + ((int32_t)1 << (s.shift_out - 1))) >> s.shift_out;
}

RNN2C_INLINE int32_t rnn2c_rq(int32_t acc, const rnn2c_rq_t *q)
{
    rnn2c_shift_t s;
    s.shift_in = q->shift_in;
    s.shift_out = q->shift_out;
    return rnn2c_rqs(acc, q->multiplier, s);
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

RNN2C_INLINE int32_t rnn2c_bias(const int32_t *bias, uint32_t i)
{
    return bias != NULL ? bias[i] : 0;
}

/* ---------------------------------------------------------------- the int16 vector */

/* Where vector element i lives: in order, or (v0, v2, v1, v3) in every group of 4 for the AVX2
 * kernels, which multiply the bytes of a weight word in memory order. */
#if defined(__AVX2__)
#define RNN2C_VPOS(i) (((i) & ~3u) | (((i) & 1u) << 1) | (((i) >> 1) & 1u))
#else
#define RNN2C_VPOS(i) (i)
#endif

/* v[0 .. n4) = x << shift, zero padded from n. */
RNN2C_INLINE void rnn2c_vec_s8(int16_t *v, const int8_t *x, uint32_t n, uint32_t n4, uint32_t shift)
{
    uint32_t i = 0;
#if defined(__AVX2__) /* 8 at a time: widen, shift, (v0, v2, v1, v3) per group */
    for (; i + 8 <= n; i += 8) {
        const __m128i e = _mm_sll_epi16(
            _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(x + i))),
            _mm_cvtsi32_si128((int)shift));
        _mm_storeu_si128((__m128i *)(void *)(v + i),
                         _mm_shufflehi_epi16(_mm_shufflelo_epi16(e, 0xd8), 0xd8));
    }
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    if (i < n4) { /* the last 1..7 elements and the padding in one masked load and store (no
                   * scalar stores for the kernels' word loads to wait on) */
        const __m128i e = _mm_sll_epi16(
            _mm_cvtepi8_epi16(_mm_maskz_loadu_epi8((__mmask16)((1u << (n - i)) - 1u), x + i)),
            _mm_cvtsi32_si128((int)shift));
        _mm_mask_storeu_epi16(v + i, (__mmask8)((1u << (n4 - i)) - 1u),
                              _mm_shufflehi_epi16(_mm_shufflelo_epi16(e, 0xd8), 0xd8));
        return;
    }
#endif
#endif
    for (; i < n; ++i) {
        v[RNN2C_VPOS(i)] = (int16_t)((int32_t)x[i] * ((int32_t)1 << shift));
    }
    for (; i < n4; ++i) {
        v[RNN2C_VPOS(i)] = 0;
    }
}

/* v[0 .. n4) = x >> rshift (rounded half up), zero padded from n. */
RNN2C_INLINE int32_t rnn2c_down(int32_t x, uint32_t rshift)
{
    return (x + (((int32_t)1 << rshift) >> 1)) >> rshift;
}

RNN2C_INLINE void rnn2c_vec_s16(int16_t *v, const int16_t *x, uint32_t n, uint32_t n4,
                                uint32_t rshift)
{
    uint32_t i = 0;
#if defined(__AVX2__) /* 8 at a time when no shift is needed: (v0, v2, v1, v3) per group */
    if (rshift == 0u) {
        for (; i + 8 <= n; i += 8) {
            const __m128i e = _mm_loadu_si128((const __m128i *)(const void *)(x + i));
            _mm_storeu_si128((__m128i *)(void *)(v + i),
                             _mm_shufflehi_epi16(_mm_shufflelo_epi16(e, 0xd8), 0xd8));
        }
    }
#endif
    for (; i < n; ++i) {
        v[RNN2C_VPOS(i)] = (int16_t)rnn2c_down(x[i], rshift);
    }
    for (; i < n4; ++i) {
        v[RNN2C_VPOS(i)] = 0;
    }
}

/* ---------------------------------------------------------------- multiply-accumulate kernels */

/*
 * rnn2c_macR: R rows at once over `groups` groups of 4 vector columns. For every group the
 * weights hold one 32-bit word per row, bytes (c0, c2, c1, c3); each kernel adds the row's
 * products to *aK and returns the weight pointer past its block. The three implementations
 * below add the same integers (in another order; no partial sum can overflow, see the top).
 */

#if defined(__ARM_FEATURE_DSP) || defined(__AVX2__)
/* An unaligned-safe 32-bit load (one LDR on Cortex-M4/M7/M33). */
RNN2C_INLINE uint32_t rnn2c_ld32(const void *p)
{
#if defined(__GNUC__)
    uint32_t w;
    __builtin_memcpy(&w, p, 4);
    return w;
#else
    return *(const uint32_t *)p;
#endif
}
#endif

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__)
/* The DSP loop in Thumb-2 assembly (gcc, clang; optimized builds): per group of 4 columns the
 * input pairs are loaded once (LDRD), two weight words per LDRD, SXTB16 in its ROR 8 form (which
 * compilers do not fold on their own) and SMLAD; no register shuffling between groups. */
#define RNN2C_ASM_X "ldrd %[x01], %[x23], [%[v]], #8\n\t"
#define RNN2C_ASM_W2 "ldrd %[w0], %[w1], [%[w]], #8\n\t"
#define RNN2C_ASM_W1 "ldr %[w0], [%[w]], #4\n\t"
#define RNN2C_ASM_ROW(s, wk)                                                                  \
    "sxtb16 %[t], %[" wk "]\n\t"                                                             \
    "smlad %[" s "], %[t], %[x01], %[" s "]\n\t"                                             \
    "sxtb16 %[t], %[" wk "], ror #8\n\t"                                                     \
    "smlad %[" s "], %[t], %[x23], %[" s "]\n\t"
#define RNN2C_ASM_LOOP(body, ...)                                                             \
    do {                                                                                      \
        uint32_t x01;                                                                         \
        uint32_t x23;                                                                         \
        uint32_t w0;                                                                          \
        uint32_t w1;                                                                          \
        uint32_t t;                                                                           \
        if (groups & 1u) { /* one group, then pairs: half the loop overhead */                \
            __asm__(RNN2C_ASM_X body                                                          \
                    : __VA_ARGS__, [v] "+r"(v), [w] "+r"(w), [x01] "=&r"(x01),                \
                      [x23] "=&r"(x23), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)          \
                    :                                                                         \
                    : "memory");                                                              \
        }                                                                                     \
        groups >>= 1;                                                                         \
        if (groups == 1) { /* one pair (a constant in generated code): no loop */             \
            __asm__(RNN2C_ASM_X body RNN2C_ASM_X body                                          \
                    : __VA_ARGS__, [v] "+r"(v), [w] "+r"(w), [x01] "=&r"(x01),                \
                      [x23] "=&r"(x23), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)          \
                    :                                                                         \
                    : "memory");                                                              \
        } else if (groups != 0) {                                                             \
            __asm__("1:\n\t" RNN2C_ASM_X body RNN2C_ASM_X body "subs %[n], %[n], #1\n\t"    \
                    "bne 1b\n\t"                                                              \
                    : __VA_ARGS__, [v] "+r"(v), [w] "+r"(w), [n] "+r"(groups),                \
                      [x01] "=&r"(x01), [x23] "=&r"(x23), [w0] "=&r"(w0), [w1] "=&r"(w1),     \
                      [t] "=&r"(t)                                                            \
                    :                                                                         \
                    : "memory", "cc");                                                        \
        }                                                                                     \
        (void)w1;                                                                             \
    } while (0)
#define RNN2C_DSP_ASM 1
/* One group per iteration: half the code of the loop above, 2 instructions more per 2 groups;
 * for a Dense layer of one pass (a classifier head), where the code matters more. */
#define RNN2C_ASM_LOOP1(body, ...)                                                            \
    do {                                                                                      \
        uint32_t x01;                                                                         \
        uint32_t x23;                                                                         \
        uint32_t w0;                                                                          \
        uint32_t w1;                                                                          \
        uint32_t t;                                                                           \
        if (groups != 0) {                                                                    \
            __asm__("1:\n\t" RNN2C_ASM_X body "subs %[n], %[n], #1\n\t"                      \
                    "bne 1b\n\t"                                                              \
                    : __VA_ARGS__, [v] "+r"(v), [w] "+r"(w), [n] "+r"(groups),                \
                      [x01] "=&r"(x01), [x23] "=&r"(x23), [w0] "=&r"(w0), [w1] "=&r"(w1),     \
                      [t] "=&r"(t)                                                            \
                    :                                                                         \
                    : "memory", "cc");                                                        \
        }                                                                                     \
        (void)w1;                                                                             \
    } while (0)
#endif

#if !defined(__ARM_FEATURE_DSP) && defined(__arm__) && defined(__thumb__) &&                  \
    !defined(__thumb2__) && defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__) && \
    !defined(__OPTIMIZE_SIZE__) && defined(__BYTE_ORDER__) &&                                 \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* ARMv6-M (Cortex-M0/M0+, Thumb-1) in assembly (gcc -O1 and up; gcc -Os keeps r8-r11 out of
 * allocation on Thumb-1, and clang runs out of registers for the operands (clang 14:
 * "inline assembly requires more registers than available"), so there the C loop below is
 * used). Per group the four
 * vector elements are loaded once into low registers (one word holds v0, v1; SXTH and ASRS #16
 * split it) and kept there for every row of the pass; per row one weight word, whose bytes
 * (c0, c2, c1, c3) are taken out of the register (SXTB for c0, ASRS #24 for c3, then REV16 turns
 * it into (c2, c0, c3, c1) and SXTB, ASRS #24 give c2, c1: 5 instructions for the 4 bytes),
 * multiplied (MULS) and added into the row's sum, which lives in a high register (ADD reaches
 * them). */
#define RNN2C_NODSP_GROUP /* v in a high register: 7 low ones are in use */              \
    "mov %[t], %[v]\n\t"                                                                     \
    "ldr %[x1], [%[t]]\n\t"                                                                  \
    "ldr %[x3], [%[t], #4]\n\t"                                                              \
    "adds %[t], #8\n\t"                                                                      \
    "mov %[v], %[t]\n\t"                                                                     \
    "sxth %[x0], %[x1]\n\t"                                                                  \
    "asrs %[x1], %[x1], #16\n\t"                                                             \
    "sxth %[x2], %[x3]\n\t"                                                                  \
    "asrs %[x3], %[x3], #16\n\t"
#define RNN2C_NODSP_ROW(s, off)                                                               \
    "ldr %[t], [%[w], #" off "]\n\t"                                                         \
    "sxtb %[b], %[t]\n\t"                                                                    \
    "muls %[b], %[x0], %[b]\n\t"                                                             \
    "add %[" s "], %[b]\n\t"                                                                 \
    "asrs %[b], %[t], #24\n\t"                                                               \
    "muls %[b], %[x3], %[b]\n\t"                                                             \
    "add %[" s "], %[b]\n\t"                                                                 \
    "rev16 %[t], %[t]\n\t" /* (c2, c0, c3, c1): c2 and c1 now at the ends */               \
    "sxtb %[b], %[t]\n\t"                                                                    \
    "muls %[b], %[x2], %[b]\n\t"                                                             \
    "add %[" s "], %[b]\n\t"                                                                 \
    "asrs %[b], %[t], #24\n\t"                                                               \
    "muls %[b], %[x1], %[b]\n\t"                                                             \
    "add %[" s "], %[b]\n\t"
#define RNN2C_NODSP_ACC "+h"
/* gcc reads Thumb-1 inline assembly in divided syntax unless told otherwise */
#define RNN2C_NODSP_UNIFIED ".syntax unified\n\t"
#define RNN2C_NODSP_RESTORE ".syntax divided\n\t"
#define RNN2C_NODSP_LOOP(rows, body, ...)                                                     \
    do {                                                                                      \
        int32_t x0;                                                                           \
        int32_t x1;                                                                           \
        int32_t x2;                                                                           \
        int32_t x3;                                                                           \
        uint32_t t;                                                                           \
        uint32_t b;                                                                           \
        const int8_t *const end = w + (size_t)groups * (4 * (rows));                          \
        if (groups != 0) {                                                                    \
            __asm__(RNN2C_NODSP_UNIFIED "1:\n\t" RNN2C_NODSP_GROUP body                       \
                    "adds %[w], #" #rows "*4\n\t"                                            \
                    "cmp %[w], %[end]\n\t"                                                   \
                    "bne 1b\n\t" RNN2C_NODSP_RESTORE                                         \
                    : __VA_ARGS__, [v] "+h"(v), [w] "+l"(w), [x0] "=&l"(x0), [x1] "=&l"(x1), \
                      [x2] "=&l"(x2), [x3] "=&l"(x3), [t] "=&l"(t), [b] "=&l"(b)             \
                    : [end] "r"(end)                                                          \
                    : "memory", "cc");                                                        \
        }                                                                                     \
    } while (0)
#define RNN2C_NODSP_ASM 1
#endif

#if !defined(__ARM_FEATURE_DSP) && defined(__arm__) && defined(__thumb2__) &&                  \
    defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__)
/* ARMv7-M without DSP (Cortex-M3; gcc, optimized builds): the GRU (reset_after=1) takes two
 * units per pass, 6 rows (z, r, candidate of unit j through wa, of unit j + 1 through wb, which
 * points one unit's block further into the same layout), so every vector element is loaded once
 * (LDRSH) for 6 rows; per row and column one LDRSB of the weight byte at its place in the
 * (c0, c2, c1, c3) word and one MLA. The last loads of a group post-increment the pointers:
 * 54 instructions per group of 4 columns and 6 rows, loop included. */
#define RNN2C_V7M_COL(vo, bo)                                                                 \
    "ldrsh %[x], [%[v], #" vo "]\n\t"                                                        \
    "ldrsb %[t], [%[wa], #" bo "]\n\t"                                                       \
    "mla %[a0], %[x], %[t], %[a0]\n\t"                                                       \
    "ldrsb %[t], [%[wa], #" bo "+4]\n\t"                                                     \
    "mla %[a1], %[x], %[t], %[a1]\n\t"                                                       \
    "ldrsb %[t], [%[wa], #" bo "+8]\n\t"                                                     \
    "mla %[a2], %[x], %[t], %[a2]\n\t"                                                       \
    "ldrsb %[t], [%[wb], #" bo "]\n\t"                                                       \
    "mla %[b0], %[x], %[t], %[b0]\n\t"                                                       \
    "ldrsb %[t], [%[wb], #" bo "+4]\n\t"                                                     \
    "mla %[b1], %[x], %[t], %[b1]\n\t"                                                       \
    "ldrsb %[t], [%[wb], #" bo "+8]\n\t"                                                     \
    "mla %[b2], %[x], %[t], %[b2]\n\t"
/* Units j (rows z, r, c through wa) and j + 1 (through wb) of a GRU (reset_after=1): a[0..3] and
 * b[0..3] (z, r, candidate over x, candidate over h) start from bias[0..7] (LDRD) and accumulate
 * over the x_groups then the h_groups of v. One loop for both parts (one copy of the code):
 * when the input part ends, the candidate accumulators are swapped with their recurrent twins,
 * kept in memory meanwhile (11 instructions per pair of units). */
RNN2C_INLINE void rnn2c_v7m_gru_pair_acc(const int8_t *wa, const int16_t *v, uint32_t x_groups,
                                         uint32_t h_groups, const int32_t *bias, int32_t *a,
                                         int32_t *b)
{
    const int8_t *wb = wa + 12 * ((size_t)x_groups + h_groups);
    const int16_t *end = v + 4 * (size_t)x_groups;
    const int16_t *end2 = end + 4 * (size_t)h_groups;
    int32_t a0;
    int32_t a1;
    int32_t a2;
    int32_t a3;
    int32_t b0;
    int32_t b1;
    int32_t b2;
    int32_t b3;
    int32_t x;
    int32_t t;
    __asm__("ldrd %[a0], %[a1], [%[bias]]\n\t" /* the biases */
            "ldrd %[a2], %[x], [%[bias], #8]\n\t"
            "str %[x], %[a3]\n\t"
            "ldrd %[b0], %[b1], [%[bias], #16]\n\t"
            "ldrd %[b2], %[x], [%[bias], #24]\n\t"
            "str %[x], %[b3]\n"
            "1:\n\t" RNN2C_V7M_COL("2", "2") RNN2C_V7M_COL("4", "1") RNN2C_V7M_COL("6", "3")
            "ldrsh %[x], [%[v]], #8\n\t" /* column 0, bytes 0, 4, 8: the pointers move on */
            "ldrsb %[t], [%[wa], #4]\n\t"
            "mla %[a1], %[x], %[t], %[a1]\n\t"
            "ldrsb %[t], [%[wa], #8]\n\t"
            "mla %[a2], %[x], %[t], %[a2]\n\t"
            "ldrsb %[t], [%[wb], #4]\n\t"
            "mla %[b1], %[x], %[t], %[b1]\n\t"
            "ldrsb %[t], [%[wb], #8]\n\t"
            "mla %[b2], %[x], %[t], %[b2]\n\t"
            "ldrsb %[t], [%[wa]], #12\n\t"
            "mla %[a0], %[x], %[t], %[a0]\n\t"
            "ldrsb %[t], [%[wb]], #12\n\t"
            "mla %[b0], %[x], %[t], %[b0]\n\t"
            "cmp %[v], %[end]\n\t"
            "bne 1b\n\t"
            "ldr %[x], %[end2]\n\t" /* both parts done? */
            "cmp %[end], %[x]\n\t"
            "beq 2f\n\t"
            "mov %[end], %[x]\n\t" /* on to the state part: swap in the h candidates */
            "ldr %[x], %[a3]\n\t"
            "str %[a2], %[a3]\n\t"
            "mov %[a2], %[x]\n\t"
            "ldr %[x], %[b3]\n\t"
            "str %[b2], %[b3]\n\t"
            "mov %[b2], %[x]\n\t"
            "b 1b\n"
            "2:\n\t"
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [b0] "=&r"(b0), [b1] "=&r"(b1),
              [b2] "=&r"(b2), [wa] "+r"(wa), [wb] "+r"(wb), [v] "+r"(v), [end] "+r"(end),
              [x] "=&r"(x), [t] "=&r"(t), [a3] "=m"(a3), [b3] "=m"(b3)
            : [end2] "m"(end2), [bias] "r"(bias)
            : "memory", "cc");
    a[0] = a0; /* a3 holds the candidate over x now, a2 the one over h */
    a[1] = a1;
    a[2] = a3;
    a[3] = a2;
    b[0] = b0;
    b[1] = b1;
    b[2] = b3;
    b[3] = b2;
}
#define RNN2C_V7M_ASM 1
#endif

#if defined(__ARM_FEATURE_DSP)

/* acc += w.c0 * x.v0 + w.c1 * x.v1 (SXTB16: bytes 0, 2) + w.c2 * v2 + w.c3 * v3 (ROR 8). */
#define RNN2C_DSP_WORD(acc, wp, x01, x23)                                                     \
    do {                                                                                      \
        const uint32_t w_ = rnn2c_ld32(wp);                                                   \
        (acc) = __smlad(__sxtb16((int32_t)w_), (x01), (acc));                                 \
        (acc) = __smlad(__sxtb16((int32_t)((w_ >> 8) | (w_ << 24))), (x23), (acc));          \
    } while (0)
#define RNN2C_GROUP_BEGIN                                                                     \
    const int32_t x01 = (int32_t)rnn2c_ld32(v);                                               \
    const int32_t x23 = (int32_t)rnn2c_ld32(v + 2)
#define RNN2C_ROW(acc, wp) RNN2C_DSP_WORD(acc, wp, x01, x23)

#elif defined(__arm__) && defined(__thumb__) && !defined(__thumb2__) && defined(__GNUC__) &&      \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* ARMv6-M in C (where the assembly loop above is not used): one word load per row and group
 * (LDRSB has no immediate offset in Thumb-1), the weight bytes taken out of the register. */
#define RNN2C_GROUP_BEGIN                                                                     \
    const int32_t v0 = v[0];                                                                  \
    const int32_t v1 = v[1];                                                                  \
    const int32_t v2 = v[2];                                                                  \
    const int32_t v3 = v[3]
#define RNN2C_ROW(acc, wp)                                                                    \
    do {                                                                                      \
        uint32_t w_;                                                                          \
        __builtin_memcpy(&w_, (wp), 4);                                                       \
        (acc) += (int32_t)(int8_t)w_ * v0 + (int32_t)(int8_t)(w_ >> 8) * v2 +                 \
                 (int32_t)(int8_t)(w_ >> 16) * v1 + ((int32_t)w_ >> 24) * v3;                 \
    } while (0)

#else /* portable C (also the scalar tail of nothing: AVX2 kernels are separate below) */

#define RNN2C_GROUP_BEGIN                                                                     \
    const int32_t v0 = v[0];                                                                  \
    const int32_t v1 = v[1];                                                                  \
    const int32_t v2 = v[2];                                                                  \
    const int32_t v3 = v[3]
#define RNN2C_ROW(acc, wp) /* four multiply-accumulates into acc (MLA on Thumb-2) */        \
    do {                                                                                      \
        (acc) += (int32_t)(wp)[0] * v0;                                                       \
        (acc) += (int32_t)(wp)[1] * v2;                                                       \
        (acc) += (int32_t)(wp)[2] * v1;                                                       \
        (acc) += (int32_t)(wp)[3] * v3;                                                       \
    } while (0)

#endif

#if defined(__AVX2__)

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define RNN2C_DP256(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))
#define RNN2C_DP128(acc, a, b) _mm_dpwssd_epi32((acc), (a), (b))
#else
#define RNN2C_DP256(acc, a, b) _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b)))
#define RNN2C_DP128(acc, a, b) _mm_add_epi32((acc), _mm_madd_epi16((a), (b)))
#endif

/* The 4 vector elements of one group (stored v0, v2, v1, v3), in every 64-bit lane. */
RNN2C_INLINE __m256i rnn2c_avx_group256(const int16_t *v)
{
    long long x;
    __builtin_memcpy(&x, v, 8);
    return _mm256_set1_epi64x(x);
}

RNN2C_INLINE __m128i rnn2c_avx_group128(const int16_t *v)
{
    return _mm_loadl_epi64((const __m128i *)(const void *)v);
}

/* lanes [r0 r0 r1 r1 | r2 r2 r3 r3] -> [r0 r1 r2 r3] */
RNN2C_INLINE __m128i rnn2c_avx_rows(__m256i acc)
{
    return _mm_hadd_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
}

/* The 4- and 3-row passes before the reduction: lanes [r0 r0 r1 r1 | r2 r2 r3 r3], each pair
 * summing to its row's total; *wp advances past the block. */
RNN2C_INLINE __m256i rnn2c_avx_acc4(const int8_t **wp, const int16_t *v, uint32_t groups)
{
    const int8_t *w = *wp;
    __m256i acc = _mm256_setzero_si256();
    __m256i acc2 = _mm256_setzero_si256(); /* two chains: the adds do not wait on each other */
    for (; groups >= 2; groups -= 2, v += 8, w += 32) {
        const __m256i wa = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
        const __m256i wb =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + 16)));
        acc = RNN2C_DP256(acc, wa, rnn2c_avx_group256(v));
        acc2 = RNN2C_DP256(acc2, wb, rnn2c_avx_group256(v + 4));
    }
    if (groups != 0) {
        const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
        acc = RNN2C_DP256(acc, wv, rnn2c_avx_group256(v));
        w += 16;
    }
    *wp = w;
    return _mm256_add_epi32(acc, acc2);
}

RNN2C_INLINE __m256i rnn2c_avx_acc3(const int8_t **wp, const int16_t *v, uint32_t groups)
{
    const int8_t *w = *wp;
    __m256i acc = _mm256_setzero_si256();
    __m256i acc2 = _mm256_setzero_si256();
    for (; groups >= 2; groups -= 2, v += 8, w += 24) {
        const __m128i a = _mm_insert_epi32(_mm_loadl_epi64((const __m128i *)(const void *)w),
                                           (int)rnn2c_ld32(w + 8), 2);
        const __m128i b = _mm_insert_epi32(
            _mm_loadl_epi64((const __m128i *)(const void *)(w + 12)), (int)rnn2c_ld32(w + 20), 2);
        acc = RNN2C_DP256(acc, _mm256_cvtepi8_epi16(a), rnn2c_avx_group256(v));
        acc2 = RNN2C_DP256(acc2, _mm256_cvtepi8_epi16(b), rnn2c_avx_group256(v + 4));
    }
    if (groups != 0) {
        const __m128i b = _mm_insert_epi32(_mm_loadl_epi64((const __m128i *)(const void *)w),
                                           (int)rnn2c_ld32(w + 8), 2);
        acc = RNN2C_DP256(acc, _mm256_cvtepi8_epi16(b), rnn2c_avx_group256(v));
        w += 12;
    }
    *wp = w;
    return _mm256_add_epi32(acc, acc2);
}

RNN2C_INLINE const int8_t *rnn2c_mac4(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    const __m128i s = rnn2c_avx_rows(rnn2c_avx_acc4(&w, v, groups));
    *a0 += _mm_cvtsi128_si32(s);
    *a1 += _mm_extract_epi32(s, 1);
    *a2 += _mm_extract_epi32(s, 2);
    *a3 += _mm_extract_epi32(s, 3);
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac3(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1, int32_t *a2)
{
    const __m128i s = rnn2c_avx_rows(rnn2c_avx_acc3(&w, v, groups));
    *a0 += _mm_cvtsi128_si32(s);
    *a1 += _mm_extract_epi32(s, 1);
    *a2 += _mm_extract_epi32(s, 2);
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac2(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1)
{
    __m128i acc = _mm_setzero_si128();
    for (; groups != 0; --groups, v += 4, w += 8) {
        const __m128i b = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)w));
        acc = RNN2C_DP128(acc, b, _mm_unpacklo_epi64(rnn2c_avx_group128(v), rnn2c_avx_group128(v)));
    }
    acc = _mm_hadd_epi32(acc, acc);
    *a0 += _mm_cvtsi128_si32(acc);
    *a1 += _mm_extract_epi32(acc, 1);
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac1(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0)
{
    __m256i acc = _mm256_setzero_si256();
    __m128i s;
    __m128i tail = _mm_setzero_si128();
    for (; groups >= 4; groups -= 4, v += 16, w += 16) { /* one row: 4 groups in a row */
        const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
        acc = RNN2C_DP256(acc, wv, _mm256_loadu_si256((const __m256i *)(const void *)v));
    }
    for (; groups != 0; --groups, v += 4, w += 4) {
        const __m128i b = _mm_cvtepi8_epi16(_mm_cvtsi32_si128((int)rnn2c_ld32(w)));
        tail = RNN2C_DP128(tail, b, rnn2c_avx_group128(v));
    }
    s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, tail);
    s = _mm_hadd_epi32(s, s);
    s = _mm_hadd_epi32(s, s);
    *a0 += _mm_cvtsi128_si32(s);
    return w;
}

#elif defined(RNN2C_NODSP_ASM)

RNN2C_INLINE const int8_t *rnn2c_mac4(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    int32_t s3 = *a3;
    RNN2C_NODSP_LOOP(4,
                     RNN2C_NODSP_ROW("s0", "0") RNN2C_NODSP_ROW("s1", "4")
                         RNN2C_NODSP_ROW("s2", "8") RNN2C_NODSP_ROW("s3", "12"),
                     [s0] RNN2C_NODSP_ACC(s0), [s1] RNN2C_NODSP_ACC(s1),
                     [s2] RNN2C_NODSP_ACC(s2), [s3] RNN2C_NODSP_ACC(s3));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac3(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1, int32_t *a2)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    RNN2C_NODSP_LOOP(3,
                     RNN2C_NODSP_ROW("s0", "0") RNN2C_NODSP_ROW("s1", "4")
                         RNN2C_NODSP_ROW("s2", "8"),
                     [s0] RNN2C_NODSP_ACC(s0), [s1] RNN2C_NODSP_ACC(s1),
                     [s2] RNN2C_NODSP_ACC(s2));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac2(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    RNN2C_NODSP_LOOP(2, RNN2C_NODSP_ROW("s0", "0") RNN2C_NODSP_ROW("s1", "4"),
                     [s0] RNN2C_NODSP_ACC(s0), [s1] RNN2C_NODSP_ACC(s1));
    *a0 = s0;
    *a1 = s1;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac1(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0)
{
    int32_t s0 = *a0;
    RNN2C_NODSP_LOOP(1, RNN2C_NODSP_ROW("s0", "0"), [s0] RNN2C_NODSP_ACC(s0));
    *a0 = s0;
    return w;
}

#elif defined(RNN2C_DSP_ASM)

RNN2C_INLINE const int8_t *rnn2c_mac4(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    int32_t s3 = *a3;
    RNN2C_ASM_LOOP(RNN2C_ASM_W2 RNN2C_ASM_ROW("s0", "w0") RNN2C_ASM_ROW("s1", "w1")
                       RNN2C_ASM_W2 RNN2C_ASM_ROW("s2", "w0") RNN2C_ASM_ROW("s3", "w1"),
                   [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac3(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1, int32_t *a2)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    RNN2C_ASM_LOOP(RNN2C_ASM_W2 RNN2C_ASM_ROW("s0", "w0") RNN2C_ASM_ROW("s1", "w1")
                       RNN2C_ASM_W1 RNN2C_ASM_ROW("s2", "w0"),
                   [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac2(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    RNN2C_ASM_LOOP(RNN2C_ASM_W2 RNN2C_ASM_ROW("s0", "w0") RNN2C_ASM_ROW("s1", "w1"),
                   [s0] "+r"(s0), [s1] "+r"(s1));
    *a0 = s0;
    *a1 = s1;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac1(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0)
{
    int32_t s0 = *a0;
    RNN2C_ASM_LOOP(RNN2C_ASM_W1 RNN2C_ASM_ROW("s0", "w0"), [s0] "+r"(s0));
    *a0 = s0;
    return w;
}

#else /* portable C or ARM DSP: the same loops, RNN2C_ROW per row and group */

RNN2C_INLINE const int8_t *rnn2c_mac4(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    int32_t s3 = *a3;
    for (; groups != 0; --groups, v += 4, w += 16) {
        RNN2C_GROUP_BEGIN;
        RNN2C_ROW(s0, w);
        RNN2C_ROW(s1, w + 4);
        RNN2C_ROW(s2, w + 8);
        RNN2C_ROW(s3, w + 12);
    }
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac3(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1, int32_t *a2)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    for (; groups != 0; --groups, v += 4, w += 12) {
        RNN2C_GROUP_BEGIN;
        RNN2C_ROW(s0, w);
        RNN2C_ROW(s1, w + 4);
        RNN2C_ROW(s2, w + 8);
    }
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac2(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    for (; groups != 0; --groups, v += 4, w += 8) {
        RNN2C_GROUP_BEGIN;
        RNN2C_ROW(s0, w);
        RNN2C_ROW(s1, w + 4);
    }
    *a0 = s0;
    *a1 = s1;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_mac1(const int8_t *w, const int16_t *v, uint32_t groups,
                                      int32_t *a0)
{
    int32_t s0 = *a0;
    for (; groups != 0; --groups, v += 4, w += 4) {
        RNN2C_GROUP_BEGIN;
        RNN2C_ROW(s0, w);
    }
    *a0 = s0;
    return w;
}

#endif

/* `rows` (1..4) rows at once; a[0 .. rows) accumulate. */
RNN2C_INLINE const int8_t *rnn2c_mac_rows(const int8_t *w, const int16_t *v, uint32_t groups,
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

#if defined(RNN2C_DSP_ASM)
/* rnn2c_mac_rows with the one-group loop (RNN2C_ASM_LOOP1). */
RNN2C_INLINE const int8_t *rnn2c_mac_rows_small(const int8_t *w, const int16_t *v,
                                                uint32_t groups, uint32_t rows, int32_t *a)
{
    int32_t s0 = a[0];
    int32_t s1;
    int32_t s2;
    int32_t s3;
    switch (rows) {
    case 4:
        s1 = a[1];
        s2 = a[2];
        s3 = a[3];
        RNN2C_ASM_LOOP1(RNN2C_ASM_W2 RNN2C_ASM_ROW("s0", "w0") RNN2C_ASM_ROW("s1", "w1")
                            RNN2C_ASM_W2 RNN2C_ASM_ROW("s2", "w0") RNN2C_ASM_ROW("s3", "w1"),
                        [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3));
        a[1] = s1;
        a[2] = s2;
        a[3] = s3;
        break;
    case 3:
        s1 = a[1];
        s2 = a[2];
        RNN2C_ASM_LOOP1(RNN2C_ASM_W2 RNN2C_ASM_ROW("s0", "w0") RNN2C_ASM_ROW("s1", "w1")
                            RNN2C_ASM_W1 RNN2C_ASM_ROW("s2", "w0"),
                        [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2));
        a[1] = s1;
        a[2] = s2;
        break;
    case 2:
        s1 = a[1];
        RNN2C_ASM_LOOP1(RNN2C_ASM_W2 RNN2C_ASM_ROW("s0", "w0") RNN2C_ASM_ROW("s1", "w1"),
                        [s0] "+r"(s0), [s1] "+r"(s1));
        a[1] = s1;
        break;
    default:
        RNN2C_ASM_LOOP1(RNN2C_ASM_W1 RNN2C_ASM_ROW("s0", "w0"), [s0] "+r"(s0));
        break;
    }
    a[0] = s0;
    return w;
}
#endif

/* ---------------------------------------------------------------- GRU */

typedef struct {
    const int8_t *weight;  /* packed (see the top), in the order the step reads it */
    const int32_t *bias;   /* per row, in the order the step reads it; NULL when all zero */
    const int16_t *mult;   /* requantization multiplier per row, same order */
    rnn2c_shift_t sh[4];   /* per row kind: z, r, candidate over x, candidate over h (reset_after=0:
                            * z, r, candidate) */
    uint16_t units;
    uint16_t x_groups;     /* input columns / 4, padded */
    uint16_t h_groups;     /* state columns / 4, padded */
    uint8_t x_shift;       /* the input enters the vector shifted left by this (int16: right) */
    uint8_t h_shift;       /* the state likewise (an int16 state: shifted right, rounded) */
    uint8_t reset_after;   /* 1: r gates (W_h h + b_h) (Keras default); 0: W_h (r * h) */
} rnn2c_gru_t;

/* h = z * h + (1 - z) * candidate in Q0.15: a convex combination, so |sum| <= 2^30. Computed
 * as z * (h - candidate) + 2^15 * candidate, the same integer with one multiplication. */
RNN2C_INLINE int32_t rnn2c_gru_blend_sum(int32_t z, int32_t h_q15, int32_t cand)
{
    return z * (h_q15 - cand) + cand * RNN2C_Q15_ONE;
}

RNN2C_INLINE int32_t rnn2c_gru_blend_q15(int32_t z, int32_t h_q15, int32_t cand)
{
    return rnn2c_rshift_round(rnn2c_gru_blend_sum(z, h_q15, cand), 15);
}

/* rnn2c_q15_to_state(rnn2c_rshift_round(sum, 15)) in one rounding: ((s + 2^14) >> 15 + 2^7) >> 8
 * == (s + 2^14 + 2^22) >> 23 for every integer s. */
RNN2C_INLINE int8_t rnn2c_gru_sum_to_s8(int32_t sum)
{
    return rnn2c_sat_s8((sum + ((int32_t)1 << 14) + ((int32_t)1 << 22)) >> 23);
}

/* The gate arithmetic of one GRU (reset_after=1) unit from its four accumulators (bias included):
 * the new state in Q0.15 times 2^15, before rounding (rnn2c_gru_blend_sum). The candidate's
 * recurrent part is saturated to 17 bits, so r times it fits int32. */
RNN2C_INLINE int32_t rnn2c_gru_gates(const rnn2c_gru_t *p, const int16_t *m, int32_t z, int32_t r,
                                     int32_t cx, int32_t ch, int32_t h_q15)
{
    z = rnn2c_sigmoid_rq(z, m[0], p->sh[0]);
    r = rnn2c_sigmoid_rq(r, m[1], p->sh[1]);
    ch = rnn2c_sat17(rnn2c_rqs(ch, m[3], p->sh[3]));
    cx = rnn2c_rqs(cx, m[2], p->sh[2]) + ((r * ch + ((int32_t)1 << 14)) >> 15);
    return rnn2c_gru_blend_sum(z, h_q15, rnn2c_tanh_q15(cx));
}

/* reset_after=1, unit j: rows z, r, candidate over x, then z, r, candidate over h; returns the
 * new state in Q0.15 times 2^15, before rounding (rnn2c_gru_blend_sum). The candidate's recurrent
 * part is saturated to 17 bits, so r times it fits int32. */
RNN2C_INLINE int32_t rnn2c_gru_unit(const rnn2c_gru_t *p, const int8_t **w, const int16_t *v,
                                    uint32_t j, int32_t h_q15)
{
    const int16_t *m = p->mult + 4 * j;
    int32_t z = rnn2c_bias(p->bias, 4 * j);
    int32_t r = rnn2c_bias(p->bias, 4 * j + 1);
    int32_t cx = rnn2c_bias(p->bias, 4 * j + 2);
    int32_t ch = rnn2c_bias(p->bias, 4 * j + 3);
    *w = rnn2c_mac3(*w, v, p->x_groups, &z, &r, &cx);
    *w = rnn2c_mac3(*w, v + 4 * (uint32_t)p->x_groups, p->h_groups, &z, &r, &ch);
    return rnn2c_gru_gates(p, m, z, r, cx, ch, h_q15);
}

#if defined(RNN2C_V7M_ASM)
/* reset_after=1, units j and j + 1 in one pass of 6 rows (rnn2c_v7m_gru_pair_acc): their sums as
 * rnn2c_gru_unit returns them into s[0], s[1]; *w moves past both units. */
RNN2C_INLINE void rnn2c_gru_pair(const rnn2c_gru_t *p, const int8_t **w, const int16_t *v,
                                 uint32_t j, int32_t h0_q15, int32_t h1_q15, int32_t *s)
{
    static const int32_t no_bias[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int16_t *m = p->mult + 4 * j;
    int32_t a[4];
    int32_t b[4];
    rnn2c_v7m_gru_pair_acc(*w, v, p->x_groups, p->h_groups,
                           p->bias != NULL ? p->bias + 4 * j : no_bias, a, b);
    *w += 24 * ((size_t)p->x_groups + p->h_groups);
    s[0] = rnn2c_gru_gates(p, m, a[0], a[1], a[2], a[3], h0_q15);
    s[1] = rnn2c_gru_gates(p, m + 4, b[0], b[1], b[2], b[3], h1_q15);
}
#endif

/* reset_after=0, first pass: z and r of every unit (2 units per kernel pass) into zr[0 .. 2U)
 * (z_j at 2j, r_j at 2j + 1). */
RNN2C_INLINE const int8_t *rnn2c_gru_zr(const rnn2c_gru_t *p, const int16_t *v, int16_t *zr)
{
    const int8_t *w = p->weight;
    const uint32_t n = 2 * (uint32_t)p->units;
    const uint32_t groups = (uint32_t)p->x_groups + p->h_groups;
    uint32_t i;
    uint32_t k;
    for (i = 0; i < n; i += 4) {
        int32_t a[4];
        const uint32_t rows = n - i < 4 ? n - i : 4;
        for (k = 0; k < rows; ++k) {
            a[k] = rnn2c_bias(p->bias, i + k);
        }
        w = rnn2c_mac_rows(w, v, groups, rows, a);
        for (k = 0; k < rows; ++k) {
            zr[i + k] = (int16_t)rnn2c_sigmoid_rq(a[k], p->mult[i + k], p->sh[(i + k) & 1]);
        }
    }
    return w;
}

/* reset_after=0, second pass: the candidates of units [j, j + rows) over [x; r * h]. */
RNN2C_INLINE const int8_t *rnn2c_gru_cand(const rnn2c_gru_t *p, const int8_t *w, const int16_t *v,
                                          uint32_t j, uint32_t rows, int32_t *a)
{
    const uint32_t row = 2 * (uint32_t)p->units + j;
    uint32_t k;
    for (k = 0; k < rows; ++k) {
        a[k] = rnn2c_bias(p->bias, row + k);
    }
    w = rnn2c_mac_rows(w, v, (uint32_t)p->x_groups + p->h_groups, rows, a);
    for (k = 0; k < rows; ++k) {
        a[k] = rnn2c_tanh_rq(a[k], p->mult[row + k], p->sh[2]);
    }
    return w;
}

/* GRU step, int8 Q0.7 state. v: the layer's vector, built by the caller; zr: 2U int16 scratch
 * (reset_after=0 only). h is updated in place (the kernels read the copy in v). */
RNN2C_INLINE void rnn2c_gru_s8(const rnn2c_gru_t *p, int16_t *v, int8_t *h, int16_t *zr)
{
    const uint32_t u = p->units;
    uint32_t j;
    uint32_t k;
    if (p->reset_after) {
        const int8_t *w = p->weight;
        j = 0;
#if defined(RNN2C_V7M_ASM)
        for (; j + 2 <= u; j += 2) {
            int32_t s[2];
            rnn2c_gru_pair(p, &w, v, j, (int32_t)h[j] * 256, (int32_t)h[j + 1] * 256, s);
            h[j] = rnn2c_gru_sum_to_s8(s[0]);
            h[j + 1] = rnn2c_gru_sum_to_s8(s[1]);
        }
#endif
        for (; j < u; ++j) {
            h[j] = rnn2c_gru_sum_to_s8(rnn2c_gru_unit(p, &w, v, j, (int32_t)h[j] * 256));
        }
    } else {
        const int8_t *w = rnn2c_gru_zr(p, v, zr);
        int16_t *vh = v + 4 * (uint32_t)p->x_groups;
        for (j = 0; j < u; ++j) { /* the state part of v becomes r * h */
            const int32_t rh = rnn2c_sat_s8(rnn2c_rshift_round(zr[2 * j + 1] * (int32_t)h[j], 15));
            vh[RNN2C_VPOS(j)] = (int16_t)(rh * ((int32_t)1 << p->h_shift));
        }
        for (j = 0; j < u; j += 4) {
            int32_t a[4];
            const uint32_t rows = u - j < 4 ? u - j : 4;
            w = rnn2c_gru_cand(p, w, v, j, rows, a);
            for (k = 0; k < rows; ++k) {
                h[j + k] = rnn2c_gru_sum_to_s8(
                    rnn2c_gru_blend_sum(zr[2 * (j + k)], (int32_t)h[j + k] * 256, a[k]));
            }
        }
    }
}

/* GRU step, int16 Q0.15 state (h_shift: the state enters the vector shifted right by it). */
RNN2C_INLINE void rnn2c_gru_s16(const rnn2c_gru_t *p, int16_t *v, int16_t *h, int16_t *zr)
{
    const uint32_t u = p->units;
    uint32_t j;
    uint32_t k;
    if (p->reset_after) {
        const int8_t *w = p->weight;
        j = 0;
#if defined(RNN2C_V7M_ASM)
        for (; j + 2 <= u; j += 2) {
            int32_t s[2];
            rnn2c_gru_pair(p, &w, v, j, h[j], h[j + 1], s);
            h[j] = (int16_t)rnn2c_sat_s16(rnn2c_rshift_round(s[0], 15));
            h[j + 1] = (int16_t)rnn2c_sat_s16(rnn2c_rshift_round(s[1], 15));
        }
#endif
        for (; j < u; ++j) {
            h[j] = (int16_t)rnn2c_sat_s16(rnn2c_rshift_round(rnn2c_gru_unit(p, &w, v, j, h[j]), 15));
        }
    } else {
        const int8_t *w = rnn2c_gru_zr(p, v, zr);
        int16_t *vh = v + 4 * (uint32_t)p->x_groups;
        for (j = 0; j < u; ++j) {
            const int32_t rh = rnn2c_sat_s16(rnn2c_rshift_round(zr[2 * j + 1] * (int32_t)h[j], 15));
            vh[RNN2C_VPOS(j)] = (int16_t)rnn2c_down(rh, p->h_shift);
        }
        for (j = 0; j < u; j += 4) {
            int32_t a[4];
            const uint32_t rows = u - j < 4 ? u - j : 4;
            w = rnn2c_gru_cand(p, w, v, j, rows, a);
            for (k = 0; k < rows; ++k) {
                h[j + k] = (int16_t)rnn2c_sat_s16(
                    rnn2c_gru_blend_q15(zr[2 * (j + k)], (int32_t)h[j + k], a[k]));
            }
        }
    }
}

/* ---------------------------------------------------------------- LSTM */

typedef struct {
    const int8_t *weight;  /* per unit: rows i, f, g, o over the whole vector */
    const int32_t *bias;   /* 4 per unit; NULL when all zero */
    const int16_t *mult;   /* per row, same order */
    rnn2c_shift_t sh[4];   /* per gate: i, f, g, o */
    uint16_t units;
    uint16_t x_groups;
    uint16_t h_groups;
    uint8_t x_shift;
    uint8_t h_shift;
    uint8_t cell_frac_bits; /* fractional bits of the int16 cell state */
} rnn2c_lstm_t;

/* Unit j: gates from v, cell c[j] updated; returns o * tanh(c) in Q0.30. */
RNN2C_INLINE int32_t rnn2c_lstm_unit(const rnn2c_lstm_t *p, const int8_t **w, const int16_t *v,
                                     int16_t *c, uint32_t j)
{
    const int16_t *m = p->mult + 4 * j;
    const int cell_shift = 30 - (int)p->cell_frac_bits; /* Q0.30 product -> cell format */
    int32_t i_gate = rnn2c_bias(p->bias, 4 * j);
    int32_t f_gate = rnn2c_bias(p->bias, 4 * j + 1);
    int32_t g_cand = rnn2c_bias(p->bias, 4 * j + 2);
    int32_t o_gate = rnn2c_bias(p->bias, 4 * j + 3);
    int32_t cell;
    *w = rnn2c_mac4(*w, v, (uint32_t)p->x_groups + p->h_groups, &i_gate, &f_gate, &g_cand,
                    &o_gate);
    i_gate = rnn2c_sigmoid_rq(i_gate, m[0], p->sh[0]);
    f_gate = rnn2c_sigmoid_rq(f_gate, m[1], p->sh[1]);
    g_cand = rnn2c_tanh_rq(g_cand, m[2], p->sh[2]);
    o_gate = rnn2c_sigmoid_rq(o_gate, m[3], p->sh[3]);
    /* c = f * c + i * g; each product is below 2^30 in magnitude */
    cell = rnn2c_sat_s16(rnn2c_rshift_round(f_gate * (int32_t)c[j], 15) +
                         rnn2c_rshift_round(i_gate * g_cand, cell_shift));
    c[j] = (int16_t)cell;
    return o_gate * rnn2c_tanh_q15(rnn2c_q12_from_frac(cell, p->cell_frac_bits));
}

/* LSTM step, int8 Q0.7 state; h and c updated in place. */
RNN2C_INLINE void rnn2c_lstm_s8(const rnn2c_lstm_t *p, const int16_t *v, int8_t *h, int16_t *c)
{
    const int8_t *w = p->weight;
    uint32_t j;
    for (j = 0; j < p->units; ++j) {
        h[j] = rnn2c_sat_s8(rnn2c_rshift_round(rnn2c_lstm_unit(p, &w, v, c, j), 23)); /* Q0.7 */
    }
}

/* LSTM step, int16 Q0.15 state. */
RNN2C_INLINE void rnn2c_lstm_s16(const rnn2c_lstm_t *p, const int16_t *v, int16_t *h, int16_t *c)
{
    const int8_t *w = p->weight;
    uint32_t j;
    for (j = 0; j < p->units; ++j) {
        h[j] = (int16_t)rnn2c_sat_s16(rnn2c_rshift_round(rnn2c_lstm_unit(p, &w, v, c, j), 15));
    }
}

/* ---------------------------------------------------------------- SimpleRNN */

typedef struct {
    const int8_t *weight;  /* groups of 4 units over the whole vector */
    const int32_t *bias;   /* per unit; NULL when all zero */
    const int16_t *mult;   /* per unit */
    rnn2c_shift_t sh[1];
    uint16_t units;
    uint16_t x_groups;
    uint16_t h_groups;
    uint8_t x_shift;
    uint8_t h_shift;
} rnn2c_rnn_t;

/* tanh(W [x; h] + b) of units [j, j + rows) into a (Q0.15). */
RNN2C_INLINE const int8_t *rnn2c_rnn_units(const rnn2c_rnn_t *p, const int8_t *w, const int16_t *v,
                                           uint32_t j, uint32_t rows, int32_t *a)
{
    uint32_t k;
    for (k = 0; k < rows; ++k) {
        a[k] = rnn2c_bias(p->bias, j + k);
    }
    w = rnn2c_mac_rows(w, v, (uint32_t)p->x_groups + p->h_groups, rows, a);
    for (k = 0; k < rows; ++k) {
        a[k] = rnn2c_tanh_rq(a[k], p->mult[j + k], p->sh[0]);
    }
    return w;
}

RNN2C_INLINE void rnn2c_rnn_s8(const rnn2c_rnn_t *p, const int16_t *v, int8_t *h)
{
    const int8_t *w = p->weight;
    uint32_t j;
    uint32_t k;
    for (j = 0; j < p->units; j += 4) {
        int32_t a[4];
        const uint32_t rows = p->units - j < 4 ? p->units - j : 4;
        w = rnn2c_rnn_units(p, w, v, j, rows, a);
        for (k = 0; k < rows; ++k) {
            h[j + k] = rnn2c_q15_to_state(a[k]);
        }
    }
}

RNN2C_INLINE void rnn2c_rnn_s16(const rnn2c_rnn_t *p, const int16_t *v, int16_t *h)
{
    const int8_t *w = p->weight;
    uint32_t j;
    uint32_t k;
    for (j = 0; j < p->units; j += 4) {
        int32_t a[4];
        const uint32_t rows = p->units - j < 4 ? p->units - j : 4;
        w = rnn2c_rnn_units(p, w, v, j, rows, a);
        for (k = 0; k < rows; ++k) {
            h[j + k] = (int16_t)a[k];
        }
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
    const int8_t *weight;  /* groups of 4 rows over the input vector */
    const int32_t *bias;   /* per row; NULL when all zero */
    const int16_t *mult;   /* per row */
    rnn2c_shift_t sh[1];
    uint16_t units;
    uint16_t x_groups;
    int8_t output_zero_point;
    uint8_t activation;    /* RNN2C_ACT_* */
} rnn2c_dense_t;

/* y = activation(W v + b) as int8; acc: `units` int32 scratch. */
/* A Dense row's requantized result -> its int8 output (every activation but softmax). */
RNN2C_INLINE int8_t rnn2c_dense_out(const rnn2c_dense_t *p, int32_t a)
{
    int32_t v;
    switch (p->activation) {
    case RNN2C_ACT_SIGMOID:
        v = rnn2c_rshift_round(rnn2c_sigmoid_q15(a), 7) - 128;
        break;
    case RNN2C_ACT_TANH:
        v = rnn2c_rshift_round(rnn2c_tanh_q15(a), 8);
        break;
    case RNN2C_ACT_RELU:
        v = a + p->output_zero_point;
        v = v < p->output_zero_point ? p->output_zero_point : v;
        break;
    default:
        v = a + p->output_zero_point;
        break;
    }
    return rnn2c_sat_s8(v);
}

/* acc: int32 scratch for all `units` rows with softmax (the normalisation needs every row),
 * else for one group of 4 rows (each group's outputs are written before the next). */
RNN2C_INLINE void rnn2c_dense_s8(const rnn2c_dense_t *p, const int16_t *vec, int32_t *acc,
                                 int8_t *y)
{
    const uint16_t n = p->units;
    const int8_t *w = p->weight;
    const int softmax = p->activation == RNN2C_ACT_SOFTMAX;
    uint32_t i;
    uint32_t k;
    uint16_t j;
    for (i = 0; i < n; i += 4) {
        const uint32_t rows = n - i < 4 ? n - i : 4;
        int32_t *const a = softmax ? acc + i : acc;
        for (k = 0; k < rows; ++k) {
            a[k] = rnn2c_bias(p->bias, i + k);
        }
#if defined(RNN2C_DSP_ASM)
        if (n <= 4) { /* one pass (a head): the shorter loop */
            w = rnn2c_mac_rows_small(w, vec, p->x_groups, rows, a);
        } else {
            w = rnn2c_mac_rows(w, vec, p->x_groups, rows, a);
        }
#else
        w = rnn2c_mac_rows(w, vec, p->x_groups, rows, a);
#endif
        for (k = 0; k < rows; ++k) {
            a[k] = rnn2c_rqs(a[k], p->mult[i + k], p->sh[0]);
            if (!softmax) {
                y[i + k] = rnn2c_dense_out(p, a[k]);
            }
        }
    }
    if (softmax) {
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
            const int32_t p256 = (int32_t)rnn2c_udiv_small((uint32_t)(acc[j] * 256 + total / 2),
                                                           (uint32_t)total, 9); /* 0..256 */
            y[j] = (int8_t)((p256 > 255 ? 255 : p256) - 128);
        }
    }
}

/* ---------------------------------------------------------------- Conv1D and pooling over time */

/*
 * A causal Conv1D or a pooling layer keeps the last `span` input steps in a ring in the state,
 * with three int16 counters ctr[3]: the slot the next input goes to, the steps since the last
 * output modulo the stride, and how many inputs the ring holds (up to span). All zero after
 * reset. A layer emits every `stride` steps from the first step it is ready on (a causal Conv1D
 * at once: a tap before the first input reads the zero point, Keras' zero padding; a pooling
 * window once the ring is full); when it does not emit, the layers after it do not run.
 */

/* dst[0 .. n) = src[0 .. n): a plain loop kept from becoming a call to memcpy (300 B of newlib
 * on Cortex-M), as rnn2c_zero. */
#if defined(__GNUC__)
#define RNN2C_KEEP_LOOP(p) __asm__("" : : "r"(p) : "memory")
#else
#define RNN2C_KEEP_LOOP(p) ((void)0)
#endif
RNN2C_INLINE void rnn2c_copy_s8(int8_t *dst, const int8_t *src, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = src[i];
        RNN2C_KEEP_LOOP(dst);
    }
}

RNN2C_INLINE void rnn2c_copy_s16(int16_t *dst, const int16_t *src, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = src[i];
        RNN2C_KEEP_LOOP(dst);
    }
}

/* Put the slot for a new input into use; returns it. */
RNN2C_INLINE uint32_t rnn2c_ring_push(int16_t *ctr, uint32_t span)
{
    const uint32_t slot = (uint16_t)ctr[0];
    ctr[0] = (int16_t)(slot + 1u == span ? 0u : slot + 1u);
    if ((uint32_t)(uint16_t)ctr[2] < span) {
        ctr[2] = (int16_t)(ctr[2] + 1);
    }
    return slot;
}

/* Whether this step emits: every `stride` steps, counted from the first `ready` one. */
RNN2C_INLINE int rnn2c_ring_due(int16_t *ctr, uint32_t stride, int ready)
{
    uint32_t phase;
    if (!ready || stride <= 1u) { /* stride 1: every ready step (ctr[1] stays 0) */
        return ready;
    }
    phase = (uint16_t)ctr[1];
    ctr[1] = (int16_t)(phase + 1u == stride ? 0u : phase + 1u);
    return phase == 0u;
}

/* The slot of the input `back` steps before the newest (back < inputs held). */
RNN2C_INLINE uint32_t rnn2c_ring_back(const int16_t *ctr, uint32_t span, uint32_t back)
{
    const uint32_t slot = (uint16_t)ctr[0];
    const uint32_t newest = slot == 0u ? span - 1u : slot - 1u;
    return newest >= back ? newest - back : newest + span - back;
}

/* The Conv1D kernels (rnn2c_conv_t) are after the activation variants, whose functions they use. */

/* floor((2 * sum + n) / (2 * n)), n >= 1: the integer mean rounded half up. */
RNN2C_INLINE int32_t rnn2c_mean_round(int32_t sum, int32_t n)
{
    int32_t q = sum / n;
    int32_t r = sum - q * n;
    if (r < 0) { /* C division truncates: make it the floor */
        q -= 1;
        r += n;
    }
    return q + (2 * r >= n ? 1 : 0);
}

/* MaxPooling1D / AveragePooling1D (padding "valid") over the ring of the last `pool` inputs;
 * y gets the same quantization as x. Returns 1 when the step emits, else 0. */
#define RNN2C_POOL_BODY(T, copy)                                                              \
    uint32_t i;                                                                               \
    uint32_t s;                                                                               \
    copy(ring + rnn2c_ring_push(ctr, pool) * n, x, n);                                        \
    if (!rnn2c_ring_due(ctr, stride, (uint32_t)(uint16_t)ctr[2] == pool)) {                   \
        return 0;                                                                             \
    }                                                                                         \
    for (i = 0; i < n; ++i) {                                                                 \
        int32_t a = ring[i];                                                                  \
        for (s = 1; s < pool; ++s) {                                                          \
            const int32_t e = ring[s * n + i];                                                \
            if (average) {                                                                    \
                a += e;                                                                       \
            } else {                                                                          \
                a = e > a ? e : a;                                                            \
            }                                                                                 \
        }                                                                                     \
        y[i] = (T)(average ? rnn2c_mean_round(a, (int32_t)pool) : a);                         \
    }                                                                                         \
    return 1

RNN2C_INLINE int rnn2c_pool_s8(int8_t *ring, int16_t *ctr, const int8_t *x, uint32_t n,
                               uint32_t pool, uint32_t stride, int average, int8_t *y)
{
    RNN2C_POOL_BODY(int8_t, rnn2c_copy_s8);
}

RNN2C_INLINE int rnn2c_pool_s16(int16_t *ring, int16_t *ctr, const int16_t *x, uint32_t n,
                                uint32_t pool, uint32_t stride, int average, int16_t *y)
{
    RNN2C_POOL_BODY(int16_t, rnn2c_copy_s16);
}

/* Windowed pooling over a whole sequence (<name>_run): n input rows x of c elements, output
 * rows y[0 .. m), row j over input rows j * stride - left .. j * stride - left + pool - 1
 * (left: the padding before row 0, 0 for "valid"). Padded rows (outside 0 .. n) are no elements:
 * the max is over the real rows, the mean over their count (every window holds one). */
#define RNN2C_POOL_SEQ_BODY(T)                                                                \
    int j;                                                                                    \
    int r;                                                                                    \
    uint32_t i;                                                                               \
    for (j = 0; j < m; ++j) {                                                                 \
        const int start = j * (int)stride - left;                                             \
        const int lo = start > 0 ? start : 0;                                                 \
        const int hi = start + (int)pool < n ? start + (int)pool : n;                         \
        const T *w = x + (size_t)lo * c;                                                      \
        for (i = 0; i < c; ++i) {                                                             \
            int32_t a = w[i];                                                                 \
            for (r = 1; r < hi - lo; ++r) {                                                   \
                const int32_t e = w[(size_t)r * c + i];                                       \
                if (average) {                                                                \
                    a += e;                                                                   \
                } else {                                                                      \
                    a = e > a ? e : a;                                                        \
                }                                                                             \
            }                                                                                 \
            y[(size_t)j * c + i] = (T)(average ? rnn2c_mean_round(a, (int32_t)(hi - lo)) : a); \
        }                                                                                     \
    }

RNN2C_INLINE void rnn2c_pool_seq_s8(const int8_t *x, int n, int left, int m, uint32_t c,
                                    uint32_t pool, uint32_t stride, int average, int8_t *y)
{
    RNN2C_POOL_SEQ_BODY(int8_t)
}

RNN2C_INLINE void rnn2c_pool_seq_s16(const int16_t *x, int n, int left, int m, uint32_t c,
                                     uint32_t pool, uint32_t stride, int average, int16_t *y)
{
    RNN2C_POOL_SEQ_BODY(int16_t)
}

/* GlobalMaxPooling1D as a running max since reset (seen: 0 until the first step). */
#define RNN2C_GMAX_BODY                                                                       \
    uint32_t i;                                                                               \
    for (i = 0; i < n; ++i) {                                                                 \
        m[i] = (*seen == 0 || x[i] > m[i]) ? x[i] : m[i];                                     \
        y[i] = m[i];                                                                          \
    }                                                                                         \
    *seen = 1

RNN2C_INLINE void rnn2c_gmax_s8(int8_t *m, int16_t *seen, const int8_t *x, uint32_t n, int8_t *y)
{
    RNN2C_GMAX_BODY;
}

RNN2C_INLINE void rnn2c_gmax_s16(int16_t *m, int16_t *seen, const int16_t *x, uint32_t n,
                                 int16_t *y)
{
    RNN2C_GMAX_BODY;
}

/* GlobalAveragePooling1D as a running mean since reset: the sum and the count stop at `limit`
 * steps (|sum| stays below 2^31). */
#define RNN2C_GAVG_BODY(T)                                                                    \
    uint32_t i;                                                                               \
    if (*count < limit) {                                                                     \
        for (i = 0; i < n; ++i) {                                                             \
            sum[i] += x[i];                                                                   \
        }                                                                                     \
        *count += 1;                                                                          \
    }                                                                                         \
    for (i = 0; i < n; ++i) {                                                                 \
        y[i] = (T)rnn2c_mean_round(sum[i], *count);                                           \
    }

RNN2C_INLINE void rnn2c_gavg_s8(int32_t *sum, int32_t *count, const int8_t *x, uint32_t n,
                                int32_t limit, int8_t *y)
{
    RNN2C_GAVG_BODY(int8_t)
}

RNN2C_INLINE void rnn2c_gavg_s16(int32_t *sum, int32_t *count, const int16_t *x, uint32_t n,
                                 int32_t limit, int16_t *y)
{
    RNN2C_GAVG_BODY(int16_t)
}

/* ---------------------------------------------------------------- x86: units across lanes */

#if defined(__AVX2__)
/*
 * On x86 the GRU (reset_after=1) and LSTM layers read their own copy of the weights, which the
 * generated C emits under #if defined(__AVX2__) only (a Cortex-M build does not see it): int16,
 * with 16 units across the lanes. For every pair of vector elements (2k, 2k + 1) one 32-bit word
 * of the vector is broadcast, and one vpdpwssd (AVX-512 VNNI; vpmaddwd + vpaddd without it) per
 * gate adds that pair's products for 16 units (AVX-512: one register per gate) or 8 (AVX2: each
 * block of 16 in two halves). The accumulators hold one gate of 16 (8) units, so no row needs a
 * horizontal sum and no transpose; the bias and the rnn2c_rq fields of each gate come as vectors
 * from the layer's x86 parameter array. The requantization, sigmoid/tanh (both interpolation
 * points of a lane read by one gather, interpolated by one vpmaddwd), cell and state updates run
 * on all lanes with the scalar functions' integers (same operations, the same 32-bit ranges).
 * Units past the layer's last have zero weights and parameters that keep their lanes finite;
 * a last, partial block reads and writes its state through a local copy.
 */

#if defined(__GNUC__)
#define RNN2C_X86_ALIGN __attribute__((aligned(64)))
#else
#define RNN2C_X86_ALIGN
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
/* 16 int32 lanes in one zmm register */
typedef __m512i rnn2c_xv;
#define RNN2C_XL 16u
#define rnn2c_xv_load(p) _mm512_loadu_si512((const void *)(p))
#define rnn2c_xv_set1 _mm512_set1_epi32
#define rnn2c_xv_zero _mm512_setzero_si512
#define rnn2c_xv_add _mm512_add_epi32
#define rnn2c_xv_sub _mm512_sub_epi32
#define rnn2c_xv_mul _mm512_mullo_epi32
#define rnn2c_xv_srav _mm512_srav_epi32
#define rnn2c_xv_min _mm512_min_epi32
#define rnn2c_xv_max _mm512_max_epi32
#define rnn2c_xv_abs _mm512_abs_epi32
#define rnn2c_xv_and _mm512_and_si512
#define rnn2c_xv_or _mm512_or_si512
/* shifts by a count register: the immediate forms are macros at -O0 that -Wsign-conversion
 * flags (the compiler still emits the immediate form for a constant count) */
#define rnn2c_xv_slli(x, n) _mm512_sll_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_xv_srli(x, n) _mm512_srl_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_xv_srai(x, n) _mm512_sra_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_xv_madd _mm512_madd_epi16
#define rnn2c_xv_sra(x, n) _mm512_sra_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_xv_sll(x, n) _mm512_sll_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_xv_gather(idx)                                                                  \
    _mm512_i32gather_epi32((idx), (const void *)rnn2c_tanh_table, 2)
#if defined(__AVX512VNNI__)
#define rnn2c_xv_dp(acc, a, b) _mm512_dpwssd_epi32((acc), (a), (b))
#else
#define rnn2c_xv_dp(acc, a, b) _mm512_add_epi32((acc), _mm512_madd_epi16((a), (b)))
#endif

/* y with the sign of x (y where x >= 0: both callers have y == 0 where x == 0) */
RNN2C_INLINE rnn2c_xv rnn2c_xv_sign(rnn2c_xv y, rnn2c_xv x)
{
    const __m512i zero = _mm512_setzero_si512();
    return _mm512_mask_sub_epi32(y, _mm512_cmplt_epi32_mask(x, zero), zero, y);
}

/* RNN2C_XL int8 / int16 values <-> int32 lanes (stores saturate) */
RNN2C_INLINE rnn2c_xv rnn2c_xv_load_s8(const int8_t *x)
{
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)x));
}

RNN2C_INLINE rnn2c_xv rnn2c_xv_load_s16(const int16_t *x)
{
    return _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)x));
}

RNN2C_INLINE void rnn2c_xv_store_s8(int8_t *y, rnn2c_xv x)
{
    _mm_storeu_si128((__m128i *)(void *)y, _mm512_cvtsepi32_epi8(x));
}

RNN2C_INLINE void rnn2c_xv_store_s16(int16_t *y, rnn2c_xv x)
{
    _mm256_storeu_si256((__m256i *)(void *)y, _mm512_cvtsepi32_epi16(x));
}

#else
/* 8 int32 lanes in one ymm register: a block of 16 units in two halves */
typedef __m256i rnn2c_xv;
#define RNN2C_XL 8u
#define rnn2c_xv_load(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define rnn2c_xv_set1 _mm256_set1_epi32
#define rnn2c_xv_zero _mm256_setzero_si256
#define rnn2c_xv_add _mm256_add_epi32
#define rnn2c_xv_sub _mm256_sub_epi32
#define rnn2c_xv_mul _mm256_mullo_epi32
#define rnn2c_xv_srav _mm256_srav_epi32
#define rnn2c_xv_min _mm256_min_epi32
#define rnn2c_xv_max _mm256_max_epi32
#define rnn2c_xv_abs _mm256_abs_epi32
#define rnn2c_xv_and _mm256_and_si256
#define rnn2c_xv_or _mm256_or_si256
#define rnn2c_xv_slli _mm256_slli_epi32
#define rnn2c_xv_srli _mm256_srli_epi32
#define rnn2c_xv_srai _mm256_srai_epi32
#define rnn2c_xv_madd _mm256_madd_epi16
#define rnn2c_xv_sra(x, n) _mm256_sra_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_xv_sll(x, n) _mm256_sll_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_xv_gather(idx)                                                                  \
    _mm256_i32gather_epi32((const int *)(const void *)rnn2c_tanh_table, (idx), 2)
#define rnn2c_xv_dp RNN2C_DP256
#define rnn2c_xv_sign _mm256_sign_epi32

RNN2C_INLINE rnn2c_xv rnn2c_xv_load_s8(const int8_t *x)
{
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)x));
}

RNN2C_INLINE rnn2c_xv rnn2c_xv_load_s16(const int16_t *x)
{
    return _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(const void *)x));
}

RNN2C_INLINE void rnn2c_xv_store_s8(int8_t *y, rnn2c_xv x)
{
    const __m128i s = _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    _mm_storel_epi64((__m128i *)(void *)y, _mm_packs_epi16(s, s));
}

RNN2C_INLINE void rnn2c_xv_store_s16(int16_t *y, rnn2c_xv x)
{
    _mm_storeu_si128((__m128i *)(void *)y,
                     _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1)));
}
#endif

RNN2C_INLINE rnn2c_xv rnn2c_xv_clamp(rnn2c_xv x, int32_t lo, int32_t hi)
{
    return rnn2c_xv_min(rnn2c_xv_max(x, rnn2c_xv_set1(lo)), rnn2c_xv_set1(hi));
}

/* (x + 2^(shift-1)) >> shift on the lanes, shift >= 1 */
RNN2C_INLINE rnn2c_xv rnn2c_xv_rshift_round(rnn2c_xv x, int shift)
{
    return rnn2c_xv_sra(rnn2c_xv_add(x, rnn2c_xv_set1((int32_t)1 << (shift - 1))), shift);
}

/* rnn2c_rq on the lanes: m points at the gate's multipliers in the x86 parameter array, its
 * shift_in, shift_out and rounding terms lie 64, 128 and 192 words further */
RNN2C_INLINE rnn2c_xv rnn2c_xv_rq(rnn2c_xv acc, const int32_t *m)
{
    const rnn2c_xv t =
        rnn2c_xv_clamp(rnn2c_xv_srav(acc, rnn2c_xv_load(m + 64)), -65536, 65535);
    return rnn2c_xv_srav(rnn2c_xv_add(rnn2c_xv_mul(t, rnn2c_xv_load(m)), rnn2c_xv_load(m + 192)),
                         rnn2c_xv_load(m + 128));
}

/* rnn2c_interp_s16 in the tanh table, 0 <= a <= RNN2C_TANH_CLAMP << step_bits (so idx + 1 stays
 * inside the table): one gather reads table[idx] (low half) and table[idx + 1] (high half), and
 * lo + ((hi - lo) * frac + round) >> step_bits is computed as (lo * (2^step_bits - frac) +
 * hi * frac + round) >> step_bits, one vpmaddwd (lo * 2^step_bits is a multiple of 2^step_bits,
 * so the floor is the same) */
#if defined(__GNUC__) /* gcc's _mm512_i32gather_epi32 macro (-O0) converts 0xFFFF to a short */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#endif
RNN2C_INLINE rnn2c_xv rnn2c_xv_interp(rnn2c_xv a, int step_bits)
{
    const rnn2c_xv frac = rnn2c_xv_and(a, rnn2c_xv_set1((1 << step_bits) - 1));
    const rnn2c_xv pair = rnn2c_xv_gather(rnn2c_xv_srli(a, step_bits));
    const rnn2c_xv wts = rnn2c_xv_or(rnn2c_xv_slli(frac, 16),
                                     rnn2c_xv_sub(rnn2c_xv_set1(1 << step_bits), frac));
    return rnn2c_xv_srai(
        rnn2c_xv_add(rnn2c_xv_madd(pair, wts), rnn2c_xv_set1(1 << (step_bits - 1))), step_bits);
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* rnn2c_tanh_q15 on the lanes: |x| clamped exactly as rnn2c_tanh_arg does */
RNN2C_INLINE rnn2c_xv rnn2c_xv_tanh(rnn2c_xv x)
{
    const rnn2c_xv xs = rnn2c_xv_clamp(x, INT16_MIN, INT16_MAX);
    const rnn2c_xv a = rnn2c_xv_min(rnn2c_xv_abs(xs),
                                    rnn2c_xv_set1(RNN2C_TANH_CLAMP << RNN2C_TANH_STEP_BITS));
    return rnn2c_xv_sign(rnn2c_xv_interp(a, RNN2C_TANH_STEP_BITS), xs);
}

/* rnn2c_sigmoid_q15 on the lanes (|x| <= 32768 reads the table below its clamp, as there) */
RNN2C_INLINE rnn2c_xv rnn2c_xv_sigmoid(rnn2c_xv x)
{
    const rnn2c_xv xs = rnn2c_xv_clamp(x, INT16_MIN, INT16_MAX);
    const rnn2c_xv y = rnn2c_xv_interp(rnn2c_xv_abs(xs), RNN2C_TANH_STEP_BITS + 1);
    return rnn2c_xv_srai(rnn2c_xv_add(rnn2c_xv_sign(y, xs), rnn2c_xv_set1(RNN2C_Q15_ONE)), 1);
}

/* The x86 parameter array of a layer, per block of 16 units: bias, multiplier, shift_in,
 * shift_out and 2^(shift_out - 1), each as 4 gates x 16 units (RNN2C_X86_PARAMS words). */
#define RNN2C_X86_BLOCK 16u
#define RNN2C_X86_PARAMS 320u
#define RNN2C_XB(p, g) rnn2c_xv_load((p) + 16 * (g))  /* bias of gate g */
#define RNN2C_XM(p, g) ((p) + 64 + 16 * (g))          /* its rnn2c_xv_rq fields */

/* GRU, reset_after=1, on the lanes: the rows' sums (bias included) -> rnn2c_gru_blend_sum. */
RNN2C_INLINE rnn2c_xv rnn2c_xv_gru_gates(rnn2c_xv z, rnn2c_xv r, rnn2c_xv cx, rnn2c_xv ch,
                                         const int32_t *p, rnn2c_xv h_q15)
{
    z = rnn2c_xv_sigmoid(rnn2c_xv_rq(z, RNN2C_XM(p, 0)));
    r = rnn2c_xv_sigmoid(rnn2c_xv_rq(r, RNN2C_XM(p, 1)));
    ch = rnn2c_xv_clamp(rnn2c_xv_rq(ch, RNN2C_XM(p, 3)), -65536, 65535);
    cx = rnn2c_xv_add(rnn2c_xv_rq(cx, RNN2C_XM(p, 2)),
                      rnn2c_xv_srai(rnn2c_xv_add(rnn2c_xv_mul(r, ch), rnn2c_xv_set1(1 << 14)), 15));
    cx = rnn2c_xv_tanh(cx);
    /* z * h + (1 - z) * c = z * (h - c) + c * 2^15: the same integer (the sum is below 2^30) */
    return rnn2c_xv_add(rnn2c_xv_mul(z, rnn2c_xv_sub(h_q15, cx)), rnn2c_xv_slli(cx, 15));
}

/* LSTM on the lanes: the rows' sums (bias included); c: the cells (updated); returns
 * o * tanh(c) in Q0.30. */
RNN2C_INLINE rnn2c_xv rnn2c_xv_lstm_gates(rnn2c_xv i, rnn2c_xv f, rnn2c_xv g, rnn2c_xv o,
                                          const int32_t *p, int16_t *c, int frac)
{
    rnn2c_xv cell;
    /* c = f * c + i * g */
    cell = rnn2c_xv_add(
        rnn2c_xv_rshift_round(
            rnn2c_xv_mul(rnn2c_xv_sigmoid(rnn2c_xv_rq(f, RNN2C_XM(p, 1))), rnn2c_xv_load_s16(c)),
            15),
        rnn2c_xv_rshift_round(rnn2c_xv_mul(rnn2c_xv_sigmoid(rnn2c_xv_rq(i, RNN2C_XM(p, 0))),
                                           rnn2c_xv_tanh(rnn2c_xv_rq(g, RNN2C_XM(p, 2)))),
                              30 - frac));
    cell = rnn2c_xv_clamp(cell, INT16_MIN, INT16_MAX);
    rnn2c_xv_store_s16(c, cell);
    if (frac > 12) { /* rnn2c_q12_from_frac */
        cell = rnn2c_xv_rshift_round(cell, frac - 12);
    } else {
        cell = rnn2c_xv_clamp(rnn2c_xv_sll(cell, 12 - frac), INT16_MIN, INT16_MAX);
    }
    return rnn2c_xv_mul(rnn2c_xv_sigmoid(rnn2c_xv_rq(o, RNN2C_XM(p, 3))), rnn2c_xv_tanh(cell));
}

/* GRU, reset_after=1: RNN2C_XL units of one block (w, p: the block's weights and parameters,
 * offset to the lanes of this half); returns rnn2c_gru_blend_sum per lane. Each pair count is
 * even (two per group of 4), so the loops take two pairs at a time into two sets of sums. */
RNN2C_INLINE rnn2c_xv rnn2c_xv_gru(const int16_t *w, const int32_t *p, uint32_t x_pairs,
                                   uint32_t h_pairs, const int16_t *v, rnn2c_xv h_q15)
{
    rnn2c_xv z = RNN2C_XB(p, 0);
    rnn2c_xv r = RNN2C_XB(p, 1);
    rnn2c_xv cx = RNN2C_XB(p, 2);
    rnn2c_xv ch = RNN2C_XB(p, 3);
    rnn2c_xv z2 = rnn2c_xv_zero();
    rnn2c_xv r2 = rnn2c_xv_zero();
    rnn2c_xv c2 = rnn2c_xv_zero();
    uint32_t k;
    for (k = 0; k < x_pairs; k += 2, v += 4, w += 192) { /* z, r, candidate over x */
        const rnn2c_xv a = rnn2c_xv_set1((int)rnn2c_ld32(v));
        const rnn2c_xv b = rnn2c_xv_set1((int)rnn2c_ld32(v + 2));
        z = rnn2c_xv_dp(z, rnn2c_xv_load(w), a);
        r = rnn2c_xv_dp(r, rnn2c_xv_load(w + 32), a);
        cx = rnn2c_xv_dp(cx, rnn2c_xv_load(w + 64), a);
        z2 = rnn2c_xv_dp(z2, rnn2c_xv_load(w + 96), b);
        r2 = rnn2c_xv_dp(r2, rnn2c_xv_load(w + 128), b);
        c2 = rnn2c_xv_dp(c2, rnn2c_xv_load(w + 160), b);
    }
    cx = rnn2c_xv_add(cx, c2);
    c2 = rnn2c_xv_zero();
#if RNN2C_XL == 16 /* the state part is the critical path from step to step: four sets */
    {
        rnn2c_xv z3 = rnn2c_xv_zero();
        rnn2c_xv r3 = rnn2c_xv_zero();
        rnn2c_xv c3 = rnn2c_xv_zero();
        rnn2c_xv z4 = rnn2c_xv_zero();
        rnn2c_xv r4 = rnn2c_xv_zero();
        rnn2c_xv c4 = rnn2c_xv_zero();
        for (; h_pairs >= 4; h_pairs -= 4, v += 8, w += 384) {
            const rnn2c_xv a = rnn2c_xv_set1((int)rnn2c_ld32(v));
            const rnn2c_xv b = rnn2c_xv_set1((int)rnn2c_ld32(v + 2));
            const rnn2c_xv c = rnn2c_xv_set1((int)rnn2c_ld32(v + 4));
            const rnn2c_xv d = rnn2c_xv_set1((int)rnn2c_ld32(v + 6));
            z = rnn2c_xv_dp(z, rnn2c_xv_load(w), a);
            r = rnn2c_xv_dp(r, rnn2c_xv_load(w + 32), a);
            ch = rnn2c_xv_dp(ch, rnn2c_xv_load(w + 64), a);
            z2 = rnn2c_xv_dp(z2, rnn2c_xv_load(w + 96), b);
            r2 = rnn2c_xv_dp(r2, rnn2c_xv_load(w + 128), b);
            c2 = rnn2c_xv_dp(c2, rnn2c_xv_load(w + 160), b);
            z3 = rnn2c_xv_dp(z3, rnn2c_xv_load(w + 192), c);
            r3 = rnn2c_xv_dp(r3, rnn2c_xv_load(w + 224), c);
            c3 = rnn2c_xv_dp(c3, rnn2c_xv_load(w + 256), c);
            z4 = rnn2c_xv_dp(z4, rnn2c_xv_load(w + 288), d);
            r4 = rnn2c_xv_dp(r4, rnn2c_xv_load(w + 320), d);
            c4 = rnn2c_xv_dp(c4, rnn2c_xv_load(w + 352), d);
        }
        z = rnn2c_xv_add(z, z3);
        r = rnn2c_xv_add(r, r3);
        ch = rnn2c_xv_add(ch, c3);
        z2 = rnn2c_xv_add(z2, z4);
        r2 = rnn2c_xv_add(r2, r4);
        c2 = rnn2c_xv_add(c2, c4);
    }
#endif
    for (k = 0; k < h_pairs; k += 2, v += 4, w += 192) { /* z, r, candidate over h */
        const rnn2c_xv a = rnn2c_xv_set1((int)rnn2c_ld32(v));
        const rnn2c_xv b = rnn2c_xv_set1((int)rnn2c_ld32(v + 2));
        z = rnn2c_xv_dp(z, rnn2c_xv_load(w), a);
        r = rnn2c_xv_dp(r, rnn2c_xv_load(w + 32), a);
        ch = rnn2c_xv_dp(ch, rnn2c_xv_load(w + 64), a);
        z2 = rnn2c_xv_dp(z2, rnn2c_xv_load(w + 96), b);
        r2 = rnn2c_xv_dp(r2, rnn2c_xv_load(w + 128), b);
        c2 = rnn2c_xv_dp(c2, rnn2c_xv_load(w + 160), b);
    }
    return rnn2c_xv_gru_gates(rnn2c_xv_add(z, z2), rnn2c_xv_add(r, r2), cx,
                              rnn2c_xv_add(ch, c2), p, h_q15);
}

/* LSTM: RNN2C_XL units of one block; c: their cells (updated); returns o * tanh(c) (Q0.30). */
RNN2C_INLINE rnn2c_xv rnn2c_xv_lstm(const int16_t *w, const int32_t *p, uint32_t pairs,
                                    const int16_t *v, int16_t *c, int frac)
{
    rnn2c_xv i = RNN2C_XB(p, 0);
    rnn2c_xv f = RNN2C_XB(p, 1);
    rnn2c_xv g = RNN2C_XB(p, 2);
    rnn2c_xv o = RNN2C_XB(p, 3);
    rnn2c_xv i2 = rnn2c_xv_zero();
    rnn2c_xv f2 = rnn2c_xv_zero();
    rnn2c_xv g2 = rnn2c_xv_zero();
    rnn2c_xv o2 = rnn2c_xv_zero();
    uint32_t k;
    for (k = 0; k < pairs; k += 2, v += 4, w += 256) {
        const rnn2c_xv a = rnn2c_xv_set1((int)rnn2c_ld32(v));
        const rnn2c_xv b = rnn2c_xv_set1((int)rnn2c_ld32(v + 2));
        i = rnn2c_xv_dp(i, rnn2c_xv_load(w), a);
        f = rnn2c_xv_dp(f, rnn2c_xv_load(w + 32), a);
        g = rnn2c_xv_dp(g, rnn2c_xv_load(w + 64), a);
        o = rnn2c_xv_dp(o, rnn2c_xv_load(w + 96), a);
        i2 = rnn2c_xv_dp(i2, rnn2c_xv_load(w + 128), b);
        f2 = rnn2c_xv_dp(f2, rnn2c_xv_load(w + 160), b);
        g2 = rnn2c_xv_dp(g2, rnn2c_xv_load(w + 192), b);
        o2 = rnn2c_xv_dp(o2, rnn2c_xv_load(w + 224), b);
    }
    return rnn2c_xv_lstm_gates(rnn2c_xv_add(i, i2), rnn2c_xv_add(f, f2), rnn2c_xv_add(g, g2),
                               rnn2c_xv_add(o, o2), p, c, frac);
}

/* Hides which array a pointer holds (an empty asm the pointer passes through): with the
 * constant weights in view, gcc 12 copies them through the stack instead of reading them where
 * the loop needs them. */
#if defined(__GNUC__)
#define RNN2C_X86_OPAQUE(ptr) __asm__("" : "+r"(ptr))
#else
#define RNN2C_X86_OPAQUE(ptr) ((void)0)
#endif

/* The lanes of units [j, j + RNN2C_XL) of a layer of `units`: how many are real. */
RNN2C_INLINE uint32_t rnn2c_x86_real(uint32_t units, uint32_t j)
{
    return units - j < RNN2C_XL ? units - j : RNN2C_XL;
}

/* GRU step (reset_after=1), int8 Q0.7 state, on the layer's x86 arrays; v: its vector. */
RNN2C_INLINE void rnn2c_x86_gru_s8(const int16_t *w, const int32_t *p, uint32_t units,
                                   uint32_t x_groups, uint32_t h_groups, const int16_t *v,
                                   int8_t *h)
{
    const uint32_t block_w = 2 * ((uint32_t)x_groups + h_groups) * 3 * 2 * RNN2C_X86_BLOCK;
    uint32_t j;
    uint32_t k;
    RNN2C_X86_OPAQUE(w);
    RNN2C_X86_OPAQUE(p);
    for (j = 0; j < units; j += RNN2C_XL) {
        const uint32_t lane = j % RNN2C_X86_BLOCK; /* 0, or 8 in the second half (AVX2) */
        const uint32_t n = rnn2c_x86_real(units, j);
        const int16_t *wj = w + (j / RNN2C_X86_BLOCK) * block_w + 2 * lane;
        const int32_t *pj = p + (j / RNN2C_X86_BLOCK) * RNN2C_X86_PARAMS + lane;
        int8_t part[RNN2C_XL];
        int8_t *hj = h + j;
        rnn2c_xv s;
        if (n < RNN2C_XL) { /* the last units: through a copy, the other lanes zero */
            for (k = 0; k < RNN2C_XL; ++k) {
                part[k] = k < n ? h[j + k] : 0;
            }
            hj = part;
        }
        s = rnn2c_xv_gru(wj, pj, 2 * x_groups, 2 * h_groups, v,
                         rnn2c_xv_slli(rnn2c_xv_load_s8(hj), 8));
        /* rnn2c_gru_sum_to_s8 */
        rnn2c_xv_store_s8(hj, rnn2c_xv_srai(rnn2c_xv_add(s, rnn2c_xv_set1((1 << 14) + (1 << 22))),
                                            23));
        for (k = 0; hj == part && k < n; ++k) {
            h[j + k] = part[k];
        }
    }
}

/* GRU step (reset_after=1), int16 Q0.15 state. */
RNN2C_INLINE void rnn2c_x86_gru_s16(const int16_t *w, const int32_t *p, uint32_t units,
                                    uint32_t x_groups, uint32_t h_groups, const int16_t *v,
                                    int16_t *h)
{
    const uint32_t block_w = 2 * ((uint32_t)x_groups + h_groups) * 3 * 2 * RNN2C_X86_BLOCK;
    uint32_t j;
    uint32_t k;
    RNN2C_X86_OPAQUE(w);
    RNN2C_X86_OPAQUE(p);
    for (j = 0; j < units; j += RNN2C_XL) {
        const uint32_t lane = j % RNN2C_X86_BLOCK;
        const uint32_t n = rnn2c_x86_real(units, j);
        const int16_t *wj = w + (j / RNN2C_X86_BLOCK) * block_w + 2 * lane;
        const int32_t *pj = p + (j / RNN2C_X86_BLOCK) * RNN2C_X86_PARAMS + lane;
        int16_t part[RNN2C_XL];
        int16_t *hj = h + j;
        if (n < RNN2C_XL) {
            for (k = 0; k < RNN2C_XL; ++k) {
                part[k] = k < n ? h[j + k] : 0;
            }
            hj = part;
        }
        rnn2c_xv_store_s16(hj, rnn2c_xv_rshift_round(rnn2c_xv_gru(wj, pj, 2 * x_groups,
                                                                  2 * h_groups, v,
                                                                  rnn2c_xv_load_s16(hj)),
                                                     15));
        for (k = 0; hj == part && k < n; ++k) {
            h[j + k] = part[k];
        }
    }
}

/* LSTM step, int8 Q0.7 state; h and c updated in place. */
RNN2C_INLINE void rnn2c_x86_lstm_s8(const int16_t *w, const int32_t *p, uint32_t units,
                                    uint32_t x_groups, uint32_t h_groups, int frac,
                                    const int16_t *v, int8_t *h, int16_t *c)
{
    const uint32_t pairs = 2 * ((uint32_t)x_groups + h_groups);
    uint32_t j;
    uint32_t k;
    RNN2C_X86_OPAQUE(w);
    RNN2C_X86_OPAQUE(p);
    for (j = 0; j < units; j += RNN2C_XL) {
        const uint32_t lane = j % RNN2C_X86_BLOCK;
        const uint32_t n = rnn2c_x86_real(units, j);
        const int16_t *wj = w + (j / RNN2C_X86_BLOCK) * pairs * 4 * 2 * RNN2C_X86_BLOCK + 2 * lane;
        const int32_t *pj = p + (j / RNN2C_X86_BLOCK) * RNN2C_X86_PARAMS + lane;
        int8_t hpart[RNN2C_XL];
        int16_t cpart[RNN2C_XL];
        int8_t *hj = h + j;
        int16_t *cj = c + j;
        if (n < RNN2C_XL) {
            for (k = 0; k < RNN2C_XL; ++k) {
                cpart[k] = k < n ? c[j + k] : 0;
            }
            hj = hpart;
            cj = cpart;
        }
        rnn2c_xv_store_s8(hj, rnn2c_xv_rshift_round(rnn2c_xv_lstm(wj, pj, pairs, v, cj, frac), 23));
        for (k = 0; hj == hpart && k < n; ++k) {
            h[j + k] = hpart[k];
            c[j + k] = cpart[k];
        }
    }
}

/* LSTM step, int16 Q0.15 state. */
RNN2C_INLINE void rnn2c_x86_lstm_s16(const int16_t *w, const int32_t *p, uint32_t units,
                                     uint32_t x_groups, uint32_t h_groups, int frac,
                                     const int16_t *v, int16_t *h, int16_t *c)
{
    const uint32_t pairs = 2 * ((uint32_t)x_groups + h_groups);
    uint32_t j;
    uint32_t k;
    RNN2C_X86_OPAQUE(w);
    RNN2C_X86_OPAQUE(p);
    for (j = 0; j < units; j += RNN2C_XL) {
        const uint32_t lane = j % RNN2C_X86_BLOCK;
        const uint32_t n = rnn2c_x86_real(units, j);
        const int16_t *wj = w + (j / RNN2C_X86_BLOCK) * pairs * 4 * 2 * RNN2C_X86_BLOCK + 2 * lane;
        const int32_t *pj = p + (j / RNN2C_X86_BLOCK) * RNN2C_X86_PARAMS + lane;
        int16_t hpart[RNN2C_XL];
        int16_t cpart[RNN2C_XL];
        int16_t *hj = h + j;
        int16_t *cj = c + j;
        if (n < RNN2C_XL) {
            for (k = 0; k < RNN2C_XL; ++k) {
                cpart[k] = k < n ? c[j + k] : 0;
            }
            hj = hpart;
            cj = cpart;
        }
        rnn2c_xv_store_s16(hj,
                           rnn2c_xv_rshift_round(rnn2c_xv_lstm(wj, pj, pairs, v, cj, frac), 15));
        for (k = 0; hj == hpart && k < n; ++k) {
            h[j + k] = hpart[k];
            c[j + k] = cpart[k];
        }
    }
}

#if RNN2C_XL == 16 && defined(__AVX512VNNI__)
/*
 * AVX-512 VNNI, a GRU (reset_after) or LSTM layer whose input and state are both int8: the
 * layer's own x86 byte copy of its weights (p_x86b) and vpdpbusd, which adds 4 products of an
 * unsigned byte and a signed byte per lane: 64 per instruction, twice vpdpwssd's. The input and
 * the state enter as x + 128 (unsigned) with no int16 vector; the export took 128 * sum(w) of
 * each part, shifted by that part's vector shift, out of the biases (p_x86q), and each part's
 * sums are shifted here: bias + (Sx << x_shift) + (Sh << h_shift) is the int16 path's sum, as
 * a 32-bit sum that wraps the same way (the true total fits: the exporter's bound).
 */
#define RNN2C_X86_U8 1

RNN2C_INLINE __mmask64 rnn2c_x86u_mask(uint32_t n)
{
    return n >= 64u ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1u);
}

/* u[0 .. n4) = x + 128 as unsigned bytes (x ^ 0x80; the padding, whose weights are zero, 128) */
RNN2C_INLINE void rnn2c_x86u_bytes(unsigned char *u, const int8_t *x, uint32_t n, uint32_t n4)
{
    uint32_t i;
    for (i = 0; i < n4; i += 64) {
        const __m512i e = _mm512_maskz_loadu_epi8(rnn2c_x86u_mask(i < n ? n - i : 0), x + i);
        _mm512_mask_storeu_epi8(u + i, rnn2c_x86u_mask(n4 - i),
                                _mm512_xor_si512(e, _mm512_set1_epi8(-128)));
    }
}

#define RNN2C_XU(p) _mm512_set1_epi32((int)rnn2c_ld32(p)) /* 4 bytes of u in every lane */
#define RNN2C_XDP(acc, a, wp) _mm512_dpbusd_epi32((acc), (a), _mm512_loadu_si512((const void *)(wp)))

/* GRU, reset_after=1: 16 units of one block from u (x_groups + h_groups groups of 4 bytes). */
RNN2C_INLINE __m512i rnn2c_xu_gru(const int8_t *w, const int32_t *p, uint32_t x_groups,
                                  uint32_t h_groups, const unsigned char *u, int xs, int hs,
                                  __m512i h_q15)
{
    __m512i zx = _mm512_setzero_si512();
    __m512i rx = _mm512_setzero_si512();
    __m512i cx = _mm512_setzero_si512();
    __m512i zh = _mm512_setzero_si512();
    __m512i rh = _mm512_setzero_si512();
    __m512i ch = _mm512_setzero_si512();
    __m512i z2 = _mm512_setzero_si512();
    __m512i r2 = _mm512_setzero_si512();
    __m512i c2 = _mm512_setzero_si512();
    uint32_t k;
    for (k = 0; k < x_groups; ++k, u += 4, w += 192) { /* z, r, candidate over x */
        const __m512i a = RNN2C_XU(u);
        zx = RNN2C_XDP(zx, a, w);
        rx = RNN2C_XDP(rx, a, w + 64);
        cx = RNN2C_XDP(cx, a, w + 128);
    }
    for (k = 0; k + 2 <= h_groups; k += 2, u += 8, w += 384) { /* z, r, candidate over h */
        const __m512i a = RNN2C_XU(u);
        const __m512i b = RNN2C_XU(u + 4);
        zh = RNN2C_XDP(zh, a, w);
        rh = RNN2C_XDP(rh, a, w + 64);
        ch = RNN2C_XDP(ch, a, w + 128);
        z2 = RNN2C_XDP(z2, b, w + 192);
        r2 = RNN2C_XDP(r2, b, w + 256);
        c2 = RNN2C_XDP(c2, b, w + 320);
    }
    if (k < h_groups) {
        const __m512i a = RNN2C_XU(u);
        zh = RNN2C_XDP(zh, a, w);
        rh = RNN2C_XDP(rh, a, w + 64);
        ch = RNN2C_XDP(ch, a, w + 128);
    }
    zh = rnn2c_xv_sll(_mm512_add_epi32(zh, z2), hs);
    rh = rnn2c_xv_sll(_mm512_add_epi32(rh, r2), hs);
    ch = rnn2c_xv_sll(_mm512_add_epi32(ch, c2), hs);
    return rnn2c_xv_gru_gates(
        _mm512_add_epi32(_mm512_add_epi32(RNN2C_XB(p, 0), rnn2c_xv_sll(zx, xs)), zh),
        _mm512_add_epi32(_mm512_add_epi32(RNN2C_XB(p, 1), rnn2c_xv_sll(rx, xs)), rh),
        _mm512_add_epi32(RNN2C_XB(p, 2), rnn2c_xv_sll(cx, xs)),
        _mm512_add_epi32(RNN2C_XB(p, 3), ch), p, h_q15);
}

/* LSTM: 16 units of one block from u; c: their cells (updated); returns o * tanh(c). */
RNN2C_INLINE __m512i rnn2c_xu_lstm(const int8_t *w, const int32_t *p, uint32_t x_groups,
                                   uint32_t h_groups, const unsigned char *u, int xs, int hs,
                                   int16_t *c, int frac)
{
    __m512i s[2][4]; /* [part][gate] */
    __m512i t[4];
    uint32_t k;
    int g;
    for (g = 0; g < 4; ++g) {
        s[0][g] = _mm512_setzero_si512();
        s[1][g] = _mm512_setzero_si512();
        t[g] = _mm512_setzero_si512();
    }
    for (k = 0; k < x_groups; ++k, u += 4, w += 256) {
        const __m512i a = RNN2C_XU(u);
        s[0][0] = RNN2C_XDP(s[0][0], a, w);
        s[0][1] = RNN2C_XDP(s[0][1], a, w + 64);
        s[0][2] = RNN2C_XDP(s[0][2], a, w + 128);
        s[0][3] = RNN2C_XDP(s[0][3], a, w + 192);
    }
    for (k = 0; k + 2 <= h_groups; k += 2, u += 8, w += 512) {
        const __m512i a = RNN2C_XU(u);
        const __m512i b = RNN2C_XU(u + 4);
        s[1][0] = RNN2C_XDP(s[1][0], a, w);
        s[1][1] = RNN2C_XDP(s[1][1], a, w + 64);
        s[1][2] = RNN2C_XDP(s[1][2], a, w + 128);
        s[1][3] = RNN2C_XDP(s[1][3], a, w + 192);
        t[0] = RNN2C_XDP(t[0], b, w + 256);
        t[1] = RNN2C_XDP(t[1], b, w + 320);
        t[2] = RNN2C_XDP(t[2], b, w + 384);
        t[3] = RNN2C_XDP(t[3], b, w + 448);
    }
    if (k < h_groups) {
        const __m512i a = RNN2C_XU(u);
        s[1][0] = RNN2C_XDP(s[1][0], a, w);
        s[1][1] = RNN2C_XDP(s[1][1], a, w + 64);
        s[1][2] = RNN2C_XDP(s[1][2], a, w + 128);
        s[1][3] = RNN2C_XDP(s[1][3], a, w + 192);
    }
    for (g = 0; g < 4; ++g) {
        t[g] = _mm512_add_epi32(
            _mm512_add_epi32(RNN2C_XB(p, g), rnn2c_xv_sll(s[0][g], xs)),
            rnn2c_xv_sll(_mm512_add_epi32(s[1][g], t[g]), hs));
    }
    return rnn2c_xv_lstm_gates(t[0], t[1], t[2], t[3], p, c, frac);
}

/* GRU step (reset_after=1), int8 input and state; u: scratch of x_groups + h_groups words. */
RNN2C_INLINE void rnn2c_x86u_gru_s8(const int8_t *w, const int32_t *p, uint32_t units,
                                    uint32_t inputs, uint32_t x_groups, uint32_t h_groups,
                                    int x_shift, int h_shift, const int8_t *x, int8_t *h,
                                    unsigned char *u)
{
    const uint32_t block_w = ((uint32_t)x_groups + h_groups) * 3 * 64;
    uint32_t j;
    uint32_t k;
    RNN2C_X86_OPAQUE(w);
    RNN2C_X86_OPAQUE(p);
    rnn2c_x86u_bytes(u, x, inputs, 4 * x_groups);
    rnn2c_x86u_bytes(u + 4 * x_groups, h, units, 4 * h_groups);
    for (j = 0; j < units; j += 16, w += block_w, p += RNN2C_X86_PARAMS) {
        const uint32_t n = rnn2c_x86_real(units, j);
        int8_t part[16];
        int8_t *hj = h + j;
        __m512i sum;
        if (n < 16) {
            for (k = 0; k < 16; ++k) {
                part[k] = k < n ? h[j + k] : 0;
            }
            hj = part;
        }
        sum = rnn2c_xu_gru(w, p, x_groups, h_groups, u, x_shift, h_shift,
                           rnn2c_xv_slli(rnn2c_xv_load_s8(hj), 8));
        rnn2c_xv_store_s8(hj, rnn2c_xv_srai(rnn2c_xv_add(sum, rnn2c_xv_set1((1 << 14) + (1 << 22))),
                                            23));
        for (k = 0; hj == part && k < n; ++k) {
            h[j + k] = part[k];
        }
    }
}

/* LSTM step, int8 input and state; h and c updated in place. */
RNN2C_INLINE void rnn2c_x86u_lstm_s8(const int8_t *w, const int32_t *p, uint32_t units,
                                     uint32_t inputs, uint32_t x_groups, uint32_t h_groups,
                                     int x_shift, int h_shift, int frac, const int8_t *x,
                                     int8_t *h, int16_t *c, unsigned char *u)
{
    const uint32_t block_w = ((uint32_t)x_groups + h_groups) * 4 * 64;
    uint32_t j;
    uint32_t k;
    RNN2C_X86_OPAQUE(w);
    RNN2C_X86_OPAQUE(p);
    rnn2c_x86u_bytes(u, x, inputs, 4 * x_groups);
    rnn2c_x86u_bytes(u + 4 * x_groups, h, units, 4 * h_groups);
    for (j = 0; j < units; j += 16, w += block_w, p += RNN2C_X86_PARAMS) {
        const uint32_t n = rnn2c_x86_real(units, j);
        int8_t hpart[16];
        int16_t cpart[16];
        int8_t *hj = h + j;
        int16_t *cj = c + j;
        if (n < 16) {
            for (k = 0; k < 16; ++k) {
                cpart[k] = k < n ? c[j + k] : 0;
            }
            hj = hpart;
            cj = cpart;
        }
        rnn2c_xv_store_s8(hj, rnn2c_xv_rshift_round(rnn2c_xu_lstm(w, p, x_groups, h_groups, u,
                                                                  x_shift, h_shift, cj, frac),
                                                    23));
        for (k = 0; hj == hpart && k < n; ++k) {
            h[j + k] = hpart[k];
            c[j + k] = cpart[k];
        }
    }
}
#endif

/* Dense with softmax (a classifier head): as rnn2c_dense_s8, with the divisions of the
 * normalisation replaced by one: each quotient (e * 256 + total / 2) / total is
 * floor(n * r / 2^32) with r = floor((2^32 - 1) / total), which is the quotient or one less
 * for every n < 2^31 (n * r / 2^32 > n / total - 2n / 2^32 >= n / total - 1), plus one where
 * the remainder says so: the same integers. Other heads take rnn2c_dense_s8. */
RNN2C_INLINE void rnn2c_x86_dense_s8(const rnn2c_dense_t *p, const int16_t *vec, int32_t *acc,
                                     int8_t *y)
{
    const uint32_t n = p->units;
    const int8_t *w = p->weight;
    uint32_t i;
    uint32_t k;
    int32_t max;
    uint32_t total = 0;
    uint32_t r;
    if (p->activation != RNN2C_ACT_SOFTMAX) {
        rnn2c_dense_s8(p, vec, acc, y);
        return;
    }
    for (i = 0; i < n; i += 4) {
        const uint32_t rows = n - i < 4 ? n - i : 4;
        for (k = 0; k < rows; ++k) {
            acc[i + k] = rnn2c_bias(p->bias, i + k);
        }
        w = rnn2c_mac_rows(w, vec, p->x_groups, rows, acc + i);
        for (k = 0; k < rows; ++k) {
            acc[i + k] = rnn2c_rqs(acc[i + k], p->mult[i + k], p->sh[0]);
        }
    }
    max = acc[0];
    for (i = 1; i < n; ++i) {
        max = acc[i] > max ? acc[i] : max;
    }
    for (i = 0; i < n; ++i) {
        acc[i] = rnn2c_exp_neg_q15(max - acc[i]); /* <= 32768 each */
        total += (uint32_t)acc[i];                /* >= 32768: exp(0) is in it */
    }
    r = 0xffffffffu / total;
    for (i = 0; i < n; ++i) {
        const uint32_t num = (uint32_t)acc[i] * 256u + total / 2u;
        uint32_t q = (uint32_t)(((uint64_t)num * r) >> 32);
        q += num - q * total >= total ? 1u : 0u;
        y[i] = (int8_t)((q > 255u ? 255 : (int32_t)q) - 128);
    }
}

#define rnn2c_dense_s8 rnn2c_x86_dense_s8

#endif /* __AVX2__ */

/* ---------------------------------------------------------------- activation variants */
/* The activations Keras allows besides the defaults: recurrent_activation hard_sigmoid or
 * linear, activation relu in GRU/LSTM/SimpleRNN, and Dense leaky_relu, elu, silu (swish), gelu
 * and softplus. Layers with the default activations never reach this section, so its tables
 * (static inside the functions that read them) cost flash only in models that use them.
 * export/fixedpoint.py mirrors every function here. */

enum {
    RNN2C_GATE_SIGMOID = 0,      /* the tanh table, as rnn2c_sigmoid_q15 */
    RNN2C_GATE_HARD_SIGMOID = 1, /* clip(x / 6 + 1/2, 0, 1) (Keras 3) */
    RNN2C_GATE_LINEAR = 2        /* x, saturated to [-32767, 32767] in Q0.15 (+-1.0) */
};
enum {
    RNN2C_CELL_TANH = 0, /* the tanh table */
    RNN2C_CELL_RELU = 1  /* max(x, 0), saturated to the state's range: [0, 32767] in Q0.15 */
};

/* hard_sigmoid: Q3.12 in (saturated to int16), Q0.15 out in [0, 32767]. x / 6 in Q0.15 is
 * x * 4/3, and 4/3 = 21845 / 2^14 to 2e-5 (at most 0.67 of an output unit over the range). */
RNN2C_INLINE int32_t rnn2c_hard_sigmoid_q15(int32_t x_q12)
{
    const int32_t y = ((rnn2c_sat_s16(x_q12) * 21845 + ((int32_t)1 << 13)) >> 14) + 16384;
    return y < 0 ? 0 : (y > 32767 ? 32767 : y);
}

/* x * 8 (Q3.12 -> Q0.15) saturated to [lo, 32767]. */
RNN2C_INLINE int32_t rnn2c_q15_clip(int32_t x_q12, int32_t lo)
{
    const int32_t y = rnn2c_sat_s16(x_q12) * 8;
    return y < lo ? lo : (y > 32767 ? 32767 : y);
}

/* A gate (RNN2C_GATE_*): Q3.12 in, Q0.15 out in [-32767, 32767]. The symmetric range keeps
 * r * sat17(...) of the GRU and every gate product of the kernels below inside int32. */
RNN2C_INLINE int32_t rnn2c_gate_q15(int32_t x_q12, uint32_t kind)
{
    switch (kind) {
    case RNN2C_GATE_HARD_SIGMOID:
        return rnn2c_hard_sigmoid_q15(x_q12);
    case RNN2C_GATE_LINEAR:
        return rnn2c_q15_clip(x_q12, -32767);
    default:
        return rnn2c_sigmoid_q15(x_q12);
    }
}

/* A candidate (RNN2C_CELL_*): Q3.12 in, Q0.15 out. */
RNN2C_INLINE int32_t rnn2c_cell_q15(int32_t x_q12, uint32_t kind)
{
    return kind == RNN2C_CELL_RELU ? rnn2c_q15_clip(x_q12, 0) : rnn2c_tanh_q15(x_q12);
}

/* The LSTM's activation of its cell state (frac_bits <= 15 fractional bits), Q0.15 out. */
RNN2C_INLINE int32_t rnn2c_cell_of_c(int32_t c, int frac_bits, uint32_t kind)
{
    if (kind == RNN2C_CELL_RELU) {
        const int32_t y = c * ((int32_t)1 << (15 - frac_bits)); /* |c| < 2^15: below 2^30 */
        return y < 0 ? 0 : (y > 32767 ? 32767 : y);
    }
    return rnn2c_tanh_q15(rnn2c_q12_from_frac(c, frac_bits));
}

/* z * h + (1 - z) * cand = z * (h - cand) + cand in Q0.15, saturated: for |z| <= 32767 and
 * |h - cand| <= 65535 the product and its rounding stay below 2^31. */
RNN2C_INLINE int32_t rnn2c_blend_x_q15(int32_t z, int32_t h_q15, int32_t cand)
{
    return rnn2c_sat_s16(rnn2c_rshift_round(z * (h_q15 - cand), 15) + cand);
}

/* The activations of a recurrent layer with other than the default ones. */
typedef struct {
    uint8_t gate; /* RNN2C_GATE_* (recurrent_activation) */
    uint8_t cell; /* RNN2C_CELL_* (activation) */
} rnn2c_acts_t;

/* GRU, reset_after=1, unit j: as rnn2c_gru_unit with the layer's activations; the new state in
 * Q0.15 (rnn2c_blend_x_q15). */
RNN2C_INLINE int32_t rnn2c_gru_x_unit(const rnn2c_gru_t *p, const rnn2c_acts_t *a,
                                      const int8_t **w, const int16_t *v, uint32_t j,
                                      int32_t h_q15)
{
    const int16_t *m = p->mult + 4 * j;
    int32_t z = rnn2c_bias(p->bias, 4 * j);
    int32_t r = rnn2c_bias(p->bias, 4 * j + 1);
    int32_t cx = rnn2c_bias(p->bias, 4 * j + 2);
    int32_t ch = rnn2c_bias(p->bias, 4 * j + 3);
    *w = rnn2c_mac3(*w, v, p->x_groups, &z, &r, &cx);
    *w = rnn2c_mac3(*w, v + 4 * (uint32_t)p->x_groups, p->h_groups, &z, &r, &ch);
    z = rnn2c_gate_q15(rnn2c_rqs(z, m[0], p->sh[0]), a->gate);
    r = rnn2c_gate_q15(rnn2c_rqs(r, m[1], p->sh[1]), a->gate);
    ch = rnn2c_sat17(rnn2c_rqs(ch, m[3], p->sh[3]));
    cx = rnn2c_rqs(cx, m[2], p->sh[2]) + ((r * ch + ((int32_t)1 << 14)) >> 15);
    return rnn2c_blend_x_q15(z, h_q15, rnn2c_cell_q15(cx, a->cell));
}

/* GRU, reset_after=0: z and r of every unit into zr (z_j at 2j, r_j at 2j + 1), the state part
 * of v replaced by r * h (in the state's format, shifted as h was), then the candidates; the new
 * states in Q0.15 into hn[0 .. U). h_q15: the state in Q0.15 (an int8 state times 256). */
RNN2C_INLINE void rnn2c_gru_x_rb(const rnn2c_gru_t *p, const rnn2c_acts_t *a, int16_t *v,
                                 const int32_t *h, int state_bits, int16_t *zr, int32_t *hn)
{
    const int8_t *w = p->weight;
    const uint32_t u = p->units;
    const uint32_t n = 2 * u;
    const uint32_t groups = (uint32_t)p->x_groups + p->h_groups;
    int16_t *vh = v + 4 * (uint32_t)p->x_groups;
    uint32_t i;
    uint32_t k;
    for (i = 0; i < n; i += 4) {
        int32_t acc[4];
        const uint32_t rows = n - i < 4 ? n - i : 4;
        for (k = 0; k < rows; ++k) {
            acc[k] = rnn2c_bias(p->bias, i + k);
        }
        w = rnn2c_mac_rows(w, v, groups, rows, acc);
        for (k = 0; k < rows; ++k) {
            zr[i + k] =
                (int16_t)rnn2c_gate_q15(rnn2c_rqs(acc[k], p->mult[i + k], p->sh[(i + k) & 1]), a->gate);
        }
    }
    for (i = 0; i < u; ++i) {
        int32_t rh = rnn2c_rshift_round(zr[2 * i + 1] * h[i], 15);
        if (state_bits == 8) {
            rh = rnn2c_sat_s8(rh);
            vh[RNN2C_VPOS(i)] = (int16_t)(rh * ((int32_t)1 << p->h_shift));
        } else {
            vh[RNN2C_VPOS(i)] = (int16_t)rnn2c_down(rnn2c_sat_s16(rh), p->h_shift);
        }
    }
    for (i = 0; i < u; i += 4) {
        int32_t acc[4];
        const uint32_t rows = u - i < 4 ? u - i : 4;
        for (k = 0; k < rows; ++k) {
            acc[k] = rnn2c_bias(p->bias, n + i + k);
        }
        w = rnn2c_mac_rows(w, v, groups, rows, acc);
        for (k = 0; k < rows; ++k) {
            const int32_t cand =
                rnn2c_cell_q15(rnn2c_rqs(acc[k], p->mult[n + i + k], p->sh[2]), a->cell);
            const int32_t h_q15 = state_bits == 8 ? h[i + k] * 256 : h[i + k];
            hn[i + k] = rnn2c_blend_x_q15(zr[2 * (i + k)], h_q15, cand);
        }
    }
}

/* GRU step with other activations, int8 Q0.7 state. scratch: 3U int16 (zr, then the Q0.15
 * results) for reset_after=0, NULL otherwise. */
RNN2C_INLINE void rnn2c_gru_x_s8(const rnn2c_gru_t *p, const rnn2c_acts_t *a, int16_t *v,
                                 int8_t *h, int32_t *scratch)
{
    const uint32_t u = p->units;
    uint32_t j;
    if (p->reset_after) {
        const int8_t *w = p->weight;
        for (j = 0; j < u; ++j) {
            h[j] = rnn2c_q15_to_state(rnn2c_gru_x_unit(p, a, &w, v, j, (int32_t)h[j] * 256));
        }
    } else { /* scratch: U int32 states, then U int32 results, then 2U int16 z and r */
        int32_t *hs = scratch;
        int32_t *hn = scratch + u;
        for (j = 0; j < u; ++j) {
            hs[j] = h[j];
        }
        rnn2c_gru_x_rb(p, a, v, hs, 8, (int16_t *)(void *)(scratch + 2 * u), hn);
        for (j = 0; j < u; ++j) {
            h[j] = rnn2c_q15_to_state(hn[j]);
        }
    }
}

/* GRU step with other activations, int16 Q0.15 state. */
RNN2C_INLINE void rnn2c_gru_x_s16(const rnn2c_gru_t *p, const rnn2c_acts_t *a, int16_t *v,
                                  int16_t *h, int32_t *scratch)
{
    const uint32_t u = p->units;
    uint32_t j;
    if (p->reset_after) {
        const int8_t *w = p->weight;
        for (j = 0; j < u; ++j) {
            h[j] = (int16_t)rnn2c_gru_x_unit(p, a, &w, v, j, h[j]);
        }
    } else {
        int32_t *hs = scratch;
        int32_t *hn = scratch + u;
        for (j = 0; j < u; ++j) {
            hs[j] = h[j];
        }
        rnn2c_gru_x_rb(p, a, v, hs, 16, (int16_t *)(void *)(scratch + 2 * u), hn);
        for (j = 0; j < u; ++j) {
            h[j] = (int16_t)hn[j];
        }
    }
}

/* LSTM unit j with other activations: returns o * act(c) in Q0.30 (c updated). */
RNN2C_INLINE int32_t rnn2c_lstm_x_unit(const rnn2c_lstm_t *p, const rnn2c_acts_t *a,
                                       const int8_t **w, const int16_t *v, int16_t *c, uint32_t j)
{
    const int16_t *m = p->mult + 4 * j;
    const int cell_shift = 30 - (int)p->cell_frac_bits;
    int32_t i_gate = rnn2c_bias(p->bias, 4 * j);
    int32_t f_gate = rnn2c_bias(p->bias, 4 * j + 1);
    int32_t g_cand = rnn2c_bias(p->bias, 4 * j + 2);
    int32_t o_gate = rnn2c_bias(p->bias, 4 * j + 3);
    int32_t cell;
    *w = rnn2c_mac4(*w, v, (uint32_t)p->x_groups + p->h_groups, &i_gate, &f_gate, &g_cand,
                    &o_gate);
    i_gate = rnn2c_gate_q15(rnn2c_rqs(i_gate, m[0], p->sh[0]), a->gate);
    f_gate = rnn2c_gate_q15(rnn2c_rqs(f_gate, m[1], p->sh[1]), a->gate);
    g_cand = rnn2c_cell_q15(rnn2c_rqs(g_cand, m[2], p->sh[2]), a->cell);
    o_gate = rnn2c_gate_q15(rnn2c_rqs(o_gate, m[3], p->sh[3]), a->gate);
    cell = rnn2c_sat_s16(rnn2c_rshift_round(f_gate * (int32_t)c[j], 15) +
                         rnn2c_rshift_round(i_gate * g_cand, cell_shift));
    c[j] = (int16_t)cell;
    return o_gate * rnn2c_cell_of_c(cell, (int)p->cell_frac_bits, a->cell);
}

RNN2C_INLINE void rnn2c_lstm_x_s8(const rnn2c_lstm_t *p, const rnn2c_acts_t *a,
                                  const int16_t *v, int8_t *h, int16_t *c)
{
    const int8_t *w = p->weight;
    uint32_t j;
    for (j = 0; j < p->units; ++j) {
        h[j] = rnn2c_sat_s8(rnn2c_rshift_round(rnn2c_lstm_x_unit(p, a, &w, v, c, j), 23));
    }
}

RNN2C_INLINE void rnn2c_lstm_x_s16(const rnn2c_lstm_t *p, const rnn2c_acts_t *a,
                                   const int16_t *v, int16_t *h, int16_t *c)
{
    const int8_t *w = p->weight;
    uint32_t j;
    for (j = 0; j < p->units; ++j) {
        h[j] = (int16_t)rnn2c_sat_s16(rnn2c_rshift_round(rnn2c_lstm_x_unit(p, a, &w, v, c, j), 15));
    }
}

/* SimpleRNN with activation relu: h = min(max(W [x; h] + b, 0), 1 - 2^-15) in Q0.15. */
RNN2C_INLINE void rnn2c_rnn_x_q15(const rnn2c_rnn_t *p, const rnn2c_acts_t *a, const int16_t *v,
                                  int32_t *out)
{
    const int8_t *w = p->weight;
    uint32_t j;
    uint32_t k;
    for (j = 0; j < p->units; j += 4) {
        const uint32_t rows = p->units - j < 4 ? p->units - j : 4;
        for (k = 0; k < rows; ++k) {
            out[j + k] = rnn2c_bias(p->bias, j + k);
        }
        w = rnn2c_mac_rows(w, v, (uint32_t)p->x_groups + p->h_groups, rows, out + j);
        for (k = 0; k < rows; ++k) {
            out[j + k] = rnn2c_cell_q15(rnn2c_rqs(out[j + k], p->mult[j + k], p->sh[0]), a->cell);
        }
    }
}

RNN2C_INLINE void rnn2c_rnn_x_s8(const rnn2c_rnn_t *p, const rnn2c_acts_t *a, const int16_t *v,
                                 int8_t *h, int32_t *scratch)
{
    uint32_t j;
    rnn2c_rnn_x_q15(p, a, v, scratch);
    for (j = 0; j < p->units; ++j) {
        h[j] = rnn2c_q15_to_state(scratch[j]);
    }
}

RNN2C_INLINE void rnn2c_rnn_x_s16(const rnn2c_rnn_t *p, const rnn2c_acts_t *a, const int16_t *v,
                                  int16_t *h, int32_t *scratch)
{
    uint32_t j;
    rnn2c_rnn_x_q15(p, a, v, scratch);
    for (j = 0; j < p->units; ++j) {
        h[j] = (int16_t)scratch[j];
    }
}

/* ---- Dense activations with a calibrated output range: leaky_relu, elu, silu, gelu, softplus.
 * The rows are requantized to x in int16 with `frac` fractional bits (frac <= 12, chosen from
 * the calibrated pre-activation range), f(x) is computed in the same format, and `out`
 * requantizes it to the int8 output scale. */
enum {
    RNN2C_DX_LEAKY_RELU = 1, /* x >= 0 ? x : alpha * x */
    RNN2C_DX_ELU = 2,        /* x >= 0 ? x : alpha * (exp(x) - 1), from the exp table */
    RNN2C_DX_SILU = 3,       /* x * sigmoid(x), from the tanh and exp tables */
    RNN2C_DX_GELU = 4,       /* x * Phi(x), from an erf table (exact gelu, not the tanh form) */
    RNN2C_DX_SOFTPLUS = 5    /* max(x, 0) + log(1 + exp(-|x|)), from a table */
};

typedef struct {
    rnn2c_rq_t out;     /* f(x) (frac fractional bits) -> int8 output units */
    uint16_t alpha_q15; /* leaky_relu / elu slope in Q0.15, 0..32768 */
    uint8_t kind;       /* RNN2C_DX_* */
    uint8_t frac;       /* fractional bits of x, 0..12 */
} rnn2c_dense_act_t;

#define RNN2C_PHI_STEP_BITS 7 /* erf(x / sqrt 2) table step: 1/32 */
#define RNN2C_PHI_CLAMP 131   /* erf(i / 32 / sqrt 2) rounds to 32767 from i = 131 */
#define RNN2C_SOFTPLUS_STEP_BITS 8                   /* log1p(exp(-x)) table step: 1/16 */
#define RNN2C_SOFTPLUS_LIMIT_Q12 ((int32_t)178 << 8) /* it rounds to 0 from x = 178 / 16 */

/* erf(a / sqrt 2) for Q3.12 a >= 0 (any int32), Q0.15 out: 2 Phi(a) - 1. */
RNN2C_INLINE int32_t rnn2c_erf_q15(int32_t a_q12)
{
    /* erf(i / 32 / sqrt 2) in Q0.15, i = 0..132 (266 bytes) */
    static const int16_t table[RNN2C_PHI_CLAMP + 2] = {
        0, 817, 1633, 2448, 3260, 4069, 4874, 5674, 6469, 7258, 8039, 8813,
        9579, 10336, 11084, 11821, 12548, 13263, 13967, 14658, 15336, 16002, 16654, 17292,
        17916, 18525, 19120, 19700, 20265, 20814, 21348, 21867, 22370, 22858, 23331, 23787,
        24229, 24655, 25067, 25463, 25844, 26211, 26563, 26902, 27226, 27537, 27834, 28118,
        28390, 28649, 28896, 29131, 29355, 29568, 29769, 29961, 30143, 30315, 30477, 30631,
        30776, 30913, 31042, 31163, 31277, 31384, 31485, 31579, 31667, 31750, 31827, 31900,
        31967, 32030, 32088, 32142, 32193, 32240, 32283, 32324, 32361, 32396, 32427, 32457,
        32484, 32509, 32532, 32553, 32573, 32591, 32607, 32622, 32636, 32648, 32660, 32670,
        32680, 32688, 32696, 32703, 32710, 32716, 32721, 32726, 32730, 32734, 32738, 32741,
        32744, 32746, 32749, 32751, 32753, 32754, 32756, 32757, 32759, 32760, 32761, 32761,
        32762, 32763, 32763, 32764, 32765, 32765, 32765, 32766, 32766, 32766, 32766, 32767,
        32767
    };
    const int32_t last = (int32_t)RNN2C_PHI_CLAMP << RNN2C_PHI_STEP_BITS;
    return rnn2c_interp_s16(table, a_q12 < last ? a_q12 : last, RNN2C_PHI_STEP_BITS);
}

/* log(1 + exp(-a)) for Q3.12 a >= 0, Q0.15 out (22713 at 0). */
RNN2C_INLINE int32_t rnn2c_softplus_tail_q15(int32_t a_q12)
{
    /* log1p(exp(-i / 16)) in Q0.15, i = 0..178 (358 bytes) */
    static const int16_t table[179] = {
        22713, 21705, 20729, 19785, 18872, 17991, 17142, 16323, 15535, 14776, 14048, 13348,
        12677, 12034, 11418, 10828, 10265, 9727, 9213, 8723, 8255, 7810, 7386, 6983,
        6600, 6236, 5890, 5562, 5250, 4955, 4675, 4410, 4159, 3922, 3697, 3484,
        3284, 3094, 2914, 2745, 2585, 2434, 2292, 2157, 2031, 1911, 1798, 1692,
        1592, 1498, 1409, 1325, 1247, 1172, 1103, 1037, 975, 917, 862, 810,
        762, 716, 673, 633, 595, 559, 525, 494, 464, 436, 410, 385,
        362, 340, 320, 300, 282, 265, 249, 234, 220, 207, 194, 183,
        172, 161, 151, 142, 134, 126, 118, 111, 104, 98, 92, 86,
        81, 76, 72, 67, 63, 59, 56, 52, 49, 46, 43, 41,
        38, 36, 34, 32, 30, 28, 26, 25, 23, 22, 21, 19,
        18, 17, 16, 15, 14, 13, 12, 12, 11, 10, 10, 9,
        9, 8, 8, 7, 7, 6, 6, 6, 5, 5, 5, 4,
        4, 4, 4, 3, 3, 3, 3, 3, 2, 2, 2, 2,
        2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0
    };
    if (a_q12 >= RNN2C_SOFTPLUS_LIMIT_Q12) {
        return 0;
    }
    return rnn2c_interp_s16(table, a_q12, RNN2C_SOFTPLUS_STEP_BITS);
}

/* f(x) for x with `frac` fractional bits (saturated to int16), the result in the same format. */
RNN2C_INLINE int32_t rnn2c_dense_act(int32_t x, const rnn2c_dense_act_t *a)
{
    const int32_t xs = rnn2c_sat_s16(x);
    const int up = 12 - (int)a->frac;           /* to Q3.12 */
    const int32_t x12 = xs * ((int32_t)1 << up); /* |x12| <= 2^27 */
    const int32_t a12 = x12 < 0 ? -x12 : x12;
    switch (a->kind) {
    case RNN2C_DX_LEAKY_RELU:
        return xs >= 0 ? xs : rnn2c_rshift_round(xs * (int32_t)a->alpha_q15, 15);
    case RNN2C_DX_ELU:
        if (xs >= 0) {
            return xs;
        }
        return rnn2c_rshift_round((rnn2c_exp_neg_q15(a12) - RNN2C_Q15_ONE) * (int32_t)a->alpha_q15,
                                  30 - (int)a->frac);
    case RNN2C_DX_SILU: /* max(x, 0) - |x| sigmoid(-|x|); sigmoid(-a) ~ exp(-a) from a = 8 */
        return (xs > 0 ? xs : 0) -
               rnn2c_rshift_round((xs < 0 ? -xs : xs) * (a12 < RNN2C_Q15_ONE
                                                             ? rnn2c_sigmoid_q15(-a12)
                                                             : rnn2c_exp_neg_q15(a12)),
                                  15);
    case RNN2C_DX_GELU: /* max(x, 0) - |x| Phi(-|x|), 2 Phi(-a) = 1 - erf(a / sqrt 2), 0 where
                         * the table reaches 32767 */
        return (xs > 0 ? xs : 0) -
               rnn2c_rshift_round((xs < 0 ? -xs : xs) *
                                      (a12 < ((int32_t)RNN2C_PHI_CLAMP << RNN2C_PHI_STEP_BITS)
                                           ? RNN2C_Q15_ONE - rnn2c_erf_q15(a12)
                                           : 0),
                                  16);
    default: /* RNN2C_DX_SOFTPLUS */
        return (xs > 0 ? xs : 0) +
               rnn2c_rshift_round(rnn2c_softplus_tail_q15(a12), 15 - (int)a->frac);
    }
}

/* y = f(W v + b) as int8; acc: `units` int32 scratch. */
RNN2C_INLINE void rnn2c_dense_x_s8(const rnn2c_dense_t *p, const rnn2c_dense_act_t *a,
                                   const int16_t *vec, int32_t *acc, int8_t *y)
{
    const uint16_t n = p->units;
    const int8_t *w = p->weight;
    uint32_t i;
    uint32_t k;
    for (i = 0; i < n; i += 4) { /* acc: one group of 4 rows at a time */
        const uint32_t rows = n - i < 4 ? n - i : 4;
        for (k = 0; k < rows; ++k) {
            acc[k] = rnn2c_bias(p->bias, i + k);
        }
        w = rnn2c_mac_rows(w, vec, p->x_groups, rows, acc);
        for (k = 0; k < rows; ++k) {
            const int32_t f = rnn2c_dense_act(rnn2c_rqs(acc[k], p->mult[i + k], p->sh[0]), a);
            y[i + k] = rnn2c_sat_s8(rnn2c_rq(f, &a->out) + p->output_zero_point);
        }
    }
}

/* ---------------------------------------------------------------- Conv1D kernels */
/* (the ring counters and rnn2c_ring_* are in "Conv1D and pooling over time" above) */

typedef struct {
    rnn2c_dense_t fc;     /* the filters' rows over the window vector [taps][in4] */
    const rnn2c_dense_act_t *act; /* an activation variant (fc.activation LINEAR); NULL: none */
    const int16_t *pad;   /* per input channel, the value of a real 0 (zero point); NULL: 0 */
    uint16_t in;          /* input channels */
    uint16_t in4;         /* in, padded to a multiple of 4: the vector columns of one tap */
    uint16_t taps;        /* kernel_size */
    uint16_t dilation;    /* steps between taps */
    uint16_t span;        /* (taps - 1) * dilation + 1: the inputs kept */
    uint16_t stride;      /* emits every stride steps */
} rnn2c_conv_t;

/* The vector part of a tap before the first input: the zero point (a loop, not memcpy). */
RNN2C_INLINE void rnn2c_conv_pad(const rnn2c_conv_t *p, int16_t *v)
{
    uint32_t i;
    for (i = 0; i < p->in4; ++i) {
        v[RNN2C_VPOS(i)] = (int16_t)(p->pad != NULL && i < p->in ? p->pad[i] : 0);
        RNN2C_KEEP_LOOP(v);
    }
}

/* One requantized row r (Q3.12 for sigmoid and tanh) -> the int8 output, as rnn2c_dense_s8 and
 * rnn2c_dense_x_s8 compute it (softmax is over all rows: not here). */
RNN2C_INLINE int8_t rnn2c_conv_out(const rnn2c_conv_t *p, int32_t r)
{
    const int32_t zp = p->fc.output_zero_point;
    int32_t v;
    if (p->act != NULL) {
        return rnn2c_sat_s8(rnn2c_rq(rnn2c_dense_act(r, p->act), &p->act->out) + zp);
    }
    switch (p->fc.activation) {
    case RNN2C_ACT_SIGMOID:
        v = rnn2c_rshift_round(rnn2c_sigmoid_q15(r), 7) - 128;
        break;
    case RNN2C_ACT_TANH:
        v = rnn2c_rshift_round(rnn2c_tanh_q15(r), 8);
        break;
    case RNN2C_ACT_RELU:
        v = r + zp;
        v = v < zp ? zp : v;
        break;
    default:
        v = r + zp;
        break;
    }
    return rnn2c_sat_s8(v);
}

/* softmax over the n requantized rows in acc (Q3.12 logits), as rnn2c_dense_s8. */
RNN2C_INLINE void rnn2c_conv_softmax(int32_t *acc, uint32_t n, int8_t *y)
{
    int32_t max = acc[0];
    int32_t total = 0;
    uint32_t j;
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
        y[j] = (int8_t)((p256 > 255 ? 255 : p256) - 128);
    }
}

/* The filters over the taps in the ring: per group of 4 rows, the taps one after the other
 * (oldest first) straight from their ring slots, the weights in the order of the window vector
 * (so the sums are the Dense kernel's over the window). acc: the filters' int32 scratch, used
 * by softmax only (else NULL). */
RNN2C_INLINE void rnn2c_conv_rows(const rnn2c_conv_t *p, const int16_t *ring, const int16_t *ctr,
                                  int32_t *acc, int8_t *y)
{
    const uint32_t n = p->fc.units;
    const uint32_t groups = p->in4 / 4u;
    const uint32_t first = rnn2c_ring_back(ctr, p->span, (p->taps - 1u) * p->dilation);
    const int8_t *w = p->fc.weight;
    uint32_t i;
    uint32_t k;
    for (i = 0; i < n; i += 4) {
        const uint32_t rows = n - i < 4 ? n - i : 4;
        uint32_t slot = first;
        uint32_t left = p->taps;
        int32_t a[4];
        for (k = 0; k < rows; ++k) {
            a[k] = rnn2c_bias(p->fc.bias, i + k);
            RNN2C_KEEP_LOOP(a); /* not a call to memcpy */
        }
        while (left > 0u) {
            /* dilation 1: the taps are slots first .. span - 1, then 0 .. first - 1: two runs */
            const uint32_t run =
                p->dilation != 1u ? 1u : (p->span - slot < left ? p->span - slot : left);
            w = rnn2c_mac_rows(w, ring + slot * p->in4, run * groups, rows, a);
            left -= run;
            slot += run * p->dilation;
            slot = slot >= p->span ? slot - p->span : slot;
        }
        for (k = 0; k < rows; ++k) {
            const int32_t r = rnn2c_rqs(a[k], p->fc.mult[i + k], p->fc.sh[0]);
            if (p->fc.activation == RNN2C_ACT_SOFTMAX) {
                acc[i + k] = r;
            } else {
                y[i + k] = rnn2c_conv_out(p, r);
            }
        }
    }
    if (p->fc.activation == RNN2C_ACT_SOFTMAX) {
        rnn2c_conv_softmax(acc, n, y);
    }
}

/* Causal Conv1D: the ring holds the last span inputs as int16 vector parts of in4 columns (what
 * rnn2c_vec_s8 makes of them), so the kernels read the taps where they are, without a window
 * copy on the stack. After reset (nothing held) every slot is first set to the zero point: a
 * tap before the first input reads it (Keras' zero padding). Push x; when the step emits,
 * y = activation(W window + b) as the Dense layer computes it and 1 is returned; else 0 and y
 * is untouched. */
RNN2C_INLINE int rnn2c_conv_s8(const rnn2c_conv_t *p, int16_t *ring, int16_t *ctr, const int8_t *x,
                               int32_t *acc, int8_t *y)
{
    uint32_t s;
    if (ctr[2] == 0 && p->pad != NULL) {
        for (s = 0; s < p->span; ++s) {
            rnn2c_conv_pad(p, ring + s * p->in4);
        }
    }
    rnn2c_vec_s8(ring + rnn2c_ring_push(ctr, p->span) * p->in4, x, p->in, p->in4, 0);
    if (!rnn2c_ring_due(ctr, p->stride, 1)) {
        return 0;
    }
    rnn2c_conv_rows(p, ring, ctr, acc, y);
    return 1;
}

/* The same over an int16 input (an int16 recurrent state, zero point 0). */
RNN2C_INLINE int rnn2c_conv_s16(const rnn2c_conv_t *p, int16_t *ring, int16_t *ctr,
                                const int16_t *x, int32_t *acc, int8_t *y)
{
    rnn2c_vec_s16(ring + rnn2c_ring_push(ctr, p->span) * p->in4, x, p->in, p->in4, 0);
    if (!rnn2c_ring_due(ctr, p->stride, 1)) {
        return 0;
    }
    rnn2c_conv_rows(p, ring, ctr, acc, y);
    return 1;
}

/* Conv1D over a whole sequence (<name>_run): input rows x[0 .. n) of p->in elements, output
 * rows y[0 .. m) of the filters; output row j reads input rows j * stride + k * dilation - left
 * for its taps k, a row outside [0, n) reading the zero point (Keras' padding); v: the window
 * vector (taps * in4 int16), acc: the filters' int32 scratch. */
#define RNN2C_CONV_SEQ_BODY(vec)                                                              \
    int j;                                                                                    \
    uint32_t k;                                                                               \
    for (j = 0; j < m; ++j) {                                                                 \
        for (k = 0; k < p->taps; ++k) {                                                       \
            const int r = j * (int)p->stride + (int)(k * p->dilation) - left;                 \
            if (r >= 0 && r < n) {                                                            \
                vec(v + k * p->in4, x + (size_t)r * p->in, p->in, p->in4, 0);                 \
            } else {                                                                          \
                rnn2c_conv_pad(p, v + k * p->in4);                                            \
            }                                                                                 \
        }                                                                                     \
        if (p->act != NULL) {                                                                 \
            rnn2c_dense_x_s8(&p->fc, p->act, v, acc, y + (size_t)j * p->fc.units);            \
        } else {                                                                              \
            rnn2c_dense_s8(&p->fc, v, acc, y + (size_t)j * p->fc.units);                      \
        }                                                                                     \
    }

RNN2C_INLINE void rnn2c_conv_seq_s8(const rnn2c_conv_t *p, const int8_t *x, int n, int left,
                                    int m, int16_t *v, int32_t *acc, int8_t *y)
{
    RNN2C_CONV_SEQ_BODY(rnn2c_vec_s8)
}

RNN2C_INLINE void rnn2c_conv_seq_s16(const rnn2c_conv_t *p, const int16_t *x, int n, int left,
                                     int m, int16_t *v, int32_t *acc, int8_t *y)
{
    RNN2C_CONV_SEQ_BODY(rnn2c_vec_s16)
}

/* ---------------------------------------------------------------- LayerNormalization */
/* z = (x - mean) / sqrt(var + epsilon) over the n features of a step, integer only (gamma and
 * beta are folded into the next layer's weights). export/layers/layer_norm.py mirrors it. */

typedef struct {
    uint16_t n;         /* features */
    int16_t zero_point; /* of the input */
    int32_t c;          /* round(sqrt(n) 2^frac) */
    int16_t eps_m;      /* epsilon n^3 / scale^2 = eps_m 2^eps_e */
    int8_t eps_e;
    int8_t k_min;       /* the smallest shift of e that keeps the epsilon term <= 2^30 */
    uint8_t frac;       /* fractional bits of the int16 output */
} rnn2c_lnorm_t;

/* floor(sqrt(t)) for 0 <= t < 2^31, bit by bit. */
RNN2C_INLINE int32_t rnn2c_isqrt(int32_t t)
{
    uint32_t x = (uint32_t)t;
    uint32_t r = 0;
    uint32_t bit = (uint32_t)1 << 30;
    while (bit > x) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (int32_t)r;
}

/* e[0 .. n) holds d = x - zero_point; y gets z with frac fractional bits. */
RNN2C_INLINE void rnn2c_lnorm_core(const rnn2c_lnorm_t *p, int32_t *e, int16_t *y)
{
    const int32_t n = (int32_t)p->n;
    const uint32_t room = ((uint32_t)1 << 30) / (uint32_t)n;
    int32_t sum = 0;
    int32_t m = 0;
    int32_t t = 0;
    int32_t r;
    int sh;
    int k = p->k_min;
    int32_t i;
    for (i = 0; i < n; ++i) {
        sum += e[i];
    }
    for (i = 0; i < n; ++i) {
        e[i] = n * e[i] - sum; /* n (d - mean), |.| < 2^30 */
        m = e[i] > m ? e[i] : (-e[i] > m ? -e[i] : m);
    }
    for (;;) { /* the smallest k >= k_min with n ((m shifted right by k) + 1)^2 < 2^30 */
        uint32_t u;
        if (k < 0) {
            u = m >= ((int32_t)32768 >> -k) ? 32769u : ((uint32_t)m << -k) + 1u;
        } else {
            u = ((uint32_t)m >> k) + 1u;
        }
        if (u <= 32768u && u * u < room) {
            break;
        }
        ++k;
    }
    for (i = 0; i < n; ++i) { /* e' and S = sum e'^2 < 2^30 */
        e[i] = k > 0 ? rnn2c_rshift_round(e[i], k) : e[i] * ((int32_t)1 << -k);
        t += e[i] * e[i];
    }
    sh = (int)p->eps_e - 2 * k; /* <= 15 by k_min: the epsilon term is at most 2^30 */
    t += sh >= 0 ? (int32_t)p->eps_m * ((int32_t)1 << sh) : (int32_t)p->eps_m >> (-sh < 16 ? -sh : 16);
    r = rnn2c_isqrt(t);
    for (i = 0; i < n; ++i) {
        const int32_t num = e[i] * p->c; /* |.| < 2^27 */
        const int32_t a = num < 0 ? -num : num;
        const int32_t q = r > 0 ? (2 * a + r) / (2 * r) : 0;
        y[i] = (int16_t)rnn2c_sat_s16(num < 0 ? -q : q);
    }
}

RNN2C_INLINE void rnn2c_lnorm_s8(const rnn2c_lnorm_t *p, const int8_t *x, int16_t *y,
                                 int32_t *scratch)
{
    uint32_t i;
    for (i = 0; i < p->n; ++i) {
        scratch[i] = (int32_t)x[i] - p->zero_point;
    }
    rnn2c_lnorm_core(p, scratch, y);
}

RNN2C_INLINE void rnn2c_lnorm_s16(const rnn2c_lnorm_t *p, const int16_t *x, int16_t *y,
                                  int32_t *scratch)
{
    uint32_t i;
    for (i = 0; i < p->n; ++i) {
        scratch[i] = (int32_t)x[i] - p->zero_point;
    }
    rnn2c_lnorm_core(p, scratch, y);
}

/* ---------------------------------------------------------------- seq2seq: attention, argmax */
/* Attention of one decoder query over the encoder's outputs (export/layers/attention.py states
 * the arithmetic the NumPy reference mirrors): int32 scores, a softmax over the n encoded steps
 * through the exp table, the context as the weighted mean of the int8 Q0.7 rows. */
typedef enum {
    RNN2C_ATT_DOT = 0,     /* Keras Attention (Luong), dot product, optionally scaled */
    RNN2C_ATT_CONCAT = 1,  /* Keras Attention(score_mode="concat") */
    RNN2C_ATT_ADDITIVE = 2 /* Keras AdditiveAttention (Bahdanau) */
} rnn2c_attn_mode_t;

typedef struct {
    uint8_t mode;        /* rnn2c_attn_mode_t */
    int8_t sign;         /* +1, or -1 where the scores' real factor is negative */
    uint16_t units;      /* width of the query, of each value row and of the context */
    int16_t t_mult;      /* concat: (q + v) -> the Q3.12 argument of tanh (0: (q + v) * 32) */
    rnn2c_shift_t t_sh;
    int16_t d_mult;      /* (largest score - score) -> Q3.12 for exp(-d) */
    rnn2c_shift_t d_sh;
    const int8_t *w;     /* additive: int8 weight per unit (else NULL) */
} rnn2c_attn_t;

/* acc >> shift_in rounded half up, then rnn2c_rqs (the rounding term is not in a bias here). */
RNN2C_INLINE int32_t rnn2c_rqs_round(int32_t x, int32_t multiplier, rnn2c_shift_t s)
{
    return rnn2c_rqs(x + (((int32_t)1 << s.shift_in) >> 1), multiplier, s);
}

#if defined(__ARM_FEATURE_DSP)
/* x[0..n-1] (n a multiple of 4) as int16 pairs for SMLAD against a word of 4 int8 (a0 a1 a2 a3):
 * SXTB16 gives (a0, a2), SXTB16 ROR 8 (a1, a3), so the pairs are (x0, x2), (x1, x3) per 4. */
RNN2C_INLINE void rnn2c_dsp_pairs(const int8_t *x, int n, int32_t *pairs)
{
    int g;
    for (g = 0; g < n; g += 4) {
        pairs[g / 2] = (int32_t)(((uint32_t)(uint16_t)x[g]) | ((uint32_t)(uint16_t)x[g + 2] << 16));
        pairs[g / 2 + 1] =
            (int32_t)(((uint32_t)(uint16_t)x[g + 1]) | ((uint32_t)(uint16_t)x[g + 3] << 16));
    }
}

/* sum_k a[k] x[k] over n (a multiple of 4) int8 a, x given as rnn2c_dsp_pairs. */
RNN2C_INLINE int32_t rnn2c_dsp_dot(const int8_t *a, const int32_t *pairs, int n, int32_t acc)
{
    int g;
    for (g = 0; g < n; g += 4) {
        const uint32_t w = rnn2c_ld32(a + g);
        acc = __smlad(__sxtb16((int32_t)w), pairs[g / 2], acc);
        acc = __smlad(__sxtb16((int32_t)((w >> 8) | (w << 24))), pairs[g / 2 + 1], acc);
    }
    return acc;
}
#endif

/* ctx[k] = round(sum_s e_s v[s][k] / sum_s e_s), e_s = min(exp(-(max score - score_s)), 32767)
 * (Q0.15: each fits a 16-bit multiply), over the n >= 1 rows of v ([n][units], int8 Q0.7); q is
 * the int8 Q0.7 query; w holds n int32 (the scores, then the weights); scratch holds units
 * halfwords (the ARM DSP path's query pairs). |sum| < 2^31 for n <= 511 steps (the exporter's
 * limit). */
RNN2C_INLINE void rnn2c_attn_s8(const rnn2c_attn_t *p, const int8_t *q, const int8_t *v, int n,
                                int32_t *w, int32_t *scratch, int8_t *ctx)
{
    const int u = (int)p->units;
    int s;
    int k;
    int32_t top = 0;
    uint32_t total = 0;
#if defined(__ARM_FEATURE_DSP)
    const int dsp = (u & 3) == 0;
    if (dsp && p->mode == RNN2C_ATT_DOT) {
        rnn2c_dsp_pairs(q, u, scratch);
    }
#else
    (void)scratch;
#endif
    for (s = 0; s < n; ++s) {
        const int8_t *row = v + (size_t)s * (size_t)u;
        int32_t raw = 0;
        if (p->mode == RNN2C_ATT_DOT) {
#if defined(__ARM_FEATURE_DSP)
            if (dsp) {
                raw = rnn2c_dsp_dot(row, scratch, u, 0);
            } else
#endif
            {
                for (k = 0; k < u; ++k) {
                    raw += (int32_t)q[k] * row[k];
                }
            }
        } else {
            for (k = 0; k < u; ++k) {
                const int32_t x = (int32_t)q[k] + row[k];
                const int32_t t = rnn2c_tanh_q15(p->t_mult == 0 ? x * 32
                                                                : rnn2c_rqs_round(x, p->t_mult, p->t_sh));
                raw += p->mode == RNN2C_ATT_ADDITIVE ? t * p->w[k] : t;
            }
        }
        raw = p->sign < 0 ? -raw : raw;
        w[s] = raw;
        top = (s == 0 || raw > top) ? raw : top;
    }
    for (s = 0; s < n; ++s) {
        const int32_t e = rnn2c_exp_neg_q15(rnn2c_rqs_round(top - w[s], p->d_mult, p->d_sh));
        w[s] = e < 32767 ? e : 32767;
        total += (uint32_t)w[s]; /* >= 32767: the largest score gives exp(0) */
    }
#if defined(__ARM_FEATURE_DSP)
    if (dsp) { /* 4 columns at a time over the rows: one word of each row, 4 multiplies */
        for (k = 0; k < u; k += 4) {
            int32_t a0 = 0;
            int32_t a1 = 0;
            int32_t a2 = 0;
            int32_t a3 = 0;
            int j;
            for (s = 0; s < n; ++s) {
                const uint32_t x = rnn2c_ld32(v + (size_t)s * (size_t)u + (size_t)k);
                const int32_t x02 = __sxtb16((int32_t)x);
                const int32_t x13 = __sxtb16((int32_t)((x >> 8) | (x << 24)));
                a0 = __smlabb(x02, w[s], a0);
                a2 = __smlatb(x02, w[s], a2);
                a1 = __smlabb(x13, w[s], a1);
                a3 = __smlatb(x13, w[s], a3);
            }
            for (j = 0; j < 4; ++j) {
                const int32_t num = j == 0 ? a0 : (j == 1 ? a1 : (j == 2 ? a2 : a3));
                uint32_t mag = num < 0 ? 0u - (uint32_t)num : (uint32_t)num;
                mag = rnn2c_udiv_small(mag + total / 2u, total, 8); /* rounded, <= 128 */
                ctx[k + j] = (int8_t)(num < 0 ? -(int32_t)mag : (int32_t)mag);
            }
        }
        return;
    }
#endif
    for (k = 0; k < u; ++k) {
        int32_t num = 0;
        uint32_t mag;
        for (s = 0; s < n; ++s) {
            num += w[s] * v[(size_t)s * (size_t)u + (size_t)k];
        }
        mag = num < 0 ? 0u - (uint32_t)num : (uint32_t)num;
        mag = rnn2c_udiv_small(mag + total / 2u, total, 8); /* half away from zero; <= 128 */
        ctx[k] = (int8_t)(num < 0 ? -(int32_t)mag : (int32_t)mag);
    }
}

/* Greedy decoding's output layer: the first of `rows` rows with the largest bias + w x (int8
 * weights with one scale for all rows, so the int32 sums compare like the float logits);
 * scratch holds cols halfwords (the ARM DSP path's input pairs). */
RNN2C_INLINE int32_t rnn2c_argmax_s8(const int8_t *w, const int32_t *bias, int rows, int cols,
                                     const int8_t *x, int32_t *scratch)
{
    int32_t best = 0;
    int32_t top = 0;
    int r;
    int c;
#if defined(__ARM_FEATURE_DSP)
    const int head = cols & ~3; /* the columns in whole groups of 4 */
    rnn2c_dsp_pairs(x, head, scratch);
#else
    const int head = 0;
    (void)scratch;
#endif
    for (r = 0; r < rows; ++r) {
        const int8_t *wr = w + (size_t)r * (size_t)cols;
        int32_t acc = bias[r];
#if defined(__ARM_FEATURE_DSP)
        acc = rnn2c_dsp_dot(wr, scratch, head, acc);
#endif
        for (c = head; c < cols; ++c) {
            acc += (int32_t)wr[c] * x[c];
        }
        if (r == 0 || acc > top) {
            top = acc;
            best = r;
        }
    }
    return best;
}

#endif /* RNN2C_RUNTIME_H */
