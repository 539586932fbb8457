#pragma once
// Tensor<T, Device>: a strided-free (contiguous, row-major) n-d array whose element type and device are part of its
// type. It either owns its memory (an aligned buffer) or views memory it keeps alive through a shared owner (a
// mapped checkpoint), as Eigen's Map views memory it does not own. Copies share the memory.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <variant>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "llama3/core/device.hpp"
#include "llama3/core/dtype.hpp"
#include "llama3/core/error.hpp"
#include "llama3/core/quant.hpp"

namespace llama3 {

inline constexpr int max_tensor_rank = 4;

class Shape {
public:
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) {
    if (dims.size() > max_tensor_rank) throw Error("a tensor has at most 4 dimensions");
    for (const std::int64_t d : dims) dims_[rank_++] = d;
  }

  int rank() const noexcept { return rank_; }
  std::int64_t operator[](int i) const noexcept { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t& operator[](int i) noexcept { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }
  void push_back(std::int64_t d) {
    if (rank_ == max_tensor_rank) throw Error("a tensor has at most 4 dimensions");
    dims_[static_cast<std::size_t>(rank_++)] = d;
  }
  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i) {
      if (a.dims_[static_cast<std::size_t>(i)] != b.dims_[static_cast<std::size_t>(i)]) return false;
    }
    return true;
  }
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<std::size_t>(i)]);
    }
    return s + "]";
  }

private:
  std::array<std::int64_t, max_tensor_rank> dims_{};
  int rank_ = 0;
};

namespace detail {
// A cache line's alignment (enough for any SIMD load); large buffers (weights, the KV cache) are aligned to 2 MiB
// and advised to use transparent huge pages: the decode kernels stream them, and 4 KiB pages cost TLB misses.
inline std::shared_ptr<void> aligned_buffer(std::size_t bytes) {
  constexpr std::size_t huge = std::size_t{2} << 20;
  if (bytes >= 2 * huge) {
    void* p = ::operator new(bytes, std::align_val_t{huge});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    ::madvise(p, bytes / 4096 * 4096, MADV_HUGEPAGE);  // advice only
#endif
    return std::shared_ptr<void>(p, [](void* q) { ::operator delete(q, std::align_val_t{huge}); });
  }
  constexpr std::size_t align = 64;
  void* p = ::operator new(bytes == 0 ? align : bytes, std::align_val_t{align});
  return std::shared_ptr<void>(p, [](void* q) { ::operator delete(q, std::align_val_t{align}); });
}
}  // namespace detail

template <class T, class Device = Cpu>
class Tensor {
public:
  using value_type = T;
  using device_type = Device;
  using element_type = std::remove_const_t<T>;

  Tensor() = default;

  // Elements per storage unit: 1, or a quantized block's size (the shape always counts elements).
  static constexpr int block = block_elements<element_type>;

  // An owning tensor, uninitialised.
  explicit Tensor(const Shape& shape) : shape_(shape) {
    static_assert(std::is_same_v<Device, Cpu>, "owning tensors on other devices come from their backend");
    owner_ = detail::aligned_buffer(static_cast<std::size_t>(shape.numel() / block) * sizeof(T));
    data_ = static_cast<T*>(owner_.get());
  }

  // An owning tensor filled with `value`.
  static Tensor filled(const Shape& shape, element_type value)
    requires(block == 1)
  {
    Tensor t(shape);
    std::fill(t.data(), t.data() + t.numel(), value);
    return t;
  }

  // A view of memory kept alive by `owner` (which may be empty when the caller guarantees the lifetime).
  static Tensor view(T* data, const Shape& shape, std::shared_ptr<const void> owner = {}) {
    Tensor t;
    t.data_ = data;
    t.shape_ = shape;
    t.owner_ = std::const_pointer_cast<void>(owner);
    return t;
  }

  // Conversion to a tensor of const elements sharing the memory.
  operator Tensor<const element_type, Device>() const  // NOLINT: intended implicit
    requires(!std::is_const_v<T>)
  {
    return Tensor<const element_type, Device>::view(data_, shape_, owner_);
  }

  T* data() const noexcept { return data_; }
  const Shape& shape() const noexcept { return shape_; }
  int rank() const noexcept { return shape_.rank(); }
  std::int64_t dim(int i) const noexcept { return shape_[i]; }
  std::int64_t numel() const noexcept { return shape_.numel(); }
  std::size_t bytes() const noexcept { return static_cast<std::size_t>(numel() / block) * sizeof(T); }
  bool empty() const noexcept { return data_ == nullptr; }
  const std::shared_ptr<void>& owner() const noexcept { return owner_; }

  // Row r of a 2-d tensor (or the r-th slice along the first dimension).
  T* row(std::int64_t r) const noexcept { return data_ + r * (numel() / shape_[0] / block); }

private:
  T* data_ = nullptr;
  Shape shape_;
  std::shared_ptr<void> owner_;
};

// A weight of any storage type: what a checkpoint holds decides it at run time, and kernels dispatch on it.
template <class Device = Cpu>
using AnyTensor = std::variant<Tensor<const float, Device>, Tensor<const bf16, Device>, Tensor<const f16, Device>,
                               Tensor<const BlockQ8_0, Device>, Tensor<const BlockQ4_0, Device>,
                               Tensor<const BlockQ4_K, Device>, Tensor<const BlockQ6_K, Device>,
                               Tensor<const BlockQ4_0x32, Device>>;

template <class Device>
DType dtype(const AnyTensor<Device>& t) noexcept {
  return std::visit([](const auto& x) { return dtype_of<typename std::decay_t<decltype(x)>::element_type>; }, t);
}

template <class Device>
const Shape& shape(const AnyTensor<Device>& t) noexcept {
  return std::visit([](const auto& x) -> const Shape& { return x.shape(); }, t);
}

template <class Device>
bool is_empty(const AnyTensor<Device>& t) noexcept {
  return std::visit([](const auto& x) { return x.empty(); }, t);
}

}  // namespace llama3
