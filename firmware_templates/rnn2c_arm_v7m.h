/*
 * rnn2c_arm_v7m.h - the ARMv7-M kernels of rnn2c_runtime.h (Cortex-M3, and the parts of
 * ARMv7E-M / ARMv8-M Mainline cores that rnn2c_arm_dsp.h builds on). rnn2c_runtime.h includes
 * it for a Thumb-2 target without DSP (and without RNN2C_PORTABLE), rnn2c_arm_dsp.h for one
 * with; not a header of its own. Names: rnn2c_v7m_*, RNN2C_V7M_*; each kernel is aliased to
 * its public name, the others stay the reference ones (rnn2c_ref.h).
 *
 *   rnn2c_sat_s16, _sat_s8, _sat17   one SSAT (gcc does not find it for every clamp on its own)
 *   rnn2c_gru_pair_acc               the rows of two GRU units in one pass, in assembly (gcc,
 *                                    optimized builds, cores without DSP: RNN2C_V7M_ASM);
 *                                    RNN2C_GRU_PAIRS 1
 */
#ifndef RNN2C_ARM_V7M_H
#define RNN2C_ARM_V7M_H

#define RNN2C_ISA_ARMV7M 1

#if defined(__GNUC__) && defined(__ARM_FEATURE_SAT)
#define RNN2C_V7M_SSAT(bits, x)                                                               \
    do {                                                                                      \
        __asm__("ssat %0, #" #bits ", %1" : "=r"(x) : "r"(x));                                \
    } while (0)

RNN2C_INLINE int32_t rnn2c_v7m_sat_s16(int32_t x)
{
    RNN2C_V7M_SSAT(16, x);
    return x;
}

RNN2C_INLINE int8_t rnn2c_v7m_sat_s8(int32_t x)
{
    RNN2C_V7M_SSAT(8, x);
    return (int8_t)x;
}

RNN2C_INLINE int32_t rnn2c_v7m_sat17(int32_t x)
{
    RNN2C_V7M_SSAT(17, x);
    return x;
}

#define rnn2c_sat_s16 rnn2c_v7m_sat_s16
#define rnn2c_sat_s8 rnn2c_v7m_sat_s8
#define rnn2c_sat17 rnn2c_v7m_sat17
#endif

#if !defined(__ARM_FEATURE_DSP) && defined(__arm__) && defined(__thumb2__) &&                  \
    defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__)
/* The GRU (reset_after=1) two units per pass, 6 rows (z, r, candidate of unit j through wa, of
 * unit j + 1 through wb, which points one unit's block further into the same layout), so every
 * vector element is loaded once (LDRSH) for 6 rows; per row and column one LDRSB of the weight
 * byte at its place in the (c0, c2, c1, c3) word and one MLA. The last loads of a group
 * post-increment the pointers: 54 instructions per group of 4 columns and 6 rows, loop
 * included. */
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
/* rnn2c_gru_pair_acc: one loop for both parts (one copy of the code): when the input part
 * ends, the candidate accumulators are swapped with their recurrent twins, kept in memory
 * meanwhile (11 instructions per pair of units). */
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
#define rnn2c_gru_pair_acc rnn2c_v7m_gru_pair_acc
#define RNN2C_GRU_PAIRS 1
#endif

#endif /* RNN2C_ARM_V7M_H */
