/*
 * rnn2c_riscv.h - the RV32IM kernels of rnn2c_runtime.h (rv32imc, rv32imac, rv32imafc: the
 * ESP32-C3/C6, the SiFive FE310, GD32VF103, CH32V...). rnn2c_runtime.h includes it for a 32-bit
 * RISC-V target with the M extension's multiply (__riscv_mul) built by gcc or clang (and
 * without RNN2C_PORTABLE); not a header of its own. Names: rnn2c_rv_*, RNN2C_RV_*; each kernel
 * is aliased to its public name, the others stay the reference ones (rnn2c_ref.h).
 *
 *   rnn2c_mac4 .. rnn2c_mac1   R rows over the vector in assembly: the group's four vector
 *                              elements loaded once (LH) and held in registers across the
 *                              rows, per row and column one LB of the weight byte at its place
 *                              in the (c0, c2, c1, c3) word, one MUL and one ADD; the pointers
 *                              move once per group (no indexed loads on RISC-V, no __mulsi3)
 *   rnn2c_mac4_s4 .. _mac1_s4  int4 weights: per row one LW of the word, per nibble SLLI,
 *                              SRAI, MUL, ADD in assembly (the C loop holds the 8 elements)
 *   rnn2c_vec_s8               the unshifted copy (a state into the vector) two elements per
 *                              iteration, in assembly
 *   rnn2c_gru_pair_acc         the rows of two GRU units in one pass (6 rows: z, r and the
 *                              candidate of units j and j + 1), each vector element loaded once
 *                              for the 6 rows, one loop for both parts; RNN2C_GRU_PAIRS 1
 *   rnn2c_sat_s8               one unsigned compare, its branch not taken in range
 *   rnn2c_gru_gates            a GRU unit's gate arithmetic in C: |x| of each activation's
 *                              argument and the result's sign by branches on the sign (the
 *                              reference's branch-free RNN2C_SIGNED is 3 instructions on RV32IM,
 *                              twice), the saturations as branches not taken in range
 *   rnn2c_lstm_gates           an LSTM unit's, likewise
 *
 * Every sum and every gate is the reference's: the same products added in another order (no
 * partial sum can overflow: rnn2c_runtime.h's accumulator bound), the same gate integers.
 * RNN2C_RV_ASM says the assembly is in use (gcc or clang, __riscv_mul, 32-bit); the C kernels
 * (rnn2c_sat_s8, the gates) serve any RISC-V build.
 */
#ifndef RNN2C_RISCV_H
#define RNN2C_RISCV_H

#define RNN2C_ISA_RISCV 1

#if defined(__GNUC__) && defined(__riscv_mul) && __riscv_xlen == 32
#define RNN2C_RV_ASM 1

/* One row's four products of a group: the weight bytes at `o`..`o`+3 of the row's word (c0,
 * c2, c1, c3) against the held vector elements x0, x2, x1, x3, into accumulator `a`. */
#define RNN2C_RV_ROW(w, o, a)                                                                 \
    "lb %[t0], " #o "+0(%[" #w "])\n\t"                                                       \
    "lb %[t1], " #o "+1(%[" #w "])\n\t"                                                       \
    "mul %[t0], %[t0], %[x0]\n\t"                                                             \
    "mul %[t1], %[t1], %[x2]\n\t"                                                             \
    "add %[" #a "], %[" #a "], %[t0]\n\t"                                                     \
    "add %[" #a "], %[" #a "], %[t1]\n\t"                                                     \
    "lb %[t0], " #o "+2(%[" #w "])\n\t"                                                       \
    "lb %[t1], " #o "+3(%[" #w "])\n\t"                                                       \
    "mul %[t0], %[t0], %[x1]\n\t"                                                             \
    "mul %[t1], %[t1], %[x3]\n\t"                                                             \
    "add %[" #a "], %[" #a "], %[t0]\n\t"                                                     \
    "add %[" #a "], %[" #a "], %[t1]\n\t"
/* The same with one scratch register (the GRU pair's asm has no operand left for a second). */
#define RNN2C_RV_ROW1(w, o, a)                                                                \
    "lb %[t0], " #o "+0(%[" #w "])\n\t"                                                       \
    "mul %[t0], %[t0], %[x0]\n\t"                                                             \
    "add %[" #a "], %[" #a "], %[t0]\n\t"                                                     \
    "lb %[t0], " #o "+1(%[" #w "])\n\t"                                                       \
    "mul %[t0], %[t0], %[x2]\n\t"                                                             \
    "add %[" #a "], %[" #a "], %[t0]\n\t"                                                     \
    "lb %[t0], " #o "+2(%[" #w "])\n\t"                                                       \
    "mul %[t0], %[t0], %[x1]\n\t"                                                             \
    "add %[" #a "], %[" #a "], %[t0]\n\t"                                                     \
    "lb %[t0], " #o "+3(%[" #w "])\n\t"                                                       \
    "mul %[t0], %[t0], %[x3]\n\t"                                                             \
    "add %[" #a "], %[" #a "], %[t0]\n\t"
/* The group's vector elements, held for every row of the pass. */
#define RNN2C_RV_GROUP                                                                        \
    "lh %[x0], 0(%[v])\n\t"                                                                   \
    "lh %[x1], 2(%[v])\n\t"                                                                   \
    "lh %[x2], 4(%[v])\n\t"                                                                   \
    "lh %[x3], 6(%[v])\n\t"
/* The same for the second group of an unrolled pass (vector bytes 8 .. 15). */
#define RNN2C_RV_GROUP2                                                                       \
    "lh %[x0], 8(%[v])\n\t"                                                                   \
    "lh %[x1], 10(%[v])\n\t"                                                                  \
    "lh %[x2], 12(%[v])\n\t"                                                                  \
    "lh %[x3], 14(%[v])\n\t"
#define RNN2C_RV_TEMPS                                                                        \
    [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [t0] "=&r"(t0),          \
        [t1] "=&r"(t1)
#define RNN2C_RV_DECLS                                                                        \
    const int16_t *end = v + 4 * (size_t)groups;                                              \
    int32_t x0;                                                                               \
    int32_t x1;                                                                               \
    int32_t x2;                                                                               \
    int32_t x3;                                                                               \
    int32_t t0;                                                                               \
    int32_t t1

/* rnn2c_macR: as rnn2c_ref_macR; 3 R + 1 instructions per column of R rows, 3 per group. */
RNN2C_INLINE const int8_t *rnn2c_rv_mac4(const int8_t *w, const int16_t *v, uint32_t groups,
                                         int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    int32_t s3 = *a3;
    RNN2C_RV_DECLS;
    if (groups != 0) {
        __asm__("1:\n\t" RNN2C_RV_GROUP RNN2C_RV_ROW(w, 0, s0) RNN2C_RV_ROW(w, 4, s1)
                    RNN2C_RV_ROW(w, 8, s2) RNN2C_RV_ROW(w, 12, s3) "addi %[v], %[v], 8\n\t"
                                                                     "addi %[w], %[w], 16\n\t"
                                                                     "bne %[v], %[end], 1b\n\t"
                : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [w] "+r"(w),
                  [v] "+r"(v), RNN2C_RV_TEMPS
                : [end] "r"(end)
                : "memory");
    }
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_rv_mac3(const int8_t *w, const int16_t *v, uint32_t groups,
                                         int32_t *a0, int32_t *a1, int32_t *a2)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int32_t s2 = *a2;
    RNN2C_RV_DECLS;
    if (groups != 0) {
        __asm__("1:\n\t" RNN2C_RV_GROUP RNN2C_RV_ROW(w, 0, s0) RNN2C_RV_ROW(w, 4, s1)
                    RNN2C_RV_ROW(w, 8, s2) "addi %[v], %[v], 8\n\t"
                                           "addi %[w], %[w], 12\n\t"
                                           "bne %[v], %[end], 1b\n\t"
                : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [w] "+r"(w), [v] "+r"(v),
                  RNN2C_RV_TEMPS
                : [end] "r"(end)
                : "memory");
    }
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_rv_mac2(const int8_t *w, const int16_t *v, uint32_t groups,
                                         int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    RNN2C_RV_DECLS;
    if (groups != 0) {
        __asm__("1:\n\t" RNN2C_RV_GROUP RNN2C_RV_ROW(w, 0, s0)
                    RNN2C_RV_ROW(w, 4, s1) "addi %[v], %[v], 8\n\t"
                                           "addi %[w], %[w], 8\n\t"
                                           "bne %[v], %[end], 1b\n\t"
                : [s0] "+r"(s0), [s1] "+r"(s1), [w] "+r"(w), [v] "+r"(v), RNN2C_RV_TEMPS
                : [end] "r"(end)
                : "memory");
    }
    *a0 = s0;
    *a1 = s1;
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_rv_mac1(const int8_t *w, const int16_t *v, uint32_t groups,
                                         int32_t *a0)
{
    int32_t s0 = *a0;
    RNN2C_RV_DECLS;
    if (groups != 0) {
        __asm__("1:\n\t" RNN2C_RV_GROUP RNN2C_RV_ROW(w, 0, s0) "addi %[v], %[v], 8\n\t"
                                                               "addi %[w], %[w], 4\n\t"
                                                               "bne %[v], %[end], 1b\n\t"
                : [s0] "+r"(s0), [w] "+r"(w), [v] "+r"(v), RNN2C_RV_TEMPS
                : [end] "r"(end)
                : "memory");
    }
    *a0 = s0;
    return w;
}

/* rnn2c_vec_s8: as the reference; unshifted (the state part of a vector) two elements per
 * iteration (LB, LB, SH, SH and the loop's 3: 3.5 instructions an element, the reference's
 * loop 5), in assembly (gcc -O2 packs a C loop's halfword stores into words, SLP). */
RNN2C_INLINE void rnn2c_rv_vec_s8(int16_t *v, const int8_t *x, uint32_t n, uint32_t n4,
                                  uint32_t shift)
{
    uint32_t i = 0;
    if (shift == 0 && n >= 2) {
        const int8_t *end = x + (n & ~1u);
        int32_t t0;
        int32_t t1;
        __asm__ __volatile__("1:\n\t" /* volatile: its stores are its purpose */
                "lb %[t0], 0(%[x])\n\t"
                "lb %[t1], 1(%[x])\n\t"
                "sh %[t0], 0(%[v])\n\t"
                "sh %[t1], 2(%[v])\n\t"
                "addi %[x], %[x], 2\n\t"
                "addi %[v], %[v], 4\n\t"
                "bne %[x], %[end], 1b\n\t"
                : [x] "+r"(x), [v] "+r"(v), [t0] "=&r"(t0), [t1] "=&r"(t1)
                : [end] "r"(end)
                : "memory");
        i = n & ~1u;
        n -= i;
        n4 -= i;
        i = 0;
    }
    for (; i < n; ++i) {
        v[i] = (int16_t)((int32_t)x[i] * ((int32_t)1 << shift));
    }
    for (; i < n4; ++i) {
        v[i] = 0;
    }
}

#define rnn2c_vec_s8 rnn2c_rv_vec_s8
#define rnn2c_vec_s16 rnn2c_ref_vec_s16

#define rnn2c_mac4 rnn2c_rv_mac4
#define rnn2c_mac3 rnn2c_rv_mac3
#define rnn2c_mac2 rnn2c_rv_mac2
#define rnn2c_mac1 rnn2c_rv_mac1

/* int4 weights (rnn2c_macR_s4's layout, rnn2c_ref.h): per row one LW of the word, then per
 * nibble SLLI to the top and SRAI by 28 (the top nibble: SRAI alone), one MUL, one ADD against
 * the 8 vector elements the C loop holds (31 instructions per 8 MACs of a row). */
#define RNN2C_RV_S4_NIB(sh, x)                                                                \
    "slli %[t], %[q], " #sh "\n\t"                                                            \
    "srai %[t], %[t], 28\n\t"                                                                 \
    "mul %[t], %[t], %[" #x "]\n\t"                                                           \
    "add %[s], %[s], %[t]\n\t"
#define RNN2C_RV_S4_GROUP4                                                                    \
    const int32_t v0 = v[0];                                                                  \
    const int32_t v1 = v[1];                                                                  \
    const int32_t v2 = v[2];                                                                  \
    const int32_t v3 = v[3]
#define RNN2C_RV_S4_GROUP8                                                                    \
    RNN2C_RV_S4_GROUP4;                                                                       \
    const int32_t v4 = v[4];                                                                  \
    const int32_t v5 = v[5];                                                                  \
    const int32_t v6 = v[6];                                                                  \
    const int32_t v7 = v[7]
#define RNN2C_RV_S4_ROW4(acc, wp)                                                             \
    do {                                                                                      \
        uint32_t q_;                                                                          \
        int32_t t_;                                                                           \
        __asm__("lw %[q], 0(%[w])\n\t" RNN2C_RV_S4_NIB(28, x0) RNN2C_RV_S4_NIB(12, x1)         \
                    RNN2C_RV_S4_NIB(20, x2) RNN2C_RV_S4_NIB(4, x3)                            \
                : [s] "+r"(acc), [q] "=&r"(q_), [t] "=&r"(t_)                                 \
                : [w] "r"(wp), [x0] "r"(v0), [x1] "r"(v1), [x2] "r"(v2), [x3] "r"(v3)         \
                : "memory");                                                                  \
    } while (0)
#define RNN2C_RV_S4_ROW8(acc, wp)                                                             \
    do {                                                                                      \
        uint32_t q_;                                                                          \
        int32_t t_;                                                                           \
        __asm__("lw %[q], 0(%[w])\n\t" RNN2C_RV_S4_NIB(28, x0) RNN2C_RV_S4_NIB(12, x1)         \
                    RNN2C_RV_S4_NIB(20, x2) RNN2C_RV_S4_NIB(4, x3) RNN2C_RV_S4_NIB(24, x4)    \
                        RNN2C_RV_S4_NIB(8, x5) RNN2C_RV_S4_NIB(16, x6)                        \
                "srai %[t], %[q], 28\n\t"                                                     \
                "mul %[t], %[t], %[x7]\n\t"                                                   \
                "add %[s], %[s], %[t]\n\t"                                                    \
                : [s] "+r"(acc), [q] "=&r"(q_), [t] "=&r"(t_)                                 \
                : [w] "r"(wp), [x0] "r"(v0), [x1] "r"(v1), [x2] "r"(v2), [x3] "r"(v3),        \
                  [x4] "r"(v4), [x5] "r"(v5), [x6] "r"(v6), [x7] "r"(v7)                      \
                : "memory");                                                                  \
    } while (0)

RNN2C_MAC_S4_KERNELS(rnn2c_rv_mac, RNN2C_RV_S4_GROUP8, RNN2C_RV_S4_ROW8, RNN2C_RV_S4_GROUP4,
                     RNN2C_RV_S4_ROW4)

#define rnn2c_mac4_s4 rnn2c_rv_mac4_s4
#define rnn2c_mac3_s4 rnn2c_rv_mac3_s4
#define rnn2c_mac2_s4 rnn2c_rv_mac2_s4
#define rnn2c_mac1_s4 rnn2c_rv_mac1_s4

/* rnn2c_gru_pair_acc: units j (weights at wa) and j + 1 (wb, one unit's block further), 3 rows
 * each, 6 rows per vector element loaded, two groups per pass (an odd count enters the loop at
 * its second group): 156 instructions per two groups of 24 products, 3.25 a MAC. One loop for
 * both parts (one copy of the code): when the input part ends, the candidate accumulators a2,
 * b2 trade places with their recurrent twins a3, b3 (7 instructions per pair of units); the
 * state part has at least one group (a GRU has a unit). */
RNN2C_INLINE void rnn2c_rv_gru_pair_acc(const int8_t *wa, const int16_t *v, uint32_t x_groups,
                                        uint32_t h_groups, const int32_t *bias, int32_t *a,
                                        int32_t *b)
{
    const int8_t *wb = wa + 12 * ((size_t)x_groups + h_groups);
    const int16_t *end = v + 4 * (size_t)x_groups;
    const int16_t *end2 = end + 4 * (size_t)h_groups;
    int32_t a0 = bias[0];
    int32_t a1 = bias[1];
    int32_t a2 = bias[2];
    int32_t a3 = bias[3];
    int32_t b0 = bias[4];
    int32_t b1 = bias[5];
    int32_t b2 = bias[6];
    int32_t b3 = bias[7];
    int32_t x0;
    int32_t x1;
    int32_t x2;
    int32_t x3;
    int32_t t0;
    __asm__("0:\n\t"
            "beq %[v], %[end], 2f\n\t"
            "sub %[t0], %[end], %[v]\n\t" /* an odd number of groups: enter at the second */
            "andi %[t0], %[t0], 8\n\t"
            "beqz %[t0], 1f\n\t"
            "addi %[v], %[v], -8\n\t"
            "addi %[wa], %[wa], -12\n\t"
            "addi %[wb], %[wb], -12\n\t"
            "j 4f\n"
            "1:\n\t" RNN2C_RV_GROUP RNN2C_RV_ROW1(wa, 0, a0) RNN2C_RV_ROW1(wa, 4, a1)
                RNN2C_RV_ROW1(wa, 8, a2) RNN2C_RV_ROW1(wb, 0, b0) RNN2C_RV_ROW1(wb, 4, b1)
                    RNN2C_RV_ROW1(wb, 8, b2) "4:\n\t" RNN2C_RV_GROUP2 RNN2C_RV_ROW1(wa, 12, a0)
                        RNN2C_RV_ROW1(wa, 16, a1) RNN2C_RV_ROW1(wa, 20, a2)
                            RNN2C_RV_ROW1(wb, 12, b0) RNN2C_RV_ROW1(wb, 16, b1)
                                RNN2C_RV_ROW1(wb, 20, b2) "addi %[v], %[v], 16\n\t"
                                                          "addi %[wa], %[wa], 24\n\t"
                                                          "addi %[wb], %[wb], 24\n\t"
                                                          "bne %[v], %[end], 1b\n"
                                                          "2:\n\t"
                                            "beq %[end], %[end2], 3f\n\t"
                                            "mv %[end], %[end2]\n\t"
                                            "mv %[t0], %[a2]\n\t"
                                            "mv %[a2], %[a3]\n\t"
                                            "mv %[a3], %[t0]\n\t"
                                            "mv %[t0], %[b2]\n\t"
                                            "mv %[b2], %[b3]\n\t"
                                            "mv %[b3], %[t0]\n\t"
                                            "j 0b\n"
                                            "3:\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b0] "+r"(b0),
              [b1] "+r"(b1), [b2] "+r"(b2), [b3] "+r"(b3), [wa] "+r"(wa), [wb] "+r"(wb),
              [v] "+r"(v), [end] "+r"(end), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2),
              [x3] "=&r"(x3), [t0] "=&r"(t0)
            : [end2] "r"(end2)
            : "memory");
    a[0] = a0; /* a3 holds the candidate over x now, a2 the one over h */
    a[1] = a1;
    a[2] = a3;
    a[3] = a2;
    b[0] = b0;
    b[1] = b1;
    b[2] = b3;
    b[3] = b2;
}

#define rnn2c_gru_pair_acc rnn2c_rv_gru_pair_acc
#define RNN2C_GRU_PAIRS 1
#endif

/* ---------------------------------------------------------------- C kernels */

#if defined(__GNUC__)
#define RNN2C_RV_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define RNN2C_RV_LIKELY(x) (x)
#endif

/* rnn2c_sat_s8: one unsigned compare (and its branch, not taken in range) instead of two
 * signed ones against constants the compiler reloads (rv32imc has no min / max). The int16
 * and 17-bit saturations stay the reference's (their constants stay in registers). */
RNN2C_INLINE int8_t rnn2c_rv_sat_s8(int32_t x)
{
    if (RNN2C_RV_LIKELY((uint32_t)x + 128u <= 255u)) {
        return (int8_t)x;
    }
    return (int8_t)(x < 0 ? INT8_MIN : INT8_MAX);
}

#define rnn2c_sat_s16 rnn2c_ref_sat_s16
#define rnn2c_sat_s8 rnn2c_rv_sat_s8
#define rnn2c_sat17 rnn2c_ref_sat17


/* ---- the gate arithmetic of a GRU or LSTM unit */

/* rnn2c_rqs with the saturation as two branches not taken in range (|result| < 2^30). */
RNN2C_INLINE int32_t rnn2c_rv_rqs(int32_t acc, int32_t multiplier, rnn2c_shift_t s)
{
    int32_t t = acc >> s.shift_in;
    if (!RNN2C_RV_LIKELY(t <= 65535)) {
        t = 65535;
    }
    if (!RNN2C_RV_LIKELY(t >= -65536)) {
        t = -65536;
    }
    return (t * multiplier + ((int32_t)1 << (s.shift_out - 1))) >> s.shift_out;
}

/* rnn2c_ref_interp_s16 in the tanh table at a >= 0 (the caller keeps a >> step_bits inside). */
RNN2C_INLINE int32_t rnn2c_rv_tanh_at(int32_t a, int step_bits)
{
    const int16_t *at = rnn2c_tanh_table + (a >> step_bits);
    const int32_t lo = at[0];
    return lo + (((at[1] - lo) * (a & (((int32_t)1 << step_bits) - 1)) +
                  ((int32_t)1 << (step_bits - 1))) >>
                 step_bits);
}

/* rnn2c_sigmoid_q15 of a requantized row (|x| < 2^30): |x| by a branch on the sign (no
 * conditional negation on RV32IM: the reference's RNN2C_SIGNED is 3 instructions, twice),
 * saturated to int16 first (32767 above 0, -32768 below: |x| <= 32768), the table at |x|,
 * added to or subtracted from one by a second branch. One copy of the interpolation (two,
 * one per sign, saved 2 instructions a gate for 50 to 100 B of flash a kernel). */
RNN2C_INLINE int32_t rnn2c_rv_sigmoid(int32_t x)
{
    const int32_t neg = x < 0;
    int32_t y;
    if (neg) {
        x = -x;
        if (!RNN2C_RV_LIKELY(x <= 32768)) {
            x = 32768;
        }
    } else if (!RNN2C_RV_LIKELY(x <= 32767)) {
        x = 32767;
    }
    y = rnn2c_rv_tanh_at(x, RNN2C_TANH_STEP_BITS + 1);
    return (RNN2C_Q15_ONE + (neg ? -y : y)) >> 1;
}

/* rnn2c_tanh_q15 of |x| < 2^31 - 2^15, likewise (the int16 saturation and the table's clamp
 * are one clamp of |x| at the table's clamp, which is below 32767). */
RNN2C_INLINE int32_t rnn2c_rv_tanh(int32_t x)
{
    const int32_t last = (int32_t)RNN2C_TANH_CLAMP << RNN2C_TANH_STEP_BITS;
    const int32_t neg = x < 0;
    int32_t y;
    if (neg) {
        x = -x;
    }
    if (!RNN2C_RV_LIKELY(x <= last)) {
        x = last;
    }
    y = rnn2c_rv_tanh_at(x, RNN2C_TANH_STEP_BITS);
    return neg ? -y : y;
}

/* rnn2c_gru_gates: as rnn2c_ref_gru_gates. */
RNN2C_INLINE int32_t rnn2c_rv_gru_gates(const int16_t *m, const rnn2c_shift_t *sh, int32_t z,
                                        int32_t r, int32_t cx, int32_t ch, int32_t h_q15)
{
    z = rnn2c_rv_sigmoid(rnn2c_rv_rqs(z, m[0], sh[0]));
    r = rnn2c_rv_sigmoid(rnn2c_rv_rqs(r, m[1], sh[1]));
    ch = rnn2c_rv_rqs(ch, m[3], sh[3]);
    if (!RNN2C_RV_LIKELY(ch <= 65535)) {
        ch = 65535;
    }
    if (!RNN2C_RV_LIKELY(ch >= -65536)) {
        ch = -65536;
    }
    cx = rnn2c_rv_rqs(cx, m[2], sh[2]) + ((r * ch + ((int32_t)1 << 14)) >> 15);
    cx = rnn2c_rv_tanh(cx);
    return z * (h_q15 - cx) + cx * RNN2C_Q15_ONE; /* rnn2c_gru_blend_sum */
}

#define rnn2c_gru_gates rnn2c_rv_gru_gates

/* rnn2c_lstm_gates: as rnn2c_ref_lstm_gates, the activations as rnn2c_rv_gru_gates takes
 * them; the cell's int16 saturation before its tanh is left to the tanh's clamp (below it). */
RNN2C_INLINE int32_t rnn2c_rv_lstm_gates(const int16_t *m, const rnn2c_shift_t *sh,
                                         int32_t i_gate, int32_t f_gate, int32_t g_cand,
                                         int32_t o_gate, int16_t *c, int frac_bits)
{
    int32_t cell;
    i_gate = rnn2c_rv_sigmoid(rnn2c_rv_rqs(i_gate, m[0], sh[0]));
    f_gate = rnn2c_rv_sigmoid(rnn2c_rv_rqs(f_gate, m[1], sh[1]));
    g_cand = rnn2c_rv_tanh(rnn2c_rv_rqs(g_cand, m[2], sh[2]));
    o_gate = rnn2c_rv_sigmoid(rnn2c_rv_rqs(o_gate, m[3], sh[3]));
    cell = rnn2c_rshift_round(f_gate * (int32_t)*c, 15) +
           rnn2c_rshift_round(i_gate * g_cand, 30 - frac_bits);
    if (!RNN2C_RV_LIKELY(cell <= INT16_MAX)) {
        cell = INT16_MAX;
    }
    if (!RNN2C_RV_LIKELY(cell >= INT16_MIN)) {
        cell = INT16_MIN;
    }
    *c = (int16_t)cell;
    if (frac_bits > 12) {
        cell = rnn2c_rshift_round(cell, frac_bits - 12);
    } else {
        cell *= (int32_t)1 << (12 - frac_bits); /* |cell| < 2^27 */
    }
    return o_gate * rnn2c_rv_tanh(cell);
}

#define rnn2c_lstm_gates rnn2c_rv_lstm_gates

#endif /* RNN2C_RISCV_H */
