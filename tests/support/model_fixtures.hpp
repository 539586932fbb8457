#pragma once
// The tiny model fixtures of tests/data/models (copied from ../shared/fixtures/models; see its README): their
// expected.json, from an independent PyTorch implementation of Meta's reference in float64.
#include <filesystem>
#include <string>
#include <vector>

#include <simdjson.h>

#include "llama3/model/transformer.hpp"
#include "support/test_data.hpp"

namespace llama3::test {

struct Greedy {
  int prompt_index;
  std::vector<TokenId> tokens;
  std::vector<float> step_max_logits;
};

struct ModelFixture {
  std::string name;
  std::filesystem::path dir;
  std::vector<std::vector<TokenId>> prompts;
  std::vector<std::vector<float>> last_logits;  // [prompt][vocab]
  int all_logits_prompt = 0;
  std::vector<std::vector<float>> all_logits;   // [position][vocab]
  std::vector<Greedy> greedy;
  std::vector<double> rope_inv_freq;
  double atol = 1e-4;
  int max_seq_len = 128;
};

inline const std::vector<std::string>& model_fixture_names() {
  static const std::vector<std::string> names = {"tiny-gqa", "tiny-gqa-bf16", "tiny-scaled-rope-tied"};
  return names;
}

inline ModelFixture load_model_fixture(const std::string& name) {
  ModelFixture f;
  f.name = name;
  f.dir = data_path("models/" + name);
  simdjson::dom::parser parser;
  const simdjson::dom::element e = parser.load((f.dir / "expected.json").string());
  const auto floats = [](simdjson::dom::element a) {
    std::vector<float> v;
    for (auto x : a.get_array()) v.push_back(static_cast<float>(double(x)));
    return v;
  };
  const auto ids = [](simdjson::dom::element a) {
    std::vector<TokenId> v;
    for (auto x : a.get_array()) v.push_back(static_cast<TokenId>(std::int64_t(x)));
    return v;
  };
  for (auto p : e["prompts"].get_array()) f.prompts.push_back(ids(p));
  for (auto l : e["last_logits"].get_array()) f.last_logits.push_back(floats(l));
  f.all_logits_prompt = static_cast<int>(std::int64_t(e["all_logits"]["prompt_index"]));
  for (auto l : e["all_logits"]["logits"].get_array()) f.all_logits.push_back(floats(l));
  for (auto g : e["greedy"].get_array()) {
    f.greedy.push_back({static_cast<int>(std::int64_t(g["prompt_index"])), ids(g["tokens"]), floats(g["step_max_logits"])});
  }
  for (auto x : e["rope_inv_freq"].get_array()) f.rope_inv_freq.push_back(double(x));
  f.atol = double(e["tolerance"]["logits_atol_f32_math"]);
  f.max_seq_len = static_cast<int>(std::int64_t(e["args"]["max_seq_len"]));
  return f;
}

// The largest absolute difference between `got` and `expected`.
inline double max_abs_diff(const float* got, const std::vector<float>& expected) {
  double m = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) m = std::max(m, std::fabs(double(got[i]) - double(expected[i])));
  return m;
}

}  // namespace llama3::test
