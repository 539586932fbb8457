#pragma once
// y = x W^T on the CPU: x is m x k (float, row-major), W is n x k in its stored type (float, bf16, f16), y is m x n.
// This is every Linear of the model (Meta's wq, w1, output...). Two kernels, chosen by m:
//   - m <= 4 (decode): dot products that stream W once, converting to float in registers (bandwidth-bound);
//   - m > 4 (prefill): W is packed into float panels of 16 columns and multiplied by a 6 x 16 register tile
//     (FLOP-bound).
// Both have AVX2+FMA versions, selected at run time (the library does not require -mavx2), and a scalar reference
// that the tests compare them with on odd sizes. Output columns are split across the thread pool.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "llama3/core/dtype.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/core/thread_pool.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#define LLAMA3_X86 1
#define LLAMA3_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define LLAMA3_X86 0
#define LLAMA3_TARGET_AVX2
#endif

namespace llama3::cpu {

inline bool has_avx2() {
#if LLAMA3_X86
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return yes;
#else
  return false;
#endif
}

// ---- scalar reference -------------------------------------------------------------------------------------------

template <class W>
void matmul_reference(const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t n, float* y) {
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;  // the reference sums in double: the kernels must be close to it, not equal
      for (std::int64_t p = 0; p < k; ++p) s += double(x[i * k + p]) * double(to_float(w[j * k + p]));
      y[i * n + j] = static_cast<float>(s);
    }
  }
}

// ---- portable kernels (no SIMD intrinsics; the compiler vectorises what it can) ---------------------------------

template <class W>
void gemv_portable(const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t j0, std::int64_t j1,
                   float* y, std::int64_t ldy) {
  for (std::int64_t j = j0; j < j1; ++j) {
    const W* row = w + j * k;
    for (std::int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * k;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      std::int64_t p = 0;
      for (; p + 4 <= k; p += 4) {
        s0 += xi[p] * to_float(row[p]);
        s1 += xi[p + 1] * to_float(row[p + 1]);
        s2 += xi[p + 2] * to_float(row[p + 2]);
        s3 += xi[p + 3] * to_float(row[p + 3]);
      }
      for (; p < k; ++p) s0 += xi[p] * to_float(row[p]);
      y[i * ldy + j] = (s0 + s1) + (s2 + s3);
    }
  }
}

#if LLAMA3_X86

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

// m (1..4) rows of x against W rows [j0, j1): each W row is read once for all m.
template <int M, class W>
LLAMA3_TARGET_AVX2 void gemv_avx2(const float* x, std::int64_t k, const W* w, std::int64_t j0, std::int64_t j1,
                                  float* y, std::int64_t ldy) {
  for (std::int64_t j = j0; j < j1; ++j) {
    const W* row = w + j * k;
    __m256 acc[M][2];
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    std::int64_t p = 0;
    for (; p + 16 <= k; p += 16) {
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

// Packs W rows [j, j + 16) x columns [p0, p0 + kc) as float, k-major: panel[p][c] = W[j + c][p0 + p]. Rows past n
// are zero.
template <class W>
LLAMA3_TARGET_AVX2 void pack_panel(const W* w, std::int64_t k, std::int64_t n, std::int64_t j, std::int64_t p0,
                                   std::int64_t kc, float* panel) {
  const std::int64_t cols = std::min<std::int64_t>(16, n - j);
  for (std::int64_t c = 0; c < 16; ++c) {
    float* dst = panel + c;
    if (c >= cols) {
      for (std::int64_t p = 0; p < kc; ++p) dst[p * 16] = 0.0f;
      continue;
    }
    const W* src = w + (j + c) * k + p0;
    std::int64_t p = 0;
    alignas(32) float tmp[8];
    for (; p + 8 <= kc; p += 8) {
      _mm256_store_ps(tmp, load8(src + p));
      for (int q = 0; q < 8; ++q) dst[(p + q) * 16] = tmp[q];
    }
    for (; p < kc; ++p) dst[p * 16] = to_float(src[p]);
  }
}

// y[i.., j..j+16) += x[i.., p0..p0+kc) * panel, for MR rows of x.
template <int MR>
LLAMA3_TARGET_AVX2 void tile_avx2(const float* x, std::int64_t k, std::int64_t p0, std::int64_t kc, const float* panel,
                                  float* y, std::int64_t ldy, std::int64_t cols) {
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const float* xr[MR];
  for (int r = 0; r < MR; ++r) xr[r] = x + r * k + p0;
  for (std::int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(panel + p * 16), b1 = _mm256_load_ps(panel + p * 16 + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(xr[r] + p);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* yr = y + r * ldy;
    if (cols == 16) {
      _mm256_storeu_ps(yr, _mm256_add_ps(_mm256_loadu_ps(yr), acc[r][0]));
      _mm256_storeu_ps(yr + 8, _mm256_add_ps(_mm256_loadu_ps(yr + 8), acc[r][1]));
    } else {
      alignas(32) float tmp[16];
      _mm256_store_ps(tmp, acc[r][0]);
      _mm256_store_ps(tmp + 8, acc[r][1]);
      for (std::int64_t c = 0; c < cols; ++c) yr[c] += tmp[c];
    }
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
      std::int64_t i = 0;
      for (; i + 6 <= m; i += 6) tile_avx2<6>(x + i * k, k, p0, kc, panel, y + i * ldy + j, ldy, cols);
      switch (m - i) {
        case 5: tile_avx2<5>(x + i * k, k, p0, kc, panel, y + i * ldy + j, ldy, cols); break;
        case 4: tile_avx2<4>(x + i * k, k, p0, kc, panel, y + i * ldy + j, ldy, cols); break;
        case 3: tile_avx2<3>(x + i * k, k, p0, kc, panel, y + i * ldy + j, ldy, cols); break;
        case 2: tile_avx2<2>(x + i * k, k, p0, kc, panel, y + i * ldy + j, ldy, cols); break;
        case 1: tile_avx2<1>(x + i * k, k, p0, kc, panel, y + i * ldy + j, ldy, cols); break;
        default: break;
      }
    }
  }
}

#endif  // LLAMA3_X86

// Columns [j0, j1) of y (m x n, leading dimension ldy) = x (m x k) W^T (W is n x k).
template <class W>
void matmul_columns(const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t n, std::int64_t j0,
                    std::int64_t j1, float* y, std::int64_t ldy) {
#if LLAMA3_X86
  if (has_avx2()) {
    switch (m) {
      case 1: return gemv_avx2<1>(x, k, w, j0, j1, y, ldy);
      case 2: return gemv_avx2<2>(x, k, w, j0, j1, y, ldy);
      case 3: return gemv_avx2<3>(x, k, w, j0, j1, y, ldy);
      case 4: return gemv_avx2<4>(x, k, w, j0, j1, y, ldy);
      default: return gemm_avx2(x, m, k, w, n, j0, j1, y, ldy);
    }
  }
#endif
  (void)n;
  gemv_portable(x, m, k, w, j0, j1, y, ldy);
}

// y (m x n) = x (m x k) W^T, with W n x k in any stored type, on the pool.
template <class W>
void matmul(ThreadPool& pool, const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t n, float* y) {
  // Blocks of columns: enough of them to balance the threads, each a multiple of 16 (a packed panel).
  const std::int64_t threads = pool.size();
  std::int64_t block = std::max<std::int64_t>(16, (n + 4 * threads - 1) / (4 * threads));
  block = (block + 15) / 16 * 16;
  const std::int64_t blocks = (n + block - 1) / block;
  pool.run(static_cast<std::size_t>(blocks), [&](std::size_t b) {
    const std::int64_t j0 = static_cast<std::int64_t>(b) * block, j1 = std::min(n, j0 + block);
    matmul_columns(x, m, k, w, n, j0, j1, y, n);
  });
}

inline void matmul(ThreadPool& pool, const float* x, std::int64_t m, const AnyTensor<Cpu>& w, float* y) {
  std::visit([&](const auto& t) { matmul(pool, x, m, t.dim(1), t.data(), t.dim(0), y); }, w);
}

}  // namespace llama3::cpu
