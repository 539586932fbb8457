#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "llama3/tokenizer/chunks.hpp"

using namespace llama3;

namespace {

using Pieces = std::vector<std::pair<std::size_t, std::string>>;

template <std::size_t MaxChars, std::size_t MaxRun>
Pieces fast(std::string_view s) {
  Pieces out;
  for_each_meta_substring<MaxChars, MaxRun>(s, [&](std::size_t at, std::string_view p) { out.emplace_back(at, p); });
  return out;
}

template <std::size_t MaxChars, std::size_t MaxRun>
Pieces reference(std::string_view s) {
  Pieces out;
  for_each_meta_substring_reference<MaxChars, MaxRun>(s, [&](std::size_t at, std::string_view p) {
    out.emplace_back(at, p);
  });
  return out;
}

// Long runs of letters, ASCII and Unicode whitespace (including \x1c, which only Python calls a space), and
// multi-byte characters of both classes, so that runs cross 16-byte blocks and block boundaries split characters.
std::string random_runs(std::mt19937& rng, std::size_t max_len) {
  static const std::vector<std::string> units = {"a", "b", " ", "\n", "\t", "\x1C", "\xC3\xA9", "\xE4\xB8\xAD",
                                                 "\xF0\x9F\x98\x80", "\xC2\xA0", "\xE3\x80\x80", "\xC2\x85", "1", "."};
  std::uniform_int_distribution<std::size_t> unit(0, units.size() - 1), run(1, 60);
  std::string s;
  while (s.size() < max_len) {
    const std::string& u = units[unit(rng)];
    for (std::size_t k = run(rng); k > 0; --k) s += u;
  }
  return s;
}

}  // namespace

TEST_CASE("the fast chunking equals the transcription of Meta's Python", "[chunks]") {
  std::mt19937 rng(11);
  for (int i = 0; i < 3000; ++i) {
    const std::string s = random_runs(rng, 1 + static_cast<std::size_t>(i % 700));
    INFO("case " << i << ", " << s.size() << " bytes");
    REQUIRE(fast<97, 5>(s) == reference<97, 5>(s));      // scalar path only (runs shorter than a block)
    REQUIRE(fast<131, 17>(s) == reference<131, 17>(s));  // 16-byte blocks
    REQUIRE(fast<400, 40>(s) == reference<400, 40>(s));
    REQUIRE(fast<1000, 1000>(s) == reference<1000, 1000>(s));
  }
}

TEST_CASE("Meta's limits: 400,000 code points a chunk, runs cut every 25,000", "[chunks]") {
  SECTION("a long run of letters") {
    const std::string s(60'001, 'x');
    const Pieces p = fast<400'000, 25'000>(s);
    REQUIRE(p == reference<400'000, 25'000>(s));
    REQUIRE(p.size() == 3);
    CHECK(p[0].second.size() == 25'000);
    CHECK(p[1].first == 25'000);
    CHECK(p[2].second.size() == 10'001);
  }
  SECTION("chunks count code points") {
    std::string s;
    for (int i = 0; i < 450'000; ++i) s += (i % 5 == 4) ? " " : "\xE4\xB8\xAD";
    const Pieces p = fast<400'000, 25'000>(s);
    REQUIRE(p == reference<400'000, 25'000>(s));
    REQUIRE(p.size() == 2);
    CHECK(p[1].first == 400'000 / 5 * (4 * 3 + 1));
  }
  SECTION("mixed text with a few long runs") {
    std::mt19937 rng(12);
    std::string s = random_runs(rng, 300'000);
    s += std::string(70'000, ' ') + random_runs(rng, 200'000);
    for (int i = 0; i < 26'000; ++i) s += "\xE4\xB8\xAD";  // a run of 78,000 bytes but 26,000 code points
    s += random_runs(rng, 10'000);
    REQUIRE(fast<400'000, 25'000>(s) == reference<400'000, 25'000>(s));
  }
  SECTION("short and empty text") {
    CHECK(fast<400'000, 25'000>("").empty());
    CHECK(reference<400'000, 25'000>("").empty());
    CHECK(fast<400'000, 25'000>("hi") == Pieces{{0, "hi"}});
  }
}
