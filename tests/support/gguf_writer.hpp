#pragma once
// A small GGUF writer for the tests: metadata of every value type and tensors of any dtype, byte for byte as the
// format describes (and as ../shared/tools/gguf/make_gguf.py writes it).
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "llama3/io/gguf.hpp"
#include "llama3/tokenizer.hpp"
#include "support/files.hpp"

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

// The tokenizer.ggml.* metadata of a tokenizer, as llama.cpp's converter writes it (byte-level tokens, type 1 for
// the BPE tokens and 3 for the special ones, Hugging Face's merges); the fields are there to be spoiled by tests.
struct GgufVocab {
  std::optional<std::string> model = "gpt2", pre = "llama-bpe";
  std::vector<std::string> tokens, merges;
  std::optional<std::vector<std::int32_t>> types;

  explicit GgufVocab(const Tokenizer& t) {
    const Vocabulary& v = t.vocabulary();
    types.emplace();
    for (std::size_t id = 0; id < static_cast<std::size_t>(t.n_words()); ++id) {
      const bool special = id >= v.n_mergeable();
      tokens.push_back(special ? std::string(v.bytes(static_cast<TokenId>(id)))
                               : byte_level(v.bytes(static_cast<TokenId>(id))));
      types->push_back(special ? 3 : 1);
    }
    for (const auto& [l, r] : hf_merges(t)) merges.push_back(l + " " + r);
  }

  void write(GgufWriter& w) const {
    if (model) w.str("tokenizer.ggml.model", *model);
    if (pre) w.str("tokenizer.ggml.pre", *pre);
    w.strings("tokenizer.ggml.tokens", tokens);
    if (types) w.i32s("tokenizer.ggml.token_type", *types);
    if (!merges.empty()) w.strings("tokenizer.ggml.merges", merges);
  }
};

}  // namespace llama3::test
