// The GGUF reader: metadata of every type and tensors of every dtype read back; hostile files (every truncation,
// random corruption, and each lie a header can tell) are errors naming the byte offset, never a crash.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "llama3/io/checkpoint.hpp"
#include "llama3/io/gguf.hpp"
#include "llama3/model/quantize.hpp"
#include "llama3/model/transformer.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/gguf_model.hpp"
#include "support/gguf_writer.hpp"
#include "support/model_fixtures.hpp"

using namespace llama3;
using Catch::Contains;

namespace {

std::string q8_bytes(int rows, int cols) {
  std::vector<BlockQ8_0> blocks(static_cast<std::size_t>(rows * cols / 32));
  std::vector<float> x(32);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    for (int i = 0; i < 32; ++i) x[static_cast<std::size_t>(i)] = static_cast<float>(b) + 0.25f * static_cast<float>(i - 16);
    blocks[b] = quantize_q8_0(x.data());
  }
  return std::string(reinterpret_cast<const char*>(blocks.data()), blocks.size() * sizeof(BlockQ8_0));
}

test::GgufWriter sample(std::uint64_t alignment = 32) {
  test::GgufWriter w(alignment);
  if (alignment != 32) w.u32("general.alignment", static_cast<std::uint32_t>(alignment));
  w.str("general.architecture", "llama");
  w.u32("llama.block_count", 2);
  w.f32("llama.rope.freq_base", 500000.0f);
  w.raw("flag", io::GgufType::boolean, std::string(1, '\1'));
  w.raw("neg", io::GgufType::i64, test::GgufWriter::bytes_of(std::int64_t{-5}));
  w.raw("eps", io::GgufType::f64, test::GgufWriter::bytes_of(1e-5));
  w.strings("tokenizer.ggml.tokens", {"a", "b", "\xc4\xa0world"});
  w.i32s("tokenizer.ggml.token_type", {1, 1, 3});
  std::string f32(4 * 6, '\0');
  for (int i = 0; i < 6; ++i) {
    const float v = static_cast<float>(i);
    std::memcpy(f32.data() + 4 * i, &v, 4);
  }
  w.tensor("norm.weight", DType::f32, Shape{6}, f32);
  w.tensor("blk.0.attn_q.weight", DType::q8_0, Shape{3, 64}, q8_bytes(3, 64));
  w.tensor("two.by.three", DType::f32, Shape{2, 3}, f32);
  return w;
}

io::GgufFile read(const std::string& bytes) { return io::read_gguf(bytes, nullptr, "test.gguf"); }

}  // namespace

TEST_CASE("GGUF metadata and tensors read back as written", "[gguf]") {
  for (const std::uint64_t alignment : {32u, 64u}) {
    const std::string bytes = sample(alignment).bytes();
    const io::GgufFile g = read(bytes);
    CHECK(g.version == 3);
    CHECK(g.alignment == alignment);
    CHECK(g.data_offset % alignment == 0);
    CHECK(g.find("general.architecture")->s == "llama");
    CHECK(g.find("llama.block_count")->u == 2);
    CHECK(g.find("llama.rope.freq_base")->f == 500000.0);
    CHECK(g.find("flag")->u == 1);
    CHECK(g.find("neg")->i == -5);
    CHECK(g.find("eps")->f == 1e-5);
    const auto tokens = g.find("tokenizer.ggml.tokens")->strings();
    REQUIRE(tokens.size() == 3);
    CHECK(tokens[2] == "\xc4\xa0world");
    CHECK(g.find("tokenizer.ggml.token_type")->integers() == std::vector<std::int64_t>{1, 1, 3});
    CHECK(g.find("missing") == nullptr);

    REQUIRE(g.tensors.size() == 3);
    const io::RawTensor& norm = g.tensors.at("norm.weight");
    CHECK(norm.dtype == DType::f32);
    CHECK(norm.shape == Shape{6});
    float v[6];
    std::memcpy(v, norm.data, sizeof v);
    CHECK(v[5] == 5.0f);
    const io::RawTensor& q = g.tensors.at("blk.0.attn_q.weight");
    CHECK(q.dtype == DType::q8_0);
    CHECK(q.shape == Shape{3, 64});  // ne = [64, 3]: rows of 64
    CHECK(q.bytes() == 6 * sizeof(BlockQ8_0));
    CHECK(std::memcmp(q.data, q8_bytes(3, 64).data(), q.bytes()) == 0);
    CHECK(g.tensors.at("two.by.three").shape == Shape{2, 3});
    // Through the typed view: the quantized tensor's rows dequantize to what was written.
    const auto t = io::any_view(q);
    float row[64];
    dequantize_row(std::get<Tensor<const BlockQ8_0>>(t).row(2), 64, row);
    for (int i = 0; i < 64; ++i) {  // row 2 is blocks 4 and 5: b + (i - 16) / 4, within half a step of 8.75 / 127
      CHECK(row[i] == Approx(4 + i / 32 + 0.25 * (i % 32 - 16)).margin(0.035));
    }
  }
}

TEST_CASE("every truncation of a GGUF file and random corruption are errors, never a crash", "[gguf][hostile]") {
  const std::string bytes = sample().bytes();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO("truncated to " << n << " of " << bytes.size() << " bytes");
    CHECK_THROWS_AS(read(bytes.substr(0, n)), Error);
  }
  std::mt19937 rng(7);
  int errors = 0;
  for (int rep = 0; rep < 3000; ++rep) {
    std::string b = bytes;
    for (int k = 0; k < 1 + rep % 4; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    try {
      const io::GgufFile g = read(b);
      for (const auto& [name, t] : g.tensors) {  // whatever was read lies inside the bytes
        REQUIRE(t.data >= reinterpret_cast<const std::byte*>(b.data()));
        REQUIRE(t.data + t.bytes() <= reinterpret_cast<const std::byte*>(b.data()) + b.size());
      }
    } catch (const Error&) {
      ++errors;
    }
  }
  CHECK(errors > 100);
}

TEST_CASE("GGUF headers that lie are errors naming what is wrong", "[gguf][hostile]") {
  const auto with_tensor = [](std::string_view name, std::uint32_t type, std::vector<std::uint64_t> ne,
                              std::uint64_t offset, std::size_t data_bytes) {
    std::string out = "GGUF";
    test::GgufWriter::put<std::uint32_t>(out, 3);
    test::GgufWriter::put<std::uint64_t>(out, 1);
    test::GgufWriter::put<std::uint64_t>(out, 0);
    test::GgufWriter::put_string(out, name);
    test::GgufWriter::put<std::uint32_t>(out, static_cast<std::uint32_t>(ne.size()));
    for (const auto d : ne) test::GgufWriter::put<std::uint64_t>(out, d);
    test::GgufWriter::put<std::uint32_t>(out, type);
    test::GgufWriter::put<std::uint64_t>(out, offset);
    while (out.size() % 32) out += '\0';
    return out + std::string(data_bytes, '\0');
  };
  CHECK_NOTHROW(read(with_tensor("t", 0, {8, 2}, 0, 64)));
  CHECK_THROWS_WITH(read(with_tensor("t", 13, {256, 2}, 0, 1000)), Contains("Q5_K") && Contains("not one we read"));
  CHECK_THROWS_WITH(read(with_tensor("t", 8, {48, 2}, 0, 1000)), Contains("not whole Q8_0 blocks"));
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {8, 2}, 16, 80)), Contains("has offset 16, expected 0"));
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {8, 2}, 0, 63)), Contains("run past the end of the data"));
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {8, 2}, 1u << 30, 64)), Contains("has offset 1073741824, expected 0"));
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {8, 2}, std::uint64_t(-1), 64)), Contains("expected 0"));
  // Bytes no tensor accounts for: more data than the table describes (up to the alignment is padding).
  CHECK_NOTHROW(read(with_tensor("t", 0, {4, 1}, 0, 16)));
  CHECK_NOTHROW(read(with_tensor("t", 0, {4, 1}, 0, 32)));
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {4, 1}, 0, 33)), Contains("1 bytes after the last tensor"));
  // F32 bytes declared Q8_0 (in bounds, but the wrong size): the next tensor is not where the table says, or,
  // for the last one, the file goes on.
  {
    test::GgufWriter w;
    w.tensor("a", DType::f32, Shape{2, 64}, std::string(512, '\1'));
    w.tensor("b", DType::f32, Shape{8}, std::string(32, '\0'));
    std::string b = w.bytes();
    REQUIRE_NOTHROW(read(b));
    const std::size_t type_at = b.find('a', 24) + 1 + 4 + 16;  // name, n_dims, ne: the type of "a"
    const std::uint32_t q8_0 = 8;
    std::memcpy(b.data() + type_at, &q8_0, 4);
    CHECK_THROWS_WITH(read(b), Contains("tensor \"b\" has offset 512, expected 160"));
    test::GgufWriter last;
    last.tensor("a", DType::f32, Shape{2, 64}, std::string(512, '\1'));
    std::string c = last.bytes();
    std::memcpy(c.data() + c.find('a', 24) + 1 + 4 + 16, &q8_0, 4);
    CHECK_THROWS_WITH(read(c), Contains("352 bytes after the last tensor"));
  }
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {1, 1, 1, 1, 1}, 0, 64)), Contains("5 dimensions"));
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {8, 0}, 0, 64)), Contains("dimension 1 is 0"));
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {std::uint64_t{1} << 41, 2}, 0, 64)), Contains("dimension 0"));
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {1u << 30, 1u << 30}, 0, 64)), Contains("absurd"));
  CHECK_THROWS_WITH(read(with_tensor("t", 0, {1u << 20, 1u << 20, 1u << 20}, 0, 64)), Contains("absurd"));

  test::GgufWriter overlap;
  overlap.tensor("a", DType::f32, Shape{16}, std::string(64, '\0'));
  std::string b = overlap.bytes();
  {  // a second tensor info pointing into the first: rebuild by hand
    test::GgufWriter w;
    w.tensor("a", DType::f32, Shape{16}, std::string(64, '\0'));
    w.tensor("b", DType::f32, Shape{8}, std::string(32, '\0'));
    b = w.bytes();
    const std::size_t at = b.find('b', 30) + 1 + 4 + 8 + 4;  // name, n_dims, ne[0], type: the offset of "b"
    const std::uint64_t inside = 32;
    std::memcpy(b.data() + at, &inside, 8);
  }
  CHECK_THROWS_WITH(read(b), Contains("tensor \"b\" has offset 32, expected 64"));

  test::GgufWriter dup;
  dup.u32("k", 1);
  dup.u32("k", 2);
  CHECK_THROWS_WITH(read(dup.bytes()), Contains("appears twice"));
  test::GgufWriter align;
  align.u32("general.alignment", 48);
  CHECK_THROWS_WITH(read(align.bytes()), Contains("power of two"));
  test::GgufWriter boolean;
  boolean.raw("b", io::GgufType::boolean, std::string(1, '\2'));
  CHECK_THROWS_WITH(read(boolean.bytes()), Contains("bool"));
  test::GgufWriter type;
  type.raw("x", static_cast<io::GgufType>(99), "");
  CHECK_THROWS_WITH(read(type.bytes()), Contains("unknown type 99"));
  const auto array = [](io::GgufType item, std::uint64_t count, std::string items) {
    std::string v;
    test::GgufWriter::put<std::uint32_t>(v, static_cast<std::uint32_t>(item));
    test::GgufWriter::put<std::uint64_t>(v, count);
    test::GgufWriter w;
    w.raw("a", io::GgufType::array, v + items);
    return w.bytes();
  };
  CHECK_THROWS_WITH(read(array(io::GgufType::array, 1, std::string(12, '\0'))), Contains("array of arrays"));
  CHECK_THROWS_WITH(read(array(io::GgufType::u32, 1000, std::string(11, '\0'))), Contains("cannot fit"));
  CHECK_THROWS_WITH(read(array(io::GgufType::u64, std::uint64_t{1} << 61, std::string(64, '\0'))), Contains("cannot fit"));
  CHECK_THROWS_WITH(read(array(io::GgufType::string, 2, std::string(8, '\0') + "\xe8\x03" + std::string(6, '\0') + "abc")),
                    Contains("runs past the end"));
  CHECK(read(array(io::GgufType::u16, 3, std::string("\1\0\2\0\xff\xff", 6))).find("a")->integers() ==
        std::vector<std::int64_t>{1, 2, 65535});

  std::string s = sample().bytes();
  CHECK_THROWS_WITH(read("GGUX" + s.substr(4)), Contains("not a GGUF file"));
  std::string v4 = s;
  v4[4] = 4;
  CHECK_THROWS_WITH(read(v4), Contains("GGUF version 4"));
  std::string many = s;
  const std::uint64_t lots = std::uint64_t{1} << 60;
  std::memcpy(many.data() + 16, &lots, 8);  // n_kv
  CHECK_THROWS_WITH(read(many), Contains("metadata pairs cannot fit"));
  std::string long_key = s;
  std::memcpy(long_key.data() + 24, &lots, 8);  // the first key's length
  CHECK_THROWS_WITH(read(long_key), Contains("runs past the end of the file") && Contains("test.gguf"));
}


TEST_CASE("a GGUF model gives the fixtures' logits; a Q8_0 one those of --quantize q8_0", "[gguf][model]") {
  const std::filesystem::path dir = test::temp_dir("gguf-models");
  for (const std::string& name : test::model_fixture_names()) {
    INFO(name);
    const test::ModelFixture f = test::load_model_fixture(name);
    Checkpoint meta = load_checkpoint(f.dir / "meta", {.max_seq_len = f.max_seq_len});
    const auto file = dir / (name + ".gguf");
    std::ofstream(file, std::ios::binary) << test::gguf_model(meta, false);
    Transformer<> model = Transformer<>::load(file, {.max_seq_len = f.max_seq_len}, 2);
    CHECK(model.params().tie_embeddings == meta.params.tie_embeddings);
    CHECK(model.params().ffn_hidden_dim() == meta.params.ffn_hidden_dim());
    for (std::size_t k = 0; k < f.prompts.size(); ++k) {
      const Tensor<float> logits = model.forward(f.prompts[k], 0, Logits::last);
      CHECK(test::max_abs_diff(logits.data(), f.last_logits[k]) < f.atol);
    }

    const auto q8 = dir / (name + "-q8_0.gguf");
    std::ofstream(q8, std::ios::binary) << test::gguf_model(meta, true);
    Transformer<> from_gguf = Transformer<>::load(q8, {.max_seq_len = f.max_seq_len}, 2);
    LoadOptions quantize{.max_seq_len = f.max_seq_len};
    quantize.quantize = DType::q8_0;
    Transformer<> quantized = Transformer<>::load(f.dir / "meta", quantize, 2);
    CHECK(dtype(from_gguf.weights().layers[0].w2) == DType::q8_0);
    for (const auto& prompt : f.prompts) {
      const Tensor<float> a = from_gguf.forward(prompt, 0, Logits::last);
      const Tensor<float> b = quantized.forward(prompt, 0, Logits::last);
      if (meta.params.use_scaled_rope) {  // RoPE from rope_freqs' float divisors: the last bits differ
        for (std::int64_t i = 0; i < a.numel(); ++i) REQUIRE(std::fabs(a.data()[i] - b.data()[i]) < 1e-4);
      } else {
        REQUIRE(std::memcmp(a.data(), b.data(), a.bytes()) == 0);  // the same blocks, the same kernels
      }
    }
  }
  // Read into memory instead of mapped (LoadOptions::mmap = false, --no-mmap): the same bytes, the same logits.
  for (const std::string& name : test::model_fixture_names()) {
    const test::ModelFixture f = test::load_model_fixture(name);
    for (const std::filesystem::path& path : {f.dir / "meta", f.dir / "hf", dir / (name + "-q8_0.gguf")}) {
      INFO(path);
      LoadOptions read{.max_seq_len = f.max_seq_len};
      read.mmap = false;
      Transformer<> mapped = Transformer<>::load(path, {.max_seq_len = f.max_seq_len}, 2);
      Transformer<> in_memory = Transformer<>::load(path, read, 2);
      const Tensor<float> a = mapped.forward(f.prompts[2], 0), b = in_memory.forward(f.prompts[2], 0);
      REQUIRE(std::memcmp(a.data(), b.data(), a.bytes()) == 0);
    }
  }
  // Not a llama model, or missing keys: errors naming the file and the key.
  test::GgufWriter other;
  other.str("general.architecture", "gemma");
  std::ofstream(dir / "gemma.gguf", std::ios::binary) << other.bytes();
  CHECK_THROWS_WITH(load_checkpoint(dir / "gemma.gguf"), Contains("gemma.gguf") && Contains("only \"llama\""));
  test::GgufWriter partial;
  partial.str("general.architecture", "llama");
  std::ofstream(dir / "partial.gguf", std::ios::binary) << partial.bytes();
  CHECK_THROWS_WITH(load_checkpoint(dir / "partial.gguf"), Contains("no llama.embedding_length"));
}
