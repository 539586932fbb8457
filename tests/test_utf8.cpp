#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "llama3/tokenizer/utf8.hpp"

using namespace llama3;

namespace {
const std::string fffd(utf8::replacement_character);
std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s += static_cast<char>(x);
  return s;
}
}  // namespace

TEST_CASE("find_invalid accepts UTF-8 and points at the first bad byte", "[utf8]") {
  CHECK_FALSE(utf8::find_invalid(""));
  CHECK_FALSE(utf8::find_invalid("plain ASCII that is longer than eight bytes"));
  CHECK_FALSE(utf8::find_invalid("\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));  // up to U+10FFFF
  CHECK(utf8::find_invalid("abc\xC0\xAF") == 3u);                  // overlong '/'
  CHECK(utf8::find_invalid("abcdefghij\xE0\x80\xAF") == 10u);      // overlong, after an 8-byte ASCII block
  CHECK(utf8::find_invalid("\xED\xA0\x80") == 0u);                 // a UTF-16 surrogate
  CHECK(utf8::find_invalid("x\xF4\x90\x80\x80") == 1u);            // above U+10FFFF
  CHECK(utf8::find_invalid("ok\xF0\x9F\x98") == 2u);               // truncated at the end
  CHECK(utf8::find_invalid("\x80") == 0u);                         // stray continuation byte
  CHECK(utf8::find_invalid("\xC3\xA9\xFF") == 2u);
}

TEST_CASE("replace_invalid substitutes maximal subparts as Python's errors='replace' does", "[utf8]") {
  // Expected values are what CPython's bytes.decode("utf-8", "replace") returns.
  CHECK(utf8::replace_invalid("\xC0\xAF") == fffd + fffd);
  CHECK(utf8::replace_invalid("\xE0\x80\xAF") == fffd + fffd + fffd);
  CHECK(utf8::replace_invalid("\xED\xA0\x80") == fffd + fffd + fffd);
  CHECK(utf8::replace_invalid("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd);
  CHECK(utf8::replace_invalid("\xF0\x9F\x98") == fffd);
  CHECK(utf8::replace_invalid("a\xF0\x9F\x98" "b") == "a" + fffd + "b");
  CHECK(utf8::replace_invalid("\x80\x80") == fffd + fffd);
  CHECK(utf8::replace_invalid("\xE2(\xA1") == fffd + "(" + fffd);
  CHECK(utf8::replace_invalid(bytes({0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x80})) == fffd + fffd + "\xC2\x80");
  CHECK(utf8::replace_invalid("\xF0\x9F\x98\x80 ok") == "\xF0\x9F\x98\x80 ok");
}

TEST_CASE("replace_invalid gives valid UTF-8 and leaves valid text alone", "[utf8]") {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 24);
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = len(rng);
    for (int k = 0; k < n; ++k) s += static_cast<char>(byte(rng) < 128 ? 'a' : byte(rng));
    const std::string r = utf8::replace_invalid(s);
    REQUIRE(utf8::is_valid(r));
    if (utf8::is_valid(s)) REQUIRE(r == s);
    REQUIRE(utf8::replace_invalid(r) == r);
  }
}

TEST_CASE("StreamBuffer releases complete characters only, and agrees with replace_invalid", "[utf8]") {
  SECTION("a character split over pushes is held back until complete") {
    utf8::StreamBuffer b;
    CHECK(b.push("a\xF0\x9F") == "a");
    CHECK(b.pending() == "\xF0\x9F");
    CHECK(b.push("\x98") == "");
    CHECK(b.push("\x80!") == "\xF0\x9F\x98\x80!");
    CHECK(b.pending().empty());
    CHECK(b.finish() == "");
  }
  SECTION("bytes that can never become a character are replaced at once") {
    utf8::StreamBuffer b;
    CHECK(b.push("\xF0\x9F(") == fffd + "(");
    CHECK(b.push("\xFF") == fffd);
  }
  SECTION("an incomplete character at the end becomes U+FFFD") {
    utf8::StreamBuffer b;
    CHECK(b.push("x\xE4\xB8") == "x");
    CHECK(b.finish() == fffd);
    CHECK(b.push("y") == "y");
  }
  SECTION("any split of any bytes") {
    std::mt19937 rng(2);
    std::uniform_int_distribution<int> byte(0, 255), len(0, 32), cut(0, 4);
    for (int i = 0; i < 20000; ++i) {
      std::string s;
      const int n = len(rng);
      for (int k = 0; k < n; ++k) {
        const int c = byte(rng);
        s += c < 64 ? std::string("\xE4\xB8\xAD") : std::string(1, static_cast<char>(c));
      }
      utf8::StreamBuffer b;
      std::string out;
      for (std::size_t at = 0; at < s.size();) {
        const std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(cut(rng)), s.size() - at);
        const std::string piece = b.push(std::string_view(s).substr(at, take));
        REQUIRE(utf8::is_valid(piece));
        REQUIRE(b.pending().size() <= 3);
        out += piece;
        at += take;
      }
      out += b.finish();
      REQUIRE(out == utf8::replace_invalid(s));
    }
  }
}

TEST_CASE("decode_valid and append are inverse", "[utf8]") {
  for (char32_t cp : {0x0u, 0x41u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu, 0x1F600u}) {
    std::string s;
    utf8::append(s, cp);
    REQUIRE(utf8::is_valid(s));
    int len = 0;
    CHECK(utf8::decode_valid(reinterpret_cast<const unsigned char*>(s.data()), &len) == cp);
    CHECK(static_cast<std::size_t>(len) == s.size());
  }
}
