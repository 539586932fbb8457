#pragma once
// Rotary position embedding: Meta's precompute_freqs_cis (with Llama 3.1's apply_scaling) and apply_rotary_emb.
// The table is computed in double and stored as float cos/sin.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <vector>

#include "llama3/core/error.hpp"
#include "llama3/model/model_args.hpp"

namespace llama3::ops {

// Meta's apply_scaling: long wavelengths are divided by the factor, short ones kept, the band between blended.
inline std::vector<double> rope_inv_freq(int head_dim, double theta, bool use_scaled, const RopeScaling& s) {
  std::vector<double> f(static_cast<std::size_t>(head_dim / 2));
  for (int i = 0; i < head_dim / 2; ++i) {
    double freq = 1.0 / std::pow(theta, static_cast<double>(2 * i) / head_dim);
    if (use_scaled) {
      const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
      const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
      const double wavelen = 2 * std::numbers::pi / freq;
      if (wavelen < high_wavelen) {
        // kept
      } else if (wavelen > low_wavelen) {
        freq /= s.factor;
      } else {
        const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        freq = (1 - smooth) * freq / s.factor + smooth * freq;
      }
    }
    f[static_cast<std::size_t>(i)] = freq;
  }
  return f;
}

class RopeTable {
public:
  RopeTable() = default;
  // Positions [0, end), as Meta's precompute_freqs_cis(head_dim, end = 2 * max_seq_len, ...), computed as they are
  // first asked for (extend): a context of 2^24 positions would be 8 GiB of table, of which a conversation uses
  // what it reaches. freq_divisors: a GGUF file's rope_freqs (llama.cpp's converter stores the scaling as one
  // divisor per frequency); when given, they replace use_scaled/s.
  RopeTable(int head_dim, int end, double theta, bool use_scaled, const RopeScaling& s,
            std::span<const float> freq_divisors = {})
      : half_(static_cast<std::size_t>(head_dim / 2)), end_(end),
        inv_freq_(rope_inv_freq(head_dim, theta, use_scaled && freq_divisors.empty(), s)) {
    if (!freq_divisors.empty()) {
      if (freq_divisors.size() != half_) {
        throw Error(detail::cat("rope_freqs has ", freq_divisors.size(), " values, expected head_dim / 2 = ", half_));
      }
      for (std::size_t i = 0; i < half_; ++i) inv_freq_[i] /= static_cast<double>(freq_divisors[i]);
    }
  }

  // Makes positions [0, end) available; the rows already there stay where they are only until the next extend.
  void extend(int end) {
    if (end > end_) throw Error(detail::cat("RoPE position ", end - 1, " is past the table's ", end_, " positions"));
    const int have = positions();
    if (end <= have) return;
    const int target = std::min(end_, std::max({end, 2 * have, 256}));  // doubling: each row computed once
    cos_.resize(static_cast<std::size_t>(target) * half_);
    sin_.resize(cos_.size());
    for (int t = have; t < target; ++t) {
      for (std::size_t i = 0; i < half_; ++i) {
        const double a = t * inv_freq_[i];
        cos_[static_cast<std::size_t>(t) * half_ + i] = static_cast<float>(std::cos(a));
        sin_[static_cast<std::size_t>(t) * half_ + i] = static_cast<float>(std::sin(a));
      }
    }
  }

  const std::vector<double>& inv_freq() const noexcept { return inv_freq_; }
  int max_positions() const noexcept { return end_; }
  // The positions computed so far.
  int positions() const noexcept { return half_ ? static_cast<int>(cos_.size() / half_) : 0; }
  const float* cos(int pos) const noexcept { return cos_.data() + static_cast<std::size_t>(pos) * half_; }
  const float* sin(int pos) const noexcept { return sin_.data() + static_cast<std::size_t>(pos) * half_; }

private:
  std::size_t half_ = 0;
  int end_ = 0;
  std::vector<double> inv_freq_;
  std::vector<float> cos_, sin_;
};

// Rotates n_heads vectors of head_dim at one position. interleaved: the pairs (x[2i], x[2i+1]) as Meta's
// view_as_complex; half_split: the pairs (x[i], x[i + head_dim/2]) as Hugging Face's rotate_half.
inline void apply_rotary_emb(float* x, int n_heads, int head_dim, const float* cos, const float* sin,
                             bool half_split) {
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<std::ptrdiff_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      float& a = half_split ? v[i] : v[2 * i];
      float& b = half_split ? v[i + half] : v[2 * i + 1];
      const float x0 = a, x1 = b;
      a = x0 * cos[i] - x1 * sin[i];
      b = x0 * sin[i] + x1 * cos[i];
    }
  }
}

}  // namespace llama3::ops
