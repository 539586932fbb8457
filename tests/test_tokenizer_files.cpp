#include <catch2/catch.hpp>

#include <string>

#include "llama3/tokenizer.hpp"
#include "support/files.hpp"
#include "support/test_data.hpp"

using namespace llama3;
using Catch::Contains;

namespace {
Tokenizer load(const std::string& data) { return Tokenizer::from_tiktoken(data, "my.model"); }
}  // namespace

TEST_CASE("a tiny tiktoken file loads, with the specials after its tokens", "[tokenizer][files]") {
  const auto tokens = test::tiny_tokens();
  const Tokenizer t = load(test::tiktoken_file(tokens));
  CHECK(t.num_base_tokens() == tokens.size());
  CHECK(t.n_words() == static_cast<int>(tokens.size()) + 256);
  CHECK(t.bos_id() == static_cast<TokenId>(tokens.size()));
  CHECK(t.encode("hello world", false, false) == std::vector<TokenId>{259, 263});
  CHECK(t.decode(t.encode("hello worlds", true, true)) == "<|begin_of_text|>hello worlds<|end_of_text|>");
  // CRLF line ends, blank lines and ranks out of order are fine.
  std::string shuffled;
  for (std::size_t r = tokens.size(); r-- > 0;) shuffled += test::base64(tokens[r]) + " " + std::to_string(r) + "\r\n\n";
  CHECK(load(shuffled).encode("hello world", false, false) == std::vector<TokenId>{259, 263});
}

TEST_CASE("a broken tokenizer.model is an error naming the file, line and offset", "[tokenizer][files][errors]") {
  const auto tokens = test::tiny_tokens();
  const std::string good = test::tiktoken_file(tokens);
  const std::size_t line3 = good.find('\n', good.find('\n') + 1) + 1;  // byte offset of line 3

  SECTION("bad base64") {
    std::string bad = good;
    bad.replace(line3, 1, "*");
    CHECK_THROWS_WITH(load(bad), Contains("my.model") && Contains("line 3") && Contains("bad base64") &&
                                     Contains("byte offset " + std::to_string(line3)));
  }
  SECTION("base64 without its padding") {
    std::string bad = good;
    bad.replace(line3, 4, "Ag=");  // "Ag==" is byte 2
    CHECK_THROWS_WITH(load(bad), Contains("line 3") && Contains("bad base64"));
  }
  SECTION("a duplicate rank") {
    std::string bad = good + test::base64("xyz") + " 7\n";
    CHECK_THROWS_WITH(load(bad), Contains("duplicate rank 7") && Contains("line 8"));
  }
  SECTION("a missing rank") {  // n distinct ranks below n lines leave none out: a gap is a rank out of range
    std::string bad = good + test::base64("xyz") + " " + std::to_string(tokens.size() + 1) + "\n";
    CHECK_THROWS_WITH(load(bad), Contains("rank " + std::to_string(tokens.size() + 1) + " out of range") &&
                                     Contains(std::to_string(tokens.size() + 1) + " token lines"));
  }
  SECTION("a rank far out of range") {
    std::string bad = good + test::base64("xyz") + " 4000000000\n";
    CHECK_THROWS_WITH(load(bad), Contains("rank 4000000000 out of range"));
    CHECK_THROWS_WITH(load(good + "eHl6 99999999999999999999\n"), Contains("bad rank"));
  }
  SECTION("a duplicate token") {
    std::string bad = good + test::base64("hello") + " " + std::to_string(tokens.size()) + "\n";
    CHECK_THROWS_WITH(load(bad), Contains("my.model") && Contains("duplicate token") && Contains("\"hello\""));
  }
  SECTION("a byte that is not a token") {
    auto fewer = tokens;
    fewer[65] = "AA";  // no token "A" any more
    CHECK_THROWS_WITH(load(test::tiktoken_file(fewer)), Contains("byte 0x41 is not a token"));
  }
  SECTION("lines that are not <base64> <rank>") {
    CHECK_THROWS_WITH(load(good + "eHl6\n"), Contains("expected \"<base64 token> <rank>\""));
    CHECK_THROWS_WITH(load(good + "eHl6 1 2\n"), Contains("expected \"<base64 token> <rank>\""));
    CHECK_THROWS_WITH(load(good + "eHl6 -3\n"), Contains("bad rank"));
    CHECK_THROWS_WITH(load(good + "eHl6 3x\n"), Contains("bad rank"));
  }
  SECTION("a truncated file") {
    CHECK_THROWS_AS(load(good.substr(0, good.size() / 2)), Error);  // cut mid-line and before ranks end
    CHECK_THROWS_WITH(load(good.substr(0, good.size() - 3)), Contains("line " + std::to_string(tokens.size())));
  }
  SECTION("an empty file") {
    CHECK_THROWS_WITH(load(""), Contains("no tokens"));
    CHECK_THROWS_WITH(load("\n\n"), Contains("no tokens"));
  }
  SECTION("a file that is not there") {
    CHECK_THROWS_WITH(Tokenizer("/nonexistent/tokenizer.model"), Contains("/nonexistent/tokenizer.model") &&
                                                                   Contains("cannot open"));
  }
}

TEST_CASE("Meta's tokenizer.model loads from the path", "[tokenizer][files]") {
  const Tokenizer t(test::data_path("tokenizer.model"));
  CHECK(t.n_words() == 128256);
  CHECK(t.encode("hello world", false, false) == std::vector<TokenId>{15339, 1917});
}
