#pragma once
// Loading a checkpoint folder as Meta or Hugging Face publish it:
//   Meta:          params.json + consolidated.00.pth [.. consolidated.NN.pth]
//   Hugging Face:  config.json + model.safetensors, or model.safetensors.index.json + its shards
// Files are memory-mapped and tensors stay views of them in their stored dtype; only Meta's model-parallel shards
// are copied, to merge them. Every tensor is checked against the params: a missing, extra, misshapen or wrongly
// typed tensor is an Error naming it, expected against found.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "llama3/core/json_parse.hpp"
#include "llama3/core/mapped_file.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/io/gguf.hpp"
#include "llama3/io/model_config.hpp"
#include "llama3/io/raw_tensor.hpp"
#include "llama3/io/safetensors.hpp"
#include "llama3/io/torch_checkpoint.hpp"
#include "llama3/model/pack.hpp"
#include "llama3/model/quantize.hpp"
#include "llama3/model/weights.hpp"

namespace llama3 {

// How q and k are laid out inside each head. Meta (and GGUF) rotate interleaved pairs (x[2i], x[2i+1]); Hugging
// Face permutes the rows of wq and wk so that its rotate_half RoPE rotates (x[i], x[i + head_dim/2]). Rotating in
// the checkpoint's own layout gives the same attention scores without rewriting the weights.
enum class RopeLayout { interleaved, half_split };

enum class CheckpointFormat { meta, hf, gguf };

struct LoadProgress {
  std::string_view stage;  // "reading", "merging shards", "checking", "quantizing"
  std::size_t done, total;
};

struct LoadOptions {
  int max_seq_len = 2048;
  int max_batch_size = 1;
  std::function<void(const LoadProgress&)> progress = nullptr;  // called while loading; may be empty
  std::optional<DType> quantize = std::nullopt;  // q8_0 or q4_0: quantize the matrices after loading (norms stay float)
  DType kv_cache = DType::f32;                    // the KV cache: f32, or bf16 (half the memory and reads)
  // false: read the weight files into memory instead of mapping them (llama.cpp's --no-mmap). Loading takes longer
  // and the weights are not shared with other processes, but on some virtual machines mapped pages stream several
  // times slower (see core/mapped_file.hpp).
  bool mmap = true;
  // The arithmetic of the products with bf16 weights: f32 maths (default), or x rounded to bf16 (vdpbf16ps,
  // AVX512_BF16), prefill and decoding.
  MatmulPrecision matmul_precision = MatmulPrecision::f32;
  // Regroup Q4_0 matrices for the AVX-512 kernels (model/pack.hpp; the same values, faster to stream). false keeps
  // the file's layout.
  bool pack = true;
};

inline FileAccess file_access(const LoadOptions& o) noexcept { return o.mmap ? FileAccess::map : FileAccess::read; }

struct Checkpoint {
  CheckpointFormat format = CheckpointFormat::meta;
  ModelParams params;
  TransformerWeights<Cpu> weights;
  RopeLayout rope_layout = RopeLayout::interleaved;
  std::filesystem::path dir;
  std::vector<float> rope_freqs;  // GGUF: llama.cpp's per-frequency RoPE divisors (scaled RoPE), else empty
};

namespace io {

inline std::string read_text_file(const std::filesystem::path& p) {
  const MappedFile f(p);
  return std::string(f.bytes());
}

// Views the tensors of `map` as the weights of a model with params `p`, checking each against the table.
inline void fill_weights(TensorMap& map, const ModelParams& p, WeightFormat format, const std::string& source,
                         TransformerWeights<Cpu>& w, const std::function<void(const LoadProgress&)>& progress) {
  std::set<std::string> used;
  const std::size_t total = map.size();
  std::size_t done = 0;
  for_each_weight(w, p, [&](const WeightSlot& slot, AnyTensor<Cpu>& out) {
    const std::string name = slot.name_in(format);
    const auto it = map.find(name);
    if (it == map.end()) {
      throw Error(source + ": missing tensor " + name + " (expected shape " + slot.shape.str() + ")");
    }
    const RawTensor& r = it->second;
    if (!(r.shape == slot.shape)) {
      throw Error(r.file(), r.offset,
                  "tensor " + name + " has shape " + r.shape.str() + ", expected " + slot.shape.str() +
                      detail::cat(" (dim ", p.dim, ", n_heads ", p.n_heads, ", n_kv_heads ", p.n_kv_heads,
                                  ", hidden ", p.ffn_hidden_dim(), ", vocab ", p.vocab_size, ")"));
    }
    const bool is_norm = slot.name.kind == WeightKind::attention_norm || slot.name.kind == WeightKind::ffn_norm ||
                         slot.name.kind == WeightKind::norm;
    if (is_norm && r.dtype != DType::f32) {  // tiny: keep norms in float for RMSNorm
      Tensor<float> f(r.shape);
      const AnyTensor<Cpu> src = any_view(r);
      std::visit([&](const auto& t) { dequantize_row(t.data(), t.numel(), f.data()); }, src);
      out = Tensor<const float>(f);
    } else {
      out = any_view(r);
    }
    used.insert(name);
    if (progress) progress({"checking", ++done, total});
  });
  if (p.tie_embeddings) w.output = w.tok_embeddings;
  for (const auto& [name, r] : map) {
    if (used.count(name) || is_ignored_weight_name(name)) continue;
    // A tied Hugging Face checkpoint may still carry lm_head; it duplicates the embeddings and is not read.
    if (p.tie_embeddings && format == WeightFormat::hf && name == "lm_head.weight") continue;
    if (!p.tie_embeddings && format == WeightFormat::meta && name == "output.weight") continue;
    throw Error(r.file(), r.offset, "unexpected tensor " + name + " " + r.shape.str() +
                                      ": not part of a Llama 3 model with these params");
  }
}

// Meta's model parallelism split some tensors across shards; put them back together (a copy).
inline TensorMap merge_meta_shards(std::vector<TensorMap>& shards, const std::string& source,
                                   const std::function<void(const LoadProgress&)>& progress) {
  if (shards.size() == 1) return std::move(shards[0]);
  TensorMap out;
  std::set<std::string> names;
  for (const auto& s : shards) {
    for (const auto& [n, t] : s) names.insert(n);
  }
  std::size_t done = 0;
  for (const std::string& name : names) {
    const WeightName* w = find_weight_name(name, WeightFormat::meta);
    const int shard_dim = w ? w->shard_dim : -1;
    std::vector<const RawTensor*> parts;
    for (std::size_t i = 0; i < shards.size(); ++i) {
      const auto it = shards[i].find(name);
      if (it == shards[i].end()) throw Error(source + detail::cat(": tensor ", name, " is missing from shard ", i));
      parts.push_back(&it->second);
    }
    const RawTensor& first = *parts[0];
    if (shard_dim < 0) {  // replicated (norms) or unknown (reported later as unexpected): shard 0's copy
      for (const RawTensor* t : parts) {
        if (!(t->shape == first.shape) || t->dtype != first.dtype) {
          throw Error(t->file(), t->offset, "replicated tensor " + name + " differs in shape or dtype between shards");
        }
      }
      out.emplace(name, first);
      continue;
    }
    Shape merged = first.shape;
    if (merged.rank() != 2) throw Error(first.file(), first.offset, "tensor " + name + " should be 2-d");
    merged[shard_dim] = 0;
    for (const RawTensor* t : parts) {
      const int other = 1 - shard_dim;
      if (t->dtype != first.dtype || t->shape.rank() != 2 || t->shape[other] != first.shape[other]) {
        throw Error(t->file(), t->offset, "shard of " + name + " has shape " + t->shape.str() + " and dtype " +
                                            std::string(dtype_name(t->dtype)) + "; shard 0 has " +
                                            first.shape.str() + " " + std::string(dtype_name(first.dtype)));
      }
      merged[shard_dim] += t->shape[shard_dim];
    }
    const std::size_t element = dtype_size(first.dtype);
    auto buffer = detail::aligned_buffer(static_cast<std::size_t>(merged.numel()) * element);
    auto* dst = static_cast<std::byte*>(buffer.get());
    if (shard_dim == 0) {  // column-parallel (output rows): stack the shards
      for (const RawTensor* t : parts) {
        std::memcpy(dst, t->data, t->bytes());
        dst += t->bytes();
      }
    } else {  // row-parallel (input columns): each row is the concatenation of the shards' rows
      for (std::int64_t row = 0; row < merged[0]; ++row) {
        for (const RawTensor* t : parts) {
          const std::size_t n = static_cast<std::size_t>(t->shape[1]) * element;
          std::memcpy(dst, t->data + static_cast<std::size_t>(row) * n, n);
          dst += n;
        }
      }
    }
    RawTensor r;
    r.dtype = first.dtype;
    r.shape = merged;
    r.data = static_cast<const std::byte*>(buffer.get());
    r.owner = std::move(buffer);
    r.source = std::make_shared<const std::string>(source + " (merged shards)");
    out.emplace(name, std::move(r));
    if (progress) progress({"merging shards", ++done, names.size()});
  }
  return out;
}

inline std::vector<std::filesystem::path> meta_shards(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> shards;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();  // consolidated.<digits>.pth
    constexpr std::string_view head = "consolidated.", tail = ".pth";
    if (name.size() <= head.size() + tail.size() || !name.starts_with(head) || !name.ends_with(tail)) continue;
    const std::string_view digits = std::string_view(name).substr(head.size(), name.size() - head.size() - tail.size());
    if (digits.find_first_not_of("0123456789") == std::string_view::npos) shards.push_back(e.path());
  }
  std::sort(shards.begin(), shards.end());
  for (std::size_t i = 0; i < shards.size(); ++i) {
    char expected[48];
    std::snprintf(expected, sizeof expected, "consolidated.%02zu.pth", i);
    if (shards[i].filename() != expected) {
      throw Error(dir.string() + ": shard files must be consolidated.00.pth .. consolidated." +
                  detail::cat(shards.size() - 1 < 10 ? "0" : "", shards.size() - 1) + ".pth; found " +
                  shards[i].filename().string() + " where " + expected + " should be");
    }
  }
  return shards;
}

inline Checkpoint load_meta(const std::filesystem::path& dir, const LoadOptions& options) {
  Checkpoint c;
  c.format = CheckpointFormat::meta;
  c.dir = dir;
  c.rope_layout = RopeLayout::interleaved;
  c.params = read_meta_params(read_text_file(dir / "params.json"), (dir / "params.json").string());
  const auto paths = meta_shards(dir);
  if (paths.empty()) throw Error(dir.string() + ": params.json but no consolidated.00.pth");
  std::vector<TensorMap> shards;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    shards.push_back(read_torch_checkpoint_file(paths[i], file_access(options)));
    if (options.progress) options.progress({"reading", i + 1, paths.size()});
  }
  TensorMap map = merge_meta_shards(shards, dir.string(), options.progress);
  c.params.tie_embeddings = map.find("output.weight") == map.end();  // Llama 3.2 1B/3B have no output.weight
  c.params.max_seq_len = options.max_seq_len;
  c.params.max_batch_size = options.max_batch_size;
  c.params.kv_cache = options.kv_cache;
  c.params.matmul_precision = options.matmul_precision;
  c.params.validate((dir / "params.json").string());
  fill_weights(map, c.params, WeightFormat::meta, dir.string(), c.weights, options.progress);
  return c;
}

inline Checkpoint load_hf(const std::filesystem::path& dir, const LoadOptions& options) {
  Checkpoint c;
  c.format = CheckpointFormat::hf;
  c.dir = dir;
  c.rope_layout = RopeLayout::half_split;
  c.params = read_hf_config(read_text_file(dir / "config.json"), (dir / "config.json").string());
  c.params.max_seq_len = options.max_seq_len;
  c.params.max_batch_size = options.max_batch_size;
  c.params.kv_cache = options.kv_cache;
  c.params.matmul_precision = options.matmul_precision;
  c.params.validate((dir / "config.json").string());

  std::vector<std::filesystem::path> files;
  const auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(dir / "model.safetensors")) {
    files.push_back(dir / "model.safetensors");
  } else if (std::filesystem::exists(index)) {
    const std::string text = read_text_file(index);
    simdjson::dom::parser parser;
    const simdjson::dom::element root = json::parse(parser, text, index.string());
    simdjson::dom::object map;
    if (root["weight_map"].get_object().get(map)) {
      throw Error(index.string() + ": expected {\"weight_map\": {tensor: file}}");
    }
    std::set<std::string> names;
    for (auto [tensor, file] : map) {
      std::string_view f;
      if (file.get_string().get(f) || f.find('/') != std::string_view::npos || f.find("..") != std::string_view::npos) {
        throw Error(index.string() + ": weight_map[" + std::string(tensor) + "] is not a file name in this folder");
      }
      names.insert(std::string(f));
    }
    for (const auto& n : names) files.push_back(dir / n);
  } else {
    throw Error(dir.string() + ": config.json but no model.safetensors or model.safetensors.index.json");
  }
  TensorMap map;
  for (std::size_t i = 0; i < files.size(); ++i) {
    for (auto& [name, t] : read_safetensors_file(files[i], file_access(options))) {
      if (map.count(name)) throw Error(files[i].string() + ": tensor " + name + " is also in another shard");
      map.emplace(name, std::move(t));
    }
    if (options.progress) options.progress({"reading", i + 1, files.size()});
  }
  fill_weights(map, c.params, WeightFormat::hf, dir.string(), c.weights, options.progress);
  return c;
}

// The llama architecture's hyper-parameters from a GGUF file's metadata (llama.cpp's key names).
inline ModelParams gguf_params(const GgufFile& g, const std::string& source) {
  const auto need = [&](std::string_view key) -> const GgufValue& {
    const GgufValue* v = g.find(key);
    if (!v) throw Error(source + ": no " + std::string(key) + " in the metadata");
    return *v;
  };
  const auto integer = [&](std::string_view key) {
    const GgufValue& v = need(key);
    if (!v.is_integer() || v.i <= 0 || v.i > (1 << 30)) {
      throw Error(source + ": " + std::string(key) + " must be a positive integer");
    }
    return static_cast<int>(v.i);
  };
  const auto number = [&](std::string_view key, double fallback) {
    const GgufValue* v = g.find(key);
    if (!v) return fallback;
    if (v->type != GgufType::f32 && v->type != GgufType::f64 && !v->is_integer()) {
      throw Error(source + ": " + std::string(key) + " must be a number");
    }
    return v->f;
  };
  const GgufValue& arch = need("general.architecture");
  if (arch.type != GgufType::string || arch.s != "llama") {
    throw Error(source + ": general.architecture is " + detail::quote(arch.s) + "; only \"llama\" models are read");
  }
  ModelParams p;
  p.dim = integer("llama.embedding_length");
  p.n_layers = integer("llama.block_count");
  p.n_heads = integer("llama.attention.head_count");
  p.n_kv_heads = g.find("llama.attention.head_count_kv") ? integer("llama.attention.head_count_kv") : p.n_heads;
  p.hidden_dim = integer("llama.feed_forward_length");
  p.norm_eps = number("llama.attention.layer_norm_rms_epsilon", 1e-5);
  p.rope_theta = number("llama.rope.freq_base", 10000.0);
  if (g.find("llama.attention.key_length") && integer("llama.attention.key_length") != p.dim / p.n_heads) {
    throw Error(source + ": llama.attention.key_length differs from embedding_length / head_count");
  }
  const auto embd = g.tensors.find("token_embd.weight");
  if (embd == g.tensors.end() || embd->second.shape.rank() != 2) throw Error(source + ": no 2-d token_embd.weight tensor");
  p.vocab_size = static_cast<int>(embd->second.shape[0]);
  if (g.find("llama.vocab_size") && integer("llama.vocab_size") != p.vocab_size) {
    throw Error(detail::cat(source, ": llama.vocab_size is ", integer("llama.vocab_size"), " but token_embd.weight has ",
                            p.vocab_size, " rows"));
  }
  p.tie_embeddings = g.tensors.find("output.weight") == g.tensors.end();
  return p;
}

// A GGUF file of the llama architecture: tensors used in place (quantized ones too), q and k in Meta's
// interleaved row order (llama.cpp's converter undoes Hugging Face's permutation), scaled RoPE from rope_freqs.
inline Checkpoint load_gguf(const std::filesystem::path& path, const LoadOptions& options) {
  GgufFile g = read_gguf_file(path, file_access(options));
  if (options.progress) options.progress({"reading", 1, 1});
  Checkpoint c;
  c.format = CheckpointFormat::gguf;
  c.dir = path;
  c.rope_layout = RopeLayout::interleaved;
  c.params = gguf_params(g, path.string());
  c.params.max_seq_len = options.max_seq_len;
  c.params.max_batch_size = options.max_batch_size;
  c.params.kv_cache = options.kv_cache;
  c.params.matmul_precision = options.matmul_precision;
  c.params.validate(path.string());
  if (const auto it = g.tensors.find("rope_freqs.weight"); it != g.tensors.end()) {
    const RawTensor& r = it->second;
    if (r.dtype != DType::f32 || r.shape.rank() != 1 || r.shape[0] != c.params.head_dim() / 2) {
      throw Error(r.file(), r.offset, detail::cat("rope_freqs.weight must be float32 of head_dim / 2 = ",
                                                c.params.head_dim() / 2, " values"));
    }
    c.rope_freqs.resize(static_cast<std::size_t>(r.shape[0]));
    std::memcpy(c.rope_freqs.data(), r.data, r.bytes());
    for (const float d : c.rope_freqs) {
      if (!(d > 0) || !std::isfinite(d)) throw Error(r.file(), r.offset, "rope_freqs.weight holds a non-positive divisor");
    }
    c.params.use_scaled_rope = true;
    g.tensors.erase(it);
  }
  fill_weights(g.tensors, c.params, WeightFormat::gguf, path.string(), c.weights, options.progress);
  return c;
}

}  // namespace io

// Loads a Meta or Hugging Face checkpoint folder, telling them apart by params.json and config.json, or a GGUF file.
inline Checkpoint load_checkpoint(const std::filesystem::path& dir, const LoadOptions& options = {}) {
  if (options.kv_cache != DType::f32 && options.kv_cache != DType::bf16) {
    throw Error(detail::cat("LoadOptions::kv_cache is ", dtype_name(options.kv_cache), ": the KV cache holds f32 or bf16"));
  }
  const bool gguf = std::filesystem::is_regular_file(dir) && dir.extension() == ".gguf";
  if (!gguf && !std::filesystem::is_directory(dir)) {
    throw Error(dir.string() + ": not a folder; expected a Meta checkpoint (params.json, consolidated.00.pth), a "
                               "Hugging Face one (config.json, model.safetensors) or a .gguf file");
  }
  Checkpoint c;
  if (gguf) {
    c = io::load_gguf(dir, options);
  } else if (std::filesystem::exists(dir / "params.json")) {
    c = io::load_meta(dir, options);
  } else if (std::filesystem::exists(dir / "config.json")) {
    c = io::load_hf(dir, options);
  } else {
    throw Error(dir.string() + ": neither params.json (Meta) nor config.json (Hugging Face) is there");
  }
  if (options.quantize) {
    quantize_weights(c.weights, c.params, *options.quantize, 0, [&](std::size_t done, std::size_t total) {
      if (options.progress) options.progress({"quantizing", done, total});
    });
  }
  // Nobody else holds c's weights yet: the Q4_0 copies' pages can go.
  if (options.pack) pack_weights(c.weights, c.params, /*release=*/true);
  return c;
}

}  // namespace llama3
