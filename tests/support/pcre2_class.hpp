#pragma once
// Whether a single character matches a PCRE2 class (UTF + UCP), from PCRE2's own Unicode tables: the independent
// oracle for our character classes.
#include <stdexcept>
#include <string>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "llama3/tokenizer/utf8.hpp"

namespace llama3::test {

class Pcre2Class {
public:
  explicit Pcre2Class(const std::string& cls) {
    const std::string pattern = "^" + cls + "$";
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                          &err, &off, nullptr);
    if (!code_) throw std::runtime_error("PCRE2 cannot compile " + pattern);
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
    md_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  }
  Pcre2Class(const Pcre2Class&) = delete;
  Pcre2Class& operator=(const Pcre2Class&) = delete;
  ~Pcre2Class() {
    pcre2_match_data_free(md_);
    pcre2_code_free(code_);
  }
  bool operator()(char32_t cp) const {
    std::string s;
    utf8::append(s, cp);
    return pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, md_, nullptr) >= 0;
  }

private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* md_ = nullptr;
};

}  // namespace llama3::test
