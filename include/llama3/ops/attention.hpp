#pragma once
// Scaled dot-product attention of one query over the cached keys and values of its sequence, with grouped-query
// heads (Meta's repeat_kv, as indexing: query head h reads kv head h / n_rep; nothing is copied).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace llama3::ops {

// q: head_dim floats of query head h; keys/values: [n_ctx][n_kv_heads][head_dim]; out: head_dim floats.
// scores: scratch of n_ctx floats. The causal mask is the caller's n_ctx (positions beyond it are not read).
inline void attend(const float* q, const float* keys, const float* values, int n_ctx, int n_kv_heads, int kv_head,
                   int head_dim, float* scores, float* out) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const std::int64_t stride = static_cast<std::int64_t>(n_kv_heads) * head_dim;
  float max = -std::numeric_limits<float>::infinity();
  for (int t = 0; t < n_ctx; ++t) {
    const float* k = keys + t * stride + static_cast<std::int64_t>(kv_head) * head_dim;
    float s = 0;
    for (int i = 0; i < head_dim; ++i) s += q[i] * k[i];
    scores[t] = s * scale;
    max = std::max(max, scores[t]);
  }
  double sum = 0;
  for (int t = 0; t < n_ctx; ++t) {
    scores[t] = std::exp(scores[t] - max);
    sum += scores[t];
  }
  const auto inv = static_cast<float>(1.0 / sum);
  std::fill(out, out + head_dim, 0.0f);
  for (int t = 0; t < n_ctx; ++t) {
    const float p = scores[t] * inv;
    const float* v = values + t * stride + static_cast<std::int64_t>(kv_head) * head_dim;
    for (int i = 0; i < head_dim; ++i) out[i] += p * v[i];
  }
}

// SwiGLU's gate: h1 = silu(h1) * h3.
inline void silu_mul(float* h1, const float* h3, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) h1[i] = h1[i] / (1.0f + std::exp(-h1[i])) * h3[i];
}

}  // namespace llama3::ops
