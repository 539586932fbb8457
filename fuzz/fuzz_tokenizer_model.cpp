// Fuzzes the tokenizer.model (tiktoken BPE file) reader: any input either loads or throws llama3::Error.
// A loaded tokenizer must then encode and decode without failing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llama3/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const llama3::Tokenizer t = llama3::Tokenizer::from_tiktoken(bytes, "fuzz.model");
    const auto ids = t.encode("hello world <|eot_id|>", true, true, llama3::SpecialSet::all());
    if (t.decode(ids) != "<|begin_of_text|>hello world <|eot_id|><|end_of_text|>") __builtin_trap();
  } catch (const llama3::Error&) {
  }
  return 0;
}
