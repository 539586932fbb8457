#pragma once
// Reader of tiktoken's BPE file format (Meta's tokenizer.model): one line per mergeable token,
// "<base64 of the token bytes> <rank>". Stricter than tiktoken's load_tiktoken_bpe, which would silently accept
// a broken file: bad base64, a duplicate or missing rank, a duplicate token, or a byte that is not a token each
// get an Error naming the line and byte offset.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/core/error.hpp"

namespace llama3 {

namespace detail {

// Strict RFC 4648 base64 (standard alphabet, '=' padding to a multiple of 4). Returns false on bad input.
inline bool base64_decode(std::string_view in, std::string& out) {
  static constexpr auto table = [] {
    std::array<signed char, 256> t{};
    for (auto& x : t) x = -1;
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
    return t;
  }();
  out.clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  std::size_t pad = 0;
  if (in.back() == '=') pad = (in[in.size() - 2] == '=') ? 2 : 1;
  const std::size_t n = in.size() - pad;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const signed char v = table[static_cast<unsigned char>(in[i])];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return true;
}

}  // namespace detail

// The tokens of a tiktoken BPE file, indexed by rank.
inline std::vector<std::string> read_tiktoken_bpe(std::string_view data, const std::string& source) {
  struct Line {
    std::string bytes;
    std::size_t line_no, offset;
  };
  // A valid file has one token line per rank, so no rank reaches the number of token lines: this bounds memory by
  // what the file holds (a rank of 10^8 after 10^8 empty lines asked for 5 GB).
  std::size_t max_lines = 0;
  for (std::size_t at = 0; at < data.size();) {
    std::size_t eol = data.find('\n', at);
    if (eol == std::string_view::npos) eol = data.size();
    if (eol > at && !(eol == at + 1 && data[at] == '\r')) ++max_lines;
    at = eol + 1;
  }
  std::vector<Line> by_rank;
  std::vector<bool> seen;
  std::string token;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  const auto fail = [&](std::size_t offset, const std::string& what) {
    throw Error(source, offset, detail::cat("line ", line_no, ": ", what));
  };
  while (pos < data.size()) {
    ++line_no;
    const std::size_t start = pos;
    std::size_t eol = data.find('\n', pos);
    if (eol == std::string_view::npos) eol = data.size();
    pos = eol + 1;
    std::string_view line = data.substr(start, eol - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;  // tiktoken skips empty lines too

    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
      fail(start, "expected \"<base64 token> <rank>\", found " + detail::quote(line));
    }
    const std::string_view b64 = line.substr(0, space);
    const std::string_view rank_text = line.substr(space + 1);
    if (!detail::base64_decode(b64, token)) fail(start, "bad base64 " + detail::quote(b64));
    std::uint32_t rank = 0;
    const auto [end, ec] = std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    if (ec != std::errc() || end != rank_text.data() + rank_text.size() || rank_text.empty()) {
      fail(start + space + 1, "bad rank " + detail::quote(rank_text) + ": expected a decimal integer");
    }
    if (rank >= max_lines) {
      fail(start + space + 1, detail::cat("rank ", rank, " out of range: the file has ", max_lines,
                                          " token lines, so ranks must be below that"));
    }
    if (rank >= by_rank.size()) {
      by_rank.resize(rank + 1);
      seen.resize(rank + 1);
    }
    if (seen[rank]) {
      fail(start + space + 1, detail::cat("duplicate rank ", rank, " (first on line ", by_rank[rank].line_no, ")"));
    }
    seen[rank] = true;
    by_rank[rank] = Line{token, line_no, start};
  }
  if (by_rank.empty()) throw Error(source, std::nullopt, "no tokens: expected lines of \"<base64 token> <rank>\"");
  // Distinct ranks, each below the number of token lines: they are 0 .. n - 1, none left out.
  std::vector<std::string> tokens;
  tokens.reserve(by_rank.size());
  for (std::size_t r = 0; r < by_rank.size(); ++r) tokens.push_back(std::move(by_rank[r].bytes));
  return tokens;
}

}  // namespace llama3
