#pragma once
// Meta's long-input splitting (tokenizer.py): encode() hands tiktoken the text in chunks of at most 400,000 code
// points, and cuts each chunk so that no piece holds more than 25,000 consecutive whitespace (str.isspace) or
// non-whitespace code points. The cuts change the tokens (a word cut in two is encoded as two words), so they are
// part of the semantics we reproduce.
//
// for_each_meta_substring_reference() transcribes Meta's Python; for_each_meta_substring() computes the same cuts
// 16 bytes at a time (SSE2) on ASCII and is tested against it. Both take valid UTF-8 and call f(byte offset, piece).
#include <cstddef>
#include <cstdint>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "llama3/tokenizer/unicode.hpp"
#include "llama3/tokenizer/utf8.hpp"

namespace llama3 {

inline constexpr std::size_t meta_max_encode_chars = 400'000;
inline constexpr std::size_t meta_max_no_whitespace_chars = 25'000;

namespace detail {

inline bool ascii_python_space(unsigned char c) noexcept { return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20); }

inline bool python_space_at(const unsigned char* p, int* len) noexcept {
  if (*p < 0x80) {
    *len = 1;
    return ascii_python_space(*p);
  }
  return unicode::is_python_space(utf8::decode_valid(p, len));
}

inline bool is_continuation(unsigned char c) noexcept { return (c & 0xC0) == 0x80; }

}  // namespace detail

template <std::size_t MaxChars = meta_max_encode_chars, std::size_t MaxRun = meta_max_no_whitespace_chars, class F>
void for_each_meta_substring_reference(std::string_view s, F&& f) {
  const auto* const begin = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = begin + s.size();
  const auto emit = [&](const unsigned char* a, const unsigned char* b) {
    f(static_cast<std::size_t>(a - begin), std::string_view(reinterpret_cast<const char*>(a), static_cast<std::size_t>(b - a)));
  };
  for (const unsigned char* chunk = begin; chunk < end;) {  // for i in range(0, len(s), MAX_CHARS)
    const unsigned char* slice = chunk;
    const unsigned char* p = chunk;
    std::size_t chars = 0, run = 0;
    bool run_is_space = false;
    for (; p < end && chars < MaxChars; ++chars) {
      int len;
      const bool space = detail::python_space_at(p, &len);
      if (chars == 0 || space != run_is_space) {
        run_is_space = space;
        run = 1;
      } else if (++run > MaxRun) {
        emit(slice, p);
        slice = p;
        run = 1;
      }
      p += len;
    }
    emit(slice, p);
    chunk = p;
  }
}

namespace detail {

// The start of the code point `n` code points after p (or end).
inline const unsigned char* advance_chars(const unsigned char* p, const unsigned char* end, std::size_t n) noexcept {
#if defined(__SSE2__)
  while (end - p >= 16 && n > 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i cont = _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8(static_cast<char>(0xC0))),
                                        _mm_set1_epi8(static_cast<char>(0x80)));
    n -= 16 - static_cast<std::size_t>(__builtin_popcount(static_cast<unsigned>(_mm_movemask_epi8(cont))));
    p += 16;
    while (p < end && is_continuation(*p)) ++p;  // the rest of the block's last character
  }
#endif
  for (; p < end && n > 0; --n) {
    ++p;
    while (p < end && is_continuation(*p)) ++p;
  }
  return p;
}

// Cuts a run [run, run_end) of one class every MaxRun code points (Meta's rule), when it is that long.
template <std::size_t MaxRun, class Emit>
void cut_run(const unsigned char* run, const unsigned char* run_end, const unsigned char*& slice, Emit& emit) {
  if (static_cast<std::size_t>(run_end - run) <= MaxRun) return;  // fewer bytes, so fewer code points
  for (const unsigned char* cut = advance_chars(run, run_end, MaxRun); cut < run_end;
       cut = advance_chars(cut, run_end, MaxRun)) {
    emit(slice, cut);
    slice = cut;
  }
}

}  // namespace detail

template <std::size_t MaxChars = meta_max_encode_chars, std::size_t MaxRun = meta_max_no_whitespace_chars, class F>
void for_each_meta_substring(std::string_view s, F&& f) {
  static_assert(MaxRun > 0 && MaxRun <= MaxChars);
  if (s.empty()) return;
  if (s.size() <= MaxRun) {  // fewer code points than either limit
    f(std::size_t{0}, s);
    return;
  }
  const auto* const begin = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = begin + s.size();
  const auto emit = [&](const unsigned char* a, const unsigned char* b) {
    f(static_cast<std::size_t>(a - begin), std::string_view(reinterpret_cast<const char*>(a), static_cast<std::size_t>(b - a)));
  };
  for (const unsigned char* chunk = begin; chunk < end;) {
    const unsigned char* const chunk_end =
        static_cast<std::size_t>(end - chunk) <= MaxChars ? end : detail::advance_chars(chunk, end, MaxChars);
    const unsigned char* slice = chunk;
    const unsigned char* run = chunk;  // where the current run of one class began
    const unsigned char* p = chunk;
    int len;
    bool run_is_space = detail::python_space_at(p, &len);
    while (p < chunk_end) {
#if defined(__SSE2__)
      // A block may hold several runs; only its first and last can be longer than it, so MaxRun >= 16 is needed.
      if (MaxRun >= 16 && chunk_end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        if (_mm_movemask_epi8(v) == 0) {  // 16 ASCII characters: classify them at once
          const auto in = [&](char lo, char hi) {
            return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                                 _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))));
          };
          const auto space = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_or_si128(in(9, 13), in(0x1C, 0x20))));
          // Bit k: character k is of another class than character k - 1.
          const std::uint32_t change = (space ^ ((space << 1) | (run_is_space ? 1u : 0u))) & 0xFFFFu;
          if (change) {
            const int first = __builtin_ctz(change), last = 31 - __builtin_clz(change);
            detail::cut_run<MaxRun>(run, p + first, slice, emit);
            run = p + last;
            run_is_space = (space >> last) & 1u;
          }
          p += 16;
          continue;
        }
      }
#endif
      const bool space = detail::python_space_at(p, &len);
      if (space != run_is_space) {
        detail::cut_run<MaxRun>(run, p, slice, emit);
        run = p;
        run_is_space = space;
      }
      p += len;
    }
    detail::cut_run<MaxRun>(run, chunk_end, slice, emit);
    emit(slice, chunk_end);
    chunk = chunk_end;
  }
}

}  // namespace llama3
