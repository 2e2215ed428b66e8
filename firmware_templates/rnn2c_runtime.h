/*
 * rnn2c_runtime.h - integer kernels for rnn2c generated models.
 *
 * Hand-written; copied verbatim next to every generated model, which includes this one file.
 * C99, freestanding: <stddef.h> and <stdint.h>, plus, where the compiler says the target has
 * them, <arm_acle.h> or <immintrin.h>, both compiler headers. No heap, no floating point, no
 * mutable globals. Every function is `static inline`; the two activation tables are the only
 * objects with external linkage (weak, see below), so a program that links several models has
 * no clashes and one copy of the tables.
 *
 * The files (all beside the model; this one includes the others it needs):
 *   rnn2c_runtime.h   the build switches, the tables, the ISA selection (in one place, below)
 *                     and the layers' kernels, which are the same on every target
 *   rnn2c_ref.h       the reference kernels: every kernel an ISA header may replace, in
 *                     portable C (rnn2c_ref_<name>), present in every build
 *   rnn2c_x86.h       x86: AVX2, AVX-512, AVX-512 VNNI                  (rnn2c_x86_<name>)
 *   rnn2c_arm_dsp.h   ARMv7E-M and ARMv8-M Mainline with DSP (M4, M7, M33, ...) (rnn2c_dsp_)
 *   rnn2c_arm_v7m.h   ARMv7-M (M3), and under rnn2c_arm_dsp.h           (rnn2c_v7m_<name>)
 *   rnn2c_arm_v6m.h   ARMv6-M (M0, M0+)                                 (rnn2c_v6m_<name>)
 *   rnn2c_riscv.h     32-bit RISC-V with multiply (rv32imc, rv32imac...) (rnn2c_rv_<name>)
 * An ISA header defines the kernels it does better under their public names (rnn2c_<name>);
 * rnn2c_ref.h gives every other public name its reference, and keeps the reference beside the
 * ISA's kernel, so tests/test_kernels.py runs each kernel against its reference in one build.
 * The layer code below calls the public names only: it holds no ISA code.
 *
 * Build switches (define on the compiler's command line; all off by default):
 *   RNN2C_PORTABLE          no ISA header: the reference kernels only (the same integers,
 *                           slower; for a compiler the ISA headers do not suit, or to compare)
 *   RNN2C_ALLOW_LIBCALLS    let gcc turn copy and clear loops into calls to memcpy/memset
 *                           (-ftree-loop-distribute-patterns, on from -O2); by default they stay
 *                           loops: on Cortex-M the calls pull 300-470 B of newlib into flash
 *   RNN2C_TABLES_STATIC     one static copy of the activation tables per model object, instead
 *                           of one weak, hidden copy per program (always so for compilers
 *                           other than gcc, clang and armclang, and on Windows)
 *   <NAME>_NO_FLOAT_HELPERS (the model's header) no float conversion helpers in <name>.h
 * Chosen by the compiler's own macros (the target: -mcpu, -march, -O):
 *   __AVX2__                rnn2c_x86.h; with __AVX512F__, __AVX512BW__ and __AVX512VL__ 16
 *                           lanes and masked tails, with __AVX512VNNI__ vpdpwssd and the byte
 *                           copies (RNN2C_X86_U8)
 *   __ARM_FEATURE_DSP       rnn2c_arm_dsp.h (and rnn2c_arm_v7m.h)
 *   __ARM_FEATURE_SAT, __thumb2__   rnn2c_arm_v7m.h
 *   __thumb__ (Thumb-1)     rnn2c_arm_v6m.h
 *   __riscv                 rnn2c_riscv.h (its assembly with __riscv_mul, __riscv_xlen 32)
 *   __GNUC__, __clang__, __OPTIMIZE__, __OPTIMIZE_SIZE__   whether a loop is in assembly
 * Set here from those (read them, do not define them):
 *   RNN2C_ISA_X86, RNN2C_ISA_ARM_DSP, RNN2C_ISA_ARMV7M, RNN2C_ISA_ARMV6M, RNN2C_ISA_RISCV
 *                           the ISA headers in use (none: the reference kernels only)
 *   RNN2C_DSP_ASM           the DSP multiply-accumulate loops in assembly (gcc, clang; -O1+)
 *   RNN2C_V6M_ASM           the ARMv6-M ones in assembly (gcc -O1..-O3: not -Os, not clang)
 *   RNN2C_V7M_ASM           the ARMv7-M GRU pair loop in assembly (gcc -O1+, not clang, no DSP)
 *   RNN2C_RV_ASM            the RV32IM multiply-accumulate loops in assembly (gcc, clang)
 *   RNN2C_GRU_PAIRS         1: the GRU step takes two units per pass (RNN2C_V7M_ASM,
 *                           RNN2C_RV_ASM); else 0
 *   RNN2C_WSUM4_COLUMNS     1: the attention's context takes 4 columns per pass (ARM DSP); else 0
 *   RNN2C_X86_LANES         16 (AVX-512) or 8 (AVX2): units per vector of the x86 copies
 *   RNN2C_X86_U8            AVX-512 VNNI: a layer with int8 input and state reads its byte copy
 *                           (the generated C defines that copy under this macro)
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
 * (v2, v3) for SMLAD; x86 stores the vector (v0, v2, v1, v3) per group instead (RNN2C_VPOS),
 * to multiply the bytes in memory order. On x86 the GRU (reset_after) and LSTM layers with the
 * default activations read an x86 copy of their weights instead, with units across the vector
 * lanes (rnn2c_x86.h), which the generated C defines where that header is in use only.
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

/* ---------------------------------------------------------------- what every kernel shares */

/* (x + 2^(shift-1)) >> shift: divide by 2^shift, round half up. shift >= 1. The callers keep
 * |x| <= 2^30 so the rounding term cannot overflow. */
RNN2C_INLINE int32_t rnn2c_rshift_round(int32_t x, int shift)
{
    return (x + ((int32_t)1 << (shift - 1))) >> shift;
}

/* x >> rshift, rounded half up (rshift 0: x). */
RNN2C_INLINE int32_t rnn2c_down(int32_t x, uint32_t rshift)
{
    return (x + (((int32_t)1 << rshift) >> 1)) >> rshift;
}

/* A 32-bit load from a 4-byte aligned address (one LDR / LW on every core: the int4 weight
 * words, whose arrays are RNN2C_ALIGN4 and whose passes are whole words). */
RNN2C_INLINE uint32_t rnn2c_ld32_aligned(const void *p)
{
#if defined(__GNUC__)
    uint32_t w;
    __builtin_memcpy(&w, __builtin_assume_aligned(p, 4), 4);
    return w;
#else
    return *(const uint32_t *)p;
#endif
}

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

/* An empty assembly statement in a copy or clear loop, which gcc and clang would otherwise turn
 * into a call to memcpy / memset (300 B of newlib on Cortex-M, for a few dozen bytes): it keeps
 * the loop a loop. */
#if defined(__GNUC__)
#define RNN2C_KEEP_LOOP(p) __asm__("" : : "r"(p) : "memory")
#else
#define RNN2C_KEEP_LOOP(p) ((void)0)
#endif

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

/* The multiply-accumulate loops of rnn2c_mac1 .. rnn2c_mac4 (rnn2c_ref.h), generated for the
 * reference and for the ISAs' C forms: NAME##R(w, v, groups, a0 ..) computes R rows over
 * `groups` groups of 4 columns, GROUP loading the group's vector elements, ROW(acc, wp) adding
 * one row's 4 products from the weight word at wp. */
#define RNN2C_MAC_GROUP                                                                       \
    const int32_t v0 = v[0];                                                                  \
    const int32_t v1 = v[1];                                                                  \
    const int32_t v2 = v[2];                                                                  \
    const int32_t v3 = v[3]
#define RNN2C_MAC_KERNELS(NAME, GROUP, ROW)                                                   \
    RNN2C_INLINE const int8_t *NAME##4(const int8_t *w, const int16_t *v, uint32_t groups,    \
                                       int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)   \
    {                                                                                         \
        int32_t s0 = *a0;                                                                     \
        int32_t s1 = *a1;                                                                     \
        int32_t s2 = *a2;                                                                     \
        int32_t s3 = *a3;                                                                     \
        for (; groups != 0; --groups, v += 4, w += 16) {                                      \
            GROUP;                                                                            \
            ROW(s0, w);                                                                       \
            ROW(s1, w + 4);                                                                   \
            ROW(s2, w + 8);                                                                   \
            ROW(s3, w + 12);                                                                  \
        }                                                                                     \
        *a0 = s0;                                                                             \
        *a1 = s1;                                                                             \
        *a2 = s2;                                                                             \
        *a3 = s3;                                                                             \
        return w;                                                                             \
    }                                                                                         \
    RNN2C_INLINE const int8_t *NAME##3(const int8_t *w, const int16_t *v, uint32_t groups,    \
                                       int32_t *a0, int32_t *a1, int32_t *a2)                \
    {                                                                                         \
        int32_t s0 = *a0;                                                                     \
        int32_t s1 = *a1;                                                                     \
        int32_t s2 = *a2;                                                                     \
        for (; groups != 0; --groups, v += 4, w += 12) {                                      \
            GROUP;                                                                            \
            ROW(s0, w);                                                                       \
            ROW(s1, w + 4);                                                                   \
            ROW(s2, w + 8);                                                                   \
        }                                                                                     \
        *a0 = s0;                                                                             \
        *a1 = s1;                                                                             \
        *a2 = s2;                                                                             \
        return w;                                                                             \
    }                                                                                         \
    RNN2C_INLINE const int8_t *NAME##2(const int8_t *w, const int16_t *v, uint32_t groups,    \
                                       int32_t *a0, int32_t *a1)                             \
    {                                                                                         \
        int32_t s0 = *a0;                                                                     \
        int32_t s1 = *a1;                                                                     \
        for (; groups != 0; --groups, v += 4, w += 8) {                                       \
            GROUP;                                                                            \
            ROW(s0, w);                                                                       \
            ROW(s1, w + 4);                                                                   \
        }                                                                                     \
        *a0 = s0;                                                                             \
        *a1 = s1;                                                                             \
        return w;                                                                             \
    }                                                                                         \
    RNN2C_INLINE const int8_t *NAME##1(const int8_t *w, const int16_t *v, uint32_t groups,    \
                                       int32_t *a0)                                          \
    {                                                                                         \
        int32_t s0 = *a0;                                                                     \
        for (; groups != 0; --groups, v += 4, w += 4) {                                       \
            GROUP;                                                                            \
            ROW(s0, w);                                                                       \
        }                                                                                     \
        *a0 = s0;                                                                             \
        return w;                                                                             \
    }

/*
 * rnn2c_macR_s4: rnn2c_macR over int4 weights (--weights int4). For every two groups of 4
 * columns (8 vector elements) one 32-bit word per row, nibble k (bits 4k..4k+3) holding the
 * weight of column (0, 4, 2, 6, 1, 5, 3, 7)[k] of the 8 in two's complement (-8..7); an odd
 * last group takes a word of its own, of which only columns 0..3 are read. So on a DSP core
 * (word << 4) & 0xF0F0F0F0 and word & 0xF0F0F0F0 hold 16 times the weights of columns
 * (0, 2, 1, 3) and (4, 6, 5, 7) in their bytes, which SXTB16 and SXTB16 ROR 8 pair with the
 * vector pairs for SMLAD (the sums are 16 times the row's, shifted back once per pass: the
 * exporter keeps 16 * sum |w| max|v| below 2^31). The loops are RNN2C_MAC_S4_KERNELS (GROUP8
 * and ROW8 for a word of 8 columns, GROUP4 and ROW4 for the last odd group).
 */
#define RNN2C_MAC_S4_KERNELS(NAME, GROUP8, ROW8, GROUP4, ROW4)                                 \
    RNN2C_INLINE const int8_t *NAME##4##_s4(const int8_t *w, const int16_t *v,                \
                                             uint32_t groups,                                 \
                                             int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)\
    {                                                                                         \
        int32_t s0 = *a0;                                                                     \
        int32_t s1 = *a1;                                                                     \
        int32_t s2 = *a2;                                                                     \
        int32_t s3 = *a3;                                                                     \
        for (; groups >= 2; groups -= 2, v += 8, w += 16) {                                   \
            GROUP8;                                                                           \
            ROW8(s0, w);                                                                      \
            ROW8(s1, w + 4);                                                                  \
            ROW8(s2, w + 8);                                                                  \
            ROW8(s3, w + 12);                                                                 \
        }                                                                                     \
        if (groups != 0) {                                                                    \
            GROUP4;                                                                           \
            ROW4(s0, w);                                                                      \
            ROW4(s1, w + 4);                                                                  \
            ROW4(s2, w + 8);                                                                  \
            ROW4(s3, w + 12);                                                                 \
            w += 16;                                                                          \
        }                                                                                     \
        *a0 = s0;                                                                             \
        *a1 = s1;                                                                             \
        *a2 = s2;                                                                             \
        *a3 = s3;                                                                             \
        return w;                                                                             \
    }                                                                                         \
    RNN2C_INLINE const int8_t *NAME##3##_s4(const int8_t *w, const int16_t *v,                \
                                             uint32_t groups,                                 \
                                             int32_t *a0, int32_t *a1, int32_t *a2)           \
    {                                                                                         \
        int32_t s0 = *a0;                                                                     \
        int32_t s1 = *a1;                                                                     \
        int32_t s2 = *a2;                                                                     \
        for (; groups >= 2; groups -= 2, v += 8, w += 12) {                                   \
            GROUP8;                                                                           \
            ROW8(s0, w);                                                                      \
            ROW8(s1, w + 4);                                                                  \
            ROW8(s2, w + 8);                                                                  \
        }                                                                                     \
        if (groups != 0) {                                                                    \
            GROUP4;                                                                           \
            ROW4(s0, w);                                                                      \
            ROW4(s1, w + 4);                                                                  \
            ROW4(s2, w + 8);                                                                  \
            w += 12;                                                                          \
        }                                                                                     \
        *a0 = s0;                                                                             \
        *a1 = s1;                                                                             \
        *a2 = s2;                                                                             \
        return w;                                                                             \
    }                                                                                         \
    RNN2C_INLINE const int8_t *NAME##2##_s4(const int8_t *w, const int16_t *v,                \
                                             uint32_t groups,                                 \
                                             int32_t *a0, int32_t *a1)                        \
    {                                                                                         \
        int32_t s0 = *a0;                                                                     \
        int32_t s1 = *a1;                                                                     \
        for (; groups >= 2; groups -= 2, v += 8, w += 8) {                                    \
            GROUP8;                                                                           \
            ROW8(s0, w);                                                                      \
            ROW8(s1, w + 4);                                                                  \
        }                                                                                     \
        if (groups != 0) {                                                                    \
            GROUP4;                                                                           \
            ROW4(s0, w);                                                                      \
            ROW4(s1, w + 4);                                                                  \
            w += 8;                                                                           \
        }                                                                                     \
        *a0 = s0;                                                                             \
        *a1 = s1;                                                                             \
        return w;                                                                             \
    }                                                                                         \
    RNN2C_INLINE const int8_t *NAME##1##_s4(const int8_t *w, const int16_t *v,                \
                                             uint32_t groups,                                 \
                                             int32_t *a0)                                     \
    {                                                                                         \
        int32_t s0 = *a0;                                                                     \
        for (; groups >= 2; groups -= 2, v += 8, w += 4) {                                    \
            GROUP8;                                                                           \
            ROW8(s0, w);                                                                      \
        }                                                                                     \
        if (groups != 0) {                                                                    \
            GROUP4;                                                                           \
            ROW4(s0, w);                                                                      \
            w += 4;                                                                           \
        }                                                                                     \
        *a0 = s0;                                                                             \
        return w;                                                                             \
    }

/* int4: nibble k of a weight word in two's complement, and one row's 4 or 8 products (the
 * vector elements v0 .. v7 from the loop's GROUP4 / GROUP8). */
#define RNN2C_S4_NIB(q, k) ((int32_t)((q) << (28 - 4 * (k))) >> 28)
#define RNN2C_S4_ROW4(acc, wp)                                                            \
    do {                                                                                      \
        const uint32_t q = rnn2c_ld32_aligned(wp);                                                    \
        (acc) += RNN2C_S4_NIB(q, 0) * v0;                                                 \
        (acc) += RNN2C_S4_NIB(q, 4) * v1;                                                 \
        (acc) += RNN2C_S4_NIB(q, 2) * v2;                                                 \
        (acc) += RNN2C_S4_NIB(q, 6) * v3;                                                 \
    } while (0)
#define RNN2C_S4_ROW8(acc, wp)                                                            \
    do {                                                                                      \
        const uint32_t q = rnn2c_ld32_aligned(wp);                                                    \
        (acc) += RNN2C_S4_NIB(q, 0) * v0;                                                 \
        (acc) += RNN2C_S4_NIB(q, 4) * v1;                                                 \
        (acc) += RNN2C_S4_NIB(q, 2) * v2;                                                 \
        (acc) += RNN2C_S4_NIB(q, 6) * v3;                                                 \
        (acc) += RNN2C_S4_NIB(q, 1) * v4;                                                 \
        (acc) += RNN2C_S4_NIB(q, 5) * v5;                                                 \
        (acc) += RNN2C_S4_NIB(q, 3) * v6;                                                 \
        (acc) += RNN2C_S4_NIB(q, 7) * v7;                                                 \
    } while (0)

/* A row kind's requantization shifts (rnn2c_rqs, rnn2c_ref.h). */
typedef struct {
    uint8_t shift_in;  /* 0..31; the rounding of acc >> shift_in is folded into the bias */
    uint8_t shift_out; /* 1..31 */
} rnn2c_shift_t;

/* ---------------------------------------------------------------- the ISA: chosen here only */

#if defined(RNN2C_PORTABLE)
/* the reference kernels only */
#elif defined(__AVX2__)
#include "rnn2c_x86.h"
#elif defined(__ARM_FEATURE_DSP)
#include "rnn2c_arm_dsp.h"
#elif defined(__ARM_FEATURE_SAT) || defined(__thumb2__)
#include "rnn2c_arm_v7m.h"
#elif defined(__thumb__)
#include "rnn2c_arm_v6m.h"
#elif defined(__riscv)
#include "rnn2c_riscv.h"
#endif

#include "rnn2c_ref.h"

/* ---------------------------------------------------------------- scalar activations */

/* (tanh, sigmoid, rnn2c_rqs, rnn2c_q12_from_frac and the GRU's blend are in rnn2c_ref.h: what
 * the gate kernels are built from.) */

/* Q0.15 -> Q0.7 int8 hidden state. */
RNN2C_INLINE int8_t rnn2c_q15_to_state(int32_t x_q15)
{
    return rnn2c_sat_s8(rnn2c_rshift_round(x_q15, 8));
}

/* n bytes from p set to zero (the state's reset): a plain loop (RNN2C_KEEP_LOOP; 160 B of
 * newlib's memset on Cortex-M, for a 32- to a few-hundred-byte state). */
RNN2C_INLINE void rnn2c_zero(void *p, size_t n)
{
    unsigned char *b = (unsigned char *)p;
    size_t i;
    for (i = 0; i < n; ++i) {
        b[i] = 0;
        RNN2C_KEEP_LOOP(b);
    }
}

/* The state formats of the recurrent kernels, by suffix: an int8 state (s8) is Q0.7, an int16
 * one (s16) Q0.15. RNN2C_Q15_<S>(h): the state in Q0.15; rnn2c_from_q15_<S>(x): a Q0.15 result
 * (within +-32767) as the state, rounded and saturated. */
#define RNN2C_Q15_s8(h) ((int32_t)(h) * 256)
#define RNN2C_Q15_s16(h) ((int32_t)(h))
#define RNN2C_BITS_s8 8
#define RNN2C_BITS_s16 16

RNN2C_INLINE int8_t rnn2c_from_q15_s8(int32_t x_q15)
{
    return rnn2c_q15_to_state(x_q15);
}

RNN2C_INLINE int16_t rnn2c_from_q15_s16(int32_t x_q15)
{
    return (int16_t)x_q15;
}

/* ---- The activations Keras allows besides the defaults: recurrent_activation hard_sigmoid or
 * linear, activation relu in GRU/LSTM/SimpleRNN (the _x_ kernels of each layer below), and
 * Dense leaky_relu, elu, silu (swish), gelu and softplus (rnn2c_dense_x_s8). Layers with the
 * default activations never reach them, so their tables (static inside the functions that read
 * them) cost flash only in models that use them. export/fixedpoint.py mirrors every function. */

enum {
    RNN2C_GATE_SIGMOID = 0,      /* the tanh table, as rnn2c_sigmoid_q15 */
    RNN2C_GATE_HARD_SIGMOID = 1, /* clip(x / 6 + 1/2, 0, 1) (Keras 3) */
    RNN2C_GATE_LINEAR = 2        /* x, saturated to [-32767, 32767] in Q0.15 (+-1.0) */
};
enum {
    RNN2C_CELL_TANH = 0, /* the tanh table */
    RNN2C_CELL_RELU = 1  /* max(x, 0), saturated to the state's range: [0, 32767] in Q0.15 */
};

/* The activations of a recurrent layer with other than the default ones. */
typedef struct {
    uint8_t gate; /* RNN2C_GATE_* (recurrent_activation) */
    uint8_t cell; /* RNN2C_CELL_* (activation) */
} rnn2c_acts_t;

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

/* ---------------------------------------------------------------- requantization */

/* Requantization to the format a row's consumer needs (Q3.12 for a gate). A layer stores one
 * int16 multiplier per row and one rnn2c_shift_t per row kind (GRU: z, r, candidate over x,
 * candidate over h; LSTM: i, f, g, o; SimpleRNN and Dense: one), shared by the kind's rows. */
/* One self-contained record (a Dense activation's output requantization). */
typedef struct {
    int16_t multiplier; /* in [0, 2^14) */
    uint8_t shift_in;
    uint8_t shift_out;
} rnn2c_rq_t;

RNN2C_INLINE int32_t rnn2c_rq(int32_t acc, const rnn2c_rq_t *q)
{
    rnn2c_shift_t s;
    s.shift_in = q->shift_in;
    s.shift_out = q->shift_out;
    return rnn2c_rqs(acc, q->multiplier, s);
}

RNN2C_INLINE int32_t rnn2c_bias(const int32_t *bias, uint32_t i)
{
    return bias != NULL ? bias[i] : 0;
}

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
    uint8_t w4;            /* 1: int4 weights (rnn2c_macR_s4's layout); 0: int8 */
    RNN2C_ISA_MEMBER       /* an ISA's own copy of the weights (rnn2c_ref.h); none by default */
} rnn2c_gru_t;

/* A blend sum (Q0.15 times 2^15) as the state: rounded once. For int8,
 * rnn2c_q15_to_state(rnn2c_rshift_round(sum, 15)) in one rounding: ((s + 2^14) >> 15 + 2^7) >> 8
 * == (s + 2^14 + 2^22) >> 23 for every integer s. */
RNN2C_INLINE int8_t rnn2c_gru_out_s8(int32_t sum)
{
    return rnn2c_sat_s8((sum + ((int32_t)1 << 14) + ((int32_t)1 << 22)) >> 23);
}

RNN2C_INLINE int16_t rnn2c_gru_out_s16(int32_t sum)
{
    return (int16_t)rnn2c_sat_s16(rnn2c_rshift_round(sum, 15));
}

/* reset_after=0: r * h (r in Q0.15) in the state's format, as the state part of the vector
 * (shifted as h was). */
RNN2C_INLINE int16_t rnn2c_gru_rh_s8(int32_t r, int32_t h, uint32_t h_shift)
{
    const int32_t rh = rnn2c_sat_s8(rnn2c_rshift_round(r * h, 15));
    return (int16_t)(rh * ((int32_t)1 << h_shift));
}

RNN2C_INLINE int16_t rnn2c_gru_rh_s16(int32_t r, int32_t h, uint32_t h_shift)
{
    const int32_t rh = rnn2c_sat_s16(rnn2c_rshift_round(r * h, 15));
    return (int16_t)rnn2c_down(rh, h_shift);
}

/* reset_after=1, unit j: rows z, r, candidate over x, then z, r, candidate over h; returns the
 * new state in Q0.15 times 2^15, before rounding (rnn2c_gru_blend_sum). */
RNN2C_INLINE int32_t rnn2c_gru_unit(const rnn2c_gru_t *p, const int8_t **w, const int16_t *v,
                                    uint32_t j, int32_t h_q15)
{
    const int16_t *m = p->mult + 4 * j;
    int32_t z = rnn2c_bias(p->bias, 4 * j);
    int32_t r = rnn2c_bias(p->bias, 4 * j + 1);
    int32_t cx = rnn2c_bias(p->bias, 4 * j + 2);
    int32_t ch = rnn2c_bias(p->bias, 4 * j + 3);
    *w = RNN2C_MACW(3, p->w4, *w, v, p->x_groups, &z, &r, &cx);
    *w = RNN2C_MACW(3, p->w4, *w, v + 4 * (uint32_t)p->x_groups, p->h_groups, &z, &r, &ch);
    return rnn2c_gru_gates(m, p->sh, z, r, cx, ch, h_q15);
}

/* reset_after=1, units j and j + 1 in one pass of 6 rows (rnn2c_gru_pair_acc, where
 * RNN2C_GRU_PAIRS): their sums as rnn2c_gru_unit returns them into s[0], s[1]; *w moves past
 * both units. */
RNN2C_INLINE void rnn2c_gru_pair(const rnn2c_gru_t *p, const int8_t **w, const int16_t *v,
                                 uint32_t j, int32_t h0_q15, int32_t h1_q15, int32_t *s)
{
    static const int32_t no_bias[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int16_t *m = p->mult + 4 * j;
    int32_t a[4];
    int32_t b[4];
    rnn2c_gru_pair_acc(*w, v, p->x_groups, p->h_groups,
                       p->bias != NULL ? p->bias + 4 * j : no_bias, a, b);
    *w += 24 * ((size_t)p->x_groups + p->h_groups);
    s[0] = rnn2c_gru_gates(m, p->sh, a[0], a[1], a[2], a[3], h0_q15);
    s[1] = rnn2c_gru_gates(m + 4, p->sh, b[0], b[1], b[2], b[3], h1_q15);
}

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
        w = rnn2c_mac_rows_w(p->w4, w, v, groups, rows, a);
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
    w = rnn2c_mac_rows_w(p->w4, w, v, (uint32_t)p->x_groups + p->h_groups, rows, a);
    for (k = 0; k < rows; ++k) {
        a[k] = rnn2c_tanh_rq(a[k], p->mult[row + k], p->sh[2]);
    }
    return w;
}

/* GRU step, state S (s8: int8 Q0.7, s16: int16 Q0.15). v: the layer's vector, built by the
 * caller (the step may overwrite it); zr: 2U int16 scratch (reset_after=0 only). h is updated
 * in place (the kernels read the copy in v). */
#define RNN2C_GRU_BODY(S)                                                                     \
    const uint32_t u = p->units;                                                              \
    uint32_t j;                                                                               \
    uint32_t k;                                                                               \
    if (rnn2c_isa_gru_##S(p, v, h)) { /* the layer's ISA copy: the ISA's step */              \
        return;                                                                               \
    }                                                                                         \
    if (p->reset_after) {                                                                     \
        const int8_t *w = p->weight;                                                          \
        j = 0;                                                                                \
        if (RNN2C_GRU_PAIRS && !p->w4) {                                                      \
            for (; j + 2 <= u; j += 2) {                                                      \
                int32_t s[2];                                                                 \
                rnn2c_gru_pair(p, &w, v, j, RNN2C_Q15_##S(h[j]), RNN2C_Q15_##S(h[j + 1]), s); \
                h[j] = rnn2c_gru_out_##S(s[0]);                                               \
                h[j + 1] = rnn2c_gru_out_##S(s[1]);                                           \
            }                                                                                 \
        }                                                                                     \
        for (; j < u; ++j) {                                                                  \
            h[j] = rnn2c_gru_out_##S(rnn2c_gru_unit(p, &w, v, j, RNN2C_Q15_##S(h[j])));       \
        }                                                                                     \
    } else {                                                                                  \
        const int8_t *w = rnn2c_gru_zr(p, v, zr);                                             \
        int16_t *vh = v + 4 * (uint32_t)p->x_groups;                                          \
        for (j = 0; j < u; ++j) { /* the state part of v becomes r * h */                     \
            vh[RNN2C_VPOS(j)] = rnn2c_gru_rh_##S(zr[2 * j + 1], h[j], p->h_shift);            \
        }                                                                                     \
        for (j = 0; j < u; j += 4) {                                                          \
            int32_t a[4];                                                                     \
            const uint32_t rows = u - j < 4 ? u - j : 4;                                      \
            w = rnn2c_gru_cand(p, w, v, j, rows, a);                                          \
            for (k = 0; k < rows; ++k) {                                                      \
                h[j + k] = rnn2c_gru_out_##S(                                                 \
                    rnn2c_gru_blend_sum(zr[2 * (j + k)], RNN2C_Q15_##S(h[j + k]), a[k]));     \
            }                                                                                 \
        }                                                                                     \
    }

RNN2C_INLINE void rnn2c_gru_s8(const rnn2c_gru_t *p, int16_t *v, int8_t *h, int16_t *zr)
{
    RNN2C_GRU_BODY(s8)
}

RNN2C_INLINE void rnn2c_gru_s16(const rnn2c_gru_t *p, int16_t *v, int16_t *h, int16_t *zr)
{
    RNN2C_GRU_BODY(s16)
}

/* ---- GRU with other activations (rnn2c_acts_t) */

/* z * h + (1 - z) * cand = z * (h - cand) + cand in Q0.15, saturated: for |z| <= 32767 and
 * |h - cand| <= 65535 the product and its rounding stay below 2^31. */
RNN2C_INLINE int32_t rnn2c_blend_x_q15(int32_t z, int32_t h_q15, int32_t cand)
{
    return rnn2c_sat_s16(rnn2c_rshift_round(z * (h_q15 - cand), 15) + cand);
}

/* reset_after=1, unit j: as rnn2c_gru_unit with the layer's activations; the new state in
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
    *w = RNN2C_MACW(3, p->w4, *w, v, p->x_groups, &z, &r, &cx);
    *w = RNN2C_MACW(3, p->w4, *w, v + 4 * (uint32_t)p->x_groups, p->h_groups, &z, &r, &ch);
    z = rnn2c_gate_q15(rnn2c_rqs(z, m[0], p->sh[0]), a->gate);
    r = rnn2c_gate_q15(rnn2c_rqs(r, m[1], p->sh[1]), a->gate);
    ch = rnn2c_sat17(rnn2c_rqs(ch, m[3], p->sh[3]));
    cx = rnn2c_rqs(cx, m[2], p->sh[2]) + ((r * ch + ((int32_t)1 << 14)) >> 15);
    return rnn2c_blend_x_q15(z, h_q15, rnn2c_cell_q15(cx, a->cell));
}

/* reset_after=0: z and r of every unit into zr (z_j at 2j, r_j at 2j + 1), the state part
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
        w = rnn2c_mac_rows_w(p->w4, w, v, groups, rows, acc);
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
        w = rnn2c_mac_rows_w(p->w4, w, v, groups, rows, acc);
        for (k = 0; k < rows; ++k) {
            const int32_t cand =
                rnn2c_cell_q15(rnn2c_rqs(acc[k], p->mult[n + i + k], p->sh[2]), a->cell);
            const int32_t h_q15 = state_bits == 8 ? h[i + k] * 256 : h[i + k];
            hn[i + k] = rnn2c_blend_x_q15(zr[2 * (i + k)], h_q15, cand);
        }
    }
}

/* GRU step with other activations, state S. scratch: 3U int32 for reset_after=0 (U states, U
 * results, then 2U int16 z and r), NULL otherwise. */
#define RNN2C_GRU_X_BODY(S)                                                                   \
    const uint32_t u = p->units;                                                              \
    uint32_t j;                                                                               \
    if (p->reset_after) {                                                                     \
        const int8_t *w = p->weight;                                                          \
        for (j = 0; j < u; ++j) {                                                             \
            h[j] = rnn2c_from_q15_##S(rnn2c_gru_x_unit(p, a, &w, v, j, RNN2C_Q15_##S(h[j]))); \
        }                                                                                     \
    } else {                                                                                  \
        int32_t *hs = scratch;                                                                \
        int32_t *hn = scratch + u;                                                            \
        for (j = 0; j < u; ++j) {                                                             \
            hs[j] = h[j];                                                                     \
        }                                                                                     \
        rnn2c_gru_x_rb(p, a, v, hs, RNN2C_BITS_##S, (int16_t *)(void *)(scratch + 2 * u), hn);  \
        for (j = 0; j < u; ++j) {                                                             \
            h[j] = rnn2c_from_q15_##S(hn[j]);                                                 \
        }                                                                                     \
    }

RNN2C_INLINE void rnn2c_gru_x_s8(const rnn2c_gru_t *p, const rnn2c_acts_t *a, int16_t *v,
                                 int8_t *h, int32_t *scratch)
{
    RNN2C_GRU_X_BODY(s8)
}

RNN2C_INLINE void rnn2c_gru_x_s16(const rnn2c_gru_t *p, const rnn2c_acts_t *a, int16_t *v,
                                  int16_t *h, int32_t *scratch)
{
    RNN2C_GRU_X_BODY(s16)
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
    uint8_t w4;             /* 1: int4 weights (rnn2c_macR_s4's layout); 0: int8 */
    RNN2C_ISA_MEMBER        /* an ISA's own copy of the weights (rnn2c_ref.h); none by default */
} rnn2c_lstm_t;

/* Unit j: gates from v, cell c[j] updated; returns o * tanh(c) in Q0.30. */
RNN2C_INLINE int32_t rnn2c_lstm_unit(const rnn2c_lstm_t *p, const int8_t **w, const int16_t *v,
                                     int16_t *c, uint32_t j)
{
    int32_t i_gate = rnn2c_bias(p->bias, 4 * j);
    int32_t f_gate = rnn2c_bias(p->bias, 4 * j + 1);
    int32_t g_cand = rnn2c_bias(p->bias, 4 * j + 2);
    int32_t o_gate = rnn2c_bias(p->bias, 4 * j + 3);
    *w = RNN2C_MACW(4, p->w4, *w, v, (uint32_t)p->x_groups + p->h_groups, &i_gate, &f_gate,
                    &g_cand, &o_gate);
    return rnn2c_lstm_gates(p->mult + 4 * j, p->sh, i_gate, f_gate, g_cand, o_gate, c + j,
                            (int)p->cell_frac_bits);
}

/* o * act(c) in Q0.30 as the state. */
RNN2C_INLINE int8_t rnn2c_lstm_out_s8(int32_t q30)
{
    return rnn2c_sat_s8(rnn2c_rshift_round(q30, 23));
}

RNN2C_INLINE int16_t rnn2c_lstm_out_s16(int32_t q30)
{
    return (int16_t)rnn2c_sat_s16(rnn2c_rshift_round(q30, 15));
}

/* LSTM step, state S; h and c updated in place (v: the layer's vector, which the step may
 * overwrite). */
#define RNN2C_LSTM_BODY(S)                                                                    \
    const int8_t *w = p->weight;                                                              \
    uint32_t j;                                                                               \
    if (rnn2c_isa_lstm_##S(p, v, h, c)) { /* the layer's ISA copy: the ISA's step */          \
        return;                                                                               \
    }                                                                                         \
    for (j = 0; j < p->units; ++j) {                                                          \
        h[j] = rnn2c_lstm_out_##S(rnn2c_lstm_unit(p, &w, v, c, j));                           \
    }

RNN2C_INLINE void rnn2c_lstm_s8(const rnn2c_lstm_t *p, int16_t *v, int8_t *h, int16_t *c)
{
    RNN2C_LSTM_BODY(s8)
}

RNN2C_INLINE void rnn2c_lstm_s16(const rnn2c_lstm_t *p, int16_t *v, int16_t *h, int16_t *c)
{
    RNN2C_LSTM_BODY(s16)
}

/* ---- LSTM with other activations (rnn2c_acts_t) */

/* Unit j: returns o * act(c) in Q0.30 (c updated). */
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
    *w = RNN2C_MACW(4, p->w4, *w, v, (uint32_t)p->x_groups + p->h_groups, &i_gate, &f_gate,
                    &g_cand, &o_gate);
    i_gate = rnn2c_gate_q15(rnn2c_rqs(i_gate, m[0], p->sh[0]), a->gate);
    f_gate = rnn2c_gate_q15(rnn2c_rqs(f_gate, m[1], p->sh[1]), a->gate);
    g_cand = rnn2c_cell_q15(rnn2c_rqs(g_cand, m[2], p->sh[2]), a->cell);
    o_gate = rnn2c_gate_q15(rnn2c_rqs(o_gate, m[3], p->sh[3]), a->gate);
    cell = rnn2c_sat_s16(rnn2c_rshift_round(f_gate * (int32_t)c[j], 15) +
                         rnn2c_rshift_round(i_gate * g_cand, cell_shift));
    c[j] = (int16_t)cell;
    return o_gate * rnn2c_cell_of_c(cell, (int)p->cell_frac_bits, a->cell);
}

#define RNN2C_LSTM_X_BODY(S)                                                                  \
    const int8_t *w = p->weight;                                                              \
    uint32_t j;                                                                               \
    for (j = 0; j < p->units; ++j) {                                                          \
        h[j] = rnn2c_lstm_out_##S(rnn2c_lstm_x_unit(p, a, &w, v, c, j));                      \
    }

RNN2C_INLINE void rnn2c_lstm_x_s8(const rnn2c_lstm_t *p, const rnn2c_acts_t *a,
                                  const int16_t *v, int8_t *h, int16_t *c)
{
    RNN2C_LSTM_X_BODY(s8)
}

RNN2C_INLINE void rnn2c_lstm_x_s16(const rnn2c_lstm_t *p, const rnn2c_acts_t *a,
                                   const int16_t *v, int16_t *h, int16_t *c)
{
    RNN2C_LSTM_X_BODY(s16)
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
    uint8_t w4;            /* 1: int4 weights (rnn2c_macR_s4's layout); 0: int8 */
} rnn2c_rnn_t;

/* tanh(W [x; h] + b) of units [j, j + rows) into a (Q0.15). */
RNN2C_INLINE const int8_t *rnn2c_rnn_units(const rnn2c_rnn_t *p, const int8_t *w, const int16_t *v,
                                           uint32_t j, uint32_t rows, int32_t *a)
{
    uint32_t k;
    for (k = 0; k < rows; ++k) {
        a[k] = rnn2c_bias(p->bias, j + k);
    }
    w = rnn2c_mac_rows_w(p->w4, w, v, (uint32_t)p->x_groups + p->h_groups, rows, a);
    for (k = 0; k < rows; ++k) {
        a[k] = rnn2c_tanh_rq(a[k], p->mult[j + k], p->sh[0]);
    }
    return w;
}

/* SimpleRNN step, state S. */
#define RNN2C_RNN_BODY(S)                                                                     \
    const int8_t *w = p->weight;                                                              \
    uint32_t j;                                                                               \
    uint32_t k;                                                                               \
    for (j = 0; j < p->units; j += 4) {                                                       \
        int32_t a[4];                                                                         \
        const uint32_t rows = p->units - j < 4 ? p->units - j : 4;                            \
        w = rnn2c_rnn_units(p, w, v, j, rows, a);                                             \
        for (k = 0; k < rows; ++k) {                                                          \
            h[j + k] = rnn2c_from_q15_##S(a[k]);                                              \
        }                                                                                     \
    }

RNN2C_INLINE void rnn2c_rnn_s8(const rnn2c_rnn_t *p, const int16_t *v, int8_t *h)
{
    RNN2C_RNN_BODY(s8)
}

RNN2C_INLINE void rnn2c_rnn_s16(const rnn2c_rnn_t *p, const int16_t *v, int16_t *h)
{
    RNN2C_RNN_BODY(s16)
}

/* ---- SimpleRNN with activation relu: h = min(max(W [x; h] + b, 0), 1 - 2^-15) in Q0.15. */
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
        w = rnn2c_mac_rows_w(p->w4, w, v, (uint32_t)p->x_groups + p->h_groups, rows, out + j);
        for (k = 0; k < rows; ++k) {
            out[j + k] = rnn2c_cell_q15(rnn2c_rqs(out[j + k], p->mult[j + k], p->sh[0]), a->cell);
        }
    }
}

#define RNN2C_RNN_X_BODY(S)                                                                   \
    uint32_t j;                                                                               \
    rnn2c_rnn_x_q15(p, a, v, scratch);                                                        \
    for (j = 0; j < p->units; ++j) {                                                          \
        h[j] = rnn2c_from_q15_##S(scratch[j]);                                                \
    }

RNN2C_INLINE void rnn2c_rnn_x_s8(const rnn2c_rnn_t *p, const rnn2c_acts_t *a, const int16_t *v,
                                 int8_t *h, int32_t *scratch)
{
    RNN2C_RNN_X_BODY(s8)
}

RNN2C_INLINE void rnn2c_rnn_x_s16(const rnn2c_rnn_t *p, const rnn2c_acts_t *a, const int16_t *v,
                                  int16_t *h, int32_t *scratch)
{
    RNN2C_RNN_X_BODY(s16)
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
    uint8_t w4;            /* 1: int4 weights (rnn2c_macR_s4's layout); 0: int8 */
} rnn2c_dense_t;

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

/* y = activation(W v + b) as int8. acc: int32 scratch for all `units` rows with softmax (the
 * normalisation needs every row), else for one group of 4 rows (each group's outputs are
 * written before the next). */
RNN2C_INLINE void rnn2c_dense_s8(const rnn2c_dense_t *p, const int16_t *vec, int32_t *acc,
                                 int8_t *y)
{
    const uint16_t n = p->units;
    const int8_t *w = p->weight;
    const int softmax = p->activation == RNN2C_ACT_SOFTMAX;
    uint32_t i;
    uint32_t k;
    for (i = 0; i < n; i += 4) {
        const uint32_t rows = n - i < 4 ? n - i : 4;
        int32_t *const a = softmax ? acc + i : acc;
        for (k = 0; k < rows; ++k) {
            a[k] = rnn2c_bias(p->bias, i + k);
        }
        if (n <= 4) { /* one pass (a head): an ISA's shorter loop */
            w = p->w4 ? rnn2c_mac_rows_s4(w, vec, p->x_groups, rows, a)
                      : rnn2c_mac_rows_small(w, vec, p->x_groups, rows, a);
        } else {
            w = rnn2c_mac_rows_w(p->w4, w, vec, p->x_groups, rows, a);
        }
        for (k = 0; k < rows; ++k) {
            a[k] = rnn2c_rqs(a[k], p->mult[i + k], p->sh[0]);
            if (!softmax) {
                y[i + k] = rnn2c_dense_out(p, a[k]);
            }
        }
    }
    if (softmax) {
        rnn2c_softmax_s8(acc, n, y);
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
        w = rnn2c_mac_rows_w(p->w4, w, vec, p->x_groups, rows, acc);
        for (k = 0; k < rows; ++k) {
            const int32_t f = rnn2c_dense_act(rnn2c_rqs(acc[k], p->mult[i + k], p->sh[0]), a);
            y[i + k] = rnn2c_sat_s8(rnn2c_rq(f, &a->out) + p->output_zero_point);
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

/* dst[0 .. n) = src[0 .. n): a plain loop kept from becoming a call to memcpy (RNN2C_KEEP_LOOP).
 * T: int8_t or int16_t. */
#define RNN2C_COPY_BODY                                                                       \
    uint32_t i;                                                                               \
    for (i = 0; i < n; ++i) {                                                                 \
        dst[i] = src[i];                                                                      \
        RNN2C_KEEP_LOOP(dst);                                                                 \
    }

RNN2C_INLINE void rnn2c_copy_s8(int8_t *dst, const int8_t *src, uint32_t n)
{
    RNN2C_COPY_BODY
}

RNN2C_INLINE void rnn2c_copy_s16(int16_t *dst, const int16_t *src, uint32_t n)
{
    RNN2C_COPY_BODY
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

/* ---- Conv1D */

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
        rnn2c_softmax_s8(acc, p->fc.units, y);
    }
}

/* Causal Conv1D over an input S (s8: int8; s16: an int16 recurrent state, zero point 0): the
 * ring holds the last span inputs as int16 vector parts of in4 columns (what rnn2c_vec_<S>
 * makes of them), so the kernels read the taps where they are, without a window copy on the
 * stack. After reset (nothing held) every slot is first set to the zero point: a tap before the
 * first input reads it (Keras' zero padding). Push x; when the step emits,
 * y = activation(W window + b) as the Dense layer computes it and 1 is returned; else 0 and y
 * is untouched. */
#define RNN2C_CONV_BODY(S)                                                                    \
    uint32_t s;                                                                               \
    if (ctr[2] == 0 && p->pad != NULL) {                                                      \
        for (s = 0; s < p->span; ++s) {                                                       \
            rnn2c_conv_pad(p, ring + s * p->in4);                                             \
        }                                                                                     \
    }                                                                                         \
    rnn2c_vec_##S(ring + rnn2c_ring_push(ctr, p->span) * p->in4, x, p->in, p->in4, 0);        \
    if (!rnn2c_ring_due(ctr, p->stride, 1)) {                                                 \
        return 0;                                                                             \
    }                                                                                         \
    rnn2c_conv_rows(p, ring, ctr, acc, y);                                                    \
    return 1

RNN2C_INLINE int rnn2c_conv_s8(const rnn2c_conv_t *p, int16_t *ring, int16_t *ctr, const int8_t *x,
                               int32_t *acc, int8_t *y)
{
    RNN2C_CONV_BODY(s8);
}

RNN2C_INLINE int rnn2c_conv_s16(const rnn2c_conv_t *p, int16_t *ring, int16_t *ctr,
                                const int16_t *x, int32_t *acc, int8_t *y)
{
    RNN2C_CONV_BODY(s16);
}

/* Conv1D over a whole sequence (<name>_run): input rows x[0 .. n) of p->in elements, output
 * rows y[0 .. m) of the filters; output row j reads input rows j * stride + k * dilation - left
 * for its taps k, a row outside [0, n) reading the zero point (Keras' padding); v: the window
 * vector (taps * in4 int16), acc: the filters' int32 scratch. */
#define RNN2C_CONV_SEQ_BODY(S)                                                                \
    int j;                                                                                    \
    uint32_t k;                                                                               \
    for (j = 0; j < m; ++j) {                                                                 \
        for (k = 0; k < p->taps; ++k) {                                                       \
            const int r = j * (int)p->stride + (int)(k * p->dilation) - left;                 \
            if (r >= 0 && r < n) {                                                            \
                rnn2c_vec_##S(v + k * p->in4, x + (size_t)r * p->in, p->in, p->in4, 0);      \
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
    RNN2C_CONV_SEQ_BODY(s8)
}

RNN2C_INLINE void rnn2c_conv_seq_s16(const rnn2c_conv_t *p, const int16_t *x, int n, int left,
                                     int m, int16_t *v, int32_t *acc, int8_t *y)
{
    RNN2C_CONV_SEQ_BODY(s16)
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

/* LayerNormalization of an input S (int8 or int16); scratch: n int32. */
#define RNN2C_LNORM_BODY                                                                      \
    uint32_t i;                                                                               \
    for (i = 0; i < p->n; ++i) {                                                              \
        scratch[i] = (int32_t)x[i] - p->zero_point;                                           \
    }                                                                                         \
    rnn2c_lnorm_core(p, scratch, y);

RNN2C_INLINE void rnn2c_lnorm_s8(const rnn2c_lnorm_t *p, const int8_t *x, int16_t *y,
                                 int32_t *scratch)
{
    RNN2C_LNORM_BODY
}

RNN2C_INLINE void rnn2c_lnorm_s16(const rnn2c_lnorm_t *p, const int16_t *x, int16_t *y,
                                  int32_t *scratch)
{
    RNN2C_LNORM_BODY
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

/* ctx[k] = round(sum_s e_s v[s][k] / sum_s e_s), e_s = min(exp(-(max score - score_s)), 32767)
 * (Q0.15: each fits a 16-bit multiply), over the n >= 1 rows of v ([n][units], int8 Q0.7); q is
 * the int8 Q0.7 query; w holds n int32 (the scores, then the weights); scratch holds units
 * halfwords (rnn2c_dot_prep's form of the query). |sum| < 2^31 for n <= 511 steps (the
 * exporter's limit). */
RNN2C_INLINE void rnn2c_attn_s8(const rnn2c_attn_t *p, const int8_t *q, const int8_t *v, int n,
                                int32_t *w, int32_t *scratch, int8_t *ctx)
{
    const int u = (int)p->units;
    int s;
    int k;
    int32_t top = 0;
    uint32_t total = 0;
    if (p->mode == RNN2C_ATT_DOT) {
        rnn2c_dot_prep(q, u, scratch);
    }
    for (s = 0; s < n; ++s) {
        const int8_t *row = v + (size_t)s * (size_t)u;
        int32_t raw = 0;
        if (p->mode == RNN2C_ATT_DOT) {
            raw = rnn2c_dot_s8(row, q, scratch, u, 0);
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
    if (RNN2C_WSUM4_COLUMNS && (u & 3) == 0) { /* 4 columns at a time over the rows */
        for (k = 0; k < u; k += 4) {
            int32_t a[4];
            int j;
            rnn2c_wsum4(v + k, u, w, n, a);
            for (j = 0; j < 4; ++j) {
                uint32_t mag = a[j] < 0 ? 0u - (uint32_t)a[j] : (uint32_t)a[j];
                mag = rnn2c_udiv_small(mag + total / 2u, total, 8); /* rounded, <= 128 */
                ctx[k + j] = (int8_t)(a[j] < 0 ? -(int32_t)mag : (int32_t)mag);
            }
        }
        return;
    }
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
 * scratch holds cols halfwords (rnn2c_dot_prep's form of x). */
RNN2C_INLINE int32_t rnn2c_argmax_s8(const int8_t *w, const int32_t *bias, int rows, int cols,
                                     const int8_t *x, int32_t *scratch)
{
    int32_t best = 0;
    int32_t top = 0;
    int r;
    rnn2c_dot_prep(x, cols, scratch);
    for (r = 0; r < rows; ++r) {
        const int32_t acc = rnn2c_dot_s8(w + (size_t)r * (size_t)cols, x, scratch, cols, bias[r]);
        if (r == 0 || acc > top) {
            top = acc;
            best = r;
        }
    }
    return best;
}

/* ---------------------------------------------------------------- audio front end: log-mel */

/* A log-mel (or MFCC) front end's tables and constants (export/audio.py, LogMel), which the
 * generated C defines from the front end's parameters. */
typedef struct {
    int window;                /* samples per frame */
    int half;                  /* n_fft / 2: the complex FFT's points */
    int n_mels;
    int n_mfcc;                /* 0: the features are the log-mel bands */
    const int16_t *win;        /* [window] Hann, Q15 */
    const int16_t *cs, *sn;    /* [half] cos, -sin of 2 pi k / n_fft, Q15 */
    const uint16_t *mel_start; /* [n_mels] first FFT bin of each band */
    const uint16_t *mel_count; /* [n_mels] its bins */
    const uint16_t *mel_w;     /* the bands' weights back to back, Q15 (1.0 = 32768) */
    const int16_t *log_table;  /* [64] Q8 log2(1 + (i + 1/2) / 64) */
    const int16_t *dct;        /* [n_mfcc][n_mels] Q15, or NULL */
    int32_t log_offset;        /* Q8: log2 of the integer energy -> of the float one */
    int32_t floor_q8;          /* Q8 log floor */
    int32_t centre;            /* Q8: the log that maps to feature 0, from the floor */
    int step_shift;            /* Q8 -> int8 steps: >> step_shift (1..8), rounded */
} rnn2c_logmel_t;

/* log2(e) in Q8 for e >= 1: the leading one's position by a binary search (what a CLZ does),
 * plus the table entry of the 6 bits after it. */
RNN2C_INLINE int32_t rnn2c_log2_q8(uint64_t e, const int16_t *table)
{
    int msb = 0;
    uint32_t idx;
    uint64_t v = e;
    if (v >> 32) { v >>= 32; msb += 32; }
    if (v >> 16) { v >>= 16; msb += 16; }
    if (v >> 8) { v >>= 8; msb += 8; }
    if (v >> 4) { v >>= 4; msb += 4; }
    if (v >> 2) { v >>= 2; msb += 2; }
    if (v >> 1) { msb += 1; }
    idx = (uint32_t)(msb >= 6 ? e >> (msb - 6) : e << (6 - msb)) & 63u;
    return (int32_t)msb * 256 + table[idx];
}

/* One bin of the real FFT's split, X[k] = (E + W^k O) / 2 with E = (a + b) / 2 and
 * O = (a - b) / 2i for a = Z[k], b = conj Z[half - k]; its power re^2 + im^2. */
RNN2C_INLINE uint32_t rnn2c_rfft_power(int32_t ar, int32_t ai, int32_t br, int32_t bi,
                                       int32_t cw, int32_t sw)
{
    const int32_t er = (ar + br) >> 1, ei = (ai + bi) >> 1;
    const int32_t orr = (ai - bi) >> 1, oi = (br - ar) >> 1;
    const int32_t tr = (orr * cw - oi * sw + (1 << 14)) >> 15;
    const int32_t ti = (orr * sw + oi * cw + (1 << 14)) >> 15;
    const int32_t xr = (er + tr) >> 1, xi = (ei + ti) >> 1;
    const uint32_t ur = (uint32_t)(xr < 0 ? -xr : xr), ui = (uint32_t)(xi < 0 ? -xi : xi);
    return ur * ur + ui * ui;
}

/* One frame of int16 samples -> the front end's int8 features. re, im: scratch of half + 1
 * int32 each; logs: n_mels int32. Integer only: Q15 window, a block shift that brings the
 * frame's peak to [2^14, 2^15), the real FFT (rnn2c_fft_q15 on the even/odd samples as one
 * complex sequence, then the split into half + 1 bins, scaled by 1/2), power, the mel bands
 * (uint64 sums), log2, then the features. export/audio.py (LogMel.features_int) is its twin. */
RNN2C_INLINE void rnn2c_logmel_frame(const rnn2c_logmel_t *p, const int16_t *frame,
                                     int32_t *re, int32_t *im, int32_t *logs, int8_t *out)
{
    const int half = p->half;
    uint32_t *const power = (uint32_t *)re; /* the power overwrites re, bin by bin */
    const int n = p->window; /* <= 2 half */
    uint32_t bits = 0;       /* the OR of every |x|: its leading one is the peak's */
    int shift = 0;
    int i, j, m, pos = 0;
    for (i = 0, j = 0; i < half; ++i) { /* windowed: even samples to re, odd to im, at the
                                         * bit-reversed index j of i */
        const int t = 2 * i;
        const int32_t x0 = t < n ? ((int32_t)frame[t] * p->win[t] + (1 << 14)) >> 15 : 0;
        const int32_t x1 =
            t + 1 < n ? ((int32_t)frame[t + 1] * p->win[t + 1] + (1 << 14)) >> 15 : 0;
        int k = half >> 1;
        re[j] = x0;
        im[j] = x1;
        bits |= (uint32_t)(x0 < 0 ? -x0 : x0) | (uint32_t)(x1 < 0 ? -x1 : x1);
        while (k >= 1 && k <= j) {
            j -= k;
            k >>= 1;
        }
        j += k;
    }
    if (bits > 0) {
        while ((bits << shift) < (1u << 14)) {
            ++shift;
        }
        for (i = 0; i < half; ++i) { /* the block shift: the peak to [2^14, 2^15) */
            re[i] *= (int32_t)1 << shift;
            im[i] *= (int32_t)1 << shift;
        }
    }
    rnn2c_fft_q15(re, im, half, p->cs, p->sn);
    re[half] = re[0];
    im[half] = im[0];
    for (i = 0; i <= half / 2; ++i) { /* the split, from both ends, and the power */
        const int k2 = half - i;
        const int32_t ar = re[i], ai = im[i], br = re[k2], bi = im[k2];
        const uint32_t p0 = rnn2c_rfft_power(ar, ai, br, -bi, p->cs[i], p->sn[i]);
        if (i != k2) {
            const int32_t cw = k2 == half ? -32767 : p->cs[k2];
            const int32_t sw = k2 == half ? 0 : p->sn[k2];
            power[k2] = rnn2c_rfft_power(br, bi, ar, -ai, cw, sw);
        }
        power[i] = p0;
    }
    for (m = 0; m < p->n_mels; ++m) {
        const uint64_t e = rnn2c_mel_u64(power + p->mel_start[m], p->mel_w + pos, p->mel_count[m]);
        pos += p->mel_count[m];
        if (e == 0) {
            logs[m] = p->floor_q8;
        } else {
            int32_t l = rnn2c_log2_q8(e, p->log_table) + p->log_offset - 512 * shift;
            logs[m] = l > p->floor_q8 ? l : p->floor_q8;
        }
        logs[m] -= p->floor_q8 + p->centre;
    }
    for (m = 0; m < (p->n_mfcc ? p->n_mfcc : p->n_mels); ++m) {
        int32_t v = logs[m];
        if (p->n_mfcc) {
            int32_t acc = 0;
            for (j = 0; j < p->n_mels; ++j) {
                acc += p->dct[m * p->n_mels + j] * logs[j];
            }
            v = (acc + (1 << 14)) >> 15;
        }
        out[m] = rnn2c_sat_s8((v + (1 << (p->step_shift - 1))) >> p->step_shift);
    }
}

/* The front end's running mean (LogMel.subtract_mean, mean_hops): each int8 feature minus its
 * causal running mean, in place. mean: [n] Q8 means; hops: the hops seen, up to max_hops (the
 * mean of every hop since the reset, then an exponential average of weight 1 / max_hops);
 * recip: [max_hops] round(2^14 / c). |x * 256 - mean| < 2^16, so the product fits in int32. */
RNN2C_INLINE void rnn2c_subtract_mean_s8(int8_t *x, int32_t *mean, int32_t *hops, int n,
                                         int32_t max_hops, const int16_t *recip)
{
    int32_t r;
    int i;
    if (*hops < max_hops) {
        ++*hops;
    }
    r = recip[*hops - 1];
    for (i = 0; i < n; ++i) {
        const int32_t v = (int32_t)x[i] * 256;
        mean[i] += ((v - mean[i]) * r + (1 << 13)) >> 14;
        x[i] = rnn2c_sat_s8((v - mean[i] + 128) >> 8);
    }
}

#endif /* RNN2C_RUNTIME_H */
