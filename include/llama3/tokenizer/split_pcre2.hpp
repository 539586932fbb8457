#pragma once
// The reference implementation of Llama 3's split: the pattern itself, run by PCRE2 (UTF + UCP, JIT).
//
// PCRE2 is not the engine the official tiktoken core uses (Rust's `regex` through `fancy-regex`), and the two
// differ in one place that matters here: PCRE2's \s still matches U+180E MONGOLIAN VOWEL SEPARATOR, which left
// the White_Space property in Unicode 6.3, while Rust's \s is White_Space exactly. So \s and \S are spelled out
// as White_Space below. The other difference is the Unicode version of \p{L} and \p{N} (PCRE2's own tables
// against our unicode_tables.hpp): it only touches characters assigned in between, and the tests that compare the
// two splitters name those characters.
#include <memory>
#include <string>
#include <string_view>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "llama3/core/error.hpp"
#include "llama3/tokenizer/split.hpp"

namespace llama3 {

#define LLAMA3_WHITE_SPACE_ \
  "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
// llama3_split_pattern with \s and \S written as White_Space.
inline constexpr std::string_view llama3_split_pattern_pcre2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
    "|\\p{N}{1,3}"
    "| ?[^" LLAMA3_WHITE_SPACE_ "\\p{L}\\p{N}]+[\\r\\n]*"
    "|[" LLAMA3_WHITE_SPACE_ "]*[\\r\\n]+"
    "|[" LLAMA3_WHITE_SPACE_ "]+(?![^" LLAMA3_WHITE_SPACE_ "])"
    "|[" LLAMA3_WHITE_SPACE_ "]+";
#undef LLAMA3_WHITE_SPACE_

class Pcre2Splitter {
public:
  // pattern: a PCRE2 pattern (UTF and UCP are set); the default is Llama 3's.
  explicit Pcre2Splitter(std::string_view pattern = llama3_split_pattern_pcre2) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (!code) throw Error(detail::cat("PCRE2 cannot compile the split pattern at offset ", error_offset, ": ",
                                       message(error)));
    code_ = std::shared_ptr<pcre2_code>(code, CodeFree{});
    jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }

  bool jit() const noexcept { return jit_; }

  // Calls on_piece(std::string_view) for each match in `text` (valid UTF-8: it is not checked again).
  template <class OnPiece>
  void operator()(std::string_view text, OnPiece&& on_piece) const {
    std::unique_ptr<pcre2_match_data, MatchDataFree> md(pcre2_match_data_create_from_pattern(code_.get(), nullptr));
    if (!md) throw Error("PCRE2: out of memory");
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    PCRE2_SIZE offset = 0;
    while (offset < text.size()) {
      const int rc = jit_ ? pcre2_jit_match(code_.get(), subject, text.size(), offset, 0, md.get(), nullptr)
                          : pcre2_match(code_.get(), subject, text.size(), offset, PCRE2_NO_UTF_CHECK, md.get(),
                                        nullptr);
      if (rc < 0) {
        throw Error(detail::cat("PCRE2 split failed at byte offset ", offset, ": ",
                                rc == PCRE2_ERROR_NOMATCH ? std::string("no match") : message(rc)));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      // Every alternative consumes a character, and the alternatives cover every character: the match starts
      // where the last one ended.
      if (ov[0] != offset || ov[1] <= ov[0]) throw Error(detail::cat("PCRE2 split skipped text at ", offset));
      on_piece(text.substr(ov[0], ov[1] - ov[0]));
      offset = ov[1];
    }
  }

private:
  static std::string message(int code) {
    PCRE2_UCHAR buf[256];
    const int n = pcre2_get_error_message(code, buf, sizeof buf);
    return n < 0 ? "error " + std::to_string(code) : std::string(reinterpret_cast<const char*>(buf));
  }
  struct CodeFree {
    void operator()(pcre2_code* c) const noexcept { pcre2_code_free(c); }
  };
  struct MatchDataFree {
    void operator()(pcre2_match_data* m) const noexcept { pcre2_match_data_free(m); }
  };

  std::shared_ptr<pcre2_code> code_;  // shared: a compiled pattern is read-only, safe across threads
  bool jit_ = false;
};

}  // namespace llama3
