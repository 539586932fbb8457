// Fuzzes the GGUF reader and what reads its metadata: any input either reads or throws llama3::Error; the tensors
// lie inside the data, one after another; the llama hyper-parameters either map to params that pass validate() or
// are an Error; a tokenizer in the metadata either loads and round-trips text, or is an Error. The mutator writes
// boundary values into the file's counts, lengths, dimensions, types and offsets (fuzz_support.hpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "llama3/io/checkpoint.hpp"
#include "llama3/io/gguf.hpp"
#include "llama3/tokenizer.hpp"

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  return llama3::fuzz::mutate_gguf(data, size, max_size, seed);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const llama3::io::GgufFile g = llama3::io::read_gguf(bytes, nullptr, "fuzz.gguf");
    std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
    for (const auto& [name, t] : g.tensors) {
      llama3::fuzz::check_inside(t, data, size);
      FUZZ_CHECK(t.offset >= g.data_offset);
      spans.emplace_back(t.offset, t.offset + t.bytes());
    }
    std::sort(spans.begin(), spans.end());
    for (std::size_t i = 1; i < spans.size(); ++i) FUZZ_CHECK(spans[i].first >= spans[i - 1].second);
    try {
      const llama3::ModelParams p = llama3::io::gguf_params(g, "fuzz.gguf");
      p.validate("fuzz.gguf");
      FUZZ_CHECK(p.dim % p.n_heads == 0 && p.n_heads % p.n_kv_heads == 0 && p.vocab_size > 0);
    } catch (const llama3::Error&) {
    }
    if (llama3::gguf_has_tokenizer(g)) {
      const llama3::Tokenizer tok = llama3::Tokenizer::from_gguf(g, "fuzz.gguf");
      const std::string_view text = "hello world <|eot_id|> 123";
      FUZZ_CHECK(tok.decode(tok.encode(text, true, false)) == "<|begin_of_text|>" + std::string(text));
    }
  } catch (const llama3::Error&) {
  }
  return 0;
}
