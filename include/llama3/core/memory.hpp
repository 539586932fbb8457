#pragma once
// Memory as the system has it (Linux): what is available to this process, and large buffers whose pages cost
// nothing until they are written, so that a long context costs only the positions a conversation reaches.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "llama3/core/error.hpp"

namespace llama3 {

namespace memory_detail {

// A small file of /proc or /sys (their sizes read as 0, so they are read, not mapped); "" when unreadable.
inline std::string read_small_file(const char* path) {
  std::string out;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return out;
  char buf[4096];
  for (ssize_t n; out.size() < (std::size_t{1} << 20) && (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

inline std::optional<std::uint64_t> parse_u64(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  std::uint64_t v = 0;
  std::size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    if (v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(s[i] - '0');
  }
  if (i == 0) return std::nullopt;
  return v;
}

}  // namespace memory_detail

// Bytes this process can still allocate without the system swapping or killing something: MemAvailable of
// /proc/meminfo, lowered to what this process's cgroup (v2) allows beyond what it holds. nullopt if unknown.
inline std::optional<std::uint64_t> available_memory() {
  using namespace memory_detail;
  std::optional<std::uint64_t> avail;
  const std::string meminfo = read_small_file("/proc/meminfo");
  if (const auto at = meminfo.find("MemAvailable:"); at != std::string::npos) {
    if (const auto kb = parse_u64(std::string_view(meminfo).substr(at + 13))) avail = *kb * 1024;
  }
  // cgroup v2: "0::/path" in /proc/self/cgroup, the limit in /sys/fs/cgroup/path/memory.max ("max": none).
  const std::string cg = read_small_file("/proc/self/cgroup");
  if (const auto at = cg.find("0::"); at != std::string::npos) {
    std::string path = cg.substr(at + 3, cg.find('\n', at) - at - 3);
    if (path == "/") path.clear();
    const std::string dir = "/sys/fs/cgroup" + path;
    const auto limit = parse_u64(read_small_file((dir + "/memory.max").c_str()));
    const auto used = parse_u64(read_small_file((dir + "/memory.current").c_str()));
    if (limit && used) {
      const std::uint64_t left = *limit > *used ? *limit - *used : 0;
      avail = avail ? std::min(*avail, left) : left;
    }
  }
  return avail;
}

// "12.3 GiB"
inline std::string format_bytes(std::uint64_t bytes) {
  char s[32];
  if (bytes >= (std::uint64_t{1} << 30)) {
    std::snprintf(s, sizeof s, "%.1f GiB", static_cast<double>(bytes) / static_cast<double>(1u << 30));
  } else {
    std::snprintf(s, sizeof s, "%.1f MiB", static_cast<double>(bytes) / static_cast<double>(1u << 20));
  }
  return s;
}

// `bytes` of zeroed anonymous memory whose pages are given to the process only when first written (and left out
// of the system's commit accounting): reserving a whole context costs nothing until it is used. `what` names the
// buffer in the Error when the address space is exhausted.
inline std::shared_ptr<void> lazy_zeroed_buffer(std::size_t bytes, std::string_view what) {
  if (bytes == 0) return std::shared_ptr<void>(nullptr, [](void*) {});
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    throw Error(detail::cat("cannot reserve ", format_bytes(bytes), " for ", what, ": ", std::strerror(errno)));
  }
  return std::shared_ptr<void>(p, [bytes](void* q) { ::munmap(q, bytes); });
}

}  // namespace llama3
