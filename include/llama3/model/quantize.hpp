#pragma once
// Quantizing a loaded checkpoint's weights to Q8_0 or Q4_0 (GGUF's block layouts, ggml's reference rounding), as
// llama.cpp's llama-quantize would: every matrix, the embeddings included; norms stay float. A matrix whose rows are
// not a multiple of 32 stays as it is.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <string>
#include <vector>

#include "llama3/core/parallel.hpp"
#include "llama3/core/quant.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/model/weights.hpp"

namespace llama3 {

// The quantized copy of a 2-d weight of any type.
template <class Q>
Tensor<const Q> quantize_tensor(const AnyTensor<Cpu>& w, unsigned threads = 0) {
  const Shape& s = shape(w);
  const std::int64_t n = s[0], k = s[1];
  Tensor<Q> out(s);
  std::visit([&](const auto& t) {
    constexpr std::int64_t chunk = 64;  // rows per work item
    parallel_for(static_cast<std::size_t>((n + chunk - 1) / chunk), threads, [&](std::size_t c) {
      std::vector<float> row(static_cast<std::size_t>(k));
      const std::int64_t begin = static_cast<std::int64_t>(c) * chunk, end = std::min(n, begin + chunk);
      for (std::int64_t j = begin; j < end; ++j) {
        dequantize_row(t.row(j), k, row.data());
        quantize_row(row.data(), k, out.row(j));
      }
    });
  }, w);
  return out;
}

inline DType parse_quantization(const std::string& name) {
  if (name == "q8_0" || name == "Q8_0") return DType::q8_0;
  if (name == "q4_0" || name == "Q4_0") return DType::q4_0;
  throw Error("unknown quantization \"" + name + "\": expected q8_0 or q4_0");
}

// Quantizes every matrix of w in place (to == q8_0 or q4_0); `progress(done, total)` after each.
template <class Progress = std::nullptr_t>
void quantize_weights(TransformerWeights<Cpu>& w, const ModelParams& p, DType to, unsigned threads = 0,
                      Progress progress = nullptr) {
  if (to != DType::q8_0 && to != DType::q4_0) {
    throw Error(std::string("cannot quantize to ") + std::string(dtype_name(to)) + ": Q8_0 and Q4_0 are supported");
  }
  std::size_t total = 0, done = 0;
  for_each_weight(w, p, [&](const WeightSlot&, AnyTensor<Cpu>&) { ++total; });
  for_each_weight(w, p, [&](const WeightSlot& slot, AnyTensor<Cpu>& t) {
    if (slot.shape.rank() == 2 && slot.shape[1] % 32 == 0 && dtype_block_elements(dtype(t)) == 1) {
      if (to == DType::q8_0) {
        t = quantize_tensor<BlockQ8_0>(t, threads);
      } else {
        t = quantize_tensor<BlockQ4_0>(t, threads);
      }
    }
    if constexpr (!std::is_same_v<Progress, std::nullptr_t>) progress(++done, total);
  });
  if (p.tie_embeddings) w.output = w.tok_embeddings;
}

}  // namespace llama3
