#pragma once
// Attention of the query heads that share one KV head (Meta's repeat_kv as indexing: the n_rep heads read the same
// cached keys and values, which are loaded once for all of them) over the cache of one sequence. The cache holds
// float or bf16 (half the bytes to read at long context); each head's arithmetic is the same whatever the number of
// query rows in the pass, so prompt lookup stays exact. The AVX2 kernel (with a vectorised exp) is tested against
// the scalar reference, ops::attend.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "llama3/backends/cpu/matmul.hpp"
#include "llama3/core/dtype.hpp"
#include "llama3/ops/attention.hpp"

namespace llama3::cpu {

using ops::KvView;

#if LLAMA3_X86

// exp(x) for x <= 0 (scores minus their max), to about 2 ulp: 2^n * p(r) with a degree-6 polynomial on
// [-ln2/2, ln2/2] (Cephes' expf coefficients); below -87 it is 0, as the float result is.
LLAMA3_TARGET_AVX2 inline __m256 exp_avx2(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// head_dim a multiple of 8 (64 and 128 in every Llama 3).
template <class T>
LLAMA3_TARGET_AVX2 void attend_group_avx2(const float* q, KvView<T> keys, KvView<T> values, int kv_head, int n_rep,
                                          int head_dim, int n_ctx, float* scores, float* out) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  // Scores: each cached key is loaded once for the n_rep heads.
  for (int t = 0; t < n_ctx; ++t) {
    const T* k = keys.data + t * keys.stride + static_cast<std::int64_t>(kv_head) * head_dim;
    if (t + 4 < n_ctx) _mm_prefetch(reinterpret_cast<const char*>(k + 4 * keys.stride), _MM_HINT_T0);
    for (int r = 0; r < n_rep; ++r) {
      const float* qr = q + static_cast<std::int64_t>(r) * head_dim;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0;
      int i = 0;
      for (; i + 16 <= head_dim; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + i), load8(k + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + i + 8), load8(k + i + 8), a1);
      }
      if (i < head_dim) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + i), load8(k + i), a0);
      scores[static_cast<std::int64_t>(r) * n_ctx + t] = hsum(_mm256_add_ps(a0, a1)) * scale;
    }
  }
  // Softmax of each head's row.
  for (int r = 0; r < n_rep; ++r) {
    float* s = scores + static_cast<std::int64_t>(r) * n_ctx;
    float max = -std::numeric_limits<float>::infinity();
    for (int t = 0; t < n_ctx; ++t) max = std::max(max, s[t]);
    const __m256 vmax = _mm256_set1_ps(max);
    __m256 vsum = _mm256_setzero_ps();
    int t = 0;
    for (; t + 8 <= n_ctx; t += 8) {
      const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + t), vmax));
      _mm256_storeu_ps(s + t, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum(vsum);
    for (; t < n_ctx; ++t) {
      s[t] = std::exp(s[t] - max);
      sum += s[t];
    }
    const float inv = 1.0f / sum;
    for (t = 0; t < n_ctx; ++t) s[t] *= inv;
  }
  // Outputs, 16 floats of up to 4 heads at a time: each cached value is loaded once for the heads of the group.
  for (int r0 = 0; r0 < n_rep; r0 += 4) {
    const int g = std::min(4, n_rep - r0);
    for (int i0 = 0; i0 < head_dim; i0 += 16) {
      const bool two = i0 + 16 <= head_dim;
      __m256 acc[4][2];
      for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
      for (int t = 0; t < n_ctx; ++t) {
        const T* v = values.data + t * values.stride + static_cast<std::int64_t>(kv_head) * head_dim + i0;
        const __m256 v0 = load8(v), v1 = two ? load8(v + 8) : _mm256_setzero_ps();
        for (int r = 0; r < g; ++r) {
          const __m256 p = _mm256_set1_ps(scores[static_cast<std::int64_t>(r0 + r) * n_ctx + t]);
          acc[r][0] = _mm256_fmadd_ps(p, v0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(p, v1, acc[r][1]);
        }
      }
      for (int r = 0; r < g; ++r) {
        float* o = out + static_cast<std::int64_t>(r0 + r) * head_dim + i0;
        _mm256_storeu_ps(o, acc[r][0]);
        if (two) _mm256_storeu_ps(o + 8, acc[r][1]);
      }
    }
  }
}

#endif  // LLAMA3_X86

template <class T>
void attend_group(const float* q, KvView<T> keys, KvView<T> values, int kv_head, int n_rep, int head_dim, int n_ctx,
                  float* scores, float* out) {
#if LLAMA3_X86
  if (has_avx2() && head_dim % 8 == 0) {
    return attend_group_avx2(q, keys, values, kv_head, n_rep, head_dim, n_ctx, scores, out);
  }
#endif
  ops::attend(q, keys, values, kv_head, n_rep, head_dim, n_ctx, scores, out);
}

}  // namespace llama3::cpu
