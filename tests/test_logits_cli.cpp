// llama3-logits end to end: its JSON for each fixture and format equals the expected logits and greedy tokens.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <simdjson.h>

#include "llama3/model/quantize.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/model_fixtures.hpp"
#include "support/run_command.hpp"

using namespace llama3;
namespace fs = std::filesystem;

namespace {

using Run = test::CommandResult;

Run run(const std::string& args) {
  return test::run_command(std::string(LLAMA3_LOGITS_TOOL) + " " + args + " 2>&1");
}

// Row r of the "logits" of llama3-logits' JSON, checked to have `vocab` values.
std::vector<float> logits_row(const std::string& json, std::size_t r, std::size_t vocab) {
  simdjson::dom::parser parser;
  std::vector<float> out;
  for (auto x : parser.parse(json)["logits"].get_array().at(r).get_array()) out.push_back(static_cast<float>(double(x)));
  REQUIRE(out.size() == vocab);
  return out;
}

std::string join(const std::vector<TokenId>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

}  // namespace

TEST_CASE("llama3-logits prints the fixtures' logits and greedy tokens", "[cli][model]") {
  for (const std::string& name : test::model_fixture_names()) {
    const test::ModelFixture f = test::load_model_fixture(name);
    const test::Greedy& g = f.greedy[0];
    const auto& prompt = f.prompts[static_cast<std::size_t>(g.prompt_index)];
    for (const char* format : {"meta", "hf"}) {
      INFO(name << " " << format);
      const Run r = run("--model " + (f.dir / format).string() + " --tokens " + join(prompt) + " --all-positions --greedy " +
                        std::to_string(g.tokens.size()) + " --threads 2");
      REQUIRE(r.status == 0);
      simdjson::dom::parser parser;
      const simdjson::dom::element doc = parser.parse(r.out);
      const simdjson::dom::array rows = doc["logits"].get_array();
      REQUIRE(rows.size() == prompt.size());
      if (g.prompt_index == f.all_logits_prompt) {
        std::size_t t = 0;
        for (auto row : rows) {
          std::vector<float> got;
          for (auto x : row.get_array()) got.push_back(static_cast<float>(double(x)));
          REQUIRE(got.size() == f.all_logits[t].size());
          CHECK(test::max_abs_diff(got.data(), f.all_logits[t++]) < f.atol);
        }
      }
      std::vector<TokenId> greedy;
      for (auto x : doc["greedy"].get_array()) greedy.push_back(static_cast<TokenId>(std::int64_t(x)));
      CHECK(greedy == g.tokens);
    }
    // Last position only by default.
    const Run last = run("--model " + (f.dir / "hf").string() + " --tokens " + join(f.prompts[0]));
    REQUIRE(last.status == 0);
    simdjson::dom::parser parser;
    const simdjson::dom::array rows = parser.parse(last.out)["logits"].get_array();
    REQUIRE(rows.size() == 1);
    const std::vector<float> got = logits_row(last.out, 0, f.last_logits[0].size());
    CHECK(test::max_abs_diff(got.data(), f.last_logits[0]) < f.atol);
  }
}

TEST_CASE("llama3-logits reads ids from a file or standard input, and runs on every SIMD target", "[cli][model]") {
  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  const std::string model = " --model " + (f.dir / "meta").string();
  const fs::path ids = test::temp_dir("logits-ids") / "ids.txt";
  std::string text;
  for (const TokenId t : f.prompts[0]) text += std::to_string(t) + (text.size() % 3 ? "\n" : ", ");
  test::write_file(ids, text);
  const std::size_t vocab = f.last_logits[0].size();
  for (const std::string& input : {"--tokens-file " + ids.string(), "--tokens-file - < " + ids.string()}) {
    INFO(input);
    const Run r = run(model + " " + input);
    REQUIRE(r.status == 0);
    CHECK(test::max_abs_diff(logits_row(r.out, 0, vocab).data(), f.last_logits[0]) < f.atol);
  }
  CHECK_THAT(run(model + " --tokens 1 --tokens-file " + ids.string()).out, Catch::Contains("Exactly 1 option"));
  // LLAMA3_ISA caps the kernels of every tool: each target gives the fixture's logits.
  for (const char* isa : {"portable", "avx2", "avx512", "avx512_bf16"}) {
    INFO(isa);
    const test::CommandResult r = test::run_command(std::string("LLAMA3_ISA=") + isa + " " + LLAMA3_LOGITS_TOOL +
                                                    model + " --tokens " + join(f.prompts[0]) + " 2>&1");
    REQUIRE(r.status == 0);
    CHECK(test::max_abs_diff(logits_row(r.out, 0, vocab).data(), f.last_logits[0]) < f.atol);
  }
}

TEST_CASE("llama3-logits: errors go to stderr with a non-zero exit", "[cli][errors]") {
  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  Run r = run("--model /nonexistent --tokens 1");
  CHECK(r.status != 0);
  CHECK(r.out.find("not a folder") != std::string::npos);
  r = run("--model " + (f.dir / "meta").string() + " --tokens 1,99999");
  CHECK(r.status != 0);
  CHECK(r.out.find("token id 99999") != std::string::npos);
  r = run("--model " + (f.dir / "meta").string() + " --tokens 1,two");
  CHECK(r.status != 0);
  CHECK(r.out.find("\"two\"") != std::string::npos);
  r = run("--tokens 1");
  CHECK(r.status != 0);
  CHECK(r.out.find("--model") != std::string::npos);
  r = run("--help");
  CHECK(r.status == 0);
  CHECK(r.out.find("--all-positions") != std::string::npos);
}

TEST_CASE("llama3-logits --quantize gives the logits of the quantized model", "[cli][quant]") {
  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  for (const char* q : {"q8_0", "q4_0"}) {
    INFO(q);
    const Run r = run("--model " + (f.dir / "hf").string() + " --tokens " + join(f.prompts[0]) + " --quantize " + q +
                      " --threads 1");
    REQUIRE(r.status == 0);
    const std::vector<float> got = logits_row(r.out, 0, f.last_logits[0].size());
    CHECK(test::max_abs_diff(got.data(), f.last_logits[0]) > f.atol);  // quantized: not the float model's logits
    // The library's model with the same quantization, in this process: the same logits, to the printed digits.
    auto model = Transformer<>::load(f.dir / "hf", {.max_seq_len = static_cast<int>(f.prompts[0].size()),
                                                    .quantize = parse_quantization(q)}, 1);
    const Tensor<float> expected = model.forward(f.prompts[0], 0, Logits::last);
    CHECK(test::max_abs_diff(got.data(), std::vector<float>(expected.data(), expected.data() + expected.numel())) < 1e-6);
  }
  CHECK(run("--model " + (f.dir / "hf").string() + " --tokens 1 --quantize q5_0").status != 0);
}

namespace {

// ../shared/tools/gguf/make_gguf.py, when it and numpy are there: an independent GGUF writer.
std::string make_gguf_tool() {
  const std::string tool = std::string(LLAMA3_SHARED_DIR) + "/tools/gguf/make_gguf.py";
  if (!std::filesystem::exists(tool)) return "";
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) return "";
  return tool;
}

std::vector<float> first_logits(const Run& r) {
  simdjson::dom::parser parser;
  std::vector<float> out;
  for (auto x : parser.parse(r.out)["logits"].get_array().at(0).get_array()) out.push_back(float(double(x)));
  return out;
}

}  // namespace

// Hidden from the default run ([.]): tests/CMakeLists.txt registers it on its own, so that ctest reports it as
// skipped, not passed, where make_gguf.py or numpy is missing.
TEST_CASE("GGUF files from make_gguf.py give the logits of their Hugging Face export", "[.][cli][gguf][make_gguf]") {
  const std::string tool = make_gguf_tool();
  if (tool.empty()) {
    std::cout << "skipped: needs ../shared/tools/gguf/make_gguf.py and python3-numpy\n";
    return;
  }
  const std::filesystem::path dir = test::temp_dir("make-gguf");
  const std::string common = " random --preset tiny --vocab-size 512 --seed 3 ";
  const auto sh = [](const std::string& cmd) { REQUIRE(std::system((cmd + " >/dev/null 2>&1").c_str()) == 0); };
  sh("/usr/bin/python3 " + tool + common + "--dtype f32 -o " + (dir / "f32.gguf").string() + " --export-hf " +
     (dir / "hf").string() + " --export-dtype f32");
  sh("/usr/bin/python3 " + tool + common + "--dtype q8_0 -o " + (dir / "q8_0.gguf").string());
  const std::string tokens = " --tokens 1,2,3,4,5,6,7,8 --greedy 8 --threads 2";
  const Run f32 = run("--model " + (dir / "f32.gguf").string() + tokens);
  const Run hf = run("--model " + (dir / "hf").string() + tokens);
  const Run q8 = run("--model " + (dir / "q8_0.gguf").string() + tokens);
  const Run hf_q8 = run("--model " + (dir / "hf").string() + tokens + " --quantize q8_0");
  REQUIRE(f32.status == 0);
  REQUIRE(hf.status == 0);
  REQUIRE(q8.status == 0);
  REQUIRE(hf_q8.status == 0);
  const auto a = first_logits(f32), b = first_logits(hf), c = first_logits(q8), d = first_logits(hf_q8);
  REQUIRE(a.size() == 512);
  double same_weights = 0, same_quant = 0, quant_error = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    same_weights = std::max(same_weights, std::fabs(double(a[i]) - b[i]));
    same_quant = std::max(same_quant, std::fabs(double(c[i]) - d[i]));
    quant_error = std::max(quant_error, std::fabs(double(c[i]) - a[i]));
  }
  CHECK(same_weights < 1e-5);  // GGUF's interleaved q/k against Hugging Face's permuted ones
  CHECK(same_quant < 1e-5);    // make_gguf.py's Q8_0 blocks are ours (ggml's reference rounding)
  CHECK(quant_error > 1e-4);
  const auto greedy = [](const Run& r) {
    simdjson::dom::parser parser;
    std::vector<std::int64_t> ids;
    for (auto x : parser.parse(r.out)["greedy"].get_array()) ids.push_back(std::int64_t(x));
    return ids;
  };
  CHECK(greedy(f32) == greedy(hf));
  CHECK(greedy(f32).size() == 8);
}
