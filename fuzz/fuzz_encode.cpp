// Fuzzes encode/decode with Meta's tokenizer.model, checking on every input:
//   - text that is not valid UTF-8 is an llama3::Error, never a crash;
//   - the fast scanner splits like the PCRE2 reference (unless the text holds a character whose class changed
//     between PCRE2's Unicode tables and ours), and the fast chunking like the transcription of Meta's Python;
//   - decode(encode(text)) == text, with and without special tokens allowed;
//   - the stream decoder gives Meta's decode (errors="replace").
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/tokenizer.hpp"
#include "llama3/tokenizer/split_pcre2.hpp"
#include "support/pcre2_class.hpp"

namespace {

#define CHECK(cond)     \
  do {                  \
    if (!(cond)) __builtin_trap(); \
  } while (0)

const llama3::Tokenizer& tokenizer() {
  static const llama3::Tokenizer t(std::string(LLAMA3_TEST_DATA_DIR) + "/tokenizer.model");
  return t;
}

const llama3::Pcre2Splitter& reference() {
  static const llama3::Pcre2Splitter s;
  return s;
}

// Code points whose letter/number class differs between PCRE2's tables and ours (characters assigned between the
// two Unicode versions): the split of text holding one is not comparable.
const std::vector<bool>& version_differs() {
  static const std::vector<bool> table = [] {
    std::vector<bool> t(0x110000);
    const llama3::test::Pcre2Class letter("\\p{L}"), number("\\p{N}");
    for (char32_t cp = 0; cp < 0x110000; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      const bool l = letter(cp), n = number(cp);
      const auto c = llama3::unicode::char_class(cp);
      t[cp] = l != (c == llama3::unicode::CharClass::letter) || n != (c == llama3::unicode::CharClass::number);
    }
    return t;
  }();
  return table;
}

bool comparable_with_pcre2(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    int len;
    const char32_t cp = llama3::utf8::decode_valid(p, &len);
    if (version_differs()[cp]) return false;
    p += len;
  }
  return true;
}

template <class Splitter>
std::vector<std::string_view> pieces(const Splitter& split, std::string_view text) {
  std::vector<std::string_view> out;
  split(text, [&](std::string_view p) { out.push_back(p); });
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizer();
  version_differs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const llama3::Tokenizer& tok = tokenizer();
  if (!llama3::utf8::is_valid(text)) {
    bool threw = false;
    try {
      tok.encode(text, false, false);
    } catch (const llama3::Error&) {
      threw = true;
    }
    CHECK(threw);
    const std::string fixed = llama3::utf8::replace_invalid(text);
    CHECK(llama3::utf8::is_valid(fixed));
    CHECK(tok.decode(tok.encode(fixed, false, false)) == fixed);
    return 0;
  }

  if (comparable_with_pcre2(text)) CHECK(pieces(llama3::FastSplitter{}, text) == pieces(reference(), text));

  using Cuts = std::vector<std::pair<std::size_t, std::string_view>>;
  Cuts fast, slow;
  const auto collect = [](Cuts& c) { return [&c](std::size_t at, std::string_view p) { c.emplace_back(at, p); }; };
  llama3::for_each_meta_substring<61, 19>(text, collect(fast));
  llama3::for_each_meta_substring_reference<61, 19>(text, collect(slow));
  CHECK(fast == slow);
  fast.clear();
  slow.clear();
  llama3::for_each_meta_substring<23, 4>(text, collect(fast));
  llama3::for_each_meta_substring_reference<23, 4>(text, collect(slow));
  CHECK(fast == slow);

  const auto ids = tok.encode(text, false, false);
  CHECK(tok.decode(ids) == text);
  std::vector<llama3::TokenId> with_special;
  try {
    with_special = tok.encode(text, true, true, llama3::SpecialSet::all(), llama3::SpecialSet::all());
  } catch (const llama3::Error&) {
    CHECK(false);  // nothing is disallowed when everything is allowed
  }
  CHECK(tok.decode(with_special) == "<|begin_of_text|>" + std::string(text) + "<|end_of_text|>");

  llama3::StreamDecoder stream(tok);
  std::string streamed;
  for (const auto id : ids) streamed += stream.push(id);
  streamed += stream.finish();
  CHECK(streamed == llama3::utf8::replace_invalid(tok.decode(ids)));
  return 0;
}
