#pragma once
// Storage element types: bf16 and f16 (IEEE half) beside float. Arithmetic happens in float; these types only
// convert. bf16 -> float is exact (a shift); float -> bf16 and float -> f16 round to nearest even, as PyTorch does.
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace llama3 {

struct bf16 {
  std::uint16_t bits = 0;

  bf16() = default;
  explicit bf16(float f) noexcept : bits(from_float(f)) {}
  static constexpr bf16 from_bits(std::uint16_t b) noexcept {
    bf16 x;
    x.bits = b;
    return x;
  }
  explicit operator float() const noexcept { return std::bit_cast<float>(std::uint32_t{bits} << 16); }

  static std::uint16_t from_float(float f) noexcept {
    const auto u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40);  // quiet NaN
    return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
  }
};

struct f16 {
  std::uint16_t bits = 0;

  f16() = default;
  explicit f16(float f) noexcept : bits(from_float(f)) {}
  static constexpr f16 from_bits(std::uint16_t b) noexcept {
    f16 x;
    x.bits = b;
    return x;
  }
  explicit operator float() const noexcept { return to_float(bits); }

  static float to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = std::uint32_t{h & 0x8000u} << 16;
    const std::uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FFu;
    if (exp == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mant << 13));  // inf, NaN
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
    // Subnormal: mant * 2^-24.
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }

  static std::uint16_t from_float(float f) noexcept {
    const auto u = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    const std::uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);   // NaN
    if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to infinity
    if (a < 0x38800000u) {  // below the smallest normal half: a subnormal or zero
      const float v = std::bit_cast<float>(a) * 16777216.0f;  // in units of 2^-24
      auto m = static_cast<std::uint32_t>(v);
      const float rest = v - static_cast<float>(m);
      if (rest > 0.5f || (rest == 0.5f && (m & 1u))) ++m;
      return static_cast<std::uint16_t>(sign | m);
    }
    const std::uint32_t rounded = a + 0xFFFu + ((a >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
  }
};

// Quantized types (core/quant.hpp) store blocks of weights: GGUF's Q8_0, Q4_0, Q4_K and Q6_K, and Q4_0x32, Q4_0
// regrouped for the CPU kernels (never in a file).
enum class DType { f32, bf16, f16, q8_0, q4_0, q4_k, q6_k, q4_0x32 };

inline constexpr std::string_view dtype_name(DType t) noexcept {
  switch (t) {
    case DType::f32: return "float32";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
    case DType::q8_0: return "Q8_0";
    case DType::q4_0: return "Q4_0";
    case DType::q4_k: return "Q4_K";
    case DType::q6_k: return "Q6_K";
    case DType::q4_0x32: return "Q4_0x32";
  }
  return "?";
}

// Elements in one storage unit (a block for quantized types), and its bytes.
inline constexpr std::int64_t dtype_block_elements(DType t) noexcept {
  return t == DType::q8_0 || t == DType::q4_0      ? 32
         : t == DType::q4_k || t == DType::q6_k    ? 256
         : t == DType::q4_0x32                     ? 1024
                                                   : 1;
}
inline constexpr std::size_t dtype_block_bytes(DType t) noexcept {
  switch (t) {
    case DType::f32: return 4;
    case DType::bf16: case DType::f16: return 2;
    case DType::q8_0: return 34;
    case DType::q4_0: return 18;
    case DType::q4_k: return 144;
    case DType::q6_k: return 210;
    case DType::q4_0x32: return 576;
  }
  return 0;
}
// Bytes per element of the unquantized types.
inline constexpr std::size_t dtype_size(DType t) noexcept { return dtype_block_bytes(t); }

// The arithmetic of the matrix products with bf16 weights (backends/cpu/matmul.hpp):
//   f32   f32 maths on the stored weights (the default; the fixtures' logits within 1e-4 of float64 maths);
//   bf16  x rounded to bf16 and multiplied with vdpbf16ps (on CPUs with AVX512_BF16; elsewhere as f32): what
//         llama.cpp computes for bf16 weights, and what PyTorch's bf16 models compute. The prefill gets twice the
//         FLOP rate; decoding (bandwidth-bound) gets fewer instructions a byte of W, so it reads nearer the floor.
enum class MatmulPrecision { f32, bf16 };

inline constexpr std::string_view matmul_precision_name(MatmulPrecision p) noexcept {
  return p == MatmulPrecision::bf16 ? "bf16" : "f32";
}

template <class T>
inline constexpr DType dtype_of = DType::f32;
template <>
inline constexpr DType dtype_of<bf16> = DType::bf16;
template <>
inline constexpr DType dtype_of<f16> = DType::f16;

template <class T>
inline float to_float(T x) noexcept {
  return static_cast<float>(x);
}

}  // namespace llama3
