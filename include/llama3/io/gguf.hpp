#pragma once
// GGUF (llama.cpp's file format, version 2 and 3): the metadata key/value pairs and the tensor table, with the
// tensors left in the mapped file. Every length, count, offset and shape is checked against the file before use:
// a hostile file gets an llama3::Error naming the byte offset, never a read past the end.
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

struct GgufValue {
  GgufType type = GgufType::u8;
  GgufType item_type = GgufType::u8;  // arrays
  std::uint64_t u = 0;                // unsigned and bool values; signed ones too when not negative
  std::int64_t i = 0;                 // integer values
  double f = 0;                       // every number
  std::string_view s;                 // strings (inside the mapped file)
  std::vector<GgufValue> items;       // arrays

  bool is_integer() const noexcept { return type <= GgufType::i32 || type == GgufType::u64 || type == GgufType::i64; }
};

struct GgufFile {
  std::uint32_t version = 0;
  std::uint64_t alignment = 32;
  std::uint64_t data_offset = 0;  // where the tensor data starts
  std::map<std::string, GgufValue, std::less<>> metadata;  // strings view the file, which `owner` keeps alive
  TensorMap tensors;
  std::shared_ptr<const void> owner;

  const GgufValue* find(std::string_view key) const {
    const auto it = metadata.find(key);
    return it == metadata.end() ? nullptr : &it->second;
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

  GgufValue value(GgufType type, int depth, const char* what) {
    GgufValue v;
    v.type = type;
    const std::uint64_t at = pos_;
    switch (type) {
      case GgufType::u8: v.u = read<std::uint8_t>(what); v.i = static_cast<std::int64_t>(v.u); v.f = static_cast<double>(v.u); break;
      case GgufType::i8: v.i = read<std::int8_t>(what); break;
      case GgufType::u16: v.u = read<std::uint16_t>(what); v.i = static_cast<std::int64_t>(v.u); v.f = static_cast<double>(v.u); break;
      case GgufType::i16: v.i = read<std::int16_t>(what); break;
      case GgufType::u32: v.u = read<std::uint32_t>(what); v.i = static_cast<std::int64_t>(v.u); v.f = static_cast<double>(v.u); break;
      case GgufType::i32: v.i = read<std::int32_t>(what); break;
      case GgufType::u64: v.u = read<std::uint64_t>(what); v.i = static_cast<std::int64_t>(v.u); v.f = static_cast<double>(v.u); break;
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
        if (depth >= 4) fail(at, detail::cat(what, ": arrays nested more than 4 deep"));
        const auto item = read<std::uint32_t>(what);
        if (item > static_cast<std::uint32_t>(GgufType::f64)) fail(at, detail::cat(what, ": unknown array item type ", item));
        v.item_type = static_cast<GgufType>(item);
        const std::uint64_t n = read<std::uint64_t>(what);
        // Every item takes at least one byte: a count beyond the bytes left is a lie, not a reason to allocate.
        if (n > left()) fail(at, detail::cat(what, ": an array of ", n, " items cannot fit in the ", left(), " bytes left"));
        v.items.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t k = 0; k < n; ++k) v.items.push_back(value(v.item_type, depth + 1, what));
        return v;
      }
      default: fail(at, detail::cat(what, ": unknown value type ", static_cast<std::uint32_t>(type)));
    }
    if (type == GgufType::i8 || type == GgufType::i16 || type == GgufType::i32 || type == GgufType::i64) {
      v.f = static_cast<double>(v.i);
      v.u = v.i >= 0 ? static_cast<std::uint64_t>(v.i) : 0;
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

  for (std::uint64_t k = 0; k < n_kv; ++k) {
    const std::uint64_t at = r.pos();
    const std::string key(r.string("a metadata key"));
    const auto type = r.read<std::uint32_t>("a metadata type");
    if (type > static_cast<std::uint32_t>(GgufType::f64)) r.fail(at, detail::cat("metadata ", detail::quote(key, 80), ": unknown type ", type));
    GgufValue v = r.value(static_cast<GgufType>(type), 0, "a metadata value");
    if (!g.metadata.emplace(key, std::move(v)).second) r.fail(at, "metadata key " + detail::quote(key, 80) + " appears twice");
  }
  if (const GgufValue* a = g.find("general.alignment")) {
    if (!a->is_integer() || a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > 65536) {
      r.fail(0, detail::cat("general.alignment ", a->u, " is not a power of two up to 65536"));
    }
    g.alignment = a->u;
  }

  struct Info {
    std::string name;
    Shape shape;
    DType dtype;
    std::uint64_t offset, bytes, at;
  };
  std::vector<Info> infos;
  for (std::uint64_t t = 0; t < n_tensors; ++t) {
    const std::uint64_t at = r.pos();
    Info info;
    info.at = at;
    info.name = std::string(r.string("a tensor name"));
    const auto bad = [&](const std::string& what) { r.fail(at, "tensor " + detail::quote(info.name, 120) + ": " + what); };
    const auto n_dims = r.read<std::uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > static_cast<std::uint32_t>(max_tensor_rank)) bad(detail::cat(n_dims, " dimensions: 1 to 4 are read"));
    std::uint64_t ne[max_tensor_rank];
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = r.read<std::uint64_t>("a tensor's dimensions");
      if (ne[d] == 0 || ne[d] > (std::uint64_t{1} << 40)) bad(detail::cat("dimension ", d, " is ", ne[d]));
    }
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
    info.bytes = blocks * dtype_block_bytes(info.dtype);
    info.offset = r.read<std::uint64_t>("a tensor's offset");
    if (info.offset % g.alignment != 0) bad(detail::cat("offset ", info.offset, " is not a multiple of the alignment ", g.alignment));
    infos.push_back(std::move(info));
  }
  g.data_offset = (r.pos() + g.alignment - 1) / g.alignment * g.alignment;
  if (n_tensors > 0 && g.data_offset > bytes.size()) r.fail(r.pos(), "the file ends before the tensor data");
  const std::uint64_t data_size = n_tensors > 0 ? bytes.size() - g.data_offset : 0;

  std::vector<const Info*> by_offset;
  for (const Info& info : infos) {
    if (info.offset > data_size || info.bytes > data_size - info.offset) {
      r.fail(info.at, detail::cat("tensor ", detail::quote(info.name, 120), ": its ", info.bytes, " bytes at offset ",
                                  info.offset, " run past the end of the data (", data_size, " bytes)"));
    }
    by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const Info* a, const Info* b) { return a->offset < b->offset; });
  for (std::size_t k = 1; k < by_offset.size(); ++k) {
    if (by_offset[k]->offset < by_offset[k - 1]->offset + by_offset[k - 1]->bytes) {
      r.fail(by_offset[k]->at, "tensors " + detail::quote(by_offset[k - 1]->name, 120) + " and " +
                                   detail::quote(by_offset[k]->name, 120) + " overlap");
    }
  }
  for (const Info& info : infos) {
    RawTensor t;
    t.dtype = info.dtype;
    t.shape = info.shape;
    t.data = reinterpret_cast<const std::byte*>(bytes.data()) + g.data_offset + info.offset;
    t.owner = owner;
    t.file = source;
    t.offset = g.data_offset + info.offset;
    if (!g.tensors.emplace(info.name, std::move(t)).second) r.fail(info.at, "tensor " + detail::quote(info.name, 120) + " appears twice");
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
