#pragma once
// A checkpoint written as a llama.cpp GGUF model file, for the tests.
#include <string>

#include "llama3/io/checkpoint.hpp"
#include "llama3/model/quantize.hpp"
#include "llama3/ops/rope.hpp"
#include "support/gguf_writer.hpp"

namespace llama3::test {

// A checkpoint's weights as a GGUF file, as llama.cpp's converter lays it out (q and k in Meta's row order, norms
// float32, rope_freqs for scaled RoPE); `quantize`: the matrices as `quantize_to` (Q8_0 or Q4_0); `vocab`: the
// tokenizer it carries.
inline std::string gguf_model(Checkpoint& c, bool quantize, const GgufVocab* vocab = nullptr,
                              DType quantize_to = DType::q8_0) {
  GgufWriter w;
  const ModelParams& p = c.params;
  w.str("general.architecture", "llama");
  w.u32("llama.embedding_length", static_cast<std::uint32_t>(p.dim));
  w.u32("llama.block_count", static_cast<std::uint32_t>(p.n_layers));
  w.u32("llama.attention.head_count", static_cast<std::uint32_t>(p.n_heads));
  w.u32("llama.attention.head_count_kv", static_cast<std::uint32_t>(p.n_kv_heads));
  w.u32("llama.feed_forward_length", static_cast<std::uint32_t>(p.ffn_hidden_dim()));
  w.f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(p.norm_eps));
  w.f32("llama.rope.freq_base", static_cast<float>(p.rope_theta));
  w.u32("llama.vocab_size", static_cast<std::uint32_t>(p.vocab_size));
  for_each_weight(c.weights, p, [&](const WeightSlot& slot, AnyTensor<Cpu>& t) {
    AnyTensor<Cpu> stored = t;
    if (quantize && slot.shape.rank() == 2) {
      stored = quantize_to == DType::q4_0 ? AnyTensor<Cpu>(quantize_tensor<BlockQ4_0>(t)) : quantize_tensor<BlockQ8_0>(t);
    }
    std::visit([&](const auto& x) {
      w.tensor(slot.name_in(WeightFormat::gguf), dtype(stored), x.shape(),
               std::string(reinterpret_cast<const char*>(x.data()), x.bytes()));
    }, stored);
  });
  if (p.use_scaled_rope) {  // llama.cpp's rope_freqs: unscaled / scaled frequency
    const auto base = ops::rope_inv_freq(p.head_dim(), p.rope_theta, false, p.rope_scaling);
    const auto scaled = ops::rope_inv_freq(p.head_dim(), p.rope_theta, true, p.rope_scaling);
    std::string bytes;
    for (std::size_t i = 0; i < base.size(); ++i) GgufWriter::put(bytes, static_cast<float>(base[i] / scaled[i]));
    w.tensor("rope_freqs.weight", DType::f32, Shape{static_cast<std::int64_t>(base.size())}, bytes);
  }
  if (vocab) vocab->write(w);
  return w.bytes();
}


}  // namespace llama3::test
