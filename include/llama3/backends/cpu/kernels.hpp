#pragma once
// The CPU backend's compiled entry points: every product of activations and a weight (each dtype, each ISA, decode
// and prefill) and the attention of one KV head's group over a float or bf16 cache. They are what a translation
// unit that runs the model instantiates, and most of what it costs to compile.
//
// Header-only by default: they are inline, and each translation unit that calls them compiles them. A program of
// several translation units can compile them once instead: define LLAMA3_CPU_KERNELS_EXTERN in all of them (only
// the declarations below are seen), and compile one more translation unit that holds
//
//   #define LLAMA3_CPU_KERNELS_IMPLEMENTATION
//   #include <llama3/backends/cpu/kernels.hpp>
//
// (src/cpu_kernels.cpp, which this project's tools and tests link). The generated code is the same either way.
#include <cstdint>

#include "llama3/core/dtype.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/core/thread_pool.hpp"
#include "llama3/ops/attention.hpp"

#if defined(LLAMA3_CPU_KERNELS_EXTERN) || defined(LLAMA3_CPU_KERNELS_IMPLEMENTATION)
#define LLAMA3_CPU_KERNEL  // ordinary functions, defined once in the implementation unit
#else
#define LLAMA3_CPU_KERNEL inline
#endif

namespace llama3::cpu::kernels {

// y (m x n) = x (m x k) W^T for W (n x k) of any stored type, on the pool (backends/cpu/matmul.hpp).
LLAMA3_CPU_KERNEL void matmul(ThreadPool& pool, const float* x, std::int64_t m, const AnyTensor<Cpu>& w, float* y,
                              MatmulPrecision precision);

// The n_rep query heads of KV head kv_head over the first n_ctx cached positions (backends/cpu/attention.hpp).
LLAMA3_CPU_KERNEL void attend_group(const float* q, ops::KvView<float> keys, ops::KvView<float> values, int kv_head,
                                    int n_rep, int head_dim, int n_ctx, float* scores, float* out);
LLAMA3_CPU_KERNEL void attend_group(const float* q, ops::KvView<bf16> keys, ops::KvView<bf16> values, int kv_head,
                                    int n_rep, int head_dim, int n_ctx, float* scores, float* out);

}  // namespace llama3::cpu::kernels

#if !defined(LLAMA3_CPU_KERNELS_EXTERN) || defined(LLAMA3_CPU_KERNELS_IMPLEMENTATION)
#include "llama3/backends/cpu/attention.hpp"
#include "llama3/backends/cpu/matmul.hpp"

namespace llama3::cpu::kernels {

LLAMA3_CPU_KERNEL void matmul(ThreadPool& pool, const float* x, std::int64_t m, const AnyTensor<Cpu>& w, float* y,
                              MatmulPrecision precision) {
  std::visit([&](const auto& t) { cpu::matmul(pool, x, m, t.dim(1), t.data(), t.dim(0), y, precision); }, w);
}

LLAMA3_CPU_KERNEL void attend_group(const float* q, ops::KvView<float> keys, ops::KvView<float> values, int kv_head,
                                    int n_rep, int head_dim, int n_ctx, float* scores, float* out) {
  cpu::attend_group<float>(q, keys, values, kv_head, n_rep, head_dim, n_ctx, scores, out);
}
LLAMA3_CPU_KERNEL void attend_group(const float* q, ops::KvView<bf16> keys, ops::KvView<bf16> values, int kv_head,
                                    int n_rep, int head_dim, int n_ctx, float* scores, float* out) {
  cpu::attend_group<bf16>(q, keys, values, kv_head, n_rep, head_dim, n_ctx, scores, out);
}

}  // namespace llama3::cpu::kernels
#endif

#undef LLAMA3_CPU_KERNEL
