// Fuzzes the torch.save reader (zip, then the restricted unpickler): any input either reads or throws
// llama3::Error, never runs code, and every tensor lies inside one storage entry of the archive (the oracle that
// catches an offset whose bounds check wrapped: the tensor then starts in a header, or before the file). The
// mutator rebuilds the archive around a mutated pickle, whose integers become boundary values (fuzz_support.hpp).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"
#include "llama3/io/torch_checkpoint.hpp"

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  return llama3::fuzz::mutate_pth(data, size, max_size, seed);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const llama3::io::TensorMap tensors = llama3::io::read_torch_checkpoint(bytes, nullptr, "fuzz.pth");
    const llama3::io::ZipReader zip(bytes, "fuzz.pth");  // it read, so its archive reads
    for (const auto& [name, t] : tensors) {
      llama3::fuzz::check_inside(t, data, size);
      bool in_a_storage = false;
      for (const auto& [entry, e] : zip.entries()) {
        const auto* begin = reinterpret_cast<const std::byte*>(data) + e.offset;
        in_a_storage |= entry.find("data/") != std::string::npos && t.data >= begin &&
                        t.bytes() <= e.size && t.data - begin <= static_cast<std::ptrdiff_t>(e.size - t.bytes());
      }
      FUZZ_CHECK(in_a_storage);
    }
  } catch (const llama3::Error&) {
  }
  // The unpickler alone, on the raw bytes: its memory is budgeted (libFuzzer's -rss_limit_mb catches a leak).
  try {
    llama3::io::pickle::Reader(bytes, "fuzz.pkl").run();
  } catch (const llama3::Error&) {
  }
  return 0;
}
