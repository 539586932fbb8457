#pragma once
// Byte-level BPE by rank, as the official tiktoken core does it: start from single bytes and repeatedly merge the
// adjacent pair whose concatenation is the token of lowest rank (the leftmost such pair on a tie) until no pair is
// a token. Short pieces use tiktoken's own array scan; long ones a heap over a linked list, so that a 25,000-byte
// piece costs O(n log n), not O(n^2).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <queue>
#include <string_view>
#include <vector>

#include "llama3/tokenizer/vocabulary.hpp"

namespace llama3 {

namespace detail {

inline constexpr std::uint32_t no_rank = std::numeric_limits<std::uint32_t>::max();

inline std::uint32_t pair_rank(const Vocabulary& v, std::string_view piece, std::size_t from, std::size_t to) {
  const TokenId r = v.rank(piece.data() + from, to - from);
  return r < 0 ? no_rank : static_cast<std::uint32_t>(r);
}

template <class Out>
void emit_part(const Vocabulary& v, std::string_view piece, std::size_t from, std::size_t to, Out& out) {
  const TokenId r = v.rank(piece.data() + from, to - from);
  // Every single byte is a token (checked when the vocabulary is loaded), and a merged part is a token by
  // construction, so r >= 0.
  out(r);
}

// tiktoken's _byte_pair_merge: parts[i] = (start of part i, rank of the pair that starts there).
template <class Out>
void bpe_small(const Vocabulary& v, std::string_view piece, Out& out) {
  constexpr std::size_t max_len = 128;
  struct Part {
    std::uint32_t start, rank;
  };
  Part parts[max_len + 1];
  const std::size_t n = piece.size();
  std::size_t count = 0;
  for (std::size_t i = 0; i + 1 < n; ++i) parts[count++] = {static_cast<std::uint32_t>(i), pair_rank(v, piece, i, i + 2)};
  parts[count++] = {static_cast<std::uint32_t>(n - 1), no_rank};
  parts[count++] = {static_cast<std::uint32_t>(n), no_rank};

  const auto rank_after_merge = [&](std::size_t i) {  // rank of parts[i] + parts[i+1] + parts[i+2], before removal
    return (i + 3 < count) ? pair_rank(v, piece, parts[i].start, parts[i + 3].start) : no_rank;
  };
  for (;;) {
    std::uint32_t min_rank = no_rank;
    std::size_t at = 0;
    for (std::size_t i = 0; i + 1 < count; ++i) {
      if (parts[i].rank < min_rank) {
        min_rank = parts[i].rank;
        at = i;
      }
    }
    if (min_rank == no_rank) break;
    if (at > 0) parts[at - 1].rank = rank_after_merge(at - 1);
    parts[at].rank = rank_after_merge(at);
    std::copy(parts + at + 2, parts + count, parts + at + 1);
    --count;
  }
  for (std::size_t i = 0; i + 1 < count; ++i) emit_part(v, piece, parts[i].start, parts[i + 1].start, out);
}

// The same merges in O(n log n): a min-heap of (rank, start) over a linked list of parts. An entry is stale when
// either of its two parts has changed since it was pushed; it then records a different end.
template <class Out>
void bpe_large(const Vocabulary& v, std::string_view piece, Out& out) {
  const std::size_t n = piece.size();
  std::vector<std::uint32_t> next(n), prev(n);  // by part start; next == n at the end
  std::vector<bool> alive(n, true);
  for (std::size_t i = 0; i < n; ++i) {
    next[i] = static_cast<std::uint32_t>(i + 1);
    prev[i] = static_cast<std::uint32_t>(i == 0 ? 0 : i - 1);
  }
  struct Entry {
    std::uint32_t rank, start, end;  // the pair spans [start, end)
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : start > o.start; }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  const auto push = [&](std::size_t start) {
    const std::size_t mid = next[start];
    if (mid >= n) return;
    const std::size_t end = next[mid];
    const std::uint32_t r = pair_rank(v, piece, start, end);
    if (r != no_rank) heap.push({r, static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(end)});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Entry e = heap.top();
    heap.pop();
    const std::size_t mid = next[e.start];
    if (!alive[e.start] || mid >= n || next[mid] != e.end) continue;  // stale
    alive[mid] = false;  // merge the right part into the left
    next[e.start] = e.end;
    if (e.end < n) prev[e.end] = e.start;
    if (e.start > 0) push(prev[e.start]);
    push(e.start);
  }
  for (std::size_t i = 0; i < n; i = next[i]) emit_part(v, piece, i, next[i], out);
}

}  // namespace detail

// Appends the tokens of `piece` (non-empty) by calling out(TokenId).
template <class Out>
void byte_pair_encode(const Vocabulary& v, std::string_view piece, Out&& out) {
  if (piece.size() == 1) {
    out(v.rank(piece.data(), 1));
  } else if (piece.size() <= 128) {
    detail::bpe_small(v, piece, out);
  } else {
    detail::bpe_large(v, piece, out);
  }
}

}  // namespace llama3
