#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "llama3/backends/cpu/attention.hpp"
#include "llama3/backends/cpu/matmul.hpp"
#include "llama3/core/quant.hpp"

using namespace llama3;

namespace {

template <class W>
void check_kernel(unsigned threads) {
  ThreadPool pool(threads);
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const std::int64_t m : {1, 2, 3, 4, 5, 6, 7, 13, 33}) {
    for (const std::int64_t k : {1, 7, 16, 33, 255, 257, 600}) {
      for (const std::int64_t n : {1, 15, 16, 17, 50}) {
        std::vector<float> x(static_cast<std::size_t>(m * k)), y(static_cast<std::size_t>(m * n)), ref(y.size());
        std::vector<W> w(static_cast<std::size_t>(n * k));
        for (auto& v : x) v = dist(rng);
        for (auto& v : w) v = W(dist(rng));
        cpu::matmul(pool, x.data(), m, k, w.data(), n, y.data());
        cpu::matmul_reference(x.data(), m, k, w.data(), n, ref.data());
        for (std::size_t i = 0; i < y.size(); ++i) {
          INFO("m " << m << " k " << k << " n " << n << " threads " << threads << " element " << i);
          REQUIRE(std::fabs(y[i] - ref[i]) <= 1e-4f * std::sqrt(static_cast<float>(k)) * (1 + std::fabs(ref[i])));
        }
      }
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("matmul kernels equal the scalar reference on odd sizes, every SIMD target", "[matmul]", float, bf16,
                   f16) {
  for (const cpu::Isa isa : cpu::available_isas()) {
    const cpu::ScopedIsa kernels(isa);
    INFO(cpu::isa_name(isa) << " kernels");
    for (unsigned threads : {1u, 2u, 3u}) check_kernel<TestType>(threads);
  }
}

// MatmulPrecision::bf16: x rounded to bf16, products summed in f32 (vdpbf16ps), in the GEMM (m > gemv_max_rows) and
// the matrix-vector kernel (decoding). The reference rounds x the same way; the tolerance is far below what the
// rounding itself moves the result, so a kernel that did not round (or rounded differently) fails. W starts at every
// offset in a cache line: the matrix-vector kernel's steps start at W's lines.
TEST_CASE("the bf16 kernels equal the reference on x rounded to bf16", "[matmul]") {
  std::mt19937 rng(8);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const cpu::Isa isa : cpu::available_isas()) {
    const cpu::ScopedIsa kernels(isa);
    const bool rounds = cpu::has_avx512_bf16();
    for (const unsigned threads : {1u, 2u}) {
      ThreadPool pool(threads);
      for (const std::int64_t m : {1, 2, 3, 4, 5, 8, 9, 12, 13, 25, 40}) {
        for (const std::int64_t k : {2, 30, 64, 512, 514, 1030}) {
          for (const std::int64_t n : {1, 31, 32, 33, 70}) {
            const std::int64_t shift = m <= cpu::gemv_max_rows ? (m * 7 + k + n) % 32 : 0;  // bf16 elements
            std::vector<float> x(static_cast<std::size_t>(m * k)), xr(x.size()), y(static_cast<std::size_t>(m * n)),
                ref(y.size()), unrounded(y.size());
            std::vector<bf16> storage(static_cast<std::size_t>(n * k + 64));
            auto* line = reinterpret_cast<bf16*>((reinterpret_cast<std::uintptr_t>(storage.data()) + 63) / 64 * 64);
            const std::span<bf16> w(line + shift, static_cast<std::size_t>(n * k));
            for (auto& v : x) v = dist(rng);
            for (auto& v : w) v = bf16(dist(rng));
            for (std::size_t i = 0; i < x.size(); ++i) xr[i] = static_cast<float>(bf16(x[i]));
            cpu::matmul(pool, x.data(), m, k, w.data(), n, y.data(), MatmulPrecision::bf16);
            cpu::matmul_reference(rounds ? xr.data() : x.data(), m, k, w.data(), n, ref.data());
            cpu::matmul_reference(rounds ? x.data() : xr.data(), m, k, w.data(), n, unrounded.data());
            double moved = 0;  // how far the rounding moves the result: the tolerance must be well below it
            for (std::size_t i = 0; i < y.size(); ++i) {
              INFO(cpu::isa_name(isa) << " m " << m << " k " << k << " n " << n << " W at +" << shift << " element " << i);
              REQUIRE(std::fabs(y[i] - ref[i]) <= 2e-6f * std::sqrt(static_cast<float>(k)) * (1 + std::fabs(ref[i])));
              moved = std::max(moved, std::fabs(double(ref[i]) - unrounded[i]));
            }
            if (k >= 64 && m * n >= 8) CHECK(moved > 1e-3);  // (one output can land near its unrounded value)
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("the portable kernel equals the reference too", "[matmul]", float, bf16, f16) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const std::int64_t m = 3, k = 37, n = 11;
  std::vector<float> x(m * k), y(m * n), ref(m * n);
  std::vector<TestType> w(n * k);
  for (auto& v : x) v = dist(rng);
  for (auto& v : w) v = TestType(dist(rng));
  cpu::gemv_portable(x.data(), m, k, w.data(), 0, n, y.data(), n);
  cpu::matmul_reference(x.data(), m, k, w.data(), n, ref.data());
  for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(std::fabs(y[i] - ref[i]) < 1e-4f * (1 + std::fabs(ref[i])));
}

// Prompt lookup verifies draft tokens in one pass and must give each token the logits it gets when decoded alone.
TEMPLATE_TEST_CASE("up to gemv_max_rows rows, each row's result is bit-identical to that row alone", "[matmul][lookup]",
                   float, bf16, f16, BlockQ8_0, BlockQ4_0, BlockQ4_K, BlockQ6_K, BlockQ4_0x32) {
  for (const cpu::Isa isa : cpu::available_isas()) {
  const cpu::ScopedIsa kernels(isa);
  INFO(cpu::isa_name(isa) << " kernels");
  ThreadPool pool(2);
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const std::int64_t k = std::is_same_v<TestType, BlockQ4_0x32> ? 2048 : 512, n = 37;
  std::vector<float> wf(static_cast<std::size_t>(n * k));
  for (auto& v : wf) v = dist(rng);
  std::vector<TestType> w;
  if constexpr (is_quantized<TestType>) {
    if constexpr (std::is_same_v<TestType, BlockQ8_0> || std::is_same_v<TestType, BlockQ4_0>) {
      w.resize(static_cast<std::size_t>(n * k / TestType::elements));
      quantize_row(wf.data(), static_cast<std::int64_t>(wf.size()), w.data());
    } else if constexpr (std::is_same_v<TestType, BlockQ4_0x32>) {
      std::vector<BlockQ4_0> q4(static_cast<std::size_t>(n * k / 32));
      quantize_row(wf.data(), static_cast<std::int64_t>(wf.size()), q4.data());
      for (std::size_t i = 0; i < q4.size() / 32; ++i) w.push_back(pack_q4_0x32(q4.data() + 32 * i));
    } else {  // random blocks: every bit pattern is a valid K-quant block (the scale a small f16)
      w.resize(static_cast<std::size_t>(n * k / TestType::elements));
      auto* bytes = reinterpret_cast<unsigned char*>(w.data());
      for (std::size_t i = 0; i < w.size() * sizeof(TestType); ++i) bytes[i] = static_cast<unsigned char>(rng());
      for (auto& b : w) {
        b.d = f16(0.01f);
        if constexpr (std::is_same_v<TestType, BlockQ4_K>) b.dmin = f16(0.01f);
      }
    }
  } else {
    for (float v : wf) w.push_back(TestType(v));
  }
  const std::int64_t max_m = cpu::gemv_max_rows;
  std::vector<float> x(static_cast<std::size_t>(max_m * k));
  for (auto& v : x) v = dist(rng);
  for (const MatmulPrecision precision : {MatmulPrecision::f32, MatmulPrecision::bf16}) {
    for (std::int64_t m = 1; m <= max_m; ++m) {
      std::vector<float> y(static_cast<std::size_t>(m * n)), alone(static_cast<std::size_t>(n));
      cpu::matmul(pool, x.data(), m, k, w.data(), n, y.data(), precision);
      for (std::int64_t i = 0; i < m; ++i) {
        cpu::matmul(pool, x.data() + i * k, 1, k, w.data(), n, alone.data(), precision);
        INFO(matmul_precision_name(precision) << " precision, m " << m << " row " << i);
        REQUIRE(std::memcmp(alone.data(), y.data() + i * n, alone.size() * sizeof(float)) == 0);
      }
    }
  }
  }
}

TEST_CASE("the thread pool runs every task once and passes exceptions on", "[threads]") {
  for (unsigned threads : {1u, 2u, 4u}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<std::atomic<int>> hits(37);
      pool.run(hits.size(), [&](std::size_t i) { hits[i]++; });
      for (auto& h : hits) REQUIRE(h.load() == 1);
    }
    CHECK_THROWS_WITH(pool.run(10, [](std::size_t i) {
      if (i == 7) throw std::runtime_error("task 7");
    }), "task 7");
    std::atomic<int> after{0};
    pool.run(5, [&](std::size_t) { after++; });
    CHECK(after == 5);
  }
}

// The kernels write the columns they are given; the split must give each column to exactly one call, in pieces that
// start at a packed panel (a multiple of 32), both for the GEMM's equal blocks and the matrix-vector kernels' guided
// takes, whatever the thread count.
TEST_CASE("the pool's column split covers every column once, in pieces starting at a panel", "[threads]") {
  for (unsigned threads : {1u, 2u, 3u, 5u}) {
    ThreadPool pool(threads);
    for (const std::int64_t m : {std::int64_t{1}, cpu::gemv_max_rows, cpu::gemv_max_rows + 1}) {
      for (const std::int64_t n : {1, 31, 32, 33, 500, 2048, 4097, 128256}) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        std::atomic<bool> aligned{true};
        cpu::for_column_blocks(pool, m, n, [&](std::int64_t j0, std::int64_t j1) {
          if (j0 % 32 != 0 || j1 <= j0 || j1 > n) aligned = false;
          for (std::int64_t j = j0; j < j1; ++j) hits[static_cast<std::size_t>(j)]++;
        });
        INFO("threads " << threads << " m " << m << " n " << n);
        REQUIRE(aligned.load());
        for (const auto& h : hits) REQUIRE(h.load() == 1);
      }
    }
  }
}

TEMPLATE_TEST_CASE("the attention kernels equal the scalar reference, f32 and bf16 caches, every SIMD target",
                   "[attention]", float, bf16) {
  for (const cpu::Isa isa : cpu::available_isas()) {
  const cpu::ScopedIsa kernels(isa);
  std::mt19937 rng(21);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const int head_dim : {8, 24, 64, 128}) {
    for (const int n_rep : {1, 3, 4, 8}) {
      for (const int n_ctx : {1, 7, 8, 33, 600}) {
        const int n_kv = 2, kv_dim = n_kv * head_dim;
        std::vector<TestType> keys(static_cast<std::size_t>(n_ctx) * kv_dim), values(keys.size());
        for (auto& x : keys) x = TestType(2.0f * dist(rng));
        for (auto& x : values) x = TestType(dist(rng));
        std::vector<float> q(static_cast<std::size_t>(n_rep) * head_dim), scores(static_cast<std::size_t>(n_rep) * n_ctx);
        for (auto& x : q) x = dist(rng);
        std::vector<float> out(q.size()), ref(q.size());
        const ops::KvView<TestType> k{keys.data(), kv_dim}, v{values.data(), kv_dim};
        cpu::attend_group(q.data(), k, v, 1, n_rep, head_dim, n_ctx, scores.data(), out.data());
        ops::attend(q.data(), k, v, 1, n_rep, head_dim, n_ctx, scores.data(), ref.data());
        for (std::size_t i = 0; i < out.size(); ++i) {
          INFO(cpu::isa_name(isa) << " head_dim " << head_dim << " n_rep " << n_rep << " n_ctx " << n_ctx << " element " << i);
          REQUIRE(std::fabs(out[i] - ref[i]) < 1e-5f * (1 + std::fabs(ref[i])) * std::sqrt(static_cast<float>(head_dim)));
        }
      }
    }
  }
  }
}
