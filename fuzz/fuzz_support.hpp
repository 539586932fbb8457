#pragma once
// What the fuzz targets share: checks that trap (so that libFuzzer keeps the input), and structure-aware mutation
// for the binary formats. Byte flips rarely turn a valid GGUF or .pth into one that reaches the arithmetic on
// sizes and offsets; these mutators walk the file's structure, find its integer fields (counts, lengths, offsets,
// dimensions, types, a pickle's integers) and write boundary values into one, keeping the rest valid.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/io/raw_tensor.hpp"
#include "llama3/io/zip.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/hostile_files.hpp"

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

#define FUZZ_CHECK(cond)             \
  do {                               \
    if (!(cond)) __builtin_trap();   \
  } while (0)

namespace llama3::fuzz {

// t's bytes lie inside [begin, begin + size) (computed without overflow), and are read (ASan checks them).
inline void check_inside(const io::RawTensor& t, const void* begin, std::size_t size) {
  const auto* b = static_cast<const std::byte*>(begin);
  FUZZ_CHECK(t.data >= b && t.data <= b + size);
  FUZZ_CHECK(t.bytes() <= static_cast<std::size_t>(b + size - t.data));
  if (t.bytes()) {
    volatile std::byte first = t.data[0], last = t.data[t.bytes() - 1];
    (void)first, (void)last;
  }
}

// A value for an integer field of `width` bytes that held `old`: a boundary value, one near it, or old nudged.
inline std::uint64_t boundary_value(std::uint64_t old, int width, std::mt19937_64& rng) {
  const auto& v = test::boundary_integers();
  std::uint64_t x;
  switch (rng() % 4) {
    case 0: x = v[rng() % v.size()]; break;
    case 1: x = v[rng() % v.size()] - (rng() % 64); break;
    case 2: x = old + (rng() % 64) - 32; break;
    default: x = old * ((rng() % 8) + 2); break;
  }
  return width >= 8 ? x : x & ((std::uint64_t{1} << (8 * width)) - 1);
}

struct Field {
  std::size_t at;
  int width;
  bool is_type = false;  // a GGUF ggml type: retyped among the types we read
};

inline std::uint64_t load_le(const std::uint8_t* p, int width) {
  std::uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline void store_le(std::uint8_t* p, std::uint64_t v, int width) {
  for (int i = 0; i < width; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// The integer fields of a GGUF file, as far as it parses: counts, lengths, value and item types, array counts,
// dimension counts and sizes, tensor types and offsets.
inline std::vector<Field> gguf_fields(const std::uint8_t* d, std::size_t size) {
  std::vector<Field> f;
  std::size_t at = 24;
  if (size < at || std::memcmp(d, "GGUF", 4) != 0) return f;
  f.push_back({8, 8});
  f.push_back({16, 8});
  const std::uint64_t n_tensors = load_le(d + 8, 8), n_kv = load_le(d + 16, 8);
  const auto have = [&](std::size_t n) { return n <= size - at; };
  const auto string = [&] {
    if (!have(8)) return false;
    f.push_back({at, 8});
    const std::uint64_t n = load_le(d + at, 8);
    at += 8;
    if (!have(n)) return false;
    at += n;
    return true;
  };
  const auto scalar_size = [](std::uint32_t t) -> std::size_t {
    static constexpr std::size_t s[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? s[t] : 0;
  };
  for (std::uint64_t k = 0; k < n_kv && k < 4096; ++k) {
    if (!string() || !have(4)) return f;
    f.push_back({at, 4});
    const auto type = static_cast<std::uint32_t>(load_le(d + at, 4));
    at += 4;
    if (type == 8) {
      if (!string()) return f;
    } else if (type == 9) {
      if (!have(12)) return f;
      f.push_back({at, 4});
      f.push_back({at + 4, 8});
      const auto item = static_cast<std::uint32_t>(load_le(d + at, 4));
      const std::uint64_t count = load_le(d + at + 4, 8);
      at += 12;
      if (item == 8) {
        for (std::uint64_t i = 0; i < count; ++i) {
          if (!string()) return f;
          if (i > 64) f.pop_back();  // the first strings' lengths are enough
        }
      } else {
        const std::size_t s = scalar_size(item);
        if (s == 0 || count > (size - at) / s) return f;
        at += count * s;
      }
    } else {
      const std::size_t s = scalar_size(type);
      if (s == 0 || !have(s)) return f;
      at += s;
    }
  }
  for (std::uint64_t t = 0; t < n_tensors && t < 4096; ++t) {
    if (!string() || !have(4)) return f;
    f.push_back({at, 4});
    const std::uint64_t n_dims = load_le(d + at, 4);
    at += 4;
    if (n_dims > 4 || !have(8 * n_dims + 12)) return f;
    for (std::uint64_t i = 0; i < n_dims; ++i, at += 8) f.push_back({at, 8});
    f.push_back({at, 4, /*is_type=*/true});
    f.push_back({at + 4, 8});
    at += 12;
  }
  return f;
}

inline std::size_t mutate_gguf(std::uint8_t* d, std::size_t size, std::size_t max_size, unsigned seed) {
  std::mt19937_64 rng(seed);
  const std::vector<Field> fields = gguf_fields(d, size);
  if (fields.empty() || rng() % 3 == 0) return LLVMFuzzerMutate(d, size, max_size);
  const Field& field = fields[rng() % fields.size()];
  if (field.is_type) {  // the same bytes declared another type (F32 read as Q8_0...)
    static constexpr std::uint32_t types[] = {0, 1, 2, 8, 12, 14, 30};
    store_le(d + field.at, types[rng() % 7], 4);
  } else {
    store_le(d + field.at, boundary_value(load_le(d + field.at, field.width), field.width, rng), field.width);
  }
  return size;
}

// The opcodes of a pickle that push an integer (BININT1, BININT2, BININT, LONG1) or carry a length or a memo index.
inline std::vector<Field> pickle_fields(std::string_view p) {
  std::vector<Field> f;
  std::size_t at = 0;
  const auto arg = [&](std::size_t n) { return n <= p.size() - at; };
  while (at < p.size()) {
    const auto op = static_cast<unsigned char>(p[at]);
    const std::size_t start = at++;
    std::size_t n = 0;
    switch (op) {
      case 0x80: case 'K': case 'q': case 'h': n = 1; break;
      case 'M': n = 2; break;
      case 'J': case 'r': case 'j': n = 4; break;
      case 0x95: case 'G': n = 8; break;
      case 0x8a: if (!arg(1)) return f; n = 1 + static_cast<unsigned char>(p[at]); break;
      case 'X': if (!arg(4)) return f; n = 4 + load_le(reinterpret_cast<const std::uint8_t*>(p.data() + at), 4); break;
      case 0x8c: if (!arg(1)) return f; n = 1 + static_cast<unsigned char>(p[at]); break;
      case 0x8d: if (!arg(8)) return f; n = 8 + load_le(reinterpret_cast<const std::uint8_t*>(p.data() + at), 8); break;
      case 'c': {
        const std::size_t a = p.find('\n', at), b = a == std::string_view::npos ? a : p.find('\n', a + 1);
        if (b == std::string_view::npos) return f;
        n = b + 1 - at;
        break;
      }
      case '.': return f;
      default: break;
    }
    if (!arg(n)) return f;
    if (op == 'K' || op == 'M' || op == 'J' || op == 0x8a) f.push_back({start, static_cast<int>(1 + n)});
    if (op == 'X' || op == 'r' || op == 'j') f.push_back({start + 1, 4});
    if (op == 0x8d) f.push_back({start + 1, 8});
    at += n;
  }
  return f;
}

// An integer of the pickle replaced by a LONG1 of 8 bytes holding a boundary value (the stream grows), or a length
// or index overwritten in place.
inline std::string mutate_pickle(std::string p, std::mt19937_64& rng) {
  const std::vector<Field> fields = pickle_fields(p);
  if (fields.empty()) return p;
  const Field& field = fields[rng() % fields.size()];
  const auto op = static_cast<unsigned char>(p[field.at]);
  if (op == 'K' || op == 'M' || op == 'J' || op == 0x8a) {
    std::string long1 = "\x8a\x08";
    test::put_le(long1, boundary_value(0, 8, rng), 8);
    return p.replace(field.at, static_cast<std::size_t>(field.width), long1);
  }
  auto* d = reinterpret_cast<std::uint8_t*>(p.data());
  store_le(d + field.at, boundary_value(load_le(d + field.at, field.width), field.width, rng), field.width);
  return p;
}

// A .pth archive: its pickle mutated (the archive rebuilt around it), or one entry's local-header offset pointed
// at another's (entries that overlap); an input that is no archive is mutated as a bare pickle.
inline std::size_t mutate_pth(std::uint8_t* d, std::size_t size, std::size_t max_size, unsigned seed) {
  std::mt19937_64 rng(seed);
  if (rng() % 3 == 0) return LLVMFuzzerMutate(d, size, max_size);
  const std::string_view bytes(reinterpret_cast<const char*>(d), size);
  std::string out;
  try {
    const io::ZipReader zip(bytes, "fuzz.pth");
    std::vector<std::pair<std::string, std::string>> entries;
    for (const auto& [name, e] : zip.entries()) entries.emplace_back(name, std::string(zip.data(e)));
    if (entries.empty()) return LLVMFuzzerMutate(d, size, max_size);
    for (auto& [name, data] : entries) {
      if (name.ends_with("data.pkl") && rng() % 4 != 0) data = mutate_pickle(data, rng);
    }
    out = test::zip_bytes(entries, rng() % 4 == 0);
    if (rng() % 4 == 0) {  // one central-directory entry's local header moved onto another's
      std::vector<std::size_t> cd;
      for (std::size_t at = out.find("PK\x01\x02"); at != std::string::npos; at = out.find("PK\x01\x02", at + 4)) {
        cd.push_back(at);
      }
      if (cd.size() >= 2 && out.find("PK\x06\x06") == std::string::npos) {
        const std::size_t a = cd[rng() % cd.size()], b = cd[rng() % cd.size()];
        std::memcpy(out.data() + a + 42, out.data() + b + 42, 4);
      }
    }
  } catch (const Error&) {
    out = mutate_pickle(std::string(bytes), rng);
  }
  if (out.size() > max_size) return LLVMFuzzerMutate(d, size, max_size);
  std::memcpy(d, out.data(), out.size());
  return out.size();
}

}  // namespace llama3::fuzz
