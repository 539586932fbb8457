#pragma once
// UTF-8: validation, decoding of already-valid text, Python's errors="replace" decoding, and a streaming buffer
// that releases only complete characters (what a chat UI needs while tokens arrive one by one).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace llama3::utf8 {

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";  // U+FFFD

// Examines the sequence that starts at p (n > 0 bytes available).
//   > 0: a complete, valid sequence of that many bytes;
//   = 0: a valid but incomplete prefix: every available byte fits, more are needed;
//   < 0: invalid; -k is the length of its "maximal subpart" (Unicode 15, section 3.9, U+FFFD substitution),
//        the bytes that Python's decoder replaces with one U+FFFD.
inline int examine(const unsigned char* p, std::size_t n) noexcept {
  const unsigned char b0 = p[0];
  if (b0 < 0x80) return 1;
  int len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;  // continuation byte, C0/C1 or F5..FF
  }
  for (int i = 1; i < len; ++i) {
    if (static_cast<std::size_t>(i) >= n) return 0;
    const unsigned char b = p[i];
    const bool ok = (i == 1) ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return -i;
  }
  return len;
}

// Byte offset of the first byte that is not part of valid UTF-8 (a truncated sequence at the end counts), or
// nullopt when the whole text is valid.
inline std::optional<std::size_t> find_invalid(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    // Eight ASCII bytes at a time: the common case.
    if (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const int r = examine(p + i, n - i);
    if (r <= 0) return i;
    i += static_cast<std::size_t>(r);
  }
  return std::nullopt;
}

inline bool is_valid(std::string_view text) noexcept { return !find_invalid(text).has_value(); }

// Decodes one character of text that is known to be valid UTF-8; *len receives its byte length.
inline char32_t decode_valid(const unsigned char* p, int* len) noexcept {
  const unsigned char b0 = p[0];
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  if (b0 < 0xE0) {
    *len = 2;
    return (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    *len = 3;
    return (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *len = 4;
  return (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) |
         (p[3] & 0x3F);
}

// Decodes the character that ends at p_end in valid UTF-8; *len receives its byte length.
inline char32_t decode_valid_backward(const unsigned char* begin, const unsigned char* p_end, int* len) noexcept {
  const unsigned char* p = p_end - 1;
  while (p > begin && (*p & 0xC0) == 0x80) --p;
  return decode_valid(p, len);
}

inline void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Appends `bytes` to `out` with each maximal subpart of an ill-formed sequence replaced by one U+FFFD. A valid but
// incomplete character at the end is replaced too when `at_end`, and otherwise left out. Returns the number of
// bytes consumed.
inline std::size_t append_replacing_invalid(std::string_view bytes, std::string& out, bool at_end) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0, run = 0;  // [run, i) is valid and not yet copied
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const int r = examine(p + i, n - i);
    if (r > 0) {
      i += static_cast<std::size_t>(r);
      continue;
    }
    if (r == 0 && !at_end) break;  // wait for the rest of this character
    out.append(bytes.data() + run, i - run);
    out += replacement_character;
    i += (r == 0) ? (n - i) : static_cast<std::size_t>(-r);  // a truncated tail is one maximal subpart
    run = i;
  }
  out.append(bytes.data() + run, i - run);
  return i;
}

// bytes.decode("utf-8", errors="replace") as Python (and so Meta's Tokenizer.decode) does it: each maximal
// subpart of an ill-formed sequence becomes one U+FFFD. Valid text comes back unchanged.
inline std::string replace_invalid(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_replacing_invalid(bytes, out, true);
  return out;
}

// Accepts bytes in arbitrary pieces and hands out only complete characters, replacing invalid bytes the way
// replace_invalid does. For any split of a byte string B into pieces:
//   push(piece_1) + ... + push(piece_n) + finish() == replace_invalid(B).
class StreamBuffer {
public:
  std::string push(std::string_view bytes) {
    pending_.append(bytes);
    std::string out;
    pending_.erase(0, append_replacing_invalid(pending_, out, false));
    return out;
  }

  // End of stream: an incomplete character left over becomes U+FFFD.
  std::string finish() {
    std::string out = pending_.empty() ? std::string() : std::string(replacement_character);
    pending_.clear();
    return out;
  }

  // Bytes held back because they may still become a character (at most 3).
  std::string_view pending() const noexcept { return pending_; }
  void reset() noexcept { pending_.clear(); }

private:
  std::string pending_;
};

}  // namespace llama3::utf8
