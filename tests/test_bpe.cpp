#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "llama3/tokenizer/bpe.hpp"
#include "support/test_data.hpp"

using namespace llama3;

namespace {

// The definition, written the slow and obvious way: merge the adjacent pair whose concatenation has the lowest
// rank, the leftmost on a tie, until no adjacent pair is a token.
std::vector<TokenId> naive_bpe(const Vocabulary& v, std::string_view piece) {
  std::vector<std::string> parts;
  for (char c : piece) parts.emplace_back(1, c);
  for (;;) {
    TokenId best = -1;
    std::size_t at = 0;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      const TokenId r = v.rank(parts[i] + parts[i + 1]);
      if (r >= 0 && (best < 0 || r < best)) {
        best = r;
        at = i;
      }
    }
    if (best < 0) break;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  std::vector<TokenId> out;
  for (const auto& p : parts) out.push_back(v.rank(p));
  return out;
}

template <class F>
std::vector<TokenId> run(F f, const Vocabulary& v, std::string_view piece) {
  std::vector<TokenId> out;
  auto push = [&](TokenId t) { out.push_back(t); };
  f(v, piece, push);
  return out;
}

}  // namespace

TEST_CASE("both BPE merge loops equal the definition", "[bpe]") {
  const Vocabulary& v = test::llama3_tokenizer().vocabulary();
  std::mt19937 rng(7);
  // Pieces cut from real text (so that long merges happen) and random bytes (so that few do).
  std::string corpus;
  for (const auto& vec : test::vectors()) corpus += vec.text;
  std::uniform_int_distribution<std::size_t> len(2, 300), byte(0, 255);
  for (int i = 0; i < 3000; ++i) {
    const std::size_t n = len(rng);
    std::string piece;
    if (i % 3 == 0) {
      for (std::size_t k = 0; k < n; ++k) piece += static_cast<char>(byte(rng));
    } else {
      std::uniform_int_distribution<std::size_t> from(0, corpus.size() - n);
      piece = corpus.substr(from(rng), n);
    }
    INFO(detail::quote(piece, 400));
    const auto expected = naive_bpe(v, piece);
    REQUIRE(run([](auto&... a) { detail::bpe_large(a...); }, v, piece) == expected);
    if (piece.size() <= 128) REQUIRE(run([](auto&... a) { detail::bpe_small(a...); }, v, piece) == expected);
    std::vector<TokenId> via_api;
    byte_pair_encode(v, piece, [&](TokenId t) { via_api.push_back(t); });
    REQUIRE(via_api == expected);
  }
}

TEST_CASE("BPE of long runs of one character equals the definition", "[bpe]") {
  const Vocabulary& v = test::llama3_tokenizer().vocabulary();
  for (const std::string unit : {"a", " ", "1", "ab", "\xE4\xB8\xAD", "=-"}) {
    std::string piece;
    while (piece.size() < 1500) piece += unit;
    std::vector<TokenId> out;
    byte_pair_encode(v, piece, [&](TokenId t) { out.push_back(t); });
    INFO(detail::quote(unit));
    CHECK(out == naive_bpe(v, piece));
  }
}

TEST_CASE("BPE of long pieces of a few repeated characters equals the definition", "[bpe]") {
  // Few distinct characters make many pairs of equal rank and many stale ones: the order of merges matters most.
  const Vocabulary& v = test::llama3_tokenizer().vocabulary();
  std::mt19937 rng(8);
  const std::vector<std::string> alphabets = {"ab", "a ", "=-", "0a", "\xE4\xB8\xAD" "a", "e\n"};
  std::uniform_int_distribution<std::size_t> len(129, 1200);
  for (int i = 0; i < 24; ++i) {
    const std::string& alphabet = alphabets[static_cast<std::size_t>(i) % alphabets.size()];
    std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
    std::string piece;
    const std::size_t n = len(rng);
    while (piece.size() < n) piece += alphabet[pick(rng)];
    std::vector<TokenId> out;
    byte_pair_encode(v, piece, [&](TokenId t) { out.push_back(t); });
    INFO(detail::quote(piece, 200));
    REQUIRE(out == naive_bpe(v, piece));
  }
}
