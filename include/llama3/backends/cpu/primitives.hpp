#pragma once
// primitives<Cpu>: the Transformer's operations on the CPU, over float activations and weights of any stored type,
// each parallelised over the thread pool.
#include <cstdint>
#include <span>
#include <variant>

#include "llama3/backends/cpu/kernels.hpp"
#include "llama3/backends/primitives.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/core/thread_pool.hpp"
#include "llama3/ops/attention.hpp"
#include "llama3/ops/rms_norm.hpp"
#include "llama3/ops/rope.hpp"

namespace llama3 {

template <>
struct primitives<Cpu> {
  using Context = ThreadPool;

  // out[r] = embeddings[tokens[r]] as float.
  static void embedding(Context&, const AnyTensor<Cpu>& table, std::span<const std::int32_t> tokens, float* out) {
    std::visit([&](const auto& t) {
      const std::int64_t dim = t.dim(1);
      for (std::size_t r = 0; r < tokens.size(); ++r) {
        dequantize_row(t.row(tokens[r]), dim, out + static_cast<std::int64_t>(r) * dim);
      }
    }, table);
  }

  static void rms_norm(Context& pool, const float* x, std::int64_t rows, std::int64_t dim, const AnyTensor<Cpu>& w,
                       double eps, float* out) {
    const float* weight = std::get<Tensor<const float>>(w).data();  // the loaders keep norms in float
    pool.run(static_cast<std::size_t>(rows), [&](std::size_t r) {
      ops::rms_norm(x + static_cast<std::int64_t>(r) * dim, weight, dim, eps, out + static_cast<std::int64_t>(r) * dim);
    });
  }

  // y (rows x n) = x (rows x k) W^T.
  static void matmul(Context& pool, const float* x, std::int64_t rows, const AnyTensor<Cpu>& w, float* y,
                     MatmulPrecision precision = MatmulPrecision::f32) {
    cpu::kernels::matmul(pool, x, rows, w, y, precision);
  }

  static void add(Context&, float* x, const float* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  static void silu_mul(Context& pool, float* h1, const float* h3, std::int64_t rows, std::int64_t n) {
    pool.run(static_cast<std::size_t>(rows), [&](std::size_t r) {
      ops::silu_mul(h1 + static_cast<std::int64_t>(r) * n, h3 + static_cast<std::int64_t>(r) * n, n);
    });
  }
};

}  // namespace llama3
