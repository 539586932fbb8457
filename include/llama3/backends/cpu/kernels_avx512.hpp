#pragma once
// AVX-512 kernels for y = x W^T (see matmul.hpp for when each runs):
//   - gemv_avx512: up to 4 rows of x against W rows, each W row streamed once and widened to float in registers;
//   - gemm_avx512: W packed into float panels of 32 columns (16 x 16 register transposes), a 12 x 32 register tile
//     of FMAs: f32 maths, as the other kernels;
//   - gemm_bf16_avx512 (AVX512_BF16): bf16 W packed as pairs along k, x rounded to bf16, a 12 x 32 tile of
//     vdpbf16ps (two products a lane an instruction: twice the FLOP rate of f32 FMAs). This is what llama.cpp and
//     PyTorch's bf16 models compute; it runs only when asked for (MatmulPrecision::bf16);
//   - gemv_bf16_avx512 (AVX512_BF16): the same arithmetic for decoding, 64-byte loads of W from its cache lines;
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

// How far ahead of a decode kernel's single W stream a software prefetch reads. Measured on the 1B shape from memory
// (alternating runs): 3 KB against 1 KB took Q4_0x32 decode from 28-29 to 32 tok/s at 1 thread and from 49-51 to
// 52-53 at 2, and Q8_0 (which had no prefetch) from 21.8 to 23.1 and 29.9 to 32.5-32.8; 4-8 KB were no better at 2
// threads (a layer's matrices are short streams: what is read past a thread's last row is wasted).
inline constexpr int decode_prefetch_avx512 = 3072;

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

// m (1..4) rows of x against R rows of W from row j, each W row read once for all m. As in gemv_avx2, a row's
// arithmetic (two accumulators, the same order of FMAs, masked tail) depends neither on m nor on R: prompt lookup
// stays exact.
template <int M, int R, class W>
LLAMA3_TARGET_AVX512 __attribute__((always_inline)) inline void gemv_rows_avx512(const float* x, std::int64_t k,
                                                                                  const W* w, std::int64_t j, float* y,
                                                                                  std::int64_t ldy) {
  __m512 acc[M][R][2];
  #pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[i][r][0] = acc[i][r][1] = _mm512_setzero_ps();
  }
  std::int64_t p = 0;
  for (; p + 32 <= k; p += 32) {
    __m512 w0[R], w1[R];
    if constexpr (M == 1 && R == 1) {
      // Decoding: a line ahead (bf16 W from memory, 1 core: 37-40 -> 42-43 GB/s for rows of 2048, 28 -> 35 for
      // rows of 8192; 1 KB ahead gained little, and 512 B lost).
      _mm_prefetch(reinterpret_cast<const char*>(w + j * k + p) + decode_prefetch_avx512, _MM_HINT_T0);
    }
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      w0[r] = load16(w + (j + r) * k + p);
      w1[r] = load16(w + (j + r) * k + p + 16);
    }
    #pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
      const __m512 x0 = _mm512_loadu_ps(x + i * k + p), x1 = _mm512_loadu_ps(x + i * k + p + 16);
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        acc[i][r][0] = _mm512_fmadd_ps(x0, w0[r], acc[i][r][0]);
        acc[i][r][1] = _mm512_fmadd_ps(x1, w1[r], acc[i][r][1]);
      }
    }
  }
  for (; p < k; p += 16) {
    const std::int64_t left = k - p;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512 w0 = load16(w + (j + r) * k + p, mask);
      #pragma GCC unroll 8
      for (int i = 0; i < M; ++i) acc[i][r][0] = _mm512_fmadd_ps(load16(x + i * k + p, mask), w0, acc[i][r][0]);
    }
  }
  #pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) y[i * ldy + j + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][r][0], acc[i][r][1]));
  }
}

// m (1..4) rows of x against W rows [j0, j1). Decoding (m = 1) streams one W row at a time (this CPU's prefetcher
// follows one stream a core). More x rows go two at a time against 4 W rows side by side, the second pair finding
// those W rows in cache: 3 and 4 x rows at once ran at half the FMA rate of 2 (verify passes of 4 tokens, bf16
// weights: 9.3 -> 6.4 ms for a 32768 x 2048 W on one core, 4.6 -> 3.2 on two).
template <int M, class W>
LLAMA3_TARGET_AVX512 void gemv_avx512(const float* x, std::int64_t k, const W* w, std::int64_t j0, std::int64_t j1,
                                      float* y, std::int64_t ldy) {
  constexpr int R = M == 1 ? 1 : 4;
  std::int64_t j = j0;
  for (; j + R <= j1; j += R) {
    if constexpr (M <= 2) {
      gemv_rows_avx512<M, R>(x, k, w, j, y, ldy);
    } else {
      gemv_rows_avx512<2, R>(x, k, w, j, y, ldy);
      gemv_rows_avx512<M - 2, R>(x + 2 * k, k, w, j, y + 2 * ldy, ldy);
    }
  }
  for (; j < j1; ++j) gemv_rows_avx512<M, 1>(x, k, w, j, y, ldy);
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
  #pragma GCC unroll 8
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

// m (1..4) rows of xb (x rounded to bf16) against W rows [j0, j1) with vdpbf16ps: decoding and prompt lookup's
// verify passes with MatmulPrecision::bf16, llama.cpp's arithmetic for bf16 weights. Four W rows side by side, read
// with 64-byte loads (one instruction a cache line of W, where the f32 kernel takes four to widen it), no software
// prefetch. The steps of 32 start at W's cache lines: a row's first step takes the elements up to the first line
// boundary (a GGUF aligns tensors to 32 bytes only, and 64-byte loads across lines ran slower than the f32 kernel).
// Two steps a loop, written with the loads of W for both before their vdpbf16ps (GCC interleaves them again; the
// loop it makes indexes every row from one counter): decoding 1.3x and verify passes of 4 tokens 1.2x the tokens/s
// of one step a loop; 3, 4 or 8 steps were slower than 2 (benchmarks/README). A row's arithmetic
// (its steps in order, one accumulator) depends on its address, not on m or R: prompt lookup stays exact.
template <int M, int R>
LLAMA3_TARGET_AVX512_BF16 __attribute__((always_inline)) inline void gemv_bf16_rows_avx512(
    const bf16* xb, std::int64_t k, const bf16* w, std::int64_t j, float* y, std::int64_t ldy) {
  __m512 acc[M][R];
  #pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[i][r] = _mm512_setzero_ps();
  }
  const auto step = [&](std::int64_t p, __mmask32 mask) LLAMA3_TARGET_AVX512_BF16 __attribute__((always_inline)) {
    __m512bh xv[M];
    #pragma GCC unroll 4
    for (int i = 0; i < M; ++i) xv[i] = (__m512bh)_mm512_maskz_loadu_epi16(mask, xb + i * k + p);
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mask, w + (j + r) * k + p);
      #pragma GCC unroll 4
      for (int i = 0; i < M; ++i) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], wv, xv[i]);
    }
  };
  const auto first = [](std::int64_t n) { return static_cast<__mmask32>((std::uint64_t{1} << n) - 1); };
  // Elements before row j's first line boundary (the R rows share it: the caller checks).
  std::int64_t p = std::min<std::int64_t>(k, (-reinterpret_cast<std::uintptr_t>(w + j * k) & 63) / sizeof(bf16));
  if (p > 0) step(0, first(p));
  for (; p + 64 <= k; p += 64) {
    __m512i wv[R][2];
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      wv[r][0] = _mm512_loadu_si512(w + (j + r) * k + p);
      wv[r][1] = _mm512_loadu_si512(w + (j + r) * k + p + 32);
    }
    #pragma GCC unroll 2
    for (int u = 0; u < 2; ++u) {
      #pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m512bh xv = (__m512bh)_mm512_loadu_si512(xb + i * k + p + 32 * u);
        #pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], (__m512bh)wv[r][u], xv);
      }
    }
  }
  for (; p + 32 <= k; p += 32) step(p, ~__mmask32{0});
  if (p < k) step(p, first(k - p));
  #pragma GCC unroll 4
  for (int i = 0; i < M; ++i) {
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) y[i * ldy + j + r] = _mm512_reduce_add_ps(acc[i][r]);
  }
}

template <int M>
LLAMA3_TARGET_AVX512_BF16 void gemv_bf16_avx512(const bf16* xb, std::int64_t k, const bf16* w, std::int64_t j0,
                                                std::int64_t j1, float* y, std::int64_t ldy) {
  std::int64_t j = j0;
  if (k * sizeof(bf16) % 64 == 0) {  // rows side by side only where they start at the same place in a line
    for (; j + 4 <= j1; j += 4) gemv_bf16_rows_avx512<M, 4>(xb, k, w, j, y, ldy);
  }
  for (; j < j1; ++j) gemv_bf16_rows_avx512<M, 1>(xb, k, w, j, y, ldy);
}

// ---- integer dot products (VNNI) for quantized weights ------------------------------------------------------------
// The arithmetic of gemv_int8_avx2 (x rounded to int8 blocks of 32, exact int32 sums, one float FMA per block), two
// blocks of 32 a vector, vpdpbusd doing the multiply-adds.

// 32 bytes from a, then 32 from b.
LLAMA3_TARGET_AVX512 inline __m512i load_2x32(const void* a, const void* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(a))),
                            _mm256_loadu_si256(static_cast<const __m256i*>(b)), 1);
}

// Unsigned u times signed x, four neighbours summed a lane, from `start`: vpdpbusd. With start = -c times the sum
// of each four x (Int8Rows::neg8, shifted), this is the exact sum of (u - c) x.
LLAMA3_TARGET_AVX512 inline __m512i dot_u8(__m512i start, __m512i u, __m512i x) { return _mm512_dpbusd_epi32(start, u, x); }
LLAMA3_TARGET_AVX512 inline __m512i dot_u8(__m512i u, __m512i x) { return dot_u8(_mm512_setzero_si512(), u, x); }

// Rows of x rounded to int8 blocks: the scalar Int8Rows::assign's arithmetic (the same scale, the same rounding to
// nearest even), 32 values at a time.
// Row i of out (sized by Int8Rows::resize) from x's row i.
LLAMA3_TARGET_AVX512 inline void quantize_row_avx512(const float* x, std::int64_t i, Int8Rows& out) {
  const std::int64_t k = out.k;
  const __m256i ones = _mm256_set1_epi8(1);
  {
    for (std::int64_t b = 0; b < out.nb; ++b) {
      const float* xb = x + i * k + b * 32;
      const __m512 lo = _mm512_loadu_ps(xb), hi = _mm512_loadu_ps(xb + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
      const float scale = amax / 127.0f, inverse = scale > 0 ? 1.0f / scale : 0.0f;
      const __m512 inv = _mm512_set1_ps(inverse);
      const __m128i qlo = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(lo, inv)));
      const __m128i qhi = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(hi, inv)));
      const __m256i q = _mm256_set_m128i(qhi, qlo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.qs.data() + i * k + b * 32), q);
      const __m256i four = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);  // the sums of each 4 q
      const std::size_t at = static_cast<std::size_t>(i * out.nb + b);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.neg8.data() + at * 8),
                          _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(four, 3)));
      const __m128i pairs = _mm_add_epi32(_mm256_castsi256_si128(four), _mm256_extracti128_si256(four, 1));
      const __m128i two = _mm_add_epi32(pairs, _mm_unpackhi_epi64(pairs, pairs));
      const int total = _mm_cvtsi128_si32(_mm_add_epi32(two, _mm_shuffle_epi32(two, 1)));
      out.d[at] = scale;
      out.sum[at] = scale * static_cast<float>(total);
      _mm256_storeu_ps(out.d16.data() + (i * out.np + b / 2) * 16 + (b % 2) * 8, _mm256_set1_ps(scale));
    }
  }
}

LLAMA3_TARGET_AVX512 inline void quantize_rows_avx512(const float* x, std::int64_t m, std::int64_t k, Int8Rows& out) {
  out.resize(m, k);
  for (std::int64_t i = 0; i < m; ++i) quantize_row_avx512(x, i, out);
}

// a in lanes 0-7, b in lanes 8-15.
LLAMA3_TARGET_AVX512 inline __m512 halves(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

// Two Q8_0 or Q4_0 blocks straight from memory: their 64 weights as unsigned bytes in element order (Q4_0: the
// nibbles, the weight plus 8; Q8_0: the weight plus 128), and their scales as [d of the first x 8, d of the second
// x 8]. vpermb and vpermw pick the bytes out of a 64-byte load (Q8_0: and 4 more), a shift by 4 in the second and
// fourth 16 bytes takes Q4_0's high nibbles. `two`: there is a second block (otherwise it reads as zeros);
// `over_read`: Q4_0's 36 bytes may be read as 64 (bytes follow the pair).
// (Masked loads are kept out of the stream: here they miss the hardware prefetcher, 9-10 GB/s against 24 for plain
// loads on one core.)
struct Pair {
  __m512i w;
  __m512 d;
};
LLAMA3_TARGET_AVX512 inline Pair load_pair(const BlockQ4_0* b, bool two, bool over_read) {
  const __m512i raw = two && over_read ? _mm512_loadu_si512(b)
                                       : _mm512_maskz_loadu_epi8(two ? (__mmask64{1} << 36) - 1 : (__mmask64{1} << 18) - 1, b);
  // Byte t of each 16: qs[t] of the first block (18 bytes apart, after the 2-byte scale), twice, then the second's.
  const __m512i pick = _mm512_set_epi8(
      35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24,
      23, 22, 21, 20, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7,
      6, 5, 4, 3, 2);
  constexpr long long by4 = 0x0004000400040004;  // four 16-bit lanes shifted by 4
  const __m512i nibbles = _mm512_srlv_epi16(_mm512_permutexvar_epi8(pick, raw),
                                            _mm512_set_epi64(by4, by4, 0, 0, by4, by4, 0, 0));
  const __m512i scales = _mm512_permutexvar_epi16(_mm512_set_epi16(9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9,
                                                                   9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0),
                                                  raw);
  return {_mm512_and_si512(nibbles, _mm512_set1_epi8(0x0F)), _mm512_cvtph_ps(_mm512_castsi512_si256(scales))};
}
LLAMA3_TARGET_AVX512 inline Pair load_pair(const BlockQ8_0* b, bool two, bool /*over_read: never needed*/) {
  const __m512i lo = two ? _mm512_loadu_si512(b) : _mm512_maskz_loadu_epi8((__mmask64{1} << 34) - 1, b);
  const __m512i hi = two ? _mm512_castsi128_si512(_mm_loadu_si32(reinterpret_cast<const char*>(b) + 64)) : _mm512_setzero_si512();
  // Output byte t < 32: the first block's qs[t] (byte 2 + t); t >= 32: the second's (byte 36 + t - 32, past 63 in hi).
  alignas(64) static constexpr std::uint8_t pick[64] = {
      2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
      24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
      48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67};
  // Flipping the sign bit makes each weight w unsigned, w + 128.
  const __m512i w = _mm512_xor_si512(_mm512_permutex2var_epi8(lo, _mm512_load_si512(pick), hi), _mm512_set1_epi8(-128));
  const __m512i scales = _mm512_permutexvar_epi16(_mm512_set_epi16(17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0, 0,
                                                                   0, 17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0,
                                                                   0, 0),
                                                  lo);
  return {w, _mm512_cvtph_ps(_mm512_castsi512_si256(scales))};
}

// One Q6_K block against x's 8 blocks from b0: both halves of 128 at once, chunk c of each (x blocks c and 4 + c) in
// one vector; the 16 scales (each over 16 weights, four lanes) picked by a permute; the offset of 32 in the start.
template <int M>
LLAMA3_TARGET_AVX512 __attribute__((always_inline)) inline void dot_q6_k_avx512(const BlockQ6_K& q, const Int8Rows& x,
                                                                               std::int64_t i0, std::int64_t b0,
                                                                               __m512 (&acc)[M]) {
  const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(q.d.bits)),
                                     _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                         reinterpret_cast<const __m128i*>(q.scales)))));
  const __m512i ql0 = load_2x32(q.ql, q.ql + 64), ql1 = load_2x32(q.ql + 32, q.ql + 96);
  const __m512i qh = _mm512_loadu_si512(q.qh);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
  const __m512i c[4] = {  // the 6-bit values 0..63; the weight is the value minus 32
      _mm512_or_si512(_mm512_and_si512(ql0, m4), _mm512_slli_epi16(_mm512_and_si512(qh, m2), 4)),
      _mm512_or_si512(_mm512_and_si512(ql1, m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 2), m2), 4)),
      _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql0, 4), m4),
                      _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 4), m2), 4)),
      _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql1, 4), m4),
                      _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 6), m2), 4))};
  #pragma GCC unroll 8
  for (int ch = 0; ch < 4; ++ch) {
    // Lanes 0-3: scale 2ch, 4-7: 2ch + 1 (half 0); 8-11: 8 + 2ch, 12-15: 9 + 2ch (half 1).
    const __m512i index = _mm512_set_epi32(9 + 2 * ch, 9 + 2 * ch, 9 + 2 * ch, 9 + 2 * ch, 8 + 2 * ch, 8 + 2 * ch,
                                           8 + 2 * ch, 8 + 2 * ch, 1 + 2 * ch, 1 + 2 * ch, 1 + 2 * ch, 1 + 2 * ch,
                                           2 * ch, 2 * ch, 2 * ch, 2 * ch);
    const __m512 s = _mm512_permutexvar_ps(index, scale);
    #pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const std::int64_t r = i0 + i, b = b0 + ch;
      const __m512i start = _mm512_slli_epi32(load_2x32(x.offset8(r, b), x.offset8(r, b + 4)), 2);  // -32 sum x
      const __m512 dot = _mm512_cvtepi32_ps(dot_u8(start, c[ch], load_2x32(x.q(r, b), x.q(r, b + 4))));
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(s, halves(x.scale(r, b), x.scale(r, b + 4))), dot, acc[i]);
    }
  }
}

// One Q4_K block against x's 8 blocks from b0 (see dot_q4_k): 64 bytes of nibbles hold sub-blocks 4c, 4c + 1 (low,
// high nibbles of the first 32 bytes) and 4c + 2, 4c + 3.
template <int M>
LLAMA3_TARGET_AVX512 __attribute__((always_inline)) inline void dot_q4_k_avx512(const BlockQ4_K& q, const Int8Rows& x,
                                                                               std::int64_t i0, std::int64_t b0,
                                                                               __m512 (&acc)[M], float (&offset)[M]) {
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
    const __m512i lo = _mm512_and_si512(raw, m4);                        // sub-blocks 4c, 4c + 2
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);  // sub-blocks 4c + 1, 4c + 3
    const int s = 4 * c;
    #pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const std::int64_t r = i0 + i, b = b0 + s;
      const __m512 dlo = _mm512_cvtepi32_ps(dot_u8(lo, load_2x32(x.q(r, b), x.q(r, b + 2))));
      const __m512 dhi = _mm512_cvtepi32_ps(dot_u8(hi, load_2x32(x.q(r, b + 1), x.q(r, b + 3))));
      acc[i] = _mm512_fmadd_ps(halves(ds[s] * x.scale(r, b), ds[s + 2] * x.scale(r, b + 2)), dlo, acc[i]);
      acc[i] = _mm512_fmadd_ps(halves(ds[s + 1] * x.scale(r, b + 1), ds[s + 3] * x.scale(r, b + 3)), dhi, acc[i]);
      offset[i] += dm[s] * x.block_sum(r, b) + dm[s + 1] * x.block_sum(r, b + 1) + dm[s + 2] * x.block_sum(r, b + 2) +
                   dm[s + 3] * x.block_sum(r, b + 3);
    }
  }
}

// One pair of blocks of each of the R weight rows against the M x rows, into acc. Always inlined, with its loops
// unrolled, so that acc stays in registers at -O2 too (called through a lambda, GCC kept it in memory).
template <int M, int R, class Q>
LLAMA3_TARGET_AVX512 __attribute__((always_inline)) inline void pair_step(
    const Q* const (&rows)[R], std::int64_t p, std::int64_t nb, bool last_rows, const std::int8_t* const (&xq)[M],
    const float* const (&xd)[M], const std::int32_t* const (&xo)[M], __m512 (&acc)[M][R]) {
  Pair wp[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    // A 64-byte load of a Q4_0 pair reads 28 bytes past it: safe where two more blocks follow in the row, or another
    // row (of two blocks or more: with one, there is no pair) follows; near the end of W's last row, masked.
    wp[r] = load_pair(rows[r] + 2 * p, 2 * p + 1 < nb, 2 * p + 4 <= nb || !last_rows || r + 1 < R);
  }
  if constexpr (M == 1) {
    // Decoding (one W stream) waited on memory with the hardware prefetcher alone: for Q4_0 (36 bytes a step) a
    // line 1 KB ahead each step took 1-thread decode from 17.6-21.1 to 22.1-24.8 tok/s. Q8_0's 68 bytes a step
    // take one line too: the line a step misses is next to one prefetched (two lines a step did not pay).
    _mm_prefetch(reinterpret_cast<const char*>(rows[0] + 2 * p) + decode_prefetch_avx512, _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int i = 0; i < M; ++i) {
    const __m512i xv = _mm512_loadu_si512(xq[i] + 64 * p);
    const __m512 dx = _mm512_loadu_ps(xd[i] + 16 * p);
    __m512i start = _mm512_loadu_si512(xo[i] + 16 * p);  // -8 sum x, four at a time
    if constexpr (std::is_same_v<Q, BlockQ8_0>) start = _mm512_slli_epi32(start, 4);  // -128 sum x
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      acc[i][r] = _mm512_fmadd_ps(_mm512_mul_ps(wp[r].d, dx), _mm512_cvtepi32_ps(dot_u8(start, wp[r].w, xv)), acc[i][r]);
    }
  }
}

// x's rows for Q4_0x32 (Int8Rows::split's arithmetic): each 4 blocks' values 0..15, then 16..31, their offsets
// summed in pairs of lanes, their scales spread over 4 lanes.
LLAMA3_TARGET_AVX512 inline void split_row_avx512(Int8Rows& x, std::int64_t i) {
  const __m512i lo = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0), hi = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2);
  const __m512i first = _mm512_set_epi32(27, 26, 25, 24, 19, 18, 17, 16, 11, 10, 9, 8, 3, 2, 1, 0);
  const __m512i second = _mm512_set_epi32(31, 30, 29, 28, 23, 22, 21, 20, 15, 14, 13, 12, 7, 6, 5, 4);
  const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  for (std::int64_t b = 0; b < x.nb; b += 4) {
    const std::int64_t e = 32 * b;
    const __m512i qa = _mm512_loadu_si512(x.q(i, b)), qb = _mm512_loadu_si512(x.q(i, b + 2));
    std::int8_t* q = x.split_q.data() + i * x.k + e;
    _mm512_storeu_si512(q, _mm512_permutex2var_epi64(qa, lo, qb));
    _mm512_storeu_si512(q + 64, _mm512_permutex2var_epi64(qa, hi, qb));
    const __m512i oa = _mm512_loadu_si512(x.offset8(i, b)), ob = _mm512_loadu_si512(x.offset8(i, b + 2));
    _mm512_storeu_si512(x.split_neg8.data() + (i * x.k + e) / 8,
                        _mm512_add_epi32(_mm512_permutex2var_epi32(oa, first, ob), _mm512_permutex2var_epi32(oa, second, ob)));
    const __m512 d = _mm512_castps128_ps512(_mm_loadu_ps(&x.d[static_cast<std::size_t>(i * x.nb + b)]));
    _mm512_storeu_ps(x.split_d.data() + (i * x.k + e) / 8, _mm512_permutexvar_ps(spread, d));
  }
}

// Q4_0x32 (core/quant.hpp): 4 blocks' nibbles from one aligned 64-byte load. Low nibbles are values 0..15 of each
// block, high ones 16..31; x's split rows (split_row_avx512) pair with them, so that the int32 lanes 4j..4j+3 sum
// block j whole, and one scale vector and one FMA serve the 4 blocks.
// In cache (256 x 2048 W, 1 core): 47 GB/s against 25 for Q4_0's pairs, whose float work per block is twice this.
struct Quad {
  __m512i lo, hi;  // unsigned: the weight plus 8
  __m512 d;        // [d0 x 4, d1 x 4, d2 x 4, d3 x 4]
};
LLAMA3_TARGET_AVX512 inline Quad load_quad(const BlockQ4_0x32& b, int g) {
  const __m512i raw = _mm512_loadu_si512(b.qs[4 * g]);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512 d = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.d + 4 * g))));
  return {_mm512_and_si512(raw, m4), _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4),
          _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0), d)};
}

// Group g (blocks 4g..4g+3) of block s of each of the R W rows against the M split x rows, into acc.
template <int M, int R>
LLAMA3_TARGET_AVX512 __attribute__((always_inline)) inline void quad_step(
    const BlockQ4_0x32* const (&rows)[R], std::int64_t s, int g, const std::int8_t* const (&xq)[M],
    const float* const (&xd)[M], const std::int32_t* const (&xo)[M], __m512 (&acc)[M][R]) {
  Quad w[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) w[r] = load_quad(rows[r][s], g);
  if constexpr (M == 1) {
    // One W stream a core: each line ahead, the 9th line of each block (scales) with the first.
    const char* at = reinterpret_cast<const char*>(rows[0][s].qs[4 * g]) + decode_prefetch_avx512;
    _mm_prefetch(at, _MM_HINT_T0);
    if (g == 0) _mm_prefetch(at + 512, _MM_HINT_T0);
  }
  const std::int64_t e = 1024 * s + 128 * g;  // x's first value
#pragma GCC unroll 4
  for (int i = 0; i < M; ++i) {
    const __m512i xlo = _mm512_loadu_si512(xq[i] + e), xhi = _mm512_loadu_si512(xq[i] + e + 64);
    const __m512i start = _mm512_loadu_si512(xo[i] + e / 8);  // -8 sum x
    const __m512 dx = _mm512_loadu_ps(xd[i] + e / 8);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512i dot = dot_u8(dot_u8(start, w[r].lo, xlo), w[r].hi, xhi);
      acc[i][r] = _mm512_fmadd_ps(_mm512_mul_ps(w[r].d, dx), _mm512_cvtepi32_ps(dot), acc[i][r]);
    }
  }
}

// Rows i0 .. i0 + M (M = 1..4) of x against R rows of Q8_0, Q4_0 or Q4_0x32 W from row j: the R weight streams are
// read side by side (more loads in flight, and x's loads shared). The accumulators are in arrays indexed by constants
// only (indexed at run time they went to the stack, and the store-to-load latency paced the loop). A row's arithmetic
// depends neither on M nor on R: prompt lookup stays exact.
template <int M, int R, class Q>
LLAMA3_TARGET_AVX512 void int8_tile_avx512(const Int8Rows& x, std::int64_t i0, const Q* w, std::int64_t j,
                                           std::int64_t n_rows, float* y, std::int64_t ldy) {
  constexpr bool split = std::is_same_v<Q, BlockQ4_0x32>;  // x's rows regrouped to match (split_row_avx512)
  const std::int64_t nb = x.k / Q::elements;
  const Q* rows[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) rows[r] = w + (j + r) * nb;
  // The weights' offsets (Q4_0: 8, Q8_0 made unsigned: 128) start each vpdpbusd.
  const std::int8_t* xq[M];
  const float* xd[M];
  const std::int32_t* xo[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    xq[i] = split ? x.split_q_at(i0 + i, 0) : x.q(i0 + i, 0);
    xd[i] = split ? x.split_d_at(i0 + i, 0) : x.scale16(i0 + i, 0);
    xo[i] = split ? x.split_neg8_at(i0 + i, 0) : x.offset8(i0 + i, 0);
  }
  __m512 acc[M][R];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[i][r] = _mm512_setzero_ps();
  }
  if constexpr (split) {
    (void)n_rows;
    for (std::int64_t s = 0; s < nb; ++s) {
#pragma GCC unroll 2
      for (int g = 0; g < 8; ++g) quad_step<M, R>(rows, s, g, xq, xd, xo, acc);
    }
  } else {
    const bool last_rows = j + R >= n_rows;
    for (std::int64_t p = 0; p < (nb + 1) / 2; ++p) pair_step<M, R>(rows, p, nb, last_rows, xq, xd, xo, acc);
  }
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) y[i * ldy + j + r] = _mm512_reduce_add_ps(acc[i][r]);
  }
}

// Prefill with Q8_0, Q4_0 or Q4_0x32 W: y[0..m, j0..j1) from x's int8 rows, in tiles of 4 x rows by 4 W rows (16
// accumulators; each W row is read once for 4 x rows, each x pair once for 4 W rows). The arithmetic of the decode
// kernels: x rounded to int8, exact integer sums.
template <class Q>
LLAMA3_TARGET_AVX512 void gemm_int8_avx512(const Int8Rows& x, const Q* w, std::int64_t j0, std::int64_t j1,
                                           std::int64_t n_rows, float* y, std::int64_t ldy) {
  const auto rows_of = [&](auto r, std::int64_t j) LLAMA3_TARGET_AVX512 {
    std::int64_t i = 0;
    for (; i + 4 <= x.rows; i += 4) int8_tile_avx512<4, r.value, Q>(x, i, w, j, n_rows, y + i * ldy, ldy);
    switch (x.rows - i) {
      case 3: return int8_tile_avx512<3, r.value, Q>(x, i, w, j, n_rows, y + i * ldy, ldy);
      case 2: return int8_tile_avx512<2, r.value, Q>(x, i, w, j, n_rows, y + i * ldy, ldy);
      case 1: return int8_tile_avx512<1, r.value, Q>(x, i, w, j, n_rows, y + i * ldy, ldy);
      default: return;
    }
  };
  std::int64_t j = j0;
  for (; j + 4 <= j1; j += 4) rows_of(std::integral_constant<int, 4>{}, j);
  for (; j < j1; ++j) rows_of(std::integral_constant<int, 1>{}, j);
}

// Prefill with K-quant W (f32 maths on the dequantized weights): 32 W rows x kc columns dequantized into a float
// scratch, then packed and multiplied as float weights are.
template <class Q>
LLAMA3_TARGET_AVX512 void gemm_dequantized_avx512(const float* x, std::int64_t m, std::int64_t k, const Q* w,
                                                  std::int64_t j0, std::int64_t j1, float* y, std::int64_t ldy) {
  constexpr std::int64_t kc_max = 256;  // a multiple of every block size but Q4_0x32's (dequantize_span)
  alignas(64) float panel[kc_max * nr_avx512];
  alignas(64) float rows[nr_avx512 * kc_max];
  const std::int64_t nb = k / Q::elements;
  for (std::int64_t i = 0; i < m; ++i) std::fill(y + i * ldy + j0, y + i * ldy + j1, 0.0f);
  for (std::int64_t p0 = 0; p0 < k; p0 += kc_max) {
    const std::int64_t kc = std::min(kc_max, k - p0);
    for (std::int64_t j = j0; j < j1; j += nr_avx512) {
      const std::int64_t cols = std::min(nr_avx512, j1 - j);
      for (std::int64_t c = 0; c < cols; ++c) dequantize_span(w + (j + c) * nb, p0, kc, rows + c * kc);
      pack_panel_avx512(static_cast<const float*>(rows), kc, cols, 0, 0, kc, panel);
      tiles_avx512<TileF32>(x + p0, m, k, kc, panel, y + j, ldy, cols);
    }
  }
}

// Rows i0 .. i0 + M (M = 1..4) of x against W rows [j0, j1) of W's n_rows. A row's arithmetic does not depend on M
// (prompt lookup stays exact).
template <int M, class Q>
LLAMA3_TARGET_AVX512 void gemv_int8_avx512(const Int8Rows& x, std::int64_t i0, const Q* w, std::int64_t j0,
                                           std::int64_t j1, std::int64_t n_rows, float* y, std::int64_t ldy) {
  const std::int64_t nb = x.k / Q::elements;
  if constexpr (Q::elements == 32 || std::is_same_v<Q, BlockQ4_0x32>) {
    // One accumulator a row of x and of W, its pairs summed in order: a row's arithmetic is the same whatever M
    // and R. Decoding (M = 1) reads one W row at a time: this CPU's prefetcher follows one stream a core, not 2-4
    // interleaved ones (Q8_0 at 2 threads: 70 GB/s for one stream, 41 for 4). With more x rows the work per byte
    // is larger, and 4 W rows side by side (each x load shared by 4) were faster.
    constexpr int R = M == 1 ? 1 : 4;
    std::int64_t j = j0;
    for (; j + R <= j1; j += R) int8_tile_avx512<M, R, Q>(x, i0, w, j, n_rows, y, ldy);
    for (; j < j1; ++j) int8_tile_avx512<M, 1, Q>(x, i0, w, j, n_rows, y, ldy);
  } else {
    for (std::int64_t j = j0; j < j1; ++j) {
      const Q* row = w + j * nb;
      __m512 even[M], odd[M];
      float offset[M] = {};
      #pragma GCC unroll 8
      for (int i = 0; i < M; ++i) even[i] = odd[i] = _mm512_setzero_ps();
      // Blocks in pairs, each sum by its position (even, odd): picked by the block's parity at run time, the
      // accumulators went through memory (Q6_K in cache, 1 core: 30 -> 32 GB/s; from memory 27 -> 29).
      const auto step = [&](std::int64_t b, auto& acc) LLAMA3_TARGET_AVX512 __attribute__((always_inline)) {
        for (int line = 0; line < static_cast<int>(sizeof(Q)); line += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(row + b) + decode_prefetch_avx512 + line, _MM_HINT_T0);
        }
        if constexpr (std::is_same_v<Q, BlockQ6_K>) {
          dot_q6_k_avx512<M>(row[b], x, i0, b * 8, acc);
        } else {
          dot_q4_k_avx512<M>(row[b], x, i0, b * 8, acc, offset);
        }
      };
      std::int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        step(b, even);
        step(b + 1, odd);
      }
      if (b < nb) step(b, even);
      #pragma GCC unroll 8
      for (int i = 0; i < M; ++i) y[i * ldy + j] = _mm512_reduce_add_ps(_mm512_add_ps(even[i], odd[i])) - offset[i];
    }
  }
}

}  // namespace llama3::cpu

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // LLAMA3_X86
