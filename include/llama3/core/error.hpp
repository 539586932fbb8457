#pragma once
// The one exception type of llama3.hpp. Every parser reports where (file, line, byte offset, tensor) and what it
// expected against what it found, so a user can fix the input without reading our code.
#include <cstdint>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace llama3 {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string& message) : std::runtime_error(message), message_(message) {}

  // "file: byte offset N: message" (the parts that are known).
  Error(std::string file, std::optional<std::uint64_t> offset, const std::string& message)
      : std::runtime_error(format(file, offset, message)), file_(std::move(file)), offset_(offset),
        message_(message) {}

  const std::string& file() const noexcept { return file_; }
  std::optional<std::uint64_t> offset() const noexcept { return offset_; }
  // The message without the location prefix.
  const std::string& message() const noexcept { return message_; }

private:
  static std::string format(const std::string& file, std::optional<std::uint64_t> offset, const std::string& msg) {
    std::string out;
    if (!file.empty()) out += file + ": ";
    if (offset) out += "byte offset " + std::to_string(*offset) + ": ";
    return out + msg;
  }

  std::string file_;
  std::optional<std::uint64_t> offset_;
  std::string message_;
};

namespace detail {
// Concatenates anything streamable: detail::cat("expected ", n, " found ", m).
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream s;
  (s << ... << std::forward<Args>(args));
  return s.str();
}

// A short printable excerpt of untrusted bytes for error messages.
inline std::string quote(std::string_view bytes, std::size_t max_len = 40) {
  std::string out = "\"";
  static constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < bytes.size() && i < max_len; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (bytes.size() > max_len) out += "...";
  return out + "\"";
}
}  // namespace detail

}  // namespace llama3
