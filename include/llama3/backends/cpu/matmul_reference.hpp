#pragma once
// The scalar code every CPU kernel is tested against, and the portable kernels used where no SIMD target applies:
// y = x W^T with x m x k (float, row-major), W n x k in its stored type, y m x n. The references sum in double.
// Also the int8 activations of the integer kernels (quantized weights): their layout, their rounding, and the
// reference that takes the same rounding.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "llama3/core/dtype.hpp"
#include "llama3/core/quant.hpp"

namespace llama3::cpu {

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

// The reference for quantized weights: each row dequantized (ggml's arithmetic), then sums in double.
template <class Q>
  requires is_quantized<Q>
void matmul_reference(const float* x, std::int64_t m, std::int64_t k, const Q* w, std::int64_t n, float* y) {
  std::vector<float> row(static_cast<std::size_t>(k));
  for (std::int64_t j = 0; j < n; ++j) {
    dequantize_row(w + j * (k / Q::elements), k, row.data());
    for (std::int64_t i = 0; i < m; ++i) {
      double s = 0;
      for (std::int64_t p = 0; p < k; ++p) s += double(x[i * k + p]) * double(row[static_cast<std::size_t>(p)]);
      y[i * n + j] = static_cast<float>(s);
    }
  }
}

// Up to this many rows of x go through the matrix-vector kernels (a few decoded or draft tokens); more are a GEMM.
inline constexpr std::int64_t gemv_max_rows = 8;

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


// Quantized W without SIMD: each row dequantized once, then dot products.
template <class Q>
void gemv_quant_portable(const float* x, std::int64_t m, std::int64_t k, const Q* w, std::int64_t j0, std::int64_t j1,
                         float* y, std::int64_t ldy) {
  std::vector<float> row(static_cast<std::size_t>(k));
  for (std::int64_t j = j0; j < j1; ++j) {
    dequantize_row(w + j * (k / Q::elements), k, row.data());
    gemv_portable(x, m, k, row.data(), 0, 1, y + j, ldy);
  }
}

// ---- integer dot products for quantized weights (decode) ---------------------------------------------------------
// As llama.cpp does: the few rows of x are quantized to int8 blocks of 32 with a float scale, and each weight block
// meets them as int8 x int8 products summed exactly in int32 (vpmaddubsw/vpmaddwd), one float multiply per block.
// Weights stream at their stored size with no conversion to float, which is what keeps Q4_0 and Q6_K at the memory
// bandwidth. The cost is x's own rounding (its 8 bits per 32-block): the tests bound it against f32 maths.

struct BlockQ8Act {
  float d;
  std::int8_t qs[32];
  float sum;  // d * sum(qs): for the offsets of Q4_0 (8) and Q4_K (its mins), per block
};

// Every quantized type has integer kernels (on AVX2 and AVX-512).
template <class W>
inline constexpr bool has_int8_dot = is_quantized<W>;

// k floats (a multiple of 32) to k / 32 blocks: d = max |x| / 127, q = x / d rounded to nearest even.
inline void quantize_activations(const float* x, std::int64_t k, BlockQ8Act* out) noexcept {
  for (std::int64_t b = 0; b < k / 32; ++b, x += 32) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    out[b].d = d;
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      out[b].qs[i] = static_cast<std::int8_t>(std::nearbyint(x[i] * id));
      sum += out[b].qs[i];
    }
    out[b].sum = d * static_cast<float>(sum);
  }
}

// The scalar reference of the integer path: x quantized as above, times the dequantized weights.
template <class Q>
void matmul_reference_int8(const float* x, std::int64_t m, std::int64_t k, const Q* w, std::int64_t n, float* y) {
  std::vector<BlockQ8Act> xq(static_cast<std::size_t>(k / 32));
  std::vector<float> row(static_cast<std::size_t>(k));
  for (std::int64_t i = 0; i < m; ++i) {
    quantize_activations(x + i * k, k, xq.data());
    for (std::int64_t j = 0; j < n; ++j) {
      dequantize_row(w + j * (k / Q::elements), k, row.data());
      double s = 0;
      for (std::int64_t p = 0; p < k; ++p) s += static_cast<double>(row[static_cast<std::size_t>(p)]) * xq[p / 32].d * xq[p / 32].qs[p % 32];
      y[i * n + j] = static_cast<float>(s);
    }
  }
}

}  // namespace llama3::cpu
