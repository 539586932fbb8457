#pragma once
// Transformer<Args, Device>: Meta's model.py forward pass with a KV cache.
//
//   auto model = llama3::Transformer<>::load("Llama3.2-1B/", {.max_seq_len = 512});
//   llama3::Tensor<float> logits = model.forward(tokens, /*start_pos=*/0);   // [bsz][seqlen][vocab]
//
// Args fixes hyper-parameters at compile time (model_args.hpp); the default, DynamicArgs, reads them all from the
// checkpoint. Activations are float; weights stay in their stored type (f32, bf16, f16) and are widened in the
// kernels. forward() reads like Meta's: embeddings, then per layer h = x + attention(attention_norm(x)) and
// out = h + feed_forward(ffn_norm(h)), then norm and output.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "llama3/backends/cpu/kernels.hpp"
#include "llama3/backends/cpu/primitives.hpp"
#include "llama3/core/error.hpp"
#include "llama3/core/memory.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/core/thread_pool.hpp"
#include "llama3/io/checkpoint.hpp"
#include "llama3/model/model_args.hpp"
#include "llama3/model/weights.hpp"
#include "llama3/ops/attention.hpp"
#include "llama3/ops/rope.hpp"

namespace llama3 {

using TokenId = std::int32_t;

// Which positions forward() returns logits for.
enum class Logits { all, last };

template <class Args = DynamicArgs, class Device = Cpu>
class Transformer {
  static_assert(args_are_valid<Args>, "invalid model args: see llama3::check_args<Args>()");
  static_assert(std::is_same_v<Device, Cpu>, "this device has no Transformer yet");
  using P = primitives<Device>;

public:
  // Loads a Meta or Hugging Face checkpoint folder (see load_checkpoint); threads: 0 for all hardware threads.
  static Transformer load(const std::filesystem::path& dir, const LoadOptions& options = {}, unsigned threads = 0) {
    return Transformer(load_checkpoint(dir, options), threads);
  }

  explicit Transformer(Checkpoint c, unsigned threads = 0)
      : p_(resolve<Args>(c.params, c.dir.string())),
        w_(std::move(c.weights)),
        layout_(c.rope_layout),
        rope_(p_.head_dim(), 2 * p_.max_seq_len, p_.rope_theta, p_.use_scaled_rope, p_.rope_scaling, c.rope_freqs),
        pool_(std::make_unique<ThreadPool>(threads)) {
    // The whole cache is reserved and checked against the memory there is, but its pages are taken only as
    // positions are written: a long max_seq_len costs what a conversation reaches.
    const std::uint64_t bytes = kv_cache_bytes(p_);
    check_kv_cache_fits(p_, bytes, available_memory());
    if (bytes / 2 > PTRDIFF_MAX) throw Error(detail::cat("a KV cache of ", bytes, " bytes cannot be addressed"));
    cache_k_ = lazy_zeroed_buffer(static_cast<std::size_t>(bytes / 2), "the KV cache's keys");
    cache_v_ = lazy_zeroed_buffer(static_cast<std::size_t>(bytes / 2), "the KV cache's values");
  }

  // Bytes of the KV cache of params p: keys and values of every layer, batch row and position (UINT64_MAX when
  // that does not fit 64 bits: the validated limits allow 2^74).
  static std::uint64_t kv_cache_bytes(const ModelParams& p) noexcept {
    std::uint64_t bytes = 2 * dtype_size(p.kv_cache);
    for (const int factor : {p.n_layers, p.max_batch_size, p.max_seq_len, p.n_kv_heads, p.head_dim()}) {
      if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(factor), &bytes)) return UINT64_MAX;
    }
    return bytes;
  }

  // An Error when a cache of `bytes` cannot fit the `available` memory: how much it needs, and what would fit.
  static void check_kv_cache_fits(const ModelParams& p, std::uint64_t bytes, std::optional<std::uint64_t> available) {
    if (!available || bytes <= *available) return;
    const std::uint64_t per_position = bytes / static_cast<std::uint64_t>(p.max_seq_len);
    std::string what = detail::cat("the KV cache of ", p.n_layers, " layers x ", p.max_batch_size, " x ", p.max_seq_len,
                                   " positions in ", dtype_name(p.kv_cache), " needs ", format_bytes(bytes), ", but ",
                                   format_bytes(*available), " of memory is available: a max_seq_len (--max-seq-len) "
                                   "of at most ", *available / per_position, " fits");
    if (p.kv_cache == DType::f32) {
      what += detail::cat(", or the bf16 cache (--kv-cache bf16) would need ", format_bytes(bytes / 2));
    }
    if (p.max_batch_size > 1) what += ", or a smaller max_batch_size";
    throw Error(what);
  }

  Transformer(Transformer&&) noexcept = default;
  Transformer& operator=(Transformer&&) noexcept = default;

  const ModelParams& params() const noexcept { return p_; }
  const TransformerWeights<Device>& weights() const noexcept { return w_; }
  const ops::RopeTable& rope() const noexcept { return rope_; }
  RopeLayout rope_layout() const noexcept { return layout_; }
  unsigned threads() const noexcept { return pool_->size(); }
  void set_threads(unsigned threads) { pool_ = std::make_unique<ThreadPool>(threads); }
  MatmulPrecision matmul_precision() const noexcept { return p_.matmul_precision; }
  void set_matmul_precision(MatmulPrecision p) noexcept { p_.matmul_precision = p; }

  // Compile-time sizes where Args fixes them (the compiler sees constants in the loops), run-time ones otherwise.
  int dim() const noexcept { return Args::dim != Dynamic ? Args::dim : p_.dim; }
  int n_layers() const noexcept { return Args::n_layers != Dynamic ? Args::n_layers : p_.n_layers; }
  int n_heads() const noexcept { return Args::n_heads != Dynamic ? Args::n_heads : p_.n_heads; }
  int n_kv_heads() const noexcept { return Args::n_kv_heads != Dynamic ? Args::n_kv_heads : p_.n_kv_heads; }
  int head_dim() const noexcept {
    return (Args::dim != Dynamic && Args::n_heads != Dynamic) ? Args::dim / Args::n_heads : p_.head_dim();
  }
  int n_rep() const noexcept { return n_heads() / n_kv_heads(); }
  int vocab_size() const noexcept { return Args::vocab_size != Dynamic ? Args::vocab_size : p_.vocab_size; }
  int hidden_dim() const noexcept { return Args::hidden_dim != Dynamic ? Args::hidden_dim : p_.ffn_hidden_dim(); }
  int kv_dim() const noexcept { return n_kv_heads() * head_dim(); }

  // Meta's Transformer.forward(tokens, start_pos): tokens holds bsz rows of seqlen ids (row-major), each row at
  // positions start_pos .. start_pos + seqlen - 1 of its own sequence (batch row b uses KV cache row b). Returns
  // logits [bsz][seqlen][vocab], or [bsz][1][vocab] with Logits::last.
  Tensor<float> forward(std::span<const TokenId> tokens, int bsz, int start_pos, Logits which = Logits::all) {
    check_input(tokens, bsz, start_pos);
    const int seqlen = static_cast<int>(tokens.size()) / bsz;
    rope_.extend(start_pos + seqlen);
    const std::int64_t rows = static_cast<std::int64_t>(bsz) * seqlen;
    const int D = dim(), H = n_heads(), KV = n_kv_heads(), hd = head_dim(), F = hidden_dim();
    ThreadPool& pool = *pool_;

    Tensor<float> h({rows, D}), xn({rows, D}), q({rows, H * hd}), k({rows, KV * hd}), v({rows, KV * hd}),
        attn({rows, H * hd}), out({rows, D}), h1({rows, F}), h3({rows, F});

    P::embedding(pool, w_.tok_embeddings, tokens, h.data());
    for (int layer = 0; layer < n_layers(); ++layer) {
      const LayerWeights<Device>& L = w_.layers[static_cast<std::size_t>(layer)];
      // h = x + attention(attention_norm(x))
      P::rms_norm(pool, h.data(), rows, D, L.attention_norm, p_.norm_eps, xn.data());
      P::matmul(pool, xn.data(), rows, L.wq, q.data(), p_.matmul_precision);
      P::matmul(pool, xn.data(), rows, L.wk, k.data(), p_.matmul_precision);
      P::matmul(pool, xn.data(), rows, L.wv, v.data(), p_.matmul_precision);
      attention(layer, bsz, seqlen, start_pos, q.data(), k.data(), v.data(), attn.data());
      P::matmul(pool, attn.data(), rows, L.wo, out.data(), p_.matmul_precision);
      P::add(pool, h.data(), out.data(), rows * D);
      // out = h + feed_forward(ffn_norm(h)), with feed_forward(x) = w2(silu(w1(x)) * w3(x))
      P::rms_norm(pool, h.data(), rows, D, L.ffn_norm, p_.norm_eps, xn.data());
      P::matmul(pool, xn.data(), rows, L.w1, h1.data(), p_.matmul_precision);
      P::matmul(pool, xn.data(), rows, L.w3, h3.data(), p_.matmul_precision);
      P::silu_mul(pool, h1.data(), h3.data(), rows, F);
      P::matmul(pool, h1.data(), rows, L.w2, out.data(), p_.matmul_precision);
      P::add(pool, h.data(), out.data(), rows * D);
    }

    // norm, then output, for the positions asked for.
    const std::int64_t n_out = which == Logits::all ? rows : bsz;
    Tensor<float> last({n_out, D});
    for (std::int64_t r = 0; r < n_out; ++r) {
      const std::int64_t src = which == Logits::all ? r : (r + 1) * seqlen - 1;
      std::copy(h.row(src), h.row(src) + D, last.row(r));
    }
    P::rms_norm(pool, last.data(), n_out, D, w_.norm, p_.norm_eps, xn.data());
    Tensor<float> logits({bsz, which == Logits::all ? seqlen : 1, vocab_size()});
    P::matmul(pool, xn.data(), n_out, w_.output, logits.data(), p_.matmul_precision);
    return logits;
  }

  // One sequence (bsz = 1).
  Tensor<float> forward(std::span<const TokenId> tokens, int start_pos, Logits which = Logits::all) {
    return forward(tokens, 1, start_pos, which);
  }

private:
  void check_input(std::span<const TokenId> tokens, int bsz, int start_pos) const {
    if (bsz < 1 || bsz > p_.max_batch_size) {
      throw Error(detail::cat("batch of ", bsz, " sequences: this model was loaded with max_batch_size ",
                              p_.max_batch_size));
    }
    if (tokens.empty() || tokens.size() % static_cast<std::size_t>(bsz) != 0) {
      throw Error(detail::cat(tokens.size(), " tokens do not make ", bsz, " rows of equal length"));
    }
    const auto seqlen = static_cast<std::int64_t>(tokens.size()) / bsz;
    if (start_pos < 0 || start_pos + seqlen > p_.max_seq_len) {
      throw Error(detail::cat("positions ", start_pos, "..", start_pos + seqlen - 1,
                              " do not fit max_seq_len ", p_.max_seq_len));
    }
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] < 0 || tokens[i] >= vocab_size()) {
        throw Error(detail::cat("token id ", tokens[i], " at position ", i, " is out of range 0..", vocab_size() - 1));
      }
    }
  }

  std::size_t cache_offset(int layer, int b, int pos) const {
    return ((static_cast<std::size_t>(layer) * p_.max_batch_size + b) * p_.max_seq_len + pos) *
           static_cast<std::size_t>(kv_dim());
  }

  // RoPE on q and k, the new k and v into the cache, then the query heads of each KV head over its cache.
  void attention(int layer, int bsz, int seqlen, int start_pos, float* q, float* k, const float* v, float* out) {
    const int H = n_heads(), KV = n_kv_heads(), hd = head_dim(), rep = n_rep(), kvd = kv_dim();
    const bool half_split = layout_ == RopeLayout::half_split;
    const bool bf16_cache = p_.kv_cache == DType::bf16;
    for (int b = 0; b < bsz; ++b) {
      for (int s = 0; s < seqlen; ++s) {
        const std::int64_t r = static_cast<std::int64_t>(b) * seqlen + s;
        const int pos = start_pos + s;
        ops::apply_rotary_emb(q + r * H * hd, H, hd, rope_.cos(pos), rope_.sin(pos), half_split);
        ops::apply_rotary_emb(k + r * kvd, KV, hd, rope_.cos(pos), rope_.sin(pos), half_split);
        const std::size_t at = cache_offset(layer, b, pos);
        if (bf16_cache) {
          for (int i = 0; i < kvd; ++i) {
            cache<bf16>(cache_k_)[at + i] = bf16(k[r * kvd + i]);
            cache<bf16>(cache_v_)[at + i] = bf16(v[r * kvd + i]);
          }
        } else {
          std::copy(k + r * kvd, k + (r + 1) * kvd, cache<float>(cache_k_) + at);
          std::copy(v + r * kvd, v + (r + 1) * kvd, cache<float>(cache_v_) + at);
        }
      }
    }
    // Tasks head by head, then row by row: consecutive tasks read the same KV head's cache, which stays in cache
    // for the next row. Row by row through every head, each row read the whole layer's keys and values (4 KB a
    // position for the 1B shape), which at 8k positions outgrows the L3: a 16k-token prefill took 5.6x an 8k one.
    const std::size_t tasks = static_cast<std::size_t>(bsz) * seqlen * KV;
    pool_->run(tasks, [&](std::size_t t) {
      const std::int64_t rows = static_cast<std::int64_t>(bsz) * seqlen;
      const int g = static_cast<int>(static_cast<std::int64_t>(t) / rows);
      const std::int64_t r = static_cast<std::int64_t>(t) % rows;
      const int b = static_cast<int>(r / seqlen), s = static_cast<int>(r % seqlen);
      const int n_ctx = start_pos + s + 1;  // causal: position start_pos + s sees the cache up to itself
      thread_local std::vector<float> scores;
      scores.resize(static_cast<std::size_t>(rep) * n_ctx);
      const float* qg = q + r * H * hd + static_cast<std::int64_t>(g) * rep * hd;
      float* og = out + r * H * hd + static_cast<std::int64_t>(g) * rep * hd;
      const std::size_t at = cache_offset(layer, b, 0);
      if (bf16_cache) {
        cpu::kernels::attend_group(qg, ops::KvView<bf16>{cache<bf16>(cache_k_) + at, kvd},
                                   ops::KvView<bf16>{cache<bf16>(cache_v_) + at, kvd}, g, rep, hd, n_ctx,
                                   scores.data(), og);
      } else {
        cpu::kernels::attend_group(qg, ops::KvView<float>{cache<float>(cache_k_) + at, kvd},
                                   ops::KvView<float>{cache<float>(cache_v_) + at, kvd}, g, rep, hd, n_ctx,
                                   scores.data(), og);
      }
    });
  }

  ModelParams p_;
  TransformerWeights<Device> w_;
  RopeLayout layout_ = RopeLayout::interleaved;
  template <class T>
  static T* cache(const std::shared_ptr<void>& buffer) noexcept {
    return static_cast<T*>(buffer.get());
  }

  ops::RopeTable rope_;
  std::shared_ptr<void> cache_k_, cache_v_;  // [layer][batch][position][kv_head][head_dim] of f32 or bf16
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace llama3
