#pragma once
// Shared helpers for the tests: the fixture files, the tokenizer loaded once, and random text.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <simdjson.h>

#include "llama3/tokenizer.hpp"
#include "llama3/tokenizer/split_pcre2.hpp"

namespace llama3::test {

inline std::filesystem::path data_path(const std::string& name) {
  return std::filesystem::path(LLAMA3_TEST_DATA_DIR) / name;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Meta's tokenizer.model with Llama 3's special-token names, loaded once for all tests.
inline const Tokenizer& llama3_tokenizer() {
  static const Tokenizer t(data_path("tokenizer.model"));
  return t;
}

// One line of tests/data/vectors.jsonl (see ../shared/fixtures/README.md).
struct Vector {
  enum Kind { encode, encode_all_special, decode } kind;
  std::size_t line;
  std::string text;            // encode: the input; decode: the expected text when valid UTF-8
  std::vector<TokenId> ids;    // encode: the expected ids; decode: the input
  std::string bytes;           // decode: the expected bytes
};

inline std::string from_hex(std::string_view hex) {
  std::string out;
  const auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
  return out;
}

// A real Llama 3 tokenizer.json: $LLAMA3_HF_TOKENIZER_JSON, else where scripts/setup.sh puts it (may not exist).
inline std::filesystem::path hf_tokenizer_json_path() {
  if (const char* p = std::getenv("LLAMA3_HF_TOKENIZER_JSON")) return p;
  return LLAMA3_HF_TOKENIZER_JSON;
}

// The split pattern through PCRE2: the reference the fast splitter is tested against.
inline const Pcre2Splitter& pcre2_reference() {
  static const Pcre2Splitter s;
  return s;
}

inline const std::vector<Vector>& vectors() {
  static const std::vector<Vector> all = [] {
    std::vector<Vector> out;
    std::ifstream in(data_path("vectors.jsonl"), std::ios::binary);
    std::string line;
    simdjson::dom::parser parser;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty()) continue;
      simdjson::dom::object o = parser.parse(line).get_object();
      Vector v{Vector::encode, n, {}, {}, {}};
      simdjson::dom::element e;
      if (!o.at_key("decode").get(e)) {
        v.kind = Vector::decode;
        for (auto id : e.get_array()) v.ids.push_back(static_cast<TokenId>(int64_t(id)));
        v.bytes = from_hex(std::string_view(o["bytes_hex"]));
        if (!o.at_key("text").get(e)) v.text = std::string(std::string_view(e));
      } else {
        v.text = std::string(std::string_view(o["text"]));
        for (auto id : o["ids"].get_array()) v.ids.push_back(static_cast<TokenId>(int64_t(id)));
        if (!o.at_key("allowed_special").get(e)) v.kind = Vector::encode_all_special;
      }
      out.push_back(std::move(v));
    }
    return out;
  }();
  return all;
}

// Random text that exercises every alternative of the split pattern: letters of several scripts, numbers of
// several kinds, every kind of whitespace, CR/LF, apostrophes and contraction letters (and U+017F, which folds to
// 's'), punctuation, symbols, emoji, combining marks, and text that looks like special tokens.
inline std::string random_text(std::mt19937& rng, std::size_t max_chars) {
  static const std::vector<std::string> alphabet = {
      "a", "b", "e", "s", "t", "r", "v", "m", "l", "d", "S", "T", "R", "E", "L", "M", "D", "V", "x", "Z",
      "\xC5\xBF",                  // U+017F LATIN SMALL LETTER LONG S
      "\xE2\x84\xAA",              // U+212A KELVIN SIGN (a letter)
      "\xC3\xA9", "\xC3\x9F",      // é ß
      "\xD0\x96", "\xE4\xB8\xAD",  // Ж 中
      "\xE0\xA4\xB9", "\xE0\xA5\x8D",  // ह and the virama (a mark, not a letter)
      "\xCC\x81",                  // U+0301 combining acute
      "0", "1", "7", "\xD9\xA3", "\xE2\x85\xAB", "\xC2\xBD",  // digits, ٣ (Nd), Ⅻ (Nl), ½ (No)
      " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\x0B", "\x0C",
      "\xC2\x85", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8", "\xE2\x80\x8B",  // NEL, NBSP, ideographic, LS, ZWSP
      "\xE1\xA0\x8E",                                                           // U+180E: not a space
      "\x1C", "\x1F",              // whitespace to Python only
      "'", "'", "\xE2\x80\x99", ".", ",", "!", "?", "-", "(", ")", "\"", "#", "$", "\xE2\x82\xAC",
      "\xF0\x9F\x98\x80", "\xF0\x9F\xA6\x99",  // emoji
      "<|", "|>", "<|eot_id|>", "<|begin_of_text|>", "<|eom_id|>", std::string(1, '\0')};
  std::uniform_int_distribution<std::size_t> len(0, max_chars), pick(0, alphabet.size() - 1);
  std::string out;
  const std::size_t n = len(rng);
  for (std::size_t i = 0; i < n; ++i) out += alphabet[pick(rng)];
  return out;
}

}  // namespace llama3::test
