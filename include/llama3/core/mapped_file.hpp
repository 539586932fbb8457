#pragma once
// A whole file as read-only memory (POSIX). Checkpoints are mapped, not copied, by default; the tokenizer files are
// mapped too so that one code path serves all loaders. FileAccess::read copies the file into anonymous memory
// instead (llama.cpp's --no-mmap), asking for transparent huge pages: on some virtual machines a mapped file's
// pages stream several times slower than anonymous memory (measured: 1 thread summing a mapped 2.5 GB file at
// 4-22 GB/s, the same bytes in anonymous memory at 29-30 GB/s), and decoding streams every weight once a token.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llama3/core/error.hpp"

namespace llama3 {

enum class FileAccess { map, read };

class MappedFile {
public:
  MappedFile() = default;

  explicit MappedFile(const std::filesystem::path& path, FileAccess access = FileAccess::map) : path_(path.string()) {
    // Non-blocking, so that opening a named pipe returns at once (a blocking open waits for a writer forever);
    // what is not a regular file is refused before anything is read. O_NONBLOCK means nothing to regular files.
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) throw Error(path_, std::nullopt, "cannot open: " + std::string(std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      throw Error(path_, std::nullopt, "cannot stat: " + std::string(std::strerror(e)));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(path_, std::nullopt, std::string("not a regular file but ") + file_kind(st.st_mode) +
                                           ": expected a file of bytes");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0 && access == FileAccess::read) {
      try {
        read_into_memory(fd);
      } catch (...) {
        ::close(fd);
        throw;
      }
    } else if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        throw Error(path_, std::nullopt, "cannot mmap: " + std::string(std::strerror(e)));
      }
      data_ = static_cast<const char*>(p);
      mapped_ = size_;
    }
    ::close(fd);  // the mapping keeps the file alive
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept { swap(o); }
  MappedFile& operator=(MappedFile&& o) noexcept {
    MappedFile tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), mapped_);
  }

  std::string_view bytes() const noexcept { return {data_ ? data_ : "", size_}; }
  const char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

private:
  static const char* file_kind(mode_t m) noexcept {
    if (S_ISDIR(m)) return "a folder";
    if (S_ISFIFO(m)) return "a named pipe";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "a special file";
  }

  // Anonymous memory, 2 MiB-aligned so that the kernel can back it with huge pages, filled by read() and then made
  // read-only like a mapping.
  void read_into_memory(int fd) {
    constexpr std::size_t huge = std::size_t{2} << 20;
    const std::size_t length = (size_ + huge - 1) / huge * huge;
    void* raw = ::mmap(nullptr, length + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
      throw Error(path_, std::nullopt, detail::cat("cannot allocate ", size_, " bytes to read it into: ",
                                                   std::strerror(errno)));
    }
    // Trim to a 2 MiB-aligned range of `length` bytes.
    const auto begin = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (begin + huge - 1) / huge * huge;
    if (aligned > begin) ::munmap(raw, aligned - begin);
    if (const std::uintptr_t end = begin + length + huge; end > aligned + length) {
      ::munmap(reinterpret_cast<void*>(aligned + length), end - aligned - length);
    }
    char* p = reinterpret_cast<char*>(aligned);
    data_ = p;
    mapped_ = length;
#ifdef MADV_HUGEPAGE
    ::madvise(p, length, MADV_HUGEPAGE);  // advice only: without it (or THP off) the pages are 4 KiB
#endif
    for (std::size_t done = 0; done < size_;) {
      const std::size_t chunk = std::min<std::size_t>(size_ - done, std::size_t{1} << 30);
      const ssize_t n = ::pread(fd, p + done, chunk, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string why = n < 0 ? std::strerror(errno) : "the file ended early (was it truncated?)";
        ::munmap(p, mapped_);
        data_ = nullptr;
        throw Error(path_, done, detail::cat("cannot read ", size_, " bytes: ", why));
      }
      done += static_cast<std::size_t>(n);
    }
    ::mprotect(p, length, PROT_READ);
  }

  void swap(MappedFile& o) noexcept {
    std::swap(path_, o.path_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(mapped_, o.mapped_);
  }

  std::string path_;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;  // bytes to unmap: the file's size, or the whole anonymous region
};

}  // namespace llama3
