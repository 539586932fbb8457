#pragma once
// The hyper-parameters of a checkpoint: Meta's params.json and Hugging Face's config.json, read into ModelParams.
// Unknown keys are ignored; known keys of the wrong type, and settings that would make the checkpoint a different
// architecture (another activation, biases, another RoPE scaling), are Errors naming the key.
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "llama3/core/error.hpp"
#include "llama3/core/json_parse.hpp"
#include "llama3/model/model_args.hpp"

namespace llama3::io {

namespace io_detail {

class JsonObject {
public:
  JsonObject(std::string_view text, std::string source) : source_(std::move(source)) {
    const simdjson::dom::element root = json::parse(parser_, text, source_);
    if (root.get_object().get(object_)) throw Error(source_, std::nullopt, "expected a JSON object");
  }

  [[noreturn]] void fail(std::string_view key, const std::string& what) const {
    throw Error(source_, std::nullopt, "\"" + std::string(key) + "\": " + what);
  }

  std::optional<simdjson::dom::element> get(std::string_view key) const {
    simdjson::dom::element e;
    if (object_.at_key(key).get(e) || e.is_null()) return std::nullopt;
    return e;
  }
  std::optional<std::int64_t> integer(std::string_view key) const {
    const auto e = get(key);
    if (!e) return std::nullopt;
    std::int64_t v = 0;
    if (e->get_int64().get(v)) {
      double d = 0;  // some writers put 64.0 for an integer
      if (e->get_double().get(d) || d != std::floor(d) || std::fabs(d) > 1e15) fail(key, "expected an integer");
      return static_cast<std::int64_t>(d);
    }
    return v;
  }
  int int_in_range(std::string_view key, std::int64_t v) const {
    if (v < -(std::int64_t{1} << 30) || v > (std::int64_t{1} << 30)) fail(key, detail_cat(v, " is out of range"));
    return static_cast<int>(v);
  }
  int required_int(std::string_view key) const {
    const auto v = integer(key);
    if (!v) fail(key, "missing");
    return int_in_range(key, *v);
  }
  std::optional<double> real(std::string_view key) const {
    const auto e = get(key);
    if (!e) return std::nullopt;
    double d = 0;
    if (e->get_double().get(d)) fail(key, "expected a number");
    return d;
  }
  // The value of `key`, or `fallback` when it is absent or null. (Not optional<bool>::value_or: at -O3 GCC blends
  // an empty optional's uninitialised payload into the result, which valgrind reports.)
  bool boolean_or(std::string_view key, bool fallback) const {
    const auto e = get(key);
    if (!e) return fallback;
    bool b = false;
    if (e->get_bool().get(b)) fail(key, "expected true or false");
    return b;
  }
  double real_or(std::string_view key, double fallback) const {
    const auto d = real(key);
    return d ? *d : fallback;
  }
  std::optional<std::string_view> string(std::string_view key) const {
    const auto e = get(key);
    if (!e) return std::nullopt;
    std::string_view s;
    if (e->get_string().get(s)) fail(key, "expected a string");
    return s;
  }
  const std::string& source() const { return source_; }

private:
  template <class... A>
  static std::string detail_cat(A&&... a) {
    return llama3::detail::cat(std::forward<A>(a)...);
  }
  simdjson::dom::parser parser_;
  simdjson::dom::object object_;
  std::string source_;
};

}  // namespace io_detail

// Meta's params.json. vocab_size must be set (Llama 2's -1 is not Llama 3). Meta's reference hard-codes the RoPE
// scale factor 8; "rope_scaling_factor" overrides it when present (Llama 3.2 1B/3B need 32).
inline ModelParams read_meta_params(std::string_view json, const std::string& source) {
  const io_detail::JsonObject o(json, source);
  ModelParams p;
  p.dim = o.required_int("dim");
  p.n_layers = o.required_int("n_layers");
  p.n_heads = o.required_int("n_heads");
  p.n_kv_heads = o.integer("n_kv_heads") ? o.required_int("n_kv_heads") : p.n_heads;
  p.vocab_size = o.required_int("vocab_size");
  if (p.vocab_size <= 0) o.fail("vocab_size", detail::cat(p.vocab_size, ": Llama 3 params.json gives the vocabulary size"));
  p.multiple_of = o.integer("multiple_of") ? o.required_int("multiple_of") : 256;
  p.ffn_dim_multiplier = o.real("ffn_dim_multiplier");
  p.norm_eps = o.real_or("norm_eps", 1e-5);
  p.rope_theta = o.real_or("rope_theta", 500000.0);
  p.use_scaled_rope = o.boolean_or("use_scaled_rope", false);
  p.rope_scaling.factor = o.real_or("rope_scaling_factor", 8.0);
  p.hidden_dim = 0;  // Meta's rule
  return p;
}

// Hugging Face's config.json of a LlamaForCausalLM.
inline ModelParams read_hf_config(std::string_view json, const std::string& source) {
  const io_detail::JsonObject o(json, source);
  if (const auto t = o.string("model_type"); t && *t != "llama") o.fail("model_type", "\"" + std::string(*t) + "\": expected \"llama\"");
  if (const auto a = o.string("hidden_act"); a && *a != "silu") o.fail("hidden_act", "\"" + std::string(*a) + "\": Llama uses \"silu\"");
  if (o.boolean_or("attention_bias", false)) o.fail("attention_bias", "true: Llama has no biases");
  if (o.boolean_or("mlp_bias", false)) o.fail("mlp_bias", "true: Llama has no biases");
  ModelParams p;
  p.dim = o.required_int("hidden_size");
  p.n_layers = o.required_int("num_hidden_layers");
  p.n_heads = o.required_int("num_attention_heads");
  p.n_kv_heads = o.integer("num_key_value_heads") ? o.required_int("num_key_value_heads") : p.n_heads;
  p.vocab_size = o.required_int("vocab_size");
  p.hidden_dim = o.required_int("intermediate_size");
  // (0 would mean "Meta's rule" to ModelParams, which a Hugging Face config never asks for.)
  if (p.hidden_dim <= 0) o.fail("intermediate_size", detail::cat(p.hidden_dim, ": expected a positive integer"));
  p.norm_eps = o.real_or("rms_norm_eps", 1e-6);
  p.rope_theta = o.real_or("rope_theta", 10000.0);
  p.tie_embeddings = o.boolean_or("tie_word_embeddings", false);
  if (const auto hd = o.integer("head_dim"); hd && p.n_heads > 0 && *hd != p.dim / p.n_heads) {
    o.fail("head_dim", detail::cat(*hd, ": Llama's head_dim is hidden_size / num_attention_heads = ", p.dim / p.n_heads));
  }
  if (const auto rs = o.get("rope_scaling")) {
    simdjson::dom::object s;
    if (rs->get_object().get(s)) o.fail("rope_scaling", "expected an object or null");
    std::string_view type;
    if (s["rope_type"].get_string().get(type) && s["type"].get_string().get(type)) {
      o.fail("rope_scaling", "no rope_type");
    }
    if (type != "llama3") {
      o.fail("rope_scaling", "rope_type \"" + std::string(type) + "\" is not supported (Llama 3 uses \"llama3\")");
    }
    const auto number = [&](const char* key, double fallback) {
      double d = 0;
      simdjson::dom::element e;
      if (s.at_key(key).get(e)) return fallback;
      if (e.get_double().get(d)) o.fail("rope_scaling", detail::cat(key, ": expected a number"));
      return d;
    };
    p.use_scaled_rope = true;
    p.rope_scaling.factor = number("factor", 8.0);
    p.rope_scaling.low_freq_factor = number("low_freq_factor", 1.0);
    p.rope_scaling.high_freq_factor = number("high_freq_factor", 4.0);
    p.rope_scaling.original_max_position_embeddings = number("original_max_position_embeddings", 8192.0);
  }
  return p;
}

}  // namespace llama3::io
