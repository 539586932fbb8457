#pragma once
// Weights regrouped for the CPU's kernels after loading, as llama.cpp repacks Q4_0 for its AVX2/AVX-512 kernels:
// on CPUs with AVX-512, every Q4_0 matrix whose rows are a multiple of 1024 becomes Q4_0x32 (core/quant.hpp), the
// same bytes in an order the decode kernel streams with aligned loads (a 1B-shaped model: 1 thread 20 -> ~30 tok/s;
// benchmarks/README.md). The values are Q4_0's exactly; only the order of the sums changes, within f32 rounding.
// The rest stays as loaded. The choice is made at load time: with the ISA capped later (cpu::ScopedIsa), Q4_0x32
// still computes right, through the kernels that dequantize.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "llama3/backends/cpu/isa.hpp"
#include "llama3/core/parallel.hpp"
#include "llama3/core/quant.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/model/weights.hpp"

namespace llama3 {

// Q4_0 rows of k (a multiple of 1024) regrouped into `out` (of the same shape).
inline void pack_q4_0x32(const Tensor<const BlockQ4_0>& w, const Tensor<BlockQ4_0x32>& out, unsigned threads = 0) {
  const std::int64_t groups = w.dim(0) * (w.dim(1) / 1024);
  constexpr std::int64_t chunk = 256;
  parallel_for(static_cast<std::size_t>((groups + chunk - 1) / chunk), threads, [&](std::size_t c) {
    const std::int64_t begin = static_cast<std::int64_t>(c) * chunk, end = std::min(groups, begin + chunk);
    for (std::int64_t g = begin; g < end; ++g) out.data()[g] = pack_q4_0x32(w.data() + 32 * g);
  });
}
inline Tensor<const BlockQ4_0x32> pack_q4_0x32(const Tensor<const BlockQ4_0>& w, unsigned threads = 0) {
  Tensor<BlockQ4_0x32> out(w.shape());
  pack_q4_0x32(w, out, threads);
  return out;
}

// Gives the pages that lie wholly inside [data, data + bytes) back to the system. Only for memory nobody reads again: a
// file's mapping (its pages are read again from the file if touched), or a buffer only the caller has seen.
inline void release_pages(const void* data, std::size_t bytes) noexcept {
#if defined(__unix__) || defined(__APPLE__)
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) / page * page;
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
#else
  (void)data, (void)bytes;
#endif
}

// Whether this machine's kernels want Q4_0 regrouped.
inline bool packs_q4_0() noexcept { return cpu::has_avx512(); }

// Regroups w's Q4_0 matrices (see above) where the CPU has AVX-512, into one buffer (2 MiB-aligned, huge pages:
// per-matrix buffers of a few MB got 4 KiB pages and decoded ~10% slower); `release`: give the pages of the Q4_0
// copies back as each is done (they must be a mapped file's, or memory no one else holds). Returns the number of
// matrices regrouped.
inline int pack_weights(TransformerWeights<Cpu>& w, const ModelParams& p, bool release = false, unsigned threads = 0) {
  if (!packs_q4_0()) return 0;
  std::vector<AnyTensor<Cpu>*> todo;
  std::size_t total = 0;
  for_each_weight(w, p, [&](const WeightSlot&, AnyTensor<Cpu>& t) {
    const auto* q = std::get_if<Tensor<const BlockQ4_0>>(&t);
    if (q == nullptr || q->rank() != 2 || q->dim(1) % 1024 != 0) return;
    todo.push_back(&t);
    total += (q->bytes() + 63) / 64 * 64;
  });
  if (todo.empty()) return 0;
  const std::shared_ptr<void> arena = detail::aligned_buffer(total);
  auto* at = static_cast<unsigned char*>(arena.get());
  for (AnyTensor<Cpu>* t : todo) {
    const Tensor<const BlockQ4_0> old = std::get<Tensor<const BlockQ4_0>>(*t);
    const auto out = Tensor<BlockQ4_0x32>::view(reinterpret_cast<BlockQ4_0x32*>(at), old.shape(), arena);
    pack_q4_0x32(old, out, threads);
    *t = Tensor<const BlockQ4_0x32>(out);
    if (release) release_pages(old.data(), old.bytes());
    at += (old.bytes() + 63) / 64 * 64;
  }
  if (p.tie_embeddings) w.output = w.tok_embeddings;
  return static_cast<int>(todo.size());
}

}  // namespace llama3
