#pragma once
// Reader of torch.save files (Meta's consolidated.NN.pth): a zip archive of <prefix>/data.pkl, a pickled dict of
// tensors, and <prefix>/data/<key>, one storage per entry. The prefix is whatever the archive uses. Tensors are
// views of the mapped archive; each is checked against its storage (dtype, size, offset, contiguity).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "llama3/core/mapped_file.hpp"
#include "llama3/io/pickle.hpp"
#include "llama3/io/raw_tensor.hpp"
#include "llama3/io/zip.hpp"

namespace llama3::io {

inline TensorMap read_torch_checkpoint(std::string_view bytes, std::shared_ptr<const void> owner,
                                       const std::string& source) {
  const ZipReader zip(bytes, source);
  const ZipEntry* pkl = nullptr;
  std::string prefix;
  for (const auto& [name, entry] : zip.entries()) {
    if (name == "data.pkl" || name.ends_with("/data.pkl")) {
      if (pkl) throw Error(source, std::nullopt, "more than one data.pkl in the archive");
      pkl = &entry;
      prefix = name.substr(0, name.size() - 8);
    }
  }
  if (!pkl) throw Error(source, std::nullopt, "no data.pkl: not a torch.save archive");
  if (const auto it = zip.entries().find(prefix + "byteorder"); it != zip.entries().end()) {
    if (zip.data(it->second) != "little") throw Error(source, it->second.offset, "tensors are not little-endian");
  }

  pickle::Reader reader(zip.data(*pkl), source + " (" + prefix + "data.pkl)");
  const pickle::Value* root = reader.run();
  if (root->kind != pickle::Value::Kind::dict) {
    throw Error(source, pkl->offset, "data.pkl holds no dict of tensors: not a state dict");
  }
  TensorMap out;
  const auto source_name = std::make_shared<const std::string>(source);
  // A storage may back several tensors (tied or sliced weights), always as the same type: one read both as float32
  // and as float16 would be two tensors overlapping in the same bytes.
  struct Storage {
    DType dtype;
    std::string first_tensor;
  };
  std::map<std::string_view, Storage> storages;
  for (std::size_t i = 0; i + 1 < root->items.size(); i += 2) {
    const pickle::Value* k = root->items[i];
    const pickle::Value* v = root->items[i + 1];
    if (k->kind != pickle::Value::Kind::string) throw Error(source, pkl->offset, "a state-dict key is not a string");
    const std::string name(k->string);
    const auto bad = [&](const std::string& what) {
      throw Error(source, pkl->offset, "tensor " + detail::quote(name, 120) + ": " + what);
    };
    if (v->kind != pickle::Value::Kind::tensor) bad("the value is not a tensor");
    const pickle::TensorRef& t = *v->tensor;
    const auto entry = zip.entries().find(prefix + "data/" + std::string(t.storage_key));
    if (entry == zip.entries().end()) bad("storage " + detail::quote(t.storage_key) + " is not in the archive");
    if (const auto [it, fresh] = storages.try_emplace(t.storage_key, Storage{t.dtype, name}); !fresh) {
      if (it->second.dtype != t.dtype) {
        bad(detail::cat("storage ", t.storage_key, " is read as ", dtype_name(t.dtype), " here and as ",
                        dtype_name(it->second.dtype), " by tensor ", detail::quote(it->second.first_tensor, 120),
                        ": a storage has one element type"));
      }
    }
    const std::size_t element = dtype_size(t.dtype);
    std::uint64_t storage_bytes;
    if (!io_detail::checked_numel(Shape{t.storage_numel}, element, storage_bytes) || storage_bytes != entry->second.size) {
      bad(detail::cat("storage ", t.storage_key, " should hold ", t.storage_numel, " elements of ",
                      dtype_name(t.dtype), " but has ", entry->second.size, " bytes"));
    }
    std::uint64_t bytes_needed;
    if (!io_detail::checked_numel(t.shape, element, bytes_needed)) bad("shape " + t.shape.str() + " is absurd");
    // Contiguous, row-major: what torch.save writes for parameters. (Size-1 dimensions may have any stride.)
    std::int64_t expected = 1;
    for (int d = t.shape.rank() - 1; d >= 0; --d) {
      if (t.shape[d] != 1 && t.stride[static_cast<std::size_t>(d)] != expected) {
        bad("is not contiguous (shape " + t.shape.str() + ")");
      }
      expected *= t.shape[d];
    }
    // In elements first, so that nothing is multiplied before it is known to fit the storage.
    if (t.offset < 0 || t.offset > t.storage_numel ||
        bytes_needed > storage_bytes - static_cast<std::uint64_t>(t.offset) * element) {
      bad(detail::cat("offset ", t.offset, " + ", t.shape.str(), " runs past its storage of ", t.storage_numel,
                      " elements"));
    }
    RawTensor r;
    r.dtype = t.dtype;
    r.shape = t.shape;
    r.offset = entry->second.offset + static_cast<std::uint64_t>(t.offset) * element;
    r.data = reinterpret_cast<const std::byte*>(bytes.data() + r.offset);
    r.owner = owner;
    r.source = source_name;
    if (!out.emplace(name, std::move(r)).second) bad("named twice");
  }
  return out;
}

inline TensorMap read_torch_checkpoint_file(const std::filesystem::path& path, FileAccess access = FileAccess::map) {
  auto file = std::make_shared<MappedFile>(path, access);
  return read_torch_checkpoint(file->bytes(), std::shared_ptr<const void>(file, file.get()), file->path());
}

}  // namespace llama3::io
