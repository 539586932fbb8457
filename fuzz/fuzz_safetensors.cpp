// Fuzzes the safetensors reader: any input either reads or throws llama3::Error; the tensors read lie inside the
// data and tile it, each byte belonging to one tensor.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "llama3/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const llama3::io::TensorMap tensors = llama3::io::read_safetensors(bytes, nullptr, "fuzz.safetensors");
    std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
    for (const auto& [name, t] : tensors) {
      llama3::fuzz::check_inside(t, data, size);
      spans.emplace_back(t.offset, t.offset + t.bytes());
    }
    std::sort(spans.begin(), spans.end());
    for (std::size_t i = 1; i < spans.size(); ++i) FUZZ_CHECK(spans[i].first == spans[i - 1].second);
    if (!spans.empty()) FUZZ_CHECK(spans.back().second == size);
  } catch (const llama3::Error&) {
  }
  return 0;
}
