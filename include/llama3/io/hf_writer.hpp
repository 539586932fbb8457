#pragma once
// Writing a Hugging Face checkpoint folder (config.json + model.safetensors) from weights in memory: how the demo
// model and the tests' synthesized models reach the disk. Weights are written as they are (their RoPE layout is the
// caller's business: a random model has none to speak of).
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "llama3/core/json.hpp"
#include "llama3/io/checkpoint.hpp"
#include "llama3/model/weights.hpp"

namespace llama3::io {

struct TensorBytes {
  std::string name;
  DType dtype;
  Shape shape;
  std::string_view bytes;
};

inline std::string safetensors_header(const std::vector<TensorBytes>& tensors) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    header += ',';
    header += json::quote(t.name);
    header += ":{\"dtype\":\"";
    header += t.dtype == DType::f32 ? "F32" : t.dtype == DType::bf16 ? "BF16" : "F16";
    header += "\",\"shape\":[";
    for (int i = 0; i < t.shape.rank(); ++i) {
      if (i) header += ',';
      header += std::to_string(t.shape[i]);
    }
    header += "],\"data_offsets\":[";
    header += std::to_string(offset);
    header += ',';
    offset += t.bytes.size();
    header += std::to_string(offset);
    header += "]}";
  }
  header += '}';
  while (header.size() % 8) header += ' ';  // the data starts 8-aligned
  return header;
}

inline void write_safetensors(std::ostream& out, const std::vector<TensorBytes>& tensors) {
  const std::string header = safetensors_header(tensors);
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((std::uint64_t{header.size()} >> (8 * i)) & 0xFF);
  out.write(len, 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& t : tensors) out.write(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
}

inline std::string hf_config_json(const ModelParams& p) {
  std::string c = "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n";
  const auto field = [&](const char* k, const std::string& v) { c += "  \"" + std::string(k) + "\": " + v + ",\n"; };
  field("hidden_size", std::to_string(p.dim));
  field("intermediate_size", std::to_string(p.ffn_hidden_dim()));
  field("num_hidden_layers", std::to_string(p.n_layers));
  field("num_attention_heads", std::to_string(p.n_heads));
  field("num_key_value_heads", std::to_string(p.n_kv_heads));
  field("head_dim", std::to_string(p.head_dim()));
  field("vocab_size", std::to_string(p.vocab_size));
  field("hidden_act", "\"silu\"");
  field("rms_norm_eps", detail::cat(p.norm_eps));
  field("rope_theta", detail::cat(p.rope_theta));
  if (p.use_scaled_rope) {
    const RopeScaling& s = p.rope_scaling;
    field("rope_scaling", detail::cat("{\"rope_type\": \"llama3\", \"factor\": ", s.factor, ", \"low_freq_factor\": ",
                                      s.low_freq_factor, ", \"high_freq_factor\": ", s.high_freq_factor,
                                      ", \"original_max_position_embeddings\": ", s.original_max_position_embeddings,
                                      "}"));
  } else {
    field("rope_scaling", "null");
  }
  field("tie_word_embeddings", p.tie_embeddings ? "true" : "false");
  field("bos_token_id", "128000");
  field("eos_token_id", "128001");
  c += "  \"attention_bias\": false,\n  \"mlp_bias\": false\n}\n";
  return c;
}

// Writes dir/config.json and dir/model.safetensors for the weights of checkpoint c.
inline void write_hf_checkpoint(const std::filesystem::path& dir, Checkpoint& c) {
  std::filesystem::create_directories(dir);
  std::vector<TensorBytes> tensors;
  for_each_weight(c.weights, c.params, [&](const WeightSlot& slot, AnyTensor<Cpu>& t) {
    if (dtype_block_elements(dtype(t)) != 1) {
      throw Error(detail::cat("cannot write ", slot.name_in(WeightFormat::hf), " (", dtype_name(dtype(t)),
                              ") to safetensors: quantized weights have no Hugging Face form"));
    }
    std::visit([&](const auto& x) {
      tensors.push_back({slot.name_in(WeightFormat::hf), dtype(t), x.shape(),
                         std::string_view(reinterpret_cast<const char*>(x.data()), x.bytes())});
    }, t);
  });
  std::ofstream config(dir / "config.json", std::ios::binary);
  config << hf_config_json(c.params);
  std::ofstream weights(dir / "model.safetensors", std::ios::binary);
  write_safetensors(weights, tensors);
  if (!config || !weights) throw Error("cannot write the checkpoint to " + dir.string());
}

}  // namespace llama3::io
