#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "llama3/io/checkpoint.hpp"
#include "llama3/model/transformer.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/model_fixtures.hpp"

using namespace llama3;
using namespace std::string_literals;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

io::TensorMap safetensors(const std::string& bytes) { return io::read_safetensors(bytes, nullptr, "x.safetensors"); }
io::TensorMap pth(const std::string& bytes) { return io::read_torch_checkpoint(bytes, nullptr, "x.pth"); }

std::string header_file(const std::string& header, std::size_t data_bytes = 16) {
  std::string out;
  test::put_le(out, header.size(), 8);
  return out + header + std::string(data_bytes, '\0');
}

std::vector<test::NamedTensor> two_tensors() {
  return {{"a", DType::f32, Shape{2, 2}, std::string(16, '\1')}, {"b", DType::bf16, Shape{3}, std::string(6, '\2')}};
}

// The fixture's weights as a Meta checkpoint split over `n` model-parallel shards.
fs::path write_sharded(const test::ModelFixture& f, int n, const std::string& tag) {
  const io::TensorMap full = io::read_torch_checkpoint_file(f.dir / "meta" / "consolidated.00.pth");
  const fs::path dir = test::temp_dir(tag);
  fs::copy_file(f.dir / "meta" / "params.json", dir / "params.json");
  for (int s = 0; s < n; ++s) {
    std::vector<test::NamedTensor> shard;
    for (const auto& [name, t] : full) {
      const WeightName* w = find_weight_name(name, WeightFormat::meta);
      const int dim = w ? w->shard_dim : -1;
      const std::size_t element = dtype_size(t.dtype);
      const auto* bytes = reinterpret_cast<const char*>(t.data);
      test::NamedTensor part{name, t.dtype, t.shape, {}};
      if (dim == 0) {
        const std::int64_t rows = t.shape[0] / n;
        part.shape[0] = rows;
        part.bytes.assign(bytes + s * rows * t.shape[1] * static_cast<std::int64_t>(element),
                          static_cast<std::size_t>(rows * t.shape[1]) * element);
      } else if (dim == 1) {
        const std::int64_t cols = t.shape[1] / n;
        part.shape[1] = cols;
        for (std::int64_t r = 0; r < t.shape[0]; ++r) {
          part.bytes.append(bytes + (r * t.shape[1] + s * cols) * static_cast<std::int64_t>(element),
                            static_cast<std::size_t>(cols) * element);
        }
      } else {
        part.bytes.assign(bytes, t.bytes());
      }
      shard.push_back(std::move(part));
    }
    char file[32];
    std::snprintf(file, sizeof file, "consolidated.%02d.pth", s);
    test::write_file(dir / file, test::torch_pth_bytes(shard, std::string("consolidated.") + std::to_string(s)));
  }
  return dir;
}

}  // namespace

TEST_CASE("safetensors: a written file reads back", "[io][safetensors]") {
  const std::string bytes = test::safetensors_bytes(two_tensors());  // the tensors view these bytes
  const io::TensorMap m = safetensors(bytes);
  REQUIRE(m.size() == 2);
  CHECK(m.at("a").shape == Shape{2, 2});
  CHECK(m.at("b").dtype == DType::bf16);
  CHECK(std::string(reinterpret_cast<const char*>(m.at("b").data), 6) == std::string(6, '\2'));
}

TEST_CASE("safetensors: hostile files are Errors naming the file and the tensor", "[io][safetensors][errors]") {
  const std::string good = test::safetensors_bytes(two_tensors());
  CHECK_THROWS_WITH(safetensors(""), Contains("x.safetensors") && Contains("too short"));
  CHECK_THROWS_WITH(safetensors(good.substr(0, 20)), Contains("header length") && Contains("past the end"));
  CHECK_THROWS_WITH(safetensors(good.substr(0, good.size() - 1)), Contains("\"b\"") && Contains("out of range"));
  std::string huge = good;
  huge[7] = '\x7F';
  CHECK_THROWS_WITH(safetensors(huge), Contains("header length"));
  CHECK_THROWS_WITH(safetensors(header_file("{\"a\":")), Contains("malformed JSON"));
  CHECK_THROWS_WITH(safetensors(header_file("[]")), Contains("not an object"));
  CHECK_THROWS_WITH(safetensors(header_file(R"({"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})")),
                    Contains("\"a\"") && Contains("I64"));
  CHECK_THROWS_WITH(safetensors(header_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})")),
                    Contains("needs 12"));
  CHECK_THROWS_WITH(safetensors(header_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})")),
                    Contains("out of range"));
  CHECK_THROWS_WITH(
      safetensors(header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})")),
      Contains("overlap"));
  CHECK_THROWS_WITH(safetensors(header_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}})")),
                    Contains("absurd"));
  CHECK_THROWS_WITH(safetensors(header_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,16]}})")),
                    Contains("non-negative"));
  CHECK_THROWS_WITH(safetensors(header_file(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]}})")),
                    Contains("dimensions"));
  CHECK_THROWS_WITH(safetensors(header_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})")), Contains("dtype"));
}

TEST_CASE("torch .pth: written archives read back, zip64 included", "[io][pth]") {
  for (const bool zip64 : {false, true}) {
    const std::string bytes = test::torch_pth_bytes(two_tensors(), "some/prefix/x", zip64);
    const io::TensorMap m = pth(bytes);
    REQUIRE(m.size() == 2);
    CHECK(m.at("a").shape == Shape{2, 2});
    CHECK(m.at("b").dtype == DType::bf16);
    CHECK(std::string(reinterpret_cast<const char*>(m.at("a").data), 16) == std::string(16, '\1'));
  }
}

TEST_CASE("torch .pth: hostile archives and pickles are Errors with the offset", "[io][pth][errors]") {
  const std::string good = test::torch_pth_bytes(two_tensors());
  CHECK_THROWS_WITH(pth("not a zip"), Contains("x.pth") && Contains("too short"));
  CHECK_THROWS_WITH(pth(std::string(100, 'z')), Contains("not a zip archive"));
  CHECK_THROWS_WITH(pth(good.substr(0, good.size() - 30)), Contains("x.pth"));
  const auto with_pickle = [](const std::string& pickle) {
    return test::zip_bytes({{"a/data.pkl", pickle}, {"a/data/0", std::string(16, '\0')}});
  };
  CHECK_THROWS_WITH(pth(with_pickle("\x80\x02" "cos\nsystem\n(X\x02\x00\x00\x00lstR."s)),
                    Contains("os.system") && Contains("allow-list") && Contains("byte offset"));
  CHECK_THROWS_WITH(pth(with_pickle("\x80\x02" "cbuiltins\neval\n.")), Contains("builtins.eval"));
  CHECK_THROWS_WITH(pth(with_pickle("\x80\x02}")), Contains("truncated") || Contains("no STOP"));
  CHECK_THROWS_WITH(pth(with_pickle("\x80\x02\xff.")), Contains("opcode 0xff"));
  CHECK_THROWS_WITH(pth(with_pickle("\x80\x02h\x05.")), Contains("memo entry 5"));
  CHECK_THROWS_WITH(pth(with_pickle("\x80\x02s.")), Contains("underflow"));
  CHECK_THROWS_WITH(pth(with_pickle("\x80\x02]q\x00h\x00" "a."s)), Contains("no dict"));  // a list holding itself: no leak
  CHECK_THROWS_WITH(pth(test::zip_bytes({{"a/other", "x"}})), Contains("no data.pkl"));
  // A storage that is not in the archive, and a tensor that runs past its storage.
  std::vector<test::NamedTensor> t = two_tensors();
  std::string missing = test::torch_pth_bytes(t);
  const std::string name = "archive/data/1";
  missing.replace(missing.rfind(name), name.size(), "archive/data/9");
  CHECK_THROWS_WITH(pth(missing), Contains("\"b\"") && Contains("storage"));
  t[0].bytes.resize(8);  // 2 x 2 floats need 16 bytes
  CHECK_THROWS_WITH(pth(test::torch_pth_bytes(t)), Contains("\"a\"") && Contains("bytes"));
  // A compressed entry.
  std::string compressed = good;
  compressed[8] = 8;  // the first local header's method: deflate
  const std::size_t cd = compressed.find("PK\x01\x02");
  compressed[cd + 10] = 8;
  CHECK_THROWS_WITH(pth(compressed), Contains("compressed"));
}

TEST_CASE("Meta checkpoints split over shards merge back to the same model", "[io][shards][model]") {
  for (const std::string& name : test::model_fixture_names()) {
    const test::ModelFixture f = test::load_model_fixture(name);
    const fs::path dir = write_sharded(f, 2, name + "-shards");
    auto single = Transformer<>::load(f.dir / "meta", {.max_seq_len = 128});
    auto sharded = Transformer<>::load(dir, {.max_seq_len = 128});
    const Tensor<float> a = single.forward(f.prompts[2], 0), b = sharded.forward(f.prompts[2], 0);
    for (std::int64_t i = 0; i < a.numel(); ++i) REQUIRE(a.data()[i] == b.data()[i]);
    fs::remove_all(dir);
  }
}

TEST_CASE("checkpoint folders: missing, extra, misshapen tensors and bad configs are Errors naming them",
          "[io][errors]") {
  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  const io::TensorMap full = io::read_safetensors_file(f.dir / "hf" / "model.safetensors");
  const std::string config = test::read_file(f.dir / "hf" / "config.json");
  const auto folder = [&](const std::string& tag, const std::vector<test::NamedTensor>& tensors, const std::string& cfg) {
    const fs::path dir = test::temp_dir(tag);
    test::write_file(dir / "config.json", cfg);
    test::write_file(dir / "model.safetensors", test::safetensors_bytes(tensors));
    return dir;
  };
  const auto replace = [](std::string s, const std::string& from, const std::string& to) {
    return s.replace(s.find(from), from.size(), to);
  };
  std::vector<test::NamedTensor> tensors = test::named_tensors(full);
  CHECK_NOTHROW(load_checkpoint(folder("ok", tensors, config)));

  auto missing = tensors;
  missing.erase(std::find_if(missing.begin(), missing.end(), [](auto& t) { return t.name.find("layers.1.mlp.up_proj") != std::string::npos; }));
  CHECK_THROWS_WITH(load_checkpoint(folder("missing", missing, config)),
                    Contains("missing tensor model.layers.1.mlp.up_proj.weight") && Contains("[224, 64]"));
  auto extra = tensors;
  extra.push_back({"model.layers.2.mlp.up_proj.weight", DType::f32, Shape{1}, std::string(4, '\0')});
  CHECK_THROWS_WITH(load_checkpoint(folder("extra", extra, config)),
                    Contains("unexpected tensor model.layers.2.mlp.up_proj.weight"));
  auto misshapen = tensors;
  for (auto& t : misshapen) {
    if (t.name == "model.norm.weight") {
      t.shape = Shape{32, 2};
    }
  }
  CHECK_THROWS_WITH(load_checkpoint(folder("misshapen", misshapen, config)),
                    Contains("model.norm.weight has shape [32, 2], expected [64]"));
  CHECK_THROWS_WITH(load_checkpoint(folder("heads", tensors, replace(config, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 1"))),
                    Contains("k_proj.weight has shape [32, 64], expected [16, 64]"));
  CHECK_THROWS_WITH(load_checkpoint(folder("head_dim", tensors, replace(config, "\"num_attention_heads\": 4", "\"num_attention_heads\": 8"))),
                    Contains("head_dim"));
  CHECK_THROWS_WITH(load_checkpoint(folder("act", tensors, replace(config, "\"silu\"", "\"gelu\""))),
                    Contains("config.json") && Contains("hidden_act"));
  CHECK_THROWS_WITH(load_checkpoint(folder("json", tensors, "{\"hidden_size\": ")), Contains("malformed JSON"));
  CHECK_THROWS_WITH(load_checkpoint(folder("type", tensors, replace(config, "\"hidden_size\": 64", "\"hidden_size\": \"64\""))),
                    Contains("hidden_size") && Contains("integer"));
  CHECK_THROWS_WITH(load_checkpoint(folder("rope", tensors, replace(config, "\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}"))),
                    Contains("yarn"));
  CHECK_THROWS_WITH(load_checkpoint(fs::path("/nonexistent/model")), Contains("not a folder"));
  CHECK_THROWS_WITH(load_checkpoint(test::temp_dir("empty")), Contains("neither params.json"));

  // Meta: params.json errors and a missing shard file.
  const fs::path meta = test::temp_dir("meta-params");
  test::write_file(meta / "params.json", "{\"dim\": 64, \"n_layers\": 2, \"n_heads\": 4, \"vocab_size\": -1}");
  fs::copy_file(f.dir / "meta" / "consolidated.00.pth", meta / "consolidated.00.pth");
  CHECK_THROWS_WITH(load_checkpoint(meta), Contains("params.json") && Contains("vocab_size"));
  test::write_file(meta / "params.json", test::read_file(f.dir / "meta" / "params.json"));
  fs::copy_file(f.dir / "meta" / "consolidated.00.pth", meta / "consolidated.02.pth");
  CHECK_THROWS_WITH(load_checkpoint(meta), Contains("consolidated.01.pth"));
}

TEST_CASE("a file read into memory holds the bytes a mapping shows, 2 MiB-aligned", "[io]") {
  const fs::path dir = fs::temp_directory_path() / "llama3-read-into-memory";
  fs::create_directories(dir);
  for (const std::size_t size : {std::size_t{1}, std::size_t{4096}, (std::size_t{2} << 20) + 7}) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 131 + 7);
    const fs::path file = dir / ("f" + std::to_string(size));
    std::ofstream(file, std::ios::binary) << bytes;
    const MappedFile mapped(file), read(file, FileAccess::read);
    CHECK(read.size() == size);
    CHECK(read.bytes() == mapped.bytes());
    CHECK(reinterpret_cast<std::uintptr_t>(read.data()) % (std::size_t{2} << 20) == 0);
  }
  const fs::path empty = dir / "empty";
  std::ofstream(empty, std::ios::binary).close();
  CHECK(MappedFile(empty, FileAccess::read).size() == 0);
  CHECK_THROWS_WITH(MappedFile(dir / "missing", FileAccess::read), Contains("missing") && Contains("cannot open"));
  fs::remove_all(dir);
}
