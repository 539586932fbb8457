#pragma once
// Attention of the query heads that share one KV head (Meta's repeat_kv as indexing: the n_rep heads read the same
// cached keys and values, which are loaded once for all of them) over the cache of one sequence. The cache holds
// float or bf16 (half the bytes to read at long context); each head's arithmetic is the same whatever the number of
// query rows in the pass, so prompt lookup stays exact. The AVX2 and AVX-512 kernels (with a vectorised exp) are
// tested against the scalar reference, ops::attend.
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
// [-ln2/2, ln2/2] (Cephes' expf coefficients); below -87 it is 0, as the float result is. One set of constants for
// the AVX2 and AVX-512 versions.
namespace exp_poly {
inline constexpr float floor = -87.0f, log2e = 1.44269504088896341f;
inline constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;  // ln 2 in two parts: r = x - n ln 2 exactly
inline constexpr float c[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};  // from x^7 / 7! down to x^2 / 2
}  // namespace exp_poly

LLAMA3_TARGET_AVX2 inline __m256 exp_avx2(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(exp_poly::floor));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(exp_poly::log2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(exp_poly::ln2_hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(exp_poly::ln2_lo), r);
  __m256 p = _mm256_set1_ps(exp_poly::c[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(exp_poly::c[i]));
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

// ---- AVX-512 ------------------------------------------------------------------------------------------------------

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// exp_avx2's arithmetic, 16 lanes.
LLAMA3_TARGET_AVX512 inline __m512 exp_avx512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(exp_poly::floor));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(exp_poly::log2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_poly::ln2_hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_poly::ln2_lo), r);
  __m512 p = _mm512_set1_ps(exp_poly::c[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(exp_poly::c[i]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// Lane j = the sum of v[j]'s lanes, for 16 vectors: a tree of unpacks and 128-bit shuffles (about 3 instructions a
// vector, against 8 for a reduction each).
LLAMA3_TARGET_AVX512 inline __m512 sum16(const __m512 v[16]) {
  __m512 t[8], u[4];
  for (int a = 0; a < 8; ++a) t[a] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * a], v[2 * a + 1]), _mm512_unpackhi_ps(v[2 * a], v[2 * a + 1]));
  for (int b = 0; b < 4; ++b) {
    const __m512d a0 = _mm512_castps_pd(t[2 * b]), a1 = _mm512_castps_pd(t[2 * b + 1]);
    u[b] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a0, a1)), _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a1)));
  }
  // u[b], 128-bit lane L: the lane-L partial sums of v[4b .. 4b + 3].
  const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x44), _mm512_shuffle_f32x4(u[0], u[1], 0xEE));
  const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x44), _mm512_shuffle_f32x4(u[2], u[3], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, 0x88), _mm512_shuffle_f32x4(s01, s23, 0xDD));
}

// Rows r0 .. r0 + G of scores (probabilities) times the cached values, 64 floats of head_dim from `col`: each value
// is loaded once for the G heads. The 4G accumulators are indexed by constants only, so they stay in registers.
template <int G, class T>
LLAMA3_TARGET_AVX512 void weigh_values_avx512(const float* scores, int n_ctx, const T* v0, std::int64_t stride, int col,
                                              float* out, int head_dim) {
  __m512 acc[G][4];
  #pragma GCC unroll 16
  for (int r = 0; r < G; ++r) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm512_setzero_ps();
  for (int t = 0; t < n_ctx; ++t) {
    const T* v = v0 + static_cast<std::int64_t>(t) * stride + col;
    if (t + 16 < n_ctx) {
      const char* ahead = reinterpret_cast<const char*>(v + 16 * stride);
      for (int line = 0; line < 64 * static_cast<int>(sizeof(T)); line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
    }
    const __m512 v_0 = load16(v), v_1 = load16(v + 16), v_2 = load16(v + 32), v_3 = load16(v + 48);
    #pragma GCC unroll 16
    for (int r = 0; r < G; ++r) {
      const __m512 p = _mm512_set1_ps(scores[static_cast<std::int64_t>(r) * n_ctx + t]);
      acc[r][0] = _mm512_fmadd_ps(p, v_0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(p, v_1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(p, v_2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(p, v_3, acc[r][3]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < G; ++r) {
    #pragma GCC unroll 16
    for (int c = 0; c < 4; ++c) _mm512_storeu_ps(out + static_cast<std::int64_t>(r) * head_dim + col + 16 * c, acc[r][c]);
  }
}

// attend_group_avx2's work with 16 lanes, for head_dim = 16 CH (64 or 128, every Llama 3): scores 16 keys at a
// time, each key loaded once for all heads (the cache is strided by the other KV heads and, at long context, read
// from memory), every head's products kept until sum16 adds them up; the exp vectorised; then the values.
template <int CH, class T>
LLAMA3_TARGET_AVX512 void attend_group_avx512(const float* q, KvView<T> keys, KvView<T> values, int kv_head, int n_rep,
                                              int n_ctx, float* scores, float* out) {
  constexpr int head_dim = 16 * CH;
  const __m512 scale = _mm512_set1_ps(1.0f / std::sqrt(static_cast<float>(head_dim)));
  const T* k0 = keys.data + static_cast<std::int64_t>(kv_head) * head_dim;
  alignas(64) __m512 dots[16][16];  // [head (up to 16 a pass)][key]
  for (int r0 = 0; r0 < n_rep; r0 += 16) {
    const int g = std::min(16, n_rep - r0);
    const float* qg = q + static_cast<std::int64_t>(r0) * head_dim;
    int t = 0;
    for (; t + 16 <= n_ctx; t += 16) {
      #pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) {
        const T* kj = k0 + static_cast<std::int64_t>(t + j) * keys.stride;
        if (t + j + 32 < n_ctx) {  // two blocks of keys ahead
          const char* ahead = reinterpret_cast<const char*>(kj + 32 * keys.stride);
          for (int line = 0; line < head_dim * static_cast<int>(sizeof(T)); line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
        }
        __m512 kv[CH];
        #pragma GCC unroll 16
        for (int c = 0; c < CH; ++c) kv[c] = load16(kj + 16 * c);
        for (int r = 0; r < g; ++r) {
          const float* qr = qg + static_cast<std::int64_t>(r) * head_dim;
          __m512 a = _mm512_mul_ps(_mm512_loadu_ps(qr), kv[0]);
          for (int c = 1; c < CH; ++c) a = _mm512_fmadd_ps(_mm512_loadu_ps(qr + 16 * c), kv[c], a);
          dots[r][j] = a;
        }
      }
      for (int r = 0; r < g; ++r) {
        _mm512_storeu_ps(scores + static_cast<std::int64_t>(r0 + r) * n_ctx + t, _mm512_mul_ps(sum16(dots[r]), scale));
      }
    }
    for (; t < n_ctx; ++t) {
      const T* kt = k0 + static_cast<std::int64_t>(t) * keys.stride;
      for (int r = 0; r < g; ++r) {
        const float* qr = qg + static_cast<std::int64_t>(r) * head_dim;
        __m512 a = _mm512_mul_ps(_mm512_loadu_ps(qr), load16(kt));
        for (int c = 1; c < CH; ++c) a = _mm512_fmadd_ps(_mm512_loadu_ps(qr + 16 * c), load16(kt + 16 * c), a);
        scores[static_cast<std::int64_t>(r0 + r) * n_ctx + t] = _mm512_reduce_add_ps(_mm512_mul_ps(a, scale));
      }
    }
  }
  // Softmax of each head's row.
  for (int r = 0; r < n_rep; ++r) {
    float* s = scores + static_cast<std::int64_t>(r) * n_ctx;
    __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    int u = 0;
    for (; u + 16 <= n_ctx; u += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + u));
    float max = _mm512_reduce_max_ps(vmax);
    for (; u < n_ctx; ++u) max = std::max(max, s[u]);
    const __m512 m = _mm512_set1_ps(max);
    __m512 vsum = _mm512_setzero_ps();
    for (u = 0; u + 16 <= n_ctx; u += 16) {
      const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(s + u), m));
      _mm512_storeu_ps(s + u, e);
      vsum = _mm512_add_ps(vsum, e);
    }
    if (u < n_ctx) {
      const auto mask = static_cast<__mmask16>((1u << (n_ctx - u)) - 1);
      const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, s + u), m));
      _mm512_mask_storeu_ps(s + u, mask, e);
      vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(mask, e));
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (u = 0; u + 16 <= n_ctx; u += 16) _mm512_storeu_ps(s + u, _mm512_mul_ps(_mm512_loadu_ps(s + u), inv));
    for (; u < n_ctx; ++u) s[u] *= _mm512_cvtss_f32(inv);
  }
  // Outputs: up to 4 heads and 64 floats of head_dim at a time.
  const T* v0 = values.data + static_cast<std::int64_t>(kv_head) * head_dim;
  for (int r0 = 0; r0 < n_rep; r0 += 4) {
    const float* sr = scores + static_cast<std::int64_t>(r0) * n_ctx;
    float* o = out + static_cast<std::int64_t>(r0) * head_dim;
    for (int col = 0; col < head_dim; col += 64) {
      switch (std::min(4, n_rep - r0)) {
        case 1: weigh_values_avx512<1>(sr, n_ctx, v0, values.stride, col, o, head_dim); break;
        case 2: weigh_values_avx512<2>(sr, n_ctx, v0, values.stride, col, o, head_dim); break;
        case 3: weigh_values_avx512<3>(sr, n_ctx, v0, values.stride, col, o, head_dim); break;
        default: weigh_values_avx512<4>(sr, n_ctx, v0, values.stride, col, o, head_dim); break;
      }
    }
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // LLAMA3_X86

template <class T>
void attend_group(const float* q, KvView<T> keys, KvView<T> values, int kv_head, int n_rep, int head_dim, int n_ctx,
                  float* scores, float* out) {
#if LLAMA3_X86
  if (has_avx512() && head_dim == 64) return attend_group_avx512<4>(q, keys, values, kv_head, n_rep, n_ctx, scores, out);
  if (has_avx512() && head_dim == 128) return attend_group_avx512<8>(q, keys, values, kv_head, n_rep, n_ctx, scores, out);
  if (has_avx2() && head_dim % 8 == 0) {
    return attend_group_avx2(q, keys, values, kv_head, n_rep, head_dim, n_ctx, scores, out);
  }
#endif
  ops::attend(q, keys, values, kv_head, n_rep, head_dim, n_ctx, scores, out);
}

}  // namespace llama3::cpu
