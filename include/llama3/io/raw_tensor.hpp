#pragma once
// What a checkpoint reader hands over: named tensors as bytes of a known dtype and shape, still inside the mapped
// file (or a buffer) that `owner` keeps alive, and where they came from for error messages.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "llama3/core/dtype.hpp"
#include "llama3/core/error.hpp"
#include "llama3/core/tensor.hpp"

namespace llama3::io {

struct RawTensor {
  DType dtype = DType::f32;
  Shape shape;
  const std::byte* data = nullptr;
  std::shared_ptr<const void> owner;
  std::shared_ptr<const std::string> source;  // the file's name, for errors: one string for all its tensors
  std::uint64_t offset = 0;                   // byte offset of the data in the file

  const std::string& file() const noexcept {
    static const std::string unknown;
    return source ? *source : unknown;
  }

  // Quantized tensors (GGUF) count elements in the shape and store blocks along the last dimension.
  std::size_t bytes() const noexcept {
    return static_cast<std::size_t>(shape.numel() / dtype_block_elements(dtype)) * dtype_block_bytes(dtype);
  }
};

using TensorMap = std::map<std::string, RawTensor>;

namespace io_detail {

// Multiplies the dimensions, or returns false when the product (in elements and in bytes) would not fit.
inline bool checked_numel(const Shape& s, std::size_t element_size, std::uint64_t& bytes) {
  std::uint64_t n = 1;
  for (int i = 0; i < s.rank(); ++i) {
    const auto d = static_cast<std::uint64_t>(s[i]);
    if (s[i] < 0 || (d != 0 && n > (std::uint64_t{1} << 62) / d)) return false;
    n *= d;
  }
  if (n > (std::uint64_t{1} << 62) / element_size) return false;
  bytes = n * element_size;
  return true;
}

}  // namespace io_detail

// A typed tensor over the raw bytes. Data that is not aligned for its element type (possible in a zip or a
// safetensors file) is copied into an aligned buffer first, so that kernels never read misaligned elements.
template <class T>
Tensor<const T> typed_view(const RawTensor& r) {
  if (reinterpret_cast<std::uintptr_t>(r.data) % alignof(T) == 0) {
    return Tensor<const T>::view(reinterpret_cast<const T*>(r.data), r.shape, r.owner);
  }
  Tensor<T> copy(r.shape);
  std::memcpy(copy.data(), r.data, r.bytes());
  return copy;
}

inline AnyTensor<Cpu> any_view(const RawTensor& r) {
  switch (r.dtype) {
    case DType::f32: return typed_view<float>(r);
    case DType::bf16: return typed_view<bf16>(r);
    case DType::f16: return typed_view<f16>(r);
    case DType::q8_0: return typed_view<BlockQ8_0>(r);
    case DType::q4_0: return typed_view<BlockQ4_0>(r);
    case DType::q4_k: return typed_view<BlockQ4_K>(r);
    case DType::q6_k: return typed_view<BlockQ6_K>(r);
    case DType::q4_0x32: return typed_view<BlockQ4_0x32>(r);
  }
  throw Error("unknown dtype");
}

}  // namespace llama3::io
