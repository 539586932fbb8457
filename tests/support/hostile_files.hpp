#pragma once
// Hostile inputs, one per class of attack on the readers (what issue 17 found on main, and the boundary values
// around each): written by the tests, which check that each is an Error saying what is wrong, within bounded
// memory, and by fuzz/regressions.cpp, which hands them to the fuzz targets as regression inputs.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "support/checkpoint_writer.hpp"

namespace llama3::test {

struct HostileInput {
  std::string name;    // a file name: <target>-<what>
  std::string target;  // the reader: "pth", "pickle", "gguf" or "safetensors"
  std::string bytes;
  std::string error;   // what the Error must say
};

// The integers hostile files put in offsets, counts and lengths.
inline const std::vector<std::uint64_t>& boundary_integers() {
  // Just below 2^62 and 2^64, a count of 4-byte elements wraps to a few bytes short of 0: a check that adds the
  // tensor's size after multiplying passes, and the data is read from before the file.
  static const std::vector<std::uint64_t> v = {
      0, 1, 0x7FFFFFFFull, 0x80000000ull, 0xFFFFFFFFull, 0x100000000ull, (1ull << 62) - 32768, (1ull << 62) - 4,
      (1ull << 62) - 1, 1ull << 62, (1ull << 63) - 1, 1ull << 63, ~0ull - 31, ~0ull - 3, ~0ull};
  return v;
}

// Two tensors, a [2, 2] float and a [4] bf16, as the hostile variants' base.
inline std::vector<NamedTensor> hostile_base_tensors() {
  return {{"a", DType::f32, Shape{2, 2}, std::string(16, '\1')}, {"b", DType::bf16, Shape{4}, std::string(8, '\2')}};
}

// The archive of `pickle`, with the storages of hostile_base_tensors().
inline std::string pth_with_pickle(const std::string& pickle) {
  const auto t = hostile_base_tensors();
  return zip_bytes({{"archive/data.pkl", pickle}, {"archive/data/0", t[0].bytes}, {"archive/data/1", t[1].bytes}});
}

// The state-dict pickle with the first tensor's storage offset (BININT 0 after the persistent id) replaced by a
// LONG1 of 8 bytes.
inline std::string pickle_with_offset(std::uint64_t offset) {
  std::string p = state_dict_pickle(hostile_base_tensors());
  const std::string zero_offset = std::string("tQJ") + std::string(4, '\0');
  const std::size_t at = p.find(zero_offset);
  std::string long1 = "tQ\x8a\x08";
  put_le(long1, offset, 8);
  return p.replace(at, zero_offset.size(), long1);
}

inline std::vector<HostileInput> hostile_inputs() {
  std::vector<HostileInput> out;
  const auto add = [&](std::string name, std::string target, std::string bytes, std::string error) {
    out.push_back({std::move(name), std::move(target), std::move(bytes), std::move(error)});
  };
  const auto base = hostile_base_tensors();
  const std::string pickle = state_dict_pickle(base);

  // .pth: storage offsets that wrapped the bounds check (2^62 - 32768 pointed 128 KiB before the file).
  for (const std::uint64_t offset : boundary_integers()) {
    if (offset == 0) continue;
    add("pth-offset-" + std::to_string(offset), "pth", pth_with_pickle(pickle_with_offset(offset)),
        "runs past its storage");
  }
  {  // A storage numel whose bytes wrap: 2^62 floats are 2^64 bytes.
    std::string p = pickle;
    const std::string numel = std::string("J") + '\4' + std::string(3, '\0') + "tQ";  // the first storage's 4
    std::string long1 = "\x8a\x08";
    put_le(long1, 1ull << 62, 8);
    p.replace(p.find(numel), numel.size(), long1 + "tQ");
    add("pth-storage-numel-2^62", "pth", pth_with_pickle(p), "should hold");
  }
  {  // Zip entries that overlap: the second storage's header points at the first's.
    const std::string bytes = pth_with_pickle(pickle);
    std::string b = bytes;
    const std::size_t cd = b.find("PK\x01\x02");
    const std::size_t second = b.find("PK\x01\x02", b.find("PK\x01\x02", cd + 4) + 4);  // data/0 is the 2nd entry
    std::uint32_t first_local = 0;
    const std::size_t first = b.find("PK\x01\x02", cd + 4);
    std::memcpy(&first_local, b.data() + first + 42, 4);
    std::memcpy(b.data() + second + 42, &first_local, 4);
    // The entry names differ, so its local header is the other's: the name is not checked, the bytes are shared.
    add("pth-overlapping-entries", "pth", b, "overlap");
  }
  {  // One storage read as float32 by one tensor and as float16 by another.
    std::vector<NamedTensor> t = {{"a", DType::f32, Shape{4}, std::string(16, '\1')},
                                  {"b", DType::f16, Shape{8}, std::string(16, '\1')}};
    std::string p = state_dict_pickle(t);
    const std::string key1 = std::string("X") + '\1' + std::string(3, '\0') + "1";
    p.replace(p.find(key1), key1.size(), std::string("X") + '\1' + std::string(3, '\0') + "0");
    add("pth-storage-two-dtypes", "pth", zip_bytes({{"archive/data.pkl", p}, {"archive/data/0", t[0].bytes}}),
        "is read as");
  }

  // Pickles that asked for gigabytes: 17 MB of NONE reached 4.2 GB, 100 MB of APPEND 12 GB. These are sized to
  // pass the budget (16 MiB + 4 x the stream) by a few times, not to take long.
  const auto stream = [](std::string body) { return "\x80\x02" + body + "."; };
  // A byte that pushes a pointer costs at least 8 held bytes, so past 4 MiB such a stream exceeds the budget.
  add("pickle-none", "pickle", stream(std::string(6u << 20, 'N')), "unpickling would hold more than");
  {
    std::string body = "]";
    for (int i = 0; i < (3 << 20); ++i) body += "Na";
    add("pickle-append", "pickle", stream(body), "unpickling would hold more than");
  }
  add("pickle-mark", "pickle", stream(std::string(6u << 20, '(')), "unpickling would hold more than");
  add("pickle-memoize", "pickle", stream("N" + std::string(1u << 20, '\x94')), "unpickling would hold more than");
  add("pickle-empty-lists", "pickle", stream(std::string(1u << 20, ']')), "unpickling would hold more than");
  for (const std::uint64_t n : boundary_integers()) {  // string lengths past the end
    if (n < 8) continue;
    std::string body = "\x8d";
    put_le(body, n, 8);
    add("pickle-string-" + std::to_string(n), "pickle", stream(body + "abc"), "runs past the end");
  }

  // GGUF.
  const auto gguf_header = [](std::uint64_t n_tensors, std::uint64_t n_kv) {
    std::string h = "GGUF";
    put_le(h, 3, 4);
    put_le(h, n_tensors, 8);
    put_le(h, n_kv, 8);
    return h;
  };
  const auto gguf_string = [](std::string& to, std::string_view s) {
    put_le(to, s.size(), 8);
    to += s;
  };
  for (const std::uint64_t n : boundary_integers()) {
    if (n < 2) continue;
    add("gguf-n_kv-" + std::to_string(n), "gguf", gguf_header(0, n) + std::string(64, '\0'), "cannot fit");
    add("gguf-n_tensors-" + std::to_string(n), "gguf", gguf_header(n, 0) + std::string(64, '\0'), "cannot fit");
    std::string array = gguf_header(0, 1);
    gguf_string(array, "a");
    put_le(array, 9, 4);  // array
    put_le(array, 0, 4);  // of u8
    put_le(array, n, 8);
    add("gguf-array-count-" + std::to_string(n), "gguf", array + std::string(64, '\0'), "cannot fit");
    std::string key = gguf_header(0, 1);
    put_le(key, n, 8);
    add("gguf-key-length-" + std::to_string(n), "gguf", key + std::string(64, '\0'), "runs past the end");
    std::string offset = gguf_header(1, 0);
    gguf_string(offset, "t");
    put_le(offset, 1, 4);  // one dimension
    put_le(offset, 8, 8);
    put_le(offset, 0, 4);  // F32
    put_le(offset, n, 8);
    while (offset.size() % 32) offset += '\0';
    add("gguf-tensor-offset-" + std::to_string(n), "gguf", offset + std::string(32, '\0'), "expected 0");
  }
  {  // F32 bytes declared Q8_0: a [2, 64] F32 tensor (512 bytes) before another, and as the last one.
    for (const bool last : {false, true}) {
      std::string g = gguf_header(last ? 1 : 2, 0);
      const auto info = [&](std::string_view name, std::uint64_t ne0, std::uint64_t ne1, std::uint32_t type,
                            std::uint64_t offset) {
        gguf_string(g, name);
        put_le(g, 2, 4);
        put_le(g, ne0, 8);
        put_le(g, ne1, 8);
        put_le(g, type, 4);
        put_le(g, offset, 8);
      };
      info("a", 64, 2, /*Q8_0*/ 8, 0);
      if (!last) info("b", 8, 1, 0, 512);
      while (g.size() % 32) g += '\0';
      g += std::string(512, '\1');
      if (!last) g += std::string(32, '\0');
      add(std::string("gguf-f32-declared-q8_0") + (last ? "-last" : ""), "gguf", g,
          last ? "bytes after the last tensor" : "expected 160");
    }
  }
  {  // Arrays of arrays, which llama.cpp does not read either.
    std::string g = gguf_header(0, 1);
    gguf_string(g, "nested");
    put_le(g, 9, 4);
    put_le(g, 9, 4);
    put_le(g, 1, 8);
    add("gguf-nested-array", "gguf", g + std::string(64, '\0'), "array of arrays");
  }

  // safetensors.
  const auto safetensors = [](const std::string& header, std::size_t data) {
    std::string file;
    put_le(file, header.size(), 8);
    return file + header + std::string(data, '\0');
  };
  for (const std::uint64_t n : boundary_integers()) {
    if (n < 64) continue;
    std::string s;
    put_le(s, n, 8);
    add("safetensors-header-length-" + std::to_string(n), "safetensors", s + "{}" + std::string(64, ' '),
        "header length");
    add("safetensors-offset-" + std::to_string(n), "safetensors",
        safetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,)" + std::to_string(n) + "]}}", 16),
        "out of range");
  }
  add("safetensors-overlap", "safetensors",
      safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
      "overlap");
  add("safetensors-gap", "safetensors",
      safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12), "belong to no tensor");
  add("safetensors-trailing", "safetensors",
      safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12), "belong to no tensor");
  add("safetensors-repeated-key", "safetensors",
      safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
      "appears twice");
  add("safetensors-shape-product", "safetensors",
      safetensors(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}})", 16),
      "absurd");
  return out;
}

}  // namespace llama3::test
