#pragma once
// The part of ZIP that torch.save writes: stored (uncompressed) entries, zip64 included (shards of 70B models pass
// 4 GB), found through the central directory. Every offset and size is checked against the file, and no two
// entries, nor an entry and the central directory, may share a byte: each byte means one thing.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/core/error.hpp"

namespace llama3::io {

struct ZipEntry {
  std::uint64_t offset = 0;  // of the entry's data in the archive
  std::uint64_t size = 0;
  std::uint64_t header = 0;  // of its local header
};

class ZipReader {
public:
  // `bytes` is the whole archive; `source` names it in errors.
  ZipReader(std::string_view bytes, std::string source) : bytes_(bytes), source_(std::move(source)) { read(); }

  const std::map<std::string, ZipEntry>& entries() const noexcept { return entries_; }
  std::string_view data(const ZipEntry& e) const noexcept {
    return bytes_.substr(static_cast<std::size_t>(e.offset), static_cast<std::size_t>(e.size));
  }

private:
  [[noreturn]] void fail(std::uint64_t offset, const std::string& what) const { throw Error(source_, offset, what); }

  std::uint64_t u(std::uint64_t at, int n) const {
    if (at > bytes_.size() || static_cast<std::uint64_t>(n) > bytes_.size() - at) {
      fail(at, detail::cat("truncated: ", n, " bytes needed, the file has ", bytes_.size()));
    }
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes_[static_cast<std::size_t>(at) + i]);
    return v;
  }

  void read() {
    // The end of central directory record: 22 bytes plus a comment of up to 65535.
    if (bytes_.size() < 22) fail(0, "too short for a zip archive (a .pth file is one)");
    std::uint64_t eocd = bytes_.size() - 22;
    const std::uint64_t lowest = bytes_.size() > 22 + 65535 ? bytes_.size() - 22 - 65535 : 0;
    while (u(eocd, 4) != 0x06054b50u) {
      if (eocd == lowest) fail(0, "no end of central directory record: not a zip archive");
      --eocd;
    }
    std::uint64_t count = u(eocd + 10, 2);
    std::uint64_t cd_size = u(eocd + 12, 4);
    std::uint64_t cd_offset = u(eocd + 16, 4);
    if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {  // zip64
      if (eocd < 20 || u(eocd - 20, 4) != 0x07064b50u) fail(eocd, "zip64 fields without a zip64 locator");
      const std::uint64_t eocd64 = u(eocd - 20 + 8, 8);
      if (u(eocd64, 4) != 0x06064b50u) fail(eocd64, "bad zip64 end of central directory record");
      count = u(eocd64 + 32, 8);
      cd_size = u(eocd64 + 40, 8);
      cd_offset = u(eocd64 + 48, 8);
    }
    if (cd_offset > bytes_.size() || cd_size > bytes_.size() - cd_offset) {
      fail(eocd, detail::cat("central directory [", cd_offset, ", +", cd_size, ") is outside the file"));
    }
    if (count > cd_size / 46 + 1) fail(eocd, detail::cat(count, " entries cannot fit a central directory of ", cd_size, " bytes"));
    std::uint64_t at = cd_offset;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (u(at, 4) != 0x02014b50u) fail(at, detail::cat("central directory entry ", i, ": bad signature"));
      const std::uint64_t flags = u(at + 8, 2), method = u(at + 10, 2);
      std::uint64_t compressed = u(at + 20, 4), size = u(at + 24, 4);
      const std::uint64_t name_len = u(at + 28, 2), extra_len = u(at + 30, 2), comment_len = u(at + 32, 2);
      std::uint64_t local = u(at + 42, 4);
      if (at + 46 + name_len + extra_len + comment_len > bytes_.size()) fail(at, "central directory entry truncated");
      const std::string name(bytes_.substr(static_cast<std::size_t>(at + 46), static_cast<std::size_t>(name_len)));
      // zip64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF, in this order.
      for (std::uint64_t e = at + 46 + name_len; e + 4 <= at + 46 + name_len + extra_len;) {
        const std::uint64_t id = u(e, 2), len = u(e + 2, 2);
        if (e + 4 + len > at + 46 + name_len + extra_len) fail(e, "extra field runs past its entry");
        if (id == 0x0001) {
          std::uint64_t p = e + 4;
          const auto next64 = [&](std::uint64_t& field) {
            if (field != 0xFFFFFFFFu) return;
            if (p + 8 > e + 4 + len) fail(e, "zip64 extra field too short");
            field = u(p, 8);
            p += 8;
          };
          next64(size);
          next64(compressed);
          next64(local);
        }
        e += 4 + len;
      }
      if (flags & 1u) fail(at, "entry " + detail::quote(name, 80) + " is encrypted");
      if (method != 0 || compressed != size) {
        fail(at, "entry " + detail::quote(name, 80) + detail::cat(" is compressed (method ", method,
                                                                 "): torch.save stores entries uncompressed"));
      }
      if (u(local, 4) != 0x04034b50u) fail(local, "entry " + detail::quote(name, 80) + ": bad local header");
      const std::uint64_t data = local + 30 + u(local + 26, 2) + u(local + 28, 2);
      if (data > bytes_.size() || size > bytes_.size() - data) {
        fail(local, "entry " + detail::quote(name, 80) + detail::cat(": data [", data, ", +", size,
                                                                     ") runs past the end of the file"));
      }
      if (!entries_.emplace(name, ZipEntry{data, size, local}).second) fail(at, "entry " + detail::quote(name, 80) + " twice");
      at += 46 + name_len + extra_len + comment_len;
    }
    check_disjoint(cd_offset, cd_size);
  }

  // Each entry from its local header to the end of its data, and the central directory, lie apart.
  void check_disjoint(std::uint64_t cd_offset, std::uint64_t cd_size) const {
    struct Span {
      std::uint64_t begin, end;
      const std::string* name;  // nullptr: the central directory
    };
    std::vector<Span> spans;
    spans.reserve(entries_.size() + 1);
    for (const auto& [name, e] : entries_) spans.push_back({e.header, e.offset + e.size, &name});
    spans.push_back({cd_offset, cd_offset + cd_size, nullptr});
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
    const auto what = [](const Span& s) { return s.name ? "entry " + detail::quote(*s.name, 80) : std::string("the central directory"); };
    for (std::size_t i = 1; i < spans.size(); ++i) {
      if (spans[i].begin < spans[i - 1].end) {
        fail(spans[i].begin, what(spans[i - 1]) + detail::cat(" [", spans[i - 1].begin, ", ", spans[i - 1].end,
                                                               ") and ") + what(spans[i]) +
                                 detail::cat(" [", spans[i].begin, ", ", spans[i].end, ") overlap"));
      }
    }
  }

  std::string_view bytes_;
  std::string source_;
  std::map<std::string, ZipEntry> entries_;
};

}  // namespace llama3::io
