#pragma once
// llama3::Tokenizer: Meta's Llama 3 tokenizer (tiktoken BPE with Llama 3's split pattern and 256 special tokens),
// giving the same ids as Meta's reference tokenizer.py on the official tiktoken core.
//
//   llama3::Tokenizer tok("tokenizer.model");            // or a Hugging Face tokenizer.json
//   auto ids = tok.encode("Hello world", /*bos=*/true, /*eos=*/false);
//   std::string text = tok.decode(ids);
//
// Text is UTF-8. Text to encode that is not valid UTF-8 (including encoded surrogates and overlong forms) is
// rejected with an llama3::Error giving the byte offset of the first bad byte; to encode such text anyway, pass it
// through llama3::utf8::replace_invalid() first, which substitutes U+FFFD as Python's errors="replace" does.
// decode() returns the tokens' bytes, which need not be valid UTF-8 (a token can hold part of a character);
// utf8::replace_invalid(decode(ids)) is Meta's decode, and StreamDecoder hands out complete characters only.
//
// A Tokenizer is immutable after construction: every const method may be called from many threads at once.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llama3/core/error.hpp"
#include "llama3/core/mapped_file.hpp"
#include "llama3/core/parallel.hpp"
#include "llama3/tokenizer/bpe.hpp"
#include "llama3/tokenizer/chunks.hpp"
#include "llama3/tokenizer/gguf_vocab.hpp"
#include "llama3/tokenizer/hf_tokenizer_json.hpp"
#include "llama3/tokenizer/special_tokens.hpp"
#include "llama3/tokenizer/split.hpp"
#include "llama3/tokenizer/tiktoken_file.hpp"
#include "llama3/tokenizer/utf8.hpp"
#include "llama3/tokenizer/vocabulary.hpp"

namespace llama3 {

class Tokenizer {
public:
  static constexpr TokenId pad_id = -1;

  // Loads `path`: a tiktoken BPE file (Meta's tokenizer.model), a Hugging Face tokenizer.json or a llama.cpp
  // GGUF file (model or vocabulary only), recognised by their content. `names` names the special tokens of a
  // tokenizer.model (the other two name their own).
  explicit Tokenizer(const std::filesystem::path& path, SpecialTokenNames names = SpecialTokenNames::llama3) {
    const auto file = std::make_shared<MappedFile>(path);
    const std::string_view data = file->bytes();
    if (data.substr(0, 4) == "GGUF") {
      *this = from_gguf(io::read_gguf(data, file, file->path()), file->path());
      return;
    }
    // JSON starts with an object or an array (a tokenizer.json that is not an object is then told so); a
    // tiktoken file with a base64 token, which neither character is.
    const std::size_t first = data.find_first_not_of(" \t\r\n");
    const bool json = first != std::string_view::npos && (data[first] == '{' || data[first] == '[');
    *this = json ? from_hf_json(data, file->path()) : from_tiktoken(data, file->path(), names);
  }

  // From the bytes of a tokenizer.model; `source` names it in errors.
  static Tokenizer from_tiktoken(std::string_view data, const std::string& source = "tokenizer.model",
                                 SpecialTokenNames names = SpecialTokenNames::llama3) {
    TokenizerVocab v;
    v.tokens = read_tiktoken_bpe(data, source);
    v.n_mergeable = v.tokens.size();
    for (auto& name : llama3::special_token_names(names)) v.tokens.push_back(std::move(name));
    return Tokenizer(std::move(v), source);
  }

  // From the bytes of a Hugging Face tokenizer.json; `source` names it in errors.
  static Tokenizer from_hf_json(std::string_view data, const std::string& source = "tokenizer.json") {
    HfTokenizerJsonReader reader(data, source);
    Tokenizer t(reader.read(), source);
    reader.check_merges(t.vocab_);
    return t;
  }

  // From the tokenizer.ggml.* metadata of a GGUF file; `source` names it in errors.
  static Tokenizer from_gguf(const io::GgufFile& g, const std::string& source = "model.gguf") {
    Tokenizer t(read_gguf_vocab(g, source), source);
    check_gguf_merges(g, t.vocab_, source);
    return t;
  }

  // From tokens by id: the first n_mergeable are the BPE tokens (rank == id), the rest special tokens.
  Tokenizer(TokenizerVocab v, const std::string& source) : vocab_(v.tokens, v.n_mergeable, source) {
    for (int b = 0; b < 256; ++b) {
      const char c = static_cast<char>(b);
      if (vocab_.rank(&c, 1) < 0) {
        throw Error(source, std::nullopt,
                    detail::cat("byte 0x", "0123456789abcdef"[b >> 4], "0123456789abcdef"[b & 15],
                                " is not a token: byte-level BPE needs all 256 single bytes"));
      }
    }
    for (std::size_t i = v.n_mergeable; i < v.tokens.size(); ++i) {
      const std::string& name = v.tokens[i];
      if (name.empty()) throw Error(source, std::nullopt, detail::cat("special token ", i, " is empty"));
      specials_.push_back(Special{name, static_cast<TokenId>(i)});
    }
    by_name_.resize(specials_.size());
    for (std::size_t i = 0; i < specials_.size(); ++i) by_name_[i] = i;
    std::sort(by_name_.begin(), by_name_.end(),
              [&](std::size_t a, std::size_t b) { return specials_[a].name < specials_[b].name; });
    for (std::size_t i = 1; i < by_name_.size(); ++i) {
      const Special& a = specials_[by_name_[i - 1]];
      const Special& b = specials_[by_name_[i]];
      if (a.name == b.name) {
        throw Error(source, std::nullopt,
                    detail::cat("special token ", detail::quote(a.name), " twice: ids ", a.id, " and ", b.id));
      }
    }
    build_special_matcher();

    const auto require = [&](std::string_view name) {
      const auto id = special_id(name);
      if (!id) throw Error(source, std::nullopt, "no special token " + std::string(name) + ": not a Llama 3 tokenizer");
      return *id;
    };
    bos_id_ = require("<|begin_of_text|>");
    eos_id_ = require("<|end_of_text|>");
    for (const char* name : {"<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"}) {
      if (const auto id = special_id(name)) stop_tokens_.push_back(*id);
    }
  }

  // ---- Meta's Tokenizer attributes -------------------------------------------------------------------------
  int n_words() const noexcept { return static_cast<int>(vocab_.size()); }
  std::size_t num_base_tokens() const noexcept { return vocab_.n_mergeable(); }
  TokenId bos_id() const noexcept { return bos_id_; }
  TokenId eos_id() const noexcept { return eos_id_; }
  // <|end_of_text|>, <|eom_id|> (when the names are Llama 3.1's) and <|eot_id|>: where generation stops.
  const std::vector<TokenId>& stop_tokens() const noexcept { return stop_tokens_; }

  // The id of a special token by name (Meta's tokenizer.special_tokens[name]).
  std::optional<TokenId> special_id(std::string_view name) const noexcept {
    const auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                     [&](std::size_t i, std::string_view n) { return specials_[i].name < n; });
    if (it == by_name_.end() || specials_[*it].name != name) return std::nullopt;
    return specials_[*it].id;
  }
  TokenId special_token(std::string_view name) const {
    if (const auto id = special_id(name)) return *id;
    throw Error("no special token " + detail::quote(name, 80) + " in this tokenizer");
  }
  bool is_special(TokenId id) const noexcept {
    return id >= static_cast<TokenId>(vocab_.n_mergeable()) && id < n_words();
  }
  // Names of the special tokens in id order (the first has id num_base_tokens()).
  std::vector<std::string> special_token_names() const {
    std::vector<std::string> out;
    for (const auto& s : specials_) out.push_back(s.name);
    return out;
  }

  // ---- encode ------------------------------------------------------------------------------------------------
  // Meta's Tokenizer.encode: BOS/EOS when asked; the text of a special token becomes that token only when it is
  // in allowed_special (SpecialSet::all() allows every one), and is an Error when it is in disallowed_special
  // (SpecialSet::all() there means every special token not allowed); otherwise it is encoded as plain text.
  // Unlike tiktoken, which ignores them, names in either set that are not special tokens are an Error (a typo
  // would otherwise silently encode the token as text).
  std::vector<TokenId> encode(std::string_view s, bool bos, bool eos, const SpecialSet& allowed_special = {},
                              const SpecialSet& disallowed_special = {}) const {
    return encode_with(FastSplitter{}, s, bos, eos, allowed_special, disallowed_special);
  }

  // The same with another splitter (Pcre2Splitter, the reference), for tests and comparisons.
  template <class Splitter>
  std::vector<TokenId> encode_with(const Splitter& split, std::string_view s, bool bos, bool eos,
                                   const SpecialSet& allowed_special = {},
                                   const SpecialSet& disallowed_special = {}) const {
    std::vector<char> allowed, disallowed;
    resolve(allowed_special, disallowed_special, allowed, disallowed);
    std::vector<TokenId> out;
    out.reserve(s.size() / 4 + 2);
    if (bos) out.push_back(bos_id_);
    encode_text(split, s, allowed, disallowed, out);
    if (eos) out.push_back(eos_id_);
    return out;
  }

  // encode() of every text, on `threads` threads (0: all hardware threads). Results are in input order; if texts
  // fail, the Error of the first failing text is thrown.
  template <class Texts>
  std::vector<std::vector<TokenId>> encode_batch(const Texts& texts, bool bos, bool eos,
                                                 const SpecialSet& allowed_special = {},
                                                 const SpecialSet& disallowed_special = {},
                                                 unsigned threads = 0) const {
    std::vector<char> allowed, disallowed;
    resolve(allowed_special, disallowed_special, allowed, disallowed);
    std::vector<std::string_view> views(std::begin(texts), std::end(texts));
    std::vector<std::vector<TokenId>> out(views.size());
    parallel_for(views.size(), threads, [&](std::size_t i) {
      auto& ids = out[i];
      ids.reserve(views[i].size() / 4 + 2);
      if (bos) ids.push_back(bos_id_);
      encode_text(FastSplitter{}, views[i], allowed, disallowed, ids);
      if (eos) ids.push_back(eos_id_);
    });
    return out;
  }

  // ---- decode ------------------------------------------------------------------------------------------------
  // The bytes of the tokens, concatenated (special tokens give their names). An id outside [0, n_words()) is an
  // Error naming it and its position.
  std::string decode(std::span<const TokenId> ids) const {
    std::size_t total = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) total += token_to_piece_checked(ids[i], i).size();
    std::string out;
    out.reserve(total);
    for (const TokenId id : ids) out += vocab_.bytes(id);
    return out;
  }
  std::string decode(std::initializer_list<TokenId> ids) const { return decode(std::span(ids.begin(), ids.size())); }

  // The bytes of one token (possibly part of a UTF-8 character).
  std::string_view token_to_piece(TokenId id) const { return token_to_piece_checked(id, std::nullopt); }

  const Vocabulary& vocabulary() const noexcept { return vocab_; }

private:
  struct Special {
    std::string name;
    TokenId id;
  };
  struct SpecialMatch {
    std::size_t pos;
    std::size_t index;  // into specials_
  };

  std::string_view token_to_piece_checked(TokenId id, std::optional<std::size_t> position) const {
    if (id < 0 || id >= n_words()) {
      throw Error(detail::cat("token id ", id, position ? detail::cat(" at position ", *position) : std::string(),
                              " is out of range: this tokenizer has ids 0..", n_words() - 1));
    }
    return vocab_.bytes(id);
  }

  void resolve(const SpecialSet& allowed_set, const SpecialSet& disallowed_set, std::vector<char>& allowed,
               std::vector<char>& disallowed) const {
    const auto fill = [&](const SpecialSet& set, std::vector<char>& mask, const char* what) {
      mask.assign(specials_.size(), set.is_all() ? 1 : 0);
      for (const auto& name : set.names()) {
        const auto id = special_id(name);
        if (!id) throw Error(detail::cat(what, ": ", detail::quote(name, 80), " is not a special token"));
        mask[static_cast<std::size_t>(*id) - vocab_.n_mergeable()] = 1;
      }
    };
    fill(allowed_set, allowed, "allowed_special");
    fill(disallowed_set, disallowed, "disallowed_special");
    if (disallowed_set.is_all()) {  // tiktoken: "all" means every special token that is not allowed
      for (std::size_t i = 0; i < allowed.size(); ++i) disallowed[i] = !allowed[i];
    }
  }

  template <class Splitter>
  void encode_text(const Splitter& split, std::string_view s, const std::vector<char>& allowed,
                   const std::vector<char>& disallowed, std::vector<TokenId>& out) const {
    if (const auto bad = utf8::find_invalid(s)) {
      throw Error(std::string(), *bad,
                  "invalid UTF-8 in the text to encode (" +
                      detail::quote(s.substr(*bad, 4)) + "); utf8::replace_invalid() substitutes U+FFFD");
    }
    const bool any_allowed = std::find(allowed.begin(), allowed.end(), 1) != allowed.end();
    const bool any_disallowed = std::find(disallowed.begin(), disallowed.end(), 1) != disallowed.end();
    for_each_meta_substring(s, [&](std::size_t offset, std::string_view sub) {
      if (any_disallowed) {
        if (const auto m = find_special(sub, 0, disallowed)) {
          throw Error(std::string(), offset + m->pos,
                      "the text contains the special token " + specials_[m->index].name +
                          ", which is disallowed; allow it to encode it as a special token, or leave it out of "
                          "disallowed_special to encode it as plain text");
        }
      }
      std::size_t start = 0;
      if (any_allowed) {
        while (const auto m = find_special(sub, start, allowed)) {
          encode_ordinary(split, sub.substr(start, m->pos - start), out);
          out.push_back(specials_[m->index].id);
          start = m->pos + specials_[m->index].name.size();
        }
      }
      encode_ordinary(split, sub.substr(start), out);
    });
  }

  template <class Splitter>
  void encode_ordinary(const Splitter& split, std::string_view text, std::vector<TokenId>& out) const {
    if (text.empty()) return;
    split(text, [&](std::string_view piece) {
      const TokenId r = vocab_.rank(piece.data(), piece.size());
      if (r >= 0) {
        out.push_back(r);
      } else {
        byte_pair_encode(vocab_, piece, [&](TokenId t) { out.push_back(t); });
      }
    });
  }

  // Special tokens that start with each byte, longest first.
  void build_special_matcher() {
    first_byte_.fill(0);
    by_first_byte_.assign(256, {});
    for (std::size_t i = 0; i < specials_.size(); ++i) {
      const auto b = static_cast<unsigned char>(specials_[i].name[0]);
      first_byte_[b] = 1;
      by_first_byte_[b].push_back(i);
    }
    int distinct = 0;
    for (int b = 0; b < 256; ++b) {
      if (first_byte_[b]) {
        ++distinct;
        single_first_byte_ = b;
      }
      std::sort(by_first_byte_[b].begin(), by_first_byte_[b].end(), [&](std::size_t x, std::size_t y) {
        return specials_[x].name.size() > specials_[y].name.size();
      });
    }
    if (distinct != 1) single_first_byte_ = -1;
  }

  // The leftmost special token in `mask` that occurs in text at or after `from` (the longest at that position).
  std::optional<SpecialMatch> find_special(std::string_view text, std::size_t from,
                                           const std::vector<char>& mask) const {
    for (std::size_t i = from; i < text.size(); ++i) {
      if (single_first_byte_ >= 0) {
        const void* hit = std::memchr(text.data() + i, single_first_byte_, text.size() - i);
        if (!hit) return std::nullopt;
        i = static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
      } else if (!first_byte_[static_cast<unsigned char>(text[i])]) {
        continue;
      }
      for (const std::size_t k : by_first_byte_[static_cast<unsigned char>(text[i])]) {
        if (mask[k] && text.substr(i).starts_with(specials_[k].name)) return SpecialMatch{i, k};
      }
    }
    return std::nullopt;
  }

  Vocabulary vocab_;
  std::vector<Special> specials_;      // in id order
  std::vector<std::size_t> by_name_;   // indices into specials_, sorted by name
  std::array<char, 256> first_byte_{};
  std::vector<std::vector<std::size_t>> by_first_byte_;
  int single_first_byte_ = -1;
  TokenId bos_id_ = -1, eos_id_ = -1;
  std::vector<TokenId> stop_tokens_;
};

// Hands out the text of tokens as they arrive, one complete UTF-8 character at a time: a character split across
// tokens is held back until its last byte arrives, and bytes that can never form a character become U+FFFD.
// push(t1) + push(t2) + ... + finish() == utf8::replace_invalid(tokenizer.decode({t1, t2, ...})).
class StreamDecoder {
public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  std::string push(TokenId id) { return buffer_.push(tokenizer_->token_to_piece(id)); }
  std::string finish() { return buffer_.finish(); }
  void reset() noexcept { buffer_.reset(); }
  bool has_pending() const noexcept { return !buffer_.pending().empty(); }
  std::size_t pending_bytes() const noexcept { return buffer_.pending().size(); }

private:
  const Tokenizer* tokenizer_;
  utf8::StreamBuffer buffer_;
};

}  // namespace llama3
