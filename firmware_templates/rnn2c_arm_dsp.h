/*
 * rnn2c_arm_dsp.h - the ARM DSP kernels of rnn2c_runtime.h (__ARM_FEATURE_DSP: Cortex-M4, M7,
 * M33/M35P/M55/M85 with the DSP extension; SMLAD, SXTB16). rnn2c_runtime.h includes it where
 * the compiler defines __ARM_FEATURE_DSP (and RNN2C_PORTABLE is not defined); not a header of
 * its own. It builds on rnn2c_arm_v7m.h (SSAT). Names: rnn2c_dsp_*, RNN2C_DSP_*; each kernel
 * is aliased to its public name, the others stay the reference ones (rnn2c_ref.h).
 *
 * The multiply-accumulate kernels read the shared layout's weight words (c0, c2, c1, c3):
 * SXTB16 gives the pair (c0, c1) from bytes 0 and 2, SXTB16 ROR 8 the pair (c2, c3), which
 * match the vector's word pairs (v0, v1) and (v2, v3) for SMLAD.
 *
 *   rnn2c_interp_s16        one word load of (lo, hi) and one SMLAD (gcc, little-endian)
 *   rnn2c_mac1..4           in Thumb-2 assembly (gcc, clang; optimized builds:
 *                           RNN2C_DSP_ASM), else in C with the ACLE intrinsics
 *   rnn2c_mac_rows_small    one group per iteration (RNN2C_DSP_ASM)
 *   rnn2c_mac1_s4..4_s4     int4 weights in Thumb-2 assembly (optimized gcc/clang builds; else
 *                           the reference's shifts)
 *   rnn2c_dot_prep, _dot_s8 int8 dot products as SMLAD over int16 pairs (attention, argmax)
 *   rnn2c_wsum4             4 weighted columns per row word (SMLABB / SMLATB)
 */
#ifndef RNN2C_ARM_DSP_H
#define RNN2C_ARM_DSP_H

#include <arm_acle.h>

#include "rnn2c_arm_v7m.h"

#define RNN2C_ISA_ARM_DSP 1

/* The kernels read the weight words little-endian. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rnn2c_arm_dsp.h: the DSP kernels expect a little-endian target"
#endif
#endif

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* lo * (2^step_bits - frac) + hi * frac + 2^(step_bits-1), shifted: the same integer as the
 * reference's (lo * 2^step_bits is a multiple of the divisor). */
RNN2C_INLINE int32_t rnn2c_dsp_interp_s16(const int16_t *table, int32_t a, int step_bits)
{
    uint32_t pair;
    const int32_t frac = a & (((int32_t)1 << step_bits) - 1);
    __builtin_memcpy(&pair, table + (a >> step_bits), 4);
    return __smlad((int32_t)pair,
                   (int32_t)(((uint32_t)frac << 16) | (uint32_t)(((int32_t)1 << step_bits) - frac)),
                   (int32_t)1 << (step_bits - 1)) >>
           step_bits;
}
#define rnn2c_interp_s16 rnn2c_dsp_interp_s16
#endif

#if defined(__GNUC__) && defined(__OPTIMIZE__)
/* The loop in Thumb-2 assembly (gcc, clang; optimized builds): per group of 4 columns the
 * input pairs are loaded once (LDRD), two weight words per LDRD, SXTB16 in its ROR 8 form (which
 * compilers do not fold on their own) and SMLAD; no register shuffling between groups. */
#define RNN2C_DSP_ASM_X "ldrd %[x01], %[x23], [%[v]], #8\n\t"
#define RNN2C_DSP_ASM_W2 "ldrd %[w0], %[w1], [%[w]], #8\n\t"
#define RNN2C_DSP_ASM_W1 "ldr %[w0], [%[w]], #4\n\t"
#define RNN2C_DSP_ASM_ROW(s, wk)                                                              \
    "sxtb16 %[t], %[" wk "]\n\t"                                                             \
    "smlad %[" s "], %[t], %[x01], %[" s "]\n\t"                                             \
    "sxtb16 %[t], %[" wk "], ror #8\n\t"                                                     \
    "smlad %[" s "], %[t], %[x23], %[" s "]\n\t"
#define RNN2C_DSP_ASM_LOOP(body, ...)                                                         \
    do {                                                                                      \
        uint32_t x01;                                                                         \
        uint32_t x23;                                                                         \
        uint32_t w0;                                                                          \
        uint32_t w1;                                                                          \
        uint32_t t;                                                                           \
        if (groups & 1u) { /* one group, then pairs: half the loop overhead */                \
            __asm__(RNN2C_DSP_ASM_X body                                                      \
                    : __VA_ARGS__, [v] "+r"(v), [w] "+r"(w), [x01] "=&r"(x01),                \
                      [x23] "=&r"(x23), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)          \
                    :                                                                         \
                    : "memory");                                                              \
        }                                                                                     \
        groups >>= 1;                                                                         \
        if (groups == 1) { /* one pair (a constant in generated code): no loop */             \
            __asm__(RNN2C_DSP_ASM_X body RNN2C_DSP_ASM_X body                                  \
                    : __VA_ARGS__, [v] "+r"(v), [w] "+r"(w), [x01] "=&r"(x01),                \
                      [x23] "=&r"(x23), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)          \
                    :                                                                         \
                    : "memory");                                                              \
        } else if (groups != 0) {                                                             \
            __asm__("1:\n\t" RNN2C_DSP_ASM_X body RNN2C_DSP_ASM_X body                        \
                    "subs %[n], %[n], #1\n\t"                                                \
                    "bne 1b\n\t"                                                              \
                    : __VA_ARGS__, [v] "+r"(v), [w] "+r"(w), [n] "+r"(groups),                \
                      [x01] "=&r"(x01), [x23] "=&r"(x23), [w0] "=&r"(w0), [w1] "=&r"(w1),     \
                      [t] "=&r"(t)                                                            \
                    :                                                                         \
                    : "memory", "cc");                                                        \
        }                                                                                     \
        (void)w1;                                                                             \
    } while (0)
/* One group per iteration: half the code of the loop above, 2 instructions more per 2 groups;
 * for a Dense layer of one pass (a classifier head), where the code matters more. */
#define RNN2C_DSP_ASM_LOOP1(body, ...)                                                        \
    do {                                                                                      \
        uint32_t x01;                                                                         \
        uint32_t x23;                                                                         \
        uint32_t w0;                                                                          \
        uint32_t w1;                                                                          \
        uint32_t t;                                                                           \
        if (groups != 0) {                                                                    \
            __asm__("1:\n\t" RNN2C_DSP_ASM_X body "subs %[n], %[n], #1\n\t"                  \
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

RNN2C_INLINE const int8_t *rnn2c_dsp_mac4(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    int32_t s3 = *a3;
    RNN2C_DSP_ASM_LOOP(RNN2C_DSP_ASM_W2 RNN2C_DSP_ASM_ROW("s0", "w0") RNN2C_DSP_ASM_ROW("s1", "w1")
                           RNN2C_DSP_ASM_W2 RNN2C_DSP_ASM_ROW("s2", "w0")
                               RNN2C_DSP_ASM_ROW("s3", "w1"),
                       [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_dsp_mac3(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0, int32_t *a1, int32_t *a2)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    RNN2C_DSP_ASM_LOOP(RNN2C_DSP_ASM_W2 RNN2C_DSP_ASM_ROW("s0", "w0") RNN2C_DSP_ASM_ROW("s1", "w1")
                           RNN2C_DSP_ASM_W1 RNN2C_DSP_ASM_ROW("s2", "w0"),
                       [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_dsp_mac2(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    RNN2C_DSP_ASM_LOOP(RNN2C_DSP_ASM_W2 RNN2C_DSP_ASM_ROW("s0", "w0") RNN2C_DSP_ASM_ROW("s1", "w1"),
                       [s0] "+r"(s0), [s1] "+r"(s1));
    *a0 = s0;
    *a1 = s1;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_dsp_mac1(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0)
{
    int32_t s0 = *a0;
    RNN2C_DSP_ASM_LOOP(RNN2C_DSP_ASM_W1 RNN2C_DSP_ASM_ROW("s0", "w0"), [s0] "+r"(s0));
    *a0 = s0;
    return w;
}

/* rnn2c_mac_rows with the one-group loop (RNN2C_DSP_ASM_LOOP1). */
RNN2C_INLINE const int8_t *rnn2c_dsp_mac_rows_small(const int8_t *w, const int16_t *v,
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
        RNN2C_DSP_ASM_LOOP1(RNN2C_DSP_ASM_W2 RNN2C_DSP_ASM_ROW("s0", "w0")
                                RNN2C_DSP_ASM_ROW("s1", "w1") RNN2C_DSP_ASM_W2
                                    RNN2C_DSP_ASM_ROW("s2", "w0") RNN2C_DSP_ASM_ROW("s3", "w1"),
                            [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3));
        a[1] = s1;
        a[2] = s2;
        a[3] = s3;
        break;
    case 3:
        s1 = a[1];
        s2 = a[2];
        RNN2C_DSP_ASM_LOOP1(RNN2C_DSP_ASM_W2 RNN2C_DSP_ASM_ROW("s0", "w0")
                                RNN2C_DSP_ASM_ROW("s1", "w1") RNN2C_DSP_ASM_W1
                                    RNN2C_DSP_ASM_ROW("s2", "w0"),
                            [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2));
        a[1] = s1;
        a[2] = s2;
        break;
    case 2:
        s1 = a[1];
        RNN2C_DSP_ASM_LOOP1(RNN2C_DSP_ASM_W2 RNN2C_DSP_ASM_ROW("s0", "w0")
                                RNN2C_DSP_ASM_ROW("s1", "w1"),
                            [s0] "+r"(s0), [s1] "+r"(s1));
        a[1] = s1;
        break;
    default:
        RNN2C_DSP_ASM_LOOP1(RNN2C_DSP_ASM_W1 RNN2C_DSP_ASM_ROW("s0", "w0"), [s0] "+r"(s0));
        break;
    }
    a[0] = s0;
    return w;
}
#define rnn2c_mac_rows_small rnn2c_dsp_mac_rows_small

#else
/* In C with the ACLE intrinsics (unoptimized builds, compilers without gcc's assembly). */
/* acc += w.c0 * x.v0 + w.c1 * x.v1 (SXTB16: bytes 0, 2) + w.c2 * v2 + w.c3 * v3 (ROR 8). */
#define RNN2C_DSP_GROUP                                                                       \
    const int32_t x01 = (int32_t)rnn2c_ld32(v);                                               \
    const int32_t x23 = (int32_t)rnn2c_ld32(v + 2)
#define RNN2C_DSP_ROW(acc, wp)                                                                \
    do {                                                                                      \
        const uint32_t w_ = rnn2c_ld32(wp);                                                   \
        (acc) = __smlad(__sxtb16((int32_t)w_), x01, (acc));                                   \
        (acc) = __smlad(__sxtb16((int32_t)((w_ >> 8) | (w_ << 24))), x23, (acc));            \
    } while (0)

RNN2C_MAC_KERNELS(rnn2c_dsp_mac, RNN2C_DSP_GROUP, RNN2C_DSP_ROW)
#endif

#define rnn2c_mac4 rnn2c_dsp_mac4
#define rnn2c_mac3 rnn2c_dsp_mac3
#define rnn2c_mac2 rnn2c_dsp_mac2
#define rnn2c_mac1 rnn2c_dsp_mac1

#if defined(__GNUC__) && defined(__OPTIMIZE__)
/* int4 weights (rnn2c_macR_s4's layout, rnn2c_ref.h) in Thumb-2 assembly: for each pair of
 * groups, first the low nibbles of every row (AND of the word shifted left by 4 with
 * 0xF0F0F0F0, SXTB16 and SXTB16 ROR 8, two SMLAD against (v0, v1), (v2, v3)), then the high
 * ones (AND of the word, against (v4, v5), (v6, v7)): 6 instructions per 4 MACs of a row, and
 * only two vector words and two temporaries live. The sums are 16 times the products; they
 * start at 0 and are added, shifted right by 4, to the accumulators after the pass (exact: the
 * exporter keeps 16 times a row's largest sum of products below 2^31). */
#define RNN2C_DSP_S4_LO(s, off)                                                               \
    "ldr %[q], [%[w], #" off "]\n\t"                                                         \
    "and %[t], %[m], %[q], lsl #4\n\t"                                                       \
    "sxtb16 %[q], %[t], ror #8\n\t"                                                          \
    "sxtb16 %[t], %[t]\n\t"                                                                  \
    "smlad %[" s "], %[t], %[x01], %[" s "]\n\t"                                             \
    "smlad %[" s "], %[q], %[x23], %[" s "]\n\t"
#define RNN2C_DSP_S4_HI(s, off)                                                               \
    "ldr %[q], [%[w], #" off "]\n\t"                                                         \
    "and %[q], %[q], %[m]\n\t"                                                               \
    "sxtb16 %[t], %[q], ror #8\n\t"                                                          \
    "sxtb16 %[q], %[q]\n\t"                                                                  \
    "smlad %[" s "], %[q], %[x01], %[" s "]\n\t"                                             \
    "smlad %[" s "], %[t], %[x23], %[" s "]\n\t"
#define RNN2C_DSP_S4_LOOP(lo, hi, step, ...)                                                  \
    do {                                                                                      \
        uint32_t x01;                                                                         \
        uint32_t x23;                                                                         \
        uint32_t q;                                                                           \
        uint32_t t;                                                                           \
        uint32_t n = groups >> 1;                                                             \
        const uint32_t m = 0xF0F0F0F0u;                                                       \
        if (n != 0) {                                                                         \
            __asm__("1:\n\t"                                                                  \
                    "ldrd %[x01], %[x23], [%[v]], #8\n\t" lo                                  \
                    "ldrd %[x01], %[x23], [%[v]], #8\n\t" hi                                  \
                    "add %[w], %[w], #" step "\n\t"                                          \
                    "subs %[n], %[n], #1\n\t"                                                \
                    "bne 1b\n\t"                                                              \
                    : __VA_ARGS__, [v] "+r"(v), [w] "+r"(w), [n] "+r"(n), [x01] "=&r"(x01),   \
                      [x23] "=&r"(x23), [q] "=&r"(q), [t] "=&r"(t)                            \
                    : [m] "r"(m)                                                              \
                    : "memory", "cc");                                                        \
        }                                                                                     \
        if (groups & 1u) { /* the last odd group: the low nibbles */                          \
            __asm__("ldrd %[x01], %[x23], [%[v]]\n\t" lo                                      \
                    "add %[w], %[w], #" step "\n\t"                                          \
                    : __VA_ARGS__, [w] "+r"(w), [x01] "=&r"(x01), [x23] "=&r"(x23),           \
                      [q] "=&r"(q), [t] "=&r"(t)                                              \
                    : [m] "r"(m), [v] "r"(v)                                                  \
                    : "memory");                                                              \
        }                                                                                     \
    } while (0)

RNN2C_INLINE const int8_t *rnn2c_dsp_mac4_s4(const int8_t *w, const int16_t *v, uint32_t groups,
                                             int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t s0 = 0;
    int32_t s1 = 0;
    int32_t s2 = 0;
    int32_t s3 = 0;
    RNN2C_DSP_S4_LOOP(RNN2C_DSP_S4_LO("s0", "0") RNN2C_DSP_S4_LO("s1", "4")
                          RNN2C_DSP_S4_LO("s2", "8") RNN2C_DSP_S4_LO("s3", "12"),
                      RNN2C_DSP_S4_HI("s0", "0") RNN2C_DSP_S4_HI("s1", "4")
                          RNN2C_DSP_S4_HI("s2", "8") RNN2C_DSP_S4_HI("s3", "12"),
                      "16", [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3));
    *a0 += s0 >> 4;
    *a1 += s1 >> 4;
    *a2 += s2 >> 4;
    *a3 += s3 >> 4;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_dsp_mac3_s4(const int8_t *w, const int16_t *v, uint32_t groups,
                                             int32_t *a0, int32_t *a1, int32_t *a2)
{
    int32_t s0 = 0;
    int32_t s1 = 0;
    int32_t s2 = 0;
    RNN2C_DSP_S4_LOOP(RNN2C_DSP_S4_LO("s0", "0") RNN2C_DSP_S4_LO("s1", "4")
                          RNN2C_DSP_S4_LO("s2", "8"),
                      RNN2C_DSP_S4_HI("s0", "0") RNN2C_DSP_S4_HI("s1", "4")
                          RNN2C_DSP_S4_HI("s2", "8"),
                      "12", [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2));
    *a0 += s0 >> 4;
    *a1 += s1 >> 4;
    *a2 += s2 >> 4;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_dsp_mac2_s4(const int8_t *w, const int16_t *v, uint32_t groups,
                                             int32_t *a0, int32_t *a1)
{
    int32_t s0 = 0;
    int32_t s1 = 0;
    RNN2C_DSP_S4_LOOP(RNN2C_DSP_S4_LO("s0", "0") RNN2C_DSP_S4_LO("s1", "4"),
                      RNN2C_DSP_S4_HI("s0", "0") RNN2C_DSP_S4_HI("s1", "4"), "8",
                      [s0] "+r"(s0), [s1] "+r"(s1));
    *a0 += s0 >> 4;
    *a1 += s1 >> 4;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_dsp_mac1_s4(const int8_t *w, const int16_t *v, uint32_t groups,
                                             int32_t *a0)
{
    int32_t s0 = 0;
    RNN2C_DSP_S4_LOOP(RNN2C_DSP_S4_LO("s0", "0"), RNN2C_DSP_S4_HI("s0", "0"), "4",
                      [s0] "+r"(s0));
    *a0 += s0 >> 4;
    return w;
}

#define rnn2c_mac4_s4 rnn2c_dsp_mac4_s4
#define rnn2c_mac3_s4 rnn2c_dsp_mac3_s4
#define rnn2c_mac2_s4 rnn2c_dsp_mac2_s4
#define rnn2c_mac1_s4 rnn2c_dsp_mac1_s4
#endif

/* x[0 .. n & ~3) as int16 pairs for SMLAD against a word of 4 int8 (a0 a1 a2 a3): SXTB16 gives
 * (a0, a2), SXTB16 ROR 8 (a1, a3), so the pairs are (x0, x2), (x1, x3) per 4. */
RNN2C_INLINE void rnn2c_dsp_dot_prep(const int8_t *x, int n, int32_t *pairs)
{
    const int head = n & ~3;
    int g;
    for (g = 0; g < head; g += 4) {
        pairs[g / 2] = (int32_t)(((uint32_t)(uint16_t)x[g]) | ((uint32_t)(uint16_t)x[g + 2] << 16));
        pairs[g / 2 + 1] =
            (int32_t)(((uint32_t)(uint16_t)x[g + 1]) | ((uint32_t)(uint16_t)x[g + 3] << 16));
    }
}

/* acc + sum a[k] x[k]: the groups of 4 as two SMLAD against the pairs, the rest in C. */
RNN2C_INLINE int32_t rnn2c_dsp_dot_s8(const int8_t *a, const int8_t *x, const int32_t *pairs,
                                      int n, int32_t acc)
{
    const int head = n & ~3; /* the columns in whole groups of 4 */
    int g;
    for (g = 0; g < head; g += 4) {
        const uint32_t w = rnn2c_ld32(a + g);
        acc = __smlad(__sxtb16((int32_t)w), pairs[g / 2], acc);
        acc = __smlad(__sxtb16((int32_t)((w >> 8) | (w << 24))), pairs[g / 2 + 1], acc);
    }
    for (; g < n; ++g) {
        acc += (int32_t)a[g] * x[g];
    }
    return acc;
}

/* 4 columns at a time over the rows: one word of each row, 4 multiplies (the weights fit the
 * halfword SMLABB / SMLATB read). */
RNN2C_INLINE void rnn2c_dsp_wsum4(const int8_t *v, int stride, const int32_t *w, int n,
                                  int32_t *s)
{
    int32_t a0 = 0;
    int32_t a1 = 0;
    int32_t a2 = 0;
    int32_t a3 = 0;
    int r;
    for (r = 0; r < n; ++r) {
        const uint32_t x = rnn2c_ld32(v + (size_t)r * (size_t)stride);
        const int32_t x02 = __sxtb16((int32_t)x);
        const int32_t x13 = __sxtb16((int32_t)((x >> 8) | (x << 24)));
        a0 = __smlabb(x02, w[r], a0);
        a2 = __smlatb(x02, w[r], a2);
        a1 = __smlabb(x13, w[r], a1);
        a3 = __smlatb(x13, w[r], a3);
    }
    s[0] = a0;
    s[1] = a1;
    s[2] = a2;
    s[3] = a3;
}

#define rnn2c_dot_prep rnn2c_dsp_dot_prep
#define rnn2c_dot_s8 rnn2c_dsp_dot_s8
#define rnn2c_wsum4 rnn2c_dsp_wsum4
#define RNN2C_WSUM4_COLUMNS 1

#endif /* RNN2C_ARM_DSP_H */
