// Quantized weights: GGUF's block layouts with ggml's arithmetic, the kernels against the scalar reference on odd
// sizes, and a model quantized at load time against f32 maths on the dequantized weights.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "llama3/backends/cpu/matmul.hpp"
#include "llama3/core/quant.hpp"
#include "llama3/io/checkpoint.hpp"
#include "llama3/model/pack.hpp"
#include "llama3/model/quantize.hpp"
#include "llama3/model/synthetic.hpp"
#include "llama3/model/transformer.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/gguf_model.hpp"
#include "support/model_fixtures.hpp"
#include "support/small_model.hpp"

using namespace llama3;

namespace {

// Random blocks: any bit pattern is a valid block, with a finite scale.
template <class Q>
std::vector<Q> random_blocks(std::size_t n, std::mt19937& rng) {
  std::vector<Q> out(n);
  if constexpr (std::is_same_v<Q, BlockQ4_0x32>) {  // random Q4_0 blocks, regrouped
    const std::vector<BlockQ4_0> q4 = random_blocks<BlockQ4_0>(32 * n, rng);
    for (std::size_t i = 0; i < n; ++i) out[i] = pack_q4_0x32(q4.data() + 32 * i);
    return out;
  } else {
    std::uniform_int_distribution<int> byte(0, 255);
    std::normal_distribution<float> scale(0.0f, 0.05f);
    for (auto& b : out) {
      auto* p = reinterpret_cast<unsigned char*>(&b);
      for (std::size_t i = 0; i < sizeof(Q); ++i) p[i] = static_cast<unsigned char>(byte(rng));
      if constexpr (std::is_same_v<Q, BlockQ6_K>) {
        b.d = f16(scale(rng) * 0.02f);
      } else if constexpr (std::is_same_v<Q, BlockQ4_K>) {
        b.d = f16(scale(rng) * 0.1f);
        b.dmin = f16(scale(rng) * 0.1f);
      } else {
        b.d = f16(scale(rng));
      }
    }
    return out;
  }
}

}  // namespace

TEST_CASE("Q8_0 and Q4_0 quantize with ggml's reference arithmetic", "[quant]") {
  float x[32];
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i - 16);  // amax 16 at x[0]
  const BlockQ8_0 q8 = quantize_q8_0(x);
  CHECK(static_cast<float>(q8.d) == static_cast<float>(f16(16.0f / 127.0f)));
  CHECK(q8.qs[0] == -127);
  CHECK(q8.qs[17] == 8);    // 1 * 127/16 = 7.94 -> 8
  CHECK(q8.qs[24] == 64);   // 8 * 127/16 = 63.5 -> 64: half away from zero
  CHECK(q8.qs[8] == -64);   // -63.5 -> -64
  CHECK(q8.qs[16] == 0);

  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i - 16) / 4;  // the largest magnitude is -4 (x[0])
  const BlockQ4_0 q4 = quantize_q4_0(x);
  CHECK(static_cast<float>(q4.d) == 0.5f);                             // max / -8
  CHECK((q4.qs[0] & 0xF) == 0);                                       // -4 * 2 + 8.5 -> 0
  CHECK((q4.qs[15] >> 4) == 15);                                      // x[31] = 3.75 -> 16, clamped to 15
  float y[32];
  dequantize(q4, y);
  CHECK(y[0] == -4.0f);
  CHECK(y[31] == 3.5f);
  CHECK(y[16] == 0.0f);

  // Round trip: each value within half a step (Q4_0: a step where the top value was clamped).
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int rep = 0; rep < 200; ++rep) {
    for (auto& v : x) v = dist(rng);
    const BlockQ8_0 b8 = quantize_q8_0(x);
    dequantize(b8, y);
    for (int i = 0; i < 32; ++i) REQUIRE(std::fabs(y[i] - x[i]) <= static_cast<float>(b8.d) * 0.5f * 1.01f + 1e-3f);
    const BlockQ4_0 b4 = quantize_q4_0(x);
    dequantize(b4, y);
    for (int i = 0; i < 32; ++i) REQUIRE(std::fabs(y[i] - x[i]) <= std::fabs(static_cast<float>(b4.d)) * 1.01f + 1e-3f);
  }
  // All zeros stay zeros.
  for (auto& v : x) v = 0;
  dequantize(quantize_q4_0(x), y);
  for (const float v : y) CHECK(v == 0.0f);
}

TEST_CASE("Q4_K and Q6_K dequantize GGUF's bit layout", "[quant]") {
  // Write blocks from known scales and quants with an encoder written from the format description, then read
  // them back.
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> u6(0, 63), u4(0, 15), s8(-128, 127), q6(0, 63);
  BlockQ4_K k4{};
  int sc[8], mn[8], q[256];
  for (int j = 0; j < 8; ++j) {
    sc[j] = u6(rng);
    mn[j] = u6(rng);
  }
  for (int& v : q) v = u4(rng);
  k4.d = f16(0.25f);
  k4.dmin = f16(0.125f);
  for (int j = 0; j < 4; ++j) {
    k4.scales[j] = static_cast<std::uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    k4.scales[j + 4] = static_cast<std::uint8_t>((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
    k4.scales[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
  // Sub-blocks of 32: pairs (2c, 2c+1) share qs[32c .. 32c+32), low nibbles first.
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, byte = (sub / 2) * 32 + e % 32;
    k4.qs[byte] = static_cast<std::uint8_t>(sub % 2 ? (k4.qs[byte] & 0x0F) | (q[e] << 4) : (k4.qs[byte] & 0xF0) | q[e]);
  }
  float y[256];
  dequantize(k4, y);
  for (int e = 0; e < 256; ++e) {
    INFO("Q4_K element " << e);
    REQUIRE(y[e] == 0.25f * static_cast<float>(sc[e / 32]) * static_cast<float>(q[e]) - 0.125f * static_cast<float>(mn[e / 32]));
  }

  BlockQ6_K k6{};
  int scales[16];
  for (int& v : scales) v = s8(rng);
  for (int& v : q) v = q6(rng);
  k6.d = f16(0.5f);
  for (int j = 0; j < 16; ++j) k6.scales[j] = static_cast<std::int8_t>(scales[j]);
  // Halves of 128; within one, element 32 * g + l (g = 0..3) keeps its low 4 bits in ql[l + 32 * (g % 2)] (low
  // nibble for g < 2) and its high 2 bits in qh[l] at bit 2g.
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, g = (e % 128) / 32, l = e % 32;
    std::uint8_t& lo = k6.ql[half * 64 + l + 32 * (g % 2)];
    lo = static_cast<std::uint8_t>(g < 2 ? (lo & 0xF0) | (q[e] & 0xF) : (lo & 0x0F) | ((q[e] & 0xF) << 4));
    k6.qh[half * 32 + l] = static_cast<std::uint8_t>(k6.qh[half * 32 + l] | ((q[e] >> 4) << (2 * g)));
  }
  dequantize(k6, y);
  for (int e = 0; e < 256; ++e) {
    INFO("Q6_K element " << e);
    REQUIRE(y[e] == 0.5f * static_cast<float>(scales[e / 16]) * static_cast<float>(q[e] - 32));
  }
}

TEMPLATE_TEST_CASE("quantized matmul kernels equal the scalar reference on odd sizes", "[quant][matmul]", BlockQ8_0,
                   BlockQ4_0, BlockQ4_K, BlockQ6_K, BlockQ4_0x32) {
  using Q = TestType;
  for (const cpu::Isa isa : cpu::available_isas()) {
  const cpu::ScopedIsa kernels(isa);
  INFO(cpu::isa_name(isa) << " kernels");
  std::mt19937 rng(4);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const unsigned threads : {1u, 2u, 3u}) {
    ThreadPool pool(threads);
    for (const std::int64_t m : {1, 2, 3, 4, 5, 7, 13}) {
      for (const std::int64_t k : {std::int64_t{Q::elements}, std::int64_t{Q::elements} * 3}) {
        for (const std::int64_t n : {1, 15, 17, 40}) {
          INFO("m " << m << " k " << k << " n " << n << " threads " << threads);
          std::vector<float> x(static_cast<std::size_t>(m * k)), y(static_cast<std::size_t>(m * n)), ref(y.size());
          for (auto& v : x) v = dist(rng);
          const auto w = random_blocks<Q>(static_cast<std::size_t>(n * k / Q::elements), rng);
          cpu::matmul(pool, x.data(), m, k, w.data(), n, y.data());
          cpu::matmul_reference(x.data(), m, k, w.data(), n, ref.data());
          double scale = 0;
          for (const float v : ref) scale = std::max(scale, std::fabs(double(v)));
          if (cpu::takes_int8_path<Q>(m, k)) {
            // Decode rows take the integer path: exact against its own reference (x rounded to int8 blocks)...
            std::vector<float> ref8(y.size());
            cpu::matmul_reference_int8(x.data(), m, k, w.data(), n, ref8.data());
            for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(std::fabs(y[i] - ref8[i]) <= 1e-5 * (1 + scale));
            // ...and within x's rounding of f32 maths: |error| <= sum over x's blocks of d/2 * sum |w| (each x
            // element moves by at most half its block's step).
            std::vector<float> row(static_cast<std::size_t>(k));
            for (std::int64_t j = 0; j < n; ++j) {
              dequantize_row(w.data() + j * (k / Q::elements), k, row.data());
              for (std::int64_t i = 0; i < m; ++i) {
                double bound = 1e-5 * (1 + scale);
                for (std::int64_t b = 0; b < k / 32; ++b) {
                  float amax = 0, wsum = 0;
                  for (int e = 0; e < 32; ++e) {
                    amax = std::max(amax, std::fabs(x[static_cast<std::size_t>(i * k + b * 32 + e)]));
                    wsum += std::fabs(row[static_cast<std::size_t>(b * 32 + e)]);
                  }
                  bound += amax / 127 / 2 * wsum * 1.0001;
                }
                REQUIRE(std::fabs(y[static_cast<std::size_t>(i * n + j)] - ref[static_cast<std::size_t>(i * n + j)]) <= bound);
              }
            }
          } else {
            for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(std::fabs(y[i] - ref[i]) <= 1e-5 * (1 + scale));
          }
          cpu::gemv_quant_portable(x.data(), m, k, w.data(), 0, n, y.data(), n);
          for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(std::fabs(y[i] - ref[i]) <= 1e-5 * (1 + scale));
        }
      }
    }
  }
  }
}

TEST_CASE("a model quantized at load time computes f32 maths on its dequantized weights, up to the int8 activations", "[quant][model]") {
  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  for (const DType to : {DType::q8_0, DType::q4_0}) {
    INFO(dtype_name(to));
    LoadOptions options{.max_seq_len = f.max_seq_len};
    options.quantize = to;
    std::vector<std::string> stages;
    options.progress = [&](const LoadProgress& p) {
      if (stages.empty() || stages.back() != p.stage) stages.emplace_back(p.stage);
    };
    Checkpoint quantized = load_checkpoint(f.dir / "meta", options);
    CHECK(stages.back() == "quantizing");
    CHECK(dtype(quantized.weights.layers[0].wq) == to);
    CHECK(dtype(quantized.weights.tok_embeddings) == to);
    CHECK(dtype(quantized.weights.layers[0].attention_norm) == DType::f32);

    // The same weights dequantized to float: the reference for the quantized kernels.
    Checkpoint dequantized = quantized;
    for_each_weight(dequantized.weights, dequantized.params, [](const WeightSlot&, AnyTensor<Cpu>& t) {
      if (dtype_block_elements(dtype(t)) == 1) return;  // the norms stayed float
      std::visit([&](const auto& x) {
        Tensor<float> full(x.shape());
        for (std::int64_t r = 0; r < x.dim(0); ++r) dequantize_row(x.row(r), x.dim(1), full.row(r));
        t = Tensor<const float>(full);
      }, t);
    });
    CHECK(dtype(dequantized.weights.layers[0].wq) == DType::f32);
    Transformer<> q(std::move(quantized), 2), d(std::move(dequantized), 2);
    double vs_dequantized = 0, vs_exact = 0;
    for (std::size_t k = 0; k < f.prompts.size(); ++k) {
      const Tensor<float> lq = q.forward(f.prompts[k], 0, Logits::last);
      const Tensor<float> ld = d.forward(f.prompts[k], 0, Logits::last);
      for (std::int64_t i = 0; i < lq.numel(); ++i) {
        REQUIRE(std::isfinite(lq.data()[i]));
        REQUIRE(std::isfinite(ld.data()[i]));
        vs_dequantized = std::max(vs_dequantized, std::fabs(double(lq.data()[i]) - ld.data()[i]));
      }
      vs_exact = std::max(vs_exact, test::max_abs_diff(lq.data(), f.last_logits[k]));
    }
    WARN(dtype_name(to) << ": max |logit - f32 on dequantized weights| = " << vs_dequantized
                        << ", max |logit - the fixture's exact logits| = " << vs_exact);
    // The integer kernels round the activations to 8 bits a 32-block as llama.cpp does: about 1% of the logits'
    // range here.
    CHECK(vs_dequantized < 0.1);
    CHECK(vs_dequantized < vs_exact);  // well below the quantization of the weights itself
    CHECK(vs_exact < (to == DType::q8_0 ? 0.2 : 3.0));  // the quantization error itself (logits here are ~ +-4)
    CHECK(vs_exact > 1e-4);                                // it did quantize
  }
  LoadOptions bad;
  bad.quantize = DType::q4_k;
  CHECK_THROWS_WITH(load_checkpoint(f.dir / "meta", bad), Catch::Contains("Q8_0 and Q4_0"));
}

TEST_CASE("Q4_0x32 holds Q4_0's blocks exactly, regrouped", "[quant]") {
  std::mt19937 rng(12);
  const std::vector<BlockQ4_0> q4 = random_blocks<BlockQ4_0>(64, rng);
  const BlockQ4_0x32 packed[2] = {pack_q4_0x32(q4.data()), pack_q4_0x32(q4.data() + 32)};
  std::vector<float> want(2048), got(2048);
  dequantize_row(q4.data(), 2048, want.data());
  dequantize_row(packed, 2048, got.data());
  REQUIRE(got == want);
  for (int s = 0; s < 64; ++s) {
    const BlockQ4_0 back = q4_0_block(packed[s / 32], s % 32);
    REQUIRE(std::memcmp(&back, &q4[static_cast<std::size_t>(s)], sizeof back) == 0);
  }
  // The documented layout: Q4_0's nibble arrays in block order, then the scales.
  for (int s = 0; s < 32; ++s) {
    REQUIRE(std::memcmp(packed[1].qs[s], q4[static_cast<std::size_t>(32 + s)].qs, 16) == 0);
    REQUIRE(std::memcmp(&packed[1].d[s], &q4[static_cast<std::size_t>(32 + s)].d, 2) == 0);
  }
  // Spans of 32-weight blocks, as the prefill kernels dequantize them.
  for (const auto& [begin, count] : {std::pair{0, 256}, std::pair{992, 64}, std::pair{1024, 1024}, std::pair{1792, 256}}) {
    std::vector<float> span(static_cast<std::size_t>(count));
    dequantize_span(packed, begin, count, span.data());
    for (int i = 0; i < count; ++i) REQUIRE(span[static_cast<std::size_t>(i)] == want[static_cast<std::size_t>(begin + i)]);
  }
}

TEST_CASE("Q4_0 matrices regrouped at load give the logits of Q4_0 as stored", "[quant][model][gguf]") {
  ModelParams p = test::small_llama3_params(64);
  p.dim = 1024;  // rows of 1024 and 2048: regrouped; the embedding table too (tied, 700 rows)
  p.n_heads = 8;
  p.n_kv_heads = 2;
  p.hidden_dim = 2048;
  p.n_layers = 1;
  p.vocab_size = 700;
  Checkpoint c = synthetic_checkpoint<bf16>(p, 3, 2);
  const std::filesystem::path file = test::temp_dir("q4_0x32") / "model.gguf";
  std::ofstream(file, std::ios::binary) << test::gguf_model(c, true, nullptr, DType::q4_0);

  LoadOptions as_stored{.max_seq_len = 64};
  as_stored.pack = false;
  Transformer<> stored = Transformer<>::load(file, as_stored, 2);
  REQUIRE(dtype(stored.weights().layers[0].wq) == DType::q4_0);
  std::vector<TokenId> prompt;
  for (int i = 0; i < 20; ++i) prompt.push_back((i * 37 + 5) % 700);
  const std::vector<TokenId> next{17, 3, 699};
  const Tensor<float> prefill = stored.forward(prompt, 0, Logits::all);  // the int8 GEMM
  const Tensor<float> one = stored.forward(std::span(next).first(1), 20);  // decode
  const Tensor<float> three = stored.forward(next, 20);                    // a verify pass
  const DType expected = packs_q4_0() ? DType::q4_0x32 : DType::q4_0;
  for (const bool mmap : {true, false}) {
    INFO("mmap " << mmap);
    LoadOptions options{.max_seq_len = 64};
    options.mmap = mmap;
    Transformer<> packed = Transformer<>::load(file, options, 2);
    const auto& w = packed.weights();
    CHECK(dtype(w.layers[0].wq) == expected);
    CHECK(dtype(w.layers[0].w2) == expected);
    CHECK(dtype(w.tok_embeddings) == expected);
    CHECK(dtype(w.output) == expected);
    CHECK(dtype(w.norm) == DType::f32);
    const auto close = [](const Tensor<float>& a, const Tensor<float>& b) {
      REQUIRE(a.numel() == b.numel());
      double scale = 0, diff = 0;
      for (std::int64_t i = 0; i < a.numel(); ++i) {
        scale = std::max(scale, std::fabs(double(b.data()[i])));
        diff = std::max(diff, std::fabs(double(a.data()[i]) - b.data()[i]));
      }
      CHECK(scale > 0.1);
      return diff <= 1e-5 * (1 + scale);  // the same int32 sums, added in another order
    };
    CHECK(close(packed.forward(prompt, 0, Logits::all), prefill));
    const Tensor<float> packed_one = packed.forward(std::span(next).first(1), 20);
    CHECK(close(packed_one, one));
    const Tensor<float> packed_three = packed.forward(next, 20);
    CHECK(close(packed_three, three));
    // Prompt lookup: a token's logits in a verify pass are those it gets alone, bit for bit.
    REQUIRE(std::memcmp(packed_three.data(), packed_one.data(), packed_one.bytes()) == 0);
  }
}

TEST_CASE("x's rows split for Q4_0x32 equal the scalar reference", "[quant][matmul]") {
  std::mt19937 rng(13);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const std::int64_t m = 3, k = 2048;
  std::vector<float> x(static_cast<std::size_t>(m * k));
  for (auto& v : x) v = dist(rng);
  cpu::Int8Rows ref;
  ref.assign(x.data(), m, k);
  ref.split();
  // Block 4g + j's values 0..15 at 128 g + 16 j, 16..31 at 128 g + 64 + 16 j.
  for (std::int64_t b = 0; b < k / 32; ++b) {
    for (int t = 0; t < 32; ++t) {
      const std::int64_t at = b / 4 * 128 + (t < 16 ? 0 : 64) + 16 * (b % 4) + t % 16;
      REQUIRE(ref.split_q_at(1, at)[0] == ref.q(1, b)[t]);
    }
    REQUIRE(ref.split_d_at(1, b / 4 * 128)[4 * (b % 4) + 3] == ref.scale(1, b));
  }
#if LLAMA3_X86
  if (cpu::has_avx512()) {
    cpu::Int8Rows fast;
    cpu::quantize_rows_avx512(x.data(), m, k, fast);
    fast.resize_split();
    for (std::int64_t i = 0; i < m; ++i) cpu::split_row_avx512(fast, i);
    CHECK(fast.split_q == ref.split_q);
    CHECK(fast.split_neg8 == ref.split_neg8);
    CHECK(fast.split_d == ref.split_d);
  }
#endif
}
