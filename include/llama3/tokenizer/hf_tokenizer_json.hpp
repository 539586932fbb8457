#pragma once
// Reader of the Hugging Face tokenizer.json that ships with a Llama 3 checkpoint (parsed with simdjson).
//
// Llama 3's tokenizer.json is the tiktoken vocabulary in Hugging Face's dress: model.vocab maps the GPT-2
// "byte-level" spelling of each token (bytes shown as printable code points, a space as "Ġ") to its id, which is
// its tiktoken rank; model.merges lists the pairs in the order of the rank of their result; added_tokens holds
// the 256 special tokens. We read the ids and bytes and encode with tiktoken's rule (merge by the rank of the
// result), which is what Meta's reference does. Anything that would make the file mean something else (another
// split pattern, a normalizer, merges out of rank order, byte fallback) is an Error rather than a silently
// different tokenizer.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

#include "llama3/core/error.hpp"
#include "llama3/core/json_parse.hpp"
#include "llama3/tokenizer/byte_level.hpp"
#include "llama3/tokenizer/split.hpp"
#include "llama3/tokenizer/utf8.hpp"
#include "llama3/tokenizer/vocabulary.hpp"

namespace llama3 {


class HfTokenizerJsonReader {
public:
  HfTokenizerJsonReader(std::string_view data, std::string source) : data_(data), source_(std::move(source)) {}

  TokenizerVocab read() {
    simdjson::dom::element root;
    // The DOM parser dispatches at run time to the best SIMD kernel of this CPU, and validates the whole document.
    if (const auto error = parser_.parse(data_.data(), data_.size()).get(root)) {
      throw Error(source_, std::nullopt, std::string("malformed JSON: ") + simdjson::error_message(error));
    }
    json::check_unique_keys(root, source_);
    try {
      parse(root);
    } catch (const simdjson::simdjson_error& e) {
      fail(std::string("unexpected JSON: ") + e.what());
    }
    return finish();
  }

private:
  using element = simdjson::dom::element;

  [[noreturn]] void fail(const std::string& what) const { throw Error(source_, std::nullopt, where_ + ": " + what); }

  static std::string_view type_name(element e) {
    switch (e.type()) {
      case simdjson::dom::element_type::ARRAY: return "an array";
      case simdjson::dom::element_type::OBJECT: return "an object";
      case simdjson::dom::element_type::INT64:
      case simdjson::dom::element_type::UINT64: return "an integer";
      case simdjson::dom::element_type::DOUBLE: return "a number";
      case simdjson::dom::element_type::STRING: return "a string";
      case simdjson::dom::element_type::BOOL: return "a boolean";
      case simdjson::dom::element_type::NULL_VALUE: return "null";
    }
    return "a value";
  }

  // A member that may be absent (std::nullopt); JSON null counts as absent too.
  using maybe = std::optional<element>;
  static maybe member(simdjson::dom::object o, std::string_view key) {
    element e;
    if (o.at_key(key).get(e) || e.is_null()) return std::nullopt;
    return e;
  }

  simdjson::dom::object object_of(maybe e, std::string_view what = "value") {
    if (!e) fail(detail::cat(what, ": missing, expected an object"));
    if (!e->is_object()) fail(detail::cat(what, ": expected an object, found ", type_name(*e)));
    return e->get_object();
  }
  simdjson::dom::array array_of(maybe e, std::string_view what = "value") {
    if (!e) fail(detail::cat(what, ": missing, expected an array"));
    if (!e->is_array()) fail(detail::cat(what, ": expected an array, found ", type_name(*e)));
    return e->get_array();
  }
  std::string_view string_of(maybe e, std::string_view what) {
    if (!e) fail(detail::cat(what, ": missing, expected a string"));
    if (!e->is_string()) fail(detail::cat(what, ": expected a string, found ", type_name(*e)));
    return e->get_string();
  }
  std::int64_t int_of(maybe e, std::string_view what) {
    if (!e) fail(detail::cat(what, ": missing, expected an integer"));
    if (!e->is_int64()) fail(detail::cat(what, ": expected an integer, found ", type_name(*e)));
    return e->get_int64();
  }
  bool bool_of(maybe e, std::string_view what) {
    if (!e) return false;
    if (!e->is_bool()) fail(detail::cat(what, ": expected true or false, found ", type_name(*e)));
    return e->get_bool();
  }

  void parse(element root_element) {
    where_ = "tokenizer.json";
    const auto root = object_of(root_element, "the document");
    if (const maybe added = member(root, "added_tokens")) {
      where_ = "added_tokens";
      read_added_tokens(*added);
    }
    where_ = "normalizer";
    if (member(root, "normalizer")) fail("Llama 3 has no normalizer; this tokenizer.json sets one");
    where_ = "pre_tokenizer";
    check_pre_tokenizer(member(root, "pre_tokenizer"));
    where_ = "model";
    read_model(object_of(member(root, "model"), "the BPE model"));
  }

  void read_added_tokens(element v) {
    std::size_t index = 0;
    for (element item : array_of(v)) {
      const auto o = object_of(item);
      const std::string what = detail::cat("entry ", index++);
      const std::int64_t id = int_of(member(o, "id"), what + " id");
      const std::string_view content = string_of(member(o, "content"), what + " content");
      if (id < 0 || id > 0x7FFFFFFF) fail(detail::cat(what, ": id ", id, " out of range"));
      if (content.empty()) fail(what + ": empty content");
      added_.emplace_back(static_cast<TokenId>(id), std::string(content));
    }
  }

  // {"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":P},"behavior":"Isolated",
  //  "invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false,...}]}
  void check_pre_tokenizer(maybe v) {
    const auto expected = [&](const std::string& found) {
      fail("expected a Sequence of Split with Llama 3's pattern " + detail::quote(llama3_split_pattern, 200) +
           " and ByteLevel without its own regex; found " + found);
    };
    if (!v) expected("none");
    const auto o = object_of(v);
    if (string_of(member(o, "type"), "type") != "Sequence") expected("type " + detail::quote(string_of(member(o, "type"), "type")));
    const auto steps = array_of(member(o, "pretokenizers"));
    if (steps.size() != 2) expected(detail::cat(steps.size(), " steps"));
    const auto split = object_of(steps.at(0));
    if (string_of(member(split, "type"), "type") != "Split") expected("step 0 is not a Split");
    const std::string_view regex = string_of(member(object_of(member(split, "pattern")), "Regex"), "pattern.Regex");
    if (regex != llama3_split_pattern) expected("the pattern " + detail::quote(regex, 200));
    if (string_of(member(split, "behavior"), "behavior") != "Isolated") expected("a Split that is not Isolated");
    if (bool_of(member(split, "invert"), "invert")) expected("an inverted Split");
    const auto byte_level = object_of(steps.at(1));
    if (string_of(member(byte_level, "type"), "type") != "ByteLevel") expected("step 1 is not ByteLevel");
    for (const char* flag : {"add_prefix_space", "use_regex"}) {
      if (bool_of(member(byte_level, flag), flag)) expected(std::string("ByteLevel with ") + flag);
    }
  }

  void read_model(simdjson::dom::object model) {
    const std::string_view type = string_of(member(model, "type"), "type");
    if (type != "BPE") fail("type " + detail::quote(type) + ": expected \"BPE\"");
    if (bool_of(member(model, "byte_fallback"), "byte_fallback")) {
      fail("byte_fallback is set: that is a SentencePiece-style BPE, not Llama 3's");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const maybe f = member(model, key);
      if (f && !string_of(f, key).empty()) fail(std::string(key) + " is set: Llama 3's BPE has none");
    }
    where_ = "model.vocab";
    std::string bytes;
    for (auto [key, value] : object_of(member(model, "vocab"), "the vocabulary")) {
      if (!value.is_int64()) int_of(value, "the id of " + detail::quote(key));  // fails, naming the token
      const std::int64_t id = value.get_int64();
      if (!detail::byte_level_decode(key, bytes)) {
        fail("token " + detail::quote(key) + " is not in GPT-2's byte-level alphabet");
      }
      if (bytes.empty()) fail("empty token");
      if (id < 0 || id > 0x7FFFFFFF) fail(detail::cat("token ", detail::quote(key), " has id ", id, " out of range"));
      vocab_.emplace_back(static_cast<TokenId>(id), bytes);
    }
    merges_ = member(model, "merges");
  }

  TokenizerVocab finish() {
    where_ = "model.vocab";
    TokenizerVocab out;
    const std::size_t n = vocab_.size();
    if (n == 0) fail("no tokens");
    out.n_mergeable = n;
    out.tokens.resize(n + added_.size());
    std::vector<bool> seen(n + added_.size());
    for (auto& [id, bytes] : vocab_) {
      const auto i = static_cast<std::size_t>(id);
      if (i >= n) fail(detail::cat("id ", id, " out of range: ", n, " tokens must have ids 0..", n - 1));
      if (seen[i]) fail(detail::cat("id ", id, " used twice"));
      seen[i] = true;
      out.tokens[i] = std::move(bytes);
    }
    where_ = "added_tokens";
    for (auto& [id, content] : added_) {
      const auto i = static_cast<std::size_t>(id);
      if (i < n || i >= out.tokens.size()) {
        fail(detail::cat("token ", detail::quote(content), " has id ", id, ": expected ids ", n, "..",
                         out.tokens.size() - 1, " right after the ", n, " BPE tokens"));
      }
      if (seen[i]) fail(detail::cat("id ", id, " used twice"));
      seen[i] = true;
      out.tokens[i] = std::move(content);
    }
    return out;
  }

public:
  // Checks model.merges against the vocabulary: every merge joins two tokens into a token, in the order of the
  // rank of the result (what makes merging by the result's rank, tiktoken's rule, give the same tokens).
  void check_merges(const Vocabulary& vocab) {
    where_ = "model.merges";
    if (!merges_) return;
    detail::MergeOrder order;
    std::size_t i = 0;
    try {
      for (element item : array_of(merges_)) {
        const auto what = [&] { return detail::cat("merge ", i); };  // built only for an error
        std::string_view left, right;
        if (item.is_string()) {
          const std::string_view s = item.get_string();
          const std::size_t space = s.find(' ');
          if (space == std::string_view::npos || s.find(' ', space + 1) != std::string_view::npos) {
            fail(what() + ": expected \"left right\", found " + detail::quote(s));
          }
          left = s.substr(0, space);
          right = s.substr(space + 1);
        } else {
          if (!item.is_array()) array_of(item, what());
          const simdjson::dom::array pair = item.get_array();
          if (pair.size() != 2 || !pair.at(0).is_string() || !pair.at(1).is_string()) {
            fail(what() + ": expected [left, right]");
          }
          left = pair.at(0).get_string();
          right = pair.at(1).get_string();
        }
        order.check(left, right, vocab, [&](const std::string& why) { fail(what() + why); });
        ++i;
      }
    } catch (const simdjson::simdjson_error& e) {
      fail(std::string("unexpected JSON: ") + e.what());
    }
  }

private:
  std::string_view data_;
  std::string source_;
  std::string where_;
  std::vector<std::pair<TokenId, std::string>> vocab_;
  std::vector<std::pair<TokenId, std::string>> added_;
  simdjson::dom::parser parser_;  // owns the document that merges_ points into
  maybe merges_;
};

}  // namespace llama3
