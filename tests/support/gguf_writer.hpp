#pragma once
// A small GGUF writer for the tests: metadata of every value type and tensors of any dtype, byte for byte as the
// format describes (and as ../shared/tools/gguf/make_gguf.py writes it).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "llama3/io/gguf.hpp"

namespace llama3::test {

class GgufWriter {
public:
  explicit GgufWriter(std::uint64_t alignment = 32) : alignment_(alignment) {}

  template <class T>
  static void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static void put_string(std::string& out, std::string_view s) {
    put<std::uint64_t>(out, s.size());
    out.append(s);
  }

  // A key and an already-encoded value of `type`.
  void raw(std::string_view key, io::GgufType type, const std::string& value) {
    put_string(kv_, key);
    put<std::uint32_t>(kv_, static_cast<std::uint32_t>(type));
    kv_ += value;
    ++n_kv_;
  }
  void u32(std::string_view key, std::uint32_t v) { raw(key, io::GgufType::u32, bytes_of(v)); }
  void f32(std::string_view key, float v) { raw(key, io::GgufType::f32, bytes_of(v)); }
  void str(std::string_view key, std::string_view v) {
    std::string s;
    put_string(s, v);
    raw(key, io::GgufType::string, s);
  }
  void strings(std::string_view key, const std::vector<std::string>& v) {
    std::string s;
    put<std::uint32_t>(s, static_cast<std::uint32_t>(io::GgufType::string));
    put<std::uint64_t>(s, v.size());
    for (const auto& x : v) put_string(s, x);
    raw(key, io::GgufType::array, s);
  }
  void i32s(std::string_view key, const std::vector<std::int32_t>& v) {
    std::string s;
    put<std::uint32_t>(s, static_cast<std::uint32_t>(io::GgufType::i32));
    put<std::uint64_t>(s, v.size());
    for (const auto x : v) put(s, x);
    raw(key, io::GgufType::array, s);
  }

  // A tensor: shape outermost first (as ours), stored bytes as given.
  void tensor(std::string_view name, DType dtype, const Shape& shape, std::string bytes) {
    put_string(infos_, name);
    put<std::uint32_t>(infos_, static_cast<std::uint32_t>(shape.rank()));
    for (int d = shape.rank(); d-- > 0;) put<std::uint64_t>(infos_, static_cast<std::uint64_t>(shape[d]));
    put<std::uint32_t>(infos_, io::ggml_type_id(dtype));
    while (data_.size() % alignment_) data_ += '\0';
    put<std::uint64_t>(infos_, data_.size());
    data_ += bytes;
    ++n_tensors_;
  }

  std::string bytes() const {
    std::string out = "GGUF";
    put<std::uint32_t>(out, 3);
    put<std::uint64_t>(out, n_tensors_);
    put<std::uint64_t>(out, n_kv_);
    out += kv_;
    out += infos_;
    while (out.size() % alignment_) out += '\0';
    return out + data_;
  }

  template <class T>
  static std::string bytes_of(T v) {
    std::string s;
    put(s, v);
    return s;
  }

private:
  std::uint64_t alignment_;
  std::uint64_t n_kv_ = 0, n_tensors_ = 0;
  std::string kv_, infos_, data_;
};

}  // namespace llama3::test
