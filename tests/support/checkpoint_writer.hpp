#pragma once
// Writers for the checkpoint formats, for tests: safetensors files, and torch.save-style .pth archives (a zip of a
// protocol-2 pickle and one storage per tensor, optionally with zip64 records), plus a Meta or Hugging Face
// checkpoint folder from named tensors. They write what the real tools write, so that the tests can build
// multi-shard, zip64 and hostile variants of the fixtures.
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "llama3/core/dtype.hpp"
#include "llama3/core/json.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/io/hf_writer.hpp"
#include "llama3/io/raw_tensor.hpp"

namespace llama3::test {

struct NamedTensor {
  std::string name;
  DType dtype;
  Shape shape;
  std::string bytes;
};

inline std::vector<NamedTensor> named_tensors(const io::TensorMap& map) {
  std::vector<NamedTensor> out;
  for (const auto& [name, t] : map) {
    out.push_back({name, t.dtype, t.shape, std::string(reinterpret_cast<const char*>(t.data), t.bytes())});
  }
  return out;
}

inline void put_le(std::string& s, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
}

inline std::string safetensors_bytes(const std::vector<NamedTensor>& tensors) {
  std::vector<io::TensorBytes> views;
  for (const auto& t : tensors) views.push_back({t.name, t.dtype, t.shape, t.bytes});
  std::ostringstream out;
  io::write_safetensors(out, views);
  return out.str();
}

inline std::uint32_t crc32(std::string_view data) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (const char ch : data) c = table[(c ^ static_cast<unsigned char>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// A zip of stored entries, as torch.save writes it; zip64 forces the zip64 records and extra fields.
inline std::string zip_bytes(const std::vector<std::pair<std::string, std::string>>& entries, bool zip64 = false) {
  std::string out, central;
  for (const auto& [name, data] : entries) {
    const std::uint64_t local = out.size();
    const std::uint32_t crc = crc32(data);
    put_le(out, 0x04034b50, 4);
    put_le(out, zip64 ? 45 : 20, 2);
    put_le(out, 0, 2);  // flags
    put_le(out, 0, 2);  // stored
    put_le(out, 0, 4);  // time, date
    put_le(out, crc, 4);
    put_le(out, zip64 ? 0xFFFFFFFFu : data.size(), 4);
    put_le(out, zip64 ? 0xFFFFFFFFu : data.size(), 4);
    put_le(out, name.size(), 2);
    put_le(out, zip64 ? 20 : 0, 2);
    out += name;
    if (zip64) {
      put_le(out, 0x0001, 2);
      put_le(out, 16, 2);
      put_le(out, data.size(), 8);
      put_le(out, data.size(), 8);
    }
    out += data;
    put_le(central, 0x02014b50, 4);
    put_le(central, zip64 ? 45 : 20, 2);
    put_le(central, zip64 ? 45 : 20, 2);
    put_le(central, 0, 2);
    put_le(central, 0, 2);
    put_le(central, 0, 4);
    put_le(central, crc, 4);
    put_le(central, zip64 ? 0xFFFFFFFFu : data.size(), 4);
    put_le(central, zip64 ? 0xFFFFFFFFu : data.size(), 4);
    put_le(central, name.size(), 2);
    put_le(central, zip64 ? 28 : 0, 2);
    put_le(central, 0, 2);  // comment
    put_le(central, 0, 2);  // disk
    put_le(central, 0, 2);  // internal attributes
    put_le(central, 0, 4);  // external attributes
    put_le(central, zip64 ? 0xFFFFFFFFu : local, 4);
    central += name;
    if (zip64) {
      put_le(central, 0x0001, 2);
      put_le(central, 24, 2);
      put_le(central, data.size(), 8);
      put_le(central, data.size(), 8);
      put_le(central, local, 8);
    }
  }
  const std::uint64_t cd_offset = out.size();
  out += central;
  if (zip64) {
    const std::uint64_t eocd64 = out.size();
    put_le(out, 0x06064b50, 4);
    put_le(out, 44, 8);
    put_le(out, 45, 2);
    put_le(out, 45, 2);
    put_le(out, 0, 4);
    put_le(out, 0, 4);
    put_le(out, entries.size(), 8);
    put_le(out, entries.size(), 8);
    put_le(out, central.size(), 8);
    put_le(out, cd_offset, 8);
    put_le(out, 0x07064b50, 4);
    put_le(out, 0, 4);
    put_le(out, eocd64, 8);
    put_le(out, 1, 4);
  }
  put_le(out, 0x06054b50, 4);
  put_le(out, 0, 2);
  put_le(out, 0, 2);
  put_le(out, zip64 ? 0xFFFF : entries.size(), 2);
  put_le(out, zip64 ? 0xFFFF : entries.size(), 2);
  put_le(out, zip64 ? 0xFFFFFFFFu : central.size(), 4);
  put_le(out, zip64 ? 0xFFFFFFFFu : cd_offset, 4);
  put_le(out, 0, 2);
  return out;
}

// The pickle torch.save writes for a dict of tensors (protocol 2, _rebuild_tensor_v2 with persistent-id storages).
inline std::string state_dict_pickle(const std::vector<NamedTensor>& tensors) {
  std::string p = "\x80\x02}(";
  const auto str = [&](std::string_view s) {
    p += 'X';
    put_le(p, s.size(), 4);
    p += s;
  };
  const auto integer = [&](std::int64_t v) {
    p += 'J';
    put_le(p, static_cast<std::uint32_t>(v), 4);
  };
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const NamedTensor& t = tensors[i];
    const char* storage = t.dtype == DType::f32 ? "FloatStorage" : t.dtype == DType::bf16 ? "BFloat16Storage" : "HalfStorage";
    str(t.name);
    p += "ctorch._utils\n_rebuild_tensor_v2\n((";
    str("storage");
    p += std::string("ctorch\n") + storage + "\n";
    str(std::to_string(i));
    str("cpu");
    integer(t.shape.numel());
    p += "tQ";
    integer(0);
    p += '(';
    for (int d = 0; d < t.shape.rank(); ++d) integer(t.shape[d]);
    p += "t(";
    std::int64_t stride = 1;
    std::vector<std::int64_t> strides(static_cast<std::size_t>(t.shape.rank()));
    for (int d = t.shape.rank() - 1; d >= 0; --d) {
      strides[static_cast<std::size_t>(d)] = stride;
      stride *= t.shape[d];
    }
    for (const auto s : strides) integer(s);
    p += "t\x89" "ccollections\nOrderedDict\n)RtR";
  }
  p += "u.";
  return p;
}

inline std::string torch_pth_bytes(const std::vector<NamedTensor>& tensors, const std::string& prefix = "archive",
                                   bool zip64 = false) {
  std::vector<std::pair<std::string, std::string>> entries;
  entries.emplace_back(prefix + "/data.pkl", state_dict_pickle(tensors));
  entries.emplace_back(prefix + "/byteorder", "little");
  for (std::size_t i = 0; i < tensors.size(); ++i) entries.emplace_back(prefix + "/data/" + std::to_string(i), tensors[i].bytes);
  entries.emplace_back(prefix + "/version", "3\n");
  return zip_bytes(entries, zip64);
}

inline void write_file(const std::filesystem::path& p, std::string_view bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

// A fresh, empty folder under the build's temporary directory.
inline std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("llama3-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace llama3::test
