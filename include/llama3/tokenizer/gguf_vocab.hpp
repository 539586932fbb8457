#pragma once
// The tokenizer that a llama.cpp GGUF file carries in its metadata: tokenizer.ggml.model "gpt2" (byte-level BPE),
// tokenizer.ggml.pre "llama-bpe" (Llama 3's split pattern), tokenizer.ggml.tokens (every token by id, in GPT-2's
// byte-level spelling, the special tokens by name), tokenizer.ggml.token_type (1 = normal, 3 = control, 4 = user
// defined, ...) and tokenizer.ggml.merges ("left right", by the rank of the result). It is Meta's tiktoken
// vocabulary in another dress, so we read the ids and bytes and encode by rank, as for tokenizer.json; anything
// that would make the file mean another tokenizer (SentencePiece, another split, merges out of rank order) is an
// Error naming the key and the entry.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/core/error.hpp"
#include "llama3/io/gguf.hpp"
#include "llama3/tokenizer/byte_level.hpp"
#include "llama3/tokenizer/vocabulary.hpp"

namespace llama3 {

namespace gguf_vocab_detail {

[[noreturn]] inline void fail(const std::string& source, const std::string& what) {
  throw Error(source, std::nullopt, what);
}

inline const io::GgufValue* string_array(const io::GgufFile& g, std::string_view key, const std::string& source,
                                         bool required) {
  const io::GgufValue* v = g.find(key);
  if (!v) {
    if (required) fail(source, std::string(key) + " is missing");
    return nullptr;
  }
  if (v->type != io::GgufType::array || v->item_type != io::GgufType::string) {
    fail(source, std::string(key) + ": expected an array of strings");
  }
  return v;
}

inline bool is_llama3_pre(std::string_view pre) {
  // The names llama.cpp gives Llama 3's pre-tokenizer (src/llama-vocab.cpp).
  return pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
}

}  // namespace gguf_vocab_detail

// Whether the GGUF carries a tokenizer at all (model files may be converted without one).
inline bool gguf_has_tokenizer(const io::GgufFile& g) { return g.find("tokenizer.ggml.tokens") != nullptr; }

// The tokens by id: those of type normal first (their rank is their id), then the special tokens by name.
inline TokenizerVocab read_gguf_vocab(const io::GgufFile& g, const std::string& source) {
  using namespace gguf_vocab_detail;
  const io::GgufValue* model = g.find("tokenizer.ggml.model");
  if (!model) {
    fail(source, "no tokenizer in this GGUF (tokenizer.ggml.model is missing); pass the tokenizer.model or "
                 "tokenizer.json of the model");
  }
  if (model->type != io::GgufType::string) fail(source, "tokenizer.ggml.model: expected a string");
  if (model->s != "gpt2") {
    fail(source, "tokenizer.ggml.model is " + detail::quote(model->s) +
                     ": Llama 3 uses byte-level BPE (\"gpt2\")" +
                     (model->s == "llama" ? "; \"llama\" is SentencePiece, Llama 2's tokenizer" : ""));
  }
  if (const io::GgufValue* pre = g.find("tokenizer.ggml.pre")) {
    if (pre->type != io::GgufType::string) fail(source, "tokenizer.ggml.pre: expected a string");
    if (!is_llama3_pre(pre->s)) {
      fail(source, "tokenizer.ggml.pre is " + detail::quote(pre->s) +
                       ": only Llama 3's split (\"llama-bpe\") is supported");
    }
  }
  const std::vector<std::string_view> tokens = string_array(g, "tokenizer.ggml.tokens", source, true)->strings();
  const std::size_t n = tokens.size();
  if (n == 0) fail(source, "tokenizer.ggml.tokens is empty");

  const io::GgufValue* type_array = g.find("tokenizer.ggml.token_type");
  if (type_array && (type_array->type != io::GgufType::array || type_array->count != n ||
                     !io::GgufValue::is_integer_type(type_array->item_type))) {
    fail(source, detail::cat("tokenizer.ggml.token_type: expected ", n, " integers, one per token"));
  }
  const std::vector<std::int64_t> types = type_array ? type_array->integers() : std::vector<std::int64_t>{};
  constexpr std::int64_t normal = 1;
  const auto is_special = [&](std::size_t i) {
    if (type_array) return types[i] != normal;
    // Without types, the special tokens are the trailing run spelled <|...|>.
    const std::string_view s = tokens[i];
    return s.size() > 4 && s.substr(0, 2) == "<|" && s.substr(s.size() - 2) == "|>";
  };
  std::size_t n_mergeable = n;
  if (type_array) {
    while (n_mergeable > 0 && is_special(n_mergeable - 1)) --n_mergeable;
    for (std::size_t i = 0; i < n_mergeable; ++i) {
      if (is_special(i)) {
        fail(source, detail::cat("tokenizer.ggml.token_type[", i, "] is ", types[i], " (", detail::quote(tokens[i]),
                                 ") among the normal tokens: Llama 3 puts its "
                                 "special tokens after all the BPE tokens"));
      }
    }
  } else {
    while (n_mergeable > 0 && is_special(n_mergeable - 1)) --n_mergeable;
  }

  TokenizerVocab out;
  out.n_mergeable = n_mergeable;
  out.tokens.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string_view s = tokens[i];
    if (s.empty()) fail(source, detail::cat("tokenizer.ggml.tokens[", i, "] is empty"));
    if (i >= n_mergeable) {
      out.tokens[i] = std::string(s);
    } else if (!detail::byte_level_decode(s, out.tokens[i])) {
      fail(source, detail::cat("tokenizer.ggml.tokens[", i, "] ", detail::quote(s),
                               " is not in GPT-2's byte-level alphabet"));
    }
  }
  return out;
}

// Checks tokenizer.ggml.merges (when present) against the vocabulary read from the same file.
inline void check_gguf_merges(const io::GgufFile& g, const Vocabulary& vocab, const std::string& source) {
  using namespace gguf_vocab_detail;
  const io::GgufValue* merges = string_array(g, "tokenizer.ggml.merges", source, false);
  if (!merges) return;
  detail::MergeOrder order;
  const std::vector<std::string_view> items = merges->strings();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string_view s = items[i];
    const auto what = [&] { return detail::cat("tokenizer.ggml.merges[", i, "]"); };
    const std::size_t space = s.find(' ');
    if (space == std::string_view::npos || s.find(' ', space + 1) != std::string_view::npos) {
      fail(source, what() + ": expected \"left right\", found " + detail::quote(s));
    }
    order.check(s.substr(0, space), s.substr(space + 1), vocab,
                [&](const std::string& why) { fail(source, what() + why); });
  }
}

}  // namespace llama3
