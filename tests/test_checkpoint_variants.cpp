// What the README claims the loaders read, each checked: f16 checkpoints in both formats, Hugging Face folders
// sharded with model.safetensors.index.json, Meta's default RoPE scale factor, K-quant blocks as llama.cpp's own
// quantizer writes them, and a GGUF model of Q4_K and Q6_K matrices (the mix of a Q4_K_M file) end to end.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "llama3/backends/cpu/matmul.hpp"
#include "llama3/io/checkpoint.hpp"
#include "llama3/model/synthetic.hpp"
#include "llama3/model/transformer.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/gguf_writer.hpp"
#include "support/model_fixtures.hpp"

using namespace llama3;
namespace fs = std::filesystem;

namespace {

double max_diff(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.numel() == b.numel());
  double d = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(double(a.data()[i]) - b.data()[i]));
  return d;
}

// Every matrix of `map` rounded to f16 (as `f16`), and the same values widened back to f32 (as `f32`).
void round_to_f16(const io::TensorMap& map, std::vector<test::NamedTensor>& f16s, std::vector<test::NamedTensor>& f32s) {
  for (const auto& [name, t] : map) {
    std::vector<float> x(static_cast<std::size_t>(t.shape.numel()));
    std::visit([&](const auto& v) { dequantize_row(v.data(), v.numel(), x.data()); }, io::any_view(t));
    std::string half(x.size() * 2, '\0'), full(x.size() * 4, '\0');
    for (std::size_t i = 0; i < x.size(); ++i) {
      const f16 h(x[i]);
      const float back = to_float(h);
      std::memcpy(half.data() + 2 * i, &h, 2);
      std::memcpy(full.data() + 4 * i, &back, 4);
    }
    f16s.push_back({name, DType::f16, t.shape, half});
    f32s.push_back({name, DType::f32, t.shape, full});
  }
}

}  // namespace

TEST_CASE("f16 checkpoints, Meta's and Hugging Face's, give the logits of the same values in f32", "[io][f16]") {
  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  for (const char* format : {"meta", "hf"}) {
    INFO(format);
    const bool meta = std::string(format) == "meta";
    const io::TensorMap map = meta ? io::read_torch_checkpoint_file(f.dir / "meta" / "consolidated.00.pth")
                                   : io::read_safetensors_file(f.dir / "hf" / "model.safetensors");
    std::vector<test::NamedTensor> halves, fulls;
    round_to_f16(map, halves, fulls);
    const fs::path h = test::temp_dir(std::string("f16-") + format), w = test::temp_dir(std::string("f16-f32-") + format);
    const char* config = meta ? "params.json" : "config.json";
    for (const fs::path& d : {h, w}) fs::copy_file(f.dir / format / config, d / config);
    if (meta) {
      test::write_file(h / "consolidated.00.pth", test::torch_pth_bytes(halves));
      test::write_file(w / "consolidated.00.pth", test::torch_pth_bytes(fulls));
    } else {
      test::write_file(h / "model.safetensors", test::safetensors_bytes(halves));
      test::write_file(w / "model.safetensors", test::safetensors_bytes(fulls));
    }
    Transformer<> a = Transformer<>::load(h, {.max_seq_len = f.max_seq_len}, 2);
    Transformer<> b = Transformer<>::load(w, {.max_seq_len = f.max_seq_len}, 2);
    CHECK(dtype(a.weights().layers[0].wq) == DType::f16);  // used as stored, widened in the kernels
    for (const auto& prompt : f.prompts) {
      const double d = max_diff(a.forward(prompt, 0, Logits::all), b.forward(prompt, 0, Logits::all));
      CHECK(d < 1e-5);
    }
    // And f16's rounding is a real change from the fixture's float weights.
    CHECK(test::max_abs_diff(a.forward(f.prompts[0], 0, Logits::last).data(), f.last_logits[0]) > f.atol);
  }
}

TEST_CASE("a Hugging Face folder sharded with model.safetensors.index.json loads as the single file does", "[io][hf]") {
  const test::ModelFixture f = test::load_model_fixture("tiny-scaled-rope-tied");
  const io::TensorMap map = io::read_safetensors_file(f.dir / "hf" / "model.safetensors");
  std::vector<test::NamedTensor> shard[3];
  std::string index = R"({"metadata": {"total_size": 0}, "weight_map": {)";
  int i = 0;
  for (const auto& [name, t] : map) {
    const int s = i++ % 3;  // the layers' tensors spread over the shards, as transformers does by size
    shard[s].push_back({name, t.dtype, t.shape, std::string(reinterpret_cast<const char*>(t.data), t.bytes())});
    index += std::string(i > 1 ? ", " : "") + "\"" + name + "\": \"model-0000" + std::to_string(s + 1) + "-of-00003.safetensors\"";
  }
  index += "}}";
  const fs::path d = test::temp_dir("hf-sharded");
  fs::copy_file(f.dir / "hf" / "config.json", d / "config.json");
  for (int s = 0; s < 3; ++s) {
    test::write_file(d / ("model-0000" + std::to_string(s + 1) + "-of-00003.safetensors"), test::safetensors_bytes(shard[s]));
  }
  test::write_file(d / "model.safetensors.index.json", index);
  Transformer<> sharded = Transformer<>::load(d, {.max_seq_len = f.max_seq_len}, 2);
  Transformer<> single = Transformer<>::load(f.dir / "hf", {.max_seq_len = f.max_seq_len}, 2);
  const Tensor<float> a = sharded.forward(f.prompts[2], 0), b = single.forward(f.prompts[2], 0);
  for (std::int64_t k = 0; k < a.numel(); ++k) REQUIRE(a.data()[k] == b.data()[k]);
  // A shard the index names but the folder lacks, and a tensor in two shards, are Errors naming them.
  fs::remove(d / "model-00002-of-00003.safetensors");
  CHECK_THROWS_WITH(load_checkpoint(d), Catch::Contains("model-00002-of-00003.safetensors"));
  test::write_file(d / "model-00002-of-00003.safetensors", test::safetensors_bytes(shard[0]));
  CHECK_THROWS_WITH(load_checkpoint(d), Catch::Contains("also in another shard"));
}

TEST_CASE("params.json without rope_scaling_factor scales RoPE by Meta's hard-coded 8", "[io][rope]") {
  const ModelParams p = io::read_meta_params(
      R"({"dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "vocab_size": 512, "use_scaled_rope": true})",
      "params.json");
  CHECK(p.use_scaled_rope);
  CHECK(p.rope_scaling.factor == 8.0);
  CHECK(p.rope_theta == 500000.0);
  // Meta's apply_scaling with factor 8, low 1, high 4, original context 8192, written out here on its own.
  const auto freqs = ops::rope_inv_freq(16, p.rope_theta, true, p.rope_scaling);
  for (int i = 0; i < 8; ++i) {
    double freq = 1.0 / std::pow(500000.0, 2.0 * i / 16);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen > 8192.0) {
      freq = freq / 8;
    } else if (wavelen >= 8192.0 / 4) {
      const double smooth = (8192.0 / wavelen - 1) / (4 - 1);
      freq = (1 - smooth) * freq / 8 + smooth * freq;
    }
    CHECK(freqs[static_cast<std::size_t>(i)] == Approx(freq).epsilon(1e-12));
  }
  const ModelParams unscaled = io::read_meta_params(R"({"dim": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 512})",
                                                    "params.json");
  CHECK_FALSE(unscaled.use_scaled_rope);
}

TEST_CASE("Q4_K and Q6_K blocks written by llama.cpp's quantizer dequantize and multiply as ggml's", "[quant][ggml]") {
  // tests/data/ggml_k_quants.bin was made outside this repository with ggml (github.com/ggml-org/ggml at
  // d99724f2): 2 rows of 512 floats (four super-blocks: plain, a run of zeros, a range of 40x, one of 0.01x)
  // quantized by ggml_quantize_chunk(GGML_TYPE_Q4_K / GGML_TYPE_Q6_K, no importance matrix), which is
  // quantize_row_q4_K_ref / quantize_row_q6_K_ref as llama-quantize runs them, and dequantized by the type
  // traits' to_float. Layout: "KQNT", u32 n, u32 rows, n floats; then per type u32 ggml type, u32 bytes, the
  // blocks, n floats.
  const MappedFile file(test::data_path("ggml_k_quants.bin"));
  const std::string_view b = file.bytes();
  std::size_t at = 0;
  const auto u32 = [&] {
    std::uint32_t v;
    REQUIRE(at + 4 <= b.size());
    std::memcpy(&v, b.data() + at, 4);
    at += 4;
    return v;
  };
  REQUIRE(u32() == 0x544e514bu);
  const std::uint32_t n = u32(), rows = u32();
  REQUIRE(n == 1024);
  std::vector<float> x(n);
  std::memcpy(x.data(), b.data() + at, 4 * n);
  at += 4 * n;
  ThreadPool pool(2);
  for (int t = 0; t < 2; ++t) {
    const std::uint32_t type = u32(), bytes = u32();
    REQUIRE(io::ggml_dtype(type) == (t == 0 ? DType::q4_k : DType::q6_k));
    const char* blocks = b.data() + at;
    at += bytes;
    std::vector<float> ggml(n);
    std::memcpy(ggml.data(), b.data() + at, 4 * n);
    at += 4 * n;
    std::vector<float> ours(n);
    const auto check = [&](const auto* q) {
      using Q = std::remove_cvref_t<decltype(*q)>;
      REQUIRE(bytes == n / Q::elements * sizeof(Q));
      dequantize_row(q, n, ours.data());
      for (std::uint32_t i = 0; i < n; ++i) REQUIRE(ours[i] == ggml[i]);  // bit for bit
      for (std::uint32_t s = 0; s < n; s += 256) {  // a quantization of x, not noise: within each super-block's range
        double err = 0, range = 0;
        for (std::uint32_t i = s; i < s + 256; ++i) {
          err = std::max(err, std::fabs(double(ours[i]) - x[i]));
          range = std::max(range, double(std::fabs(x[i])));
        }
        INFO("super-block " << s / 256 << ": max error " << err << " of a range " << range);
        CHECK(err <= 0.1 * range);
      }
      // Every kernel against ggml's dequantized rows, for 1..9 rows of activations.
      std::mt19937 rng(5);
      std::normal_distribution<float> g;
      const std::int64_t k = n / rows;
      for (const std::int64_t m : {1, 3, 8, 9}) {
        std::vector<float> act(static_cast<std::size_t>(m * k)), y(static_cast<std::size_t>(m * rows));
        for (float& v : act) v = g(rng);
        cpu::matmul(pool, act.data(), m, k, q, rows, y.data());
        for (std::int64_t i = 0; i < m; ++i) {
          for (std::uint32_t j = 0; j < rows; ++j) {
            double s = 0, mag = 0;
            for (std::int64_t p = 0; p < k; ++p) {
              s += double(act[i * k + p]) * ggml[j * k + p];
              mag += std::fabs(double(act[i * k + p]) * ggml[j * k + p]);
            }
            INFO("m " << m << " row " << j);
            CHECK(std::fabs(y[i * rows + j] - s) <= 0.02 * mag + 1e-4);  // int8 activations: about 1% of the sum
          }
        }
      }
    };
    if (t == 0) {
      check(reinterpret_cast<const BlockQ4_K*>(blocks));
    } else {
      check(reinterpret_cast<const BlockQ6_K*>(blocks));
    }
  }
  CHECK(at == b.size());
}

namespace {

// Random K-quant blocks whose values have about the spread of a linear layer's weights for rows of `k`.
template <class Q>
std::vector<Q> k_blocks(std::int64_t rows, std::int64_t k, std::mt19937& rng) {
  std::vector<Q> out(static_cast<std::size_t>(rows * k / Q::elements));
  std::uniform_int_distribution<int> byte(0, 255);
  for (Q& b : out) {
    auto* p = reinterpret_cast<unsigned char*>(&b);
    for (std::size_t i = 0; i < sizeof(Q); ++i) p[i] = static_cast<unsigned char>(byte(rng));
    const float target = 1.0f / std::sqrt(static_cast<float>(k));
    if constexpr (std::is_same_v<Q, BlockQ6_K>) {
      b.d = f16(target / (64.0f * 18.0f));  // |scale| ~ 64, |q - 32| ~ 18
    } else {
      b.d = f16(target / (32.0f * 4.6f));   // sc ~ 32, q - 7.5 ~ 4.6 ...
      b.dmin = f16(target * 7.5f / (32.0f * 4.6f) * 1.0f);  // ... centred by the mins (m ~ 32)
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a GGUF model of Q4_K and Q6_K matrices (Q4_K_M's mix) gives the logits of its dequantized weights",
          "[gguf][quant][model]") {
  ModelParams p;
  p.dim = 256;
  p.n_layers = 2;
  p.n_heads = 4;
  p.n_kv_heads = 2;
  p.hidden_dim = 512;
  p.vocab_size = 512;
  p.max_seq_len = 64;
  Checkpoint c = synthetic_checkpoint<float>(p, 9);
  std::mt19937 rng(4);
  // As llama-quantize's Q4_K_M does: Q6_K for the output layer and the FeedForward's w2, Q4_K for the rest.
  Checkpoint dequantized = c;
  test::GgufWriter w;
  w.str("general.architecture", "llama");
  w.u32("llama.embedding_length", 256);
  w.u32("llama.block_count", 2);
  w.u32("llama.attention.head_count", 4);
  w.u32("llama.attention.head_count_kv", 2);
  w.u32("llama.feed_forward_length", 512);
  w.f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.f32("llama.rope.freq_base", 500000.0f);
  for_each_weight(c.weights, c.params, [&](const WeightSlot& slot, AnyTensor<Cpu>& t) {
    const Shape s = shape(t);
    const std::string name = slot.name_in(WeightFormat::gguf);
    if (s.rank() == 1) {
      const auto& v = std::get<Tensor<const float>>(t);
      w.tensor(name, DType::f32, s, std::string(reinterpret_cast<const char*>(v.data()), v.bytes()));
      return;
    }
    const bool six = slot.name.kind == WeightKind::w2 || slot.name.kind == WeightKind::output;
    Tensor<float> full(s);
    std::string bytes;
    if (six) {
      const auto q = k_blocks<BlockQ6_K>(s[0], s[1], rng);
      bytes.assign(reinterpret_cast<const char*>(q.data()), q.size() * sizeof(BlockQ6_K));
      dequantize_row(q.data(), s.numel(), full.data());
    } else {
      const auto q = k_blocks<BlockQ4_K>(s[0], s[1], rng);
      bytes.assign(reinterpret_cast<const char*>(q.data()), q.size() * sizeof(BlockQ4_K));
      dequantize_row(q.data(), s.numel(), full.data());
    }
    w.tensor(name, six ? DType::q6_k : DType::q4_k, s, bytes);
    weight_ref(dequantized.weights, slot.name.kind, slot.layer) = Tensor<const float>(full);
  });
  const fs::path file = test::temp_dir("k-quants") / "q4_k_m.gguf";
  test::write_file(file, w.bytes());
  Transformer<> gguf = Transformer<>::load(file, {.max_seq_len = 64}, 2);
  CHECK(dtype(gguf.weights().layers[0].wq) == DType::q4_k);
  CHECK(dtype(gguf.weights().layers[1].w2) == DType::q6_k);
  CHECK(dtype(gguf.weights().output) == DType::q6_k);
  Transformer<> reference(std::move(dequantized), 2);
  const std::vector<TokenId> prompt = {1, 17, 300, 42, 5, 99, 250, 7, 8, 11, 500, 3};
  for (const bool decode : {false, true}) {
    INFO((decode ? "decoding" : "prefill"));
    Tensor<float> a, b;
    if (decode) {  // one token at a time: the matrix-vector kernels
      for (std::size_t t = 0; t < prompt.size(); ++t) {
        a = gguf.forward(std::span(&prompt[t], 1), static_cast<int>(t), Logits::last);
        b = reference.forward(std::span(&prompt[t], 1), static_cast<int>(t), Logits::last);
      }
    } else {
      a = gguf.forward(prompt, 0, Logits::last);
      b = reference.forward(prompt, 0, Logits::last);
    }
    double range = 0;
    for (std::int64_t i = 0; i < b.numel(); ++i) range = std::max(range, double(std::fabs(b.data()[i])));
    INFO("logits up to " << range << ", max difference " << max_diff(a, b));
    CHECK(range > 0.5);                     // a model whose logits say something
    CHECK(max_diff(a, b) < 0.03 * range);   // the int8 activations of the integer kernels, as llama.cpp rounds them
  }
}
