#pragma once
// A model with random weights of any shape, built in memory: for benchmarks (the Llama 3.2 1B shape in bf16) and
// for tests that need a model without a checkpoint file. Weights are drawn uniform in +-1/sqrt(fan_in), norms are 1.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <vector>

#include "llama3/core/parallel.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/io/checkpoint.hpp"
#include "llama3/model/model_args.hpp"
#include "llama3/model/weights.hpp"

namespace llama3 {

using TokenId = std::int32_t;

namespace detail {
inline std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

template <class T>
Tensor<const T> random_tensor(const Shape& shape, std::uint64_t seed, float scale, unsigned threads) {
  Tensor<T> t(shape);
  const std::int64_t n = t.numel();
  const std::int64_t chunk = 1 << 20;
  parallel_for(static_cast<std::size_t>((n + chunk - 1) / chunk), threads, [&](std::size_t c) {
    std::uint64_t s = seed * 0x100000001B3ull + c;
    const std::int64_t begin = static_cast<std::int64_t>(c) * chunk, end = std::min(n, begin + chunk);
    for (std::int64_t i = begin; i < end; ++i) {
      const float u = static_cast<float>(splitmix64(s) >> 40) * (1.0f / 16777216.0f);  // [0, 1)
      t.data()[i] = T((2 * u - 1) * scale);
    }
  });
  return t;
}
}  // namespace detail

// Random weights for params p in dtype T (float, bf16, f16); the same seed gives the same weights.
template <class T>
Checkpoint synthetic_checkpoint(ModelParams p, std::uint64_t seed = 1, unsigned threads = 0) {
  p.validate("synthetic model");
  Checkpoint c;
  c.params = p;
  c.dir = "synthetic";
  std::uint64_t n = seed;
  for_each_weight(c.weights, p, [&](const WeightSlot& slot, AnyTensor<Cpu>& out) {
    const bool norm = slot.shape.rank() == 1;
    if (norm) {
      out = Tensor<const float>(Tensor<float>::filled(slot.shape, 1.0f));
    } else {
      out = detail::random_tensor<T>(slot.shape, ++n, 1.0f / std::sqrt(static_cast<float>(slot.shape[1])), threads);
    }
  });
  if (p.tie_embeddings) c.weights.output = c.weights.tok_embeddings;
  return c;
}

// Rewires a random float/bf16 model (T its weights' type) to quote `text`: after each of its tokens (distinct), the
// next one, and after the last the first, so that greedy decoding after a prompt that quotes `text` goes on quoting
// it (what prompt lookup is for: its best case, every draft accepted). text's embeddings are made large against what
// the random layers add, and the output layer (untied) maps each to its successor. Every other weight stays random,
// so each pass computes what a trained model of the shape would, over the same bytes.
template <class T>
void make_quoting(Checkpoint& c, std::span<const TokenId> text) {
  ModelParams& p = c.params;
  const std::int64_t dim = p.dim;
  const Tensor<const T> embeddings = std::get<Tensor<const T>>(c.weights.tok_embeddings);
  Tensor<T> e(embeddings.shape()), out(embeddings.shape());
  std::memcpy(e.data(), embeddings.data(), embeddings.bytes());
  std::memcpy(out.data(), embeddings.data(), embeddings.bytes());  // random rows for every other token
  std::vector<float> row(static_cast<std::size_t>(dim));
  for (std::size_t i = 0; i < text.size(); ++i) {
    const TokenId t = text[i], next = text[(i + 1) % text.size()];
    if (t < 0 || t >= p.vocab_size || next < 0 || next >= p.vocab_size) throw Error("make_quoting: token out of range");
    double sum = 0;
    for (std::int64_t d = 0; d < dim; ++d) {
      row[static_cast<std::size_t>(d)] = to_float(embeddings.row(t)[d]);
      sum += double(row[static_cast<std::size_t>(d)]) * row[static_cast<std::size_t>(d)];
    }
    const float unit = static_cast<float>(1 / std::sqrt(sum / static_cast<double>(dim)));  // to an RMS of 1
    for (std::int64_t d = 0; d < dim; ++d) {
      e.row(t)[d] = T(10.0f * unit * row[static_cast<std::size_t>(d)]);
      out.row(next)[d] = T(unit * row[static_cast<std::size_t>(d)] / std::sqrt(static_cast<float>(dim)));
    }
  }
  p.tie_embeddings = false;
  c.weights.tok_embeddings = Tensor<const T>(e);
  c.weights.output = Tensor<const T>(out);
}

// Meta's Llama 3.2 1B shape (tied embeddings, scaled RoPE).
inline ModelParams llama3_2_1b_params(int max_seq_len = 2048, int max_batch_size = 1) {
  return params_of<presets::Llama3_2_1B>(max_seq_len, max_batch_size);
}

// Bytes of weights one decode step reads: every matrix once (the tied embedding matrix once, as the output layer;
// the embedding lookup reads one row).
inline std::uint64_t weight_bytes_per_token(const TransformerWeights<Cpu>& w) {
  std::uint64_t bytes = 0;
  const auto add = [&](const AnyTensor<Cpu>& t) {
    std::visit([&](const auto& x) { bytes += x.bytes(); }, t);
  };
  for (const auto& l : w.layers) {
    for (const auto* t : {&l.attention_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w1, &l.w2, &l.w3}) add(*t);
  }
  add(w.norm);
  add(w.output);
  return bytes;
}

}  // namespace llama3
