#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "llama3/backends/cpu/matmul.hpp"

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

TEMPLATE_TEST_CASE("matmul kernels equal the scalar reference on odd sizes", "[matmul]", float, bf16, f16) {
  INFO("AVX2 kernels: " << cpu::has_avx2());
  for (unsigned threads : {1u, 2u, 3u}) check_kernel<TestType>(threads);
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
