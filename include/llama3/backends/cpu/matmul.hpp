#pragma once
// y = x W^T on the CPU: x is m x k (float, row-major), W is n x k in its stored type, y is m x n. This is every
// Linear of the model (Meta's wq, w1, output...). The kernel depends on m, W's type and the CPU (cpu::isa()):
//   - m <= gemv_max_rows (decode, and prompt lookup's verify passes): dot products that stream W once for all m
//     rows (bandwidth-bound). Float weights are widened in registers (f32 maths); quantized weights meet x rounded
//     to int8 blocks with exact integer sums, as llama.cpp does.
//   - m > gemv_max_rows (prefill): a register-tiled GEMM over packed panels of W (FLOP-bound): f32 FMAs.
//   - bf16 weights with MatmulPrecision::bf16 on AVX512_BF16, either m: vdpbf16ps on x rounded to bf16.
// Every kernel has a scalar reference (matmul_reference.hpp) the tests compare it with on odd sizes, on every SIMD
// target the machine has. Output columns are split across the thread pool.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "llama3/backends/cpu/isa.hpp"
#include "llama3/backends/cpu/kernels_avx2.hpp"
#include "llama3/backends/cpu/kernels_avx512.hpp"
#include "llama3/backends/cpu/matmul_reference.hpp"
#include "llama3/core/dtype.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/core/thread_pool.hpp"

namespace llama3::cpu {

// m <= gemv_max_rows rows of x against W rows [j0, j1): for each few W rows, the x rows in groups of up to 4 (the
// second group finds the W rows in cache). kernel(rows, i0, j0, j1) does x rows i0 .. i0 + rows, with rows a
// std::integral_constant of 1..4 (the gemv kernels' template argument).
template <class Kernel>
void gemv_rows(std::int64_t m, std::int64_t j0, std::int64_t j1, Kernel&& kernel) {
  const auto group = [&](std::int64_t g, std::int64_t i0, std::int64_t a, std::int64_t b) {
    switch (g) {
      case 1: return kernel(std::integral_constant<int, 1>{}, i0, a, b);
      case 2: return kernel(std::integral_constant<int, 2>{}, i0, a, b);
      case 3: return kernel(std::integral_constant<int, 3>{}, i0, a, b);
      default: return kernel(std::integral_constant<int, 4>{}, i0, a, b);
    }
  };
  if (m <= 4) return group(m, 0, j0, j1);
  for (std::int64_t j = j0; j < j1; j += 4) {
    for (std::int64_t i = 0; i < m; i += 4) group(std::min<std::int64_t>(4, m - i), i, j, std::min(j1, j + 4));
  }
}

// Splits n columns over the pool, in pieces that are multiples of 32 (a packed panel), for f(j0, j1).
//   - The GEMM (m > gemv_max_rows, FLOP-bound): about four equal blocks a thread.
//   - The matrix-vector kernels (bandwidth-bound): guided self-scheduling. Each take is 3/4 of a thread's share of
//     the columns left, so a thread streams W in a few long runs, the last takes are short and the threads finish
//     together. Against four equal blocks a thread: decoding 1.07-1.12x at 2 threads with bf16 matmul precision,
//     1.02-1.03x in f32 maths and Q8_0 / Q4_0 (benchmarks/README). Fewer equal blocks left threads idle, more of
//     them cost as much as they saved.
template <class F>
void for_column_blocks(ThreadPool& pool, std::int64_t m, std::int64_t n, F&& f) {
  const std::int64_t threads = pool.size();
  if (m <= gemv_max_rows) {
    std::atomic<std::int64_t> next{0};
    pool.run(static_cast<std::size_t>(threads), [&](std::size_t) {
      std::int64_t j0 = next.load(std::memory_order_relaxed), size = 0;
      for (;;) {
        do {
          if (j0 >= n) return;
          size = std::max<std::int64_t>(32, ((n - j0) * 3 / (4 * threads) + 31) / 32 * 32);
        } while (!next.compare_exchange_weak(j0, j0 + size, std::memory_order_relaxed));
        f(j0, std::min(n, j0 + size));
        j0 = next.load(std::memory_order_relaxed);
      }
    });
    return;
  }
  std::int64_t block = std::max<std::int64_t>(32, (n + 4 * threads - 1) / (4 * threads));
  block = (block + 31) / 32 * 32;
  pool.run(static_cast<std::size_t>((n + block - 1) / block), [&](std::size_t b) {
    const std::int64_t j0 = static_cast<std::int64_t>(b) * block;
    f(j0, std::min(n, j0 + block));
  });
}

// Columns [j0, j1) of y (m x n, leading dimension ldy) = x (m x k) W^T, in f32 maths.
template <class W>
void matmul_columns(const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t j0, std::int64_t j1,
                    float* y, std::int64_t ldy) {
#if LLAMA3_X86
  if constexpr (is_quantized<W>) {
    if (has_avx512() && m > gemv_max_rows) return gemm_dequantized_avx512(x, m, k, w, j0, j1, y, ldy);
    if (has_avx2()) {
      if (m > gemv_max_rows) return gemm_quant_avx2(x, m, k, w, j0, j1, y, ldy);
      return gemv_rows(m, j0, j1, [&](auto rows, std::int64_t i, std::int64_t a, std::int64_t b) {
        gemv_quant_avx2<rows.value>(x + i * k, k, w, a, b, y + i * ldy, ldy);
      });
    }
  } else {
    if (has_avx512()) {
      if (m > gemv_max_rows) return gemm_avx512(x, m, k, w, j0, j1, y, ldy);
      return gemv_rows(m, j0, j1, [&](auto rows, std::int64_t i, std::int64_t a, std::int64_t b) {
        gemv_avx512<rows.value>(x + i * k, k, w, a, b, y + i * ldy, ldy);
      });
    }
    if (has_avx2()) {
      if (m > gemv_max_rows) return gemm_avx2(x, m, k, w, j1, j0, j1, y, ldy);
      return gemv_rows(m, j0, j1, [&](auto rows, std::int64_t i, std::int64_t a, std::int64_t b) {
        gemv_avx2<rows.value>(x + i * k, k, w, a, b, y + i * ldy, ldy);
      });
    }
  }
#endif
  if constexpr (is_quantized<W>) {
    gemv_quant_portable(x, m, k, w, j0, j1, y, ldy);
  } else {
    gemv_portable(x, m, k, w, j0, j1, y, ldy);
  }
}

// Whether m rows of x against quantized W take the integer kernels (x rounded to int8 blocks): decoding with AVX2
// or AVX-512, and prefill of Q8_0 and Q4_0 with AVX-512; Q4_0x32 (made for the AVX-512 kernels) with AVX-512 only.
// The rest is f32 maths on the dequantized weights.
template <class W>
bool takes_int8_path(std::int64_t m, std::int64_t k) noexcept {
  if constexpr (std::is_same_v<W, BlockQ4_0x32>) {
    (void)m;
    return k % W::elements == 0 && has_avx512();
  } else if constexpr (has_int8_dot<W>) {
    if (k % 32 != 0 || !has_avx2()) return false;
    if (m <= gemv_max_rows) return true;
    return has_avx512() && W::elements == 32;
  } else {
    (void)m, (void)k;
    return false;
  }
}

#if LLAMA3_X86

// The integer path: x's rows quantized once, then columns split over the pool. False where it does not apply.
template <class W>
bool matmul_int8(ThreadPool& pool, const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t n,
                 float* y) {
  if constexpr (has_int8_dot<W>) {
    if (!takes_int8_path<W>(m, k)) return false;
    thread_local Int8Rows buffer;  // the caller's: the pool's threads read it through `xq`, not their own
    const bool wide = has_avx512();
    if (wide) {
      buffer.resize(m, k);
      if constexpr (std::is_same_v<W, BlockQ4_0x32>) buffer.resize_split();
      Int8Rows& out = buffer;
      pool.run(static_cast<std::size_t>(m), [&](std::size_t i) {
        quantize_row_avx512(x, static_cast<std::int64_t>(i), out);
        if constexpr (std::is_same_v<W, BlockQ4_0x32>) split_row_avx512(out, static_cast<std::int64_t>(i));
      });
    } else {
      buffer.assign(x, m, k);
    }
    const Int8Rows& xq = buffer;
    if constexpr (W::elements == 32 || std::is_same_v<W, BlockQ4_0x32>) {
      if (m > gemv_max_rows) {
        for_column_blocks(pool, m, n, [&](std::int64_t j0, std::int64_t j1) {
          gemm_int8_avx512(xq, w, j0, j1, n, y, n);
        });
        return true;
      }
    }
    for_column_blocks(pool, m, n, [&](std::int64_t j0, std::int64_t j1) {
      gemv_rows(m, j0, j1, [&](auto rows, std::int64_t i, std::int64_t a, std::int64_t b) {
        if (wide) return gemv_int8_avx512<rows.value>(xq, i, w, a, b, n, y + i * n, n);
        if constexpr (!std::is_same_v<W, BlockQ4_0x32>) gemv_int8_avx2<rows.value>(xq, i, w, a, b, y + i * n, n);
      });
    });
    return true;
  } else {
    (void)pool, (void)x, (void)m, (void)k, (void)w, (void)n, (void)y;
    return false;
  }
}

// MatmulPrecision::bf16: x rounded to bf16 once, then columns split over the pool, to the bf16 GEMM (prefill) or
// the bf16 matrix-vector kernel. False where it does not apply.
template <class W>
bool matmul_bf16(ThreadPool& pool, const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t n,
                 float* y) {
  if constexpr (std::is_same_v<W, bf16>) {
    if (!has_avx512_bf16() || k % 2 != 0) return false;
    thread_local std::vector<bf16> xb;
    xb.resize(static_cast<std::size_t>(m * k));
    bf16* xs = xb.data();
    if (m <= gemv_max_rows) {
      round_to_bf16(x, m * k, xs);  // a few rows: not worth waking the pool
      for_column_blocks(pool, m, n, [&](std::int64_t j0, std::int64_t j1) {
        gemv_rows(m, j0, j1, [&](auto rows, std::int64_t i, std::int64_t a, std::int64_t b) {
          gemv_bf16_avx512<rows.value>(xs + i * k, k, w, a, b, y + i * n, n);
        });
      });
      return true;
    }
    pool.run(static_cast<std::size_t>(m), [&](std::size_t i) {
      round_to_bf16(x + static_cast<std::int64_t>(i) * k, k, xs + static_cast<std::int64_t>(i) * k);
    });
    for_column_blocks(pool, m, n, [&](std::int64_t j0, std::int64_t j1) {
      gemm_bf16_avx512(xs, m, k, w, j0, j1, y, n);
    });
    return true;
  } else {
    (void)pool, (void)x, (void)m, (void)k, (void)w, (void)n, (void)y;
    return false;
  }
}

#endif  // LLAMA3_X86

// y (m x n) = x (m x k) W^T, with W n x k in any stored type, on the pool.
template <class W>
void matmul(ThreadPool& pool, const float* x, std::int64_t m, std::int64_t k, const W* w, std::int64_t n, float* y,
            MatmulPrecision precision = MatmulPrecision::f32) {
#if LLAMA3_X86
  if (matmul_int8(pool, x, m, k, w, n, y)) return;
  if (precision == MatmulPrecision::bf16 && matmul_bf16(pool, x, m, k, w, n, y)) return;
#endif
  (void)precision;
  for_column_blocks(pool, m, n, [&](std::int64_t j0, std::int64_t j1) { matmul_columns(x, m, k, w, j0, j1, y, n); });
}

}  // namespace llama3::cpu
