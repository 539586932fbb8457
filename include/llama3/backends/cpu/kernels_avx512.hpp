#pragma once
// AVX-512 kernels for y = x W^T (see matmul.hpp for when each runs):
//   - gemv_avx512: up to 4 rows of x against W rows, each W row streamed once and widened to float in registers;
//   - gemm_avx512: W packed into float panels of 32 columns (16 x 16 register transposes), a 12 x 32 register tile
//     of FMAs: f32 maths, as the other kernels;
//   - gemm_bf16_avx512 (AVX512_BF16): bf16 W packed as pairs along k, x rounded to bf16, a 12 x 32 tile of
//     vdpbf16ps (two products a lane an instruction: twice the FLOP rate of f32 FMAs). This is what llama.cpp and
//     PyTorch's bf16 models compute; it runs only when asked for (MatmulPrecision::bf16);
//   - gemv_int8_avx512: quantized blocks against int8 activations, exact int32 sums with VNNI's vpdpbusd.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "llama3/backends/cpu/isa.hpp"
#include "llama3/backends/cpu/matmul_reference.hpp"
#include "llama3/core/dtype.hpp"
#include "llama3/core/quant.hpp"

#if LLAMA3_X86

// GCC 12's AVX-512 intrinsics build vectors from _mm512_undefined_*(), which -W(maybe-)uninitialized reports in every
// caller (a false positive, GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace llama3::cpu {

// 16 weights as floats; the masked forms read only the first lanes of `mask` and give 0 in the others.
LLAMA3_TARGET_AVX512 inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
LLAMA3_TARGET_AVX512 inline __m512 load16(const bf16* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
LLAMA3_TARGET_AVX512 inline __m512 load16(const f16* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
LLAMA3_TARGET_AVX512 inline __m512 load16(const float* p, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }
LLAMA3_TARGET_AVX512 inline __m512 load16(const bf16* p, __mmask16 mask) {
  const __m256i h = _mm256_maskz_loadu_epi16(mask, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
LLAMA3_TARGET_AVX512 inline __m512 load16(const f16* p, __mmask16 mask) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}

// m (1..4) rows of x against W rows [j0, j1), each W row read once for all m. As in gemv_avx2, a row's arithmetic
// (two accumulators, the same order of FMAs, masked tail) does not depend on m: prompt lookup stays exact.
template <int M, class W>
LLAMA3_TARGET_AVX512 void gemv_avx512(const float* x, std::int64_t k, const W* w, std::int64_t j0, std::int64_t j1,
                                      float* y, std::int64_t ldy) {
  for (std::int64_t j = j0; j < j1; ++j) {
    const W* row = w + j * k;
    __m512 acc[M][2];
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    std::int64_t p = 0;
    for (; p + 32 <= k; p += 32) {
      const char* ahead = reinterpret_cast<const char*>(row + p) + 1024;
      _mm_prefetch(ahead, _MM_HINT_T0);
      if constexpr (sizeof(W) == 4) _mm_prefetch(ahead + 64, _MM_HINT_T0);
      const __m512 w0 = load16(row + p), w1 = load16(row + p + 16);
      for (int i = 0; i < M; ++i) {
        acc[i][0] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * k + p), w0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * k + p + 16), w1, acc[i][1]);
      }
    }
    for (; p < k; p += 16) {
      const std::int64_t left = k - p;
      const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
      const __m512 w0 = load16(row + p, mask);
      for (int i = 0; i < M; ++i) acc[i][0] = _mm512_fmadd_ps(load16(x + i * k + p, mask), w0, acc[i][0]);
    }
    for (int i = 0; i < M; ++i) y[i * ldy + j] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]));
  }
}

// r[q] becomes column q of the 16 x 16 matrix whose rows were r[0..15] (32-bit elements).
LLAMA3_TARGET_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int a = 0; a < 8; ++a) {
    t[2 * a] = _mm512_unpacklo_ps(r[2 * a], r[2 * a + 1]);
    t[2 * a + 1] = _mm512_unpackhi_ps(r[2 * a], r[2 * a + 1]);
  }
  for (int b = 0; b < 4; ++b) {  // u[4b + c], 128-bit lane L: column 4L + c of rows 4b..4b+3
    const __m512d t0 = _mm512_castps_pd(t[4 * b]), t1 = _mm512_castps_pd(t[4 * b + 1]),
                  t2 = _mm512_castps_pd(t[4 * b + 2]), t3 = _mm512_castps_pd(t[4 * b + 3]);
    u[4 * b] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    u[4 * b + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    u[4 * b + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    u[4 * b + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 w0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    const __m512 w2 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE), w3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(w0, w1, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(w0, w1, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(w2, w3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(w2, w3, 0xDD);
  }
}

// ---- f32 GEMM ---------------------------------------------------------------------------------------------------

inline constexpr std::int64_t nr_avx512 = 32;  // columns of a packed panel

// Packs W rows [j, j + 32) x columns [p0, p0 + kc) as float, k-major: panel[p][c] = W[j + c][p0 + p]. Rows at or
// past `n` are zero.
template <class W>
LLAMA3_TARGET_AVX512 void pack_panel_avx512(const W* w, std::int64_t k, std::int64_t n, std::int64_t j,
                                            std::int64_t p0, std::int64_t kc, float* panel) {
  const std::int64_t rows = std::min<std::int64_t>(nr_avx512, n - j);
  std::int64_t p = 0;
  if (rows == nr_avx512) {
    for (; p + 16 <= kc; p += 16) {
      for (int g = 0; g < 2; ++g) {
        __m512 r[16];
        for (int c = 0; c < 16; ++c) r[c] = load16(w + (j + 16 * g + c) * k + p0 + p);
        transpose16(r);
        for (int q = 0; q < 16; ++q) _mm512_store_ps(panel + (p + q) * nr_avx512 + 16 * g, r[q]);
      }
    }
  }
  for (std::int64_t c = 0; c < nr_avx512; ++c) {  // the rest: a partial panel, or the last columns
    const W* src = w + (j + c) * k + p0;
    for (std::int64_t q = p; q < kc; ++q) panel[q * nr_avx512 + c] = c < rows ? to_float(src[q]) : 0.0f;
  }
}

// The two kinds of tile step: f32 FMAs of a broadcast x value with 16 panel floats, and vdpbf16ps of a broadcast
// pair of bf16 x values with 16 panel pairs.
struct TileF32 {
  using X = float;
  using Panel = float;
  static constexpr std::int64_t step = 1;  // x elements a step
  LLAMA3_TARGET_AVX512 static __m512 a(const float* x) { return _mm512_set1_ps(*x); }
  LLAMA3_TARGET_AVX512 static __m512 b(const float* panel) { return _mm512_load_ps(panel); }
  LLAMA3_TARGET_AVX512 static __m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
};
struct TileBf16 {
  using X = bf16;
  using Panel = std::uint32_t;
  static constexpr std::int64_t step = 2;
  LLAMA3_TARGET_AVX512_BF16 static __m512bh a(const bf16* x) {
    std::int32_t pair;
    std::memcpy(&pair, x, 4);
    return (__m512bh)_mm512_set1_epi32(pair);
  }
  LLAMA3_TARGET_AVX512_BF16 static __m512bh b(const std::uint32_t* panel) { return (__m512bh)_mm512_load_si512(panel); }
  LLAMA3_TARGET_AVX512_BF16 static __m512 fma(__m512bh a, __m512bh b, __m512 c) { return _mm512_dpbf16_ps(c, a, b); }
};

// y[0..MR, 0..cols) += x[0..MR, 0..steps * T::step) times the panel (steps x 32, k-major), for MR rows of x, k apart.
// The accumulators are named variables, two a row (an array of them gets spilled to the stack).
#define LLAMA3_TILE_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define LLAMA3_DECLARE(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define LLAMA3_STEP(i)                                 \
  if constexpr (MR > i) {                              \
    const auto a = T::a(x + i * k + p * T::step);      \
    c##i##0 = T::fma(a, b0, c##i##0);                  \
    c##i##1 = T::fma(a, b1, c##i##1);                  \
  }
#define LLAMA3_STORE(i)                                                                           \
  if constexpr (MR > i) {                                                                         \
    float* yr = y + i * ldy;                                                                      \
    _mm512_mask_storeu_ps(yr, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, yr), c##i##0));        \
    _mm512_mask_storeu_ps(yr + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, yr + 16), c##i##1)); \
  }

// (Compiled for AVX512_BF16 so that both kinds of step inline; the f32 one emits no BF16 instruction.)
template <int MR, class T>
LLAMA3_TARGET_AVX512_BF16 void tile_avx512(const typename T::X* x, std::int64_t k, std::int64_t steps,
                                           const typename T::Panel* panel, float* y, std::int64_t ldy,
                                           std::int64_t cols) {
  LLAMA3_TILE_ROWS(LLAMA3_DECLARE)
  for (std::int64_t p = 0; p < steps; ++p) {
    const auto b0 = T::b(panel + p * 32), b1 = T::b(panel + p * 32 + 16);
    LLAMA3_TILE_ROWS(LLAMA3_STEP)
  }
  const auto m0 = static_cast<__mmask16>(cols >= 16 ? 0xFFFFu : (1u << cols) - 1);
  const auto m1 = static_cast<__mmask16>(cols >= 32 ? 0xFFFFu : cols <= 16 ? 0u : (1u << (cols - 16)) - 1);
  LLAMA3_TILE_ROWS(LLAMA3_STORE)
}
#undef LLAMA3_TILE_ROWS
#undef LLAMA3_DECLARE
#undef LLAMA3_STEP
#undef LLAMA3_STORE

inline constexpr int mr_avx512 = 12;  // rows of a register tile: 24 accumulators, 2 panel vectors, 1 broadcast

// y[0..m, 0..cols) += x[0..m, p0 ..) times the panel: 12-row tiles, then one tile for the rest.
template <class T>
inline void tiles_avx512(const typename T::X* x, std::int64_t m, std::int64_t k, std::int64_t steps,
                         const typename T::Panel* panel, float* y, std::int64_t ldy, std::int64_t cols) {
  std::int64_t i = 0;
  for (; i + mr_avx512 <= m; i += mr_avx512) tile_avx512<mr_avx512, T>(x + i * k, k, steps, panel, y + i * ldy, ldy, cols);
  x += i * k;
  y += i * ldy;
  switch (m - i) {
    case 11: return tile_avx512<11, T>(x, k, steps, panel, y, ldy, cols);
    case 10: return tile_avx512<10, T>(x, k, steps, panel, y, ldy, cols);
    case 9: return tile_avx512<9, T>(x, k, steps, panel, y, ldy, cols);
    case 8: return tile_avx512<8, T>(x, k, steps, panel, y, ldy, cols);
    case 7: return tile_avx512<7, T>(x, k, steps, panel, y, ldy, cols);
    case 6: return tile_avx512<6, T>(x, k, steps, panel, y, ldy, cols);
    case 5: return tile_avx512<5, T>(x, k, steps, panel, y, ldy, cols);
    case 4: return tile_avx512<4, T>(x, k, steps, panel, y, ldy, cols);
    case 3: return tile_avx512<3, T>(x, k, steps, panel, y, ldy, cols);
    case 2: return tile_avx512<2, T>(x, k, steps, panel, y, ldy, cols);
    case 1: return tile_avx512<1, T>(x, k, steps, panel, y, ldy, cols);
    default: return;
  }
}

// Columns [j0, j1) of y = x W^T for any m, k-blocked so that a panel stays in L1 and the x block in L2.
template <class W>
LLAMA3_TARGET_AVX512 void gemm_avx512(const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t j0,
                                      std::int64_t j1, float* y, std::int64_t ldy) {
  constexpr std::int64_t kc_max = 256;
  alignas(64) float panel[kc_max * nr_avx512];
  for (std::int64_t i = 0; i < m; ++i) std::fill(y + i * ldy + j0, y + i * ldy + j1, 0.0f);
  for (std::int64_t p0 = 0; p0 < k; p0 += kc_max) {
    const std::int64_t kc = std::min(kc_max, k - p0);
    for (std::int64_t j = j0; j < j1; j += nr_avx512) {
      pack_panel_avx512(w, k, j1, j, p0, kc, panel);
      tiles_avx512<TileF32>(x + p0, m, k, kc, panel, y + j, ldy, std::min(nr_avx512, j1 - j));
    }
  }
}

// ---- bf16 GEMM (vdpbf16ps) --------------------------------------------------------------------------------------

// x's rows rounded to bf16 (to nearest even), k of them a row: what gemm_bf16_avx512 multiplies.
LLAMA3_TARGET_AVX512_BF16 inline void round_to_bf16(const float* x, std::int64_t n, bf16* out) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
  }
  for (; i < n; ++i) out[i] = bf16(x[i]);
}

// Packs bf16 W rows [j, j + 32) x columns [p0, p0 + kc) (kc even) as pairs along k: panel[q][c] holds
// W[j + c][p0 + 2q] and W[j + c][p0 + 2q + 1], the operand layout of vdpbf16ps. Rows at or past `n` are zero.
LLAMA3_TARGET_AVX512 inline void pack_panel_bf16(const bf16* w, std::int64_t k, std::int64_t n, std::int64_t j,
                                                 std::int64_t p0, std::int64_t kc, std::uint32_t* panel) {
  const std::int64_t rows = std::min<std::int64_t>(nr_avx512, n - j);
  const std::int64_t pairs = kc / 2;
  std::int64_t q = 0;
  if (rows == nr_avx512) {
    for (; q + 16 <= pairs; q += 16) {
      for (int g = 0; g < 2; ++g) {
        __m512 r[16];
        for (int c = 0; c < 16; ++c) r[c] = _mm512_castsi512_ps(_mm512_loadu_si512(w + (j + 16 * g + c) * k + p0 + 2 * q));
        transpose16(r);
        for (int t = 0; t < 16; ++t) _mm512_store_ps(reinterpret_cast<float*>(panel + (q + t) * nr_avx512 + 16 * g), r[t]);
      }
    }
  }
  for (std::int64_t c = 0; c < nr_avx512; ++c) {
    for (std::int64_t t = q; t < pairs; ++t) {
      std::uint32_t v = 0;
      if (c < rows) std::memcpy(&v, w + (j + c) * k + p0 + 2 * t, 4);
      panel[t * nr_avx512 + c] = v;
    }
  }
}

// Columns [j0, j1) of y = xb W^T with xb = x rounded to bf16 (m x k, k even) and bf16 W.
LLAMA3_TARGET_AVX512_BF16 inline void gemm_bf16_avx512(const bf16* xb, std::int64_t m, std::int64_t k, const bf16* w,
                                                       std::int64_t j0, std::int64_t j1, float* y, std::int64_t ldy) {
  constexpr std::int64_t kc_max = 512;  // even; a panel of 256 pairs x 32 columns is 32 KiB
  alignas(64) std::uint32_t panel[kc_max / 2 * nr_avx512];
  for (std::int64_t i = 0; i < m; ++i) std::fill(y + i * ldy + j0, y + i * ldy + j1, 0.0f);
  for (std::int64_t p0 = 0; p0 < k; p0 += kc_max) {
    const std::int64_t kc = std::min(kc_max, k - p0);
    for (std::int64_t j = j0; j < j1; j += nr_avx512) {
      pack_panel_bf16(w, k, j1, j, p0, kc, panel);
      tiles_avx512<TileBf16>(xb + p0, m, k, kc / 2, panel, y + j, ldy, std::min(nr_avx512, j1 - j));
    }
  }
}

// ---- integer dot products (VNNI) for quantized weights ------------------------------------------------------------
// The arithmetic of gemv_int8_avx2 (x rounded to int8 blocks of 32, exact int32 sums, one float FMA per block), two
// blocks of 32 a vector, vpdpbusd doing the multiply-adds.

// 32 bytes from a, then 32 from b.
LLAMA3_TARGET_AVX512 inline __m512i load_2x32(const void* a, const void* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(a))),
                            _mm256_loadu_si256(static_cast<const __m256i*>(b)), 1);
}

// Two activation blocks' 64 int8 as one vector.
LLAMA3_TARGET_AVX512 inline __m512i load_x2(const BlockQ8Act& a, const BlockQ8Act& b) { return load_2x32(a.qs, b.qs); }

// Signed w times signed x, four neighbours summed a lane: vpdpbusd multiplies unsigned by signed, so it gets |w| and
// x with w's sign (|x| <= 127, so negating it does not overflow).
LLAMA3_TARGET_AVX512 inline __m512i dot_s8(__m512i w, __m512i x) {
  const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), sx);
}
// Unsigned w (0..63) times signed x.
LLAMA3_TARGET_AVX512 inline __m512i dot_u8(__m512i w, __m512i x) {
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x);
}

// a in lanes 0-7, b in lanes 8-15.
LLAMA3_TARGET_AVX512 inline __m512 halves(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

// Two Q8_0 or Q4_0 blocks' weights as 64 bytes in element order (Q4_0: the nibbles 0..15, the weight minus 8).
LLAMA3_TARGET_AVX512 inline __m512i load_w2(const BlockQ8_0& a, const BlockQ8_0& b) { return load_2x32(a.qs, b.qs); }
LLAMA3_TARGET_AVX512 inline __m512i load_w2(const BlockQ4_0& a, const BlockQ4_0& b) {
  const __m256i t = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.qs)));
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(t, m4)),
                                       _mm256_and_si256(_mm256_srli_epi16(t, 4), m4), 1);  // lo a, lo b, hi a, hi b
  return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));                               // lo a, hi a, lo b, hi b
}

// One Q6_K block against 8 activation blocks: both halves of 128 at once, chunk c of each (x blocks c and 4 + c) in
// one vector; the 16 scales (each over 16 weights, four lanes) picked by a permute.
template <int M>
LLAMA3_TARGET_AVX512 inline void dot_q6_k_avx512(const BlockQ6_K& q, const BlockQ8Act* const* xb, __m512* acc) {
  const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(q.d.bits)),
                                     _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                         reinterpret_cast<const __m128i*>(q.scales)))));
  const __m512i ql0 = load_2x32(q.ql, q.ql + 64), ql1 = load_2x32(q.ql + 32, q.ql + 96);
  const __m512i qh = _mm512_loadu_si512(q.qh);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3), off = _mm512_set1_epi8(32);
  const __m512i c[4] = {
      _mm512_or_si512(_mm512_and_si512(ql0, m4), _mm512_slli_epi16(_mm512_and_si512(qh, m2), 4)),
      _mm512_or_si512(_mm512_and_si512(ql1, m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 2), m2), 4)),
      _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql0, 4), m4),
                      _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 4), m2), 4)),
      _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql1, 4), m4),
                      _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 6), m2), 4))};
  for (int ch = 0; ch < 4; ++ch) {
    // Lanes 0-3: scale 2ch, 4-7: 2ch + 1 (half 0); 8-11: 8 + 2ch, 12-15: 9 + 2ch (half 1).
    const __m512i index = _mm512_set_epi32(9 + 2 * ch, 9 + 2 * ch, 9 + 2 * ch, 9 + 2 * ch, 8 + 2 * ch, 8 + 2 * ch,
                                           8 + 2 * ch, 8 + 2 * ch, 1 + 2 * ch, 1 + 2 * ch, 1 + 2 * ch, 1 + 2 * ch,
                                           2 * ch, 2 * ch, 2 * ch, 2 * ch);
    const __m512 s = _mm512_permutexvar_ps(index, scale);
    const __m512i wv = _mm512_sub_epi8(c[ch], off);
    for (int i = 0; i < M; ++i) {
      const BlockQ8Act& x0 = xb[i][ch];
      const BlockQ8Act& x1 = xb[i][4 + ch];
      const __m512 dot = _mm512_cvtepi32_ps(dot_s8(wv, load_x2(x0, x1)));
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(s, halves(x0.d, x1.d)), dot, acc[i]);
    }
  }
}

// One Q4_K block against 8 activation blocks (see dot_q4_k): 64 bytes of nibbles hold sub-blocks 4c, 4c + 1 (low,
// high nibbles of the first 32 bytes) and 4c + 2, 4c + 3.
template <int M>
LLAMA3_TARGET_AVX512 inline void dot_q4_k_avx512(const BlockQ4_K& q, const BlockQ8Act* const* xb, __m512* acc,
                                                  float* offset) {
  const float d = _cvtsh_ss(q.d.bits), dmin = _cvtsh_ss(q.dmin.bits);
  float ds[8], dm[8];
  for (int s = 0; s < 8; ++s) {
    std::uint8_t sc, m;
    quant_detail::scale_min_k4(s, q.scales, sc, m);
    ds[s] = d * sc;
    dm[s] = dmin * m;
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int c = 0; c < 2; ++c) {
    const __m512i raw = _mm512_loadu_si512(q.qs + 64 * c);
    const __m512i lo = _mm512_and_si512(raw, m4);                          // sub-blocks 4c, 4c + 2
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);    // sub-blocks 4c + 1, 4c + 3
    const int s = 4 * c;
    for (int i = 0; i < M; ++i) {
      const BlockQ8Act* x = xb[i];
      const __m512 dlo = _mm512_cvtepi32_ps(dot_u8(lo, load_x2(x[s], x[s + 2])));
      const __m512 dhi = _mm512_cvtepi32_ps(dot_u8(hi, load_x2(x[s + 1], x[s + 3])));
      acc[i] = _mm512_fmadd_ps(halves(ds[s] * x[s].d, ds[s + 2] * x[s + 2].d), dlo, acc[i]);
      acc[i] = _mm512_fmadd_ps(halves(ds[s + 1] * x[s + 1].d, ds[s + 3] * x[s + 3].d), dhi, acc[i]);
      offset[i] += dm[s] * x[s].sum + dm[s + 1] * x[s + 1].sum + dm[s + 2] * x[s + 2].sum + dm[s + 3] * x[s + 3].sum;
    }
  }
}

// m (1..4) quantized rows of x (blocks of 32, nbx a row) against W rows [j0, j1). A row's arithmetic does not depend
// on m (prompt lookup stays exact). Two accumulators a row, alternating steps.
template <int M, class Q>
LLAMA3_TARGET_AVX512 void gemv_int8_avx512(const BlockQ8Act* x, std::int64_t nbx, const Q* w, std::int64_t j0,
                                           std::int64_t j1, float* y, std::int64_t ldy) {
  const std::int64_t nb = nbx * 32 / Q::elements;
  for (std::int64_t j = j0; j < j1; ++j) {
    const Q* row = w + j * nb;
    __m512 acc[2][M];
    float offset[M] = {};
    for (int i = 0; i < M; ++i) acc[0][i] = acc[1][i] = _mm512_setzero_ps();
    if constexpr (Q::elements == 256) {
      for (std::int64_t b = 0; b < nb; ++b) {
        for (int line = 0; line < static_cast<int>(sizeof(Q)); line += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(row + b) + 1024 + line, _MM_HINT_T0);
        }
        const BlockQ8Act* xb[M];
        for (int i = 0; i < M; ++i) xb[i] = x + i * nbx + b * 8;
        if constexpr (std::is_same_v<Q, BlockQ6_K>) {
          dot_q6_k_avx512<M>(row[b], xb, acc[b & 1]);
        } else {
          dot_q4_k_avx512<M>(row[b], xb, acc[b & 1], offset);
        }
      }
    } else {
      std::int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        _mm_prefetch(reinterpret_cast<const char*>(row + b) + 1024, _MM_HINT_T0);
        if constexpr (sizeof(Q) * 2 > 64) _mm_prefetch(reinterpret_cast<const char*>(row + b) + 1024 + 64, _MM_HINT_T0);
        const __m512i wv = load_w2(row[b], row[b + 1]);
        const float d0 = _cvtsh_ss(row[b].d.bits), d1 = _cvtsh_ss(row[b + 1].d.bits);
        __m512* a = acc[(b >> 1) & 1];
        for (int i = 0; i < M; ++i) {
          const BlockQ8Act& x0 = x[i * nbx + b];
          const BlockQ8Act& x1 = x[i * nbx + b + 1];
          const __m512i xv = load_x2(x0, x1);
          if constexpr (std::is_same_v<Q, BlockQ4_0>) {  // sum (u - 8) x = sum u x - 8 sum x
            a[i] = _mm512_fmadd_ps(halves(d0 * x0.d, d1 * x1.d), _mm512_cvtepi32_ps(dot_u8(wv, xv)), a[i]);
            offset[i] += 8.0f * (d0 * x0.sum + d1 * x1.sum);
          } else {
            a[i] = _mm512_fmadd_ps(halves(d0 * x0.d, d1 * x1.d), _mm512_cvtepi32_ps(dot_s8(wv, xv)), a[i]);
          }
        }
      }
      if (b < nb) {  // an odd block out: the same arithmetic on a half vector
        const float d0 = _cvtsh_ss(row[b].d.bits);
        const __m512i wv = load_w2(row[b], row[b]);
        for (int i = 0; i < M; ++i) {
          const BlockQ8Act& x0 = x[i * nbx + b];
          const __m512i xv = load_x2(x0, x0);
          const __m512 s = _mm512_maskz_mov_ps(0x00FF, _mm512_set1_ps(d0 * x0.d));
          if constexpr (std::is_same_v<Q, BlockQ4_0>) {
            acc[0][i] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(dot_u8(wv, xv)), acc[0][i]);
            offset[i] += 8.0f * (d0 * x0.sum);
          } else {
            acc[0][i] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(dot_s8(wv, xv)), acc[0][i]);
          }
        }
      }
    }
    for (int i = 0; i < M; ++i) y[i * ldy + j] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][i], acc[1][i])) - offset[i];
  }
}

}  // namespace llama3::cpu

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // LLAMA3_X86
