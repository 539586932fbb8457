// Fuzzes the GGUF reader: any input either reads or throws llama3::Error; tensors read lie inside the input; a
// tokenizer in the metadata either loads and round-trips text, or is an Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "llama3/io/gguf.hpp"
#include "llama3/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const llama3::io::GgufFile g = llama3::io::read_gguf(bytes, nullptr, "fuzz.gguf");
    for (const auto& [name, t] : g.tensors) {
      const auto* begin = reinterpret_cast<const std::byte*>(data);
      if (t.data < begin || t.data + t.bytes() > begin + size) __builtin_trap();
      volatile std::byte sink{};
      if (t.bytes()) sink = t.data[t.bytes() - 1];  // ASan checks the read
      (void)sink;
    }
    if (llama3::gguf_has_tokenizer(g)) {
      const llama3::Tokenizer tok = llama3::Tokenizer::from_gguf(g, "fuzz.gguf");
      const std::string_view text = "hello world <|eot_id|> 123";
      if (tok.decode(tok.encode(text, true, false)) != "<|begin_of_text|>" + std::string(text)) __builtin_trap();
    }
  } catch (const llama3::Error&) {
  }
  return 0;
}
