// Fuzzes the params.json and config.json readers: any input gives params or an llama3::Error, and params that
// pass validate() have the invariants the model relies on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llama3/io/model_config.hpp"

namespace {
void check(const llama3::ModelParams& p) {
  try {
    p.validate("fuzz");
  } catch (const llama3::Error&) {
    return;
  }
  if (p.dim % p.n_heads != 0 || p.n_heads % p.n_kv_heads != 0 || p.head_dim() % 2 != 0 || p.ffn_hidden_dim() <= 0) {
    __builtin_trap();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    check(llama3::io::read_meta_params(json, "params.json"));
  } catch (const llama3::Error&) {
  }
  try {
    check(llama3::io::read_hf_config(json, "config.json"));
  } catch (const llama3::Error&) {
  }
  return 0;
}
