#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "llama3/tokenizer/split.hpp"
#include "llama3/tokenizer/split_pcre2.hpp"
#include "support/test_data.hpp"

using namespace llama3;

namespace {

template <class Splitter>
std::vector<std::string> pieces(const Splitter& split, std::string_view text) {
  std::vector<std::string> out;
  split(text, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}

std::vector<std::string> fast(std::string_view text) { return pieces(FastSplitter{}, text); }


}  // namespace

TEST_CASE("the PCRE2 reference compiles with JIT", "[split][pcre2]") { CHECK(test::pcre2_reference().jit()); }

TEST_CASE("split follows each alternative of Llama 3's pattern", "[split]") {
  using V = std::vector<std::string>;
  const std::vector<std::pair<std::string, V>> cases = {
      {"Hello world", {"Hello", " world"}},
      {"I'm here", {"I", "'m", " here"}},
      {"I'M", {"I", "'M"}},
      {"they're we've you'll he'd it's", {"they", "'re", " we", "'ve", " you", "'ll", " he", "'d", " it", "'s"}},
      {"'\xC5\xBF", {"'\xC5\xBF"}},  // (?i) lets 's match U+017F
      {"'sup", {"'s", "up"}},
      {"'x", {"'x"}},
      {"  hello", {" ", " hello"}},
      {"(hello", {"(hello"}},
      {"((hello", {"((", "hello"}},
      {"\t\tx", {"\t", "\tx"}},
      {"123456", {"123", "456"}},
      {"x1234", {"x", "123", "4"}},
      {" 1", {" ", "1"}},
      {"a  \n\n b", {"a", "  \n\n", " b"}},
      {"hello \n", {"hello", " \n"}},
      {"a   ", {"a", "   "}},
      {"a   b", {"a", "  ", " b"}},
      {" !!!\r\n\r\nx", {" !!!\r\n\r\n", "x"}},
      {"\r\n", {"\r\n"}},
      {"!\xC2\x85", {"!", "\xC2\x85"}},          // U+0085 NEXT LINE is whitespace
      {"!\xE1\xA0\x8E", {"!\xE1\xA0\x8E"}},      // U+180E MONGOLIAN VOWEL SEPARATOR is not
      {"\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C", {"\xE4\xBD\xA0\xE5\xA5\xBD", "\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C"}},
  };
  for (const auto& [text, expected] : cases) {
    INFO(detail::quote(text));
    CHECK(fast(text) == expected);
    CHECK(pieces(test::pcre2_reference(), text) == expected);
  }
}

TEST_CASE("PCRE2's own \\s would split U+180E differently: the reference spells \\s out", "[split][pcre2]") {
  const Pcre2Splitter plain(llama3_split_pattern);  // the pattern as Meta writes it, with PCRE2's \s
  CHECK(pieces(plain, "!\xE1\xA0\x8E") == std::vector<std::string>{"!", "\xE1\xA0\x8E"});
  CHECK(pieces(test::pcre2_reference(), "!\xE1\xA0\x8E") == std::vector<std::string>{"!\xE1\xA0\x8E"});
  CHECK(fast("!\xE1\xA0\x8E") == std::vector<std::string>{"!\xE1\xA0\x8E"});
}

TEST_CASE("the fast scanner equals the PCRE2 reference on every vector", "[split][pcre2]") {
  for (const auto& v : test::vectors()) {
    if (v.kind == test::Vector::decode) continue;
    INFO("vectors.jsonl line " << v.line);
    REQUIRE(fast(v.text) == pieces(test::pcre2_reference(), v.text));
  }
}

TEST_CASE("the fast scanner equals the PCRE2 reference on random text", "[split][pcre2]") {
  std::mt19937 rng(42);
  for (int i = 0; i < 30000; ++i) {
    const std::string text = test::random_text(rng, 40);
    INFO(detail::quote(text, 400));
    const auto a = fast(text);
    REQUIRE(a == pieces(test::pcre2_reference(), text));
    std::string joined;
    for (const auto& p : a) {
      REQUIRE_FALSE(p.empty());
      joined += p;
    }
    REQUIRE(joined == text);
  }
}

TEST_CASE("long runs split the same way and in linear time", "[split][pcre2]") {
  for (const std::string unit : {"a", "1", " ", "\n", " \n", "!", "\xE4\xB8\xAD", "ab ", "'s"}) {
    std::string text;
    while (text.size() < 200000) text += unit;
    INFO(detail::quote(unit));
    REQUIRE(fast(text) == pieces(test::pcre2_reference(), text));
  }
}
