#pragma once
// GGUF (llama.cpp's file format, version 2 and 3): the metadata key/value pairs and the tensor table, with the
// tensors left in the mapped file. Every length, count, offset and shape is checked against the file before use:
// a hostile file gets an llama3::Error naming the byte offset, never a read past the end.
//
// What llama.cpp's reader requires, we require: the tensors' data follow one another in the order of the table,
// each at the end of the one before rounded up to the alignment, so every byte of the data belongs to one tensor;
// a tensor whose declared type or shape disagrees with its bytes moves the next one's expected offset and is an
// Error, not garbage (and bytes after the last tensor are one too). Arrays are not nested (llama.cpp reads none).
// Memory stays in proportion to the file: strings and arrays are views of it, read when asked for (a metadata
// array the loader never asks for costs nothing), and the metadata and tensor tables hold a few dozen bytes per
// entry, each of which takes at least 13 bytes of the file.
//
// Layout: "GGUF", u32 version, u64 n_tensors, u64 n_kv; n_kv x (string key, u32 type, value); n_tensors x (string
// name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset); padding to the alignment (general.alignment, 32 by
// default); the data. ne[0] is the innermost dimension, so ne = [in, out] is our Shape {out, in}.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/core/error.hpp"
#include "llama3/core/mapped_file.hpp"
#include "llama3/io/raw_tensor.hpp"

namespace llama3::io {

enum class GgufType : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9, u64 = 10,
  i64 = 11, f64 = 12
};

// Bytes per item of a fixed-size value type; 0 for strings and arrays.
inline std::uint64_t gguf_type_size(GgufType t) noexcept {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    case GgufType::string: case GgufType::array: return 0;
  }
  return 0;
}

struct GgufValue {
  GgufType type = GgufType::u8;
  GgufType item_type = GgufType::u8;  // arrays
  std::uint64_t count = 0;            // arrays: the number of items
  std::uint64_t u = 0;                // unsigned and bool values; signed ones too when not negative
  std::int64_t i = 0;                 // integer values
  double f = 0;                       // every number
  std::string_view s;                 // strings; arrays: the items' bytes (both inside the mapped file)

  bool is_integer() const noexcept { return is_integer_type(type); }
  static bool is_integer_type(GgufType t) noexcept {
    return t <= GgufType::i32 || t == GgufType::u64 || t == GgufType::i64;
  }
  bool is_array_of(GgufType t) const noexcept { return type == GgufType::array && item_type == t; }

  // The items of an array of strings, as views of the file (the reader checked their lengths).
  std::vector<std::string_view> strings() const {
    std::vector<std::string_view> out;
    if (!is_array_of(GgufType::string)) return out;
    out.reserve(static_cast<std::size_t>(count));
    for (std::size_t at = 0; out.size() < count;) {
      std::uint64_t n;
      std::memcpy(&n, s.data() + at, 8);
      out.push_back(s.substr(at + 8, static_cast<std::size_t>(n)));
      at += 8 + static_cast<std::size_t>(n);
    }
    return out;
  }
  // The items of an array of integers (empty for any other array).
  std::vector<std::int64_t> integers() const {
    std::vector<std::int64_t> out;
    if (type != GgufType::array || !is_integer_type(item_type)) return out;
    out.resize(static_cast<std::size_t>(count));
    const std::size_t size = static_cast<std::size_t>(gguf_type_size(item_type));
    for (std::size_t k = 0; k < out.size(); ++k) {
      const char* p = s.data() + k * size;
      switch (item_type) {
        case GgufType::u8: out[k] = static_cast<unsigned char>(*p); break;
        case GgufType::i8: out[k] = static_cast<signed char>(*p); break;
        case GgufType::u16: out[k] = load<std::uint16_t>(p); break;
        case GgufType::i16: out[k] = load<std::int16_t>(p); break;
        case GgufType::u32: out[k] = load<std::uint32_t>(p); break;
        case GgufType::i32: out[k] = load<std::int32_t>(p); break;
        case GgufType::u64: out[k] = static_cast<std::int64_t>(load<std::uint64_t>(p)); break;
        default: out[k] = load<std::int64_t>(p); break;
      }
    }
    return out;
  }

private:
  template <class T>
  static T load(const char* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
};

struct GgufFile {
  std::uint32_t version = 0;
  std::uint64_t alignment = 32;
  std::uint64_t data_offset = 0;  // where the tensor data starts
  // Sorted by key; keys and values view the file, which `owner` keeps alive.
  std::vector<std::pair<std::string_view, GgufValue>> metadata;
  TensorMap tensors;
  std::shared_ptr<const void> owner;

  const GgufValue* find(std::string_view key) const {
    const auto it = std::lower_bound(metadata.begin(), metadata.end(), key,
                                     [](const auto& kv, std::string_view k) { return kv.first < k; });
    return it != metadata.end() && it->first == key ? &it->second : nullptr;
  }
};

// ggml's type ids for the tensor types we read, and the names of others for errors.
inline std::optional<DType> ggml_dtype(std::uint32_t t) {
  switch (t) {
    case 0: return DType::f32;
    case 1: return DType::f16;
    case 2: return DType::q4_0;
    case 8: return DType::q8_0;
    case 12: return DType::q4_k;
    case 14: return DType::q6_k;
    case 30: return DType::bf16;
    default: return std::nullopt;
  }
}
inline std::uint32_t ggml_type_id(DType t) {
  switch (t) {
    case DType::f32: return 0;
    case DType::f16: return 1;
    case DType::q4_0: return 2;
    case DType::q8_0: return 8;
    case DType::q4_k: return 12;
    case DType::q6_k: return 14;
    case DType::bf16: return 30;
    case DType::q4_0x32: break;  // our CPU layout: write its Q4_0 blocks instead
  }
  throw Error(std::string("no GGUF type stores ") + std::string(dtype_name(t)));
}
inline std::string ggml_type_name(std::uint32_t t) {
  static const char* names[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
                                "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS",
                                "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64",
                                "IQ1_M", "BF16"};
  return t < std::size(names) ? names[t] : "unknown";
}

namespace gguf_detail {

class Reader {
public:
  Reader(std::string_view bytes, const std::string& source) : b_(bytes), source_(source) {}

  [[noreturn]] void fail(std::uint64_t at, const std::string& what) const { throw Error(source_, at, what); }
  std::uint64_t pos() const noexcept { return pos_; }
  std::uint64_t left() const noexcept { return b_.size() - pos_; }

  template <class T>
  T read(const char* what) {
    if (left() < sizeof(T)) fail(pos_, detail::cat("the file ends inside ", what, " (", b_.size(), " bytes)"));
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view string(const char* what) {
    const std::uint64_t at = pos_;
    const auto n = read<std::uint64_t>(what);
    if (n > left()) fail(at, detail::cat(what, ": a string of ", n, " bytes runs past the end of the file"));
    const std::string_view s = b_.substr(static_cast<std::size_t>(pos_), static_cast<std::size_t>(n));
    pos_ += n;
    return s;
  }

  // A value of `type` at the current position; arrays and strings stay views of the file.
  GgufValue value(GgufType type, const char* what) {
    GgufValue v;
    v.type = type;
    const std::uint64_t at = pos_;
    switch (type) {
      case GgufType::u8: v.u = read<std::uint8_t>(what); break;
      case GgufType::i8: v.i = read<std::int8_t>(what); break;
      case GgufType::u16: v.u = read<std::uint16_t>(what); break;
      case GgufType::i16: v.i = read<std::int16_t>(what); break;
      case GgufType::u32: v.u = read<std::uint32_t>(what); break;
      case GgufType::i32: v.i = read<std::int32_t>(what); break;
      case GgufType::u64: v.u = read<std::uint64_t>(what); break;
      case GgufType::i64: v.i = read<std::int64_t>(what); break;
      case GgufType::f32: v.f = read<float>(what); break;
      case GgufType::f64: v.f = read<double>(what); break;
      case GgufType::boolean: {
        const auto b = read<std::uint8_t>(what);
        if (b > 1) fail(at, detail::cat(what, ": a bool of value ", int(b)));
        v.u = b;
        break;
      }
      case GgufType::string: v.s = string(what); break;
      case GgufType::array: {
        const auto item = read<std::uint32_t>(what);
        if (item == static_cast<std::uint32_t>(GgufType::array)) {
          fail(at, detail::cat(what, ": an array of arrays (llama.cpp reads none)"));
        }
        if (item > static_cast<std::uint32_t>(GgufType::f64)) fail(at, detail::cat(what, ": unknown array item type ", item));
        v.item_type = static_cast<GgufType>(item);
        v.count = read<std::uint64_t>(what);
        const std::uint64_t begin = pos_;
        if (const std::uint64_t size = gguf_type_size(v.item_type)) {
          if (v.count > left() / size) {
            fail(at, detail::cat(what, ": an array of ", v.count, " items of ", size, " bytes cannot fit in the ", left(),
                                 " bytes left"));
          }
          pos_ += v.count * size;
        } else {  // strings: each length checked, nothing kept
          if (v.count > left() / 8) fail(at, detail::cat(what, ": an array of ", v.count, " strings cannot fit in the file"));
          for (std::uint64_t k = 0; k < v.count; ++k) string(what);
        }
        v.s = b_.substr(static_cast<std::size_t>(begin), static_cast<std::size_t>(pos_ - begin));
        return v;
      }
      default: fail(at, detail::cat(what, ": unknown value type ", static_cast<std::uint32_t>(type)));
    }
    if (type == GgufType::i8 || type == GgufType::i16 || type == GgufType::i32 || type == GgufType::i64) {
      v.f = static_cast<double>(v.i);
      v.u = v.i >= 0 ? static_cast<std::uint64_t>(v.i) : 0;
    } else if (type != GgufType::f32 && type != GgufType::f64) {
      v.i = static_cast<std::int64_t>(v.u);
      v.f = static_cast<double>(v.u);
    }
    return v;
  }

private:
  std::string_view b_;
  const std::string& source_;
  std::uint64_t pos_ = 0;
};

}  // namespace gguf_detail

// Reads a GGUF file held in `bytes` (kept alive by `owner`); `source` names it in errors.
inline GgufFile read_gguf(std::string_view bytes, std::shared_ptr<const void> owner, const std::string& source) {
  gguf_detail::Reader r(bytes, source);
  GgufFile g;
  g.owner = owner;
  if (bytes.size() < 4 || bytes.substr(0, 4) != "GGUF") r.fail(0, "not a GGUF file (no \"GGUF\" magic)");
  r.read<std::uint32_t>("the magic");
  g.version = r.read<std::uint32_t>("the version");
  if (g.version != 2 && g.version != 3) r.fail(4, detail::cat("GGUF version ", g.version, ": versions 2 and 3 are read"));
  const std::uint64_t n_tensors = r.read<std::uint64_t>("the tensor count");
  const std::uint64_t n_kv = r.read<std::uint64_t>("the metadata count");
  // A key/value pair takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8.
  if (n_kv > r.left() / 13) r.fail(16, detail::cat(n_kv, " metadata pairs cannot fit in the file"));
  if (n_tensors > r.left() / 24) r.fail(8, detail::cat(n_tensors, " tensors cannot fit in the file"));

  g.metadata.reserve(static_cast<std::size_t>(n_kv));
  std::vector<std::uint64_t> kv_at;  // where each pair starts, for errors
  for (std::uint64_t k = 0; k < n_kv; ++k) {
    const std::uint64_t at = r.pos();
    const std::string_view key = r.string("a metadata key");
    const auto type = r.read<std::uint32_t>("a metadata type");
    if (type > static_cast<std::uint32_t>(GgufType::f64)) r.fail(at, detail::cat("metadata ", detail::quote(key, 80), ": unknown type ", type));
    g.metadata.emplace_back(key, r.value(static_cast<GgufType>(type), "a metadata value"));
    kv_at.push_back(at);
  }
  {
    std::vector<std::size_t> order(g.metadata.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return g.metadata[a].first < g.metadata[b].first;
    });
    for (std::size_t k = 1; k < order.size(); ++k) {
      if (g.metadata[order[k]].first == g.metadata[order[k - 1]].first) {
        r.fail(kv_at[order[k]], "metadata key " + detail::quote(g.metadata[order[k]].first, 80) + " appears twice");
      }
    }
    std::sort(g.metadata.begin(), g.metadata.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  if (const GgufValue* a = g.find("general.alignment")) {
    if (!a->is_integer() || a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > 65536) {
      r.fail(0, detail::cat("general.alignment ", a->u, " is not a power of two up to 65536"));
    }
    g.alignment = a->u;
  }

  // The table goes straight into g.tensors (their data pointers set once the data's start is known); `order`
  // keeps the declaration order, which the layout check needs, at 16 bytes a tensor.
  struct Declared {
    std::pair<const std::string, RawTensor>* tensor;
    std::uint64_t at;  // where its info starts, for errors
  };
  std::vector<Declared> order;
  order.reserve(static_cast<std::size_t>(n_tensors));
  const auto source_name = std::make_shared<const std::string>(source);
  for (std::uint64_t t = 0; t < n_tensors; ++t) {
    const std::uint64_t at = r.pos();
    const std::string_view name = r.string("a tensor name");
    const auto bad = [&](const std::string& what) { r.fail(at, "tensor " + detail::quote(name, 120) + ": " + what); };
    const auto n_dims = r.read<std::uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > static_cast<std::uint32_t>(max_tensor_rank)) bad(detail::cat(n_dims, " dimensions: 1 to 4 are read"));
    std::uint64_t ne[max_tensor_rank];
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = r.read<std::uint64_t>("a tensor's dimensions");
      if (ne[d] == 0 || ne[d] > (std::uint64_t{1} << 40)) bad(detail::cat("dimension ", d, " is ", ne[d]));
    }
    RawTensor info;
    for (std::uint32_t d = n_dims; d-- > 0;) info.shape.push_back(static_cast<std::int64_t>(ne[d]));  // outermost first
    const auto type = r.read<std::uint32_t>("a tensor's type");
    const auto dtype = ggml_dtype(type);
    if (!dtype) {
      bad(detail::cat("ggml type ", ggml_type_name(type), " (", type, ") is not one we read (F32, F16, BF16, Q8_0, "
                      "Q4_0, Q4_K, Q6_K)"));
    }
    info.dtype = *dtype;
    const std::int64_t block = dtype_block_elements(info.dtype);
    if (static_cast<std::int64_t>(ne[0]) % block != 0) {
      bad(detail::cat("rows of ", ne[0], " values are not whole ", dtype_name(info.dtype), " blocks of ", block));
    }
    std::uint64_t blocks = 0;
    if (!io_detail::checked_numel(info.shape, 1, blocks)) bad("shape " + info.shape.str() + " is absurd");
    blocks /= static_cast<std::uint64_t>(block);
    if (blocks > (std::uint64_t{1} << 50) / dtype_block_bytes(info.dtype)) bad("shape " + info.shape.str() + " is absurd");
    info.offset = r.read<std::uint64_t>("a tensor's offset");  // from the data's start, until the data is found
    info.owner = owner;
    info.source = source_name;
    const auto [it, fresh] = g.tensors.emplace(std::string(name), std::move(info));
    if (!fresh) bad("appears twice");
    order.push_back({&*it, at});
  }
  g.data_offset = (r.pos() + g.alignment - 1) / g.alignment * g.alignment;
  if (n_tensors > 0 && g.data_offset > bytes.size()) r.fail(r.pos(), "the file ends before the tensor data");
  const std::uint64_t data_size = n_tensors > 0 ? bytes.size() - g.data_offset : 0;

  // Each tensor where the one before it ends, rounded up to the alignment (all sizes are under 2^50 bytes).
  std::uint64_t expected = 0, end = 0;
  for (const Declared& d : order) {
    const std::string& name = d.tensor->first;
    RawTensor& t = d.tensor->second;
    if (t.offset != expected) {
      r.fail(d.at, detail::cat("tensor ", detail::quote(name, 120), " has offset ", t.offset, ", expected ", expected,
                               " (the end of the tensor before it, aligned to ", g.alignment, "): the tensors must "
                               "follow one another, so a type or shape before it disagrees with its bytes"));
    }
    if (t.bytes() > data_size - std::min(data_size, t.offset)) {
      r.fail(d.at, detail::cat("tensor ", detail::quote(name, 120), ": its ", t.bytes(), " bytes at offset ", t.offset,
                               " run past the end of the data (", data_size, " bytes)"));
    }
    end = t.offset + t.bytes();
    expected = (end + g.alignment - 1) / g.alignment * g.alignment;
    t.data = reinterpret_cast<const std::byte*>(bytes.data()) + g.data_offset + t.offset;
    t.offset += g.data_offset;  // now from the start of the file
  }
  if (n_tensors > 0 && data_size > std::max(end, expected)) {
    r.fail(g.data_offset + end, detail::cat(data_size - expected, " bytes after the last tensor's data: the tensor "
                                            "table does not account for the file (a type or shape is wrong)"));
  }
  return g;
}

// Maps (or reads into memory) and parses a GGUF file.
inline GgufFile read_gguf_file(const std::filesystem::path& path, FileAccess access = FileAccess::map) {
  auto file = std::make_shared<MappedFile>(path, access);
  const std::string_view bytes = file->bytes();
  return read_gguf(bytes, file, path.string());
}

}  // namespace llama3::io
