#pragma once
// Character classes of Llama 3's split pattern, with the semantics of Rust's `regex` crate that the official
// tiktoken core uses: \p{L} and \p{N} are General_Category L and N, \s is the White_Space property (which, unlike
// PCRE2's \s, leaves out U+180E). Python's str.isspace(), which Meta's long-input splitting and str.strip() use, is
// White_Space plus U+001C..U+001F.
#include <cstdint>
#include <string_view>

#include "llama3/tokenizer/unicode_tables.hpp"
#include "llama3/tokenizer/utf8.hpp"

namespace llama3::unicode {

enum class CharClass : std::uint8_t { other = 0, letter = 1, number = 2, space = 3 };

constexpr CharClass char_class(char32_t cp) noexcept {
  if (cp > 0x10FFFF) return CharClass::other;
  const unsigned block = unicode_tables::stage1[cp >> unicode_tables::block_shift];
  const unsigned offset = cp & ((1u << unicode_tables::block_shift) - 1);
  const unsigned byte = unicode_tables::stage2[block * ((1u << unicode_tables::block_shift) / 4) + offset / 4];
  return static_cast<CharClass>((byte >> ((offset & 3) * 2)) & 3);
}

inline bool is_letter(char32_t cp) noexcept { return char_class(cp) == CharClass::letter; }
inline bool is_number(char32_t cp) noexcept { return char_class(cp) == CharClass::number; }
inline bool is_white_space(char32_t cp) noexcept { return char_class(cp) == CharClass::space; }

inline bool is_python_space(char32_t cp) noexcept {
  return is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F);
}

// Python's str.strip() with no argument, on valid UTF-8.
inline std::string_view python_strip(std::string_view s) noexcept {
  const auto* begin = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = begin + s.size();
  const auto* b = begin;
  while (b < end) {
    int len;
    if (!is_python_space(utf8::decode_valid(b, &len))) break;
    b += len;
  }
  const auto* e = end;
  while (e > b) {
    int len;
    if (!is_python_space(utf8::decode_valid_backward(b, e, &len))) break;
    e -= len;
  }
  return {reinterpret_cast<const char*>(b), static_cast<std::size_t>(e - b)};
}

}  // namespace llama3::unicode
