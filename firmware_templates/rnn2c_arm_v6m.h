/*
 * rnn2c_arm_v6m.h - the ARMv6-M kernels of rnn2c_runtime.h (Cortex-M0, M0+, M1, M23: Thumb-1,
 * no divide instruction, no DSP). rnn2c_runtime.h includes it for a Thumb target without
 * Thumb-2 (and without RNN2C_PORTABLE); not a header of its own. Names: rnn2c_v6m_*,
 * RNN2C_V6M_*; each kernel is aliased to its public name, the others stay the reference ones
 * (rnn2c_ref.h).
 *
 *   rnn2c_udiv_small   compare-and-subtract steps instead of a call to libgcc's __aeabi_uidiv
 *                      (its frame adds to the stack, its code to flash)
 *   RNN2C_SIGNED       a compare and a branch over NEGS (fewer than the reference's two
 *                      data-processing instructions, whose shifted operand Thumb-1 lacks)
 *   rnn2c_mac1..4      in assembly (gcc -O1 and up, RNN2C_V6M_ASM), else in C with one word
 *                      load per row and group
 *   rnn2c_mac1_s4..4_s4  int4 weights in assembly (the same builds), else the reference's C
 *   rnn2c_mel_u64      each uint32 x uint16 product as two 32-bit ones (Thumb-1 has no long
 *                      multiply: the reference's uint64 product is a call to __aeabi_lmul)
 */
#ifndef RNN2C_ARM_V6M_H
#define RNN2C_ARM_V6M_H

#define RNN2C_ISA_ARMV6M 1

/* num / den where the quotient is below 2^bits: `bits` compare-and-subtract steps. */
RNN2C_INLINE uint32_t rnn2c_v6m_udiv_small(uint32_t num, uint32_t den, int bits)
{
    uint32_t q = 0;
    int i;
    for (i = bits - 1; i >= 0; --i) {
        if ((num >> i) >= den) { /* num >= den * 2^i, so den << i does not overflow */
            num -= den << i;
            q |= (uint32_t)1 << i;
        }
    }
    return q;
}

#define rnn2c_udiv_small rnn2c_v6m_udiv_small

/* A mel band's energy, sum of power[k] * w[k]: power = hi * 2^16 + lo, so each product is
 * hi * w * 2^16 + lo * w, hi * w and lo * w uint32 (16 bits by 16); the two sums are kept
 * apart in uint64 (additions only) and joined at the end. */
RNN2C_INLINE uint64_t rnn2c_v6m_mel_u64(const uint32_t *power, const uint16_t *w, int n)
{
    uint64_t hi = 0, lo = 0;
    int k;
    for (k = 0; k < n; ++k) {
        hi += (power[k] >> 16) * (uint32_t)w[k];
        lo += (power[k] & 0xFFFFu) * (uint32_t)w[k];
    }
    return (hi << 16) + lo;
}

#define rnn2c_mel_u64 rnn2c_v6m_mel_u64

#define RNN2C_SIGNED(y, x) ((x) < 0 ? -(y) : (y))

#if defined(__arm__) && defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__) &&     \
    !defined(__OPTIMIZE_SIZE__) && defined(__BYTE_ORDER__) &&                                 \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* In assembly (gcc -O1 and up; gcc -Os keeps r8-r11 out of allocation on Thumb-1, and clang
 * runs out of registers for the operands (clang 14: "inline assembly requires more registers
 * than available"), so there the C loops below are used). Per group the four vector elements
 * are loaded once into low registers (one word holds v0, v1; SXTH and ASRS #16 split it) and
 * kept there for every row of the pass; per row one weight word, whose bytes (c0, c2, c1, c3)
 * are taken out of the register (SXTB for c0, ASRS #24 for c3, then REV16 turns it into
 * (c2, c0, c3, c1) and SXTB, ASRS #24 give c2, c1: 5 instructions for the 4 bytes),
 * multiplied (MULS) and added into the row's sum, which lives in a high register (ADD reaches
 * them). */
#define RNN2C_V6M_GROUP /* v in a high register: 7 low ones are in use */                  \
    "mov %[t], %[v]\n\t"                                                                     \
    "ldr %[x1], [%[t]]\n\t"                                                                  \
    "ldr %[x3], [%[t], #4]\n\t"                                                              \
    "adds %[t], #8\n\t"                                                                      \
    "mov %[v], %[t]\n\t"                                                                     \
    "sxth %[x0], %[x1]\n\t"                                                                  \
    "asrs %[x1], %[x1], #16\n\t"                                                             \
    "sxth %[x2], %[x3]\n\t"                                                                  \
    "asrs %[x3], %[x3], #16\n\t"
#define RNN2C_V6M_ROW(s, off)                                                                 \
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
#define RNN2C_V6M_ACC "+h"
/* gcc reads Thumb-1 inline assembly in divided syntax unless told otherwise */
#define RNN2C_V6M_UNIFIED ".syntax unified\n\t"
#define RNN2C_V6M_RESTORE ".syntax divided\n\t"
#define RNN2C_V6M_LOOP(rows, body, ...)                                                       \
    do {                                                                                      \
        int32_t x0;                                                                           \
        int32_t x1;                                                                           \
        int32_t x2;                                                                           \
        int32_t x3;                                                                           \
        uint32_t t;                                                                           \
        uint32_t b;                                                                           \
        const int8_t *const end = w + (size_t)groups * (4 * (rows));                          \
        if (groups != 0) {                                                                    \
            __asm__(RNN2C_V6M_UNIFIED "1:\n\t" RNN2C_V6M_GROUP body                           \
                    "adds %[w], #" #rows "*4\n\t"                                            \
                    "cmp %[w], %[end]\n\t"                                                   \
                    "bne 1b\n\t" RNN2C_V6M_RESTORE                                           \
                    : __VA_ARGS__, [v] "+h"(v), [w] "+l"(w), [x0] "=&l"(x0), [x1] "=&l"(x1), \
                      [x2] "=&l"(x2), [x3] "=&l"(x3), [t] "=&l"(t), [b] "=&l"(b)             \
                    : [end] "r"(end)                                                          \
                    : "memory", "cc");                                                        \
        }                                                                                     \
    } while (0)
#define RNN2C_V6M_ASM 1

RNN2C_INLINE const int8_t *rnn2c_v6m_mac4(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    int32_t s3 = *a3;
    RNN2C_V6M_LOOP(4,
                   RNN2C_V6M_ROW("s0", "0") RNN2C_V6M_ROW("s1", "4") RNN2C_V6M_ROW("s2", "8")
                       RNN2C_V6M_ROW("s3", "12"),
                   [s0] RNN2C_V6M_ACC(s0), [s1] RNN2C_V6M_ACC(s1), [s2] RNN2C_V6M_ACC(s2),
                   [s3] RNN2C_V6M_ACC(s3));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_v6m_mac3(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0, int32_t *a1, int32_t *a2)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    RNN2C_V6M_LOOP(3,
                   RNN2C_V6M_ROW("s0", "0") RNN2C_V6M_ROW("s1", "4") RNN2C_V6M_ROW("s2", "8"),
                   [s0] RNN2C_V6M_ACC(s0), [s1] RNN2C_V6M_ACC(s1), [s2] RNN2C_V6M_ACC(s2));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_v6m_mac2(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    RNN2C_V6M_LOOP(2, RNN2C_V6M_ROW("s0", "0") RNN2C_V6M_ROW("s1", "4"), [s0] RNN2C_V6M_ACC(s0),
                   [s1] RNN2C_V6M_ACC(s1));
    *a0 = s0;
    *a1 = s1;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_v6m_mac1(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0)
{
    int32_t s0 = *a0;
    RNN2C_V6M_LOOP(1, RNN2C_V6M_ROW("s0", "0"), [s0] RNN2C_V6M_ACC(s0));
    *a0 = s0;
    return w;
}
#define rnn2c_mac4 rnn2c_v6m_mac4
#define rnn2c_mac3 rnn2c_v6m_mac3
#define rnn2c_mac2 rnn2c_v6m_mac2
#define rnn2c_mac1 rnn2c_v6m_mac1

/* int4 weights (rnn2c_macR_s4's layout, rnn2c_ref.h): per pair of groups the first group's
 * elements (RNN2C_V6M_GROUP) against each row's low nibbles (columns 0..3: nibbles 0, 4, 2, 6),
 * then the second group's against the high ones (nibbles 1, 5, 3, 7), the word loaded once per
 * half; per nibble LSLS to the top, ASRS by 28 (the top nibble: ASRS alone), MULS, ADD into the
 * row's high register. */
#define RNN2C_V6M_S4_NIB(s, sh, x)                                                            \
    "lsls %[b], %[t], #" #sh "\n\t"                                                          \
    "asrs %[b], %[b], #28\n\t"                                                               \
    "muls %[b], %[" #x "], %[b]\n\t"                                                         \
    "add %[" s "], %[b]\n\t"
#define RNN2C_V6M_S4_LO(s, off)                                                               \
    "ldr %[t], [%[w], #" off "]\n\t" RNN2C_V6M_S4_NIB(s, 28, x0) RNN2C_V6M_S4_NIB(s, 12, x1)  \
        RNN2C_V6M_S4_NIB(s, 20, x2) RNN2C_V6M_S4_NIB(s, 4, x3)
#define RNN2C_V6M_S4_HI(s, off)                                                               \
    "ldr %[t], [%[w], #" off "]\n\t" RNN2C_V6M_S4_NIB(s, 24, x0) RNN2C_V6M_S4_NIB(s, 8, x1)   \
        RNN2C_V6M_S4_NIB(s, 16, x2) "asrs %[b], %[t], #28\n\t"                                \
                                    "muls %[b], %[x3], %[b]\n\t"                             \
                                    "add %[" s "], %[b]\n\t"
/* The loop's way back: BNE reaches 256 bytes; 4 rows' body is longer (BEQ over a B). */
#define RNN2C_V6M_S4_BACK1 "bne 1b\n\t"
#define RNN2C_V6M_S4_BACK2 RNN2C_V6M_S4_BACK1
#define RNN2C_V6M_S4_BACK3 RNN2C_V6M_S4_BACK1
#define RNN2C_V6M_S4_BACK4 "beq 2f\n\tb 1b\n2:\n\t"
#define RNN2C_V6M_S4_LOOP(rows, lo, hi, ...)                                                  \
    do {                                                                                      \
        int32_t x0;                                                                           \
        int32_t x1;                                                                           \
        int32_t x2;                                                                           \
        int32_t x3;                                                                           \
        uint32_t t;                                                                           \
        uint32_t b;                                                                           \
        const int8_t *const end = w + (size_t)(groups >> 1) * (4 * (rows));                   \
        if (groups >= 2) {                                                                    \
            __asm__(RNN2C_V6M_UNIFIED "1:\n\t" RNN2C_V6M_GROUP lo RNN2C_V6M_GROUP hi          \
                    "adds %[w], #" #rows "*4\n\t"                                            \
                    "cmp %[w], %[end]\n\t" RNN2C_V6M_S4_BACK##rows RNN2C_V6M_RESTORE         \
                    : __VA_ARGS__, [v] "+h"(v), [w] "+l"(w), [x0] "=&l"(x0), [x1] "=&l"(x1), \
                      [x2] "=&l"(x2), [x3] "=&l"(x3), [t] "=&l"(t), [b] "=&l"(b)             \
                    : [end] "r"(end)                                                          \
                    : "memory", "cc");                                                        \
        }                                                                                     \
        if (groups & 1u) { /* the last odd group: the low nibbles */                          \
            __asm__(RNN2C_V6M_UNIFIED RNN2C_V6M_GROUP lo "adds %[w], #" #rows "*4\n\t"        \
                        RNN2C_V6M_RESTORE                                                     \
                    : __VA_ARGS__, [v] "+h"(v), [w] "+l"(w), [x0] "=&l"(x0), [x1] "=&l"(x1), \
                      [x2] "=&l"(x2), [x3] "=&l"(x3), [t] "=&l"(t), [b] "=&l"(b)             \
                    :                                                                         \
                    : "memory", "cc");                                                        \
        }                                                                                     \
    } while (0)

RNN2C_INLINE const int8_t *rnn2c_v6m_mac4_s4(const int8_t *w, const int16_t *v, uint32_t groups,
                                             int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    int32_t s3 = *a3;
    RNN2C_V6M_S4_LOOP(4,
                      RNN2C_V6M_S4_LO("s0", "0") RNN2C_V6M_S4_LO("s1", "4")
                          RNN2C_V6M_S4_LO("s2", "8") RNN2C_V6M_S4_LO("s3", "12"),
                      RNN2C_V6M_S4_HI("s0", "0") RNN2C_V6M_S4_HI("s1", "4")
                          RNN2C_V6M_S4_HI("s2", "8") RNN2C_V6M_S4_HI("s3", "12"),
                      [s0] RNN2C_V6M_ACC(s0), [s1] RNN2C_V6M_ACC(s1), [s2] RNN2C_V6M_ACC(s2),
                      [s3] RNN2C_V6M_ACC(s3));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_v6m_mac3_s4(const int8_t *w, const int16_t *v, uint32_t groups,
                                             int32_t *a0, int32_t *a1, int32_t *a2)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    RNN2C_V6M_S4_LOOP(3,
                      RNN2C_V6M_S4_LO("s0", "0") RNN2C_V6M_S4_LO("s1", "4")
                          RNN2C_V6M_S4_LO("s2", "8"),
                      RNN2C_V6M_S4_HI("s0", "0") RNN2C_V6M_S4_HI("s1", "4")
                          RNN2C_V6M_S4_HI("s2", "8"),
                      [s0] RNN2C_V6M_ACC(s0), [s1] RNN2C_V6M_ACC(s1), [s2] RNN2C_V6M_ACC(s2));
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_v6m_mac2_s4(const int8_t *w, const int16_t *v, uint32_t groups,
                                             int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    RNN2C_V6M_S4_LOOP(2, RNN2C_V6M_S4_LO("s0", "0") RNN2C_V6M_S4_LO("s1", "4"),
                      RNN2C_V6M_S4_HI("s0", "0") RNN2C_V6M_S4_HI("s1", "4"),
                      [s0] RNN2C_V6M_ACC(s0), [s1] RNN2C_V6M_ACC(s1));
    *a0 = s0;
    *a1 = s1;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_v6m_mac1_s4(const int8_t *w, const int16_t *v, uint32_t groups,
                                             int32_t *a0)
{
    int32_t s0 = *a0;
    RNN2C_V6M_S4_LOOP(1, RNN2C_V6M_S4_LO("s0", "0"), RNN2C_V6M_S4_HI("s0", "0"),
                      [s0] RNN2C_V6M_ACC(s0));
    *a0 = s0;
    return w;
}
#define rnn2c_mac4_s4 rnn2c_v6m_mac4_s4
#define rnn2c_mac3_s4 rnn2c_v6m_mac3_s4
#define rnn2c_mac2_s4 rnn2c_v6m_mac2_s4
#define rnn2c_mac1_s4 rnn2c_v6m_mac1_s4

#elif defined(__arm__) && defined(__GNUC__) && defined(__BYTE_ORDER__) &&                     \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* In C (where the assembly above is not used): one word load per row and group (LDRSB has no
 * immediate offset in Thumb-1), the weight bytes taken out of the register. */
#define RNN2C_V6M_ROW(acc, wp)                                                                \
    do {                                                                                      \
        uint32_t w_;                                                                          \
        __builtin_memcpy(&w_, (wp), 4);                                                       \
        (acc) += (int32_t)(int8_t)w_ * v0 + (int32_t)(int8_t)(w_ >> 8) * v2 +                 \
                 (int32_t)(int8_t)(w_ >> 16) * v1 + ((int32_t)w_ >> 24) * v3;                 \
    } while (0)

RNN2C_MAC_KERNELS(rnn2c_v6m_mac, RNN2C_MAC_GROUP, RNN2C_V6M_ROW)
#define rnn2c_mac4 rnn2c_v6m_mac4
#define rnn2c_mac3 rnn2c_v6m_mac3
#define rnn2c_mac2 rnn2c_v6m_mac2
#define rnn2c_mac1 rnn2c_v6m_mac1
#endif

#endif /* RNN2C_ARM_V6M_H */
