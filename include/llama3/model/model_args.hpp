#pragma once
// ModelArgs: the hyper-parameters of a Llama 3 model, named as in Meta's model.py.
//
// ModelParams holds them as run-time values (what a checkpoint's params.json or config.json says). An *args type*
// fixes some or all of them at compile time: a struct of static constexpr members, like the presets below. A member
// equal to Dynamic (or dynamic_real) is read from the checkpoint, so DynamicArgs loads any Llama 3 checkpoint:
//
//   struct MyArgs : llama3::DynamicArgs { static constexpr int dim = 2048, n_heads = 32; };
//
// Fixed values are checked at compile time (check_args<Args>() in a static_assert) and against the checkpoint when
// it is loaded (resolve<Args>(), an Error naming the field that disagrees).
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "llama3/core/dtype.hpp"
#include "llama3/core/error.hpp"

namespace llama3 {

inline constexpr int Dynamic = -1;
inline constexpr double dynamic_real = -1.0;

// Llama 3.1's RoPE frequency scaling (Meta's apply_scaling; Hugging Face's rope_type "llama3").
struct RopeScaling {
  double factor = 8.0;  // Meta's reference hard-codes 8 (right for 3.1); Llama 3.2 1B/3B use 32
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position_embeddings = 8192.0;
  friend bool operator==(const RopeScaling&, const RopeScaling&) = default;
};

struct ModelParams {
  int dim = 4096;
  int n_layers = 32;
  int n_heads = 32;
  int n_kv_heads = 32;
  int vocab_size = 128256;
  int multiple_of = 256;                       // with ffn_dim_multiplier, gives hidden_dim by Meta's rule
  std::optional<double> ffn_dim_multiplier;    // None in Meta's params.json when absent
  double norm_eps = 1e-5;
  double rope_theta = 500000.0;
  bool use_scaled_rope = false;
  RopeScaling rope_scaling;
  bool tie_embeddings = false;                 // Llama 3.2 1B/3B: the output layer reuses tok_embeddings
  int hidden_dim = 0;                          // the FeedForward width; 0: by Meta's rule from the fields above
  int max_batch_size = 1;                      // the KV cache: max_batch_size x max_seq_len
  int max_seq_len = 2048;
  DType kv_cache = DType::f32;                 // the KV cache's type: f32, or bf16 (half the memory and reads)
  MatmulPrecision matmul_precision = MatmulPrecision::f32;  // bf16 weights: f32 maths, or bf16 inputs

  int head_dim() const noexcept { return dim / n_heads; }
  int n_rep() const noexcept { return n_heads / n_kv_heads; }

  // FeedForward.__init__: hidden = int(2 * 4 * dim / 3), times ffn_dim_multiplier if set, rounded up to multiple_of.
  static int meta_hidden_dim(int dim, int multiple_of, std::optional<double> ffn_dim_multiplier) {
    auto hidden = static_cast<std::int64_t>(2 * (4 * static_cast<std::int64_t>(dim)) / 3);
    if (ffn_dim_multiplier) hidden = static_cast<std::int64_t>(*ffn_dim_multiplier * static_cast<double>(hidden));
    hidden = multiple_of * ((hidden + multiple_of - 1) / multiple_of);
    return static_cast<int>(hidden);
  }
  int ffn_hidden_dim() const { return hidden_dim > 0 ? hidden_dim : meta_hidden_dim(dim, multiple_of, ffn_dim_multiplier); }

  // Throws an Error naming the first field that makes no sense; `source` names the file it came from.
  void validate(const std::string& source = "model args") const {
    const auto fail = [&](const std::string& what) { throw Error(source + ": " + what); };
    const auto positive = [&](const char* name, std::int64_t v, std::int64_t max) {
      if (v <= 0 || v > max) fail(detail::cat(name, " = ", v, ": expected 1..", max));
    };
    positive("dim", dim, 1 << 20);
    positive("n_layers", n_layers, 4096);
    positive("n_heads", n_heads, 1 << 14);
    positive("n_kv_heads", n_kv_heads, 1 << 14);
    positive("vocab_size", vocab_size, 1 << 24);
    positive("max_batch_size", max_batch_size, 1 << 16);
    positive("max_seq_len", max_seq_len, 1 << 24);
    if (hidden_dim == 0) positive("multiple_of", multiple_of, 1 << 20);
    if (kv_cache != DType::f32 && kv_cache != DType::bf16) {
      fail(detail::cat("kv_cache = ", dtype_name(kv_cache), ": the KV cache holds f32 or bf16"));
    }
    if (dim % n_heads != 0) fail(detail::cat("dim = ", dim, " is not a multiple of n_heads = ", n_heads));
    if (n_heads % n_kv_heads != 0) {
      fail(detail::cat("n_heads = ", n_heads, " is not a multiple of n_kv_heads = ", n_kv_heads));
    }
    if (head_dim() % 2 != 0) fail(detail::cat("head_dim = ", head_dim(), " is odd: RoPE rotates pairs"));
    if (ffn_dim_multiplier && !(*ffn_dim_multiplier > 0 && *ffn_dim_multiplier < 1e3)) {
      fail(detail::cat("ffn_dim_multiplier = ", *ffn_dim_multiplier, ": expected a positive number"));
    }
    positive("the FeedForward hidden size", ffn_hidden_dim(), 1 << 22);
    if (!(norm_eps > 0 && norm_eps < 1)) fail(detail::cat("norm_eps = ", norm_eps, ": expected 0 < norm_eps < 1"));
    if (!(rope_theta > 1 && std::isfinite(rope_theta))) fail(detail::cat("rope_theta = ", rope_theta, ": expected > 1"));
    if (use_scaled_rope) {
      const RopeScaling& s = rope_scaling;
      if (!(s.factor >= 1 && std::isfinite(s.factor))) fail(detail::cat("rope scaling factor = ", s.factor));
      if (!(s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor)) {
        fail(detail::cat("rope scaling frequency factors low = ", s.low_freq_factor, ", high = ", s.high_freq_factor,
                         ": expected 0 < low < high"));
      }
      if (!(s.original_max_position_embeddings > 0)) fail("rope scaling original_max_position_embeddings <= 0");
    }
  }
};

// ---- args types -------------------------------------------------------------------------------------------------

// Everything read from the checkpoint.
struct DynamicArgs {
  static constexpr int dim = Dynamic, n_layers = Dynamic, n_heads = Dynamic, n_kv_heads = Dynamic,
                       vocab_size = Dynamic, hidden_dim = Dynamic;
  static constexpr double norm_eps = dynamic_real, rope_theta = dynamic_real, rope_scale_factor = dynamic_real;
  static constexpr int use_scaled_rope = Dynamic, tie_embeddings = Dynamic;  // Dynamic, 0 or 1
};

namespace presets {

struct Llama3Base {
  static constexpr int vocab_size = 128256, use_scaled_rope = 0, tie_embeddings = 0;
  static constexpr double norm_eps = 1e-5, rope_theta = 500000.0, rope_scale_factor = dynamic_real;
};

struct Llama3_8B : Llama3Base {
  static constexpr int dim = 4096, n_layers = 32, n_heads = 32, n_kv_heads = 8, hidden_dim = 14336;
};
struct Llama3_70B : Llama3Base {
  static constexpr int dim = 8192, n_layers = 80, n_heads = 64, n_kv_heads = 8, hidden_dim = 28672;
};
struct Llama3_1_8B : Llama3_8B {
  static constexpr int use_scaled_rope = 1;
  static constexpr double rope_scale_factor = 8.0;
};
struct Llama3_1_70B : Llama3_70B {
  static constexpr int use_scaled_rope = 1;
  static constexpr double rope_scale_factor = 8.0;
};
struct Llama3_1_405B : Llama3Base {
  static constexpr int dim = 16384, n_layers = 126, n_heads = 128, n_kv_heads = 8, hidden_dim = 53248;
  static constexpr int use_scaled_rope = 1;
  static constexpr double rope_scale_factor = 8.0;
};
struct Llama3_2_1B : Llama3Base {
  static constexpr int dim = 2048, n_layers = 16, n_heads = 32, n_kv_heads = 8, hidden_dim = 8192;
  static constexpr int use_scaled_rope = 1, tie_embeddings = 1;
  static constexpr double rope_scale_factor = 32.0;
};
struct Llama3_2_3B : Llama3Base {
  static constexpr int dim = 3072, n_layers = 28, n_heads = 24, n_kv_heads = 8, hidden_dim = 8192;
  static constexpr int use_scaled_rope = 1, tie_embeddings = 1;
  static constexpr double rope_scale_factor = 32.0;
};

}  // namespace presets

// The run-time params of a preset (every member fixed), e.g. for a synthetic model of that shape.
template <class Preset>
ModelParams params_of(int max_seq_len = 2048, int max_batch_size = 1) {
  ModelParams p;
  p.dim = Preset::dim;
  p.n_layers = Preset::n_layers;
  p.n_heads = Preset::n_heads;
  p.n_kv_heads = Preset::n_kv_heads;
  p.vocab_size = Preset::vocab_size;
  p.hidden_dim = Preset::hidden_dim;
  p.norm_eps = Preset::norm_eps;
  p.rope_theta = Preset::rope_theta;
  p.use_scaled_rope = Preset::use_scaled_rope != 0;
  if (p.use_scaled_rope) p.rope_scaling.factor = Preset::rope_scale_factor;
  p.tie_embeddings = Preset::tie_embeddings != 0;
  p.max_seq_len = max_seq_len;
  p.max_batch_size = max_batch_size;
  return p;
}

// nullptr when the fixed members of Args are consistent; otherwise what is wrong. For static_assert.
template <class Args>
constexpr const char* check_args() {
  constexpr auto fixed = [](int v) { return v != Dynamic; };
  if (fixed(Args::dim) && Args::dim <= 0) return "dim must be positive";
  if (fixed(Args::n_heads) && Args::n_heads <= 0) return "n_heads must be positive";
  if (fixed(Args::n_kv_heads) && Args::n_kv_heads <= 0) return "n_kv_heads must be positive";
  if (fixed(Args::n_layers) && Args::n_layers <= 0) return "n_layers must be positive";
  if (fixed(Args::vocab_size) && Args::vocab_size <= 0) return "vocab_size must be positive";
  if (fixed(Args::hidden_dim) && Args::hidden_dim <= 0) return "hidden_dim must be positive";
  if (fixed(Args::dim) && fixed(Args::n_heads) && Args::dim % Args::n_heads != 0) {
    return "dim must be a multiple of n_heads";
  }
  if (fixed(Args::n_heads) && fixed(Args::n_kv_heads) && Args::n_heads % Args::n_kv_heads != 0) {
    return "n_heads must be a multiple of n_kv_heads";
  }
  if (fixed(Args::dim) && fixed(Args::n_heads) && (Args::dim / Args::n_heads) % 2 != 0) {
    return "head_dim (dim / n_heads) must be even: RoPE rotates pairs";
  }
  if (Args::norm_eps != dynamic_real && !(Args::norm_eps > 0 && Args::norm_eps < 1)) return "norm_eps out of range";
  if (Args::rope_theta != dynamic_real && !(Args::rope_theta > 1)) return "rope_theta must be > 1";
  if (Args::use_scaled_rope != Dynamic && Args::use_scaled_rope != 0 && Args::use_scaled_rope != 1) {
    return "use_scaled_rope must be Dynamic, 0 or 1";
  }
  if (Args::tie_embeddings != Dynamic && Args::tie_embeddings != 0 && Args::tie_embeddings != 1) {
    return "tie_embeddings must be Dynamic, 0 or 1";
  }
  return nullptr;
}

template <class Args>
inline constexpr bool args_are_valid = check_args<Args>() == nullptr;

// The checkpoint's params, checked against the fields Args fixes. `source` names the checkpoint.
template <class Args>
ModelParams resolve(const ModelParams& p, const std::string& source) {
  static_assert(args_are_valid<Args>, "invalid model args: see check_args<Args>()");
  const auto check = [&](const char* field, auto fixed, auto found, auto dynamic) {
    if (fixed != dynamic && fixed != found) {
      throw Error(detail::cat(source, ": ", field, " is ", found, " in the checkpoint, but the model args fix it at ",
                              fixed));
    }
  };
  check("dim", Args::dim, p.dim, Dynamic);
  check("n_layers", Args::n_layers, p.n_layers, Dynamic);
  check("n_heads", Args::n_heads, p.n_heads, Dynamic);
  check("n_kv_heads", Args::n_kv_heads, p.n_kv_heads, Dynamic);
  check("vocab_size", Args::vocab_size, p.vocab_size, Dynamic);
  check("hidden_dim (the FeedForward size)", Args::hidden_dim, p.ffn_hidden_dim(), Dynamic);
  check("norm_eps", Args::norm_eps, p.norm_eps, dynamic_real);
  check("rope_theta", Args::rope_theta, p.rope_theta, dynamic_real);
  check("use_scaled_rope", Args::use_scaled_rope, p.use_scaled_rope ? 1 : 0, Dynamic);
  if (p.use_scaled_rope) check("the rope scaling factor", Args::rope_scale_factor, p.rope_scaling.factor, dynamic_real);
  check("tie_embeddings", Args::tie_embeddings, p.tie_embeddings ? 1 : 0, Dynamic);
  p.validate(source);
  return p;
}

}  // namespace llama3
