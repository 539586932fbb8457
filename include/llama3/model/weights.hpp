#pragma once
// The weights of a Llama 3 model: one struct of typed views, and one table that names every tensor in each format
// and gives its shape. A single visitor, for_each_weight(), walks them; loaders, checks and (later) device copies
// all go through it, so adding a format is a column of this table and a reader.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/core/tensor.hpp"
#include "llama3/model/model_args.hpp"

namespace llama3 {

enum class WeightKind { tok_embeddings, attention_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3, norm, output };

struct WeightName {
  WeightKind kind;
  bool per_layer;
  const char* meta;  // Meta's state dict; {} is the layer index
  const char* hf;    // Hugging Face's
  const char* gguf;  // llama.cpp's
  int shard_dim;     // how Meta's model parallelism splits it: 0 rows, 1 columns, -1 replicated
};

inline constexpr WeightName weight_names[] = {
    {WeightKind::tok_embeddings, false, "tok_embeddings.weight", "model.embed_tokens.weight",
     "token_embd.weight", 0},  // VocabParallel
    {WeightKind::attention_norm, true, "layers.{}.attention_norm.weight", "model.layers.{}.input_layernorm.weight",
     "blk.{}.attn_norm.weight", -1},
    {WeightKind::wq, true, "layers.{}.attention.wq.weight", "model.layers.{}.self_attn.q_proj.weight",
     "blk.{}.attn_q.weight", 0},
    {WeightKind::wk, true, "layers.{}.attention.wk.weight", "model.layers.{}.self_attn.k_proj.weight",
     "blk.{}.attn_k.weight", 0},
    {WeightKind::wv, true, "layers.{}.attention.wv.weight", "model.layers.{}.self_attn.v_proj.weight",
     "blk.{}.attn_v.weight", 0},
    {WeightKind::wo, true, "layers.{}.attention.wo.weight", "model.layers.{}.self_attn.o_proj.weight",
     "blk.{}.attn_output.weight", 1},
    {WeightKind::ffn_norm, true, "layers.{}.ffn_norm.weight", "model.layers.{}.post_attention_layernorm.weight",
     "blk.{}.ffn_norm.weight", -1},
    {WeightKind::w1, true, "layers.{}.feed_forward.w1.weight", "model.layers.{}.mlp.gate_proj.weight",
     "blk.{}.ffn_gate.weight", 0},
    {WeightKind::w2, true, "layers.{}.feed_forward.w2.weight", "model.layers.{}.mlp.down_proj.weight",
     "blk.{}.ffn_down.weight", 1},
    {WeightKind::w3, true, "layers.{}.feed_forward.w3.weight", "model.layers.{}.mlp.up_proj.weight",
     "blk.{}.ffn_up.weight", 0},
    {WeightKind::norm, false, "norm.weight", "model.norm.weight", "output_norm.weight", -1},
    {WeightKind::output, false, "output.weight", "lm_head.weight", "output.weight", 0},
};

// Tensors some checkpoints carry that the model does not use (precomputed RoPE tables).
inline bool is_ignored_weight_name(const std::string& name) {
  return name == "rope.freqs" || name.ends_with(".rotary_emb.inv_freq");
}

enum class WeightFormat { meta, hf, gguf };

inline std::string weight_name(const WeightName& w, int layer, WeightFormat format) {
  std::string s = format == WeightFormat::meta ? w.meta : format == WeightFormat::hf ? w.hf : w.gguf;
  if (w.per_layer) s.replace(s.find("{}"), 2, std::to_string(layer));
  return s;
}

inline const WeightName& weight_name_of(WeightKind k) { return weight_names[static_cast<int>(k)]; }

// The table row a tensor name belongs to (and its layer), or nullptr.
inline const WeightName* find_weight_name(const std::string& name, WeightFormat format, int* layer = nullptr) {
  for (const WeightName& w : weight_names) {
    const std::string_view pattern = format == WeightFormat::meta ? w.meta : w.hf;
    if (!w.per_layer) {
      if (name == pattern) return &w;
      continue;
    }
    const std::size_t brace = pattern.find("{}");
    const std::string_view head = pattern.substr(0, brace), tail = pattern.substr(brace + 2);
    if (name.size() <= head.size() + tail.size() || !name.starts_with(head) || !name.ends_with(tail)) continue;
    const std::string_view digits = std::string_view(name).substr(head.size(), name.size() - head.size() - tail.size());
    if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string_view::npos) continue;
    if (layer) *layer = std::stoi(std::string(digits));
    return &w;
  }
  return nullptr;
}

inline Shape expected_shape(WeightKind k, const ModelParams& p) {
  const std::int64_t dim = p.dim, hd = p.head_dim(), hidden = p.ffn_hidden_dim();
  switch (k) {
    case WeightKind::tok_embeddings:
    case WeightKind::output: return {p.vocab_size, dim};
    case WeightKind::attention_norm:
    case WeightKind::ffn_norm:
    case WeightKind::norm: return {dim};
    case WeightKind::wq: return {p.n_heads * hd, dim};
    case WeightKind::wk:
    case WeightKind::wv: return {p.n_kv_heads * hd, dim};
    case WeightKind::wo: return {dim, p.n_heads * hd};
    case WeightKind::w1:
    case WeightKind::w3: return {hidden, dim};
    case WeightKind::w2: return {dim, hidden};
  }
  return {};
}

template <class Device = Cpu>
struct LayerWeights {
  AnyTensor<Device> attention_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3;
};

template <class Device = Cpu>
struct TransformerWeights {
  AnyTensor<Device> tok_embeddings, norm, output;  // output is tok_embeddings when the embeddings are tied
  std::vector<LayerWeights<Device>> layers;
};

// One weight as the visitor shows it.
struct WeightSlot {
  const WeightName& name;
  int layer;  // -1 for the weights outside the layers
  Shape shape;
  std::string name_in(WeightFormat f) const { return weight_name(name, layer, f); }
};

template <class Device>
AnyTensor<Device>& weight_ref(TransformerWeights<Device>& w, WeightKind k, int layer) {
  switch (k) {
    case WeightKind::tok_embeddings: return w.tok_embeddings;
    case WeightKind::norm: return w.norm;
    case WeightKind::output: return w.output;
    default: break;
  }
  LayerWeights<Device>& l = w.layers[static_cast<std::size_t>(layer)];
  switch (k) {
    case WeightKind::attention_norm: return l.attention_norm;
    case WeightKind::wq: return l.wq;
    case WeightKind::wk: return l.wk;
    case WeightKind::wv: return l.wv;
    case WeightKind::wo: return l.wo;
    case WeightKind::ffn_norm: return l.ffn_norm;
    case WeightKind::w1: return l.w1;
    case WeightKind::w2: return l.w2;
    default: return l.w3;
  }
}

// Calls f(const WeightSlot&, AnyTensor<Device>&) for every weight the model reads from a checkpoint, in the order
// of the table, layer by layer. The output weight is skipped when the embeddings are tied.
template <class Device, class F>
void for_each_weight(TransformerWeights<Device>& w, const ModelParams& p, F&& f) {
  if (w.layers.size() != static_cast<std::size_t>(p.n_layers)) w.layers.resize(static_cast<std::size_t>(p.n_layers));
  for (const WeightName& n : weight_names) {
    if (n.per_layer) continue;
    if (n.kind == WeightKind::output && p.tie_embeddings) continue;
    if (n.kind == WeightKind::norm || n.kind == WeightKind::output) continue;  // after the layers
    f(WeightSlot{n, -1, expected_shape(n.kind, p)}, weight_ref(w, n.kind, -1));
  }
  for (int layer = 0; layer < p.n_layers; ++layer) {
    for (const WeightName& n : weight_names) {
      if (n.per_layer) f(WeightSlot{n, layer, expected_shape(n.kind, p)}, weight_ref(w, n.kind, layer));
    }
  }
  for (const WeightKind k : {WeightKind::norm, WeightKind::output}) {
    if (k == WeightKind::output && p.tie_embeddings) continue;
    f(WeightSlot{weight_name_of(k), -1, expected_shape(k, p)}, weight_ref(w, k, -1));
  }
}

}  // namespace llama3
