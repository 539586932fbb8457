#pragma once
// Quantized weights in GGUF's block layouts, so that a GGUF file's tensors are used in place and a checkpoint
// quantized here is what llama.cpp would have written. A quantized tensor is a row-major array of blocks along each
// row (Tensor<const BlockQ8_0> of logical shape [n, k] holds n rows of k / 32 blocks).
//   Q8_0: 32 weights = fp16 scale d + 32 int8          x = d * q
//   Q4_0: 32 weights = fp16 scale d + 16 bytes         x = d * (nibble - 8); low nibbles are weights 0..15
//   Q4_K: 256 weights = fp16 d, dmin + 12 bytes of 6-bit scales and mins + 128 bytes of nibbles
//   Q6_K: 256 weights = 128 bytes low nibbles + 64 bytes high 2 bits + 16 int8 scales + fp16 d
// and one layout of our own, which GGUF files never hold:
//   Q4_0x32: 1024 weights = Q4_0's 32 blocks regrouped for the AVX-512 kernels (model/pack.hpp makes it at load):
//            their 16-byte nibble arrays, then their 32 fp16 scales. 576 bytes, a whole number of cache lines:
//            each aligned 64-byte load holds 4 blocks' nibbles, where Q4_0's 18-byte blocks straddle lines.
// The arithmetic is ggml's reference code (dequantize_row_*, quantize_row_*_ref), element for element.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "llama3/core/dtype.hpp"

namespace llama3 {

struct BlockQ8_0 {
  static constexpr int elements = 32;
  f16 d;
  std::int8_t qs[32];
};
struct BlockQ4_0 {
  static constexpr int elements = 32;
  f16 d;
  std::uint8_t qs[16];
};
struct BlockQ4_K {
  static constexpr int elements = 256;
  f16 d, dmin;
  std::uint8_t scales[12];
  std::uint8_t qs[128];
};
struct BlockQ6_K {
  static constexpr int elements = 256;
  std::uint8_t ql[128];
  std::uint8_t qh[64];
  std::int8_t scales[16];
  f16 d;
};
struct BlockQ4_0x32 {
  static constexpr int elements = 1024;
  std::uint8_t qs[32][16];
  f16 d[32];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ6_K) == 210, "GGUF block sizes");
static_assert(sizeof(BlockQ4_0x32) == 32 * sizeof(BlockQ4_0), "Q4_0x32 is Q4_0's bytes, regrouped");

template <class T>
inline constexpr bool is_quantized = false;
template <>
inline constexpr bool is_quantized<BlockQ8_0> = true;
template <>
inline constexpr bool is_quantized<BlockQ4_0> = true;
template <>
inline constexpr bool is_quantized<BlockQ4_K> = true;
template <>
inline constexpr bool is_quantized<BlockQ6_K> = true;
template <>
inline constexpr bool is_quantized<BlockQ4_0x32> = true;

// Elements one storage unit holds: 1 for float/bf16/f16, the block size for quantized types.
template <class T>
inline constexpr int block_elements = 1;
template <class T>
  requires is_quantized<T>
inline constexpr int block_elements<T> = T::elements;

template <>
inline constexpr DType dtype_of<BlockQ8_0> = DType::q8_0;
template <>
inline constexpr DType dtype_of<BlockQ4_0> = DType::q4_0;
template <>
inline constexpr DType dtype_of<BlockQ4_K> = DType::q4_k;
template <>
inline constexpr DType dtype_of<BlockQ6_K> = DType::q6_k;
template <>
inline constexpr DType dtype_of<BlockQ4_0x32> = DType::q4_0x32;

// ---- dequantization: one block to its floats ---------------------------------------------------------------------

inline void dequantize(const BlockQ8_0& b, float* y) noexcept {
  const float d = static_cast<float>(b.d);
  for (int i = 0; i < 32; ++i) y[i] = d * static_cast<float>(b.qs[i]);
}

inline void dequantize(const BlockQ4_0& b, float* y) noexcept {
  const float d = static_cast<float>(b.d);
  for (int i = 0; i < 16; ++i) {
    y[i] = d * static_cast<float>((b.qs[i] & 0x0F) - 8);
    y[i + 16] = d * static_cast<float>((b.qs[i] >> 4) - 8);
  }
}

namespace quant_detail {
inline void scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& d, std::uint8_t& m) noexcept {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
}  // namespace quant_detail

inline void dequantize(const BlockQ4_K& b, float* y) noexcept {
  const float d = static_cast<float>(b.d), min = static_cast<float>(b.dmin);
  const std::uint8_t* q = b.qs;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
    std::uint8_t sc, m;
    quant_detail::scale_min_k4(is, b.scales, sc, m);
    const float d1 = d * sc, m1 = min * m;
    quant_detail::scale_min_k4(is + 1, b.scales, sc, m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

inline void dequantize(const BlockQ6_K& b, float* y) noexcept {
  const float d = static_cast<float>(b.d);
  const std::uint8_t* ql = b.ql;
  const std::uint8_t* qh = b.qh;
  const std::int8_t* sc = b.scales;
  for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is] * static_cast<float>(q1);
      y[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
      y[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
      y[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
    }
  }
}

// ---- Q4_0x32: Q4_0's blocks regrouped ----------------------------------------------------------------------------

// Q4_0 block s (0..31) of a Q4_0x32 block, as it was.
inline BlockQ4_0 q4_0_block(const BlockQ4_0x32& b, int s) noexcept {
  BlockQ4_0 out;
  out.d = b.d[s];
  std::memcpy(out.qs, b.qs[s], 16);
  return out;
}

// 32 Q4_0 blocks regrouped (exactly: the same nibbles and scales).
inline BlockQ4_0x32 pack_q4_0x32(const BlockQ4_0* src) noexcept {
  BlockQ4_0x32 out;
  for (int s = 0; s < 32; ++s) {
    out.d[s] = src[s].d;
    std::memcpy(out.qs[s], src[s].qs, 16);
  }
  return out;
}

inline void dequantize(const BlockQ4_0x32& b, float* y) noexcept {
  for (int s = 0; s < 32; ++s) dequantize(q4_0_block(b, s), y + 32 * s);
}

// Elements [begin, begin + count) of a row of any storage type as float; begin and count multiples of the block
// size, or, for Q4_0x32, of its 32-weight Q4_0 blocks (kernels dequantize panels narrower than 1024).
template <class T>
void dequantize_span(const T* row, std::int64_t begin, std::int64_t count, float* y) noexcept {
  if constexpr (std::is_same_v<T, BlockQ4_0x32>) {
    for (std::int64_t e = 0; e < count; e += 32) {
      const std::int64_t at = begin + e;
      dequantize(q4_0_block(row[at / 1024], static_cast<int>(at % 1024 / 32)), y + e);
    }
  } else if constexpr (is_quantized<T>) {
    for (std::int64_t b = 0; b < count / T::elements; ++b) dequantize(row[begin / T::elements + b], y + b * T::elements);
  } else {
    for (std::int64_t i = 0; i < count; ++i) y[i] = to_float(row[begin + i]);
  }
}

// k values of a row of any storage type as float (k a multiple of the block size).
template <class T>
void dequantize_row(const T* src, std::int64_t k, float* y) noexcept {
  if constexpr (is_quantized<T>) {
    for (std::int64_t b = 0; b < k / T::elements; ++b) dequantize(src[b], y + b * T::elements);
  } else {
    for (std::int64_t i = 0; i < k; ++i) y[i] = to_float(src[i]);
  }
}

// ---- quantization (ggml's reference: quantize_row_q8_0_ref, quantize_row_q4_0_ref) ------------------------------

inline BlockQ8_0 quantize_q8_0(const float* x) noexcept {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ8_0 b;
  b.d = f16(d);
  for (int i = 0; i < 32; ++i) b.qs[i] = static_cast<std::int8_t>(std::lround(x[i] * id));  // half away from 0
  return b;
}

inline BlockQ4_0 quantize_q4_0(const float* x) noexcept {
  float amax = 0, max = 0;  // the value of largest magnitude, with its sign
  for (int i = 0; i < 32; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ4_0 b;
  b.d = f16(d);
  for (int i = 0; i < 16; ++i) {
    const auto q0 = static_cast<std::uint8_t>(std::min(15, static_cast<int>(x[i] * id + 8.5f)));
    const auto q1 = static_cast<std::uint8_t>(std::min(15, static_cast<int>(x[i + 16] * id + 8.5f)));
    b.qs[i] = static_cast<std::uint8_t>(q0 | (q1 << 4));
  }
  return b;
}

template <class Q>
void quantize_row(const float* x, std::int64_t k, Q* out) noexcept {
  static_assert(std::is_same_v<Q, BlockQ8_0> || std::is_same_v<Q, BlockQ4_0>, "quantize to Q8_0 or Q4_0");
  for (std::int64_t b = 0; b < k / 32; ++b) {
    if constexpr (std::is_same_v<Q, BlockQ8_0>) {
      out[b] = quantize_q8_0(x + b * 32);
    } else {
      out[b] = quantize_q4_0(x + b * 32);
    }
  }
}

}  // namespace llama3
