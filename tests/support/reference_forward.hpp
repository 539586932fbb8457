#pragma once
// Meta's forward pass written out plainly (scalar, sums in double) over a loaded model's weights, with the two
// roundings the library can apply: keys and values stored as bf16 (LoadOptions::kv_cache), and the inputs of the
// products with bf16 weights rounded to bf16 (MatmulPrecision::bf16). Those roundings move the logits by more than
// some mistakes do (the fixtures' sensitivity entries go down to 0.002), so the bf16 paths are held to this
// yardstick, which rounds the same values the same way, rather than to the fixtures' float64 logits.
#include <cmath>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "llama3/core/dtype.hpp"
#include "llama3/core/quant.hpp"
#include "llama3/model/transformer.hpp"

namespace llama3::test {

struct ReferenceRounding {
  bool bf16_cache = false;   // keys and values rounded to bf16 when stored
  bool bf16_inputs = false;  // x rounded to bf16 before a product with bf16 weights
};

// Logits [position][vocab] of `tokens` from position 0, one sequence.
template <class Model>
std::vector<std::vector<float>> reference_forward(const Model& model, std::span<const TokenId> tokens,
                                                  ReferenceRounding rounding = {}) {
  const ModelParams& p = model.params();
  const auto& w = model.weights();
  const int D = p.dim, H = p.n_heads, KV = p.n_kv_heads, hd = p.head_dim(), F = p.ffn_hidden_dim();
  const int T = static_cast<int>(tokens.size());
  const bool half_split = model.rope_layout() == RopeLayout::half_split;
  const auto row_of = [](const AnyTensor<Cpu>& t, std::int64_t r) {
    return std::visit([&](const auto& x) {  // a row of a matrix, or the whole of a vector (the norms)
      const std::int64_t cols = x.rank() == 1 ? x.numel() : x.dim(1);
      std::vector<float> out(static_cast<std::size_t>(cols));
      dequantize_row(x.rank() == 1 ? x.data() : x.row(r), cols, out.data());
      return out;
    }, t);
  };
  // y = x W^T
  const auto linear = [&](const std::vector<float>& x, const AnyTensor<Cpu>& W) {
    const bool round = rounding.bf16_inputs && dtype(W) == DType::bf16;
    std::vector<float> in = x;
    if (round) for (float& v : in) v = to_float(bf16(v));
    const std::int64_t n = shape(W)[0];
    std::vector<float> y(static_cast<std::size_t>(n));
    for (std::int64_t j = 0; j < n; ++j) {
      const std::vector<float> wj = row_of(W, j);
      double s = 0;
      for (std::size_t i = 0; i < wj.size(); ++i) s += double(in[i]) * wj[i];
      y[static_cast<std::size_t>(j)] = static_cast<float>(s);
    }
    return y;
  };
  const auto rms_norm = [&](const std::vector<float>& x, const AnyTensor<Cpu>& weight) {
    const std::vector<float> g = row_of(weight, 0);
    double ss = 0;
    for (const float v : x) ss += double(v) * v;
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + p.norm_eps);
    std::vector<float> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>(double(x[i]) * inv) * g[i];
    return y;
  };
  ops::RopeTable rope = model.rope();  // the frequencies are tested on their own (the fixtures' rope_inv_freq)
  rope.extend(T);
  std::vector<std::vector<float>> h(static_cast<std::size_t>(T));
  for (int t = 0; t < T; ++t) h[static_cast<std::size_t>(t)] = row_of(w.tok_embeddings, tokens[static_cast<std::size_t>(t)]);
  for (int layer = 0; layer < p.n_layers; ++layer) {
    const auto& L = w.layers[static_cast<std::size_t>(layer)];
    std::vector<std::vector<float>> q(static_cast<std::size_t>(T)), k(q.size()), v(q.size());
    for (int t = 0; t < T; ++t) {
      const std::vector<float> xn = rms_norm(h[static_cast<std::size_t>(t)], L.attention_norm);
      q[t] = linear(xn, L.wq), k[t] = linear(xn, L.wk), v[t] = linear(xn, L.wv);
      ops::apply_rotary_emb(q[t].data(), H, hd, rope.cos(t), rope.sin(t), half_split);
      ops::apply_rotary_emb(k[t].data(), KV, hd, rope.cos(t), rope.sin(t), half_split);
      if (rounding.bf16_cache) {
        for (float& x : k[t]) x = to_float(bf16(x));
        for (float& x : v[t]) x = to_float(bf16(x));
      }
    }
    for (int t = 0; t < T; ++t) {
      std::vector<float> attn(static_cast<std::size_t>(H * hd));
      for (int head = 0; head < H; ++head) {
        const int g = head / (H / KV);  // repeat_kv
        std::vector<double> s(static_cast<std::size_t>(t + 1));
        double max = -1e300;
        for (int u = 0; u <= t; ++u) {
          double dot = 0;
          for (int i = 0; i < hd; ++i) dot += double(q[t][head * hd + i]) * k[u][g * hd + i];
          s[u] = dot / std::sqrt(static_cast<double>(hd));
          max = std::max(max, s[u]);
        }
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - max));
        for (int i = 0; i < hd; ++i) {
          double o = 0;
          for (int u = 0; u <= t; ++u) o += s[u] / sum * v[u][g * hd + i];
          attn[static_cast<std::size_t>(head * hd + i)] = static_cast<float>(o);
        }
      }
      const std::vector<float> out = linear(attn, L.wo);
      for (int i = 0; i < D; ++i) h[t][i] += out[i];
      const std::vector<float> xn = rms_norm(h[t], L.ffn_norm);
      std::vector<float> a = linear(xn, L.w1);
      const std::vector<float> b = linear(xn, L.w3);
      for (int i = 0; i < F; ++i) a[i] = static_cast<float>(a[i] / (1.0 + std::exp(-double(a[i])))) * b[i];
      const std::vector<float> down = linear(a, L.w2);
      for (int i = 0; i < D; ++i) h[t][i] += down[i];
    }
  }
  std::vector<std::vector<float>> logits;
  for (int t = 0; t < T; ++t) logits.push_back(linear(rms_norm(h[t], w.norm), w.output));
  return logits;
}

}  // namespace llama3::test
