#pragma once
// Llama 3's pre-tokenizer: the text is cut into pieces by the pattern below before byte-level BPE runs on each
// piece. This file is the fast hand-written scanner; split_pcre2.hpp is the PCRE2 reference it is tested against.
//
// How each alternative of the pattern maps onto the scanner (leftmost-first alternation, as both the official
// tiktoken core and PCRE2 match it):
//   1 (?i:'s|'t|'re|'ve|'m|'ll|'d)   an apostrophe and a contraction; (?i) makes 's' match S and U+017F too
//   2 [^\r\n\p{L}\p{N}]?\p{L}+       letters, optionally after one character that is not CR, LF, letter, number
//   3 \p{N}{1,3}                     one to three numbers
//   4  ?[^\s\p{L}\p{N}]+[\r\n]*      "other" characters, optionally after one space, then any CR/LF
//   5 \s*[\r\n]+                     whitespace up to and including its last CR/LF
//   6 \s+(?!\S)                      whitespace, leaving its last character to prefix the next piece
//   7 \s+                            a single whitespace character before a non-space (nothing else matched)
#include <array>
#include <cstdint>
#include <string_view>

#include "llama3/tokenizer/unicode.hpp"
#include "llama3/tokenizer/utf8.hpp"

namespace llama3 {

inline constexpr std::string_view llama3_split_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace detail {

using unicode::CharClass;

inline constexpr auto ascii_class = [] {
  std::array<CharClass, 128> t{};
  for (int c = 0; c < 128; ++c) t[c] = unicode::char_class(static_cast<char32_t>(c));
  return t;
}();

struct CodePoint {
  char32_t cp;
  int len;
  CharClass cls;
};

// p points into valid UTF-8 with at least one byte left.
inline CodePoint code_point_at(const unsigned char* p) noexcept {
  if (*p < 0x80) return {*p, 1, ascii_class[*p]};
  int len;
  const char32_t cp = utf8::decode_valid(p, &len);
  return {cp, len, unicode::char_class(cp)};
}

// Skips characters of one class (ASCII bytes without decoding).
inline const unsigned char* skip_class(const unsigned char* p, const unsigned char* end, CharClass cls) noexcept {
  while (p < end) {
    if (*p < 0x80) {
      if (ascii_class[*p] != cls) break;
      ++p;
    } else {
      const CodePoint c = code_point_at(p);
      if (c.cls != cls) break;
      p += c.len;
    }
  }
  return p;
}

// Length after the apostrophe of a contraction of alternative 1, or 0.
inline int contraction_length(const unsigned char* p, const unsigned char* end) noexcept {
  if (p >= end) return 0;
  const auto lower = [](unsigned char c) { return static_cast<unsigned char>(c | 0x20); };
  const unsigned char c = *p;
  if (c < 0x80) {
    switch (lower(c)) {
      case 's':
      case 't':
      case 'm':
      case 'd':
        return 1;
      case 'r':
      case 'v':
        return (p + 1 < end && lower(p[1]) == 'e') ? 2 : 0;
      case 'l':
        return (p + 1 < end && lower(p[1]) == 'l') ? 2 : 0;
      default:
        return 0;
    }
  }
  // U+017F LATIN SMALL LETTER LONG S folds to 's' under Unicode simple case folding.
  return (c == 0xC5 && p + 1 < end && p[1] == 0xBF) ? 2 : 0;
}

}  // namespace detail

// Calls on_piece(std::string_view) for each piece of `text`, which must be valid UTF-8, in order. The pieces
// concatenate to `text`.
template <class OnPiece>
void split_llama3(std::string_view text, OnPiece&& on_piece) {
  using detail::CharClass;
  using detail::code_point_at;
  using detail::skip_class;
  const auto* const begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = begin + text.size();
  const auto* p = begin;
  const auto emit = [&](const unsigned char* from, const unsigned char* to) {
    on_piece(std::string_view(reinterpret_cast<const char*>(from), static_cast<std::size_t>(to - from)));
  };

  while (p < end) {
    const unsigned char* const start = p;
    const detail::CodePoint c = code_point_at(p);
    const unsigned char* const after = p + c.len;

    // 1: contractions.
    if (c.cp == '\'') {
      if (const int n = detail::contraction_length(after, end)) {
        emit(start, after + n);
        p = after + n;
        continue;
      }
    }
    // 2: letters, with an optional leading character that is not CR, LF, letter or number.
    if (c.cls == CharClass::letter) {
      p = skip_class(after, end, CharClass::letter);
      emit(start, p);
      continue;
    }
    if (c.cls != CharClass::number && c.cp != '\r' && c.cp != '\n' && after < end) {
      const detail::CodePoint d = code_point_at(after);
      if (d.cls == CharClass::letter) {
        p = skip_class(after + d.len, end, CharClass::letter);
        emit(start, p);
        continue;
      }
    }
    // 3: one to three numbers.
    if (c.cls == CharClass::number) {
      p = after;
      for (int k = 1; k < 3 && p < end; ++k) {
        const detail::CodePoint d = code_point_at(p);
        if (d.cls != CharClass::number) break;
        p += d.len;
      }
      emit(start, p);
      continue;
    }
    // 4: other characters, optionally after one space, then CR/LF.
    const unsigned char* others = nullptr;
    if (c.cls == CharClass::other) {
      others = after;
    } else if (c.cp == ' ' && after < end) {
      const detail::CodePoint d = code_point_at(after);
      if (d.cls == CharClass::other) others = after + d.len;
    }
    if (others) {
      p = skip_class(others, end, CharClass::other);
      while (p < end && (*p == '\r' || *p == '\n')) ++p;
      emit(start, p);
      continue;
    }
    // 5-7: c is whitespace. Scan the run, remembering its last CR/LF and the start of its last character.
    const unsigned char* last_newline = nullptr;
    const unsigned char* last_char = start;
    const unsigned char* q = start;
    while (q < end) {
      const detail::CodePoint d = code_point_at(q);
      if (d.cls != CharClass::space) break;
      if (d.cp == '\r' || d.cp == '\n') last_newline = q;
      last_char = q;
      q += d.len;
    }
    if (last_newline) {
      p = last_newline + 1;  // 5: \s*[\r\n]+ backtracks to the last CR/LF of the run
    } else if (q == end || last_char == start) {
      p = q;  // 6 at the end of the text, or 7 for a single character
    } else {
      p = last_char;  // 6: the last whitespace character goes with what follows
    }
    emit(start, p);
  }
}

// The fast scanner as a splitter object (see Tokenizer::encode_with).
struct FastSplitter {
  template <class OnPiece>
  void operator()(std::string_view text, OnPiece&& on_piece) const {
    split_llama3(text, std::forward<OnPiece>(on_piece));
  }
};

}  // namespace llama3
