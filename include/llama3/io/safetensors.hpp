#pragma once
// Reader of the safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "BF16", "shape": [r, c], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
// and the tensor bytes, offsets counted from the end of the header. The file is mapped; tensors are views.
// Everything in the header is checked: a length past the end of the file, offsets out of range, overlapping or
// leaving bytes to no tensor, sizes that disagree with dtype x shape, absurd shapes, repeated keys and dtypes we do
// not read are Errors naming the file and the tensor.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "llama3/core/json_parse.hpp"
#include "llama3/core/mapped_file.hpp"
#include "llama3/io/raw_tensor.hpp"

namespace llama3::io {

inline std::optional<DType> safetensors_dtype(std::string_view s) {
  if (s == "F32") return DType::f32;
  if (s == "BF16") return DType::bf16;
  if (s == "F16") return DType::f16;
  return std::nullopt;
}

// Reads the tensors of a safetensors file held in `bytes` (kept alive by `owner`); `source` names it in errors.
inline TensorMap read_safetensors(std::string_view bytes, std::shared_ptr<const void> owner, const std::string& source) {
  const auto fail = [&](std::optional<std::uint64_t> offset, const std::string& what) -> void {
    throw Error(source, offset, what);
  };
  if (bytes.size() < 8) fail(std::nullopt, detail::cat("too short for a safetensors file (", bytes.size(), " bytes)"));
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  if (n > bytes.size() - 8) {
    fail(0, detail::cat("header length ", n, " runs past the end of the file (", bytes.size(), " bytes)"));
  }
  if (n > (std::uint64_t{100} << 20)) fail(0, detail::cat("header length ", n, " is absurd (over 100 MB)"));
  const std::string_view header = bytes.substr(8, static_cast<std::size_t>(n));
  const std::uint64_t data_start = 8 + n;
  const std::uint64_t data_size = bytes.size() - data_start;

  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (const auto err = parser.parse(header.data(), header.size()).get(root)) {
    fail(8, std::string("malformed JSON header: ") + simdjson::error_message(err));
  }
  json::check_unique_keys(root, source + " (header)");
  simdjson::dom::object tensors;
  if (root.get_object().get(tensors)) fail(8, "the JSON header is not an object");

  TensorMap out;
  const auto source_name = std::make_shared<const std::string>(source);
  struct Span {
    std::uint64_t begin, end;
    std::string_view name;
  };
  std::vector<Span> spans;
  for (auto [key, value] : tensors) {
    if (key == "__metadata__") continue;
    const std::string name(key);
    const auto bad = [&](const std::string& what) { fail(8, "tensor " + detail::quote(name, 120) + ": " + what); };
    simdjson::dom::object o;
    if (value.get_object().get(o)) bad("expected an object");
    std::string_view dtype_name;
    if (o["dtype"].get_string().get(dtype_name)) bad("no \"dtype\" string");
    const auto dtype = safetensors_dtype(dtype_name);
    if (!dtype) bad("dtype " + detail::quote(dtype_name) + " is not one we read (F32, BF16, F16)");
    simdjson::dom::array shape_array, offsets;
    if (o["shape"].get_array().get(shape_array)) bad("no \"shape\" array");
    if (o["data_offsets"].get_array().get(offsets) || offsets.size() != 2) bad("no \"data_offsets\" [begin, end]");
    Shape shape;
    if (shape_array.size() > max_tensor_rank) bad(detail::cat(shape_array.size(), " dimensions: at most 4 are read"));
    for (auto d : shape_array) {
      std::int64_t v;
      if (d.get_int64().get(v) || v < 0) bad("shape entries must be non-negative integers");
      shape.push_back(v);
    }
    std::uint64_t begin, end, expected;
    if (offsets.at(0).get_uint64().get(begin) || offsets.at(1).get_uint64().get(end)) {
      bad("data_offsets must be non-negative integers");
    }
    if (!io_detail::checked_numel(shape, dtype_size(*dtype), expected)) bad("shape " + shape.str() + " is absurd");
    if (begin > end || end > data_size) {
      bad(detail::cat("data_offsets [", begin, ", ", end, "] out of range: the data holds ", data_size, " bytes"));
    }
    if (end - begin != expected) {
      bad(detail::cat("data_offsets [", begin, ", ", end, "] hold ", end - begin, " bytes, but ",
                      dtype_name, " x ", shape.str(), " needs ", expected));
    }
    spans.push_back({begin, end, key});
    RawTensor t;
    t.dtype = *dtype;
    t.shape = shape;
    t.data = reinterpret_cast<const std::byte*>(bytes.data() + data_start + begin);
    t.owner = owner;
    t.source = source_name;
    t.offset = data_start + begin;
    if (!out.emplace(name, std::move(t)).second) bad("named twice");
  }
  // As the reference reader (the safetensors crate) requires: in the order of their offsets, the tensors follow
  // one another from the start of the data to its end, so each byte belongs to exactly one tensor.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (spans[i].begin < expected) {
      fail(8, "tensors " + detail::quote(spans[i - 1].name, 120) + " and " + detail::quote(spans[i].name, 120) +
                  " overlap");
    }
    if (spans[i].begin > expected) {
      fail(data_start + expected, detail::cat(spans[i].begin - expected, " bytes before tensor ",
                                              detail::quote(spans[i].name, 120), " belong to no tensor"));
    }
    expected = spans[i].end;
  }
  if (expected != data_size) {
    fail(data_start + expected, detail::cat(data_size - expected, " bytes after the last tensor belong to no tensor"));
  }
  return out;
}

inline TensorMap read_safetensors_file(const std::filesystem::path& path, FileAccess access = FileAccess::map) {
  auto file = std::make_shared<MappedFile>(path, access);
  const std::string_view bytes = file->bytes();
  return read_safetensors(bytes, std::shared_ptr<const void>(file, file.get()), file->path());
}

}  // namespace llama3::io
