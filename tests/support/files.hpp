#pragma once
// Small tokenizer files written by the tests: a valid tiktoken file of the 256 bytes plus a few merges, and a
// Hugging Face tokenizer.json converted from any tokenizer the way Hugging Face's TikTokenConverter does it.
#include <algorithm>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "llama3/core/json.hpp"
#include "llama3/tokenizer.hpp"

namespace llama3::test {

inline std::string base64(std::string_view in) {
  static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = (unsigned char)in[i] << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

// The tokens of a tiny valid vocabulary: every byte, then a few merges.
inline std::vector<std::string> tiny_tokens() {
  std::vector<std::string> t;
  for (int b = 0; b < 256; ++b) t.emplace_back(1, static_cast<char>(b));
  for (const char* m : {"he", "ll", "hell", "hello", " w", "or", " wor", " world"}) t.emplace_back(m);
  return t;
}

inline std::string tiktoken_file(const std::vector<std::string>& tokens) {
  std::string out;
  for (std::size_t r = 0; r < tokens.size(); ++r) out += base64(tokens[r]) + " " + std::to_string(r) + "\n";
  return out;
}

// GPT-2's bytes_to_unicode().
inline std::string byte_level(std::string_view bytes) {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      utf8::append(t[static_cast<std::size_t>(b)], static_cast<char32_t>(printable ? b : 256 + n++));
    }
    return t;
  }();
  std::string out;
  for (char c : bytes) out += table[static_cast<unsigned char>(c)];
  return out;
}

// Hugging Face's merges for a tiktoken vocabulary (transformers' TikTokenConverter): for each token, every split
// into two tokens, ordered by (left rank, right rank); all of them ordered by the rank of the token they make.
inline std::vector<std::pair<std::string, std::string>> hf_merges(const Tokenizer& t) {
  const Vocabulary& v = t.vocabulary();
  std::vector<std::tuple<TokenId, TokenId, TokenId>> merges;  // (result, left, right)
  for (std::size_t id = 0; id < v.n_mergeable(); ++id) {
    const std::string_view token = v.bytes(static_cast<TokenId>(id));
    for (std::size_t i = 1; i < token.size(); ++i) {
      const TokenId l = v.rank(token.substr(0, i)), r = v.rank(token.substr(i));
      if (l >= 0 && r >= 0) merges.emplace_back(static_cast<TokenId>(id), l, r);
    }
  }
  std::sort(merges.begin(), merges.end());
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [m, l, r] : merges) out.emplace_back(byte_level(v.bytes(l)), byte_level(v.bytes(r)));
  return out;
}

// A tokenizer.json for `t`, laid out as the one Meta publishes with Llama 3 on Hugging Face.
// merges_as_arrays: newer versions of the tokenizers library write merges as ["left", "right"].
inline std::string hf_tokenizer_json(const Tokenizer& t, bool merges_as_arrays = false) {
  const Vocabulary& v = t.vocabulary();
  std::string out = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [";
  const auto names = t.special_token_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += i ? ",\n    " : "\n    ";
    out += "{\"id\": " + std::to_string(t.num_base_tokens() + i) + ", \"content\": " + json::quote(names[i]) +
           ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}";
  }
  out += "\n  ],\n  \"normalizer\": null,\n";
  out += "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
         "{\"Regex\": " + json::quote(llama3_split_pattern) + "}, \"behavior\": \"Isolated\", \"invert\": false}, "
         "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},\n";
  out += "  \"post_processor\": null,\n  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
         "\"trim_offsets\": true, \"use_regex\": true},\n";
  out += "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": "
         "null, \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": true,"
         "\n    \"vocab\": {";
  for (std::size_t id = 0; id < v.n_mergeable(); ++id) {
    out += id ? ", " : "";
    out += json::quote(byte_level(v.bytes(static_cast<TokenId>(id)))) + ": " + std::to_string(id);
  }
  out += "},\n    \"merges\": [";
  bool first = true;
  for (const auto& [l, r] : hf_merges(t)) {
    out += first ? "" : ", ";
    first = false;
    out += merges_as_arrays ? "[" + json::quote(l) + ", " + json::quote(r) + "]" : json::quote(l + " " + r);
  }
  out += "]\n  }\n}\n";
  return out;
}

}  // namespace llama3::test
