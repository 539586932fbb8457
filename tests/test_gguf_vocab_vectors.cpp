// llama.cpp's own tokenizer test for the Llama 3 vocabulary (ggml-vocab-llama-bpe.gguf.inp/.out), read in place
// from ../shared/fixtures/tokenizer/llamacpp, which may not be copied into this repository. Exits with 77 (ctest:
// skipped) when that folder is absent.
//
// The folder also holds a vocab-only GGUF whose tokens and merges come from Meta's Hugging Face tokenizer.json.
// From it we check that our Hugging Face conversion (tests/support/files.hpp) writes exactly those merges, and
// that a tokenizer.json assembled from the GGUF's own lists, and the GGUF read as a tokenizer, give the same ids as
// tokenizer.model.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "llama3/core/json.hpp"
#include "llama3/io/gguf.hpp"
#include "llama3/tokenizer.hpp"
#include "support/files.hpp"
#include "support/test_data.hpp"

namespace fs = std::filesystem;
using namespace llama3;

namespace {

int failures = 0;
#define EXPECT(cond, what)                                   \
  do {                                                       \
    if (!(cond)) {                                           \
      ++failures;                                            \
      std::cerr << "FAILED: " << what << "\n";               \
    }                                                        \
  } while (0)

// Just enough of GGUF to read the string arrays of the tokenizer.
struct GgufStrings {
  std::vector<std::string> tokens, merges;
};

// The tokenizer's string lists of a GGUF file, through the library's reader.
GgufStrings read_gguf_vocab(const fs::path& path) {
  const io::GgufFile g = io::read_gguf_file(path);
  GgufStrings out;
  for (const auto& [key, list] : {std::pair{"tokenizer.ggml.tokens", &out.tokens},
                                  std::pair{"tokenizer.ggml.merges", &out.merges}}) {
    const io::GgufValue* v = g.find(key);
    if (!v || v->type != io::GgufType::array || v->item_type != io::GgufType::string) {
      throw std::runtime_error(path.string() + ": " + key + " is not a string array");
    }
    for (const std::string_view item : v->strings()) list->emplace_back(item);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::path("../shared/fixtures/tokenizer/llamacpp");
  const fs::path inp = dir / "ggml-vocab-llama-bpe.gguf.inp", out = dir / "ggml-vocab-llama-bpe.gguf.out";
  if (!fs::exists(inp) || !fs::exists(out)) {
    std::cout << "skipped: " << dir << " is absent\n";
    return 77;
  }
  const Tokenizer& tok = test::llama3_tokenizer();

  // The .inp/.out cases.
  const std::string sep = "\n__ggml_vocab_test__\n";
  const std::string inputs = test::read_file(inp), outputs = test::read_file(out);
  std::vector<std::string> cases;
  for (std::size_t at = 0, next; (next = inputs.find(sep, at)) != std::string::npos; at = next + sep.size()) {
    cases.push_back(inputs.substr(at, next - at));
  }
  std::vector<std::vector<TokenId>> expected;
  for (std::size_t at = 0, next; (next = outputs.find('\n', at)) != std::string::npos && expected.size() < cases.size();
       at = next + 1) {
    std::vector<TokenId> ids;
    const std::string line = outputs.substr(at, next - at);
    for (std::size_t p = 0; p < line.size();) {
      while (p < line.size() && line[p] == ' ') ++p;
      if (p < line.size()) {
        std::size_t used = 0;
        ids.push_back(std::stoi(line.substr(p), &used));
        p += used;
      }
    }
    expected.push_back(ids);
  }
  EXPECT(cases.size() == 46 && expected.size() == cases.size(), "46 cases and 46 expected lines");
  for (std::size_t i = 0; i < cases.size() && i < expected.size(); ++i) {
    EXPECT(tok.encode(cases[i], false, false) == expected[i], "case " << i << " " << detail::quote(cases[i], 60));
  }
  std::cout << cases.size() << " llama.cpp cases checked\n";

  // The GGUF's tokens and merges (from Meta's tokenizer.json).
  const fs::path gguf = dir / "ggml-vocab-llama-bpe.gguf";
  if (fs::exists(gguf)) {
    const GgufStrings g = read_gguf_vocab(gguf);
    EXPECT(g.tokens.size() == 128256, "128256 GGUF tokens, found " << g.tokens.size());
    for (std::size_t id = 0; id < g.tokens.size() && id < 128000; ++id) {
      EXPECT(g.tokens[id] == test::byte_level(tok.token_to_piece(static_cast<TokenId>(id))), "GGUF token " << id);
    }
    const auto ours = test::hf_merges(tok);
    EXPECT(ours.size() == g.merges.size(), "merge count " << ours.size() << " vs " << g.merges.size());
    for (std::size_t i = 0; i < ours.size() && i < g.merges.size(); ++i) {
      if (ours[i].first + " " + ours[i].second != g.merges[i]) {
        EXPECT(false, "merge " << i << ": " << ours[i].first << " " << ours[i].second << " vs " << g.merges[i]);
        break;
      }
    }
    // A tokenizer.json from the GGUF's own lists.
    std::string json = test::hf_tokenizer_json(tok);
    const std::size_t vocab_at = json.find("\"vocab\": {");
    std::string vocab_and_merges = "\"vocab\": {";
    for (std::size_t id = 0; id < 128000; ++id) {
      vocab_and_merges += (id ? ", " : "") + json::quote(g.tokens[id]) + ": " + std::to_string(id);
    }
    vocab_and_merges += "},\n    \"merges\": [";
    for (std::size_t i = 0; i < g.merges.size(); ++i) vocab_and_merges += (i ? ", " : "") + json::quote(g.merges[i]);
    vocab_and_merges += "]\n  }\n}\n";
    json = json.substr(0, vocab_at) + vocab_and_merges;
    // A tokenizer built from the GGUF's lists gives tokenizer.model's ids: our vectors and llama.cpp's cases.
    const auto check = [&](const Tokenizer& t, const char* name) {
      for (const auto& v : test::vectors()) {
        if (v.kind == test::Vector::decode) continue;
        const SpecialSet allowed = v.kind == test::Vector::encode_all_special ? SpecialSet::all() : SpecialSet();
        EXPECT(t.encode(v.text, false, false, allowed) == v.ids, name << ", vector line " << v.line);
      }
      for (std::size_t i = 0; i < cases.size() && i < expected.size(); ++i) {
        EXPECT(t.encode(cases[i], false, false) == expected[i], name << ", case " << i);
      }
    };
    check(Tokenizer::from_hf_json(json, "tokenizer.json (from the GGUF)"), "GGUF-derived tokenizer.json");
    // The GGUF's own tokenizer, as a model file's would be read.
    const Tokenizer from_gguf(gguf);
    EXPECT(from_gguf.special_token_names() == tok.special_token_names(), "GGUF special tokens");
    check(from_gguf, "GGUF tokenizer");
    std::cout << "GGUF vocabulary and merges checked\n";
  }
  if (failures) std::cerr << failures << " failures\n";
  return failures ? 1 : 0;
}
