#pragma once
// The token table: the bytes of every token (one arena), and an open-addressing hash map from the bytes of a
// mergeable token to its rank. In a tiktoken vocabulary the rank of a mergeable token is its id, and BPE merges
// the adjacent pair whose concatenation has the lowest rank.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/core/error.hpp"

namespace llama3 {

using TokenId = std::int32_t;

namespace detail {

inline std::uint64_t load_tail(const char* p, std::size_t n) noexcept {  // 1 <= n <= 8, no read past p + n
  if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    return a | (std::uint64_t(b) << 32);
  }
  if (n >= 2) {
    std::uint16_t a, b;
    std::memcpy(&a, p, 2);
    std::memcpy(&b, p + n - 2, 2);
    return a | (std::uint64_t(b) << 16);
  }
  return static_cast<unsigned char>(p[0]);
}

inline std::uint64_t hash_bytes(const char* p, std::size_t n) noexcept {
  constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = (n + 1) * 0xFF51AFD7ED558CCDull;
  while (n > 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n) h = (h ^ load_tail(p, n)) * k;
  h ^= h >> 32;
  h *= 0xC2B2AE3D27D4EB4Full;
  h ^= h >> 29;
  return h;
}

// a[0, n) == b[0, n), inline for the short strings that tokens are.
inline bool equal_bytes(const char* a, const char* b, std::size_t n) noexcept {
  if (n <= 8) return n == 0 || load_tail(a, n) == load_tail(b, n);
  if (n <= 16) {
    std::uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a, 8);
    std::memcpy(&b0, b, 8);
    std::memcpy(&a1, a + n - 8, 8);
    std::memcpy(&b1, b + n - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  return std::memcmp(a, b, n) == 0;
}

}  // namespace detail

class Vocabulary {
public:
  Vocabulary() : slots_(1, Slot{0, -1}) {}

  // tokens[id] are the bytes of token `id`. The first n_mergeable tokens are mergeable (rank == id) and must be
  // distinct; the rest (special tokens) are stored for decoding only.
  // `source` names the file in errors.
  Vocabulary(const std::vector<std::string>& tokens, std::size_t n_mergeable, const std::string& source = {})
      : n_mergeable_(n_mergeable) {
    std::size_t total = 0;
    for (const auto& t : tokens) total += t.size();
    if (total > 0xFFFFFFFFu || tokens.size() > 0x7FFFFFFFu) throw Error(source, std::nullopt, "vocabulary too large");
    arena_.reserve(total);
    offsets_.reserve(tokens.size() + 1);
    offsets_.push_back(0);
    for (const auto& t : tokens) {
      arena_ += t;
      offsets_.push_back(static_cast<std::uint32_t>(arena_.size()));
    }
    std::size_t cap = 16;
    while (cap < 2 * n_mergeable) cap <<= 1;
    slots_.assign(cap, Slot{0, -1});
    mask_ = cap - 1;
    for (std::size_t id = 0; id < n_mergeable; ++id) {
      const std::string_view b = bytes(static_cast<TokenId>(id));
      const std::uint64_t h = detail::hash_bytes(b.data(), b.size());
      std::size_t i = h & mask_;
      while (slots_[i].id >= 0) {
        if (slots_[i].tag == tag(h) && bytes(slots_[i].id) == b) {
          throw Error(source, std::nullopt,
                      detail::cat("duplicate token: ids ", slots_[i].id, " and ", id, " are both ", detail::quote(b)));
        }
        i = (i + 1) & mask_;
      }
      slots_[i] = Slot{tag(h), static_cast<TokenId>(id)};
    }
  }

  std::size_t size() const noexcept { return offsets_.empty() ? 0 : offsets_.size() - 1; }
  std::size_t n_mergeable() const noexcept { return n_mergeable_; }

  // The bytes of token `id` (unchecked: 0 <= id < size()).
  std::string_view bytes(TokenId id) const noexcept {
    const std::uint32_t b = offsets_[static_cast<std::size_t>(id)];
    return {arena_.data() + b, offsets_[static_cast<std::size_t>(id) + 1] - b};
  }

  // The rank of a mergeable token, or -1.
  TokenId rank(const char* p, std::size_t n) const noexcept {
    const std::uint64_t h = detail::hash_bytes(p, n);
    const std::uint32_t t = tag(h);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == t) {
        const std::uint32_t b = offsets_[static_cast<std::size_t>(s.id)];
        if (offsets_[static_cast<std::size_t>(s.id) + 1] - b == n && detail::equal_bytes(arena_.data() + b, p, n)) {
          return s.id;
        }
      }
    }
  }
  TokenId rank(std::string_view b) const noexcept { return rank(b.data(), b.size()); }

private:
  struct Slot {
    std::uint32_t tag;
    TokenId id;  // -1: empty
  };
  static std::uint32_t tag(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h >> 32); }

  std::string arena_;
  std::vector<std::uint32_t> offsets_;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t n_mergeable_ = 0;
};

}  // namespace llama3
