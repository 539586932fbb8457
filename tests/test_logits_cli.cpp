// llama3-logits end to end: its JSON for each fixture and format equals the expected logits and greedy tokens.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include <simdjson.h>

#include "support/model_fixtures.hpp"

using namespace llama3;

namespace {

struct Run {
  int status;
  std::string out;
};

Run run(const std::string& args) {
  const std::string cmd = std::string(LLAMA3_LOGITS_TOOL) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  Run r{0, {}};
  char buf[1 << 16];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  r.status = pclose(p);
  return r;
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
    std::vector<float> got;
    for (auto x : rows.at(0).get_array()) got.push_back(static_cast<float>(double(x)));
    CHECK(test::max_abs_diff(got.data(), f.last_logits[0]) < f.atol);
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
    const Run r = run("--model " + (f.dir / "hf").string() + " --tokens " + join(f.prompts[0]) + " --quantize " + q);
    REQUIRE(r.status == 0);
    simdjson::dom::parser parser;
    std::vector<float> got;
    for (auto x : parser.parse(r.out)["logits"].get_array().at(0).get_array()) got.push_back(float(double(x)));
    const double err = test::max_abs_diff(got.data(), f.last_logits[0]);
    CHECK(err > f.atol);  // quantized: not the float model's logits
    CHECK(err < (std::string(q) == "q8_0" ? 0.2 : 3.0));
  }
  CHECK(run("--model " + (f.dir / "hf").string() + " --tokens 1 --quantize q5_0").status != 0);
}
