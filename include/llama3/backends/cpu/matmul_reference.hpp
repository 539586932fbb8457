#pragma once
// The scalar code every CPU kernel is tested against, and the portable kernels used where no SIMD target applies:
// y = x W^T with x m x k (float, row-major), W n x k in its stored type, y m x n. The references sum in double.
// Also the int8 activations of the integer kernels (quantized weights): their layout, their rounding, and the
// reference that takes the same rounding.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
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
// meets them as int8 x int8 products summed exactly in int32 (vpmaddubsw/vpmaddwd, vpdpbusd), one float multiply per
// block.
// Weights stream at their stored size with no conversion to float, which is what keeps Q4_0 and Q6_K at the memory
// bandwidth. The cost is x's own rounding (its 8 bits per 32-block): the tests bound it against f32 maths.

// Every quantized type has integer kernels (on AVX2 and AVX-512).
template <class W>
inline constexpr bool has_int8_dot = is_quantized<W>;

// Rows of x rounded to int8 blocks of 32: d = max |x| / 127 and q = x / d rounded to nearest even, a block, and
// sum = d * sum(q) (what the mins of Q4_K multiply). Kept as arrays, so that two blocks' q are one 64-byte load. The
// AVX-512 kernels also read each pair of blocks' d spread over 8 lanes each (d16: [block 2p x 8, block 2p + 1 x 8])
// and, for each 4 q, -8 times their sum (neg8): the int32 start of a vpdpbusd of unsigned weights u with w = u - 8
// (Q4_0), or, shifted, u - 32 (Q6_K) and u - 128 (Q8_0 with its sign bit flipped), so that the offset costs nothing
// in the loop. Every array is padded by a pair of zero blocks, so a kernel may read a pair whose second block is past
// the row's end.
struct Int8Rows {
  std::int64_t rows = 0, k = 0, nb = 0, np = 0;  // nb blocks a row, np = ceil(nb / 2) pairs
  std::vector<std::int8_t> qs;                   // rows x k (+ 64)
  std::vector<float> d, sum;                     // rows x nb (+ 2)
  std::vector<float> d16;                        // rows x np x 16
  std::vector<std::int32_t> neg8;                // rows x nb x 8 (+ 16)

  // Room for m rows of `cols` (a multiple of 32), zeroed.
  void resize(std::int64_t m, std::int64_t cols) {
    rows = m;
    k = cols;
    nb = k / 32;
    np = (nb + 1) / 2;
    qs.assign(static_cast<std::size_t>(rows * k + 64), 0);
    d.assign(static_cast<std::size_t>(rows * nb + 2), 0.0f);
    sum.assign(d.size(), 0.0f);
    d16.assign(static_cast<std::size_t>(rows * np * 16), 0.0f);
    neg8.assign(static_cast<std::size_t>((rows * nb + 2) * 8), 0);
  }

  // Block b of row i from its 32 values, given its scale d (max |x| / 127) and q (written by the caller).
  void finish_block(std::int64_t i, std::int64_t b, float scale) noexcept {
    const std::int8_t* q = qs.data() + i * k + b * 32;
    int total = 0;
    for (int g = 0; g < 8; ++g) {
      const int four = q[4 * g] + q[4 * g + 1] + q[4 * g + 2] + q[4 * g + 3];
      neg8[static_cast<std::size_t>((i * nb + b) * 8 + g)] = -8 * four;
      total += four;
    }
    const std::size_t at = static_cast<std::size_t>(i * nb + b);
    d[at] = scale;
    sum[at] = scale * static_cast<float>(total);
    std::fill_n(d16.begin() + static_cast<std::ptrdiff_t>((i * np + b / 2) * 16 + (b % 2) * 8), 8, scale);
  }

  // x: m x cols floats, cols a multiple of 32 (the scalar reference of the rounding; kernels may do it with SIMD).
  void assign(const float* x, std::int64_t m, std::int64_t cols) {
    resize(m, cols);
    for (std::int64_t i = 0; i < rows; ++i) {
      for (std::int64_t b = 0; b < nb; ++b) {
        const float* xb = x + i * k + b * 32;
        float amax = 0;
        for (int e = 0; e < 32; ++e) amax = std::max(amax, std::fabs(xb[e]));
        const float scale = amax / 127.0f, inverse = scale > 0 ? 1.0f / scale : 0.0f;
        std::int8_t* q = qs.data() + i * k + b * 32;
        for (int e = 0; e < 32; ++e) q[e] = static_cast<std::int8_t>(std::nearbyint(xb[e] * inverse));
        finish_block(i, b, scale);
      }
    }
  }

  const std::int8_t* q(std::int64_t i, std::int64_t b) const noexcept { return qs.data() + i * k + b * 32; }
  float scale(std::int64_t i, std::int64_t b) const noexcept { return d[static_cast<std::size_t>(i * nb + b)]; }
  float block_sum(std::int64_t i, std::int64_t b) const noexcept { return sum[static_cast<std::size_t>(i * nb + b)]; }
  const float* scale16(std::int64_t i, std::int64_t pair) const noexcept { return d16.data() + (i * np + pair) * 16; }
  const std::int32_t* offset8(std::int64_t i, std::int64_t b) const noexcept { return neg8.data() + (i * nb + b) * 8; }

  // For Q4_0x32's kernel (k a multiple of 128), each 4 blocks again, as Q4_0's nibbles pair them: split_q holds
  // values 0..15 of the 4 blocks, then 16..31 (low and high nibbles of the 4 blocks' 64 bytes); split_neg8, for each
  // lane l of block j, -8 times the sum of values 4l..4l+3 and 16+4l..16+4l+3; split_d, each block's d 4 times.
  std::vector<std::int8_t> split_q;
  std::vector<std::int32_t> split_neg8;
  std::vector<float> split_d;

  void resize_split() {
    split_q.resize(static_cast<std::size_t>(rows * k));
    split_neg8.resize(static_cast<std::size_t>(rows * k / 8));
    split_d.resize(split_neg8.size());
  }
  void split() {
    resize_split();
    for (std::int64_t i = 0; i < rows; ++i) {
      for (std::int64_t b = 0; b < nb; ++b) split_block(i, b);
    }
  }
  void split_block(std::int64_t i, std::int64_t b) noexcept {
    const std::int64_t group = b / 4, j = b % 4;
    std::int8_t* out = split_q.data() + i * k + group * 128 + 16 * j;
    std::memcpy(out, q(i, b), 16);
    std::memcpy(out + 64, q(i, b) + 16, 16);
    const std::size_t at = static_cast<std::size_t>((i * k + group * 128) / 8 + 4 * j);
    for (int l = 0; l < 4; ++l) {
      split_neg8[at + static_cast<std::size_t>(l)] = offset8(i, b)[l] + offset8(i, b)[4 + l];
      split_d[at + static_cast<std::size_t>(l)] = scale(i, b);
    }
  }
  const std::int8_t* split_q_at(std::int64_t i, std::int64_t e) const noexcept { return split_q.data() + i * k + e; }
  const std::int32_t* split_neg8_at(std::int64_t i, std::int64_t e) const noexcept {
    return split_neg8.data() + (i * k + e) / 8;
  }
  const float* split_d_at(std::int64_t i, std::int64_t e) const noexcept { return split_d.data() + (i * k + e) / 8; }
};

// The scalar reference of the integer path: x rounded as above, times the dequantized weights.
template <class Q>
void matmul_reference_int8(const float* x, std::int64_t m, std::int64_t k, const Q* w, std::int64_t n, float* y) {
  Int8Rows xq;
  xq.assign(x, m, k);
  std::vector<float> row(static_cast<std::size_t>(k));
  for (std::int64_t j = 0; j < n; ++j) {
    dequantize_row(w + j * (k / Q::elements), k, row.data());
    for (std::int64_t i = 0; i < m; ++i) {
      double s = 0;
      for (std::int64_t p = 0; p < k; ++p) {
        s += static_cast<double>(row[static_cast<std::size_t>(p)]) * xq.scale(i, p / 32) * xq.q(i, 0)[p];
      }
      y[i * n + j] = static_cast<float>(s);
    }
  }
}

}  // namespace llama3::cpu
