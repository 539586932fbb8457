#pragma once
// Scaled dot-product attention over the cached keys and values of one sequence, with grouped-query heads (Meta's
// repeat_kv, as indexing: query head h reads kv head h / n_rep; nothing is copied). The scalar reference.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "llama3/core/dtype.hpp"

namespace llama3::ops {

// Where one position's keys (or values) of all KV heads are: row t of a [n_ctx][n_kv_heads * head_dim] cache of T
// (float or bf16).
template <class T>
struct KvView {
  const T* data;
  std::int64_t stride;  // elements between positions
};

// The n_rep query heads that read KV head kv_head (q: n_rep * head_dim floats) over the first n_ctx cached
// positions (the causal mask is the caller's n_ctx); scores: scratch of n_rep * n_ctx floats; out like q.
template <class T>
void attend(const float* q, KvView<T> keys, KvView<T> values, int kv_head, int n_rep, int head_dim, int n_ctx,
            float* scores, float* out) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (int r = 0; r < n_rep; ++r) {
    const float* qr = q + static_cast<std::int64_t>(r) * head_dim;
    float* s = scores + static_cast<std::int64_t>(r) * n_ctx;
    float max = -std::numeric_limits<float>::infinity();
    for (int t = 0; t < n_ctx; ++t) {
      const T* k = keys.data + t * keys.stride + static_cast<std::int64_t>(kv_head) * head_dim;
      float dot = 0;
      for (int i = 0; i < head_dim; ++i) dot += qr[i] * to_float(k[i]);
      s[t] = dot * scale;
      max = std::max(max, s[t]);
    }
    double sum = 0;
    for (int t = 0; t < n_ctx; ++t) {
      s[t] = std::exp(s[t] - max);
      sum += s[t];
    }
    const auto inv = static_cast<float>(1.0 / sum);
    float* o = out + static_cast<std::int64_t>(r) * head_dim;
    std::fill(o, o + head_dim, 0.0f);
    for (int t = 0; t < n_ctx; ++t) {
      const float p = s[t] * inv;
      const T* v = values.data + t * values.stride + static_cast<std::int64_t>(kv_head) * head_dim;
      for (int i = 0; i < head_dim; ++i) o[i] += p * to_float(v[i]);
    }
  }
}

// SwiGLU's gate: h1 = silu(h1) * h3.
inline void silu_mul(float* h1, const float* h3, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) h1[i] = h1[i] / (1.0f + std::exp(-h1[i])) * h3[i];
}

}  // namespace llama3::ops
