/*
 * rnn2c_x86.h - the x86 kernels of rnn2c_runtime.h: AVX2, with AVX-512 (BW, VL) and AVX-512
 * VNNI where the compiler targets them. rnn2c_runtime.h includes it where __AVX2__ is defined
 * (and RNN2C_PORTABLE is not); it is not a header of its own. Every name here starts with
 * rnn2c_x86_ (RNN2C_X86_ for macros); the kernels it replaces are aliased to their public
 * names at the end of each part, the others stay the reference ones (rnn2c_ref.h).
 *
 * Two parts:
 *  - the shared layout, as every other target reads it: the int16 vector is stored (v0, v2, v1,
 *    v3) per group of 4 (RNN2C_VPOS), so that the weight bytes (c0, c2, c1, c3) of a word
 *    multiply their vector elements in memory order (vpmovsxbw + vpmaddwd); R rows per pass.
 *  - units across lanes: a GRU (reset_after) or LSTM layer with the default activations reads
 *    the x86 copy of its weights (export/isa_x86.py writes it into the generated C, which
 *    compiles it where this header is selected only): int16, 16 units across the vector lanes,
 *    so that one multiply-accumulate instruction serves 16 (AVX-512) or 8 (AVX2) units of one
 *    gate and no row needs a horizontal sum; with AVX-512 VNNI, where the layer's input and
 *    state are int8, an int8 copy for vpdpbusd instead (RNN2C_X86_U8). The layer struct points
 *    at its copy (RNN2C_ISA_MEMBER), and rnn2c_gru_s8 / rnn2c_lstm_s8 / ..._s16 run it through
 *    the rnn2c_isa_* hooks at the end.
 *
 * All of it computes the integers of the reference kernels (tests/test_kernels.py checks each
 * kernel against its reference, on AVX-512 machines the AVX-512 forms too).
 */
#ifndef RNN2C_X86_H
#define RNN2C_X86_H

#define RNN2C_ISA_X86 1

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

/* The kernels read the weight words little-endian (x86 always is). */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rnn2c_x86.h expects a little-endian target"
#endif
#endif

/* ================================================================ the shared layout */

/* Where vector element i lives: (v0, v2, v1, v3) in every group of 4. */
#define RNN2C_VPOS(i) (((i) & ~3u) | (((i) & 1u) << 1) | (((i) >> 1) & 1u))

/* rnn2c_vec_s8: 8 at a time (widen, shift, (v0, v2, v1, v3) per group); with AVX-512 BW/VL
 * the last 1..7 elements and the padding in one masked load and store (no scalar stores for
 * the kernels' word loads to wait on). */
RNN2C_INLINE void rnn2c_x86_vec_s8(int16_t *v, const int8_t *x, uint32_t n, uint32_t n4,
                                   uint32_t shift)
{
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i e = _mm_sll_epi16(
            _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(x + i))),
            _mm_cvtsi32_si128((int)shift));
        _mm_storeu_si128((__m128i *)(void *)(v + i),
                         _mm_shufflehi_epi16(_mm_shufflelo_epi16(e, 0xd8), 0xd8));
    }
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    if (i < n4) {
        const __m128i e = _mm_sll_epi16(
            _mm_cvtepi8_epi16(_mm_maskz_loadu_epi8((__mmask16)((1u << (n - i)) - 1u), x + i)),
            _mm_cvtsi32_si128((int)shift));
        _mm_mask_storeu_epi16(v + i, (__mmask8)((1u << (n4 - i)) - 1u),
                              _mm_shufflehi_epi16(_mm_shufflelo_epi16(e, 0xd8), 0xd8));
        return;
    }
#endif
    for (; i < n; ++i) {
        v[RNN2C_VPOS(i)] = (int16_t)((int32_t)x[i] * ((int32_t)1 << shift));
    }
    for (; i < n4; ++i) {
        v[RNN2C_VPOS(i)] = 0;
    }
}

/* rnn2c_vec_s16: 8 at a time when no shift is needed. */
RNN2C_INLINE void rnn2c_x86_vec_s16(int16_t *v, const int16_t *x, uint32_t n, uint32_t n4,
                                    uint32_t rshift)
{
    uint32_t i = 0;
    if (rshift == 0u) {
        for (; i + 8 <= n; i += 8) {
            const __m128i e = _mm_loadu_si128((const __m128i *)(const void *)(x + i));
            _mm_storeu_si128((__m128i *)(void *)(v + i),
                             _mm_shufflehi_epi16(_mm_shufflelo_epi16(e, 0xd8), 0xd8));
        }
    }
    for (; i < n; ++i) {
        v[RNN2C_VPOS(i)] = (int16_t)rnn2c_down(x[i], rshift);
    }
    for (; i < n4; ++i) {
        v[RNN2C_VPOS(i)] = 0;
    }
}

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define RNN2C_X86_DP256(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))
#define RNN2C_X86_DP128(acc, a, b) _mm_dpwssd_epi32((acc), (a), (b))
#else
#define RNN2C_X86_DP256(acc, a, b) _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b)))
#define RNN2C_X86_DP128(acc, a, b) _mm_add_epi32((acc), _mm_madd_epi16((a), (b)))
#endif

/* The 4 vector elements of one group (stored v0, v2, v1, v3), in every 64-bit lane. */
RNN2C_INLINE __m256i rnn2c_x86_group256(const int16_t *v)
{
    long long x;
    __builtin_memcpy(&x, v, 8);
    return _mm256_set1_epi64x(x);
}

RNN2C_INLINE __m128i rnn2c_x86_group128(const int16_t *v)
{
    return _mm_loadl_epi64((const __m128i *)(const void *)v);
}

/* lanes [r0 r0 r1 r1 | r2 r2 r3 r3] -> [r0 r1 r2 r3] */
RNN2C_INLINE __m128i rnn2c_x86_rows(__m256i acc)
{
    return _mm_hadd_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
}

/* The 4- and 3-row passes before the reduction: lanes [r0 r0 r1 r1 | r2 r2 r3 r3], each pair
 * summing to its row's total; *wp advances past the block. */
RNN2C_INLINE __m256i rnn2c_x86_acc4(const int8_t **wp, const int16_t *v, uint32_t groups)
{
    const int8_t *w = *wp;
    __m256i acc = _mm256_setzero_si256();
    __m256i acc2 = _mm256_setzero_si256(); /* two chains: the adds do not wait on each other */
    for (; groups >= 2; groups -= 2, v += 8, w += 32) {
        const __m256i wa = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
        const __m256i wb =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + 16)));
        acc = RNN2C_X86_DP256(acc, wa, rnn2c_x86_group256(v));
        acc2 = RNN2C_X86_DP256(acc2, wb, rnn2c_x86_group256(v + 4));
    }
    if (groups != 0) {
        const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
        acc = RNN2C_X86_DP256(acc, wv, rnn2c_x86_group256(v));
        w += 16;
    }
    *wp = w;
    return _mm256_add_epi32(acc, acc2);
}

RNN2C_INLINE __m256i rnn2c_x86_acc3(const int8_t **wp, const int16_t *v, uint32_t groups)
{
    const int8_t *w = *wp;
    __m256i acc = _mm256_setzero_si256();
    __m256i acc2 = _mm256_setzero_si256();
    for (; groups >= 2; groups -= 2, v += 8, w += 24) {
        const __m128i a = _mm_insert_epi32(_mm_loadl_epi64((const __m128i *)(const void *)w),
                                           (int)rnn2c_ld32(w + 8), 2);
        const __m128i b = _mm_insert_epi32(
            _mm_loadl_epi64((const __m128i *)(const void *)(w + 12)), (int)rnn2c_ld32(w + 20), 2);
        acc = RNN2C_X86_DP256(acc, _mm256_cvtepi8_epi16(a), rnn2c_x86_group256(v));
        acc2 = RNN2C_X86_DP256(acc2, _mm256_cvtepi8_epi16(b), rnn2c_x86_group256(v + 4));
    }
    if (groups != 0) {
        const __m128i b = _mm_insert_epi32(_mm_loadl_epi64((const __m128i *)(const void *)w),
                                           (int)rnn2c_ld32(w + 8), 2);
        acc = RNN2C_X86_DP256(acc, _mm256_cvtepi8_epi16(b), rnn2c_x86_group256(v));
        w += 12;
    }
    *wp = w;
    return _mm256_add_epi32(acc, acc2);
}

RNN2C_INLINE const int8_t *rnn2c_x86_mac4(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    const __m128i s = rnn2c_x86_rows(rnn2c_x86_acc4(&w, v, groups));
    *a0 += _mm_cvtsi128_si32(s);
    *a1 += _mm_extract_epi32(s, 1);
    *a2 += _mm_extract_epi32(s, 2);
    *a3 += _mm_extract_epi32(s, 3);
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_x86_mac3(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0, int32_t *a1, int32_t *a2)
{
    const __m128i s = rnn2c_x86_rows(rnn2c_x86_acc3(&w, v, groups));
    *a0 += _mm_cvtsi128_si32(s);
    *a1 += _mm_extract_epi32(s, 1);
    *a2 += _mm_extract_epi32(s, 2);
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_x86_mac2(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0, int32_t *a1)
{
    __m128i acc = _mm_setzero_si128();
    for (; groups != 0; --groups, v += 4, w += 8) {
        const __m128i b = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)w));
        acc = RNN2C_X86_DP128(acc, b,
                              _mm_unpacklo_epi64(rnn2c_x86_group128(v), rnn2c_x86_group128(v)));
    }
    acc = _mm_hadd_epi32(acc, acc);
    *a0 += _mm_cvtsi128_si32(acc);
    *a1 += _mm_extract_epi32(acc, 1);
    return w;
}

RNN2C_INLINE const int8_t *rnn2c_x86_mac1(const int8_t *w, const int16_t *v, uint32_t groups,
                                          int32_t *a0)
{
    __m256i acc = _mm256_setzero_si256();
    __m128i s;
    __m128i tail = _mm_setzero_si128();
    for (; groups >= 4; groups -= 4, v += 16, w += 16) { /* one row: 4 groups in a row */
        const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
        acc = RNN2C_X86_DP256(acc, wv, _mm256_loadu_si256((const __m256i *)(const void *)v));
    }
    for (; groups != 0; --groups, v += 4, w += 4) {
        const __m128i b = _mm_cvtepi8_epi16(_mm_cvtsi32_si128((int)rnn2c_ld32(w)));
        tail = RNN2C_X86_DP128(tail, b, rnn2c_x86_group128(v));
    }
    s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, tail);
    s = _mm_hadd_epi32(s, s);
    s = _mm_hadd_epi32(s, s);
    *a0 += _mm_cvtsi128_si32(s);
    return w;
}

/* softmax over n requantized rows (a classifier head): the reference's integers, with its
 * divisions replaced by one: each quotient (e * 256 + total / 2) / total is
 * floor(n * r / 2^32) with r = floor((2^32 - 1) / total), which is the quotient or one less
 * for every n < 2^31 (n * r / 2^32 > n / total - 2n / 2^32 >= n / total - 1), plus one where
 * the remainder says so. */
RNN2C_INLINE void rnn2c_x86_softmax_s8(int32_t *acc, uint16_t rows, int8_t *y)
{
    const uint32_t n = rows;
    uint32_t i;
    int32_t max = acc[0];
    uint32_t total = 0;
    uint32_t r;
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

#define rnn2c_vec_s8 rnn2c_x86_vec_s8
#define rnn2c_vec_s16 rnn2c_x86_vec_s16
#define rnn2c_mac4 rnn2c_x86_mac4
#define rnn2c_mac3 rnn2c_x86_mac3
#define rnn2c_mac2 rnn2c_x86_mac2
#define rnn2c_mac1 rnn2c_x86_mac1
#define rnn2c_softmax_s8 rnn2c_x86_softmax_s8

/* int4 weights (rnn2c_macR_s4): the reference's scalar shifts over this layout's vector (v0,
 * v2, v1, v3 per group of 4); no AVX2 form yet. */
#define RNN2C_X86_S4_GROUP4                                                                   \
    const int32_t v0 = v[0];                                                                  \
    const int32_t v1 = v[2];                                                                  \
    const int32_t v2 = v[1];                                                                  \
    const int32_t v3 = v[3]
#define RNN2C_X86_S4_GROUP8                                                                   \
    RNN2C_X86_S4_GROUP4;                                                                      \
    const int32_t v4 = v[4];                                                                  \
    const int32_t v5 = v[6];                                                                  \
    const int32_t v6 = v[5];                                                                  \
    const int32_t v7 = v[7]

RNN2C_MAC_S4_KERNELS(rnn2c_x86_mac, RNN2C_X86_S4_GROUP8, RNN2C_S4_ROW8, RNN2C_X86_S4_GROUP4,
                     RNN2C_S4_ROW4)

#define rnn2c_mac4_s4 rnn2c_x86_mac4_s4
#define rnn2c_mac3_s4 rnn2c_x86_mac3_s4
#define rnn2c_mac2_s4 rnn2c_x86_mac2_s4
#define rnn2c_mac1_s4 rnn2c_x86_mac1_s4

/* ================================================================ units across lanes */
/*
 * For every pair of vector elements (2k, 2k + 1) one 32-bit word of the vector is broadcast,
 * and one vpdpwssd (AVX-512 VNNI; vpmaddwd + vpaddd without it) per gate adds that pair's
 * products for 16 units (AVX-512: one register per gate) or 8 (AVX2: each block of 16 in two
 * halves). The accumulators hold one gate of 16 (8) units, so no row needs a horizontal sum
 * and no transpose; the bias and the rnn2c_rq fields of each gate come as vectors from the
 * layer's parameter array. The requantization, sigmoid/tanh (both interpolation points of a
 * lane read by one gather, interpolated by one vpmaddwd), cell and state updates run on all
 * lanes with the scalar functions' integers (same operations, the same 32-bit ranges). Units
 * past the layer's last have zero weights and parameters that keep their lanes finite; a last,
 * partial block reads and writes its state through a local copy.
 */

#if defined(__GNUC__)
#define RNN2C_X86_ALIGN __attribute__((aligned(64)))
#else
#define RNN2C_X86_ALIGN
#endif

/* A layer's x86 copy (export/isa_x86.py): w and p, the int16 weights and the parameters
 * (RNN2C_X86_PARAMS per block); with RNN2C_X86_U8, for a layer whose input and state are int8,
 * b and q instead (w and p NULL), the int8 weights and the parameters with the offset's
 * products taken out of the biases. */
typedef struct {
    const int16_t *w;
    const int32_t *p;
    const int8_t *b;
    const int32_t *q;
} rnn2c_x86_layer_t;

#define RNN2C_ISA_MEMBER const rnn2c_x86_layer_t *isa; /* the x86 copy; NULL: none */
#define RNN2C_ISA_INIT(data) , data

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
/* 16 int32 lanes in one zmm register */
typedef __m512i rnn2c_x86_lanes_t;
#define RNN2C_X86_LANES 16u
#define rnn2c_x86_load(p) _mm512_loadu_si512((const void *)(p))
#define rnn2c_x86_set1 _mm512_set1_epi32
#define rnn2c_x86_zero _mm512_setzero_si512
#define rnn2c_x86_add _mm512_add_epi32
#define rnn2c_x86_sub _mm512_sub_epi32
#define rnn2c_x86_mul _mm512_mullo_epi32
#define rnn2c_x86_srav _mm512_srav_epi32
#define rnn2c_x86_min _mm512_min_epi32
#define rnn2c_x86_max _mm512_max_epi32
#define rnn2c_x86_abs _mm512_abs_epi32
#define rnn2c_x86_and _mm512_and_si512
#define rnn2c_x86_or _mm512_or_si512
/* shifts by a count register: the immediate forms are macros at -O0 that -Wsign-conversion
 * flags (the compiler still emits the immediate form for a constant count) */
#define rnn2c_x86_slli(x, n) _mm512_sll_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_x86_srli(x, n) _mm512_srl_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_x86_srai(x, n) _mm512_sra_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_x86_madd _mm512_madd_epi16
#define rnn2c_x86_sra(x, n) _mm512_sra_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_x86_sll(x, n) _mm512_sll_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_x86_gather(idx) _mm512_i32gather_epi32((idx), (const void *)rnn2c_tanh_table, 2)
#if defined(__AVX512VNNI__)
#define rnn2c_x86_dp(acc, a, b) _mm512_dpwssd_epi32((acc), (a), (b))
#else
#define rnn2c_x86_dp(acc, a, b) _mm512_add_epi32((acc), _mm512_madd_epi16((a), (b)))
#endif

/* y with the sign of x (y where x >= 0: both callers have y == 0 where x == 0) */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_sign(rnn2c_x86_lanes_t y, rnn2c_x86_lanes_t x)
{
    const __m512i zero = _mm512_setzero_si512();
    return _mm512_mask_sub_epi32(y, _mm512_cmplt_epi32_mask(x, zero), zero, y);
}

/* RNN2C_X86_LANES int8 / int16 values <-> int32 lanes (stores saturate) */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_load_s8(const int8_t *x)
{
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)x));
}

RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_load_s16(const int16_t *x)
{
    return _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)x));
}

RNN2C_INLINE void rnn2c_x86_store_s8(int8_t *y, rnn2c_x86_lanes_t x)
{
    _mm_storeu_si128((__m128i *)(void *)y, _mm512_cvtsepi32_epi8(x));
}

RNN2C_INLINE void rnn2c_x86_store_s16(int16_t *y, rnn2c_x86_lanes_t x)
{
    _mm256_storeu_si256((__m256i *)(void *)y, _mm512_cvtsepi32_epi16(x));
}

#else
/* 8 int32 lanes in one ymm register: a block of 16 units in two halves */
typedef __m256i rnn2c_x86_lanes_t;
#define RNN2C_X86_LANES 8u
#define rnn2c_x86_load(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define rnn2c_x86_set1 _mm256_set1_epi32
#define rnn2c_x86_zero _mm256_setzero_si256
#define rnn2c_x86_add _mm256_add_epi32
#define rnn2c_x86_sub _mm256_sub_epi32
#define rnn2c_x86_mul _mm256_mullo_epi32
#define rnn2c_x86_srav _mm256_srav_epi32
#define rnn2c_x86_min _mm256_min_epi32
#define rnn2c_x86_max _mm256_max_epi32
#define rnn2c_x86_abs _mm256_abs_epi32
#define rnn2c_x86_and _mm256_and_si256
#define rnn2c_x86_or _mm256_or_si256
#define rnn2c_x86_slli _mm256_slli_epi32
#define rnn2c_x86_srli _mm256_srli_epi32
#define rnn2c_x86_srai _mm256_srai_epi32
#define rnn2c_x86_madd _mm256_madd_epi16
#define rnn2c_x86_sra(x, n) _mm256_sra_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_x86_sll(x, n) _mm256_sll_epi32((x), _mm_cvtsi32_si128(n))
#define rnn2c_x86_gather(idx)                                                                 \
    _mm256_i32gather_epi32((const int *)(const void *)rnn2c_tanh_table, (idx), 2)
#define rnn2c_x86_dp RNN2C_X86_DP256
#define rnn2c_x86_sign _mm256_sign_epi32

RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_load_s8(const int8_t *x)
{
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)x));
}

RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_load_s16(const int16_t *x)
{
    return _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(const void *)x));
}

RNN2C_INLINE void rnn2c_x86_store_s8(int8_t *y, rnn2c_x86_lanes_t x)
{
    const __m128i s = _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    _mm_storel_epi64((__m128i *)(void *)y, _mm_packs_epi16(s, s));
}

RNN2C_INLINE void rnn2c_x86_store_s16(int16_t *y, rnn2c_x86_lanes_t x)
{
    _mm_storeu_si128((__m128i *)(void *)y,
                     _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1)));
}
#endif

RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_clamp(rnn2c_x86_lanes_t x, int32_t lo, int32_t hi)
{
    return rnn2c_x86_min(rnn2c_x86_max(x, rnn2c_x86_set1(lo)), rnn2c_x86_set1(hi));
}

/* (x + 2^(shift-1)) >> shift on the lanes, shift >= 1 */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_rshift_round(rnn2c_x86_lanes_t x, int shift)
{
    return rnn2c_x86_sra(rnn2c_x86_add(x, rnn2c_x86_set1((int32_t)1 << (shift - 1))), shift);
}

/* rnn2c_rq on the lanes: m points at the gate's multipliers in the parameter array, its
 * shift_in, shift_out and rounding terms lie 64, 128 and 192 words further */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_rq(rnn2c_x86_lanes_t acc, const int32_t *m)
{
    const rnn2c_x86_lanes_t t =
        rnn2c_x86_clamp(rnn2c_x86_srav(acc, rnn2c_x86_load(m + 64)), -65536, 65535);
    return rnn2c_x86_srav(
        rnn2c_x86_add(rnn2c_x86_mul(t, rnn2c_x86_load(m)), rnn2c_x86_load(m + 192)),
        rnn2c_x86_load(m + 128));
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
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_interp(rnn2c_x86_lanes_t a, int step_bits)
{
    const rnn2c_x86_lanes_t frac = rnn2c_x86_and(a, rnn2c_x86_set1((1 << step_bits) - 1));
    const rnn2c_x86_lanes_t pair = rnn2c_x86_gather(rnn2c_x86_srli(a, step_bits));
    const rnn2c_x86_lanes_t wts = rnn2c_x86_or(rnn2c_x86_slli(frac, 16),
                                               rnn2c_x86_sub(rnn2c_x86_set1(1 << step_bits), frac));
    return rnn2c_x86_srai(
        rnn2c_x86_add(rnn2c_x86_madd(pair, wts), rnn2c_x86_set1(1 << (step_bits - 1))), step_bits);
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* rnn2c_tanh_q15 on the lanes: |x| clamped exactly as rnn2c_tanh_arg does */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_tanh(rnn2c_x86_lanes_t x)
{
    const rnn2c_x86_lanes_t xs = rnn2c_x86_clamp(x, INT16_MIN, INT16_MAX);
    const rnn2c_x86_lanes_t a = rnn2c_x86_min(
        rnn2c_x86_abs(xs), rnn2c_x86_set1(RNN2C_TANH_CLAMP << RNN2C_TANH_STEP_BITS));
    return rnn2c_x86_sign(rnn2c_x86_interp(a, RNN2C_TANH_STEP_BITS), xs);
}

/* rnn2c_sigmoid_q15 on the lanes (|x| <= 32768 reads the table below its clamp, as there) */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_sigmoid(rnn2c_x86_lanes_t x)
{
    const rnn2c_x86_lanes_t xs = rnn2c_x86_clamp(x, INT16_MIN, INT16_MAX);
    const rnn2c_x86_lanes_t y = rnn2c_x86_interp(rnn2c_x86_abs(xs), RNN2C_TANH_STEP_BITS + 1);
    return rnn2c_x86_srai(rnn2c_x86_add(rnn2c_x86_sign(y, xs), rnn2c_x86_set1(RNN2C_Q15_ONE)), 1);
}

/* The parameter array of a layer, per block of 16 units: bias, multiplier, shift_in,
 * shift_out and 2^(shift_out - 1), each as 4 gates x 16 units (RNN2C_X86_PARAMS words). */
#define RNN2C_X86_BLOCK 16u
#define RNN2C_X86_PARAMS 320u
#define RNN2C_X86_BIAS(p, g) rnn2c_x86_load((p) + 16 * (g)) /* bias of gate g */
#define RNN2C_X86_RQ(p, g) ((p) + 64 + 16 * (g))           /* its rnn2c_x86_rq fields */

/* GRU, reset_after=1, on the lanes: the rows' sums (bias included) -> rnn2c_gru_blend_sum. */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_gru_gates(rnn2c_x86_lanes_t z, rnn2c_x86_lanes_t r,
                                                   rnn2c_x86_lanes_t cx, rnn2c_x86_lanes_t ch,
                                                   const int32_t *p, rnn2c_x86_lanes_t h_q15)
{
    z = rnn2c_x86_sigmoid(rnn2c_x86_rq(z, RNN2C_X86_RQ(p, 0)));
    r = rnn2c_x86_sigmoid(rnn2c_x86_rq(r, RNN2C_X86_RQ(p, 1)));
    ch = rnn2c_x86_clamp(rnn2c_x86_rq(ch, RNN2C_X86_RQ(p, 3)), -65536, 65535);
    cx = rnn2c_x86_add(rnn2c_x86_rq(cx, RNN2C_X86_RQ(p, 2)),
                       rnn2c_x86_srai(rnn2c_x86_add(rnn2c_x86_mul(r, ch), rnn2c_x86_set1(1 << 14)),
                                      15));
    cx = rnn2c_x86_tanh(cx);
    /* z * h + (1 - z) * c = z * (h - c) + c * 2^15: the same integer (the sum is below 2^30) */
    return rnn2c_x86_add(rnn2c_x86_mul(z, rnn2c_x86_sub(h_q15, cx)), rnn2c_x86_slli(cx, 15));
}

/* LSTM on the lanes: the rows' sums (bias included); c: the cells (updated); returns
 * o * tanh(c) in Q0.30. */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_lstm_gates(rnn2c_x86_lanes_t i, rnn2c_x86_lanes_t f,
                                                    rnn2c_x86_lanes_t g, rnn2c_x86_lanes_t o,
                                                    const int32_t *p, int16_t *c, int frac)
{
    rnn2c_x86_lanes_t cell;
    /* c = f * c + i * g */
    cell = rnn2c_x86_add(
        rnn2c_x86_rshift_round(rnn2c_x86_mul(rnn2c_x86_sigmoid(rnn2c_x86_rq(f, RNN2C_X86_RQ(p, 1))),
                                             rnn2c_x86_load_s16(c)),
                               15),
        rnn2c_x86_rshift_round(rnn2c_x86_mul(rnn2c_x86_sigmoid(rnn2c_x86_rq(i, RNN2C_X86_RQ(p, 0))),
                                             rnn2c_x86_tanh(rnn2c_x86_rq(g, RNN2C_X86_RQ(p, 2)))),
                               30 - frac));
    cell = rnn2c_x86_clamp(cell, INT16_MIN, INT16_MAX);
    rnn2c_x86_store_s16(c, cell);
    if (frac > 12) { /* rnn2c_q12_from_frac */
        cell = rnn2c_x86_rshift_round(cell, frac - 12);
    } else {
        cell = rnn2c_x86_clamp(rnn2c_x86_sll(cell, 12 - frac), INT16_MIN, INT16_MAX);
    }
    return rnn2c_x86_mul(rnn2c_x86_sigmoid(rnn2c_x86_rq(o, RNN2C_X86_RQ(p, 3))),
                         rnn2c_x86_tanh(cell));
}

/* GRU, reset_after=1: RNN2C_X86_LANES units of one block (w, p: the block's weights and
 * parameters, offset to the lanes of this half); returns rnn2c_gru_blend_sum per lane. Each
 * pair count is even (two per group of 4), so the loops take two pairs at a time into two sets
 * of sums. */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_gru16(const int16_t *w, const int32_t *p,
                                               uint32_t x_pairs, uint32_t h_pairs,
                                               const int16_t *v, rnn2c_x86_lanes_t h_q15)
{
    rnn2c_x86_lanes_t z = RNN2C_X86_BIAS(p, 0);
    rnn2c_x86_lanes_t r = RNN2C_X86_BIAS(p, 1);
    rnn2c_x86_lanes_t cx = RNN2C_X86_BIAS(p, 2);
    rnn2c_x86_lanes_t ch = RNN2C_X86_BIAS(p, 3);
    rnn2c_x86_lanes_t z2 = rnn2c_x86_zero();
    rnn2c_x86_lanes_t r2 = rnn2c_x86_zero();
    rnn2c_x86_lanes_t c2 = rnn2c_x86_zero();
    uint32_t k;
    for (k = 0; k < x_pairs; k += 2, v += 4, w += 192) { /* z, r, candidate over x */
        const rnn2c_x86_lanes_t a = rnn2c_x86_set1((int)rnn2c_ld32(v));
        const rnn2c_x86_lanes_t b = rnn2c_x86_set1((int)rnn2c_ld32(v + 2));
        z = rnn2c_x86_dp(z, rnn2c_x86_load(w), a);
        r = rnn2c_x86_dp(r, rnn2c_x86_load(w + 32), a);
        cx = rnn2c_x86_dp(cx, rnn2c_x86_load(w + 64), a);
        z2 = rnn2c_x86_dp(z2, rnn2c_x86_load(w + 96), b);
        r2 = rnn2c_x86_dp(r2, rnn2c_x86_load(w + 128), b);
        c2 = rnn2c_x86_dp(c2, rnn2c_x86_load(w + 160), b);
    }
    cx = rnn2c_x86_add(cx, c2);
    c2 = rnn2c_x86_zero();
#if RNN2C_X86_LANES == 16 /* the state part is the critical path from step to step: four sets */
    {
        rnn2c_x86_lanes_t z3 = rnn2c_x86_zero();
        rnn2c_x86_lanes_t r3 = rnn2c_x86_zero();
        rnn2c_x86_lanes_t c3 = rnn2c_x86_zero();
        rnn2c_x86_lanes_t z4 = rnn2c_x86_zero();
        rnn2c_x86_lanes_t r4 = rnn2c_x86_zero();
        rnn2c_x86_lanes_t c4 = rnn2c_x86_zero();
        for (; h_pairs >= 4; h_pairs -= 4, v += 8, w += 384) {
            const rnn2c_x86_lanes_t a = rnn2c_x86_set1((int)rnn2c_ld32(v));
            const rnn2c_x86_lanes_t b = rnn2c_x86_set1((int)rnn2c_ld32(v + 2));
            const rnn2c_x86_lanes_t c = rnn2c_x86_set1((int)rnn2c_ld32(v + 4));
            const rnn2c_x86_lanes_t d = rnn2c_x86_set1((int)rnn2c_ld32(v + 6));
            z = rnn2c_x86_dp(z, rnn2c_x86_load(w), a);
            r = rnn2c_x86_dp(r, rnn2c_x86_load(w + 32), a);
            ch = rnn2c_x86_dp(ch, rnn2c_x86_load(w + 64), a);
            z2 = rnn2c_x86_dp(z2, rnn2c_x86_load(w + 96), b);
            r2 = rnn2c_x86_dp(r2, rnn2c_x86_load(w + 128), b);
            c2 = rnn2c_x86_dp(c2, rnn2c_x86_load(w + 160), b);
            z3 = rnn2c_x86_dp(z3, rnn2c_x86_load(w + 192), c);
            r3 = rnn2c_x86_dp(r3, rnn2c_x86_load(w + 224), c);
            c3 = rnn2c_x86_dp(c3, rnn2c_x86_load(w + 256), c);
            z4 = rnn2c_x86_dp(z4, rnn2c_x86_load(w + 288), d);
            r4 = rnn2c_x86_dp(r4, rnn2c_x86_load(w + 320), d);
            c4 = rnn2c_x86_dp(c4, rnn2c_x86_load(w + 352), d);
        }
        z = rnn2c_x86_add(z, z3);
        r = rnn2c_x86_add(r, r3);
        ch = rnn2c_x86_add(ch, c3);
        z2 = rnn2c_x86_add(z2, z4);
        r2 = rnn2c_x86_add(r2, r4);
        c2 = rnn2c_x86_add(c2, c4);
    }
#endif
    for (k = 0; k < h_pairs; k += 2, v += 4, w += 192) { /* z, r, candidate over h */
        const rnn2c_x86_lanes_t a = rnn2c_x86_set1((int)rnn2c_ld32(v));
        const rnn2c_x86_lanes_t b = rnn2c_x86_set1((int)rnn2c_ld32(v + 2));
        z = rnn2c_x86_dp(z, rnn2c_x86_load(w), a);
        r = rnn2c_x86_dp(r, rnn2c_x86_load(w + 32), a);
        ch = rnn2c_x86_dp(ch, rnn2c_x86_load(w + 64), a);
        z2 = rnn2c_x86_dp(z2, rnn2c_x86_load(w + 96), b);
        r2 = rnn2c_x86_dp(r2, rnn2c_x86_load(w + 128), b);
        c2 = rnn2c_x86_dp(c2, rnn2c_x86_load(w + 160), b);
    }
    return rnn2c_x86_gru_gates(rnn2c_x86_add(z, z2), rnn2c_x86_add(r, r2), cx,
                               rnn2c_x86_add(ch, c2), p, h_q15);
}

/* LSTM: RNN2C_X86_LANES units of one block; c: their cells (updated); returns o * tanh(c)
 * (Q0.30). */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_lstm16(const int16_t *w, const int32_t *p,
                                                uint32_t pairs, const int16_t *v, int16_t *c,
                                                int frac)
{
    rnn2c_x86_lanes_t i = RNN2C_X86_BIAS(p, 0);
    rnn2c_x86_lanes_t f = RNN2C_X86_BIAS(p, 1);
    rnn2c_x86_lanes_t g = RNN2C_X86_BIAS(p, 2);
    rnn2c_x86_lanes_t o = RNN2C_X86_BIAS(p, 3);
    rnn2c_x86_lanes_t i2 = rnn2c_x86_zero();
    rnn2c_x86_lanes_t f2 = rnn2c_x86_zero();
    rnn2c_x86_lanes_t g2 = rnn2c_x86_zero();
    rnn2c_x86_lanes_t o2 = rnn2c_x86_zero();
    uint32_t k;
    for (k = 0; k < pairs; k += 2, v += 4, w += 256) {
        const rnn2c_x86_lanes_t a = rnn2c_x86_set1((int)rnn2c_ld32(v));
        const rnn2c_x86_lanes_t b = rnn2c_x86_set1((int)rnn2c_ld32(v + 2));
        i = rnn2c_x86_dp(i, rnn2c_x86_load(w), a);
        f = rnn2c_x86_dp(f, rnn2c_x86_load(w + 32), a);
        g = rnn2c_x86_dp(g, rnn2c_x86_load(w + 64), a);
        o = rnn2c_x86_dp(o, rnn2c_x86_load(w + 96), a);
        i2 = rnn2c_x86_dp(i2, rnn2c_x86_load(w + 128), b);
        f2 = rnn2c_x86_dp(f2, rnn2c_x86_load(w + 160), b);
        g2 = rnn2c_x86_dp(g2, rnn2c_x86_load(w + 192), b);
        o2 = rnn2c_x86_dp(o2, rnn2c_x86_load(w + 224), b);
    }
    return rnn2c_x86_lstm_gates(rnn2c_x86_add(i, i2), rnn2c_x86_add(f, f2), rnn2c_x86_add(g, g2),
                                rnn2c_x86_add(o, o2), p, c, frac);
}

/* Hides which array a pointer holds (an empty asm the pointer passes through): with the
 * constant weights in view, gcc 12 copies them through the stack instead of reading them where
 * the loop needs them. */
#if defined(__GNUC__)
#define RNN2C_X86_OPAQUE(ptr) __asm__("" : "+r"(ptr))
#else
#define RNN2C_X86_OPAQUE(ptr) ((void)0)
#endif

/* The lanes of units [j, j + RNN2C_X86_LANES) of a layer of `units`: how many are real. */
RNN2C_INLINE uint32_t rnn2c_x86_real(uint32_t units, uint32_t j)
{
    return units - j < RNN2C_X86_LANES ? units - j : RNN2C_X86_LANES;
}

/* The state formats on the lanes: an int8 state (Q0.7) in Q0.15, and a GRU's blend sum or an
 * LSTM's o * tanh(c) (Q0.30) rounded into the state (rnn2c_gru_out_*, rnn2c_lstm_out_*). */
RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_q15_s8(const int8_t *h)
{
    return rnn2c_x86_slli(rnn2c_x86_load_s8(h), 8);
}

RNN2C_INLINE rnn2c_x86_lanes_t rnn2c_x86_q15_s16(const int16_t *h)
{
    return rnn2c_x86_load_s16(h);
}

RNN2C_INLINE void rnn2c_x86_gru_out_s8(int8_t *h, rnn2c_x86_lanes_t sum)
{
    rnn2c_x86_store_s8(h, rnn2c_x86_srai(rnn2c_x86_add(sum, rnn2c_x86_set1((1 << 14) + (1 << 22))),
                                         23));
}

RNN2C_INLINE void rnn2c_x86_gru_out_s16(int16_t *h, rnn2c_x86_lanes_t sum)
{
    rnn2c_x86_store_s16(h, rnn2c_x86_rshift_round(sum, 15));
}

RNN2C_INLINE void rnn2c_x86_lstm_out_s8(int8_t *h, rnn2c_x86_lanes_t q30)
{
    rnn2c_x86_store_s8(h, rnn2c_x86_rshift_round(q30, 23));
}

RNN2C_INLINE void rnn2c_x86_lstm_out_s16(int16_t *h, rnn2c_x86_lanes_t q30)
{
    rnn2c_x86_store_s16(h, rnn2c_x86_rshift_round(q30, 15));
}

/* GRU step (reset_after=1) on the int16 copy, S: the state type (s8, s16), T its C type. */
#define RNN2C_X86_GRU_BODY(S, T)                                                              \
    const int16_t *w = d->w;                                                                  \
    const int32_t *p = d->p;                                                                  \
    const uint32_t block_w = 2 * ((uint32_t)x_groups + h_groups) * 3 * 2 * RNN2C_X86_BLOCK;   \
    uint32_t j;                                                                               \
    uint32_t k;                                                                               \
    RNN2C_X86_OPAQUE(w);                                                                      \
    RNN2C_X86_OPAQUE(p);                                                                      \
    for (j = 0; j < units; j += RNN2C_X86_LANES) {                                            \
        const uint32_t lane = j % RNN2C_X86_BLOCK; /* 0, or 8 in the second half (AVX2) */    \
        const uint32_t n = rnn2c_x86_real(units, j);                                          \
        const int16_t *wj = w + (j / RNN2C_X86_BLOCK) * block_w + 2 * lane;                   \
        const int32_t *pj = p + (j / RNN2C_X86_BLOCK) * RNN2C_X86_PARAMS + lane;              \
        T part[RNN2C_X86_LANES];                                                              \
        T *hj = h + j;                                                                        \
        if (n < RNN2C_X86_LANES) { /* the last units: through a copy, the other lanes zero */ \
            for (k = 0; k < RNN2C_X86_LANES; ++k) {                                           \
                part[k] = k < n ? h[j + k] : 0;                                               \
            }                                                                                 \
            hj = part;                                                                        \
        }                                                                                     \
        rnn2c_x86_gru_out_##S(                                                                \
            hj, rnn2c_x86_gru16(wj, pj, 2 * x_groups, 2 * h_groups, v, rnn2c_x86_q15_##S(hj)));   \
        for (k = 0; hj == part && k < n; ++k) {                                               \
            h[j + k] = part[k];                                                               \
        }                                                                                     \
    }

/* LSTM step on the int16 copy; h and c updated in place. */
#define RNN2C_X86_LSTM_BODY(S, T)                                                             \
    const int16_t *w = d->w;                                                                  \
    const int32_t *p = d->p;                                                                  \
    const uint32_t pairs = 2 * ((uint32_t)x_groups + h_groups);                               \
    uint32_t j;                                                                               \
    uint32_t k;                                                                               \
    RNN2C_X86_OPAQUE(w);                                                                      \
    RNN2C_X86_OPAQUE(p);                                                                      \
    for (j = 0; j < units; j += RNN2C_X86_LANES) {                                            \
        const uint32_t lane = j % RNN2C_X86_BLOCK;                                            \
        const uint32_t n = rnn2c_x86_real(units, j);                                          \
        const int16_t *wj = w + (j / RNN2C_X86_BLOCK) * pairs * 4 * 2 * RNN2C_X86_BLOCK + 2 * lane; \
        const int32_t *pj = p + (j / RNN2C_X86_BLOCK) * RNN2C_X86_PARAMS + lane;              \
        T hpart[RNN2C_X86_LANES];                                                             \
        int16_t cpart[RNN2C_X86_LANES];                                                       \
        T *hj = h + j;                                                                        \
        int16_t *cj = c + j;                                                                  \
        if (n < RNN2C_X86_LANES) {                                                            \
            for (k = 0; k < RNN2C_X86_LANES; ++k) {                                           \
                cpart[k] = k < n ? c[j + k] : 0;                                              \
            }                                                                                 \
            hj = hpart;                                                                       \
            cj = cpart;                                                                       \
        }                                                                                     \
        rnn2c_x86_lstm_out_##S(hj, rnn2c_x86_lstm16(wj, pj, pairs, v, cj, frac));             \
        for (k = 0; hj == hpart && k < n; ++k) {                                              \
            h[j + k] = hpart[k];                                                              \
            c[j + k] = cpart[k];                                                              \
        }                                                                                     \
    }

#if RNN2C_X86_LANES == 16 && defined(__AVX512VNNI__)
/*
 * AVX-512 VNNI, a GRU (reset_after) or LSTM layer whose input and state are both int8: the
 * layer's byte copy of its weights (b, q) and vpdpbusd, which adds 4 products of an unsigned
 * byte and a signed byte per lane: 64 per instruction, twice vpdpwssd's. The input and the
 * state enter as x + 128 (unsigned), written over the int16 vector the step was given (each
 * byte from the element it replaces or one after it: read before it is overwritten); the
 * export took 128 * sum(w) of each part, shifted by that part's vector shift, out of the biases
 * (q), and each part's sums are shifted here: bias + (Sx << x_shift) + (Sh << h_shift) is the
 * int16 path's sum, as a 32-bit sum that wraps the same way (the true total fits: the
 * exporter's bound).
 */
#define RNN2C_X86_U8 1

RNN2C_INLINE __mmask64 rnn2c_x86_u8_mask(uint32_t n)
{
    return n >= 64u ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1u);
}

/* u[0 .. n4) = x + 128 as unsigned bytes (x ^ 0x80; the padding, whose weights are zero, 128) */
RNN2C_INLINE void rnn2c_x86_u8_bytes(unsigned char *u, const int8_t *x, uint32_t n, uint32_t n4)
{
    uint32_t i;
    for (i = 0; i < n4; i += 64) {
        const __m512i e = _mm512_maskz_loadu_epi8(rnn2c_x86_u8_mask(i < n ? n - i : 0), x + i);
        _mm512_mask_storeu_epi8(u + i, rnn2c_x86_u8_mask(n4 - i),
                                _mm512_xor_si512(e, _mm512_set1_epi8(-128)));
    }
}

/* The bytes of one step into the vector's storage: u[0 .. 4 x_groups) = the input (from the
 * vector's input part, x << x_shift, element i at RNN2C_VPOS(i)) + 128, then the state + 128.
 * Byte i is written after element RNN2C_VPOS(i) >= i - 1 was read, and every later element
 * lies at byte 2 (i - 1) or beyond: nothing is overwritten before it is read. */
RNN2C_INLINE unsigned char *rnn2c_x86_u8_input(int16_t *v, uint32_t x_groups, int x_shift,
                                               const int8_t *h, uint32_t units,
                                               uint32_t h_groups)
{
    unsigned char *u = (unsigned char *)(void *)v;
    uint32_t i;
    for (i = 0; i < 4 * x_groups; ++i) {
        u[i] = (unsigned char)((v[RNN2C_VPOS(i)] >> x_shift) + 128);
    }
    rnn2c_x86_u8_bytes(u + 4 * x_groups, h, units, 4 * h_groups);
    return u;
}

#define RNN2C_X86_U4(p) _mm512_set1_epi32((int)rnn2c_ld32(p)) /* 4 bytes of u in every lane */
#define RNN2C_X86_DPBUSD(acc, a, wp)                                                          \
    _mm512_dpbusd_epi32((acc), (a), _mm512_loadu_si512((const void *)(wp)))

/* GRU, reset_after=1: 16 units of one block from u (x_groups + h_groups groups of 4 bytes). */
RNN2C_INLINE __m512i rnn2c_x86_gru8(const int8_t *w, const int32_t *p, uint32_t x_groups,
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
        const __m512i a = RNN2C_X86_U4(u);
        zx = RNN2C_X86_DPBUSD(zx, a, w);
        rx = RNN2C_X86_DPBUSD(rx, a, w + 64);
        cx = RNN2C_X86_DPBUSD(cx, a, w + 128);
    }
    for (k = 0; k + 2 <= h_groups; k += 2, u += 8, w += 384) { /* z, r, candidate over h */
        const __m512i a = RNN2C_X86_U4(u);
        const __m512i b = RNN2C_X86_U4(u + 4);
        zh = RNN2C_X86_DPBUSD(zh, a, w);
        rh = RNN2C_X86_DPBUSD(rh, a, w + 64);
        ch = RNN2C_X86_DPBUSD(ch, a, w + 128);
        z2 = RNN2C_X86_DPBUSD(z2, b, w + 192);
        r2 = RNN2C_X86_DPBUSD(r2, b, w + 256);
        c2 = RNN2C_X86_DPBUSD(c2, b, w + 320);
    }
    if (k < h_groups) {
        const __m512i a = RNN2C_X86_U4(u);
        zh = RNN2C_X86_DPBUSD(zh, a, w);
        rh = RNN2C_X86_DPBUSD(rh, a, w + 64);
        ch = RNN2C_X86_DPBUSD(ch, a, w + 128);
    }
    zh = rnn2c_x86_sll(_mm512_add_epi32(zh, z2), hs);
    rh = rnn2c_x86_sll(_mm512_add_epi32(rh, r2), hs);
    ch = rnn2c_x86_sll(_mm512_add_epi32(ch, c2), hs);
    return rnn2c_x86_gru_gates(
        _mm512_add_epi32(_mm512_add_epi32(RNN2C_X86_BIAS(p, 0), rnn2c_x86_sll(zx, xs)), zh),
        _mm512_add_epi32(_mm512_add_epi32(RNN2C_X86_BIAS(p, 1), rnn2c_x86_sll(rx, xs)), rh),
        _mm512_add_epi32(RNN2C_X86_BIAS(p, 2), rnn2c_x86_sll(cx, xs)),
        _mm512_add_epi32(RNN2C_X86_BIAS(p, 3), ch), p, h_q15);
}

/* LSTM: 16 units of one block from u; c: their cells (updated); returns o * tanh(c). */
RNN2C_INLINE __m512i rnn2c_x86_lstm8(const int8_t *w, const int32_t *p, uint32_t x_groups,
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
        const __m512i a = RNN2C_X86_U4(u);
        s[0][0] = RNN2C_X86_DPBUSD(s[0][0], a, w);
        s[0][1] = RNN2C_X86_DPBUSD(s[0][1], a, w + 64);
        s[0][2] = RNN2C_X86_DPBUSD(s[0][2], a, w + 128);
        s[0][3] = RNN2C_X86_DPBUSD(s[0][3], a, w + 192);
    }
    for (k = 0; k + 2 <= h_groups; k += 2, u += 8, w += 512) {
        const __m512i a = RNN2C_X86_U4(u);
        const __m512i b = RNN2C_X86_U4(u + 4);
        s[1][0] = RNN2C_X86_DPBUSD(s[1][0], a, w);
        s[1][1] = RNN2C_X86_DPBUSD(s[1][1], a, w + 64);
        s[1][2] = RNN2C_X86_DPBUSD(s[1][2], a, w + 128);
        s[1][3] = RNN2C_X86_DPBUSD(s[1][3], a, w + 192);
        t[0] = RNN2C_X86_DPBUSD(t[0], b, w + 256);
        t[1] = RNN2C_X86_DPBUSD(t[1], b, w + 320);
        t[2] = RNN2C_X86_DPBUSD(t[2], b, w + 384);
        t[3] = RNN2C_X86_DPBUSD(t[3], b, w + 448);
    }
    if (k < h_groups) {
        const __m512i a = RNN2C_X86_U4(u);
        s[1][0] = RNN2C_X86_DPBUSD(s[1][0], a, w);
        s[1][1] = RNN2C_X86_DPBUSD(s[1][1], a, w + 64);
        s[1][2] = RNN2C_X86_DPBUSD(s[1][2], a, w + 128);
        s[1][3] = RNN2C_X86_DPBUSD(s[1][3], a, w + 192);
    }
    for (g = 0; g < 4; ++g) {
        t[g] = _mm512_add_epi32(_mm512_add_epi32(RNN2C_X86_BIAS(p, g), rnn2c_x86_sll(s[0][g], xs)),
                                rnn2c_x86_sll(_mm512_add_epi32(s[1][g], t[g]), hs));
    }
    return rnn2c_x86_lstm_gates(t[0], t[1], t[2], t[3], p, c, frac);
}

/* GRU step (reset_after=1), int8 input and state, on the byte copy. */
RNN2C_INLINE void rnn2c_x86_u8_gru_s8(const rnn2c_x86_layer_t *d, uint32_t units,
                                      uint32_t x_groups, uint32_t h_groups, int x_shift,
                                      int h_shift, int16_t *v, int8_t *h)
{
    const int8_t *w = d->b;
    const int32_t *p = d->q;
    const uint32_t block_w = ((uint32_t)x_groups + h_groups) * 3 * 64;
    const unsigned char *u = rnn2c_x86_u8_input(v, x_groups, x_shift, h, units, h_groups);
    uint32_t j;
    uint32_t k;
    RNN2C_X86_OPAQUE(w);
    RNN2C_X86_OPAQUE(p);
    for (j = 0; j < units; j += 16, w += block_w, p += RNN2C_X86_PARAMS) {
        const uint32_t n = rnn2c_x86_real(units, j);
        int8_t part[16];
        int8_t *hj = h + j;
        if (n < 16) {
            for (k = 0; k < 16; ++k) {
                part[k] = k < n ? h[j + k] : 0;
            }
            hj = part;
        }
        rnn2c_x86_gru_out_s8(hj, rnn2c_x86_gru8(w, p, x_groups, h_groups, u, x_shift, h_shift,
                                                rnn2c_x86_q15_s8(hj)));
        for (k = 0; hj == part && k < n; ++k) {
            h[j + k] = part[k];
        }
    }
}

/* LSTM step, int8 input and state, on the byte copy; h and c updated in place. */
RNN2C_INLINE void rnn2c_x86_u8_lstm_s8(const rnn2c_x86_layer_t *d, uint32_t units,
                                       uint32_t x_groups, uint32_t h_groups, int x_shift,
                                       int h_shift, int frac, int16_t *v, int8_t *h, int16_t *c)
{
    const int8_t *w = d->b;
    const int32_t *p = d->q;
    const uint32_t block_w = ((uint32_t)x_groups + h_groups) * 4 * 64;
    const unsigned char *u = rnn2c_x86_u8_input(v, x_groups, x_shift, h, units, h_groups);
    uint32_t j;
    uint32_t k;
    RNN2C_X86_OPAQUE(w);
    RNN2C_X86_OPAQUE(p);
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
        rnn2c_x86_lstm_out_s8(hj, rnn2c_x86_lstm8(w, p, x_groups, h_groups, u, x_shift, h_shift,
                                                  cj, frac));
        for (k = 0; hj == hpart && k < n; ++k) {
            h[j + k] = hpart[k];
            c[j + k] = cpart[k];
        }
    }
}
#define RNN2C_X86_U8_GRU(d, units, xg, hg, xs, hs, v, h)                                     \
    if ((d)->b != NULL) {                                                                     \
        rnn2c_x86_u8_gru_s8((d), (units), (xg), (hg), (xs), (hs), (v), (h));                  \
        return;                                                                               \
    }
#define RNN2C_X86_U8_LSTM(d, units, xg, hg, xs, hs, frac, v, h, c)                           \
    if ((d)->b != NULL) {                                                                     \
        rnn2c_x86_u8_lstm_s8((d), (units), (xg), (hg), (xs), (hs), (frac), (v), (h), (c));    \
        return;                                                                               \
    }
#else
#define RNN2C_X86_U8_GRU(d, units, xg, hg, xs, hs, v, h)
#define RNN2C_X86_U8_LSTM(d, units, xg, hg, xs, hs, frac, v, h, c)
#endif

/* The steps of a layer with an x86 copy: the byte copy's (RNN2C_X86_U8) where it has one, else
 * the int16 copy's. */
RNN2C_INLINE void rnn2c_x86_gru_s8(const rnn2c_x86_layer_t *d, uint32_t units, uint32_t x_groups,
                                   uint32_t h_groups, int x_shift, int h_shift, int16_t *v,
                                   int8_t *h)
{
    RNN2C_X86_U8_GRU(d, units, x_groups, h_groups, x_shift, h_shift, v, h)
    (void)x_shift;
    (void)h_shift;
    {
        RNN2C_X86_GRU_BODY(s8, int8_t)
    }
}

RNN2C_INLINE void rnn2c_x86_gru_s16(const rnn2c_x86_layer_t *d, uint32_t units,
                                    uint32_t x_groups, uint32_t h_groups, const int16_t *v,
                                    int16_t *h)
{
    RNN2C_X86_GRU_BODY(s16, int16_t)
}

RNN2C_INLINE void rnn2c_x86_lstm_s8(const rnn2c_x86_layer_t *d, uint32_t units,
                                    uint32_t x_groups, uint32_t h_groups, int x_shift,
                                    int h_shift, int frac, int16_t *v, int8_t *h, int16_t *c)
{
    RNN2C_X86_U8_LSTM(d, units, x_groups, h_groups, x_shift, h_shift, frac, v, h, c)
    (void)x_shift;
    (void)h_shift;
    {
        RNN2C_X86_LSTM_BODY(s8, int8_t)
    }
}

RNN2C_INLINE void rnn2c_x86_lstm_s16(const rnn2c_x86_layer_t *d, uint32_t units,
                                     uint32_t x_groups, uint32_t h_groups, int frac,
                                     const int16_t *v, int16_t *h, int16_t *c)
{
    RNN2C_X86_LSTM_BODY(s16, int16_t)
}

/* The hooks of rnn2c_gru_* / rnn2c_lstm_* (see rnn2c_ref.h): a layer whose struct points at an
 * x86 copy runs the step above and the hook is 1; else 0 and the layer's own kernel runs. */
#define rnn2c_isa_gru_s8(p, v, h)                                                             \
    ((p)->isa != NULL && (rnn2c_x86_gru_s8((p)->isa, (p)->units, (p)->x_groups, (p)->h_groups, \
                                           (p)->x_shift, (p)->h_shift, (v), (h)),             \
                          1))
#define rnn2c_isa_gru_s16(p, v, h)                                                            \
    ((p)->isa != NULL &&                                                                      \
     (rnn2c_x86_gru_s16((p)->isa, (p)->units, (p)->x_groups, (p)->h_groups, (v), (h)), 1))
#define rnn2c_isa_lstm_s8(p, v, h, c)                                                         \
    ((p)->isa != NULL &&                                                                      \
     (rnn2c_x86_lstm_s8((p)->isa, (p)->units, (p)->x_groups, (p)->h_groups, (p)->x_shift,     \
                        (p)->h_shift, (p)->cell_frac_bits, (v), (h), (c)),                    \
      1))
#define rnn2c_isa_lstm_s16(p, v, h, c)                                                        \
    ((p)->isa != NULL && (rnn2c_x86_lstm_s16((p)->isa, (p)->units, (p)->x_groups,             \
                                             (p)->h_groups, (p)->cell_frac_bits, (v), (h),    \
                                             (c)),                                            \
                          1))

#endif /* RNN2C_X86_H */
