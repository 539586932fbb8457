#pragma once
// Byte-level BPE by rank, as the official tiktoken core does it: start from single bytes and repeatedly merge the
// adjacent pair whose concatenation is the token of lowest rank (the leftmost such pair on a tie) until no pair is
// a token. Short pieces use tiktoken's own array scan; long ones a heap over a linked list, so that a 25,000-byte
// piece costs O(n log n), not O(n^2).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <unordered_map>
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

// The same merges for long pieces, in O(n log n) with good locality. Pairs wait in one bucket per rank; the
// buckets are taken lowest rank first, and a bucket's pairs leftmost first, which is tiktoken's order. A merge
// never makes a pair of the rank being processed (the pair would be longer than that token), so a bucket is
// complete when it is taken; if a merge makes a pair of a lower rank, the rest of the bucket waits for it.
// A pair is stale when either of its parts has changed since it was made: it then spans another range.
template <class Out>
void bpe_large(const Vocabulary& v, std::string_view piece, Out& out) {
  const auto n = static_cast<std::uint32_t>(piece.size());
  std::vector<std::uint32_t> next(n), prev(n);  // by part start; next == n at the end, 0 for a merged-away part
  for (std::uint32_t i = 0; i < n; ++i) {
    next[i] = i + 1;
    prev[i] = i == 0 ? 0 : i - 1;
  }
  struct Pair {
    std::uint32_t start, end;
  };
  std::unordered_map<std::uint32_t, std::vector<Pair>> buckets;
  std::vector<std::uint32_t> ranks;  // min-heap of the ranks whose bucket is not empty
  const auto add = [&](std::uint32_t start, std::uint32_t end) -> std::uint32_t {
    const std::uint32_t r = pair_rank(v, piece, start, end);
    if (r == no_rank) return r;
    auto& bucket = buckets[r];
    if (bucket.empty()) {
      ranks.push_back(r);
      std::push_heap(ranks.begin(), ranks.end(), std::greater<>());
    }
    bucket.push_back({start, end});
    return r;
  };
  const auto add_after = [&](std::uint32_t start) {  // the pair that starts at part `start`, if any
    const std::uint32_t mid = next[start];
    return mid < n ? add(start, next[mid]) : no_rank;
  };
  for (std::uint32_t i = 0; i + 1 < n; ++i) add(i, i + 2);

  std::vector<Pair> work;
  while (!ranks.empty()) {
    std::pop_heap(ranks.begin(), ranks.end(), std::greater<>());
    const std::uint32_t r = ranks.back();
    ranks.pop_back();
    work.swap(buckets[r]);
    buckets.erase(r);
    if (!std::is_sorted(work.begin(), work.end(), [](Pair a, Pair b) { return a.start < b.start; })) {
      std::sort(work.begin(), work.end(), [](Pair a, Pair b) { return a.start < b.start; });
    }
    for (std::size_t k = 0; k < work.size(); ++k) {
      const auto [start, end] = work[k];
      const std::uint32_t mid = next[start];
      if (mid == 0 || mid >= n || next[mid] != end) continue;  // stale
      next[start] = end;  // merge the right part into the left
      next[mid] = 0;
      if (end < n) prev[end] = start;
      std::uint32_t lowest = start > 0 ? add_after(prev[start]) : no_rank;
      lowest = std::min(lowest, add_after(start));
      if (lowest < r && k + 1 < work.size()) {  // a lower rank came up: finish it first
        auto& rest = buckets[r];
        rest.assign(work.begin() + static_cast<std::ptrdiff_t>(k) + 1, work.end());
        ranks.push_back(r);
        std::push_heap(ranks.begin(), ranks.end(), std::greater<>());
        break;
      }
    }
    work.clear();
  }
  for (std::uint32_t i = 0; i < n; i = next[i]) emit_part(v, piece, i, next[i], out);
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
