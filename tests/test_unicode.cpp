#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "llama3/tokenizer/unicode.hpp"
#include "llama3/tokenizer/utf8.hpp"
#include "support/pcre2_class.hpp"

using namespace llama3;
using unicode::CharClass;

namespace {

using test::Pcre2Class;

bool is_surrogate(char32_t cp) { return cp >= 0xD800 && cp <= 0xDFFF; }

}  // namespace

TEST_CASE("character classes of familiar characters", "[unicode]") {
  CHECK(unicode::char_class(U'a') == CharClass::letter);
  CHECK(unicode::char_class(U'\u00E9') == CharClass::letter);   // é
  CHECK(unicode::char_class(U'\u0416') == CharClass::letter);   // Ж
  CHECK(unicode::char_class(U'\u4E2D') == CharClass::letter);   // 中
  CHECK(unicode::char_class(U'\u017F') == CharClass::letter);   // ſ
  CHECK(unicode::char_class(U'7') == CharClass::number);
  CHECK(unicode::char_class(U'\u0663') == CharClass::number);   // ٣ Nd
  CHECK(unicode::char_class(U'\u216B') == CharClass::number);   // Ⅻ Nl
  CHECK(unicode::char_class(U'\u00BD') == CharClass::number);   // ½ No
  CHECK(unicode::char_class(U' ') == CharClass::space);
  CHECK(unicode::char_class(U'\u0085') == CharClass::space);    // NEL: White_Space, though a control
  CHECK(unicode::char_class(U'\u00A0') == CharClass::space);
  CHECK(unicode::char_class(U'\u3000') == CharClass::space);
  CHECK(unicode::char_class(U'\u200B') == CharClass::other);    // ZERO WIDTH SPACE is a format character
  CHECK(unicode::char_class(U'\u0301') == CharClass::other);    // combining marks are not letters
  CHECK(unicode::char_class(U'\U0001F600') == CharClass::other);
  CHECK(unicode::char_class(U'\x1C') == CharClass::other);      // not White_Space...
  CHECK(unicode::is_python_space(U'\x1C'));                     // ...but Python's str.isspace() says yes
  CHECK(unicode::char_class(0x110000) == CharClass::other);
}

TEST_CASE("letters and numbers agree with PCRE2's \\p{L} and \\p{N} wherever both Unicode versions assign the "
          "character", "[unicode][pcre2]") {
  const Pcre2Class letter("\\p{L}"), number("\\p{N}"), unassigned("\\p{Cn}");
  std::vector<char32_t> newer;  // characters our tables classify as L or N that PCRE2's older tables leave unassigned
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (is_surrogate(cp)) continue;
    const CharClass ours = unicode::char_class(cp);
    const bool l = letter(cp), n = number(cp);
    if ((ours == CharClass::letter) == l && (ours == CharClass::number) == n) continue;
    INFO("U+" << std::hex << static_cast<unsigned>(cp));
    // The only differences allowed: characters assigned after PCRE2's Unicode version.
    REQUIRE(unassigned(cp));
    REQUIRE((ours == CharClass::letter || ours == CharClass::number));
    newer.push_back(cp);
  }
  // PCRE2 10.42 has Unicode 14 tables; 15.0, 15.1 and 16.0 added some 10,000 letters and numbers (CJK extensions
  // H and I, Egyptian hieroglyphs, new scripts). An empty list would mean the tables were not regenerated.
  WARN(newer.size() << " characters are letters or numbers in Unicode " << unicode_tables::ucd_version
                    << " but unassigned in PCRE2's tables");
  CHECK(newer.size() > 1000);
  CHECK(newer.size() < 20000);
}

TEST_CASE("White_Space is PCRE2's \\s without U+180E, which PCRE2 still counts as a space", "[unicode][pcre2]") {
  const Pcre2Class space("\\s");
  CHECK(space(0x180E));  // MONGOLIAN VOWEL SEPARATOR: White_Space until Unicode 6.3, a format character since
  CHECK_FALSE(unicode::is_white_space(0x180E));
  CHECK_FALSE(unicode::is_python_space(0x180E));
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (is_surrogate(cp)) continue;
    INFO("U+" << std::hex << static_cast<unsigned>(cp));
    REQUIRE(unicode::is_white_space(cp) == (space(cp) && cp != 0x180E));
  }
}

TEST_CASE("python_strip removes what str.strip() removes", "[unicode]") {
  CHECK(unicode::python_strip("") == "");
  CHECK(unicode::python_strip("  \t\n") == "");
  CHECK(unicode::python_strip(" hi there \n") == "hi there");
  CHECK(unicode::python_strip("\xE3\x80\x80x\xC2\x85") == "x");        // U+3000 and U+0085
  CHECK(unicode::python_strip("\x1C\x1Fx\x1E") == "x");                // str.isspace() extras
  CHECK(unicode::python_strip("\xE2\x80\x8Bx") == "\xE2\x80\x8Bx");    // U+200B is not whitespace
  CHECK(unicode::python_strip("a \xE4\xB8\xAD") == "a \xE4\xB8\xAD");
}
