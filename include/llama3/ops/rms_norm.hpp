#pragma once
// RMSNorm (Meta's RMSNorm): x * rsqrt(mean(x^2) + eps) * weight, in float.
#include <cmath>
#include <cstdint>

namespace llama3::ops {

inline void rms_norm(const float* x, const float* weight, std::int64_t n, double eps, float* out) {
  double ss = 0;
  for (std::int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const auto scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (std::int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

}  // namespace llama3::ops
