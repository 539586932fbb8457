// Fuzzes the torch.save reader (zip, then the restricted unpickler): any input either reads or throws
// llama3::Error, never runs code, and every tensor read lies inside the input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llama3/io/torch_checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& [name, t] : llama3::io::read_torch_checkpoint(bytes, nullptr, "fuzz.pth")) {
      const auto* begin = reinterpret_cast<const std::byte*>(data);
      if (t.data < begin || t.data + t.bytes() > begin + size) __builtin_trap();
    }
  } catch (const llama3::Error&) {
  }
  // The unpickler alone, on the raw bytes.
  try {
    llama3::io::pickle::Reader(bytes, "fuzz.pkl").run();
  } catch (const llama3::Error&) {
  }
  return 0;
}
