// Fuzzes the Hugging Face tokenizer.json reader: any input either loads or throws llama3::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llama3/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const llama3::Tokenizer t = llama3::Tokenizer::from_hf_json(bytes, "fuzz.json");
    const auto ids = t.encode("hello world", true, false);
    if (t.decode(ids) != "<|begin_of_text|>hello world") __builtin_trap();
  } catch (const llama3::Error&) {
  }
  return 0;
}
