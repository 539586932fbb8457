#pragma once
// GPT-2's "byte-level" spelling of tokens, used by Hugging Face's tokenizer.json and GGUF's tokenizer.ggml.tokens:
// each byte is shown as a printable code point (a space as "Ġ"). Also the check that a list of merges is in the
// order of the rank of the token each makes, which is what lets us encode with tiktoken's rule (merge by the rank
// of the result) and get the ids that a merge-list BPE gives.
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/core/error.hpp"
#include "llama3/tokenizer/vocabulary.hpp"

namespace llama3 {

// What a tokenizer loader produces: every token's bytes by id (the mergeable tokens first, their rank being their
// id; the special tokens after them, their bytes being their names).
struct TokenizerVocab {
  std::vector<std::string> tokens;
  std::size_t n_mergeable = 0;
};

namespace detail {

// GPT-2's bytes_to_unicode(), inverted: code point (< 324) -> byte, or -1.
inline const std::array<int, 324>& byte_level_decoder() {
  static const std::array<int, 324> table = [] {
    std::array<int, 324> t{};
    t.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      if (printable) {
        t[b] = b;
      } else {
        t[256 + n++] = b;
      }
    }
    return t;
  }();
  return table;
}

// Byte-level spelling -> bytes; false if a character is not in the byte-level alphabet. Every character of that
// alphabet is below U+0144, so one or two UTF-8 bytes.
inline bool byte_level_decode(std::string_view text, std::string& out) {
  const auto& table = byte_level_decoder();
  out.resize(text.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    int cp;
    if (c < 0x80) {
      cp = c;
    } else if (c >= 0xC2 && c <= 0xC5 && i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(text[++i]) & 0x3F);
    } else {
      return false;
    }
    if (cp >= static_cast<int>(table.size()) || table[static_cast<std::size_t>(cp)] < 0) return false;
    out[n++] = static_cast<char>(table[static_cast<std::size_t>(cp)]);
  }
  out.resize(n);
  return true;
}

// Checks merges one at a time: each joins two tokens into a token, in the rank order of the results.
class MergeOrder {
public:
  // `fail(why)` is called (and must throw) with the reason, starting with ": " or " ".
  template <class Fail>
  void check(std::string_view left, std::string_view right, const Vocabulary& vocab, Fail&& fail) {
    if (!byte_level_decode(left, l_) || !byte_level_decode(right, r_) || l_.empty() || r_.empty()) {
      fail(": " + quote(left) + " " + quote(right) + " is not in GPT-2's byte-level alphabet");
    }
    const TokenId lr = vocab.rank(l_), rr = vocab.rank(r_);
    l_ += r_;
    const TokenId merged = vocab.rank(l_);
    if (lr < 0 || rr < 0 || merged < 0) {
      fail(cat(" (", quote(left), " + ", quote(right), ") does not join two tokens into a token"));
    }
    if (merged < previous_) {
      fail(cat(" makes token ", merged, " after a merge made token ", previous_,
               ": merges must be in rank order (a tiktoken-style vocabulary)"));
    }
    previous_ = merged;
  }

private:
  TokenId previous_ = -1;
  std::string l_, r_;
};

}  // namespace detail

}  // namespace llama3
