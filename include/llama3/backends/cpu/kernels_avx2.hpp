#pragma once
// AVX2 + FMA + F16C kernels for y = x W^T (see matmul.hpp for when each runs):
//   - gemv_avx2: up to 4 rows of x against W rows, each W row streamed once, converted to float in registers;
//   - gemm_avx2: W packed into float panels of 16 columns (8 x 8 register transposes), a 6 x 16 register tile;
//   - gemv_quant_avx2 / gemm_quant_avx2: quantized blocks to floats, then the same FMAs (f32 maths);
//   - gemv_int8_avx2: quantized blocks (Q8_0, Q4_0, Q4_K, Q6_K) against int8 activations, exact int32 sums
//     (vpmaddubsw/vpmaddwd).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "llama3/backends/cpu/isa.hpp"
#include "llama3/backends/cpu/matmul_reference.hpp"
#include "llama3/core/dtype.hpp"
#include "llama3/core/quant.hpp"

#if LLAMA3_X86

namespace llama3::cpu {

// ---- AVX2 + FMA -------------------------------------------------------------------------------------------------

LLAMA3_TARGET_AVX2 inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
LLAMA3_TARGET_AVX2 inline __m256 load8(const bf16* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
LLAMA3_TARGET_AVX2 inline __m256 load8(const f16* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

LLAMA3_TARGET_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// m (1..4) rows of x against W rows [j0, j1): each W row is read once for all m. A row's arithmetic (two
// accumulators, the same order of FMAs) does not depend on m, so a token's logits are bit-identical whether it is
// decoded alone or verified beside draft tokens (prompt lookup), and greedy decoding with lookup is plain greedy.
template <int M, class W>
LLAMA3_TARGET_AVX2 void gemv_avx2(const float* x, std::int64_t k, const W* w, std::int64_t j0, std::int64_t j1,
                                  float* y, std::int64_t ldy) {
  for (std::int64_t j = j0; j < j1; ++j) {
    const W* row = w + j * k;
    __m256 acc[M][2];
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    std::int64_t p = 0;
    for (; p + 16 <= k; p += 16) {
      _mm_prefetch(reinterpret_cast<const char*>(row + p) + 1024, _MM_HINT_T0);
      if constexpr (sizeof(W) == 4) _mm_prefetch(reinterpret_cast<const char*>(row + p) + 1024 + 32, _MM_HINT_T0);
      const __m256 w0 = load8(row + p), w1 = load8(row + p + 8);
      for (int i = 0; i < M; ++i) {
        acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * k + p), w0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * k + p + 8), w1, acc[i][1]);
      }
    }
    for (int i = 0; i < M; ++i) {
      float s = hsum(_mm256_add_ps(acc[i][0], acc[i][1]));
      for (std::int64_t q = p; q < k; ++q) s += x[i * k + q] * to_float(row[q]);
      y[i * ldy + j] = s;
    }
  }
}

LLAMA3_TARGET_AVX2 inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5,
                                           __m256& r6, __m256& r7) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE),
               s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE),
               s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(s0, s4, 0x20);
  r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
  r2 = _mm256_permute2f128_ps(s2, s6, 0x20);
  r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
  r4 = _mm256_permute2f128_ps(s0, s4, 0x31);
  r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
  r6 = _mm256_permute2f128_ps(s2, s6, 0x31);
  r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Packs W rows [j, j + 16) x columns [p0, p0 + kc) as float, k-major: panel[p][c] = W[j + c][p0 + p], converting
// and transposing 8 x 8 blocks in registers. Rows at or past `n` are zero.
template <class W>
LLAMA3_TARGET_AVX2 void pack_panel(const W* w, std::int64_t k, std::int64_t n, std::int64_t j, std::int64_t p0,
                                   std::int64_t kc, float* panel) {
  const std::int64_t rows = std::min<std::int64_t>(16, n - j);
  std::int64_t p = 0;
  if (rows == 16) {
    for (; p + 8 <= kc; p += 8) {
      for (int g = 0; g < 2; ++g) {
        const W* src = w + (j + 8 * g) * k + p0 + p;
        __m256 r0 = load8(src), r1 = load8(src + k), r2 = load8(src + 2 * k), r3 = load8(src + 3 * k),
               r4 = load8(src + 4 * k), r5 = load8(src + 5 * k), r6 = load8(src + 6 * k), r7 = load8(src + 7 * k);
        transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
        float* dst = panel + p * 16 + 8 * g;
        _mm256_store_ps(dst, r0);
        _mm256_store_ps(dst + 16, r1);
        _mm256_store_ps(dst + 32, r2);
        _mm256_store_ps(dst + 48, r3);
        _mm256_store_ps(dst + 64, r4);
        _mm256_store_ps(dst + 80, r5);
        _mm256_store_ps(dst + 96, r6);
        _mm256_store_ps(dst + 112, r7);
      }
    }
  }
  for (std::int64_t c = 0; c < 16; ++c) {  // the rest: a partial panel, or the last columns
    const W* src = w + (j + c) * k + p0;
    for (std::int64_t q = p; q < kc; ++q) panel[q * 16 + c] = c < rows ? to_float(src[q]) : 0.0f;
  }
}

// y[i.., j..j+16) += x[i.., p0..p0+kc) * panel, for MR rows of x. The twelve accumulators are named variables:
// kept in an array, GCC stores them back to the stack on every step.
template <int MR>
LLAMA3_TARGET_AVX2 void tile_avx2(const float* x, std::int64_t k, std::int64_t p0, std::int64_t kc, const float* panel,
                                  float* y, std::int64_t ldy, std::int64_t cols) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const float* x0 = x + p0;
  const float* x1 = x0 + (MR > 1 ? k : 0);
  const float* x2 = x0 + (MR > 2 ? 2 * k : 0);
  const float* x3 = x0 + (MR > 3 ? 3 * k : 0);
  const float* x4 = x0 + (MR > 4 ? 4 * k : 0);
  const float* x5 = x0 + (MR > 5 ? 5 * k : 0);
  for (std::int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(panel + p * 16), b1 = _mm256_load_ps(panel + p * 16 + 8);
    __m256 a = _mm256_broadcast_ss(x0 + p);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    if constexpr (MR > 1) {
      a = _mm256_broadcast_ss(x1 + p);
      c10 = _mm256_fmadd_ps(a, b0, c10);
      c11 = _mm256_fmadd_ps(a, b1, c11);
    }
    if constexpr (MR > 2) {
      a = _mm256_broadcast_ss(x2 + p);
      c20 = _mm256_fmadd_ps(a, b0, c20);
      c21 = _mm256_fmadd_ps(a, b1, c21);
    }
    if constexpr (MR > 3) {
      a = _mm256_broadcast_ss(x3 + p);
      c30 = _mm256_fmadd_ps(a, b0, c30);
      c31 = _mm256_fmadd_ps(a, b1, c31);
    }
    if constexpr (MR > 4) {
      a = _mm256_broadcast_ss(x4 + p);
      c40 = _mm256_fmadd_ps(a, b0, c40);
      c41 = _mm256_fmadd_ps(a, b1, c41);
    }
    if constexpr (MR > 5) {
      a = _mm256_broadcast_ss(x5 + p);
      c50 = _mm256_fmadd_ps(a, b0, c50);
      c51 = _mm256_fmadd_ps(a, b1, c51);
    }
  }
  // y row += (lo, hi). A macro, not a function: taking the accumulators' addresses makes GCC keep them in memory.
#define LLAMA3_ADD_ROW(yr, lo, hi)                                          \
  do {                                                                     \
    if (cols == 16) {                                                      \
      _mm256_storeu_ps(yr, _mm256_add_ps(_mm256_loadu_ps(yr), lo));        \
      _mm256_storeu_ps(yr + 8, _mm256_add_ps(_mm256_loadu_ps(yr + 8), hi)); \
    } else {                                                               \
      alignas(32) float tmp[16];                                           \
      _mm256_store_ps(tmp, lo);                                            \
      _mm256_store_ps(tmp + 8, hi);                                        \
      for (std::int64_t c = 0; c < cols; ++c) (yr)[c] += tmp[c];           \
    }                                                                      \
  } while (0)
  LLAMA3_ADD_ROW(y, c00, c01);
  if constexpr (MR > 1) LLAMA3_ADD_ROW(y + ldy, c10, c11);
  if constexpr (MR > 2) LLAMA3_ADD_ROW(y + 2 * ldy, c20, c21);
  if constexpr (MR > 3) LLAMA3_ADD_ROW(y + 3 * ldy, c30, c31);
  if constexpr (MR > 4) LLAMA3_ADD_ROW(y + 4 * ldy, c40, c41);
  if constexpr (MR > 5) LLAMA3_ADD_ROW(y + 5 * ldy, c50, c51);
#undef LLAMA3_ADD_ROW
}

// y[0..m, 0..cols) += x[0..m, p0..p0+kc) * panel: 6-row tiles, then one tile for the rest.
LLAMA3_TARGET_AVX2 inline void tiles_avx2(const float* x, std::int64_t m, std::int64_t k, std::int64_t p0,
                                          std::int64_t kc, const float* panel, float* y, std::int64_t ldy,
                                          std::int64_t cols) {
  std::int64_t i = 0;
  for (; i + 6 <= m; i += 6) tile_avx2<6>(x + i * k, k, p0, kc, panel, y + i * ldy, ldy, cols);
  switch (m - i) {
    case 5: tile_avx2<5>(x + i * k, k, p0, kc, panel, y + i * ldy, ldy, cols); break;
    case 4: tile_avx2<4>(x + i * k, k, p0, kc, panel, y + i * ldy, ldy, cols); break;
    case 3: tile_avx2<3>(x + i * k, k, p0, kc, panel, y + i * ldy, ldy, cols); break;
    case 2: tile_avx2<2>(x + i * k, k, p0, kc, panel, y + i * ldy, ldy, cols); break;
    case 1: tile_avx2<1>(x + i * k, k, p0, kc, panel, y + i * ldy, ldy, cols); break;
    default: break;
  }
}

// Columns [j0, j1) of y = x W^T for any m, k-blocked so that the x block stays in L2 and a panel in L1.
template <class W>
LLAMA3_TARGET_AVX2 void gemm_avx2(const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t /*n*/,
                                  std::int64_t j0, std::int64_t j1, float* y, std::int64_t ldy) {
  constexpr std::int64_t kc_max = 256;
  alignas(64) float panel[kc_max * 16];
  for (std::int64_t i = 0; i < m; ++i) std::fill(y + i * ldy + j0, y + i * ldy + j1, 0.0f);
  for (std::int64_t p0 = 0; p0 < k; p0 += kc_max) {
    const std::int64_t kc = std::min(kc_max, k - p0);
    for (std::int64_t j = j0; j < j1; j += 16) {
      const std::int64_t cols = std::min<std::int64_t>(16, j1 - j);
      pack_panel(w, k, j1, j, p0, kc, panel);
      tiles_avx2(x, m, k, p0, kc, panel, y + j, ldy, cols);
    }
  }
}

// ---- quantized weights: blocks become floats in registers (Q8_0, Q4_0) or in an L1 buffer (K-quants), then the
// same FMAs as the float kernels. Activations stay float, so the result is f32 maths on the dequantized weights.

// The 32 weights of a block as four vectors of 8, scaled.
LLAMA3_TARGET_AVX2 inline void load_block(const BlockQ8_0& b, __m256 v[4]) {
  const __m256 d = _mm256_set1_ps(static_cast<float>(b.d));
  for (int g = 0; g < 4; ++g) {
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + 8 * g));
    v[g] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
  }
}
LLAMA3_TARGET_AVX2 inline void load_block(const BlockQ4_0& b, __m256 v[4]) {
  const __m256 d = _mm256_set1_ps(static_cast<float>(b.d));
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, mask), eight);                     // weights 0..15
  const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight);  // weights 16..31
  v[0] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)));
  v[1] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))));
  v[2] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)));
  v[3] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))));
}

// m (1..4) rows of x against quantized W rows [j0, j1).
template <int M, class Q>
LLAMA3_TARGET_AVX2 void gemv_quant_avx2(const float* x, std::int64_t k, const Q* w, std::int64_t j0, std::int64_t j1,
                                        float* y, std::int64_t ldy) {
  constexpr int E = Q::elements;
  const std::int64_t nb = k / E;
  alignas(32) float buf[E];
  for (std::int64_t j = j0; j < j1; ++j) {
    const Q* row = w + j * nb;
    __m256 acc[M][2];
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < nb; ++b) {
      _mm_prefetch(reinterpret_cast<const char*>(row + b) + 1024, _MM_HINT_T0);
      if constexpr (E == 32) {
        __m256 v[4];
        load_block(row[b], v);
        for (int i = 0; i < M; ++i) {
          const float* xi = x + i * k + b * 32;
          acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xi), v[0], acc[i][0]);
          acc[i][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xi + 8), v[1], acc[i][1]);
          acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xi + 16), v[2], acc[i][0]);
          acc[i][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xi + 24), v[3], acc[i][1]);
        }
      } else {
        _mm_prefetch(reinterpret_cast<const char*>(row + b) + 1024 + 64, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(row + b) + 1024 + 128, _MM_HINT_T0);
        dequantize(row[b], buf);
        for (int i = 0; i < M; ++i) {
          const float* xi = x + i * k + b * E;
          for (int q = 0; q < E; q += 16) {
            acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xi + q), _mm256_load_ps(buf + q), acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xi + q + 8), _mm256_load_ps(buf + q + 8), acc[i][1]);
          }
        }
      }
    }
    for (int i = 0; i < M; ++i) y[i * ldy + j] = hsum(_mm256_add_ps(acc[i][0], acc[i][1]));
  }
}

// Prefill: 16 rows x kc columns dequantized into a float scratch, then packed as float weights are.
template <class Q>
LLAMA3_TARGET_AVX2 void gemm_quant_avx2(const float* x, std::int64_t m, std::int64_t k, const Q* w, std::int64_t j0,
                                        std::int64_t j1, float* y, std::int64_t ldy) {
  constexpr std::int64_t kc_max = 256;  // a multiple of every block size but Q4_0x32's (dequantize_span)
  alignas(64) float panel[kc_max * 16];
  alignas(64) float rows[16 * kc_max];
  const std::int64_t nb = k / Q::elements;
  for (std::int64_t i = 0; i < m; ++i) std::fill(y + i * ldy + j0, y + i * ldy + j1, 0.0f);
  for (std::int64_t p0 = 0; p0 < k; p0 += kc_max) {
    const std::int64_t kc = std::min(kc_max, k - p0);
    for (std::int64_t j = j0; j < j1; j += 16) {
      const std::int64_t cols = std::min<std::int64_t>(16, j1 - j);
      for (std::int64_t c = 0; c < cols; ++c) {
        dequantize_span(w + (j + c) * nb, p0, kc, rows + c * kc);
      }
      pack_panel(static_cast<const float*>(rows), kc, cols, 0, 0, kc, panel);
      tiles_avx2(x, m, k, p0, kc, panel, y + j, ldy, cols);
    }
  }
}

// 32 int8 weights times 32 int8 activations: eight int32 sums of four neighbours each, as floats (lanes 0-3 hold
// elements 0-15, lanes 4-7 elements 16-31). |w| <= 127 and |x| <= 127 keep vpmaddubsw's int16 pairs exact.
LLAMA3_TARGET_AVX2 inline __m256 dot_i8(__m256i w, __m256i x) {
  const __m256i dot16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(dot16, _mm256_set1_epi16(1)));
}

LLAMA3_TARGET_AVX2 inline __m256i load_i8(const BlockQ8_0& b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
}
// Q4_0's nibbles as they are (0..15; the weight is the nibble minus 8): element i is the low nibble of qs[i], element
// 16 + i the high one.
LLAMA3_TARGET_AVX2 inline __m256i load_u4(const BlockQ4_0& b) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

// Unsigned 4-bit weights times int8 activations: vpmaddubsw takes them as they are.
LLAMA3_TARGET_AVX2 inline __m256 dot_u4(__m256i w, __m256i x) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
}

LLAMA3_TARGET_AVX2 inline float half_to_float(f16 h) { return _cvtsh_ss(h.bits); }  // F16C: exact

// One Q6_K block (256 weights) against 8 activation blocks, into acc: 4 chunks of 32 in each half of 128, every
// chunk with two 16-weight scales.
template <int M>
LLAMA3_TARGET_AVX2 inline void dot_q6_k(const BlockQ6_K& q, const Int8Rows& x, std::int64_t i0, std::int64_t b0,
                                         __m256* acc) {
  alignas(32) float scale[16];
  const float d = half_to_float(q.d);
  for (int i = 0; i < 16; ++i) scale[i] = d * static_cast<float>(q.scales[i]);
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
  for (int h = 0; h < 2; ++h) {
    const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.ql + 64 * h));
    const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.ql + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.qh + 32 * h));
    const __m256i c[4] = {
        _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4)),
        _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4))};
    for (int ch = 0; ch < 4; ++ch) {
      const float* sc = scale + 8 * h + 2 * ch;
      const __m256 s = _mm256_set_m128(_mm_broadcast_ss(sc + 1), _mm_broadcast_ss(sc));
      const __m256i wv = _mm256_sub_epi8(c[ch], off);
      for (int i = 0; i < M; ++i) {
        const std::int64_t b = b0 + h * 4 + ch;
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q(i0 + i, b)));
        acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(s, _mm256_set1_ps(x.scale(i0 + i, b))), dot_i8(wv, xv), acc[i]);
      }
    }
  }
}

// One Q4_K block (256 weights: 8 sub-blocks of 32, each with a 6-bit scale and min) against 8 activation blocks:
// w = d sc q - dmin m, so sum w x = d sc sum q x - dmin m sum x, the first exact in integers, the second from the
// activations' block sums (into offset, subtracted at the end).
template <int M>
LLAMA3_TARGET_AVX2 inline void dot_q4_k(const BlockQ4_K& q, const Int8Rows& x, std::int64_t i0, std::int64_t b0,
                                         __m256* acc, float* offset) {
  const float d = half_to_float(q.d), dmin = half_to_float(q.dmin);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int c = 0; c < 4; ++c) {  // qs[32c .. 32c + 32): sub-block 2c in the low nibbles, 2c + 1 in the high ones
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.qs + 32 * c));
    const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
    std::uint8_t sc0, m0, sc1, m1;
    quant_detail::scale_min_k4(2 * c, q.scales, sc0, m0);
    quant_detail::scale_min_k4(2 * c + 1, q.scales, sc1, m1);
    const float ds0 = d * sc0, ds1 = d * sc1, dm0 = dmin * m0, dm1 = dmin * m1;
    for (int i = 0; i < M; ++i) {
      const std::int64_t r = i0 + i, b = b0 + 2 * c;
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q(r, b)));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q(r, b + 1)));
      acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(ds0 * x.scale(r, b)), dot_u4(lo, v0), acc[i]);
      acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(ds1 * x.scale(r, b + 1)), dot_u4(hi, v1), acc[i]);
      offset[i] += dm0 * x.block_sum(r, b) + dm1 * x.block_sum(r, b + 1);
    }
  }
}

// Block b of a W row against the M x rows, into acc (one of the two accumulator sets). Always inlined, so that
// the accumulators stay in registers (picked by the block's parity at run time, they lived on the stack).
template <int M, class Q>
LLAMA3_TARGET_AVX2 __attribute__((always_inline)) inline void int8_block_avx2(const Q* row, std::int64_t b,
                                                                              const Int8Rows& x, std::int64_t i0,
                                                                              __m256 (&acc)[M], float (&offset)[M]) {
  constexpr std::int64_t blocks_a_line = (64 + sizeof(Q) - 1) / sizeof(Q);
  if constexpr (Q::elements == 256) {
    for (int line = 0; line < 256; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(row + b) + 1024 + line, _MM_HINT_T0);
    }
    if constexpr (std::is_same_v<Q, BlockQ6_K>) {
      dot_q6_k<M>(row[b], x, i0, b * 8, acc);
    } else {
      dot_q4_k<M>(row[b], x, i0, b * 8, acc, offset);
    }
  } else {
    // One prefetch a cache line or so (a block is 34 or 18 bytes).
    if (b % blocks_a_line == 0) _mm_prefetch(reinterpret_cast<const char*>(row + b) + 1024, _MM_HINT_T0);
    const float dw = half_to_float(row[b].d);
    if constexpr (std::is_same_v<Q, BlockQ4_0>) {  // sum (u - 8) x = sum u x - 8 sum x
      const __m256i wv = load_u4(row[b]);
      for (int i = 0; i < M; ++i) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q(i0 + i, b)));
        acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x.scale(i0 + i, b)), dot_u4(wv, xv), acc[i]);
        offset[i] += 8.0f * dw * x.block_sum(i0 + i, b);
      }
    } else {
      const __m256i wv = load_i8(row[b]);
      for (int i = 0; i < M; ++i) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q(i0 + i, b)));
        acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x.scale(i0 + i, b)), dot_i8(wv, xv), acc[i]);
      }
    }
  }
}

// Rows i0 .. i0 + M (M = 1..4) of x against W rows [j0, j1).
template <int M, class Q>
LLAMA3_TARGET_AVX2 void gemv_int8_avx2(const Int8Rows& x, std::int64_t i0, const Q* w, std::int64_t j0,
                                       std::int64_t j1, float* y, std::int64_t ldy) {
  const std::int64_t nb = x.k / Q::elements;
  for (std::int64_t j = j0; j < j1; ++j) {
    const Q* row = w + j * nb;
    __m256 even[M], odd[M];  // even and odd blocks: the FMA latency does not pace the stream
    float offset[M] = {};
    for (int i = 0; i < M; ++i) even[i] = odd[i] = _mm256_setzero_ps();
    std::int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      int8_block_avx2<M>(row, b, x, i0, even, offset);
      int8_block_avx2<M>(row, b + 1, x, i0, odd, offset);
    }
    if (b < nb) int8_block_avx2<M>(row, b, x, i0, even, offset);
    for (int i = 0; i < M; ++i) y[i * ldy + j] = hsum(_mm256_add_ps(even[i], odd[i])) - offset[i];
  }
}

}  // namespace llama3::cpu

#endif  // LLAMA3_X86
